//! Shared helpers: running feedctl, synthetic data with planted structure, a tiny HTTP client.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

pub fn feedctl_bin() -> &'static str {
    env!("CARGO_BIN_EXE_feedctl")
}

/// A path in the repository, read when the test runs (not baked in when it compiles: a build
/// cache shared between clones at other paths would otherwise point elsewhere).
pub fn repo_path(rel: &str) -> String {
    let cli = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    format!("{cli}/../{rel}")
}

/// The folder of a MovieLens dataset (`ml-100k`, `ml-1m`) as `examples/movielens/fetch_data.py`
/// writes it; panics with what to run when it is missing.
pub fn movielens(name: &str) -> String {
    let dir = repo_path(&format!("examples/movielens/data/{name}"));
    assert!(
        Path::new(&dir).join("ratings.csv").exists(),
        "{dir} is missing: run `python3 examples/movielens/fetch_data.py` (scripts/test does)"
    );
    dir
}

/// A temp folder with a home, a data folder and a model file.
pub struct Workspace {
    pub dir: tempfile::TempDir,
    /// A home elsewhere than `<dir>/home` (a URL on object storage).
    home: Option<String>,
    /// Environment for every feedctl it runs.
    pub env: Vec<(String, String)>,
}

impl Workspace {
    pub fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
            home: None,
            env: Vec::new(),
        }
    }

    /// A workspace whose home is `url`, with `env` for every command (credentials, the cache).
    pub fn with_home(url: String, env: Vec<(String, String)>) -> Self {
        Self {
            home: Some(url),
            env,
            ..Self::new()
        }
    }

    pub fn home(&self) -> PathBuf {
        match &self.home {
            Some(url) => PathBuf::from(url),
            None => self.dir.path().join("home"),
        }
    }

    /// A feedctl command with the workspace's home and environment.
    pub fn command(&self) -> Command {
        let mut c = Command::new(feedctl_bin());
        c.arg("--home").arg(self.home());
        c.envs(self.env.iter().map(|(k, v)| (k, v)));
        c
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    pub fn write(&self, rel: &str, text: &str) -> PathBuf {
        let p = self.path(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, text).unwrap();
        p
    }

    pub fn feedctl(&self, args: &[&str]) -> Output {
        self.command().args(args).output().unwrap()
    }

    /// Runs feedctl and asserts success; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        let out = self.feedctl(args);
        assert!(
            out.status.success(),
            "feedctl {args:?} failed ({:?}):\nstdout:\n{}\nstderr:\n{}",
            out.status.code(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }

    /// Runs feedctl and asserts that it refuses with exit 2 and a message holding every piece;
    /// returns the message.
    pub fn refused(&self, args: &[&str], pieces: &[&str]) -> String {
        let out = self.feedctl(args);
        let err = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(out.status.code(), Some(2), "feedctl {args:?}: {err}");
        for piece in pieces {
            assert!(err.contains(piece), "expected `{piece}` in {err}");
        }
        err
    }

    pub fn view_json(&self, model: &str) -> serde_json::Value {
        serde_json::from_str(&self.ok(&["view-model", "--model-name", model, "--json"])).unwrap()
    }
}

/// A version's metrics (`view-model --json`) without what the machine measured (training time
/// and resident memory), so that two runs over the same data compare equal.
pub fn comparable_metrics(view: &serde_json::Value) -> serde_json::Value {
    let mut m = view["metrics"].clone();
    let reference = m["reference"].clone();
    let policies = m["policies"].as_object_mut().unwrap();
    policies.insert("(reference)".into(), reference);
    for p in policies.values_mut() {
        let p = p.as_object_mut().unwrap();
        p.remove("train_seconds");
        p["memory"]
            .as_object_mut()
            .unwrap()
            .remove("measured_bytes");
    }
    m.as_object_mut().unwrap().remove("reference");
    m
}

/// Synthetic interactions with planted structure: users belong to one of `clusters` taste
/// groups and mostly pick items of their group, so a personalised model beats popularity by
/// far. Deterministic for a seed.
pub struct Synth {
    pub users: usize,
    pub items: usize,
    pub clusters: usize,
    pub events_per_user: usize,
    pub seed: u64,
}

impl Synth {
    pub fn small() -> Self {
        Self {
            users: 300,
            items: 200,
            clusters: 10,
            events_per_user: 25,
            seed: 7,
        }
    }

    /// Writes `ratings.csv` (user_id,item_id,rating,timestamp) and `items.csv`
    /// (item_id,title,genre,year) into `dir`.
    pub fn write(&self, dir: &Path) {
        std::fs::create_dir_all(dir).unwrap();
        let mut s = self.seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        let mut next = move || {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            s
        };
        let per = self.items / self.clusters;
        let mut ratings = String::from("user_id,item_id,rating,timestamp\n");
        for u in 0..self.users {
            let c = u % self.clusters;
            let mut t = 1_600_000_000u64 + (next() % 1000);
            for _ in 0..self.events_per_user {
                let item = if next() % 10 < 8 {
                    // Own group, skewed towards its first items.
                    let r = (next() % per as u64) as usize;
                    let r2 = (next() % per as u64) as usize;
                    c * per + r.min(r2)
                } else {
                    let r = (next() % self.items as u64) as usize;
                    let r2 = (next() % self.items as u64) as usize;
                    r.min(r2)
                };
                t += 60 + next() % 3600;
                ratings.push_str(&format!("u{u},i{item},{},{t}\n", 1 + next() % 5));
            }
        }
        std::fs::write(dir.join("ratings.csv"), ratings).unwrap();
        let mut items = String::from("item_id,title,genre,year\n");
        for i in 0..self.items {
            items.push_str(&format!("i{i},Item {i},g{},{}\n", i / per, 1950 + i % 70));
        }
        std::fs::write(dir.join("items.csv"), items).unwrap();
    }
}

/// A model file over `data/` with popularity and ALS.
pub fn model_yaml(name: &str, als_iterations: usize, factors: usize) -> String {
    format!(
        r#"model: {{name: {name}, description: synthetic}}
connectors:
  - {{id: ratings, type: file, path: data/ratings.csv}}
  - {{id: items, type: file, path: data/items.csv}}
fetch:
  events: SELECT user_id, item_id, timestamp FROM ratings
  items: SELECT item_id, title, genre, year FROM items
policies:
  - {{name: popular, type: popular}}
  - {{name: als, type: als, factors: {factors}, iterations: {als_iterations}, regularization: 0.05, alpha: 5}}
"#
    )
}

/// One HTTP/1.1 request; returns (status, body as JSON).
pub fn http(addr: &str, method: &str, path: &str, body: Option<&str>) -> (u16, serde_json::Value) {
    let (status, _, body) = request(
        addr,
        method,
        path,
        &[("Content-Type", "application/json")],
        body.unwrap_or(""),
    );
    let json = serde_json::from_str(&body).unwrap_or(serde_json::Value::String(body));
    (status, json)
}

/// One HTTP/1.1 request sent as given (any content type, a body the server may refuse before
/// reading it all); the status and the body as text.
pub fn raw_http(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &str,
) -> (u16, String) {
    let (status, _, body) = request(addr, method, path, &[("Content-Type", content_type)], body);
    (status, body)
}

/// One HTTP/1.1 request with the given header lines; the status, the response head and the
/// body as text (a chunked body as sent, chunk sizes included).
pub fn request(
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> (u16, String, String) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\n");
    for (k, v) in headers {
        head.push_str(&format!("{k}: {v}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    stream.write_all(head.as_bytes()).unwrap();
    // The server may answer (413) before reading a large body; a reset while writing is fine.
    let _ = stream.write_all(body.as_bytes());
    let mut resp = Vec::new();
    let _ = stream.read_to_end(&mut resp);
    let text = String::from_utf8_lossy(&resp).to_string();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    (status, head.to_string(), body.to_string())
}

/// Polls `check` every 50 ms until it yields a value. Tests that wait on another process or
/// server use it instead of assuming how far the other side has got (CI machines are loaded).
/// Panics after `timeout` with `what` and the last thing `check` reported.
pub fn poll<T>(timeout: Duration, what: &str, mut check: impl FnMut() -> Result<T, String>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match check() {
            Ok(v) => return v,
            Err(last) => assert!(
                std::time::Instant::now() < deadline,
                "timed out after {timeout:?} waiting for {what}: {last}"
            ),
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A command's stdout and stderr, together.
pub fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Every file under `dir` that holds `needle`.
pub fn files_holding(dir: &Path, needle: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let bytes = std::fs::read(&p).unwrap();
                if bytes.windows(needle.len()).any(|w| w == needle.as_bytes()) {
                    found.push(p.display().to_string());
                }
            }
        }
    }
    found
}

/// A connector failure as a user meets it: exit 2, a message holding each of `pieces`, and none
/// of `secrets`.
pub fn assert_refused_without_secrets(
    out: &Output,
    context: &str,
    pieces: &[&str],
    secrets: &[&str],
) {
    let said = text(out);
    assert_eq!(out.status.code(), Some(2), "{context}: {said}");
    for piece in pieces {
        assert!(said.contains(piece), "{context}: no `{piece}` in {said}");
    }
    for secret in secrets {
        assert!(!said.contains(secret), "{context}: the secret in {said}");
    }
}
