//! Running Feed in production: `/metrics` read as Prometheus reads it, API keys per route,
//! rollback under load, and following a run's status.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::server_support::{start, start_with, wait_for_version, Hammer};
use crate::support::*;

/// A model over the synthetic data that takes live events.
fn model(name: &str, als_iterations: usize) -> String {
    format!(
        "{}events:\n  types: [click]\n  interactions: [click]\n",
        model_yaml(name, als_iterations, 16)
    )
}

/// One sample of a scrape.
struct Sample {
    name: String,
    labels: HashMap<String, String>,
    value: f64,
}

/// `GET /metrics` parsed by the Prometheus client's own parser (Python's `prometheus_client`,
/// installed by scripts/test), which fails on a malformed exposition.
fn scrape(addr: &str, key: Option<&str>) -> Vec<Sample> {
    let auth = key.map(|k| format!("Bearer {k}"));
    let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("Authorization", a.as_str())).collect();
    let (status, head, body) = request(addr, "GET", "/metrics", &headers, "");
    assert_eq!(status, 200, "{body}");
    assert!(head.contains("text/plain; version=0.0.4"), "{head}");
    let mut python = std::process::Command::new("python3")
        .arg(repo_path("tests/e2e/operations/scrape.py"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("python3 runs");
    use std::io::Write;
    python
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the exposition does not parse (scripts/test installs prometheus-client):\n{}\n{body}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Sample {
                name: v["name"].as_str().unwrap().to_string(),
                labels: serde_json::from_value(v["labels"].clone()).unwrap(),
                value: v["value"].as_f64().unwrap(),
            }
        })
        .collect()
}

