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
    /// Versions that failed to load: not tried again (their files do not change).
    failed: Mutex<std::collections::HashSet<(String, u32)>>,
}

/// Shadow comparisons: counted per (model, shadow version), written to the home at each poll.
#[derive(Default)]
pub struct Shadows {
    in_flight: AtomicUsize,
    stats: Mutex<HashMap<(String, u32), (ShadowStats, bool)>>,
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
        let key = (model.to_string(), version);
        let cached = self
            .others
            .loaded
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&key)
            .cloned();
        let base = match cached {
            Some(s) => s,
            None => {
                if self
                    .others
                    .failed
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .contains(&key)
                {
                    return Err(feed_engine::Error::Internal(format!(
                        "version {version} failed to load before"
                    )));
                }
                let loaded = self
                    .registry
                    .materialize(model, version)
                    .and_then(|dir| Snapshot::load(&dir));
                match loaded {
                    Ok(s) => {
                        let s = Arc::new(s);
                        self.others
                            .loaded
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key, s.clone());
                        s
                    }
                    Err(e) => {
                        self.others
                            .failed
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .insert(key);
                        return Err(e);
                    }
                }
            }
        };
        // The changes after its own watermark that the overlay still holds.
        match self.live(model).items.apply(&base)? {
            Some(s) => Ok(Arc::new(s)),
            None => Ok(base),
        }
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
        let shadows = &self.shadows;
        if shadows.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_SHADOW_IN_FLIGHT {
            shadows.in_flight.fetch_sub(1, Ordering::AcqRel);
            self.metrics.shadow_skipped(&model, version);
            self.shadow_stats(&model, version, |s| s.skipped += 1);
            return;
        }
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let live = state.live(&model);
            let users = live.users.over(&shadow);
            let start = Instant::now();
            let answered = answer(&shadow, &users);
            let seconds = start.elapsed().as_secs_f64();
            state.shadows.in_flight.fetch_sub(1, Ordering::AcqRel);
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
        let (s, dirty) = stats.entry((model.to_string(), version)).or_default();
        s.against = against;
        s.updated_at = Some(chrono::Utc::now());
        f(s);
        *dirty = true;
    }

    /// Writes this server's shadow measurements that changed since the last poll to the home
    /// (`versions/<N>/shadow/<server>.json`), where `view-model` adds up every server's.
    pub(super) fn store_shadow_stats(&self) {
        let changed: Vec<((String, u32), ShadowStats)> = {
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
        for ((model, version), stats) in changed {
            if let Err(e) =
                self.registry
                    .write_shadow_stats(&model, version, &self.server_id(), &stats)
            {
                tracing::warn!(%model, version, "storing shadow measurements: {e}");
            }
        }
    }
}
