//! `type: two_tower`: user and item towers over ids and declared features, trained with
//! in-batch softmax. Scores are dot products of L2-normalised vectors; an item without events
//! gets its vector from its features (cold start). Serving needs only the vectors.

use std::path::Path;

use super::{MemoryEstimate, Policy, Scorer, TrainContext, TrainedPolicy, Vectors};
use crate::config::TwoTowerConfig;
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::nn::embeddings::{restore, Embeddings};
use crate::nn::features::{FeatureEncoding, FeatureTable};
use crate::nn::two_tower::{
    fit_two_tower, memory as two_tower_memory, NetConfig, TowerData, TowerShape, TwoTowerFit,
    TwoTowerNet,
};
use crate::nn::{Cpu, TrainingSummary};
use crate::store;

const WEIGHTS: &str = "weights.mpk";

pub struct TwoTower {
    config: TwoTowerConfig,
}

impl TwoTower {
    pub fn new(config: TwoTowerConfig) -> Self {
        Self { config }
    }

    /// The user and item feature tables the towers read.
    fn tables(&self, data: Interactions<'_>) -> Result<(FeatureTable, FeatureTable)> {
        let (c, ds) = (&self.config, data.ds);
        let users = FeatureTable::build(
            ds.n_users(),
            ds.user_attributes.as_ref(),
            &c.user_features,
            "fetch.users",
        )?;
        let items = FeatureTable::build(
            ds.n_items(),
            ds.item_attributes.as_ref(),
            &c.item_features,
            "fetch.items",
        )?;
        Ok((users, items))
    }

    fn fit_spec(
        &self,
        data: Interactions<'_>,
        users: &FeatureTable,
        items: &FeatureTable,
    ) -> TwoTowerFit<'_> {
        let c = &self.config;
        TwoTowerFit {
            name: &c.name,
            net: NetConfig {
                n_users: data.n_users(),
                n_items: data.n_items(),
                hidden: c.hidden,
                user_tokens: users.n_tokens,
                user_numeric: users.n_numeric,
                item_tokens: items.n_tokens,
                item_numeric: items.n_numeric,
            },
            fit: c.fit(),
            temperature: c.temperature,
            negatives: c.negatives,
            logq_correction: c.logq_correction,
            id_dropout: c.id_dropout,
        }
    }
}

/// What a refit needs to encode users and items again: the network, the feature tables, and
/// which items had events in training (only their id embeddings were learned; the others stay
/// feature-only however many events a refit's longer history shows).
struct Encoder {
    net: TwoTowerNet<Cpu>,
    users: FeatureTable,
    items: FeatureTable,
    trained: Vec<bool>,
}

pub struct TrainedTwoTower {
    config: TwoTowerConfig,
    encoder: Option<Encoder>,
    weights: Vec<u8>,
    vectors: Embeddings,
    summary: Option<TrainingSummary>,
    /// Where a loaded version's weights are (read when an item is added live).
    dir: Option<std::path::PathBuf>,
    /// The item tower and its fitted features, built on the first item added live (a failed
    /// build is tried again with the next).
    cold: std::sync::OnceLock<Cold>,
}

/// What places an item added after training: the network (its item tower) and the item
/// features' encoding as training fitted it.
struct Cold {
    net: TwoTowerNet<Cpu>,
    items: FeatureEncoding,
    /// Every trained user's tower inputs, and an empty row for a user the version never saw:
    /// what a user encoded anew from a live history reads.
    users: FeatureTable,
    stranger: FeatureTable,
}

