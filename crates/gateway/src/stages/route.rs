//! The route stage: which server a request is for, and names across several servers
//! behind one endpoint (T9).
//!
//! With one server, names pass through untouched. With several, every tool and
//! prompt is shown as `server__name` and every resource URI as `server+uri`, so
//! no server can shadow another's tool; routing strips the prefix again, and the
//! outbound rewrites put it back on what the client sees.
use portcullis_core::{ServerName, split_namespaced, split_namespaced_uri};
use portcullis_mcp::{Message, MethodClass, method::ListKind};
use serde_json::Value;

/// A name the client used that maps to no configured server.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum RouteError {
    #[error("`{0}` names no server; with several servers, use `server__name` as shown by the list methods")]
    UnknownName(String),
    #[error("`{0}` names no server; with several servers, use `server+uri` as shown by resources/list")]
    UnknownUri(String),
    #[error("the request has no `{0}` to route by")]
    Missing(&'static str),
    #[error("subscriptions/listen is not relayed across several servers yet")]
    NotAcrossServers,
}

/// The naming rule of one gateway configuration.
#[derive(Debug, Clone)]
pub struct Namespacer {
    servers: Vec<ServerName>,
}

impl Namespacer {
    pub fn new(servers: Vec<ServerName>) -> Self {
        Self { servers }
    }

    /// Whether names carry a server prefix (more than one server configured).
    pub fn enabled(&self) -> bool {
        self.servers.len() > 1
    }

    pub fn servers(&self) -> &[ServerName] {
        &self.servers
    }

    fn find(&self, name: &str) -> Option<ServerName> {
        self.servers.iter().find(|s| s.as_str() == name).cloned()
    }

    /// The server and its own name for a client-visible tool or prompt name.
    pub fn route_name(&self, name: &str) -> Result<(ServerName, String), RouteError> {
        if !self.enabled() {
            let only = self.servers.first().cloned();
            return only
                .map(|s| (s, name.to_owned()))
                .ok_or_else(|| RouteError::UnknownName(name.into()));
        }
        let (server, item) = split_namespaced(name).ok_or_else(|| RouteError::UnknownName(name.into()))?;
        let server = self.find(server).ok_or_else(|| RouteError::UnknownName(name.into()))?;
        Ok((server, item.to_owned()))
    }

    /// The server and its own URI for a client-visible resource URI.
    pub fn route_uri(&self, uri: &str) -> Result<(ServerName, String), RouteError> {
        if !self.enabled() {
            let only = self.servers.first().cloned();
            return only
                .map(|s| (s, uri.to_owned()))
                .ok_or_else(|| RouteError::UnknownUri(uri.into()));
        }
        let (server, inner) = split_namespaced_uri(uri).ok_or_else(|| RouteError::UnknownUri(uri.into()))?;
        let server = self.find(server).ok_or_else(|| RouteError::UnknownUri(uri.into()))?;
        Ok((server, inner.to_owned()))
    }

    /// route: the server a request of `class` is for. Tools and prompts are routed by
    /// `params.name`, resources by `params.uri`, completions by `params.ref`; with several
    /// servers the request is rewritten to the server's own name. A listing or another
    /// method with one server goes to that server.
    pub fn route(&self, class: MethodClass, msg: &mut Message) -> Result<ServerName, RouteError> {
        match class {
            MethodClass::CallTool | MethodClass::GetPrompt => self.route_request(msg, RouteBy::Name),
            MethodClass::Resource => self.route_request(msg, RouteBy::Uri),
            MethodClass::Complete => self.route_request(msg, RouteBy::Ref),
            MethodClass::Other if self.enabled() => self.route_request(msg, RouteBy::Name),
            MethodClass::Subscribe => match self.servers.as_slice() {
                [server] => Ok(server.clone()),
                _ => Err(RouteError::NotAcrossServers),
            },
            MethodClass::Other
            | MethodClass::List(_)
            | MethodClass::Broadcast
            | MethodClass::Initialize
            | MethodClass::Discover
            | MethodClass::Ping => self.route_name("").map(|(server, _)| server),
        }
    }

    /// Routes a request by `params.name` / `params.uri` / `params.ref`, rewriting it to the
    /// server's own name. Returns the server.
    pub fn route_request(&self, msg: &mut Message, by: RouteBy) -> Result<ServerName, RouteError> {
        let (field, is_uri) = match by {
            RouteBy::Name => ("name", false),
            RouteBy::Uri => ("uri", true),
            RouteBy::Ref => return self.route_ref(msg),
        };
        let value = msg.param_str(field).ok_or(RouteError::Missing(field))?.to_owned();
        let (server, inner) = if is_uri {
            self.route_uri(&value)?
        } else {
            self.route_name(&value)?
        };
        if self.enabled() {
            msg.with_params(|p| p.insert(field.to_owned(), Value::String(inner)));
        }
        Ok(server)
    }

