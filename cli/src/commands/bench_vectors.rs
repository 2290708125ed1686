//! `bench-vectors`: similarity search on a synthetic clustered catalog, the exact SIMD scan as
//! the in-run baseline, with and without hard filters.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use feed_engine::config::{IndexConfig, IndexType};
use feed_engine::vectors::{self, synthetic::Mixture, Method, Search, VectorIndex};
use serde_json::json;

use crate::output::table;

/// Measure vector retrieval: index build time, memory, recall@k against exact search, latency
/// (p50/p99) and queries per second on one core, for the unfiltered search and filters of the
/// given selectivities. Vectors come from a Gaussian mixture (cluster structure, like learned
/// embeddings); queries are fresh draws from the same mixture.
#[derive(Debug, Args)]
pub struct BenchVectorsArgs {
    /// Items in the catalog.
    #[arg(long, default_value_t = 100_000)]
    items: usize,
    /// Vector dimension.
    #[arg(long, default_value_t = 64)]
    dim: usize,
    /// Mixture components (default: items / 500).
    #[arg(long)]
    clusters: Option<usize>,
    /// Within-cluster standard deviation (centres are N(0, 1) per dimension).
    #[arg(long, default_value_t = 0.6)]
    spread: f32,
    /// Timed queries per scenario.
    #[arg(long, default_value_t = 500)]
    queries: usize,
    /// Results per query.
    #[arg(long, default_value_t = 10)]
    k: usize,
    /// Filter selectivities to measure besides the unfiltered search (comma-separated).
    #[arg(long, default_value = "0.1,0.01,0.001,0.0001", value_delimiter = ',')]
    selectivities: Vec<f64>,
    /// `serving.index.partitions` (default: 2√items).
    #[arg(long)]
    partitions: Option<usize>,
    /// `serving.index.nprobes` (default: tuned to the target recall at build).
    #[arg(long)]
    nprobes: Option<usize>,
    /// `serving.index.refine_factor`.
    #[arg(long, default_value_t = 4)]
    refine_factor: usize,
    /// `serving.index.target_recall`.
    #[arg(long, default_value_t = 0.97)]
    target_recall: f64,
    /// Write the vectors, queries and these results here for `benches/faiss_peer.py`.
    #[arg(long)]
    export: Option<PathBuf>,
    /// Also write the figures as JSON to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    #[arg(long, default_value_t = 7)]
    seed: u64,
}

pub async fn run(args: BenchVectorsArgs) -> anyhow::Result<()> {
    tokio::task::spawn_blocking(move || measure(args)).await?
}

struct Scenario {
    name: String,
    selectivity: f64,
    eligible: usize,
    recall: f64,
    ann: Latency,
    exact: Latency,
    ivf_share: f64,
    scanned: f64,
}

struct Latency {
    p50: f64,
    p99: f64,
    qps: f64,
}

fn latency(micros: Vec<f64>) -> Latency {
    let (p50, p99, mean) = super::bench::percentiles(micros);
    Latency {
        p50,
        p99,
        qps: 1e6 / mean.max(1e-9),
    }
}

