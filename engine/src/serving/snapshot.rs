//! An immutable, fully loaded model version. Requests hold an `Arc` of it, so a newer version
//! can replace it at any moment without disturbing a request in flight.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{AsArray, RecordBatch};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use super::artifacts::{self, Manifest};
use super::cache::Caches;
use super::catalog::{Catalog, CatalogChanges};
use super::policies::Policies;
use super::policies::ScoringUser;
use super::users::{UserState, UserView, Users};
use super::value::ValueModel;
use crate::config::{self, ModelConfig};
use crate::core::TrainedPolicy;
use crate::error::{Error, Result};
use crate::eval::EvalReport;
use crate::expr::Names;
use crate::policy;
use crate::registry::Registry;
use crate::store;
use crate::vectors::VectorIndex;

/// An immutable, loaded model version, in named parts.
pub struct Snapshot {
    pub manifest: Manifest,
    pub config: ModelConfig,
    pub report: Option<EvalReport>,
    /// Items: ids, attributes, popularity, event times.
    pub(crate) catalog: Catalog,
    /// Users: ids, attributes, seen and recent items (read through [`UserState`]); shared by
    /// the snapshot with live catalog changes.
    pub(crate) users: Arc<Users>,
    /// Trained policies and their vector indexes.
    pub(crate) policies: Policies,
    /// The ranking score, shared by rank, queries and explain.
    pub(crate) value: ValueModel,
    /// What queries may name in this version.
    pub(crate) names: Names,
    pub(crate) caches: Caches,
}

impl std::fmt::Debug for Snapshot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Snapshot({} v{})",
            self.manifest.model, self.manifest.version
        )
    }
}

/// What a snapshot is made of, before its derived parts (names, value model) are built: what
/// [`Snapshot::load`] reads from a version's folder, and what tests assemble in memory.
pub struct Parts {
    pub manifest: Manifest,
    pub config: ModelConfig,
    pub report: Option<EvalReport>,
    pub catalog: Catalog,
    pub users: Users,
    pub policies: BTreeMap<String, Box<dyn TrainedPolicy>>,
    pub indexes: BTreeMap<String, VectorIndex>,
}

impl Snapshot {
    /// Loads the ACTIVE version of `model`.
    pub fn load_active(registry: &Registry, model: &str) -> Result<Self> {
        if !registry.exists(model) {
            return Err(registry.unknown_model(model));
        }
        let version = registry
            .active_version(model)?
            .ok_or_else(|| registry.no_active_version(model))?;
        Self::load(&registry.materialize(model, version)?)
    }