impl Policy for TwoTower {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// With data, from the feature tables training would build; without, one token per declared
    /// feature and no id tables.
    fn memory(&self, data: Option<Interactions<'_>>) -> Result<MemoryEstimate> {
        let c = &self.config;
        let shape = match data {
            Some(data) => {
                let (users, items) = self.tables(data)?;
                let spec = self.fit_spec(data, &users, &items);
                TowerShape {
                    events: data.n_events(),
                    user_row_tokens: users.most_row_tokens(),
                    item_row_tokens: items.most_row_tokens(),
                    history: c.history,
                    net: spec.net,
                }
            }
            None => TowerShape {
                events: 0,
                user_row_tokens: c.user_features.len(),
                item_row_tokens: c.item_features.len(),
                history: c.history,
                net: NetConfig {
                    n_users: 0,
                    n_items: 0,
                    hidden: c.hidden,
                    user_tokens: 0,
                    user_numeric: 0,
                    item_tokens: 0,
                    item_numeric: 0,
                },
            },
        };
        Ok(two_tower_memory(
            &shape,
            c.batch_size,
            c.negatives,
            data.is_some(),
        ))
    }

    fn train(
        &self,
        data: Interactions<'_>,
        ctx: &TrainContext<'_>,
    ) -> Result<Box<dyn TrainedPolicy>> {
        let c = &self.config;
        if data.n_items() == 0 {
            return Err(Error::invalid(
                "fetch.items",
                format!("{}: the catalog is empty", c.name),
            ));
        }
        let (users, items) = self.tables(data)?;
        for line in users.described.iter().map(|d| format!("user feature {d}")) {
            (ctx.log)(format!("{}: {line}", c.name));
        }
        for line in items.described.iter().map(|d| format!("item feature {d}")) {
            (ctx.log)(format!("{}: {line}", c.name));
        }
        let spec = self.fit_spec(data, &users, &items);
        let net = spec.net;
        let td = TowerData {
            data,
            users: &users,
            items: &items,
            history: c.history,
        };
        let mut fitted = crate::nn::on_device!(ctx.device.compute, fit_two_tower, &spec, &td, ctx)?;
        fitted.summary.device = ctx.device.reason.clone();
        let trained: Vec<bool> = td.item_counts().iter().map(|&c| c > 0).collect();
        let empty = TwoTowerNet::<Cpu>::empty(&net, &Default::default());
        let net = restore(empty, &fitted.weights, &c.name)?;
        let mut model = TrainedTwoTower {
            config: c.clone(),
            encoder: Some(Encoder {
                net,
                users,
                items,
                trained,
            }),
            weights: fitted.weights,
            vectors: Embeddings {
                dim: c.hidden,
                users: Vec::new(),
                items: Vec::new(),
            },
            summary: Some(fitted.summary),
            dir: None,
            cold: std::sync::OnceLock::new(),
        };
        model.refit(data)?;
        Ok(Box::new(model))
    }
}

impl TrainedTwoTower {
    /// Serving reads the vectors; the weights stay on disk beside them.
    pub fn load(config: &TwoTowerConfig, dir: &Path) -> Result<Self> {
        Ok(Self {
            config: config.clone(),
            encoder: None,
            weights: Vec::new(),
            vectors: Embeddings::load(dir, config.hidden)?,
            summary: None,
            dir: Some(dir.to_path_buf()),
            cold: std::sync::OnceLock::new(),
        })
    }

    /// The item tower and the item features' encoding, rebuilt from the version's weights and
    /// the rows it trained on (the same rows give the same vocabularies and scales).
    fn cold(
        &self,
        trained: &datafusion::arrow::array::RecordBatch,
        users: &datafusion::arrow::array::RecordBatch,
    ) -> Result<Cold> {
        let c = &self.config;
        let items = FeatureEncoding::fit(
            trained.num_rows(),
            Some(trained),
            &c.item_features,
            "fetch.items",
        )?;
        let user_features = FeatureEncoding::fit(
            users.num_rows(),
            Some(users),
            &c.user_features,
            "fetch.users",
        )?;
        let weights = match (&self.weights, &self.dir) {
            (w, _) if !w.is_empty() => w.clone(),
            (_, Some(dir)) => {
                let path = dir.join(WEIGHTS);
                std::fs::read(&path)
                    .map_err(|e| Error::storage(format!("reading {}", path.display()), e))?
            }
            _ => return Err(Error::Internal("a two-tower model without weights".into())),
        };
        let (item_tokens, item_numeric) = items.shape();
        let (user_tokens, user_numeric) = user_features.shape();
        let net = NetConfig {
            n_users: self.vectors.users.len() / c.hidden.max(1),
            n_items: trained.num_rows(),
            hidden: c.hidden,
            user_tokens,
            user_numeric,
            item_tokens,
            item_numeric,
        };
        let empty = TwoTowerNet::<Cpu>::empty(&net, &Default::default());
        Ok(Cold {
            net: restore(empty, &weights, &c.name)?,
            items,
            users: user_features.encode(users.num_rows(), Some(users), "fetch.users")?,
            stranger: user_features.encode(1, None, "fetch.users")?,
        })
    }

