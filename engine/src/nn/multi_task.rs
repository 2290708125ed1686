//! The multi-task ranker's network: per impression, one logit per head.
//!
//! The user side (id embedding, pooled feature tokens, projected numbers) and the item side
//! (alike) meet with their element-wise product and the row's dense inputs (affinities, the
//! user's history length, the hour) in one input vector. `shared_bottom` passes it through two
//! ReLU layers that every head reads; `mmoe` through experts of two layers each, mixed per head
//! by a softmax gate over the input (Ma et al., KDD 2018). Each head is a linear read of its
//! mixture. Position is a shallow tower, learned beside the network while training and fixed to
//! one position when serving, so that the network's own logits carry relevance, not placement.
//! It is either an examination model (Guo et al., PAL, RecSys 2019): one probability of being
//! seen per position, shared by the heads, that multiplies each head's probability had the item
//! been seen; or a bias per position and head added to the logits (Zhao et al., RecSys 2019).
//! The examination model holds fewer parameters, and it cannot take a head's position effect
//! for an item's worth: when a logging policy showed some items high whatever their worth, a
//! per-head bias learns part of their placement into their embeddings (measured on the feed
//! simulator: `benches/feed_sim`).

use burn::module::{Module, Param};
use burn::tensor::activation::{log_sigmoid, relu, softmax};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Int, Tensor, TensorData};

use super::features::FeatureTable;
use super::layers::{dropout, matrix, normal, Dense};
use super::sequences::shuffle;
use super::train::{fit, one_at_a_time, Fitted, Loop, Validation};
use super::two_tower::TowerBatch;
use crate::config::FitConfig;
use crate::core::TrainContext;
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::util::linalg::Rng;

const INIT_STD: f32 = 0.05;
/// Rows per forward pass when scoring many rows.
pub const SCORE_BATCH: usize = 4096;

/// The shape of a network (stored with a version: what loading its weights needs).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct RankerShape {
    /// Rows of the id tables: the trained users and items, and one row for any other.
    pub user_rows: usize,
    pub item_rows: usize,
    pub embedding: usize,
    pub hidden: usize,
    /// 1 for a shared bottom; the number of experts of an MMoE.
    pub experts: usize,
    pub mmoe: bool,
    pub heads: usize,
    pub dense: usize,
    /// Position buckets (0 when position is not an input).
    pub positions: usize,
    /// Position as an examination probability shared by the heads (else a bias per head).
    #[serde(default)]
    pub examination: bool,
    pub user_tokens: usize,
    pub user_numeric: usize,
    pub item_tokens: usize,
    pub item_numeric: usize,
}

impl RankerShape {
    fn input(&self) -> usize {
        3 * self.embedding + self.dense
    }
}

/// One side's inputs: an id table, feature-token table and numeric projection.
#[derive(Module, Debug)]
pub struct Side<B: Backend> {
    ids: Param<Tensor<B, 2>>,
    tokens: Option<Param<Tensor<B, 2>>>,
    numeric: Option<Dense<B>>,
}

#[derive(Module, Debug)]
pub struct RankerNet<B: Backend> {
    user: Side<B>,
    item: Side<B>,
    /// `[input, experts × hidden]`: every expert's first layer in one product.
    first: Dense<B>,
    /// `[experts, hidden, hidden]` and `[experts, 1, hidden]`: the experts' second layers.
    second: Param<Tensor<B, 3>>,
    second_bias: Param<Tensor<B, 3>>,
    /// `[input, heads × experts]` (MMoE only).
    gates: Option<Dense<B>>,
    /// `[heads, hidden]` and `[heads]`: each head's read of its mixture.
    out: Param<Tensor<B, 2>>,
    out_bias: Param<Tensor<B, 1>>,
    /// `[positions, heads]` of logit biases, or `[positions, 1]` of examination logits.
    position: Option<Param<Tensor<B, 2>>>,
    #[module(skip)]
    shape: RankerShapeSkip,
}

/// The shape carried by the module (not a parameter).
#[derive(Debug, Clone, Copy, Default)]
pub struct RankerShapeSkip {
    hidden: usize,
    experts: usize,
    heads: usize,
    dropout_percent: u32,
    examination: bool,
}

