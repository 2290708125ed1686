//! The SASRec network (Kang & McAuley 2018) as Klenitskiy & Vasilev (2023) trained it: learned
//! positions, causal self-attention blocks in the original post-norm-on-queries arrangement,
//! a point-wise ReLU feed-forward of the hidden size, a final layer norm, and item embeddings
//! shared between input and output. Losses: full softmax, sampled softmax, BCE.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig};
use burn::tensor::activation::{log_sigmoid, log_softmax, relu};
use burn::tensor::backend::{AutodiffBackend, Backend};
use burn::tensor::{Bool, ElementConversion, Int, Tensor, TensorData};

use super::fused_softmax::{softmax, FusedSoftmax};
use super::layers::{dropout, matrix, normal, uniform, Dense};
use super::sequences::{batch, SeqBatch};
use super::softmax_ce::full_softmax_ce;
use crate::config::SequenceLoss;
use crate::util::linalg::Rng;

/// Initial weights: N(0, 0.02²), as in the reference implementation (except its attention input
/// projections; see `build`).
const INIT_STD: f32 = 0.02;
/// LayerNorm epsilon of the reference implementation.
const NORM_EPS: f64 = 1e-8;
/// Users encoded per forward pass when serving or validating.
const ENCODE_BATCH: usize = 256;

/// How a weight matrix starts.
#[derive(Clone, Copy)]
enum Init {
    Normal,
    Xavier,
}

/// The shape of a network (what `load` needs to rebuild it before reading weights).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NetConfig {
    pub n_items: usize,
    pub max_len: usize,
    pub hidden: usize,
    pub layers: usize,
    pub heads: usize,
    pub dropout: f64,
}

#[derive(Module, Debug)]
pub struct Block<B: Backend> {
    attn_norm: LayerNorm<B>,
    q: Dense<B>,
    k: Dense<B>,
    v: Dense<B>,
    o: Dense<B>,
    ffn_norm: LayerNorm<B>,
    ffn1: Dense<B>,
    ffn2: Dense<B>,
}

#[derive(Module, Debug)]
pub struct SasRecNet<B: Backend> {
    /// `[n_items, hidden]`: input embeddings and output weights at once.
    item_emb: Param<Tensor<B, 2>>,
    /// `[max_len, hidden]`, indexed from the oldest item of the window.
    pos_emb: Param<Tensor<B, 2>>,
    blocks: Vec<Block<B>>,
    last_norm: LayerNorm<B>,
    heads: usize,
    dropout: f64,
}

impl<B: FusedSoftmax> SasRecNet<B> {
    /// A network initialised as the reference implementation's: embeddings, feed-forward and
    /// attention output weights from N(0, 0.02²); the query, key and value projections from
    /// PyTorch's `MultiheadAttention` default, Xavier-uniform over the stacked `[3d, d]` input
    /// projection (its init hook skips that parameter); biases 0, layer norms 1 and 0.
    pub fn new(c: &NetConfig, rng: &mut Rng, device: &B::Device) -> Self {
        let xavier = (6.0 / (4.0 * c.hidden as f32)).sqrt();
        Self::build(
            c,
            &mut |n, init| match init {
                Init::Normal => normal(rng, n, INIT_STD),
                Init::Xavier => uniform(rng, n, xavier),
            },
            device,
        )
    }

    /// A network of the right shape with zero weights, to read recorded weights into: a load
    /// need not draw a random start it overwrites (64M draws for a million-item catalog).
    pub fn empty(c: &NetConfig, device: &B::Device) -> Self {
        Self::build(c, &mut |n, _| vec![0.0; n], device)
    }

    fn build(
        c: &NetConfig,
        draw: &mut dyn FnMut(usize, Init) -> Vec<f32>,
        device: &B::Device,
    ) -> Self {
        let d = c.hidden;
        let norm = || LayerNormConfig::new(d).with_epsilon(NORM_EPS).init(device);
        let mut dense = |init| Dense::from_values(draw(d * d, init), d, d, device);
        let blocks = (0..c.layers)
            .map(|_| Block {
                attn_norm: norm(),
                q: dense(Init::Xavier),
                k: dense(Init::Xavier),
                v: dense(Init::Xavier),
                o: dense(Init::Normal),
                ffn_norm: norm(),
                ffn1: dense(Init::Normal),
                ffn2: dense(Init::Normal),
            })
            .collect();
        Self {
            item_emb: matrix(draw(c.n_items * d, Init::Normal), c.n_items, d, device),
            pos_emb: matrix(draw(c.max_len * d, Init::Normal), c.max_len, d, device),
            blocks,
            last_norm: norm(),
            heads: c.heads,
            dropout: c.dropout,
        }
    }

