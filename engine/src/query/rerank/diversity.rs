//! `diversity(attribute | embedding, strength, window)`: maximal marginal relevance. Each next
//! item maximises (1 − λ)·relevance − λ·(greatest similarity to the last `window` items chosen).
//! Similarity is the Jaccard index of an attribute's `|`-separated values, or the cosine of a
//! policy's item vectors.

use std::collections::HashMap;

use super::{column_text, normalise, reordered, window_size, RerankContext, Reranker};
use crate::error::{Error, Result};
use crate::expr::check_error;
use crate::query::args::{Arg, CallArgs};
use crate::query::Ranked;

enum Similar {
    Attribute(String),
    Embedding(String),
}

struct Diversity {
    by: Similar,
    strength: Arg<f64>,
    window: Arg<usize>,
}

pub(super) fn bind(args: &mut CallArgs<'_>) -> Result<Box<dyn Reranker>, feed_lang::QueryError> {
    let by = match (args.item_column("attribute")?, args.policy("embedding", true)?) {
        (Some(column), None) => Similar::Attribute(column),
        (None, Some(policy)) => Similar::Embedding(policy.name),
        (Some(_), Some(_)) => {
            return Err(check_error(
                "diversity takes attribute or embedding, not both",
                args.call.span,
                None,
            ))
        }
        (None, None) => {
            return Err(check_error(
                "diversity needs attribute = '<column>' or embedding = '<policy>'",
                args.call.span,
                None,
            ))
        }
    };
    Ok(Box::new(Diversity {
        by,
        strength: args.number("strength")?.unwrap_or(Arg::Lit(0.3)),
        window: args.count("window")?.unwrap_or(Arg::Lit(10)),
    }))
}

impl Reranker for Diversity {
    fn rerank(&self, ranked: Vec<Ranked>, ctx: &mut RerankContext<'_>) -> Result<Vec<Ranked>> {
        let lambda = self.strength.get(ctx.req.params)?.clamp(0.0, 1.0);
        let window = self.window.get(ctx.req.params)?.max(1);
        let n = window_size(ctx, ranked.len());
        let (head, tail) = ranked.split_at(n);
        let items: Vec<u32> = head.iter().map(|r| r.0).collect();
        let relevance = normalise(&head.iter().map(|r| r.1).collect::<Vec<_>>());
        let similarity: Box<dyn Fn(usize, usize) -> f64> = match &self.by {
            Similar::Attribute(column) => {
                // Values interned to numbers, each item's set sorted: Jaccard by merging.
                let mut ids: HashMap<String, u32> = HashMap::new();
                let sets: Vec<Vec<u32>> = column_text(ctx.req, column, &items)?
                    .into_iter()
                    .map(|v| {
                        let mut set: Vec<u32> = v
                            .map(|s| {
                                s.split('|')
                                    .map(|part| {
                                        let next = ids.len() as u32;
                                        *ids.entry(part.to_string()).or_insert(next)
                                    })
                                    .collect()
                            })
                            .unwrap_or_default();
                        set.sort_unstable();
                        set.dedup();
                        set
                    })
                    .collect();
                Box::new(move |a, b| jaccard(&sets[a], &sets[b]))
            }
            Similar::Embedding(policy) => {
                let vectors = ctx
                    .req
                    .snapshot
                    .policies
                    .vectors(policy)
                    .ok_or_else(|| Error::Internal(format!("policy `{policy}` lost its vectors")))?;
                let rows: Vec<Vec<f32>> = items
                    .iter()
                    .map(|&i| {
                        let v = vectors.item(i);
                        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
                        v.iter().map(|x| x / norm).collect()
                    })
                    .collect();
                Box::new(move |a, b| crate::util::linalg::dot(&rows[a], &rows[b]).max(0.0) as f64)
            }
        };
        // Greedy until the page is full (O(page × candidates × window)); the rest keep their
        // order.
        let mut chosen: Vec<usize> = Vec::with_capacity(n);
        let mut left: Vec<usize> = (0..n).collect();
        while !left.is_empty() && chosen.len() < ctx.need {
            let recent = &chosen[chosen.len().saturating_sub(window)..];
            let (pos, _) = left
                .iter()
                .enumerate()
                .map(|(pos, &c)| {
                    let max_sim = recent.iter().map(|&s| similarity(c, s)).fold(0.0, f64::max);
                    (pos, (1.0 - lambda) * relevance[c] - lambda * max_sim)
                })
                .fold(
                    (0, f64::NEG_INFINITY),
                    |best, x| if x.1 > best.1 { x } else { best },
                );
            chosen.push(left.remove(pos));
        }
        chosen.extend(left);
        Ok(reordered(head, chosen, tail))
    }
}

/// |x ∩ y| / |x ∪ y| of two sorted sets (0 for two empty sets).
fn jaccard(x: &[u32], y: &[u32]) -> f64 {
    let (mut i, mut j, mut both) = (0, 0, 0);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                both += 1;
                i += 1;
                j += 1;
            }
        }
    }
    let union = x.len() + y.len() - both;
    if union == 0 {
        0.0
    } else {
        both as f64 / union as f64
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn jaccard_of_sorted_sets() {
        use super::jaccard;
        assert_eq!(jaccard(&[1, 2, 3], &[2, 3, 4]), 0.5);
        assert_eq!(jaccard(&[], &[]), 0.0);
        assert_eq!(jaccard(&[7], &[7]), 1.0);
    }
}
