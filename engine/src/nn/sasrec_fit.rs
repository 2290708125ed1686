//! SASRec's training run: dense sequence batches into the shared epoch loop, candidates scored
//! by encoding every user's history.

use burn::tensor::backend::AutodiffBackend;

use super::embeddings::Embeddings;
use super::fused_softmax::FusedSoftmax;
use super::sasrec::{NetConfig, SasRecNet};
use super::sequences::{BatchShape, TrainingSequences};
use super::train::{fit, loop_memory, one_at_a_time, Fitted, Loop, Validation};
use crate::config::{FitConfig, SequenceLoss, SequenceWindows};
use crate::core::{MemoryEstimate, TrainContext};
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::util::linalg::Rng;

/// What the loop needs from a policy besides the data.
pub struct SasrecFit<'a> {
    pub name: &'a str,
    pub net: NetConfig,
    pub fit: FitConfig,
    pub loss: SequenceLoss,
    pub negatives: usize,
    pub windows: SequenceWindows,
}

/// `[rows·len, hidden]` tensors one block keeps for its backward pass and the gradients that
/// pass makes (norms, projections, residuals, feed-forward, dropout masks), and those of the
/// embedding stage.
const ACTIVATIONS_PER_LAYER: f64 = 20.0;
const ACTIVATIONS_EMBEDDING: f64 = 6.0;
/// `[rows, heads, len, len]` maps per block: scores, masked, softmax, dropout mask and output,
/// and the gradient of one of them during the backward pass.
const ATTENTION_MAPS_PER_LAYER: f64 = 6.0;
/// `[targets, items]` matrices of the full softmax: probabilities, the gradient written from
/// them, and one transient copy (`softmax_ce`).
const FULL_SOFTMAX_COPIES: f64 = 3.0;
/// Sequences a validation pass encodes at once (`SasRecNet::encode`).
const ENCODE_ROWS: f64 = 256.0;

/// The peak memory of [`fit_sasrec`] on `data` (or of the settings' worst case without it): the
/// parameters with their optimiser state and the epoch's batches throughout, plus the larger of
/// a training step and a validation pass (they do not overlap).
pub fn memory(s: &SasrecFit<'_>, data: Option<Interactions<'_>>) -> MemoryEstimate {
    let net = &s.net;
    let (d, heads, layers) = (net.hidden as f64, net.heads as f64, net.layers as f64);
    let items = net.n_items as f64;
    // An epoch's batches hold every sequence padded (item ids), its slots and targets, and
    // its row end.
    let (users, batch, epoch) = match data {
        Some(data) => {
            let seqs = TrainingSequences::new(data, net.max_len, s.windows);
            let b = seqs.largest_batch(s.fit.batch_size);
            let n = seqs.n_sequences();
            (data.n_users(), b, n * (b.len + 1) + 2 * seqs.n_targets())
        }
        None => (0, BatchShape::full(s.fit.batch_size, net.max_len), 0),
    };
    let (mut e, mut validation) = (
        MemoryEstimate::new(data.is_some()),
        MemoryEstimate::new(data.is_some()),
    );
    let params = items * d + net.max_len as f64 * d + layers * (6.0 * d * d + 10.0 * d) + 2.0 * d;
    loop_memory(
        &mut e,
        &mut validation,
        params,
        net.n_items,
        &["hidden", "layers"],
    );
    e.floats("the epoch's batches", epoch as f64, &["max_seq_len"]);

    let (rows, len, targets) = (batch.rows as f64, batch.len as f64, batch.targets);
    let mut step = MemoryEstimate::new(data.is_some());
    step.floats(
        "activations",
        rows * len * d * (ACTIVATIONS_PER_LAYER * layers + ACTIVATIONS_EMBEDDING),
        &["batch_size", "max_seq_len", "hidden", "layers"],
    );
    step.floats(
        "attention maps",
        rows * heads * len * len * ATTENTION_MAPS_PER_LAYER * layers,
        &["max_seq_len", "batch_size", "heads", "layers"],
    );
    // The item embeddings' gradients, dense: one from the input lookup, one from the output.
    step.floats("embedding gradients", 2.0 * items * d, &["hidden"]);
    match s.loss {
        SequenceLoss::FullSoftmax => step.floats(
            "full-softmax logits",
            FULL_SOFTMAX_COPIES * targets * items,
            &["batch_size", "max_seq_len", "loss"],
        ),
        SequenceLoss::SampledSoftmax => step.floats(
            "sampled logits",
            4.0 * targets * s.negatives.min(net.n_items.max(1)) as f64,
            &["negatives", "batch_size"],
        ),
        SequenceLoss::Bce => step.floats(
            "negative scores",
            6.0 * targets * d,
            &["batch_size", "max_seq_len"],
        ),
    }
    let encode_len = len.min(net.max_len as f64);
    validation.floats(
        "validation encoding",
        ENCODE_ROWS * (3.0 * heads * encode_len * encode_len + 8.0 * encode_len * d)
            + users as f64 * d,
        &["max_seq_len"],
    );
    e.add_larger(step, validation);
    e
}

/// Trains a SASRec network on `data` with backend `B`.
pub fn fit_sasrec<B: AutodiffBackend + FusedSoftmax>(
    device: B::Device,
    s: &SasrecFit<'_>,
    data: Interactions<'_>,
    ctx: &TrainContext<'_>,
) -> Result<Fitted>
where
    B::InnerBackend: FusedSoftmax,
{
    let _one = one_at_a_time();
    B::seed(&device, ctx.seed);
    super::layers::seed_dropout(ctx.seed);
    let mut rng = Rng::new(ctx.seed ^ 0x5A5_2EC);
    let net = SasRecNet::<B>::new(&s.net, &mut rng, &device);
    let seqs = TrainingSequences::new(data, s.net.max_len, s.windows);
    if seqs.n_sequences() == 0 {
        return Err(Error::invalid(
            "fetch.events",
            format!(
                "{}: no user has two events to learn a next item from",
                s.name
            ),
        ));
    }
    (ctx.log)(format!(
        "{}: {} sequences, {} next-item targets, {} batches per epoch, loss {:?}",
        s.name,
        seqs.n_sequences(),
        seqs.n_targets(),
        seqs.n_sequences().div_ceil(s.fit.batch_size),
        s.loss
    ));
    fit(
        Loop {
            name: s.name,
            fit: &s.fit,
            data,
            ctx,
            rng,
        },
        net,
        |rng| seqs.epoch(s.fit.batch_size, rng),
        |net, b, rng| net.loss(b, s.loss, s.negatives, rng),
        Validation::Ndcg(Box::new(|inner: &SasRecNet<B::InnerBackend>| Embeddings {
            dim: s.net.hidden,
            users: encode_users(inner, data),
            items: inner.item_vectors(),
        })),
    )
}

/// Every user's vector from their visible history.
pub fn encode_users<B: FusedSoftmax>(net: &SasRecNet<B>, data: Interactions<'_>) -> Vec<f32> {
    let seqs: Vec<&[u32]> = (0..data.n_users() as u32).map(|u| data.items(u)).collect();
    net.encode(&seqs)
}
