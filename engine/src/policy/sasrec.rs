//! `type: sasrec`: a causal self-attention encoder over each user's latest items. The user's
//! vector is the encoder's output at their newest item; a dot product with the (shared) item
//! embeddings ranks the catalog. Training runs on the device the run chose (burn `flex` on the
//! CPU, CUDA in a GPU build); serving encodes on the CPU.

use std::path::Path;

use super::{MemoryEstimate, Policy, Scorer, TrainContext, TrainedPolicy, Vectors};
use crate::config::SasrecConfig;
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::nn::embeddings::{restore, Embeddings};
use crate::nn::sasrec::{NetConfig, SasRecNet};
use crate::nn::{self, Cpu, TrainingSummary};
use crate::store;

const WEIGHTS: &str = "weights.mpk";

pub struct Sasrec {
    config: SasrecConfig,
}

impl Sasrec {
    pub fn new(config: SasrecConfig) -> Self {
        Self { config }
    }

    fn fit_spec(&self, n_items: usize) -> nn::sasrec_fit::SasrecFit<'_> {
        let c = &self.config;
        nn::sasrec_fit::SasrecFit {
            name: &c.name,
            net: net_config(c, n_items),
            fit: c.fit(),
            loss: c.loss,
            negatives: c
                .negatives
                .unwrap_or_else(crate::config::raw_defaults::negatives),
            windows: c.windows,
        }
    }
}

fn net_config(c: &SasrecConfig, n_items: usize) -> NetConfig {
    NetConfig {
        n_items,
        max_len: c.max_seq_len,
        hidden: c.hidden,
        layers: c.layers,
        heads: c.heads,
        dropout: c.dropout,
    }
}

impl Policy for Sasrec {
    fn name(&self) -> &str {
        &self.config.name
    }

    fn memory(&self, data: Option<Interactions<'_>>) -> Result<MemoryEstimate> {
        let spec = self.fit_spec(data.map_or(0, |d| d.n_items()));
        Ok(nn::sasrec_fit::memory(&spec, data))
    }

    fn train(
        &self,
        data: Interactions<'_>,
        ctx: &TrainContext<'_>,
    ) -> Result<Box<dyn TrainedPolicy>> {
        let c = &self.config;
        if data.n_items() == 0 {
            return Err(Error::invalid(
                "fetch.items",
                format!("{}: the catalog is empty", c.name),
            ));
        }
        let spec = self.fit_spec(data.n_items());
        let mut fitted = nn::on_device!(
            ctx.device.compute,
            nn::sasrec_fit::fit_sasrec,
            &spec,
            data,
            ctx
        )?;
        fitted.summary.device = ctx.device.reason.clone();
        let mut model = TrainedSasrec::from_weights(c, data.n_items(), fitted.weights)?;
        model.summary = Some(fitted.summary);
        model.refit(data)?;
        Ok(Box::new(model))
    }
}

/// Trained weights (for encoding new sequences), each user's vector over their history, and the
/// item embeddings.
pub struct TrainedSasrec {
    net: SasRecNet<Cpu>,
    weights: Vec<u8>,
    vectors: Embeddings,
    summary: Option<TrainingSummary>,
}

impl TrainedSasrec {
    fn from_weights(config: &SasrecConfig, n_items: usize, weights: Vec<u8>) -> Result<Self> {
        // An empty network of the right shape, then the recorded weights over it.
        let empty = SasRecNet::<Cpu>::empty(&net_config(config, n_items), &Default::default());
        let net = restore(empty, &weights, &config.name)?;
        let items = net.item_vectors();
        Ok(Self {
            net,
            weights,
            vectors: Embeddings {
                dim: config.hidden,
                users: Vec::new(),
                items,
            },
            summary: None,
        })
    }

    pub fn load(config: &SasrecConfig, dir: &Path) -> Result<Self> {
        let path = dir.join(WEIGHTS);
        let weights = std::fs::read(&path)
            .map_err(|e| Error::storage(format!("reading {}", path.display()), e))?;
        let vectors = Embeddings::load(dir, config.hidden)?;
        let mut model = Self::from_weights(config, vectors.n_items(), weights)?;
        model.vectors = vectors;
        Ok(model)
    }
}

