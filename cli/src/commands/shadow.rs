//! `shadow`: score live requests with a candidate version beside ACTIVE.

use std::path::Path;

use clap::Args;
use feed_engine::Registry;

/// Have servers score live requests with another complete version too (a candidate made by
/// `update-model --candidate`), off the response path, and compare its answers with ACTIVE's:
/// overlap@k, rank correlation and latency, in `GET /metrics` and `view-model`. Servers pick
/// it up at their next poll. `feedctl promote --shadow` makes it ACTIVE.
#[derive(Debug, Args)]
pub struct ShadowArgs {
    /// The model's name.
    #[arg(long)]
    model_name: String,
    /// The version to shadow (any complete version but the ACTIVE one).
    #[arg(long, required_unless_present = "stop", conflicts_with = "stop")]
    version: Option<u32>,
    /// Stop shadowing.
    #[arg(long)]
    stop: bool,
}

pub async fn run(home: &Path, args: ShadowArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    let model = args.model_name.clone();
    let message = tokio::task::spawn_blocking(move || -> anyhow::Result<String> {
        if !registry.exists(&model) {
            return Err(registry.unknown_model(&model).into());
        }
        Ok(match args.version {
            Some(v) => {
                let p = registry.set_shadow(&model, v)?;
                format!(
                    "model `{model}`: servers score live requests with version {} beside ACTIVE from their next poll",
                    p.version
                )
            }
            None => match registry.clear_shadow(&model)? {
                Some(v) => format!("model `{model}`: version {v} is no longer shadowed"),
                None => format!("model `{model}` had no shadow version"),
            },
        })
    })
    .await??;
    println!("{message}");
    Ok(())
}
