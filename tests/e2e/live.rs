//! Live events: acknowledged batches are on disk (they survive SIGKILL), the next query sees
//! them, and wrong batches are refused whole, naming the row and field.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use feed_engine::live::{read_from, Event, Position};
use serde_json::{json, Value};

use crate::server_support::{start, start_with};
use crate::support::*;

fn model(name: &str) -> String {
    format!(
        "{}events:\n  types: [click, like, hide]\n  interactions: [click, like]\n",
        model_yaml(name, 4, 16)
    )
}

fn post_events(addr: &str, model: &str, body: &str) -> (u16, Value) {
    raw_post(addr, &format!("/models/{model}/events"), body)
}

/// A POST of NDJSON (not JSON: sent as given).
fn raw_post(addr: &str, path: &str, body: &str) -> (u16, Value) {
    let (status, text) = raw_http(addr, "POST", path, "application/x-ndjson", body);
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// `POST /models/{model}/rank` for `user`: the answer.
pub(crate) fn rank(addr: &str, model: &str, user: &str, limit: usize) -> Value {
    let body = json!({"user_id": user, "limit": limit}).to_string();
    let (status, answer) = http(addr, "POST", &format!("/models/{model}/rank"), Some(&body));
    assert_eq!(status, 200, "{answer}");
    answer
}

/// The item ids of a `/rank` answer.
fn ranked_ids(answer: &Value) -> Vec<String> {
    answer["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i.as_str().unwrap().to_string())
        .collect()
}

/// How many of `found` are items `i<k>` with `k` in `range` (Synth's groups are 20 items).
fn among(found: &[String], range: std::ops::Range<usize>) -> usize {
    found
        .iter()
        .filter(|i| range.contains(&i[1..].parse::<usize>().unwrap()))
        .count()
}

/// A model `name` over the synthetic data that logs impressions, and a server for it.
fn logging_impressions(name: &str) -> (Workspace, crate::server_support::Server) {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let text = format!("{}serving:\n  log_impressions: true\n", model(name));
    let file = ws.write("model.yaml", &text);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let server = start(&ws);
    (ws, server)
}

/// The `n` impressions of page `request_id` in `model`'s log, once they are all written.
pub(crate) fn logged_page(ws: &Workspace, model: &str, request_id: &str, n: usize) -> Vec<Event> {
    let dir = ws.home().join(format!("models/{model}/events"));
    poll(
        Duration::from_secs(30),
        "a page's impressions in the log",
        || {
            let read = read_from::<Event>(&dir, Position::default()).map_err(|e| e.to_string())?;
            let page: Vec<Event> = read
                .records
                .into_iter()
                .flat_map(|r| r.entries)
                .filter(|e| e.request_id.as_deref() == Some(request_id))
                .collect();
            if page.len() == n {
                Ok(page)
            } else {
                Err(format!("{} logged", page.len()))
            }
        },
    )
}

pub(crate) fn ids(addr: &str, model: &str, query: &str, user: &str) -> Vec<String> {
    let (status, body) = http(
        addr,
        "POST",
        "/query",
        Some(&json!({"model": model, "query": query, "params": {"user_id": user}}).to_string()),
    );
    assert_eq!(status, 200, "{body}");
    body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_next_query_sees_an_event_and_wrong_batches_are_refused_whole() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model("live"));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let server = start(&ws);
    let addr = &server.addr;
    let unseen = "SELECT * FROM popular(limit = 300) WHERE NOT seen($user_id) LIMIT 10";

    // A like excludes the item at once; a hide (not an interaction) does not.
    let before = ids(addr, "live", unseen, "u1");
    let (liked, hidden) = (&before[0], &before[1]);
    let body = format!(
        "{{\"user_id\": \"u1\", \"item_id\": \"{liked}\", \"type\": \"like\", \"event_id\": \"e1\"}}\n\
         {{\"user_id\": \"u1\", \"item_id\": \"{hidden}\", \"type\": \"hide\"}}\n"
    );
    let (status, r) = post_events(addr, "live", &body);
    assert_eq!(status, 200, "{r}");
    assert_eq!(r["accepted"], 2, "{r}");
    let after = ids(addr, "live", unseen, "u1");
    assert!(!after.contains(liked), "{liked} still served: {after:?}");
    assert!(after.contains(hidden), "{after:?}");
    // `rank` excludes it too.
    let ranked = rank(addr, "live", "u1", 50);
    assert!(
        !ranked["ids"]
            .as_array()
            .unwrap()
            .iter()
            .any(|i| i == liked.as_str()),
        "{ranked}"
    );

    // The same event id again is a duplicate, counted and not written.
    let (status, r) = post_events(addr, "live", body.lines().next().unwrap());
    assert_eq!(
        (status, r["accepted"].clone(), r["duplicates"].clone()),
        (200, json!(0), json!(1)),
        "{r}"
    );

    // A user the version never saw: three likes of one taste group (items i100..i119 are group
    // 5) give a history, and the history encoder finds that group instead of the popular
    // fallback (whose items come from every group, the low ids first).
    let history = "SELECT * FROM similarity(embedding = 'als', encoder = 'history', user = $user_id, limit = 10) LIMIT 10";
    let in_group = |found: &[String]| among(found, 100..120);
    assert!(in_group(&ids(addr, "live", history, "newcomer")) <= 2);
    let likes: String = ["i103", "i105", "i108"]
        .iter()
        .map(|i| {
            format!("{{\"user_id\": \"newcomer\", \"item_id\": \"{i}\", \"type\": \"like\"}}\n")
        })
        .collect();
    assert_eq!(post_events(addr, "live", &likes).0, 200);
    let found = ids(addr, "live", history, "newcomer");
    assert!(
        in_group(&found) >= 6,
        "the newcomer's history should find group 5: {found:?}"
    );
    // `rank` answers from the same history, without the items liked.
    let ranked = rank(addr, "live", "newcomer", 10);
    assert_eq!(ranked["fallback"], "history", "{ranked}");
    let ranked = ranked_ids(&ranked);
    assert!(in_group(&ranked) >= 6, "{ranked:?}");
    assert!(!ranked
        .iter()
        .any(|i| ["i103", "i105", "i108"].contains(&i.as_str())));

    // Wrong batches: nothing of them is written, and the error names the row and field.
    let (events_before, _) = log_events(&ws, "live");
    for (body, status, field) in [
        (
            "{\"user_id\": \"u1\", \"item_id\": \"i1\", \"type\": \"like\"}\n{\"user_id\": \"u1\", \"item_id\": \"i2\", \"type\": \"lik\"}\n",
            422,
            "events[1].type",
        ),
        (
            "{\"user_id\": \"u1\", \"item_id\": \"i1\", \"type\": \"like\"}\n{\"user_id\": \"u1\"",
            400,
            "events[1]",
        ),
        (
            "{\"user_id\": {\"a\": 1}, \"item_id\": \"i1\", \"type\": \"like\"}\n",
            422,
            "events[0].user_id",
        ),
        (
            "{\"user_id\": \"u1\", \"item_id\": \"i1\", \"type\": \"like\", \"position\": -2}\n",
            422,
            "events[0].position",
        ),
    ] {
        let (got, r) = post_events(addr, "live", body);
        assert_eq!(got, status, "{r}");
        assert_eq!(r["field"], field, "{r}");
    }
    assert_eq!(log_events(&ws, "live").0, events_before);
    assert_eq!(post_events(addr, "nope", "").0, 404);
    let huge = "x".repeat(17 << 20);
    assert_eq!(post_events(addr, "live", &huge).0, 413);

    // `feedctl events push` writes to the same log; the server reads it within its poll.
    let pushed = ws.write(
        "push.ndjson",
        &format!(
            "{{\"user_id\": \"u2\", \"item_id\": \"{}\", \"type\": \"click\"}}\n",
            ids(addr, "live", unseen, "u2")[0]
        ),
    );
    let first = ids(addr, "live", unseen, "u2")[0].clone();
    let out = ws.ok(&[
        "events",
        "push",
        "--model-name",
        "live",
        "--file",
        pushed.to_str().unwrap(),
    ]);
    assert!(out.contains("1 written"), "{out}");
    poll(
        Duration::from_secs(30),
        "the pushed click to reach the server",
        || {
            let now = ids(addr, "live", unseen, "u2");
            if now.contains(&first) {
                Err(format!("{now:?}"))
            } else {
                Ok(())
            }
        },
    );
    // And the local commands read the log as well.
    let out = ws.ok(&[
        "query",
        "--model-name",
        "live",
        "--query",
        unseen,
        "--param",
        "user_id=u2",
    ]);
    assert!(!out.contains(&format!(" {first} ")), "{out}");
}

/// Events and distinct event ids in a model's log, read as a restarted server would.
fn log_events(ws: &Workspace, model: &str) -> (usize, HashSet<String>) {
    let dir = ws.home().join("models").join(model).join("events");
    let read = read_from::<Event>(&dir, Position::default()).unwrap();
    let events: Vec<_> = read.records.into_iter().flat_map(|r| r.entries).collect();
    let ids = events.iter().filter_map(|e| e.event_id.clone()).collect();
    (events.len(), ids)
}

#[test]
fn acknowledged_events_survive_sigkill_and_a_torn_tail() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model("durable"));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    for round in 0..3 {
        let server = start_with(&ws, &[]);
        let addr = server.addr.clone();
        let stop = Arc::new(AtomicBool::new(false));
        // Four clients post batches of 50 until the server dies under them.
        let clients: Vec<_> = (0..4)
            .map(|c| {
                let (addr, acked, stop) = (addr.clone(), acked.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0;
                    while !stop.load(Ordering::Relaxed) {
                        let batch: Vec<String> = (0..50)
                            .map(|k| format!("r{round}-c{c}-{n}-{k}"))
                            .collect();
                        let body: String = batch
                            .iter()
                            .map(|id| format!("{{\"event_id\": \"{id}\", \"user_id\": \"u{c}\", \"item_id\": \"i{}\", \"type\": \"click\"}}\n", n % 200))
                            .collect();
                        let result = std::panic::catch_unwind(|| post_events(&addr, "durable", &body));
                        match result {
                            Ok((200, r)) if r["accepted"] == 50 => {
                                acked.lock().unwrap().extend(batch);
                            }
                            _ => std::thread::sleep(Duration::from_millis(5)),
                        }
                        n += 1;
                    }
                })
            })
            .collect();
        // Let some batches through, then SIGKILL the server mid-stream.
        poll(Duration::from_secs(60), "acknowledged batches", || {
            let n = acked.lock().unwrap().len();
            if n >= (round + 1) * 1000 {
                Ok(())
            } else {
                Err(format!("{n} acknowledged"))
            }
        });
        drop(server);
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        let (_, logged) = log_events(&ws, "durable");
        let acked = acked.lock().unwrap();
        let lost: Vec<_> = acked.difference(&logged).take(5).collect();
        assert!(
            lost.is_empty(),
            "round {round}: acknowledged but not in the log: {lost:?}"
        );
    }
    // A torn tail (half a record, as a crash mid-write leaves): the next server starts, keeps
    // every acknowledged event, and writes after them.
    let dir = ws.home().join("models/durable/events");
    let last = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "log"))
        .max()
        .unwrap();
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(&last)
        .unwrap();
    std::io::Write::write_all(&mut f, &[200, 0, 0, 0, 1, 2, 3, 4, 5]).unwrap();
    drop(f);
    let server = start(&ws);
    let (status, r) = post_events(
        &server.addr,
        "durable",
        "{\"event_id\": \"after\", \"user_id\": \"u1\", \"item_id\": \"i1\", \"type\": \"click\"}\n",
    );
    assert_eq!(status, 200, "{r}");
    let (_, logged) = log_events(&ws, "durable");
    assert!(logged.contains("after"));
    let acked = acked.lock().unwrap();
    assert!(
        acked.is_subset(&logged),
        "acknowledged events lost after the torn tail"
    );
    // The server serves, with the live events.
    let (status, _) = http(
        &server.addr,
        "POST",
        "/models/durable/rank",
        Some(r#"{"user_id": "u1"}"#),
    );
    assert_eq!(status, 200);
}

