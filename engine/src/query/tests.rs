//! Query execution over an in-memory snapshot: one fixture builder, no training, no binary.
//! (The end-to-end tests in `tests/e2e` drive the same code through the CLI and HTTP.)

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use super::*;
use crate::core::{Scorer, TrainedPolicy, Vectors};
use crate::error::Error;
use crate::serving::artifacts::Manifest;
use crate::serving::{Catalog, Parts, Users};

/// A trained policy with fixed vectors (scores are dot products), or fixed item scores for
/// every user (no vectors): enough to drive every stage.
struct Fixed {
    dim: usize,
    users: Vec<f32>,
    items: Vec<f32>,
    n_items: usize,
}

impl Scorer for Fixed {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score_users(&self, users: &[u32], out: &mut [f32]) {
        let n = self.n_items;
        for (k, &u) in users.iter().enumerate() {
            for i in 0..n {
                out[k * n + i] = if self.dim == 0 {
                    self.items[i]
                } else {
                    let v = self.vectors().unwrap();
                    crate::util::linalg::dot(v.user(u), v.item(i as u32))
                };
            }
        }
    }
}

impl TrainedPolicy for Fixed {
    fn kind(&self) -> &'static str {
        "fixed"
    }

    fn refit(&mut self, _: crate::dataset::Interactions<'_>) -> crate::Result<()> {
        Ok(())
    }

    fn save(&self, _: &Path) -> crate::Result<()> {
        Ok(())
    }

    fn score_is_dot(&self) -> bool {
        self.dim > 0
    }

    fn vectors(&self) -> Option<Vectors<'_>> {
        (self.dim > 0).then(|| Vectors {
            dim: self.dim,
            users: &self.users,
            items: &self.items,
        })
    }
}

const MODEL: &str = r#"
model: {name: shop}
connectors:
  - {id: events, type: file, path: events.csv}
fetch:
  events: SELECT user_id, item_id, timestamp FROM events
policies:
  - {name: popular, type: popular}
  - {name: als, type: als, factors: 2}
value_model:
  weights: {als: 1, popular: 0.5}
  demotions: {price: 0.01}
"#;

