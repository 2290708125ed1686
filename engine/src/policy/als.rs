//! `type: als`: implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) solved by
//! alternating least squares with warm-started conjugate gradient (Takács, Pilászy & Tikk 2011).
//!
//! Each user u solves (YᵀY + Σᵢ (cᵤᵢ − 1) yᵢyᵢᵀ + λI) xᵤ = Σᵢ cᵤᵢ yᵢ over the items it touched,
//! with confidence cᵤᵢ = 1 + α·(sum of event values); items likewise. The conjugate-gradient
//! form never builds the per-user k×k matrix: each step costs O(nᵤ·k + k²), so an iteration is
//! linear in the number of interactions.

use std::path::Path;
use std::time::Instant;

use rayon::prelude::*;

use super::{MemoryEstimate, Policy, Scorer, TrainContext, TrainedPolicy};
use crate::config::AlsConfig;
use crate::dataset::Interactions;
use crate::error::{Error, Result};
use crate::store;
use crate::util::linalg::{axpy, dot, gram, scores, Rng};

/// Alternating passes of a refit (the model is already near its optimum).
const REFIT_PASSES: usize = 2;

pub struct Als {
    config: AlsConfig,
}

impl Als {
    pub fn new(config: AlsConfig) -> Self {
        Self { config }
    }
}

/// User and item factors, row-major (`n × k`).
pub struct TrainedAls {
    config: AlsConfig,
    users: Vec<f32>,
    items: Vec<f32>,
}

impl TrainedAls {
    pub fn load(config: &AlsConfig, dir: &Path) -> Result<Self> {
        let users = store::read_f32s(&dir.join("user_vectors.f32"))?;
        let items = store::read_f32s(&dir.join("item_vectors.f32"))?;
        let k = config.factors;
        if users.len() % k != 0 || items.len() % k != 0 {
            return Err(Error::Internal(format!(
                "ALS vectors in {} do not have {k} factors",
                dir.display()
            )));
        }
        Ok(Self {
            config: config.clone(),
            users,
            items,
        })
    }

    pub fn factors(&self) -> usize {
        self.config.factors
    }

    pub fn item_vectors(&self) -> &[f32] {
        &self.items
    }

    pub fn user_vectors(&self) -> &[f32] {
        &self.users
    }
}

/// A sparse matrix of confidences, rows × (column, confidence).
struct Csr {
    offsets: Vec<usize>,
    entries: Vec<(u32, f32)>,
}

impl Csr {
    fn row(&self, r: usize) -> &[(u32, f32)] {
        &self.entries[self.offsets[r]..self.offsets[r + 1]]
    }

    /// User × item confidences: repeated interactions add their values.
    fn user_items(data: Interactions<'_>, alpha: f32) -> Self {
        let mut offsets = vec![0usize; data.n_users() + 1];
        let mut entries = Vec::with_capacity(data.n_events());
        let mut acc: Vec<(u32, f32)> = Vec::new();
        for u in 0..data.n_users() as u32 {
            acc.clear();
            acc.extend(
                data.items(u)
                    .iter()
                    .copied()
                    .zip(data.values(u).iter().copied()),
            );
            acc.sort_unstable_by_key(|e| e.0);
            let mut i = 0;
            while i < acc.len() {
                let (item, mut total) = acc[i];
                i += 1;
                while i < acc.len() && acc[i].0 == item {
                    total += acc[i].1;
                    i += 1;
                }
                // Negative values (explicit dislikes) carry no positive confidence here.
                entries.push((item, 1.0 + alpha * total.max(0.0)));
            }
            offsets[u as usize + 1] = entries.len();
        }
        Self { offsets, entries }
    }

    fn transpose(&self, n_cols: usize) -> Self {
        let mut offsets = vec![0usize; n_cols + 1];
        for &(c, _) in &self.entries {
            offsets[c as usize + 1] += 1;
        }
        for c in 0..n_cols {
            offsets[c + 1] += offsets[c];
        }
        let mut cursor = offsets.clone();
        let mut entries = vec![(0u32, 0f32); self.entries.len()];
        for r in 0..self.offsets.len() - 1 {
            for &(c, conf) in self.row(r) {
                entries[cursor[c as usize]] = (r as u32, conf);
                cursor[c as usize] += 1;
            }
        }
        Self { offsets, entries }
    }
}

/// One ALS pass: users against fixed items, then items against the new users.
fn alternate(c: &AlsConfig, users: &mut [f32], items: &mut [f32], ui: &Csr, iu: &Csr) {
    solve_side(users, items, ui, c.factors, c.regularization, c.cg_steps);
    solve_side(items, users, iu, c.factors, c.regularization, c.cg_steps);
}

/// Solves every row of `target` against the fixed `other` factors.
fn solve_side(target: &mut [f32], other: &[f32], csr: &Csr, k: usize, reg: f32, cg_steps: usize) {
    let mut yty = gram(other, k);
    for d in 0..k {
        yty[d * k + d] += reg;
    }
    target.par_chunks_mut(k).enumerate().for_each_init(
        || (vec![0f32; k], vec![0f32; k], vec![0f32; k]),
        |(r, p, ap), (row, x)| solve_row(x, &yty, other, csr.row(row), k, cg_steps, r, p, ap),
    );
}

