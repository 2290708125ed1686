//! Experiments and the shadow as this server serves them.
//!
//! A model's [`Rollout`] is built with its served snapshot (and again when the catalog changes
//! or the shadow pointer moves): the snapshots its experiment variants answer with (another
//! version, or the served one ranking by another value model) and the shadow version, each
//! with the model's live catalog changes applied. A request is routed by its user's variant
//! ([`feed_engine::config::experiments::Experiment::assign`]); the shadow scores a copy of a
//! first-page request on the blocking pool after the answer is sent, at most
//! [`MAX_SHADOW_IN_FLIGHT`] at a time (the rest are counted as skipped).

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use feed_engine::config::experiments::{Arm, Target};
use feed_engine::registry::{Comparison, ShadowStats};
use feed_engine::{QueryRequest, RankRequest, Snapshot};

use super::AppState;

/// Shadow requests run at once per server; more are skipped, so that a slow candidate cannot
/// queue work behind the answers.
pub const MAX_SHADOW_IN_FLIGHT: usize = 2;
/// How long a version that failed to load (for a variant or the shadow) is not tried again.
const RETRY_AFTER: std::time::Duration = std::time::Duration::from_secs(60);
/// How often a server writes its shadow measurements to the home (on object storage each
/// write is a request).
const STORE_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// What answers a model's requests besides its served snapshot.
#[derive(Default)]
pub struct Rollout {
    /// (experiment, variant) → the snapshot answering it (`version:` and `value_model:`
    /// variants; the others are answered by the served snapshot).
    answers: HashMap<(String, String), Arc<Snapshot>>,
    /// The shadow version, when one is set and loads.
    pub shadow: Option<Arc<Snapshot>>,
    /// The version the pointer named when this was built (loaded or not).
    pub shadow_version: Option<u32>,
}

/// How one request is answered.
pub struct Route {
    pub snapshot: Arc<Snapshot>,
    /// The saved query that answers instead of the one asked for (a `query:` variant).
    pub saved: Option<String>,
    /// The experiment and variant, when an experiment split the request.
    pub variant: Option<(String, String)>,
    pub shadow: Option<Arc<Snapshot>>,
}

impl Route {
    /// `experiment/variant`, as impressions record it.
    pub fn variant_tag(&self) -> Option<String> {
        self.variant.as_ref().map(|(e, v)| format!("{e}/{v}"))
    }
}

impl Rollout {
    /// The versions it answers with (variants' and the shadow's, the served one included).
    pub fn versions(&self) -> impl Iterator<Item = u32> + '_ {
        self.answers
            .values()
            .chain(self.shadow.iter())
            .map(|s| s.version())
    }

    /// Routes a request for `target` by `user` over `serving`, the served snapshot.
    pub fn route(&self, serving: &Arc<Snapshot>, target: Target<'_>, user: Option<&str>) -> Route {
        let mut route = Route {
            snapshot: serving.clone(),
            saved: None,
            variant: None,
            shadow: self.shadow.clone(),
        };
        let (Some(e), Some(user)) = (serving.config.experiment(target), user) else {
            return route;
        };
        let v = e.assign(user);
        let key = (e.name.clone(), v.name.clone());
        match &v.arm {
            Arm::Control => {}
            Arm::Query(q) => route.saved = Some(q.clone()),
            Arm::Version(_) | Arm::ValueModel(_) => match self.answers.get(&key) {
                Some(s) => {
                    route.snapshot = s.clone();
                    // The shadow is compared with ACTIVE's answers, not a variant's.
                    route.shadow = None;
                }
                // It failed to load (logged): the request is answered, outside the experiment.
                None => return route,
            },
        }
        route.variant = Some(key);
        route
    }
}

/// Versions other than the served ones (variants, shadows), loaded once and kept while used.
#[derive(Default)]
pub struct Others {
    loaded: Mutex<HashMap<(String, u32), Arc<Snapshot>>>,
    /// Versions that failed to load, and when.
    failed: Mutex<HashMap<(String, u32), Instant>>,
}

/// Shadow comparisons: counted per (model, shadow version), written to the home at each poll.
#[derive(Default)]
pub struct Shadows {
    in_flight: AtomicUsize,
    /// By (model, shadow version, ACTIVE version compared with): changed since stored?
    stats: Mutex<HashMap<ShadowKey, (ShadowStats, bool)>>,
    stored_at: Mutex<Option<Instant>>,
}

