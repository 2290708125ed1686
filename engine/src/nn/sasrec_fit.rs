//! SASRec's training run: dense sequence batches into the shared epoch loop, candidates scored
//! by encoding every user's history.

use burn::tensor::backend::{AutodiffBackend, Backend};

use super::embeddings::Embeddings;
use super::sasrec::{NetConfig, SasRecNet};
use super::sequences::TrainingSequences;
use super::train::{fit, one_at_a_time, Fitted, Loop};
use crate::config::{FitConfig, SequenceLoss};
use crate::core::TrainContext;
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
}

/// Trains a SASRec network on `data` with backend `B`.
pub fn fit_sasrec<B: AutodiffBackend>(
    device: B::Device,
    s: &SasrecFit<'_>,
    data: Interactions<'_>,
    ctx: &TrainContext<'_>,
) -> Result<Fitted> {
    let _one = one_at_a_time();
    B::seed(&device, ctx.seed);
    let mut rng = Rng::new(ctx.seed ^ 0x5A5_2EC);
    let net = SasRecNet::<B>::new(&s.net, &mut rng, &device);
    let seqs = TrainingSequences::new(data, s.net.max_len);
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
        |inner| Embeddings {
            dim: s.net.hidden,
            users: encode_users(inner, data),
            items: inner.item_vectors(),
        },
    )
}

/// Every user's vector from their visible history.
pub fn encode_users<B: Backend>(net: &SasRecNet<B>, data: Interactions<'_>) -> Vec<f32> {
    let seqs: Vec<&[u32]> = (0..data.n_users() as u32).map(|u| data.items(u)).collect();
    net.encode(&seqs)
}
