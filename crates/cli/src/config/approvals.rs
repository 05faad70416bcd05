//! `[approvals]` and `[admin]` of the config file: the registered approvers (each by
//! SPIFFE ID and/or public key file, read and checked at load), how long a call waits for
//! approval, how long a request stays open, how many may be open, N-of-M requirements by
//! `<server>/<target>` glob, the cap on break-glass windows, and the admin listener
//! approvers answer on.
use std::{net::SocketAddr, path::Path, time::Duration};

use portcullis_approvals::{Approver, Approvers, PendingSettings, Requirement};
use portcullis_gateway::config::ApprovalsConfig;

use super::{
    attest::public_key,
    problems::{Checked, Problems},
    raw::{RawAdmin, RawApprovals},
};

/// Default hold of a call waiting for approval.
pub const DEFAULT_WAIT_SECS: u64 = 120;
/// Default cap on a break-glass window.
pub const DEFAULT_BREAK_GLASS_MAX_TTL_SECS: u64 = 3600;

/// Validates `[approvals]`.
pub fn approvals(raw: &RawApprovals, base: &Path, p: &mut Problems) -> Checked<ApprovalsConfig> {
    let mut ok = Ok(());
    let defaults = PendingSettings::default();
    let ttl_secs = raw.ttl_secs.unwrap_or(defaults.ttl_secs);
    let wait_secs = raw.wait_secs.unwrap_or(DEFAULT_WAIT_SECS);
    ok = ok.and(p.check(ttl_secs > 0, "approvals.ttl_secs", "must be greater than 0"));
    ok = ok.and(p.check(
        wait_secs <= ttl_secs,
        "approvals.wait_secs",
        format!("must not exceed approvals.ttl_secs ({ttl_secs}): a call cannot wait longer than its request lives"),
    ));
    let break_glass_max = raw.break_glass_max_ttl_secs.unwrap_or(DEFAULT_BREAK_GLASS_MAX_TTL_SECS);
    ok = ok.and(p.check(
        break_glass_max > 0,
        "approvals.break_glass_max_ttl_secs",
        "must be greater than 0",
    ));
    let mut user_may_approve = Vec::new();
    for (i, tier) in raw.user_may_approve.iter().enumerate() {
        match p.take(
            format!("approvals.user_may_approve[{i}]"),
            tier.parse::<portcullis_core::Tier>(),
        ) {
            Ok(tier) => user_may_approve.push(tier),
            Err(noted) => ok = Err(noted),
        }
    }
    let max_pending = raw.max_pending.unwrap_or(defaults.max_pending);
    ok = ok.and(p.check(max_pending > 0, "approvals.max_pending", "must be greater than 0"));
    let mut requirements = Vec::new();
    for (pattern, required) in &raw.required {
        let key = format!("approvals.required.\"{pattern}\"");
        let shaped = p.check(
            pattern.contains('/'),
            &key,
            "must be `<server>/<target glob>`, e.g. \"files/delete_*\"",
        );
        let counted = p.check(*required >= 1, &key, "must be at least 1");
        match p.take(&key, glob::Pattern::new(pattern)) {
            Ok(glob) if shaped.is_ok() && counted.is_ok() => requirements.push(Requirement {
                pattern: glob,
                required: *required,
            }),
            Ok(_) => ok = Err(shaped.and(counted).err().unwrap_or_else(|| p.add(&key, "invalid"))),
            Err(noted) => ok = Err(noted),
        }
    }
    let mut list: Vec<Approver> = Vec::new();
    for (i, raw) in raw.approvers.iter().enumerate() {
        let at = |field: &str| format!("approvals.approvers[{i}].{field}");
        ok = ok.and(p.check(!raw.name.trim().is_empty(), at("name"), "must name the approver"));
        ok = ok.and(p.check(
            !list.iter().any(|a| a.name == raw.name),
            at("name"),
            format!("approver `{}` is registered twice", raw.name),
        ));
        ok = ok.and(p.check(
            raw.spiffe_id.is_some() || raw.key.is_some(),
            at("key"),
            "an approver needs `spiffe_id` (admin listener over mutual TLS) and/or `key` (a public key file from `portcullis audit keygen`)",
        ));
        if let Some(id) = &raw.spiffe_id {
            ok = ok.and(p.check(
                id.starts_with("spiffe://"),
                at("spiffe_id"),
                "must be a SPIFFE ID (spiffe://trust-domain/path)",
            ));
        }
        let key = match &raw.key {
            Some(path) => match p.take(at("key"), public_key(&base.join(path))) {
                Ok(key) => Some(key),
                Err(noted) => {
                    ok = Err(noted);
                    None
                }
            },
            None => None,
        };
        list.push(Approver {
            name: raw.name.clone(),
            spiffe_id: raw.spiffe_id.clone(),
            user: raw.user.clone().unwrap_or_else(|| raw.name.clone()),
            key,
            revoked: raw.revoked.unwrap_or(false),
        });
    }
    ok?;
    Ok(ApprovalsConfig {
        approvers: Approvers::new(list),
        pending: PendingSettings {
            ttl_secs,
            max_pending,
            requirements,
        },
        wait: Duration::from_secs(wait_secs),
        break_glass_max_ttl: Duration::from_secs(break_glass_max),
        user_may_approve,
        shared: None,
    })
}

/// Validates `[admin]`: the admin listener's address, over the front's TLS unless
/// `tls = false`. Without TLS it must be a loopback address (requests are then
/// authenticated by approver signatures alone).
pub fn admin(raw: &RawAdmin, front_tls: bool, p: &mut Problems) -> Checked<Option<AdminListen>> {
    let Some(text) = &raw.listen else { return Ok(None) };
    let tls = front_tls && raw.tls != Some(false);
    p.check(
        front_tls || raw.tls != Some(true),
        "admin.tls",
        "the admin listener takes its TLS from [listen.tls]; add [listen.tls] or drop admin.tls",
    )?;
    let addr: SocketAddr = p.take(
        "admin.listen",
        text.parse::<SocketAddr>()
            .map_err(|e| format!("`{text}` is not an address like 127.0.0.1:9443 ({e})")),
    )?;
    p.check(
        tls || addr.ip().is_loopback(),
        "admin.listen",
        "without TLS the admin listener must be on a loopback address; add [listen.tls] (and leave admin.tls on) to serve it to other machines",
    )?;
    Ok(Some(AdminListen { addr, tls }))
}

/// Where the admin listener listens, and whether it uses the front's TLS.
#[derive(Debug, Clone, Copy)]
pub struct AdminListen {
    pub addr: SocketAddr,
    pub tls: bool,
}
