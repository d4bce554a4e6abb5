//! The crate's top-level modules depend on each other without a cycle:
//! each `crate::<module>` a module's source names is an edge, and the
//! graph must be a DAG (so types, the store layout and config decoding stay
//! layered).

#![allow(clippy::expect_used, clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// Top-level module -> the other top-level modules its sources name.
fn graph(src: &Path) -> BTreeMap<String, BTreeSet<String>> {
    let mut files: BTreeMap<String, String> = BTreeMap::new();
    for entry in std::fs::read_dir(src).expect("read src") {
        let path = entry.expect("entry").path();
        let name = path.file_stem().unwrap().to_string_lossy().to_string();
        if name == "lib" {
            continue;
        }
        let mut text = String::new();
        if path.is_dir() {
            for sub in std::fs::read_dir(&path).expect("read module dir") {
                let p = sub.expect("entry").path();
                if p.extension().is_some_and(|e| e == "rs") {
                    text.push_str(&std::fs::read_to_string(&p).expect("read"));
                }
            }
        } else if path.extension().is_some_and(|e| e == "rs") {
            text = std::fs::read_to_string(&path).expect("read");
        } else {
            continue;
        }
        files.insert(name, text);
    }
    let modules: BTreeSet<String> = files.keys().cloned().collect();
    files
        .iter()
        .map(|(m, text)| {
            let deps = modules
                .iter()
                .filter(|other| *other != m)
                .filter(|other| {
                    text.contains(&format!("crate::{other}::"))
                        || text.contains(&format!("crate::{other}::{{"))
                        || text.contains(&format!("crate::{other};"))
                        || text.contains(&format!("crate::{other},"))
                        || text.contains(&format!("crate::{other}}}"))
                })
                .cloned()
                .collect();
            (m.clone(), deps)
        })
        .collect()
}

/// A cycle in the graph, if there is one (as the path around it).
fn cycle(g: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        g: &BTreeMap<String, BTreeSet<String>>,
        m: &str,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut c = path[i..].to_vec();
            c.push(m.to_string());
            return Some(c);
        }
        if done.contains(m) {
            return None;
        }
        path.push(m.to_string());
        for d in g.get(m).into_iter().flatten() {
            if let Some(c) = visit(g, d, path, done) {
                return Some(c);
            }
        }
        path.pop();
        done.insert(m.to_string());
        None
    }
    let mut done = BTreeSet::new();
    for m in g.keys() {
        if let Some(c) = visit(g, m, &mut Vec::new(), &mut done) {
            return Some(c);
        }
    }
    None
}

#[test]
fn notify_modules_have_no_cycle() {
    let g = graph(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"));
    assert!(g.len() >= 10, "{g:?}");
    assert!(
        g["dispatch"].contains("store") && g["outbox"].contains("render"),
        "{g:?}"
    );
    // The layering the crate documents.
    assert!(
        g["types"]
            .iter()
            .all(|d| d == "matcher" || d == "timeinterval"),
        "{g:?}"
    );
    assert!(
        !g["config"].contains("dispatch") && !g["routing"].contains("config"),
        "{g:?}"
    );
    assert!(
        !g["dispatch"].contains("outbox") && !g["outbox"].contains("dispatch"),
        "{g:?}"
    );
    if let Some(c) = cycle(&g) {
        panic!("module cycle in firebell-notify: {}", c.join(" -> "));
    }
}

#[test]
fn the_cycle_check_finds_a_cycle() {
    let g: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.into_iter().map(str::to_string).collect()))
    .collect();
    assert_eq!(
        cycle(&g).map(|c| c.join(" -> ")),
        Some("a -> b -> c -> a".to_string())
    );
}
