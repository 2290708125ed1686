//! A version's trained policies, their vector indexes, and their outputs scored by name.
//!
//! Every serving read of a policy goes through here, because a catalog with live changes has
//! items the policies never trained on (dense ids from [`Policies::trained_items`] on): each
//! policy with vectors gets one per added item (from its features when the policy can embed
//! them, else zero), and an added item's score is the dot product of that vector with the
//! user's for a dot-product policy, 0 otherwise.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::RecordBatch;

use crate::core::{RankContext, TrainedPolicy, Vectors};
use crate::error::{Error, Result};
use crate::expr::OutputRef;
use crate::vectors::{self, Method, Search, VectorIndex};

/// Whom personal scores are for: the user's dense id in the version, and, for a user with live
/// interactions, vectors encoded now from their history (by policy) that stand in for the
/// trained ones.
#[derive(Debug, Clone, Default)]
pub struct ScoringUser {
    pub dense: Option<u32>,
    pub live: BTreeMap<String, Vec<f32>>,
    /// The items the user interacted with, sorted (what a ranker's affinities read).
    pub seen: Vec<u32>,
    /// The request's time, seconds since the epoch (a ranker's hour of day).
    pub now: i64,
}

impl ScoringUser {
    /// A user as the version trained them.
    pub fn trained(dense: Option<u32>) -> Self {
        Self {
            dense,
            ..Default::default()
        }
    }

    /// What a ranker reads of the request, with its input policies' scores of the candidates.
    fn context<'a>(&'a self, scores: &'a [Vec<f32>]) -> RankContext<'a> {
        RankContext {
            seen: &self.seen,
            now: self.now,
            scores,
        }
    }

    /// The user's live vector for `policy`, when it is a dot-product policy that encoded one.
    fn live_for<'a>(&'a self, policies: &Policies, policy: &str) -> Option<&'a [f32]> {
        let p = policies.get(policy)?;
        (p.score_is_dot() && p.heads().len() == 1)
            .then(|| self.live.get(policy).map(Vec::as_slice))
            .flatten()
    }
}

#[derive(Clone)]
pub struct Policies {
    pub(crate) trained: Arc<BTreeMap<String, Box<dyn TrainedPolicy>>>,
    /// How each policy's item vectors are searched (exact when absent).
    pub(crate) indexes: Arc<BTreeMap<String, VectorIndex>>,
    added: Option<Arc<Added>>,
}

/// Items added after training, and every vector policy's item vectors over the whole catalog.
struct Added {
    trained_items: usize,
    vectors: BTreeMap<String, Vec<f32>>,
}

impl Policies {
    pub fn new(
        trained: BTreeMap<String, Box<dyn TrainedPolicy>>,
        indexes: BTreeMap<String, VectorIndex>,
    ) -> Self {
        Self {
            trained: Arc::new(trained),
            indexes: Arc::new(indexes),
            added: None,
        }
    }

    /// These policies over a catalog with added items: `table` holds the catalog's rows, the
    /// trained items' first; `trained` the version's own item rows and `users` its user rows
    /// (what a tower's features were fitted on).
    pub fn with_added_items(
        &self,
        table: &RecordBatch,
        trained: &RecordBatch,
        users: &RecordBatch,
    ) -> Result<Self> {
        let trained_items = trained.num_rows();
        let added = table.num_rows() - trained_items;
        let rows = table.slice(trained_items, added);
        if added == 0 {
            return Ok(Self {
                added: None,
                ..self.clone()
            });
        }
        let mut vectors = BTreeMap::new();
        for (name, policy) in self.trained.iter() {
            let Some(v) = policy.vectors() else { continue };
            // A policy that fails to place them leaves them at zero rather than holding back
            // the rest of the change (a deletion, a price).
            let new = match policy.embed_items(&rows, trained, users) {
                Ok(v) => v,
                Err(e) => {
                    tracing::warn!(policy = %name, "placing added items: {e}");
                    None
                }
            }
            .filter(|e| e.len() == added * v.dim)
            .unwrap_or_else(|| vec![0.0; added * v.dim]);
            let mut all = Vec::with_capacity(v.items.len() + new.len());
            all.extend_from_slice(v.items);
            all.extend_from_slice(&new);
            vectors.insert(name.clone(), all);
        }
        Ok(Self {
            added: Some(Arc::new(Added {
                trained_items,
                vectors,
            })),
            ..self.clone()
        })
    }

