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
use burn::backend::Autodiff;
use burn::tensor::backend::Backend;
use burn::tensor::ops::FloatTensor;
use burn::tensor::{Tensor, TensorPrimitive};

/// A backend's softmax for the networks: its own where nothing is traced; one node with a
/// written-out gradient under autodiff.
pub trait FusedSoftmax: Backend {
    fn fused_softmax(x: FloatTensor<Self>, dim: usize) -> FloatTensor<Self> {
        Self::softmax(x, dim)
    }
}

impl FusedSoftmax for burn::backend::Flex {}

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
}
