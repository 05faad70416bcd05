//! The file store's group commit, led by the appenders (`leader`): it ends when
//! the log is closed or dropped (final checkpoint written, directory lock
//! released), a failed write answers every waiting appender and marks the log
//! unhealthy, checkpoints by time still fire, the lead survives appenders that
//! are cancelled while they wait or right after they were handed it, and the
//! queue bound holds appenders back.

use std::sync::Arc;
use std::time::Duration;

use portcullis_audit::store::faulty::Fault;
use portcullis_audit::store::file::FileStore;
use portcullis_audit::{AuditError, AuditLog, CheckpointPolicy, LogOptions, LogReader, StoreError};

use crate::support::{
    eventually, held_log, hold_writer, indexes_of, options, queue_appends, record, signer, spawn_append, trusted,
    verify_dir,
};

#[tokio::test]
async fn a_failed_write_answers_every_waiter_with_the_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions {
        max_batch: 10,
        ..options(0)
    };
    let (log, switch) = AuditLog::open_faulty(dir.path(), signer(), opts).await.expect("open");
    let log = Arc::new(log);
    let _ = log.append(&record(0)).await.expect("append before the fault");
    let held = hold_writer(&log, &switch, 1).await;
    switch.arm(Fault::FailedSync);
    let queued = queue_appends(&log, 2..32).await;
    switch.release();
    // The held batch fails; the store is then poisoned, so the batches queued
    // behind it fail too, each waiter with the error and none acknowledged.
    assert!(matches!(held.await.expect("task"), Err(AuditError::Append(_))));
    for task in queued {
        match task.await.expect("task") {
            Err(AuditError::Append(e)) => assert!(matches!(*e, StoreError::Poisoned), "{e}"),
            other => panic!("a waiter behind a failed write must get the error, got {other:?}"),
        }
    }
    assert!(!log.healthy(), "the log must report itself unhealthy");
    assert_eq!(
        log.len().await.expect("len"),
        1,
        "readers see only acknowledged records"
    );
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
}

#[tokio::test]
async fn closing_the_log_writes_the_final_checkpoint_and_releases_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    for i in 0..5 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    log.close().await.expect("close");
    // Closed means ended: the store is dropped, so the directory is free.
    assert!(FileStore::open(dir.path(), 1 << 20).is_ok(), "lock released at close");
    let reader = portcullis_audit::store::FileReader::open(dir.path()).expect("reader");
    let sizes: Vec<u64> = reader
        .checkpoints()
        .await
        .expect("checkpoints")
        .iter()
        .map(|c| c.checkpoint.size)
        .collect();
    assert_eq!(sizes, vec![5], "the final checkpoint covers every record");
}

#[tokio::test]
async fn dropping_the_log_writes_the_final_checkpoint_and_releases_the_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = AuditLog::open_file(dir.path(), signer(), options(0))
        .await
        .expect("open");
    for i in 0..5 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    drop(log);
    // Whoever leads takes the close: once done, the store (and its lock) is gone.
    eventually("the writer released the directory", || {
        FileStore::open(dir.path(), 1 << 20).is_ok()
    })
    .await;
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
    assert_eq!(report.checkpoints, 1, "the final checkpoint was written");
}

#[tokio::test]
async fn checkpoints_by_time_are_written_without_appends_or_requests() {
    let dir = tempfile::tempdir().expect("tempdir");
    let opts = LogOptions {
        checkpoints: CheckpointPolicy {
            every_records: 0,
            interval: Some(Duration::from_millis(20)),
        },
        ..LogOptions::default()
    };
    let log = AuditLog::open_file(dir.path(), signer(), opts).await.expect("open");
    for i in 0..3 {
        let _ = log.append(&record(i)).await.expect("append");
    }
    // No size trigger and no request: only the ticker can write it.
    eventually("a checkpoint by time covers the records", || {
        log.latest_checkpoint().is_some_and(|c| c.checkpoint.size == 3)
    })
    .await;
    log.close().await.expect("close");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
}

#[tokio::test]
async fn appenders_cancelled_while_waiting_or_once_handed_the_lead_do_not_stall_the_log() {
    // Record 0's appender leads and is held on the disk; 1 and 2 wait behind it, in order.
    let (dir, log, switch, held) = held_log(LogOptions {
        max_batch: 1,
        ..options(0)
    })
    .await;
    let mut waiting = queue_appends(&log, 1..3).await;
    let rest = waiting.pop().expect("record 2's appender");
    let first = waiting.pop().expect("record 1's appender");
    let later = spawn_append(&log, 3);
    eventually("record 3 is queued", || log.queued() == 3).await;
    switch.release();
    // This runtime's one thread is held here, so record 1's appender cannot run: the leader
    // (on the blocking pool) writes record 0 and hands the lead to it meanwhile.
    while log.stats().batches < 1 {
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(50));
    // Cancelled without running again: the lead it was handed must not be lost.
    first.abort();
    assert_eq!(held.await.expect("task").expect("append"), 0);
    assert!(
        first.await.is_err_and(|e| e.is_cancelled()),
        "record 1's appender was cancelled"
    );
    // Bounded (a lost lead would leave them waiting forever), not timed.
    let lost = "the lead was lost: an appender behind the cancelled one never finished";
    let rest = tokio::time::timeout(Duration::from_secs(60), rest).await.expect(lost);
    let later = tokio::time::timeout(Duration::from_secs(60), later).await.expect(lost);
    let mut indexes = vec![rest.expect("task").expect("append")];
    indexes.push(later.expect("task").expect("append"));
    indexes.sort_unstable();
    assert_eq!(
        indexes,
        vec![2, 3],
        "the appenders behind the cancelled one got their records"
    );
    assert_eq!(
        log.len().await.expect("len"),
        4,
        "the cancelled appender's record is written too"
    );
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
    let report = verify_dir(dir.path(), &trusted(&[&signer()])).await;
    assert!(report.is_ok(), "{:?}", report.failure);
}