/// The inputs of a batch of rows.
pub struct RankerBatch {
    pub rows: usize,
    pub users: TowerBatch,
    pub items: TowerBatch,
    /// Row-major `rows × dense`.
    pub dense: Vec<f32>,
    /// Position bucket per row (empty when position is not an input, or when serving).
    pub positions: Vec<i32>,
    /// Row-major `rows × heads`, 0 or 1 (empty when serving).
    pub labels: Vec<f32>,
}

type Draw<'a> = &'a mut dyn FnMut(usize, f32) -> Vec<f32>;

impl<B: Backend> Side<B> {
    fn new(
        draw: Draw<'_>,
        rows: usize,
        e: usize,
        tokens: usize,
        numeric: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            ids: matrix(draw(rows * e, INIT_STD), rows, e, device),
            tokens: (tokens > 0).then(|| matrix(draw(tokens * e, INIT_STD), tokens, e, device)),
            numeric: (numeric > 0)
                .then(|| Dense::from_values(draw(numeric * e, INIT_STD), numeric, e, device)),
        }
    }

    /// Each row's id embedding `[rows, embedding]`.
    fn id_rows(&self, b: &TowerBatch) -> Tensor<B, 2> {
        let device = self.ids.device();
        let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(b.ids.clone(), [b.rows]), &device);
        self.ids.val().select(0, ids)
    }

    /// The mean over the batch's rows of the squared norm of each row's id embedding.
    fn id_square(&self, b: &TowerBatch) -> Tensor<B, 1> {
        self.id_rows(b).powf_scalar(2.0).sum_dim(1).mean()
    }

    fn embed(&self, b: &TowerBatch) -> Tensor<B, 2> {
        b.add_features(self.id_rows(b), self.tokens.as_ref(), self.numeric.as_ref())
    }
}

impl<B: Backend> RankerNet<B> {
    /// A network to train; an examination model's logits start at `examination_start` (one
    /// per position bucket).
    pub fn new(
        s: &RankerShape,
        dropout: f64,
        examination_start: &[f32],
        rng: &mut Rng,
        device: &B::Device,
    ) -> Self {
        Self::build(
            s,
            dropout,
            examination_start,
            &mut |n, std| normal(rng, n, std),
            device,
        )
    }

    /// A network of the right shape with zero weights, to read recorded weights into.
    pub fn empty(s: &RankerShape, device: &B::Device) -> Self {
        Self::build(s, 0.0, &[], &mut |n, _| vec![0.0; n], device)
    }

    fn build(
        s: &RankerShape,
        dropout: f64,
        examination_start: &[f32],
        draw: Draw<'_>,
        device: &B::Device,
    ) -> Self {
        let (e, h, x, d) = (s.embedding, s.hidden, s.experts, s.input());
        let he = |fan_in: usize| (2.0 / fan_in as f32).sqrt();
        Self {
            user: Side::new(draw, s.user_rows, e, s.user_tokens, s.user_numeric, device),
            item: Side::new(draw, s.item_rows, e, s.item_tokens, s.item_numeric, device),
            first: Dense::from_values(draw(d * x * h, he(d)), d, x * h, device),
            second: Param::from_tensor(Tensor::from_data(
                TensorData::new(draw(x * h * h, he(h)), [x, h, h]),
                device,
            )),
            second_bias: Param::from_tensor(Tensor::zeros([x, 1, h], device)),
            gates: s.mmoe.then(|| {
                Dense::from_values(draw(d * s.heads * x, INIT_STD), d, s.heads * x, device)
            }),
            out: matrix(draw(s.heads * h, he(h)), s.heads, h, device),
            out_bias: Param::from_tensor(Tensor::zeros([s.heads], device)),
            position: (s.positions > 0).then(|| {
                let width = if s.examination { 1 } else { s.heads };
                let start = if s.examination && examination_start.len() == s.positions {
                    examination_start.to_vec()
                } else {
                    vec![0.0; s.positions * width]
                };
                matrix(start, s.positions, width, device)
            }),
            shape: RankerShapeSkip {
                hidden: h,
                experts: x,
                heads: s.heads,
                dropout_percent: (dropout * 100.0).round() as u32,
                examination: s.examination,
            },
        }
    }

