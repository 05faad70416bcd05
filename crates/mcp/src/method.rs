//! Classification of MCP methods: what the gateway must do with each.
//!
//! The class decides routing (which upstream), whether the call acts (and so
//! is an authorisation event once the policy stage lands), and whether list
//! results need namespacing and merging.

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

    /// Whether this method makes an upstream act (an authorisation event).
    pub fn acts(self) -> bool {
        matches!(
            self,
            MethodClass::CallTool | MethodClass::GetPrompt | MethodClass::Resource | MethodClass::Other
        )
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
            ("logging/setLevel", MethodClass::Broadcast, false),
            ("vendor/frobnicate", MethodClass::Other, true),
        ];
        for (m, class, acts) in cases {
            assert_eq!(MethodClass::of(m), class, "{m}");
            assert_eq!(class.acts(), acts, "{m}");
        }
    }
}
