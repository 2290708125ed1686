//! FeedQL over HTTP on MovieLens-1M: hard filters are exact. Eligibility is counted here,
//! independently, from the CSV files the model was built from.

use std::collections::{HashMap, HashSet};

use crate::server_support::start;
use crate::support::*;

/// Splits one CSV line (quotes doubled inside quoted fields).
fn fields(line: &str) -> Vec<String> {
    let mut out = vec![String::new()];
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                out.last_mut().unwrap().push('"');
            }
            ('"', _) => quoted = !quoted,
            (',', false) => out.push(String::new()),
            _ => out.last_mut().unwrap().push(c),
        }
    }
    out
}

struct Movie {
    id: String,
    year: i64,
    genres: Vec<String>,
}

fn load() -> (Vec<Movie>, HashMap<String, HashSet<String>>) {
    let dir = &repo_path("examples/movielens/data/ml-1m");
    let movies = std::fs::read_to_string(format!("{dir}/movies.csv"))
        .expect("run python3 examples/movielens/fetch_data.py (scripts/test does)");
    let movies = movies
        .lines()
        .skip(1)
        .map(|l| {
            let f = fields(l);
            Movie {
                id: f[0].clone(),
                year: f[2].parse().unwrap(),
                genres: f[3].split('|').map(str::to_string).collect(),
            }
        })
        .collect();
    let mut seen: HashMap<String, HashSet<String>> = HashMap::new();
    for l in std::fs::read_to_string(format!("{dir}/ratings.csv"))
        .unwrap()
        .lines()
        .skip(1)
    {
        let f = fields(l);
        seen.entry(f[0].clone()).or_default().insert(f[1].clone());
    }
    (movies, seen)
}

fn query(addr: &str, text: &str, user: &str) -> (Vec<String>, u64) {
    let body =
        serde_json::json!({"model": "movielens_1m", "query": text, "params": {"user_id": user}});
    let (st, r) = http(addr, "POST", "/query", Some(&body.to_string()));
    assert_eq!(st, 200, "{text}: {r}");
    let ids = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap().to_string())
        .collect();
    (ids, r["eligible"].as_u64().unwrap())
}

#[test]
fn filters_are_exact_on_movielens_1m() {
    let (movies, seen) = load();
    let ws = Workspace::new();
    let file = &repo_path("examples/movielens/ml-1m.yaml");
    ws.ok(&["create-model", "--file", file]);
    let srv = start(&ws);
    let addr = srv.addr.as_str();
    let by_id: HashMap<&str, &Movie> = movies.iter().map(|m| (m.id.as_str(), m)).collect();

    // The acceptance query, for 200 users drawn with a fixed seed.
    let mut users: Vec<&String> = seen.keys().collect();
    users.sort();
    let mut state = 12345u64;
    let noir = "SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 100), popular(limit = 100) \
                WHERE NOT seen($user_id) AND contains(item.genres, 'Film-Noir') AND item.year < 1960 LIMIT 20";
    for _ in 0..200 {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        let user = users[(state >> 33) as usize % users.len()];
        let eligible = movies
            .iter()
            .filter(|m| {
                !seen[user].contains(&m.id)
                    && m.genres.iter().any(|g| g == "Film-Noir")
                    && m.year < 1960
            })
            .count();
        let (ids, reported) = query(addr, noir, user);
        assert_eq!(ids.len(), eligible.min(20), "user {user}: {ids:?}");
        assert_eq!(reported as usize, eligible, "user {user}");
        for id in &ids {
            let m = by_id[id.as_str()];
            assert!(
                !seen[user].contains(id)
                    && m.genres.iter().any(|g| g == "Film-Noir")
                    && m.year < 1960,
                "{id} for {user}"
            );
        }
        assert_eq!(
            ids.iter().collect::<HashSet<_>>().len(),
            ids.len(),
            "no duplicates"
        );
    }

    // Selectivities of about 50%, 1% and 0.01% of the catalog, through a retriever far smaller
    // than the page: the engine must widen.
    let user = "1m_1";
    let mut years: Vec<i64> = movies.iter().map(|m| m.year).collect();
    years.sort();
    let median = years[years.len() / 2];
    let one_percent = years[years.len() / 100];
    let cases = [
        (
            format!("item.year >= {median}"),
            Box::new(move |m: &Movie| m.year >= median) as Box<dyn Fn(&Movie) -> bool>,
        ),
        (
            format!("item.year < {one_percent}"),
            Box::new(move |m: &Movie| m.year < one_percent),
        ),
        (
            "item.item_id = 'Toy Story (1995)'".to_string(),
            Box::new(|m: &Movie| m.id == "Toy Story (1995)"),
        ),
    ];
    for (filter, keep) in &cases {
        let eligible: Vec<&Movie> = movies.iter().filter(|m| keep(m)).collect();
        let text = format!("SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 5) WHERE {filter} ORDER BY score(als) LIMIT 50");
        let (ids, reported) = query(addr, &text, user);
        assert_eq!(reported as usize, eligible.len(), "{filter}");
        assert_eq!(ids.len(), eligible.len().min(50), "{filter}");
        assert!(ids.iter().all(|id| keep(by_id[id.as_str()])), "{filter}");
    }
}

