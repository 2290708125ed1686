//! Version statuses and the append-only status log.

use std::fmt;
use std::io::Write;
use std::path::Path;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{IoContext, Result};

/// Where a version is in its life. SCHEDULING → FETCHING → (TUNING →) TRAINING → DEPLOYING →
/// ACTIVE, or ERROR with a reason; a version that was ACTIVE and was replaced is INACTIVE.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Status {
    Scheduling,
    Fetching,
    /// Trials of the policies' `tuning:` searches (only when a policy has one).
    Tuning,
    Training,
    Deploying,
    Active,
    Inactive,
    Error,
}

impl Status {
    /// Every status, in life order (a state-set metric has one series per status).
    pub const ALL: [Status; 8] = [
        Status::Scheduling,
        Status::Fetching,
        Status::Tuning,
        Status::Training,
        Status::Deploying,
        Status::Active,
        Status::Inactive,
        Status::Error,
    ];

    /// Whether a process is (or should be) working on the version.
    pub fn is_running(self) -> bool {
        matches!(
            self,
            Status::Scheduling
                | Status::Fetching
                | Status::Tuning
                | Status::Training
                | Status::Deploying
        )
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Status::Scheduling => "SCHEDULING",
            Status::Fetching => "FETCHING",
            Status::Tuning => "TUNING",
            Status::Training => "TRAINING",
            Status::Deploying => "DEPLOYING",
            Status::Active => "ACTIVE",
            Status::Inactive => "INACTIVE",
            Status::Error => "ERROR",
        };
        f.pad(s)
    }
}

/// One line of a version's status log.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogEntry {
    pub ts: DateTime<Utc>,
    pub status: Status,
    pub message: String,
}

/// Appends one entry as one JSON line, durably: `view-model` in another terminal sees it, and
/// it survives a crash of the writer.
pub fn append(path: &Path, status: Status, message: &str) -> Result<()> {
    let line = line(status, message);
    let ctx = || format!("appending to {}", path.display());
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .ctx(ctx)?;
    f.write_all(line.as_bytes()).ctx(ctx)?;
    f.sync_data().ctx(ctx)
}

/// Reads a status log; a torn last line (a crash mid-write) is ignored.
pub fn read(path: &Path) -> Result<Vec<LogEntry>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(crate::Error::storage(
                format!("reading {}", path.display()),
                e,
            ))
        }
    };
    Ok(parse(&text))
}

/// One entry as one JSON line, stamped now.
pub fn line(status: Status, message: &str) -> String {
    let entry = LogEntry {
        ts: Utc::now(),
        status,
        message: message.to_string(),
    };
    let mut line = serde_json::to_string(&entry).expect("log entry serialises");
    line.push('\n');
    line
}

/// The entries of a log's text; a torn last line is ignored.
pub fn parse(text: &str) -> Vec<LogEntry> {
    text.lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}
