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
//!
//! The home may also be on object storage (`s3://bucket/prefix`, see [`remote`]): the same
//! layout as objects, leases for locks, conditional writes for the pointer and the log, and a
//! local folder that stages versions being made and caches versions being read.

mod keys;
mod lease;
mod moves;
mod remote;
mod shadow;
mod status;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub use keys::{ApiKey, KeyRing, NewKey, Scope};
pub use moves::Move;
pub use shadow::{Comparison, ShadowPointer, ShadowStats, LATENCY_BUCKETS};
pub use status::{LogEntry, Status};

use lease::{Lease, Take};
use remote::{Expect, Remote};

use crate::config::resolve::is_valid_name;
use crate::error::{did_you_mean, Error, IoContext, Result};
use crate::store;

/// The home: a local folder, or a prefix on object storage with a local cache.
#[derive(Debug, Clone)]
pub struct Registry {
    /// The local folder: the home itself, or the cache of a home on object storage.
    home: PathBuf,
    remote: Option<Arc<Remote>>,
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
    /// Opens (and creates if needed) a home folder, or a home on object storage when `home`
    /// is a URL (`s3://bucket/prefix`; nothing is requested until it is used).
    pub fn open(home: &Path) -> Result<Self> {
        let text = home.to_string_lossy();
        if feed_connectors::StorageRoot::is_url(&text) {
            let remote = Remote::open(&text)?;
            return Ok(Self {
                home: remote.cache().to_path_buf(),
                remote: Some(Arc::new(remote)),
            });
        }
        std::fs::create_dir_all(home.join("models"))
            .ctx(|| format!("creating home folder {}", home.display()))?;
        Ok(Self {
            home: home.to_path_buf(),
            remote: None,
        })
    }

    /// The local folder: the home, or the cache of a home on object storage.
    pub fn home(&self) -> &Path {
        &self.home
    }

    /// Whether the home is on object storage.
    pub fn is_remote(&self) -> bool {
        self.remote.is_some()
    }

    /// Refuses what needs a home on a local disk (the live event logs: appended and fsynced in
    /// place, which object storage cannot do).
    pub fn require_local(&self, what: &str) -> Result<()> {
        match &self.remote {
            None => Ok(()),
            Some(r) => Err(Error::invalid(
                "FEED_HOME",
                format!(
                    "{what} need a models home on a local disk; {} is on object storage",
                    r.url()
                ),
            )
            .with_hint("serve live events from a server whose FEED_HOME is a local folder")),
        }
    }

    /// A version's folder with its files present locally: the folder itself on a local home;
    /// on object storage, the cached copy, downloaded whole the first time.
    pub fn materialize(&self, model: &str, version: u32) -> Result<PathBuf> {
        match &self.remote {
            None => Ok(self.version_dir(model, version)),
            Some(r) => r.cached(&version_rel(model, version)),
        }
    }

    /// A folder holding the version's small files named in `names` (the manifest and the
    /// report a listing shows), without downloading the version's artifacts.
    pub fn version_files(&self, model: &str, version: u32, names: &[&str]) -> Result<PathBuf> {
        match &self.remote {
            None => Ok(self.version_dir(model, version)),
            Some(r) => r.cached_files(&version_rel(model, version), names),
        }
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
        if let Some(r) = &self.remote {
            let mut out = Vec::new();
            for name in r.folders("models")? {
                if is_valid_name(&name) && r.any_under(&format!("models/{name}/versions"))? {
                    out.push(name);
                }
            }
            out.sort();
            return Ok(out);
        }
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
        is_valid_name(model)
            && match &self.remote {
                None => self.model_dir(model).join("versions").is_dir(),
                Some(r) => r
                    .any_under(&format!("models/{model}/versions"))
                    .unwrap_or(false),
            }
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
        if let Some(r) = &self.remote {
            return Ok(self.remote_pointer(r, model)?.map(|(p, _)| p.version));
        }
        Ok(self.local_pointer(model)?.map(|p| p.version))
    }

