//! Every reason the gateway refuses a client message, in one exhaustive enum.
//!
//! A stage of the per-call path ([`crate::pipeline`]) or the dispatcher
//! ([`crate::dispatch`]) that refuses returns a [`Deny`]. Each case says, with no
//! wildcard arm anywhere, its JSON-RPC code, the HTTP status it has on the Streamable
//! HTTP front (if any), the text the audit record keeps, and its stage label (for
//! metrics). A new stage adds one case here and the compiler lists every place that
//! must handle it. [`Deny::answer`] is the one builder of the client's error answer.
use portcullis_attest::{CallError, ReceiptError};
use portcullis_core::ServerName;
use portcullis_mcp::{ErrorCode, error_response};
use serde_json::{Value, json};

use crate::{
    limits::LimitExceeded,
    stages::{approve::ApprovalRefusal, classify::ClassifyError, record::RecordError, route::RouteError},
};

/// Why a client message was refused.
#[derive(Debug)]
pub enum Deny {
    /// The caller reached a limit: sessions, requests in progress, or its rate (T17).
    /// Not recorded: nothing reached a stage, and a flood must not become audit writes.
    Limit(LimitExceeded),
    /// A second `initialize` on a session that has one.
    AlreadyInitialized,
    /// A method the client's protocol revision does not have (2026-07-28 removed some).
    RemovedMethod { method: String },
    /// The request names no configured server, or lacks what it is routed by (route).
    Route {
        error: RouteError,
        /// The method is unknown, or not relayed in this configuration (then "method not found").
        unknown_method: bool,
    },
    /// The route names a server the configuration does not hold.
    UnknownServer(ServerName),
    /// A notification a client may not send, such as `tools/call` without an id (T21).
    Notification { method: String },
    /// The host's signature on the call is missing or does not verify (attest).
    Attest { error: CallError, decision_id: String },
    /// The tool is held back, unknown, or could not be checked (classify).
    Classify { error: ClassifyError, decision_id: String },
    /// The policy refused the call (authorise).
    Policy(portcullis_policy::Deny),
    /// The policy allows the call only with approvals it does not have (approve).
    Approval {
        refusal: ApprovalRefusal,
        decision_id: String,
    },
    /// The call's credential could not be minted (scope): the server never sees a call
    /// without the credential its rule requires.
    Credential {
        error: portcullis_broker::BrokerError,
        decision_id: String,
    },
    /// The audit log could not take a record: nothing may happen unrecorded (record).
    Record(RecordError),
    /// The result could not be signed (receipts).
    Sign(ReceiptError),
}

/// Where a deny came from, for logs and (later) metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Limit,
    Dispatch,
    Route,
    Attest,
    Classify,
    Authorise,
    Approve,
    Scope,
    Record,
    Sign,
}

impl Stage {
    pub fn label(self) -> &'static str {
        match self {
            Stage::Limit => "limit",
            Stage::Dispatch => "dispatch",
            Stage::Route => "route",
            Stage::Attest => "attest",
            Stage::Classify => "classify",
            Stage::Authorise => "authorise",
            Stage::Approve => "approve",
            Stage::Scope => "scope",
            Stage::Record => "record",
            Stage::Sign => "sign",
        }
    }
}

impl Deny {
    /// The JSON-RPC error code the client gets.
    pub fn code(&self) -> ErrorCode {
        match self {
            Deny::Limit(_) => ErrorCode::Overloaded,
            Deny::AlreadyInitialized => ErrorCode::InvalidRequest,
            Deny::RemovedMethod { .. } => ErrorCode::MethodNotFound,
            Deny::Route {
                unknown_method: true, ..
            } => ErrorCode::MethodNotFound,
            Deny::Route {
                unknown_method: false, ..
            }
            | Deny::UnknownServer(_) => ErrorCode::InvalidParams,
            Deny::Notification { .. }
            | Deny::Attest { .. }
            | Deny::Classify { .. }
            | Deny::Policy(_)
            | Deny::Approval { .. }
            | Deny::Credential { .. }
            | Deny::Record(_)
            | Deny::Sign(_) => ErrorCode::Denied,
        }
    }

