//! Routes. Model work (ranking) runs on the blocking pool, never on the async workers.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use feed_engine::arrow::record_batch::RecordBatch;
use feed_engine::config::experiments::Target;
use feed_engine::{Error, QueryRequest, RankRequest};

use super::error::ApiError;
use super::metrics::ModelName;
use super::{auth, console, metrics, AppState};
use crate::wire::{
    Assignment, Evaluation, EventsResponse, Explanation, Health, ItemsResponse, ModelDetail,
    ModelSummary, ModelView, QueryBody, QueryItem, QueryResponse, RankBody, RankResponse, Version,
};
use feed_engine::registry::Scope;

type Shared = State<Arc<AppState>>;

/// The largest request body accepted (a query with its parameters fits many times over).
pub const BODY_LIMIT: usize = 1 << 20;
/// The largest batch of events (about 100,000 events of ordinary size).
pub const EVENTS_BODY_LIMIT: usize = 16 << 20;

pub fn router(state: Arc<AppState>, request_timeout: std::time::Duration) -> Router {
    // Each route's scope is where it is declared: the group it is in.
    let scoped = |router: Router<Arc<AppState>>, needed: Scope| {
        router.route_layer(axum::middleware::from_fn_with_state(
            (state.clone(), needed),
            auth::require,
        ))
    };
    let open = Router::new()
        .route("/healthz", get(healthz))
        .route("/openapi.json", get(openapi))
        .route("/console", get(console::index))
        .route("/console/app.js", get(console::script))
        .route("/console/app.css", get(console::style));
    let query = Router::new()
        .route("/models", get(list_models))
        .route("/models/{name}", get(view_model))
        .route("/models/{name}/versions/{version}", get(view_version))
        .route("/models/{name}/status", get(super::follow::status_stream))
        .route("/models/{name}/rank", post(rank))
        .route("/models/{name}/query", post(query_model))
        .route("/query", post(query));
    let events = Router::new()
        .route(
            "/models/{name}/events",
            post(post_events).layer(axum::extract::DefaultBodyLimit::max(EVENTS_BODY_LIMIT)),
        )
        .route(
            "/models/{name}/items",
            post(post_items).layer(axum::extract::DefaultBodyLimit::max(EVENTS_BODY_LIMIT)),
        );
    let admin = Router::new().route("/metrics", get(metrics::scrape));
    open.merge(scoped(query, Scope::Query))
        .merge(scoped(events, Scope::Events))
        .merge(scoped(admin, Scope::Admin))
        // Outside the key check, so that refusals are counted too.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            metrics::track,
        ))
        // Every error is JSON, unknown routes and methods included.
        .fallback(|method: Method, uri: Uri| async move {
            ApiError::status(
                StatusCode::NOT_FOUND,
                &format!("no route `{method} {}`; see GET /openapi.json", uri.path()),
            )
        })
        .method_not_allowed_fallback(|method: Method, uri: Uri| async move {
            ApiError::status(
                StatusCode::METHOD_NOT_ALLOWED,
                &format!(
                    "`{}` does not take {method}; see GET /openapi.json",
                    uri.path()
                ),
            )
        })
        .layer(axum::extract::DefaultBodyLimit::max(BODY_LIMIT))
        // A request (its body included) that takes longer is answered 408; a slow client cannot
        // hold a worker.
        .layer(axum::middleware::from_fn(
            move |req, next: axum::middleware::Next| async move {
                match tokio::time::timeout(request_timeout, next.run(req)).await {
                    Ok(response) => response,
                    Err(_) => ApiError::status(
                        StatusCode::REQUEST_TIMEOUT,
                        &format!(
                            "the request took longer than {} s",
                            request_timeout.as_secs()
                        ),
                    )
                    .into_response(),
                }
            },
        ))
        .with_state(state)
}

async fn healthz() -> Json<Health> {
    Json(Health {
        status: "ok".into(),
    })
}

async fn openapi() -> Json<serde_json::Value> {
    Json(super::openapi::document())
}

async fn list_models(State(state): Shared) -> Result<Json<Vec<ModelSummary>>, ApiError> {
    let out = blocking(move || {
        let mut out = Vec::new();
        for name in state.registry.models()? {
            let versions = state.registry.versions(&name)?;
            out.push(ModelSummary {
                active_version: state.registry.active_version(&name)?,
                latest_version: versions.last().map(|v| v.version),
                latest_status: versions.last().map(|v| v.status.to_string()),
                name,
            });
        }
        Ok(out)
    })
    .await?;
    Ok(Json(out))
}

