//! The engine's modules form layers without cycles: each may import only modules of the layers
//! below it. The order is written once, in `ARCHITECTURE.md` ("Module order"); this test reads
//! it and every `crate::…` path in the engine's sources, and fails on an edge that points up or
//! sideways, on a module the order does not list, and on a listed module that does not exist.
//! (In the spirit of rust-analyzer's tidy tests: the map is checked, so it stays true.)

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The layers as `ARCHITECTURE.md` lists them, bottom first: one line per layer, the modules of
/// a line being peers that must not import each other.
fn layers(architecture: &str) -> Vec<Vec<String>> {
    let after = architecture
        .split_once("## Module order")
        .expect("ARCHITECTURE.md has a `## Module order` section")
        .1;
    let block = after
        .split_once("```")
        .and_then(|(_, rest)| rest.split_once("```"))
        .expect("the module order is a fenced block")
        .0;
    block
        .lines()
        .skip(1) // the fence's info string
        .map(|l| l.split('#').next().unwrap_or(""))
        .map(|l| l.split_whitespace().map(str::to_string).collect::<Vec<_>>())
        .filter(|l| !l.is_empty())
        .collect()
}

/// Top-level module of each source file: `query/execute.rs` → `query`, `lifecycle.rs` →
/// `lifecycle`.
fn sources(root: &Path) -> Vec<(String, PathBuf)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for e in std::fs::read_dir(dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                walk(&p, out);
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    let mut files = Vec::new();
    walk(root, &mut files);
    files
        .into_iter()
        .filter_map(|p| {
            let rel = p.strip_prefix(root).unwrap();
            let first = rel.components().next()?.as_os_str().to_str()?.to_string();
            let module = first.trim_end_matches(".rs").to_string();
            (module != "lib" && module != "module_order").then_some((module, p))
        })
        .collect()
}

/// The crate-root names that `lib.rs` re-exports, with the module each comes from
/// (`pub use error::{Error, Result}` → `Error` → `error`).
fn reexports(lib: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for stmt in lib.split(';') {
        let stmt = stmt.trim();
        let Some(rest) = stmt.strip_prefix("pub use ") else {
            continue;
        };
        let Some((module, names)) = rest.split_once("::") else {
            continue;
        };
        for name in names.trim_matches(|c| c == '{' || c == '}').split(',') {
            let name = name.split(" as ").last().unwrap_or("").trim();
            if !name.is_empty() {
                out.insert(name.to_string(), module.trim().to_string());
            }
        }
    }
    out
}

/// The modules a file names through `crate::…`, comments left out.
fn edges(text: &str, names: &BTreeMap<String, String>) -> BTreeSet<String> {
    let code: String = text
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    let ident = |s: &str| -> String {
        s.chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect()
    };
    let resolve = |name: &str| names.get(name).cloned().unwrap_or(name.to_string());
    let mut out = BTreeSet::new();
    for (i, _) in code.match_indices("crate::") {
        let rest = &code[i + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            // `crate::{fetch, Error}`: the first segment of each element.
            let end = group.find('}').unwrap_or(group.len());
            for part in group[..end].split(',') {
                let name = ident(part.trim());
                if !name.is_empty() {
                    out.insert(resolve(&name));
                }
            }
        } else {
            let name = ident(rest);
            if !name.is_empty() {
                out.insert(resolve(&name));
            }
        }
    }
    out
}

#[test]
fn modules_import_only_the_layers_below() {
    let root = std::path::PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let architecture = std::fs::read_to_string(root.join("../ARCHITECTURE.md")).unwrap();
    let layers = layers(&architecture);
    let level: BTreeMap<&str, usize> = layers
        .iter()
        .enumerate()
        .flat_map(|(i, l)| l.iter().map(move |m| (m.as_str(), i)))
        .collect();
    let src = root.join("src");
    let names = reexports(&std::fs::read_to_string(src.join("lib.rs")).unwrap());
    let files = sources(&src);
    let modules: BTreeSet<&str> = files.iter().map(|(m, _)| m.as_str()).collect();

    let mut problems = Vec::new();
    for m in &modules {
        if !level.contains_key(m) {
            problems.push(format!(
                "module `{m}` is not in ARCHITECTURE.md's module order"
            ));
        }
    }
    for m in level.keys() {
        if !modules.contains(m) {
            problems.push(format!(
                "ARCHITECTURE.md's module order lists `{m}`, which does not exist"
            ));
        }
    }
    for (module, path) in &files {
        let Some(&from) = level.get(module.as_str()) else {
            continue;
        };
        let text = std::fs::read_to_string(path).unwrap();
        for target in edges(&text, &names) {
            if target == *module {
                continue;
            }
            match level.get(target.as_str()) {
                Some(&to) if to < from => {}
                Some(_) => problems.push(format!(
                    "{}: `{module}` imports `{target}`, which is not below it",
                    path.strip_prefix(&root).unwrap().display()
                )),
                None => problems.push(format!(
                    "{}: `{module}` names `crate::{target}`, which is no module",
                    path.strip_prefix(&root).unwrap().display()
                )),
            }
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

#[test]
fn edges_are_read_from_paths_and_groups() {
    let names = reexports("pub use error::{did_you_mean, Error};\npub use serving::Snapshot;");
    let text = "use crate::config::X;\n// crate::query in a comment\nuse crate::{fetch, Error};\nfn f() { crate::Snapshot::load(); }";
    let found: Vec<String> = edges(text, &names).into_iter().collect();
    assert_eq!(found, ["config", "error", "fetch", "serving"]);
}