    /// `completion/complete` names a prompt (`ref/prompt`) or a resource (`ref/resource`).
    fn route_ref(&self, msg: &mut Message) -> Result<ServerName, RouteError> {
        let reference = msg
            .params()
            .and_then(|p| p.get("ref"))
            .cloned()
            .ok_or(RouteError::Missing("ref"))?;
        let is_prompt = reference.get("type").and_then(Value::as_str) == Some("ref/prompt");
        let field = if is_prompt { "name" } else { "uri" };
        let value = reference
            .get(field)
            .and_then(Value::as_str)
            .ok_or(RouteError::Missing(field))?;
        let (server, inner) = if is_prompt {
            self.route_name(value)?
        } else {
            self.route_uri(value)?
        };
        if self.enabled() {
            msg.with_params(|p| {
                if let Some(r) = p.get_mut("ref").and_then(Value::as_object_mut) {
                    r.insert(field.to_owned(), Value::String(inner));
                }
            });
        }
        Ok(server)
    }

    /// Prefixes one list item of `server` for the client.
    pub fn outbound_item(&self, server: &ServerName, kind: ListKind, item: &mut Value) {
        if !self.enabled() {
            return;
        }
        let (field, is_uri) = match kind {
            ListKind::Tools | ListKind::Prompts => ("name", false),
            ListKind::Resources => ("uri", true),
            ListKind::ResourceTemplates => ("uriTemplate", true),
        };
        prefix_field(item, field, server, is_uri);
    }

    /// Prefixes resource URIs in a `resources/read` result.
    pub fn outbound_read_result(&self, server: &ServerName, result: &mut Value) {
        if !self.enabled() {
            return;
        }
        if let Some(contents) = result.get_mut("contents").and_then(Value::as_array_mut) {
            for c in contents {
                prefix_field(c, "uri", server, true);
            }
        }
    }

    /// Prefixes URIs in server notifications that name a resource.
    pub fn outbound_notification(&self, server: &ServerName, msg: &mut Message) {
        if !self.enabled() || msg.method() != Some("notifications/resources/updated") {
            return;
        }
        if let Some(uri) = msg.param_str("uri").map(|u| server.namespaced_uri(u)) {
            msg.with_params(|p| p.insert("uri".into(), Value::String(uri)));
        }
    }
}

/// Which request field names the target.
#[derive(Debug, Clone, Copy)]
pub enum RouteBy {
    Name,
    Uri,
    Ref,
}

fn prefix_field(item: &mut Value, field: &str, server: &ServerName, is_uri: bool) {
    let Some(obj) = item.as_object_mut() else {
        return;
    };
    let Some(current) = obj.get(field).and_then(Value::as_str) else {
        return;
    };
    let prefixed = if is_uri {
        server.namespaced_uri(current)
    } else {
        server.namespaced(current)
    };
    obj.insert(field.to_owned(), Value::String(prefixed));
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ns(names: &[&str]) -> Namespacer {
        Namespacer::new(names.iter().map(|n| ServerName::new(n).unwrap()).collect())
    }

    #[test]
    fn single_server_passes_names_through() {
        let n = ns(&["files"]);
        assert_eq!(n.route_name("read__x").unwrap().1, "read__x");
        let mut item = json!({"name": "t"});
        n.outbound_item(&ServerName::new("files").unwrap(), ListKind::Tools, &mut item);
        assert_eq!(item, json!({"name": "t"}));
    }

    #[test]
    fn several_servers_namespace_and_route_back() {
        let n = ns(&["files", "db"]);
        let db = ServerName::new("db").unwrap();
        let mut tool = json!({"name": "query", "description": "d"});
        n.outbound_item(&db, ListKind::Tools, &mut tool);
        assert_eq!(tool["name"], "db__query");
        assert_eq!(n.route_name("db__query").unwrap(), (db.clone(), "query".into()));
        assert_eq!(n.route_name("query"), Err(RouteError::UnknownName("query".into())));
        assert_eq!(
            n.route_name("web__query"),
            Err(RouteError::UnknownName("web__query".into()))
        );
        let mut req = Message::from_value(
            json!({"jsonrpc":"2.0","id":1,"method":"resources/read","params":{"uri":"files+file:///a"}}),
        )
        .unwrap();
        let server = n.route_request(&mut req, RouteBy::Uri).unwrap();
        assert_eq!(server.as_str(), "files");
        assert_eq!(req.param_str("uri"), Some("file:///a"));
        let mut comp = Message::from_value(json!({"jsonrpc":"2.0","id":2,"method":"completion/complete","params":{"ref":{"type":"ref/prompt","name":"db__p"}}})).unwrap();
        assert_eq!(n.route_request(&mut comp, RouteBy::Ref).unwrap(), db);
        assert_eq!(comp.params().unwrap()["ref"]["name"], "p");
    }
}
