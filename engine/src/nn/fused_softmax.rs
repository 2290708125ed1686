//! Softmax as one autodiff node, with its gradient written out.
//!
//! Why: burn's autodiff backend does not override `softmax`, so under training it decomposes
//! into max, subtract, exp, sum and divide, each a tracked node that allocates and sweeps the
//! tensor, and as many sweeps again backwards. SASRec's attention weights are `[batch, heads,
//! len, len]` (128 × 1 × 200 × 200 floats per block and step on MovieLens-1M). Here the forward
//! pass is the inner backend's own softmax (burn-flex's fused, row-parallel kernel on the CPU),
//! the node keeps only its output `y`, and the backward pass is `y ⊙ (g − Σ g ⊙ y)`: four sweeps
//! and no other saved tensor. Same values and gradients as the traced version (test).

use burn::backend::autodiff::checkpoint::base::Checkpointer;
use burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use burn::backend::autodiff::grads::Gradients;
use burn::backend::autodiff::ops::{unary, Backward, Ops, OpsKind};
use burn::backend::flex::FlexTensor;
use burn::backend::{Autodiff, Flex};
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{
    DType, ElementConversion, IndexingUpdateOp, Int, Tensor, TensorData, TensorPrimitive,
};

/// A backend's softmax for the networks: its own where nothing is traced; one node with a
/// written-out gradient under autodiff. And the full-softmax cross-entropy's gradient, which the
/// CPU backend computes in one pass over the logits.
pub trait FusedSoftmax: Backend {
    fn fused_softmax(x: FloatTensor<Self>, dim: usize) -> FloatTensor<Self> {
        Self::softmax(x, dim)
    }

    /// For logits `[m, n]` and one target column per row: the gradient of the mean
    /// cross-entropy with respect to the logits, `(softmax(logits) − one_hot(targets)) / m`, and
    /// the loss, `mean_r −log softmax(logits)_r[t_r]` (each probability floored at the smallest
    /// positive float, so that an underflow reads as a large loss rather than infinity). The
    /// logits are consumed. Targets are in `0..n` (the caller's invariant).
    fn softmax_ce_grad(logits: FloatTensor<Self>, targets: &[i32]) -> (FloatTensor<Self>, f64) {
        softmax_ce_grad_by_ops::<Self>(logits, targets)
    }
}

/// [`FusedSoftmax::softmax_ce_grad`] from the backend's tensor operations.
fn softmax_ce_grad_by_ops<B: Backend>(
    logits: FloatTensor<B>,
    targets: &[i32],
) -> (FloatTensor<B>, f64) {
    let m = targets.len();
    let probs = Tensor::<B, 2>::from_primitive(TensorPrimitive::Float(B::softmax(logits, 1)));
    let device = probs.device();
    let t = Tensor::<B, 2, Int>::from_data(TensorData::new(targets.to_vec(), [m, 1]), &device);
    let value = probs
        .clone()
        .gather(1, t.clone())
        .clamp_min(f32::MIN_POSITIVE)
        .log()
        .mean()
        .neg()
        .into_scalar()
        .elem::<f64>();
    let minus_one = Tensor::<B, 2>::full([m, 1], -1.0, &device);
    let g = probs
        .scatter(1, t, minus_one, IndexingUpdateOp::Add)
        .div_scalar(m as f64);
    (g.into_primitive().tensor(), value)
}

/// The CPU backend's cross-entropy gradient in place: per row (rows in parallel) one sweep for the
/// maximum, one for the exponentials and their sum, one to scale. The default's softmax, gather,
/// scatter and divide each sweep or copy the `[m, n]` matrix (about 160 MB per SASRec step on
/// MovieLens-1M), its scatter copying all of it to change one element per row.
impl FusedSoftmax for Flex {
    fn softmax_ce_grad(logits: FlexTensor, targets: &[i32]) -> (FlexTensor, f64) {
        use rayon::prelude::*;

        let shape = logits.layout().shape();
        let (m, n) = (shape[0], shape[1]);
        if logits.dtype() != DType::F32 || m != targets.len() || n == 0 {
            return softmax_ce_grad_by_ops::<Flex>(logits, targets);
        }
        let mut g = if logits.is_contiguous() && logits.layout().start_offset() == 0 {
            logits
        } else {
            logits.to_contiguous()
        };
        let inv_m = 1.0 / m as f32;
        let mut losses = vec![0f64; m];
        g.storage_mut::<f32>()[..m * n]
            .par_chunks_mut(n)
            .zip(targets.par_iter())
            .zip(losses.par_iter_mut())
            .for_each(|((row, &t), loss)| {
                let max = row.iter().fold(f32::NEG_INFINITY, |a, &b| a.max(b));
                let mut sum = 0f32;
                for v in row.iter_mut() {
                    *v = (*v - max).exp();
                    sum += *v;
                }
                let t = t as usize;
                *loss = -f64::from((row[t] / sum).max(f32::MIN_POSITIVE)).ln();
                let scale = inv_m / sum;
                for v in row.iter_mut() {
                    *v *= scale;
                }
                row[t] -= inv_m;
            });
        // Summed in row order, so that the loss does not depend on the number of threads.
        (g, losses.iter().sum::<f64>() / m as f64)
    }
}

