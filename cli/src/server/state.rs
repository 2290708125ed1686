//! The loaded ACTIVE versions. Requests read an `Arc<Snapshot>` from an atomically swapped map
//! (no lock on the request path); one watcher task replaces entries when ACTIVE moves.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use feed_engine::live::{EventLog, ItemLog, LiveItems, LiveUsers};
use feed_engine::query::Pages;
use feed_engine::{Registry, Snapshot};

use super::auth::Auth;
use super::drift::{Drift, PolicyDrift};
use super::metrics::Metrics;
use super::rollout::{Others, Rollout, Route, Shadows};
use feed_engine::config::experiments::Target;
use feed_engine::serving::artifacts;
use std::collections::BTreeMap;

/// A model's live events and catalog changes: the overlays read from its logs, and the logs'
/// writers, started on the first batch this server takes.
pub struct Live {
    pub users: LiveUsers,
    pub items: LiveItems,
    log: OnceLock<EventLog>,
    item_log: OnceLock<ItemLog>,
    /// Held while the catalog changes are applied: one build at a time per model.
    applying: Mutex<()>,
    /// When the event log was last read to its end (the ingest lag's start).
    caught_up: Mutex<Option<std::time::Instant>>,
}

impl Live {
    /// The writer of the event log (its thread starts on first use).
    pub fn log(&self) -> feed_engine::Result<&EventLog> {
        if let Some(log) = self.log.get() {
            return Ok(log);
        }
        let log = EventLog::open(self.users.dir())?;
        Ok(self.log.get_or_init(|| log))
    }

    /// The writer of the item log.
    pub fn item_log(&self) -> feed_engine::Result<&ItemLog> {
        if let Some(log) = self.item_log.get() {
            return Ok(log);
        }
        let log = ItemLog::open(self.items.dir())?;
        Ok(self.item_log.get_or_init(|| log))
    }

    /// When the event log was last read to its end; `None` before the first read.
    pub fn caught_up_at(&self) -> Option<std::time::Instant> {
        *self.caught_up.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mark_caught_up(&self) {
        *self.caught_up.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::time::Instant::now());
    }
}

/// A served page: its item ids, scores, and each item's features when they were asked for.
pub type Page<'a> = (
    &'a [String],
    &'a [f64],
    Option<Vec<std::collections::BTreeMap<String, f64>>>,
);

/// A model as served: its loaded ACTIVE version, and that version with the model's catalog
/// changes applied (the same snapshot when there are none), built at `generation` of the
/// changes. Replaced as one value, so a request never sees a version without its changes.
#[derive(Clone)]
struct Served {
    base: Arc<Snapshot>,
    serving: Arc<Snapshot>,
    generation: u64,
    /// The version's served scores against its references.
    drift: Arc<Drift>,
    /// Its experiments' variants and the shadow, built over `serving`.
    rollout: Arc<Rollout>,
    /// The lowest live watermarks (events, catalog changes) of the versions it serves — its
    /// own and its rollout's: the overlays keep what is above them, so that an older version
    /// answering an experiment or a shadow still sees the changes made after its fetch.
    floors: (u64, u64),
}

pub struct AppState {
    pub registry: Registry,
    /// API keys: who may use which route.
    pub auth: Auth,
    pub metrics: Metrics,
    /// Rankings being paged through, so that later pages continue the first.
    pub pages: Pages,
    snapshots: ArcSwap<HashMap<String, Served>>,
    /// Versions that failed to load: not retried (their files do not change), logged once.
    failed: Mutex<HashSet<(String, u32)>>,
    /// Live events by model, read from each model's log.
    live_models: Mutex<HashMap<String, Arc<Live>>>,
    /// Served pages so far: the low half of each `request_id`.
    requests: AtomicU64,
    /// When this server started (ns): the high half, so ids differ across restarts.
    started: u64,
    /// Versions loaded for experiments and shadows.
    pub(super) others: Others,
    pub(super) shadows: Shadows,
}