    /// The HTTP status on the Streamable HTTP front, where the refusal has its own. `None`:
    /// the answer is a JSON-RPC error in an ordinary response (and a 2026-07-28 client's
    /// status follows its error code, see the front).
    pub fn http_status(&self) -> Option<http::StatusCode> {
        match self {
            Deny::Limit(limit) => Some(limit.http_status()),
            // A notification that cannot be accepted gets an HTTP error (it has no answer).
            Deny::Notification { .. } => Some(http::StatusCode::FORBIDDEN),
            Deny::AlreadyInitialized
            | Deny::RemovedMethod { .. }
            | Deny::Route { .. }
            | Deny::UnknownServer(_)
            | Deny::Attest { .. }
            | Deny::Classify { .. }
            | Deny::Policy(_)
            | Deny::Approval { .. }
            | Deny::Credential { .. }
            | Deny::Record(_)
            | Deny::Sign(_) => None,
        }
    }

    /// The stage that refused.
    pub fn stage(&self) -> Stage {
        match self {
            Deny::Limit(_) => Stage::Limit,
            Deny::AlreadyInitialized | Deny::RemovedMethod { .. } | Deny::Notification { .. } => Stage::Dispatch,
            Deny::Route { .. } | Deny::UnknownServer(_) => Stage::Route,
            Deny::Attest { .. } => Stage::Attest,
            Deny::Classify { .. } => Stage::Classify,
            Deny::Policy(_) => Stage::Authorise,
            Deny::Approval { .. } => Stage::Approve,
            Deny::Credential { .. } => Stage::Scope,
            Deny::Record(_) => Stage::Record,
            Deny::Sign(_) => Stage::Sign,
        }
    }

    /// What the audit record of this deny says (policy ids and reasons, never policy text);
    /// `None` for refusals that are not recorded: a malformed request that names no server,
    /// a log that cannot be written, and a limit reached (a flood must not become writes).
    pub fn audit_reason(&self) -> Option<String> {
        match self {
            Deny::Limit(_)
            | Deny::AlreadyInitialized
            | Deny::RemovedMethod { .. }
            | Deny::Route { .. }
            | Deny::UnknownServer(_)
            | Deny::Record(_)
            | Deny::Sign(_) => None,
            Deny::Notification { .. } => Some(self.client_text()),
            Deny::Attest { error, .. } => Some(format!("attest: {error}")),
            Deny::Classify { error, .. } => Some(format!("classify: {error}")),
            Deny::Policy(deny) => {
                let mut parts: Vec<String> = deny.reasons().to_vec();
                parts.extend(deny.errors().iter().map(|e| format!("error: {e}")));
                if parts.is_empty() {
                    parts.push("no permit matched".into());
                }
                Some(parts.join("; "))
            }
            Deny::Approval { refusal, .. } => Some(refusal.audit_text()),
            Deny::Credential { error, .. } => Some(format!("scope: {error}")),
        }
    }

    /// The id of the recorded decision the client may quote to the operator.
    pub fn decision_id(&self) -> Option<&str> {
        match self {
            Deny::Attest { decision_id, .. }
            | Deny::Classify { decision_id, .. }
            | Deny::Approval { decision_id, .. }
            | Deny::Credential { decision_id, .. } => Some(decision_id),
            Deny::Policy(deny) => Some(deny.decision_id()),
            Deny::Limit(_)
            | Deny::AlreadyInitialized
            | Deny::RemovedMethod { .. }
            | Deny::Route { .. }
            | Deny::UnknownServer(_)
            | Deny::Notification { .. }
            | Deny::Record(_)
            | Deny::Sign(_) => None,
        }
    }

    /// The text the client reads: what went wrong and what to do; never policy text.
    fn client_text(&self) -> String {
        match self {
            Deny::Limit(limit) => limit.to_string(),
            Deny::AlreadyInitialized => "this session is already initialized".into(),
            Deny::RemovedMethod { method } => format!("`{method}` does not exist in protocol 2026-07-28"),
            Deny::Route { error, .. } => error.to_string(),
            Deny::UnknownServer(server) => format!("server `{server}` is not configured"),
            Deny::Notification { method } => format!(
                "notification `{method}` refused: only notifications/initialized, cancelled, progress, \
                 roots/list_changed and tasks/status may be sent as notifications; send requests with an `id`"
            ),
            Deny::Attest { error, .. } => error.to_string(),
            Deny::Classify { error, .. } => error.to_string(),
            Deny::Policy(deny) => deny.client_message().to_owned(),
            Deny::Approval { refusal, .. } => refusal.to_string(),
            Deny::Credential { error, .. } => {
                format!("the call was allowed, but its credential could not be issued: {error}")
            }
            Deny::Record(error) => error.to_string(),
            Deny::Sign(error) => format!("the result could not be signed: {error}"),
        }
    }