/// The sum of the samples `name` whose labels include `labels` (0 when there is none).
fn value(samples: &[Sample], name: &str, labels: &[(&str, &str)]) -> f64 {
    samples
        .iter()
        .filter(|s| s.name == name)
        .filter(|s| {
            labels
                .iter()
                .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|s| s.value)
        .fold(0.0, |a, b| a + b)
}

#[test]
fn metrics_count_known_traffic_and_the_seen_fraction() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model("m", 3));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let a = srv.addr.as_str();
    let query = |text: &str| {
        let body = json!({"query": text, "params": {"user_id": "u3"}}).to_string();
        http(a, "POST", "/models/m/query", Some(&body))
    };
    // Popular items the user has seen are left out by NOT seen().
    for _ in 0..3 {
        let (st, r) = query("SELECT * FROM popular(limit = 100) WHERE NOT seen($user_id) LIMIT 10");
        assert_eq!(st, 200, "{r}");
    }
    let m = scrape(a, None);
    let route = [("model", "m"), ("route", "/models/{name}/query")];
    let served = value(&m, "feed_served_items_total", &[("model", "m")]);
    assert_eq!(served, 30.0);
    assert_eq!(
        value(&m, "feed_served_seen_items_total", &[("model", "m")]),
        0.0
    );
    // Without it, the most popular items include some the user has seen.
    for _ in 0..2 {
        assert_eq!(query("SELECT * FROM popular(limit = 100) LIMIT 20").0, 200);
    }
    let (st, _) = query("SELECT * FORM popular(limit = 5)");
    assert_eq!(st, 400);
    let (st, _) = http(
        a,
        "POST",
        "/models/nope/query",
        Some(r#"{"query": "SELECT *"}"#),
    );
    assert_eq!(st, 404);
    let (st, _) = http(
        a,
        "POST",
        "/models/m/rank",
        Some(r#"{"user_id": "u3", "limit": 7}"#),
    );
    assert_eq!(st, 200);
    let (st, _) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "m", "query": "SELECT * FROM popular(limit = 5)"}"#),
    );
    assert_eq!(st, 200);

    let m = scrape(a, None);
    let ok = [route[0], route[1], ("method", "POST"), ("status", "200")];
    assert_eq!(value(&m, "feed_http_requests_total", &ok), 5.0);
    assert_eq!(
        value(&m, "feed_http_request_duration_seconds_count", &ok),
        5.0
    );
    let bad = [route[0], route[1], ("status", "400")];
    assert_eq!(value(&m, "feed_http_requests_total", &bad), 1.0);
    assert_eq!(value(&m, "feed_http_errors_total", &bad), 1.0);
    // An unknown model makes no series of its own.
    let unknown = [("model", ""), route[1], ("status", "404")];
    assert_eq!(value(&m, "feed_http_errors_total", &unknown), 1.0);
    assert!(!m
        .iter()
        .any(|s| s.labels.get("model").is_some_and(|v| v == "nope")));
    // `POST /query` names its model in the body.
    let by_body = [("model", "m"), ("route", "/query"), ("status", "200")];
    assert_eq!(value(&m, "feed_http_requests_total", &by_body), 1.0);
    // Six answered queries (one through /query), each timed per stage.
    for stage in ["filter", "retrieve", "score", "reorder", "limit"] {
        let labels = [("model", "m"), ("stage", stage)];
        assert_eq!(
            value(&m, "feed_query_stage_duration_seconds_count", &labels),
            6.0,
            "{stage}"
        );
    }
    let seen = value(&m, "feed_served_seen_items_total", &[("route", "query")]);
    let served = value(&m, "feed_served_items_total", &[("route", "query")]);
    assert_eq!(served, 70.0);
    assert!(
        seen > 0.0,
        "the user has seen some of the most popular items"
    );
    assert_eq!(
        value(&m, "feed_served_items_total", &[("route", "rank")]),
        7.0
    );
    // Rank leaves out what the user has seen.
    assert_eq!(
        value(&m, "feed_served_seen_items_total", &[("route", "rank")]),
        0.0
    );
    assert_eq!(value(&m, "feed_active_version", &[("model", "m")]), 1.0);
    assert_eq!(value(&m, "feed_serving_version", &[("model", "m")]), 1.0);
    assert!(value(&m, "feed_active_version_age_seconds", &[("model", "m")]) >= 0.0);
    let status = |s| {
        value(
            &m,
            "feed_latest_version_status",
            &[("model", "m"), ("status", s)],
        )
    };
    assert_eq!((status("ACTIVE"), status("TRAINING")), (1.0, 0.0));

    // Score drift: the served ALS scores against the deciles of its validation top-10s. The
    // user's own pages sit near the top of the reference, so the index is positive.
    for _ in 0..2 {
        let text = "SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 50) ORDER BY score(als) LIMIT 10";
        assert_eq!(query(text).0, 200);
    }
    let m = scrape(a, None);
    let als = [("model", "m"), ("version", "1"), ("policy", "als")];
    assert!(value(&m, "feed_score_psi_samples", &als) >= 20.0);
    let psi = value(&m, "feed_score_psi", &als);
    assert!(psi.is_finite() && psi >= 0.0, "{psi}");
    eprintln!(
        "als: PSI {psi:.3} over {} served scores",
        value(&m, "feed_score_psi_samples", &als)
    );

    // Live events: the overlay's size and how long ago the log was read to its end.
    let events: String = (0..4)
        .map(|i| format!("{{\"user_id\": \"u{i}\", \"item_id\": \"i1\", \"type\": \"click\"}}\n"))
        .collect();
    let (st, body) = raw_http(
        a,
        "POST",
        "/models/m/events",
        "application/x-ndjson",
        &events,
    );
    assert_eq!(st, 200, "{body}");
    let m = poll(Duration::from_secs(30), "the overlay in /metrics", || {
        let m = scrape(a, None);
        match value(&m, "feed_live_overlay_events", &[("model", "m")]) {
            4.0 => Ok(m),
            v => Err(format!("{v} events")),
        }
    });
    assert_eq!(value(&m, "feed_live_overlay_users", &[("model", "m")]), 4.0);
    let lag = value(&m, "feed_live_ingest_lag_seconds", &[("model", "m")]);
    assert!((0.0..30.0).contains(&lag), "{lag}");
}