impl Scorer for TrainedSasrec {
    fn n_items(&self) -> usize {
        self.vectors.n_items()
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        self.vectors.score_users(users, out);
    }
}

impl TrainedPolicy for TrainedSasrec {
    fn kind(&self) -> &'static str {
        "sasrec"
    }

    /// SASRec needs no new weights for a longer history: the encoder reads it. A refit
    /// re-encodes every user's visible items.
    fn refit(&mut self, data: Interactions<'_>) -> Result<()> {
        self.vectors.users = nn::sasrec_fit::encode_users(&self.net, data);
        Ok(())
    }

    fn save(&self, dir: &Path) -> Result<()> {
        store::write_atomic(&dir.join(WEIGHTS), &self.weights)?;
        self.vectors.save(dir)
    }

    fn score_is_dot(&self) -> bool {
        true
    }

    fn vectors(&self) -> Option<Vectors<'_>> {
        Some(self.vectors.vectors())
    }

    fn encode_sequence(&self, items: &[u32]) -> Option<Vec<f32>> {
        let n = self.n_items() as u32;
        let known: Vec<u32> = items.iter().copied().filter(|&i| i < n).collect();
        (!known.is_empty()).then(|| self.net.encode(&[&known]))
    }

    fn training_summary(&self) -> Option<&TrainingSummary> {
        self.summary.as_ref()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::config::SequenceLoss;
    use crate::core::DeviceChoice;
    use crate::dataset::{Cut, Dataset, FetchStats, IdMap, Target};
    use crate::progress::NoProgress;

    /// Users walk a cycle of `n_items` (the next item is always the previous one plus one).
    fn cycles(n_users: usize, n_items: usize, len: usize) -> Dataset {
        let mut seq_items = Vec::new();
        for u in 0..n_users {
            seq_items.extend((0..len).map(|t| ((u * 7 + t) % n_items) as u32));
        }
        let n = seq_items.len();
        Dataset {
            users: IdMap::from_ids((0..n_users).map(|u| format!("u{u:03}")).collect()),
            items: IdMap::from_ids((0..n_items).map(|i| format!("i{i:03}")).collect()),
            event_types: vec!["event".into()],
            offsets: (0..=n_users).map(|u| u * len).collect(),
            seq_items,
            seq_times: (0..n as i64).collect(),
            seq_types: vec![0; n],
            seq_values: vec![1.0; n],
            item_attributes: None,
            user_attributes: None,
            impressions: None,
            stats: FetchStats::default(),
        }
    }

    fn config(loss: SequenceLoss, epochs: usize) -> SasrecConfig {
        SasrecConfig {
            name: "sasrec".into(),
            max_seq_len: 8,
            hidden: 16,
            layers: 1,
            heads: 2,
            dropout: 0.1,
            loss,
            negatives: None,
            windows: Default::default(),
            epochs,
            patience: 0,
            batch_size: 16,
            learning_rate: 0.01,
            weight_decay: 0.0,
            epsilon: 1e-8,
            learning_rate_decay: 1.0,
            tuning: None,
        }
    }

    fn train(
        ds: &Dataset,
        c: &SasrecConfig,
        cancel: &AtomicBool,
    ) -> Result<Box<dyn TrainedPolicy>> {
        let validate =
            |m: &dyn crate::core::Scorer| crate::eval::evaluate(m, ds, Target::Valid, None);
        let ctx = TrainContext {
            progress: &NoProgress,
            seed: 3,
            cancel,
            log: &|_| {},
            device: DeviceChoice::cpu("cpu (test)"),
            validate: Some(&validate),
            pair_scores: None,
        };
        Sasrec::new(c.clone()).train(ds.view(Cut::Train), &ctx)
    }

    /// What a training run reports, in order.
    #[derive(Default)]
    struct Recorded(std::sync::Mutex<Vec<String>>);

    impl crate::Progress for Recorded {
        fn start(&self, label: &str, total: Option<u64>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {label} {total:?}"));
        }
        fn inc(&self, n: u64) {
            self.0.lock().unwrap().push(format!("inc {n}"));
        }
        fn message(&self, msg: &str) {
            self.0.lock().unwrap().push(format!("message {msg}"));
        }
        fn finish(&self) {
            self.0.lock().unwrap().push("finish".into());
        }
    }

    /// Each step of an epoch advances the bar and shows the epoch's running loss.
    #[test]
    fn each_step_reports_the_running_loss() {
        let ds = cycles(32, 20, 6);
        let never = AtomicBool::new(false);
        let recorded = Recorded::default();
        let ctx = TrainContext {
            progress: &recorded,
            seed: 3,
            cancel: &never,
            log: &|_| {},
            device: DeviceChoice::cpu("cpu (test)"),
            validate: None,
            pair_scores: None,
        };
        Sasrec::new(config(SequenceLoss::FullSoftmax, 2))
            .train(ds.view(Cut::Train), &ctx)
            .unwrap();
        let lines = recorded.0.into_inner().unwrap();
        let first = lines
            .iter()
            .position(|l| l.starts_with("start sasrec epoch 1/2 Some("))
            .unwrap_or_else(|| panic!("{lines:?}"));
        let end = first + lines[first..].iter().position(|l| l == "finish").unwrap();
        let epoch = &lines[first + 1..end];
        let steps = epoch.iter().filter(|l| *l == "inc 1").count();
        let losses: Vec<f64> = epoch
            .iter()
            .filter_map(|l| l.strip_prefix("message loss "))
            .map(|x| x.parse().unwrap())
            .collect();
        assert!(steps > 1, "{epoch:?}");
        assert_eq!(losses.len(), steps, "{epoch:?}");
        assert!(
            losses.iter().all(|x| x.is_finite() && *x > 0.0),
            "{losses:?}"
        );
        assert_eq!(
            lines[first],
            format!("start sasrec epoch 1/2 Some({steps})")
        );
    }

    #[test]
    fn every_loss_learns_a_cycle_and_runs_reproduce() {
        let ds = cycles(64, 60, 12);
        let never = AtomicBool::new(false);
        for loss in [
            SequenceLoss::FullSoftmax,
            SequenceLoss::SampledSoftmax,
            SequenceLoss::Bce,
        ] {
            let model = train(&ds, &config(loss, 30), &never).unwrap();
            let m = crate::eval::evaluate(model.as_ref(), &ds, Target::Valid, None);
            assert!(m.hit_rate > 0.8, "{loss:?}: HR@10 {}", m.hit_rate);
        }
        let c = config(SequenceLoss::FullSoftmax, 2);
        let a = train(&ds, &c, &never).unwrap();
        let b = train(&ds, &c, &never).unwrap();
        let (va, vb) = (a.vectors().unwrap(), b.vectors().unwrap());
        assert_eq!(va.items, vb.items, "same seed, different item embeddings");
        assert_eq!(va.users, vb.users);
    }

    #[test]
    fn saved_weights_load_to_the_same_scores_and_encode_histories_alike() {
        let ds = cycles(32, 12, 10);
        let never = AtomicBool::new(false);
        let model = train(&ds, &config(SequenceLoss::FullSoftmax, 2), &never).unwrap();
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path()).unwrap();
        let loaded =
            TrainedSasrec::load(&config(SequenceLoss::FullSoftmax, 2), dir.path()).unwrap();
        let mut a = vec![0f32; 2 * 12];
        let mut b = vec![0f32; 2 * 12];
        model.score_users(&[0, 5], &mut a);
        loaded.score_users(&[0, 5], &mut b);
        assert_eq!(a, b);
        // The encoder over a user's training history gives their stored vector.
        let history = ds.view(Cut::Train).items(5);
        let encoded = loaded.encode_sequence(history).unwrap();
        for (x, y) in encoded.iter().zip(loaded.vectors().unwrap().user(5)) {
            assert!((x - y).abs() < 1e-4, "{x} vs {y}");
        }
        assert!(loaded.encode_sequence(&[]).is_none());
    }

    #[test]
    fn a_cancelled_run_stops_with_cancelled() {
        let ds = cycles(16, 10, 6);
        let cancel = AtomicBool::new(true);
        let e = train(&ds, &config(SequenceLoss::FullSoftmax, 5), &cancel)
            .err()
            .unwrap();
        assert!(matches!(e, Error::Cancelled), "{e}");
    }
}
