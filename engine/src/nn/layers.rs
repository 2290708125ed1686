//! Parameters initialised from our own seeded generator (the same start on every backend and in
//! every process, whatever burn's global RNG did before), and the small layers built on them.

use burn::module::{Module, Param};
use burn::tensor::backend::Backend;
use burn::tensor::{Distribution, Tensor, TensorData};

use crate::util::linalg::Rng;

/// `n` draws from N(0, std²) (Box–Muller over our SplitMix generator).
pub fn normal(rng: &mut Rng, n: usize, std: f32) -> Vec<f32> {
    let mut out = Vec::with_capacity(n + 1);
    while out.len() < n {
        let u1 = (rng.next_f32() as f64).max(1e-12);
        let u2 = rng.next_f32() as f64;
        let r = (-2.0 * u1.ln()).sqrt();
        let t = std::f64::consts::TAU * u2;
        out.push((r * t.cos()) as f32 * std);
        out.push((r * t.sin()) as f32 * std);
    }
    out.truncate(n);
    out
}

/// `n` draws from U(−bound, bound).
pub fn uniform(rng: &mut Rng, n: usize, bound: f32) -> Vec<f32> {
    (0..n)
        .map(|_| (2.0 * rng.next_f32() - 1.0) * bound)
        .collect()
}

pub fn matrix<B: Backend>(
    values: Vec<f32>,
    rows: usize,
    cols: usize,
    device: &B::Device,
) -> Param<Tensor<B, 2>> {
    Param::from_tensor(Tensor::from_data(
        TensorData::new(values, [rows, cols]),
        device,
    ))
}

/// A fully connected layer, `x W + b`, on `[tokens, d_in]`.
#[derive(Module, Debug)]
pub struct Dense<B: Backend> {
    /// `[d_in, d_out]`.
    pub weight: Param<Tensor<B, 2>>,
    pub bias: Param<Tensor<B, 1>>,
}

impl<B: Backend> Dense<B> {
    /// The given `[d_in, d_out]` row-major weights, bias zero.
    pub fn from_values(weight: Vec<f32>, d_in: usize, d_out: usize, device: &B::Device) -> Self {
        Self {
            weight: matrix(weight, d_in, d_out, device),
            bias: Param::from_tensor(Tensor::zeros([d_out], device)),
        }
    }

    pub fn forward(&self, x: Tensor<B, 2>) -> Tensor<B, 2> {
        x.matmul(self.weight.val()) + self.bias.val().unsqueeze_dim(0)
    }
}

/// Inverted dropout while training (the identity otherwise).
///
/// On the CPU the mask is drawn here ([`dropout_mask`]: each element a pure function of the
/// stream's key and its index, filled on every core, the 1/(1 − p) scale folded in) rather than
/// by the backend's `random_like(Bernoulli)`, which draws each element from ChaCha on one thread:
/// the attention weights alone are 128 × 200 × 200 floats per block and step on MovieLens-1M,
/// and those draws were 11% of a SASRec epoch (docs/benchmarks.md). On CUDA the backend draws
/// it on the device (a mask made on the host would cross the bus every step).
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, p: f64, train: bool) -> Tensor<B, D> {
    if !train || p <= 0.0 {
        return x;
    }
    if !masks_on_host::<B>() {
        let keep = x.random_like(Distribution::Bernoulli(1.0 - p));
        return (x * keep).div_scalar(1.0 - p);
    }
    let dims = x.dims();
    let n = dims.iter().product();
    let mask = Tensor::<B, D>::from_data(
        TensorData::new(dropout_mask(next_mask_key(), n, p), dims),
        &x.device(),
    );
    x * mask
}

/// Whether dropout masks are drawn on the host: every backend but CUDA's. (`B` is read only
/// when the `cuda` feature is on.)
#[cfg_attr(not(feature = "cuda"), allow(clippy::extra_unused_type_parameters))]
fn masks_on_host<B: Backend>() -> bool {
    #[cfg(feature = "cuda")]
    {
        use std::any::TypeId;
        let b = TypeId::of::<B>();
        if b == TypeId::of::<burn::backend::Cuda>()
            || b == TypeId::of::<burn::backend::Autodiff<burn::backend::Cuda>>()
        {
            return false;
        }
    }
    true
}

/// The dropout stream: the run's seed and the masks drawn since. A fit sets it where it seeds
/// the backend ([`seed_dropout`]); neural fits run one at a time, so one stream serves them.
static MASKS: std::sync::Mutex<(u64, u64)> = std::sync::Mutex::new((0, 0));

/// Restarts the dropout stream at `seed`: the same seed draws the same masks, in any process
/// and on any number of cores.
pub fn seed_dropout(seed: u64) {
    *MASKS.lock().unwrap_or_else(|e| e.into_inner()) = (seed, 0);
}

fn next_mask_key() -> u64 {
    let mut m = MASKS.lock().unwrap_or_else(|e| e.into_inner());
    let key = mix(m.0 ^ mix(m.1.wrapping_add(0x6A09_E667_F3BC_C909)));
    m.1 += 1;
    key
}

/// SplitMix64's finaliser: consecutive inputs give independent-looking outputs.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// `n` multipliers of inverted dropout: 1/(1 − p) with probability 1 − p, else 0. Element `i`
/// depends on `key` and `i` alone (a counter-based generator), so the mask is the same however
/// many threads fill it; collected straight into the vector, without zeroing it first.
pub fn dropout_mask(key: u64, n: usize, p: f64) -> Vec<f32> {
    use rayon::prelude::*;
    // Compared with the hash's top 32 bits.
    let keep_below = ((1.0 - p) * 4_294_967_296.0) as u64;
    let scale = (1.0 / (1.0 - p)) as f32;
    (0..n)
        .into_par_iter()
        .with_min_len(1 << 14)
        .map(|i| {
            let h = mix(key.wrapping_add((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15)));
            if (h >> 32) < keep_below {
                scale
            } else {
                0.0
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_draws_have_the_asked_spread() {
        let v = normal(&mut Rng::new(7), 100_001, 0.02);
        assert_eq!(v.len(), 100_001);
        let mean = v.iter().map(|&x| x as f64).sum::<f64>() / v.len() as f64;
        let var = v.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / v.len() as f64;
        assert!(mean.abs() < 5e-4, "{mean}");
        assert!((var.sqrt() - 0.02).abs() < 5e-4, "{}", var.sqrt());
        assert_eq!(v, normal(&mut Rng::new(7), 100_001, 0.02));
    }

    #[test]
    fn dropout_masks_keep_the_asked_share_and_repeat_with_the_seed() {
        let n = 1_000_003;
        let m = dropout_mask(42, n, 0.2);
        assert_eq!(m.len(), n);
        let kept = m.iter().filter(|&&v| v != 0.0).count() as f64 / n as f64;
        assert!((kept - 0.8).abs() < 0.002, "{kept}");
        assert!(m.iter().all(|&v| v == 0.0 || v == 1.25));
        // Independent of the thread count, different for another key.
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        assert_eq!(one.install(|| dropout_mask(42, n, 0.2)), m);
        assert_ne!(dropout_mask(43, n, 0.2), m);
        // The stream: a seed repeats its keys (held as a fit holds it: tests train beside this).
        let _one = crate::nn::train::one_at_a_time();
        seed_dropout(9);
        let (a, b) = (next_mask_key(), next_mask_key());
        seed_dropout(9);
        assert_eq!((next_mask_key(), next_mask_key()), (a, b));
        assert_ne!(a, b);
    }
}
