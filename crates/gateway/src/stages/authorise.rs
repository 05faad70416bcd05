//! The authorise stage: every call that acts gets a policy decision made for it
//! alone (never cached), and listings show only what the caller may use. The
//! policy engine is the `policy` crate's; this module only turns a routed MCP
//! request into a `DecisionRequest`, including the reason the caller gave.
use std::sync::Arc;

use portcullis_mcp::{Message, method::ListKind};
use portcullis_policy::{DecisionRequest, Deny, Permit, PolicyStore, PrincipalFacts, TargetKind, Timestamp};
use serde_json::{Value, json};

use crate::config::ServerConfig;

/// `_meta` key a client uses to state why it makes a call.
pub use portcullis_core::REASON_META_KEY;
/// The argument the gateway adds to every tool's input schema when `reason_argument` is on.
pub const REASON_ARGUMENT: &str = "portcullis_reason";

/// What the stages before authorise established about a call, for the policy.
#[derive(Debug, Clone, Default)]
pub struct Attested {
    /// The call carried a valid host signature.
    pub signed: bool,
    /// Scanner findings on the tool's definition that did not hold it back.
    pub findings: Vec<String>,
    /// A break-glass window is active for the caller.
    pub break_glass: bool,
    /// The credential the broker mints for the call if it is allowed.
    pub credential: Option<portcullis_policy::CredentialFact>,
}

/// The policy store and how reasons are taken.
pub struct Authoriser {
    pub store: Arc<PolicyStore>,
    /// Add `portcullis_reason` to tool schemas and strip it before forwarding.
    pub reason_argument: bool,
}

impl Authoriser {
    /// Decides one acting call. `msg` is already routed (the server's own names); a
    /// reason argument, when enabled, is removed from it here so the server never sees it.
    pub fn decide_call(
        &self,
        principal: PrincipalFacts,
        server: &ServerConfig,
        attested: Attested,
        msg: &mut Message,
    ) -> (DecisionRequest, Result<Permit, Deny>) {
        let (method, kind, target, tier) = Self::target_of(server, msg);
        let mut reason = msg
            .meta()
            .and_then(|m| portcullis_mcp::message::field(m, REASON_META_KEY))
            .and_then(Value::as_str)
            .map(str::to_owned);
        if self.reason_argument && kind == TargetKind::Tool {
            let stripped = msg.with_params(|p| {
                p.get_mut("arguments")
                    .and_then(Value::as_object_mut)
                    .and_then(|a| a.shift_remove(REASON_ARGUMENT))
            });
            reason = reason.or_else(|| stripped.and_then(|v| v.as_str().map(str::to_owned)));
        }
        let mut request = DecisionRequest::call(principal, server.name.clone(), method, target, tier, Timestamp::now());
        // Canonicalised and hashed here, once: the audit record reuses the digest.
        request.arguments = msg.param("arguments").cloned().unwrap_or(Value::Null).into();
        request.reason = reason;
        request.call_signed = attested.signed;
        request.tool_findings = attested.findings;
        request.break_glass = attested.break_glass;
        request.credential = attested.credential;
        let (outcome, shadow) = self.store.authorize_with_shadow(&request);
        // Only on a deny: the allow path reads no settings. Not when the policy could not be
        // evaluated: then the missing reason is not why the call was refused.
        let outcome = match outcome {
            Err(deny)
                if deny.errors().is_empty()
                    && request.effective_reason().is_none()
                    && self.store.current_engine().settings().require_reason =>
            {
                Err(deny.with_hint(&self.reason_hint(kind)))
            }
            outcome => outcome,
        };
        if let Some(shadow) = shadow
            && shadow.allowed != outcome.is_ok()
        {
            tracing::warn!(
                server = %server.name, target = %request.target, enforced = outcome.is_ok(), shadow = shadow.allowed,
                shadow_decision = %shadow.decision_id, "shadow policy set decides differently"
            );
        }
        (request, outcome)
    }

