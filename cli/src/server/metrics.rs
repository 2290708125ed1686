//! `GET /metrics`: the server's Prometheus metrics, in the classic text format every scraper
//! reads. Request counters and histograms are kept as requests are answered; the model gauges
//! (ACTIVE version and age, the newest version's status, the live overlay) are read at scrape.
//!
//! Label values are bounded: `model` is a served model's name or empty (an unknown name in a
//! URL would otherwise make a series per guess; a model without an ACTIVE version is empty
//! too), `route` is the route's template.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use feed_engine::query::StageReport;
use prometheus::{
    exponential_buckets, GaugeVec, HistogramOpts, HistogramVec, IntCounterVec, IntGaugeVec, Opts,
    TextEncoder,
};

use super::AppState;
use feed_engine::Status;

/// The model a response was about, when its URL does not name it (`POST /query`).
#[derive(Debug, Clone)]
pub struct ModelName(pub String);

pub struct Metrics {
    registry: prometheus::Registry,
    requests: IntCounterVec,
    errors: IntCounterVec,
    latency: HistogramVec,
    stages: HistogramVec,
    served_items: IntCounterVec,
    seen_items: IntCounterVec,
    active: IntGaugeVec,
    active_age: GaugeVec,
    serving: IntGaugeVec,
    latest: IntGaugeVec,
    status: IntGaugeVec,
    live_events: IntGaugeVec,
    live_users: IntGaugeVec,
    ingest_lag: GaugeVec,
    psi: GaugeVec,
    psi_samples: IntGaugeVec,
    variant_requests: IntCounterVec,
    variant_items: IntCounterVec,
    variant_events: IntCounterVec,
    shadow_requests: IntCounterVec,
    shadow_skipped: IntCounterVec,
    shadow_errors: IntCounterVec,
    shadow_overlap: HistogramVec,
    shadow_correlation: HistogramVec,
    shadow_latency: HistogramVec,
    /// One scrape at a time: a scrape resets the model gauges before it sets them.
    scraping: std::sync::Mutex<()>,
}