async fn view_model(
    State(state): Shared,
    Path(name): Path<String>,
) -> Result<Json<ModelView>, ApiError> {
    let d = blocking(move || crate::detail::read(&state.registry, &name, None)).await?;
    // The evaluation of the version that serves; none before one does.
    let serving = d.active.is_some();
    Ok(Json(ModelView {
        active_version: d.active,
        primary_policy: d.manifest.filter(|_| serving).map(|m| m.primary_policy),
        versions: d.versions.iter().map(Version::from).collect(),
        metrics: d.report.as_ref().filter(|_| serving).map(Evaluation::from),
        name: d.model,
    }))
}

/// `GET /models/{name}/versions/{version}`: a version as `view-model --json` shows it
/// (`current`: the ACTIVE version, else the newest).
async fn view_version(
    State(state): Shared,
    Path((name, version)): Path<(String, String)>,
) -> Result<Json<ModelDetail>, ApiError> {
    let version = match version.as_str() {
        "current" => None,
        v => Some(v.parse::<u32>().map_err(|_| {
            Error::invalid("version", format!("`{v}` is not a version number"))
                .with_hint("a number from GET /models/{name}, or `current`")
        })?),
    };
    let out = blocking(move || {
        crate::detail::read(&state.registry, &name, version).map(|d| ModelDetail::from(&d))
    })
    .await?;
    Ok(Json(out))
}

async fn rank(
    State(state): Shared,
    Path(name): Path<String>,
    body: Result<Json<RankBody>, JsonRejection>,
) -> Result<Json<RankResponse>, ApiError> {
    let Json(body) = body?;
    let route = routed(&state, &name, Target::Rank, Some(&body.user_id))?;
    let snapshot = route.snapshot.clone();
    let req = RankRequest {
        user_id: body.user_id,
        limit: body.limit,
        with_metadata: body.return_metadata,
        // The page's policy scores: score drift counts them, impressions record them.
        features: true,
    };
    let shadowed = route.shadow.clone().map(|s| (s, req.clone()));
    let live = state.live(&name);
    let user = req.user_id.clone();
    let served = snapshot.clone();
    let (ranking, seen, seconds) = blocking(move || {
        // Timed as the shadow is: the ranking alone, not the wait for the pool.
        let start = std::time::Instant::now();
        let users = live.users.over(&snapshot);
        let ranking = snapshot.rank_live(&req, &users)?;
        let seconds = start.elapsed().as_secs_f64();
        let seen = snapshot.seen_among(&users, &req.user_id, &ranking.ids);
        Ok((ranking, seen, seconds))
    })
    .await?;
    if let Some((shadow, req)) = shadowed {
        state.shadow_rank(shadow, req, ranking.ids.clone(), seconds);
    }
    state.metrics.served(&name, "rank", ranking.ids.len(), seen);
    if let Some(v) = &route.variant {
        state.metrics.variant_served(&name, v, ranking.ids.len());
    }
    if let Some(f) = &ranking.features {
        state.observe_scores(&name, ranking.version, f);
    }
    let metadata = ranking.metadata.as_ref().map(to_json).transpose()?;
    let request_id = state.request_id();
    let scores: Vec<f64> = ranking.scores.iter().map(|&s| s as f64).collect();
    state.log_impressions(
        &served,
        Some(user),
        &request_id,
        (&ranking.ids, &scores, ranking.features.clone()),
        0,
        route.variant_tag().as_deref(),
    );
    Ok(Json(RankResponse {
        request_id,
        model: ranking.model,
        version: ranking.version,
        ids: ranking.ids,
        scores: ranking.scores,
        fallback: ranking.fallback.map(str::to_string),
        metadata,
        variant: Assignment::of(&route.variant),
    }))
}

/// How a request is answered (see [`AppState::route`]), or why the model cannot answer.
fn routed(
    state: &AppState,
    name: &str,
    target: Target<'_>,
    user: Option<&str>,
) -> Result<super::rollout::Route, ApiError> {
    if let Some(r) = state.route(name, target, user) {
        return Ok(r);
    }
    active(state, name)?;
    // Loaded between the two reads.
    state.route(name, target, user).ok_or_else(|| {
        Error::Internal(format!("model `{name}` is loaded but could not be routed")).into()
    })
}

