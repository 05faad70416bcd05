//! `_meta` keys in the gateway's own namespace (`io.portcullis/…`) that more than one
//! crate must spell the same way: the gateway reads them, clients and the load
//! benchmark write them.

/// `_meta` key a client uses to state why it makes a call
/// (`params._meta["io.portcullis/reason"]`), shown to the policy as the reason.
pub const REASON_META_KEY: &str = "io.portcullis/reason";
