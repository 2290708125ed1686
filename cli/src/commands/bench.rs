//! `bench`: fetch, dataset, training and rank latency for one model file, in one run.

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use clap::Args;
use feed_engine::config::ModelConfig;
use feed_engine::{
    dataset, fetch, lifecycle, Error, Mode, NoProgress, RankRequest, Registry, RunOptions, Snapshot,
};

use crate::output::table;

/// Measure a model file end to end: fetch + dataset build, training time per policy (from a full
/// create-model in a temporary home), snapshot load, and in-process `rank` latency (p50/p99).
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// The model file (YAML).
    #[arg(long, short)]
    file: PathBuf,
    /// How many rank requests to time (users drawn at random, fixed seed).
    #[arg(long, default_value_t = 2000)]
    requests: usize,
    /// Items per ranking.
    #[arg(long, default_value_t = 10, allow_negative_numbers = true)]
    limit: usize,
    /// A FeedQL query to time as well (`$user_id` is bound to random known users), with the
    /// share of time per stage.
    #[arg(long)]
    query: Option<String>,
    /// With `--query`: live events for this many of the model's users (5 clicks each, on
    /// random items) in the model's log, and the query timed for those users with the live
    /// overlay and without it, interleaved request by request.
    #[arg(long, default_value_t = 0)]
    live_users: usize,
    /// With `--query`: a second query timed for the same users, interleaved request by request
    /// (which goes first alternates), and reported beside it as a ratio: a stage's cost is the
    /// query with it over the same query without it, measured in one run.
    #[arg(long, requires = "query")]
    baseline: Option<String>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
}

