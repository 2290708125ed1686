//! The bad-input suite: what a careless or hostile user sends, across the model file, its SQL,
//! FeedQL, HTTP and the CLI. Every case asserts three things: the status (exit code or HTTP
//! status), that the message names the place (file:line, the query span, the field, the flag),
//! and that the ACTIVE version still answers afterwards, unchanged.
//!
//! A case is data: its input, the status, the place, and fragments the message must hold. To
//! add one, add a row; the runner does the rest.

use serde_json::{json, Value};

use crate::server_support;
use crate::support::*;

/// The model every case starts from: it is ACTIVE before the first case and after each.
const GOOD: &str = r#"model: {name: m, description: synthetic}
connectors:
  - {id: ratings, type: file, path: data/ratings.csv}
  - {id: items, type: file, path: data/items.csv}
fetch:
  events: |
    SELECT user_id, item_id, timestamp,
           CASE WHEN rating >= 4 THEN 'like' ELSE 'view' END AS event_type
    FROM ratings
  items: SELECT item_id, title, genre, year FROM items
policies:
  - {name: popular, type: popular}
  - {name: als, type: als, factors: 8, iterations: 3, regularization: 0.05, alpha: 5}
value_model:
  weights: {als: 1, popular: 0.1}
queries:
  recent:
    query: SELECT * FROM popular(limit = 100) WHERE item.year >= $since LIMIT 10
    params: {since: 1990}
serving:
  policy: als
"#;

/// `GOOD` with `from` replaced by `to`; `from` must occur (a case that edits nothing would pass
/// for the wrong reason).
fn edit(from: &str, to: &str) -> String {
    assert!(GOOD.contains(from), "the good file has no `{from}`");
    GOOD.replacen(from, to, 1)
}

/// `GOOD` with `extra` lines inserted after the line that starts with `after`.
fn insert_after(after: &str, extra: &str) -> String {
    let at = GOOD.find(after).expect("anchor") + after.len();
    let end = at + GOOD[at..].find('\n').unwrap() + 1;
    format!("{}{extra}{}", &GOOD[..end], &GOOD[end..])
}

