//! The epoch loop every neural policy shares: seeded shuffles, AdamW steps (the rate decaying per
//! epoch when asked), the running loss on the progress bar after each step, per-epoch status
//! (loss, validation NDCG@10, time), early stopping that keeps the best epoch's weights, and
//! cancellation between steps.

use std::sync::Mutex;
use std::time::Instant;

use burn::module::AutodiffModule;
use burn::optim::{AdamWConfig, GradientsParams, Optimizer};
use burn::tensor::backend::AutodiffBackend;

use super::embeddings::Embeddings;
use super::sasrec::scalar;
use crate::config::FitConfig;
use crate::core::{EpochPoint, MemoryEstimate, TrainContext, TrainingSummary};
use crate::dataset::{Cut, Interactions};
use crate::error::{Error, Result};
use crate::util::linalg::Rng;

/// One neural training at a time per process: the CPU backend's random generator (dropout) is
/// global, so two runs at once would draw from each other's stream and lose reproducibility;
/// and one run already keeps every core busy.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

/// Per parameter, what the loop holds: weights, gradients, AdamW's two moments and the best
/// epoch's copy.
const PARAMETER_COPIES: f64 = 5.0;

/// The loop's own share of a network's training memory: `params` parameters with their
/// gradients, optimiser state and best copy (in `e`, for the whole run), and the ranking of a
/// validation pass over `items` (in `validation`, which does not overlap a training step).
pub fn loop_memory(
    e: &mut MemoryEstimate,
    validation: &mut MemoryEstimate,
    params: f64,
    items: usize,
    settings: &'static [&'static str],
) {
    e.floats(
        "parameters and optimiser state",
        PARAMETER_COPIES * params,
        settings,
    );
    validation.floats(
        "validation ranking",
        crate::eval::ranking_floats(items),
        &[],
    );
}

/// The outcome of a fit: the best weights as a burn record (backend-independent bytes).
pub struct Fitted {
    pub weights: Vec<u8>,
    pub summary: TrainingSummary,
}

/// What [`fit`] needs besides the network and its closures.
pub struct Loop<'a, 'c> {
    pub name: &'a str,
    pub fit: &'a FitConfig,
    pub data: Interactions<'a>,
    pub ctx: &'a TrainContext<'c>,
    pub rng: Rng,
}

/// How a candidate is judged after each epoch, for early stopping and the best weights.
pub enum Validation<'v, I> {
    /// NDCG@10 on the validation target of the user and item vectors the probe gives (higher
    /// is better), through the context's validator: only when `data` is the training cut and
    /// the context can validate; otherwise every epoch runs and the last one is kept.
    Ndcg(Box<dyn Fn(&I) -> Embeddings + 'v>),
    /// A loss on held-out rows (lower is better), named for the status log.
    Loss(&'static str, Box<dyn Fn(&I) -> f64 + 'v>),
}

