//! `portcullis break-glass …`: the operator runbook for emergencies. `request` opens a
//! window with a reason and a TTL (capped by `[approvals] break_glass_max_ttl_secs`); it
//! becomes active only when two distinct registered approvers `approve` it; while active
//! the policy sees `context.break_glass` and every call made under it is flagged in its
//! audit record; it ends at its TTL or with `end`. All through the admin listener, each
//! request signed with the approver's key (or over mutual TLS with an approver SVID).
use std::{process::ExitCode, time::Duration};

use clap::Subcommand;
use serde_json::{Value, json};

use super::approvals::{Admin, AdminArgs};

#[derive(Debug, Subcommand)]
pub enum BreakGlassCommand {
    /// Open a break-glass window (inactive until two approvers approve it).
    Request {
        /// Why: recorded in the audit log with every step of the window.
        #[arg(long)]
        reason: String,
        /// How long it stays active once approved, e.g. 30m (at most the configured cap).
        #[arg(long, value_parser = crate::duration::parse)]
        ttl: Duration,
        /// Only calls from this workload (SPIFFE ID) are under it; default: every caller.
        #[arg(long)]
        workload: Option<String>,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// Approve a requested window; the second distinct approver activates it.
    Approve {
        /// The window's id (printed by `request`, shown by `list`).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// End a window now.
    End {
        /// The window's id (shown by `list`).
        id: String,
        #[command(flatten)]
        admin: AdminArgs,
    },
    /// List the windows: requested, active (until when) and ended.
    List(AdminArgs),
}

pub async fn run(command: BreakGlassCommand) -> anyhow::Result<ExitCode> {
    match command {
        BreakGlassCommand::Request {
            reason,
            ttl,
            workload,
            admin,
        } => {
            let body = json!({"reason": reason, "ttl_secs": ttl.as_secs(), "workload": workload});
            let window = Admin::new(&admin)?.send("POST", "/break-glass", Some(body)).await?;
            println!("{}", line(&window));
            println!(
                "two approvers must now run: portcullis break-glass approve {} --key APPROVER_KEY",
                window["id"].as_str().unwrap_or("?")
            );
        }
        BreakGlassCommand::Approve { id, admin } => {
            let window = Admin::new(&admin)?
                .send("POST", &format!("/break-glass/{id}/approve"), Some(json!({})))
                .await?;
            println!("{}", line(&window));
        }
        BreakGlassCommand::End { id, admin } => {
            let window = Admin::new(&admin)?
                .send("POST", &format!("/break-glass/{id}/end"), Some(json!({})))
                .await?;
            println!("{}", line(&window));
        }
        BreakGlassCommand::List(admin) => {
            let listed = Admin::new(&admin)?.send("GET", "/break-glass", None).await?;
            let windows = listed["windows"].as_array().cloned().unwrap_or_default();
            if windows.is_empty() {
                println!("no break-glass windows");
            }
            for window in &windows {
                println!("{}", line(window));
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// One line per window.
fn line(w: &Value) -> String {
    let state = w["state"].as_str().unwrap_or("?");
    let detail = match state {
        "active" => format!("active until {} (Unix seconds)", w["until"]),
        "ended" => format!(
            "ended at {} by {}",
            w["ended_at"],
            w["ended_by"].as_str().unwrap_or("?")
        ),
        _ => format!(
            "requested; approvals {}/{}",
            w["approved_by"].as_array().map_or(0, Vec::len),
            w["approvals_needed"]
        ),
    };
    format!(
        "break-glass {id}: {detail}; reason: {reason}; ttl {ttl} s; for {scope}; requested by {by}",
        id = w["id"].as_str().unwrap_or("?"),
        reason = w["reason"].as_str().unwrap_or("-"),
        ttl = w["ttl_secs"],
        scope = w["workload"].as_str().unwrap_or("every caller"),
        by = w["requested_by"].as_str().unwrap_or("?"),
    )
}