#[test]
fn query_errors_over_http() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let yaml = format!(
        "{}queries:\n  home: SELECT * FROM popular(limit = 50) WHERE item.year >= $since LIMIT 5\n",
        model_yaml("q", 3, 8)
    );
    let file = ws.write("model.yaml", &yaml);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let a = srv.addr.as_str();

    // A saved query with a parameter, through both routes.
    let (st, r) = http(
        a,
        "POST",
        "/models/q/query",
        Some(r#"{"saved": "home", "params": {"since": 2000}, "return_metadata": true}"#),
    );
    assert_eq!(st, 200, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(
        results
            .iter()
            .all(|x| x["metadata"]["year"].as_i64().unwrap() >= 2000),
        "{r}"
    );
    let (st, _) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "q", "saved": "home", "params": {"since": 1990}}"#),
    );
    assert_eq!(st, 200);

    // A parse error: 400 with the place and a hint.
    let (st, r) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "q", "query": "SELECT * FORM popular(limit = 5)"}"#),
    );
    assert_eq!(st, 400, "{r}");
    assert_eq!(r["error_type"], "query");
    assert_eq!(
        (
            r["location"]["line"].as_u64(),
            r["location"]["column"].as_u64()
        ),
        (Some(1), Some(10))
    );
    assert_eq!(r["location"]["hint"], "did you mean `FROM`?");
    // An unknown column: 400 with its span.
    let (st, r) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "q", "query": "SELECT * WHERE item.yeer > 1"}"#),
    );
    assert_eq!(st, 400, "{r}");
    assert!(
        r["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `item.year`?"),
        "{r}"
    );
    // Unknown saved query and unknown model: 404.
    let (st, _) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "q", "saved": "nope"}"#),
    );
    assert_eq!(st, 404);
    let (st, _) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "zz", "query": "SELECT *"}"#),
    );
    assert_eq!(st, 404);
    // A missing or mistyped parameter: 422.
    let (st, r) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "q", "saved": "home"}"#),
    );
    assert_eq!(st, 422, "{r}");
    assert!(r["error"].as_str().unwrap().contains("$since"), "{r}");
    let (st, _) = http(
        a,
        "POST",
        "/query",
        Some(r#"{"model": "q", "query": "SELECT * LIMIT $n", "params": {"n": "ten"}}"#),
    );
    assert_eq!(st, 422);

    // The CLI runs the same saved query locally.
    let out = ws.ok(&[
        "query",
        "--model-name",
        "q",
        "--saved",
        "home",
        "--param",
        "since=2000",
        "--metadata",
    ]);
    assert_eq!(out.lines().count(), 7, "{out}");
}