/// Warm-started conjugate gradient for one row (implicit's `least_squares_cg`).
#[allow(clippy::too_many_arguments)]
fn solve_row(
    x: &mut [f32],
    yty: &[f32],
    other: &[f32],
    entries: &[(u32, f32)],
    k: usize,
    steps: usize,
    r: &mut [f32],
    p: &mut [f32],
    ap: &mut [f32],
) {
    if entries.is_empty() {
        x.fill(0.0);
        return;
    }
    // r = b − A x
    for d in 0..k {
        r[d] = -dot(&yty[d * k..d * k + k], x);
    }
    for &(i, conf) in entries {
        let y = &other[i as usize * k..i as usize * k + k];
        axpy(conf - (conf - 1.0) * dot(y, x), y, r);
    }
    p.copy_from_slice(r);
    let mut rs_old = dot(r, r);
    if rs_old < 1e-20 {
        return;
    }
    for _ in 0..steps {
        for d in 0..k {
            ap[d] = dot(&yty[d * k..d * k + k], p);
        }
        for &(i, conf) in entries {
            let y = &other[i as usize * k..i as usize * k + k];
            axpy((conf - 1.0) * dot(y, p), y, ap);
        }
        let p_ap = dot(p, ap);
        if p_ap <= 0.0 || !p_ap.is_finite() {
            break;
        }
        let alpha = rs_old / p_ap;
        axpy(alpha, p, x);
        axpy(-alpha, ap, r);
        let rs_new = dot(r, r);
        if rs_new < 1e-20 {
            break;
        }
        let beta = rs_new / rs_old;
        for d in 0..k {
            p[d] = r[d] + beta * p[d];
        }
        rs_old = rs_new;
    }
}

fn init(n: usize, k: usize, rng: &mut Rng) -> Vec<f32> {
    let scale = 0.1 / (k as f32).sqrt();
    (0..n * k)
        .map(|_| (rng.next_f32() - 0.5) * 2.0 * scale)
        .collect()
}

impl Policy for Als {
    fn name(&self) -> &str {
        &self.config.name
    }

    /// The factors of both sides and the confidence matrix stored both ways (8 bytes an entry,
    /// one entry per distinct user–item pair, counted as one per event).
    fn memory(&self, data: Option<Interactions<'_>>) -> Result<MemoryEstimate> {
        let mut e = MemoryEstimate::new(data.is_some());
        let (users, items, events) = data
            .map(|d| (d.n_users(), d.n_items(), d.n_events()))
            .unwrap_or_default();
        let k = self.config.factors as f64;
        e.floats("factors", (users + items) as f64 * k, &["factors"]);
        e.bytes(
            "confidence matrix",
            events as f64 * 16.0 + (users + items) as f64 * 8.0,
            &[],
        );
        Ok(e)
    }

    fn train(
        &self,
        data: Interactions<'_>,
        ctx: &TrainContext<'_>,
    ) -> Result<Box<dyn TrainedPolicy>> {
        let c = &self.config;
        let k = c.factors;
        let mut rng = Rng::new(ctx.seed);
        let mut users = init(data.n_users(), k, &mut rng);
        let mut items = init(data.n_items(), k, &mut rng);
        let ui = Csr::user_items(data, c.alpha);
        let iu = ui.transpose(data.n_items());
        ctx.progress.start(
            &format!("train {} (als)", c.name),
            Some(c.iterations as u64),
        );
        for it in 0..c.iterations {
            ctx.check_cancelled()?;
            let start = Instant::now();
            alternate(c, &mut users, &mut items, &ui, &iu);
            let msg = format!(
                "iteration {}/{} in {:.2}s",
                it + 1,
                c.iterations,
                start.elapsed().as_secs_f64()
            );
            ctx.progress.message(&msg);
            ctx.progress.inc(1);
            (ctx.log)(format!("{}: {msg}", c.name));
        }
        ctx.progress.finish();
        Ok(Box::new(TrainedAls {
            config: c.clone(),
            users,
            items,
        }))
    }
}

impl Scorer for TrainedAls {
    fn n_items(&self) -> usize {
        self.items.len() / self.config.factors
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        let k = self.config.factors;
        let mut a = Vec::with_capacity(users.len() * k);
        for &u in users {
            a.extend_from_slice(&self.users[u as usize * k..u as usize * k + k]);
        }
        scores(&a, &self.items, k, out);
    }
}

impl TrainedPolicy for TrainedAls {
    fn kind(&self) -> &'static str {
        "als"
    }

    /// Continues training on the longer histories: a few warm-started alternating passes, then a
    /// close solve of every user against the final item factors.
    fn refit(&mut self, data: Interactions<'_>) -> Result<()> {
        let c = &self.config;
        let ui = Csr::user_items(data, c.alpha);
        let iu = ui.transpose(data.n_items());
        self.users.resize(data.n_users() * c.factors, 0.0);
        // Warm-started passes over both sides, so that items learn from the newer events too.
        for _ in 0..REFIT_PASSES {
            alternate(c, &mut self.users, &mut self.items, &ui, &iu);
        }
        // Then the users' least-squares solutions against the final items, solved closely.
        solve_side(
            &mut self.users,
            &self.items,
            &ui,
            c.factors,
            c.regularization,
            c.factors.min(32),
        );
        Ok(())
    }

    fn score_items(&self, user: u32, items: &[u32], out: &mut [f32]) {
        let k = self.config.factors;
        let u = &self.users[user as usize * k..user as usize * k + k];
        for (o, &i) in out.iter_mut().zip(items) {
            *o = dot(u, &self.items[i as usize * k..i as usize * k + k]);
        }
    }

    fn score_is_dot(&self) -> bool {
        true
    }

    fn vectors(&self) -> Option<super::Vectors<'_>> {
        Some(super::Vectors {
            dim: self.config.factors,
            users: &self.users,
            items: &self.items,
        })
    }

    fn save(&self, dir: &Path) -> Result<()> {
        store::write_f32s(&dir.join("user_vectors.f32"), &self.users)?;
        store::write_f32s(&dir.join("item_vectors.f32"), &self.items)
    }
}
