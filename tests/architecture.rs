//! The shape of the code, checked: the module import graph has no circle, and no module
//! imports from a layer above its own (README: "Architecture").
//!
//! Oracle: the source text itself. Every `crate::…` and `super::…` path in non-test code is
//! resolved to the module it names; an edge joins the importing module and that module,
//! lifted to the children of their nearest common ancestor (so `kind::group::plan` using
//! `kind::instance::plan` is an edge `group -> instance` inside `kind`). A child naming its
//! own ancestor (`super::Plan` for the shared items of its folder) is not an edge between
//! siblings and is allowed.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

/// The top-level modules, lowest layer first. A module may import from its own layer or
/// any layer below it, never from one above; inside a layer the graph must still have no
/// circle.
const LAYERS: &[&[&str]] = &[
    // Leaves: no offhours imports, or only each other.
    &["capacity", "shard", "telemetry", "failure"],
    // Time: schedules, their evaluation and compilation to Auto Scaling actions.
    &["schedule"],
    &["model", "compile"],
    &["seal"],
    &["config"],
    // The pure planners of every kind, the shared tag handling, and each kind's API trait.
    &["kind", "fixtures"],
    &["explain", "feeds"],
    // The cloud: the trait of a whole cloud and its in-memory fake.
    &["cloud"],
    // The org-level policy checker (pure, but for `policy::sync`, which works over a cloud
    // and the traits of `policy::org`).
    &["policy"],
    // What a pass did.
    &["report"],
    // The AWS SDK shell.
    &["aws"],
    &["controller", "metrics", "notify"],
    // What people steer and are told: `override`, the warning before a stop, the savings
    // projection.
    &["overrides", "notice", "savings", "status"],
    &["pass"],
    &["daemon", "commands"],
];

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            rust_files(&p, out);
        } else if p.extension().is_some_and(|x| x == "rs") {
            out.push(p);
        }
    }
}

/// `src/kind/group/plan.rs` -> `["kind", "group", "plan"]`; `mod.rs` names its folder.
fn module_of(src: &Path, file: &Path) -> Vec<String> {
    let rel = file.strip_prefix(src).unwrap().with_extension("");
    let mut parts: Vec<String> = rel.iter().map(|s| s.to_string_lossy().into_owned()).collect();
    if parts.last().is_some_and(|l| l == "mod" || l == "lib" || l == "main") {
        parts.pop();
    }
    parts
}

/// The code of a file without its test module (`#[cfg(test)] mod tests …` to the end of
/// the file, as every module here places it) and without comments.
fn non_test_code(text: &str) -> String {
    let cut = text.find("#[cfg(test)]\nmod tests").unwrap_or(text.len());
    text[..cut]
        .lines()
        .map(|l| match l.find("//") {
            Some(i) => &l[..i],
            None => l,
        })
        .collect::<Vec<_>>()
        .join("\n")
}

/// Every path the code names from `crate::` or `super::`, expanded through `{…}` groups.
fn paths(code: &str, me: &[String]) -> Vec<Vec<String>> {
    let mut out = Vec::new();
    let bytes = code.as_bytes();
    for start in ["crate::", "super::"] {
        let mut from = 0;
        while let Some(i) = code[from..].find(start) {
            let at = from + i;
            from = at + start.len();
            if at > 0 && (bytes[at - 1].is_ascii_alphanumeric() || bytes[at - 1] == b'_' || bytes[at - 1] == b':') {
                continue;
            }
            let base: Vec<String> = if start == "crate::" {
                Vec::new()
            } else {
                // `super::super::x` climbs once per `super`.
                let mut b = me.to_vec();
                b.pop();
                let mut rest = &code[from..];
                while let Some(r) = rest.strip_prefix("super::") {
                    b.pop();
                    rest = r;
                }
                b
            };
            let mut rest = &code[from..];
            while let Some(r) = rest.strip_prefix("super::") {
                rest = r;
            }
            expand(rest, base, &mut out);
        }
    }
    out
}

/// Reads `a::b::{c, d::e}` at the head of `text` into paths under `base`.
fn expand(text: &str, base: Vec<String>, out: &mut Vec<Vec<String>>) {
    let mut path = base;
    let mut rest = text;
    loop {
        let ident: String = rest
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .collect();
        if ident.is_empty() {
            if let Some(group) = rest.strip_prefix('{') {
                // Split the group's items at depth-0 commas.
                let mut depth = 0;
                let mut item = String::new();
                for c in group.chars() {
                    match c {
                        '{' => depth += 1,
                        '}' if depth == 0 => break,
                        '}' => depth -= 1,
                        ',' if depth == 0 => {
                            expand(item.trim(), path.clone(), out);
                            item.clear();
                            continue;
                        }
                        _ => {}
                    }
                    item.push(c);
                }
                if !item.trim().is_empty() {
                    expand(item.trim(), path.clone(), out);
                }
                return;
            }
            break;
        }
        rest = &rest[ident.len()..];
        path.push(ident);
        match rest.strip_prefix("::") {
            Some(r) => rest = r,
            None => break,
        }
    }
    out.push(path);
}

struct Graph {
    modules: BTreeSet<Vec<String>>,
    /// (importer, imported) module pairs, with one example path each.
    edges: BTreeMap<(Vec<String>, Vec<String>), String>,
}

