//! `items push`: a file of catalog changes into a model's item log, as `POST
//! /models/{name}/items` takes them (a running server applies them within its poll interval).

use std::path::Path;

use anyhow::Context;
use clap::{Args, Subcommand};
use feed_engine::live::{self, ItemLog};
use feed_engine::{Error, Registry};

use super::events::PushArgs;

/// Live changes to a model's catalog.
#[derive(Debug, Args)]
pub struct ItemsArgs {
    #[command(subcommand)]
    command: ItemsCommand,
}

#[derive(Debug, Subcommand)]
enum ItemsCommand {
    /// Append the catalog changes of a file (NDJSON, or a JSON array) to a model's item log:
    /// `{"item_id": "m1", "attributes": {"in_stock": false}}` or `{"item_id": "m2", "delete":
    /// true}`. Returns once they are on disk.
    Push(PushArgs),
}

pub fn run(home: &Path, args: ItemsArgs) -> anyhow::Result<()> {
    match args.command {
        ItemsCommand::Push(args) => push(home, args),
    }
}

fn push(home: &Path, args: PushArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    registry.require_local("live catalog changes")?;
    let name = &args.model_name;
    let body = std::fs::read(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))
        .map_err(|e| Error::invalid("--file", format!("{e:#}")))?;
    let changes = crate::events::parse_items(&body).map_err(|e| {
        let what = e.path().unwrap_or_else(|| "--file".into());
        Error::invalid(what, format!("{}: {e}", args.file.display()))
    })?;
    // Checked against the catalog the model serves now.
    let (snapshot, _) = live::load_active(&registry, name)?;
    live::check_changes(&changes, &snapshot)?;
    let received = changes.len();
    let log = ItemLog::open(&live::items_dir(&registry.model_dir(name)))?;
    log.append(changes)?;
    println!("{received} item changes written (model `{name}`)");
    Ok(())
}
