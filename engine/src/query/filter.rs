//! The filter stage: a mask over the whole catalog. `NOT seen(...)` conjuncts switch the user's
//! items off directly; the rest is evaluated over the catalog's columns, and remembered per
//! version when it depends on nothing per request but its parameters. Every later stage works on
//! eligible items only, which is what keeps hard filters exact.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};

use super::plan::Filter;
use super::{Eligible, Request};
use crate::error::{Error, Result};
use crate::expr::{self, Bound, Values};

/// The cache key of the mask that lets every item through (no filter).
const ALL_ITEMS: &str = "\u{0}all";

/// The filter's mask: shared from the cache, copied only when this request's exclusions change
/// it.
pub struct Mask {
    base: Arc<(Vec<bool>, usize)>,
    owned: Option<Vec<bool>>,
    count: usize,
}

impl Mask {
    pub fn eligible(&self) -> Eligible<'_> {
        Eligible {
            mask: self.owned.as_deref().unwrap_or(&self.base.0),
            count: self.count,
        }
    }
}

/// Evaluates the filter for one request.
pub fn evaluate(req: &Request<'_>, filter: &Filter, values: &Values<'_>) -> Result<Mask> {
    let snapshot = req.snapshot;
    let n = snapshot.n_items();
    let base = match &filter.rest {
        None => snapshot
            .caches
            .masks
            .get_or_try_insert(ALL_ITEMS, || counted(live(snapshot, vec![true; n])))?,
        Some(rest) if !rest.needs.per_request() => {
            // Keyed by the conditions' text and the values of the parameters they read.
            let used: Vec<_> = rest
                .needs
                .params
                .keys()
                .map(|p| (p, req.params.get(p)))
                .collect();
            let key = format!("{}\u{0}{used:?}", filter.key);
            snapshot.caches.masks.get_or_try_insert(&key, || {
                counted(live(snapshot, condition(req, rest, values)?))
            })?
        }
        Some(rest) => counted(live(snapshot, condition(req, rest, values)?))?,
    };
    let mut mask = Mask {
        count: base.1,
        base,
        owned: None,
    };
    for user in &filter.not_seen {
        if let Some(view) = req.users.user(&user.get(req.params)?) {
            mask.switch_off(view.seen.iter().copied());
        }
    }
    for (user, window) in &filter.not_served {
        let since = values.now_seconds - super::recent::window(window, req)? as f64;
        mask.switch_off(req.users.served(&user.get(req.params)?, since));
    }
    Ok(mask)
}

impl Mask {
    /// Makes `items` ineligible for this request (the shared mask is copied on the first).
    fn switch_off(&mut self, items: impl IntoIterator<Item = u32>) {
        for it in items {
            let m = self.owned.get_or_insert_with(|| self.base.0.clone());
            if m[it as usize] {
                m[it as usize] = false;
                self.count -= 1;
            }
        }
    }
}

/// `mask` without the deleted items: whatever the filter says, they are never eligible.
fn live(snapshot: &crate::serving::Snapshot, mut mask: Vec<bool>) -> Vec<bool> {
    for &i in snapshot.catalog.deleted_ids() {
        mask[i as usize] = false;
    }
    mask
}

fn counted(m: Vec<bool>) -> Result<Arc<(Vec<bool>, usize)>> {
    let count = m.iter().filter(|x| **x).count();
    Ok(Arc::new((m, count)))
}

/// The condition over the whole catalog, with a `seen.<k>` column per `seen()` user.
fn condition(req: &Request<'_>, rest: &Bound, values: &Values<'_>) -> Result<Vec<bool>> {
    let snapshot = req.snapshot;
    let n = snapshot.n_items();
    let mut columns: Vec<(String, ArrayRef)> = Vec::new();
    for name in &rest.needs.item_columns {
        let col = snapshot.catalog.column(name).ok_or_else(|| {
            Error::Internal(format!("bound column `{name}` is not in the catalog"))
        })?;
        columns.push((format!("item.{name}"), col.clone()));
    }
    for (k, user) in rest.needs.seen.iter().enumerate() {
        let mut seen = vec![false; n];
        if let Some(view) = req.users.user(&user.get(req.params)?) {
            for &it in view.seen.iter() {
                seen[it as usize] = true;
            }
        }
        columns.push((
            format!("seen.{k}"),
            Arc::new(BooleanArray::from(seen)) as ArrayRef,
        ));
    }
    for (k, (user, window)) in rest.needs.served.iter().enumerate() {
        let seconds = super::recent::window(window, req)?;
        let mut served = vec![false; n];
        for it in req
            .users
            .served(&user.get(req.params)?, values.now_seconds - seconds as f64)
        {
            served[it as usize] = true;
        }
        columns.push((
            format!("served.{k}"),
            Arc::new(BooleanArray::from(served)) as ArrayRef,
        ));
    }
    columns.extend(super::recent::columns(
        req,
        &rest.needs.recent,
        None,
        values.now_seconds,
    )?);
    let batch = expr::batch(columns, n)?;
    let e = expr::substitute(&rest.expr, values)?;
    let failed = |message: String| super::score::evaluation_error(req, rest, "the filter", message);
    let out = expr::evaluate(e, &batch, failed)?;
    let out = out
        .as_boolean_opt()
        .ok_or_else(|| failed("it is not a condition (true or false)".into()))?;
    Ok((0..n).map(|i| out.is_valid(i) && out.value(i)).collect())
}