/// The epoch loop: `epoch` makes an epoch's batches, `loss` a batch's loss, `validation` how a
/// candidate is judged. The caller holds [`one_at_a_time`] and seeded the backend.
pub fn fit<B, M, T>(
    mut l: Loop<'_, '_>,
    mut net: M,
    mut epoch_batches: impl FnMut(&mut Rng) -> Vec<T>,
    loss_of: impl Fn(&M, &T, &mut Rng) -> burn::tensor::Tensor<B, 1>,
    validation: Validation<'_, M::InnerModule>,
) -> Result<Fitted>
where
    B: AutodiffBackend,
    M: AutodiffModule<B>,
{
    let (name, f, ctx) = (l.name, l.fit, l.ctx);
    let mut optim = AdamWConfig::new()
        .with_epsilon(f.epsilon as f32)
        .with_weight_decay(f.weight_decay as f32)
        .init::<B, M>();
    let validate = ctx.validate.filter(|_| l.data.cut == Cut::Train);
    let start = Instant::now();
    let mut best: Option<(f64, usize, M::InnerModule)> = None;
    let mut epochs = 0;
    let mut stepping = 0.0;
    let mut history = Vec::new();
    for epoch in 1..=f.epochs {
        let epoch_start = Instant::now();
        let batches = epoch_batches(&mut l.rng);
        ctx.progress.start(
            &format!("{name} epoch {epoch}/{}", f.epochs),
            Some(batches.len() as u64),
        );
        let mut loss_sum = 0.0;
        let learning_rate = f.learning_rate * f.learning_rate_decay.powi(epoch as i32 - 1);
        for (step, b) in batches.iter().enumerate() {
            ctx.check_cancelled()?;
            let loss = loss_of(&net, b, &mut l.rng);
            let grads = loss.backward();
            loss_sum += scalar(loss);
            let grads = GradientsParams::from_grads(grads, &net);
            net = optim.step(learning_rate, net, grads);
            ctx.progress.inc(1);
            // The epoch's running loss beside the bar (its steps per second and time left).
            ctx.progress
                .message(&format!("loss {:.4}", loss_sum / (step + 1) as f64));
        }
        ctx.progress.finish();
        stepping += epoch_start.elapsed().as_secs_f64();
        let loss = loss_sum / batches.len().max(1) as f64;
        if !loss.is_finite() {
            return Err(Error::invalid(
                "learning_rate",
                format!(
                "{name}: the training loss became {loss} at epoch {epoch}; lower `learning_rate`"
            ),
            ));
        }
        epochs = epoch;
        let inner = net.valid();
        // The epoch's figure, oriented so that higher is better.
        let figure = match &validation {
            Validation::Ndcg(probe) => match validate {
                Some(v) => {
                    ctx.check_cancelled()?;
                    Some(v(&probe(&inner)).ndcg)
                }
                None => None,
            },
            Validation::Loss(_, loss) => {
                ctx.check_cancelled()?;
                Some(-loss(&inner))
            }
        };
        let improved = match (&best, figure) {
            (Some((b, _, _)), Some(n)) => n > *b,
            _ => true,
        };
        if improved {
            best = Some((figure.unwrap_or(f64::NAN), epoch, inner));
        }
        let (best_figure, best_epoch, _) = best.as_ref().expect("set above");
        let seconds = epoch_start.elapsed().as_secs_f64();
        let (what, shown, best_shown) = match &validation {
            Validation::Ndcg(_) => ("NDCG@10", figure, *best_figure),
            Validation::Loss(what, _) => (*what, figure.map(|x| -x), -best_figure),
        };
        let line = match shown {
            Some(n) => format!(
                "{name}: epoch {epoch}/{} loss {loss:.4} validation {what} {n:.4} (best {best_shown:.4} at epoch {best_epoch}) {seconds:.1}s",
                f.epochs
            ),
            None => format!("{name}: epoch {epoch}/{} loss {loss:.4} {seconds:.1}s", f.epochs),
        };
        ctx.progress.message(&line);
        (ctx.log)(line);
        history.push(EpochPoint {
            epoch,
            loss,
            valid: shown,
            seconds,
        });
        if figure.is_some() && f.patience > 0 && epoch - best_epoch >= f.patience {
            (ctx.log)(format!(
                "{name}: stopping early, no better validation {what} for {} epochs; keeping epoch {best_epoch}",
                f.patience
            ));
            break;
        }
    }
    let (best_figure, best_epoch, best_net) = best.expect("at least one epoch");
    let (best_ndcg, measure) = match validation {
        Validation::Ndcg(_) => (best_figure, "NDCG@10"),
        Validation::Loss(what, _) => (f64::NAN, what),
    };
    let validated = history.iter().any(|p| p.valid.is_some());
    let weights = super::embeddings::record(best_net, name)?;
    Ok(Fitted {
        weights,
        summary: TrainingSummary {
            device: String::new(),
            epochs,
            best_epoch,
            best_valid_ndcg: best_ndcg.is_finite().then_some(best_ndcg),
            seconds_per_epoch: start.elapsed().as_secs_f64() / epochs.max(1) as f64,
            train_seconds_per_epoch: stepping / epochs.max(1) as f64,
            validation: validated.then(|| measure.to_string()),
            history,
        },
    })
}

/// Holds the one-neural-training-per-process lock for a run.
pub fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
