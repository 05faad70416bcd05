//! Replaying a logged decision against the current policy set: the `DecisionRequest` a
//! decision record stands for (`policy explain --audit-index`, `why`), what the record does
//! not keep (said, never guessed silently), and which single change to the call would have
//! let it through ("what would allow it"). Offline: the same engine, schema and settings as
//! the gateway (`policy_open`).
use portcullis_audit::{AuditRecord, Decision as LoggedDecision, RecordKind};
use portcullis_core::Tier;
use portcullis_policy::{Arguments, DecisionRequest, Explanation, PolicyStore, PrincipalFacts, Timestamp};

/// The request a decision record stands for, and what the record could not give.
pub struct Replayed {
    pub request: DecisionRequest,
    /// Facts the record does not keep, replayed as absent.
    pub gaps: Vec<String>,
}

/// Rebuilds the request decided in `record`. `anonymous` is the config's anonymous
/// principal (a record names principals, not whether they were identified).
pub fn request_of(record: &AuditRecord, index: u64, anonymous: &str) -> anyhow::Result<Replayed> {
    if record.kind != RecordKind::Decision {
        anyhow::bail!(
            "record {index} is a `{}` record, not a decision; find the decision with `portcullis audit show --kind \
             decision`",
            kind_name(record.kind)
        );
    }
    let missing = |what: &str| anyhow::anyhow!("decision record {index} has no {what}; it cannot be replayed");
    let principal = record.principal.as_ref().ok_or_else(|| missing("principal"))?;
    let tier: Tier = record
        .ext
        .get("tier")
        .ok_or_else(|| missing("tier (it was written by a version before tiers were recorded)"))?
        .parse()
        .map_err(|_| missing("valid tier"))?;
    let server = portcullis_core::ServerName::new(record.server.as_deref().ok_or_else(|| missing("server"))?)
        .map_err(|_| missing("valid server name"))?;
    let method = record.method.clone().ok_or_else(|| missing("method"))?;
    let time = Timestamp::parse_rfc3339(&record.time).map_err(|_| missing("valid time"))?;
    let mut gaps = vec![
        "token scopes and claims are not recorded: replayed as none".to_owned(),
        "session labels and tool findings are not recorded: replayed as none".to_owned(),
    ];
    let arguments = match record.ext.get("arguments") {
        Some(text) => match serde_json::from_str(text) {
            Ok(value) => Arguments::new(value),
            Err(_) => {
                gaps.push("the captured arguments were cut at 16 KiB: replayed as none".into());
                Arguments::default()
            }
        },
        None if record.args_sha256.is_some() => {
            gaps.push("arguments are recorded as a hash only (capture_bodies off): replayed as none".into());
            Arguments::default()
        }
        None => Arguments::default(),
    };
    let workload = principal.workload.clone().unwrap_or_default();
    let mut facts = PrincipalFacts::workload(workload.clone());
    facts.user = principal.user.clone();
    facts.anonymous = workload == anonymous;
    let request = DecisionRequest {
        principal: facts,
        server,
        target: record.tool.clone().unwrap_or_else(|| method.clone()),
        method,
        tier,
        arguments,
        reason: record.ext.get("caller_reason").cloned(),
        time,
        listing: false,
        approval_present: false,
        break_glass: false,
        session_labels: Vec::new(),
        call_signed: record.ext.contains_key("signed_kid"),
        tool_findings: Vec::new(),
        credential: logged_credential(record),
    };
    Ok(Replayed { request, gaps })
}

/// The credential the decision saw (`context.credential`), as the record names it.
fn logged_credential(record: &AuditRecord) -> Option<portcullis_policy::CredentialFact> {
    let field = |key: &str| record.ext.get(key).cloned();
    Some(portcullis_policy::CredentialFact {
        rule: field("credential_rule")?,
        source: field("credential_source")?,
        kind: field("credential_kind")?,
        scope: field("credential_scope")?,
    })
}

