//! A models home on object storage (`FEED_HOME=s3://bucket/prefix`): the registry's objects
//! under the prefix, with the layout of a local home, and a local folder that caches them.
//!
//! Object storage has no rename, no append and no locks, so the registry's three guarantees are
//! kept by conditional writes instead:
//! - the ACTIVE pointer moves by a write that succeeds only if the pointer is still the one that
//!   was read (`If-Match` its ETag, or `If-None-Match: *` for the first), so two writers cannot
//!   both win;
//! - a status line is appended the same way (read, add the line, write if unchanged);
//! - locks become leases ([`super::lease`]): objects naming their holder and an expiry that the
//!   holder renews.
//!
//! A version is written in a local staging folder, as on a local home, then uploaded whole
//! before the pointer moves, so that the pointer only ever names a complete version. The Lance
//! datasets are uploaded with the rest: they are plain files, and any Lance reader opens them at
//! their `s3://` URI. (Lance's own `aws` feature would write them directly, but brings 63 more
//! crates, the AWS SDK and aws-lc-sys among them, into a build that is already the slowest part
//! of CI.) Readers download a version into the cache once (`versions/<n>/.complete` marks it
//! whole) and map the files from there.
//!
//! Every call blocks its caller, as the local home's file calls do, on a runtime of its own:
//! callers are the blocking pool, the CLI's commands and the server's poll.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use feed_connectors::object_store::path::Path as Key;
use feed_connectors::object_store::{
    self, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
};
use feed_connectors::StorageRoot;
use futures::{StreamExt, TryStreamExt};

use crate::error::{Error, Result};

/// How long a lease lives unless renewed; `FEED_LEASE_SECONDS` changes it (the tests shorten
/// it). Renewed at a third of it, so two renewals may fail before it lapses.
const LEASE_SECONDS: u64 = 30;

/// The home's store, its prefix and the local cache.
pub(super) struct Remote {
    /// The home's location and its client; `None` for the in-memory store of the unit tests.
    root: Option<StorageRoot>,
    url: String,
    prefix: Key,
    store: Arc<dyn ObjectStore>,
    /// The local folder that stages versions being made and caches versions being read.
    cache: PathBuf,
    pub(super) lease_ttl: Duration,
}

impl std::fmt::Debug for Remote {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remote")
            .field("url", &self.url)
            .finish_non_exhaustive()
    }
}

/// A write that lost a race: the object exists (a create) or changed since it was read (an
/// update).
pub(super) struct Conflict;

/// An object's bytes and the tag a conditional write names.
pub(super) struct Read {
    pub bytes: Vec<u8>,
    pub etag: Option<String>,
}

/// What a conditional write expects to find.
pub(super) enum Expect<'a> {
    /// Nothing: the object is created.
    Absent,
    /// The object as read.
    Tag(&'a Option<String>),
    /// Anything: the object is replaced.
    Any,
}

impl Remote {
    /// The home at `url`, cached under `cache` (`FEED_CACHE`, else the user's cache folder).
    pub(super) fn open(url: &str) -> Result<Self> {
        let root = StorageRoot::open("FEED_HOME", url).map_err(|e| {
            let message = match e {
                feed_connectors::ConnectorError::Config { message, .. } => message,
                other => other.to_string(),
            };
            Error::invalid("FEED_HOME", format!("FEED_HOME: {message}"))
                .with_hint("a models home is a local folder or s3://bucket/prefix (gs://, az://)")
        })?;
        let cache = match std::env::var_os("FEED_CACHE") {
            Some(dir) => PathBuf::from(dir),
            None => std::env::var_os("XDG_CACHE_HOME")
                .map(PathBuf::from)
                .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
                .unwrap_or_else(std::env::temp_dir)
                .join("feed"),
        };
        let local: PathBuf = root
            .url()
            .replace("://", "/")
            .split('/')
            .filter(|s| !s.is_empty() && *s != "." && *s != "..")
            .collect();
        let lease_ttl = std::env::var("FEED_LEASE_SECONDS")
            .ok()
            .and_then(|s| s.parse::<f64>().ok())
            .filter(|s| s.is_finite())
            .map_or(Duration::from_secs(LEASE_SECONDS), |s| {
                Duration::from_secs_f64(s.clamp(1.0, 86_400.0))
            });
        Ok(Self {
            store: root.store(),
            url: root.url().to_string(),
            prefix: root.prefix().clone(),
            root: Some(root),
            cache: cache.join("homes").join(local),
            lease_ttl,
        })
    }

