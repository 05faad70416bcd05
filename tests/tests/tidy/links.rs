//! Links and document references resolve inside the repository.
//!
//! - Every relative markdown link `[text](path)` or `[text](path#anchor)` in any `*.md` file
//!   names an existing file or directory; an anchor into a `.md` file (or `#anchor` alone) names
//!   one of its headings, slugged the way GitHub does.
//! - Every `*.md` path named in a source, config or script file (`docs/THREATS.md`,
//!   `README.md`, `testdata/…/README.md`) exists, relative to the naming file's directory or
//!   one of its ancestors up to the repository root; absolute paths are not checked.
//! - A quoted section after such a name names a heading of that document:
//!   `README.md ("Config")`, `docs/PRODUCT.md, "Risk tiers"`, `README "Policy"`,
//!   `the README's "Tests"`, and `see "Identity"` inside a markdown file.
mod text;

use std::fs;
use std::path::{Path, PathBuf};

use text::{heading_slugs, headings, is_path_char, markdown_links, md_mentions, quoted_after};

/// Directories never walked, by name: VCS data, build output, installed packages.
const SKIP_NAMES: &[&str] = &[".git", "target", "node_modules"];
/// Directories never walked, by path from the root: local run data the repository ignores.
const SKIP_PATHS: &[&str] = &[
    "bench-results",
    "data",
    ".portcullis-demo",
    "fuzz/corpus",
    "fuzz/artifacts",
    // The PyPI test peers' venv (tools/peers/install.sh): installed packages, not ours.
    "tools/peers/python",
];
/// Files whose text is scanned for `*.md` mentions (plus extensionless `#!` scripts).
const SOURCE_EXTENSIONS: &[&str] = &["rs", "toml", "sh", "py", "cedar", "rego"];

#[test]
fn markdown_links_resolve() {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in files(&root).iter().filter(|f| has_extension(f, "md")) {
        let Some(text) = read(file, &mut problems) else {
            continue;
        };
        for (line_no, target) in markdown_links(&text) {
            if let Err(why) = check_link(file, &target) {
                problems.push(format!("{}:{line_no}: link `{target}`: {why}", shown(&root, file)));
            }
        }
        check_quoted_sections(&root, file, &text, true, &mut problems);
    }
    assert!(problems.is_empty(), "broken markdown links:\n{}", problems.join("\n"));
}

#[test]
fn documents_named_in_code_exist() {
    let root = repo_root();
    let mut problems = Vec::new();
    for file in files(&root).iter().filter(|f| is_source(f)) {
        let Some(text) = read(file, &mut problems) else {
            continue;
        };
        for (line_no, mention) in md_mentions(&text) {
            if resolve_mention(&root, file, &mention.path).is_none() {
                problems.push(format!(
                    "{}:{line_no}: `{}` does not exist",
                    shown(&root, file),
                    mention.path
                ));
            }
        }
        check_quoted_sections(&root, file, &text, false, &mut problems);
    }
    assert!(
        problems.is_empty(),
        "documents named in code that do not resolve:\n{}",
        problems.join("\n")
    );
}