fn graph() -> Graph {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&src, &mut files);
    let modules: BTreeSet<Vec<String>> = files
        .iter()
        .filter(|f| !f.ends_with("main.rs"))
        .map(|f| module_of(&src, f))
        .collect();
    let mut edges = BTreeMap::new();
    for f in &files {
        let me = module_of(&src, f);
        if f.ends_with("main.rs") || me.last().is_some_and(|l| l == "tests") {
            continue;
        }
        let code = non_test_code(&std::fs::read_to_string(f).unwrap());
        for p in paths(&code, &me) {
            // The longest prefix that is a module.
            let target = (0..=p.len())
                .rev()
                .map(|n| p[..n].to_vec())
                .find(|m| modules.contains(m))
                .unwrap_or_default();
            if target == me {
                continue;
            }
            // Lift both to the children of their nearest common ancestor.
            let common = me.iter().zip(&target).take_while(|(a, b)| a == b).count();
            if common >= target.len() || common >= me.len() {
                // One is an ancestor of the other: a child using its folder's shared items,
                // or a folder declaring and re-exporting its children.
                continue;
            }
            let a = me[..=common].to_vec();
            let b = target[..=common].to_vec();
            edges
                .entry((a, b))
                .or_insert_with(|| format!("{} uses {}", me.join("::"), p.join("::")));
        }
    }
    Graph { modules, edges }
}

/// Every circle a depth-first search closes in the graph, as `a -> b -> a`.
fn circles<'a>(edges: impl Iterator<Item = &'a (Vec<String>, Vec<String>)>) -> Vec<String> {
    let mut next: BTreeMap<&Vec<String>, Vec<&Vec<String>>> = BTreeMap::new();
    for (a, b) in edges {
        next.entry(a).or_default().push(b);
    }
    let mut circles = Vec::new();
    let mut done: BTreeSet<&Vec<String>> = BTreeSet::new();
    for start in next.keys() {
        let mut stack: Vec<(&Vec<String>, usize)> = vec![(start, 0)];
        let mut on: Vec<&Vec<String>> = vec![start];
        while let Some((node, i)) = stack.pop() {
            let succ = next.get(node).map(Vec::as_slice).unwrap_or_default();
            if i < succ.len() {
                stack.push((node, i + 1));
                let s = succ[i];
                if let Some(pos) = on.iter().position(|x| *x == s) {
                    let names: Vec<String> = on[pos..].iter().map(|m| m.join("::")).collect();
                    circles.push(format!("{} -> {}", names.join(" -> "), s.join("::")));
                } else if !done.contains(s) {
                    stack.push((s, 0));
                    on.push(s);
                }
            } else {
                done.insert(node);
                on.pop();
            }
        }
    }
    circles.sort();
    circles.dedup();
    circles
}

fn layer_of(top: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&top))
}

#[test]
fn every_top_level_module_has_a_layer() {
    let g = graph();
    let tops: BTreeSet<&str> = g
        .modules
        .iter()
        .filter(|m| m.len() == 1)
        .map(|m| m[0].as_str())
        .collect();
    let missing: Vec<&&str> = tops.iter().filter(|t| layer_of(t).is_none()).collect();
    assert!(missing.is_empty(), "modules with no layer in LAYERS: {missing:?}");
    assert!(tops.len() > 15, "the walk found the modules: {tops:?}");
}

#[test]
fn no_module_imports_from_a_higher_layer() {
    let g = graph();
    let upward: Vec<&String> = g
        .edges
        .iter()
        .filter(|((a, b), _)| a.len() == 1 && layer_of(&a[0]) < layer_of(&b[0]))
        .map(|(_, why)| why)
        .collect();
    assert!(upward.is_empty(), "imports from a higher layer:\n{upward:#?}");
}

#[test]
fn the_module_import_graph_has_no_circle() {
    let g = graph();
    assert!(
        g.edges.len() > 30,
        "the walk found the imports ({} edges)",
        g.edges.len()
    );
    let circles = circles(g.edges.keys());
    let why: Vec<&String> = g.edges.values().collect();
    assert!(circles.is_empty(), "import circles:\n{circles:#?}\nedges:\n{why:#?}");
}

#[test]
fn the_checker_reads_paths_and_finds_circles() {
    // The parser on a known snippet: both kinds of path, groups, and `super` climbing.
    let me: Vec<String> = ["kind", "group", "plan"].iter().map(|s| s.to_string()).collect();
    let got = paths(
        "use crate::{config::Config, model::{Group, TAG_X}};\nuse super::super::instance::plan::x;\nfn f() { crate::report::y(); }",
        &me,
    );
    let want: Vec<Vec<&str>> = vec![
        vec!["config", "Config"],
        vec!["model", "Group"],
        vec!["model", "TAG_X"],
        vec!["report", "y"],
        vec!["kind", "instance", "plan", "x"],
    ];
    assert_eq!(got, want);
}

#[test]
fn the_circle_finder_finds_a_circle_and_passes_a_chain() {
    let m = |s: &str| vec![s.to_string()];
    let chain = [(m("a"), m("b")), (m("b"), m("c")), (m("a"), m("c"))];
    assert!(circles(chain.iter()).is_empty());
    let circle = [(m("a"), m("b")), (m("b"), m("c")), (m("c"), m("a"))];
    assert_eq!(circles(circle.iter()).len(), 1, "{:?}", circles(circle.iter()));
}