    /// A home in memory (object_store's `InMemory`, which honours conditional writes), cached
    /// under `cache`: for the unit tests.
    #[cfg(test)]
    pub(super) fn in_memory(cache: &Path, lease_ttl: Duration) -> Self {
        Self {
            root: None,
            url: "memory://home".into(),
            prefix: Key::from("home"),
            store: Arc::new(object_store::memory::InMemory::new()),
            cache: cache.to_path_buf(),
            lease_ttl,
        }
    }

    pub(super) fn url(&self) -> &str {
        &self.url
    }

    /// The local folder mirroring the home's layout.
    pub(super) fn cache(&self) -> &Path {
        &self.cache
    }

    fn key(&self, rel: &str) -> Key {
        let prefix = self.prefix.as_ref();
        if prefix.is_empty() {
            Key::from(rel)
        } else {
            Key::from(format!("{prefix}/{rel}"))
        }
    }

    /// A storage error: what we were doing, where, and the store's reason with what to check.
    /// Refused credentials or permissions are the user's to fix (exit 2), anything else the
    /// service's (exit 1).
    fn error(&self, doing: &str, rel: &str, e: &object_store::Error) -> Error {
        let (why, user) = match &self.root {
            Some(root) => root.explain(e),
            None => (e.to_string(), false),
        };
        let context = format!("{doing} {}/{rel} (FEED_HOME)", self.url());
        if user {
            Error::invalid("FEED_HOME", format!("{context}: {why}"))
        } else {
            Error::storage(context, std::io::Error::other(why))
        }
    }