impl Metrics {
    pub fn new() -> Self {
        let registry = prometheus::Registry::new();
        // 50 µs to about 26 s, doubling: a cached query, a cold one, and a stuck one apart.
        let buckets = exponential_buckets(50e-6, 2.0, 20).expect("valid buckets");
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(c.clone())).expect("unique");
            c
        };
        let histogram = |name: &str, help: &str, labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.clone()),
                labels,
            )
            .expect("valid metric");
            registry.register(Box::new(h.clone())).expect("unique");
            h
        };
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = IntGaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("unique");
            g
        };
        let float = |name: &str, help: &str, labels: &[&str]| {
            let g = GaugeVec::new(Opts::new(name, help), labels).expect("valid metric");
            registry.register(Box::new(g.clone())).expect("unique");
            g
        };
        let shares = |name: &str, help: &str, labels: &[&str], buckets: Vec<f64>| {
            let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets), labels)
                .expect("valid metric");
            registry.register(Box::new(h.clone())).expect("unique");
            h
        };
        let route = ["model", "route", "method", "status"];
        let variant = ["model", "experiment", "variant"];
        let shadow = ["model", "version"];
        Self {
            requests: counter(
                "feed_http_requests_total",
                "HTTP requests answered.",
                &route,
            ),
            errors: counter(
                "feed_http_errors_total",
                "HTTP requests answered with a 4xx or 5xx status.",
                &route,
            ),
            latency: histogram(
                "feed_http_request_duration_seconds",
                "Time from a request's arrival to its answer.",
                &route,
            ),
            stages: histogram(
                "feed_query_stage_duration_seconds",
                "Time a query spent per stage (filter, retrieve, score, reorder, limit).",
                &["model", "stage"],
            ),
            served_items: counter(
                "feed_served_items_total",
                "Items served to a known user (query and rank answers).",
                &["model", "route"],
            ),
            seen_items: counter(
                "feed_served_seen_items_total",
                "Served items the user had already interacted with; divided by \
                 feed_served_items_total, the seen-fraction (near 0 with NOT seen()).",
                &["model", "route"],
            ),
            active: gauge(
                "feed_active_version",
                "The version the model's ACTIVE pointer names.",
                &["model"],
            ),
            active_age: float(
                "feed_active_version_age_seconds",
                "Seconds since the ACTIVE pointer last moved.",
                &["model"],
            ),
            serving: gauge(
                "feed_serving_version",
                "The version this server answers with (ACTIVE once the next poll loaded it).",
                &["model"],
            ),
            latest: gauge(
                "feed_latest_version",
                "The model's newest version, finished or not.",
                &["model"],
            ),
            status: gauge(
                "feed_latest_version_status",
                "1 for the status the model's newest version is in (TRAINING while it trains).",
                &["model", "status"],
            ),
            live_events: gauge(
                "feed_live_overlay_events",
                "Live events held over the serving version (read from the log, not trained on).",
                &["model"],
            ),
            live_users: gauge(
                "feed_live_overlay_users",
                "Users with live events held over the serving version.",
                &["model"],
            ),
            ingest_lag: float(
                "feed_live_ingest_lag_seconds",
                "Seconds since this server last read the model's event log to its end: how late \
                 an event written by another process can be seen.",
                &["model"],
            ),
            psi: float(
                "feed_score_psi",
                "Population stability index of a policy's served scores against the deciles of \
                 its top-10 scores for the validation users (since this server loaded the \
                 version; above 0.25 reads as a shift).",
                &["model", "version", "policy"],
            ),
            psi_samples: gauge(
                "feed_score_psi_samples",
                "Served scores the PSI is computed from.",
                &["model", "version", "policy"],
            ),
            variant_requests: counter(
                "feed_experiment_requests_total",
                "Requests an experiment split, by the variant that answered.",
                &variant,
            ),
            variant_items: counter(
                "feed_experiment_impressions_total",
                "Items served by each variant (its impressions).",
                &variant,
            ),
            variant_events: counter(
                "feed_experiment_events_total",
                "Events received from users, by the variant the user is in and the event type; \
                 divided by feed_experiment_impressions_total, engagement per impression.",
                &["model", "experiment", "variant", "type"],
            ),
            shadow_requests: counter(
                "feed_shadow_requests_total",
                "Requests answered by ACTIVE and scored by the shadow version too.",
                &shadow,
            ),
            shadow_skipped: counter(
                "feed_shadow_skipped_total",
                "Requests not shadowed: too many shadow requests were in flight.",
                &shadow,
            ),
            shadow_errors: counter(
                "feed_shadow_errors_total",
                "Requests the shadow version failed.",
                &shadow,
            ),
            shadow_overlap: shares(
                "feed_shadow_overlap",
                "Overlap@k of the shadow's page with ACTIVE's (k: ACTIVE's page length).",
                &shadow,
                (1..=10).map(|i| f64::from(i) / 10.0).collect(),
            ),
            shadow_correlation: shares(
                "feed_shadow_rank_correlation",
                "Spearman correlation of the ranks of the items both pages hold (two or more).",
                &shadow,
                (-4..=5).map(|i| f64::from(i) / 5.0).collect(),
            ),
            shadow_latency: histogram(
                "feed_shadow_duration_seconds",
                "Time to answer a shadowed request, by ACTIVE (side=active) and the shadow.",
                &["model", "version", "side"],
            ),
            registry,
            scraping: std::sync::Mutex::new(()),
        }
    }

    /// A query's time per stage.
    pub fn stages(&self, model: &str, stages: &[StageReport]) {
        for s in stages {
            self.stages
                .with_label_values(&[model, s.stage])
                .observe(s.micros as f64 * 1e-6);
        }
    }

    /// Items served to a user, and how many of them the user had interacted with.
    pub fn served(&self, model: &str, route: &str, items: usize, seen: usize) {
        self.served_items
            .with_label_values(&[model, route])
            .inc_by(items as u64);
        self.seen_items
            .with_label_values(&[model, route])
            .inc_by(seen as u64);
    }

    /// A request an experiment split, answered by `variant` with `items` items.
    pub fn variant_served(
        &self,
        model: &str,
        (experiment, variant): &(String, String),
        items: usize,
    ) {
        let labels = [model, experiment.as_str(), variant.as_str()];
        self.variant_requests.with_label_values(&labels).inc();
        self.variant_items
            .with_label_values(&labels)
            .inc_by(items as u64);
    }

    /// `n` events of type `kind` from users in `variant`.
    pub fn variant_events(&self, model: &str, experiment: &str, variant: &str, kind: &str, n: u64) {
        self.variant_events
            .with_label_values(&[model, experiment, variant, kind])
            .inc_by(n);
    }

    pub fn shadow_compared(
        &self,
        model: &str,
        version: u32,
        c: &feed_engine::registry::Comparison,
    ) {
        let version = version.to_string();
        let labels = [model, version.as_str()];
        self.shadow_requests.with_label_values(&labels).inc();
        self.shadow_overlap
            .with_label_values(&labels)
            .observe(c.overlap);
        if let Some(r) = c.correlation {
            self.shadow_correlation
                .with_label_values(&labels)
                .observe(r);
        }
        for (side, seconds) in [("active", c.active_seconds), ("shadow", c.shadow_seconds)] {
            self.shadow_latency
                .with_label_values(&[model, version.as_str(), side])
                .observe(seconds);
        }
    }

    pub fn shadow_skipped(&self, model: &str, version: u32) {
        self.shadow_skipped
            .with_label_values(&[model, &version.to_string()])
            .inc();
    }

    pub fn shadow_error(&self, model: &str, version: u32) {
        self.shadow_errors
            .with_label_values(&[model, &version.to_string()])
            .inc();
    }

    /// The text a scrape gets: the model gauges read now, then every metric.
    fn render(&self, state: &AppState) -> String {
        let _one = self.scraping.lock().unwrap_or_else(|e| e.into_inner());
        self.read_models(state);
        let mut text = String::new();
        if let Err(e) = TextEncoder::new().encode_utf8(&self.registry.gather(), &mut text) {
            tracing::error!("encoding metrics: {e}");
        }
        text
    }

    /// Sets the model gauges from the registry and the served state. A model that is gone
    /// loses its series.
    fn read_models(&self, state: &AppState) {
        for g in [
            &self.active,
            &self.serving,
            &self.latest,
            &self.status,
            &self.live_events,
            &self.live_users,
        ] {
            g.reset();
        }
        self.active_age.reset();
        self.ingest_lag.reset();
        self.psi.reset();
        self.psi_samples.reset();
        for (model, version, policies) in state.drift() {
            let version = version.to_string();
            for (policy, psi, samples) in policies {
                let labels = [model.as_str(), version.as_str(), policy.as_str()];
                self.psi_samples
                    .with_label_values(&labels)
                    .set(samples as i64);
                if let Some(psi) = psi {
                    self.psi.with_label_values(&labels).set(psi);
                }
            }
        }
        let models = match state.registry.models() {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!("metrics: listing models: {e}");
                return;
            }
        };
        let now = chrono::Utc::now();
        for model in &models {
            match state.registry.active_since(model) {
                Ok(Some((v, since))) => {
                    self.active.with_label_values(&[model]).set(v as i64);
                    let age = (now - since).num_milliseconds() as f64 / 1e3;
                    self.active_age
                        .with_label_values(&[model])
                        .set(age.max(0.0));
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(%model, "metrics: reading ACTIVE: {e}"),
            }
            if let Some(s) = state.snapshot(model) {
                self.serving
                    .with_label_values(&[model])
                    .set(s.version() as i64);
            }
            match state.registry.versions(model) {
                Ok(versions) => {
                    if let Some(newest) = versions.last() {
                        self.latest
                            .with_label_values(&[model])
                            .set(newest.version as i64);
                        for s in Status::ALL {
                            self.status
                                .with_label_values(&[model, &s.to_string()])
                                .set((s == newest.status) as i64);
                        }
                    }
                }
                Err(e) => tracing::warn!(%model, "metrics: reading versions: {e}"),
            }
        }
        for (model, live) in state.live_models() {
            let (events, users) = live.users.counts();
            self.live_events
                .with_label_values(&[&model])
                .set(events as i64);
            self.live_users
                .with_label_values(&[&model])
                .set(users as i64);
            if let Some(at) = live.caught_up_at() {
                self.ingest_lag
                    .with_label_values(&[&model])
                    .set(at.elapsed().as_secs_f64());
            }
        }
    }
}