/// 40 items: `year` 1970..2009 (a number), `year_text` the same as text with two values that
/// are not numbers, `genres` cycling through three `|`-joined sets, `price` 0..39. Users u0..u5;
/// u0 has seen items 0..9, u1 items 10..14, u2 items 21 and 23, u5 nothing (listed only). Item vectors point one of
/// two ways, so `als` prefers even items for u0 and odd ones for u1.
pub(crate) fn snapshot() -> Snapshot {
    let n = 40usize;
    let ids: Vec<String> = (0..n).map(|i| format!("i{i}")).collect();
    let year: Vec<i64> = (0..n as i64).map(|i| 1970 + i).collect();
    let year_text: Vec<String> = year
        .iter()
        .enumerate()
        .map(|(i, y)| match i {
            3 => "V".into(),
            4 => "unknown".into(),
            _ => y.to_string(),
        })
        .collect();
    let genres = ["Drama|War", "Comedy", "Drama|Comedy"];
    let items = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("item_id", DataType::Utf8, false),
            Field::new("year", DataType::Int64, true),
            Field::new("year_text", DataType::Utf8, true),
            Field::new("genres", DataType::Utf8, true),
            Field::new("price", DataType::Float64, true),
        ])),
        vec![
            Arc::new(StringArray::from(ids.clone())) as ArrayRef,
            Arc::new(Int64Array::from(year)),
            Arc::new(StringArray::from(year_text)),
            Arc::new(StringArray::from_iter_values((0..n).map(|i| genres[i % 3]))),
            Arc::new(Float64Array::from_iter_values((0..n).map(|i| i as f64))),
        ],
    )
    .unwrap();
    // Popularity falls with the id; event times: item i has i events, one a day.
    let popular: Vec<f32> = (0..n).map(|i| (n - i) as f32).collect();
    let mut time_offsets = vec![0u64];
    let mut times = Vec::new();
    for i in 0..n {
        times.extend((0..i as i64).map(|d| 1_000_000 + d * 86_400));
        time_offsets.push(times.len() as u64);
    }
    let catalog = Catalog::new(items, popular.clone(), time_offsets, times).unwrap();

    let users_table = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("user_id", DataType::Utf8, false),
            Field::new("age", DataType::Int64, true),
        ])),
        vec![
            Arc::new(StringArray::from_iter_values(
                (0..6).map(|u| format!("u{u}")),
            )) as ArrayRef,
            Arc::new(Int64Array::from_iter_values([20, 30, 40, 50, 60, 70])),
        ],
    )
    .unwrap();
    let seen: Vec<Vec<u32>> = vec![
        (0..10).collect(),
        (10..15).collect(),
        vec![21, 23],
        vec![21],
        vec![22],
        vec![],
    ];
    let csr = |lists: &[Vec<u32>]| {
        let mut offsets = vec![0u64];
        let mut flat = Vec::new();
        for l in lists {
            flat.extend_from_slice(l);
            offsets.push(flat.len() as u64);
        }
        (offsets, flat)
    };
    let users = Users::new(users_table, csr(&seen), csr(&seen)).unwrap();

    let item_vectors: Vec<f32> = (0..n)
        .flat_map(|i| {
            if i % 2 == 0 {
                [1.0, 0.1 * i as f32 / n as f32]
            } else {
                [0.0, 1.0]
            }
        })
        .collect();
    let user_vectors: Vec<f32> = (0..6)
        .flat_map(|u| if u % 2 == 0 { [1.0, 0.0] } else { [0.0, 1.0] })
        .collect();
    let mut policies: BTreeMap<String, Box<dyn TrainedPolicy>> = BTreeMap::new();
    policies.insert(
        "als".into(),
        Box::new(Fixed {
            dim: 2,
            users: user_vectors,
            items: item_vectors,
            n_items: n,
        }),
    );
    policies.insert(
        "popular".into(),
        Box::new(Fixed {
            dim: 0,
            users: vec![],
            items: popular,
            n_items: n,
        }),
    );
    let config = crate::config::parse(MODEL, "shop.yaml", Path::new(".")).unwrap();
    Snapshot::from_parts(Parts {
        manifest: Manifest {
            format: crate::serving::artifacts::FORMAT,
            model: "shop".into(),
            version: 1,
            primary_policy: "als".into(),
            items: n,
            users: 6,
            events: 20,
            deployed_at: chrono::Utc::now(),
            training_key: serde_json::Value::Null,
            reuses: None,
            live_watermark: 0,
            live_items_watermark: 0,
            index_config: Default::default(),
            indexes: BTreeMap::new(),
        },
        config,
        report: None,
        catalog,
        users,
        policies,
        indexes: BTreeMap::new(),
    })
    .unwrap()
}