    /// The object at `rel`, if there is one.
    pub(super) fn get(&self, rel: &str) -> Result<Option<Read>> {
        let (store, key) = (self.store.clone(), self.key(rel));
        let got = block(async move {
            let r = store.get(&key).await?;
            let etag = r.meta.e_tag.clone();
            Ok::<_, object_store::Error>((r.bytes().await?, etag))
        });
        match got {
            Ok((bytes, etag)) => Ok(Some(Read {
                bytes: bytes.to_vec(),
                etag,
            })),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("reading", rel, &e)),
        }
    }

    /// Writes `bytes` at `rel` if the object is as `expect` says; the new tag, or the conflict.
    pub(super) fn put(
        &self,
        rel: &str,
        bytes: Vec<u8>,
        expect: Expect<'_>,
    ) -> Result<std::result::Result<Option<String>, Conflict>> {
        let mode = match expect {
            Expect::Absent => PutMode::Create,
            Expect::Tag(etag) => PutMode::Update(UpdateVersion {
                e_tag: etag.clone(),
                version: None,
            }),
            Expect::Any => PutMode::Overwrite,
        };
        let (store, key) = (self.store.clone(), self.key(rel));
        let put = block(async move {
            store
                .put_opts(&key, PutPayload::from(bytes), PutOptions::from(mode))
                .await
        });
        match put {
            Ok(r) => Ok(Ok(r.e_tag)),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(Err(Conflict)),
            Err(e) => Err(self.error("writing", rel, &e)),
        }
    }

    /// The names of the folders directly under `rel`.
    pub(super) fn folders(&self, rel: &str) -> Result<Vec<String>> {
        let (store, key) = (self.store.clone(), self.key(rel));
        let listed = block(async move { store.list_with_delimiter(Some(&key)).await })
            .map_err(|e| self.error("listing", rel, &e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename().map(str::to_string))
            .collect())
    }

    /// The tag of the object at `rel`, if there is one.
    fn tag(&self, rel: &str) -> Result<Option<String>> {
        let (store, key) = (self.store.clone(), self.key(rel));
        match block(async move { store.head(&key).await }) {
            Ok(meta) => Ok(Some(meta.e_tag.unwrap_or_default())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error("reading", rel, &e)),
        }
    }

    /// Whether any object lies under `rel`.
    pub(super) fn any_under(&self, rel: &str) -> Result<bool> {
        let (store, key) = (self.store.clone(), self.key(rel));
        let first = block(async move { store.list(Some(&key)).next().await.transpose() })
            .map_err(|e| self.error("listing", rel, &e))?;
        Ok(first.is_some())
    }

    /// Every object under `rel`: its path relative to `rel`, and its size.
    pub(super) fn objects_under(&self, rel: &str) -> Result<Vec<(String, u64)>> {
        let (store, key) = (self.store.clone(), self.key(rel));
        let base = key.as_ref().to_string();
        let listed: Vec<_> =
            block(async move { store.list(Some(&key)).try_collect::<Vec<_>>().await })
                .map_err(|e| self.error("listing", rel, &e))?;
        Ok(listed
            .into_iter()
            .filter_map(|m| {
                let full = m.location.as_ref().to_string();
                let rest = full
                    .strip_prefix(&base)?
                    .trim_start_matches('/')
                    .to_string();
                (!rest.is_empty()).then_some((rest, m.size))
            })
            .collect())
    }

    /// Deletes the object at `rel` (absent is fine).
    pub(super) fn delete(&self, rel: &str) -> Result<()> {
        let (store, key) = (self.store.clone(), self.key(rel));
        match block(async move { store.delete(&key).await }) {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error("deleting", rel, &e)),
        }
    }

    /// Deletes every object under `rel`.
    pub(super) fn delete_under(&self, rel: &str) -> Result<()> {
        let (store, key) = (self.store.clone(), self.key(rel));
        block(async move {
            let keys = store.list(Some(&key)).map_ok(|m| m.location).boxed();
            store
                .delete_stream(keys)
                .try_collect::<Vec<_>>()
                .await
                .map(drop)
        })
        .map_err(|e| self.error("deleting", rel, &e))
    }

    /// Uploads the files under the local folder `from` to `rel` (the same relative paths),
    /// leaving out the names in `skip`: small files eight at a time in one request each, large
    /// ones (vectors of a big catalog) in parts, streamed from the disk.
    pub(super) fn upload(&self, from: &Path, rel: &str, skip: &[&str]) -> Result<()> {
        let mut files = Vec::new();
        walk(from, from, &mut files)?;
        files.retain(|f| !skip.contains(&f.as_str()));
        files.sort();
        let size = |f: &String| std::fs::metadata(from.join(f)).map_or(0, |m| m.len());
        let (large, files): (Vec<String>, Vec<String>) =
            files.into_iter().partition(|f| size(f) > LARGE_FILE);
        for f in large {
            let (store, key, path) = (
                self.store.clone(),
                self.key(&format!("{rel}/{f}")),
                from.join(&f),
            );
            block(async move { upload_in_parts(store, key, &path).await })
                .map_err(|e| self.error("uploading", &format!("{rel}/{f}"), &e))?;
        }
        let mut first = true;
        for chunk in files.chunks(8) {
            let jobs: Vec<_> = chunk
                .iter()
                .map(|f| {
                    let bytes = std::fs::read(from.join(f)).map_err(|e| {
                        Error::storage(format!("reading {}", from.join(f).display()), e)
                    })?;
                    Ok((format!("{rel}/{f}"), bytes))
                })
                .collect::<Result<_>>()?;
            let store = self.store.clone();
            let keyed: Vec<_> = jobs
                .into_iter()
                .map(|(r, b)| (self.key(&r), r, b))
                .collect();
            let results = block(async move {
                futures::future::join_all(keyed.into_iter().map(|(key, rel, bytes)| {
                    let store = store.clone();
                    async move { (rel, store.put(&key, PutPayload::from(bytes)).await) }
                }))
                .await
            });
            for (rel, r) in results {
                r.map_err(|e| self.error("uploading", &rel, &e))?;
            }
            if first {
                crate::util::pause_for_tests("upload");
                first = false;
            }
        }
        Ok(())
    }

    /// Downloads every object under `rel` into the local folder `to` (created), eight at a
    /// time.
    fn download(&self, rel: &str, to: &Path) -> Result<()> {
        let mut objects = self.objects_under(rel)?;
        // What changes after the upload is read from the home, never from a copy.
        objects.retain(|(f, _)| !LIVE_FILES.contains(&f.as_str()));
        for chunk in objects.chunks(8) {
            let store = self.store.clone();
            let keyed: Vec<_> = chunk
                .iter()
                .map(|(f, _)| (self.key(&format!("{rel}/{f}")), f.clone()))
                .collect();
            let results = block(async move {
                futures::future::join_all(keyed.into_iter().map(|(key, f)| {
                    let store = store.clone();
                    async move {
                        let got = match store.get(&key).await {
                            Ok(r) => Ok(r.into_stream()),
                            Err(e) => Err(e),
                        };
                        (f, got)
                    }
                }))
                .await
            });
            for (f, got) in results {
                let fail =
                    |e: &object_store::Error| self.error("downloading", &format!("{rel}/{f}"), e);
                let mut chunks = got.map_err(|e| fail(&e))?;
                let path = to.join(&f);
                if let Some(parent) = path.parent() {
                    std::fs::create_dir_all(parent)
                        .map_err(|e| Error::storage(format!("creating {}", parent.display()), e))?;
                }
                // Chunk by chunk to the disk: a large file never sits whole in memory.
                let (tx, rx) = std::sync::mpsc::sync_channel(4);
                runtime().spawn(async move {
                    while let Some(chunk) = chunks.next().await {
                        let stop = chunk.is_err();
                        if tx.send(chunk).is_err() || stop {
                            return;
                        }
                    }
                });
                let mut file = std::fs::File::create(&path)
                    .map_err(|e| Error::storage(format!("writing {}", path.display()), e))?;
                for chunk in rx {
                    let chunk = chunk.map_err(|e| fail(&e))?;
                    std::io::Write::write_all(&mut file, &chunk)
                        .map_err(|e| Error::storage(format!("writing {}", path.display()), e))?;
                }
            }
        }
        Ok(())
    }

    /// The local copy of the folder `rel` (a whole version), downloaded once: the download goes
    /// to a temporary folder that is renamed into place when whole, so that two processes
    /// sharing the cache never read a half-downloaded copy.
    ///
    /// The copy is stamped with the version's manifest tag: a model deleted and created again
    /// reuses version numbers, and a copy of the old version is then downloaded anew.
    pub(super) fn cached(&self, rel: &str) -> Result<PathBuf> {
        let dir = self.cache.join(rel);
        let stamp = self.tag(&format!("{rel}/{STAMPED}"))?.unwrap_or_default();
        let current =
            |d: &Path| std::fs::read_to_string(d.join(COMPLETE)).ok() == Some(stamp.clone());
        if current(&dir) {
            return Ok(dir);
        }
        let parent = dir.parent().expect("a version folder has a parent");
        std::fs::create_dir_all(parent)
            .map_err(|e| Error::storage(format!("creating {}", parent.display()), e))?;
        let tmp = parent.join(format!(
            ".download-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        let result = self.download(rel, &tmp).and_then(|()| {
            std::fs::write(tmp.join(COMPLETE), &stamp)
                .map_err(|e| Error::storage(format!("writing {}", tmp.display()), e))
        });
        if let Err(e) = result {
            let _ = std::fs::remove_dir_all(&tmp);
            return Err(e);
        }
        if dir.exists() && !current(&dir) {
            // A copy of an older version of that number: moved aside (a process may still map
            // its files; they live until it lets them go).
            let stale = parent.join(format!(
                ".stale-{}",
                tmp.file_name().unwrap_or_default().to_string_lossy()
            ));
            let _ = std::fs::rename(&dir, &stale);
            let _ = std::fs::remove_dir_all(&stale);
        }
        if std::fs::rename(&tmp, &dir).is_err() {
            // Another process put its copy there first.
            let _ = std::fs::remove_dir_all(&tmp);
            if !current(&dir) {
                return Err(Error::storage(
                    format!("caching {rel} in {}", dir.display()),
                    std::io::Error::other(
                        "a folder that is not a whole copy is in the way; delete it",
                    ),
                ));
            }
        }
        Ok(dir)
    }

    /// The named files of the folder `rel` (the small ones a listing shows), in a cache folder
    /// of their own; a missing file is left out.
    pub(super) fn cached_files(&self, rel: &str, names: &[&str]) -> Result<PathBuf> {
        let dir = self.cache.join(".files").join(rel);
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::storage(format!("creating {}", dir.display()), e))?;
        for name in names {
            if let Some(read) = self.get(&format!("{rel}/{name}"))? {
                crate::store::write_atomic(&dir.join(name), &read.bytes)?;
            }
        }
        Ok(dir)
    }
}