/// (model, shadow version, ACTIVE version compared with).
type ShadowKey = (String, u32, u32);

/// A shadow slot, given back however the request ends.
struct Slot<'a>(&'a AtomicUsize);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl AppState {
    /// Builds `model`'s rollout over `serving` with `shadow` (the version the pointer names).
    pub(super) fn rollout(
        &self,
        model: &str,
        serving: &Arc<Snapshot>,
        shadow: Option<u32>,
    ) -> Rollout {
        let mut out = Rollout {
            shadow_version: shadow,
            ..Rollout::default()
        };
        for e in &serving.config.experiments {
            for v in &e.variants {
                let built = match &v.arm {
                    Arm::Version(n) if *n == serving.version() => Ok(serving.clone()),
                    Arm::Version(n) => self.other(model, *n),
                    Arm::ValueModel(vm) => serving.with_value_model(vm).map(Arc::new),
                    Arm::Control | Arm::Query(_) => continue,
                };
                match built {
                    Ok(s) => {
                        out.answers.insert((e.name.clone(), v.name.clone()), s);
                    }
                    Err(err) => tracing::error!(
                        %model, experiment = %e.name, variant = %v.name,
                        "cannot serve the variant: {err}; its users get the served version"
                    ),
                }
            }
        }
        if let Some(n) = shadow.filter(|&n| n != serving.version()) {
            match self.other(model, n) {
                Ok(s) => out.shadow = Some(s),
                Err(e) => tracing::error!(%model, version = n, "cannot load the shadow: {e}"),
            }
        }
        out
    }

    /// Version `version` of `model` with the live catalog changes applied.
    fn other(&self, model: &str, version: u32) -> feed_engine::Result<Arc<Snapshot>> {
        let base = self.other_base(model, version)?;
        // The changes after its own watermark (the overlay keeps them: `Served::floors`).
        match self.live(model).items.apply(&base)? {
            Some(s) => Ok(Arc::new(s)),
            None => Ok(base),
        }
    }

    /// Version `version` of `model` as stored, loaded once.
    fn other_base(&self, model: &str, version: u32) -> feed_engine::Result<Arc<Snapshot>> {
        let key = (model.to_string(), version);
        let lock = || self.others.loaded.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = lock().get(&key) {
            return Ok(s.clone());
        }
        let mut failed = self.others.failed.lock().unwrap_or_else(|e| e.into_inner());
        // A version that failed is tried again after a while (a passing storage error), not at
        // every rebuild.
        if failed
            .get(&key)
            .is_some_and(|at| at.elapsed() < RETRY_AFTER)
        {
            return Err(feed_engine::Error::Internal(format!(
                "version {version} failed to load less than {} s ago",
                RETRY_AFTER.as_secs()
            )));
        }
        let loaded = self
            .registry
            .materialize(model, version)
            .and_then(|dir| Snapshot::load(&dir));
        match loaded {
            Ok(s) => {
                failed.remove(&key);
                let s = Arc::new(s);
                lock().insert(key, s.clone());
                Ok(s)
            }
            Err(e) => {
                failed.insert(key, Instant::now());
                Err(e)
            }
        }
    }

    /// The lowest live watermarks (events, catalog changes) of `base` and the other versions
    /// its experiments and the shadow `shadow` answer with.
    pub(super) fn floors(&self, model: &str, base: &Snapshot, shadow: Option<u32>) -> (u64, u64) {
        let own = (
            base.manifest.live_watermark,
            base.manifest.live_items_watermark,
        );
        feed_engine::config::experiments::versions(&base.config.experiments)
            .into_iter()
            .map(|(v, _)| v)
            .chain(shadow)
            .filter(|&v| v != base.version())
            .filter_map(|v| self.other_base(model, v).ok())
            .fold(own, |(e, i), s| {
                (
                    e.min(s.manifest.live_watermark),
                    i.min(s.manifest.live_items_watermark),
                )
            })
    }

