//! Cross-entropy over a whole catalog, `mean_r(logsumexp(h_r · Eᵀ) − h_r · e_{t_r})`, with its
//! gradient written out instead of traced.
//!
//! Why: the logits are `[targets, items]` (13k × 3.4k floats per SASRec step on MovieLens-1M).
//! Traced through autodiff, `log_softmax` decomposes into max, subtract, exp, sum, log and
//! subtract, each allocating and sweeping that matrix, and the backward pass sweeps it as many
//! times again, mostly on one thread. The gradient with respect to the logits is simply
//! `(softmax − one_hot) / m`, so this computes the logits once on the inner (untracked) backend,
//! turns them into that gradient in place (`FusedSoftmax::softmax_ce_grad`: three sweeps per row
//! on the CPU), and hands autodiff only the two small products `G · E` (for `h`) and `Gᵀ · h`
//! (for `E`). Same loss, same gradients (test), a few sweeps of the big matrix instead of a dozen
//! sweeps and copies.

use burn::tensor::backend::AutodiffBackend;
use burn::tensor::{Tensor, TensorData, TensorPrimitive};

use super::fused_softmax::FusedSoftmax;

/// The mean full-softmax cross-entropy of hidden states `h` (`[m, d]`) against item embeddings
/// `items` (`[n, d]`) for targets `targets` (`m` item indices). Its value is the loss and its
/// gradient flows into `h` and `items` as if the loss had been traced.
pub fn full_softmax_ce<B: AutodiffBackend>(
    h: Tensor<B, 2>,
    items: Tensor<B, 2>,
    targets: &[i32],
) -> Tensor<B, 1>
where
    B::InnerBackend: FusedSoftmax,
{
    let hi = h.clone().inner();
    let ei = items.clone().inner();
    let device = hi.device();
    let logits = hi.clone().matmul(ei.clone().transpose());
    // d loss / d logits = (softmax − one_hot) / m, and the loss value for the log.
    let (g, value) = B::InnerBackend::softmax_ce_grad(logits.into_primitive().tensor(), targets);
    let g = Tensor::<B::InnerBackend, 2>::from_primitive(TensorPrimitive::Float(g));
    let value =
        Tensor::<B::InnerBackend, 1>::from_data(TensorData::new(vec![value as f32], [1]), &device);
    let grad_h = g.clone().matmul(ei);
    let grad_items = g.transpose().matmul(hi);
    // A surrogate whose gradient is exactly (grad_h, grad_items); shifted to read as the loss.
    let surrogate =
        (h * Tensor::from_inner(grad_h)).sum() + (items * Tensor::from_inner(grad_items)).sum();
    surrogate.clone() - surrogate.detach() + Tensor::from_inner(value)
}

#[cfg(test)]
mod tests {
    use burn::backend::Autodiff;
    use burn::tensor::activation::log_softmax;
    use burn::tensor::Int;

    use super::*;
    use crate::nn::layers::normal;
    use crate::nn::Cpu;
    use crate::util::linalg::Rng;

    type B = Autodiff<Cpu>;

    fn leaf(values: Vec<f32>, rows: usize, cols: usize) -> Tensor<B, 2> {
        Tensor::<B, 2>::from_data(TensorData::new(values, [rows, cols]), &Default::default())
            .require_grad()
    }

    fn close(a: Vec<f32>, b: Vec<f32>, what: &str) {
        assert_eq!(a.len(), b.len());
        let scale = b.iter().fold(0f32, |s, x| s.max(x.abs()));
        for (i, (x, y)) in a.iter().zip(&b).enumerate() {
            assert!(
                (x - y).abs() <= 1e-5 + 1e-4 * scale,
                "{what}[{i}]: {x} vs traced {y}"
            );
        }
    }

    #[test]
    fn loss_and_gradients_equal_the_traced_log_softmax() {
        let (m, n, d) = (37, 53, 8);
        let mut rng = Rng::new(11);
        let hv = normal(&mut rng, m * d, 1.5);
        let ev = normal(&mut rng, n * d, 1.5);
        let targets: Vec<i32> = (0..m).map(|r| ((r * 7 + 3) % n) as i32).collect();

        let (h, e) = (leaf(hv.clone(), m, d), leaf(ev.clone(), n, d));
        let ours = full_softmax_ce(h.clone(), e.clone(), &targets);
        let grads = ours.backward();
        let (gh, ge) = (h.grad(&grads).unwrap(), e.grad(&grads).unwrap());

        let (h2, e2) = (leaf(hv, m, d), leaf(ev, n, d));
        let t = Tensor::<B, 2, Int>::from_data(
            TensorData::new(targets.clone(), [m, 1]),
            &Default::default(),
        );
        let traced = log_softmax(h2.clone().matmul(e2.clone().transpose()), 1)
            .gather(1, t)
            .mean()
            .neg();
        let grads2 = traced.backward();
        let (gh2, ge2) = (h2.grad(&grads2).unwrap(), e2.grad(&grads2).unwrap());

        let v = |t: Tensor<Cpu, 1>| t.into_data().convert::<f32>().into_vec::<f32>().unwrap();
        let v2 = |t: Tensor<Cpu, 2>| t.into_data().convert::<f32>().into_vec::<f32>().unwrap();
        close(v(ours.inner()), v(traced.inner()), "loss");
        close(v2(gh), v2(gh2), "d loss / d h");
        close(v2(ge), v2(ge2), "d loss / d items");
    }
}