    /// What a routed call acts on: its method, the kind and name of its target (tool or
    /// prompt name, resource URI, or the method), and the target's operator-assigned tier.
    pub fn target_of(server: &ServerConfig, msg: &Message) -> (String, TargetKind, String, portcullis_core::Tier) {
        let method = msg.method().unwrap_or_default().to_owned();
        let kind = TargetKind::of_method(&method);
        let target = match kind {
            TargetKind::Resource => msg.param_str("uri"),
            TargetKind::Tool | TargetKind::Prompt => msg.param_str("name"),
            TargetKind::Other => Some(method.as_str()),
        }
        .unwrap_or_default()
        .to_owned();
        let tier = match kind {
            TargetKind::Tool => server.tier_of(&target),
            _ => server.default_tier,
        };
        (method, kind, target, tier)
    }

    /// Whether the policy would allow `request` if it carried an approval: then the deny is
    /// one an approval can lift (the approvals stage), otherwise it stands.
    pub fn approval_would_allow(&self, request: &DecisionRequest) -> bool {
        if request.approval_present {
            return false;
        }
        let mut approved = request.clone();
        approved.approval_present = true;
        self.store.authorize(&approved).is_ok()
    }

    /// How a caller whose call carried no reason can give one.
    fn reason_hint(&self, kind: TargetKind) -> String {
        if self.reason_argument && kind == TargetKind::Tool {
            format!(
                "this call gave no reason: pass the `{REASON_ARGUMENT}` argument every tool lists, saying why you make the call"
            )
        } else {
            format!(
                "this call gave no reason: send one in `params._meta[\"{REASON_META_KEY}\"]`; hosts that cannot set `_meta` (desktop assistants) need the operator to set `[policy] reason_argument = true`"
            )
        }
    }

    /// Whether `principal` may use list item `name` of `server` (the listing flavour of a call).
    pub fn visible(&self, principal: &PrincipalFacts, server: &ServerConfig, kind: ListKind, name: &str) -> bool {
        let (target_kind, tier) = match kind {
            ListKind::Tools => (TargetKind::Tool, server.tier_of(name)),
            ListKind::Prompts => (TargetKind::Prompt, server.default_tier),
            ListKind::Resources | ListKind::ResourceTemplates => (TargetKind::Resource, server.default_tier),
        };
        let request = DecisionRequest::listing(
            principal.clone(),
            server.name.clone(),
            target_kind,
            name,
            tier,
            Timestamp::now(),
        );
        self.store.authorize(&request).is_ok()
    }

    /// Filters a list result of `server` in place; adds the reason argument to tool schemas.
    pub fn filter_list(&self, principal: &PrincipalFacts, server: &ServerConfig, kind: ListKind, result: &mut Value) {
        let Some(items) = result.get_mut(kind.field()).and_then(Value::as_array_mut) else {
            return;
        };
        let key = match kind {
            ListKind::Tools | ListKind::Prompts => "name",
            ListKind::Resources => "uri",
            ListKind::ResourceTemplates => "uriTemplate",
        };
        items.retain(|item| {
            let name = item.get(key).and_then(Value::as_str).unwrap_or_default();
            self.visible(principal, server, kind, name)
        });
        if self.reason_argument && kind == ListKind::Tools {
            for tool in items.iter_mut() {
                add_reason_argument(tool);
            }
        }
    }
}

fn add_reason_argument(tool: &mut Value) {
    let Some(schema) = tool.get_mut("inputSchema").and_then(Value::as_object_mut) else {
        return;
    };
    let props = schema.entry("properties").or_insert_with(|| json!({}));
    if let Some(props) = props.as_object_mut() {
        props.insert(
            REASON_ARGUMENT.to_owned(),
            json!({"type": "string", "description": "Why you are making this call (checked by the gateway's policy; not passed to the tool)."}),
        );
    }
    // Required, so that models fill it in: an optional argument is mostly left out.
    let required = schema.entry("required").or_insert_with(|| json!([]));
    if let Some(required) = required.as_array_mut()
        && !required.iter().any(|r| r == REASON_ARGUMENT)
    {
        required.push(json!(REASON_ARGUMENT));
    }
}