    /// The heads' logits `[rows, heads]` without the position bias.
    pub fn logits(&self, b: &RankerBatch, train: bool) -> Tensor<B, 2> {
        let device = self.out.device();
        let RankerShapeSkip {
            hidden: h,
            experts: x,
            heads,
            dropout_percent,
            ..
        } = self.shape;
        let p = dropout_percent as f64 / 100.0;
        let rows = b.rows;
        let u = self.user.embed(&b.users);
        let v = self.item.embed(&b.items);
        let n_dense = b.dense.len() / rows.max(1);
        let mut parts = vec![u.clone(), v.clone(), u * v];
        if n_dense > 0 {
            parts.push(Tensor::from_data(
                TensorData::new(b.dense.clone(), [rows, n_dense]),
                &device,
            ));
        }
        let input = Tensor::cat(parts, 1);
        // [rows, experts, hidden] → [experts, rows, hidden] for the batched second layer.
        let first = relu(self.first.forward(input.clone()));
        let first = dropout(first, p, train)
            .reshape([rows, x, h])
            .swap_dims(0, 1);
        let experts = relu(first.matmul(self.second.val()) + self.second_bias.val());
        let experts = dropout(experts, p, train).swap_dims(0, 1); // [rows, experts, hidden]
        let mixed: Tensor<B, 3> = match &self.gates {
            // [rows, heads, experts] × [rows, experts, hidden] → [rows, heads, hidden]
            Some(g) => softmax(g.forward(input).reshape([rows, heads, x]), 2).matmul(experts),
            None => experts, // [rows, 1, hidden], read by every head
        };
        let out = self.out.val().reshape([1, heads, h]);
        (mixed * out).sum_dim(2).reshape([rows, heads]) + self.out_bias.val().unsqueeze_dim(0)
    }

    /// The position table's rows for each row's bucket: `[rows, heads]` or `[rows, 1]`.
    fn position_rows(&self, positions: &[i32]) -> Option<Tensor<B, 2>> {
        let table = self.position.as_ref()?;
        if positions.is_empty() {
            return None;
        }
        let device = table.device();
        let ids = Tensor::<B, 1, Int>::from_data(
            TensorData::new(positions.to_vec(), [positions.len()]),
            &device,
        );
        Some(table.val().select(0, ids))
    }

    /// The logits as the data saw them, when the batch carries positions: with each row's bias,
    /// or of σ(examination)·σ(z).
    pub fn observed_logits(&self, b: &RankerBatch, train: bool) -> Tensor<B, 2> {
        let logits = self.logits(b, train);
        match self.position_rows(&b.positions) {
            Some(e) if self.shape.examination => {
                let (lp, l1p) = examined(log_sigmoid(e), logits);
                lp - l1p
            }
            Some(bias) => logits + bias,
            None => logits,
        }
    }

    /// Head-weighted binary cross-entropy, averaged over rows, plus `id_l2` times the rows' mean
    /// squared id-embedding norms (user and item).
    pub fn loss(&self, b: &RankerBatch, head_weights: &[f32], id_l2: f64) -> Tensor<B, 1> {
        let device = self.out.device();
        let heads = self.shape.heads;
        let z = self.logits(b, true);
        let y =
            Tensor::<B, 2>::from_data(TensorData::new(b.labels.clone(), [b.rows, heads]), &device);
        let w =
            Tensor::<B, 2>::from_data(TensorData::new(head_weights.to_vec(), [1, heads]), &device);
        // log p and log(1 − p) of the observed engagement.
        let (lp, l1p) = match self.position_rows(&b.positions) {
            Some(e) if self.shape.examination => examined(log_sigmoid(e), z),
            Some(bias) => {
                let z = z + bias;
                (log_sigmoid(z.clone()), log_sigmoid(z.neg()))
            }
            None => (log_sigmoid(z.clone()), log_sigmoid(z.neg())),
        };
        let ll = y.clone() * lp + (y.neg() + 1.0) * l1p;
        let loss = (ll * w).sum_dim(1).mean().neg();
        if id_l2 > 0.0 {
            loss + (self.user.id_square(&b.users) + self.item.id_square(&b.items)).mul_scalar(id_l2)
        } else {
            loss
        }
    }

