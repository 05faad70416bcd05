//! The gateway: sessions, upstream connections, the dispatcher, the per-call pipeline,
//! and the two fronts (Streamable HTTP and stdio) that feed it.
//!
//! A request starts at a front (`front::http`, `front::stdio`), goes to the dispatcher
//! (`dispatch`), and — if it reads or changes server state — down the acting path
//! (`pipeline::run`), whose stages live in `stages/`. `gateway` holds the state and the
//! session lifecycle, `limits` what one principal may hold and send, `session/` one
//! client's session, `relay/` the upstream side, `approval_expiry` the approval requests
//! that lapse unused.
#![forbid(unsafe_code)]

mod approval_expiry;
mod caller;
pub mod config;
mod deny;
mod dispatch;
mod error;
mod front;
mod gateway;
mod limits;
mod pipeline;
mod relay;
mod session;
mod stages;

pub use caller::Caller;
pub use deny::{Deny, Stage};
pub use error::UpstreamError;
pub use front::{admin::serve_admin, http::serve_http, stdio::serve_stdio};
pub use gateway::{Gateway, SessionError};
pub use limits::{Admitted, LimitExceeded};
pub use relay::{hello::ClientHello, probe::list_server_tools};
pub use stages::{
    authorise::{Authoriser, REASON_ARGUMENT, REASON_META_KEY},
    classify::Hold,
    receipts::RECEIPT_META_KEY,
    record::Recorder,
    route::{Namespacer, RouteError},
};
