//! The gateway's modules import one another without cycles (ARCHITECTURE.md, "Invariants"):
//! the fronts feed the dispatcher, the dispatcher the pipeline, the pipeline the stages and
//! the relay, and nothing lower reaches back up. A module's `use crate::…` paths (outside
//! comments and its `#[cfg(test)]` tests) are its edges; a path names the longest module it
//! starts with. Test modules may import anything.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    reason = "a test fails loudly"
)]

use std::{
    collections::{BTreeMap, BTreeSet},
    fs,
    path::Path,
};

#[test]
fn gateway_modules_import_one_another_without_cycles() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/gateway/src");
    let mut modules = BTreeMap::new();
    collect(&src, &src, &mut modules);
    assert!(
        modules.len() > 20,
        "found only {} gateway modules under {}",
        modules.len(),
        src.display()
    );

    let names: BTreeSet<String> = modules.keys().cloned().collect();
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for (module, text) in &modules {
        for path in crate_paths(text) {
            let Some(target) = longest_module(&path, &names) else {
                continue;
            };
            // A child naming its parent (its own room) is not an edge between modules.
            if target != *module && !module.starts_with(&format!("{target}::")) {
                edges.entry(module.clone()).or_default().insert(target);
            }
        }
    }
    let cycles = find_cycles(&edges);
    assert!(
        cycles.is_empty(),
        "the gateway's modules import one another in a circle; move the shared piece down to a \
         module both can import:\n  {}",
        cycles.join("\n  ")
    );
}

/// Every `.rs` file under `dir`, keyed by its module path (`stages::record`, `session`).
fn collect(root: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            collect(root, &path, out);
            continue;
        }
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let rel = path.strip_prefix(root).unwrap().with_extension("");
        let mut parts: Vec<String> = rel.iter().map(|p| p.to_string_lossy().into_owned()).collect();
        if parts.last().is_some_and(|p| p == "mod" || p == "lib") {
            parts.pop();
        }
        let text = fs::read_to_string(&path).unwrap();
        // Test modules sit at the end of a file and may import anything.
        let text = text.split("#[cfg(test)]").next().unwrap_or_default();
        let code: String = text
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        out.insert(parts.join("::"), code);
    }
}

/// The paths a module names after `crate::`, with `use crate::{a::{b, c}, d}` groups expanded.
fn crate_paths(code: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut rest = code;
    while let Some(at) = rest.find("crate::") {
        rest = &rest[at + "crate::".len()..];
        if let Some(group) = rest.strip_prefix('{') {
            let body = balanced(group);
            expand("", body, &mut out);
            rest = &group[body.len()..];
        } else {
            let end = rest
                .find(|c: char| !(c.is_alphanumeric() || c == '_' || c == ':'))
                .unwrap_or(rest.len());
            let path = rest[..end].trim_end_matches(':');
            // `crate::a::{b, c}`: the prefix and each member.
            if rest[end..].starts_with('{') && rest[..end].ends_with("::") {
                let body = balanced(&rest[end + 1..]);
                expand(&format!("{path}::"), body, &mut out);
            } else {
                out.push(path.to_owned());
            }
        }
    }
    out
}

/// The text up to the `}` that closes a group whose `{` was just consumed.
fn balanced(text: &str) -> &str {
    let mut depth = 0usize;
    for (i, c) in text.char_indices() {
        match c {
            '{' => depth += 1,
            '}' if depth == 0 => return &text[..i],
            '}' => depth -= 1,
            _ => {}
        }
    }
    text
}

/// Expands one `{…}` group body under `prefix`.
fn expand(prefix: &str, body: &str, out: &mut Vec<String>) {
    let mut depth = 0usize;
    let mut start = 0;
    let mut items = Vec::new();
    for (i, c) in body.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                items.push(&body[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    items.push(&body[start..]);
    for item in items {
        let item = item.trim();
        if item.is_empty() {
            continue;
        }
        match item.find('{') {
            Some(open) => {
                let head = item[..open].trim_end_matches(':');
                let inner = item[open + 1..].trim_end().trim_end_matches('}');
                expand(&format!("{prefix}{head}::"), inner, out);
            }
            None => out.push(format!("{prefix}{}", item.split_whitespace().next().unwrap_or(item))),
        }
    }
}

/// The longest known module `path` starts with.
fn longest_module(path: &str, modules: &BTreeSet<String>) -> Option<String> {
    let segments: Vec<&str> = path.split("::").filter(|s| !s.is_empty()).collect();
    (1..=segments.len())
        .rev()
        .map(|n| segments[..n].join("::"))
        .find(|candidate| modules.contains(candidate))
}

/// Each cycle as `a -> b -> … -> a`, found by depth-first search.
fn find_cycles(edges: &BTreeMap<String, BTreeSet<String>>) -> Vec<String> {
    let mut cycles = BTreeSet::new();
    for start in edges.keys() {
        let mut stack = vec![(start.clone(), vec![start.clone()])];
        let mut seen = BTreeSet::new();
        while let Some((node, path)) = stack.pop() {
            for next in edges.get(&node).into_iter().flatten() {
                if next == start {
                    cycles.insert(format!("{} -> {start}", path.join(" -> ")));
                } else if seen.insert(next.clone()) {
                    let mut longer = path.clone();
                    longer.push(next.clone());
                    stack.push((next.clone(), longer));
                }
            }
        }
    }
    cycles.into_iter().collect()
}

#[test]
fn the_path_reader_expands_groups() {
    let code = "use crate::{a::B, c::{d::E, f}, g};\nlet x = crate::h::i(1);\nuse crate::j::{k, l::M};";
    let mut got = crate_paths(code);
    got.sort();
    assert_eq!(got, ["a::B", "c::d::E", "c::f", "g", "h::i", "j::k", "j::l::M"]);
    let edges = BTreeMap::from([
        ("a".to_owned(), BTreeSet::from(["b".to_owned()])),
        ("b".to_owned(), BTreeSet::from(["a".to_owned()])),
    ]);
    assert_eq!(find_cycles(&edges).len(), 2, "a -> b -> a and b -> a -> b");
}
