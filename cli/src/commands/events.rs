//! `events push`: a file of events into a model's log, as `POST /models/{name}/events` takes
//! them (a running server reads them within its poll interval).

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::{Args, Subcommand};
use feed_engine::config::ModelConfig;
use feed_engine::live::{self, EventLog};
use feed_engine::{Error, Registry};

/// Live events of a model.
#[derive(Debug, Args)]
pub struct EventsArgs {
    #[command(subcommand)]
    command: EventsCommand,
}

#[derive(Debug, Subcommand)]
enum EventsCommand {
    /// Append the events of a file (NDJSON, or a JSON array) to a model's log. Returns once
    /// they are on disk; events whose `event_id` the log holds are counted and skipped.
    Push(PushArgs),
}

/// A file pushed into one of a model's logs (`events push`, `items push`).
#[derive(Debug, Args)]
pub(crate) struct PushArgs {
    /// The model's name.
    #[arg(long)]
    pub model_name: String,
    /// The rows: one JSON object a line, or a JSON array.
    #[arg(long)]
    pub file: PathBuf,
}

pub fn run(home: &Path, args: EventsArgs) -> anyhow::Result<()> {
    match args.command {
        EventsCommand::Push(args) => push(home, args),
    }
}

fn push(home: &Path, args: PushArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    registry.require_local("live events")?;
    let name = &args.model_name;
    let version = match registry.active_version(name)? {
        Some(v) => v,
        None if registry.exists(name) => return Err(registry.no_active_version(name).into()),
        None => return Err(registry.unknown_model(name).into()),
    };
    // The event types the serving version accepts.
    let dir = registry.version_files(name, version, &["model.yaml"])?;
    let config = ModelConfig::load(&dir.join("model.yaml")).map_err(Error::from)?;
    let body = std::fs::read(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))
        .map_err(|e| Error::invalid("--file", format!("{e:#}")))?;
    let events = crate::events::parse(&body, crate::events::now()).map_err(|e| {
        let what = e.path().unwrap_or_else(|| "--file".into());
        Error::invalid(what, format!("{}: {e}", args.file.display()))
    })?;
    live::check_batch(&events, &config.events)?;
    let received = events.len();
    let log = EventLog::open(&live::log_dir(&registry.model_dir(name)))?;
    let appended = log.append(events)?;
    println!(
        "{received} events: {} written, {} duplicates (model `{name}`)",
        appended.accepted, appended.duplicates
    );
    Ok(())
}
