//! Where file connectors resolve and may read: relative paths resolve against the model file's
//! folder, and data is read only under the data roots — that folder and the ones the operator
//! adds (`--data-root`, `FEED_DATA_ROOTS`). A model file cannot make the engine read, and serve
//! as item metadata, files elsewhere on the machine (`/etc/passwd`, `../../secrets`).

use std::path::{Component, Path, PathBuf};

/// The model file's folder and the allowed data roots.
#[derive(Debug, Clone)]
pub struct DataPaths {
    base_dir: PathBuf,
    /// Each root as given, and resolved (symbolic links, `..`) when it exists.
    roots: Vec<(PathBuf, Option<PathBuf>)>,
}

impl DataPaths {
    /// `base_dir` (the model file's folder) is always a root; `extra` adds more.
    pub fn new(base_dir: &Path, extra: &[PathBuf]) -> Self {
        let roots = std::iter::once(base_dir)
            .chain(extra.iter().map(PathBuf::as_path))
            .map(|r| (r.to_path_buf(), std::fs::canonicalize(r).ok()))
            .collect();
        Self {
            base_dir: base_dir.to_path_buf(),
            roots,
        }
    }

    /// Where relative paths resolve.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// A local file a model file names (`path`, relative to the model file's folder), checked
    /// to lie under a root both as written and as its links resolve; or why not.
    pub fn local_file(&self, path: &str) -> Result<PathBuf, String> {
        let location = self.base_dir.join(path);
        self.check_lexically(&location)?;
        self.check_resolved(&location)?;
        Ok(location)
    }

    /// Whether `path` (absolute and normalised) lies under a root.
    fn allows(&self, path: &Path) -> bool {
        self.roots.iter().any(|(given, resolved)| {
            resolved.as_deref().is_some_and(|r| path.starts_with(r))
                || absolute(given).is_some_and(|g| path.starts_with(g))
        })
    }

    /// Checks a location before anything is read there: the path with `..` and `.` folded must
    /// lie under a root. Touches no file, so a refusal reveals nothing of what lies outside.
    pub(crate) fn check_lexically(&self, location: &Path) -> Result<(), String> {
        match absolute(location) {
            Some(p) if self.allows(&p) => Ok(()),
            _ => Err(self.outside(location)),
        }
    }

    /// Checks what a location resolves to (symbolic links followed): it must stay under a root.
    pub(crate) fn check_resolved(&self, location: &Path) -> Result<(), String> {
        match std::fs::canonicalize(location) {
            Ok(real) if !self.allows(&real) => Err(format!(
                "{} (it leads there through a symbolic link)",
                self.outside(location)
            )),
            _ => Ok(()),
        }
    }

    /// Whether a file found by a glob resolves under a root.
    pub(crate) fn allows_resolved(&self, path: &Path) -> bool {
        std::fs::canonicalize(path).is_ok_and(|real| self.allows(&real))
    }

    fn outside(&self, location: &Path) -> String {
        let roots: Vec<String> = self
            .roots
            .iter()
            .map(|(given, _)| format!("`{}`", given.display()))
            .collect();
        format!(
            "`{}` is outside the data roots ({}: the model file's folder first); move the data under one, or add its folder with `--data-root` or `FEED_DATA_ROOTS`",
            location.display(),
            roots.join(", ")
        )
    }
}

/// `path` made absolute (against the working folder) with `.` and `..` folded, without touching
/// the file system.
fn absolute(path: &Path) -> Option<PathBuf> {
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        std::env::current_dir().ok()?.join(path)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_stay_under_the_roots() {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        let extra = dir.path().join("shared");
        std::fs::create_dir_all(&model).unwrap();
        std::fs::create_dir_all(&extra).unwrap();
        let paths = DataPaths::new(&model, std::slice::from_ref(&extra));
        assert!(paths.check_lexically(&model.join("data/x.csv")).is_ok());
        assert!(paths
            .check_lexically(&model.join("../shared/x.csv"))
            .is_ok());
        let e = paths
            .check_lexically(&model.join("../../etc/passwd"))
            .unwrap_err();
        assert!(
            e.contains("outside the data roots") && e.contains("--data-root"),
            "{e}"
        );
        assert!(paths.check_lexically(Path::new("/etc/passwd")).is_err());
        // A link inside a root that points outside is refused once resolved.
        #[cfg(unix)]
        {
            let secret = dir.path().join("secret.csv");
            std::fs::write(&secret, "a\n1\n").unwrap();
            let link = model.join("link.csv");
            std::os::unix::fs::symlink(&secret, &link).unwrap();
            assert!(paths.check_lexically(&link).is_ok());
            assert!(paths
                .check_resolved(&link)
                .unwrap_err()
                .contains("symbolic link"));
            assert!(!paths.allows_resolved(&link));
        }
    }
}
