//! Leases: the locks of a home on object storage.
//!
//! A lease is an object naming its holder and when it expires. It is taken by creating it
//! (`If-None-Match: *`), or by replacing one that expired or was released (`If-Match` its
//! ETag), so two takers never both win. The holder renews it every third of its life from a
//! thread of its own; a holder that dies stops renewing, and once the lease expires a reader
//! knows the holder is gone, as the release of a `flock` tells it on a local home. Expiry is
//! judged by the reader's clock against the holder's: clocks must agree to well within the
//! lease's life (30 s by default).

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::remote::{Expect, Remote};
use crate::error::Result;

#[derive(Serialize, Deserialize)]
struct Record {
    holder: String,
    expires_at: DateTime<Utc>,
    /// Let go by its holder: free to take at once.
    #[serde(default)]
    released: bool,
}

impl Record {
    fn live(&self) -> bool {
        !self.released && self.expires_at > Utc::now()
    }
}

/// Whether the lease at `rel` is held: present, not released, not expired.
pub(super) fn is_held(remote: &Remote, rel: &str) -> Result<bool> {
    Ok(remote
        .get(rel)?
        .and_then(|r| serde_json::from_slice::<Record>(&r.bytes).ok())
        .is_some_and(|r| r.live()))
}

/// A lease this process holds; renewed until dropped, then released.
pub(super) struct Lease {
    shared: Arc<Shared>,
    renewer: Option<JoinHandle<()>>,
}

struct Shared {
    remote: Arc<Remote>,
    rel: String,
    holder: String,
    state: Mutex<State>,
    wake: Condvar,
}

struct State {
    etag: Option<String>,
    /// Someone replaced the lease: this holder no longer has it.
    lost: bool,
    stop: bool,
}

/// How to take a lease.
pub(super) enum Take {
    /// Only by creating it: the object must not exist (a version's run lease, which also
    /// claims the version's number).
    New,
    /// By creating it, or by replacing it when expired or released (a model's writer lease).
    Free,
}

impl Lease {
    /// Takes the lease at `rel`; `None` when another holder has it.
    pub(super) fn take(remote: &Arc<Remote>, rel: &str, how: Take) -> Result<Option<Self>> {
        let holder = format!(
            "{}:{}:{}",
            hostname(),
            std::process::id(),
            Utc::now().timestamp_nanos_opt().unwrap_or_default()
        );
        let record = |holder: &str| Record {
            holder: holder.to_string(),
            expires_at: Utc::now()
                + chrono::Duration::from_std(remote.lease_ttl).expect("a lease's life fits"),
            released: false,
        };
        let bytes = serde_json::to_vec(&record(&holder)).expect("a lease serialises");
        let etag = match remote.put(rel, bytes.clone(), Expect::Absent)? {
            Ok(etag) => etag,
            Err(_) if matches!(how, Take::New) => return Ok(None),
            Err(_) => {
                let Some(current) = remote.get(rel)? else {
                    // Deleted between the two calls: the next try creates it.
                    return Self::take(remote, rel, how);
                };
                let free =
                    serde_json::from_slice::<Record>(&current.bytes).map_or(true, |r| !r.live());
                if !free {
                    return Ok(None);
                }
                match remote.put(rel, bytes, Expect::Tag(&current.etag))? {
                    Ok(etag) => etag,
                    Err(_) => return Ok(None),
                }
            }
        };
        let shared = Arc::new(Shared {
            remote: remote.clone(),
            rel: rel.to_string(),
            holder,
            state: Mutex::new(State {
                etag,
                lost: false,
                stop: false,
            }),
            wake: Condvar::new(),
        });
        let renewer = {
            let shared = shared.clone();
            std::thread::Builder::new()
                .name("feed-lease".into())
                .spawn(move || shared.renew_until_stopped())
                .map_err(|e| crate::Error::storage(format!("starting the renewal of {rel}"), e))?
        };
        Ok(Some(Self {
            shared,
            renewer: Some(renewer),
        }))
    }

    /// Stops renewing, as a process that died would (the unit tests' stand-in for SIGKILL).
    #[cfg(test)]
    pub(super) fn stop_renewing_for_tests(&self) {
        let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        state.stop = true;
        self.shared.wake.notify_all();
    }

    /// Whether another holder replaced this lease (it expired unrenewed).
    pub(super) fn lost(&self) -> bool {
        self.shared
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .lost
    }
}

impl Shared {
    fn renew_until_stopped(&self) {
        let every = self.remote.lease_ttl / 3;
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        loop {
            state = self
                .wake
                .wait_timeout(state, every)
                .unwrap_or_else(|e| e.into_inner())
                .0;
            if state.stop || state.lost {
                return;
            }
            let record = Record {
                holder: self.holder.clone(),
                expires_at: Utc::now()
                    + chrono::Duration::from_std(self.remote.lease_ttl).expect("fits"),
                released: false,
            };
            let bytes = serde_json::to_vec(&record).expect("a lease serialises");
            match self.remote.put(&self.rel, bytes, Expect::Tag(&state.etag)) {
                Ok(Ok(etag)) => state.etag = etag,
                Ok(Err(_)) => {
                    // A renewal whose answer was lost may have landed: if the lease still names
                    // this holder, carry on with its tag.
                    let ours = self.remote.get(&self.rel).ok().flatten().and_then(|r| {
                        let record = serde_json::from_slice::<Record>(&r.bytes).ok()?;
                        (record.holder == self.holder && !record.released).then_some(r.etag)
                    });
                    match ours {
                        Some(etag) => state.etag = etag,
                        None => {
                            tracing::error!(lease = %self.rel, "lost the lease: another process took it after it expired");
                            state.lost = true;
                            return;
                        }
                    }
                }
                // Tried again at the next tick; two misses still leave a third of its life.
                Err(e) => tracing::warn!(lease = %self.rel, "renewing the lease: {e}"),
            }
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        {
            let mut state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
            state.stop = true;
            self.shared.wake.notify_all();
        }
        if let Some(t) = self.renewer.take() {
            let _ = t.join();
        }
        let state = self.shared.state.lock().unwrap_or_else(|e| e.into_inner());
        if state.lost {
            return;
        }
        let record = Record {
            holder: self.shared.holder.clone(),
            expires_at: Utc::now(),
            released: true,
        };
        let bytes = serde_json::to_vec(&record).expect("a lease serialises");
        // Best effort: a lease not released still expires.
        if let Err(e) = self
            .shared
            .remote
            .put(&self.shared.rel, bytes, Expect::Tag(&state.etag))
        {
            tracing::warn!(lease = %self.shared.rel, "releasing the lease: {e}");
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "host".into())
}
