//! Broken model files fail with a located one-line message and a hint, exit code 2, and leave
//! the ACTIVE version (and the version list) untouched.

use crate::support::*;

#[test]
fn each_broken_file_is_refused_and_nothing_changes() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let good = model_yaml("m", 3, 8);
    let file = ws.write("model.yaml", &good);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);

    let cases: &[(&str, String, &[&str])] = &[
        (
            "misspelled key",
            good.replace("iterations: 3", "iteratons: 3"),
            &[
                "model.yaml:10:",
                "unknown field `iteratons`",
                "did you mean `iterations`?",
            ],
        ),
        (
            "wrong type",
            good.replace("factors: 8", "factors: eight"),
            &["model.yaml:10:", "invalid type", "hint"],
        ),
        (
            "unknown connector",
            good.replace("FROM ratings", "FROM ratngs"),
            &[
                "model.yaml:6:",
                "fetch.events",
                "`ratngs`",
                "did you mean `ratings`?",
            ],
        ),
        (
            "DELETE in fetch",
            good.replace(
                "SELECT user_id, item_id, timestamp FROM ratings",
                "DELETE FROM ratings",
            ),
            &["model.yaml:6:", "fetch.events", "DELETE", "hint"],
        ),
        (
            "missing file",
            good.replace("data/ratings.csv", "data/nope.csv"),
            &[
                "model.yaml:3:",
                "connectors[0].path",
                "nope.csv",
                "no such file",
                "hint",
            ],
        ),
        (
            "no user_id",
            good.replace("SELECT user_id, item_id", "SELECT item_id"),
            &["model.yaml:6:", "fetch.events", "`user_id`", "hint"],
        ),
        (
            "two statements",
            good.replace("FROM ratings", "FROM ratings; SELECT 1"),
            &["fetch.events", "exactly one SELECT"],
        ),
        (
            "bad name",
            good.replace("name: m,", "name: My Model,"),
            &["model.yaml:1:", "model.name", "try `my_model`"],
        ),
        (
            "unknown policy type",
            good.replace("type: als", "type: alz"),
            &["unknown variant `alz`", "did you mean `als`?"],
        ),
        (
            "yaml syntax",
            good.replace("policies:", "policies: ["),
            &["model.yaml:"],
        ),
    ];
    for (what, text, expected) in cases {
        std::fs::write(&file, text).unwrap();
        for verb in ["validate", "update-model"] {
            let out = ws.feedctl(&[verb, "--file", file.to_str().unwrap()]);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{what} ({verb}): {stderr}");
            let line = stderr.trim();
            assert_eq!(line.lines().count(), 1, "{what}: one line: {line}");
            for e in *expected {
                assert!(
                    line.contains(e),
                    "{what} ({verb}): expected `{e}` in: {line}"
                );
            }
        }
        let view = ws.view_json("m");
        assert_eq!(view["active_version"], 1, "{what}");
        assert_eq!(
            view["versions"].as_array().unwrap().len(),
            1,
            "{what}: no version was made"
        );
    }
    // The model still serves.
    ws.ok(&["rank", "--model-name", "m", "--user-id", "u1"]);
}

