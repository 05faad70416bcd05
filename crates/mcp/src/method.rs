//! Classification of MCP methods: what the gateway must do with each.
//!
//! The class decides routing (which upstream), whether the call acts (and so
//! is an authorisation event: decided by the policy and recorded), and whether
//! list results need namespacing and merging. Client notifications have their own
//! class: only those the protocol defines pass (T21).

/// What a client-to-server method is, for routing and control purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodClass {
    /// `initialize`: opens a legacy session.
    Initialize,
    /// `server/discover`: the modern identity and capability probe.
    Discover,
    /// `ping`: answered by the gateway itself.
    Ping,
    /// A listing: `tools/list`, `prompts/list`, `resources/list`, `resources/templates/list`.
    List(ListKind),
    /// Acts on one named tool (`tools/call`): routed by `params.name`.
    CallTool,
    /// `prompts/get`: routed by `params.name`.
    GetPrompt,
    /// `resources/read`, `resources/subscribe`, `resources/unsubscribe`: routed by `params.uri`.
    Resource,
    /// `completion/complete`: routed by `params.ref`.
    Complete,
    /// `logging/setLevel`: sent to every upstream.
    Broadcast,
    /// `subscriptions/listen` (2026-07-28): a long-lived stream of change notifications.
    Subscribe,
    /// Anything else, including future methods: forwarded when unambiguous.
    Other,
}

/// Which list a listing method returns, and the key of its items.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ListKind {
    Tools,
    Prompts,
    Resources,
    ResourceTemplates,
}

impl ListKind {
    /// The result field holding the items.
    pub fn field(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources => "resources",
            ListKind::ResourceTemplates => "resourceTemplates",
        }
    }

    /// The capability a server must advertise for this list.
    pub fn capability(self) -> &'static str {
        match self {
            ListKind::Tools => "tools",
            ListKind::Prompts => "prompts",
            ListKind::Resources | ListKind::ResourceTemplates => "resources",
        }
    }
}

impl MethodClass {
    pub fn of(method: &str) -> Self {
        match method {
            "initialize" => MethodClass::Initialize,
            "server/discover" => MethodClass::Discover,
            "ping" => MethodClass::Ping,
            "tools/list" => MethodClass::List(ListKind::Tools),
            "prompts/list" => MethodClass::List(ListKind::Prompts),
            "resources/list" => MethodClass::List(ListKind::Resources),
            "resources/templates/list" => MethodClass::List(ListKind::ResourceTemplates),
            "tools/call" => MethodClass::CallTool,
            "prompts/get" => MethodClass::GetPrompt,
            "resources/read" | "resources/subscribe" | "resources/unsubscribe" => MethodClass::Resource,
            "completion/complete" => MethodClass::Complete,
            "logging/setLevel" => MethodClass::Broadcast,
            "subscriptions/listen" => MethodClass::Subscribe,
            _ => MethodClass::Other,
        }
    }

    /// Methods 2026-07-28 removed; a stateless client gets "method not found" for them.
    pub fn removed_in_modern(method: &str) -> bool {
        matches!(
            method,
            "initialize" | "ping" | "logging/setLevel" | "resources/subscribe" | "resources/unsubscribe"
        )
    }

    /// The relay's clearance for a method that does not act; `None` for one that does.
    pub fn non_acting(self) -> Option<NonActing> {
        (!self.acts()).then_some(NonActing {
            _only_from_classification: (),
        })
    }

    /// Whether this method reads or changes server state, and so is an authorisation
    /// event (decided and recorded). Only the handshake, `ping` and the listings (filtered
    /// item by item instead) are not.
    pub fn acts(self) -> bool {
        match self {
            MethodClass::Initialize | MethodClass::Discover | MethodClass::Ping | MethodClass::List(_) => false,
            MethodClass::CallTool
            | MethodClass::GetPrompt
            | MethodClass::Resource
            | MethodClass::Complete
            | MethodClass::Broadcast
            | MethodClass::Subscribe
            | MethodClass::Other => true,
        }
    }
}

/// Proof that a message's method does not act (the handshake, `ping`, a listing): the
/// gateway relays it without a policy decision. Only [`MethodClass::non_acting`] builds
/// one, so relaying an acting method without a permit does not compile by mistake.
#[derive(Debug)]
pub struct NonActing {
    _only_from_classification: (),
}

/// What a client-to-server notification is. Only the notifications a client may send
/// under a protocol revision we speak pass; anything else — an acting method sent without
/// an id (`tools/call` as a notification), a vendor method — is refused (T21): a
/// notification gets no answer, so a server that acted on it would act undecided and
/// unrecorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationClass {
    /// `notifications/initialized`: the gateway completed each upstream's handshake itself.
    Initialized,
    /// `notifications/cancelled`: cancels one of the client's pending requests.
    Cancelled,
    /// `notifications/progress`, `notifications/roots/list_changed`,
    /// `notifications/tasks/status` (2025-11-25): relayed to the session's servers.
    Relayed,
    /// Anything else: refused and recorded.
    Refused,
}

impl NotificationClass {
    pub fn of(method: &str) -> Self {
        match method {
            "notifications/initialized" => Self::Initialized,
            "notifications/cancelled" => Self::Cancelled,
            "notifications/progress" | "notifications/roots/list_changed" | "notifications/tasks/status" => {
                Self::Relayed
            }
            _ => Self::Refused,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes() {
        let cases = [
            ("initialize", MethodClass::Initialize, false),
            ("tools/list", MethodClass::List(ListKind::Tools), false),
            ("tools/call", MethodClass::CallTool, true),
            ("resources/read", MethodClass::Resource, true),
            ("prompts/get", MethodClass::GetPrompt, true),
            ("completion/complete", MethodClass::Complete, true),
            ("logging/setLevel", MethodClass::Broadcast, true),
            ("subscriptions/listen", MethodClass::Subscribe, true),
            ("ping", MethodClass::Ping, false),
            ("server/discover", MethodClass::Discover, false),
            ("vendor/frobnicate", MethodClass::Other, true),
        ];
        for (m, class, acts) in cases {
            assert_eq!(MethodClass::of(m), class, "{m}");
            assert_eq!(class.acts(), acts, "{m}");
        }
    }

    #[test]
    fn t21_only_defined_client_notifications_pass() {
        let cases = [
            ("notifications/initialized", NotificationClass::Initialized),
            ("notifications/cancelled", NotificationClass::Cancelled),
            ("notifications/progress", NotificationClass::Relayed),
            ("notifications/roots/list_changed", NotificationClass::Relayed),
            ("notifications/tasks/status", NotificationClass::Relayed),
            ("tools/call", NotificationClass::Refused),
            ("resources/read", NotificationClass::Refused),
            ("completion/complete", NotificationClass::Refused),
            ("notifications/tools/list_changed", NotificationClass::Refused),
            ("notifications/message", NotificationClass::Refused),
            ("Notifications/Initialized", NotificationClass::Refused),
            ("vendor/notify", NotificationClass::Refused),
        ];
        for (m, class) in cases {
            assert_eq!(NotificationClass::of(m), class, "{m}");
        }
    }
}
