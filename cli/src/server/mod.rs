//! The HTTP server (`feedctl serve`): routes, wire types, the one error→status mapping and the
//! watcher that swaps in new ACTIVE versions without a restart.

mod error;
pub mod openapi;
mod routes;
mod state;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use feed_engine::Registry;

pub use state::AppState;

/// Serves until Ctrl-C (or SIGTERM). Loads every model's ACTIVE version before listening.
pub async fn serve(registry: Registry, addr: SocketAddr, poll: Duration) -> anyhow::Result<()> {
    let state = Arc::new(AppState::new(registry));
    state.refresh_blocking().await;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("binding {addr}"))?;
    let local = listener.local_addr()?;
    // Tests and scripts read this line to learn the port when binding port 0.
    println!("listening on http://{local}");
    tracing::info!(%local, "serving");
    let watcher = tokio::spawn(state::watch(state.clone(), poll));
    axum::serve(listener, routes::router(state))
        .with_graceful_shutdown(shutdown())
        .await
        .context("serving HTTP")?;
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
