//! The web console in a real browser: headless Chromium (the distribution's `chromium`, which
//! scripts/test installs) opens `/console` on a model trained on MovieLens-100K, runs a query in
//! the playground, and the DOM it built is checked; screenshots are saved as test artifacts.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::server_support::start;
use crate::support::*;

/// Where the screenshots go (kept after the test: `target/tmp/console/`).
fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("console");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn chromium() -> Command {
    let mut c = Command::new("chromium");
    c.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--hide-scrollbars",
        "--no-first-run",
        // Virtual time runs ahead only while no fetch is pending: the page's API calls finish
        // before the DOM is read or the screenshot taken, however slow the machine.
        "--virtual-time-budget=15000",
        "--window-size=1280,1000",
    ]);
    c
}

/// The DOM after the page's scripts ran.
fn dom(url: &str) -> String {
    let out = chromium()
        .arg("--dump-dom")
        .arg(url)
        .output()
        .expect("chromium runs (scripts/test installs the distribution's `chromium`)");
    assert!(out.status.success(), "chromium: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// A screenshot of `url`; its width and height as the PNG header states them.
fn screenshot(url: &str, name: &str) -> (PathBuf, u32, u32) {
    let path = artifacts().join(name);
    let _ = std::fs::remove_file(&path);
    let out = chromium()
        .arg(format!("--screenshot={}", path.display()))
        .arg(url)
        .output()
        .expect("chromium runs");
    assert!(out.status.success(), "chromium: {}", text(&out));
    let png = std::fs::read(&path).unwrap();
    assert_eq!(&png[1..4], b"PNG", "{name} is a PNG");
    let be = |at: usize| u32::from_be_bytes(png[at..at + 4].try_into().unwrap());
    // A page of text and tables, not a blank one: a blank 1280×1000 PNG is a few KB; the
    // sparsest page here (one model) is about 30 KB.
    assert!(png.len() > 15_000, "{name} is {} bytes", png.len());
    (path, be(16), be(20))
}

#[test]
fn the_console_shows_models_and_runs_a_query_in_headless_chromium() {
    let dir = &movielens("ml-100k");
    let ws = Workspace::new();
    let file = ws.write(
        "ml100k.yaml",
        &format!(
            r#"model: {{name: ml100k}}
connectors:
  - {{id: ratings, type: file, path: {dir}/ratings.csv}}
  - {{id: movies, type: file, path: {dir}/movies.csv}}
  - {{id: viewers, type: file, path: {dir}/users.csv}}
fetch:
  events: SELECT user_id, item_id, timestamp FROM ratings
  items: SELECT item_id, title, year, genres FROM movies
  users: SELECT user_id, age, gender, occupation FROM viewers
policies:
  - {{name: popular, type: popular}}
  - {{name: als, type: als, factors: 32, iterations: 10,
      tuning: {{method: grid, search: {{factors: [16, 32], regularization: [0.05, 5.0]}}}}}}
  - {{name: two_tower, type: two_tower, user_features: [age, gender, occupation],
      item_features: [genres, year], batch_size: 256, epochs: 4, patience: 0}}
training: {{seed: 42, device: cpu}}
serving: {{policy: als}}
"#
        ),
    );
    ws.ok(&[
        "create-model",
        "--data-root",
        dir,
        "--file",
        file.to_str().unwrap(),
    ]);
    let srv = start(&ws);
    let base = format!("http://{}/console", srv.addr);
    let (st, page) = raw_http(&srv.addr, "GET", "/console", "text/plain", "");
    assert_eq!(st, 200);
    assert!(page.contains("/console/app.js"), "{page}");

    // The models page lists the model.
    let models = dom(&format!("{base}#/"));
    assert!(models.contains(r##"href="#/models/ml100k""##), "{models}");
    assert!(
        models.contains(r#"<span class="status ACTIVE">ACTIVE</span>"#),
        "{models}"
    );

    // The model page: the version timeline, metrics per policy, the training curve, the log.
    let model = dom(&format!("{base}#/models/ml100k"));
    for piece in [
        r#"id="timeline""#,
        r#"id="metrics""#,
        "two_tower training curve",
        r#"id="tuning-als""#,
        "TUNING",
        r#"id="log""#,
        "DEPLOYING",
    ] {
        assert!(model.contains(piece), "`{piece}` in {model}");
    }

    // The playground runs a query with parameters and shows results and the explain tables.
    let query = "SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 100) WHERE NOT seen($user_id) AND contains(item.genres, 'Drama') ORDER BY score(als) LIMIT 8";
    let url = format!(
        "{base}#/models/ml100k/playground?query={}&params={}&run=1",
        percent(query),
        percent(r#"{"user_id": "196"}"#)
    );
    let playground = dom(&url);
    assert!(!playground.contains(r#"id="error""#), "{playground}");
    let results = between(&playground, r#"<table id="results">"#, "</table>");
    assert_eq!(results.matches("<tr>").count(), 1 + 8, "{results}");
    // The rows carry the items' metadata (titles and years).
    assert!(
        results.contains("<th>title</th>") && results.contains("<th>year</th>"),
        "{results}"
    );
    let explain = between(&playground, r#"<table id="explain">"#, "</table>");
    for stage in ["filter", "retrieve", "score", "reorder", "limit"] {
        assert!(explain.contains(&format!("<td>{stage}</td>")), "{explain}");
    }
    let items = between(&playground, r#"<table id="explain-items">"#, "</table>");
    assert!(items.contains("similarity"), "{items}");
    // A wrong query shows the server's error with its location.
    let wrong = format!(
        "{base}#/models/ml100k/playground?query={}&params={}&run=1",
        percent("SELECT * FORM popular(limit = 5)"),
        percent("{}")
    );
    let page = dom(&wrong);
    let error = between(&page, r#"<div class="error" id="error">"#, "</div>");
    assert!(
        error.starts_with("400 ") && error.contains("FORM"),
        "{error}"
    );

    for (url, name) in [
        (format!("{base}#/"), "models.png"),
        (format!("{base}#/models/ml100k"), "model.png"),
        (url, "playground.png"),
    ] {
        let (path, w, h) = screenshot(&url, name);
        assert_eq!((w, h), (1280, 1000), "{}", path.display());
        eprintln!("screenshot: {}", path.display());
    }
}

/// The text between the first `start` and the `end` after it.
fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text
        .find(start)
        .unwrap_or_else(|| panic!("no `{start}` in {text}"))
        + start.len();
    let to = text[from..].find(end).expect(end) + from;
    &text[from..to]
}

/// `text` percent-encoded for a URL's fragment.
fn percent(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
