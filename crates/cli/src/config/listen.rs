//! `[listen]` (the HTTP front's address, Host/Origin allow-lists, sessions, connection
//! caps and timeouts) and `[limits]` (message size and depth, what one principal may hold
//! and send) of the config file. Who the front's callers are (`[listen.tls]`,
//! `[listen.oauth]`, `listen.require`) is `auth`'s.
use std::{net::SocketAddr, num::NonZeroU32, time::Duration};

use portcullis_gateway::config::{ListenConfig, PrincipalLimits, RateLimit};
use portcullis_identity::ServeLimits;
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
    let idle = secs(
        p,
        raw.session_idle_timeout_secs,
        1800,
        "listen.session_idle_timeout_secs",
    );
    let max_sessions = raw.max_sessions.unwrap_or(10_000);
    let sessions_ok = p.check(max_sessions >= 1, "listen.max_sessions", "must be at least 1");
    let connections = serve_limits(raw, p);
    let body_timeout = secs(p, raw.body_timeout_secs, 30, "listen.body_timeout_secs");
    let (idle, connections, body_timeout) = (idle?, connections?, body_timeout?);
    sessions_ok?;
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
        session_idle_timeout: idle,
        max_sessions,
        connections,
        body_timeout,
        auth: Default::default(),
    })
}

/// The accept loop's connection caps and timeouts (T17 slowloris); absent keys: the
/// defaults of [`ServeLimits`].
fn serve_limits(raw: &RawListen, p: &mut Problems) -> Checked<ServeLimits> {
    let default = ServeLimits::default();
    let max = raw.max_connections.unwrap_or(default.max_connections);
    let max_ok = p.check(max >= 1, "listen.max_connections", "must be at least 1");
    // Default: a quarter of the connections, at most 256 (the default for 4096).
    let per_peer = raw
        .max_connections_per_peer
        .unwrap_or((max / 4).clamp(1, default.max_connections_per_peer));
    let per_peer_ok = p.check(
        (1..=max.max(1)).contains(&per_peer),
        "listen.max_connections_per_peer",
        format!(
            "must be between 1 and `listen.max_connections` ({max}), so that one address cannot take every connection"
        ),
    );
    let default_secs = |d: Duration| d.as_secs();
    let handshake = secs(
        p,
        raw.tls_handshake_timeout_secs,
        default_secs(default.tls_handshake_timeout),
        "listen.tls_handshake_timeout_secs",
    );
    let header = secs(
        p,
        raw.header_timeout_secs,
        default_secs(default.header_timeout),
        "listen.header_timeout_secs",
    );
    let keepalive = secs(
        p,
        raw.keepalive_timeout_secs,
        default_secs(default.keepalive_timeout),
        "listen.keepalive_timeout_secs",
    );
    let (handshake, header, keepalive) = (handshake?, header?, keepalive?);
    max_ok?;
    per_peer_ok?;
    Ok(ServeLimits {
        max_connections: max,
        max_connections_per_peer: per_peer,
        tls_handshake_timeout: handshake,
        header_timeout: header,
        keepalive_timeout: keepalive,
    })
}

/// A timeout in whole seconds at `key` (absent: `default`); 0 is refused (it would
/// close everything at once).
fn secs(p: &mut Problems, value: Option<u64>, default: u64, key: &str) -> Checked<Duration> {
    let value = value.unwrap_or(default);
    p.check(value > 0, key, "must be greater than 0")?;
    Ok(Duration::from_secs(value))
}

/// What one principal may hold and send (`[limits]`, T17); absent keys: the defaults of
/// [`PrincipalLimits`] (no rate limit unless `calls_per_second_per_principal` is set).
pub fn principal_limits(raw: &RawLimits, p: &mut Problems) -> Checked<PrincipalLimits> {
    let default = PrincipalLimits::default();
    let sessions = raw.max_sessions_per_principal.unwrap_or(default.max_sessions);
    let sessions_ok = p.check(sessions >= 1, "limits.max_sessions_per_principal", "must be at least 1");
    let calls = raw
        .max_concurrent_calls_per_principal
        .unwrap_or(default.max_concurrent_calls);
    let calls_ok = p.check(
        calls >= 1,
        "limits.max_concurrent_calls_per_principal",
        "must be at least 1",
    );
    let rate = match (raw.calls_per_second_per_principal, raw.call_burst_per_principal) {
        // 0 (or absent): no rate limit.
        (None | Some(0), None) => Ok(None),
        (None | Some(0), Some(_)) => Err(p.add(
            "limits.call_burst_per_principal",
            "has no effect without `limits.calls_per_second_per_principal`; set that too, or remove this key",
        )),
        (Some(per_second), burst) => {
            let burst = burst.unwrap_or(per_second.saturating_mul(2));
            match (NonZeroU32::new(per_second), NonZeroU32::new(burst)) {
                (Some(per_second), Some(burst)) => Ok(Some(RateLimit { per_second, burst })),
                _ => Err(p.add("limits.call_burst_per_principal", "must be at least 1")),
            }
        }
    };
    sessions_ok?;
    calls_ok?;
    Ok(PrincipalLimits {
        max_sessions: sessions,
        max_concurrent_calls: calls,
        rate: rate?,
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
