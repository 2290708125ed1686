//! `feedctl`: the command line and HTTP server of Feed. The only crate that knows clap, HTTP,
//! JSON wire types and exit codes.

mod commands;
mod detail;
pub mod events;
mod exit;
mod follow;
mod output;
mod params;
mod progress;
mod server;
mod wire;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Feed: a declarative recommendation engine.
///
/// Describe data, models and ranking in one YAML file, then create, serve and query the model.
#[derive(Debug, Parser)]
#[command(name = "feedctl", version)]
struct Cli {
    /// The home holding models and their versions: a folder, or `s3://bucket/prefix` (also
    /// `gs://`, `az://`; credentials from the environment) for a home several servers share.
    #[arg(long, global = true, env = "FEED_HOME", default_value = ".feed")]
    home: PathBuf,

    /// A folder file connectors may read besides the model file's own (repeatable; the
    /// environment variable takes a `:`-separated list). Data elsewhere is refused.
    #[arg(
        long = "data-root",
        global = true,
        env = "FEED_DATA_ROOTS",
        value_delimiter = ':'
    )]
    data_roots: Vec<PathBuf>,

    /// Log verbosity for diagnostics on stderr (error, warn, info, debug, trace).
    #[arg(long, global = true, env = "FEED_LOG", default_value = "warn")]
    log: String,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    CreateModel(commands::create::CreateArgs),
    UpdateModel(commands::create::UpdateArgs),
    ListModels(commands::list::ListArgs),
    ViewModel(commands::view::ViewArgs),
    DeleteModel(commands::delete::DeleteArgs),
    Rollback(commands::rollback::RollbackArgs),
    Shadow(commands::shadow::ShadowArgs),
    Promote(commands::promote::PromoteArgs),
    Keys(commands::keys::KeysArgs),
    Validate(commands::validate::ValidateArgs),
    Rank(commands::rank::RankArgs),
    Query(commands::query::QueryArgs),
    Serve(commands::serve::ServeArgs),
    Bench(commands::bench::BenchArgs),
    BenchVectors(commands::bench_vectors::BenchVectorsArgs),
    BenchEvents(commands::bench_events::BenchEventsArgs),
    Events(commands::events::EventsArgs),
    Items(commands::items::ItemsArgs),
    Schema(commands::schema::SchemaArgs),
    Synth(commands::synth::SynthArgs),
    Cluster(commands::cluster::ClusterArgs),
}

/// mimalloc keeps freed pages for reuse: neural training allocates and frees buffers of hundreds
/// of megabytes per step (full-softmax logits), which the system allocator returns to the OS and
/// faults back in, zeroed, every time (measured in DESIGN.md §7: 0.80 → 0.56 s per step).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps freed memory before giving it back to the OS, in milliseconds. Its
/// default, 1 s, is about one training step: a SASRec epoch on MovieLens-1M then spent 13% of its
/// time in the kernel zeroing pages it had just given back; at 10 s, 4% (docs/benchmarks.md). An
/// idle server still returns what training freed, 10 s later. `MIMALLOC_PURGE_DELAY` in the
/// environment wins.
const ALLOCATOR_PURGE_DELAY_MS: libc::c_long = 10_000;

/// mimalloc's `mi_option_purge_delay` (its `mi_option_t` enum, unchanged since mimalloc 2.1).
const MI_OPTION_PURGE_DELAY: libc::c_int = 15;

extern "C" {
    /// Part of mimalloc's public API (`mimalloc.h`), linked through the `mimalloc` crate.
    fn mi_option_set(option: libc::c_int, value: libc::c_long);
}

fn set_allocator_options() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: sets one integer option, which mimalloc reads whenever it considers a purge.
        unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, ALLOCATOR_PURGE_DELAY_MS) };
    }
}

fn main() -> ExitCode {
    set_allocator_options();
    // A closed pipe (`feedctl list-models | head -0`) ends the process quietly, as it does other
    // command-line tools, instead of a panic in `println!`.
    #[cfg(unix)]
    // SAFETY: restoring the default disposition of one signal before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(&cli.log).unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILURE);
        }
    };
    let home = cli.home;
    let roots = cli.data_roots;
    let result = runtime.block_on(async move {
        match cli.command {
            Command::CreateModel(a) => commands::create::create(&home, &roots, a).await,
            Command::UpdateModel(a) => commands::create::update(&home, &roots, a).await,
            Command::ListModels(a) => commands::list::run(&home, a),
            Command::ViewModel(a) => commands::view::run(&home, a).await,
            Command::DeleteModel(a) => commands::delete::run(&home, a),
            Command::Rollback(a) => commands::rollback::run(&home, a).await,
            Command::Shadow(a) => commands::shadow::run(&home, a).await,
            Command::Promote(a) => commands::promote::run(&home, a).await,
            Command::Keys(a) => commands::keys::run(&home, a),
            Command::Validate(a) => commands::validate::run(&roots, a).await,
            Command::Rank(a) => commands::rank::run(&home, a).await,
            Command::Query(a) => commands::query::run(&home, a).await,
            Command::Serve(a) => commands::serve::run(&home, a).await,
            Command::Bench(a) => commands::bench::run(&roots, a).await,
            Command::BenchVectors(a) => commands::bench_vectors::run(a).await,
            Command::BenchEvents(a) => commands::bench_events::run(a),
            Command::Events(a) => commands::events::run(&home, a),
            Command::Items(a) => commands::items::run(&home, a),
            Command::Cluster(a) => commands::cluster::run(a).await,
            Command::Schema(a) => commands::schema::run(a),
            Command::Synth(a) => commands::synth::run(a),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {}", exit::describe(&e));
            ExitCode::from(exit::code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    #[test]
    fn cli_definition_is_consistent() {
        super::Cli::command().debug_assert();
    }
}
