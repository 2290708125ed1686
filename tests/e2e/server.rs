//! The HTTP server: routes, errors, and the switch to a new ACTIVE version without a failed
//! request.

use std::time::{Duration, Instant};

use crate::server_support::{start, start_with, wait_for_version, Hammer};
use crate::support::*;

#[test]
fn routes_and_errors() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("s", 5, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let a = srv.addr.as_str();

    assert_eq!(http(a, "GET", "/healthz", None).0, 200);
    // The server describes itself; the document is the one committed in spec/.
    let (st, doc) = http(a, "GET", "/openapi.json", None);
    assert_eq!(st, 200);
    assert_eq!(doc["openapi"], "3.1.0");
    assert!(
        doc["paths"]["/models/{name}/rank"]["post"].is_object(),
        "{doc}"
    );
    let (st, models) = http(a, "GET", "/models", None);
    assert_eq!(st, 200);
    assert_eq!(models[0]["name"], "s");
    assert_eq!(models[0]["active_version"], 1);
    let (st, view) = http(a, "GET", "/models/s", None);
    assert_eq!(st, 200);
    assert!(
        view["metrics"]["policies"]["als"]["test"]["ndcg@10"].is_number(),
        "{view}"
    );

    let (st, r) = http(
        a,
        "POST",
        "/models/s/rank",
        Some(r#"{"user_id": "u1", "limit": 5, "return_metadata": true}"#),
    );
    assert_eq!(st, 200, "{r}");
    assert_eq!(r["ids"].as_array().unwrap().len(), 5);
    assert_eq!(r["scores"].as_array().unwrap().len(), 5);
    assert_eq!(r["metadata"][0]["item_id"], r["ids"][0]);
    assert!(r["metadata"][0]["title"].is_string(), "{r}");
    assert!(r.get("fallback").is_none());

    let (st, r) = http(
        a,
        "POST",
        "/models/s/rank",
        Some(r#"{"user_id": "stranger"}"#),
    );
    assert_eq!(st, 200);
    assert_eq!(r["fallback"], "popular");
    assert_eq!(r["ids"].as_array().unwrap().len(), 10);

    let (st, r) = http(a, "POST", "/models/nope/rank", Some(r#"{"user_id": "u1"}"#));
    assert_eq!(
        (st, r["error_type"].as_str()),
        (404, Some("not_found")),
        "{r}"
    );
    let (st, r) = http(
        a,
        "POST",
        "/models/s/rank",
        Some(r#"{"user_id": "u1", "limit": 100000}"#),
    );
    assert_eq!(
        (st, r["error_type"].as_str()),
        (422, Some("invalid")),
        "{r}"
    );
    let (st, r) = http(a, "POST", "/models/s/rank", Some(r#"{"user_id": "#));
    assert_eq!(
        (st, r["error_type"].as_str()),
        (400, Some("bad_request")),
        "{r}"
    );
    let (st, _) = http(a, "POST", "/models/s/rank", Some(r#"{"limit": 3}"#));
    assert_eq!(st, 422);
    // serde's type names stay out of messages.
    let (st, r) = http(
        a,
        "POST",
        "/models/s/rank",
        Some(r#"{"user_id": "u1", "limit": -1}"#),
    );
    assert_eq!(st, 422, "{r}");
    let message = r["error"].as_str().unwrap();
    assert!(
        message.contains("a whole number >= 0") && !message.contains("usize"),
        "{r}"
    );
    let (st, _) = http(a, "GET", "/models/nope", None);
    assert_eq!(st, 404);
}

#[test]
fn switches_to_new_active_version_without_failing_a_request() {
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
    let srv = start(&ws);
    let addr = srv.addr.clone();

    // Requests in a loop while version 2 trains and deploys.
    let body = r#"{"user_id": "u7", "limit": 10}"#;
    let hammer = Hammer::start(&addr, "/models/h/rank", body, 2);
    ws.write("model.yaml", &model_yaml("h", 8, 16));
    ws.ok(&["update-model", "--file", file.to_str().unwrap()]);
    // The server notices within its poll interval.
    wait_for_version(&addr, "/models/h/rank", body, 2);
    let seen = hammer.finish();
    assert!(
        seen.len() > 10,
        "the loop spanned the switch: {} requests",
        seen.len()
    );
    assert_eq!(seen.first(), Some(&1));
    assert_eq!(seen.last(), Some(&2));
    assert!(
        seen.windows(2).all(|w| w[0] <= w[1]),
        "never back to the old version"
    );
}

#[test]
fn slow_clients_and_bad_requests_get_json_errors_and_closed_sockets() {
    use std::io::{Read, Write};
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("t", 3, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start_with(
        &ws,
        &[
            "--idle-timeout-seconds",
            "1",
            "--request-timeout-seconds",
            "2",
        ],
    );
    let a = srv.addr.as_str();

    // Errors are JSON on every status.
    let (st, r) = http(a, "GET", "/no/such/route", None);
    assert_eq!(
        (st, r["error_type"].as_str()),
        (404, Some("not_found")),
        "{r}"
    );
    let (st, r) = http(a, "DELETE", "/models/t/rank", None);
    assert_eq!(
        (st, r["error_type"].as_str()),
        (405, Some("method_not_allowed")),
        "{r}"
    );
    let big = format!(r#"{{"user_id": "{}"}}"#, "x".repeat(2 << 20));
    let (st, r) = http(a, "POST", "/models/t/rank", Some(&big));
    assert_eq!(st, 413, "{r}");
    assert!(
        r["error"].as_str().unwrap().contains("1048576 bytes"),
        "{r}"
    );
    let mut s = std::net::TcpStream::connect(a).unwrap();
    s.write_all(b"POST /models/t/rank HTTP/1.1\r\nHost: x\r\nContent-Type: text/plain\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}")
        .unwrap();
    let mut resp = String::new();
    s.read_to_string(&mut resp).unwrap();
    assert!(resp.starts_with("HTTP/1.1 415"), "{resp}");
    assert!(resp.contains("unsupported_media_type"), "{resp}");

    // A connection that sends nothing, or half a request head, is closed after the idle timeout.
    for first in [&b""[..], b"GET /healthz HTTP/1.1\r\nHost:"] {
        let mut s = std::net::TcpStream::connect(a).unwrap();
        s.write_all(first).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
        let opened = Instant::now();
        let mut buf = Vec::new();
        // The server closes its end: the read ends (an error response or none, then EOF).
        let _ = s.read_to_end(&mut buf);
        assert!(
            opened.elapsed() < Duration::from_secs(30),
            "the idle connection was not closed"
        );
    }
    // A body that never completes gets 408 after the request timeout.
    let mut s = std::net::TcpStream::connect(a).unwrap();
    s.write_all(b"POST /models/t/rank HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"user_id\"")
        .unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    let mut resp = Vec::new();
    let _ = s.read_to_end(&mut resp);
    let resp = String::from_utf8_lossy(&resp);
    assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
    // And the server still answers.
    assert_eq!(http(a, "GET", "/healthz", None).0, 200);
}
