//! The two-tower network (Yi et al. 2019): a user tower over the user-id embedding, user
//! features and the mean embedding of the user's latest items; an item tower over the item-id
//! embedding and item features. Each tower adds its inputs, applies a residual ReLU MLP and
//! L2-normalises. Trained with in-batch softmax at a temperature, logQ-corrected for item
//! popularity, optionally with extra uniform negatives. Item-id dropout makes the item tower
//! place items from features alone, which is what an item without events gets (cold start).

use burn::module::{Module, Param};
use burn::tensor::activation::{log_softmax, relu};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, Int, Tensor, TensorData};

use super::embeddings::Embeddings;
use super::features::FeatureTable;
use super::layers::{matrix, normal, Dense};
use super::sequences::shuffle;
use super::train::{fit, loop_memory, one_at_a_time, Fitted, Loop, Validation};
use crate::config::FitConfig;
use crate::core::{MemoryEstimate, TrainContext};
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::util::linalg::Rng;

const INIT_STD: f32 = 0.02;
/// Rows per forward pass when encoding every user or item.
const ENCODE_BATCH: usize = 4096;

/// The shape of a network.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    pub n_users: usize,
    pub n_items: usize,
    pub hidden: usize,
    pub user_tokens: usize,
    pub user_numeric: usize,
    pub item_tokens: usize,
    pub item_numeric: usize,
}

#[derive(Module, Debug)]
pub struct Tower<B: Backend> {
    tokens: Option<Param<Tensor<B, 2>>>,
    numeric: Option<Dense<B>>,
    mlp1: Dense<B>,
    mlp2: Dense<B>,
}

#[derive(Module, Debug)]
pub struct TwoTowerNet<B: Backend> {
    user_ids: Param<Tensor<B, 2>>,
    item_ids: Param<Tensor<B, 2>>,
    user: Tower<B>,
    item: Tower<B>,
}

/// One tower's inputs for `rows` rows, padded to `t` tokens and `h` history items per row.
pub struct TowerBatch {
    pub rows: usize,
    pub ids: Vec<i32>,
    /// 1 keeps the row's id embedding, 0 hides it (id dropout, cold items).
    pub keep: Vec<f32>,
    pub t: usize,
    pub tokens: Vec<i32>,
    pub token_weights: Vec<f32>,
    pub numeric: Vec<f32>,
    pub h: usize,
    pub history: Vec<i32>,
    pub history_weights: Vec<f32>,
}

impl TowerBatch {
    pub fn new(ids: &[u32], keep: Vec<f32>, table: &FeatureTable, histories: &[&[u32]]) -> Self {
        let rows = ids.len();
        let t = ids
            .iter()
            .map(|&i| table.row_tokens(i as usize).0.len())
            .max()
            .unwrap_or(0);
        let mut tokens = vec![0i32; rows * t];
        let mut token_weights = vec![0f32; rows * t];
        let mut numeric = Vec::with_capacity(rows * table.n_numeric);
        for (r, &i) in ids.iter().enumerate() {
            let (tk, w) = table.row_tokens(i as usize);
            for (j, (&a, &b)) in tk.iter().zip(w).enumerate() {
                tokens[r * t + j] = a as i32;
                token_weights[r * t + j] = b;
            }
            numeric.extend_from_slice(table.row_numeric(i as usize));
        }
        let h = histories.iter().map(|s| s.len()).max().unwrap_or(0);
        let mut history = vec![0i32; rows * h];
        let mut history_weights = vec![0f32; rows * h];
        for (r, s) in histories.iter().enumerate() {
            for (j, &i) in s.iter().enumerate() {
                history[r * h + j] = i as i32;
                history_weights[r * h + j] = 1.0 / s.len() as f32;
            }
        }
        Self {
            rows,
            ids: ids.iter().map(|&i| i as i32).collect(),
            keep,
            t,
            tokens,
            token_weights,
            numeric,
            h,
            history,
            history_weights,
        }
    }
}

impl TowerBatch {
    /// `x` (the rows' id embeddings) plus the rows' feature tokens pooled from `tokens` and
    /// their numbers projected by `numeric`: the inputs every side of a network adds up.
    pub fn add_features<B: Backend>(
        &self,
        mut x: Tensor<B, 2>,
        tokens: Option<&Param<Tensor<B, 2>>>,
        numeric: Option<&Dense<B>>,
    ) -> Tensor<B, 2> {
        let rows = self.rows;
        if let (Some(tokens), true) = (tokens, self.t > 0) {
            x = x + pooled(
                tokens.val(),
                &self.tokens,
                &self.token_weights,
                rows,
                self.t,
            );
        }
        if let Some(numeric) = numeric {
            let n = self.numeric.len() / rows.max(1);
            let values = Tensor::<B, 2>::from_data(
                TensorData::new(self.numeric.clone(), [rows, n]),
                &x.device(),
            );
            x = x + numeric.forward(values);
        }
        x
    }
}