    /// How serving at `bucket` turns the network's logits into observed ones.
    pub fn serve_at(&self, bucket: usize) -> ServePosition {
        let Some(t) = &self.position else {
            return ServePosition::Bias(vec![0.0; self.shape.heads]);
        };
        let [n, width] = t.dims();
        let v = t
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .unwrap_or_default();
        let row = &v[bucket.min(n.saturating_sub(1)) * width..][..width];
        if self.shape.examination {
            ServePosition::Examination(log_sigmoid_f64(row[0] as f64) as f32)
        } else {
            ServePosition::Bias(row.to_vec())
        }
    }

    /// Logits for many rows, row-major `rows × heads`, in chunks; `with_position` adds each
    /// row's position bias (validation against observed labels).
    pub fn score_rows(&self, rows: &Rows<'_>, at: &[usize], with_position: bool) -> Vec<f32> {
        let mut out = Vec::with_capacity(at.len() * self.shape.heads);
        for chunk in at.chunks(SCORE_BATCH) {
            let b = rows.batch(chunk, with_position, false);
            let z = if with_position {
                self.observed_logits(&b, false)
            } else {
                self.logits(&b, false)
            };
            out.extend(
                z.into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("f32 logits"),
            );
        }
        out
    }
}

/// `(log p, log(1 − p))` of p = σ(e)·σ(z), from log σ(e) `[rows, 1]` and z `[rows, heads]`.
fn examined<B: Backend>(log_exam: Tensor<B, 2>, z: Tensor<B, 2>) -> (Tensor<B, 2>, Tensor<B, 2>) {
    let heads = z.dims()[1];
    let lp = log_sigmoid(z) + log_exam.repeat_dim(1, heads);
    // p below 1 − 1e-6 keeps log(1 − p) and its gradient finite.
    let l1p = lp.clone().clamp_max(MAX_LOG_P).exp().neg().log1p();
    (lp, l1p)
}

/// log(1 − 1e-6).
const MAX_LOG_P: f32 = -1.000_000_5e-6;

fn log_sigmoid_f64(x: f64) -> f64 {
    x.min(0.0) - (-x.abs()).exp().ln_1p()
}

/// Position fixed at serving: a bias per head added to the logits, or log σ(examination).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ServePosition {
    Bias(Vec<f32>),
    Examination(f32),
}

impl ServePosition {
    /// The logit of head `h` observed at the serving position, from the network's `z`.
    pub fn observed(&self, h: usize, z: f32) -> f32 {
        match self {
            Self::Bias(b) => z + b.get(h).copied().unwrap_or(0.0),
            Self::Examination(log_exam) => {
                let lp = (log_sigmoid_f64(z as f64) + *log_exam as f64).min(MAX_LOG_P as f64);
                (lp - (-lp.exp()).ln_1p()) as f32
            }
        }
    }
}

/// The rows a ranker learns from or scores: per row a user row, an item row, dense inputs, a
/// position bucket and labels, with the feature tables the ids index.
pub struct Rows<'a> {
    pub user: &'a [u32],
    pub item: &'a [u32],
    /// Row-major `rows × n_dense`.
    pub dense: &'a [f32],
    pub n_dense: usize,
    pub position: &'a [i32],
    /// Row-major `rows × heads`.
    pub labels: &'a [f32],
    pub heads: usize,
    pub users: &'a FeatureTable,
    pub items: &'a FeatureTable,
}

