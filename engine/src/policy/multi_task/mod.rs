//! `type: multi_task`: a ranker over impressions. It learns one probability per head from the
//! fetched impressions (split by time into training, validation and test), fits a calibration
//! map per head on validation, reports each head on test, and scores a request's candidates
//! with position fixed at `position.serve_at`.

mod examples;
mod score_inputs;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use examples::check_columns;
use examples::{affinity_codes, DenseInputs, Examples};
use score_inputs::ScoreInput;

use super::{MemoryEstimate, Policy, Scorer, TrainContext, TrainedPolicy};
use crate::config::{Architecture, MultiTaskConfig, PositionEffect};
use crate::core::{HeadReport, RankContext, RankerReport};
use crate::dataset::Interactions;
use crate::error::{Error, IoContext, Result};
use crate::eval::{head_metrics, sigmoid, Calibration};
use crate::nn::embeddings::restore;
use crate::nn::features::{FeatureEncoding, FeatureTable};
use crate::nn::multi_task::{fit_ranker, RankerFit, RankerNet, RankerShape, Rows, ServePosition};
use crate::nn::{Cpu, TrainingSummary};
use crate::store;

const WEIGHTS: &str = "weights.mpk";
const STATE: &str = "ranker.json";
const AFFINITY: &str = "affinity_codes.u32";

pub struct MultiTask {
    config: MultiTaskConfig,
}

impl MultiTask {
    pub fn new(config: MultiTaskConfig) -> Self {
        Self { config }
    }

    /// The user and item feature tables, with one empty row past the trained ones (for a user
    /// or an item the version did not train on).
    fn tables(&self, data: Interactions<'_>) -> Result<(FeatureTable, FeatureTable)> {
        let (c, ds) = (&self.config, data.ds);
        let table = |n: usize, rows, specs, what| -> Result<FeatureTable> {
            FeatureEncoding::fit(n, rows, specs, what)?.encode(n + 1, rows, what)
        };
        Ok((
            table(
                ds.n_users(),
                ds.user_attributes.as_ref(),
                &c.user_features,
                "fetch.users",
            )?,
            table(
                ds.n_items(),
                ds.item_attributes.as_ref(),
                &c.item_features,
                "fetch.items",
            )?,
        ))
    }

    /// The network's shape for these tables and examples.
    fn shape(
        &self,
        data: Interactions<'_>,
        users: &FeatureTable,
        items: &FeatureTable,
        dense: usize,
        positions: usize,
    ) -> RankerShape {
        let c = &self.config;
        let mmoe = c.architecture == Architecture::Mmoe;
        RankerShape {
            user_rows: data.n_users() + 1,
            item_rows: data.n_items() + 1,
            embedding: c.embedding,
            hidden: c.hidden,
            experts: if mmoe { c.experts } else { 1 },
            mmoe,
            heads: c.heads.len(),
            dense,
            positions,
            examination: c
                .position
                .as_ref()
                .is_some_and(|p| p.effect == PositionEffect::Examination),
            user_tokens: users.n_tokens,
            user_numeric: users.n_numeric,
            item_tokens: items.n_tokens,
            item_numeric: items.n_numeric,
        }
    }
}

/// What serving needs besides the weights and the feature tables.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct State {
    heads: Vec<String>,
    /// The network's; its id tables have one row past the trained users and items.
    shape: RankerShape,
    /// Position fixed at `serve_at`, as it turns every candidate's logits into observed ones.
    #[serde(alias = "serve_bias", deserialize_with = "stored_serve_position")]
    serve_position: ServePosition,
    calibration: Vec<Calibration>,
    /// The retrieval policies read as inputs, in the order of their dense columns (last).
    #[serde(default)]
    inputs: Vec<ScoreInput>,
    report: RankerReport,
    #[serde(default)]
    summary: Option<TrainingSummary>,
}

