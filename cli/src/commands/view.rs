//! `view-model`.

use std::path::Path;

use clap::Args;
use feed_engine::Registry;

use crate::output::{metrics_table, table};

/// Show a model: its versions with their statuses, the status log of a version, and the
/// evaluation metrics of every policy.
#[derive(Debug, Args)]
pub struct ViewArgs {
    /// The model's name.
    #[arg(long)]
    model_name: String,
    /// The version to detail (default: the ACTIVE one, or the newest if none is ACTIVE).
    #[arg(long)]
    version: Option<u32>,
    /// How many lines of the status log to show.
    #[arg(long, default_value_t = 15)]
    log_lines: usize,
    /// Print JSON (versions, the log, and the metrics report) instead of text.
    #[arg(long)]
    json: bool,
    /// Follow the version being made (or `--version`): print its status log as it is written
    /// and end when the version does; exit 1 if it ends in ERROR.
    #[arg(long, conflicts_with = "json")]
    follow: bool,
}

pub async fn run(home: &Path, args: ViewArgs) -> anyhow::Result<()> {
    let registry = Registry::open(home)?;
    if args.follow {
        return follow(registry, &args.model_name, args.version).await;
    }
    tokio::task::spawn_blocking(move || show(&registry, &args)).await?
}

/// Prints the version's log lines as they come, until it ends.
async fn follow(registry: Registry, model: &str, version: Option<u32>) -> anyhow::Result<()> {
    let model = model.to_string();
    let mut follower = tokio::task::spawn_blocking(move || {
        crate::follow::Follower::new(registry, &model, version)
    })
    .await??;
    println!("following version {}", follower.version());
    loop {
        let (back, read) = follower
            .next()
            .await
            .ok_or_else(|| anyhow::anyhow!("reading the status log failed"))?;
        follower = back;
        let read = read?;
        for e in &read.lines {
            println!(
                "  {}  {:<10}  {}",
                e.ts.format("%Y-%m-%d %H:%M:%S"),
                e.status,
                e.message
            );
        }
        if read.ended() {
            let v = &read.version;
            if read.failed() {
                anyhow::bail!("version {} ended in ERROR: {}", v.version, v.message);
            }
            println!("version {} ended {}: {}", v.version, v.status, v.message);
            return Ok(());
        }
    }
}

fn show(registry: &Registry, args: &ViewArgs) -> anyhow::Result<()> {
    let d = crate::detail::read(registry, &args.model_name, args.version)?;
    if args.json {
        let out = crate::wire::ModelDetail::from(&d);
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(());
    }
    let crate::detail::Detail {
        versions,
        detail,
        manifest,
        report,
        ..
    } = &d;
    println!("model: {}", args.model_name);
    let rows: Vec<Vec<String>> = versions
        .iter()
        .map(|v| {
            vec![
                v.version.to_string(),
                v.status.to_string(),
                v.created_at
                    .map(|t| t.format("%Y-%m-%d %H:%M:%S").to_string())
                    .unwrap_or_default(),
                v.message.clone(),
            ]
        })
        .collect();
    print!(
        "{}",
        table(&["VERSION", "STATUS", "CREATED", "LAST MESSAGE"], &rows)
    );
    println!(
        "\nversion {}: {} — {}",
        detail.version, detail.status, detail.message
    );
    if let Some(m) = &manifest {
        println!(
            "ranks with: {} (items {}, users {}, events {})",
            m.primary_policy, m.items, m.users, m.events
        );
        for (policy, ix) in &m.indexes {
            println!(
                "vectors of {policy}: d = {}, {}; lance/items.lance, lance/users.lance",
                ix.dim,
                ix.describe()
            );
        }
    }
    if let Some(r) = &report {
        println!("\nmetrics (test split):");
        print!("{}", metrics_table(r));
    }
    let wire = crate::wire::ModelDetail::from(&d);
    for e in &wire.experiments {
        let scope = if e.applies_to.is_empty() {
            "every request".to_string()
        } else {
            e.applies_to.join(", ")
        };
        println!("\nexperiment {} (splits {scope}):", e.name);
        let rows: Vec<Vec<String>> = e
            .variants
            .iter()
            .map(|v| vec![v.name.clone(), format!("{}%", v.share), v.answers.clone()])
            .collect();
        print!("{}", table(&["VARIANT", "SHARE", "ANSWERS WITH"], &rows));
    }
    if let Some(s) = &wire.shadow {
        let ms = |x: Option<f64>| x.map_or("-".into(), |v| format!("≤ {:.1} ms", v * 1e3));
        let fig = |x: Option<f64>| x.map_or("-".into(), |v| format!("{v:.3}"));
        println!(
            "\nshadow: version {}{} — {} requests compared{}",
            s.version,
            if s.active { "" } else { " (stopped)" },
            s.compared,
            s.against
                .map(|a| format!(" with version {a}"))
                .unwrap_or_default()
        );
        if s.compared > 0 || s.errors > 0 {
            println!(
                "  overlap@k {}, rank correlation {}, latency p50 {} (ACTIVE {}), p99 {} (ACTIVE {}), errors {}, skipped {}",
                fig(s.overlap),
                fig(s.rank_correlation),
                ms(s.shadow_p50_seconds),
                ms(s.active_p50_seconds),
                ms(s.shadow_p99_seconds),
                ms(s.active_p99_seconds),
                s.errors,
                s.skipped
            );
        }
    }
    println!("\nstatus log:");
    let skip = detail.log.len().saturating_sub(args.log_lines);
    for e in &detail.log[skip..] {
        println!(
            "  {}  {:<10}  {}",
            e.ts.format("%Y-%m-%d %H:%M:%S"),
            e.status,
            e.message
        );
    }
    Ok(())
}
