//! File-driven golden tests. Each `golden/*.feedql` holds cases separated by `### <name>` lines;
//! the matching `.golden` file holds, per case, the query and either its S-expression or the
//! rendered error. `UPDATE_GOLDEN=1 cargo test -p feed-lang` rewrites the `.golden` files;
//! review the diff before committing.

use std::path::Path;

fn render(text: &str) -> String {
    match feed_lang::parse(text) {
        Ok(q) => feed_lang::sexpr(&q),
        Err(e) => e.render(text).trim_end().to_string(),
    }
}

fn cases(source: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in source.lines() {
        if let Some(name) = line.strip_prefix("### ") {
            out.push((name.trim().to_string(), String::new()));
        } else if let Some((_, body)) = out.last_mut() {
            body.push_str(line);
            body.push('\n');
        }
    }
    out.into_iter()
        .map(|(n, b)| (n, b.trim().to_string()))
        .collect()
}

#[test]
fn golden_files() {
    let dir = Path::new(&std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("tests/golden");
    let update = std::env::var_os("UPDATE_GOLDEN").is_some();
    let mut total = 0;
    let mut failures = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "feedql"))
        .collect();
    files.sort();
    for file in files {
        let source = std::fs::read_to_string(&file).unwrap();
        let mut rendered = String::new();
        for (name, text) in cases(&source) {
            total += 1;
            rendered.push_str(&format!("### {name}\n{text}\n---\n{}\n\n", render(&text)));
        }
        let golden = file.with_extension("golden");
        if update {
            std::fs::write(&golden, &rendered).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&golden).unwrap_or_default();
        if expected != rendered {
            failures.push(format!(
                "{} differs from what the parser now gives:\n{rendered}",
                golden.display()
            ));
        }
    }
    assert!(total >= 60, "at least 60 golden queries, found {total}");
    assert!(
        failures.is_empty(),
        "{}\n(rerun with UPDATE_GOLDEN=1 to accept, then review the diff)",
        failures.join("\n")
    );
}