/// `GET /metrics`.
pub async fn scrape(State(state): State<std::sync::Arc<AppState>>) -> Response {
    match super::routes::blocking(move || Ok(state.metrics.render(&state))).await {
        Ok(text) => ([(header::CONTENT_TYPE, prometheus::TEXT_FORMAT)], text).into_response(),
        Err(e) => e.into_response(),
    }
}

/// Counts every routed request: by model, route template, method and status, with its time.
pub async fn track(
    State(state): State<std::sync::Arc<AppState>>,
    matched: Option<MatchedPath>,
    req: Request,
    next: Next,
) -> Response {
    let start = Instant::now();
    let route = matched.map_or_else(String::new, |m| m.as_str().to_string());
    let method = req.method().as_str().to_string();
    let named = model_in_path(req.uri().path(), &route);
    let response = next.run(req).await;
    let model = response
        .extensions()
        .get::<ModelName>()
        .map(|m| m.0.clone())
        .or(named)
        // Only served models: nothing on the request path reads the home.
        .filter(|m| state.snapshot(m).is_some())
        .unwrap_or_default();
    let status = response.status();
    let labels = [
        model.as_str(),
        route.as_str(),
        method.as_str(),
        status.as_str(),
    ];
    let m = &state.metrics;
    m.requests.with_label_values(&labels).inc();
    if status.is_client_error() || status.is_server_error() {
        m.errors.with_label_values(&labels).inc();
    }
    m.latency
        .with_label_values(&labels)
        .observe(start.elapsed().as_secs_f64());
    response
}

/// The `{name}` segment of a path routed by a template such as `/models/{name}/query`.
fn model_in_path(path: &str, route: &str) -> Option<String> {
    let at = route.split('/').position(|s| s == "{name}")?;
    path.split('/').nth(at).map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_model_is_read_from_the_templates_name_segment() {
        assert_eq!(
            model_in_path("/models/ml/query", "/models/{name}/query").as_deref(),
            Some("ml")
        );
        assert_eq!(model_in_path("/query", "/query"), None);
    }
}