    /// Forgets loaded versions no rollout uses.
    pub(super) fn keep_others(&self, used: &std::collections::HashSet<(String, u32)>) {
        self.others
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|k, _| used.contains(k));
    }

    /// Scores a first-page query with the shadow too, off the response path.
    pub fn shadow_query(
        self: &Arc<Self>,
        shadow: Arc<Snapshot>,
        req: QueryRequest,
        active: Vec<String>,
        active_seconds: f64,
    ) {
        if req.page_token.is_some() || req.offset.is_some_and(|o| o > 0) {
            return;
        }
        let req = QueryRequest {
            with_metadata: false,
            explain: false,
            features: false,
            ..req
        };
        self.shadow_run(shadow, active, active_seconds, move |s, users| {
            s.query_live(&req, None, users).map(|r| r.ids)
        });
    }

    /// Ranks with the shadow too, off the response path.
    pub fn shadow_rank(
        self: &Arc<Self>,
        shadow: Arc<Snapshot>,
        req: RankRequest,
        active: Vec<String>,
        active_seconds: f64,
    ) {
        let req = RankRequest {
            with_metadata: false,
            features: false,
            ..req
        };
        self.shadow_run(shadow, active, active_seconds, move |s, users| {
            s.rank_live(&req, users).map(|r| r.ids)
        });
    }

    fn shadow_run(
        self: &Arc<Self>,
        shadow: Arc<Snapshot>,
        active: Vec<String>,
        active_seconds: f64,
        answer: impl FnOnce(
                &Snapshot,
                &dyn feed_engine::serving::UserState,
            ) -> feed_engine::Result<Vec<String>>
            + Send
            + 'static,
    ) {
        let model = shadow.model().to_string();
        let version = shadow.version();
        if self.shadows.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_SHADOW_IN_FLIGHT {
            self.shadows.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.metrics.shadow_skipped(&model, version);
            self.shadow_stats(&model, version, |s| s.skipped += 1);
            return;
        }
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let _slot = Slot(&state.shadows.in_flight);
            let live = state.live(&model);
            let users = live.users.over(&shadow);
            let start = Instant::now();
            let answered = answer(&shadow, &users);
            let seconds = start.elapsed().as_secs_f64();
            match answered {
                Ok(ids) => {
                    let c = Comparison::of(&active, &ids, active_seconds, seconds);
                    state.metrics.shadow_compared(&model, version, &c);
                    state.shadow_stats(&model, version, |s| s.observe(&c));
                }
                Err(e) => {
                    tracing::warn!(%model, version, "the shadow failed a request: {e}");
                    state.metrics.shadow_error(&model, version);
                    state.shadow_stats(&model, version, |s| s.errors += 1);
                }
            }
        });
    }

    fn shadow_stats(&self, model: &str, version: u32, f: impl FnOnce(&mut ShadowStats)) {
        let against = self.snapshot(model).map_or(0, |s| s.version());
        let mut stats = self.shadows.stats.lock().unwrap_or_else(|e| e.into_inner());
        let (s, dirty) = stats
            .entry((model.to_string(), version, against))
            .or_default();
        s.against = against;
        s.updated_at = Some(chrono::Utc::now());
        f(s);
        *dirty = true;
    }

    /// Writes this server's shadow measurements that changed to the home, at most every
    /// [`STORE_EVERY`]: one file per ACTIVE version compared with
    /// (`versions/<N>/shadow/<server>-vs<M>.json`), which `view-model` adds up over servers.
    pub(super) fn store_shadow_stats(&self) {
        {
            let mut at = self
                .shadows
                .stored_at
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if at.is_some_and(|t| t.elapsed() < STORE_EVERY) {
                return;
            }
            *at = Some(Instant::now());
        }
        let changed: Vec<(ShadowKey, ShadowStats)> = {
            let mut stats = self.shadows.stats.lock().unwrap_or_else(|e| e.into_inner());
            stats
                .iter_mut()
                .filter(|(_, (_, dirty))| *dirty)
                .map(|(k, (s, dirty))| {
                    *dirty = false;
                    (k.clone(), s.clone())
                })
                .collect()
        };
        for ((model, version, against), stats) in changed {
            let name = format!("{}-vs{against}", self.server_id());
            if let Err(e) = self
                .registry
                .write_shadow_stats(&model, version, &name, &stats)
            {
                tracing::warn!(%model, version, "storing shadow measurements: {e}");
            }
        }
    }
}
