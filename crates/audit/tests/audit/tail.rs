//! T24: the tail of the log after the last periodic checkpoint. Every batch
//! is sealed (signed) before it is acknowledged, so a record rewritten there
//! with its CRC fixed fails `verify` at its index and stops the next open
//! (which would otherwise sign over it); damage followed by intact frames
//! stops the open and cuts nothing; only a genuinely torn end is cut.
//!
//! A crash (no orderly close, so no final checkpoint) is simulated by stopping
//! the writer where it stands (`AuditLog::simulate_crash`), as in `crash.rs`.

use std::path::Path;

use portcullis_audit::{
    AuditError, AuditLog, AuditRecord, Decision, LogOptions, Outcome, Principal, StoreError, VerifyFailure, verify,
};

use crate::support::{
    database_url, frame_offset, logical_end, options, read_frames, record, rewrite_record, segments, signer, snapshot,
    trusted, unique, verify_dir, write_at, write_frames,
};

/// A call the policy denied: the kind of record an attacker wants to turn into an allow.
fn denied(i: u64) -> AuditRecord {
    let mut r = record(i);
    r.decision = Some(Decision::Deny);
    r.outcome = None;
    r.result_sha256 = None;
    r
}

/// `denied(i)` forged: allowed, and made by someone else.
fn forged(i: u64) -> AuditRecord {
    let mut r = record(i);
    r.decision = Some(Decision::Allow);
    r.outcome = Some(Outcome::Ok);
    r.principal = Some(Principal {
        workload: Some("spiffe://example.org/agent".into()),
        user: Some("mallory".into()),
    });
    r
}

/// Records 0..10, a periodic checkpoint at 10, then denied records 10..20
/// (the tail no checkpoint covers), then a crash.
fn log_with_tail(dir: &Path) {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let log = AuditLog::open_file(dir, signer(), options(0)).await.expect("open");
        for i in 0..10 {
            let _ = log.append(&record(i)).await.expect("append");
        }
        let _ = log.checkpoint_now().await.expect("checkpoint");
        for i in 10..20 {
            let _ = log.append(&denied(i)).await.expect("append");
        }
        log.simulate_crash().await.expect("crash"); // no orderly close, no final checkpoint
    });
    drop(rt);
}

#[tokio::test]
async fn t24_rewritten_tail_record_fails_verify_and_open_refuses() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || log_with_tail(&path))
        .await
        .expect("writer");
    let seg = segments(dir.path()).pop().expect("segment");
    rewrite_record(&seg, 15, &forged(15).to_bytes().expect("encode"));

    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    let failure = report
        .failure
        .expect("a forged record in the tail must fail verification");
    assert_eq!(failure.first_bad_index(), Some(15), "{failure}");

    let before = snapshot(dir.path());
    let opened = AuditLog::open_file(dir.path(), signer(), options(0)).await;
    let Err(error) = opened else {
        panic!("the gateway must not start on (and sign over) a forged tail");
    };
    let message = error.to_string();
    assert!(message.contains("15"), "{message}");
    assert!(message.contains("portcullis audit verify"), "{message}");
    assert_eq!(snapshot(dir.path()), before, "a refused open changes nothing");
}

#[tokio::test]
async fn t24_flipped_byte_mid_tail_refuses_open_and_cuts_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || log_with_tail(&path))
        .await
        .expect("writer");
    let seg = segments(dir.path()).pop().expect("segment");
    let mut bytes = std::fs::read(&seg).expect("read");
    bytes[frame_offset(&seg, 14) + 40] ^= 0x01;
    std::fs::write(&seg, &bytes).expect("write");
    let before = snapshot(dir.path());

    let opened = AuditLog::open_file(dir.path(), signer(), options(0)).await;
    let Err(error) = opened else {
        panic!("damage followed by intact records must stop the start, not be cut back");
    };
    let message = error.to_string();
    assert!(message.contains("entry 14"), "{message}");
    assert_eq!(snapshot(dir.path()), before, "nothing may be truncated");
    assert_eq!(std::fs::metadata(&seg).expect("stat").len(), bytes.len() as u64);

    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    let failure = report.failure.expect("verify must report the damage");
    assert_eq!(failure.first_bad_index(), Some(14), "{failure}");
}

