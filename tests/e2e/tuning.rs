//! TUNING: a policy's hyper-parameter search on the validation cut, before the version trains
//! with the best trial's settings.

use crate::support::*;

fn ml100k(search: &str) -> String {
    let dir = movielens("ml-100k");
    format!(
        r#"model: {{name: tuned}}
connectors:
  - {{id: ratings, type: file, path: {dir}/ratings.csv}}
  - {{id: movies, type: file, path: {dir}/movies.csv}}
fetch:
  events: SELECT user_id, item_id, timestamp FROM ratings
  items: SELECT item_id, title, year, genres FROM movies
policies:
  - {{name: popular, type: popular}}
  - name: als
    type: als
    factors: 8
    iterations: 6
    tuning:
{search}
training: {{seed: 42}}
"#
    )
}

#[test]
fn tuning_als_on_movielens_keeps_the_best_trial() {
    let ws = Workspace::new();
    let dir = movielens("ml-100k");
    let search = "      trials: 6\n      search:\n        factors: [16, 48]\n        regularization: {log_uniform: [0.01, 300.0]}\n";
    let file = ws.write("model.yaml", &ml100k(search));
    let f = file.to_str().unwrap();
    let out = ws.ok(&["create-model", "--data-root", &dir, "--file", f]);
    assert!(out.contains("ACTIVE"), "{out}");

    let view = ws.view_json("tuned");
    let als = &view["metrics"]["policies"]["als"];
    let tuning = &als["tuning"];
    assert_eq!(
        (tuning["metric"].as_str(), tuning["method"].as_str()),
        (Some("ndcg@10"), Some("random"))
    );
    let trials = tuning["trials"].as_array().unwrap();
    assert_eq!(trials.len(), 6);
    let valid: Vec<f64> = trials
        .iter()
        .map(|t| t["valid"].as_f64().unwrap())
        .collect();
    let best = tuning["best"].as_u64().unwrap() as usize;
    let worst = valid.iter().cloned().fold(f64::INFINITY, f64::min);
    assert!(valid.iter().all(|&v| v <= valid[best]), "{valid:?}");
    assert!(
        valid[best] > worst,
        "the kept setting beats the worst trial: {valid:?}"
    );
    eprintln!("trials (validation NDCG@10): {valid:?}; kept {}", best + 1);
    // The version trained with the kept settings: the same training on the same cut gives the
    // same validation figure.
    assert!(
        (als["valid"]["ndcg@10"].as_f64().unwrap() - valid[best]).abs() < 1e-9,
        "{als}"
    );
    // Its settings are kept with the version, and a server loads it with them (the file says
    // 8 factors; the vectors have the kept number).
    let kept = &trials[best]["settings"];
    let v1 = ws.home().join("models/tuned/versions/000001");
    let tuned = json_file(&v1.join("policies/als/tuned.json"));
    assert_eq!(&tuned, kept);
    assert_ne!(kept["factors"], 8);
    let rank = |limit: &str| {
        ws.ok(&[
            "rank",
            "--model-name",
            "tuned",
            "--user-id",
            "196",
            "--limit",
            limit,
        ])
    };
    let ranked = rank("5");
    assert_eq!(
        ranked
            .lines()
            .filter(|l| l.trim_start().starts_with(char::is_numeric))
            .count(),
        5,
        "{ranked}"
    );

    // The log: TUNING between FETCHING and TRAINING, one line per trial.
    let statuses: Vec<&str> = view["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["status"].as_str().unwrap())
        .collect();
    let at = |s: &str| statuses.iter().position(|x| *x == s).unwrap();
    assert!(
        at("FETCHING") < at("TUNING") && at("TUNING") < at("TRAINING"),
        "{statuses:?}"
    );
    let lines = view["log"].to_string();
    assert!(
        lines.contains("als: trial 6/6") && lines.contains("keeping trial"),
        "{lines}"
    );
    let text = ws.ok(&["view-model", "--model-name", "tuned"]);
    assert!(
        text.contains("tuning of als (random search; * kept)"),
        "{text}"
    );

    // A serving-only change reuses the tuned version (no search, no training), which still
    // loads with its settings.
    std::fs::write(&file, ml100k(search) + "serving: {policy: popular}\n").unwrap();
    ws.ok(&["update-model", "--data-root", &dir, "--file", f]);
    let v2 = ws.home().join("models/tuned/versions/000002");
    let manifest = json_file(&v2.join("manifest.json"));
    assert_eq!(manifest["reuses"], 1, "{manifest}");
    let log = std::fs::read_to_string(v2.join("status.jsonl")).unwrap();
    assert!(
        !log.contains("TUNING") && !log.contains("TRAINING"),
        "{log}"
    );
    assert!(v2.join("policies/als/tuned.json").exists());
    let ranked = rank("3");
    assert!(ranked.contains("RANK"), "{ranked}");

    // Searches that cannot run are refused where they are written, and nothing is made.
    for (search, pieces) in [
        (
            "      search:\n        factorz: [16, 32]\n",
            &["tuning.search.factorz", "unknown field"][..],
        ),
        (
            "      method: grid\n      search:\n        regularization: {uniform: [0.1, 1.0]}\n",
            &["tuning.search.regularization", "a grid takes lists"][..],
        ),
        (
            "      search:\n        factors: [0, 16]\n",
            &["tuning.search.factors", "0"][..],
        ),
        (
            "      search: {}\n",
            &["tuning.search", "searches no field"][..],
        ),
    ] {
        let bad = ws.write("bad.yaml", &ml100k(search));
        let err = ws.refused(
            &[
                "validate",
                "--data-root",
                &dir,
                "--file",
                bad.to_str().unwrap(),
            ],
            pieces,
        );
        assert!(err.contains("bad.yaml:"), "located: {err}");
    }
}

fn json_file(path: &std::path::Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}
