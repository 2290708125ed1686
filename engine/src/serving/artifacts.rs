//! The files of a deployed version, written at DEPLOYING and read by [`super::Snapshot`]. The
//! layout is defined here and only here.

use std::collections::BTreeMap;
use std::path::Path;

use chrono::{DateTime, Utc};
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use serde::{Deserialize, Serialize};

use crate::config::{IndexConfig, ModelConfig};
use crate::dataset::{Cut, Dataset};
use crate::error::{Error, IoContext, Result};
use crate::eval::EvalReport;
use crate::policy::{Policy, Popular, TrainContext, TrainedPolicy};
use crate::progress::NoProgress;
use crate::store;
use crate::store::lance::NamedVectors;
use crate::vectors::VectorIndex;

pub const MANIFEST: &str = "manifest.json";
pub const METRICS: &str = "metrics.json";
/// In a tuned policy's folder: the settings its `tuning:` search kept, which it was trained
/// with and is loaded with (the stored model file holds the search, not its outcome).
pub const TUNED: &str = "tuned.json";
/// Items per user the `history` encoder averages (the latest ones).
pub const HISTORY_LEN: usize = 50;

/// How many of a user's latest items serving keeps: as many as the longest sequence encoder
/// reads, and at least [`HISTORY_LEN`].
pub fn recent_len(config: &ModelConfig) -> usize {
    config
        .policies
        .iter()
        .filter_map(|p| match p {
            crate::config::PolicyConfig::Sasrec(c) => Some(c.max_seq_len),
            _ => None,
        })
        .fold(HISTORY_LEN, usize::max)
}
/// The layout version of what [`write`] writes: 2 added the Lance vector store.
pub const FORMAT: u32 = 2;

/// What serving needs to know about a version before loading its arrays.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub model: String,
    pub version: u32,
    /// The policy `rank` uses when the value model has no weights.
    pub primary_policy: String,
    pub items: usize,
    pub users: usize,
    pub events: usize,
    pub deployed_at: DateTime<Utc>,
    /// [`ModelConfig::training_key`] of the file this version was trained from, so that an
    /// update that changes only the value model, queries or serving can reuse the artifacts.
    #[serde(default)]
    pub training_key: serde_json::Value,
    /// The version whose trained artifacts this one reuses, if it was not trained itself.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reuses: Option<u32>,
    /// The live event log's events numbered below this are in the version's training data;
    /// serving's overlay keeps only those from here on.
    #[serde(default)]
    pub live_watermark: u64,
    /// The item log's changes numbered below this were logged before the version's fetch
    /// began; serving applies only those from here on over its catalog.
    #[serde(default)]
    pub live_items_watermark: u64,
    /// `serving.index` as the vector indexes were built with.
    #[serde(default)]
    pub index_config: IndexConfig,
    /// The vector index of each policy with vectors.
    #[serde(default)]
    pub indexes: BTreeMap<String, IndexInfo>,
}

/// How one policy's item vectors are indexed (what the build measured, for `view-model` and
/// benchmarks).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IndexInfo {
    /// `exact` or `ivf_sq8`.
    pub kind: String,
    pub dim: usize,
    #[serde(default)]
    pub partitions: usize,
    /// Partitions probed for k = 10, 100, 1000.
    #[serde(default)]
    pub probes: Vec<usize>,
    /// Mean recall against exact search the tuning measured at those probes.
    #[serde(default)]
    pub tuned_recall: Vec<f32>,
    pub build_seconds: f64,
    /// Bytes the index holds in memory besides the vectors.
    pub index_bytes: usize,
    /// Bytes of the `f32` item vectors.
    pub vector_bytes: usize,
}

