//! The demo server's tool catalogue: every tool's name, description, input schema and
//! annotations, in the fixed order `tools/list` returns them. Dispatch lives in `server.rs`.

use std::sync::Arc;

use rmcp::model::{JsonObject, Tool, ToolAnnotations};
use serde_json::{Value, json};

/// Every tool the demo server can expose. Demo tools come first, one per risk tier; test
/// tools follow and are listed only when `DemoOptions::test_tools` is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DemoTool {
    SearchDocs,
    LookupCustomer,
    SendMessage,
    DeleteRecord,
    Query,
    Echo,
    HttpHeaders,
    GetEnv,
    Progress,
    Log,
    Sample,
    Elicit,
    Roots,
    Crash,
    Hang,
    Garbage,
    NotifyListChanged,
    NotificationsSeen,
    Flood,
}

const DEMO_TOOLS: &[DemoTool] = &[
    DemoTool::SearchDocs,
    DemoTool::LookupCustomer,
    DemoTool::SendMessage,
    DemoTool::DeleteRecord,
    DemoTool::Query,
];

const TEST_TOOLS: &[DemoTool] = &[
    DemoTool::Echo,
    DemoTool::HttpHeaders,
    DemoTool::GetEnv,
    DemoTool::Progress,
    DemoTool::Log,
    DemoTool::Sample,
    DemoTool::Elicit,
    DemoTool::Roots,
    DemoTool::Crash,
    DemoTool::Hang,
    DemoTool::Garbage,
    DemoTool::NotifyListChanged,
    DemoTool::NotificationsSeen,
    DemoTool::Flood,
];

/// Whether a tool changes the world, for the annotation hints.
enum Effect {
    Read,
    Write,
    Destroy,
}

impl DemoTool {
    /// The enabled tools, in `tools/list` order.
    pub fn enabled(test_tools: bool) -> impl Iterator<Item = DemoTool> {
        let tests: &[DemoTool] = if test_tools { TEST_TOOLS } else { &[] };
        DEMO_TOOLS.iter().chain(tests).copied()
    }

    /// The enabled tool with this wire name, if any.
    pub fn find(name: &str, test_tools: bool) -> Option<DemoTool> {
        Self::enabled(test_tools).find(|tool| tool.name() == name)
    }

