//! API keys on the wire: `Authorization: Bearer <key>`, checked per route against the scope the
//! route needs, with a per-key rate limit.
//!
//! A missing, unknown or revoked key is one answer (401, the same words), so a caller learns
//! nothing that helps guessing; a valid key of the wrong scope is 403. The keys are read from
//! the home at start and at every poll, so a revoked key is refused from the next poll on.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use arc_swap::ArcSwap;
use axum::extract::{Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use feed_engine::registry::{KeyRing, Scope};
use feed_engine::Registry;

use super::error::ApiError;

pub struct Auth {
    /// Whether requests need a key (a non-loopback bind, or `--require-keys`).
    required: bool,
    ring: ArcSwap<KeyRing>,
    /// Token buckets of the keys with a rate limit, by key id.
    buckets: Mutex<HashMap<String, Bucket>>,
}

/// A key's allowance: `rate` requests per second, bursts of one second's worth.
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Auth {
    pub fn new(required: bool) -> Self {
        Self {
            required,
            ring: ArcSwap::from_pointee(KeyRing::default()),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Reads the keys from the home (only when keys are required). A failed read keeps the
    /// keys read before.
    pub fn reload(&self, registry: &Registry) -> feed_engine::Result<()> {
        if self.required {
            self.ring.store(Arc::new(registry.key_ring()?));
        }
        Ok(())
    }

    pub fn has_keys(&self) -> bool {
        !self.ring.load().is_empty()
    }

    /// Whether a request with `authorization` may use a route that needs `needed`.
    fn check(&self, authorization: Option<&str>, needed: Scope) -> Result<(), Refusal> {
        if !self.required {
            return Ok(());
        }
        // The scheme is case-insensitive (RFC 9110 §11.1).
        let presented = authorization
            .and_then(|h| h.split_once(' '))
            .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
            .map(|(_, key)| key.trim())
            .ok_or(Refusal::Unauthorized)?;
        let ring = self.ring.load();
        let key = ring.verify(presented).ok_or(Refusal::Unauthorized)?;
        if !key.scope.allows(needed) {
            return Err(Refusal::Forbidden(needed));
        }
        if let Some(rate) = key.rate_limit {
            let mut buckets = self.buckets.lock().unwrap_or_else(|e| e.into_inner());
            let burst = rate.max(1.0);
            let now = Instant::now();
            let b = buckets.entry(key.id.clone()).or_insert(Bucket {
                tokens: burst,
                at: now,
            });
            b.tokens = (b.tokens + (now - b.at).as_secs_f64() * rate).min(burst);
            b.at = now;
            if b.tokens < 1.0 {
                let wait = ((1.0 - b.tokens) / rate).ceil().max(1.0) as u64;
                return Err(Refusal::Limited(wait));
            }
            b.tokens -= 1.0;
        }
        Ok(())
    }
}

enum Refusal {
    Unauthorized,
    Forbidden(Scope),
    /// Seconds to wait.
    Limited(u64),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::Unauthorized => {
                let mut r = ApiError::status(
                    StatusCode::UNAUTHORIZED,
                    "this server needs an API key: send `Authorization: Bearer <key>`",
                )
                .into_response();
                r.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    header::HeaderValue::from_static("Bearer"),
                );
                r
            }
            Refusal::Forbidden(needed) => ApiError::status(
                StatusCode::FORBIDDEN,
                &format!("this key's scope does not allow this route; it needs a key of scope `{needed}` or `admin`"),
            )
            .into_response(),
            Refusal::Limited(wait) => {
                let mut r = ApiError::status(
                    StatusCode::TOO_MANY_REQUESTS,
                    &format!("this key's rate limit is reached; retry in {wait} s"),
                )
                .into_response();
                r.headers_mut()
                    .insert(header::RETRY_AFTER, header::HeaderValue::from(wait));
                r
            }
        }
    }
}

/// The middleware of the routes that need `needed`.
pub async fn require(
    State((state, needed)): State<(Arc<super::AppState>, Scope)>,
    req: Request,
    next: Next,
) -> Response {
    let authorization = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    match state.auth.check(authorization, needed) {
        Ok(()) => next.run(req).await,
        Err(refusal) => refusal.into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use feed_engine::registry::NewKey;

    #[test]
    fn keys_scopes_and_rate_limits() {
        let home = tempfile::tempdir().unwrap();
        let registry = Registry::open(home.path()).unwrap();
        let key = |name: &str, scope, rate_limit| {
            registry
                .create_key(&NewKey {
                    name: name.into(),
                    scope,
                    rate_limit,
                })
                .unwrap()
                .0
        };
        let query = format!("Bearer {}", key("app", Scope::Query, None));
        // One request per 100 s: the second at once waits, however loaded the machine.
        let slow = format!("Bearer {}", key("slow", Scope::Events, Some(0.01)));
        let auth = Auth::new(true);
        auth.reload(&registry).unwrap();
        assert!(auth.check(Some(&query), Scope::Query).is_ok());
        let lower = query.replacen("Bearer", "bearer", 1);
        assert!(auth.check(Some(&lower), Scope::Query).is_ok());
        assert!(matches!(
            auth.check(Some(&query), Scope::Events),
            Err(Refusal::Forbidden(Scope::Events))
        ));
        assert!(matches!(
            auth.check(None, Scope::Query),
            Err(Refusal::Unauthorized)
        ));
        assert!(matches!(
            auth.check(Some("Basic abc"), Scope::Query),
            Err(Refusal::Unauthorized)
        ));
        assert!(auth.check(Some(&slow), Scope::Events).is_ok());
        assert!(matches!(
            auth.check(Some(&slow), Scope::Events),
            Err(Refusal::Limited(w)) if (90..=100).contains(&w)
        ));
        // Not required: everything passes.
        assert!(Auth::new(false).check(None, Scope::Admin).is_ok());
    }
}
