//! The T17 keys: connection caps and timeouts in `[listen]`, what one principal may hold
//! and send in `[limits]`: their defaults, their values, and each bad value named by key.
use std::{path::Path, time::Duration};

use super::parse;

const SERVER: &str = "\n[[servers]]\nname = \"files\"\ncommand = [\"/bin/sh\"]\n";

fn load(text: &str) -> portcullis_gateway::config::GatewayConfig {
    parse(&format!("{text}{SERVER}"), "t.toml", Path::new("/"))
        .unwrap_or_else(|e| panic!("{e}"))
        .gateway
}

fn problems(text: &str) -> super::ConfigError {
    parse(&format!("{text}{SERVER}"), "t.toml", Path::new("/")).expect_err(text)
}

#[test]
fn absent_keys_take_defaults_for_a_desktop_and_a_server() {
    let g = load("");
    let c = g.listen.connections;
    assert_eq!((c.max_connections, c.max_connections_per_peer), (4096, 256));
    assert_eq!(
        (c.tls_handshake_timeout, c.header_timeout, c.keepalive_timeout),
        (
            Duration::from_secs(10),
            Duration::from_secs(10),
            Duration::from_secs(60)
        )
    );
    assert_eq!(g.listen.body_timeout, Duration::from_secs(30));
    let p = g.principal_limits;
    assert_eq!(
        (g.listen.max_sessions, p.max_sessions, p.max_concurrent_calls),
        (10_000, 32, 64)
    );
    assert_eq!(p.rate, None, "no rate limit unless configured");
}

#[test]
fn every_key_is_read() {
    let g = load(
        "[listen]\nmax_sessions = 5\nmax_connections = 100\nmax_connections_per_peer = 10\n\
         tls_handshake_timeout_secs = 3\nheader_timeout_secs = 4\nbody_timeout_secs = 5\nkeepalive_timeout_secs = 6\n\
         [limits]\nmax_sessions_per_principal = 2\nmax_concurrent_calls_per_principal = 3\n\
         calls_per_second_per_principal = 7\ncall_burst_per_principal = 9\n",
    );
    let c = g.listen.connections;
    assert_eq!(
        (g.listen.max_sessions, c.max_connections, c.max_connections_per_peer),
        (5, 100, 10)
    );
    let secs = |d: Duration| d.as_secs();
    assert_eq!(
        [
            c.tls_handshake_timeout,
            c.header_timeout,
            g.listen.body_timeout,
            c.keepalive_timeout
        ]
        .map(secs),
        [3, 4, 5, 6]
    );
    let p = g.principal_limits;
    assert_eq!((p.max_sessions, p.max_concurrent_calls), (2, 3));
    let rate = p.rate.unwrap();
    assert_eq!((rate.per_second.get(), rate.burst.get()), (7, 9));
}

#[test]
fn derived_defaults_follow_the_keys_they_depend_on() {
    let g = load("[listen]\nmax_connections = 40\n[limits]\ncalls_per_second_per_principal = 5\n");
    assert_eq!(
        g.listen.connections.max_connections_per_peer, 10,
        "a quarter of the cap"
    );
    assert_eq!(g.principal_limits.rate.unwrap().burst.get(), 10, "twice the rate");
    let off = load("[limits]\ncalls_per_second_per_principal = 0\n");
    assert_eq!(off.principal_limits.rate, None, "0 switches the rate limit off");
}

#[test]
fn bad_values_are_named_by_key_with_what_to_do() {
    let cases = [
        ("[listen]\nmax_sessions = 0\n", "listen.max_sessions", "at least 1"),
        (
            "[listen]\nmax_connections = 0\n",
            "listen.max_connections",
            "at least 1",
        ),
        (
            "[listen]\nmax_connections = 10\nmax_connections_per_peer = 11\n",
            "listen.max_connections_per_peer",
            "between 1 and `listen.max_connections` (10)",
        ),
        (
            "[listen]\nmax_connections_per_peer = 0\n",
            "listen.max_connections_per_peer",
            "between 1",
        ),
        (
            "[listen]\ntls_handshake_timeout_secs = 0\n",
            "listen.tls_handshake_timeout_secs",
            "greater than 0",
        ),
        (
            "[listen]\nheader_timeout_secs = 0\n",
            "listen.header_timeout_secs",
            "greater than 0",
        ),
        (
            "[listen]\nbody_timeout_secs = 0\n",
            "listen.body_timeout_secs",
            "greater than 0",
        ),
        (
            "[listen]\nkeepalive_timeout_secs = 0\n",
            "listen.keepalive_timeout_secs",
            "greater than 0",
        ),
        (
            "[limits]\nmax_sessions_per_principal = 0\n",
            "limits.max_sessions_per_principal",
            "at least 1",
        ),
        (
            "[limits]\nmax_concurrent_calls_per_principal = 0\n",
            "limits.max_concurrent_calls_per_principal",
            "at least 1",
        ),
        (
            "[limits]\ncall_burst_per_principal = 5\n",
            "limits.call_burst_per_principal",
            "set that too, or remove this key",
        ),
        (
            "[limits]\ncalls_per_second_per_principal = 5\ncall_burst_per_principal = 0\n",
            "limits.call_burst_per_principal",
            "at least 1",
        ),
        (
            "[limits]\ncalls_per_second_per_principal = -1\n",
            "line 2, column 34",
            "invalid value",
        ),
    ];
    for (text, key, reason) in cases {
        let e = problems(text);
        assert_eq!(e.key, key, "{text}: {e}");
        assert!(e.reason.contains(reason), "{text}: {e}");
    }
}

#[test]
fn several_bad_limits_are_reported_in_one_run() {
    let e =
        problems("[listen]\nheader_timeout_secs = 0\nmax_connections = 0\n[limits]\nmax_sessions_per_principal = 0\n");
    let keys: Vec<&str> = e.problems().map(|(key, _)| key).collect();
    assert_eq!(
        keys,
        [
            "limits.max_sessions_per_principal",
            "listen.max_connections",
            "listen.header_timeout_secs"
        ],
        "{e}"
    );
}
