//! The admin listener (`[admin] listen`): approvers list the calls waiting for approval
//! and approve or deny them. Every request is authenticated as a registered approver — by
//! the connection's client SVID (mutual TLS; the approver's SPIFFE ID) or by a signed
//! request header (`x-portcullis-approver`, made with an approver key by
//! `portcullis approvals …`). An approval may also carry the approver's signed token over
//! the call's binding (`{"token": "pca1…"}`), which the record then names. Every grant and
//! deny is recorded in the audit log. Nothing here reaches an upstream.
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
    ApprovalError, Approver, Grant, PendingEntry, PendingState, admin_auth, token::Token, unix_now,
};
use portcullis_identity::PeerCertificates;
use serde_json::{Value, json};
use tokio_rustls::TlsAcceptor;

use crate::gateway::Gateway;

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
        .with_state(gateway);
    portcullis_identity::serve(listener, tls, app, limits, shutdown).await
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
        ApprovalError::QueueFull(_) => StatusCode::SERVICE_UNAVAILABLE,
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
    let list: Vec<Value> = gateway.approvals.pending.list().iter().map(entry_json).collect();
    Json(json!({"approvals": list})).into_response()
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
    match gateway.approvals.pending.get(&id) {
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
    let entry = match gateway.approvals.pending.get(&id) {
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
    let mut detail = vec![("approver", grant.approver.clone()), ("channel", grant.channel.clone())];
    if let Some(sig) = &grant.signature_sha256 {
        detail.push(("signature_sha256", sig.clone()));
    }
    let state = match gateway.approvals.pending.grant(&id, approver, grant) {
        Ok(state) => state,
        Err(e) => return error_response(&e),
    };
    if let Err(e) = gateway
        .recorder
        .approval(&entry.binding, &entry.call_id, "granted", &detail)
        .await
    {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    tracing::info!(approval = %id, approver = %approver.name, state = state.label(), "approval given");
    let after = gateway.approvals.pending.get(&id).ok();
    Json(json!({
        "id": id,
        "state": state.label(),
        "required": entry.required,
        "approved_by": after.map(|e| e.grants.into_iter().map(|g| g.approver).collect::<Vec<_>>()),
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
    let entry = match gateway.approvals.pending.get(&id) {
        Ok(entry) => entry,
        Err(e) => return error_response(&e),
    };
    if let Err(e) = gateway.approvals.pending.deny(&id, approver) {
        return error_response(&e);
    }
    let detail = [("approver", approver.name.clone()), ("channel", channel.to_owned())];
    if let Err(e) = gateway
        .recorder
        .approval(&entry.binding, &entry.call_id, "denied", &detail)
        .await
    {
        return refuse(StatusCode::SERVICE_UNAVAILABLE, e.to_string());
    }
    tracing::info!(approval = %id, approver = %approver.name, "approval denied");
    Json(json!({"id": id, "state": PendingState::Denied { by: approver.name.clone() }.label()})).into_response()
}
