//! The PostgreSQL store. Needs `DATABASE_URL` (e.g.
//! postgres://postgres@127.0.0.1:5432/test); without it each test prints a
//! notice and returns. Every test uses its own schema and drops it at the end.

use std::collections::BTreeSet;
use std::sync::Arc;

use portcullis_audit::error::Defect;
use portcullis_audit::{AuditLog, LogOptions, VerifyFailure, verify, verify_inclusion};
use sqlx::Executor;

use crate::support::{database_url, options, other_signer, record, signer, trusted, unique};

async fn drop_schema(url: &str, schema: &str) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    pool.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {schema} CASCADE")))
        .await
        .expect("drop schema");
}

async fn sql(url: &str, schema: &str, statement: String) {
    let pool = sqlx::PgPool::connect(url).await.expect("connect");
    pool.execute(sqlx::AssertSqlSafe(format!("SET search_path TO {schema}; {statement}")))
        .await
        .expect("statement");
}

#[tokio::test]
async fn pg_append_read_verify_and_prove() {
    let Some(url) = database_url("the PostgreSQL audit store test") else {
        return;
    };
    let schema = unique("audit_t_basic");
    let log = AuditLog::open_postgres(&url, &schema, signer(), options(0))
        .await
        .expect("open");
    let mut receipts = Vec::new();
    for i in 0..25 {
        let receipt = log.append(&record(i)).await.expect("append");
        assert_eq!(receipt.index(), i);
        receipts.push(receipt);
    }
    let cp = log.checkpoint_now().await.expect("checkpoint").checkpoint;
    assert_eq!(cp.size, 25);
    assert_eq!(log.read(3..5).await.expect("read"), vec![record(3), record(4)]);
    let proof = log.prove_inclusion(17, 25).await.expect("prove");
    verify_inclusion(&receipts[17].leaf_hash(), 17, 25, &proof.path, &cp.root).expect("inclusion");
    let report = verify(log.reader(), &trusted(&[&signer()]), &mut |_| {})
        .await
        .expect("verify");
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!((report.records, report.checkpoints), (25, 1));
    log.close().await.expect("close");

    // Reopen (migrations are idempotent) and continue the same tree.
    let log = AuditLog::open_postgres(&url, &schema, signer(), options(0))
        .await
        .expect("reopen");
    assert_eq!(log.append(&record(25)).await.expect("append").index(), 25);
    log.close().await.expect("close");
    drop_schema(&url, &schema).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pg_two_gateways_append_concurrently_in_one_global_order() {
    let Some(url) = database_url("the PostgreSQL audit store test") else {
        return;
    };
    let schema = unique("audit_t_two");
    let opts = LogOptions {
        max_batch: 64,
        ..options(100)
    };
    // Two independent stores with their own pools and keys: two gateway replicas.
    let (a, b) = tokio::join!(
        AuditLog::open_postgres(&url, &schema, signer(), opts.clone()),
        AuditLog::open_postgres(&url, &schema, other_signer(), opts),
    );
    let (a, b) = (Arc::new(a.expect("open a")), Arc::new(b.expect("open b")));
    let mut tasks = Vec::new();
    for (gw, log) in [(1u64, &a), (2u64, &b)] {
        for t in 0..8u64 {
            let log = Arc::clone(log);
            tasks.push(tokio::spawn(async move {
                let mut got = Vec::new();
                for k in 0..40u64 {
                    let i = gw * 100_000 + t * 1000 + k;
                    got.push((log.append(&record(i)).await.expect("append").index(), i));
                }
                got
            }));
        }
    }
    let mut seen = std::collections::BTreeMap::new();
    for task in tasks {
        for (index, i) in task.await.expect("task") {
            assert!(seen.insert(index, i).is_none(), "index {index} assigned twice");
        }
    }
    assert_eq!(
        seen.keys().copied().collect::<BTreeSet<_>>(),
        (0..640).collect::<BTreeSet<u64>>()
    );
    let stored = a.read(0..640).await.expect("read");
    for (index, i) in &seen {
        assert_eq!(stored[*index as usize], record(*i), "record at {index}");
    }
    let _ = a.checkpoint_now().await.expect("checkpoint a");
    let _ = b.checkpoint_now().await.expect("checkpoint b");
    for log in [a, b] {
        Arc::into_inner(log).expect("sole owner").close().await.expect("close");
    }
    // The last seal may be the other replica's: it must be a trusted key.
    let keys = trusted(&[&signer(), &other_signer()]);
    let opts = LogOptions {
        trusted_keys: keys.clone(),
        ..options(0)
    };
    let reader = AuditLog::open_postgres(&url, &schema, signer(), opts)
        .await
        .expect("open");
    let report = verify(reader.reader(), &keys, &mut |_| {}).await.expect("verify");
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.records, 640);
    assert!(
        report.checkpoints >= 2,
        "checkpoints from both replicas: {}",
        report.checkpoints
    );
    reader.close().await.expect("close");
    drop_schema(&url, &schema).await;
}

#[tokio::test]
async fn pg_t15_tampered_rows_are_detected() {
    let Some(url) = database_url("the PostgreSQL audit store test") else {
        return;
    };
    let schema = unique("audit_t_tamper");
    let log = AuditLog::open_postgres(&url, &schema, signer(), options(0))
        .await
        .expect("open");
    for i in 0..30 {
        let _ = log.append(&record(i)).await.expect("append");
        if i == 9 || i == 19 || i == 29 {
            let _ = log.checkpoint_now().await.expect("checkpoint");
        }
    }
    let keys = trusted(&[&signer()]);
    let check = || async { verify(log.reader(), &keys, &mut |_| {}).await.expect("verify").failure };
    // Edit a record but not its stored leaf hash: named by index.
    sql(
        &url,
        &schema,
        "UPDATE audit_log SET record = replace(record, 'alice', 'bob') WHERE idx = 12".into(),
    )
    .await;
    assert_eq!(
        check().await,
        Some(VerifyFailure::DamagedRecord {
            index: 12,
            defect: Defect::LeafHash
        })
    );
    // Fix up the leaf hash too: caught by the seal of its batch (record 12 alone).
    sql(
        &url,
        &schema,
        "UPDATE audit_log SET leaf_hash = sha256('\\x00'::bytea || convert_to(record, 'UTF8')) WHERE idx = 12".into(),
    )
    .await;
    let failure = check().await.expect("must fail");
    assert!(
        matches!(
            failure,
            VerifyFailure::SealMismatch {
                since: 12,
                size: 13,
                ..
            }
        ),
        "{failure}"
    );
    // Delete a row: a gap at its index.
    sql(&url, &schema, "DELETE FROM audit_log WHERE idx = 5".into()).await;
    assert_eq!(
        check().await,
        Some(VerifyFailure::DamagedRecord {
            index: 5,
            defect: Defect::Missing
        })
    );
    // Delete the tail: truncation against the checkpoint at 30.
    sql(&url, &schema, "DELETE FROM audit_log WHERE idx >= 4".into()).await;
    let failure = check().await.expect("must fail");
    assert!(
        matches!(failure, VerifyFailure::Truncated { size: 10, len: 4, .. }),
        "{failure}"
    );
    log.close().await.expect("close");
    drop_schema(&url, &schema).await;
}