/// A version's objects that keep changing after it is uploaded: never uploaded from staging,
/// never cached.
pub(super) const LIVE_FILES: [&str; 3] = ["status.jsonl", "run.lease", "run.lock"];

/// Files above this go up in parts (one PUT takes at most 5 GB on S3, and a part at a time
/// holds less in memory).
#[cfg(not(test))]
const LARGE_FILE: u64 = 64 << 20;
/// Small in the unit tests, so that they go through the parts too.
#[cfg(test)]
const LARGE_FILE: u64 = 1 << 20;

/// Streams the file at `path` to `key` as a multipart upload of 16 MiB parts, four in flight.
async fn upload_in_parts(
    store: Arc<dyn ObjectStore>,
    key: Key,
    path: &Path,
) -> std::result::Result<(), object_store::Error> {
    use std::io::Read;
    let local = |e: std::io::Error| object_store::Error::Generic {
        store: "local disk",
        source: Box::new(e),
    };
    let mut file = std::fs::File::open(path).map_err(local)?;
    let upload = store.put_multipart(&key).await?;
    let mut writer = object_store::WriteMultipart::new_with_chunk_size(upload, 16 << 20);
    let mut buf = vec![0u8; 16 << 20];
    loop {
        let n = file.read(&mut buf).map_err(local)?;
        if n == 0 {
            break;
        }
        writer.wait_for_capacity(4).await?;
        writer.write(&buf[..n]);
    }
    writer.finish().await.map(drop)
}