/// Draws `n` initial weights of the given standard deviation (or zeros, for a load).
type Draw<'a> = &'a mut dyn FnMut(usize, f32) -> Vec<f32>;

impl<B: Backend> Tower<B> {
    fn new(
        draw: Draw<'_>,
        d: usize,
        n_tokens: usize,
        n_numeric: usize,
        device: &B::Device,
    ) -> Self {
        Self {
            tokens: (n_tokens > 0)
                .then(|| matrix(draw(n_tokens * d, INIT_STD), n_tokens, d, device)),
            numeric: (n_numeric > 0)
                .then(|| Dense::from_values(draw(n_numeric * d, INIT_STD), n_numeric, d, device)),
            mlp1: Dense::from_values(draw(d * d, (2.0 / d as f32).sqrt()), d, d, device),
            mlp2: Dense::from_values(draw(d * d, INIT_STD), d, d, device),
        }
    }
}

/// Weighted sum over the middle axis: `table[ids]` as `[rows, k, d]` times `weights [rows, k]`.
fn pooled<B: Backend>(
    table: Tensor<B, 2>,
    ids: &[i32],
    weights: &[f32],
    rows: usize,
    k: usize,
) -> Tensor<B, 2> {
    let device = table.device();
    let [_, d] = table.dims();
    let ids = Tensor::<B, 1, Int>::from_data(TensorData::new(ids.to_vec(), [rows * k]), &device);
    let w = Tensor::<B, 3>::from_data(TensorData::new(weights.to_vec(), [rows, k, 1]), &device);
    (table.select(0, ids).reshape([rows, k, d]) * w)
        .sum_dim(1)
        .reshape([rows, d])
}

impl<B: Backend> TwoTowerNet<B> {
    pub fn new(c: &NetConfig, rng: &mut Rng, device: &B::Device) -> Self {
        Self::build(c, &mut |n, std| normal(rng, n, std), device)
    }

    /// A network of the right shape with zero weights, to read recorded weights into (no random
    /// start drawn only to be overwritten).
    pub fn empty(c: &NetConfig, device: &B::Device) -> Self {
        Self::build(c, &mut |n, _| vec![0.0; n], device)
    }

    fn build(c: &NetConfig, draw: Draw<'_>, device: &B::Device) -> Self {
        let d = c.hidden;
        Self {
            user_ids: matrix(draw(c.n_users * d, INIT_STD), c.n_users, d, device),
            item_ids: matrix(draw(c.n_items * d, INIT_STD), c.n_items, d, device),
            user: Tower::new(draw, d, c.user_tokens, c.user_numeric, device),
            item: Tower::new(draw, d, c.item_tokens, c.item_numeric, device),
        }
    }

    fn tower(&self, user_side: bool, b: &TowerBatch) -> Tensor<B, 2> {
        let (ids, tower) = if user_side {
            (&self.user_ids, &self.user)
        } else {
            (&self.item_ids, &self.item)
        };
        let device = ids.device();
        let rows = b.rows;
        let id_t = Tensor::<B, 1, Int>::from_data(TensorData::new(b.ids.clone(), [rows]), &device);
        let keep = Tensor::<B, 2>::from_data(TensorData::new(b.keep.clone(), [rows, 1]), &device);
        let mut x = b.add_features(
            ids.val().select(0, id_t) * keep,
            tower.tokens.as_ref(),
            tower.numeric.as_ref(),
        );
        if b.h > 0 {
            x = x + pooled(
                self.item_ids.val(),
                &b.history,
                &b.history_weights,
                rows,
                b.h,
            );
        }
        let y = x.clone() + tower.mlp2.forward(relu(tower.mlp1.forward(x)));
        let norm = y
            .clone()
            .powf_scalar(2.0)
            .sum_dim(1)
            .add_scalar(1e-12)
            .sqrt();
        y / norm
    }

