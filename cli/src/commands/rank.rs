//! `rank`: a ranking from the ACTIVE version, computed locally without a server.

use std::path::Path;

use anyhow::Context;
use clap::Args;
use feed_engine::{RankRequest, Registry};

use crate::output::ranking_table;

/// Rank items for a user with the ACTIVE version of a model (local; no server needed).
#[derive(Debug, Args)]
pub struct RankArgs {
    /// The model's name.
    #[arg(long)]
    model_name: String,
    /// The user to rank for; an unknown user gets the popular fallback.
    #[arg(long)]
    user_id: String,
    /// How many items.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    limit: usize,
    /// Show the items' attributes.
    #[arg(long)]
    metadata: bool,
}

pub async fn run(home: &Path, args: RankArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    let name = args.model_name.clone();
    let ranking = tokio::task::spawn_blocking(move || {
        let (snapshot, live) = feed_engine::live::load_active(&registry, &args.model_name)?;
        let req = RankRequest {
            user_id: args.user_id,
            limit: args.limit,
            with_metadata: args.metadata,
            features: false,
        };
        snapshot.rank_live(&req, &live.over(&snapshot))
    })
    .await?
    .with_context(|| format!("ranking with model `{name}`"))?;
    println!(
        "model `{}` version {}{}",
        ranking.model,
        ranking.version,
        match ranking.fallback {
            Some("popular") => " (unknown user: popular fallback)",
            Some(_) => " (a user only live events know: from their history)",
            None => "",
        }
    );
    let scores: Vec<f64> = ranking.scores.iter().map(|&s| s as f64).collect();
    print!(
        "{}",
        ranking_table(&ranking.ids, &scores, ranking.metadata.as_ref())?
    );
    Ok(())
}
