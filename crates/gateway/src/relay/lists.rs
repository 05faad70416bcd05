//! Reading a server's whole listing, page by page: for merging the lists of several
//! servers into one answer, and for the gateway's own listing of a connection's tools
//! (the classify stage judges it). Listings do not act, so the relay needs the
//! [`NonActing`] clearance that only method classification issues.
use std::sync::Weak;

use portcullis_mcp::{Era, Message, MethodClass, NonActing, message::request, method::ListKind};
use serde_json::{Map, Value};

use crate::relay::{Connected, bridge::bridge_request, hello::ClientHello, upstream::ServerMessageRoute};

/// Most pages fetched from one server.
const MAX_PAGES: usize = 100;

/// Every item of `connected`'s listing of `kind`, following `nextCursor` from `original`.
pub async fn list_all(
    _clearance: NonActing,
    connected: &Connected,
    client: &ClientHello,
    owner: &Weak<dyn ServerMessageRoute>,
    kind: ListKind,
    original: &Message,
) -> Result<Vec<Value>, String> {
    let mut items = Vec::new();
    let mut cursor: Option<Value> = None;
    for _ in 0..MAX_PAGES {
        let mut page = original.clone();
        if let Some(c) = cursor.take() {
            page.with_params(|p| p.insert("cursor".into(), c));
        }
        bridge_request(client, &connected.era, &mut page);
        let answer = connected
            .peer
            .call(page, owner.clone())
            .await
            .map_err(|e| e.to_string())?;
        let result = answer
            .result()
            .ok_or_else(|| answer.error().map_or_else(|| "no result".into(), error_text))?;
        if let Some(list) = result.get(kind.field()).and_then(Value::as_array) {
            items.extend(list.iter().cloned());
        }
        match result.get("nextCursor") {
            Some(next) if !next.is_null() => cursor = Some(next.clone()),
            _ => return Ok(items),
        }
    }
    Err(format!("more than {MAX_PAGES} pages"))
}

/// What a JSON-RPC error answer says: its message (the gateway's own errors about an
/// upstream already name it and the cause), else the error object as JSON.
fn error_text(error: &Value) -> String {
    match error.get("message").and_then(Value::as_str) {
        Some(message) if !message.is_empty() => message.to_owned(),
        _ => error.to_string(),
    }
}

/// The gateway's own complete listing of a connection's tools.
pub async fn list_tools(
    connected: &Connected,
    client: &ClientHello,
    owner: &Weak<dyn ServerMessageRoute>,
) -> Result<Vec<Value>, String> {
    let kind = ListKind::Tools;
    let clearance = MethodClass::List(kind)
        .non_acting()
        .ok_or_else(|| "tools/list is classified as acting".to_owned())?;
    let mut params = Map::new();
    if client.era() == Era::Modern {
        params.insert("_meta".into(), client.modern_meta_object());
    }
    let template = request(Value::from(0), "tools/list", Value::Object(params));
    list_all(clearance, connected, client, owner, kind, &template).await
}