    /// In-batch softmax: row i's positive is column i; `logq` (one per column) is subtracted.
    pub fn loss(&self, b: &PairBatch, temperature: f64) -> Tensor<B, 1> {
        let device = self.item_ids.device();
        let u = self.tower(true, &b.users);
        let v = self.tower(false, &b.items);
        let n = b.users.rows;
        let m = b.items.rows;
        let logq = Tensor::<B, 2>::from_data(TensorData::new(b.logq.clone(), [1, m]), &device);
        let same =
            Tensor::<B, 2, Bool>::from_data(TensorData::new(b.duplicate.clone(), [n, m]), &device);
        let logits = (u.matmul(v.transpose()).div_scalar(temperature) - logq).mask_fill(same, -1e9);
        let diag: Vec<i32> = (0..n as i32).collect();
        let labels = Tensor::<B, 2, Int>::from_data(TensorData::new(diag, [n, 1]), &device);
        log_softmax(logits, 1).gather(1, labels).mean().neg()
    }

    /// Vectors for `ids` of one side, in chunks.
    pub fn encode(
        &self,
        user_side: bool,
        ids: &[u32],
        keep: &[f32],
        table: &FeatureTable,
        histories: &[&[u32]],
    ) -> Vec<f32> {
        let mut out = Vec::new();
        for (c, chunk) in ids.chunks(ENCODE_BATCH).enumerate() {
            let lo = c * ENCODE_BATCH;
            let hist: &[&[u32]] = if histories.is_empty() {
                &[]
            } else {
                &histories[lo..lo + chunk.len()]
            };
            let b = TowerBatch::new(chunk, keep[lo..lo + chunk.len()].to_vec(), table, hist);
            let v = self.tower(user_side, &b);
            out.extend(
                v.into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("f32 vectors"),
            );
        }
        out
    }
}

impl TwoTowerNet<crate::nn::Cpu> {
    /// One user's vector from the user tower: their id embedding and feature row when the
    /// network trained them (`users`), else `stranger`'s empty row and no id; and `history`,
    /// their latest items (trained ids), as training encoded histories.
    pub fn encode_user(
        &self,
        user: Option<u32>,
        history: &[u32],
        users: &FeatureTable,
        stranger: &FeatureTable,
    ) -> Vec<f32> {
        let (id, keep, table) = match user {
            Some(u) => (u, 1.0, users),
            None => (0, 0.0, stranger),
        };
        let histories: Vec<&[u32]> = if history.is_empty() {
            Vec::new()
        } else {
            vec![history]
        };
        let b = TowerBatch::new(&[id], vec![keep], table, &histories);
        self.tower(true, &b)
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("f32 vectors")
    }

    /// Item vectors from features alone for the rows of `table`: items the network has no id
    /// embedding for (added after training), encoded as a cold item of training was.
    pub fn encode_cold_items(&self, table: &FeatureTable) -> Vec<f32> {
        let rows = table.offsets.len().saturating_sub(1) as u32;
        let ids: Vec<u32> = (0..rows).collect();
        let mut out = Vec::new();
        for chunk in ids.chunks(ENCODE_BATCH) {
            let mut b = TowerBatch::new(chunk, vec![0.0; chunk.len()], table, &[]);
            // The id embedding is hidden (keep 0); any row of it will do.
            b.ids.fill(0);
            out.extend(
                self.tower(false, &b)
                    .into_data()
                    .convert::<f32>()
                    .into_vec::<f32>()
                    .expect("f32 vectors"),
            );
        }
        out
    }
}

/// A training batch: users and their positive items (column i is row i's positive), the
/// uniform negatives appended as extra columns.
pub struct PairBatch {
    pub users: TowerBatch,
    pub items: TowerBatch,
    pub logq: Vec<f32>,
    /// `[users, items]`: a column holding the row's own positive item but not its label.
    pub duplicate: Vec<bool>,
}

/// Everything a two-tower run reads.
pub struct TowerData<'a> {
    pub data: Interactions<'a>,
    pub users: &'a FeatureTable,
    pub items: &'a FeatureTable,
    pub history: usize,
}