/// Writes every artifact of a version and syncs them.
pub fn write(
    dir: &Path,
    config: &ModelConfig,
    ds: &Dataset,
    trained: &BTreeMap<String, Box<dyn TrainedPolicy>>,
    report: &EvalReport,
    version: u32,
    primary_policy: &str,
) -> Result<()> {
    let data = dir.join("dataset");
    std::fs::create_dir_all(&data).ctx(|| format!("creating {}", data.display()))?;
    // The id and attribute tables: Arrow IPC for serving, and the Lance datasets below.
    let items_table = id_table(ds.item_attributes.as_ref(), "item_id", ds.items.ids())?;
    let users_table = id_table(ds.user_attributes.as_ref(), "user_id", ds.users.ids())?;
    store::write_table(&data.join("items.arrow"), &items_table)?;
    store::write_table(&data.join("users.arrow"), &users_table)?;

    // Each user's distinct items, sorted: the exclusion set of `rank`.
    let all = ds.view(Cut::All);
    let mut offsets = Vec::with_capacity(ds.n_users() + 1);
    let mut seen = Vec::with_capacity(ds.n_events());
    offsets.push(0u64);
    for u in 0..ds.n_users() as u32 {
        let start = seen.len();
        seen.extend_from_slice(all.items(u));
        seen[start..].sort_unstable();
        let mut w = start;
        for r in start..seen.len() {
            if w == start || seen[r] != seen[w - 1] {
                seen[w] = seen[r];
                w += 1;
            }
        }
        seen.truncate(w);
        offsets.push(seen.len() as u64);
    }
    store::write_u64s(&data.join("seen_offsets.u64"), &offsets)?;
    store::write_u32s(&data.join("seen_items.u32"), &seen)?;

    // Each user's latest items in time order (oldest first): the `history` encoder's input.
    let keep = recent_len(config);
    let mut recent_offsets = Vec::with_capacity(ds.n_users() + 1);
    let mut recent = Vec::new();
    recent_offsets.push(0u64);
    for u in 0..ds.n_users() as u32 {
        let items = all.items(u);
        recent.extend_from_slice(&items[items.len().saturating_sub(keep)..]);
        recent_offsets.push(recent.len() as u64);
    }
    store::write_u64s(&data.join("recent_offsets.u64"), &recent_offsets)?;
    store::write_u32s(&data.join("recent_items.u32"), &recent)?;

    // All-time popularity over every event: the answer for users the model has never seen.
    let never = std::sync::atomic::AtomicBool::new(false);
    let ctx = TrainContext {
        progress: &NoProgress,
        seed: 0,
        cancel: &never,
        log: &|_| {},
        device: crate::core::DeviceChoice::cpu("cpu"),
        validate: None,
        pair_scores: None,
    };
    let popular = Popular::reference().train(all, &ctx)?;
    let mut scores = vec![0f32; ds.n_items()];
    popular.score_users(&[0], &mut scores);
    store::write_f32s(&data.join("popular.f32"), &scores)?;

    // Each item's event times, sorted: windowed popularity and trending count from them.
    let mut per_item: Vec<Vec<i64>> = vec![Vec::new(); ds.n_items()];
    for (&item, &t) in ds.seq_items.iter().zip(&ds.seq_times) {
        per_item[item as usize].push(t);
    }
    let mut time_offsets = Vec::with_capacity(ds.n_items() + 1);
    let mut times: Vec<i64> = Vec::with_capacity(ds.n_events());
    time_offsets.push(0u64);
    for mut t in per_item {
        t.sort_unstable();
        times.extend(t);
        time_offsets.push(times.len() as u64);
    }
    store::write_u64s(&data.join("item_time_offsets.u64"), &time_offsets)?;
    store::write_i64s(&data.join("item_times.i64"), &times)?;
    store::fsync_dir(&data)?;

    let policies = dir.join("policies");
    for (name, model) in trained {
        let pdir = policies.join(name);
        std::fs::create_dir_all(&pdir).ctx(|| format!("creating {}", pdir.display()))?;
        model.save(&pdir)?;
        store::fsync_dir(&pdir)?;
    }
    if policies.exists() {
        store::fsync_dir(&policies)?;
    }

    let root = store::lance::root(&dir.to_string_lossy());
    let with_vectors: Vec<(&str, crate::policy::Vectors<'_>)> = trained
        .iter()
        .filter_map(|(name, model)| model.vectors().map(|v| (name.as_str(), v)))
        .collect();
    let named = |users: bool| -> Vec<NamedVectors<'_>> {
        with_vectors
            .iter()
            .map(|(policy, v)| NamedVectors {
                policy,
                dim: v.dim,
                values: if users { v.users } else { v.items },
            })
            .collect()
    };
    store::lance::write_table_with_vectors(&root, "items", &items_table, &named(false))?;
    store::lance::write_table_with_vectors(&root, "users", &users_table, &named(true))?;
    let indexes = build_indexes(&root, &config.serving.index, &with_vectors)?;
    // Lance does not sync what it writes to a local disk; the version must survive a crash
    // once ACTIVE points at it.
    store::fsync_tree(&dir.join("lance"))?;

    store::write_atomic(
        &dir.join(METRICS),
        &serde_json::to_vec_pretty(report).expect("report serialises"),
    )?;
    let manifest = Manifest {
        format: FORMAT,
        model: config.name.clone(),
        version,
        primary_policy: primary_policy.to_string(),
        items: ds.n_items(),
        users: ds.n_users(),
        events: ds.n_events(),
        deployed_at: Utc::now(),
        training_key: config.training_key(),
        reuses: None,
        live_watermark: ds.stats.live_watermark,
        live_items_watermark: ds.stats.live_items_watermark,
        index_config: config.serving.index.clone(),
        indexes,
    };
    write_manifest(dir, &manifest)
}