fn repo_root() -> PathBuf {
    // This package lives in `<root>/tests`.
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn shown(root: &Path, file: &Path) -> String {
    file.strip_prefix(root).unwrap_or(file).display().to_string()
}

fn read(file: &Path, problems: &mut Vec<String>) -> Option<String> {
    match fs::read(file) {
        Ok(bytes) => String::from_utf8(bytes).ok(),
        Err(e) => {
            problems.push(format!("{}: cannot read: {e}", file.display()));
            None
        }
    }
}

/// Every regular file under `root`, skipping the directories above; symlinks are not followed.
fn files(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = fs::read_dir(&dir) else { continue };
        for entry in entries.flatten() {
            let path = entry.path();
            let Ok(kind) = entry.file_type() else { continue };
            let name = entry.file_name().to_string_lossy().into_owned();
            let relative = shown(root, &path);
            if kind.is_dir() && !SKIP_NAMES.contains(&name.as_str()) && !SKIP_PATHS.contains(&relative.as_str()) {
                pending.push(path);
            } else if kind.is_file() {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

fn has_extension(path: &Path, ext: &str) -> bool {
    path.extension().is_some_and(|e| e == ext)
}

fn is_source(path: &Path) -> bool {
    match path.extension().and_then(|e| e.to_str()) {
        Some(ext) => SOURCE_EXTENSIONS.contains(&ext),
        None => fs::read(path).is_ok_and(|bytes| bytes.starts_with(b"#!")),
    }
}

fn check_link(file: &Path, target: &str) -> Result<(), String> {
    if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
        return Ok(());
    }
    let (path, anchor) = target.split_once('#').unwrap_or((target, ""));
    let resolved = if path.is_empty() {
        file.to_path_buf()
    } else {
        file.parent().unwrap_or(Path::new(".")).join(path)
    };
    if !resolved.exists() {
        return Err("no such file or directory".to_owned());
    }
    if anchor.is_empty() || !has_extension(&resolved, "md") {
        return Ok(());
    }
    let text = fs::read_to_string(&resolved).map_err(|e| format!("cannot read: {e}"))?;
    if heading_slugs(&text).iter().any(|s| s == anchor) {
        Ok(())
    } else {
        Err(format!("no heading with anchor `#{anchor}`"))
    }
}

/// The file a mention names: relative to the naming file's directory or an ancestor of it.
fn resolve_mention(root: &Path, file: &Path, mention: &str) -> Option<PathBuf> {
    let root = root.canonicalize().ok()?;
    let mut dir = file.parent()?.canonicalize().ok()?;
    loop {
        let candidate = dir.join(mention);
        if candidate.is_file() {
            return Some(candidate);
        }
        if dir == root || !dir.pop() {
            return None;
        }
    }
}

/// Checks the quoted sections after `*.md` mentions, after the bare words `README` and
/// `README's`, and (in markdown) after `see`.
fn check_quoted_sections(root: &Path, file: &Path, text: &str, markdown: bool, problems: &mut Vec<String>) {
    let root = root.canonicalize().unwrap_or_else(|_| root.to_path_buf());
    let mut wanted: Vec<(usize, PathBuf, &str)> = Vec::new();
    let line_of = |at: usize| text[..at].matches('\n').count() + 1;
    for (line_no, mention) in md_mentions(text) {
        if let (Some(doc), Some(name)) = (
            resolve_mention(&root, file, &mention.path),
            quoted_after(text, mention.end),
        ) {
            wanted.push((line_no, doc, name));
        }
    }
    for (at, word) in text.match_indices("README") {
        let after = at + word.len();
        let after = if text[after..].starts_with("'s") {
            after + 2
        } else {
            after
        };
        let starts_word = !text[..at].ends_with(is_path_char);
        if starts_word
            && !text[after..].starts_with('.')
            && let Some(name) = quoted_after(text, after)
        {
            wanted.push((line_of(at), root.join("README.md"), name));
        }
    }
    if markdown {
        for (at, _) in text.match_indices("see \"") {
            if let Some(name) = quoted_after(text, at + "see".len()) {
                wanted.push((
                    line_of(at),
                    file.canonicalize().unwrap_or_else(|_| file.to_path_buf()),
                    name,
                ));
            }
        }
    }
    for (line_no, doc, name) in wanted {
        let found = fs::read_to_string(&doc).is_ok_and(|t| headings(&t).iter().any(|h| h == name));
        if !found {
            let (doc, file) = (
                shown(&root, &doc),
                shown(&root, &file.canonicalize().unwrap_or_default()),
            );
            problems.push(format!("{file}:{line_no}: no section \"{name}\" in {doc}"));
        }
    }
}
