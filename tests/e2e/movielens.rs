//! Real data: MovieLens-100K and -1M, fetched by `examples/movielens/fetch_data.py` (the test
//! command runs it first). The acceptance figures of the foundation, checked on every run.

use crate::support::*;

fn example(name: &str) -> String {
    movielens(name);
    repo_path(&format!("examples/movielens/{name}.yaml"))
}

fn ndcg(view: &serde_json::Value, policy: Option<&str>) -> f64 {
    let m = &view["metrics"];
    let r = match policy {
        Some(p) => &m["policies"][p],
        None => &m["reference"],
    };
    r["test"]["ndcg@10"].as_f64().unwrap()
}

#[test]
fn movielens_1m_als_beats_popularity_twice_and_runs_are_reproducible() {
    let file = example("ml-1m");
    let ws = Workspace::new();
    ws.ok(&["create-model", "--file", &file]);
    let first = ws.view_json("movielens_1m");
    let (pop, als) = (ndcg(&first, None), ndcg(&first, Some("als")));
    // The protocol's popularity figure is about 0.018 (leave-last-out, full ranking).
    assert!((0.014..0.022).contains(&pop), "popularity NDCG@10 {pop}");
    assert!(
        als >= 2.0 * pop,
        "ALS NDCG@10 {als} is not 2x popularity {pop}"
    );
    assert_eq!(first["metrics"]["users"], 6040);

    // The same file and seed give the same split and the same metrics, although DataFusion
    // reads this file in several partitions whose order varies.
    ws.ok(&["update-model", "--file", &file]);
    let second = ws.view_json("movielens_1m");
    assert_eq!(second["active_version"], 2);
    assert_eq!(
        comparable_metrics(&first),
        comparable_metrics(&second),
        "two runs disagree"
    );
}

#[test]
fn movielens_100k_als_beats_popularity() {
    let file = example("ml-100k");
    let ws = Workspace::new();
    ws.ok(&["create-model", "--file", &file]);
    let view = ws.view_json("movielens_100k");
    let (pop, als) = (ndcg(&view, None), ndcg(&view, Some("als")));
    assert!(als > 1.3 * pop, "ALS {als} vs popularity {pop}");
    let out = ws.ok(&[
        "rank",
        "--model-name",
        "movielens_100k",
        "--user-id",
        "196",
        "--limit",
        "10",
        "--metadata",
    ]);
    assert_eq!(out.lines().count(), 12, "{out}");
}