/// `serve_position`, or the bias per head that versions stored before the examination model
/// kept as `serve_bias`.
fn stored_serve_position<'de, D: serde::Deserializer<'de>>(
    d: D,
) -> std::result::Result<ServePosition, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Stored {
        Bias(Vec<f32>),
        Position(ServePosition),
    }
    Ok(match Stored::deserialize(d)? {
        Stored::Bias(b) => ServePosition::Bias(b),
        Stored::Position(p) => p,
    })
}

pub struct TrainedMultiTask {
    config: MultiTaskConfig,
    net: RankerNet<Cpu>,
    weights: Vec<u8>,
    users: FeatureTable,
    items: FeatureTable,
    codes: Vec<Vec<u32>>,
    /// The policies of `state.inputs`, as serving asks for them.
    input_names: Vec<String>,
    state: State,
}

impl Policy for MultiTask {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// Parameters with the loop's copies, the examples held, and a batch's activations.
    fn memory(&self, data: Option<Interactions<'_>>) -> Result<MemoryEstimate> {
        let c = &self.config;
        let mut e = MemoryEstimate::new(data.is_some());
        let rows = data
            .and_then(|d| d.ds.impressions.as_ref())
            .map_or(0, |i| i.len());
        let (users, items) = data.map_or((0, 0), |d| (d.n_users(), d.n_items()));
        let dense = DenseInputs::width_of(c.affinity.len(), c.hour_of_day) + c.scores.len();
        let params = (users + items + 2) * c.embedding
            + c.experts * (3 * c.embedding + dense + c.hidden + 2) * c.hidden;
        e.floats(
            "parameters and optimiser state",
            5.0 * params as f64,
            &["embedding", "hidden", "experts"],
        );
        e.floats(
            "examples",
            rows as f64 * (dense + c.heads.len() + 4) as f64,
            &[],
        );
        e.floats(
            "batch activations",
            4.0 * c.batch_size as f64
                * (c.experts * c.hidden * (c.heads.len() + 2) + 4 * c.embedding) as f64,
            &["batch_size", "hidden", "experts"],
        );
        Ok(e)
    }

