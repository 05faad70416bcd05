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

/// The leaf bytes of a full record, written out in full: the on-disk v1 format. The
/// digests are SHA-256 of `args 1`, `policy` and `result 1` (computed independently).
/// Any change to the digest type's text form, the field order or the time format
/// fails here, whatever type produces them.
#[test]
fn record_bytes_match_the_v1_vector() {
    let mut r = record(1);
    r.policy_sha256 = Some(Sha256Hex::of(b"policy"));
    r.reason = Some("policy-7".into());
    r.ext.insert("zone".into(), "eu".into());
    let want = concat!(
        r#"{"v":1,"time":"2026-02-02T02:40:01.000000Z","kind":"call","call_id":"call-1","#,
        r#""principal":{"workload":"spiffe://example.org/agent","user":"alice"},"#,
        r#""server":"github","method":"tools/call","tool":"create_issue","#,
        r#""args_sha256":"2060f845fcb5ee04058a66c6b36647ad9f9543eb4fa373a252458f17d3afd416","#,
        r#""decision":"allow","reason":"policy-7","decision_id":"d-1","#,
        r#""policy_sha256":"823412d1eacb67956220e532959f0104603057c88704863ca38e7cd188fda812","#,
        r#""outcome":"ok","#,
        r#""result_sha256":"400a936d0ac7637324413df9aaf2067ff68468e602a5446af1e454878b5bad1e","#,
        r#""latency_us":1001,"ext":{"zone":"eu"}}"#
    );
    assert_eq!(String::from_utf8(r.to_bytes().expect("encode")).expect("utf8"), want);
    assert_eq!(AuditRecord::from_bytes(want.as_bytes()).expect("decode"), r);
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
