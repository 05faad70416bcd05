//! The admin listener (`[admin] listen`): approvers list the calls waiting for approval
//! and approve or deny them, and request, approve and end break-glass windows. Every request is authenticated as a registered approver — by
//! the connection's client SVID (mutual TLS; the approver's SPIFFE ID) or by a signed
//! request header (`x-portcullis-approver`, made with an approver key by
//! `portcullis approvals …`). An approval may also carry the approver's signed token over
//! the call's binding (`{"token": "pca1…"}`), which the record then names. Every grant and
//! deny, and every step of a break-glass window, is recorded in the audit log. Nothing here reaches an upstream.
//! The requests and windows are the approvals store's: with the PostgreSQL store, every
//! replica's listener lists and decides the requests of all of them.
#![allow(
    clippy::result_large_err,
    reason = "refusals are finished HTTP responses handed straight back to axum"
)]
use std::{future::Future, sync::Arc, time::SystemTime};

use axum::{
    Extension, Json, Router,
    extract::{Path, State},
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
    routing::{get, post},
};
use bytes::Bytes;
use portcullis_approvals::{
    APPROVERS_NEEDED, ApprovalError, Approver, Grant, PendingEntry, PendingState, Window, WindowState, admin_auth,
    token::Token, unix_now,
};
use portcullis_identity::PeerCertificates;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

use crate::{gateway::Gateway, stages::approve::grant_detail};

type Peer = Option<Extension<PeerCertificates>>;

/// Serves the admin API on `listener` (over TLS when `tls` is given) until `shutdown`.
pub async fn serve_admin(
    gateway: Arc<Gateway>,
    listener: tokio::net::TcpListener,
    tls: Option<TlsAcceptor>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let limits = gateway.config().listen.connections;
    let app = Router::new()
        .route("/approvals", get(list))
        .route("/approvals/{id}", get(show))
        .route("/approvals/{id}/approve", post(approve))
        .route("/approvals/{id}/deny", post(deny))
        .route("/break-glass", get(list_windows).post(request_window))
        .route("/break-glass/{id}/approve", post(approve_window))
        .route("/break-glass/{id}/end", post(end_window))
        .route("/.well-known/jwks.json", get(jwks))
        .with_state(gateway);
    portcullis_identity::serve(listener, tls, app, limits, shutdown).await
}

/// The public keys of the broker's `jwt` sources, as a JSON Web Key Set: upstream servers
/// verify the tokens they are given with them. Public keys only; no authentication.
async fn jwks(State(gateway): State<Arc<Gateway>>) -> Response {
    let keys = match &gateway.config().credentials.broker {
        Some(broker) => broker.jwks(),
        None => json!({"keys": []}),
    };
    Json(keys).into_response()
}

fn refuse(status: StatusCode, message: String) -> Response {
    (status, Json(json!({"error": message}))).into_response()
}

fn status_of(error: &ApprovalError) -> StatusCode {
    match error {
        ApprovalError::UnknownRequest(_) | ApprovalError::Expired(_) => StatusCode::NOT_FOUND,
        ApprovalError::AlreadyDecided(..) => StatusCode::CONFLICT,
        ApprovalError::Unauthenticated(_)
        | ApprovalError::UnknownKey(_)
        | ApprovalError::NotAnApprover(_)
        | ApprovalError::Revoked(_) => StatusCode::FORBIDDEN,
        ApprovalError::SelfApproval(_)
        | ApprovalError::WrongCall(_)
        | ApprovalError::BadSignature
        | ApprovalError::Malformed(_) => StatusCode::UNPROCESSABLE_ENTITY,
        ApprovalError::QueueFull(_) | ApprovalError::Store { .. } => StatusCode::SERVICE_UNAVAILABLE,
    }
}

fn error_response(error: &ApprovalError) -> Response {
    refuse(status_of(error), error.to_string())
}

/// Who sends this request, and how they proved it.
fn authenticate<'g>(
    gateway: &'g Gateway,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    peer: &Peer,
    body: &[u8],
) -> Result<(&'g Approver, &'static str), Response> {
    let approvers = &gateway.approvals.approvers;
    if let Some(header) = headers.get(admin_auth::HEADER) {
        let header = header.to_str().unwrap_or_default();
        let approver = admin_auth::verify(approvers, header, method.as_str(), uri.path(), body, unix_now())
            .map_err(|e| error_response(&e))?;
        return Ok((approver, "admin-key"));
    }
    let svid = gateway.config().listen.auth.svid.as_ref();
    let peer = peer.as_ref().map(|Extension(p)| p).filter(|p| p.leaf().is_some());
    if let (Some(policy), Some(peer)) = (svid, peer) {
        let id = policy
            .connection_workload_id(peer, SystemTime::now())
            .map_err(|e| refuse(StatusCode::FORBIDDEN, format!("client certificate refused: {e}")))?;
        let approver = approvers
            .by_spiffe_id(&id.to_string())
            .map_err(|e| error_response(&e))?;
        return Ok((approver, "admin-mtls"));
    }
    Err(refuse(
        StatusCode::UNAUTHORIZED,
        format!(
            "the admin API needs an approver: connect with an approver SVID (mutual TLS) or sign the request \
             with an approver key (`portcullis approvals … --key KEY`, header `{}`)",
            admin_auth::HEADER
        ),
    ))
}

