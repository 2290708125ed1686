//! The registry: models and their versions in a home folder.
//!
//! ```text
//! <home>/models/<model>/ACTIVE                 {"version": N}: replaced atomically
//! <home>/models/<model>/.lock                  serialises pointer moves and deletes
//! <home>/models/<model>/versions/000001/
//!     model.yaml      the file this version was made from
//!     status.jsonl    the status log (append-only)
//!     run.lock        locked (flock) by the process working on the version
//!     manifest.json   what serving needs to know, written at DEPLOYING
//!     metrics.json    the evaluation report
//!     dataset/ policies/<name>/   artifacts
//! ```
//!
//! A version is worked on by exactly one process, which holds `run.lock` until it ends. A
//! reader that finds a version in a running status whose lock is free knows its process died:
//! it is reported — and recorded — as ERROR (interrupted). The ACTIVE pointer is the truth
//! about which version serves; it only ever names a version whose artifacts are complete.

mod status;

use std::fs::File;
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use status::{LogEntry, Status};

use crate::config::resolve::is_valid_name;
use crate::error::{did_you_mean, Error, IoContext, Result};
use crate::store;

/// The home folder.
#[derive(Debug, Clone)]
pub struct Registry {
    home: PathBuf,
}

/// A version as a reader sees it.
#[derive(Debug, Clone)]
pub struct VersionInfo {
    pub model: String,
    pub version: u32,
    pub status: Status,
    /// Why it is in ERROR, or what it is doing now.
    pub message: String,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub log: Vec<LogEntry>,
    pub dir: PathBuf,
}

#[derive(Serialize, Deserialize)]
struct Pointer {
    version: u32,
    since: DateTime<Utc>,
}

impl Registry {
    /// Opens (and creates if needed) a home folder.
    pub fn open(home: &Path) -> Result<Self> {
        std::fs::create_dir_all(home.join("models"))
            .ctx(|| format!("creating home folder {}", home.display()))?;
        Ok(Self {
            home: home.to_path_buf(),
        })
    }

    pub fn home(&self) -> &Path {
        &self.home
    }

    /// The folder of `model` (its versions, locks and live event log).
    pub fn model_dir(&self, model: &str) -> PathBuf {
        self.home.join("models").join(model)
    }

    pub fn version_dir(&self, model: &str, version: u32) -> PathBuf {
        self.model_dir(model)
            .join("versions")
            .join(format!("{version:06}"))
    }

    /// The names of all models, sorted.
    pub fn models(&self) -> Result<Vec<String>> {
        let dir = self.home.join("models");
        let mut out = Vec::new();
        for entry in std::fs::read_dir(&dir).ctx(|| format!("listing {}", dir.display()))? {
            let entry = entry.ctx(|| format!("listing {}", dir.display()))?;
            if let Some(name) = entry.file_name().to_str() {
                if is_valid_name(name) && entry.path().join("versions").is_dir() {
                    out.push(name.to_string());
                }
            }
        }
        out.sort();
        Ok(out)
    }

    pub fn exists(&self, model: &str) -> bool {
        is_valid_name(model) && self.model_dir(model).join("versions").is_dir()
    }

    /// A not-found error for `model` with a did-you-mean.
    pub fn unknown_model(&self, model: &str) -> Error {
        let models = self.models().unwrap_or_default();
        let hint = did_you_mean(model, models.iter().map(String::as_str))
            .map(|m| format!("did you mean `{m}`?"))
            .or_else(|| {
                Some(if models.is_empty() {
                    "no model exists yet; run create-model".into()
                } else {
                    "see list-models".into()
                })
            });
        Error::NotFound {
            what: "model",
            name: model.to_string(),
            hint,
        }
    }

    /// The error for a model that exists but has no ACTIVE version yet.
    pub fn no_active_version(&self, model: &str) -> Error {
        Error::NotFound {
            what: "active version of model",
            name: model.to_string(),
            hint: Some("its first version is not ACTIVE yet; see view-model".into()),
        }
    }