    /// The pointer of a local home.
    fn local_pointer(&self, model: &str) -> Result<Option<Pointer>> {
        store::read_json(&self.model_dir(model).join("ACTIVE"))
    }

    /// All versions of a model, oldest first.
    pub fn versions(&self, model: &str) -> Result<Vec<VersionInfo>> {
        if !self.exists(model) {
            return Err(self.unknown_model(model));
        }
        let mut numbers = self.version_numbers(model)?;
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

    /// One version, reading its own log only (a follower reads it again and again; `version`
    /// reads every version's).
    pub fn version_alone(&self, model: &str, version: u32) -> Result<VersionInfo> {
        if !self.exists(model) {
            return Err(self.unknown_model(model));
        }
        if !self.version_numbers(model)?.contains(&version) {
            return Err(Error::NotFound {
                what: "version",
                name: format!("{model}/{version}"),
                hint: Some("see view-model".into()),
            });
        }
        let active = self.active_version(model)?;
        self.read_version(model, version, active)
    }

    /// The numbers of a model's versions, unordered.
    fn version_numbers(&self, model: &str) -> Result<Vec<u32>> {
        if let Some(r) = &self.remote {
            return Ok(r
                .folders(&format!("models/{model}/versions"))?
                .iter()
                .filter_map(|n| n.parse().ok())
                .collect());
        }
        let dir = self.model_dir(model).join("versions");
        Ok(std::fs::read_dir(&dir)
            .ctx(|| format!("listing {}", dir.display()))?
            .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
            .collect())
    }

    /// The pointer of a home on object storage, with the tag a conditional write names.
    fn remote_pointer(&self, r: &Remote, model: &str) -> Result<Option<(Pointer, Option<String>)>> {
        let rel = format!("models/{model}/ACTIVE");
        r.get(&rel)?
            .map(|read| {
                serde_json::from_slice(&read.bytes)
                    .map(|p| (p, read.etag))
                    .map_err(|e| Error::Internal(format!("{}/{rel} is corrupt: {e}", r.url())))
            })
            .transpose()
    }

    fn read_version(&self, model: &str, version: u32, active: Option<u32>) -> Result<VersionInfo> {
        if let Some(r) = &self.remote {
            return self.read_remote_version(r, model, version, active);
        }
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
        Ok(info(model, version, active, status, message, log, dir))
    }

    /// [`Self::read_version`] on object storage: the run's lease stands for its lock.
    fn read_remote_version(
        &self,
        r: &Arc<Remote>,
        model: &str,
        version: u32,
        active: Option<u32>,
    ) -> Result<VersionInfo> {
        let rel = version_rel(model, version);
        let log_rel = format!("{rel}/status.jsonl");
        let mut log = read_remote_log(r, &log_rel)?;
        let (mut status, mut message) = match log.last() {
            Some(e) => (e.status, e.message.clone()),
            None => (Status::Scheduling, "starting".to_string()),
        };
        // The lease is taken before anything else of the version is written, so a running
        // version without a live lease has lost its process.
        if status.is_running()
            && active != Some(version)
            && !lease::is_held(r, &format!("{rel}/run.lease"))?
        {
            let reason = format!("interrupted: the process working on it stopped during {status}");
            // Recorded only if the log still ends running: two readers never both add it.
            append_remote_log(r, &log_rel, Status::Error, &reason, |last| {
                last.is_none_or(|e| e.status.is_running())
            })?;
            // What the log says now: this reader's line, another's, or the run's own end.
            log = read_remote_log(r, &log_rel)?;
            if let Some(last) = log.last() {
                status = last.status;
                message = last.message.clone();
            }
        }
        Ok(info(
            model,
            version,
            active,
            status,
            message,
            log,
            self.version_dir(model, version),
        ))
    }

    /// Starts a new version on object storage: its number is claimed by creating its run
    /// lease, which only one process can; the version is staged in the local cache.
    fn begin_remote(
        &self,
        r: &Arc<Remote>,
        model: &str,
        model_yaml: &str,
        message: &str,
    ) -> Result<VersionRun> {
        let mut next = self.version_numbers(model)?.into_iter().max().unwrap_or(0) + 1;
        let lease = loop {
            let rel = format!("{}/run.lease", version_rel(model, next));
            match Lease::take(r, &rel, Take::New)? {
                Some(lease) => break lease,
                None => next += 1,
            }
        };
        let dir = self
            .home
            .join("staging")
            .join(model)
            .join(format!("{next:06}"));
        if dir.exists() {
            std::fs::remove_dir_all(&dir).ctx(|| format!("clearing {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        store::write_atomic(&dir.join("model.yaml"), model_yaml.as_bytes())?;
        let rel = version_rel(model, next);
        let _ = r.put(
            &format!("{rel}/model.yaml"),
            model_yaml.as_bytes().to_vec(),
            Expect::Any,
        )?;
        let run = VersionRun {
            model: model.to_string(),
            version: next,
            dir,
            registry: self.clone(),
            _lock: Hold::Lease(lease),
        };
        run.set_status(Status::Scheduling, message)?;
        Ok(run)
    }
}

/// Whether a log entry is a reader's record that the run's process stopped.
fn interrupted(e: &LogEntry) -> bool {
    e.status == Status::Error && e.message.starts_with("interrupted")
}

/// A version's folder relative to the home.
fn version_rel(model: &str, version: u32) -> String {
    format!("models/{model}/versions/{version:06}")
}

fn read_remote_log(r: &Remote, rel: &str) -> Result<Vec<LogEntry>> {
    Ok(r.get(rel)?
        .map(|read| status::parse(&String::from_utf8_lossy(&read.bytes)))
        .unwrap_or_default())
}

/// Appends a line to a status log on object storage when `ok` holds for its last entry; a
/// write that loses a race reads again and retries. Whether it was appended.
fn append_remote_log(
    r: &Remote,
    rel: &str,
    status: Status,
    message: &str,
    ok: impl Fn(Option<&LogEntry>) -> bool,
) -> Result<bool> {
    loop {
        let current = r.get(rel)?;
        let (mut text, etag) = match current {
            Some(read) => (
                String::from_utf8_lossy(&read.bytes).into_owned(),
                Some(read.etag),
            ),
            None => (String::new(), None),
        };
        if !ok(status::parse(&text).last()) {
            return Ok(false);
        }
        text.push_str(&status::line(status, message));
        let expect = match &etag {
            Some(tag) => Expect::Tag(tag),
            None => Expect::Absent,
        };
        if r.put(rel, text.into_bytes(), expect)?.is_ok() {
            return Ok(true);
        }
    }
}

/// A version as a reader sees it, from its log and the pointer.
fn info(
    model: &str,
    version: u32,
    active: Option<u32>,
    mut status: Status,
    mut message: String,
    log: Vec<LogEntry>,
    dir: PathBuf,
) -> VersionInfo {
    if active == Some(version) {
        status = Status::Active;
    } else if status == Status::Active {
        status = Status::Inactive;
        message = "replaced by a newer version".into();
    }
    VersionInfo {
        model: model.to_string(),
        version,
        status,
        message,
        created_at: log.first().map(|e| e.ts),
        updated_at: log.last().map(|e| e.ts),
        log,
        dir,
    }
}

impl Registry {
    /// Starts a new version: allocates its number, takes its run lock, stores the model file
    /// and records SCHEDULING. Nothing else of the model changes.
    pub fn begin(&self, model: &str, model_yaml: &str, message: &str) -> Result<VersionRun> {
        if let Some(r) = &self.remote {
            return self.begin_remote(r, model, model_yaml, message);
        }
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
            _lock: Hold::File(lock),
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
        let _guard = match &self.remote {
            None => Some(self.lock_model(model)?),
            // The writer lease is the model's lock there.
            Some(_) => None,
        };
        if let Some(v) = self.versions(model)?.iter().find(|v| v.status.is_running()) {
            return Err(Error::invalid("model", format!(
                "model `{model}` has version {} in {}; wait for it to end (or stop its process) before deleting",
                v.version, v.status
            )));
        }
        if let Some(r) = &self.remote {
            // The pointer first: from then on no server loads the model, and a reader finds
            // its versions gone or going.
            let rel = format!("models/{model}");
            r.delete(&format!("{rel}/ACTIVE"))?;
            r.delete_under(&format!("{rel}/versions"))?;
            let cached = self.model_dir(model);
            if cached.exists() {
                std::fs::remove_dir_all(&cached)
                    .ctx(|| format!("deleting {}", cached.display()))?;
            }
            return Ok(());
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
        if let Some(r) = &self.remote {
            let rel = format!("models/{model}/writer.lease");
            return Ok(Lease::take(r, &rel, Take::Free)?.map(|l| ModelWriter {
                _lock: Hold::Lease(l),
            }));
        }
        let dir = self.model_dir(model);
        // A model folder without `versions/` is not a model (see `exists`): the lock alone
        // creates nothing visible.
        std::fs::create_dir_all(&dir).ctx(|| format!("creating {}", dir.display()))?;
        let path = dir.join(".writer.lock");
        let f = lock_file(&path)?;
        match f.try_lock() {
            Ok(()) => Ok(Some(ModelWriter {
                _lock: Hold::File(f),
            })),
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

/// A lock: a locked file on a local home, a lease on object storage. Released when dropped
/// (or when the process dies: the file's lock at once, the lease when it expires).
enum Hold {
    File(#[allow(dead_code)] File),
    Lease(Lease),
}

/// The right to change a model (see [`Registry::try_writer`]); released when dropped or when
/// the process dies.
pub struct ModelWriter {
    _lock: Hold,
}

/// The process's handle on the version it is making. Dropping it (or dying) releases the lock.
pub struct VersionRun {
    pub model: String,
    pub version: u32,
    /// The version's folder; on object storage, its local staging folder, uploaded whole
    /// before the pointer moves.
    pub dir: PathBuf,
    registry: Registry,
    _lock: Hold,
}

impl VersionRun {
    pub fn set_status(&self, status: Status, message: &str) -> Result<()> {
        tracing::info!(model = %self.model, version = self.version, %status, "{message}");
        let Some(r) = &self.registry.remote else {
            return status::append(&self.dir.join("status.jsonl"), status, message);
        };
        self.check_lease()?;
        let rel = format!("{}/status.jsonl", version_rel(&self.model, self.version));
        // A reader that found the lease expired recorded the run as interrupted: it stays so.
        let appended = append_remote_log(r, &rel, status, message, |last| {
            !last.is_some_and(interrupted)
        })?;
        if appended {
            Ok(())
        } else {
            Err(self.lease_lost())
        }
    }

    fn check_lease(&self) -> Result<()> {
        match &self._lock {
            Hold::Lease(l) if l.lost() => Err(self.lease_lost()),
            _ => Ok(()),
        }
    }

    fn lease_lost(&self) -> Error {
        Error::storage(
            format!("version {} of `{}`", self.version, self.model),
            std::io::Error::other(
                "its run lease expired unrenewed (the object store was unreachable for longer \
                 than FEED_LEASE_SECONDS) and it was recorded as interrupted; run the command again",
            ),
        )
    }

    /// The folder of another version of the same model, with its files present locally.
    pub fn sibling_dir(&self, version: u32) -> Result<PathBuf> {
        self.registry.materialize(&self.model, version)
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

    /// Ends the run: makes the version ACTIVE ([`Self::promote`]), or for a `candidate` leaves
    /// ACTIVE where it is and records the version complete (INACTIVE), its artifacts durable
    /// (uploaded whole on object storage), for `feedctl shadow`, an experiment's `version:`
    /// variant or `feedctl promote`.
    pub fn finish(&self, candidate: bool) -> Result<Status> {
        if !candidate {
            return self.promote();
        }
        match &self.registry.remote {
            None => store::fsync_dir(&self.dir)?,
            Some(r) => {
                let [a, b, c] = remote::LIVE_FILES;
                r.upload(
                    &self.dir,
                    &version_rel(&self.model, self.version),
                    &[a, b, c, "model.yaml"],
                )?;
                self.check_lease()?;
                // As when promoting: a run a reader recorded as interrupted stays so.
                let log = read_remote_log(
                    r,
                    &format!("{}/status.jsonl", version_rel(&self.model, self.version)),
                )?;
                if log.last().is_some_and(interrupted) {
                    return Err(self.lease_lost());
                }
            }
        }
        self.set_status(
            Status::Inactive,
            "candidate: complete, not made ACTIVE (update-model --candidate); see `feedctl shadow`, `feedctl promote`",
        )?;
        Ok(Status::Inactive)
    }

    /// Makes this version ACTIVE: its artifacts must be complete and durable. A deploy never
    /// moves the pointer back to an older version than the one it names (then the version ends
    /// INACTIVE); only `feedctl rollback` does ([`Registry::move_active`]).
    /// Returns the status the version ended in.
    pub fn promote(&self) -> Result<Status> {
        if let Some(r) = &self.registry.remote {
            return self.promote_remote(r);
        }
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

    /// [`Self::promote`] on object storage: the staged version is uploaded whole, then the
    /// pointer moves by a conditional write (read, check, write if unchanged; again on a lost
    /// race), so that it never names a partial version and two writers cannot both move it.
    fn promote_remote(&self, r: &Remote) -> Result<Status> {
        let rel = version_rel(&self.model, self.version);
        // The model file went up when the run began.
        let [a, b, c] = remote::LIVE_FILES;
        r.upload(&self.dir, &rel, &[a, b, c, "model.yaml"])?;
        let log_rel = format!("{rel}/status.jsonl");
        loop {
            self.check_lease()?;
            // A reader that found the lease expired may have recorded the run as interrupted:
            // then the pointer stays. (Object storage writes one object at a time, so a reader
            // recording it between this read and the pointer's write is not excluded; the lease
            // renewed every third of its life makes that a run stalled for two renewals.)
            if read_remote_log(r, &log_rel)?
                .last()
                .is_some_and(interrupted)
            {
                return Err(self.lease_lost());
            }
            let current = self.registry.remote_pointer(r, &self.model)?;
            if let Some((p, _)) = &current {
                if p.version > self.version {
                    self.set_status(
                        Status::Inactive,
                        &format!("version {} became active first", p.version),
                    )?;
                    return Ok(Status::Inactive);
                }
            }
            let pointer = Pointer {
                version: self.version,
                since: Utc::now(),
            };
            let bytes = serde_json::to_vec(&pointer).expect("pointer serialises");
            let expect = match &current {
                Some((_, tag)) => Expect::Tag(tag),
                None => Expect::Absent,
            };
            if r.put(&format!("models/{}/ACTIVE", self.model), bytes, expect)?
                .is_ok()
            {
                break;
            }
        }
        self.set_status(Status::Active, "serving")?;
        Ok(Status::Active)
    }
}

impl Drop for VersionRun {
    fn drop(&mut self) {
        // A staged version lives on in the home; the staging copy goes.
        if self.registry.is_remote() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
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

    /// The same life on object storage (in memory): leases for locks, conditional writes for
    /// the log and the pointer.
    #[test]
    fn on_object_storage_leases_and_conditional_writes_keep_the_invariants() {
        let cache = tempfile::tempdir().unwrap();
        // Renewed every second: a loaded machine may delay a renewal by a second and still hold it.
        let remote = Remote::in_memory(cache.path(), std::time::Duration::from_secs(3));
        let reg = Registry {
            home: cache.path().to_path_buf(),
            remote: Some(Arc::new(remote)),
        };
        assert!(reg.models().unwrap().is_empty());
        let run = reg.begin("m", "x", "create").unwrap();
        std::fs::write(run.dir.join("weights.bin"), b"w1").unwrap();
        // Above the threshold for a multipart upload.
        let large: Vec<u8> = (0..3u32 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::create_dir_all(run.dir.join("policies")).unwrap();
        std::fs::write(run.dir.join("policies/large.f32"), &large).unwrap();
        assert_eq!(reg.models().unwrap(), vec!["m".to_string()]);
        assert_eq!(reg.version("m", None).unwrap().status, Status::Scheduling);
        // One writer at a time.
        let writer = reg.try_writer("m").unwrap().expect("free");
        assert!(reg.try_writer("m").unwrap().is_none());
        run.set_status(Status::Training, "go").unwrap();
        // Renewed while held: still running well past the lease's life.
        std::thread::sleep(std::time::Duration::from_millis(4000));
        assert_eq!(reg.version("m", Some(1)).unwrap().status, Status::Training);
        assert_eq!(run.promote().unwrap(), Status::Active);
        drop(run);
        drop(writer);
        assert_eq!(reg.active_version("m").unwrap(), Some(1));
        // The version is whole in the home, and a reader caches it whole.
        let dir = reg.materialize("m", 1).unwrap();
        assert_eq!(std::fs::read(dir.join("weights.bin")).unwrap(), b"w1");
        assert!(std::fs::read(dir.join("policies/large.f32")).unwrap() == large);
        assert!(!dir.join("status.jsonl").exists());

        // Two runs started together get different numbers; the older one finishing last does
        // not move the pointer back.
        let run2 = reg.begin("m", "x", "update").unwrap();
        let run3 = reg.begin("m", "x", "update").unwrap();
        assert_eq!((run2.version, run3.version), (2, 3));
        assert_eq!(run3.promote().unwrap(), Status::Active);
        assert_eq!(run2.promote().unwrap(), Status::Inactive);
        assert_eq!(reg.active_version("m").unwrap(), Some(3));
        drop((run2, run3));

        // A run whose process stops renewing: ERROR once its lease expires, recorded once, and
        // the run cannot write after that.
        let run4 = reg.begin("m", "x", "update").unwrap();
        run4.set_status(Status::Training, "go").unwrap();
        let Hold::Lease(lease) = &run4._lock else {
            panic!("a lease on object storage")
        };
        lease.stop_renewing_for_tests();
        std::thread::sleep(std::time::Duration::from_millis(3300));
        let v4 = reg.version("m", Some(4)).unwrap();
        assert_eq!(v4.status, Status::Error);
        assert!(v4.message.contains("interrupted"), "{}", v4.message);
        let again = reg.version("m", Some(4)).unwrap();
        assert_eq!(again.log.len(), v4.log.len(), "recorded once");
        assert!(run4.set_status(Status::Deploying, "late").is_err());
        assert_eq!(reg.active_version("m").unwrap(), Some(3));
        assert_eq!(reg.version("m", Some(3)).unwrap().status, Status::Active);
        drop(run4);

        reg.delete("m").unwrap();
        assert!(!reg.exists("m"));
        assert!(reg.models().unwrap().is_empty());
        assert_eq!(reg.active_version("m").unwrap(), None);
        // The name is free again, and its version 1 is the new one, not a cached copy.
        let again = reg.begin("m", "y", "create").unwrap();
        std::fs::write(again.dir.join("weights.bin"), b"w2").unwrap();
        std::fs::write(again.dir.join("manifest.json"), b"{}").unwrap();
        assert_eq!(
            (again.version, again.promote().unwrap()),
            (1, Status::Active)
        );
        let dir = reg.materialize("m", 1).unwrap();
        assert_eq!(std::fs::read(dir.join("weights.bin")).unwrap(), b"w2");
    }
}
