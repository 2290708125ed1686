//! `type: popular`: items ranked by how often they were interacted with, optionally within a
//! time window and with exponential time decay. The same for every user; also the fallback for
//! unknown users and the reference every evaluation reports.

use std::path::Path;

use super::{MemoryEstimate, Policy, Scorer, TrainContext, TrainedPolicy};
use crate::config::PopularConfig;
use crate::dataset::Interactions;
use crate::error::Result;
use crate::store;

pub struct Popular {
    config: PopularConfig,
}

impl Popular {
    pub fn new(config: PopularConfig) -> Self {
        Self { config }
    }

    /// Plain counts over all time: the reference policy of every evaluation.
    pub fn reference() -> Self {
        Self::new(PopularConfig {
            name: "popularity".into(),
            window_days: None,
            half_life_days: None,
            tuning: None,
        })
    }
}

pub struct TrainedPopular {
    config: PopularConfig,
    scores: Vec<f32>,
}

impl TrainedPopular {
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    pub fn load(config: &PopularConfig, dir: &Path) -> Result<Self> {
        let scores = store::read_f32s(&dir.join("scores.f32"))?;
        Ok(Self {
            config: config.clone(),
            scores,
        })
    }

    fn count(config: &PopularConfig, data: Interactions<'_>) -> Vec<f32> {
        let now = data.max_time();
        let window = config.window_days.map(|d| (d * 86_400.0) as i64);
        let half_life = config.half_life_days.map(|d| d * 86_400.0);
        let mut scores = vec![0f32; data.n_items()];
        for u in 0..data.n_users() as u32 {
            for (&item, &t) in data.items(u).iter().zip(data.times(u)) {
                let age = (now - t).max(0);
                if window.is_some_and(|w| age > w) {
                    continue;
                }
                let w = match half_life {
                    Some(h) => 0.5f64.powf(age as f64 / h) as f32,
                    None => 1.0,
                };
                scores[item as usize] += w;
            }
        }
        scores
    }
}

impl Policy for Popular {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// One score per item.
    fn memory(&self, data: Option<Interactions<'_>>) -> Result<MemoryEstimate> {
        let mut e = MemoryEstimate::new(data.is_some());
        e.floats("scores", data.map_or(0, |d| d.n_items()) as f64, &[]);
        Ok(e)
    }

    fn train(
        &self,
        data: Interactions<'_>,
        ctx: &TrainContext<'_>,
    ) -> Result<Box<dyn TrainedPolicy>> {
        ctx.check_cancelled()?;
        Ok(Box::new(TrainedPopular {
            config: self.config.clone(),
            scores: TrainedPopular::count(&self.config, data),
        }))
    }
}

impl Scorer for TrainedPopular {
    fn n_items(&self) -> usize {
        self.scores.len()
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        for row in out.chunks_exact_mut(self.scores.len()).take(users.len()) {
            row.copy_from_slice(&self.scores);
        }
    }
}

impl TrainedPolicy for TrainedPopular {
    fn kind(&self) -> &'static str {
        "popular"
    }

    fn refit(&mut self, data: Interactions<'_>) -> Result<()> {
        self.scores = Self::count(&self.config, data);
        Ok(())
    }

    fn score_items(&self, _user: u32, items: &[u32], out: &mut [f32]) {
        for (o, &i) in out.iter_mut().zip(items) {
            *o = self.scores[i as usize];
        }
    }

    fn save(&self, dir: &Path) -> Result<()> {
        store::write_f32s(&dir.join("scores.f32"), &self.scores)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{Cut, Dataset, FetchStats, IdMap};

    /// One user, items 0, 1, 1 at days 0, 9 and 10.
    fn dataset() -> Dataset {
        let day = 86_400;
        Dataset {
            users: IdMap::from_ids(vec!["u".into()]),
            items: IdMap::from_ids(vec!["a".into(), "b".into()]),
            event_types: vec!["event".into()],
            offsets: vec![0, 3],
            seq_items: vec![0, 1, 1],
            seq_times: vec![0, 9 * day, 10 * day],
            seq_types: vec![0; 3],
            seq_values: vec![1.0; 3],
            item_attributes: None,
            user_attributes: None,
            impressions: None,
            stats: FetchStats::default(),
        }
    }

    fn scores(window_days: Option<f64>, half_life_days: Option<f64>) -> Vec<f32> {
        let config = PopularConfig {
            name: "p".into(),
            window_days,
            half_life_days,
            tuning: None,
        };
        TrainedPopular::count(&config, dataset().view(Cut::All))
    }

    #[test]
    fn counts_window_and_decay() {
        assert_eq!(scores(None, None), vec![1.0, 2.0]);
        assert_eq!(
            scores(Some(5.0), None),
            vec![0.0, 2.0],
            "day 0 is outside a 5-day window"
        );
        let s = scores(None, Some(10.0));
        assert!(
            (s[0] - 0.5).abs() < 1e-6,
            "10 days old at a 10-day half-life: {s:?}"
        );
        assert!((s[1] - (1.0 + 0.5f32.powf(0.1))).abs() < 1e-6, "{s:?}");
    }
}