    fn train(
        &self,
        data: Interactions<'_>,
        ctx: &TrainContext<'_>,
    ) -> Result<Box<dyn TrainedPolicy>> {
        let c = &self.config;
        let ds = data.ds;
        let path = format!("policies.{}", c.name);
        let codes = affinity_codes(c, ds, &path)?;
        let inputs = DenseInputs {
            codes: &codes,
            hour_of_day: c.hour_of_day,
        };
        let mut ex = Examples::build(c, ds, &inputs, &path)?;
        let score_inputs = score_inputs::append(c, &mut ex, ctx)?;
        let baselines = score_inputs::baselines(&ex, ds, &score_inputs);
        let (users, items) = self.tables(data)?;
        for line in users.described.iter().map(|d| format!("user feature {d}")) {
            (ctx.log)(format!("{}: {line}", c.name));
        }
        for line in items.described.iter().map(|d| format!("item feature {d}")) {
            (ctx.log)(format!("{}: {line}", c.name));
        }
        let rates: Vec<String> = c
            .heads
            .iter()
            .enumerate()
            .map(|(h, head)| {
                let y = ex.head_labels(h, &ex.train);
                format!(
                    "{} {:.4}",
                    head.name,
                    y.iter().sum::<f32>() / y.len().max(1) as f32
                )
            })
            .collect();
        (ctx.log)(format!(
            "{}: {} impressions by time: {} train, {} validation, {} test; base rates on train: {}",
            c.name,
            ex.user.len(),
            ex.train.len(),
            ex.valid.len(),
            ex.test.len(),
            rates.join(", ")
        ));
        let shape = self.shape(data, &users, &items, ex.n_dense, ex.positions);
        let rows = Rows {
            user: &ex.user,
            item: &ex.item,
            dense: &ex.dense,
            n_dense: ex.n_dense,
            position: &ex.position,
            labels: &ex.labels,
            heads: ex.heads,
            users: &users,
            items: &items,
        };
        let spec = RankerFit {
            name: &c.name,
            shape,
            fit: c.fit(),
            dropout: c.dropout,
            id_l2: c.id_l2,
            head_weights: c.heads.iter().map(|h| h.weight as f32).collect(),
            examination_start: if shape.examination {
                ex.examination_start()
            } else {
                Vec::new()
            },
            train: ex.train.clone(),
            valid: ex.valid.clone(),
            data,
        };
        let mut fitted = crate::nn::on_device!(ctx.device.compute, fit_ranker, &spec, &rows, ctx)?;
        fitted.summary.device = ctx.device.reason.clone();
        let net = restore(
            RankerNet::<Cpu>::empty(&shape, &Default::default()),
            &fitted.weights,
            &c.name,
        )?;
        // Calibration on validation, figures on test, both against what was observed (with the
        // rows' own positions).
        let heads = ex.heads;
        let valid_z = net.score_rows(&rows, &ex.valid, true);
        let test_z = net.score_rows(&rows, &ex.test, true);
        let column = |z: &[f32], h: usize| -> Vec<f32> {
            z.iter().skip(h).step_by(heads).copied().collect()
        };
        let mut calibration = Vec::with_capacity(heads);
        let mut reports = Vec::with_capacity(heads);
        for (h, head) in c.heads.iter().enumerate() {
            let (vz, tz) = (column(&valid_z, h), column(&test_z, h));
            let (vy, ty) = (ex.head_labels(h, &ex.valid), ex.head_labels(h, &ex.test));
            let map = Calibration::fit(c.calibration, &vz, &vy);
            let raw =
                |z: &[f32]| -> Vec<f32> { z.iter().map(|&z| sigmoid(z as f64) as f32).collect() };
            let calibrated: Vec<f32> = tz.iter().map(|&z| map.apply(z)).collect();
            let valid_p: Vec<f32> = vz.iter().map(|&z| map.apply(z)).collect();
            let r = HeadReport {
                head: head.name.clone(),
                calibration: format!("{:?}", c.calibration).to_lowercase(),
                test: head_metrics(&calibrated, &ty),
                test_uncalibrated: head_metrics(&raw(&tz), &ty),
                valid: head_metrics(&valid_p, &vy),
                baseline: baselines.get(h).cloned(),
            };
            let baseline = r.baseline.as_ref().map_or(String::new(), |b| {
                format!(
                    "; baseline on {}: AUC {:.4}, NE {:.4}",
                    b.inputs.join(" + "),
                    b.test.auc,
                    b.test.normalized_entropy
                )
            });
            (ctx.log)(format!(
                "{}.{}: test AUC {:.4}, log loss {:.4}, NE {:.4}, ECE {:.4} (uncalibrated {:.4}), predicted/observed {:.3}, base rate {:.4}{baseline}",
                c.name,
                head.name,
                r.test.auc,
                r.test.log_loss,
                r.test.normalized_entropy,
                r.test.ece,
                r.test_uncalibrated.ece,
                r.test.predicted_over_observed,
                r.test.base_rate
            ));
            calibration.push(map);
            reports.push(r);
        }
        let serve_position = match &c.position {
            Some(p) => net.serve_at(p.serve_at as usize - 1),
            None => ServePosition::Bias(vec![0.0; heads]),
        };
        let report = RankerReport {
            protocol: format!(
                "impressions split by time: the oldest {:.0}% train, the next {:.0}% validate (early stopping, calibration), the newest {:.0}% test; figures against the observed engagements at the shown positions",
                100.0 * (1.0 - c.validation_share - c.test_share),
                100.0 * c.validation_share,
                100.0 * c.test_share
            ),
            train_rows: ex.train.len(),
            valid_rows: ex.valid.len(),
            test_rows: ex.test.len(),
            valid_from: ex.valid_from,
            test_from: ex.test_from,
            heads: reports,
        };
        Ok(Box::new(TrainedMultiTask {
            config: c.clone(),
            net,
            weights: fitted.weights,
            state: State {
                heads: c.heads.iter().map(|h| h.name.clone()).collect(),
                shape,
                serve_position,
                calibration,
                inputs: score_inputs,
                report,
                summary: Some(fitted.summary),
            },
            users,
            items,
            codes,
            input_names: c.scores.clone(),
        }))
    }
}

