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
