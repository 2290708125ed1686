//! What a neural policy keeps after training: user and item vectors (scored by dot product,
//! saved beside the weights) and the weights record that rebuilds its network on the CPU.

use std::path::Path;

use burn::module::Module;
use burn::record::{FullPrecisionSettings, NamedMpkBytesRecorder, Recorder};

use super::Cpu;
use crate::core::{Scorer, Vectors};
use crate::error::{Error, Result};
use crate::store;

/// Row-major user and item vectors of one dimension.
pub struct Embeddings {
    pub dim: usize,
    pub users: Vec<f32>,
    pub items: Vec<f32>,
}

impl Embeddings {
    pub fn vectors(&self) -> Vectors<'_> {
        Vectors {
            dim: self.dim,
            users: &self.users,
            items: &self.items,
        }
    }

    pub fn n_items(&self) -> usize {
        self.items.len() / self.dim
    }

    /// `out` = the users' vectors against every item vector (one row per user).
    pub fn score_users(&self, users: &[u32], out: &mut [f32]) {
        let v = self.vectors();
        let mut rows = Vec::with_capacity(users.len() * v.dim);
        for &u in users {
            rows.extend_from_slice(v.user(u));
        }
        crate::util::linalg::scores(&rows, v.items, v.dim, out);
    }

    pub fn save(&self, dir: &Path) -> Result<()> {
        store::write_f32s(&dir.join("user_vectors.f32"), &self.users)?;
        store::write_f32s(&dir.join("item_vectors.f32"), &self.items)
    }

    /// What [`Self::save`] wrote, checked against the declared dimension.
    pub fn load(dir: &Path, dim: usize) -> Result<Self> {
        let items = store::read_f32s(&dir.join("item_vectors.f32"))?;
        let users = store::read_f32s(&dir.join("user_vectors.f32"))?;
        if dim == 0 || items.len() % dim != 0 || users.len() % dim != 0 {
            return Err(Error::Internal(format!(
                "the vectors in {} do not have dimension {dim}",
                dir.display()
            )));
        }
        Ok(Self { dim, users, items })
    }
}

/// A network's weights as bytes (a burn record at full precision), whatever the backend.
pub fn record<B: burn::tensor::backend::Backend, M: Module<B>>(
    net: M,
    name: &str,
) -> Result<Vec<u8>> {
    NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .record(net.into_record(), ())
        .map_err(|e| Error::Internal(format!("recording {name} weights: {e}")))
}

/// `net` (a fresh network of the right shape) with the recorded weights, on the CPU.
pub fn restore<M: Module<Cpu>>(net: M, weights: &[u8], name: &str) -> Result<M> {
    let record = NamedMpkBytesRecorder::<FullPrecisionSettings>::default()
        .load(weights.to_vec(), &Default::default())
        .map_err(|e| Error::Internal(format!("reading {name} weights: {e}")))?;
    Ok(net.load_record(record))
}

/// A candidate during training: validation scores it like any trained policy.
impl Scorer for Embeddings {
    fn n_items(&self) -> usize {
        Embeddings::n_items(self)
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        Embeddings::score_users(self, users, out)
    }
}
