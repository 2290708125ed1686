//! `delete-model`.

use std::path::Path;

use clap::Args;
use feed_engine::Registry;

/// Delete a model and all its versions. A running server stops serving it.
#[derive(Debug, Args)]
pub struct DeleteArgs {
    /// The model's name.
    #[arg(long)]
    model_name: String,
}

pub fn run(home: &Path, args: DeleteArgs) -> anyhow::Result<()> {
    Registry::open(home)?.delete(&args.model_name)?;
    println!("deleted model `{}`", args.model_name);
    Ok(())
}
