//! Crash-safe replacement of small files (the ACTIVE pointer, manifests).

use std::io::Write;
use std::path::Path;

use crate::error::{IoContext, Result};

/// Replaces `path` with `bytes` so that a reader sees the old or the new content, never a mix,
/// and the new content survives a crash once this returns.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, 0o666)
}

/// [`write_atomic`] for a file only its owner may read (the API key store): the file is created
/// with that mode, so no other user can open it at any moment.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    replace(path, bytes, 0o600)
}

/// Writes a temporary file created with `mode` (before the umask, on Unix), syncs it, renames
/// it over `path` and syncs the folder.
fn replace(path: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("file");
    let tmp = dir.join(format!(".{name}.tmp.{}", std::process::id()));
    let ctx = || format!("writing {}", path.display());
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, mode);
        #[cfg(not(unix))]
        let _ = mode;
        // A temporary file left by a crash keeps its old mode: start from a new one.
        let _ = std::fs::remove_file(&tmp);
        let mut f = options.open(&tmp).ctx(ctx)?;
        f.write_all(bytes).ctx(ctx)?;
        f.sync_all().ctx(ctx)?;
    }
    std::fs::rename(&tmp, path).ctx(ctx)?;
    fsync_dir(dir)
}

/// Makes every file under `dir` and every folder's entries durable: for what a library (Lance)
/// wrote without syncing.
pub fn fsync_tree(dir: &Path) -> Result<()> {
    for entry in std::fs::read_dir(dir).ctx(|| format!("listing {}", dir.display()))? {
        let path = entry.ctx(|| format!("listing {}", dir.display()))?.path();
        if path.is_dir() {
            fsync_tree(&path)?;
        } else {
            std::fs::File::open(&path)
                .and_then(|f| f.sync_all())
                .ctx(|| format!("syncing {}", path.display()))?;
        }
    }
    fsync_dir(dir)
}

/// Makes the entries of `dir` (new files, renames) durable.
pub fn fsync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|f| f.sync_all())
        .ctx(|| format!("syncing {}", dir.display()))
}

/// A small JSON file: `None` when it does not exist, an internal error naming it when it does
/// not parse (files the engine wrote itself).
pub fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<Option<T>> {
    match std::fs::read(path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| crate::Error::Internal(format!("{} is corrupt: {e}", path.display()))),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(crate::Error::storage(
            format!("reading {}", path.display()),
            e,
        )),
    }
}