pub async fn run(roots: &[PathBuf], args: BenchArgs) -> anyhow::Result<()> {
    let config = ModelConfig::load(&args.file)
        .map_err(Error::from)?
        .with_data_roots(roots.to_vec());
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };

    let t = Instant::now();
    let fetch_meter = feed_engine::util::memory::PeakMeter::start();
    let plan = fetch::plan(&config).await?;
    let ds = dataset::build(
        plan,
        config.fetch_limits.memory_bytes,
        dataset::Logged::default(),
        &NoProgress,
    )
    .await?;
    let fetch_s = t.elapsed().as_secs_f64();
    let fetch_peak = fetch_meter.finish();
    let (users, items, events) = (ds.n_users(), ds.n_items(), ds.n_events());
    drop(ds);

    let home = tempfile::tempdir()?;
    let registry = Registry::open(home.path())?;
    let t = Instant::now();
    let create_meter = feed_engine::util::memory::PeakMeter::start();
    let outcome = lifecycle::run(
        &registry,
        config.clone(),
        Mode::Create,
        RunOptions {
            progress: Arc::new(NoProgress),
            cancel: Arc::new(AtomicBool::new(false)),
            retrain: true,
            candidate: false,
        },
    )
    .await?;
    let create_s = t.elapsed().as_secs_f64();
    let create_peak = create_meter.finish();
    let version_bytes = folder_bytes(&registry.version_dir(&config.name, 1));

    let (
        (load_s, loaded),
        latencies,
        fallback_latencies,
        (query_runs, baseline_runs),
        indexes,
        overlay,
    ) = {
        let registry = registry.clone();
        let name = config.name.clone();
        let (requests, limit, live_users) = (args.requests, args.limit, args.live_users);
        let query = args.query.clone();
        let baseline = args.baseline.clone();
        tokio::task::spawn_blocking(move || -> feed_engine::Result<_> {
            let t = Instant::now();
            let before = feed_engine::util::memory::resident();
            let snapshot = Snapshot::load_active(&registry, &name)?;
            let load_s = t.elapsed().as_secs_f64();
            // Mapped files count once touched: measured again after the requests below.
            let loaded = || {
                feed_engine::util::memory::resident()
                    .zip(before)
                    .map(|(a, b)| a.saturating_sub(b))
            };
            let ids = snapshot.user_ids();
            let mut state = 0x2545_F491_4F6C_DD1Du64;
            let mut lat = Vec::with_capacity(requests);
            for _ in 0..requests {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let user_id = ids[(state % ids.len() as u64) as usize].clone();
                let t = Instant::now();
                let r = snapshot.rank(&RankRequest {
                    user_id,
                    limit,
                    with_metadata: false,
                    features: false,
                })?;
                lat.push(t.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box(r);
            }
            let mut fb = Vec::with_capacity(requests / 10 + 1);
            for i in 0..requests / 10 + 1 {
                let t = Instant::now();
                let r = snapshot.rank(&RankRequest {
                    user_id: format!("unknown-{i}"),
                    limit,
                    with_metadata: false,
                    features: false,
                })?;
                fb.push(t.elapsed().as_secs_f64() * 1e3);
                std::hint::black_box(r);
            }
            // The FeedQL scenario: same users, `$user_id` bound to each.
            let mut runs: Vec<(f64, Vec<(&'static str, u64)>)> = Vec::new();
            let mut baseline_ms: Vec<f64> = Vec::new();
            if let Some(text) = &query {
                for k in 0..requests {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    let user_id = ids[(state % ids.len() as u64) as usize].clone();
                    let request = |text: &str| {
                        let mut params = feed_engine::Params::new();
                        params.insert(
                            "user_id".into(),
                            feed_engine::ParamValue::Str(user_id.clone()),
                        );
                        feed_engine::QueryRequest {
                            text: Some(text.to_string()),
                            params,
                            ..Default::default()
                        }
                    };
                    // Alternate which goes first, so that neither always finds the caches
                    // warmer.
                    let order = match (&baseline, k % 2) {
                        (Some(b), 0) => vec![(false, b.as_str()), (true, text.as_str())],
                        (Some(b), _) => vec![(true, text.as_str()), (false, b.as_str())],
                        (None, _) => vec![(true, text.as_str())],
                    };
                    for (main, text) in order {
                        let req = request(text);
                        let t = Instant::now();
                        let r = snapshot.query(&req)?;
                        let ms = t.elapsed().as_secs_f64() * 1e3;
                        if main {
                            runs.push((ms, r.stages.iter().map(|s| (s.stage, s.micros)).collect()));
                        } else {
                            baseline_ms.push(ms);
                        }
                        std::hint::black_box(r);
                    }
                }
            }
            let overlay = match &query {
                Some(text) if live_users > 0 => Some(overlay_cost(
                    &registry, &snapshot, text, live_users, requests,
                )?),
                _ => None,
            };
            Ok((
                (load_s, loaded()),
                lat,
                fb,
                (runs, baseline_ms),
                snapshot.manifest.indexes.clone(),
                overlay,
            ))
        })
        .await??
    };
    let (p50, p99, mean) = percentiles(latencies);
    let (fb50, fb99, _) = percentiles(fallback_latencies);

    println!(
        "bench of {} ({profile} build; users {users}, items {items}, events {events})",
        args.file.display()
    );
    let mut rows = vec![
        vec![
            "fetch + dataset build".to_string(),
            format!("{fetch_s:.2} s"),
        ],
        vec![
            "create-model total (fetch, train, evaluate, deploy)".into(),
            format!("{create_s:.2} s"),
        ],
        vec![
            "train: popularity (reference)".into(),
            format!("{:.2} s", outcome.report.reference.train_seconds),
        ],
    ];
    for (name, r) in &outcome.report.policies {
        rows.push(vec![
            format!("train: {name} ({})", r.kind),
            format!("{:.2} s (test NDCG@10 {:.4})", r.train_seconds, r.test.ndcg),
        ]);
    }
    for (policy, ix) in &indexes {
        rows.push(vec![
            format!("vectors: {policy} (d = {})", ix.dim),
            format!(
                "{}, built in {:.2} s; {:.0} bytes per item, {} per user",
                ix.describe(),
                ix.build_seconds,
                (ix.vector_bytes + ix.index_bytes) as f64 / items.max(1) as f64,
                ix.dim * 4
            ),
        ]);
    }
    rows.push(vec!["snapshot load".into(), format!("{load_s:.3} s")]);
    rows.push(vec![
        format!(
            "rank p50 / p99 / mean ({} requests, limit {})",
            args.requests, args.limit
        ),
        format!("{p50:.3} / {p99:.3} / {mean:.3} ms"),
    ]);
    rows.push(vec![
        "rank, unknown user (popular fallback) p50 / p99".into(),
        format!("{fb50:.3} / {fb99:.3} ms"),
    ]);
    print!("{}", table(&["WHAT", "FIGURE"], &rows));

    let mut query_json = serde_json::Value::Null;
    if !query_runs.is_empty() {
        let total: f64 = query_runs.iter().map(|r| r.0).sum();
        let mut per_stage: Vec<(&str, f64)> = Vec::new();
        for (_, stages) in &query_runs {
            for &(stage, micros) in stages {
                match per_stage.iter_mut().find(|(s, _)| *s == stage) {
                    Some(e) => e.1 += micros as f64 / 1e3,
                    None => per_stage.push((stage, micros as f64 / 1e3)),
                }
            }
        }
        let (q50, q99, qmean) = percentiles(query_runs.iter().map(|r| r.0).collect());
        let mut rows = vec![vec![
            format!("query p50 / p99 / mean ({} requests)", query_runs.len()),
            format!(
                "{q50:.3} / {q99:.3} / {qmean:.3} ms ({:.1}x rank's p50)",
                q50 / p50.max(1e-9)
            ),
        ]];
        let (b50, b99, bmean) = percentiles(baseline_runs);
        if args.baseline.is_some() {
            rows.push(vec![
                "baseline query p50 / p99 / mean (the same users, interleaved)".into(),
                format!(
                    "{b50:.3} / {b99:.3} / {bmean:.3} ms; query over baseline {:.2}x at p50, {:.2}x at p99",
                    q50 / b50.max(1e-9),
                    q99 / b99.max(1e-9)
                ),
            ]);
        }
        for (stage, ms) in &per_stage {
            rows.push(vec![
                format!("  share of time in {stage}"),
                format!("{:.1}%", 100.0 * ms / total.max(1e-9)),
            ]);
        }
        if let Some(o) = &overlay {
            rows.push(vec![
                format!(
                    "with live events of {} users ({} events): p50 without / with overlay",
                    o.users, o.events
                ),
                format!(
                    "{:.3} / {:.3} ms ({:.3}x)",
                    o.without_p50,
                    o.with_p50,
                    o.with_p50 / o.without_p50.max(1e-9)
                ),
            ]);
        }
        print!("{}", table(&["QUERY", "FIGURE"], &rows));
        query_json = serde_json::json!({
            "text": args.query, "p50_ms": q50, "p99_ms": q99, "mean_ms": qmean,
            "baseline": args.baseline.as_ref().map(|b| serde_json::json!({
                "text": b, "p50_ms": b50, "p99_ms": b99, "mean_ms": bmean,
                "ratio_p50": q50 / b50.max(1e-9), "ratio_p99": q99 / b99.max(1e-9),
            })),
            "overlay": overlay.as_ref().map(|o| serde_json::json!({
                "live_users": o.users, "live_events": o.events,
                "p50_without_ms": o.without_p50, "p50_with_ms": o.with_p50,
                "ratio": o.with_p50 / o.without_p50.max(1e-9),
            })),
            "stage_share": per_stage.iter().map(|(s, ms)| (s.to_string(), ms / total.max(1e-9))).collect::<std::collections::BTreeMap<_, _>>(),
        });
    }

    if let Some(out) = &args.out {
        let json = serde_json::json!({
            "file": args.file, "profile": profile, "users": users, "items": items, "events": events,
            "fetch_dataset_s": fetch_s, "create_model_s": create_s, "snapshot_load_s": load_s,
            "fetch_dataset_peak_bytes": fetch_peak, "create_model_peak_bytes": create_peak,
            "version_bytes": version_bytes, "snapshot_resident_bytes": loaded,
            "train_s": outcome.report.policies.iter().map(|(k, v)| (k.clone(), v.train_seconds)).collect::<std::collections::BTreeMap<_, _>>(),
            "reference_train_s": outcome.report.reference.train_seconds,
            "rank_ms": {"p50": p50, "p99": p99, "mean": mean, "requests": args.requests, "limit": args.limit},
            "rank_fallback_ms": {"p50": fb50, "p99": fb99},
            "metrics": outcome.report,
            "vector_indexes": indexes,
            "query": query_json,
        });
        std::fs::write(out, serde_json::to_string_pretty(&json)?)?;
    }
    Ok(())
}

/// The bytes of the files under `dir`.
fn folder_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => folder_bytes(&e.path()),
            _ => e.metadata().map_or(0, |m| m.len()),
        })
        .sum()
}