    /// Hidden states of every slot, `[rows * len, hidden]`.
    pub fn hidden(&self, b: &SeqBatch, train: bool) -> Tensor<B, 2> {
        let device = self.item_emb.device();
        let [_, d] = self.item_emb.dims();
        let (rows, len) = (b.rows, b.len);
        let ids =
            Tensor::<B, 1, Int>::from_data(TensorData::new(b.items.clone(), [rows * len]), &device);
        let emb = self
            .item_emb
            .val()
            .select(0, ids)
            .mul_scalar((d as f64).sqrt());
        let pos = self
            .pos_emb
            .val()
            .slice([0..len, 0..d])
            .unsqueeze_dim::<3>(0)
            .repeat_dim(0, rows)
            .reshape([rows * len, d]);
        let mut x = dropout(emb + pos, self.dropout, train);
        // True above the diagonal: a slot sees itself and older slots only.
        let pass = Pass {
            rows,
            len,
            heads: self.heads,
            causal: Tensor::<B, 2, Bool>::tril_mask([len, len], 0, &device)
                .reshape([1, 1, len, len]),
            dropout: self.dropout,
            train,
        };
        for block in &self.blocks {
            x = block.forward(x, &pass);
        }
        self.last_norm.forward(x)
    }

    /// The user vector of each sequence: the hidden state of its newest item, over its latest
    /// `max_len` items. Empty sequences get a zero vector.
    pub fn encode(&self, seqs: &[&[u32]]) -> Vec<f32> {
        let [_, d] = self.item_emb.dims();
        let [max_len, _] = self.pos_emb.dims();
        let device = self.item_emb.device();
        let mut out = vec![0f32; seqs.len() * d];
        // Similar lengths together, so a batch pads little.
        let mut order: Vec<usize> = (0..seqs.len()).filter(|&i| !seqs[i].is_empty()).collect();
        order.sort_by_key(|&i| seqs[i].len());
        for chunk in order.chunks(ENCODE_BATCH) {
            let windows: Vec<&[u32]> = chunk
                .iter()
                .map(|&i| &seqs[i][seqs[i].len().saturating_sub(max_len)..])
                .collect();
            let b = batch(&windows);
            let last =
                Tensor::<B, 1, Int>::from_data(TensorData::new(b.last.clone(), [b.rows]), &device);
            let h = self.hidden(&b, false).select(0, last);
            let values: Vec<f32> = h
                .into_data()
                .convert::<f32>()
                .into_vec()
                .expect("f32 hidden states");
            for (r, &i) in chunk.iter().enumerate() {
                out[i * d..(i + 1) * d].copy_from_slice(&values[r * d..(r + 1) * d]);
            }
        }
        out
    }

    /// The item embeddings as plain row-major `f32`.
    pub fn item_vectors(&self) -> Vec<f32> {
        self.item_emb
            .val()
            .into_data()
            .convert::<f32>()
            .into_vec()
            .expect("f32 embeddings")
    }
}

