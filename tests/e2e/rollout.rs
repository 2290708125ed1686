//! Rollout: a candidate version, experiments that split users by a stable hash, the shadow,
//! and promotion — through the binary and HTTP.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::server_support::{start, wait_for_version};
use crate::support::*;

const QUERIES: &str = "queries:
  for_you: SELECT * FROM similarity(embedding = 'als', encoder = 'user', user = $user_id, limit = 100) WHERE NOT seen($user_id) LIMIT 10
  for_you_pop: SELECT * FROM popular(limit = 100) WHERE NOT seen($user_id) LIMIT 10
";

/// The model with live events, saved queries, and `serving` as given.
fn model(als_iterations: usize, factors: usize, serving: &str) -> String {
    format!(
        "{}events:\n  types: [click]\n  interactions: [click]\n{QUERIES}{serving}",
        model_yaml("x", als_iterations, factors)
    )
}

const EXPERIMENTS: &str = "serving:
  log_impressions: true
  experiments:
    - name: ranking
      applies_to: [rank]
      variants:
        - {name: control, share: 50}
        - {name: candidate, share: 30, version: 2}
        - {name: popular_heavy, share: 20, value_model: {weights: {als: 1, popular: 0.001}}}
    - name: feed
      applies_to: [for_you]
      variants:
        - {name: control, share: 60}
        - {name: pop, share: 40, query: for_you_pop}
";

