//! A models home on S3 (`FEED_HOME=s3://feed-home/<prefix>`, the moto server of
//! `scripts/object-storage`): the same models and answers as a local home; a writer killed with
//! SIGKILL in the middle of uploading its version leaves the previous version serving on both
//! replicas, shows as ERROR once its lease expires, and frees the model for the next writer;
//! a wrong secret, a bucket without access, a malformed URL and a silent endpoint are refused
//! with what to check.

use std::process::Stdio;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::object_storage::store;
use crate::server_support::start;
use crate::support::*;

/// A workspace whose home is a fresh prefix of the `feed-home` bucket, with the test user's
/// credentials, a cache in the workspace and leases of `lease_seconds`.
fn on_s3(lease_seconds: u32) -> Workspace {
    let s = store();
    let prefix = format!(
        "t{}-{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    let mut ws = Workspace::with_home(format!("s3://feed-home/{prefix}"), Vec::new());
    let cache = ws.path("cache").to_string_lossy().into_owned();
    ws.env = [
        ("AWS_ENDPOINT_URL", s.endpoint.as_str()),
        ("AWS_ACCESS_KEY_ID", &s.key_id),
        ("AWS_SECRET_ACCESS_KEY", &s.secret),
        ("AWS_REGION", "us-east-1"),
        ("FEED_CACHE", &cache),
        ("FEED_LEASE_SECONDS", &lease_seconds.to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    ws
}

/// `list-models --json`.
fn models(ws: &Workspace) -> serde_json::Value {
    serde_json::from_str(&ws.ok(&["list-models", "--json"])).unwrap()
}

/// A query that pages `u1`'s unseen items by ALS.
const QUERY: &str = r#"{"model": "k", "query": "SELECT * WHERE NOT seen($user_id) ORDER BY score(als) LIMIT 5", "params": {"user_id": "u1"}}"#;

fn rank(ws: &Workspace, model: &str) -> String {
    ws.ok(&[
        "rank",
        "--model-name",
        model,
        "--user-id",
        "u1",
        "--limit",
        "5",
    ])
}

#[test]
fn a_home_on_s3_holds_the_models_a_local_home_would() {
    let local = Workspace::new();
    let remote = on_s3(30);
    for ws in [&local, &remote] {
        Synth::small().write(&ws.path("data"));
        let file = ws.write("model.yaml", &model_yaml("k", 3, 8));
        ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    }
    assert_eq!(
        comparable_metrics(&remote.view_json("k")),
        comparable_metrics(&local.view_json("k"))
    );
    assert_eq!(rank(&remote, "k"), rank(&local, "k"));

    // Only the value model changes: version 2 reuses version 1's artifacts, which come from
    // the home (the cache holds none yet: the first run staged and uploaded its own).
    let cache = remote.path("cache");
    std::fs::remove_dir_all(&cache).unwrap();
    let file = remote.path("model.yaml");
    let text = format!(
        "{}value_model:\n  weights: {{als: 2}}\n",
        model_yaml("k", 3, 8)
    );
    remote.write("model.yaml", &text);
    let out = remote.ok(&["update-model", "--file", file.to_str().unwrap()]);
    assert!(out.contains("version 2 is ACTIVE"), "{out}");
    let v2 = remote.ok(&["view-model", "--model-name", "k", "--version", "2"]);
    assert!(
        v2.contains("reusing the trained artifacts of version 1"),
        "{v2}"
    );
    let view = remote.view_json("k");
    assert_eq!(view["active_version"], 2, "{view}");
    assert_eq!(view["versions"][0]["status"], "INACTIVE", "{view}");
    let list = remote.ok(&["list-models"]);
    assert!(list.contains("ACTIVE") && list.contains('k'), "{list}");
    assert!(rank(&remote, "k").contains("version 2"));
    // The secret is nowhere in what the home's cache holds.
    assert!(files_holding(&cache, &store().secret).is_empty());

    // Live events need a local home, and say so.
    remote.write("events.json", r#"[{"user_id": "u1", "item_id": "i1"}]"#);
    let events = remote.path("events.json");
    remote.refused(
        &[
            "events",
            "push",
            "--model-name",
            "k",
            "--file",
            events.to_str().unwrap(),
        ],
        &[
            "FEED_HOME",
            "live events need a models home on a local disk",
        ],
    );

    remote.ok(&["delete-model", "--model-name", "k"]);
    assert_eq!(models(&remote), serde_json::json!([]));
    remote.refused(&["view-model", "--model-name", "k"], &["not found"]);
}

#[test]
fn a_writer_killed_mid_upload_leaves_the_previous_version_serving_on_both_replicas() {
    // Renewed every 1.7 s against moto: a loaded machine may delay one renewal and still hold.
    let ws = on_s3(5);
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("k", 3, 8));
    let file = file.to_str().unwrap();
    ws.ok(&["create-model", "--file", file]);
    let replicas = [start(&ws), start(&ws)];
    let addrs: Vec<String> = replicas.iter().map(|r| r.addr.clone()).collect();

    // A client asks both replicas in turn for the whole test; every answer must be a success.
    let stop = Arc::new(AtomicBool::new(false));
    let answered = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, answered, addrs) = (stop.clone(), answered.clone(), addrs.clone());
        std::thread::spawn(move || {
            let mut versions = Vec::new();
            for turn in 0.. {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                let addr = &addrs[turn % addrs.len()];
                let (status, r) = http(addr, "POST", "/query", Some(QUERY));
                assert_eq!(status, 200, "{addr}: {r}");
                versions.push(r["version"].as_u64().unwrap());
                answered.fetch_add(1, Ordering::Relaxed);
                std::thread::sleep(Duration::from_millis(20));
            }
            versions
        })
    };

    // The update pauses after uploading the first of its files, and is killed there.
    let marker = ws.path("paused");
    let mut child = ws
        .command()
        .args(["update-model", "--retrain", "--file", file])
        .env("FEED_PAUSE_AT", "upload")
        .env("FEED_PAUSE_MARKER", &marker)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    poll(
        Duration::from_secs(120),
        "the writer's pause mid-upload",
        || {
            if marker.exists() {
                return Ok(());
            }
            match child.try_wait().unwrap() {
                None => Err("uploading".into()),
                Some(status) => panic!("update-model ended before it was killed: {status}"),
            }
        },
    );
    // While it lives, its writer lease holds off a second writer.
    ws.refused(
        &["update-model", "--file", file],
        &["is being changed by another run"],
    );
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();

    // Once the lease expires, a reader records version 2 as interrupted.
    let view = poll(Duration::from_secs(60), "version 2 shown as ERROR", || {
        let view = ws.view_json("k");
        if view["versions"][1]["status"] == "ERROR" {
            Ok(view)
        } else {
            Err(view.to_string())
        }
    });
    assert_eq!(view["active_version"], 1, "{view}");
    assert!(
        view["versions"][1]["message"]
            .as_str()
            .unwrap()
            .contains("interrupted: the process working on it stopped during DEPLOYING"),
        "{view}"
    );
    let seen = answered.load(Ordering::Relaxed);
    poll(
        Duration::from_secs(30),
        "more answers after the kill",
        || {
            if answered.load(Ordering::Relaxed) > seen + 10 {
                Ok(())
            } else {
                Err("waiting".into())
            }
        },
    );
    for addr in &addrs {
        let (_, r) = http(addr, "GET", "/models/k", None);
        assert_eq!(r["active_version"], 1, "{addr}: {r}");
    }

    // The writer lease expired too: the next writer takes it, and both replicas switch.
    let out = ws.ok(&["update-model", "--retrain", "--file", file]);
    assert!(out.contains("version 3 is ACTIVE"), "{out}");
    for addr in &addrs {
        poll(
            Duration::from_secs(60),
            "the replica's switch to version 3",
            || {
                let (_, r) = http(addr, "POST", "/query", Some(QUERY));
                if r["version"] == 3 {
                    Ok(())
                } else {
                    Err(format!("{addr} answers {}", r["version"]))
                }
            },
        );
    }
    stop.store(true, Ordering::Relaxed);
    let versions = client.join().expect("every request succeeded");
    assert!(versions.iter().all(|&v| v == 1 || v == 3), "{versions:?}");
    assert_eq!(versions[0], 1);
    drop(replicas);
}

#[test]
fn a_home_on_s3_that_cannot_be_used_is_refused_with_what_to_check() {
    let s = store();
    let ws = on_s3(30);
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("k", 2, 8));
    let file = file.to_str().unwrap();
    let with = |home: &str, key: &str, value: &str| {
        let mut c = std::process::Command::new(feedctl_bin());
        c.arg("--home")
            .arg(home)
            .envs(ws.env.iter().map(|(k, v)| (k, v)))
            .env(key, value);
        c
    };
    let refused = |mut c: std::process::Command, pieces: &[&str]| {
        let out = c.args(["create-model", "--file", file]).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert!(!out.status.success(), "{err}");
        for piece in pieces {
            assert!(err.contains(piece), "expected `{piece}` in {err}");
        }
        assert!(!err.contains(&s.secret), "{err}");
        (out.status.code(), err)
    };
    let home = ws.home().to_string_lossy().into_owned();
    let (code, _) = refused(
        with(&home, "AWS_SECRET_ACCESS_KEY", "not-the-secret"),
        &[
            "FEED_HOME",
            "SignatureDoesNotMatch",
            "AWS_SECRET_ACCESS_KEY",
        ],
    );
    assert_eq!(code, Some(2));
    let (code, _) = refused(
        with("s3://feed-private/home", "FEED_LOG", "warn"),
        &["FEED_HOME", "AccessDenied", "s3:PutObject"],
    );
    assert_eq!(code, Some(2));
    let (code, _) = refused(
        with("s3:///no-bucket", "FEED_LOG", "warn"),
        &["FEED_HOME", "names no bucket"],
    );
    assert_eq!(code, Some(2));
    refused(
        with(&home, "AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
        &["FEED_HOME", "AWS_ENDPOINT_URL"],
    );
    // Nothing was written for any of them.
    assert_eq!(models(&ws), serde_json::json!([]));
    let started = Instant::now();
    ws.ok(&["create-model", "--file", file]);
    assert!(started.elapsed() < Duration::from_secs(120));
}