/// The live overlay's cost on a query: p50 with and without it, for users who have live
/// events.
struct OverlayCost {
    users: usize,
    events: usize,
    without_p50: f64,
    with_p50: f64,
}

/// Writes 5 clicks for each of `n` of the model's users into its log, reads the log into an
/// overlay, and times `text` for those users with and without it, alternating.
fn overlay_cost(
    registry: &Registry,
    snapshot: &Snapshot,
    text: &str,
    n: usize,
    requests: usize,
) -> feed_engine::Result<OverlayCost> {
    use feed_engine::live::{self, Event, EventLog, LiveUsers};
    let ids = snapshot.user_ids();
    let n_items = snapshot.n_items() as u64;
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let users: Vec<String> = (0..n).map(|k| ids[k % ids.len()].clone()).collect();
    let log = EventLog::open(&live::log_dir(&registry.model_dir(snapshot.model())))?;
    let mut events = 0;
    for chunk in users.chunks(10_000) {
        let batch: Vec<Event> = chunk
            .iter()
            .flat_map(|u| (0..5).map(move |_| u.clone()))
            .map(|user_id| Event {
                event_id: None,
                user_id,
                item_id: snapshot.item_id((next() % n_items) as u32).to_string(),
                kind: "click".into(),
                timestamp: 1.0,
                value: None,
                request_id: None,
                position: None,
                features: None,
                variant: None,
            })
            .collect();
        events += batch.len();
        log.append(batch)?;
    }
    let overlay = LiveUsers::of_model(registry, snapshot.model())?;
    let layered = overlay.over(snapshot);
    let (mut with, mut without) = (Vec::new(), Vec::new());
    for k in 0..requests {
        let user_id = users[(next() % users.len() as u64) as usize].clone();
        let mut params = feed_engine::Params::new();
        params.insert("user_id".into(), feed_engine::ParamValue::Str(user_id));
        let req = feed_engine::QueryRequest {
            text: Some(text.to_string()),
            params,
            ..Default::default()
        };
        // Alternate which goes first, so that neither always finds the caches warmer.
        for live_first in [k % 2 == 0, k % 2 == 1] {
            let t = Instant::now();
            let r = if live_first {
                snapshot.query_live(&req, None, &layered)?
            } else {
                snapshot.query(&req)?
            };
            let ms = t.elapsed().as_secs_f64() * 1e3;
            if live_first {
                with.push(ms);
            } else {
                without.push(ms);
            }
            std::hint::black_box(r);
        }
    }
    Ok(OverlayCost {
        users: n,
        events,
        without_p50: percentiles(without).0,
        with_p50: percentiles(with).0,
    })
}

/// p50, p99 and mean of a sample (zeros when empty).
pub(crate) fn percentiles(mut v: Vec<f64>) -> (f64, f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    (at(0.5), at(0.99), v.iter().sum::<f64>() / v.len() as f64)
}
