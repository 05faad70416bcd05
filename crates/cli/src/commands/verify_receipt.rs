//! `portcullis verify-receipt`: checks a gateway's result receipt offline.
//!
//! Given the request the host sent and the answer it received (whole JSON-RPC messages, or just
//! `params` and `result`), it recomputes the request and result hashes and checks them against
//! the receipt — a *batch receipt* (the call's outcome record, its inclusion path and its audit
//! batch's signed seal; `portcullis_attest::batch_receipt`) or a receipt signed on its own —
//! checks the signature with the gateway's public key(s), and prints what the receipt attests: the decision id, the
//! audit log index (look it up with `portcullis audit show`), the approval request(s) that let
//! the call through (when it needed approval; their story is in the log's `approval` records),
//! the key id and the time. Several
//! `--key`s may be given, so receipts signed before a key rotation still verify.
use std::{
    path::{Path, PathBuf},
    process::ExitCode,
};

use anyhow::Context;
use portcullis_attest::verify_result;
use serde_json::Value;

#[derive(Debug, clap::Args)]
pub struct VerifyReceiptArgs {
    /// The gateway's public key file (repeat for rotated keys).
    #[arg(long = "key", required = true)]
    keys: Vec<PathBuf>,
    /// The request as sent: a JSON-RPC `tools/call` message or its `params`.
    #[arg(long)]
    request: PathBuf,
    /// The answer received: a JSON-RPC response or its `result`.
    #[arg(long)]
    response: PathBuf,
}

pub fn run(args: VerifyReceiptArgs) -> anyhow::Result<ExitCode> {
    let trusted =
        crate::config::key_set(&args.keys).map_err(|(i, reason)| anyhow::anyhow!("--key #{}: {reason}", i + 1))?;
    let request = read_json(&args.request)?;
    let response = read_json(&args.response)?;
    let params = request.get("params").unwrap_or(&request);
    let result = response.get("result").unwrap_or(&response);
    match verify_result(params, result, &trusted) {
        Ok(receipt) => {
            let approvals = match &receipt.approval_ids {
                Some(ids) => format!(", approved by approval request {}", ids.join(", ")),
                None => String::new(),
            };
            let how = match receipt.sealed_size {
                Some(size) => format!("in the audit log's batch sealed at tree size {size}, seal signed"),
                None => "signed".to_owned(),
            };
            println!(
                "receipt ok: decision {}, audit index {}{approvals}, {how} by key {} at {}",
                receipt.decision_id, receipt.audit_index, receipt.kid, receipt.time
            );
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => {
            eprintln!("receipt INVALID: {e}");
            Ok(ExitCode::FAILURE)
        }
    }
}

fn read_json(path: &Path) -> anyhow::Result<Value> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    portcullis_mcp::parse_strict(&bytes, portcullis_mcp::Limits::default())
        .with_context(|| format!("{} is not valid JSON", path.display()))
}
