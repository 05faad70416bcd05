//! End-to-end load benchmark for Portcullis (issue 7, `docs/PERFORMANCE.md`).
//!
//! Two binaries live here:
//! - `portcullis-bench-upstream`: a deliberately tiny MCP server (hand-written
//!   JSON-RPC over stdio or Streamable HTTP) whose `echo` tool returns its
//!   argument, so the gateway's own cost dominates what is measured;
//! - `portcullis-bench`: the driver. It starts that upstream and one gateway per
//!   configuration, then runs the load client against the upstream directly and
//!   through each gateway, interleaved round by round (A B A B), and reports
//!   latency percentiles, throughput, the gateway's CPU time per call and RSS
//!   (from `/proc`), and the gateway/direct ratios, as JSON and as a table. The same
//!   upstream binary can also run the [`floor`] forwarder, measured as a reference.
//!
//! Everything runs on loopback and is bounded in time and call count. This crate
//! is a dev tool: unlike the product crates it spawns processes itself.
pub mod floor;
pub mod load;
pub mod peer;
pub mod pki;
pub mod policies;
pub mod procs;
pub mod report;
pub mod soak;
pub mod upstream;
pub mod wire;
