//! The fronts: where client messages enter. The Streamable HTTP front (`http`, with the
//! Host/Origin guard in `origin` and the per-request identify stage in `identify`) and the
//! stdio front (`stdio`, launched by a desktop host), and the admin listener (`admin`: approvers
//! answer calls waiting for approval). Both parse every message strictly and
//! hand it to [`crate::dispatch`].
pub(crate) mod admin;
pub(crate) mod http;
pub(crate) mod identify;
pub(crate) mod origin;
pub(crate) mod stdio;