impl State {
    /// Trained users and items: dense ids below these have their own rows.
    fn n_users(&self) -> usize {
        self.shape.user_rows - 1
    }

    fn n_items(&self) -> usize {
        self.shape.item_rows - 1
    }
}

/// A feature table's arrays, one file each.
fn save_table(dir: &Path, side: &str, t: &FeatureTable) -> Result<()> {
    let offsets: Vec<u64> = t.offsets.iter().map(|&o| o as u64).collect();
    store::write_u64s(&dir.join(format!("{side}_offsets.u64")), &offsets)?;
    store::write_u32s(&dir.join(format!("{side}_tokens.u32")), &t.tokens)?;
    store::write_f32s(&dir.join(format!("{side}_weights.f32")), &t.weights)?;
    store::write_f32s(&dir.join(format!("{side}_numeric.f32")), &t.numeric)
}

fn load_table(dir: &Path, side: &str, n_tokens: usize, n_numeric: usize) -> Result<FeatureTable> {
    Ok(FeatureTable {
        offsets: store::read_u64s(&dir.join(format!("{side}_offsets.u64")))?
            .into_iter()
            .map(|o| o as usize)
            .collect(),
        tokens: store::read_u32s(&dir.join(format!("{side}_tokens.u32")))?,
        weights: store::read_f32s(&dir.join(format!("{side}_weights.f32")))?,
        n_tokens,
        numeric: store::read_f32s(&dir.join(format!("{side}_numeric.f32")))?,
        n_numeric,
        described: Vec::new(),
    })
}

impl TrainedMultiTask {
    pub fn load(config: &MultiTaskConfig, dir: &Path) -> Result<Self> {
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).ctx(|| format!("reading {}", path.display()))
        };
        let state: State = serde_json::from_slice(&read(STATE)?).map_err(|e| {
            Error::Internal(format!("{} is corrupt: {e}", dir.join(STATE).display()))
        })?;
        let weights = read(WEIGHTS)?;
        let shape = state.shape;
        let users = load_table(dir, "user", shape.user_tokens, shape.user_numeric)?;
        let items = load_table(dir, "item", shape.item_tokens, shape.item_numeric)?;
        let flat = store::read_u32s(&dir.join(AFFINITY))?;
        let codes: Vec<Vec<u32>> = match state.n_items() {
            0 => Vec::new(),
            n => flat.chunks(n).map(<[u32]>::to_vec).collect(),
        };
        let net = restore(
            RankerNet::<Cpu>::empty(&shape, &Default::default()),
            &weights,
            &config.name,
        )?;
        Ok(Self {
            config: config.clone(),
            net,
            weights,
            users,
            items,
            codes,
            input_names: state.inputs.iter().map(|i| i.policy.clone()).collect(),
            state,
        })
    }

    /// Calibrated probabilities, head-major (`heads × items`), of `items` for `user` in
    /// `context`, position fixed at `serve_at`.
    fn probabilities(
        &self,
        user: Option<u32>,
        context: &RankContext<'_>,
        items: &[u32],
        out: &mut [f32],
    ) {
        let n = items.len();
        let heads = self.state.heads.len();
        let inputs = DenseInputs {
            codes: &self.codes,
            hour_of_day: self.config.hour_of_day,
        };
        let (counts, seen) = inputs.counts(
            context
                .seen
                .iter()
                .copied()
                .filter(|&i| (i as usize) < self.state.n_items()),
        );
        let user_row = user
            .filter(|&u| (u as usize) < self.state.n_users())
            .unwrap_or(self.state.n_users() as u32);
        let item_rows: Vec<u32> = items
            .iter()
            .map(|&i| {
                if (i as usize) < self.state.n_items() {
                    i
                } else {
                    self.state.n_items() as u32
                }
            })
            .collect();
        let width = inputs.width() + self.state.inputs.len();
        let mut dense = Vec::with_capacity(n * width);
        for (k, &i) in item_rows.iter().enumerate() {
            inputs.push(&mut dense, i, &counts, seen, context.now);
            // A score the caller did not give enters as its training mean.
            for (s, input) in self.state.inputs.iter().enumerate() {
                let score = context.scores.get(s).and_then(|row| row.get(k));
                dense.push(score.map_or(0.0, |&v| input.standardise(v)));
            }
        }
        let users = vec![user_row; n];
        let rows = Rows {
            user: &users,
            item: &item_rows,
            dense: &dense,
            n_dense: width,
            position: &[],
            labels: &[],
            heads,
            users: &self.users,
            items: &self.items,
        };
        let at: Vec<usize> = (0..n).collect();
        let z = self.net.score_rows(&rows, &at, false);
        let serve = &self.state.serve_position;
        for k in 0..n {
            for h in 0..heads {
                let logit = serve.observed(h, z[k * heads + h]);
                out[h * n + k] = self.state.calibration[h].apply(logit);
            }
        }
    }
}