fn post_query(addr: &str, body: serde_json::Value) -> serde_json::Value {
    let (st, r) = http(addr, "POST", "/query", Some(&body.to_string()));
    assert_eq!(st, 200, "{body}: {r}");
    r
}

#[test]
fn value_model_updates_apply_without_retraining() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let base = model_yaml("vm", 4, 8);
    let file = ws.write(
        "model.yaml",
        &format!("{base}value_model:\n  weights: {{als: 1}}\n"),
    );
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let query = serde_json::json!({
        "model": "vm", "explain": true, "params": {"user_id": "u4"},
        "query": "SELECT * FROM popular(limit = 80) WHERE NOT seen($user_id) ORDER BY score(value_model) LIMIT 10",
    });
    let before = post_query(&srv.addr, query.clone());
    assert_eq!(before["version"], 1);

    // Only a weight changes: a new version reuses the trained artifacts.
    ws.write(
        "model.yaml",
        &format!("{base}value_model:\n  weights: {{als: 1, popular: 0.05}}\n"),
    );
    ws.ok(&["update-model", "--file", file.to_str().unwrap()]);
    let view = ws.view_json("vm");
    assert_eq!(view["active_version"], 2);
    let log: Vec<&str> = view["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert!(
        !log.contains(&"TRAINING") && !log.contains(&"FETCHING"),
        "{log:?}"
    );
    assert!(
        view["log"].to_string().contains("nothing is retrained"),
        "{view}"
    );

    // The running server picks it up; the order follows the new weights, term by term.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    let after = loop {
        let r = post_query(&srv.addr, query.clone());
        if r["version"] == 2 {
            break r;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the server never switched"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let items = after["explanation"]["items"].as_array().unwrap();
    let weights = [("als", 1.0), ("popular", 0.05)];
    let mut previous = f64::INFINITY;
    for (item, result) in items.iter().zip(after["results"].as_array().unwrap()) {
        let by_hand: f64 = weights
            .iter()
            .map(|(p, w)| w * item["policy_scores"][p].as_f64().unwrap())
            .sum();
        let served = result["score"].as_f64().unwrap();
        assert!((by_hand - served).abs() < 1e-4, "{item} vs {result}");
        assert!(
            (item["value_model"]["popular"].as_f64().unwrap()
                - 0.05 * item["policy_scores"]["popular"].as_f64().unwrap())
            .abs()
                < 1e-4
        );
        assert!(served <= previous + 1e-12, "not in score order");
        previous = served;
    }
    let ids = |r: &serde_json::Value| {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].clone())
            .collect::<Vec<_>>()
    };
    assert_ne!(
        ids(&before),
        ids(&after),
        "the new weight changed the order"
    );
    let stages: Vec<&str> = after["explanation"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["stage"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["filter", "retrieve", "score", "reorder", "limit"]);

    // The same file again retrains (fresh data), and --retrain forces it.
    ws.ok(&["update-model", "--file", file.to_str().unwrap()]);
    assert!(ws.view_json("vm")["log"].to_string().contains("TRAINING"));
}