    /// The version the ACTIVE pointer names.
    pub fn active_version(&self, model: &str) -> Result<Option<u32>> {
        let path = self.model_dir(model).join("ACTIVE");
        match std::fs::read(&path) {
            Ok(bytes) => {
                let p: Pointer = serde_json::from_slice(&bytes)
                    .map_err(|e| Error::Internal(format!("{} is corrupt: {e}", path.display())))?;
                Ok(Some(p.version))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::storage(format!("reading {}", path.display()), e)),
        }
    }

    /// All versions of a model, oldest first.
    pub fn versions(&self, model: &str) -> Result<Vec<VersionInfo>> {
        if !self.exists(model) {
            return Err(self.unknown_model(model));
        }
        let dir = self.model_dir(model).join("versions");
        let mut numbers: Vec<u32> = std::fs::read_dir(&dir)
            .ctx(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect();
        numbers.sort_unstable();
        let active = self.active_version(model)?;
        numbers
            .into_iter()
            .map(|v| self.read_version(model, v, active))
            .collect()
    }

    /// One version; `None` for the newest.
    pub fn version(&self, model: &str, version: Option<u32>) -> Result<VersionInfo> {
        let versions = self.versions(model)?;
        match version {
            None => versions
                .into_iter()
                .last()
                .ok_or_else(|| self.unknown_model(model)),
            Some(v) => versions
                .into_iter()
                .find(|i| i.version == v)
                .ok_or(Error::NotFound {
                    what: "version",
                    name: format!("{model}/{v}"),
                    hint: Some("see view-model".into()),
                }),
        }
    }

    fn read_version(&self, model: &str, version: u32, active: Option<u32>) -> Result<VersionInfo> {
        let dir = self.version_dir(model, version);
        let log_path = dir.join("status.jsonl");
        let mut log = status::read(&log_path)?;
        let last = log.last().cloned();
        let (mut status, mut message) = match &last {
            Some(e) => (e.status, e.message.clone()),
            None => (Status::Scheduling, "starting".to_string()),
        };
        if status.is_running() && !is_locked(&dir.join("run.lock")) {
            // The process working on it is gone. Record that, unless it is still starting.
            let young = last.is_none()
                && std::fs::metadata(&dir)
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|d| d.as_secs() < 30);
            if !young && active != Some(version) {
                let reason =
                    format!("interrupted: the process working on it stopped during {status}");
                if let Ok(lock) = try_lock(&dir.join("run.lock")) {
                    // Re-read under the lock, so that two readers do not both record it.
                    let fresh = status::read(&log_path)?;
                    if fresh.last().is_none_or(|e| e.status.is_running()) {
                        let _ = status::append(&log_path, Status::Error, &reason);
                    }
                    drop(lock);
                    log = status::read(&log_path)?;
                }
                status = Status::Error;
                message = reason;
            }
        }
        if active == Some(version) {
            status = Status::Active;
        } else if status == Status::Active {
            status = Status::Inactive;
            message = "replaced by a newer version".into();
        }
        Ok(VersionInfo {
            model: model.to_string(),
            version,
            status,
            message,
            created_at: log.first().map(|e| e.ts),
            updated_at: log.last().map(|e| e.ts),
            log,
            dir,
        })
    }