/// `POST /models/{name}/events`: a JSON array or NDJSON of events, acknowledged once durable.
async fn post_events(
    State(state): Shared,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<EventsResponse>, ApiError> {
    let snapshot = active(&state, &name)?;
    state.registry.require_local("live events")?;
    let live = state.live(&name);
    // Parsing up to 16 MiB and the fsync run on the blocking pool, off the async workers.
    let appended = blocking_api(move || {
        let events = crate::events::parse(&body, crate::events::now()).map_err(row_error)?;
        feed_engine::live::check_batch(&events, &snapshot.config.events)?;
        let received = events.len();
        let by_variant = per_variant(&snapshot.config.experiments, &events);
        let appended = live.log()?.append(events)?;
        // Read back before answering, so that the next query sees these events. They are
        // durable already: a failure here must not make the client send them again.
        if let Err(e) = live.users.catch_up() {
            tracing::warn!("reading back live events: {e}");
        }
        Ok((received, appended, by_variant))
    })
    .await?;
    for ((experiment, variant, kind), n) in &appended.2 {
        state
            .metrics
            .variant_events(&name, experiment, variant, kind, *n);
    }
    Ok(Json(EventsResponse {
        received: appended.0,
        accepted: appended.1.accepted,
        duplicates: appended.1.duplicates,
    }))
}

/// A batch's events counted by the variant each user is in, per experiment, and event type
/// (impressions left out: the server counts those as it serves).
fn per_variant(
    experiments: &[feed_engine::config::experiments::Experiment],
    events: &[feed_engine::live::Event],
) -> std::collections::BTreeMap<(String, String, String), u64> {
    let mut out = std::collections::BTreeMap::new();
    for e in events
        .iter()
        .filter(|e| e.kind != feed_engine::config::IMPRESSION)
    {
        for x in experiments {
            let v = x.assign(&e.user_id);
            *out.entry((x.name.clone(), v.name.clone(), e.kind.clone()))
                .or_default() += 1;
        }
    }
    out
}

/// A batch's mistake: 400 when it is not JSON, 422 when a row's content is wrong.
fn row_error(e: crate::events::RowError) -> ApiError {
    let status = if e.syntax {
        StatusCode::BAD_REQUEST
    } else {
        StatusCode::UNPROCESSABLE_ENTITY
    };
    ApiError::Body {
        status,
        message: e.to_string(),
        field: e.path(),
        hint: None,
    }
}

/// `POST /models/{name}/items`: catalog changes, acknowledged once durable and applied, so
/// that the next query's filters see them.
async fn post_items(
    State(state): Shared,
    Path(name): Path<String>,
    body: axum::body::Bytes,
) -> Result<Json<ItemsResponse>, ApiError> {
    let snapshot = active(&state, &name)?;
    state.registry.require_local("live catalog changes")?;
    blocking_api(move || {
        let changes = crate::events::parse_items(&body).map_err(row_error)?;
        feed_engine::live::check_changes(&changes, &snapshot)?;
        let deleted = changes.iter().filter(|c| c.delete).count();
        let updated = changes
            .iter()
            .filter(|c| !c.delete && snapshot.has_item(&c.item_id))
            .count();
        let added = changes
            .iter()
            .filter(|c| !c.delete && !snapshot.has_item(&c.item_id))
            .map(|c| c.item_id.as_str())
            .collect::<std::collections::HashSet<_>>()
            .len();
        let received = changes.len();
        let live = state.live(&name);
        live.item_log()?.append(changes)?;
        // Applied before answering, so that the next query filters on the new values. The
        // changes are durable already and the next poll tries again; the error says so, and
        // sending the batch again is harmless (a change sets values).
        state.apply_items(&name).map_err(|e| {
            Error::Internal(format!(
                "the changes are stored but could not be applied yet ({e}); the server retries at its next poll"
            ))
        })?;
        Ok(ItemsResponse {
            received,
            updated,
            added,
            deleted,
        })
    })
    .await
    .map(Json)
}

async fn query(
    State(state): Shared,
    body: Result<Json<QueryBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    let model = body.model.clone().ok_or_else(|| {
        Error::invalid("model", "`model` is required: the model to query")
            .with_hint("or POST to /models/{name}/query")
    })?;
    // The metrics' model label: the URL does not name it.
    let mut response = run_query(state, model.clone(), body).await.into_response();
    response.extensions_mut().insert(ModelName(model));
    Ok(response)
}

async fn query_model(
    State(state): Shared,
    Path(name): Path<String>,
    body: Result<Json<QueryBody>, JsonRejection>,
) -> Result<Json<QueryResponse>, ApiError> {
    let Json(body) = body?;
    run_query(state, name, body).await
}

async fn run_query(
    state: Arc<AppState>,
    model: String,
    body: QueryBody,
) -> Result<Json<QueryResponse>, ApiError> {
    let params = crate::params::from_json_object(&body.params)?;
    let user = params
        .get("user_id")
        .and_then(feed_engine::ParamValue::as_id);
    let target = match (&body.saved, &body.query) {
        (Some(saved), None) => Target::Saved(saved),
        _ => Target::Text,
    };
    let route = routed(&state, &model, target, user.as_deref())?;
    let snapshot = route.snapshot.clone();
    let req = QueryRequest {
        text: body.query,
        // A `query:` variant answers with another saved query.
        saved: route.saved.clone().or(body.saved),
        params,
        limit: body.limit,
        offset: body.offset,
        page_token: body.page_token,
        with_metadata: body.return_metadata,
        explain: body.explain,
        // The page's policy scores: score drift counts them, impressions record them.
        features: true,
    };
    let shadowed = route.shadow.clone().map(|s| (s, req.clone()));
    let shared = state.clone();
    let live = state.live(&model);
    let served = snapshot.clone();
    let seen_by = user.clone();
    let (result, seen, seconds) = blocking(move || {
        // Timed as the shadow is: the query alone, not the wait for the pool.
        let start = std::time::Instant::now();
        let users = live.users.over(&snapshot);
        let result = snapshot.query_live(&req, Some(&shared.pages), &users)?;
        let seconds = start.elapsed().as_secs_f64();
        let seen = seen_by.map(|u| snapshot.seen_among(&users, &u, &result.ids));
        Ok((result, seen, seconds))
    })
    .await?;
    if let Some((shadow, req)) = shadowed {
        state.shadow_query(shadow, req, result.ids.clone(), seconds);
    }
    if let Some(v) = &route.variant {
        state.metrics.variant_served(&model, v, result.ids.len());
    }
    state.metrics.stages(&model, &result.stages);
    if let Some(f) = &result.features {
        state.observe_scores(&model, result.version, f);
    }
    if let Some(seen) = seen {
        state
            .metrics
            .served(&model, "query", result.ids.len(), seen);
    }
    let request_id = state.request_id();
    state.log_impressions(
        &served,
        user,
        &request_id,
        (&result.ids, &result.scores, result.features.clone()),
        result.offset,
        route.variant_tag().as_deref(),
    );
    let explanation = result.explanation.as_ref().map(Explanation::from);
    let mut metadata = match &result.metadata {
        Some(m) => to_json(m)?.into_iter().map(Some).collect(),
        None => vec![None; result.ids.len()],
    };
    let results = result
        .ids
        .into_iter()
        .zip(result.scores)
        .zip(metadata.iter_mut())
        .map(|((id, score), m)| QueryItem {
            id,
            score,
            metadata: m.take(),
        })
        .collect();
    Ok(Json(QueryResponse {
        request_id,
        model: result.model,
        version: result.version,
        eligible: result.eligible,
        results,
        next_page_token: result.next_page_token,
        explanation,
        variant: Assignment::of(&route.variant),
    }))
}

/// The loaded ACTIVE version of a model, or why there is none.
fn active(state: &AppState, name: &str) -> Result<Arc<feed_engine::Snapshot>, ApiError> {
    match state.snapshot(name) {
        Some(s) => Ok(s),
        None if state.registry.exists(name) => Err(state.registry.no_active_version(name).into()),
        None => Err(state.registry.unknown_model(name).into()),
    }
}

/// [`blocking`] for work whose own errors are already HTTP errors.
async fn blocking_api<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Engine(Error::Internal(format!("worker failed: {e}"))))?
}

pub(super) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> feed_engine::Result<T> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Engine(Error::Internal(format!("worker failed: {e}"))))?
        .map_err(ApiError::from)
}

/// Attribute rows as JSON objects (nulls kept as null).
fn to_json(batch: &RecordBatch) -> Result<Vec<serde_json::Value>, ApiError> {
    use feed_engine::arrow::json::{writer::JsonArray, WriterBuilder};
    let mut w = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build::<_, JsonArray>(Vec::new());
    w.write(batch)
        .map_err(|e| ApiError::Engine(Error::Internal(e.to_string())))?;
    w.finish()
        .map_err(|e| ApiError::Engine(Error::Internal(e.to_string())))?;
    let bytes = w.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| ApiError::Engine(Error::Internal(e.to_string())))
}