    /// Loads a deployed version from its folder.
    #[tracing::instrument]
    pub fn load(dir: &Path) -> Result<Self> {
        let manifest = artifacts::read_manifest(dir)?;
        let mut config = ModelConfig::load_stored(dir)?;
        // A tuned policy trained with the settings its search kept.
        for p in config.policies.iter_mut() {
            if let Some(settings) = artifacts::read_tuned(&dir.join("policies").join(p.name()))? {
                *p = config::tuning::apply(p, &settings).map_err(|e| {
                    Error::Internal(format!(
                        "the tuned settings of `{}` no longer fit: {e}",
                        p.name()
                    ))
                })?;
            }
        }
        let data = dir.join("dataset");
        let catalog = Catalog::new(
            store::read_table(&data.join("items.arrow"))?,
            store::read_f32s(&data.join("popular.f32"))?,
            store::read_u64s(&data.join("item_time_offsets.u64"))?,
            store::read_i64s(&data.join("item_times.i64"))?,
        )?;
        let seen = (
            store::read_u64s(&data.join("seen_offsets.u64"))?,
            store::read_u32s(&data.join("seen_items.u32"))?,
        );
        // Versions of format 1 kept no time order: their history is the seen set.
        let recent = if manifest.format >= 2 {
            (
                store::read_u64s(&data.join("recent_offsets.u64"))?,
                store::read_u32s(&data.join("recent_items.u32"))?,
            )
        } else {
            seen.clone()
        };
        let users = Users::new(store::read_table(&data.join("users.arrow"))?, seen, recent)?;
        if catalog.len() != manifest.items || users.len() != manifest.users {
            return Err(Error::Internal(format!(
                "artifacts in {} disagree with the manifest",
                dir.display()
            )));
        }
        let mut policies = BTreeMap::new();
        for p in &config.policies {
            let model = policy::load(p, &dir.join("policies").join(p.name()))?;
            policies.insert(p.name().to_string(), model);
        }
        let root = store::lance::root(&dir.to_string_lossy());
        let mut indexes = BTreeMap::new();
        for (policy, info) in &manifest.indexes {
            if info.kind == "ivf_sq8" {
                let ivf = store::lance::read_ivf(&root, policy)?;
                let vectors = policies.get(policy).and_then(|p| p.vectors());
                let n = catalog.len();
                if vectors.is_none_or(|v| v.dim != ivf.dim)
                    || ivf.ids.len() != n
                    || ivf.ids.iter().any(|&i| i as usize >= n)
                {
                    return Err(Error::Internal(format!(
                        "the vector index of `{policy}` does not match its vectors"
                    )));
                }
                indexes.insert(policy.clone(), VectorIndex::Ivf(Box::new(ivf)));
            }
        }
        let report = artifacts::read_report(dir)?;
        Self::from_parts(Parts {
            manifest,
            config,
            report,
            catalog,
            users,
            policies,
            indexes,
        })
    }

    /// A snapshot of its parts: checks that they agree and binds the value model.
    pub fn from_parts(p: Parts) -> Result<Self> {
        let n = p.catalog.len();
        for (name, model) in &p.policies {
            if model.n_items() != n {
                return Err(Error::Internal(format!(
                    "policy `{name}` scores {} items, the catalog has {n}",
                    model.n_items()
                )));
            }
            let declared = p.config.policy(name).map(|c| c.heads());
            if declared.as_ref() != Some(&model.heads()) {
                return Err(Error::Internal(format!(
                    "policy `{name}` has heads {:?}, its config declares {declared:?}",
                    model.heads()
                )));
            }
        }
        let names = Names::new(
            p.catalog.table.schema().as_ref(),
            Some(p.users.table.schema().as_ref()),
            &p.config.policies,
        )
        .with_event_types(&p.config.events.types);
        let value = ValueModel::load(&p.config, &names, &p.catalog, &p.manifest.primary_policy)?;
        Ok(Self {
            manifest: p.manifest,
            config: p.config,
            report: p.report,
            catalog: p.catalog,
            users: Arc::new(p.users),
            policies: Policies::new(p.policies, p.indexes),
            value,
            names,
            caches: Caches::default(),
        })
    }

