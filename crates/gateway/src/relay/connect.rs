//! Starting an upstream and introducing the client to it in the upstream's own
//! protocol era: `server/discover` for 2026-07-28 servers, `initialize` (with
//! the client's own parameters when it sent them) for earlier ones.
use std::{
    sync::{Arc, Weak},
    time::Duration,
};

use portcullis_mcp::{Era, ErrorCode, Limits, Message, MessageKind, ProtocolVersion, message};
use portcullis_transport::{ChildSpec, HttpSpec, connect_http, spawn_child};
use serde_json::{Value, json};

use crate::{
    config::{Isolation, ServerConfig, UpstreamProtocol, UpstreamTransport},
    error::UpstreamError,
    relay::hello::ClientHello,
    relay::http_clients::HttpClients,
    relay::upstream::{LinkKind, ServerMessageRoute, UpstreamPeer},
};

/// How long the `server/discover` probe runs alone before `initialize` is tried alongside.
const DISCOVER_PROBE: Duration = Duration::from_secs(5);

/// What the upstream told the gateway in the handshake. Cheap to clone (every call's
/// `Connected` carries one): the results are shared.
#[derive(Debug, Clone)]
pub enum UpstreamEra {
    /// Answered `initialize`; the result as sent.
    Legacy { init: Arc<Value> },
    /// Answered `server/discover`; the result as sent.
    Modern { discover: Arc<Value> },
}

impl UpstreamEra {
    pub fn capabilities(&self) -> Value {
        let r = match self {
            UpstreamEra::Legacy { init } => init,
            UpstreamEra::Modern { discover } => discover,
        };
        r.get("capabilities").cloned().unwrap_or_else(|| json!({}))
    }

    pub fn instructions(&self) -> Option<&str> {
        match self {
            UpstreamEra::Legacy { init: r } | UpstreamEra::Modern { discover: r } => {
                r.get("instructions").and_then(Value::as_str)
            }
        }
    }

    /// Whether a modern server also lists a legacy revision in `supportedVersions`.
    pub fn supports_legacy(&self) -> bool {
        let UpstreamEra::Modern { discover } = self else {
            return true;
        };
        discover
            .get("supportedVersions")
            .and_then(Value::as_array)
            .is_some_and(|versions| {
                versions
                    .iter()
                    .filter_map(Value::as_str)
                    .filter_map(ProtocolVersion::parse)
                    .any(|v| v.era() == Era::Legacy)
            })
    }

    pub fn is_modern(&self) -> bool {
        matches!(self, UpstreamEra::Modern { .. })
    }
}

/// Starts `server` and performs the handshake for `hello`.
pub async fn connect(
    server: &ServerConfig,
    hello: &ClientHello,
    limits: Limits,
    http: &HttpClients,
    route: Weak<dyn ServerMessageRoute>,
) -> Result<(std::sync::Arc<UpstreamPeer>, UpstreamEra), UpstreamError> {
    let name = server.name.to_string();
    let (link, kind) = match &server.transport {
        UpstreamTransport::Stdio { argv, env, cwd } => {
            let spec = ChildSpec {
                name: name.clone(),
                argv: argv.clone(),
                env: env.clone(),
                cwd: cwd.clone(),
                limits,
            };
            let link = spawn_child(&spec).map_err(|e| UpstreamError::Start {
                server: name.clone(),
                reason: e.to_string(),
            })?;
            (link, LinkKind::Stdio)
        }
        UpstreamTransport::Http { url, headers, .. } => {
            let spec = HttpSpec {
                name: name.clone(),
                url: url.clone(),
                headers: headers.clone(),
                limits,
            };
            (connect_http(spec, http.for_server(server)?.clone()), LinkKind::Http)
        }
    };
    let shared = server.isolation == Isolation::Shared;
    let peer = UpstreamPeer::start(server.name.clone(), kind, link, server.request_timeout, shared);
    peer.set_default_route(route.clone());
    let era = match server.protocol {
        UpstreamProtocol::Legacy => initialize(&peer, hello, &route).await?,
        UpstreamProtocol::Modern => discover(&peer, hello, &route, server.request_timeout)
            .await?
            .ok_or_else(|| handshake_error(&name, "it does not support protocol 2026-07-28"))?,
        UpstreamProtocol::Auto => detect(&peer, hello, &route, server.request_timeout).await?,
    };
    tracing::debug!(server = %name, modern = era.is_modern(), "upstream ready");
    Ok((peer, era))
}