#[test]
fn rerankers_reorder_as_specified() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("rr", 4, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let run = |reorder: &str, explain: bool| {
        post_query(
            &srv.addr,
            serde_json::json!({
                "model": "rr", "params": {"user_id": "u1"}, "return_metadata": true, "explain": explain,
                "query": format!("SELECT * FROM popular(limit = 200) ORDER BY score(als) {reorder} LIMIT 12"),
            }),
        )
    };
    let column = |r: &serde_json::Value, c: &str| -> Vec<String> {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["metadata"][c].to_string())
            .collect()
    };

    // With full strength, diversity puts items of different genres next to each other.
    let plain = run("", false);
    let diverse = run(
        "REORDER BY diversity(attribute = 'genre', strength = 1.0, window = 10)",
        false,
    );
    let genres = column(&diverse, "genre");
    assert_eq!(
        genres[..10].iter().collect::<HashSet<_>>().len(),
        10,
        "{genres:?}"
    );
    assert!(
        column(&plain, "genre")[..10]
            .iter()
            .collect::<HashSet<_>>()
            .len()
            < 10
    );

    // Spacing: never two items of the same genre in a row.
    let spaced = column(
        &run(
            "REORDER BY spacing(attribute = 'genre', max_run = 1)",
            false,
        ),
        "genre",
    );
    assert!(spaced.windows(2).all(|w| w[0] != w[1]), "{spaced:?}");

    // Pin: a fixed item at a fixed position.
    let pinned = run("REORDER BY pin(ids = ['i150'], positions = [3])", false);
    assert_eq!(pinned["results"][2]["id"], "i150");

    // Boost at full strength orders by the column.
    let years: Vec<i64> = column(
        &run("REORDER BY boost(column = 'year', strength = 1.0)", false),
        "year",
    )
    .iter()
    .map(|y| y.parse().unwrap())
    .collect();
    assert!(years.windows(2).all(|w| w[0] >= w[1]), "{years:?}");

    // Exploration takes every second slot from its retriever, flagged in the explanation.
    let explored = run(
        "REORDER BY exploration(strength = 0.5, retriever = filter(limit = 100))",
        true,
    );
    let flags: Vec<bool> = explored["explanation"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["explored"].as_bool().unwrap())
        .collect();
    assert_eq!(flags.iter().filter(|f| **f).count(), 6, "{flags:?}");
    assert!(flags.iter().skip(1).step_by(2).all(|f| *f), "{flags:?}");
}

#[test]
fn later_pages_continue_the_first_across_a_new_version() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let base = model_yaml("pg", 3, 8);
    let file = ws.write(
        "model.yaml",
        &format!("{base}value_model:\n  weights: {{als: 1}}\n"),
    );
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let page = |offset: usize| {
        post_query(
            &srv.addr,
            serde_json::json!({
                "model": "pg", "params": {"user_id": "u2"}, "limit": 5, "offset": offset,
                "query": "SELECT * FROM popular(limit = 100) WHERE NOT seen($user_id) ORDER BY score(value_model)",
            }),
        )
    };
    let ids = |r: &serde_json::Value| -> Vec<String> {
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["id"].as_str().unwrap().to_string())
            .collect()
    };
    let first = ids(&page(0));
    // Every score moves: the value model now ranks by popularity alone.
    ws.write(
        "model.yaml",
        &format!("{base}value_model:\n  weights: {{popular: 1}}\n"),
    );
    ws.ok(&["update-model", "--file", file.to_str().unwrap()]);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while post_query(
        &srv.addr,
        serde_json::json!({"model": "pg", "query": "SELECT *"}),
    )["version"]
        != 2
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the server never switched"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let second = page(5);
    assert_eq!(second["version"], 2);
    let second = ids(&second);
    assert_eq!(second.len(), 5);
    assert!(
        second.iter().all(|id| !first.contains(id)),
        "page 2 {second:?} repeats page 1 {first:?}"
    );
    // A new first page starts from the new ranking.
    let fresh = ids(&page(0));
    assert_ne!(fresh, first);
}

#[test]
fn time_and_column_retrievers() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("tc", 2, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let run = |q: &str| {
        post_query(
            &srv.addr,
            serde_json::json!({"model": "tc", "query": q, "return_metadata": true}),
        )
    };
    for q in [
        "SELECT * FROM trending(limit = 20, window = '1d') LIMIT 10",
        "SELECT * FROM popular(limit = 20, window = '2d') LIMIT 10",
    ] {
        assert_eq!(run(q)["results"].as_array().unwrap().len(), 10, "{q}");
    }
    let r = run("SELECT * FROM column_order(columns = 'year DESC, title', limit = 50) WHERE item.year < 2000 LIMIT 20");
    let years: Vec<i64> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["metadata"]["year"].as_i64().unwrap())
        .collect();
    assert_eq!(years.len(), 20);
    assert!(
        years.windows(2).all(|w| w[0] >= w[1]) && years[0] == 1999,
        "{years:?}"
    );
    let (st, e) = http(
        &srv.addr,
        "POST",
        "/query",
        Some(r#"{"model": "tc", "query": "SELECT * FROM popular(window = 'soon')"}"#),
    );
    assert_eq!(st, 400, "{e}");
    assert!(
        e["location"]["hint"].as_str().unwrap().contains("'7d'"),
        "{e}"
    );
}