fn measure(args: BenchVectorsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        args.items > 0 && args.dim > 0,
        "--items and --dim must be positive"
    );
    anyhow::ensure!(
        args.queries > 0 && args.k > 0,
        "--queries and --k must be positive"
    );
    anyhow::ensure!(args.clusters != Some(0), "--clusters must be positive");
    let (n, dim) = (args.items, args.dim);
    let clusters = args.clusters.unwrap_or((n / 500).max(10));
    let mixture = Mixture::new(dim, clusters, args.spread, args.seed);
    let t = Instant::now();
    let items = mixture.sample(n, args.seed + 1);
    // The tuning sample stands in for user vectors; the timed queries are other draws.
    let tuning = mixture.sample(2000, args.seed + 2);
    let queries = mixture.sample(args.queries, args.seed + 3);
    eprintln!(
        "generated {n} × {dim} vectors in {clusters} clusters in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    let config = IndexConfig {
        kind: IndexType::IvfSq8,
        partitions: args.partitions,
        nprobes: args.nprobes,
        refine_factor: args.refine_factor,
        target_recall: args.target_recall,
        ..IndexConfig::default()
    };
    let t = Instant::now();
    let index = VectorIndex::build(&items, dim, &tuning, &config);
    let build_s = t.elapsed().as_secs_f64();
    let VectorIndex::Ivf(ivf) = &index else {
        anyhow::bail!("the index did not build")
    };
    eprintln!(
        "built IVF_SQ8 ({} partitions, probes {:?} for k = 10/100/1000) in {build_s:.1}s",
        ivf.partitions(),
        ivf.probes
    );

    let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ args.seed;
    let mut next = move || {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng
    };
    let mut scenarios = Vec::new();
    let mut masks: Vec<(f64, Vec<bool>)> = vec![(1.0, Vec::new())];
    for &s in &args.selectivities {
        anyhow::ensure!(
            s > 0.0 && s <= 1.0,
            "selectivities must be in (0, 1], got {s}"
        );
        let threshold = (s * u64::MAX as f64) as u64;
        masks.push((s, (0..n).map(|_| next() < threshold).collect()));
    }
    for (s, mask) in &masks {
        let filtered = !mask.is_empty();
        let eligible = if filtered {
            mask.iter().filter(|m| **m).count()
        } else {
            n
        };
        let mut exact_us = Vec::with_capacity(args.queries);
        let mut ann_us = Vec::with_capacity(args.queries);
        let (mut hits, mut wanted, mut via_ivf, mut scanned) = (0usize, 0usize, 0usize, 0usize);
        for q in queries.chunks_exact(dim) {
            let search = Search {
                query: q,
                k: args.k,
                mask: filtered.then_some(mask.as_slice()),
                eligible,
            };
            let t = Instant::now();
            let truth = vectors::exact(&items, dim, search);
            exact_us.push(t.elapsed().as_secs_f64() * 1e6);
            let t = Instant::now();
            let (found, method) = index.search(&items, dim, search);
            ann_us.push(t.elapsed().as_secs_f64() * 1e6);
            anyhow::ensure!(
                found.len() == args.k.min(eligible),
                "{} results for k = {} with {eligible} eligible",
                found.len(),
                args.k
            );
            anyhow::ensure!(
                !filtered || found.iter().all(|f| mask[f.0 as usize]),
                "an ineligible item was returned"
            );
            let want: std::collections::HashSet<u32> = truth.iter().map(|t| t.0).collect();
            hits += found.iter().filter(|f| want.contains(&f.0)).count();
            wanted += want.len();
            if let Method::Ivf(p) = method {
                via_ivf += 1;
                scanned += p.scanned;
            }
        }
        scenarios.push(Scenario {
            name: if filtered {
                format!("filter {}%", s * 100.0)
            } else {
                "no filter".into()
            },
            selectivity: *s,
            eligible,
            recall: hits as f64 / wanted.max(1) as f64,
            ann: latency(ann_us),
            exact: latency(exact_us),
            ivf_share: via_ivf as f64 / args.queries as f64,
            scanned: scanned as f64 / via_ivf.max(1) as f64,
        });
    }

    let vector_bytes = items.len() * 4;
    let index_bytes = index.bytes();
    let profile = if cfg!(debug_assertions) {
        "dev"
    } else {
        "release"
    };
    println!(
        "{n} items × {dim} (f32), {clusters} clusters; IVF_SQ8 {} partitions, refine ×{}; {} build; kernels: {}",
        ivf.partitions(),
        ivf.refine_factor,
        profile,
        vectors::simd::instruction_set()
    );
    println!(
        "build {build_s:.2}s (k-means on {} threads + probe tuning); memory: vectors {:.1} MiB + index {:.1} MiB = {:.0} bytes per item",
        std::thread::available_parallelism().map_or(1, |n| n.get()),
        vector_bytes as f64 / 1048576.0,
        index_bytes as f64 / 1048576.0,
        (vector_bytes + index_bytes) as f64 / n as f64
    );
    let rows: Vec<Vec<String>> = scenarios
        .iter()
        .map(|s| {
            vec![
                s.name.clone(),
                s.eligible.to_string(),
                format!("{:.4}", s.recall),
                format!("{:.3}", s.ann.p50 / 1000.0),
                format!("{:.3}", s.ann.p99 / 1000.0),
                format!("{:.0}", s.ann.qps),
                format!("{:.3}", s.exact.p50 / 1000.0),
                format!("{:.1}×", s.exact.p50 / s.ann.p50),
                format!("{:.0}%", s.ivf_share * 100.0),
                format!("{:.0}", s.scanned),
            ]
        })
        .collect();
    println!(
        "{}",
        table(
            &[
                "scenario",
                "eligible",
                "recall@k",
                "p50 ms",
                "p99 ms",
                "q/s (1 core)",
                "exact p50 ms",
                "speed-up",
                "via IVF",
                "codes scanned",
            ],
            &rows
        )
    );

    let report = json!({
        "items": n, "dim": dim, "clusters": clusters, "spread": args.spread, "k": args.k,
        "queries": args.queries, "profile": profile,
        "kernels": vectors::simd::instruction_set(),
        "index": {"kind": "ivf_sq8", "partitions": ivf.partitions(), "probes": ivf.probes,
                  "tuned_recall": ivf.tuned_recall, "refine_factor": ivf.refine_factor,
                  "build_seconds": build_s, "index_bytes": index_bytes,
                  "vector_bytes": vector_bytes,
                  "bytes_per_item": (vector_bytes + index_bytes) as f64 / n as f64},
        "scenarios": scenarios.iter().map(|s| json!({
            "name": s.name, "selectivity": s.selectivity, "eligible": s.eligible,
            "recall": s.recall, "p50_ms": s.ann.p50 / 1000.0, "p99_ms": s.ann.p99 / 1000.0,
            "qps": s.ann.qps, "exact_p50_ms": s.exact.p50 / 1000.0,
            "exact_p99_ms": s.exact.p99 / 1000.0, "speedup_p50": s.exact.p50 / s.ann.p50,
            "via_ivf": s.ivf_share, "codes_scanned": s.scanned,
        })).collect::<Vec<_>>(),
    });
    if let Some(path) = &args.out {
        std::fs::write(path, serde_json::to_vec_pretty(&report)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(dir) = &args.export {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let f32s = |name: &str, v: &[f32]| -> anyhow::Result<()> {
            let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
            std::fs::write(dir.join(name), bytes).with_context(|| format!("writing {name}"))
        };
        f32s("items.f32", &items)?;
        f32s("queries.f32", &queries)?;
        std::fs::write(dir.join("feed.json"), serde_json::to_vec_pretty(&report)?)?;
        eprintln!(
            "exported to {} (run benches/faiss_peer.py {0})",
            dir.display()
        );
    }
    Ok(())
}