/// Sends `f(i)` for `i` in `0..n` on four threads; the answers in order.
fn many(n: usize, f: impl Fn(usize) -> (u16, Value) + Sync) -> Vec<Value> {
    let chunks: Vec<Vec<Value>> = std::thread::scope(|s| {
        let f = &f;
        let handles: Vec<_> = (0..4)
            .map(|t| {
                s.spawn(move || {
                    (t * n / 4..(t + 1) * n / 4)
                        .map(|i| {
                            let (st, body) = f(i);
                            assert_eq!(st, 200, "{body}");
                            body
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    chunks.into_iter().flatten().collect()
}

fn ids(v: &Value) -> Vec<String> {
    v["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

/// `GET /metrics` as text.
fn scrape(addr: &str) -> String {
    let (st, _, text) = request(addr, "GET", "/metrics", &[], "");
    assert_eq!(st, 200);
    text
}

/// A scrape's sum of the samples of `name` whose labels include `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().unwrap())
        })
        .sum()
}

/// One scrape's sum of `name` with `labels`.
fn metric(addr: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    sample(&scrape(addr), name, labels)
}

/// Polls `check` until it holds (the server works off the response path), at most 60 s.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !check() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn experiments_split_users_stably_and_the_winner_is_promoted() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model(2, 16, ""));
    let f = file.to_str().unwrap();
    ws.ok(&["create-model", "--file", f]);
    // A candidate: made and complete, not ACTIVE.
    ws.write("model.yaml", &model(6, 24, ""));
    let out = ws.ok(&["update-model", "--file", f, "--candidate"]);
    assert!(out.contains("version 2 is INACTIVE"), "{out}");
    let view = ws.view_json("x");
    assert_eq!(view["active_version"], 1, "{view}");
    assert!(view["versions"][1]["message"]
        .as_str()
        .unwrap()
        .contains("candidate"));

    // An experiment naming a version the model lacks is refused, located, before any version.
    ws.write(
        "model.yaml",
        &model(2, 16, &EXPERIMENTS.replace("version: 2", "version: 9")),
    );
    ws.refused(
        &["update-model", "--file", f],
        &[
            "serving.experiments[0].variants[1].version",
            "no version 9",
            "complete versions: 1, 2",
        ],
    );
    // The experiments: a serving-only change, so version 3 reuses version 1's training.
    ws.write("model.yaml", &model(2, 16, EXPERIMENTS));
    let out = ws.ok(&["update-model", "--file", f]);
    assert!(out.contains("version 3 is ACTIVE"), "{out}");

    let srv = start(&ws);
    let a = srv.addr.clone();
    wait_for_version(&a, "/models/x/rank", r#"{"user_id": "u1", "limit": 10}"#, 3);
    let rank = |user: &str| {
        let body = json!({"user_id": user, "limit": 10}).to_string();
        http(&a, "POST", "/models/x/rank", Some(&body))
    };

    // 10,000 simulated users split within 2 points of the declared shares.
    let users: Vec<String> = (0..10_000).map(|i| format!("sim-{i}")).collect();
    let started = Instant::now();
    let answers = many(users.len(), |i| rank(&users[i]));
    eprintln!("10,000 rank requests in {:?}", started.elapsed());
    let mut assigned: BTreeMap<String, String> = BTreeMap::new();
    let mut counts: BTreeMap<String, usize> = BTreeMap::new();
    for (u, r) in users.iter().zip(&answers) {
        assert_eq!(r["variant"]["experiment"], "ranking", "{r}");
        let variant = r["variant"]["variant"].as_str().unwrap().to_string();
        // The candidate variant is answered by version 2; the others by ACTIVE.
        let expected = if variant == "candidate" { 2 } else { 3 };
        assert_eq!(r["version"], expected, "{r}");
        *counts.entry(variant.clone()).or_default() += 1;
        assigned.insert(u.clone(), variant);
    }
    for (variant, share) in [
        ("control", 50.0),
        ("candidate", 30.0),
        ("popular_heavy", 20.0),
    ] {
        let got = counts[variant] as f64 / 100.0;
        eprintln!("{variant}: {got}% of 10,000 users (declared {share}%)");
        assert!(
            (got - share).abs() <= 2.0,
            "{variant}: {got}% against {share}%"
        );
    }
    // Each user keeps the variant (every 10th user asked again, after a restart of the server).
    drop(srv);
    let srv = start(&ws);
    let a = srv.addr.clone();
    let rank = |user: &str| {
        let body = json!({"user_id": user, "limit": 10}).to_string();
        http(&a, "POST", "/models/x/rank", Some(&body))
    };
    let again = many(1000, |i| rank(&users[i * 10]));
    for (i, r) in again.iter().enumerate() {
        assert_eq!(
            r["variant"]["variant"].as_str().unwrap(),
            assigned[&users[i * 10]],
            "{r}"
        );
    }
    let metrics_requests = metric(
        &a,
        "feed_experiment_requests_total",
        &[("experiment", "ranking")],
    );
    assert_eq!(metrics_requests, 1000.0);

    // A `query:` variant answers the saved query with another one; requests not in the
    // experiment (FeedQL text) carry no variant.
    let query = |body: Value| http(&a, "POST", "/models/x/query", Some(&body.to_string()));
    let mut pop_users = 0;
    for u in 0..40 {
        let user = format!("u{u}");
        let (st, r) = query(json!({"saved": "for_you", "params": {"user_id": user}}));
        assert_eq!(st, 200, "{r}");
        let variant = r["variant"]["variant"].as_str().unwrap();
        let (_, pop) = query(json!({"saved": "for_you_pop", "params": {"user_id": user}}));
        let (_, als) = query(json!({"saved": "for_you", "params": {"user_id": user}}));
        assert_eq!(
            als["variant"], r["variant"],
            "the same user, the same variant"
        );
        assert!(pop.get("variant").is_none(), "{pop}");
        if variant == "pop" {
            pop_users += 1;
            assert_eq!(ids(&r), ids(&pop), "{user}");
        } else {
            assert_eq!(variant, "control");
        }
    }
    assert!((8..32).contains(&pop_users), "{pop_users} of 40 in `pop`");
    let (_, text) = query(
        json!({"query": QUERIES.lines().nth(1).unwrap().split_once(": ").unwrap().1, "params": {"user_id": "u1"}}),
    );
    assert!(text.get("variant").is_none(), "{text}");

    // Impressions record the variant, a `version:` variant's pages included (logged under the
    // served version's setting; version 2's file does not log them).
    for variant in ["control", "candidate", "popular_heavy"] {
        let user = assigned.iter().find(|(_, v)| *v == variant).unwrap().0;
        let (_, r) = rank(user);
        let n = r["ids"].as_array().unwrap().len();
        let logged = crate::live::logged_page(&ws, "x", r["request_id"].as_str().unwrap(), n);
        let tag = format!("ranking/{}", r["variant"]["variant"].as_str().unwrap());
        assert!(
            logged
                .iter()
                .all(|e| e.variant.as_deref() == Some(tag.as_str())),
            "{logged:?}"
        );
    }

    // Events count per variant of each experiment.
    let events: Vec<Value> = (0..20)
        .map(|u| json!({"user_id": format!("u{u}"), "item_id": "i1", "type": "click"}))
        .collect();
    let (st, r) = http(
        &a,
        "POST",
        "/models/x/events",
        Some(&Value::from(events).to_string()),
    );
    assert_eq!(st, 200, "{r}");
    let clicks = |experiment: &str| {
        metric(
            &a,
            "feed_experiment_events_total",
            &[("experiment", experiment), ("type", "click")],
        )
    };
    assert_eq!(clicks("ranking"), 20.0);
    assert_eq!(clicks("feed"), 20.0);
    assert!(
        metric(
            &a,
            "feed_experiment_impressions_total",
            &[("variant", "pop")]
        ) > 0.0
    );

    // The shadow: version 2 scores first pages beside ACTIVE, compared in /metrics and
    // view-model (every server's measurements, written at its polls).
    ws.refused(
        &["shadow", "--model-name", "x", "--version", "3"],
        &["is ACTIVE"],
    );
    ws.refused(&["shadow", "--model-name", "x", "--version", "9"], &["x/9"]);
    let out = ws.ok(&["shadow", "--model-name", "x", "--version", "2"]);
    assert!(out.contains("version 2"), "{out}");
    eventually("the shadow to load", || {
        let (_, r) = query(json!({"saved": "for_you_pop", "params": {"user_id": "u5"}}));
        assert!(r["results"].is_array(), "{r}");
        metric(&a, "feed_shadow_requests_total", &[("version", "2")]) > 0.0
    });
    let done = || {
        metric(&a, "feed_shadow_requests_total", &[("version", "2")])
            + metric(&a, "feed_shadow_skipped_total", &[("version", "2")])
    };
    let before = done();
    for u in 0..30 {
        let (st, _) =
            query(json!({"saved": "for_you_pop", "params": {"user_id": format!("u{u}")}}));
        assert_eq!(st, 200);
        // One at a time, so that none is skipped for being too many at once.
        let want = before + f64::from(u + 1);
        eventually("a shadow comparison", || done() >= want);
    }
    // One scrape: every comparison is counted in each of the metrics.
    let m = scrape(&a);
    let compared = sample(&m, "feed_shadow_requests_total", &[("version", "2")]);
    assert!(compared >= 25.0, "{m}");
    assert_eq!(
        sample(&m, "feed_shadow_overlap_count", &[("version", "2")]),
        compared
    );
    assert_eq!(
        sample(
            &m,
            "feed_shadow_duration_seconds_count",
            &[("side", "shadow")]
        ),
        compared
    );
    eventually("view-model to show the comparisons", || {
        let v = ws.view_json("x");
        v["shadow"]["compared"].as_f64()
            == Some(metric(
                &a,
                "feed_shadow_requests_total",
                &[("version", "2")],
            ))
    });
    let v = ws.view_json("x");
    let shadow = &v["shadow"];
    assert_eq!(shadow["version"], 2, "{v}");
    assert_eq!(shadow["active"], true);
    assert_eq!(shadow["against"], 3);
    let overlap = shadow["overlap"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&overlap), "{shadow}");
    assert!(shadow["shadow_p50_seconds"].as_f64().unwrap() > 0.0);
    let text = ws.ok(&["view-model", "--model-name", "x"]);
    assert!(text.contains("shadow: version 2"), "{text}");
    assert!(text.contains("experiment ranking (splits rank)"), "{text}");

    // Promote the value-model variant: a new version from version 3's artifacts, with the
    // variant's value model and without the experiment it won.
    let out = ws.ok(&["promote", "--model-name", "x", "--variant", "popular_heavy"]);
    assert!(out.contains("version 4 is ACTIVE"), "{out}");
    assert!(out.contains("popular: 0.001"), "{out}");
    wait_for_version(&a, "/models/x/rank", r#"{"user_id": "u1", "limit": 10}"#, 4);
    let v = ws.view_json("x");
    let experiments: Vec<&str> = v["experiments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(experiments, ["feed"], "{v}");
    let (_, r) = rank("sim-1");
    assert!(r.get("variant").is_none(), "{r}");
    ws.refused(
        &["promote", "--model-name", "x", "--variant", "nope"],
        &["feed/control, feed/pop"],
    );
    // Promote the shadow: ACTIVE moves to version 2 and the shadow ends.
    let out = ws.ok(&["promote", "--model-name", "x", "--shadow"]);
    assert!(out.contains("from version 4 to version 2"), "{out}");
    wait_for_version(&a, "/models/x/rank", r#"{"user_id": "u1", "limit": 10}"#, 2);
    let v = ws.view_json("x");
    assert_eq!(v["shadow"]["active"], false, "{v}");
    ws.refused(
        &["promote", "--model-name", "x", "--shadow"],
        &["no shadow version"],
    );
}