    pub fn name(self) -> &'static str {
        match self {
            DemoTool::SearchDocs => "search_docs",
            DemoTool::LookupCustomer => "lookup_customer",
            DemoTool::SendMessage => "send_message",
            DemoTool::DeleteRecord => "delete_record",
            DemoTool::Query => "query",
            DemoTool::Echo => "echo",
            DemoTool::HttpHeaders => "http_headers",
            DemoTool::GetEnv => "get_env",
            DemoTool::Progress => "progress",
            DemoTool::Log => "log",
            DemoTool::Sample => "sample",
            DemoTool::Elicit => "elicit",
            DemoTool::Roots => "roots",
            DemoTool::Crash => "crash",
            DemoTool::Hang => "hang",
            DemoTool::Garbage => "garbage",
            DemoTool::NotifyListChanged => "notify_list_changed",
            DemoTool::NotificationsSeen => "notifications_seen",
            DemoTool::Flood => "flood",
        }
    }

    fn description(self) -> &'static str {
        match self {
            DemoTool::SearchDocs => "Search the built-in support handbook and return matching snippets.",
            DemoTool::LookupCustomer => "Look up a customer record (name, email, phone) by id.",
            DemoTool::SendMessage => "Send a message to a recipient and return its message id.",
            DemoTool::DeleteRecord => "Delete a record by id.",
            DemoTool::Query => {
                "Run one SQL statement against the database in DATABASE_URL (given per call by the gateway) and return the rows and the role it ran as."
            }
            DemoTool::Echo => "Return the arguments and the request _meta exactly as received.",
            DemoTool::HttpHeaders => {
                "Return the HTTP headers of the request that carried this call (Streamable HTTP only)."
            }
            DemoTool::GetEnv => "Return this process's environment as a JSON object.",
            DemoTool::Progress => "Send `steps` progress notifications to the caller, then return.",
            DemoTool::Log => "Send a logging notification carrying `message`, then return.",
            DemoTool::Sample => "Ask the client for a sampling/createMessage completion.",
            DemoTool::Elicit => "Ask the client to elicit a value from the user.",
            DemoTool::Roots => "Ask the client for its roots.",
            DemoTool::Crash => "Exit the server process immediately with status 3, without replying.",
            DemoTool::Hang => "Never reply.",
            DemoTool::Garbage => "Write a non-JSON line to stdout (stdio only), then reply normally.",
            DemoTool::NotifyListChanged => "Send notifications/tools/list_changed, then return.",
            DemoTool::NotificationsSeen => {
                "Return the client notifications this server received, in order (a server that acts on notifications would have acted on each)."
            }
            DemoTool::Flood => {
                "Hostile: send `requests` roots/list requests to the client at once (report after `wait_ms` how many were answered, refused or pending), and `notifications` logging notifications of `notification_bytes` bytes `after_ms` after returning."
            }
        }
    }

    fn input_schema(self) -> Value {
        let string = json!({ "type": "string" });
        match self {
            DemoTool::SearchDocs => object(json!({ "query": string }), &["query"]),
            DemoTool::LookupCustomer => object(json!({ "customer_id": string }), &["customer_id"]),
            DemoTool::SendMessage => object(json!({ "to": string, "body": string }), &["to", "body"]),
            DemoTool::DeleteRecord => object(json!({ "record_id": string }), &["record_id"]),
            DemoTool::Query => object(json!({ "sql": string }), &["sql"]),
            DemoTool::Progress => object(
                json!({ "steps": { "type": "integer", "minimum": 0, "maximum": 100 } }),
                &["steps"],
            ),
            DemoTool::Log => object(json!({ "message": string }), &["message"]),
            DemoTool::Sample => object(json!({ "prompt": string }), &[]),
            DemoTool::Elicit => object(json!({ "message": string }), &[]),
            DemoTool::Flood => {
                let n = json!({ "type": "integer", "minimum": 0 });
                object(
                    json!({ "requests": n, "notifications": n, "notification_bytes": n, "after_ms": n, "wait_ms": n }),
                    &[],
                )
            }
            // `echo` accepts anything: it exists to show what arrived.
            DemoTool::Echo => json!({ "type": "object", "additionalProperties": true }),
            DemoTool::GetEnv
            | DemoTool::HttpHeaders
            | DemoTool::Roots
            | DemoTool::Crash
            | DemoTool::Hang
            | DemoTool::Garbage
            | DemoTool::NotifyListChanged
            | DemoTool::NotificationsSeen => object(json!({}), &[]),
        }
    }

    fn effect(self) -> Option<Effect> {
        match self {
            DemoTool::SearchDocs | DemoTool::LookupCustomer | DemoTool::Query => Some(Effect::Read),
            DemoTool::SendMessage => Some(Effect::Write),
            DemoTool::DeleteRecord => Some(Effect::Destroy),
            _ => None,
        }
    }

    /// The `tools/list` entry for this tool.
    pub fn definition(self) -> Tool {
        let tool = Tool::new(self.name(), self.description(), schema(self.input_schema()));
        match self.effect() {
            None => tool,
            Some(effect) => {
                let (read_only, destructive) = match effect {
                    Effect::Read => (true, false),
                    Effect::Write => (false, false),
                    Effect::Destroy => (false, true),
                };
                tool.with_annotations(
                    ToolAnnotations::new()
                        .read_only(read_only)
                        .destructive(destructive)
                        .open_world(false),
                )
            }
        }
    }
}

fn object(properties: Value, required: &[&str]) -> Value {
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

fn schema(value: Value) -> Arc<JsonObject> {
    match value {
        Value::Object(map) => Arc::new(map),
        _ => Arc::new(JsonObject::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_tools_are_hidden_unless_enabled() {
        let names = |flag| DemoTool::enabled(flag).map(DemoTool::name).collect::<Vec<_>>();
        assert_eq!(
            names(false),
            [
                "search_docs",
                "lookup_customer",
                "send_message",
                "delete_record",
                "query"
            ]
        );
        assert_eq!(names(true).len(), 19);
        assert_eq!(DemoTool::find("echo", false), None);
        assert_eq!(DemoTool::find("echo", true), Some(DemoTool::Echo));
    }
}
