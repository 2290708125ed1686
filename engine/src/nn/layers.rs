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

/// Inverted dropout while training (the identity otherwise). The mask comes from the backend's
/// generator, which a run seeds once before its first step.
pub fn dropout<B: Backend, const D: usize>(x: Tensor<B, D>, p: f64, train: bool) -> Tensor<B, D> {
    if !train || p <= 0.0 {
        return x;
    }
    let keep = x.random_like(Distribution::Bernoulli(1.0 - p));
    (x * keep).div_scalar(1.0 - p)
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
}