#[test]
fn an_expression_value_model_ranks_queries_and_rank() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let yaml = format!(
        "{}value_model:\n  expression: \"als + 0.01 * log(1 + popular)\"\n",
        model_yaml("ex", 3, 8)
    );
    let file = ws.write("model.yaml", &yaml);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let r = post_query(
        &srv.addr,
        serde_json::json!({
            "model": "ex", "explain": true, "params": {"user_id": "u3"},
            "query": "SELECT * FROM popular(limit = 100) WHERE NOT seen($user_id) ORDER BY score(value_model) LIMIT 8",
        }),
    );
    for (item, result) in r["explanation"]["items"]
        .as_array()
        .unwrap()
        .iter()
        .zip(r["results"].as_array().unwrap())
    {
        let s = &item["policy_scores"];
        let by_hand =
            s["als"].as_f64().unwrap() + 0.01 * (1.0 + s["popular"].as_f64().unwrap()).ln();
        assert!(
            (by_hand - result["score"].as_f64().unwrap()).abs() < 1e-4,
            "{item}"
        );
    }
    // /rank uses the same value model.
    let (st, rank) = http(
        &srv.addr,
        "POST",
        "/models/ex/rank",
        Some(r#"{"user_id": "u3", "limit": 8}"#),
    );
    assert_eq!(st, 200, "{rank}");
    let top_rank: Vec<&str> = rank["ids"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert_eq!(top_rank.len(), 8);
    // A typo in the expression fails the update with its place, and version 1 keeps serving.
    ws.write("model.yaml", &yaml.replace("popular)", "populr)"));
    let out = ws.feedctl(&["update-model", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("value_model.expression") && err.contains("did you mean `popular`?"),
        "{err}"
    );
    assert_eq!(ws.view_json("ex")["active_version"], 1);
}

#[test]
fn edge_cases_neither_crash_nor_shorten_pages() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("edge", 2, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let q = |body: serde_json::Value| http(&srv.addr, "POST", "/query", Some(&body.to_string()));
    // A similarity retriever with nothing to search from (an unknown user) still fills the page
    // from the eligible items, exactly.
    let (st, r) = q(
        serde_json::json!({"model": "edge", "params": {"user_id": "stranger"},
        "query": "SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 5) WHERE item.year >= 2000 LIMIT 12",
        "return_metadata": true}),
    );
    assert_eq!(st, 200, "{r}");
    let results = r["results"].as_array().unwrap();
    assert_eq!(results.len(), 12, "{r}");
    assert!(results
        .iter()
        .all(|x| x["metadata"]["year"].as_i64().unwrap() >= 2000));
    // similarity names its user: another user's vector is used, not $user_id's.
    let (st, a) = q(
        serde_json::json!({"model": "edge", "params": {"user_id": "u1"}, "query": "SELECT * FROM similarity(embedding = 'als', user = 'u7', limit = 5) LIMIT 5"}),
    );
    let (_, b) = q(
        serde_json::json!({"model": "edge", "params": {"user_id": "u7"}, "query": "SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 5) LIMIT 5"}),
    );
    assert_eq!(st, 200);
    assert_eq!(a["results"], b["results"]);
    // Zero and huge limits, huge offsets, a non-ASCII window: errors or empty lists, no crash.
    for (query, offset, expected) in [
        ("SELECT * FROM popular(limit = 0) LIMIT 5", None, 200),
        (
            "SELECT * FROM popular(limit = 99999999999) LIMIT 5",
            None,
            400,
        ),
        ("SELECT * FROM popular(window = '7д') LIMIT 5", None, 400),
        ("SELECT * LIMIT 5", Some(1_000_000_000_000u64), 422),
        ("SELECT * LIMIT 5 OFFSET $o", None, 422),
    ] {
        let mut body =
            serde_json::json!({"model": "edge", "query": query, "params": {"o": 99999999}});
        if let Some(o) = offset {
            body["offset"] = o.into();
        }
        let (st, r) = q(body);
        assert_eq!(st, expected, "{query}: {r}");
    }
    // Pinning an item twice keeps one copy.
    let (st, r) = q(
        serde_json::json!({"model": "edge", "query": "SELECT * FROM popular(limit = 50) REORDER BY pin(ids = ['i9', 'i9'], positions = [1, 3]) LIMIT 6"}),
    );
    assert_eq!(st, 200, "{r}");
    let ids: Vec<&str> = r["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|x| x["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.iter().filter(|i| **i == "i9").count(), 1, "{ids:?}");
    assert_eq!(ids[0], "i9");
    // Fewer ids than slots: the ids fill the first slots.
    let (st, r) = q(
        serde_json::json!({"model": "edge", "query": "SELECT * REORDER BY pin(ids = ['i9'], positions = [2, 3])"}),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["results"][1]["id"], "i9");
    // Missing scores go last, ascending or descending.
    for dir in ["ASC", "DESC"] {
        let (st, r) = q(
            serde_json::json!({"model": "edge", "query": format!("SELECT * FROM popular(limit = 30) ORDER BY score(if(item.year > 2010, item.year, NULL)) {dir} LIMIT 30")}),
        );
        assert_eq!(st, 200, "{r}");
        let scores: Vec<Option<f64>> = r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["score"].as_f64())
            .collect();
        let first_missing = scores
            .iter()
            .position(|s| s.is_none_or(|v| !v.is_finite()))
            .unwrap_or(scores.len());
        assert!(
            scores[first_missing..]
                .iter()
                .all(|s| s.is_none_or(|v| !v.is_finite())),
            "{dir}: {scores:?}"
        );
        assert!(first_missing > 0, "{dir}: {scores:?}");
    }
    // The value model is a score, not a filter.
    let (st, r) =
        q(serde_json::json!({"model": "edge", "query": "SELECT * WHERE value_model > 1"}));
    assert_eq!(st, 400, "{r}");
}

#[test]
fn saved_query_parameter_defaults() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let yaml = format!(
        "{}queries:\n  recent:\n    query: SELECT * FROM popular(limit = 100) WHERE item.year >= $since LIMIT $n\n    params: {{since: 2010, n: 4}}\n",
        model_yaml("dflt", 2, 8)
    );
    let file = ws.write("model.yaml", &yaml);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let years = |params: serde_json::Value| -> Vec<i64> {
        let r = post_query(
            &srv.addr,
            serde_json::json!({"model": "dflt", "saved": "recent", "params": params, "return_metadata": true}),
        );
        r["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x["metadata"]["year"].as_i64().unwrap())
            .collect()
    };
    let defaults = years(serde_json::json!({}));
    assert_eq!(defaults.len(), 4);
    assert!(defaults.iter().all(|y| *y >= 2010), "{defaults:?}");
    let overridden = years(serde_json::json!({"since": 1950, "n": 7}));
    assert_eq!(overridden.len(), 7);
    assert!(overridden.iter().any(|y| *y < 2010), "{overridden:?}");
    // A default for a parameter the query does not use is refused, with its place.
    ws.write("model.yaml", &yaml.replace("n: 4}", "n: 4, sinse: 1}"));
    let out = ws.feedctl(&["validate", "--file", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("queries.recent.params.sinse") && err.contains("no parameter `$sinse`"),
        "{err}"
    );
}