impl TowerData<'_> {
    /// Each user's latest `history` visible items before position `p`.
    fn before(&self, u: u32, p: usize) -> &[u32] {
        let items = self.data.items(u);
        &items[p.saturating_sub(self.history)..p]
    }

    /// Visible events per item (items with none get vectors from features alone).
    pub fn item_counts(&self) -> Vec<u32> {
        let mut count = vec![0u32; self.data.n_items()];
        for u in 0..self.data.n_users() as u32 {
            for &i in self.data.items(u) {
                count[i as usize] += 1;
            }
        }
        count
    }

    pub fn user_vectors<B: Backend>(&self, net: &TwoTowerNet<B>) -> Vec<f32> {
        let ids: Vec<u32> = (0..self.data.n_users() as u32).collect();
        let histories: Vec<&[u32]> = ids
            .iter()
            .map(|&u| self.before(u, self.data.items(u).len()))
            .collect();
        let histories = if self.history == 0 {
            Vec::new()
        } else {
            histories
        };
        net.encode(true, &ids, &vec![1.0; ids.len()], self.users, &histories)
    }

    /// Every item's vector; `trained[i]` says whether item i's id embedding was learned (it had
    /// events in the training data), else the item is placed from its features alone.
    pub fn item_vectors<B: Backend>(&self, net: &TwoTowerNet<B>, trained: &[bool]) -> Vec<f32> {
        let ids: Vec<u32> = (0..self.data.n_items() as u32).collect();
        let keep: Vec<f32> = trained.iter().map(|&t| if t { 1.0 } else { 0.0 }).collect();
        net.encode(false, &ids, &keep, self.items, &[])
    }
}

/// What a two-tower run's memory grows with besides its settings.
pub struct TowerShape {
    pub net: NetConfig,
    pub events: usize,
    /// The most feature tokens of one user (item) row: what batches pad to.
    pub user_row_tokens: usize,
    pub item_row_tokens: usize,
    /// History items the user tower averages.
    pub history: usize,
}

/// `[rows, hidden]` tensors a tower keeps for its backward pass and the gradients it makes
/// (sums of inputs, the MLP, the residual, the normalisation).
const TOWER_ACTIVATIONS: f64 = 15.0;
/// Copies of a `[rows, k, hidden]` lookup (token or history pooling): the gathered rows, their
/// weighted product and its gradient.
const POOLING_COPIES: f64 = 3.0;
/// `[users, items]` matrices of the in-batch softmax: logits, tempered, corrected, masked, the
/// log-softmax and its gradient.
const LOGIT_COPIES: f64 = 6.0;
/// Encoding (no autodiff) keeps nothing for a backward pass: a pooled lookup and its weighted
/// product are alive together, and a few `[rows, hidden]` tensors through the MLP.
const ENCODE_POOLING_COPIES: f64 = 2.0;
const ENCODE_ACTIVATIONS: f64 = 6.0;

/// The peak memory of [`fit_two_tower`] for `shape`: the parameters with their optimiser state
/// and the shuffled examples throughout, plus the larger of a training step and a validation
/// pass.
pub fn memory(
    shape: &TowerShape,
    batch_size: usize,
    negatives: usize,
    with_data: bool,
) -> MemoryEstimate {
    let c = &shape.net;
    let d = c.hidden as f64;
    let (users, items) = (c.n_users as f64, c.n_items as f64);
    let (mut e, mut validation) = (
        MemoryEstimate::new(with_data),
        MemoryEstimate::new(with_data),
    );
    let ids = users + items + (c.user_tokens + c.item_tokens) as f64;
    let params = ids * d + (c.user_numeric + c.item_numeric) as f64 * d + 4.0 * (d * d + d);
    loop_memory(&mut e, &mut validation, params, c.n_items, &["hidden"]);
    // (user, position) pairs, shuffled, and the epoch's chunks of them.
    e.bytes("training examples", 16.0 * shape.events as f64, &[]);

    let rows = if with_data {
        batch_size.min(shape.events.max(1))
    } else {
        batch_size
    } as f64;
    let columns = rows + negatives as f64;
    let mut step = MemoryEstimate::new(with_data);
    let pooled = rows * (shape.history + shape.user_row_tokens) as f64
        + columns * shape.item_row_tokens as f64;
    step.floats(
        "tower activations",
        (rows + columns) * d * TOWER_ACTIVATIONS + pooled * d * POOLING_COPIES,
        &["batch_size", "history", "hidden"],
    );
    step.floats(
        "in-batch logits",
        rows * columns * LOGIT_COPIES,
        &["batch_size", "negatives"],
    );
    // Dense gradients of the id tables: users once, items twice (item tower and history).
    step.floats(
        "id embedding gradients",
        (users + 2.0 * items) * d,
        &["hidden"],
    );
    let chunk = ENCODE_BATCH as f64;
    validation.floats(
        "validation encoding",
        chunk * d * (ENCODE_ACTIVATIONS + ENCODE_POOLING_COPIES * shape.history as f64)
            + (users + items) * d,
        &["history"],
    );
    e.add_larger(step, validation);
    e
}

