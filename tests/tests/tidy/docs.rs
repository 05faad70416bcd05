//! Every Rust source file opens with a `//!` doc comment (docs/STYLE.md, "Everyday habits"):
//! the first line of each `.rs` file under crates/, tests/, tools/ and fuzz/ starts with
//! `//!`, before any attribute or item. Build output (`target`) and npm trees
//! (`node_modules`) are not ours and are skipped.

use std::{
    fs, io,
    path::{Path, PathBuf},
};

/// The directories whose Rust files must carry a `//!` doc, relative to the repository root.
const ROOTS: [&str; 4] = ["crates", "tests", "tools", "fuzz"];

/// Directory names never searched: build output and third-party npm packages.
const SKIPPED_DIRS: [&str; 2] = ["target", "node_modules"];

#[test]
fn every_source_file_opens_with_a_doc_comment() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for root in ROOTS {
        rust_files(&repo.join(root), &mut files).unwrap_or_else(|e| panic!("cannot list `{root}`: {e}"));
    }
    assert!(
        files.len() > 100,
        "found only {} Rust files under {ROOTS:?}; is the repository root `{}` right?",
        files.len(),
        repo.display()
    );

    let mut offending: Vec<String> = files
        .iter()
        .filter(|file| !opens_with_doc(file).unwrap_or_else(|e| panic!("cannot read `{}`: {e}", file.display())))
        .map(|file| file.strip_prefix(&repo).unwrap_or(file).display().to_string())
        .collect();
    offending.sort();
    assert!(
        offending.is_empty(),
        "{} file(s) do not open with a `//!` doc comment. Make the first line of each a `//!` \
         comment that says what the file is for and where it sits in the flow (attributes such \
         as `#![allow(…)]` go after it):\n  {}",
        offending.len(),
        offending.join("\n  ")
    );
}

/// Whether the file's first line starts with `//!`.
fn opens_with_doc(file: &Path) -> io::Result<bool> {
    let text = fs::read_to_string(file)?;
    Ok(text.starts_with("//!"))
}

/// Adds every `.rs` file under `dir` to `out`, skipping [`SKIPPED_DIRS`]; a missing `dir`
/// adds nothing. Symbolic links are not followed.
fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    for entry in fs::read_dir(dir)? {
        let entry = entry?;
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_dir() {
            if !SKIPPED_DIRS.iter().any(|skipped| entry.file_name() == *skipped) {
                rust_files(&path, out)?;
            }
        } else if kind.is_file() && path.extension().is_some_and(|ext| ext == "rs") {
            out.push(path);
        }
    }
    Ok(())
}