fn params(pairs: &[(&str, ParamValue)]) -> Params {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn run(s: &Snapshot, text: &str, p: &[(&str, ParamValue)]) -> crate::Result<QueryResult> {
    s.query(&QueryRequest {
        text: Some(text.into()),
        params: params(p),
        explain: true,
        ..Default::default()
    })
}

fn user(id: &str) -> (&'static str, ParamValue) {
    ("user_id", ParamValue::Str(id.into()))
}

fn num(ids: &[String]) -> Vec<usize> {
    ids.iter().map(|i| i[1..].parse().unwrap()).collect()
}

/// The query error's message, hint and the text its span covers.
fn query_error(e: Error) -> (String, Option<String>, String) {
    match e {
        Error::Query { error, text } => (
            error.message.clone(),
            error.hint.clone(),
            text[error.span.start..error.span.end].to_string(),
        ),
        other => panic!("expected a query error (400), got {other:?}"),
    }
}

#[test]
fn filters_are_exact_and_pages_full() {
    let s = snapshot();
    let r = run(
        &s,
        "SELECT * FROM popular(limit = 3) WHERE item.year >= 2000 LIMIT 8",
        &[],
    )
    .unwrap();
    // The retriever's limit is widened to the page; every item passes the filter.
    assert_eq!(r.eligible, 10);
    assert_eq!(num(&r.ids), vec![30, 31, 32, 33, 34, 35, 36, 37]);
    // NOT seen() excludes the user's items; the page tops up from eligible items.
    let r = run(
        &s,
        "SELECT * WHERE NOT seen($user_id) AND item.year < 1985 LIMIT 20",
        &[user("u0")],
    )
    .unwrap();
    assert_eq!(r.eligible, 5);
    assert_eq!(num(&r.ids), vec![10, 11, 12, 13, 14]);
    // seen() inside an expression reads the same user state.
    let r = run(
        &s,
        "SELECT * WHERE seen('u1') OR item.year > 2007 LIMIT 20",
        &[],
    )
    .unwrap();
    assert_eq!(num(&r.ids), vec![10, 11, 12, 13, 14, 38, 39]);
}

#[test]
fn page_tokens_continue_like_offsets_while_nothing_changes() {
    let s = snapshot();
    let text = "SELECT * WHERE item.year >= 2000 LIMIT 4";
    let q = |page_token: Option<String>, offset: Option<usize>| {
        s.query(&QueryRequest {
            text: Some(text.into()),
            page_token,
            offset,
            ..Default::default()
        })
    };
    let first = q(None, None).unwrap();
    let second = q(first.next_page_token.clone(), None).unwrap();
    let by_offset = q(None, Some(4)).unwrap();
    assert_eq!(second.ids, by_offset.ids);
    assert_eq!(second.offset, 4);
    // A page asked for by offset cannot be continued by token; the last page has no next.
    assert!(by_offset.next_page_token.is_none());
    let third = q(second.next_page_token.clone(), None).unwrap();
    assert_eq!(third.ids.len(), 2, "10 eligible: 4 + 4 + 2");
    assert!(third.next_page_token.is_none(), "a short page is the last");
    // Both at once, or a token of another query, are the request's mistakes.
    let both = q(first.next_page_token.clone(), Some(4)).unwrap_err();
    assert!(
        matches!(both, Error::Invalid { ref what, .. } if what == "page_token"),
        "{both}"
    );
    let other = s
        .query(&QueryRequest {
            text: Some("SELECT * LIMIT 4".into()),
            page_token: first.next_page_token.clone(),
            ..Default::default()
        })
        .unwrap_err();
    assert!(
        other.to_string().contains("another model, query"),
        "{other}"
    );
}

#[test]
fn similarity_history_and_unknown_users() {
    let s = snapshot();
    let q = "SELECT * FROM similarity(embedding = 'als', user = $user_id, limit = 4) WHERE NOT seen($user_id) LIMIT 4";
    let r = run(&s, q, &[user("u0")]).unwrap();
    assert!(
        num(&r.ids).iter().all(|i| i % 2 == 0 && *i >= 10),
        "{:?}",
        r.ids
    );
    let r = run(&s, q, &[user("u1")]).unwrap();
    assert!(
        num(&r.ids)
            .iter()
            .all(|i| i % 2 == 1 && !(10..15).contains(i)),
        "{:?}",
        r.ids
    );
    // An unknown user has no vector: the page is topped up by popularity.
    let r = run(&s, q, &[user("nobody")]).unwrap();
    assert_eq!(num(&r.ids), vec![0, 1, 2, 3]);
    assert!(r.explanation.unwrap().items[0].found_by[0].retriever == "fallback");
    // The history encoder (the mean of recent item vectors for ALS) follows the user's items:
    // u2's vector points to even items, its history to odd ones.
    let r = run(
        &s,
        "SELECT * FROM similarity(embedding = 'als', encoder = 'history', user = 'u2', limit = 3) LIMIT 3",
        &[],
    )
    .unwrap();
    assert!(num(&r.ids).iter().all(|i| i % 2 == 1), "{:?}", r.ids);
}

#[test]
fn value_model_is_one_evaluator_for_rank_query_and_explain() {
    let s = snapshot();
    let r = run(
        &s,
        "SELECT * FROM filter(limit = 100) WHERE NOT seen($user_id) ORDER BY score(value_model) LIMIT 5",
        &[user("u0")],
    )
    .unwrap();
    let ranked = s
        .rank(&RankRequest {
            user_id: "u0".into(),
            limit: 5,
            with_metadata: false,
            features: false,
        })
        .unwrap();
    assert_eq!(r.ids, ranked.ids);
    for (a, b) in r.scores.iter().zip(&ranked.scores) {
        assert!((a - *b as f64).abs() < 1e-4, "{a} vs {b}");
    }
    // Explain: each term's contribution and the demotion, which multiply to the score.
    let e = &r.explanation.unwrap().items[0];
    let sum: f64 = e.value_model.values().sum();
    let factor: f64 = e.demotions.values().product();
    assert!((sum * factor - e.score).abs() < 1e-9, "{e:?}");
    assert_eq!(e.value_model.keys().collect::<Vec<_>>(), ["als", "popular"]);
    let price = num(std::slice::from_ref(&e.id))[0] as f64;
    assert!((e.demotions["price"] - (1.0 - 0.01 * price)).abs() < 1e-12);
    // `als.score` names the same output as `als`.
    let a = run(&s, "SELECT * ORDER BY score(als) LIMIT 5", &[user("u1")]).unwrap();
    let b = run(
        &s,
        "SELECT * ORDER BY score(ALS.score) LIMIT 5",
        &[user("u1")],
    )
    .unwrap();
    assert_eq!(a.ids, b.ids);
}

#[test]
fn query_mistakes_are_400_with_spans_and_parameter_values_422() {
    let s = snapshot();
    // A text column compared with a number: refused when binding, naming the column and the fix.
    let e = run(&s, "SELECT * WHERE item.year_text < 1960", &[]).unwrap_err();
    let (message, hint, at) = query_error(e);
    assert_eq!(at, "item.year_text");
    assert!(message.contains("text"), "{message}");
    assert!(hint.unwrap().contains("TRY_CAST(year_text"), "{message}");
    // A bad reranker argument: the column is resolved at bind time, with a span and a hint.
    let e = run(
        &s,
        "SELECT * REORDER BY diversity(attribute = 'genre')",
        &[],
    )
    .unwrap_err();
    let (message, hint, at) = query_error(e);
    assert_eq!(at, "'genre'");
    assert!(message.contains("no column `genre`"), "{message}");
    assert_eq!(hint.as_deref(), Some("did you mean `item.genres`?"));
    // Arithmetic on text, a score that is not a number, a filter that is not a condition.
    for (q, at) in [
        ("SELECT * ORDER BY score(item.genres * 2)", "item.genres"),
        ("SELECT * ORDER BY score(item.year > 3)", "item.year > 3"),
        ("SELECT * WHERE item.price", "item.price"),
        ("SELECT * FROM popular(window = '7д')", "'7д'"),
        ("SELECT * ORDER BY score(retrieval.pop)", "pop"),
    ] {
        let (_, _, span) = query_error(run(&s, q, &[]).unwrap_err());
        assert_eq!(span, at, "{q}");
    }
    // A parameter of the wrong type is the request's mistake: 422, naming it and its use.
    let e = run(
        &s,
        "SELECT * WHERE item.year >= $since",
        &[("since", ParamValue::Str("1990".into()))],
    )
    .unwrap_err();
    match e {
        Error::Invalid { what, message, .. } => {
            assert_eq!(what, "$since");
            assert!(message.contains("item.year"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    let e = run(&s, "SELECT * LIMIT $n", &[]).unwrap_err();
    assert!(matches!(e, Error::Invalid { what, .. } if what == "$n"));
    // ... unless the request overrides what the parameter was for.
    let r = s
        .query(&QueryRequest {
            text: Some("SELECT * LIMIT $n".into()),
            limit: Some(3),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(r.ids.len(), 3);
    // A condition must be one: NULL is not, and a bare parameter must be true or false.
    let (_, _, at) = query_error(run(&s, "SELECT * WHERE NULL", &[]).unwrap_err());
    assert_eq!(at, "NULL");
    let e = run(
        &s,
        "SELECT * WHERE $flag",
        &[("flag", ParamValue::Str("yes".into()))],
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { what, .. } if what == "$flag"),
        "{e:?}"
    );
    let r = run(
        &s,
        "SELECT * WHERE $flag LIMIT 2",
        &[("flag", ParamValue::Bool(false))],
    )
    .unwrap();
    assert_eq!(r.eligible, 0);
    // A value whose type binding cannot know (a parameter in a branch) is checked when used.
    let r = run(
        &s,
        "SELECT * ORDER BY score(if(item.year > 2000, $boost, 1)) LIMIT 3",
        &[("boost", ParamValue::Num(5.0))],
    )
    .unwrap();
    assert_eq!(num(&r.ids), vec![31, 32, 33]);
    // truncate() keeps at least one candidate.
    let e = run(
        &s,
        "SELECT * WHERE truncate($n)",
        &[("n", ParamValue::Num(0.0))],
    )
    .unwrap_err();
    assert!(
        matches!(&e, Error::Invalid { what, .. } if what == "$n"),
        "{e:?}"
    );
}

#[test]
fn names_resolve_by_one_case_rule() {
    let s = snapshot();
    let a = run(
        &s,
        "SELECT item.YEAR WHERE item.Year >= 2005 ORDER BY score(item.PRICE) LIMIT 3",
        &[],
    )
    .unwrap();
    let b = run(
        &s,
        "SELECT item.year WHERE item.year >= 2005 ORDER BY score(item.price) LIMIT 3",
        &[],
    )
    .unwrap();
    assert_eq!(a.ids, b.ids);
    // The same rule binds a saved query at validate time: over the names a fetch yields.
    let text = "SELECT * FROM column_order(columns = 'Year DESC') WHERE item.GENRES != 'x'";
    bind(&feed_lang::parse(text).unwrap(), text, s.names()).unwrap();
}

#[test]
fn plans_are_bound_once_per_version_and_text() {
    let s = snapshot();
    let text = "SELECT * WHERE item.year >= $y LIMIT 3";
    let a = s.plan(text).unwrap();
    run(&s, text, &[("y", ParamValue::Num(2000.0))]).unwrap();
    run(&s, text, &[("y", ParamValue::Num(1990.0))]).unwrap();
    assert!(Arc::ptr_eq(&a, &s.plan(text).unwrap()));
    assert_eq!(a.params.keys().collect::<Vec<_>>(), ["y"]);
}

#[test]
fn rerankers_keep_the_filter() {
    let s = snapshot();
    // Pinned and explored items must be eligible; a pinned item that is not is skipped.
    let r = run(
        &s,
        "SELECT * FROM popular(limit = 20) WHERE item.year >= 1980 \
         REORDER BY pin(ids = ['i2', 'i15'], positions = [2, 1]), \
         exploration(retriever = trending(window = '3d'), strength = 0.5) LIMIT 6",
        &[],
    )
    .unwrap();
    let ids = num(&r.ids);
    assert_eq!(ids[0], 15, "{ids:?}");
    // Parameters inside literal lists: one id and one position come with the request.
    let r = run(
        &s,
        "SELECT * FROM popular(limit = 20) REORDER BY pin(ids = [$a, 'i30'], positions = [$slot, 1]) LIMIT 4",
        &[("a", ParamValue::Str("i25".into())), ("slot", ParamValue::Num(3.0))],
    )
    .unwrap();
    assert_eq!(num(&r.ids), vec![30, 0, 25, 1]);
    assert!(ids.iter().all(|&i| i >= 10), "{ids:?}");
    // Spacing: comedies first by score, yet no two in a row share a genre set.
    let r = run(
        &s,
        "SELECT * ORDER BY score(if(item.genres = 'Comedy', 1, 0)) \
         REORDER BY spacing(attribute = 'genres') LIMIT 9",
        &[],
    )
    .unwrap();
    let g: Vec<usize> = num(&r.ids).iter().map(|i| i % 3).collect();
    assert!(g.windows(2).all(|w| w[0] != w[1]), "{g:?}");
}

/// A policy with two heads, as a multi-task ranker would have: the seam needs nothing outside
/// the policy's own file but its declared heads.
struct TwoHeads {
    n_items: usize,
}

impl Scorer for TwoHeads {
    fn n_items(&self) -> usize {
        self.n_items
    }

    fn score_users(&self, _: &[u32], out: &mut [f32]) {
        out.fill(0.0);
    }
}

impl TrainedPolicy for TwoHeads {
    fn kind(&self) -> &'static str {
        "two_heads"
    }

    fn refit(&mut self, _: crate::dataset::Interactions<'_>) -> crate::Result<()> {
        Ok(())
    }

    fn save(&self, _: &Path) -> crate::Result<()> {
        Ok(())
    }

    fn heads(&self) -> Vec<String> {
        vec!["like".into(), "hide".into()]
    }

    /// `like` = the item's id, `hide` = 1 for every third item.
    fn score_heads(&self, _: u32, items: &[u32], out: &mut [f32]) {
        let n = items.len();
        for (k, &i) in items.iter().enumerate() {
            out[k] = i as f32;
            out[n + k] = if i % 3 == 0 { 1.0 } else { 0.0 };
        }
    }
}

#[test]
fn outputs_of_a_multi_head_policy_are_addressed_by_name() {
    let s = snapshot();
    let mut names = s.names().clone();
    names.policies.push(crate::expr::PolicyNames {
        name: "ranker".into(),
        heads: vec!["like".into(), "hide".into()],
        vectors: false,
    });
    let text = "SELECT * ORDER BY score(ranker.like - 100 * ranker.HIDE) LIMIT 5";
    let plan = bind(&feed_lang::parse(text).unwrap(), text, &names).unwrap();
    let outputs: Vec<(String, usize)> = plan
        .order
        .as_ref()
        .unwrap()
        .needs
        .outputs
        .iter()
        .map(|o| (o.name.clone(), o.head))
        .collect();
    assert_eq!(
        outputs,
        [
            ("ranker.hide".to_string(), 1),
            ("ranker.like".to_string(), 0)
        ]
    );
    // A bare name of a policy with several outputs must say which.
    let text = "SELECT * ORDER BY score(ranker)";
    let (message, hint, at) = query_error(Error::query(
        bind(&feed_lang::parse(text).unwrap(), text, &names)
            .err()
            .unwrap(),
        text,
    ));
    assert!(message.contains("2 outputs"), "{message}");
    assert_eq!(at, "ranker");
    assert_eq!(hint.as_deref(), Some("`ranker.like`, `ranker.hide`"));
    // Scoring reads each head by its index, the policy scored once.
    let mut trained: BTreeMap<String, Box<dyn TrainedPolicy>> = BTreeMap::new();
    trained.insert("ranker".into(), Box::new(TwoHeads { n_items: 40 }));
    let policies = crate::serving::Policies::new(trained, BTreeMap::new());
    let like = crate::expr::OutputRef {
        name: "ranker.like".into(),
        policy: "ranker".into(),
        head: 0,
    };
    let hide = crate::expr::OutputRef {
        name: "ranker.hide".into(),
        policy: "ranker".into(),
        head: 1,
    };
    let cols = policies
        .score(
            &crate::serving::ScoringUser::trained(Some(0)),
            &[3, 4, 6],
            &[&hide, &like],
        )
        .unwrap();
    assert_eq!(cols, vec![vec![1.0, 0.0, 1.0], vec![3.0, 4.0, 6.0]]);
    // An unknown user has no personal scores.
    let cols = policies
        .score(&Default::default(), &[3, 4], &[&like])
        .unwrap();
    assert_eq!(cols, vec![vec![0.0, 0.0]]);
}
