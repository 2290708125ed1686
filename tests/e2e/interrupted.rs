//! A create killed with SIGKILL during TRAINING leaves the previous version ACTIVE and
//! servable; the killed version shows as ERROR (interrupted), never ACTIVE.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

#[test]
fn sigkill_during_training_keeps_previous_active() {
    let ws = Workspace::new();
    Synth {
        users: 2000,
        items: 1000,
        clusters: 20,
        events_per_user: 40,
        seed: 3,
    }
    .write(&ws.path("data"));
    let quick = ws.write("quick.yaml", &model_yaml("k", 2, 8));
    ws.ok(&["create-model", "--file", quick.to_str().unwrap()]);

    // Enough iterations that training outlives the test's patience many times over.
    let slow = ws.write("slow.yaml", &model_yaml("k", 1000, 64));
    let mut child = Command::new(feedctl_bin())
        .arg("--home")
        .arg(ws.home())
        .args(["update-model", "--file", slow.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();

    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = ws.view_json("k");
        let versions = view["versions"].as_array().unwrap();
        if versions.len() == 2 && versions[1]["status"] == "TRAINING" {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "update-model ended before it was killed"
        );
        assert!(
            Instant::now() < deadline,
            "version 2 never reached TRAINING: {view}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    let view = ws.view_json("k");
    assert_eq!(view["active_version"], 1, "{view}");
    assert_eq!(view["versions"][0]["status"], "ACTIVE");
    assert_eq!(view["versions"][1]["status"], "ERROR");
    assert!(
        view["versions"][1]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted"),
        "{view}"
    );
    // The reader recorded it, so the status log says so too.
    let v2 = ws.ok(&["view-model", "--model-name", "k", "--version", "2"]);
    assert!(
        v2.contains("interrupted: the process working on it stopped during TRAINING"),
        "{v2}"
    );

    let out = ws.ok(&[
        "rank",
        "--model-name",
        "k",
        "--user-id",
        "u1",
        "--limit",
        "5",
    ]);
    assert!(out.contains("version 1"), "{out}");
    let list = ws.ok(&["list-models"]);
    assert!(list.contains("ACTIVE (v2 ERROR)"), "{list}");
}
