//! The vector store: a 100k-item catalog gets an IVF index at DEPLOYING, its Lance datasets
//! open in Python `lance`, filtered similarity returns `min(k, eligible)` eligible items at
//! 10%, 1%, 0.1% and 0.01% selectivity. (A run killed while it writes the index: see
//! `interrupted.rs`.)

use std::collections::HashMap;
use std::process::Command;

use crate::server_support::start;
use crate::support::*;

fn vector_model(name: &str, iterations: usize, serving_extra: &str) -> String {
    format!(
        "model: {{name: {name}}}\n\
         connectors:\n  - {{id: events, type: file, path: data/events.csv}}\n  - {{id: items, type: file, path: data/items.csv}}\n\
         fetch:\n  events: SELECT user_id, item_id, timestamp FROM events\n  items: SELECT item_id, genre, year, price FROM items\n\
         policies:\n  - {{name: popular, type: popular}}\n  - {{name: als, type: als, factors: 16, iterations: {iterations}}}\n\
         training:\n  eval_users: 100\n\
         serving:\n  policy: als\n{serving_extra}"
    )
}

#[test]
fn filtered_similarity_on_a_100k_catalog_is_exact() {
    let ws = Workspace::new();
    ws.ok(&[
        "synth",
        "--out",
        ws.path("data").to_str().unwrap(),
        "--items",
        "100000",
        "--users",
        "3000",
        "--events",
        "150000",
        "--groups",
        "50",
    ]);
    let file = ws.write("vec.yaml", &vector_model("vec", 2, ""));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    // The same model searched exactly: the reference for `rank`.
    let exact = ws.write(
        "exact.yaml",
        &vector_model("exact", 2, "  index: {type: exact}\n"),
    );
    ws.ok(&["create-model", "--file", exact.to_str().unwrap()]);

    // The default threshold (100k items) built an IVF index for the ALS vectors.
    let version = ws.home().join("models/vec/versions/000001");
    let manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(version.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["indexes"]["als"]["kind"], "ivf_sq8", "{manifest}");
    assert_eq!(manifest["indexes"]["als"]["dim"], 16);
    let recall = manifest["indexes"]["als"]["tuned_recall"][0]
        .as_f64()
        .unwrap();
    assert!(recall >= 0.97, "tuned recall@10 {recall}");

    // Python `lance` opens the datasets and finds the rows and dimensions.
    if std::env::var("FEED_SKIP_PYLANCE").as_deref() != Ok("1") {
        let script = &repo_path("tests/python/check_lance.py");
        let out = Command::new("python3")
            .arg(script)
            .arg(&version)
            .output()
            .expect("python3 runs");
        assert!(
            out.status.success(),
            "check_lance.py failed (pip install pylance; FEED_SKIP_PYLANCE=1 skips): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let summary = String::from_utf8_lossy(&out.stdout);
        assert!(
            summary.contains("items.vector_als: 100000 × 16"),
            "{summary}"
        );
    }

    // Prices, counted here from the CSV.
    let items = std::fs::read_to_string(ws.path("data/items.csv")).unwrap();
    let prices: HashMap<String, f64> = items
        .lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].to_string(), f[4].parse().unwrap())
        })
        .collect();
    let server = start(&ws);
    for (bound, selectivity) in [(10.0, "10%"), (1.0, "1%"), (0.1, "0.1%"), (0.01, "0.01%")] {
        let eligible = prices.values().filter(|p| **p < bound).count();
        for user in ["u1", "u17", "u2500"] {
            let body = serde_json::json!({
                "model": "vec",
                "query": "SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 20) \
                          WHERE item.price < $bound LIMIT 20",
                "params": {"user_id": user, "bound": bound},
            });
            let (st, r) = http(&server.addr, "POST", "/query", Some(&body.to_string()));
            assert_eq!(st, 200, "{r}");
            let results = r["results"].as_array().unwrap();
            assert_eq!(
                results.len(),
                20.min(eligible),
                "{selectivity}: {eligible} eligible, {r}"
            );
            for x in results {
                let id = x["id"].as_str().unwrap();
                assert!(
                    prices[id] < bound,
                    "{selectivity}: {id} costs {}",
                    prices[id]
                );
            }
        }
    }

    // `rank` answers from the index: no seen item, and nearly the exact ranking.
    let events = std::fs::read_to_string(ws.path("data/events.csv")).unwrap();
    let (mut hits, mut total) = (0, 0);
    for user in ["u1", "u17", "u99", "u2500", "u2999"] {
        let seen: std::collections::HashSet<&str> = events
            .lines()
            .skip(1)
            .filter_map(|l| {
                let mut f = l.split(',');
                (f.next() == Some(user)).then(|| f.next().unwrap())
            })
            .collect();
        let rank = |model: &str| -> Vec<String> {
            let (st, r) = http(
                &server.addr,
                "POST",
                &format!("/models/{model}/rank"),
                Some(&format!(r#"{{"user_id": "{user}", "limit": 10}}"#)),
            );
            assert_eq!(st, 200, "{r}");
            r["ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect()
        };
        let (ann, exact) = (rank("vec"), rank("exact"));
        assert_eq!(ann.len(), 10);
        assert!(
            ann.iter().all(|i| !seen.contains(i.as_str())),
            "{user}: {ann:?}"
        );
        hits += ann.iter().filter(|i| exact.contains(i)).count();
        total += exact.len();
    }
    let recall = hits as f64 / total as f64;
    assert!(recall >= 0.8, "rank recall@10 against exact {recall}");
}
