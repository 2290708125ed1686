//! `feedctl cluster scheduler|executor`: the processes of an Apache Ballista cluster, built on
//! the Ballista crates that `fetch.engine: ballista` talks to, so that a cluster of the matching
//! version needs no other install. Each runs until stopped.
//!
//! Tasks are pulled by the executors rather than pushed by the scheduler: an executor registers
//! before its own task service listens, and a push in that gap (a job submitted as the cluster
//! starts) loses the executor for good.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{anyhow, Context};
use ballista_core::config::TaskSchedulingPolicy;
use clap::{Args, Subcommand};

#[derive(Debug, Args)]
pub struct ClusterArgs {
    #[command(subcommand)]
    command: ClusterCommand,
}

#[derive(Debug, Subcommand)]
enum ClusterCommand {
    /// The scheduler: plans the fetch SQL into stages and hands their tasks to executors.
    Scheduler(SchedulerArgs),
    /// An executor: runs tasks and serves their results (Arrow Flight).
    Executor(ExecutorArgs),
}

#[derive(Debug, Args)]
pub struct SchedulerArgs {
    /// Address to listen on (gRPC): what `fetch.scheduler` names as df://host:port.
    #[arg(long, default_value = "127.0.0.1:50050")]
    bind: SocketAddr,
}

#[derive(Debug, Args)]
pub struct ExecutorArgs {
    /// The scheduler's address.
    #[arg(long, default_value = "127.0.0.1:50050")]
    scheduler: SocketAddr,
    /// Host to listen on and to advertise to the scheduler and the client.
    #[arg(long, default_value = "127.0.0.1")]
    host: String,
    /// Port of the executor's Arrow Flight service (results).
    #[arg(long, default_value_t = 50051)]
    port: u16,
    /// Port of the executor's gRPC service (tasks).
    #[arg(long, default_value_t = 50052)]
    grpc_port: u16,
    /// Tasks run at once (default: the machine's cores).
    #[arg(long)]
    concurrent_tasks: Option<usize>,
    /// Folder for intermediate (shuffle) files (default: a temporary folder).
    #[arg(long)]
    work_dir: Option<PathBuf>,
}

pub async fn run(args: ClusterArgs) -> anyhow::Result<()> {
    match args.command {
        ClusterCommand::Scheduler(a) => scheduler(a).await,
        ClusterCommand::Executor(a) => executor(a).await,
    }
}

async fn scheduler(args: SchedulerArgs) -> anyhow::Result<()> {
    use ballista_scheduler::cluster::BallistaCluster;
    use ballista_scheduler::config::SchedulerConfig;
    let config = SchedulerConfig::default()
        .with_hostname(args.bind.ip().to_string())
        .with_port(args.bind.port())
        .with_scheduler_policy(TaskSchedulingPolicy::PullStaged);
    let cluster = BallistaCluster::new_from_config(&config)
        .await
        .map_err(|e| anyhow!("{e}"))
        .context("setting up the scheduler's state")?;
    eprintln!("scheduler listening on {}", args.bind);
    ballista_scheduler::scheduler_process::start_server(cluster, args.bind, Arc::new(config))
        .await
        .map_err(|e| anyhow!("{e}"))
        .with_context(|| format!("running the scheduler on {}", args.bind))
}

async fn executor(args: ExecutorArgs) -> anyhow::Result<()> {
    use ballista_executor::executor_process::{start_executor_process, ExecutorProcessConfig};
    let mut config = ExecutorProcessConfig {
        bind_host: args.host.clone(),
        external_host: Some(args.host.clone()),
        port: args.port,
        grpc_port: args.grpc_port,
        scheduler_host: args.scheduler.ip().to_string(),
        scheduler_port: args.scheduler.port(),
        // Waits for a scheduler that is still starting (0 would give up at the first refusal).
        scheduler_connect_timeout_seconds: 60,
        work_dir: args.work_dir.map(|d| d.to_string_lossy().into_owned()),
        print_thread_info: false,
        task_scheduling_policy: TaskSchedulingPolicy::PullStaged,
        ..ExecutorProcessConfig::default()
    };
    if let Some(n) = args.concurrent_tasks {
        config.concurrent_tasks = n.max(1);
    }
    eprintln!(
        "executor on {}:{} (tasks on {}), scheduler {}",
        args.host, args.port, args.grpc_port, args.scheduler
    );
    start_executor_process(Arc::new(config))
        .await
        .map_err(|e| anyhow!("{e}"))
        .context("running the executor")
}
