//! A run killed with SIGKILL, during TRAINING or while DEPLOYING writes the vector index,
//! leaves the previous version ACTIVE and servable; the killed version shows as ERROR
//! (interrupted), never ACTIVE.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::*;

/// Starts `update-model` on `file` in the background, with extra environment.
fn spawn_update(ws: &Workspace, args: &[&str], env: &[(&str, &str)]) -> Child {
    Command::new(feedctl_bin())
        .arg("--home")
        .arg(ws.home())
        .arg("update-model")
        .args(args)
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// Polls until version 2 of model `k` shows `status` and `ready` holds.
fn wait_for(ws: &Workspace, child: &mut Child, status: &str, ready: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let view = ws.view_json("k");
        let versions = view["versions"].as_array().unwrap();
        if versions.len() == 2 && versions[1]["status"] == status && ready() {
            break;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "update-model ended before it was killed: {view}"
        );
        assert!(
            Instant::now() < deadline,
            "version 2 never reached {status}: {view}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(300));
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

/// Version 1 still ACTIVE and serving, version 2 ERROR (interrupted during `stage`).
fn assert_previous_active(ws: &Workspace, stage: &str) {
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
        v2.contains(&format!(
            "interrupted: the process working on it stopped during {stage}"
        )),
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
    let mut child = spawn_update(&ws, &["--file", slow.to_str().unwrap()], &[]);
    wait_for(&ws, &mut child, "TRAINING", || true);
    assert_previous_active(&ws, "TRAINING");
}

#[test]
fn sigkill_while_deploying_the_index_keeps_previous_active() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let quick = ws.write("quick.yaml", &model_yaml("k", 2, 8));
    ws.ok(&["create-model", "--file", quick.to_str().unwrap()]);

    // The run pauses after the vectors are written and before the index is (fault injection),
    // and is killed there.
    let marker = ws.path("paused");
    let mut child = spawn_update(
        &ws,
        &["--retrain", "--file", quick.to_str().unwrap()],
        &[
            ("FEED_PAUSE_AT", "index"),
            ("FEED_PAUSE_MARKER", marker.to_str().unwrap()),
        ],
    );
    wait_for(&ws, &mut child, "DEPLOYING", || marker.exists());
    assert!(ws
        .home()
        .join("models/k/versions/000002/lance/users.lance")
        .exists());
    assert_previous_active(&ws, "DEPLOYING");
}

#[test]
fn fetches_beyond_their_time_or_memory_fail_and_the_previous_version_serves() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let good = model_yaml("k", 2, 8);
    let file = ws.write("model.yaml", &good);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let events = "SELECT user_id, item_id, timestamp FROM ratings";
    let cases = [
        (
            "WITH RECURSIVE r AS (SELECT 1 AS n UNION ALL SELECT n + 1 FROM r) \
             SELECT CAST(n AS VARCHAR) AS user_id, CAST(n AS VARCHAR) AS item_id, n AS timestamp FROM r",
            "  timeout_seconds: 2\n",
            "fetch.timeout_seconds",
        ),
        (
            "SELECT a.user_id, b.item_id, c.timestamp FROM ratings a, ratings b, ratings c",
            "  memory_limit: 32MB\n",
            "fetch.memory_limit",
        ),
    ];
    for (version, (sql, limit, expected)) in cases.into_iter().enumerate() {
        let text = good
            .replace(events, sql)
            .replace("fetch:\n", &format!("fetch:\n{limit}"));
        ws.write("model.yaml", &text);
        let started = Instant::now();
        let out = ws.feedctl(&["update-model", "--file", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains(expected), "expected `{expected}` in {err}");
        assert!(started.elapsed() < Duration::from_secs(120), "{expected}");
        let view = ws.view_json("k");
        assert_eq!(view["active_version"], 1, "{view}");
        assert_eq!(view["versions"][version + 1]["status"], "ERROR", "{view}");
        ws.ok(&["rank", "--model-name", "k", "--user-id", "u1"]);
    }
}

/// Training is admitted against `training.memory_limit` twice: from the settings alone at
/// `validate` (a SASRec of 4096 × 4096 cannot fit any machine), and from the data's shape after
/// the fetch (an ALS whose factors fit only a small catalog). Both refusals give the estimate,
/// the budget and the setting to lower; the second ends its version in ERROR with the ACTIVE
/// one serving, and a run that fits records estimated against measured memory.
#[test]
fn training_beyond_its_memory_budget_is_refused_with_the_estimate() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let good = model_yaml("t", 2, 8);
    let file = ws.write("model.yaml", &good);
    let file = file.to_str().unwrap();

    let oom = format!(
        "{good}  - {{name: seq, type: sasrec, hidden: 4096, max_seq_len: 4096, layers: 2, batch_size: 128}}\n"
    );
    ws.write("model.yaml", &oom);
    ws.refused(
        &["validate", "--file", file],
        &[
            "model.yaml:11:",
            "policies[2].batch_size",
            "would need about",
            "GB",
            "training.memory_limit",
            "attention maps",
            "lower `batch_size` or `max_seq_len`",
        ],
    );

    ws.write("model.yaml", &good);
    ws.ok(&["create-model", "--file", file]);
    let view = ws.view_json("t");
    let memory = &view["metrics"]["policies"]["als"]["memory"];
    assert!(memory["estimated_bytes"].as_u64().unwrap() > 0, "{memory}");
    assert!(memory["parts"]["factors"].as_u64().unwrap() > 0, "{memory}");

    // 300 users and 200 items of 1024 factors are 2 MB of factors: over a budget of 1.5 MB,
    // which the settings alone (no catalog yet) do not exceed.
    let wide = format!(
        "{}training:\n  memory_limit: 1.5MB\n",
        good.replace("factors: 8", "factors: 1024")
    );
    ws.write("model.yaml", &wide);
    ws.ok(&["validate", "--file", file]);
    ws.refused(
        &["update-model", "--file", file],
        &[
            "policies[1].factors",
            "for the fetched data",
            "1.5 MB",
            "lower `factors`",
        ],
    );
    let view = ws.view_json("t");
    assert_eq!(view["active_version"], 1, "{view}");
    assert_eq!(view["versions"][1]["status"], "ERROR", "{view}");
    ws.ok(&["rank", "--model-name", "t", "--user-id", "u1"]);
}