impl Rows<'_> {
    /// The batch of rows `at`.
    pub fn batch(&self, at: &[usize], positions: bool, labels: bool) -> RankerBatch {
        let users: Vec<u32> = at.iter().map(|&r| self.user[r]).collect();
        let items: Vec<u32> = at.iter().map(|&r| self.item[r]).collect();
        let ones = vec![1.0; at.len()];
        let mut dense = Vec::with_capacity(at.len() * self.n_dense);
        for &r in at {
            dense.extend_from_slice(&self.dense[r * self.n_dense..(r + 1) * self.n_dense]);
        }
        RankerBatch {
            rows: at.len(),
            users: TowerBatch::new(&users, ones.clone(), self.users, &[]),
            items: TowerBatch::new(&items, ones, self.items, &[]),
            dense,
            positions: if positions && !self.position.is_empty() {
                at.iter().map(|&r| self.position[r]).collect()
            } else {
                Vec::new()
            },
            labels: if labels {
                at.iter()
                    .flat_map(|&r| {
                        self.labels[r * self.heads..(r + 1) * self.heads]
                            .iter()
                            .copied()
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }
}

/// What a fit needs besides the rows.
pub struct RankerFit<'a> {
    pub name: &'a str,
    pub shape: RankerShape,
    pub fit: FitConfig,
    pub dropout: f64,
    /// L2 penalty on each training row's id embeddings.
    pub id_l2: f64,
    pub head_weights: Vec<f32>,
    /// Per position bucket, the examination logit to start from (empty: 0 everywhere).
    pub examination_start: Vec<f32>,
    /// The training rows and the validation rows (indexes into the rows).
    pub train: Vec<usize>,
    pub valid: Vec<usize>,
    /// The interactions the policy was given (the loop's bookkeeping reads them).
    pub data: Interactions<'a>,
}

/// Trains the network with early stopping on the validation rows' weighted log loss.
pub fn fit_ranker<B: AutodiffBackend>(
    device: B::Device,
    s: &RankerFit<'_>,
    rows: &Rows<'_>,
    ctx: &TrainContext<'_>,
) -> Result<Fitted> {
    if s.train.is_empty() || s.valid.is_empty() {
        return Err(Error::invalid(
            "fetch.impressions",
            format!(
                "{}: too few impressions to learn from ({} to train on, {} to validate on)",
                s.name,
                s.train.len(),
                s.valid.len()
            ),
        ));
    }
    let _one = one_at_a_time();
    B::seed(&device, ctx.seed);
    super::layers::seed_dropout(ctx.seed);
    let mut rng = Rng::new(ctx.seed ^ 0x2A_4E2);
    let net = RankerNet::<B>::new(&s.shape, s.dropout, &s.examination_start, &mut rng, &device);
    let weights = s.head_weights.clone();
    let total_weight: f32 = weights.iter().sum();
    let order = std::cell::RefCell::new(s.train.clone());
    fit(
        Loop {
            name: s.name,
            fit: &s.fit,
            data: s.data,
            ctx,
            rng,
        },
        net,
        |rng| {
            let mut order = order.borrow_mut();
            shuffle(&mut order, rng);
            order.chunks(s.fit.batch_size).map(<[_]>::to_vec).collect()
        },
        |net: &RankerNet<B>, chunk: &Vec<usize>, _rng| {
            net.loss(&rows.batch(chunk, true, true), &weights, s.id_l2)
        },
        Validation::Loss(
            "log loss",
            Box::new(|inner: &RankerNet<B::InnerBackend>| {
                let z = inner.score_rows(rows, &s.valid, true);
                let heads = rows.heads;
                let mut sum = 0f64;
                for (k, &r) in s.valid.iter().enumerate() {
                    for h in 0..heads {
                        let (z, y) = (z[k * heads + h] as f64, rows.labels[r * heads + h] as f64);
                        // −log σ(±z), stably.
                        let nll = z.max(0.0) - z * y + (-z.abs()).exp().ln_1p();
                        sum += weights[h] as f64 * nll;
                    }
                }
                sum / (s.valid.len() as f64 * total_weight as f64)
            }),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::nn::Cpu;

    fn sigmoid(x: f64) -> f64 {
        1.0 / (1.0 + (-x).exp())
    }

    /// Training (tensors) and serving (one logit at a time) agree on the examination model, and
    /// both are p = σ(e)·σ(z), finite where p nears 1.
    #[test]
    fn examination_multiplies_the_probabilities_in_training_and_serving() {
        let device = Default::default();
        let es = [-2.0f32, 0.0, 3.0, 30.0];
        let zs = [-6.0f32, -0.5, 0.0, 2.5, 30.0];
        let e = Tensor::<Cpu, 2>::from_data(TensorData::new(es.to_vec(), [4, 1]), &device);
        let z: Vec<f32> = es.iter().flat_map(|_| zs).collect();
        let z = Tensor::<Cpu, 2>::from_data(TensorData::new(z, [4, 5]), &device);
        let (lp, l1p) = examined(log_sigmoid(e), z);
        let lp = lp.into_data().into_vec::<f32>().unwrap();
        let l1p = l1p.into_data().into_vec::<f32>().unwrap();
        for (r, &e) in es.iter().enumerate() {
            let serve = ServePosition::Examination(log_sigmoid_f64(e as f64) as f32);
            for (h, &z) in zs.iter().enumerate() {
                let p = sigmoid(e as f64) * sigmoid(z as f64);
                let k = r * zs.len() + h;
                assert!(l1p[k].is_finite(), "e {e}, z {z}");
                if p < 0.999 {
                    assert!((lp[k].exp() as f64 - p).abs() < 1e-5, "e {e}, z {z}");
                    assert!(
                        (l1p[k].exp() as f64 - (1.0 - p)).abs() < 1e-5,
                        "e {e}, z {z}"
                    );
                }
                let observed = serve.observed(h, z) as f64;
                // Saturated (p past 1 − 1e-6): both cap the logit near 13.8, f32 apart.
                let tolerance = if p < 0.999 { 1e-3 } else { 0.1 };
                assert!(
                    (observed - (lp[k] - l1p[k]) as f64).abs() < tolerance,
                    "e {e}, z {z}: {observed} against {}",
                    lp[k] - l1p[k]
                );
                assert!((sigmoid(observed) - p).abs() < 1e-5, "e {e}, z {z}");
            }
        }
        assert_eq!(ServePosition::Bias(vec![0.5, -1.0]).observed(1, 2.0), 1.0);
    }

    /// `id_l2` adds λ × (the rows' mean squared user-id norm + their mean squared item-id
    /// norm) to the loss, an id counted once per row it appears in.
    #[test]
    fn id_l2_adds_the_rows_mean_squared_id_norms() {
        let device = Default::default();
        let shape = RankerShape {
            user_rows: 3,
            item_rows: 4,
            embedding: 2,
            hidden: 3,
            experts: 1,
            mmoe: false,
            heads: 2,
            dense: 0,
            positions: 0,
            examination: false,
            user_tokens: 0,
            user_numeric: 0,
            item_tokens: 0,
            item_numeric: 0,
        };
        let net = RankerNet::<Cpu>::new(&shape, 0.0, &[], &mut Rng::new(3), &device);
        let (users, items) = ([0u32, 2, 2], [1u32, 3, 0]);
        let table = |n: usize| FeatureTable {
            offsets: vec![0; n + 1],
            ..Default::default()
        };
        let (user_table, item_table) = (table(3), table(4));
        let batch = RankerBatch {
            rows: 3,
            users: TowerBatch::new(&users, vec![1.0; 3], &user_table, &[]),
            items: TowerBatch::new(&items, vec![1.0; 3], &item_table, &[]),
            dense: Vec::new(),
            positions: Vec::new(),
            labels: vec![1.0, 0.0, 0.0, 1.0, 0.0, 0.0],
        };
        let plain = crate::nn::sasrec::scalar(net.loss(&batch, &[1.0, 1.0], 0.0));
        let penalised = crate::nn::sasrec::scalar(net.loss(&batch, &[1.0, 1.0], 0.5));
        let values = |p: &Param<Tensor<Cpu, 2>>| p.val().into_data().into_vec::<f32>().unwrap();
        let mean_square = |table: &[f32], ids: &[u32]| {
            ids.iter()
                .map(|&i| {
                    table[i as usize * 2..][..2]
                        .iter()
                        .map(|&x| (x * x) as f64)
                        .sum::<f64>()
                })
                .sum::<f64>()
                / ids.len() as f64
        };
        let expected = 0.5
            * (mean_square(&values(&net.user.ids), &users)
                + mean_square(&values(&net.item.ids), &items));
        assert!(expected > 1e-4, "{expected}");
        assert!(
            ((penalised - plain) - expected).abs() < 1e-5,
            "{plain} + {expected} against {penalised}"
        );
    }
}