enum Input {
    /// A model file given to `update-model` (and so to every check of `validate`).
    File(String),
    /// `feedctl` with these arguments; `{dir}` is the workspace.
    Cli(Vec<String>),
    /// `POST /query` for model `m` with this FeedQL text and parameters.
    Query(&'static str, Value),
    /// A raw HTTP request: method, path, content type, body.
    Http(&'static str, &'static str, &'static str, String),
}

/// Where the message must say the mistake is.
enum Place {
    /// `model.yaml:<line>:` (a file case) or a field path in the message.
    Line(u32),
    /// The query span: the text at the reported `location.start..end` starts with this.
    Span(&'static str),
    /// The JSON error's `field`.
    Field(&'static str),
    /// Text the message must contain: a flag, a path, a model name.
    Text(&'static str),
}

struct Case {
    name: &'static str,
    input: Input,
    /// Exit code for files and the CLI, HTTP status otherwise.
    status: u16,
    place: Place,
    says: &'static [&'static str],
}

fn case(
    name: &'static str,
    input: Input,
    status: u16,
    place: Place,
    says: &'static [&'static str],
) -> Case {
    Case {
        name,
        input,
        status,
        place,
        says,
    }
}

fn model_file_cases() -> Vec<Case> {
    use Input::File;
    use Place::Line;
    // Nested aliases in a saved query's defaults: nine to the eighth values from eight lines.
    let mut bomb = String::from("    params:\n      since: &a [1, 1, 1, 1, 1, 1, 1, 1, 1]\n");
    for (i, pair) in ["ab", "bc", "cd", "de", "ef", "fg", "gh"]
        .iter()
        .enumerate()
    {
        let (from, to) = (&pair[..1], &pair[1..]);
        bomb.push_str(&format!(
            "      s{i}: &{to} [{}]\n",
            vec![format!("*{from}"); 9].join(", ")
        ));
    }
    let billion_laughs = edit("    params: {since: 1990}\n", &bomb);
    vec![
        case("misspelled key", File(edit("iterations: 3", "iteratons: 3")), 2, Line(13),
            &["unknown field `iteratons`", "did you mean `iterations`?"]),
        case("text for a number", File(edit("factors: 8", "factors: eight")), 2, Line(13),
            &["factors"]),
        case("negative size", File(edit("factors: 8", "factors: -5")), 2, Line(13),
            &["factors", "-5"]),
        case("tab indentation", File(edit("  - {name: popular", "\t- {name: popular")), 2,
            Line(12), &["tab"]),
        case("a list at the top", File("- a\n- b\n".into()), 2, Line(1), &["mapping"]),
        case("duplicate key", File(edit("factors: 8,", "factors: 8, factors: 9,")), 2,
            Line(13), &["factors"]),
        case("unknown policy type", File(edit("type: als", "type: alz")), 2, Line(13),
            &["alz", "als"]),
        case("no model name", File(edit("model: {name: m, description: synthetic}",
            "model: {description: synthetic}")), 2, Line(1), &["name"]),
        case("two policies of one name", File(edit("{name: als,", "{name: popular,")), 2,
            Line(13), &["popular"]),
        case("serving an unknown policy", File(edit("  policy: als", "  policy: alss")), 2,
            Line(21), &["alss", "did you mean `als`?"]),
        case("weight on an unknown output", File(edit("{als: 1,", "{alz: 1,")), 2, Line(15),
            &["alz"]),
        case("value expression over text", File(edit("  weights: {als: 1, popular: 0.1}",
            "  expression: \"als * item.title\"")), 2, Line(15), &["value_model.expression"]),
        case("saved query syntax", File(edit("item.year >= $since", "item.year >=")), 2,
            Line(18), &["queries.recent"]),
        case("saved query default of the wrong type", File(edit("{since: 1990}",
            "{since: soon}")), 2, Line(19), &["queries.recent.params.since", "number"]),
        case("saved query default LIMIT out of range", File(insert_after("    params:",
            "  top:\n    query: SELECT * LIMIT $n\n    params: {n: 0}\n")), 2, Line(22),
            &["queries.top.params.n", "LIMIT"]),
        case("unknown connector type", File(edit("type: file, path: data/ratings.csv",
            "type: fyle, path: data/ratings.csv")), 2, Line(3), &["fyle"]),
        case("missing data file", File(edit("data/ratings.csv", "data/nope.csv")), 2,
            Line(3), &["nope.csv"]),
        case("data outside the roots", File(edit("data/ratings.csv", "/etc/passwd")), 2,
            Line(3), &["--data-root", "FEED_DATA_ROOTS"]),
        case("climbing out with ..", File(edit("data/ratings.csv", "../../../../etc/passwd")),
            2, Line(3), &["--data-root"]),
        case("a glob outside the roots", File(edit("data/ratings.csv", "/etc/*")), 2, Line(3),
            &["--data-root"]),
        case("fetch memory limit in words", File(insert_after("  items: SELECT",
            "  memory_limit: lots\n")), 2, Line(11), &["fetch.memory_limit", "512MB"]),
        case("fetch timeout of zero", File(insert_after("  items: SELECT",
            "  timeout_seconds: 0\n")), 2, Line(11), &["fetch.timeout_seconds", "at least 1"]),
        case("training memory limit in words", File(format!("{GOOD}training:\n  memory_limit: 12 parsecs\n")),
            2, Line(23), &["training.memory_limit", "amount of memory"]),
        case("a SASRec that cannot fit in memory", File(insert_after("  - {name: als,",
            "  - {name: seq, type: sasrec, hidden: 4096, max_seq_len: 4096, layers: 2, batch_size: 128}\n")),
            2, Line(14), &["policies[2]", "training.memory_limit", "GB", "attention maps"]),
        case("heads that do not divide hidden", File(insert_after("  - {name: als,",
            "  - {name: seq, type: sasrec, hidden: 64, heads: 5}\n")), 2, Line(14),
            &["heads"]),
        case("unknown training device", File(format!("{GOOD}training:\n  device: tpu\n")), 2,
            Line(23), &["tpu", "did you mean `cpu`?"]),
        case("an alias bomb", File(billion_laughs), 2, Line(20), &["aliases"]),
        case("an empty file", File(String::new()), 2, Line(1), &["empty"]),
    ]
}

fn sql_cases() -> Vec<Case> {
    use Input::File;
    use Place::Line;
    vec![
        case(
            "SQL syntax error inside the block",
            File(edit("    FROM ratings\n", "    FROM ratings WHERE\n")),
            2,
            Line(9),
            &["fetch.events"],
        ),
        case(
            "misspelled column",
            File(edit(
                "SELECT user_id, item_id, timestamp,",
                "SELECT usr_id, item_id, timestamp,",
            )),
            2,
            Line(7),
            &["usr_id"],
        ),
        case(
            "unknown table",
            File(edit("    FROM ratings\n", "    FROM ratngs\n")),
            2,
            Line(9),
            &["ratngs", "did you mean `ratings`?"],
        ),
        case(
            "a write statement",
            File(edit(
                "  items: SELECT item_id, title, genre, year FROM items",
                "  items: DELETE FROM items",
            )),
            2,
            Line(10),
            &["fetch.items", "DELETE"],
        ),
        case(
            "events without user_id",
            File(edit(
                "SELECT user_id, item_id, timestamp,",
                "SELECT item_id, timestamp,",
            )),
            2,
            Line(7),
            &["user_id"],
        ),
        case(
            "items without item_id",
            File(edit(
                "SELECT item_id, title, genre, year FROM items",
                "SELECT title, genre, year FROM items",
            )),
            2,
            Line(10),
            &["item_id"],
        ),
        case(
            "a timestamp that is text",
            File(edit(
                "SELECT user_id, item_id, timestamp,",
                "SELECT user_id, item_id, 'soon' AS timestamp,",
            )),
            2,
            Line(7),
            &["`timestamp` is text"],
        ),
        case(
            "a function that does not exist",
            File(edit(
                "SELECT user_id, item_id, timestamp,",
                "SELECT user_id, item_id, frobnicate(timestamp) AS timestamp,",
            )),
            2,
            Line(7),
            &["frobnicate"],
        ),
    ]
}

fn feedql_cases() -> Vec<Case> {
    use Input::Query;
    use Place::{Field, Span};
    vec![
        case(
            "misspelled keyword",
            Query(
                "SELECT * FROM popular(limit = 10) WHER item.year > 1990",
                json!({}),
            ),
            400,
            Span("WHER"),
            &[],
        ),
        case(
            "unknown retriever",
            Query("SELECT * FROM populr(limit = 10)", json!({})),
            400,
            Span("populr"),
            &["popular"],
        ),
        case(
            "unknown column",
            Query("SELECT * WHERE item.yeer > 1990", json!({})),
            400,
            Span("yeer"),
            &["year"],
        ),
        case(
            "text compared with a number",
            Query("SELECT * WHERE item.title > 1990", json!({})),
            400,
            Span("item.title"),
            &["TRY_CAST"],
        ),
        case(
            "unknown function",
            Query("SELECT * WHERE seenn($u)", json!({"u": "u1"})),
            400,
            Span("seenn"),
            &["seen"],
        ),
        case(
            "unknown policy to score by",
            Query("SELECT * ORDER BY score(alss) DESC", json!({})),
            400,
            Span("alss"),
            &["als"],
        ),
        case(
            "similarity on a policy without vectors",
            Query(
                "SELECT * FROM similarity(embedding = 'popular', user = $u, limit = 10)",
                json!({"u": "u1"}),
            ),
            400,
            Span("'popular'"),
            &["vectors"],
        ),
        case(
            "unterminated string",
            Query("SELECT * WHERE item.genre = 'g1", json!({})),
            400,
            Span(""),
            &[],
        ),
        case(
            "LIMIT zero",
            Query("SELECT * LIMIT 0", json!({})),
            400,
            Span("0"),
            &["LIMIT"],
        ),
        case(
            "a retriever limit beyond reason",
            Query("SELECT * FROM popular(limit = 1000000000000)", json!({})),
            400,
            Span("1000000000000"),
            &["at most 1000000"],
        ),
        case(
            "a missing parameter",
            Query("SELECT * WHERE item.year >= $since", json!({})),
            422,
            Field("$since"),
            &["$since"],
        ),
        case(
            "a parameter of the wrong type",
            Query(
                "SELECT * WHERE item.year >= $since",
                json!({"since": "soon"}),
            ),
            422,
            Field("$since"),
            &["number"],
        ),
        case(
            "a string where a score is needed",
            Query("SELECT * ORDER BY score($e) DESC", json!({"e": "als"})),
            422,
            Field("$e"),
            &["$e"],
        ),
        case(
            "a number where ids are needed",
            Query(
                "SELECT * FROM popular(limit = 50) REORDER BY pin(ids = [$p], positions = [1])",
                json!({"p": true}),
            ),
            422,
            Field("$p"),
            &["$p"],
        ),
        case(
            "a parameter that is a nested object",
            Query(
                "SELECT * WHERE item.year >= $since",
                json!({"since": {"a": 1}}),
            ),
            422,
            Field("$since"),
            &[],
        ),
    ]
}

fn http_cases() -> Vec<Case> {
    use Input::Http;
    use Place::{Field, Text};
    let q = |body: Value| body.to_string();
    vec![
        case(
            "malformed JSON",
            Http("POST", "/query", "application/json", "{\"model\": ".into()),
            400,
            Text("line 1"),
            &[],
        ),
        case(
            "not JSON at all",
            Http("POST", "/query", "text/plain", "hello".into()),
            415,
            Text("application/json"),
            &[],
        ),
        case(
            "a body over the limit",
            Http(
                "POST",
                "/query",
                "application/json",
                format!(
                    "{{\"model\": \"m\", \"query\": \"{}\"}}",
                    "x".repeat(2 << 20)
                ),
            ),
            413,
            Text("1 MiB"),
            &[],
        ),
        case(
            "an unknown path",
            Http("GET", "/nope", "application/json", String::new()),
            404,
            Text("/nope"),
            &[],
        ),
        case(
            "a wrong method",
            Http("DELETE", "/query", "application/json", String::new()),
            405,
            Text("DELETE"),
            &[],
        ),
        case(
            "a negative limit",
            Http(
                "POST",
                "/query",
                "application/json",
                q(json!({"model": "m", "query": "SELECT *", "limit": -1})),
            ),
            422,
            Field("limit"),
            &["limit"],
        ),
        case(
            "a limit over the server's",
            Http(
                "POST",
                "/query",
                "application/json",
                q(json!({"model": "m", "query": "SELECT *", "limit": 100000})),
            ),
            422,
            Field("limit"),
            &[],
        ),
        case(
            "a misspelled body field",
            Http(
                "POST",
                "/query",
                "application/json",
                q(json!({"model": "m", "query": "SELECT *", "limt": 3})),
            ),
            422,
            Field("limt"),
            &["did you mean `limit`?"],
        ),
        case(
            "an unknown model",
            Http(
                "POST",
                "/query",
                "application/json",
                q(json!({"model": "nope", "query": "SELECT *"})),
            ),
            404,
            Text("nope"),
            &[],
        ),
        case(
            "an unknown saved query",
            Http(
                "POST",
                "/models/m/query",
                "application/json",
                q(json!({"saved": "recnt"})),
            ),
            404,
            Text("recnt"),
            &["recent"],
        ),
        case(
            "both a query and a saved one",
            Http(
                "POST",
                "/models/m/query",
                "application/json",
                q(json!({"saved": "recent", "query": "SELECT *"})),
            ),
            422,
            Text("saved"),
            &[],
        ),
        case(
            "neither a query nor a saved one",
            Http(
                "POST",
                "/query",
                "application/json",
                q(json!({"model": "m"})),
            ),
            422,
            Text("query"),
            &[],
        ),
        case(
            "no model named",
            Http(
                "POST",
                "/query",
                "application/json",
                q(json!({"query": "SELECT *"})),
            ),
            422,
            Field("model"),
            &["/models/"],
        ),
        case(
            "params that are not an object",
            Http(
                "POST",
                "/query",
                "application/json",
                q(json!({"model": "m", "query": "SELECT *", "params": [1, 2]})),
            ),
            422,
            Field("params"),
            &[],
        ),
        case(
            "rank without a user",
            Http(
                "POST",
                "/models/m/rank",
                "application/json",
                q(json!({"limit": 3})),
            ),
            422,
            Field("user_id"),
            &[],
        ),
        case(
            "rank on an unknown model",
            Http(
                "POST",
                "/models/nope/rank",
                "application/json",
                q(json!({"user_id": "u1"})),
            ),
            404,
            Text("nope"),
            &[],
        ),
        case(
            "view of an unknown model",
            Http("GET", "/models/nope", "application/json", String::new()),
            404,
            Text("nope"),
            &[],
        ),
    ]
}

fn cli_cases() -> Vec<Case> {
    use Place::Text;
    let cli = |args: &[&str]| Input::Cli(args.iter().map(|s| s.to_string()).collect());
    vec![
        case(
            "a misspelled command",
            cli(&["creat-model"]),
            2,
            Text("creat-model"),
            &["create-model"],
        ),
        case(
            "a missing --file",
            cli(&["validate"]),
            2,
            Text("--file"),
            &[],
        ),
        case(
            "a file that does not exist",
            cli(&["validate", "--file", "{dir}/nope.yaml"]),
            2,
            Text("nope.yaml"),
            &["--file"],
        ),
        case(
            "a folder as the file",
            cli(&["validate", "--file", "{dir}/data"]),
            2,
            Text("data"),
            &[],
        ),
        case(
            "a CSV as the file",
            cli(&["validate", "--file", "{dir}/data/ratings.csv"]),
            2,
            Text("ratings.csv"),
            &[],
        ),
        case(
            "viewing an unknown model",
            cli(&["view-model", "--model-name", "nope"]),
            2,
            Text("nope"),
            &[],
        ),
        case(
            "deleting an unknown model",
            cli(&["delete-model", "--model-name", "nope"]),
            2,
            Text("nope"),
            &[],
        ),
        case(
            "a negative --limit",
            cli(&[
                "rank",
                "--model-name",
                "m",
                "--user-id",
                "u1",
                "--limit",
                "-1",
            ]),
            2,
            Text("--limit"),
            &[],
        ),
        case(
            "creating a model that exists",
            cli(&["create-model", "--file", "{dir}/good.yaml"]),
            2,
            Text("already exists"),
            &["update-model"],
        ),
        case(
            "a query with a syntax error",
            cli(&["query", "--model-name", "m", "--query", "SELECT * WHER 1"]),
            2,
            Text("WHER"),
            &[],
        ),
        case(
            "an address that is not one",
            cli(&["serve", "--addr", "localhost:notaport"]),
            2,
            Text("--addr"),
            &[],
        ),
        case(
            "updating a model that does not exist",
            cli(&["update-model", "--file", "{dir}/other.yaml"]),
            2,
            Text("other"),
            &["create-model"],
        ),
    ]
}

/// The answer of the ACTIVE version to a fixed query: what no case may change.
fn active_answer(addr: &str) -> Value {
    let (status, body) = http(
        addr,
        "POST",
        "/query",
        Some(r#"{"model": "m", "query": "SELECT * FROM popular(limit = 20) LIMIT 5"}"#),
    );
    assert_eq!(status, 200, "the ACTIVE version stopped answering: {body}");
    // Every page has an id of its own; the rest must not change.
    let mut body = body;
    body.as_object_mut().unwrap().remove("request_id");
    body
}

#[test]
fn every_bad_input_is_refused_where_it_is_and_the_active_version_keeps_answering() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let good = ws.write("good.yaml", GOOD);
    ws.ok(&["create-model", "--file", good.to_str().unwrap()]);
    ws.write("other.yaml", &GOOD.replace("name: m,", "name: other,"));
    let server = server_support::start(&ws);
    let before = active_answer(&server.addr);
    let dir = ws.dir.path().to_str().unwrap().to_string();

    let groups = [
        ("model file", model_file_cases()),
        ("SQL", sql_cases()),
        ("FeedQL", feedql_cases()),
        ("HTTP", http_cases()),
        ("CLI", cli_cases()),
    ];
    let total: usize = groups.iter().map(|g| g.1.len()).sum();
    assert!(total >= 60, "the suite has {total} cases");
    let mut failures = Vec::new();
    for (group, cases) in &groups {
        for c in cases {
            let (status, message, span_text) = run(&ws, &server.addr, &dir, &c.input);
            let mut wrong = Vec::new();
            if status != c.status {
                wrong.push(format!("status {status}, expected {}", c.status));
            }
            match &c.place {
                Place::Line(line) => {
                    let at = format!("model.yaml:{line}:");
                    if !message.contains(&at) {
                        wrong.push(format!("does not point at {at}"));
                    }
                }
                Place::Span(start) => match &span_text {
                    Some(s) if s.starts_with(start) => {}
                    other => wrong.push(format!("span {other:?}, expected one at `{start}`")),
                },
                Place::Field(field) => {
                    if !message.contains(&format!("\"field\":\"{field}\"")) {
                        wrong.push(format!("does not name the field `{field}`"));
                    }
                }
                Place::Text(t) => {
                    if !message.contains(t) {
                        wrong.push(format!("does not mention `{t}`"));
                    }
                }
            }
            for piece in c.says {
                if !message.contains(piece) {
                    wrong.push(format!("does not say `{piece}`"));
                }
            }
            // No Rust type names, no panics, no echo of a whole file.
            for leak in ["RawModelFile", "usize", "panicked", "ParserError("] {
                if message.contains(leak) {
                    wrong.push(format!("leaks `{leak}`"));
                }
            }
            if message.len() > 4000 {
                wrong.push(format!("is {} bytes long", message.len()));
            }
            if active_answer(&server.addr) != before {
                wrong.push("changed what the ACTIVE version answers".into());
            }
            if !wrong.is_empty() {
                failures.push(format!(
                    "[{group}] {}: {}\n    message: {message}",
                    c.name,
                    wrong.join("; ")
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {total} cases failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Whatever failed, version 1 is still the ACTIVE one.
    let view = ws.view_json("m");
    assert_eq!(view["active_version"], 1, "{view}");
}

/// Runs one input: its status, its message (stderr, or the response body), and for a query
/// error the text of the query its span covers.
fn run(ws: &Workspace, addr: &str, dir: &str, input: &Input) -> (u16, String, Option<String>) {
    let feedctl = |args: &[&str]| {
        let out = ws.feedctl(args);
        let message = String::from_utf8_lossy(&out.stderr).to_string();
        (out.status.code().unwrap_or(-1) as u16, message, None)
    };
    match input {
        Input::File(text) => {
            // Beside the good file, so that its relative data paths hold.
            let file = ws.write("model.yaml", text);
            feedctl(&["update-model", "--file", file.to_str().unwrap()])
        }
        Input::Cli(args) => {
            let args: Vec<String> = args.iter().map(|a| a.replace("{dir}", dir)).collect();
            feedctl(&args.iter().map(String::as_str).collect::<Vec<_>>())
        }
        Input::Query(text, params) => {
            let body = json!({"model": "m", "query": text, "params": params}).to_string();
            let (status, body) = http(addr, "POST", "/query", Some(&body));
            let span = body["location"]["start"]
                .as_u64()
                .zip(body["location"]["end"].as_u64());
            let span_text =
                span.map(|(s, e)| text[s as usize..(e as usize).max(s as usize)].to_string());
            (status, body.to_string(), span_text)
        }
        Input::Http(method, path, content_type, body) => {
            let (status, body) = raw_http(addr, method, path, content_type, body);
            (status, body, None)
        }
    }
}