/// `protocol = "auto"`: probes with `server/discover`. A legacy server answers it with an
/// error (then `initialize` follows) or ignores it; a 2026-07-28 server may just be slow
/// (a cold start). So after [`DISCOVER_PROBE`] without an answer, `initialize` goes out while
/// the probe stays pending (up to the server's request timeout), and the first to establish
/// an era wins: a modern-only server refuses `initialize` and is found by its late
/// `server/discover` answer.
async fn detect(
    peer: &UpstreamPeer,
    hello: &ClientHello,
    route: &Weak<dyn ServerMessageRoute>,
    request_timeout: Duration,
) -> Result<UpstreamEra, UpstreamError> {
    let name = peer.server();
    let probe = discover(peer, hello, route, request_timeout);
    tokio::pin!(probe);
    let probed = match tokio::time::timeout(DISCOVER_PROBE, &mut probe).await {
        Ok(probed) => probed,
        Err(_) => {
            tracing::debug!(server = %name, "no answer to server/discover yet; trying initialize alongside");
            let init = initialize(peer, hello, route);
            tokio::pin!(init);
            return tokio::select! {
                probed = &mut probe => match probed {
                    Ok(Some(era)) if !prefers_legacy(hello, &era) => Ok(era),
                    _ => init.await,
                },
                initialized = &mut init => match initialized {
                    Ok(era) => Ok(era),
                    Err(e) => match probe.await {
                        Ok(Some(era)) => Ok(era),
                        _ => Err(e),
                    },
                },
            };
        }
    };
    match probed {
        // Speak the client's own era when the server can: nothing to bridge then.
        Ok(Some(era)) if prefers_legacy(hello, &era) => initialize(peer, hello, route).await,
        Ok(Some(era)) => Ok(era),
        Ok(None) => initialize(peer, hello, route).await,
        Err(e) if peer.is_alive() => {
            tracing::debug!(server = %name, "discover probe failed ({e}); trying initialize");
            initialize(peer, hello, route).await
        }
        Err(e) => Err(e),
    }
}

/// Whether a legacy client's session should speak legacy to this modern server (it can).
fn prefers_legacy(hello: &ClientHello, era: &UpstreamEra) -> bool {
    hello.era() == Era::Legacy && era.supports_legacy()
}

async fn discover(
    peer: &UpstreamPeer,
    hello: &ClientHello,
    route: &Weak<dyn ServerMessageRoute>,
    limit: Duration,
) -> Result<Option<UpstreamEra>, UpstreamError> {
    let meta = hello.modern_meta_object();
    // A server may refuse the first attempt with UnsupportedProtocolVersion; when it lists
    // 2026-07-28 as supported, one retry is what the revision asks of a client.
    for _attempt in 0..2 {
        let req = message::request(json!(0), "server/discover", json!({"_meta": meta.clone()}));
        let answer = match tokio::time::timeout(limit, peer.call(req, route.clone())).await {
            Ok(answer) => answer?,
            Err(_) => return Ok(None),
        };
        tracing::debug!(server = %peer.server(), answer = %answer.as_value_string(), "server/discover probe answered");
        if let Some(result) = answer.result() {
            let versions = result.get("supportedVersions").and_then(Value::as_array);
            let modern = versions.is_some_and(|v| v.iter().any(|v| v.as_str() == Some("2026-07-28")));
            return Ok(modern.then(|| UpstreamEra::Modern {
                discover: Arc::new(result.clone()),
            }));
        }
        let code = answer.error().and_then(|e| e.get("code")).and_then(Value::as_i64);
        let supported = answer
            .error()
            .and_then(|e| e.pointer("/data/supported"))
            .and_then(Value::as_array);
        let retry = code == Some(ErrorCode::UnsupportedProtocolVersion.code())
            && supported.is_some_and(|v| v.iter().any(|v| v.as_str() == Some("2026-07-28")));
        if !retry {
            return Ok(None);
        }
    }
    Ok(None)
}

async fn initialize(
    peer: &UpstreamPeer,
    hello: &ClientHello,
    route: &Weak<dyn ServerMessageRoute>,
) -> Result<UpstreamEra, UpstreamError> {
    let name = peer.server().to_string();
    let req = message::request(json!(0), "initialize", hello.legacy_initialize_params());
    let answer: Message = peer.call(req, route.clone()).await?;
    if answer.kind() != MessageKind::Response {
        return Err(handshake_error(&name, "unexpected message"));
    }
    let Some(result) = answer.result() else {
        let why = answer.error().map(Value::to_string).unwrap_or_default();
        return Err(handshake_error(&name, &format!("initialize failed: {why}")));
    };
    let init = Arc::new(result.clone());
    peer.send(message::notification("notifications/initialized", json!({})))
        .await?;
    Ok(UpstreamEra::Legacy { init })
}

fn handshake_error(server: &str, reason: &str) -> UpstreamError {
    UpstreamError::Handshake {
        server: server.to_owned(),
        reason: reason.to_owned(),
    }
}
