//! The headers of each POST: content negotiation, the operator's configured headers
//! (built once, marked sensitive: they often carry credentials), and either the legacy
//! session headers or the 2026-07-28 routing headers (`Mcp-Method`, `Mcp-Name`, the
//! tool's `x-mcp-header` parameters).
use http::{HeaderMap, HeaderName, HeaderValue};
use portcullis_mcp::{Message, revision::META_PROTOCOL_VERSION};
use serde_json::Value;

use super::{Conn, HttpSpec};
use crate::param_headers::header_safe;

impl Conn {
    /// The headers of the POST of `msg`: content negotiation, the configured headers, and
    /// the session or 2026-07-28 routing headers.
    pub(super) async fn post_headers(&self, msg: &Message) -> Result<HeaderMap, String> {
        let mut headers = self.configured.as_ref().clone()?;
        headers.insert(
            http::header::ACCEPT,
            HeaderValue::from_static("application/json, text/event-stream"),
        );
        headers.insert(http::header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let modern = msg
            .meta()
            .and_then(|m| m.get(META_PROTOCOL_VERSION))
            .and_then(Value::as_str);
        if let Some(version) = modern {
            put(&mut headers, "mcp-protocol-version", version)?;
            if let Some(method) = msg.method() {
                put(&mut headers, "mcp-method", method)?;
            }
            if let Some(name) = msg.param_str("name").or_else(|| msg.param_str("uri")) {
                put(&mut headers, "mcp-name", &header_safe(name))?;
            }
            if msg.method() == Some("tools/call") {
                for (k, v) in self.state.lock().await.param_headers.headers_for(msg) {
                    put(&mut headers, &k, &v)?;
                }
            }
        } else {
            let state = self.state.lock().await;
            if let Some(sid) = &state.session_id {
                put(&mut headers, "mcp-session-id", sid)?;
            }
            if let Some(v) = &state.protocol_version {
                put(&mut headers, "mcp-protocol-version", v)?;
            }
        }
        Ok(headers)
    }
}

/// The configured headers of `spec` as a header map, values marked sensitive (they often
/// carry credentials); `Err` names the first that is not a valid HTTP header.
pub(super) fn configured_headers(spec: &HttpSpec) -> Result<HeaderMap, String> {
    let mut headers = HeaderMap::with_capacity(spec.headers.len());
    for (k, v) in &spec.headers {
        let (Ok(name), Ok(mut value)) = (HeaderName::from_bytes(k.as_bytes()), HeaderValue::from_str(v.expose()))
        else {
            return Err(format!(
                "its configured header `{k}` is not a valid HTTP header name and value; fix it in the config"
            ));
        };
        value.set_sensitive(true);
        headers.append(name, value);
    }
    Ok(headers)
}

/// Sets header `name` to `value`, or says why it cannot be sent.
fn put(headers: &mut HeaderMap, name: &str, value: &str) -> Result<(), String> {
    match (HeaderName::from_bytes(name.as_bytes()), HeaderValue::from_str(value)) {
        (Ok(name), Ok(value)) => {
            headers.insert(name, value);
            Ok(())
        }
        _ => Err(format!("header `{name}` cannot carry this request's value")),
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::Secret;
    use portcullis_mcp::{Limits, message};
    use serde_json::json;

    use crate::{
        HttpClient, LinkEvent,
        http_upstream::{HttpSpec, connect_http},
        test_server::echo_server,
    };

    #[tokio::test]
    async fn configured_headers_go_with_every_post_and_a_bad_one_fails_the_request() {
        let server = echo_server(false).await;
        let spec = |value: &str| HttpSpec {
            name: "up".into(),
            url: server.url.to_string(),
            headers: vec![("Authorization".into(), Secret::new(value.to_owned()))],
            limits: Limits::default(),
        };
        let link = connect_http(spec("Bearer t0ken"), HttpClient::default());
        let direct = link.direct.clone().unwrap();
        for id in 1..=2 {
            let answer = direct
                .request(message::request(json!(id), "tools/list", json!({})))
                .await;
            assert!(answer.is_some(), "the echoed body comes straight back");
        }
        let heads = server.heads.lock().unwrap().clone();
        assert_eq!(heads.len(), 2);
        for head in &heads {
            let head = head.to_ascii_lowercase();
            assert!(head.contains("authorization: bearer t0ken\r\n"), "{head}");
            assert!(
                head.contains("accept: application/json, text/event-stream\r\n"),
                "{head}"
            );
        }

        // A value HTTP cannot carry: nothing is sent, the call gets an error naming the header.
        let mut link = connect_http(spec("line\nbreak"), HttpClient::default());
        let direct = link.direct.clone().unwrap();
        let answer = direct
            .request(message::request(json!(3), "tools/list", json!({})))
            .await;
        assert!(answer.is_none());
        let Some(LinkEvent::Message { msg, .. }) = link.rx.recv().await else {
            panic!("the failure is delivered on the link");
        };
        let text = msg.as_value_string();
        assert!(text.contains("configured header `Authorization`"), "{text}");
        assert!(!text.contains("line"), "the value is never echoed: {text}");
        assert_eq!(server.heads.lock().unwrap().len(), 2);
    }
}
