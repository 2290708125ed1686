//! `rollback`: ACTIVE back to an earlier complete version.

use std::path::Path;

use clap::Args;
use feed_engine::Registry;

/// Move a model's ACTIVE pointer back to an earlier complete version (by default the newest
/// one older than ACTIVE), atomically; servers serve it from their next poll. The move is
/// recorded in both versions' status logs. A version that does not load here is refused.
#[derive(Debug, Args)]
pub struct RollbackArgs {
    /// The model's name.
    #[arg(long)]
    model_name: String,
    /// The version to serve (any complete version but the ACTIVE one).
    #[arg(long)]
    version: Option<u32>,
    /// Roll back even while a version is being made (it replaces the rolled-back version when
    /// it deploys).
    #[arg(long)]
    force: bool,
}

pub async fn run(home: &Path, args: RollbackArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    let m = tokio::task::spawn_blocking(move || {
        feed_engine::lifecycle::rollback(&registry, &args.model_name, args.version, args.force)
    })
    .await??;
    println!(
        "model `{}`: ACTIVE moved from version {} to version {}",
        m.model, m.from, m.to
    );
    Ok(())
}
