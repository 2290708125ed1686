//! `GET /models/{name}/status`: a version's status log as server-sent events, as it is written.
//! Each line is an event `status`; when the version ends (ACTIVE, INACTIVE or ERROR) an event
//! `end` carries its final status and the stream closes.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::sse::{Event, KeepAlive, Sse};
use futures::{Stream, StreamExt};
use serde::Deserialize;

use super::error::ApiError;
use super::AppState;
use crate::follow::Follower;
use crate::wire::{StatusEnd, StatusLine};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusParams {
    /// The version to follow (default: the newest being made, else the newest).
    version: Option<u32>,
}

pub async fn status_stream(
    State(state): State<Arc<AppState>>,
    Path(name): Path<String>,
    params: Result<Query<StatusParams>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    // A wrong query string is a JSON error like every other.
    let Query(params) = params.map_err(|e| ApiError::Body {
        status: axum::http::StatusCode::UNPROCESSABLE_ENTITY,
        message: format!(
            "{}; the query string takes `version`, a version number",
            e.body_text()
        ),
        field: Some("version".into()),
        hint: None,
    })?;
    let registry = state.registry.clone();
    let follower =
        super::routes::blocking(move || Follower::new(registry, &name, params.version)).await?;
    let version = follower.version();
    // Each turn waits for new lines and sends them; the stream ends after the version's end.
    let stream = futures::stream::unfold(Some(follower), move |follower| async move {
        let (follower, read) = follower?.next().await?;
        match read {
            Err(e) => {
                let event = Event::default().event("error").data(e.to_string());
                Some((vec![event], None))
            }
            Ok(read) => {
                let mut events: Vec<Event> = read
                    .lines
                    .iter()
                    .map(|l| json_event("status", &StatusLine::new(version, l)))
                    .collect();
                if read.ended() {
                    events.push(json_event("end", &StatusEnd::from(&read.version)));
                    return Some((events, None));
                }
                Some((events, Some(follower)))
            }
        }
    })
    .flat_map(|events| futures::stream::iter(events.into_iter().map(Ok)));
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn json_event(kind: &str, body: &impl serde::Serialize) -> Event {
    Event::default()
        .event(kind)
        .data(serde_json::to_string(body).unwrap_or_default())
}
