//! Starting `feedctl serve` on a free port for a test; the server stops when dropped.

use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

use crate::support::*;

pub struct Server {
    child: Child,
    pub addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn start(ws: &Workspace) -> Server {
    start_with(ws, &[])
}

/// The server with extra `serve` arguments (limits).
pub fn start_with(ws: &Workspace, extra: &[&str]) -> Server {
    let mut child = ws
        .command()
        .args(["serve", "--addr", "127.0.0.1:0", "--poll-ms", "50"])
        .args(extra)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let addr = line
        .trim()
        .strip_prefix("listening on http://")
        .expect(&line)
        .to_string();
    Server { child, addr }
}

/// A client that asks `POST path` with `body` in a loop on its own thread, asserting that
/// every answer is a 200, and records the version of each answer.
pub struct Hammer {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    answered: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    thread: std::thread::JoinHandle<Vec<u64>>,
}

impl Hammer {
    pub fn start(addr: &str, path: &str, body: &str, last: u64) -> Self {
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let stop = std::sync::Arc::new(AtomicBool::new(false));
        let answered = std::sync::Arc::new(AtomicUsize::new(0));
        let (addr, path, body) = (addr.to_string(), path.to_string(), body.to_string());
        let thread = {
            let (stop, answered) = (stop.clone(), answered.clone());
            std::thread::spawn(move || {
                let mut seen = Vec::new();
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(300);
                // Until told to stop and an answer came from version `last` (the main thread saw
                // it with its own request; this one may still be answering an older one).
                while !(stop.load(Ordering::Relaxed) && seen.last() == Some(&last))
                    && std::time::Instant::now() < deadline
                {
                    let (st, r) = http(&addr, "POST", &path, Some(&body));
                    assert_eq!(st, 200, "a request failed: {r}");
                    seen.push(r["version"].as_u64().unwrap());
                    answered.fetch_add(1, Ordering::Relaxed);
                    std::thread::sleep(std::time::Duration::from_millis(5));
                }
                seen
            })
        };
        let hammer = Self {
            stop,
            answered,
            thread,
        };
        poll(
            std::time::Duration::from_secs(60),
            "the client's first answers",
            || match hammer.answered.load(std::sync::atomic::Ordering::Relaxed) {
                n if n >= 3 => Ok(()),
                n => Err(format!("{n} answered")),
            },
        );
        hammer
    }

    /// Stops the loop (once an answer came from version `last`); the versions answered, in
    /// order.
    pub fn finish(self) -> Vec<u64> {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().expect("no request failed")
    }
}

/// Asks `POST path` until an answer comes from `version`; panics after 30 s.
pub fn wait_for_version(addr: &str, path: &str, body: &str, version: u64) {
    poll(
        std::time::Duration::from_secs(30),
        &format!("the server to answer with version {version}"),
        || {
            let (_, r) = http(addr, "POST", path, Some(body));
            match r["version"].as_u64() {
                Some(v) if v == version => Ok(()),
                other => Err(format!("answered with {other:?}")),
            }
        },
    );
}