#[tokio::test]
async fn t24_torn_last_frame_is_the_only_thing_cut() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || log_with_tail(&path))
        .await
        .expect("writer");
    let seg = segments(dir.path()).pop().expect("segment");
    // A crash mid-write: the last batch's write is cut off in its last frame
    // (its last 7 bytes never landed: the prefilled zeros are still there).
    // That batch was never acknowledged (its append had not returned).
    let end = logical_end(&seg);
    write_at(&seg, end - 7, &[0; 7]);

    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("a torn end recovers");
    assert_eq!(log.len().await.expect("len"), 19, "only the torn batch is cut");
    let back = log.read(10..19).await.expect("read");
    assert_eq!(back, (10..19).map(denied).collect::<Vec<_>>());
    assert_eq!(log.append(&record(99)).await.expect("append").index(), 19);
    log.close().await.expect("close");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
}

async fn sql(url: &str, statement: String) {
    use sqlx::Executor;
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    pool.execute(sqlx::AssertSqlSafe(statement)).await.expect("statement");
}

#[tokio::test]
async fn t24_pg_updated_tail_row_fails_verify_and_open_refuses() {
    let Some(url) = database_url("the PostgreSQL T24 test") else {
        return;
    };
    let schema = unique("audit_t24_tail");
    let log = AuditLog::open_postgres(&url, &schema, signer(), options(0))
        .await
        .expect("open");
    for i in 0..10 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    let _ = log.checkpoint_now().await.expect("checkpoint");
    for i in 10..20 {
        let _ = log.append(&denied(i)).await.expect("append");
    }
    // Rewrite row 15 as an allow by someone else, with its leaf hash fixed up.
    let forged = String::from_utf8(forged(15).to_bytes().expect("encode")).expect("utf8");
    sql(
        &url,
        format!(
            "SET search_path TO {schema}; UPDATE audit_log SET record = '{}', \
             leaf_hash = sha256('\\x00'::bytea || convert_to('{}', 'UTF8')) WHERE idx = 15",
            forged.replace('\'', "''"),
            forged.replace('\'', "''"),
        ),
    )
    .await;

    let report = verify(log.reader(), &trusted(&[&signer()]), &mut |_| {})
        .await
        .expect("verify");
    let failure = report.failure.expect("a forged row in the tail must fail verification");
    assert_eq!(failure.first_bad_index(), Some(15), "{failure}");
    std::mem::forget(log); // the running gateway crashes: no final checkpoint

    let opened = AuditLog::open_postgres(&url, &schema, signer(), LogOptions { ..options(0) }).await;
    let Err(error) = opened else {
        panic!("the gateway must not start on (and sign over) a forged tail");
    };
    let message = error.to_string();
    assert!(message.contains("15"), "{message}");
    sql(&url, format!("DROP SCHEMA IF EXISTS {schema} CASCADE")).await;
}

#[tokio::test]
async fn t24_legacy_log_opens_up_to_its_checkpoint_and_is_sealed_from_then_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || log_with_tail(&path))
        .await
        .expect("writer");
    // As a version without seals left it after a clean stop: a version-1
    // segment whose records the last checkpoint (10) covers.
    let seg = segments(dir.path()).pop().expect("segment");
    write_frames(&seg, &read_frames(&seg)[..10]);
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("a checkpointed legacy log opens");
    assert_eq!(log.append(&record(10)).await.expect("append").index(), 10);
    log.close().await.expect("close");
    assert_eq!(segments(dir.path()).len(), 2, "new records go to a sealed segment");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.records, report.seals, report.unsigned_tail), (11, 1, 0));
}

#[tokio::test]
async fn t24_unsigned_legacy_tail_is_never_accepted() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().to_owned();
    tokio::task::spawn_blocking(move || log_with_tail(&path))
        .await
        .expect("writer");
    // Records 10..20 with no seal and no checkpoint: a version without seals
    // that crashed, or seals stripped and the header rewritten.
    let seg = segments(dir.path()).pop().expect("segment");
    write_frames(&seg, &read_frames(&seg));
    let before = snapshot(dir.path());
    let opened = AuditLog::open_file(dir.path(), signer(), options(0)).await;
    assert!(
        matches!(
            opened,
            Err(AuditError::Open(StoreError::UnsealedLegacyTail { from: 10, to: 20 }))
        ),
        "{:?}",
        opened.err()
    );
    assert_eq!(snapshot(dir.path()), before);
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert_eq!(report.failure, Some(VerifyFailure::Unsigned { from: 10, len: 20 }));
}
