//! `serve`: the HTTP API.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use feed_engine::Registry;

/// Serve the ACTIVE version of every model over HTTP. A version that becomes ACTIVE later (from
/// create-model, update-model or rollback in another process) is picked up without a restart.
/// Requests need an API key unless the address is a loopback one (see `feedctl keys`).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// How often to look for newly ACTIVE versions, in milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
    /// Close a connection that has not sent a complete request head for this long: an idle
    /// keep-alive connection, or a client that sends nothing or partial headers.
    #[arg(long, default_value_t = 10)]
    idle_timeout_seconds: u64,
    /// Answer 408 to a request (body included) not handled within this long.
    #[arg(long, default_value_t = 30)]
    request_timeout_seconds: u64,
    /// Connections served at once; beyond, new ones are closed at once.
    #[arg(long, default_value_t = 1024)]
    max_connections: usize,
    /// Require an API key (`feedctl keys create`) on a loopback address too. On any other
    /// address keys are always required.
    #[arg(long)]
    require_keys: bool,
}

pub async fn run(home: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    crate::server::serve(
        registry,
        args.addr,
        crate::server::Limits {
            poll: Duration::from_millis(args.poll_ms.max(10)),
            idle: Duration::from_secs(args.idle_timeout_seconds.max(1)),
            request: Duration::from_secs(args.request_timeout_seconds.max(1)),
            connections: args.max_connections.max(1),
        },
        args.require_keys,
    )
    .await
}
