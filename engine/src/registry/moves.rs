//! Moving ACTIVE by hand (`feedctl rollback`): to another complete version of the model, by the
//! same atomic write a deploy makes, recorded in the status log of both versions.

use chrono::{DateTime, Utc};

use super::remote::Expect;
use super::{append_remote_log, status, version_rel, Pointer, Registry, Status, VersionInfo};
use crate::error::{Error, Result};
use crate::store;

/// A move of ACTIVE from one version to another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Move {
    pub model: String,
    pub from: u32,
    pub to: u32,
}

impl VersionInfo {
    /// Whether the version finished deploying: its artifacts are whole, so ACTIVE may name it.
    /// Such a version has logged ACTIVE (it served) or INACTIVE (a newer one won the race).
    pub fn is_complete(&self) -> bool {
        self.log
            .iter()
            .any(|e| matches!(e.status, Status::Active | Status::Inactive))
    }

    /// Whether the version ever served (its log has ACTIVE): a candidate that was never
    /// promoted is complete but did not.
    pub fn served(&self) -> bool {
        self.log.iter().any(|e| e.status == Status::Active)
    }
}

impl Registry {
    /// The version ACTIVE names and when it started to.
    pub fn active_since(&self, model: &str) -> Result<Option<(u32, DateTime<Utc>)>> {
        let pointer = match &self.remote {
            Some(r) => self.remote_pointer(r, model)?.map(|(p, _)| p),
            None => self.local_pointer(model)?,
        };
        Ok(pointer.map(|p| (p.version, p.since)))
    }

    /// Where a rollback of `model` goes: `to`, or else the newest version older than the
    /// ACTIVE one that served. Refused when nothing is ACTIVE, when `to` is ACTIVE already, unknown or
    /// not complete.
    ///
    /// A version being made would replace the rolled-back one when it deploys: that is refused
    /// too, unless `force`.
    pub fn rollback_target(&self, model: &str, to: Option<u32>, force: bool) -> Result<Move> {
        let versions = self.versions(model)?;
        let Some(from) = self.active_version(model)? else {
            return Err(self.no_active_version(model));
        };
        if let Some(running) = versions
            .iter()
            .find(|v| v.status.is_running())
            .filter(|_| !force)
        {
            return Err(Error::invalid(
                "version",
                format!(
                    "version {} of `{model}` is being made ({}); when it deploys it replaces the version rolled back to",
                    running.version, running.status
                ),
            )
            .with_hint("wait for it to end or stop its process, or pass --force to roll back now anyway"));
        }
        let complete = || versions.iter().filter(|v| v.is_complete());
        let to = match to {
            Some(to) => {
                let Some(v) = versions.iter().find(|v| v.version == to) else {
                    let known: Vec<String> = complete().map(|v| v.version.to_string()).collect();
                    return Err(Error::NotFound {
                        what: "version",
                        name: format!("{model}/{to}"),
                        hint: Some(if known.is_empty() {
                            format!("`{model}` has no complete version")
                        } else {
                            format!("complete versions of `{model}`: {}", known.join(", "))
                        }),
                    });
                };
                if to == from {
                    return Err(Error::invalid(
                        "version",
                        format!("version {to} of `{model}` is ACTIVE already"),
                    ));
                }
                if !v.is_complete() {
                    return Err(Error::invalid(
                        "version",
                        format!(
                            "version {to} of `{model}` never finished deploying ({}: {}); ACTIVE only names a complete version",
                            v.status, v.message
                        ),
                    )
                    .with_hint("see view-model for the complete versions"));
                }
                to
            }
            // Back to what served before, never to a candidate that was not promoted.
            None => complete()
                .filter(|v| v.version < from && v.served())
                .map(|v| v.version)
                .next_back()
                .ok_or_else(|| {
                    Error::invalid(
                        "version",
                        format!(
                            "`{model}` has no version older than its ACTIVE version {from} that served"
                        ),
                    )
                    .with_hint("see view-model; --version N moves ACTIVE to any complete version")
                })?,
        };
        Ok(Move {
            model: model.to_string(),
            from,
            to,
        })
    }