#[tokio::test]
async fn an_appender_cancelled_before_its_turn_is_skipped_by_the_hand_off() {
    let (_dir, log, switch, held) = held_log(LogOptions {
        max_batch: 1,
        ..options(0)
    })
    .await;
    let mut waiting = queue_appends(&log, 1..4).await;
    let gone = waiting.remove(0);
    gone.abort();
    assert!(
        gone.await.is_err_and(|e| e.is_cancelled()),
        "record 1's appender was cancelled"
    );
    switch.release();
    assert_eq!(held.await.expect("task").expect("append"), 0);
    assert_eq!(indexes_of(waiting).await, vec![2, 3]);
    assert_eq!(
        log.len().await.expect("len"),
        4,
        "the cancelled appender's record is still written"
    );
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
}

#[tokio::test]
async fn appends_beyond_the_queue_bound_wait_for_room() {
    let (_dir, log, switch, held) = held_log(LogOptions { queue: 4, ..options(0) }).await;
    let tasks: Vec<_> = (1..11).map(|i| spawn_append(&log, i)).collect();
    for _ in 0..50 {
        tokio::task::yield_now().await;
    }
    // The held record was taken into its batch; of the ten behind it only four may queue.
    assert_eq!(log.queued(), 4, "the queue bound holds the other appenders back");
    switch.release();
    assert_eq!(held.await.expect("task").expect("append"), 0);
    assert_eq!(indexes_of(tasks).await, (1..11).collect::<Vec<u64>>());
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
}

/// Holds the leader on the disk while 32 appends queue behind it and a timer
/// fires: the runtime's other tasks keep running. Then the queue drains in
/// grouped batches.
async fn a_held_leader_leaves_the_runtime_running() {
    let (_dir, log, switch, held) = held_log(options(0)).await;
    let queued = queue_appends(&log, 1..33).await;
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(switch.is_stalled(), "the leader is still held");
    switch.release();
    assert_eq!(held.await.expect("task").expect("append"), 0);
    assert_eq!(indexes_of(queued).await, (1..33).collect::<Vec<u64>>());
    assert!(
        log.stats().batches < 33,
        "the waiting appends were grouped: {:?}",
        log.stats()
    );
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
}

/// The gateway's case: the leader blocks its own worker; the other one carries on.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_two_workers_a_leader_held_on_its_worker_leaves_the_runtime_running() {
    a_held_leader_leaves_the_runtime_running().await;
}

/// A single worker: the leader waits inside `block_in_place`, its worker's tasks move on.
#[tokio::test(flavor = "multi_thread", worker_threads = 1)]
async fn with_one_worker_a_leader_held_in_block_in_place_leaves_the_runtime_running() {
    a_held_leader_leaves_the_runtime_running().await;
}

/// While appends arrive together, a fresh leader first lets the tasks already runnable go
/// (two or more workers): the appends they make join its batch instead of the next one.
/// Without that, the first appender of a burst finds no commit in progress and commits its
/// record alone. Which worker runs which task is the scheduler's choice (a stolen task
/// leads from an otherwise empty queue), so the test asks for one burst of twenty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_leader_takes_in_the_appends_of_tasks_already_runnable() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (log, switch) = AuditLog::open_faulty(dir.path(), signer(), options(0))
        .await
        .expect("open");
    let log = Arc::new(log);
    // Appends arriving together: seven queue behind a held leader and are taken as one batch.
    let held = hold_writer(&log, &switch, 0).await;
    let queued = queue_appends(&log, 1..8).await;
    switch.release();
    let _ = held.await.expect("task").expect("append");
    assert_eq!(indexes_of(queued).await, (1..8).collect::<Vec<u64>>());
    let mut first_batches = Vec::new();
    for burst in 1..=20 {
        let first = 8 * burst;
        let sealed = burst_from_a_worker(&log, first..first + 8).await;
        // The burst's first record is its first leader's; its seal covers that batch.
        first_batches.push(sealed - first);
    }
    assert!(
        first_batches.iter().any(|&records| records > 1),
        "the first leader of every burst committed its record alone: {first_batches:?}"
    );
    Arc::into_inner(log).expect("sole owner").close().await.expect("close");
}

/// Appends `range` from tasks spawned together on one worker; returns the size of the
/// tree sealed by the batch of the range's first record.
async fn burst_from_a_worker(log: &Arc<AuditLog>, range: std::ops::Range<u64>) -> u64 {
    let log = Arc::clone(log);
    let first = range.start;
    tokio::spawn(async move {
        let tasks: Vec<_> = range
            .map(|i| {
                let log = Arc::clone(&log);
                tokio::spawn(async move {
                    let receipt = log.append(&record(i)).await.expect("append");
                    (receipt.index(), receipt.proof().map(|p| p.seal.checkpoint.size))
                })
            })
            .collect();
        let mut sealed = None;
        for task in tasks {
            let (index, size) = task.await.expect("task");
            if index == first {
                sealed = size;
            }
        }
        sealed.expect("the burst's first record is sealed by its batch")
    })
    .await
    .expect("task")
}