impl IndexInfo {
    /// One line for people: how the vectors are searched and what the build measured.
    pub fn describe(&self) -> String {
        if self.kind == "ivf_sq8" && self.tuned_recall.is_empty() {
            format!(
                "IVF_SQ8, {} partitions, probes {:?} for k = 10/100/1000 (from serving.index.nprobes)",
                self.partitions, self.probes
            )
        } else if self.kind == "ivf_sq8" {
            format!(
                "IVF_SQ8, {} partitions, probes {:?} for k = 10/100/1000 (measured recall {:?})",
                self.partitions, self.probes, self.tuned_recall
            )
        } else {
            "exact scan".to_string()
        }
    }
}

/// Builds and writes the vector index of each policy with vectors (the part of DEPLOYING that
/// takes time on a large catalog).
fn build_indexes(
    root: &str,
    config: &IndexConfig,
    with_vectors: &[(&str, crate::policy::Vectors<'_>)],
) -> Result<BTreeMap<String, IndexInfo>> {
    crate::util::pause_for_tests("index");
    let mut out = BTreeMap::new();
    for (policy, v) in with_vectors {
        let start = std::time::Instant::now();
        let index = VectorIndex::build(v.items, v.dim, v.users, config);
        let mut info = IndexInfo {
            kind: "exact".into(),
            dim: v.dim,
            partitions: 0,
            probes: Vec::new(),
            tuned_recall: Vec::new(),
            build_seconds: 0.0,
            index_bytes: index.bytes(),
            vector_bytes: v.items.len() * 4,
        };
        if let VectorIndex::Ivf(ivf) = &index {
            store::lance::write_ivf(root, policy, ivf)?;
            info.kind = "ivf_sq8".into();
            info.partitions = ivf.partitions();
            info.probes = ivf.probes.clone();
            info.tuned_recall = ivf.tuned_recall.clone();
        }
        info.build_seconds = start.elapsed().as_secs_f64();
        tracing::info!(policy, kind = %info.kind, seconds = info.build_seconds, "vector index");
        out.insert(policy.to_string(), info);
    }
    Ok(out)
}

fn write_manifest(dir: &Path, manifest: &Manifest) -> Result<()> {
    store::write_atomic(
        &dir.join(MANIFEST),
        &serde_json::to_vec_pretty(manifest).expect("manifest serialises"),
    )
}

/// Deploys a version that reuses the trained artifacts of `from` (same data, policies and
/// training; a new value model, queries or serving settings): the files are hard-linked (copied
/// where links are impossible), and only the manifest is new.
pub fn reuse(
    dir: &Path,
    from: &Path,
    config: &ModelConfig,
    version: u32,
    from_version: u32,
    primary_policy: &str,
) -> Result<()> {
    let previous = read_manifest(from)?;
    link_tree(&from.join("dataset"), &dir.join("dataset"))?;
    link_tree(&from.join("policies"), &dir.join("policies"))?;
    link_file(&from.join(METRICS), &dir.join(METRICS))?;
    // Lance files are immutable once committed: linking them is safe. The index is rebuilt
    // only when `serving.index` changed.
    let (from_root, root) = (
        store::lance::root(&from.to_string_lossy()),
        store::lance::root(&dir.to_string_lossy()),
    );
    let indexes = if previous.index_config == config.serving.index {
        link_tree(&from.join("lance"), &dir.join("lance"))?;
        previous.indexes.clone()
    } else {
        for table in ["items.lance", "users.lance"] {
            link_tree(
                &from.join("lance").join(table),
                &dir.join("lance").join(table),
            )?;
        }
        let mut loaded = Vec::new();
        for policy in previous.indexes.keys() {
            let (dim, items) = store::lance::read_vectors(&from_root, "items", policy)?;
            let (_, users) = store::lance::read_vectors(&from_root, "users", policy)?;
            loaded.push((policy.clone(), dim, items, users));
        }
        let with_vectors: Vec<(&str, crate::policy::Vectors<'_>)> = loaded
            .iter()
            .map(|(p, dim, items, users)| {
                (
                    p.as_str(),
                    crate::policy::Vectors {
                        dim: *dim,
                        users,
                        items,
                    },
                )
            })
            .collect();
        let built = build_indexes(&root, &config.serving.index, &with_vectors)?;
        store::fsync_tree(&dir.join("lance"))?;
        built
    };
    let manifest = Manifest {
        index_config: config.serving.index.clone(),
        indexes,
        version,
        primary_policy: primary_policy.to_string(),
        deployed_at: Utc::now(),
        training_key: config.training_key(),
        reuses: Some(previous.reuses.unwrap_or(from_version)),
        model: config.name.clone(),
        ..previous
    };
    write_manifest(dir, &manifest)
}

fn link_file(from: &Path, to: &Path) -> Result<()> {
    if std::fs::hard_link(from, to).is_err() {
        std::fs::copy(from, to)
            .ctx(|| format!("copying {} to {}", from.display(), to.display()))?;
        std::fs::File::open(to)
            .and_then(|f| f.sync_all())
            .ctx(|| format!("syncing {}", to.display()))?;
    }
    Ok(())
}

fn link_tree(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).ctx(|| format!("creating {}", to.display()))?;
    for entry in std::fs::read_dir(from).ctx(|| format!("listing {}", from.display()))? {
        let entry = entry.ctx(|| format!("listing {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            link_tree(&entry.path(), &target)?;
        } else {
            link_file(&entry.path(), &target)?;
        }
    }
    store::fsync_dir(to)
}

/// The attribute table, or just the ids when the model file fetches none.
fn id_table(attributes: Option<&RecordBatch>, id: &str, ids: &[String]) -> Result<RecordBatch> {
    match attributes {
        Some(b) => Ok(b.clone()),
        None => {
            let schema = Schema::new(vec![Field::new(id, DataType::Utf8, false)]);
            let col: ArrayRef = std::sync::Arc::new(StringArray::from_iter_values(ids.iter()));
            RecordBatch::try_new(std::sync::Arc::new(schema), vec![col])
                .map_err(|e| Error::Internal(e.to_string()))
        }
    }
}

pub fn read_manifest(dir: &Path) -> Result<Manifest> {
    let path = dir.join(MANIFEST);
    let bytes = std::fs::read(&path).ctx(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::Internal(format!("{} is corrupt: {e}", path.display())))
}

/// Stores the settings policy `policy`'s search kept, beside its artifacts (a reuse of the
/// version links them with the rest of the folder).
pub fn write_tuned(
    dir: &Path,
    policy: &str,
    settings: &crate::config::tuning::Settings,
) -> Result<()> {
    let path = dir.join("policies").join(policy).join(TUNED);
    let bytes = serde_json::to_vec_pretty(settings).expect("settings serialise");
    store::write_atomic(&path, &bytes)
}

/// The settings a policy's search kept, if it had one.
pub fn read_tuned(policy_dir: &Path) -> Result<Option<crate::config::tuning::Settings>> {
    store::read_json(&policy_dir.join(TUNED))
}

/// The evaluation report of a version, if it got that far.
pub fn read_report(dir: &Path) -> Result<Option<EvalReport>> {
    store::read_json(&dir.join(METRICS))
}
