//! `[listen]` (the HTTP front's address, Host/Origin allow-lists and sessions) and
//! `[limits]` (message size and depth) of the config file. Who the front's callers are
//! (`[listen.tls]`, `[listen.oauth]`, `listen.require`) is `auth`'s.
use std::{net::SocketAddr, time::Duration};

use portcullis_gateway::config::ListenConfig;
use portcullis_mcp::Limits;

use super::{
    problems::{Checked, Problems},
    raw::{RawLimits, RawListen},
};

/// Validates `[listen]` (its `auth` left at the default for `auth` to fill in); a front
/// reachable from other machines is a warning.
pub fn listen(raw: &RawListen, p: &mut Problems, warnings: &mut Vec<String>) -> Checked<ListenConfig> {
    let http = raw
        .http
        .as_deref()
        .map(|text| {
            let addr = p.take(
                "listen.http",
                text.parse::<SocketAddr>()
                    .map_err(|_| format!("`{text}` is not an address like 127.0.0.1:8080")),
            )?;
            if !addr.ip().is_loopback() {
                warnings.push(format!(
                    "listen.http binds {addr}, which is reachable from other machines"
                ));
            }
            Ok(addr)
        })
        .transpose();
    let idle = raw.session_idle_timeout_secs.unwrap_or(1800);
    let idle_ok = p.check(idle > 0, "listen.session_idle_timeout_secs", "must be greater than 0");
    idle_ok?;
    Ok(ListenConfig {
        http: http?,
        allowed_hosts: raw
            .allowed_hosts
            .clone()
            .unwrap_or_else(ListenConfig::default_allowed_hosts),
        allowed_origins: raw
            .allowed_origins
            .clone()
            .unwrap_or_else(ListenConfig::default_allowed_origins),
        session_idle_timeout: Duration::from_secs(idle),
        max_sessions: raw.max_sessions.unwrap_or(10_000),
        auth: Default::default(),
    })
}

/// Validates `[limits]` (absent keys: the defaults).
pub fn limits(raw: &RawLimits, p: &mut Problems) -> Checked<Limits> {
    let limits = Limits {
        max_bytes: raw.max_message_bytes.unwrap_or(Limits::default().max_bytes),
        max_depth: raw.max_json_depth.unwrap_or(Limits::default().max_depth),
    };
    let bytes_ok = p.check(
        limits.max_bytes >= 1024,
        "limits.max_message_bytes",
        "must be at least 1024",
    );
    let depth_ok = p.check(
        (2..=128).contains(&limits.max_depth),
        "limits.max_json_depth",
        "must be between 2 and 128",
    );
    bytes_ok?;
    depth_ok?;
    Ok(limits)
}