    /// This version with live changes to its catalog applied (`self` must have none): the
    /// users and trained policies are shared, the catalog and the value model built anew, the
    /// added items given vectors by every policy that can embed them. Caches start empty.
    #[tracing::instrument(skip_all, fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn with_changes(&self, changes: &CatalogChanges) -> Result<Self> {
        let catalog = self.catalog.with_changes(changes)?;
        let policies = self.policies.with_added_items(
            &catalog.table,
            &self.catalog.table,
            &self.users.table,
        )?;
        let value = ValueModel::load(
            &self.config,
            &self.names,
            &catalog,
            &self.manifest.primary_policy,
        )?;
        Ok(Self {
            manifest: self.manifest.clone(),
            config: self.config.clone(),
            report: self.report.clone(),
            catalog,
            users: self.users.clone(),
            policies,
            value,
            names: self.names.clone(),
            caches: Caches::default(),
        })
    }

    /// This snapshot ranking by another value model (an experiment's variant): everything but
    /// the value model is shared or copied (the catalog's arrays); caches start empty, since
    /// rankings and plans depend on the value model.
    #[tracing::instrument(skip_all, fields(model = %self.manifest.model, version = self.manifest.version))]
    pub fn with_value_model(&self, vm: &crate::config::ValueModel) -> Result<Self> {
        let mut config = self.config.clone();
        config.value_model = Some(vm.clone());
        let value = ValueModel::load(
            &config,
            &self.names,
            &self.catalog,
            &self.manifest.primary_policy,
        )?;
        Ok(Self {
            manifest: self.manifest.clone(),
            config,
            report: self.report.clone(),
            catalog: self.catalog.clone(),
            users: self.users.clone(),
            policies: self.policies.clone(),
            value,
            names: self.names.clone(),
            caches: Caches::default(),
        })
    }

    /// Whom `view`'s personal scores are for: their dense id, and for a user with live
    /// interactions the vectors of every policy that encodes a user from their history (a
    /// tower with `history`), encoded now. A policy that fails to encode keeps the trained
    /// vector (logged).
    pub fn scoring_user(&self, view: &UserView<'_>) -> ScoringUser {
        let mut out = ScoringUser::trained(view.dense);
        if self.policies.reads_context() {
            out.seen = view.seen.to_vec();
            out.now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64);
        }
        if !view.live {
            return out;
        }
        let trained_items = self.catalog.trained_len();
        let history: Vec<u32> = view
            .recent
            .iter()
            .copied()
            .filter(|&i| (i as usize) < trained_items)
            .collect();
        let trained = self.catalog.trained_table();
        for name in self.policies.names() {
            let Some(p) = self.policies.get(name) else {
                continue;
            };
            match p.encode_user(view.dense, &history, trained, &self.users.table) {
                Ok(Some(v)) => {
                    out.live.insert(name.to_string(), v);
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(policy = %name, "encoding a live user: {e}"),
            }
        }
        out
    }

    /// How many of `ids` the user `user` has interacted with, as `users` knows them (the
    /// version's arrays and live events): what the served seen-fraction counts, 0 under
    /// `NOT seen()`.
    pub fn seen_among(&self, users: &dyn UserState, user: &str, ids: &[String]) -> usize {
        let Some(view) = users.user(user) else {
            return 0;
        };
        ids.iter()
            .filter_map(|id| self.catalog.dense(id))
            .filter(|i| view.seen.binary_search(i).is_ok())
            .count()
    }

    /// Whether the catalog (live changes included) has item `id`, deleted or not.
    pub fn has_item(&self, id: &str) -> bool {
        self.catalog.dense(id).is_some()
    }

    pub fn model(&self) -> &str {
        &self.manifest.model
    }

    pub fn version(&self) -> u32 {
        self.manifest.version
    }

    pub fn n_items(&self) -> usize {
        self.catalog.len()
    }

    /// The external ids of the users the version knows.
    pub fn user_ids(&self) -> &[String] {
        self.users.ids()
    }

    /// The external id of dense item `i` (`i < n_items()`).
    pub fn item_id(&self, i: u32) -> &str {
        self.catalog.id(i)
    }

    /// Where requests read user state: the version's arrays (live events will layer over them).
    pub fn user_state(&self) -> &dyn UserState {
        self.users.as_ref()
    }

    /// The names queries may use in this version.
    pub fn names(&self) -> &Names {
        &self.names
    }
}

pub(crate) fn string_column(batch: &RecordBatch, name: &str) -> Result<Vec<String>> {
    let col = batch
        .column_by_name(name)
        .ok_or_else(|| Error::Internal(format!("table has no `{name}` column")))?;
    let col = cast(col, &DataType::Utf8).map_err(|e| Error::Internal(e.to_string()))?;
    Ok(col
        .as_string::<i32>()
        .iter()
        .map(|s| s.unwrap_or_default().to_string())
        .collect())
}