/// An open request, as approvers see it.
fn entry_json(entry: &PendingEntry) -> Value {
    let b = &entry.binding;
    json!({
        "id": b.id,
        "state": entry.state.label(),
        "required": entry.required,
        "approved_by": entry.grants.iter().map(|g| g.approver.as_str()).collect::<Vec<_>>(),
        "principal": b.principal,
        "server": b.server,
        "method": b.method,
        "target": b.target,
        "tier": entry.tier,
        "reason": entry.reason,
        "arguments": entry.arguments_summary,
        "arguments_sha256": b.arguments_sha256,
        "call_id": entry.call_id,
        "opened_at": entry.opened_at,
        "expires_at": b.expires_at,
        "binding": b,
    })
}

async fn list(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    if let Err(refusal) = authenticate(&gateway, &method, &uri, &headers, &peer, b"") {
        return refusal;
    }
    match gateway.approvals.store.list().await {
        Ok(list) => Json(json!({"approvals": list.iter().map(entry_json).collect::<Vec<_>>()})).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn show(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    if let Err(refusal) = authenticate(&gateway, &method, &uri, &headers, &peer, b"") {
        return refusal;
    }
    match gateway.approvals.store.get(&id).await {
        Ok(entry) => Json(entry_json(&entry)).into_response(),
        Err(e) => error_response(&e),
    }
}

async fn approve(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Response {
    let token = match serde_json::from_slice::<Value>(&body) {
        Ok(v) => v.get("token").and_then(Value::as_str).map(Token::parse),
        Err(_) if body.is_empty() => None,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
    };
    let entry = match gateway.approvals.store.get(&id).await {
        Ok(entry) => entry,
        Err(e) => return error_response(&e),
    };
    // A signed token authenticates its approver by itself; otherwise the request must.
    let (approver, grant) = match token {
        Some(Err(e)) => return error_response(&e),
        Some(Ok(token)) => match gateway.approvals.approvers.verify(&token, &entry.binding, unix_now()) {
            Ok(approver) => (
                approver,
                Grant {
                    approver: approver.name.clone(),
                    channel: "admin-token".into(),
                    signature_sha256: Some(token.signature_sha256()),
                },
            ),
            Err(e) => return error_response(&e),
        },
        None => match authenticate(&gateway, &method, &uri, &headers, &peer, &body) {
            Ok((approver, channel)) => (
                approver,
                Grant {
                    approver: approver.name.clone(),
                    channel: channel.into(),
                    signature_sha256: None,
                },
            ),
            Err(refusal) => return refusal,
        },
    };
    // Recorded, then given: the grant counts (and releases the call, on whichever replica
    // it waits) only once its record is durable. The common refusals record nothing.
    if let Err(e) = entry.check_grant(approver) {
        return error_response(&e);
    }
    let given = gateway
        .recorder
        .approval_then(
            &entry.binding,
            &entry.call_id,
            "granted",
            &grant_detail(&grant),
            gateway.approvals.store.grant(&id, approver, grant.clone()),
        )
        .await;
    let after = match given {
        Ok(Ok(after)) => after,
        Ok(Err(e)) => return error_response(&e),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    tracing::info!(approval = %id, approver = %approver.name, state = after.state.label(), "approval given");
    Json(json!({
        "id": id,
        "state": after.state.label(),
        "required": entry.required,
        "approved_by": after.grants.into_iter().map(|g| g.approver).collect::<Vec<_>>(),
    }))
    .into_response()
}

async fn deny(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Response {
    let (approver, channel) = match authenticate(&gateway, &method, &uri, &headers, &peer, &body) {
        Ok(who) => who,
        Err(refusal) => return refusal,
    };
    let entry = match gateway.approvals.store.get(&id).await {
        Ok(entry) => entry,
        Err(e) => return error_response(&e),
    };
    // Recorded, then denied (as a grant is); an already decided request records nothing.
    if let Err(e) = entry.undecided() {
        return error_response(&e);
    }
    let detail = [("approver", approver.name.clone()), ("channel", channel.to_owned())];
    let denied = gateway
        .recorder
        .approval_then(
            &entry.binding,
            &entry.call_id,
            "denied",
            &detail,
            gateway.approvals.store.deny(&id, approver),
        )
        .await;
    match denied {
        Ok(Ok(())) => {}
        Ok(Err(e)) => return error_response(&e),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    }
    tracing::info!(approval = %id, approver = %approver.name, "approval denied");
    Json(json!({"id": id, "state": PendingState::Denied { by: approver.name.clone() }.label()})).into_response()
}

/// A break-glass window, as approvers see it.
fn window_json(window: &Window) -> Value {
    let (until, ended_at, ended_by) = match &window.state {
        WindowState::Active { until } => (Some(*until), None, None),
        WindowState::Ended { at, by } => (None, Some(*at), Some(by.as_str())),
        WindowState::Requested => (None, None, None),
    };
    json!({
        "id": window.id,
        "state": window.state.label(),
        "reason": window.reason,
        "ttl_secs": window.ttl_secs,
        "workload": window.workload,
        "requested_by": window.requested_by,
        "requested_at": window.requested_at,
        "approved_by": window.approvers,
        "approvals_needed": APPROVERS_NEEDED,
        "until": until,
        "ended_at": ended_at,
        "ended_by": ended_by,
    })
}

async fn list_windows(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
) -> Response {
    if let Err(refusal) = authenticate(&gateway, &method, &uri, &headers, &peer, b"") {
        return refusal;
    }
    let ended = match gateway.approvals.store.expire_windows().await {
        Ok(ended) => ended,
        Err(e) => return error_response(&e),
    };
    if let Err(e) = gateway.record_break_glass_ends(ended).await {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    match gateway.approvals.store.windows().await {
        Ok(list) => Json(json!({"windows": list.iter().map(window_json).collect::<Vec<_>>()})).into_response(),
        Err(e) => error_response(&e),
    }
}

/// Records a break-glass request; a log that cannot take it fails the request, and the
/// unrecorded window is ended (it was never approvable unrecorded).
async fn record_window(gateway: &Gateway, window: &Window, step: &str, by: &str) -> Result<(), Response> {
    match gateway.recorder.break_glass(window, step, by, &[]).await {
        Ok(()) => Ok(()),
        Err(e) => {
            if let Err(undo) = gateway.approvals.store.end_window(&window.id, "unrecorded").await {
                tracing::error!(break_glass = %window.id, "an unrecorded break-glass step could not be undone: {undo}");
            }
            Err(refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
        }
    }
}

async fn request_window(
    State(gateway): State<Arc<Gateway>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Response {
    let (approver, _) = match authenticate(&gateway, &method, &uri, &headers, &peer, &body) {
        Ok(who) => who,
        Err(refusal) => return refusal,
    };
    let asked: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return refuse(StatusCode::BAD_REQUEST, format!("the body is not JSON: {e}")),
    };
    let reason = asked["reason"].as_str().unwrap_or_default();
    let ttl = asked["ttl_secs"].as_u64().unwrap_or_default();
    let workload = asked["workload"].as_str().map(str::to_owned);
    let window = match gateway
        .approvals
        .store
        .request_window(&approver.name, reason, ttl, workload)
        .await
    {
        Ok(window) => window,
        Err(e) => return error_response(&e),
    };
    if let Err(refusal) = record_window(&gateway, &window, "requested", &approver.name).await {
        return refusal;
    }
    tracing::warn!(break_glass = %window.id, by = %approver.name, ttl, "break-glass requested");
    Json(window_json(&window)).into_response()
}

async fn approve_window(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Response {
    let (approver, _) = match authenticate(&gateway, &method, &uri, &headers, &peer, &body) {
        Ok(who) => who,
        Err(refusal) => return refusal,
    };
    // Recorded, then made: the approval that activates a window is durable before any
    // call can run under it. The window as it will be is checked first (the common
    // refusals record nothing); a change the store then refuses is recorded `void`.
    let now = unix_now();
    let current = match gateway.approvals.store.windows().await {
        Ok(list) => list.into_iter().find(|w| w.id == id),
        Err(e) => return error_response(&e),
    };
    let Some(current) = current else {
        return error_response(&ApprovalError::UnknownRequest(id));
    };
    let will_be = match current.approved_by(approver, now) {
        Ok(after) => after,
        Err(e) => return error_response(&e),
    };
    let step = match will_be.state {
        WindowState::Active { .. } => "active",
        _ => "approved",
    };
    let approved = gateway
        .recorder
        .break_glass_then(
            &will_be,
            step,
            &approver.name,
            gateway.approvals.store.approve_window(&id, approver, now),
        )
        .await;
    let window = match approved {
        Ok(Ok(window)) => window,
        Ok(Err(e)) => return error_response(&e),
        Err(e) => return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string()),
    };
    tracing::warn!(break_glass = %id, by = %approver.name, state = window.state.label(), "break-glass approved");
    Json(window_json(&window)).into_response()
}

async fn end_window(
    State(gateway): State<Arc<Gateway>>,
    Path(id): Path<String>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    peer: Peer,
    body: Bytes,
) -> Response {
    let (approver, _) = match authenticate(&gateway, &method, &uri, &headers, &peer, &body) {
        Ok(who) => who,
        Err(refusal) => return refusal,
    };
    let window = match gateway.approvals.store.end_window(&id, &approver.name).await {
        Ok(window) => window,
        Err(e) => return error_response(&e),
    };
    if let Err(e) = gateway
        .recorder
        .break_glass(&window, "ended", &approver.name, &[])
        .await
    {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    tracing::warn!(break_glass = %id, by = %approver.name, "break-glass ended");
    Json(window_json(&window)).into_response()
}
