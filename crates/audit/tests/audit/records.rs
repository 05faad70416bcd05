//! The record format is a contract: fixed field order, digests only, strict
//! parsing.

use std::time::{Duration, UNIX_EPOCH};

use portcullis_audit::{AuditRecord, RecordKind, Sha256Hex};

use crate::support::record;

#[test]
fn record_serialises_with_fixed_field_order() {
    let mut r = record(1);
    r.ext.insert("zone".into(), "eu".into());
    r.ext.insert("approval".into(), "a-1".into());
    let text = String::from_utf8(r.to_bytes().expect("encode")).expect("utf8");
    let expected = format!(
        concat!(
            r#"{{"v":1,"time":"2026-02-02T02:40:01.000000Z","kind":"call","call_id":"call-1","#,
            r#""principal":{{"workload":"spiffe://example.org/agent","user":"alice"}},"#,
            r#""server":"github","method":"tools/call","tool":"create_issue","args_sha256":"{}","#,
            r#""decision":"allow","decision_id":"d-1","outcome":"ok","result_sha256":"{}","#,
            r#""latency_us":1001,"ext":{{"approval":"a-1","zone":"eu"}}}}"#
        ),
        Sha256Hex::of(b"args 1"),
        Sha256Hex::of(b"result 1"),
    );
    assert_eq!(text, expected);
    // Same value, same bytes; and bytes round-trip to the same value.
    assert_eq!(r.to_bytes().expect("encode"), text.as_bytes());
    assert_eq!(AuditRecord::from_bytes(text.as_bytes()).expect("decode"), r);
}

#[test]
fn minimal_record_has_only_version_time_and_kind() {
    let r = AuditRecord::new(RecordKind::PinDrift, UNIX_EPOCH + Duration::from_micros(1));
    let text = String::from_utf8(r.to_bytes().expect("encode")).expect("utf8");
    assert_eq!(
        text,
        r#"{"v":1,"time":"1970-01-01T00:00:00.000001Z","kind":"pin_drift"}"#
    );
}

#[test]
fn strict_parsing_rejects_unknown_fields_other_versions_and_non_digests() {
    let cases = [
        (r#"{"v":1,"time":"t","kind":"call","body":"secret"}"#, "unknown field"),
        (r#"{"v":2,"time":"t","kind":"call"}"#, "version 2"),
        (
            r#"{"v":1,"time":"t","kind":"call","args_sha256":"abc"}"#,
            "64 lowercase hex",
        ),
        (
            r#"{"v":1,"time":"t","kind":"call","args_sha256":"9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"}"#,
            "64 lowercase hex",
        ),
        (r#"{"v":1,"time":"t","kind":"exfiltrate"}"#, "unknown variant"),
    ];
    for (text, needle) in cases {
        let err = AuditRecord::from_bytes(text.as_bytes()).expect_err(text).to_string();
        assert!(err.contains(needle), "{text}: error `{err}` lacks `{needle}`");
    }
}