/// Training needs autodiff: the full-softmax loss writes its gradient out (`softmax_ce`).
impl<B: AutodiffBackend + FusedSoftmax> SasRecNet<B>
where
    B::InnerBackend: FusedSoftmax,
{
    /// The training loss of a batch (mean over its predicted slots).
    pub fn loss(
        &self,
        b: &SeqBatch,
        kind: SequenceLoss,
        negatives: usize,
        rng: &mut Rng,
    ) -> Tensor<B, 1> {
        let device = self.item_emb.device();
        let [n_items, _] = self.item_emb.dims();
        let m = b.slots.len();
        let slots = Tensor::<B, 1, Int>::from_data(TensorData::new(b.slots.clone(), [m]), &device);
        let h = self.hidden(b, true).select(0, slots);
        let items = self.item_emb.val();
        match kind {
            SequenceLoss::FullSoftmax => full_softmax_ce(h, items, &b.targets),
            SequenceLoss::SampledSoftmax => {
                let n = negatives.min(n_items).max(1);
                let negs: Vec<i32> = (0..n)
                    .map(|_| (rng.next_u64() % n_items as u64) as i32)
                    .collect();
                // A sampled negative that is the row's own target is not a negative.
                let mut hits = vec![false; m * n];
                for (r, &t) in b.targets.iter().enumerate() {
                    for (j, &g) in negs.iter().enumerate() {
                        hits[r * n + j] = g == t;
                    }
                }
                let targets = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(b.targets.clone(), [m]),
                    &device,
                );
                let negs = Tensor::<B, 1, Int>::from_data(TensorData::new(negs, [n]), &device);
                let hits = Tensor::<B, 2, Bool>::from_data(TensorData::new(hits, [m, n]), &device);
                let pos = (h.clone() * items.clone().select(0, targets)).sum_dim(1);
                let neg = h
                    .matmul(items.select(0, negs).transpose())
                    .mask_fill(hits, -1e9);
                let logp = log_softmax(Tensor::cat(vec![pos, neg], 1), 1);
                logp.narrow(1, 0, 1).mean().neg()
            }
            SequenceLoss::Bce => {
                let negs: Vec<i32> = b
                    .targets
                    .iter()
                    .map(|&t| loop {
                        let g = (rng.next_u64() % n_items as u64) as i32;
                        if g != t || n_items == 1 {
                            break g;
                        }
                    })
                    .collect();
                let targets = Tensor::<B, 1, Int>::from_data(
                    TensorData::new(b.targets.clone(), [m]),
                    &device,
                );
                let negs = Tensor::<B, 1, Int>::from_data(TensorData::new(negs, [m]), &device);
                let pos = (h.clone() * items.clone().select(0, targets)).sum_dim(1);
                let neg = (h * items.select(0, negs)).sum_dim(1);
                (log_sigmoid(pos) + log_sigmoid(neg.neg())).mean().neg()
            }
        }
    }
}

/// What every block of one forward pass shares: the batch shape, the causal mask, dropout.
struct Pass<B: Backend> {
    rows: usize,
    len: usize,
    heads: usize,
    /// `[1, 1, len, len]`, true above the diagonal: a slot sees itself and older slots only.
    causal: Tensor<B, 4, Bool>,
    dropout: f64,
    train: bool,
}

impl<B: FusedSoftmax> Block<B> {
    /// One block on `[rows * len, d]`: `Q = LN(x)`, `x = Q + MHA(Q, x, x)`, `x = LN(x)`,
    /// `x = x + FFN(x)` (the arrangement of the reference implementation).
    fn forward(&self, x: Tensor<B, 2>, pass: &Pass<B>) -> Tensor<B, 2> {
        let Pass {
            rows,
            len,
            heads,
            dropout: p,
            train,
            ..
        } = *pass;
        let [_, d] = x.dims();
        let dk = d / heads;
        let split = |t: Tensor<B, 2>| t.reshape([rows, len, heads, dk]).swap_dims(1, 2);
        let q_in = self.attn_norm.forward(x.clone());
        let q = split(self.q.forward(q_in.clone()));
        let k = split(self.k.forward(x.clone()));
        let v = split(self.v.forward(x));
        let scores = q
            .matmul(k.swap_dims(2, 3))
            .div_scalar((dk as f64).sqrt())
            .mask_fill(pass.causal.clone(), -1e9);
        let weights = dropout(softmax(scores, 3), p, train);
        let context = weights.matmul(v).swap_dims(1, 2).reshape([rows * len, d]);
        let x = q_in + self.o.forward(context);
        let x = self.ffn_norm.forward(x);
        let inner = dropout(relu(self.ffn1.forward(x.clone())), p, train);
        x + dropout(self.ffn2.forward(inner), p, train)
    }
}

/// A float of the backend as `f64` (a loss read back for the log).
pub fn scalar<B: Backend>(t: Tensor<B, 1>) -> f64 {
    t.into_scalar().elem::<f64>()
}
