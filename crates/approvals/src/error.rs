//! Every way an approval can fail to count. Each message says what went wrong and what
//! to do; none quotes a key or a signature.
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ApprovalError {
    #[error("the approval token is malformed ({0}); sign the call's binding again with `portcullis approvals sign`")]
    Malformed(String),
    #[error(
        "the approval token is signed by key `{0}`, which is not a registered approver; register it in `[[approvals.approvers]]`"
    )]
    UnknownKey(String),
    #[error("approver key `{0}` is revoked; tokens it signed count for nothing — ask another approver")]
    Revoked(String),
    #[error("the approval token's signature does not verify; it was altered or signed for something else")]
    BadSignature,
    #[error("the approval is for a different call ({0} differs); approving a call approves nothing else")]
    WrongCall(&'static str),
    #[error("approval request `{0}` is unknown, expired or already used; make the call again to open a new one")]
    UnknownRequest(String),
    #[error("the approval expired at {0} (Unix seconds); make the call again to open a new request")]
    Expired(u64),
    #[error("approver `{0}` cannot approve their own call; another approver must")]
    SelfApproval(String),
    #[error("`{0}` is not a registered approver")]
    NotAnApprover(String),
    #[error("approval request `{0}` was already decided ({1})")]
    AlreadyDecided(String, &'static str),
    #[error(
        "too many calls are waiting for approval ({0}); the call is denied — retry later or raise `[approvals] max_pending`"
    )]
    QueueFull(usize),
    #[error("the admin request is not authenticated: {0}")]
    Unauthenticated(String),
    /// The shared store (PostgreSQL) failed; `detail` is the driver's message, which
    /// never holds the database URL or its password.
    #[error(
        "the shared approvals store (PostgreSQL, `[audit] postgres`) failed while {action} ({detail}); \
         nothing is approved or let through without it — check that the database is reachable and its \
         `portcullis_approval*` tables are intact, then retry"
    )]
    Store { action: &'static str, detail: String },
}
