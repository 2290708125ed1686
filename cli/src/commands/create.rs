//! `create-model` and `update-model`: a new version from a model file.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use anyhow::Context;
use clap::Args;
use feed_engine::config::ModelConfig;
use feed_engine::{lifecycle, Error, Mode, Registry, RunOptions};

use crate::output;
use crate::progress::Bars;

/// Create a model from a model file: fetch, train, evaluate and deploy its first version.
#[derive(Debug, Args)]
pub struct CreateArgs {
    /// The model file (YAML).
    #[arg(long, short)]
    file: PathBuf,
}

/// Make a new version of an existing model from a (changed) model file. The ACTIVE version keeps
/// serving until the new one is ready.
#[derive(Debug, Args)]
pub struct UpdateArgs {
    /// The model file (YAML).
    #[arg(long, short)]
    file: PathBuf,
    /// Retrain even if the file changes only the value model, queries or serving (which
    /// otherwise reuse the ACTIVE version's trained artifacts and deploy in about a second). An
    /// unchanged file always retrains, on fresh data.
    #[arg(long)]
    retrain: bool,
    /// Make the version but leave ACTIVE where it is: the version ends INACTIVE and complete,
    /// ready to be shadowed (`feedctl shadow`), split traffic with (an experiment's `version:`
    /// variant) or promoted (`feedctl promote`).
    #[arg(long)]
    candidate: bool,
}

pub async fn create(home: &Path, roots: &[PathBuf], args: CreateArgs) -> anyhow::Result<()> {
    run(home, roots, &args.file, Mode::Create, true, false).await
}

pub async fn update(home: &Path, roots: &[PathBuf], args: UpdateArgs) -> anyhow::Result<()> {
    run(
        home,
        roots,
        &args.file,
        Mode::Update,
        args.retrain,
        args.candidate,
    )
    .await
}

async fn run(
    home: &Path,
    roots: &[PathBuf],
    file: &Path,
    mode: Mode,
    retrain: bool,
    candidate: bool,
) -> anyhow::Result<()> {
    let config = ModelConfig::load(file)
        .map_err(Error::from)?
        .with_data_roots(roots.to_vec());
    let registry =
        Registry::open(home).with_context(|| format!("opening home {}", home.display()))?;
    let cancel = Arc::new(AtomicBool::new(false));
    {
        // First Ctrl-C: stop at the next iteration and record the version as cancelled.
        // Second: the default handler is gone, so exit at once; the lock shows it interrupted.
        let cancel = cancel.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("\ncancelling at the next iteration (Ctrl-C again to stop now)");
                cancel.store(true, Ordering::Relaxed);
                if tokio::signal::ctrl_c().await.is_ok() {
                    std::process::exit(130);
                }
            }
        });
    }
    let outcome = lifecycle::run(
        &registry,
        config,
        mode,
        RunOptions {
            progress: Arc::new(Bars::default()),
            cancel,
            retrain,
            candidate,
        },
    )
    .await?;
    println!(
        "model `{}` version {} is {}",
        outcome.model, outcome.version, outcome.status
    );
    print!("{}", output::metrics_table(&outcome.report));
    // What the fetch skipped, so that it is seen where the model is made, not only in
    // `view-model`.
    for w in &outcome.warnings {
        eprintln!("warning: {w}");
    }
    Ok(())
}