/// The next version trains on the log's interactions and records how far it read; the overlay
/// keeps only what came after. Events posted before and after an update are each counted once.
#[test]
fn events_before_and_after_an_update_are_each_counted_once() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model("across"));
    let file = file.to_str().unwrap();
    ws.ok(&["create-model", "--file", file]);
    let events = |ws: &Workspace| {
        ws.view_json("across")["metrics"]["events"]
            .as_u64()
            .unwrap()
    };
    let fetched = events(&ws);
    let server = start(&ws);
    let addr = &server.addr;
    let unseen = "SELECT * FROM popular(limit = 300) WHERE NOT seen($user_id) LIMIT 20";
    let click = |user: &str, item: &str, kind: &str| {
        format!("{{\"user_id\": \"{user}\", \"item_id\": \"{item}\", \"type\": \"{kind}\"}}\n")
    };

    // Before the update: five clicks and a hide (not an interaction: not trained on).
    let before: Vec<String> = ids(addr, "across", unseen, "u1")[..5].to_vec();
    let mut body: String = before.iter().map(|i| click("u1", i, "click")).collect();
    body.push_str(&click("u1", "i199", "hide"));
    assert_eq!(post_events(addr, "across", &body).0, 200);
    ws.ok(&["update-model", "--file", file]);
    assert_eq!(
        events(&ws),
        fetched + 5,
        "the update trains on the five logged clicks once"
    );

    // After it: three more, served from the overlay over version 2.
    poll(
        Duration::from_secs(30),
        "the server to serve version 2",
        || {
            let (_, r) = http(
                addr,
                "POST",
                "/query",
                Some(&json!({"model": "across", "query": "SELECT * LIMIT 1"}).to_string()),
            );
            if r["version"] == 2 {
                Ok(())
            } else {
                Err(r.to_string())
            }
        },
    );
    let after: Vec<String> = ids(addr, "across", unseen, "u1")[..3].to_vec();
    let body: String = after.iter().map(|i| click("u1", i, "click")).collect();
    assert_eq!(post_events(addr, "across", &body).0, 200);
    let now = ids(addr, "across", unseen, "u1");
    for item in before.iter().chain(&after) {
        assert!(!now.contains(item), "{item} served again: {now:?}");
    }
    ws.ok(&["update-model", "--file", file]);
    assert_eq!(
        events(&ws),
        fetched + 8,
        "each logged click is trained on exactly once"
    );
}