#[cfg(feature = "cuda")]
impl FusedSoftmax for burn::backend::Cuda {}

impl<B: Backend, C: CheckpointStrategy> FusedSoftmax for Autodiff<B, C> {
    fn fused_softmax(x: FloatTensor<Self>, dim: usize) -> FloatTensor<Self> {
        #[derive(Debug)]
        struct Softmax;

        impl<B: Backend> Backward<B, 1> for Softmax {
            /// The output and the dimension.
            type State = (FloatTensor<B>, usize);

            fn backward(
                self,
                ops: Ops<Self::State, 1>,
                grads: &mut Gradients,
                _checkpointer: &mut Checkpointer,
            ) {
                let (y, dim) = ops.state;
                unary::<B, _>(ops.parents, ops.node, grads, |g| {
                    let gy = B::float_mul(g, y.clone());
                    let sum = B::float_sum_dim(gy.clone(), dim);
                    B::float_sub(gy, B::float_mul(y, sum))
                });
            }
        }

        let y = B::softmax(x.primitive.clone(), dim);
        match Softmax
            .prepare::<C>([x.node.clone()])
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((y.clone(), dim), y),
            OpsKind::UnTracked(prep) => prep.finish(y),
        }
    }
}

/// Softmax of `x` along `dim` through [`FusedSoftmax`].
pub fn softmax<B: FusedSoftmax, const D: usize>(x: Tensor<B, D>, dim: usize) -> Tensor<B, D> {
    Tensor::from_primitive(TensorPrimitive::Float(B::fused_softmax(
        x.into_primitive().tensor(),
        dim,
    )))
}

#[cfg(test)]
mod tests {
    use burn::tensor::{Distribution, TensorData};

    use super::*;

    type B = Autodiff<burn::backend::Flex>;

    #[test]
    fn values_and_gradients_match_the_traced_softmax() {
        let device = Default::default();
        let x = Tensor::<B, 4>::random([3, 2, 5, 7], Distribution::Normal(0.0, 2.0), &device);
        let w = Tensor::<B, 4>::random([3, 2, 5, 7], Distribution::Normal(0.0, 1.0), &device);
        let run = |fused: bool| {
            let x = x.clone().detach().require_grad();
            let y = if fused {
                softmax(x.clone(), 3)
            } else {
                burn::tensor::activation::softmax(x.clone(), 3)
            };
            let grads = (y.clone() * w.clone()).sum().backward();
            let g = x.grad(&grads).unwrap();
            (y.into_data(), g.into_data())
        };
        let (y1, g1) = run(true);
        let (y2, g2) = run(false);
        let close = |a: TensorData, b: TensorData| {
            let (a, b) = (a.to_vec::<f32>().unwrap(), b.to_vec::<f32>().unwrap());
            a.iter().zip(&b).all(|(p, q)| (p - q).abs() < 1e-5)
        };
        assert!(close(y1, y2));
        assert!(close(g1, g2));
    }

    #[test]
    fn the_cpu_cross_entropy_gradient_equals_the_tensor_ops_one_on_any_number_of_threads() {
        let device = Default::default();
        let (m, n) = (37usize, 53usize);
        // Wide logits, so that some probabilities underflow and the floor is exercised.
        let logits = Tensor::<Flex, 2>::random([m, n], Distribution::Normal(0.0, 30.0), &device);
        let targets: Vec<i32> = (0..m).map(|r| ((r * 7 + 3) % n) as i32).collect();
        let run = |fused: bool| {
            let x = logits.clone().into_primitive().tensor();
            let (g, loss) = if fused {
                Flex::softmax_ce_grad(x, &targets)
            } else {
                softmax_ce_grad_by_ops::<Flex>(x, &targets)
            };
            let g = Tensor::<Flex, 2>::from_primitive(TensorPrimitive::Float(g));
            (g.into_data().to_vec::<f32>().unwrap(), loss)
        };
        let (g1, loss1) = run(true);
        let (g2, loss2) = run(false);
        assert!(g1.iter().zip(&g2).all(|(p, q)| (p - q).abs() < 1e-6));
        assert!(
            (loss1 - loss2).abs() < 1e-4 * loss2.abs(),
            "{loss1} vs {loss2}"
        );
        let one = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let (g3, loss3) = one.install(|| run(true));
        assert_eq!((g1, loss1), (g3, loss3));
    }
}