/// What the record says was decided: allowed or not, and by what.
pub fn logged_verdict(record: &AuditRecord) -> (bool, String) {
    let allowed = matches!(record.decision, Some(LoggedDecision::Allow));
    (
        allowed,
        record.reason.clone().unwrap_or_else(|| "(no reason recorded)".into()),
    )
}

/// A stage before policy refused the call (its reason names the stage).
pub fn refused_before_policy(record: &AuditRecord) -> Option<(&'static str, String)> {
    let reason = record.reason.as_deref()?;
    for stage in ["attest", "classify"] {
        if let Some(rest) = reason.strip_prefix(&format!("{stage}: ")) {
            return Some((stage, rest.to_owned()));
        }
    }
    None
}

/// One change to a denied call that the replay tries: its words, and the change.
struct Change {
    words: String,
    apply: fn(&mut DecisionRequest),
}

/// The changes worth trying on `request` (those it does not already have).
fn changes(request: &DecisionRequest) -> Vec<Change> {
    let mut out = Vec::new();
    if request.reason.is_none() {
        out.push(Change {
            words:
                "a reason: desktop hosts fill the `portcullis_reason` argument (`[policy] reason_argument = true`), \
                    other clients send `_meta[\"io.portcullis/reason\"]`"
                    .into(),
            apply: |r| r.reason = Some("a reason".into()),
        });
    }
    if request.principal.anonymous {
        out.push(Change {
            words: "an identified caller: a client certificate (SVID, `portcullis connect --cert`) or a bearer token"
                .into(),
            apply: |r| r.principal.anonymous = false,
        });
    }
    if !request.call_signed {
        out.push(Change {
            words: "a host signature on the call (`portcullis connect --sign-key`)".into(),
            apply: |r| r.call_signed = true,
        });
    }
    out.push(Change {
        words: "a call-bound approval (write tier; this build has no approvals stage yet, so such calls stay denied)"
            .into(),
        apply: |r| r.approval_present = true,
    });
    out.push(Change {
        words: format!(
            "scope `mcp:read-sensitive` or `{}:read-sensitive` in the caller's token",
            request.server
        ),
        apply: |r| {
            let server_scope = format!("{}:read-sensitive", r.server);
            r.principal.scopes.push("mcp:read-sensitive".into());
            r.principal.scopes.push(server_scope);
        },
    });
    if request.tier > Tier::Read {
        out.push(Change {
            words: format!(
                "tier `read` instead of `{}`: only if the tool is that harmless (`tools = {{ {} = {{ tier = \"read\" }} }}` \
                 in the server's config)",
                request.tier, request.target
            ),
            apply: |r| r.tier = Tier::Read,
        });
    }
    out
}

/// The smallest sets of changes to `request` under which the current policy set allows it
/// (each set in words, its changes needed together); empty when none of up to three does.
pub fn what_would_allow(store: &PolicyStore, request: &DecisionRequest) -> Vec<Vec<String>> {
    let changes = changes(request);
    let n = changes.len();
    for size in 1..=3.min(n) {
        let mut found = Vec::new();
        for set in subsets(n, size) {
            let mut changed = request.clone();
            for &i in &set {
                (changes[i].apply)(&mut changed);
            }
            if store.explain(&changed).decision.allowed {
                found.push(set.iter().map(|&i| changes[i].words.clone()).collect());
            }
        }
        if !found.is_empty() {
            return found;
        }
    }
    Vec::new()
}

/// Every `size`-element subset of `0..n`, in order.
fn subsets(n: usize, size: usize) -> Vec<Vec<usize>> {
    if size == 0 {
        return vec![Vec::new()];
    }
    let mut out = Vec::new();
    for first in 0..n {
        for rest in subsets(n, size - 1) {
            if rest.first().is_none_or(|&next| next > first) {
                let mut set = vec![first];
                set.extend(rest);
                out.push(set);
            }
        }
    }
    out
}