    /// [`Self::cold`], built once (a failed build is tried again next time).
    fn cold_parts(
        &self,
        trained: &datafusion::arrow::array::RecordBatch,
        users: &datafusion::arrow::array::RecordBatch,
    ) -> Result<&Cold> {
        Ok(match self.cold.get() {
            Some(c) => c,
            None => {
                let built = self.cold(trained, users)?;
                self.cold.get_or_init(|| built)
            }
        })
    }
}

impl Scorer for TrainedTwoTower {
    fn n_items(&self) -> usize {
        self.vectors.n_items()
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        self.vectors.score_users(users, out);
    }
}

impl TrainedPolicy for TrainedTwoTower {
    fn kind(&self) -> &'static str {
        "two_tower"
    }

    /// The towers read the longer history; items that gained events keep their id embedding.
    fn refit(&mut self, data: Interactions<'_>) -> Result<()> {
        let e = self.encoder.as_ref().ok_or_else(|| {
            Error::Internal("a loaded two-tower model has no encoder to refit".into())
        })?;
        let td = TowerData {
            data,
            users: &e.users,
            items: &e.items,
            history: self.config.history,
        };
        self.vectors.users = td.user_vectors(&e.net);
        self.vectors.items = td.item_vectors(&e.net, &e.trained);
        Ok(())
    }

    fn save(&self, dir: &Path) -> Result<()> {
        if !self.weights.is_empty() {
            store::write_atomic(&dir.join(WEIGHTS), &self.weights)?;
        }
        self.vectors.save(dir)
    }

    fn score_is_dot(&self) -> bool {
        true
    }

    fn vectors(&self) -> Option<Vectors<'_>> {
        Some(self.vectors.vectors())
    }

    fn training_summary(&self) -> Option<&TrainingSummary> {
        self.summary.as_ref()
    }

    /// With `history`, the user tower reads the user's latest items: a user with live
    /// interactions is encoded anew (their id and attributes when the version trained them).
    fn encode_user(
        &self,
        user: Option<u32>,
        history: &[u32],
        trained: &datafusion::arrow::array::RecordBatch,
        users: &datafusion::arrow::array::RecordBatch,
    ) -> Result<Option<Vec<f32>>> {
        if self.config.history == 0 {
            return Ok(None);
        }
        let cold = self.cold_parts(trained, users)?;
        let latest = &history[history.len().saturating_sub(self.config.history)..];
        Ok(Some(cold.net.encode_user(
            user,
            latest,
            &cold.users,
            &cold.stranger,
        )))
    }

    /// An added item is placed by the item tower from its features alone, as training placed
    /// an item without events. Without item features there is nothing to place it by.
    fn embed_items(
        &self,
        added: &datafusion::arrow::array::RecordBatch,
        trained: &datafusion::arrow::array::RecordBatch,
        users: &datafusion::arrow::array::RecordBatch,
    ) -> Result<Option<Vec<f32>>> {
        if self.config.item_features.is_empty() {
            return Ok(None);
        }
        let cold = self.cold_parts(trained, users)?;
        let table = cold.items.encode(added.num_rows(), Some(added), "items")?;
        Ok(Some(cold.net.encode_cold_items(&table)))
    }
}