#[test]
fn api_keys_per_route_and_scope() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model("k", 2));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);

    // Not on a reachable address without a key, nor on loopback when asked to require them.
    let err = ws.refused(
        &["serve", "--addr", "0.0.0.0:0"],
        &["without API keys", "keys create"],
    );
    assert!(err.contains("reachable from other machines"), "{err}");
    ws.refused(
        &["serve", "--require-keys", "--addr", "127.0.0.1:0"],
        &["--require-keys"],
    );

    let create = |scope: &str, name: &str, extra: &[&str]| {
        let mut args = vec!["keys", "create", "--scope", scope, "--name", name];
        args.extend_from_slice(extra);
        ws.ok(&args).trim().to_string()
    };
    let mut keys: HashMap<&str, String> = HashMap::new();
    keys.insert("query", create("query", "app", &[]));
    keys.insert("events", create("events", "ingest", &[]));
    keys.insert("admin", create("admin", "ops", &[]));
    keys.insert("revoked", create("admin", "old", &[]));
    // The admin key with its last digit changed.
    let admin = &keys["admin"];
    let last = if admin.ends_with('0') { '1' } else { '0' };
    keys.insert("wrong", format!("{}{last}", &admin[..admin.len() - 1]));
    ws.ok(&["keys", "revoke", "old"]);
    ws.refused(
        &["keys", "create", "--scope", "query", "--name", "app"],
        &["already named"],
    );
    let listed = ws.ok(&["keys", "list"]);
    assert!(
        listed.contains("app") && listed.contains("revoked"),
        "{listed}"
    );
    // The store holds hashes, never a key.
    for (kind, key) in &keys {
        assert!(
            files_holding(&ws.home(), &key[14..]).is_empty(),
            "{kind} stored"
        );
    }
    let srv = start_with(&ws, &["--require-keys"]);
    let a = srv.addr.as_str();

    let event = r#"[{"user_id": "u1", "item_id": "i1", "type": "click"}]"#;
    let item = r#"[{"item_id": "i1", "attributes": {"genre": "g0"}}]"#;
    let query = r#"{"query": "SELECT * FROM popular(limit = 5)"}"#;
    // (method, path, body, scope needed); None: open to all.
    let routes: [(&str, &str, &str, Option<&str>); 13] = [
        ("GET", "/healthz", "", None),
        ("GET", "/openapi.json", "", None),
        ("GET", "/console", "", None),
        ("GET", "/models", "", Some("query")),
        ("GET", "/models/k", "", Some("query")),
        ("GET", "/models/k/versions/1", "", Some("query")),
        ("GET", "/models/k/status", "", Some("query")),
        (
            "POST",
            "/models/k/rank",
            r#"{"user_id": "u1"}"#,
            Some("query"),
        ),
        ("POST", "/models/k/query", query, Some("query")),
        (
            "POST",
            "/query",
            r#"{"model": "k", "query": "SELECT *"}"#,
            Some("query"),
        ),
        ("POST", "/models/k/events", event, Some("events")),
        ("POST", "/models/k/items", item, Some("events")),
        ("GET", "/metrics", "", Some("admin")),
    ];
    let mut refusals = HashMap::new();
    for (method, path, body, needed) in routes {
        for caller in ["none", "wrong", "revoked", "query", "events", "admin"] {
            let auth = keys.get(caller).map(|k| format!("Bearer {k}"));
            let mut headers = vec![("Content-Type", "application/json")];
            if let Some(a) = &auth {
                headers.push(("Authorization", a.as_str()));
            }
            let (status, head, text) = request(a, method, path, &headers, body);
            let expected = match (needed, caller) {
                (None, _) => 200,
                (Some(_), "none" | "wrong" | "revoked") => 401,
                (Some(n), c) if c == n || c == "admin" => 200,
                _ => 403,
            };
            assert_eq!(status, expected, "{caller} {method} {path}: {text}");
            if status == 401 {
                assert!(head.contains("www-authenticate: Bearer"), "{head}");
                // One answer, whatever was wrong with the key.
                refusals.insert(text, caller);
            }
        }
    }
    assert_eq!(refusals.len(), 1, "{refusals:?}");

    // Revoked while serving: refused from the next poll on.
    let app = format!("Bearer {}", keys["query"]);
    let headers = [("Authorization", app.as_str())];
    assert_eq!(request(a, "GET", "/models", &headers, "").0, 200);
    ws.ok(&["keys", "revoke", "app"]);
    poll(
        Duration::from_secs(30),
        "the revoked key refused",
        || match request(a, "GET", "/models", &headers, "").0 {
            401 => Ok(()),
            s => Err(format!("status {s}")),
        },
    );

    // A rate limit of one request per 100 s: the second at once gets 429 with Retry-After.
    let slow = create("query", "slow", &["--rate-limit", "0.01"]);
    let slow = format!("Bearer {slow}");
    let headers = [("Authorization", slow.as_str())];
    poll(
        Duration::from_secs(30),
        "the new key accepted",
        || match request(a, "GET", "/models", &headers, "").0 {
            200 => Ok(()),
            s => Err(format!("status {s}")),
        },
    );
    let (status, head, _) = request(a, "GET", "/models", &headers, "");
    assert_eq!(status, 429);
    assert!(head.contains("retry-after: "), "{head}");
}