/// The replay, as printed by `policy explain --audit-index` and `why`.
pub fn describe(
    record: &AuditRecord,
    index: u64,
    replayed: &Replayed,
    explanation: &Explanation,
    store: &PolicyStore,
) -> String {
    let (allowed, by) = logged_verdict(record);
    let request = &replayed.request;
    let mut out = String::new();
    let verdict = |allowed: bool| if allowed { "allow" } else { "deny" };
    out.push_str(&format!(
        "record {index}: decision {} at {}: {} ({by})\n",
        record.decision_id.as_deref().unwrap_or("?"),
        record.time,
        verdict(allowed)
    ));
    let user = request
        .principal
        .user
        .as_ref()
        .map(|u| format!(", user {u}"))
        .unwrap_or_default();
    out.push_str(&format!(
        "  caller: {}{user}{}\n",
        request.principal.workload,
        if request.principal.anonymous {
            " (anonymous)"
        } else {
            ""
        }
    ));
    out.push_str(&format!(
        "  call: {} {}/{} (tier {}){}\n",
        request.method,
        request.server,
        request.target,
        request.tier,
        if request.call_signed {
            ", signed by the host"
        } else {
            ""
        }
    ));
    match &request.reason {
        Some(reason) => out.push_str(&format!("  caller's reason: {reason:?}\n")),
        None => out.push_str("  caller's reason: none given\n"),
    }
    let logged_hash = record.policy_sha256.as_ref().map(|h| h.to_string()).unwrap_or_default();
    let same = logged_hash == explanation.decision.policy_hash;
    out.push_str(&format!(
        "replayed against the current policy set ({}):\n",
        if same {
            "the same set that decided".to_owned()
        } else {
            format!(
                "changed since: logged {}, now {}",
                short(&logged_hash),
                short(&explanation.decision.policy_hash)
            )
        }
    ));
    for line in explanation.to_string().lines() {
        out.push_str(&format!("  {line}\n"));
    }
    for gap in &replayed.gaps {
        out.push_str(&format!("  note: {gap}\n"));
    }
    if let Some((stage, why)) = refused_before_policy(record) {
        out.push_str(&format!(
            "refused before policy, by the {stage} stage: {why}\n  {}\n",
            match stage {
                "attest" => "the host's signature was missing, invalid or replayed: see docs/attestation.md",
                _ =>
                    "the tool is held back (pin drift, scanner finding or a refused executable): \
                      `portcullis manifest verify`, then `manifest approve` if the change is wanted",
            }
        ));
    } else if !explanation.decision.allowed {
        let ways = what_would_allow(store, request);
        match ways.as_slice() {
            [] => out.push_str(
                "what would allow it: no change of reason, identity, signature, approval, scope or tier does under \
                 the current policies; a policy that permits this call is needed\n",
            ),
            [only] => {
                out.push_str("what would allow it:\n");
                for words in only {
                    out.push_str(&format!("  - {words}\n"));
                }
                if only.len() > 1 {
                    out.push_str("  (all of these together)\n");
                }
            }
            several => {
                out.push_str("what would allow it (any one of):\n");
                for way in several {
                    out.push_str(&format!("  - {}\n", way.join(", together with ")));
                }
            }
        }
    }
    out
}

fn short(hash: &str) -> &str {
    hash.get(..12).unwrap_or(hash)
}

fn kind_name(kind: RecordKind) -> String {
    serde_json::to_value(kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("{kind:?}"))
}

#[cfg(test)]
mod tests {
    use super::subsets;

    #[test]
    fn subsets_are_each_combination_once() {
        assert_eq!(subsets(3, 1), vec![vec![0], vec![1], vec![2]]);
        assert_eq!(subsets(3, 2), vec![vec![0, 1], vec![0, 2], vec![1, 2]]);
        assert_eq!(subsets(4, 3).len(), 4);
    }
}
