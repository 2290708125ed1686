//! The main user journey through the CLI: validate, create, list, view, rank, update, delete.

use crate::support::*;

#[test]
fn create_view_rank_update_delete() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("synth", 10, 16));
    let file = file.to_str().unwrap();

    let out = ws.ok(&["validate", "--file", file]);
    assert!(out.contains("ok"), "{out}");
    assert!(
        !ws.home().join("models/synth").exists(),
        "validate stores nothing"
    );

    let out = ws.ok(&["create-model", "--file", file]);
    assert!(out.contains("version 1 is ACTIVE"), "{out}");

    let list = ws.ok(&["list-models"]);
    let line = list.lines().find(|l| l.starts_with("synth")).expect(&list);
    assert!(line.contains("ACTIVE") && line.contains(" 1 "), "{list}");

    // Every policy has metrics, and the planted structure makes ALS beat popularity by far.
    let view = ws.view_json("synth");
    assert_eq!(view["active_version"], 1);
    let metrics = &view["metrics"];
    let pop = metrics["reference"]["test"]["ndcg@10"].as_f64().unwrap();
    let als = metrics["policies"]["als"]["test"]["ndcg@10"]
        .as_f64()
        .unwrap();
    assert!(metrics["policies"]["popular"]["test"]["hr@10"].is_number());
    assert!(
        als > 2.0 * pop && als > 0.1,
        "als {als} vs popularity {pop}"
    );
    let text = ws.ok(&["view-model", "--model-name", "synth"]);
    assert!(
        text.contains("NDCG@10") && text.contains("als") && text.contains("status log"),
        "{text}"
    );

    // Rank for a known user: `limit` items, none already seen.
    let out = ws.ok(&[
        "rank",
        "--model-name",
        "synth",
        "--user-id",
        "u3",
        "--limit",
        "7",
        "--metadata",
    ]);
    let items: Vec<&str> = out
        .lines()
        .skip(2)
        .take(7)
        .map(|l| l.split_whitespace().nth(1).unwrap())
        .collect();
    assert!(
        out.lines().nth(1).unwrap().contains("TITLE"),
        "metadata columns shown: {out}"
    );
    assert_eq!(items.len(), 7, "{out}");
    let ratings = std::fs::read_to_string(ws.path("data/ratings.csv")).unwrap();
    for item in &items {
        assert!(
            !ratings
                .lines()
                .any(|l| l.starts_with(&format!("u3,{item},"))),
            "{item} was seen by u3"
        );
    }
    // u3 is in taste group 3 (items i60..i79), most of which it has seen: the unseen ones lead.
    let in_group = |i: &str| (60..80).contains(&i[1..].parse::<usize>().unwrap());
    assert!(in_group(items[0]) && in_group(items[1]), "{out}");

    // An unknown user gets the popular fallback, flagged.
    let out = ws.ok(&[
        "rank",
        "--model-name",
        "synth",
        "--user-id",
        "nobody",
        "--limit",
        "3",
    ]);
    assert!(out.contains("popular fallback"), "{out}");

    // An update makes version 2 ACTIVE and version 1 INACTIVE.
    ws.ok(&["update-model", "--file", file]);
    let view = ws.view_json("synth");
    assert_eq!(view["active_version"], 2);
    assert_eq!(view["versions"][0]["status"], "INACTIVE");

    // create-model on an existing name is refused with exit code 2.
    let out = ws.feedctl(&["create-model", "--file", file]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("update-model"));

    ws.ok(&["delete-model", "--model-name", "synth"]);
    let out = ws.feedctl(&["view-model", "--model-name", "synth"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn schema_in_spec_is_up_to_date() {
    let ws = Workspace::new();
    let out = ws.ok(&["schema"]);
    let generated: serde_json::Value = serde_json::from_str(&out).unwrap();
    let path = repo_path("spec/model.schema.json");
    let committed: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    assert!(
        generated == committed,
        "spec/model.schema.json is stale: run `feedctl schema > spec/model.schema.json`"
    );
}

#[test]
fn openapi_in_spec_is_up_to_date() {
    let ws = Workspace::new();
    let out = ws.ok(&["schema", "--openapi"]);
    let generated: serde_json::Value = serde_json::from_str(&out).unwrap();
    let path = repo_path("spec/openapi.json");
    let committed: serde_json::Value = std::fs::read_to_string(path)
        .ok()
        .and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or_default();
    assert!(
        generated == committed,
        "spec/openapi.json is stale: run `feedctl schema --openapi > spec/openapi.json`"
    );
    assert_eq!(generated["openapi"], "3.1.0");
}

#[test]
fn example_model_files_validate_against_their_schema_shape() {
    // The example files parse (their data may not be fetched in this checkout, so only the
    // file-level checks run: a missing data file is the one acceptable error).
    for f in ["ml-100k.yaml", "ml-1m.yaml"] {
        let path = repo_path(&format!("examples/movielens/{f}"));
        let ws = Workspace::new();
        let out = ws.feedctl(&["validate", "--file", &path]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            out.status.success() || err.contains("no such file"),
            "{f}: {err}"
        );
    }
}

#[test]
fn rows_with_null_ids_are_skipped_and_counted() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let mut ratings = std::fs::read_to_string(ws.path("data/ratings.csv")).unwrap();
    ratings.push_str(",i1,3,1700000000\nu1,,3,1700000001\nu2,i2,3,\n");
    std::fs::write(ws.path("data/ratings.csv"), ratings).unwrap();
    let file = ws.write("model.yaml", &model_yaml("nulls", 2, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let view = ws.view_json("nulls");
    let log: Vec<String> = view["log"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["message"].as_str().unwrap().to_string())
        .collect();
    assert!(
        log.iter()
            .any(|m| m == "2 events skipped: null user_id or item_id"),
        "{log:?}"
    );
    assert!(
        log.iter().any(|m| m == "1 events skipped: null timestamp"),
        "{log:?}"
    );
}

#[test]
fn a_user_without_events_gets_the_fallback() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    ws.write("data/users.csv", "user_id,age\nu1,30\nlurker,40\n");
    let yaml = model_yaml("lurk", 2, 8)
        .replace(
            "  - {id: items,",
            "  - {id: people, type: file, path: data/users.csv}\n  - {id: items,",
        )
        .replace(
            "policies:",
            "  users: SELECT user_id, age FROM people\npolicies:",
        );
    let file = ws.write("model.yaml", &yaml);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let out = ws.ok(&[
        "rank",
        "--model-name",
        "lurk",
        "--user-id",
        "lurker",
        "--limit",
        "3",
    ]);
    assert!(out.contains("popular fallback"), "{out}");
    let out = ws.ok(&[
        "rank",
        "--model-name",
        "lurk",
        "--user-id",
        "u1",
        "--limit",
        "3",
    ]);
    assert!(!out.contains("fallback"), "{out}");
}

#[test]
fn a_failure_while_fetching_ends_in_error_and_keeps_the_active_version() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("f", 2, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    // Schema inference reads the first rows; a bad value far below them fails while fetching.
    let mut ratings = std::fs::read_to_string(ws.path("data/ratings.csv")).unwrap();
    ratings.push_str("u1,i1,3,not-a-time\n");
    std::fs::write(ws.path("data/ratings.csv"), ratings).unwrap();
    let out = ws.feedctl(&["update-model", "--file", file.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view = ws.view_json("f");
    assert_eq!(view["active_version"], 1);
    assert_eq!(view["versions"][1]["status"], "ERROR");
    assert!(
        view["versions"][1]["message"]
            .as_str()
            .unwrap()
            .contains("reading data"),
        "{view}"
    );
    ws.ok(&["rank", "--model-name", "f", "--user-id", "u1"]);
}

#[test]
fn two_creates_started_together_make_one_model() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("twin", 3, 8));
    let spawn = || {
        std::process::Command::new(feedctl_bin())
            .arg("--home")
            .arg(ws.home())
            .args(["create-model", "--file", file.to_str().unwrap()])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let (a, b) = (spawn(), spawn());
    let outs = [a.wait_with_output().unwrap(), b.wait_with_output().unwrap()];
    let codes: Vec<Option<i32>> = outs.iter().map(|o| o.status.code()).collect();
    let errors: Vec<String> = outs
        .iter()
        .map(|o| String::from_utf8_lossy(&o.stderr).to_string())
        .collect();
    // Whichever came second (while the first ran, or after it) is refused; only one version.
    assert_eq!(
        codes.iter().filter(|c| **c == Some(0)).count(),
        1,
        "{codes:?} {errors:?}"
    );
    let refused = codes.iter().position(|c| *c != Some(0)).unwrap();
    assert_eq!(codes[refused], Some(2), "{errors:?}");
    assert!(errors[refused].contains("already exists"), "{errors:?}");
    let view = ws.view_json("twin");
    assert_eq!(view["versions"].as_array().unwrap().len(), 1, "{view}");
    assert_eq!(view["active_version"], 1, "{view}");
}

#[test]
fn a_closed_pipe_ends_the_cli_quietly() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let file = ws.write("model.yaml", &model_yaml("p", 2, 8));
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    // `feedctl view-model ... | head -0`: the reader is gone before anything is written.
    let mut child = std::process::Command::new(feedctl_bin())
        .arg("--home")
        .arg(ws.home())
        .args(["view-model", "--model-name", "p"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take());
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.contains("panicked"), "{err}");
    assert_ne!(out.status.code(), Some(101), "{err}");
}

#[test]
fn create_model_says_what_the_fetch_skipped() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let ratings = ws.path("data/ratings.csv");
    let mut text = std::fs::read_to_string(&ratings).unwrap();
    text.push_str(",i1,5,1600000000\nu1,,4,1600000001\n");
    std::fs::write(&ratings, text).unwrap();
    let file = ws.write("model.yaml", &model_yaml("nulls", 2, 8));
    let out = ws.feedctl(&["create-model", "--file", file.to_str().unwrap()]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(
        err.contains("warning: 2 events skipped: null user_id or item_id"),
        "{err}"
    );
}