    /// Starts a new version: allocates its number, takes its run lock, stores the model file
    /// and records SCHEDULING. Nothing else of the model changes.
    pub fn begin(&self, model: &str, model_yaml: &str, message: &str) -> Result<VersionRun> {
        let versions = self.model_dir(model).join("versions");
        std::fs::create_dir_all(&versions).ctx(|| format!("creating {}", versions.display()))?;
        let mut next = std::fs::read_dir(&versions)
            .ctx(|| format!("listing {}", versions.display()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        // create_dir is atomic: two concurrent creates never get the same number.
        let dir = loop {
            let dir = self.version_dir(model, next);
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
                Err(e) => return Err(Error::storage(format!("creating {}", dir.display()), e)),
            }
        };
        // Blocking: the folder is new, so the only other holder can be a reader probing it.
        let lock_path = dir.join("run.lock");
        let lock = lock_file(&lock_path)?;
        lock.lock()
            .ctx(|| format!("locking {}", lock_path.display()))?;
        store::fsync_dir(&versions)?;
        let run = VersionRun {
            model: model.to_string(),
            version: next,
            dir,
            _lock: lock,
            registry: self.clone(),
        };
        store::write_atomic(&run.dir.join("model.yaml"), model_yaml.as_bytes())?;
        run.set_status(Status::Scheduling, message)?;
        Ok(run)
    }

    /// Deletes a model and all its versions. Refused while a version is being worked on.
    pub fn delete(&self, model: &str) -> Result<()> {
        if !self.exists(model) {
            return Err(self.unknown_model(model));
        }
        let Some(_writer) = self.try_writer(model)? else {
            return Err(Error::invalid(
                "model",
                format!("model `{model}` is being changed by another run; wait for it to end (or stop its process) before deleting"),
            ));
        };
        let _guard = self.lock_model(model)?;
        if let Some(v) = self.versions(model)?.iter().find(|v| v.status.is_running()) {
            return Err(Error::invalid("model", format!(
                "model `{model}` has version {} in {}; wait for it to end (or stop its process) before deleting",
                v.version, v.status
            )));
        }
        let dir = self.model_dir(model);
        let trash = self
            .home
            .join("models")
            .join(format!(".deleted-{model}-{}", std::process::id()));
        // Rename first: readers never see a half-deleted model.
        std::fs::rename(&dir, &trash).ctx(|| format!("deleting {}", dir.display()))?;
        std::fs::remove_dir_all(&trash).ctx(|| format!("deleting {}", trash.display()))
    }

    /// The one writer of `model`: a create, update or delete holds it for its whole run, so two
    /// of them never interleave. `None` when another process holds it (its run is in progress);
    /// the caller refuses at once instead of waiting for a training to end.
    pub fn try_writer(&self, model: &str) -> Result<Option<ModelWriter>> {
        let dir = self.model_dir(model);
        // A model folder without `versions/` is not a model (see `exists`): the lock alone
        // creates nothing visible.
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let path = dir.join(".writer.lock");
        let f = lock_file(&path)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(ModelWriter { _lock: f })),
            Err(std::fs::TryLockError::WouldBlock) => Ok(None),
            Err(std::fs::TryLockError::Error(e)) => {
                Err(Error::storage(format!("locking {}", path.display()), e))
            }
        }
    }

    fn lock_model(&self, model: &str) -> Result<File> {
        let path = self.model_dir(model).join(".lock");
        let f = lock_file(&path)?;
        f.lock().ctx(|| format!("locking {}", path.display()))?;
        Ok(f)
    }
}

/// A lock file (created if absent, never truncated), not yet locked.
fn lock_file(path: &Path) -> Result<File> {
    File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .ctx(|| format!("opening {}", path.display()))
}

/// The right to change a model (see [`Registry::try_writer`]); released when dropped or when
/// the process dies.
pub struct ModelWriter {
    _lock: File,
}

/// The process's handle on the version it is making. Dropping it (or dying) releases the lock.
pub struct VersionRun {
    pub model: String,
    pub version: u32,
    pub dir: PathBuf,
    registry: Registry,
    _lock: File,
}

impl VersionRun {
    pub fn set_status(&self, status: Status, message: &str) -> Result<()> {
        tracing::info!(model = %self.model, version = self.version, %status, "{message}");
        status::append(&self.dir.join("status.jsonl"), status, message)
    }

    /// The folder of another version of the same model.
    pub fn sibling_dir(&self, version: u32) -> PathBuf {
        self.registry.version_dir(&self.model, version)
    }