#[test]
fn usage_errors_exit_2() {
    let ws = Workspace::new();
    let out = ws.feedctl(&["create-model"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ws.feedctl(&["rank", "--model-name", "nope", "--user-id", "u"]);
    assert_eq!(out.status.code(), Some(2));
    let out = ws.feedctl(&["validate", "--file", "/does/not/exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot read the model file"));
}

#[test]
fn saved_queries_are_bound_to_columns_and_policies_at_validation() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    let good = format!(
        "{}queries:\n  home: SELECT * FROM similarity(embedding = 'als', user = $user_id) WHERE item.year > 1990 ORDER BY score(als)\n",
        model_yaml("b", 2, 8)
    );
    let file = ws.write("model.yaml", &good);
    ws.ok(&["validate", "--file", file.to_str().unwrap()]);
    let cases = [
        (
            "item.year > 1990",
            "item.yeer > 1990",
            "queries.home: the items have no column `yeer` (hint: did you mean `item.year`?)",
        ),
        (
            "score(als)",
            "score(alss)",
            "no policy is named `alss` (hint: did you mean `als`?)",
        ),
        (
            "embedding = 'als'",
            "embedding = 'popular'",
            "policy `popular` has no vectors",
        ),
    ];
    // `validate` refuses `text` with exit 2 and a message holding every piece of `expected`.
    let refused = |text: String, expected: &[&str]| {
        std::fs::write(&file, text).unwrap();
        let out = ws.feedctl(&["validate", "--file", file.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        for piece in expected {
            assert!(err.contains(piece), "expected `{piece}` in {err}");
        }
    };
    for (from, to, expected) in cases {
        refused(good.replace(from, to), &[expected, "model.yaml:12:"]);
    }
    // A text column compared with a number fails here too, not on every request.
    refused(
        good.replace("item.year > 1990", "item.title > 1990"),
        &["`item.title` is text", "TRY_CAST"],
    );
    // A parameter default must be a value its parameter can take.
    refused(
        format!(
            "{good}  recent:\n    query: SELECT * WHERE item.year >= $since\n    params: {{since: soon}}\n"
        ),
        &["queries.recent.params.since", "must be a number"],
    );
    // A default LIMIT a request could not give.
    refused(
        format!("{good}  some:\n    query: SELECT * LIMIT $n\n    params: {{n: 0}}\n"),
        &["queries.some.params.n", "LIMIT must be between 1"],
    );
    // The value model binds at validation too: a text column in its expression, an unknown
    // demotion column.
    refused(
        format!("{good}value_model:\n  expression: \"als * item.title\"\n"),
        &["value_model.expression"],
    );
    refused(
        format!("{good}value_model:\n  weights: {{als: 1}}\n  demotions: {{pricey: 0.5}}\n"),
        &["value_model.demotions.pricey"],
    );
    // `rank` has no parameters to give a value model.
    refused(
        format!("{good}value_model:\n  expression: \"als * $w\"\n"),
        &["value_model.expression", "$w"],
    );
    // Names resolve by one rule at validation and at request time: a column written in another
    // case validates and serves.
    std::fs::write(&file, good.replace("item.year > 1990", "item.YEAR > 1990")).unwrap();
    ws.ok(&["validate", "--file", file.to_str().unwrap()]);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let out = ws.ok(&[
        "query",
        "--model-name",
        "b",
        "--saved",
        "home",
        "--param",
        "user_id=u1",
    ]);
    assert!(out.contains("version 1"), "{out}");
}

#[test]
fn data_outside_the_roots_is_refused() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("outside"));
    let good = model_yaml("r", 2, 8);
    // The model file in its own folder; the data beside it, not under it.
    let file = ws.write("model/model.yaml", &good.replace("data/", "../outside/"));
    let file = file.to_str().unwrap();
    let out = ws.feedctl(&["validate", "--file", file]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("outside the data roots") && err.contains("connectors[0].path"),
        "{err}"
    );
    // The operator can allow the folder, by flag or environment.
    let root = ws.path("outside");
    ws.ok(&[
        "validate",
        "--data-root",
        root.to_str().unwrap(),
        "--file",
        file,
    ]);
    let out = std::process::Command::new(feedctl_bin())
        .arg("--home")
        .arg(ws.home())
        .args(["validate", "--file", file])
        .env(
            "FEED_DATA_ROOTS",
            format!("/nonexistent:{}", root.display()),
        )
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // System files, directly or by a glob: refused without reading or listing anything there.
    for path in ["/etc/passwd", "/etc/*", "../../../../../../etc/passwd"] {
        let text = good.replace("data/ratings.csv", path).replace(
            "{id: ratings, type: file,",
            "{id: ratings, type: file, delimiter: ':',",
        );
        std::fs::write(file, text).unwrap();
        let out = ws.feedctl(&["validate", "--file", file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{path}: {err}");
        assert!(err.contains("outside the data roots"), "{path}: {err}");
        assert!(
            !err.contains("root:") && !err.contains("hosts"),
            "{path}: {err}"
        );
    }
    // A link under the model folder that leads outside is refused too.
    #[cfg(unix)]
    {
        std::os::unix::fs::symlink(ws.path("outside"), ws.path("model/data")).unwrap();
        std::fs::write(file, &good).unwrap();
        let out = ws.feedctl(&["validate", "--file", file]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{err}");
        assert!(err.contains("symbolic link"), "{err}");
    }
}
