//! Every `feedql` example of `spec/feedql.md` runs against a model over HTTP (the lang tests
//! check that they parse; this checks that they execute).

use crate::server_support::start;
use crate::support::*;

fn examples() -> Vec<String> {
    let text = std::fs::read_to_string(repo_path("spec/feedql.md")).unwrap();
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        match (&mut current, line.trim_end()) {
            (None, "```feedql") => current = Some(String::new()),
            (Some(body), "```") => {
                out.push(std::mem::take(body));
                current = None;
            }
            (Some(body), l) => {
                body.push_str(l);
                body.push('\n');
            }
            _ => {}
        }
    }
    out
}

#[test]
fn every_spec_example_runs() {
    let ws = Workspace::new();
    Synth::small().write(&ws.path("data"));
    // A catalog with the columns the examples use.
    let mut items = String::from("item_id,title,genres,year,language,director\n");
    for i in 0..200 {
        let genres = [
            "Drama|Film-Noir",
            "Comedy",
            "Action|Thriller",
            "Film-Noir",
            "Romance|Drama",
        ][i % 5];
        let language = ["en", "fr", "de"][i % 3];
        items.push_str(&format!(
            "i{i},The Item {i},{genres},{},{language},d{}\n",
            1930 + (i * 7) % 90,
            i % 11
        ));
    }
    ws.write("data/catalog.csv", &items);
    let yaml = model_yaml("spec", 3, 8)
        .replace("data/items.csv", "data/catalog.csv")
        .replace(
            "SELECT item_id, title, genre, year FROM items",
            "SELECT item_id, title, genres, year, language, director FROM items",
        )
        + "value_model:\n  weights: {als: 1, popular: 0.01}\n";
    let file = ws.write("model.yaml", &yaml);
    ws.ok(&["create-model", "--file", file.to_str().unwrap()]);
    let srv = start(&ws);
    let examples = examples();
    assert!(examples.len() >= 8, "{} examples", examples.len());
    for text in examples {
        let body = serde_json::json!({
            "model": "spec", "query": text,
            "params": {"user_id": "u1", "item_id": "i3", "candidates": ["i1", "i2", "i3"], "sponsored": ["i5"]},
        });
        let (st, r) = http(&srv.addr, "POST", "/query", Some(&body.to_string()));
        assert_eq!(st, 200, "{text}\n{r}");
        assert!(
            !r["results"].as_array().unwrap().is_empty() || r["eligible"] == 0,
            "{text}\n{r}"
        );
    }
}