/// With `serving.log_impressions`, each served page is logged: one impression per item with
/// the page's `request_id` and the item's position and score. Impressions are not interactions:
/// what was shown is not excluded as seen.
#[test]
fn served_pages_are_logged_as_impressions_that_events_join_by_request_id() {
    let (ws, server) = logging_impressions("shown");
    let query = json!({"model": "shown", "query": "SELECT * FROM popular(limit = 100) WHERE NOT seen($user_id) LIMIT 5 OFFSET 5", "params": {"user_id": "u3"}}).to_string();
    let (status, first) = http(&server.addr, "POST", "/query", Some(&query));
    assert_eq!(status, 200, "{first}");
    let request_id = first["request_id"].as_str().unwrap().to_string();
    let shown: Vec<&str> = first["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    let logged = logged_page(&ws, "shown", &request_id, shown.len());
    for (k, e) in logged.iter().enumerate() {
        assert_eq!((e.kind.as_str(), e.user_id.as_str()), ("impression", "u3"));
        assert_eq!(e.item_id, shown[k]);
        assert_eq!(
            e.position,
            Some(6 + k as u32),
            "positions continue the earlier page"
        );
        assert!(e.value.is_some());
        // The numbers the page was ranked by, as served: here the retriever's score and rank.
        let features = e
            .features
            .as_ref()
            .expect("an impression records its features");
        assert_eq!(
            features.get("rank.popular"),
            Some(&(6.0 + k as f64)),
            "{features:?}"
        );
        assert!(features.contains_key("retrieval.popular"), "{features:?}");
    }
    // Shown is not seen: the same page again.
    let (_, again) = http(&server.addr, "POST", "/query", Some(&query));
    assert_eq!(again["results"], first["results"]);
    assert_ne!(again["request_id"], first["request_id"]);
    // A click that names the page joins to it.
    let click = format!(
        "{{\"user_id\": \"u3\", \"item_id\": \"{}\", \"type\": \"click\", \"request_id\": \"{request_id}\", \"position\": 6}}\n",
        shown[0]
    );
    assert_eq!(post_events(&server.addr, "shown", &click).0, 200);
    let rank = rank(&server.addr, "shown", "u3", 3);
    assert!(rank["request_id"].is_string(), "{rank}");
    // A ranked page's impressions record the value model's outputs and popularity.
    let rank_id = rank["request_id"].as_str().unwrap().to_string();
    let ranked = logged_page(&ws, "shown", &rank_id, 3);
    for e in &ranked {
        let f = e.features.as_ref().expect("features");
        assert!(
            f.contains_key("popularity") && f.keys().any(|k| k.starts_with("policy.")),
            "{f:?}"
        );
    }
}

/// What a feed reads from the session: `NOT served()` keeps a page's items out of the next
/// refresh, `recent()` counts the user's events of a type, and `affinity()` raises items that
/// share a column value with what the user just interacted with.
#[test]
fn served_recent_and_affinity_read_the_users_live_events() {
    let (_ws, server) = logging_impressions("session");
    let addr = &server.addr;

    // A refresh after a page was served shows other items (impressions are logged without
    // the answer waiting: poll until the server has read them).
    let fresh =
        "SELECT * FROM popular(limit = 300) WHERE NOT served($user_id, within = '1h') LIMIT 10";
    let first = ids(addr, "session", fresh, "u1");
    let next = poll(
        Duration::from_secs(30),
        "a refresh without the served page",
        || {
            let page = ids(addr, "session", fresh, "u1");
            if page.iter().any(|i| first.contains(i)) {
                Err(format!("{page:?} repeats {first:?}"))
            } else {
                Ok(page)
            }
        },
    );
    assert_eq!(next.len(), 10);
    // Another user's feed is untouched.
    assert_eq!(ids(addr, "session", fresh, "u2")[..5], first[..5]);

    // recent(): the user's events of a type in the window.
    let hidden_twice = "SELECT * FROM popular(limit = 50) WHERE recent($user_id, 'hide', within = '1h') >= 2 LIMIT 5";
    assert!(ids(addr, "session", hidden_twice, "u4").is_empty());
    let hides = "{\"user_id\": \"u4\", \"item_id\": \"i1\", \"type\": \"hide\"}\n{\"user_id\": \"u4\", \"item_id\": \"i2\", \"type\": \"hide\"}\n";
    assert_eq!(post_events(addr, "session", hides).0, 200);
    assert_eq!(ids(addr, "session", hidden_twice, "u4").len(), 5);

    // affinity(): after likes of genre g7 (items i140..i159), that genre leads the ranking.
    let by_genre = "SELECT * FROM popular(limit = 300) WHERE NOT seen($user_id) ORDER BY score(affinity($user_id, item.genre, within = '1h')) LIMIT 10";
    let genre_7 = |found: &[String]| among(found, 140..160);
    assert!(genre_7(&ids(addr, "session", by_genre, "u5")) < 10);
    let likes: String = ["i141", "i150", "i155"]
        .iter()
        .map(|i| format!("{{\"user_id\": \"u5\", \"item_id\": \"{i}\", \"type\": \"like\"}}\n"))
        .collect();
    assert_eq!(post_events(addr, "session", &likes).0, 200);
    let found = ids(addr, "session", by_genre, "u5");
    assert_eq!(genre_7(&found), 10, "{found:?}");

    let query = |text: &str, params: Value| {
        let body = json!({"model": "session", "query": text, "params": params});
        http(addr, "POST", "/query", Some(&body.to_string()))
    };
    // An event type the model does not accept is the query's error, with a did-you-mean.
    let (status, body) = query(
        "SELECT * WHERE recent($user_id, 'hid') > 0",
        json!({"user_id": "u1"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("`hid` is not an event type"),
        "{body}"
    );
    assert!(body.to_string().contains("did you mean 'hide'?"), "{body}");

    // A window beyond what the server keeps is the query's error; a bad parameter names it.
    let (status, body) = query(
        "SELECT * WHERE NOT served($user_id, within = '30d')",
        json!({"user_id": "u1"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("at most '1d'"),
        "{body}"
    );
    let (status, body) = query(
        "SELECT * WHERE NOT served($user_id, within = $w)",
        json!({"user_id": "u1", "w": "soon"}),
    );
    assert_eq!(
        (status, body["field"].as_str()),
        (422, Some("$w")),
        "{body}"
    );
}

/// A two-tower user tower that reads the user's history encodes a user with live interactions
/// anew: a stranger gets personal results from three likes, and a known user's feed follows
/// what they just liked.
#[test]
fn the_two_tower_user_tower_reads_live_history() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write(
        "model.yaml",
        "model: {name: towers}\n\
         connectors:\n  - {id: ratings, type: file, path: data/ratings.csv}\n  - {id: items, type: file, path: data/items.csv}\n\
         fetch:\n  events: SELECT user_id, item_id, timestamp FROM ratings\n  items: SELECT item_id, genre FROM items\n\
         policies:\n  - name: two_tower\n    type: two_tower\n    hidden: 32\n    history: 10\n    item_features: [genre]\n    batch_size: 256\n    epochs: 8\n\
         training: {seed: 7}\n\
         events:\n  types: [like]\n",
    );
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let server = start(&ws);
    let addr = &server.addr;
    let towers =
        "SELECT * FROM similarity(embedding = 'two_tower', user = $user_id, limit = 10) LIMIT 10";
    // Group 7 holds items i140..i159 (Synth: 20 items a group).
    let group_7 = |found: &[String]| among(found, 140..160);
    let likes = |user: &str, items: &[usize]| -> String {
        items
            .iter()
            .map(|i| {
                format!("{{\"user_id\": \"{user}\", \"item_id\": \"i{i}\", \"type\": \"like\"}}\n")
            })
            .collect()
    };

    // A stranger: nothing to search from (the page is topped up by popularity), then their
    // three likes.
    assert!(group_7(&ids(addr, "towers", towers, "stranger")) <= 3);
    assert_eq!(
        post_events(addr, "towers", &likes("stranger", &[141, 147, 152])).0,
        200
    );
    let found = ids(addr, "towers", towers, "stranger");
    assert!(group_7(&found) >= 6, "{found:?}");
    // `rank` answers for them from the tower too.
    let ranked = rank(addr, "towers", "stranger", 10);
    assert_eq!(ranked["fallback"], "history", "{ranked}");

    // A user of group 3 who now likes group 7 over and over: their feed follows.
    let before = group_7(&ids(addr, "towers", towers, "u3"));
    let recent: Vec<usize> = (140..150).collect();
    assert_eq!(post_events(addr, "towers", &likes("u3", &recent)).0, 200);
    let after = ids(addr, "towers", towers, "u3");
    assert!(
        group_7(&after) > before + 2,
        "group 7 in u3's feed: {before} before, {} after: {after:?}",
        group_7(&after)
    );
    let ranked = rank(addr, "towers", "u3", 10);
    let ranked = ranked_ids(&ranked);
    assert!(group_7(&ranked) > before, "{ranked:?}");
}
