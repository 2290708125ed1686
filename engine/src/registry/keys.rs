//! API keys: stored in the home (`keys.json`) as SHA-256 hashes only, each with a scope and
//! an optional rate limit. The plain key is shown once, when it is made.
//!
//! A key is `feed_<id>_<secret>`: 8 hex digits naming it in listings and logs, then 256 random
//! bits. The random part makes a slow hash pointless (nobody brute-forces 2^256), so checking a
//! presented key is one SHA-256 and a constant-time comparison against every live key's hash.

use chrono::{DateTime, Utc};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::remote::{Expect, Remote};
use super::Registry;
use crate::config::resolve::is_valid_name;
use crate::error::{did_you_mean, Error, IoContext, Result};
use crate::store;

/// The file, relative to the home.
const FILE: &str = "keys.json";

/// What a key may do. `admin` may do everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Read models and query them (`/query`, `/models/{name}/query|rank`, `GET /models`).
    Query,
    /// Send events and catalog changes (`POST /models/{name}/events|items`).
    Events,
    /// Everything, `/metrics` and the console included.
    Admin,
}

impl Scope {
    pub const ALL: [Scope; 3] = [Scope::Query, Scope::Events, Scope::Admin];

    /// Whether a key of this scope may use a route that needs `needed`.
    pub fn allows(self, needed: Scope) -> bool {
        self == Scope::Admin || self == needed
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Query => "query",
            Scope::Events => "events",
            Scope::Admin => "admin",
        }
    }
}

impl std::fmt::Display for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.as_str())
    }
}

impl std::str::FromStr for Scope {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Scope::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| {
                Error::invalid("scope", format!("unknown scope `{s}`"))
                    .with_hint("one of query, events, admin")
            })
    }
}

/// A stored key: never the key itself.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApiKey {
    /// The public part of the key (`feed_<id>_…`), shown in listings.
    pub id: String,
    pub name: String,
    pub scope: Scope,
    /// SHA-256 of the whole key, hex.
    pub sha256: String,
    pub created_at: DateTime<Utc>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<DateTime<Utc>>,
    /// Requests per second this key may make (bursts of one second's worth); `None`: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<f64>,
}

impl ApiKey {
    pub fn is_live(&self) -> bool {
        self.revoked_at.is_none()
    }
}

/// What `create_key` is asked for.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    pub scope: Scope,
    pub rate_limit: Option<f64>,
}

#[derive(Default, Serialize, Deserialize)]
struct KeyFile {
    keys: Vec<ApiKey>,
}

/// The live keys, as a server checks requests against them.
#[derive(Debug, Default, Clone)]
pub struct KeyRing {
    live: Vec<(ApiKey, [u8; 32])>,
}

impl KeyRing {
    pub fn new(keys: Vec<ApiKey>) -> Self {
        let live = keys
            .into_iter()
            .filter(ApiKey::is_live)
            .filter_map(|k| {
                let mut hash = [0u8; 32];
                if hex_decode(&k.sha256, &mut hash) {
                    Some((k, hash))
                } else {
                    tracing::warn!(key = %k.id, name = %k.name, "the key store holds a damaged hash for this key; it is refused (revoke it and create another)");
                    None
                }
            })
            .collect();
        Self { live }
    }

    pub fn is_empty(&self) -> bool {
        self.live.is_empty()
    }

    /// The live key `presented` is, if any. Every live key's hash is compared in constant time
    /// and none is skipped, so the time taken tells nothing about which bytes matched.
    pub fn verify(&self, presented: &str) -> Option<&ApiKey> {
        let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
        let mut found = None;
        for (key, stored) in &self.live {
            if bool::from(stored.ct_eq(&hash)) {
                found = Some(key);
            }
        }
        found
    }
}