pub struct TwoTowerFit<'a> {
    pub name: &'a str,
    pub net: NetConfig,
    pub fit: FitConfig,
    pub temperature: f64,
    pub negatives: usize,
    pub logq_correction: bool,
    pub id_dropout: f64,
}

pub fn fit_two_tower<B: AutodiffBackend>(
    device: B::Device,
    s: &TwoTowerFit<'_>,
    td: &TowerData<'_>,
    ctx: &TrainContext<'_>,
) -> Result<Fitted> {
    let _one = one_at_a_time();
    B::seed(&device, ctx.seed);
    super::layers::seed_dropout(ctx.seed);
    let mut rng = Rng::new(ctx.seed ^ 0x7_70E2);
    let net = TwoTowerNet::<B>::new(&s.net, &mut rng, &device);
    let data = td.data;
    let examples: Vec<(u32, u32)> = (0..data.n_users() as u32)
        .flat_map(|u| (0..data.items(u).len() as u32).map(move |p| (u, p)))
        .collect();
    if examples.is_empty() {
        return Err(Error::invalid(
            "fetch.events",
            format!("{}: no events to learn from", s.name),
        ));
    }
    let counts = td.item_counts();
    let trained: Vec<bool> = counts.iter().map(|&c| c > 0).collect();
    let total = examples.len() as f64;
    let n_items = data.n_items();
    (ctx.log)(format!(
        "{}: {} interactions, {} batches per epoch, temperature {}, {} extra negatives",
        s.name,
        examples.len(),
        examples.len().div_ceil(s.fit.batch_size),
        s.temperature,
        s.negatives
    ));
    let batch_size = s.fit.batch_size;
    let make_batch = |chunk: &[(u32, u32)], rng: &mut Rng| -> PairBatch {
        let users: Vec<u32> = chunk.iter().map(|e| e.0).collect();
        let positives: Vec<u32> = chunk
            .iter()
            .map(|&(u, p)| data.items(u)[p as usize])
            .collect();
        let histories: Vec<&[u32]> = if td.history == 0 {
            Vec::new()
        } else {
            chunk
                .iter()
                .map(|&(u, p)| td.before(u, p as usize))
                .collect()
        };
        let randoms: Vec<u32> = (0..s.negatives)
            .map(|_| (rng.next_u64() % n_items as u64) as u32)
            .collect();
        let mut item_ids = positives.clone();
        item_ids.extend(&randoms);
        let keep: Vec<f32> = item_ids
            .iter()
            .map(|_| {
                if (rng.next_f32() as f64) < s.id_dropout {
                    0.0
                } else {
                    1.0
                }
            })
            .collect();
        let b = chunk.len() as f64;
        let logq: Vec<f32> = if s.logq_correction {
            positives
                .iter()
                .map(|&i| (b * counts[i as usize].max(1) as f64 / total).ln() as f32)
                .chain(
                    randoms
                        .iter()
                        .map(|_| (s.negatives as f64 / n_items as f64).ln() as f32),
                )
                .collect()
        } else {
            vec![0.0; item_ids.len()]
        };
        let mut duplicate = vec![false; chunk.len() * item_ids.len()];
        for (r, &pos) in positives.iter().enumerate() {
            for (c, &i) in item_ids.iter().enumerate() {
                duplicate[r * item_ids.len() + c] = c != r && i == pos;
            }
        }
        PairBatch {
            users: TowerBatch::new(&users, vec![1.0; users.len()], td.users, &histories),
            items: TowerBatch::new(&item_ids, keep, td.items, &[]),
            logq,
            duplicate,
        }
    };
    let order = std::cell::RefCell::new(examples);
    fit(
        Loop {
            name: s.name,
            fit: &s.fit,
            data,
            ctx,
            rng,
        },
        net,
        |rng| {
            let mut order = order.borrow_mut();
            shuffle(&mut order, rng);
            order.chunks(batch_size).map(<[_]>::to_vec).collect()
        },
        // Batches are built one at a time (an epoch of them would hold gigabytes).
        |net: &TwoTowerNet<B>, chunk: &Vec<(u32, u32)>, rng| {
            net.loss(&make_batch(chunk, rng), s.temperature)
        },
        Validation::Ndcg(Box::new(|inner: &TwoTowerNet<B::InnerBackend>| {
            Embeddings {
                dim: s.net.hidden,
                users: td.user_vectors(inner),
                items: td.item_vectors(inner, &trained),
            }
        })),
    )
}
