//! Two `feedctl serve` replicas over one home, behind a round-robin client: page tokens carry
//! what the next page needs, so pages continue on whichever replica answers, never repeating an
//! item, and every request succeeds while `update-model` deploys a new version.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::server_support::start;
use crate::support::*;

const QUERY: &str = "SELECT * WHERE NOT seen($user_id) ORDER BY score(als) LIMIT 10";

/// One page: the request to `addr`, with the previous page's token.
fn page(addr: &str, user: &str, token: Option<&str>) -> (u16, serde_json::Value) {
    let mut body = serde_json::json!({"model": "h", "query": QUERY, "params": {"user_id": user}});
    if let Some(t) = token {
        body["page_token"] = t.into();
    }
    http(addr, "POST", "/query", Some(&body.to_string()))
}

/// Pages through `pages` pages for `user`, each from the next replica in turn; the ids in order
/// and the versions that answered. Panics on a failed request or a repeated item.
fn session(replicas: &[String], turn: &mut usize, user: &str, pages: usize) -> Vec<u64> {
    let mut token: Option<String> = None;
    let mut shown = HashSet::new();
    let mut versions = Vec::new();
    for p in 0..pages {
        let addr = &replicas[*turn % replicas.len()];
        *turn += 1;
        let (status, r) = page(addr, user, token.as_deref());
        assert_eq!(status, 200, "page {p} from {addr} failed: {r}");
        let results = r["results"].as_array().unwrap();
        assert_eq!(results.len(), 10, "page {p}: {r}");
        for item in results {
            let id = item["id"].as_str().unwrap().to_string();
            assert!(
                shown.insert(id.clone()),
                "{id} repeats on page {p} (from {addr}, version {})",
                r["version"]
            );
        }
        versions.push(r["version"].as_u64().unwrap());
        token = Some(
            r["next_page_token"]
                .as_str()
                .unwrap_or_else(|| panic!("no next_page_token on page {p}: {r}"))
                .to_string(),
        );
    }
    versions
}

#[test]
fn page_tokens_continue_on_any_replica_across_an_update() {
    let ws = Workspace::new();
    Synth {
        users: 1500,
        items: 600,
        clusters: 12,
        events_per_user: 30,
        seed: 5,
    }
    .write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("h", 5, 16));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let (a, b) = (start(&ws), start(&ws));
    let replicas = vec![a.addr.clone(), b.addr.clone()];

    // A token is bound to its query and parameters, and is refused with the field named.
    let (_, first) = page(&replicas[0], "u7", None);
    let token = first["next_page_token"].as_str().unwrap().to_string();
    let (status, r) = page(&replicas[1], "u8", Some(&token));
    assert_eq!(status, 422, "{r}");
    assert!(r.to_string().contains("page_token"), "{r}");
    let (status, r) = page(&replicas[1], "u7", Some("bm90IGEgdG9rZW4"));
    assert_eq!(status, 422, "{r}");
    let mixed = serde_json::json!({"model": "h", "query": QUERY, "params": {"user_id": "u7"},
                                   "offset": 10, "page_token": token});
    let (status, r) = http(&replicas[1], "POST", "/query", Some(&mixed.to_string()));
    assert_eq!(status, 422, "{r}");

    // Sessions of eight pages in a loop, round-robin over the replicas, while version 2 trains
    // and deploys.
    let stop = Arc::new(AtomicBool::new(false));
    let sessions = Arc::new(AtomicUsize::new(0));
    let client = {
        let (stop, sessions, replicas) = (stop.clone(), sessions.clone(), replicas.clone());
        std::thread::spawn(move || {
            let mut turn = 0;
            let mut seen: Vec<Vec<u64>> = Vec::new();
            let deadline = Instant::now() + Duration::from_secs(300);
            // Until told to stop and a whole session has run on version 2.
            while !(stop.load(Ordering::Relaxed)
                && seen.last().is_some_and(|v| v.iter().all(|&x| x == 2)))
                && Instant::now() < deadline
            {
                let user = format!("u{}", 1 + seen.len() % 50);
                seen.push(session(&replicas, &mut turn, &user, 8));
                sessions.fetch_add(1, Ordering::Relaxed);
            }
            seen
        })
    };
    poll(
        Duration::from_secs(60),
        "the client's first sessions",
        || {
            let n = sessions.load(Ordering::Relaxed);
            if n >= 2 {
                Ok(())
            } else {
                Err(format!("{n} sessions"))
            }
        },
    );
    ws.write("model.yaml", &model_yaml("h", 8, 16));
    ws.ok(&["update-model", "--file", file.to_str().unwrap()]);
    // Both replicas switch within their poll interval.
    for addr in &replicas {
        poll(
            Duration::from_secs(30),
            "the replica's switch to version 2",
            || {
                let (_, r) = page(addr, "u7", None);
                if r["version"] == 2 {
                    Ok(())
                } else {
                    Err(format!("{addr} answers {}", r["version"]))
                }
            },
        );
    }
    stop.store(true, Ordering::Relaxed);
    let seen = client
        .join()
        .expect("every request succeeded and no page repeated an item");
    assert!(seen.len() >= 3, "{} sessions", seen.len());
    assert_eq!(seen.first().unwrap()[0], 1);
    assert!(seen.last().unwrap().iter().all(|&v| v == 2));
}
