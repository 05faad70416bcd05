//! The Cedar policy sets the benchmark gateways run: the 10 policies of `policy` and
//! `full` (also the soak's), and the allow-all set of `relay`.

/// The Cedar set of `policy` and `full`: the built-in tier policies without the
/// `!principal.anonymous` condition (HTTP callers are anonymous until identity lands)
/// plus tool-specific forbids, one on the called tool: 10 policies.
pub const BENCH_POLICIES: &str = r#"// portcullis-bench: 10 policies, evaluated for every call.
@id("tier-read")
permit (principal, action in [Action::"tools/call", Action::"resources/read", Action::"prompts/get"], resource)
when { resource.tier == "read" && (context.listing || !context.require_reason || context has reason) };

@id("tier-read-sensitive")
permit (principal, action in [Action::"tools/call", Action::"resources/read", Action::"prompts/get"], resource)
when {
  resource.tier == "read-sensitive" &&
  (context.listing || !context.require_reason || context has reason) &&
  (principal.scopes.contains("mcp:read-sensitive") || context.server_scopes.contains("read-sensitive"))
};

@id("tier-write")
permit (principal, action in [Action::"tools/call", Action::"resources/read", Action::"prompts/get"], resource)
when { resource.tier == "write" && (context.listing || !context.require_reason || context has reason) };

@id("write-needs-approval")
@reason("approval required")
forbid (principal, action, resource)
when { resource.tier == "write" && !context.listing && !context.approval_present };

@id("reason-required")
@reason("a reason is required for this call")
forbid (principal, action, resource)
when { context.require_reason && !context.listing && !(context has reason) };

@id("echo-untrusted")
forbid (principal, action, resource == Tool::"bench/echo")
when { context.break_glass || context.session_labels.contains("untrusted") };

@id("other-1") forbid (principal, action, resource == Tool::"bench/other1") when { context.break_glass };
@id("other-2") forbid (principal, action, resource == Tool::"bench/other2") when { context.break_glass };
@id("other-3") forbid (principal, action, resource == Tool::"bench/other3") when { context.break_glass };
@id("other-4") forbid (principal, action, resource == Tool::"bench/other4") when { context.break_glass };
"#;

/// The `relay` target's set: every call permitted (still one decision per call).
pub const ALLOW_ALL: &str = "@id(\"allow-all\")\npermit (principal, action, resource);\n";