impl AppState {
    /// The state of a server over `registry`; `keys_required` when requests need an API key.
    pub fn new(registry: Registry, keys_required: bool) -> Self {
        Self {
            registry,
            auth: Auth::new(keys_required),
            metrics: Metrics::new(),
            pages: Pages::new(),
            snapshots: ArcSwap::from_pointee(HashMap::new()),
            failed: Mutex::new(HashSet::new()),
            live_models: Mutex::new(HashMap::new()),
            requests: AtomicU64::new(0),
            started: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0),
            others: Others::default(),
            shadows: Shadows::default(),
        }
    }

    /// This server's name among the servers of a home (its shadow measurements' file).
    pub fn server_id(&self) -> String {
        format!("{:x}-{}", self.started, std::process::id())
    }

    /// How a request of `model` for `target` by `user` is answered: the served snapshot, or an
    /// experiment variant's, and the shadow to score it with too.
    pub fn route(&self, model: &str, target: Target<'_>, user: Option<&str>) -> Option<Route> {
        let map = self.snapshots.load();
        let s = map.get(model)?;
        Some(s.rollout.route(&s.serving, target, user))
    }

    /// A new id for a served page, unique to this server's run.
    pub fn request_id(&self) -> String {
        let n = self.requests.fetch_add(1, Ordering::Relaxed);
        format!("{:x}-{n:x}", self.started)
    }

    /// With `serving.log_impressions`, queues the impressions of a served page for the model's
    /// log: the answer does not wait for the write, and no thread waits on its fsync.
    pub fn log_impressions(
        &self,
        snapshot: &Snapshot,
        user: Option<String>,
        request_id: &str,
        (ids, scores, features): Page<'_>,
        offset: usize,
        variant: Option<&str>,
    ) {
        // A home on object storage keeps no event log (see `Registry::require_local`). The
        // setting is the served version's: an experiment's other version answers under it.
        let model = snapshot.model();
        let logged = self
            .snapshot(model)
            .map_or(snapshot.config.serving.log_impressions, |s| {
                s.config.serving.log_impressions
            })
            && !self.registry.is_remote();
        let Some(user) = user.filter(|_| logged) else {
            return;
        };
        let mut features = features.unwrap_or_default().into_iter();
        let items = ids
            .iter()
            .zip(scores)
            .map(|(id, &score)| feed_engine::live::Shown {
                item_id: id.clone(),
                score,
                features: features.next(),
            })
            .collect();
        let events = feed_engine::live::impressions(
            &user,
            request_id,
            items,
            offset,
            crate::events::now(),
            variant,
        );
        let live = self.live(&snapshot.manifest.model);
        // Queued for the log's next group; no thread waits on its fsync. Once written, the
        // overlay reads them (on the writer thread), so `served()` sees the page at once.
        let reader = live.clone();
        match live.log() {
            Ok(log) => log.submit(events, move |written| {
                let read = written.and_then(|_| reader.users.catch_up());
                if let Err(e) = read {
                    tracing::warn!("logging impressions: {e}");
                }
            }),
            Err(e) => tracing::warn!("logging impressions: {e}"),
        }
    }

    /// The live events of `model` (its log read so far); created on first use.
    pub fn live(&self, model: &str) -> Arc<Live> {
        let mut live = self.live_models.lock().unwrap_or_else(|e| e.into_inner());
        live.entry(model.to_string())
            .or_insert_with(|| {
                let dir = self.registry.model_dir(model);
                Arc::new(Live {
                    users: LiveUsers::new(&feed_engine::live::log_dir(&dir)),
                    items: LiveItems::new(&feed_engine::live::items_dir(&dir)),
                    log: OnceLock::new(),
                    item_log: OnceLock::new(),
                    applying: Mutex::new(()),
                    caught_up: Mutex::new(None),
                })
            })
            .clone()
    }

    /// Reads what the logs of served models gained from other processes (`feedctl events
    /// push`; this server's own batches are read as it acknowledges them), and forgets the
    /// events each serving version already trained on.
    fn catch_up_live(&self, watermarks: &HashMap<String, u64>) {
        let mut live = self.live_models.lock().unwrap_or_else(|e| e.into_inner());
        live.retain(|m, _| watermarks.contains_key(m));
        drop(live);
        for (model, &watermark) in watermarks {
            let dir = feed_engine::live::log_dir(&self.registry.model_dir(model));
            if dir.exists() {
                let live = self.live(model);
                match live.users.follow(watermark) {
                    Ok(()) => live.mark_caught_up(),
                    Err(e) => tracing::warn!(%model, "reading live events: {e}"),
                }
            }
            if let Err(e) = self.apply_items(model) {
                tracing::warn!(%model, "applying live item changes: {e}");
            }
        }
    }

    /// `base` as served: with `model`'s catalog changes applied, and its rollout with the
    /// shadow version `shadow`. A failure to build is logged and the version served without
    /// them until a later build succeeds.
    fn serve(&self, model: &str, base: Arc<Snapshot>, drift: Drift, shadow: Option<u32>) -> Served {
        let live = self.live(model);
        let _one = live.applying.lock().unwrap_or_else(|e| e.into_inner());
        let drift = Arc::new(drift);
        let floors = self.floors(model, &base, shadow);
        let (serving, generation) = build(&live, &base, floors.1).unwrap_or_else(|e| {
            tracing::warn!(%model, "applying live item changes: {e}");
            // Never current: the next poll tries again.
            (base.clone(), u64::MAX)
        });
        let rollout = Arc::new(self.rollout(model, &serving, shadow));
        Served {
            base,
            serving,
            generation,
            drift,
            rollout,
            floors,
        }
    }

    /// Counts the scores of a page served from `model`'s version `version` (a page of a version
    /// replaced meanwhile is not counted against the new one's references).
    pub fn observe_scores(&self, model: &str, version: u32, features: &[BTreeMap<String, f64>]) {
        if let Some(s) = self.snapshots.load().get(model) {
            if s.base.version() == version {
                s.drift.observe(features);
            }
        }
    }

    /// Per served model: its version and each policy's PSI and count.
    pub fn drift(&self) -> Vec<(String, u32, Vec<PolicyDrift>)> {
        self.snapshots
            .load()
            .iter()
            .map(|(m, s)| (m.clone(), s.base.version(), s.drift.psi()))
            .collect()
    }

    /// Reads `model`'s item log and applies its changes over the served version, unless what
    /// is served is current. Builds off the request path (a catalog-sized copy of the changed
    /// columns); requests keep the previous build until the new one is stored.
    pub fn apply_items(&self, model: &str) -> feed_engine::Result<()> {
        let live = self.live(model);
        let _one = live.applying.lock().unwrap_or_else(|e| e.into_inner());
        // Read under the lock: a build for a newer version may have been stored meanwhile.
        let Some(served) = self.snapshots.load().get(model).cloned() else {
            return Ok(());
        };
        live.items.follow(served.floors.1)?;
        if served.generation == live.items.generation() {
            return Ok(());
        }
        let (serving, generation) = build(&live, &served.base, served.floors.1)?;
        let rollout = Arc::new(self.rollout(model, &serving, served.rollout.shadow_version));
        self.snapshots.rcu(|current| {
            let mut next = HashMap::clone(current);
            if let Some(s) = next.get_mut(model) {
                if Arc::ptr_eq(&s.base, &served.base) {
                    s.serving = serving.clone();
                    s.generation = generation;
                    s.rollout = rollout.clone();
                }
            }
            next
        });
        Ok(())
    }

    /// The models whose live events this server holds.
    pub fn live_models(&self) -> Vec<(String, Arc<Live>)> {
        let live = self.live_models.lock().unwrap_or_else(|e| e.into_inner());
        live.iter().map(|(m, l)| (m.clone(), l.clone())).collect()
    }

    /// The ACTIVE version of `model` as served, with its live catalog changes.
    pub fn snapshot(&self, model: &str) -> Option<Arc<Snapshot>> {
        self.snapshots.load().get(model).map(|s| s.serving.clone())
    }

    /// Brings the map in line with the registry: loads versions that became ACTIVE, drops
    /// deleted models. A version that fails to load is logged and the old one keeps serving.
    fn refresh(&self) {
        if let Err(e) = self.auth.reload(&self.registry) {
            tracing::warn!("reading the API keys: {e}; keeping the keys read before");
        }
        let current = self.snapshots.load_full();
        let models = match self.registry.models() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("listing models: {e}");
                return;
            }
        };
        let mut next: HashMap<String, Served> = HashMap::with_capacity(models.len());
        let mut rebuilt: HashSet<String> = HashSet::new();
        let mut failed = self.failed.lock().unwrap_or_else(|e| e.into_inner());
        for model in models {
            let active = match self.registry.active_version(&model) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(%model, "reading ACTIVE: {e}");
                    None
                }
            };
            let shadow = match self.registry.shadow(&model) {
                Ok(p) => p.map(|p| p.version),
                Err(e) => {
                    tracing::warn!(%model, "reading SHADOW: {e}");
                    current.get(&model).and_then(|s| s.rollout.shadow_version)
                }
            };
            let loaded = current.get(&model);
            match (active, loaded) {
                (Some(v), Some(s)) if s.base.version() == v => {
                    let mut s = s.clone();
                    if s.rollout.shadow_version != shadow {
                        s.rollout = Arc::new(self.rollout(&model, &s.serving, shadow));
                        s.floors = self.floors(&model, &s.base, shadow);
                        rebuilt.insert(model.clone());
                    }
                    next.insert(model, s);
                }
                (Some(v), old) if failed.contains(&(model.clone(), v)) => {
                    if let Some(s) = old {
                        next.insert(model, s.clone());
                    }
                }
                (Some(v), old) => match self.registry.materialize(&model, v).and_then(|dir| {
                    let report = artifacts::read_report(&dir)?;
                    Ok((Snapshot::load(&dir)?, Drift::new(report.as_ref())))
                }) {
                    Ok((s, drift)) => {
                        tracing::info!(%model, version = v, "now serving");
                        // Stored with its catalog changes applied, never without.
                        let served = self.serve(&model, Arc::new(s), drift, shadow);
                        rebuilt.insert(model.clone());
                        next.insert(model, served);
                    }
                    Err(e) => {
                        tracing::error!(%model, version = v, "cannot load: {e}; keeping the loaded version");
                        failed.insert((model.clone(), v));
                        if let Some(s) = old {
                            next.insert(model, s.clone());
                        }
                    }
                },
                (None, Some(s)) => {
                    next.insert(model, s.clone());
                }
                (None, None) => {}
            }
        }
        drop(failed);
        // Deleted models, or models whose snapshot went away, change the key set.
        let changed = !rebuilt.is_empty()
            || next.len() != current.len()
            || next.keys().any(|k| !current.contains_key(k));
        // The overlay forgets only what both the version served until now and the one
        // stored here trained on: a request still on the old version finds the events between
        // their watermarks (the next poll forgets them).
        let watermarks: HashMap<String, u64> = next
            .iter()
            .map(|(m, s)| {
                let old = current.get(m).map_or(0, |o| o.floors.0);
                (m.clone(), old.min(s.floors.0))
            })
            .collect();
        let used = next
            .iter()
            .flat_map(|(m, s)| s.rollout.versions().map(move |v| (m.clone(), v)))
            .collect();
        if changed {
            // An entry this poll did not rebuild is taken as it is now, not as it was read at
            // the start: a catalog build stored meanwhile (`apply_items`) stays.
            self.snapshots.rcu(|now| {
                next.iter()
                    .map(|(m, s)| {
                        let kept = now
                            .get(m)
                            .filter(|n| !rebuilt.contains(m) && Arc::ptr_eq(&n.base, &s.base));
                        (m.clone(), kept.unwrap_or(s).clone())
                    })
                    .collect::<HashMap<_, _>>()
            });
        }
        self.keep_others(&used);
        self.catch_up_live(&watermarks);
        self.store_shadow_stats();
    }

    /// [`Self::refresh`] on the blocking pool (it reads files and may load arrays).
    pub async fn refresh_blocking(self: &Arc<Self>) {
        let me = self.clone();
        if let Err(e) = tokio::task::spawn_blocking(move || me.refresh()).await {
            tracing::error!("refresh task failed: {e}");
        }
    }
}

/// Polls the registry for ACTIVE moves. Polling (not inotify) works the same on every file
/// system, including network mounts.
pub async fn watch(state: Arc<AppState>, every: Duration) {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        state.refresh_blocking().await;
    }
}

/// `base` with the catalog changes of `live` applied, and the generation of the changes it
/// holds. The caller holds `live.applying`. The overlay keeps the changes above `floor` (see `Served::floors`).
fn build(
    live: &Live,
    base: &Arc<Snapshot>,
    floor: u64,
) -> feed_engine::Result<(Arc<Snapshot>, u64)> {
    live.items.follow(floor)?;
    let generation = live.items.generation();
    let serving = match live.items.apply(base)? {
        Some(s) => Arc::new(s),
        None => base.clone(),
    };
    Ok((serving, generation))
}
