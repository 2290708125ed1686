//! The HTTP server (`feedctl serve`): routes, wire types, the one error→status mapping and the
//! watcher that swaps in new ACTIVE versions without a restart.

mod auth;
mod console;
mod drift;
mod error;
mod follow;
mod metrics;
pub mod openapi;
mod rollout;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use feed_engine::Registry;

pub use state::AppState;

/// How the server protects itself from slow and numerous clients.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// How often to look for newly ACTIVE versions.
    pub poll: Duration,
    /// The longest wait for a request head (also how long an idle connection stays open).
    pub idle: Duration,
    /// The longest a request may take, reading its body included (then 408).
    pub request: Duration,
    /// Connections served at once.
    pub connections: usize,
}

/// Serves until Ctrl-C (or SIGTERM). Loads every model's ACTIVE version before listening.
/// Requests need an API key when `addr` is not a loopback address or `require_keys`; then a
/// home without a live key refuses to start.
pub async fn serve(
    registry: Registry,
    addr: SocketAddr,
    limits: Limits,
    require_keys: bool,
) -> anyhow::Result<()> {
    let keys_required = require_keys || !addr.ip().is_loopback();
    let state = Arc::new(AppState::new(registry, keys_required));
    if keys_required {
        let st = state.clone();
        tokio::task::spawn_blocking(move || st.auth.reload(&st.registry))
            .await?
            .context("reading the API keys")?;
        if !state.auth.has_keys() {
            let why = if addr.ip().is_loopback() {
                "--require-keys was given".to_string()
            } else {
                format!("{addr} is reachable from other machines")
            };
            return Err(feed_engine::Error::invalid(
                "addr",
                format!("refusing to serve without API keys: {why}, and the home has no live key"),
            )
            .with_hint(
                "create one with `feedctl keys create --scope admin --name ops` (the key is \
                 printed once), or bind a loopback address such as 127.0.0.1:8080",
            )
            .into());
        }
    }
    state.refresh_blocking().await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to learn the port when binding port 0.
    println!("listening on http://{local}");
    tracing::info!(%local, ?limits, "serving");
    let watcher = tokio::spawn(state::watch(state.clone(), limits.poll));
    let app = routes::router(state, limits.request);
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.connections));
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut shutdown = std::pin::pin!(shutdown());
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: pause rather than spin.
                    tracing::warn!("accepting a connection: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            tracing::warn!(%peer, "connection limit ({}) reached; closing", limits.connections);
            continue;
        };
        let service = hyper_util::service::TowerToHyperService::new(app.clone());
        let mut stopped = stopped.clone();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(hyper::server::conn::http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(limits.idle)
                .serve_connection(hyper_util::rt::TokioIo::new(stream), service));
            let result = tokio::select! {
                r = conn.as_mut() => r,
                _ = stopped.changed() => {
                    // Finish the request in flight, then close.
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, "connection: {e}");
            }
            drop(permit);
        });
    }
    let _ = stop.send(true);
    watcher.abort();
    Ok(())
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
}