    /// The trained policy `name` (its own items only: read scores and vectors through the
    /// methods here).
    pub fn get(&self, name: &str) -> Option<&dyn TrainedPolicy> {
        self.trained.get(name).map(|p| p.as_ref())
    }

    /// Whether a policy reads the request's context (a ranker): then the scoring user carries it.
    pub fn reads_context(&self) -> bool {
        self.trained.values().any(|p| p.reads_context())
    }

    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.trained.keys().map(String::as_str)
    }

    /// Items the policies trained on: dense ids below this.
    fn trained_items(&self) -> Option<usize> {
        self.added.as_ref().map(|a| a.trained_items)
    }

    /// How `policy`'s item vectors are searched.
    pub fn vector_index(&self, policy: &str) -> &VectorIndex {
        self.indexes.get(policy).unwrap_or(&VectorIndex::Exact)
    }

    /// `policy`'s user vectors and its item vectors over the whole catalog.
    pub fn vectors(&self, policy: &str) -> Option<Vectors<'_>> {
        let v = self.get(policy)?.vectors()?;
        match self.added.as_ref().and_then(|a| a.vectors.get(policy)) {
            Some(items) => Some(Vectors { items, ..v }),
            None => Some(v),
        }
    }

    /// The best eligible items for `s.query` among `policy`'s item vectors, through its index;
    /// items added after the index was built are scanned exactly beside it.
    pub fn search(&self, policy: &str, s: Search<'_>) -> Option<(Vec<(u32, f32)>, Method)> {
        let v = self.vectors(policy)?;
        let index = self.vector_index(policy);
        let (Some(trained), VectorIndex::Ivf(_)) = (self.trained_items(), index) else {
            return Some(index.search(v.items, v.dim, s));
        };
        let cut = trained * v.dim;
        let (mut found, method) = index.search(
            &v.items[..cut],
            v.dim,
            Search {
                mask: s.mask.map(|m| &m[..trained]),
                ..s
            },
        );
        let added = vectors::exact(
            &v.items[cut..],
            v.dim,
            Search {
                mask: s.mask.map(|m| &m[trained..]),
                ..s
            },
        );
        found.extend(added.into_iter().map(|(i, x)| (i + trained as u32, x)));
        found.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        found.truncate(s.k);
        Some((found, method))
    }

    /// `policy`'s query vector for a sequence of items (its sequence encoder), reading only
    /// the items it trained on.
    pub fn encode_sequence(&self, policy: &str, items: &[u32]) -> Option<Vec<f32>> {
        let p = self.get(policy)?;
        match self.trained_items() {
            Some(t) => {
                let known: Vec<u32> = items
                    .iter()
                    .copied()
                    .filter(|&i| (i as usize) < t)
                    .collect();
                p.encode_sequence(&known)
            }
            None => p.encode_sequence(items),
        }
    }

    /// Head `head` of `policy` for `user` over every item of a catalog of `n`.
    pub fn score_row(
        &self,
        policy: &str,
        head: usize,
        user: &ScoringUser,
        n: usize,
    ) -> Result<Vec<f32>> {
        let p = self.policy(policy)?;
        if p.reads_context() {
            // A ranker scores every item, the added ones included, in the request's context.
            let heads = p.heads().len();
            let items: Vec<u32> = (0..n as u32).collect();
            let mut rows = vec![0f32; heads * n];
            let inputs = self.input_scores(p, user, &items)?;
            p.score_heads_in(user.dense, &user.context(&inputs), &items, &mut rows);
            return Ok(rows[head * n..(head + 1) * n].to_vec());
        }
        if let (Some(q), Some(v)) = (user.live_for(self, policy), self.vectors(policy)) {
            let mut row = vec![0f32; n];
            crate::util::linalg::scores(q, v.items, v.dim, &mut row);
            return Ok(row);
        }
        let Some(u) = user.dense else {
            return Ok(vec![0f32; n]);
        };
        let trained = self.trained_items().unwrap_or(n);
        let mut row = vec![0f32; n];
        if p.heads().len() == 1 {
            p.score_users(&[u], &mut row[..trained]);
        } else {
            let heads = p.heads().len();
            let items: Vec<u32> = (0..trained as u32).collect();
            let mut rows = vec![0f32; heads * trained];
            p.score_heads(u, &items, &mut rows);
            row[..trained].copy_from_slice(&rows[head * trained..(head + 1) * trained]);
        }
        if trained < n {
            let added: Vec<u32> = (trained as u32..n as u32).collect();
            self.score_added(policy, u, &added, &mut row[trained..]);
        }
        Ok(row)
    }

    /// The scores for `items` of the policies `ranker` reads as inputs, in its order.
    fn input_scores(
        &self,
        ranker: &dyn TrainedPolicy,
        scoring: &ScoringUser,
        items: &[u32],
    ) -> Result<Vec<Vec<f32>>> {
        let refs: Vec<OutputRef> = ranker
            .score_inputs()
            .iter()
            .map(|policy| OutputRef {
                name: policy.clone(),
                policy: policy.clone(),
                head: 0,
            })
            .collect();
        if refs.is_empty() {
            return Ok(Vec::new());
        }
        self.score(scoring, items, &refs.iter().collect::<Vec<_>>())
    }

    fn policy(&self, name: &str) -> Result<&dyn TrainedPolicy> {
        self.get(name)
            .ok_or_else(|| Error::Internal(format!("policy `{name}` is not loaded")))
    }

    /// Added items' scores: the dot product of the user's vector and theirs for a policy that
    /// scores by it, else 0.
    fn score_added(&self, policy: &str, u: u32, items: &[u32], out: &mut [f32]) {
        let Some(p) = self.get(policy) else { return };
        match self.vectors(policy).filter(|_| p.score_is_dot()) {
            Some(v) => {
                let user = v.user(u);
                for (o, &i) in out.iter_mut().zip(items) {
                    *o = crate::util::linalg::dot(user, v.item(i));
                }
            }
            None => out.fill(0.0),
        }
    }

    /// The named outputs for `items` (one column per output, in `outputs` order), each policy
    /// scored once whatever number of its heads are asked for. A user the version does not know
    /// has no personal scores: 0 for every item.
    pub fn score(
        &self,
        scoring: &ScoringUser,
        items: &[u32],
        outputs: &[&OutputRef],
    ) -> Result<Vec<Vec<f32>>> {
        let user = scoring.dense;
        let trained = self.trained_items();
        // Items the policies trained on, and the places of the others.
        type Placed = Vec<(usize, u32)>;
        let (known, added): (Placed, Placed) = items
            .iter()
            .copied()
            .enumerate()
            .partition(|&(_, i)| trained.is_none_or(|t| (i as usize) < t));
        let mut by_policy: BTreeMap<&str, Vec<f32>> = BTreeMap::new();
        let mut out = Vec::with_capacity(outputs.len());
        let n = items.len();
        for o in outputs {
            let policy = self.policy(&o.policy)?;
            let heads = policy.heads().len();
            let rows = match by_policy.entry(o.policy.as_str()) {
                std::collections::btree_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::btree_map::Entry::Vacant(e) => {
                    let mut rows = vec![0f32; heads * n];
                    let live = scoring
                        .live_for(self, &o.policy)
                        .zip(self.vectors(&o.policy));
                    if policy.reads_context() {
                        let inputs = self.input_scores(policy, scoring, items)?;
                        policy.score_heads_in(user, &scoring.context(&inputs), items, &mut rows);
                    } else if let Some((q, v)) = live {
                        for (r, &i) in rows.iter_mut().zip(items) {
                            *r = crate::util::linalg::dot(q, v.item(i));
                        }
                    } else if let Some(u) = user {
                        if added.is_empty() {
                            policy.score_heads(u, items, &mut rows);
                        } else {
                            let ids: Vec<u32> = known.iter().map(|&(_, i)| i).collect();
                            let mut part = vec![0f32; heads * ids.len()];
                            policy.score_heads(u, &ids, &mut part);
                            for h in 0..heads {
                                for (k, &(at, _)) in known.iter().enumerate() {
                                    rows[h * n + at] = part[h * ids.len() + k];
                                }
                            }
                            if heads == 1 {
                                let ids: Vec<u32> = added.iter().map(|&(_, i)| i).collect();
                                let mut part = vec![0f32; ids.len()];
                                self.score_added(&o.policy, u, &ids, &mut part);
                                for (&(at, _), s) in added.iter().zip(part) {
                                    rows[at] = s;
                                }
                            }
                        }
                    }
                    e.insert(rows)
                }
            };
            let row = rows.get(o.head * n..(o.head + 1) * n).ok_or_else(|| {
                Error::Internal(format!("policy `{}` has no head {}", o.policy, o.head))
            })?;
            out.push(row.to_vec());
        }
        Ok(out)
    }
}
