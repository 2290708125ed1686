//! `serve`: the HTTP API.

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use clap::Args;
use feed_engine::Registry;

/// Serve the ACTIVE version of every model over HTTP. A version that becomes ACTIVE later (from
/// create-model or update-model in another process) is picked up without a restart.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the chosen one is printed).
    #[arg(long, default_value = "127.0.0.1:8080")]
    addr: SocketAddr,
    /// How often to look for newly ACTIVE versions, in milliseconds.
    #[arg(long, default_value_t = 250)]
    poll_ms: u64,
}

pub async fn run(home: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    crate::server::serve(
        registry,
        args.addr,
        Duration::from_millis(args.poll_ms.max(10)),
    )
    .await
}