fn hex_decode(text: &str, out: &mut [u8; 32]) -> bool {
    if text.len() != 64 {
        return false;
    }
    for (i, b) in out.iter_mut().enumerate() {
        match u8::from_str_radix(&text[2 * i..2 * i + 2], 16) {
            Ok(v) => *b = v,
            Err(_) => return false,
        }
    }
    true
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn random_bytes<const N: usize>() -> Result<[u8; N]> {
    let mut out = [0u8; N];
    getrandom::fill(&mut out)
        .map_err(|e| Error::Internal(format!("the system's random source failed: {e}")))?;
    Ok(out)
}

impl Registry {
    /// Every key ever made, revoked ones included, oldest first.
    pub fn keys(&self) -> Result<Vec<ApiKey>> {
        Ok(self.read_keys()?.0.keys)
    }

    /// The live keys.
    pub fn key_ring(&self) -> Result<KeyRing> {
        Ok(KeyRing::new(self.keys()?))
    }

    /// Makes a key: returns it in plain (the only time it exists outside its holder) with
    /// what is stored of it.
    pub fn create_key(&self, new: &NewKey) -> Result<(String, ApiKey)> {
        if !is_valid_name(&new.name) {
            return Err(
                Error::invalid("name", format!("`{}` is not a key name", new.name))
                    .with_hint("letters, digits, `_` and `-`, starting with a letter"),
            );
        }
        if let Some(r) = new.rate_limit {
            if !(r.is_finite() && r > 0.0) {
                return Err(Error::invalid(
                    "rate-limit",
                    format!("{r} is not a rate: requests per second, above 0"),
                ));
            }
        }
        let id = hex(&random_bytes::<4>()?);
        let plain = format!("feed_{id}_{}", hex(&random_bytes::<32>()?));
        let key = ApiKey {
            id,
            name: new.name.clone(),
            scope: new.scope,
            sha256: hex(&Sha256::digest(plain.as_bytes())),
            created_at: Utc::now(),
            revoked_at: None,
            rate_limit: new.rate_limit,
        };
        self.update_keys(|file| {
            if file.keys.iter().any(|k| k.is_live() && k.name == new.name) {
                return Err(Error::invalid(
                    "name",
                    format!("a live key is already named `{}`", new.name),
                )
                .with_hint("choose another name, or revoke that key first"));
            }
            file.keys.push(key.clone());
            Ok(())
        })?;
        Ok((plain, key))
    }

    /// Revokes the live key named `name` (or whose id is `name`). Servers refuse it from
    /// their next poll.
    pub fn revoke_key(&self, name: &str) -> Result<ApiKey> {
        let mut revoked = None;
        self.update_keys(|file| {
            let live = || file.keys.iter().filter(|k| k.is_live());
            let names: Vec<String> = live().map(|k| k.name.clone()).collect();
            let Some(key) = file
                .keys
                .iter_mut()
                .find(|k| k.is_live() && (k.name == name || k.id == name))
            else {
                return Err(Error::NotFound {
                    what: "live API key",
                    name: name.to_string(),
                    hint: did_you_mean(name, names.iter().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`?"))
                        .or_else(|| Some("see `feedctl keys list`".into())),
                });
            };
            key.revoked_at = Some(Utc::now());
            revoked = Some(key.clone());
            Ok(())
        })?;
        revoked.ok_or_else(|| Error::Internal("revoked no key".into()))
    }

    /// The key file, and on object storage the tag of the object read (`None`: there is none;
    /// `Some(None)`: it exists but the store gave no tag).
    #[allow(clippy::type_complexity)]
    fn read_keys(&self) -> Result<(KeyFile, Option<Option<String>>)> {
        let (bytes, tag) = match &self.remote {
            Some(r) => match r.get(FILE)? {
                Some(read) => (Some(read.bytes), Some(read.etag)),
                None => (None, None),
            },
            None => {
                let path = self.home.join(FILE);
                match std::fs::read(&path) {
                    Ok(b) => (Some(b), None),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, None),
                    Err(e) => return Err(Error::storage(format!("reading {}", path.display()), e)),
                }
            }
        };
        let file = match bytes {
            Some(b) => serde_json::from_slice(&b).map_err(|e| {
                Error::Internal(format!(
                    "the key store {} is corrupt ({e}); restore it from a backup, or move it away and create the keys again",
                    self.home.join(FILE).display()
                ))
            })?,
            None => KeyFile::default(),
        };
        Ok((file, tag))
    }

    /// Reads the key file, changes it, writes it back: under a lock on a local home, by a
    /// conditional write on object storage (again on a lost race).
    fn update_keys(&self, mut change: impl FnMut(&mut KeyFile) -> Result<()>) -> Result<()> {
        match &self.remote {
            Some(r) => loop {
                let (mut file, tag) = self.read_keys()?;
                change(&mut file)?;
                if write_remote(r, &file, tag.as_ref())? {
                    return Ok(());
                }
            },
            None => {
                let lock_path = self.home.join(".keys.lock");
                let lock = super::lock_file(&lock_path)?;
                lock.lock()
                    .ctx(|| format!("locking {}", lock_path.display()))?;
                let (mut file, _) = self.read_keys()?;
                change(&mut file)?;
                store::write_private(&self.home.join(FILE), &to_json(&file))
            }
        }
    }
}

fn to_json(file: &KeyFile) -> Vec<u8> {
    let mut bytes = serde_json::to_vec_pretty(file).expect("keys serialise");
    bytes.push(b'\n');
    bytes
}

/// Writes the file if it is unchanged since read (`tag`) or still absent (`None`).
fn write_remote(r: &Remote, file: &KeyFile, tag: Option<&Option<String>>) -> Result<bool> {
    let expect = match tag {
        Some(t) => Expect::Tag(t),
        None => Expect::Absent,
    };
    Ok(r.put(FILE, to_json(file), expect)?.is_ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stored_as_hashes_and_checked_by_scope() {
        let home = tempfile::tempdir().unwrap();
        let reg = Registry::open(home.path()).unwrap();
        let new = |name: &str, scope| NewKey {
            name: name.into(),
            scope,
            rate_limit: None,
        };
        let (query, _) = reg.create_key(&new("app", Scope::Query)).unwrap();
        let (admin, stored) = reg.create_key(&new("ops", Scope::Admin)).unwrap();
        assert!(query.starts_with("feed_") && query.len() == 5 + 8 + 1 + 64);
        let text = std::fs::read_to_string(home.path().join(FILE)).unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(home.path().join(FILE))
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(
                mode & 0o077,
                0,
                "only the owner reads the key store: {mode:o}"
            );
        }
        assert!(!text.contains(&query[14..]) && !text.contains(&admin[14..]));
        assert!(text.contains(&stored.sha256));

        let ring = reg.key_ring().unwrap();
        assert_eq!(ring.verify(&query).unwrap().name, "app");
        assert_eq!(ring.verify(&admin).unwrap().scope, Scope::Admin);
        assert!(ring.verify("feed_00000000_00").is_none());
        let mut wrong = admin.clone();
        wrong.pop();
        wrong.push('x');
        assert!(ring.verify(&wrong).is_none());
        assert!(Scope::Admin.allows(Scope::Events) && !Scope::Query.allows(Scope::Events));

        // Names are unique among live keys; a revoked one frees its name.
        let err = reg.create_key(&new("app", Scope::Events)).unwrap_err();
        assert!(err.to_string().contains("already named"), "{err}");
        let err = reg.revoke_key("ap").unwrap_err();
        assert!(format!("{err:?}").contains("did you mean `app`"), "{err:?}");
        reg.revoke_key("app").unwrap();
        assert!(reg.key_ring().unwrap().verify(&query).is_none());
        reg.create_key(&new("app", Scope::Events)).unwrap();
        assert_eq!(reg.keys().unwrap().len(), 3);
        assert!(reg
            .create_key(&NewKey {
                rate_limit: Some(0.0),
                ..new("x", Scope::Query)
            })
            .is_err());
        assert!(reg.create_key(&new("no spaces", Scope::Query)).is_err());
    }
}