    /// [`Deny::answer`] as the message that goes to the client.
    pub fn message(&self, id: Option<&Value>) -> portcullis_mcp::Message {
        portcullis_mcp::message::built_response(self.answer(id))
    }

    /// The JSON-RPC error answer for request `id` (`None` for a notification): the text,
    /// and for a recorded decision its id, in the text and as `data.decisionId`.
    pub fn answer(&self, id: Option<&Value>) -> Value {
        // Asking a 2026-07-28 user is an `input_required` result, not an error.
        if let Deny::Approval {
            refusal: ApprovalRefusal::InputRequired { result, .. },
            ..
        } = self
        {
            return json!({"jsonrpc": "2.0", "id": id.cloned().unwrap_or(Value::Null), "result": result});
        }
        let text = self.client_text();
        match self.decision_id() {
            Some(decision) => {
                let mut data = json!({"decisionId": decision});
                if let Deny::Approval {
                    refusal: refusal @ ApprovalRefusal::Required { required, granted, .. },
                    ..
                } = self
                    && let Some(binding) = refusal.binding()
                {
                    // What an approver signs offline (`portcullis approvals sign --call`).
                    data["approval"] = json!({
                        "id": binding.id, "required": required, "granted": granted, "binding": binding,
                    });
                }
                error_response(id, self.code(), &format!("{text} (decision {decision})"), Some(data))
            }
            None => error_response(id, self.code(), &text, None),
        }
    }
}

impl From<LimitExceeded> for Deny {
    fn from(limit: LimitExceeded) -> Self {
        Deny::Limit(limit)
    }
}

impl From<RecordError> for Deny {
    fn from(error: RecordError) -> Self {
        Deny::Record(error)
    }
}

impl From<ReceiptError> for Deny {
    fn from(error: ReceiptError) -> Self {
        Deny::Sign(error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recorded_denies_quote_their_decision_and_others_do_not() {
        let deny = Deny::Attest {
            error: CallError::Unsigned,
            decision_id: "d-1".into(),
        };
        let answer = deny.answer(Some(&json!(7)));
        assert_eq!(answer["id"], 7);
        assert_eq!(answer["error"]["code"], ErrorCode::Denied.code());
        assert_eq!(answer["error"]["data"]["decisionId"], "d-1");
        assert!(answer["error"]["message"].as_str().unwrap().ends_with("(decision d-1)"));
        assert!(deny.audit_reason().unwrap().starts_with("attest: "));

        let removed = Deny::RemovedMethod { method: "ping".into() };
        let answer = removed.answer(Some(&json!(1)));
        assert_eq!(answer["error"]["code"], ErrorCode::MethodNotFound.code());
        assert!(answer["error"].get("data").is_none());
        assert_eq!(removed.audit_reason(), None);
        assert_eq!(removed.stage(), Stage::Dispatch);
    }

    #[test]
    fn a_limit_is_overloaded_with_its_own_status_and_not_recorded() {
        let deny = Deny::from(LimitExceeded::ConcurrentCalls { max: 4 });
        let answer = deny.answer(Some(&json!(3)));
        assert_eq!(answer["error"]["code"], ErrorCode::Overloaded.code());
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap()
                .contains("max_concurrent_calls_per_principal")
        );
        assert_eq!(deny.http_status(), Some(http::StatusCode::TOO_MANY_REQUESTS));
        assert_eq!((deny.audit_reason(), deny.decision_id()), (None, None));
        assert_eq!(deny.stage().label(), "limit");
    }

    #[test]
    fn a_refused_notification_is_forbidden_over_http_and_recorded() {
        let deny = Deny::Notification {
            method: "tools/call".into(),
        };
        assert_eq!(deny.http_status(), Some(http::StatusCode::FORBIDDEN));
        assert!(deny.audit_reason().unwrap().contains("`tools/call` refused"));
        assert_eq!(deny.answer(None)["id"], Value::Null);
    }
}