    /// A line in the log without a change of status.
    pub fn log(&self, status: Status, message: &str) {
        if let Err(e) = self.set_status(status, message) {
            tracing::warn!("could not write the status log: {e}");
        }
    }

    /// Records the failure; the ACTIVE pointer is untouched.
    pub fn fail(&self, error: &Error) {
        self.log(Status::Error, &error.to_string());
    }

    /// Makes this version ACTIVE: its artifacts must be complete and durable. Never moves the
    /// pointer back to an older version than the one it names; then the version ends INACTIVE.
    /// Returns the status the version ended in.
    pub fn promote(&self) -> Result<Status> {
        store::fsync_dir(&self.dir)?;
        let _guard = self.registry.lock_model(&self.model)?;
        if let Some(current) = self.registry.active_version(&self.model)? {
            if current > self.version {
                self.set_status(
                    Status::Inactive,
                    &format!("version {current} became active first"),
                )?;
                return Ok(Status::Inactive);
            }
        }
        let pointer = Pointer {
            version: self.version,
            since: Utc::now(),
        };
        let path = self.registry.model_dir(&self.model).join("ACTIVE");
        store::write_atomic(
            &path,
            &serde_json::to_vec(&pointer).expect("pointer serialises"),
        )?;
        self.set_status(Status::Active, "serving")?;
        Ok(Status::Active)
    }
}

fn try_lock(path: &Path) -> std::result::Result<File, std::io::Error> {
    let f = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)?;
    match f.try_lock() {
        Ok(()) => Ok(f),
        Err(std::fs::TryLockError::WouldBlock) => Err(std::io::Error::new(
            std::io::ErrorKind::WouldBlock,
            "locked",
        )),
        Err(std::fs::TryLockError::Error(e)) => Err(e),
    }
}

/// Whether another process holds the lock file (a missing file is not locked).
fn is_locked(path: &Path) -> bool {
    if !path.exists() {
        return false;
    }
    matches!(try_lock(path), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lifecycle_pointer_and_interruption() {
        let home = tempfile::tempdir().unwrap();
        let reg = Registry::open(home.path()).unwrap();
        let run = reg.begin("m", "x", "create").unwrap();
        assert_eq!(reg.version("m", None).unwrap().status, Status::Scheduling);
        run.set_status(Status::Training, "go").unwrap();
        run.promote().unwrap();
        drop(run);
        assert_eq!(reg.active_version("m").unwrap(), Some(1));

        // A second version whose process "dies" during training.
        let run2 = reg.begin("m", "x", "update").unwrap();
        run2.set_status(Status::Training, "go").unwrap();
        assert_eq!(
            reg.version("m", Some(2)).unwrap().status,
            Status::Training,
            "lock held: still running"
        );
        drop(run2);
        let v2 = reg.version("m", Some(2)).unwrap();
        assert_eq!(v2.status, Status::Error);
        assert!(v2.message.contains("interrupted"), "{}", v2.message);
        assert_eq!(reg.active_version("m").unwrap(), Some(1));
        assert_eq!(reg.version("m", Some(1)).unwrap().status, Status::Active);

        let run3 = reg.begin("m", "x", "update").unwrap();
        // A version that finishes after a newer one became ACTIVE does not move the pointer back.
        let run4 = reg.begin("m", "x", "update").unwrap();
        assert_eq!(run4.promote().unwrap(), Status::Active);
        assert_eq!(run3.promote().unwrap(), Status::Inactive);
        assert_eq!(reg.active_version("m").unwrap(), Some(4));
        assert_eq!(reg.version("m", Some(3)).unwrap().status, Status::Inactive);
        assert_eq!(reg.version("m", Some(1)).unwrap().status, Status::Inactive);
        drop((run3, run4));
        reg.delete("m").unwrap();
        assert!(!reg.exists("m"));
    }
}