impl Scorer for TrainedMultiTask {
    fn n_items(&self) -> usize {
        self.state.n_items()
    }

    /// The first head over every item, without a request's context.
    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        let n = self.state.n_items();
        let items: Vec<u32> = (0..n as u32).collect();
        let heads = self.state.heads.len();
        let mut all = vec![0f32; heads * n];
        for (k, &u) in users.iter().enumerate() {
            self.probabilities(Some(u), &RankContext::default(), &items, &mut all);
            out[k * n..(k + 1) * n].copy_from_slice(&all[..n]);
        }
    }
}

impl TrainedPolicy for TrainedMultiTask {
    fn kind(&self) -> &'static str {
        "multi_task"
    }

    /// A ranker is trained once, on the impressions' training part; a longer history changes
    /// only the inputs it reads at serving.
    fn refit(&mut self, _data: Interactions<'_>) -> Result<()> {
        Ok(())
    }

    fn save(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir_all(dir).ctx(|| format!("creating {}", dir.display()))?;
        store::write_atomic(&dir.join(WEIGHTS), &self.weights)?;
        let state =
            serde_json::to_vec_pretty(&self.state).map_err(|e| Error::Internal(e.to_string()))?;
        store::write_atomic(&dir.join(STATE), &state)?;
        save_table(dir, "user", &self.users)?;
        save_table(dir, "item", &self.items)?;
        let flat: Vec<u32> = self.codes.iter().flatten().copied().collect();
        store::write_u32s(&dir.join(AFFINITY), &flat)
    }

    fn heads(&self) -> Vec<String> {
        self.state.heads.clone()
    }

    fn score_heads(&self, user: u32, items: &[u32], out: &mut [f32]) {
        self.probabilities(Some(user), &RankContext::default(), items, out)
    }

    fn reads_context(&self) -> bool {
        true
    }

    fn score_heads_in(
        &self,
        user: Option<u32>,
        context: &RankContext<'_>,
        items: &[u32],
        out: &mut [f32],
    ) {
        self.probabilities(user, context, items, out)
    }

    fn score_inputs(&self) -> &[String] {
        &self.input_names
    }

    fn ranker_report(&self) -> Option<&RankerReport> {
        Some(&self.state.report)
    }

    fn training_summary(&self) -> Option<&TrainingSummary> {
        self.state.summary.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The serving position as stored now, and as versions before the examination model
    /// stored it (a bias per head under `serve_bias`).
    #[test]
    fn serve_position_reads_both_stored_forms() {
        #[derive(Deserialize)]
        struct Stored {
            #[serde(alias = "serve_bias", deserialize_with = "stored_serve_position")]
            serve_position: ServePosition,
        }
        let read = |json: &str| serde_json::from_str::<Stored>(json).unwrap().serve_position;
        assert_eq!(
            read(r#"{"serve_bias": [0.5, -1.0]}"#),
            ServePosition::Bias(vec![0.5, -1.0])
        );
        for p in [
            ServePosition::Examination(-0.25),
            ServePosition::Bias(vec![1.5]),
        ] {
            let json = serde_json::json!({ "serve_position": p }).to_string();
            assert_eq!(read(&json), p);
        }
    }
}
