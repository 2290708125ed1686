//! Following a version's status log as it is written: `view-model --follow` prints it, and
//! `GET /models/{name}/status` streams it as server-sent events. Both read the registry, so they
//! see a run made by any process.

use feed_engine::registry::LogEntry;
use feed_engine::{Registry, Status, VersionInfo};

/// How often the log is read again: on a local disk, and on object storage (each read is a
/// few requests there).
const EVERY: std::time::Duration = std::time::Duration::from_millis(250);
const EVERY_REMOTE: std::time::Duration = std::time::Duration::from_secs(1);

/// A reader of one version's log that hands out each line once.
pub struct Follower {
    registry: Registry,
    model: String,
    version: u32,
    shown: usize,
}

/// What a read found: the new lines, and the version as it stands.
pub struct Read {
    pub lines: Vec<LogEntry>,
    pub version: VersionInfo,
}

impl Read {
    /// Whether the version stopped changing (no process works on it any more).
    pub fn ended(&self) -> bool {
        !self.version.status.is_running()
    }

    /// Whether it ended in ERROR.
    pub fn failed(&self) -> bool {
        self.version.status == Status::Error
    }
}

impl Follower {
    /// Follows `version` of `model`; by default the newest version being made, else the newest.
    pub fn new(registry: Registry, model: &str, version: Option<u32>) -> feed_engine::Result<Self> {
        let version = match version {
            Some(v) => registry.version(model, Some(v))?.version,
            None => {
                let versions = registry.versions(model)?;
                versions
                    .iter()
                    .rev()
                    .find(|v| v.status.is_running())
                    .or(versions.last())
                    .map(|v| v.version)
                    .ok_or_else(|| registry.unknown_model(model))?
            }
        };
        Ok(Self {
            registry,
            model: model.to_string(),
            version,
            shown: 0,
        })
    }

    pub fn version(&self) -> u32 {
        self.version
    }

    /// How long to wait between reads.
    pub fn every(&self) -> std::time::Duration {
        if self.registry.is_remote() {
            EVERY_REMOTE
        } else {
            EVERY
        }
    }

    /// Waits until the log has new lines or the version ended, reading it on the blocking
    /// pool every [`Self::every`]; `None` if a read's task died.
    pub async fn next(mut self) -> Option<(Self, feed_engine::Result<Read>)> {
        loop {
            let (back, read) = tokio::task::spawn_blocking(move || {
                let read = self.read();
                (self, read)
            })
            .await
            .ok()?;
            self = back;
            match read {
                Ok(r) if r.lines.is_empty() && !r.ended() => tokio::time::sleep(self.every()).await,
                other => return Some((self, other)),
            }
        }
    }

    /// Reads the log again: the lines not handed out yet.
    pub fn read(&mut self) -> feed_engine::Result<Read> {
        let version = self.registry.version_alone(&self.model, self.version)?;
        let lines = version.log.get(self.shown..).unwrap_or_default().to_vec();
        self.shown = version.log.len().max(self.shown);
        Ok(Read { lines, version })
    }
}
