//! The crate's module graph has no cycles: each top-level module of `src/`
//! (config, matcher, record, policy, dispatch, input, plan, engine, run, report, …)
//! uses only modules that do not use it back, directly or around a loop,
//! and only the stages before it in a line's flow.
//!
//! The edges are the `crate::MODULE` paths written in code (not in comments
//! or doc comments), which is what `use` and qualified paths are. Run with
//! `cargo test --test layout -- --nocapture` to print the graph.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("read src") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// The top-level module a file of `src/` belongs to (`src/input/follow/mod.rs` → `input`).
fn module_of(src: &Path, file: &Path) -> String {
    let rel = file.strip_prefix(src).expect("under src");
    let first = rel.components().next().expect("a component");
    let name = first.as_os_str().to_string_lossy();
    name.strip_suffix(".rs").unwrap_or(&name).to_owned()
}

/// The modules `text` names as `crate::NAME`, outside comments.
fn uses(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    for line in text.lines() {
        let code = line.split("//").next().unwrap_or_default();
        let mut rest = code;
        while let Some(at) = rest.find("crate::") {
            rest = &rest[at + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            if !name.is_empty() {
                found.insert(name);
            }
        }
    }
    found
}

/// A cycle through `graph`, if there is one (depth-first search).
fn cycle(graph: &BTreeMap<String, BTreeSet<String>>) -> Option<Vec<String>> {
    fn visit(
        node: &str,
        graph: &BTreeMap<String, BTreeSet<String>>,
        path: &mut Vec<String>,
        done: &mut BTreeSet<String>,
    ) -> Option<Vec<String>> {
        if let Some(start) = path.iter().position(|n| n == node) {
            let mut found = path[start..].to_vec();
            found.push(node.to_owned());
            return Some(found);
        }
        if done.contains(node) {
            return None;
        }
        path.push(node.to_owned());
        for next in graph.get(node).into_iter().flatten() {
            if let Some(found) = visit(next, graph, path, done) {
                return Some(found);
            }
        }
        path.pop();
        done.insert(node.to_owned());
        None
    }
    let mut done = BTreeSet::new();
    graph
        .keys()
        .find_map(|n| visit(n, graph, &mut Vec::new(), &mut done))
}

#[test]
fn the_module_graph_has_no_cycle() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for file in &files {
        let module = module_of(&src, file);
        if module == "lib" || module == "main" {
            continue;
        }
        let text = std::fs::read_to_string(file).expect("read");
        let edges = graph.entry(module.clone()).or_default();
        edges.extend(uses(&text).into_iter().filter(|m| *m != module));
    }
    for (module, edges) in &graph {
        println!(
            "{module} -> {}",
            edges.iter().cloned().collect::<Vec<_>>().join(" ")
        );
    }
    assert!(graph.contains_key("dispatch") && graph.contains_key("plan"));
    if let Some(found) = cycle(&graph) {
        panic!("a module cycle: {}", found.join(" -> "));
    }
    // And along the flow: a stage uses only the stages before it (inputs
    // never reach into the matcher, the policies or the delivery).
    let stage = |m: &str| match m {
        "text" | "logging" | "component" | "internal_event" | "state" => 0,
        "input" => 1,
        "matcher" => 2,
        "record" | "policy" => 3,
        "dispatch" => 4,
        "config" => 5,
        "plan" => 6,
        "engine" | "report" => 7,
        "run" => 8,
        "cli" => 8,
        other => panic!("module {other} has no stage here: add it to tests/layout.rs"),
    };
    for (module, edges) in &graph {
        for used in edges {
            assert!(
                stage(used) < stage(module) || stage(module) == 0 && stage(used) == 0,
                "{module} (stage {}) uses {used} (stage {}), a later stage",
                stage(module),
                stage(used)
            );
        }
    }
}

#[test]
fn the_cycle_search_finds_one() {
    let graph: BTreeMap<String, BTreeSet<String>> = [
        ("a", vec!["b"]),
        ("b", vec!["c"]),
        ("c", vec!["a"]),
        ("d", vec![]),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.into_iter().map(str::to_owned).collect()))
    .collect();
    assert_eq!(
        cycle(&graph),
        Some(vec!["a".into(), "b".into(), "c".into(), "a".into()])
    );
    assert_eq!(
        uses("use crate::x::Y; // crate::z\n/// crate::w"),
        ["x".to_owned()].into()
    );
}