    /// Points ACTIVE at `m.to` if it still names `m.from` (the check and the write are one step:
    /// under the model lock, or a conditional write on object storage), then records the move
    /// in both versions' logs. `why` says who moved it.
    pub fn move_active(&self, m: &Move, why: &str) -> Result<()> {
        let moved = |current: Option<u32>| {
            match current {
            Some(v) if v == m.from => Ok(()),
            other => Err(Error::invalid(
                "version",
                format!(
                    "ACTIVE of `{}` moved to {} meanwhile (it named {} when the move was checked); nothing changed",
                    m.model,
                    other.map_or("nothing".to_string(), |v| format!("version {v}")),
                    m.from
                ),
            )
            .with_hint("run the command again")),
        }
        };
        let pointer = serde_json::to_vec(&Pointer {
            version: m.to,
            since: Utc::now(),
        })
        .expect("pointer serialises");
        match &self.remote {
            None => {
                let _guard = self.lock_model(&m.model)?;
                moved(self.active_version(&m.model)?)?;
                store::write_atomic(&self.model_dir(&m.model).join("ACTIVE"), &pointer)?;
            }
            Some(r) => loop {
                let current = self.remote_pointer(r, &m.model)?;
                moved(current.as_ref().map(|(p, _)| p.version))?;
                let tag = current.map(|(_, t)| t).unwrap_or(None);
                let rel = format!("models/{}/ACTIVE", m.model);
                if r.put(&rel, pointer.clone(), Expect::Tag(&tag))?.is_ok() {
                    break;
                }
            },
        }
        self.record(&m.model, m.to, Status::Active, why)?;
        self.record(&m.model, m.from, Status::Inactive, why)
    }

    /// Appends a line to a version's status log.
    pub(super) fn record(
        &self,
        model: &str,
        version: u32,
        status: Status,
        message: &str,
    ) -> Result<()> {
        match &self.remote {
            None => status::append(
                &self.version_dir(model, version).join("status.jsonl"),
                status,
                message,
            ),
            Some(r) => {
                let rel = format!("{}/status.jsonl", version_rel(model, version));
                append_remote_log(r, &rel, status, message, |_| true).map(|_| ())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rollback_moves_to_the_newest_complete_older_version_and_is_logged() {
        let home = tempfile::tempdir().unwrap();
        let reg = Registry::open(home.path()).unwrap();
        for _ in 0..2 {
            let run = reg.begin("m", "x", "create").unwrap();
            run.promote().unwrap();
        }
        // Version 3 failed; version 4 serves.
        let failed = reg.begin("m", "x", "update").unwrap();
        failed.set_status(Status::Error, "boom").unwrap();
        drop(failed);
        reg.begin("m", "x", "update").unwrap().promote().unwrap();
        let first = reg.active_since("m").unwrap().unwrap();
        assert_eq!(first.0, 4);

        let m = reg.rollback_target("m", None, false).unwrap();
        assert_eq!((m.from, m.to), (4, 2));
        reg.move_active(&m, "rolled back from version 4").unwrap();
        let (active, since) = reg.active_since("m").unwrap().unwrap();
        assert_eq!(active, 2);
        assert!(since >= first.1);
        let v4 = reg.version("m", Some(4)).unwrap();
        assert_eq!(v4.status, Status::Inactive);
        assert_eq!(v4.message, "rolled back from version 4");
        assert_eq!(reg.version("m", Some(2)).unwrap().status, Status::Active);

        // Refusals: the failed version, the ACTIVE one, an unknown one, a stale move.
        let err = reg
            .rollback_target("m", Some(3), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("never finished deploying"), "{err}");
        assert!(reg.rollback_target("m", Some(2), false).is_err());
        let err = format!(
            "{:?}",
            reg.rollback_target("m", Some(9), false).unwrap_err()
        );
        assert!(err.contains("1, 2, 4"), "{err}");
        let err = reg.move_active(&m, "again").unwrap_err().to_string();
        assert!(err.contains("moved to version 2 meanwhile"), "{err}");
        // A version being made would undo a rollback when it deploys: refused unless forced.
        let running = reg.begin("m", "x", "update").unwrap();
        let err = reg
            .rollback_target("m", Some(4), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("version 5 of `m` is being made"), "{err}");
        assert!(reg.rollback_target("m", Some(4), true).is_ok());
        drop(running);
        // Forward again to a newer complete version, and a new deploy still wins.
        let m = reg.rollback_target("m", Some(4), false).unwrap();
        reg.move_active(&m, "back to 4").unwrap();
        assert_eq!(reg.active_version("m").unwrap(), Some(4));
        reg.begin("m", "x", "update").unwrap().promote().unwrap();
        assert_eq!(reg.active_version("m").unwrap(), Some(6));
    }
}
