//! The engine's modules import one another without loops: each module can
//! be read, tested and changed knowing only the modules below it.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The top-level modules each module of `src/` names as `crate::…`,
/// outside comments and its tests.
fn imports() -> BTreeMap<String, BTreeSet<String>> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut dirs = vec![src.clone()];
    while let Some(dir) = dirs.pop() {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                dirs.push(p);
                continue;
            }
            let rel = p.strip_prefix(&src).unwrap().with_extension("");
            let module = rel.components().next().unwrap().as_os_str();
            let module = module.to_string_lossy().into_owned();
            if module == "lib" || module == "bin" {
                continue;
            }
            let text = std::fs::read_to_string(&p).unwrap();
            let code = text.split("#[cfg(test)]").next().unwrap_or("");
            let deps = graph.entry(module.clone()).or_default();
            for line in code.lines().filter(|l| !l.trim_start().starts_with("//")) {
                for (i, _) in line.match_indices("crate::") {
                    let rest = &line[i + "crate::".len()..];
                    let names: Vec<&str> = match rest.strip_prefix('{') {
                        Some(group) => group
                            .split('}')
                            .next()
                            .unwrap_or("")
                            .split(',')
                            .map(|n| n.trim().split("::").next().unwrap_or(""))
                            .collect(),
                        None => vec![
                            rest.split(|c: char| !c.is_alphanumeric() && c != '_')
                                .next()
                                .unwrap_or(""),
                        ],
                    };
                    for n in names {
                        if !n.is_empty() && n != module && n != "self" {
                            deps.insert(n.to_string());
                        }
                    }
                }
            }
        }
    }
    graph
}

/// A loop in `graph`, if there is one.
fn find_loop(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        m: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(i) = path.iter().position(|p| p == m) {
            let mut cycle = path[i..].to_vec();
            cycle.push(m.to_string());
            return Some(cycle);
        }
        if !done.insert(m.to_string()) {
            return None;
        }
        path.push(m.to_string());
        for d in graph.get(m).into_iter().flatten() {
            if let Some(c) = visit(d, graph, path, done) {
                return Some(c);
            }
        }
        path.pop();
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|m| visit(m, graph, &mut vec![], &mut done))
}

#[test]
fn modules_import_one_another_without_loops() {
    let graph = imports();
    // The modules the crate's documentation calls its base import nothing
    // that runs anything.
    for (module, allowed) in [
        ("error", &[][..]),
        ("options", &[]),
        ("log", &[]),
        ("files", &["error"]),
        ("executor", &["error"]),
        ("access", &["error", "files"]),
        ("loader", &["error", "access"]),
    ] {
        let deps = &graph[module];
        assert!(
            deps.iter().all(|d| allowed.contains(&d.as_str())),
            "{module} imports {deps:?}"
        );
    }
    assert_eq!(find_loop(&graph), None, "{graph:#?}");
    // The check sees a loop when there is one.
    let mut with_loop = graph.clone();
    with_loop
        .entry("executor".into())
        .or_default()
        .insert("container".into());
    assert!(find_loop(&with_loop).is_some());
}