/// The file whose tag stamps a cached copy: written once per version, at DEPLOYING.
const STAMPED: &str = "manifest.json";

/// The marker of a whole cached copy, holding the stamp.
const COMPLETE: &str = ".complete";

/// The files under `dir`, as paths relative to `base` with `/` between parts.
fn walk(base: &Path, dir: &Path, out: &mut Vec<String>) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::storage(format!("listing {}", dir.display()), e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::storage(format!("listing {}", dir.display()), e))?;
        let path = entry.path();
        let kind = entry
            .file_type()
            .map_err(|e| Error::storage(format!("reading {}", path.display()), e))?;
        if kind.is_dir() {
            walk(base, &path, out)?;
        } else {
            let rel = path.strip_prefix(base).expect("walked under base");
            out.push(
                rel.components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/"),
            );
        }
    }
    Ok(())
}

/// The runtime the home's calls run on: one per process, never dropped (a runtime may not be
/// dropped inside another, and registries are held by async code).
fn runtime() -> &'static tokio::runtime::Runtime {
    static RUNTIME: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RUNTIME.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("feed-home")
            .enable_all()
            .build()
            .expect("a runtime for the models home starts")
    })
}

/// Runs `fut` on the home's runtime and waits for it. Safe from any thread, async workers
/// included (it waits as a file call would, without entering a runtime).
pub(super) fn block<T: Send + 'static>(fut: impl Future<Output = T> + Send + 'static) -> T {
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    runtime().spawn(async move {
        let _ = tx.send(fut.await);
    });
    rx.recv()
        .expect("the home's runtime runs every task it is given to the end")
}
