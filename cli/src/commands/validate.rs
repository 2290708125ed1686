//! `validate`: every check of create-model, without fetching rows or training.

use std::path::PathBuf;

use clap::Args;
use feed_engine::config::ModelConfig;
use feed_engine::{lifecycle, Error};

/// Check a model file: keys and types, names, connectors and their paths, and the fetch SQL
/// planned against the connectors' schemas. Trains nothing and stores nothing.
#[derive(Debug, Args)]
pub struct ValidateArgs {
    /// The model file (YAML).
    #[arg(long, short)]
    file: PathBuf,
}

pub async fn run(roots: &[PathBuf], args: ValidateArgs) -> anyhow::Result<()> {
    let config = ModelConfig::load(&args.file)
        .map_err(Error::from)?
        .with_data_roots(roots.to_vec());
    lifecycle::validate(&config).await?;
    println!(
        "{}: ok (model `{}`, {} connectors, {} policies)",
        args.file.display(),
        config.name,
        config.connectors.len(),
        config.policies.len()
    );
    Ok(())
}
