//! `type: onnx`: a small two-head model built with Python's `onnx` package (`onnx/model.py`)
//! scores through Feed as through Python's `onnxruntime`, to 1e-5; a file whose inputs or
//! outputs do not match its declaration fails `validate` and `create-model`, naming the
//! mismatch, and creates nothing.

use std::collections::HashMap;
use std::process::Command;

use crate::support::*;

/// Runs `tests/e2e/onnx/model.py` with `args`; returns its stdout.
fn python(args: &[&str]) -> String {
    let script = repo_path("tests/e2e/onnx/model.py");
    let out = Command::new("python3")
        .arg(&script)
        .args(args)
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "python3 {script} {args:?} failed (scripts/test installs onnx and onnxruntime):\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

/// Synthetic events and items, users with an age, and a model file over them whose `ext`
/// policy reads `model.onnx` (with `ext_block` as its declaration).
fn workspace(ext_block: &str) -> (Workspace, std::path::PathBuf) {
    let ws = Workspace::new();
    let data = ws.path("data");
    Synth::small().write(&data);
    let users: String = std::iter::once("user_id,age\n".to_string())
        .chain((0..300).map(|u| format!("u{u},{}\n", 18 + (u * 7) % 50)))
        .collect();
    ws.write("data/users.csv", &users);
    let file = ws.write(
        "model.yaml",
        &format!(
            r#"model: {{name: ext, description: an imported scoring model}}
connectors:
  - {{id: ratings, type: file, path: data/ratings.csv}}
  - {{id: items, type: file, path: data/items.csv}}
  - {{id: users, type: file, path: data/users.csv}}
fetch:
  events: SELECT user_id, item_id, timestamp FROM ratings
  items: SELECT item_id, title, genre, year, year / 1000.0 AS millennia, (year - 1950) / 10.0 AS decades FROM items
  users: SELECT user_id, age FROM users
policies:
  - {{name: popular, type: popular}}
{ext_block}value_model:
  weights: {{ext.like: 1, ext.hide: -2}}
"#
        ),
    );
    (ws, file)
}

const EXT: &str = r#"  - name: ext
    type: onnx
    file: model.onnx
    inputs:
      - {name: item, features: [item.millennia, item.decades]}
      - {name: context, features: [user.age, history]}
    outputs:
      - {name: like, output: like}
      - {name: hide, output: hide}
"#;

#[test]
fn onnx_scores_equal_onnxruntime_in_python() {
    let (ws, file) = workspace(EXT);
    let model = ws.path("model.onnx");
    python(&["build", model.to_str().unwrap()]);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let data = ws.path("data");
    for user in ["u3", "u150"] {
        let reference: HashMap<String, [f64; 2]> = serde_json::from_str(&python(&[
            "score",
            model.to_str().unwrap(),
            data.to_str().unwrap(),
            user,
        ]))
        .unwrap();
        let out = ws.ok(&[
            "query",
            "--model-name",
            "ext",
            "--query",
            "SELECT * FROM popular(limit = 1000) ORDER BY score(value_model) LIMIT 1000",
            "--param",
            &format!("user_id={user}"),
            "--explain",
        ]);
        let explanation: serde_json::Value =
            serde_json::from_str(&out[out.find("\n{").unwrap()..]).unwrap();
        let items = explanation["items"].as_array().unwrap();
        assert_eq!(items.len(), reference.len(), "every item scored");
        let mut worst: f64 = 0.0;
        for item in items {
            let id = item["id"].as_str().unwrap();
            let expected = reference[id];
            for (h, head) in ["ext.like", "ext.hide"].iter().enumerate() {
                let got = item["policy_scores"][head].as_f64().unwrap();
                worst = worst.max((got - expected[h]).abs());
            }
        }
        eprintln!(
            "{user}: {} items, largest difference from onnxruntime {worst:e}",
            items.len()
        );
        assert!(worst <= 1e-5, "{user}: {worst}");
    }
    // The version keeps its own copy: the user's file may go.
    std::fs::remove_file(&model).unwrap();
    ws.ok(&[
        "rank",
        "--model-name",
        "ext",
        "--user-id",
        "u3",
        "--limit",
        "3",
    ]);
}

/// Mismatches between the file and the declaration, each named, located, and creating nothing.
#[test]
fn onnx_file_that_does_not_match_fails_naming_the_mismatch() {
    let cases: [(&str, Option<&str>, &[&str]); 6] = [
        (
            // The graph takes three numbers per row; the policy feeds two.
            EXT,
            Some("3"),
            &[
                "model.yaml:",
                "policies[1].inputs[0].features",
                "input `item` of `model.onnx` is float32 [-1, 3]",
                "feeds float32 [batch, 2] (item.millennia, item.decades)",
            ],
        ),
        (
            &EXT.replace("{name: item,", "{name: items,"),
            None,
            &[
                "policies[1].inputs[0].name",
                "`model.onnx` has no input `items`",
                "its inputs: `item` (float32 [-1, 2]), `context` (float32 [-1, 2])",
            ],
        ),
        (
            &EXT.replace(
                "      - {name: context, features: [user.age, history]}\n",
                "",
            ),
            None,
            &[
                "policies[1].inputs",
                "input `context` (float32 [-1, 2]) of `model.onnx` is not fed",
            ],
        ),
        (
            &EXT.replace("output: hide}", "output: p_hide}"),
            None,
            &[
                "policies[1].outputs[1].output",
                "`model.onnx` has no output `p_hide`",
                "its outputs: `like`",
            ],
        ),
        (
            &EXT.replace("user.age", "user.agee"),
            None,
            &[
                "policies[1].inputs[1].features[0]",
                "`agee` is not a column of `fetch.users`",
                "did you mean `age`?",
            ],
        ),
        (
            &EXT.replace("item.decades]", "item.genre]"),
            None,
            &[
                "policies[1].inputs[0].features[1]",
                "column `genre` of `fetch.items` is Utf8",
                "CAST(genre AS DOUBLE)",
            ],
        ),
    ];
    for (block, width, pieces) in cases {
        let (ws, file) = workspace(block);
        let model = ws.path("model.onnx");
        match width {
            Some(w) => python(&["build", model.to_str().unwrap(), "--item-width", w]),
            None => python(&["build", model.to_str().unwrap()]),
        };
        ws.refused(&["validate", "--file", file.to_str().unwrap()], pieces);
        ws.refused(&["create-model", "--file", file.to_str().unwrap()], pieces);
        assert!(!ws.home().join("models/ext/versions").exists());
    }
    // A bad declaration is refused before the file is read.
    let (ws, file) = workspace(&EXT.replace("history]", "hours]"));
    ws.refused(
        &["validate", "--file", file.to_str().unwrap()],
        &[
            "policies[1].inputs[1].features[1]",
            "`hours` is not a feature Feed can feed",
            "`item.<column>`, `user.<column>`, `hour` or `history`",
        ],
    );
}
