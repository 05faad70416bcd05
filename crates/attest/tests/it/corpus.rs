//! The poisoned-description corpus (T7): every sample in `tests/corpus/poisoned/` is flagged
//! with the finding kinds its `_expect` member names, and the benign real-world-style
//! descriptions in `tests/corpus/benign/` are not flagged at all. Members starting with `_`
//! are test metadata and are removed before scanning.
use std::path::{Path, PathBuf};

use portcullis_attest::scan::{Finding, FindingKind, scan_tool};
use portcullis_mcp::{Limits, parse_strict};
use serde_json::Value;

fn samples(dir: &str) -> Vec<(PathBuf, Value)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(dir);
    let mut out: Vec<(PathBuf, Value)> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "json"))
        .map(|path| {
            let value = parse_strict(&std::fs::read(&path).unwrap(), Limits::default()).unwrap();
            (path, value)
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Splits a sample into the tool and its `_expect` list.
fn tool_and_expectations(mut sample: Value) -> (Value, Vec<String>) {
    let object = sample.as_object_mut().unwrap();
    let expect = object
        .get("_expect")
        .and_then(Value::as_array)
        .map(|kinds| kinds.iter().map(|k| k.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    object.retain(|key, _| !key.starts_with('_'));
    (sample, expect)
}

fn kind_name(kind: &FindingKind) -> &'static str {
    match kind {
        FindingKind::HiddenInstruction { .. } => "HiddenInstruction",
        FindingKind::SensitivePath { .. } => "SensitivePath",
        FindingKind::AnsiEscape => "AnsiEscape",
        FindingKind::ControlCharacter { .. } => "ControlCharacter",
        FindingKind::InvisibleCharacter { .. } => "InvisibleCharacter",
        FindingKind::TooLong { .. } => "TooLong",
    }
}

#[test]
fn t07_every_poisoned_sample_is_flagged_as_expected() {
    let samples = samples("poisoned");
    assert!(samples.len() >= 10, "the poisoned corpus is missing");
    for (path, sample) in samples {
        let (tool, expect) = tool_and_expectations(sample);
        assert!(!expect.is_empty(), "{}: no `_expect`", path.display());
        let findings: Vec<Finding> = scan_tool(&tool);
        let kinds: Vec<&str> = findings.iter().map(|f| kind_name(&f.kind)).collect();
        for want in &expect {
            assert!(
                kinds.contains(&want.as_str()),
                "{}: want {want}, got {findings:?}",
                path.display()
            );
        }
    }
}

#[test]
fn t07_benign_descriptions_are_not_flagged() {
    let samples = samples("benign");
    assert!(samples.len() >= 4, "the benign corpus is missing");
    for (path, sample) in samples {
        let (tool, _) = tool_and_expectations(sample);
        assert_eq!(scan_tool(&tool), vec![], "{}", path.display());
    }
}