#[test]
fn rollback_under_load_serves_the_old_version_without_a_failed_request() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model("r", 2));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    ws.write("model.yaml", &model("r", 4));
    ws.ok(&["update-model", "--file", file.to_str().unwrap()]);
    // Nothing older than version 1 to go back to, and no such version.
    let srv = start(&ws);
    let a = srv.addr.clone();
    let body = r#"{"user_id": "u7", "limit": 10}"#;
    wait_for_version(&a, "/models/r/rank", body, 2);
    ws.refused(
        &["rollback", "--model-name", "r", "--version", "9"],
        &["r/9", "complete versions of `r`: 1, 2"],
    );
    ws.refused(
        &["rollback", "--model-name", "r", "--version", "2"],
        &["ACTIVE already"],
    );

    let hammer = Hammer::start(&a, "/models/r/rank", body, 1);
    let out = ws.ok(&["rollback", "--model-name", "r"]);
    assert!(out.contains("from version 2 to version 1"), "{out}");
    let moved = Instant::now();
    wait_for_version(&a, "/models/r/rank", body, 1);
    eprintln!("version 1 served {:?} after the rollback", moved.elapsed());
    let seen = hammer.finish();
    assert_eq!(seen.first(), Some(&2));
    assert_eq!(seen.last(), Some(&1));
    // Once the old version answered, it kept answering.
    let first = seen.iter().position(|&v| v == 1).unwrap();
    assert!(seen[first..].iter().all(|&v| v == 1), "{seen:?}");

    let view = ws.view_json("r");
    assert_eq!(view["active_version"], 1);
    let v2 = &view["versions"][1];
    assert_eq!(v2["status"], "INACTIVE", "{view}");
    assert!(
        v2["message"].as_str().unwrap().contains("rollback"),
        "{view}"
    );
    ws.refused(
        &["rollback", "--model-name", "r"],
        &["no version older than its ACTIVE version 1 that served"],
    );
    // Forward again by number.
    ws.ok(&["rollback", "--model-name", "r", "--version", "2"]);
    wait_for_version(&a, "/models/r/rank", body, 2);
}

#[test]
fn a_run_is_followed_as_it_happens() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model("f", 2));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    // Version 2 made by another process while the server streams its log.
    ws.write("model.yaml", &model("f", 30));
    let mut update = ws
        .command()
        .args(["update-model", "--file", file.to_str().unwrap()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    poll(Duration::from_secs(60), "version 2 to start", || {
        match ws.view_json("f")["versions"].as_array().map(Vec::len) {
            Some(2) => Ok(()),
            n => Err(format!("{n:?} versions")),
        }
    });
    let (status, head, stream) = request(&srv.addr, "GET", "/models/f/status?version=2", &[], "");
    assert!(update.wait().unwrap().success());
    assert_eq!(status, 200, "{stream}");
    assert!(head.contains("text/event-stream"), "{head}");
    let events: Vec<(&str, serde_json::Value)> = stream
        .split("\n\n")
        .filter_map(|e| {
            let kind = e.lines().find_map(|l| l.strip_prefix("event: "))?;
            let data = e.lines().find_map(|l| l.strip_prefix("data: "))?;
            Some((kind, serde_json::from_str(data).unwrap()))
        })
        .collect();
    let statuses: Vec<&str> = events
        .iter()
        .filter(|(k, _)| *k == "status")
        .map(|(_, d)| d["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.first(), Some(&"SCHEDULING"), "{stream}");
    for s in ["FETCHING", "TRAINING", "DEPLOYING", "ACTIVE"] {
        assert!(statuses.contains(&s), "{s} in {stream}");
    }
    let (kind, end) = events.last().unwrap();
    assert_eq!(
        (*kind, end["status"].as_str()),
        ("end", Some("ACTIVE")),
        "{stream}"
    );
    assert_eq!(end["version"], 2);
    let (status, _, _) = request(&srv.addr, "GET", "/models/f/status?version=7", &[], "");
    assert_eq!(status, 404);

    // The command line prints the same log and ends with the version.
    let out = ws.ok(&["view-model", "--model-name", "f", "--follow"]);
    assert!(out.contains("following version 2"), "{out}");
    assert!(
        out.contains("DEPLOYING") && out.contains("ended ACTIVE"),
        "{out}"
    );
}
