//! Turns the input document into a Cedar request and entity store, per the schema.
//!
//! Built afresh for every call. Principal is a `Caller` (member of its `Workload`
//! and `User`), the resource is the call's `Tool`/`Resource`/`Prompt`/`Method`
//! (member of its `Server`), the action entity comes from the schema (with any
//! action groups as ancestors), and the context is `CallContext`.
//!
//! Schema conformance: the facts have one fixed shape, built here from an
//! [`Input`]. Checking that shape against the schema on every call cost Cedar more
//! than the decision itself (a copy of each entity type per entity, a transitive
//! closure over every schema action, a context type check: ~75% of the decision
//! time), so it is done where it can catch a mistake rather than on the hot path:
//! in debug builds (every test) every call is validated ([`VALIDATE_EVERY_CALL`]),
//! and `facts_conform_to_the_schema` below checks every target kind in any build.
//! Release builds stay fail-closed without it: the policies themselves are
//! validated against the schema at load (strict mode), and a fact that were
//! missing or mistyped would make evaluation report an error, which denies.
use std::collections::HashMap;

use cedar_policy::{
    Context, Entities, Entity, EntityId, EntityTypeName, EntityUid, Request, RestrictedExpression, Schema,
};

use crate::input::Input;
use crate::request::TargetKind;

/// One call, in Cedar's terms.
pub(crate) struct CedarFacts {
    pub request: Request,
    pub entities: Entities,
    pub resource: EntityUid,
    pub server: EntityUid,
}

/// Validate the request and entities against the schema on every call: in debug
/// builds only (see the module docs).
pub(crate) const VALIDATE_EVERY_CALL: bool = cfg!(debug_assertions);

/// The schema's entity type names, parsed once at load: parsing a name runs the
/// Cedar parser, far too slow to repeat on every call. Also the schema's action
/// entities (with their ancestors), so a call adds only its own action.
pub(crate) struct Names {
    workload: EntityTypeName,
    user: EntityTypeName,
    caller: EntityTypeName,
    server: EntityTypeName,
    tool: EntityTypeName,
    resource: EntityTypeName,
    prompt: EntityTypeName,
    method: EntityTypeName,
    arguments: EntityTypeName,
    action: EntityTypeName,
    actions: HashMap<EntityUid, Entity>,
}

impl Names {
    pub(crate) fn new(schema: &Schema) -> Result<Self, String> {
        let parse = |name: &str| -> Result<EntityTypeName, String> {
            name.parse().map_err(|e| format!("bad entity type `{name}`: {e}"))
        };
        let actions = schema
            .action_entities()
            .map_err(|e| format!("the schema's actions: {e}"))?
            .iter()
            .map(|e| (e.uid(), e.clone()))
            .collect();
        Ok(Self {
            actions,
            workload: parse("Workload")?,
            user: parse("User")?,
            caller: parse("Caller")?,
            server: parse("Server")?,
            tool: parse("Tool")?,
            resource: parse("Resource")?,
            prompt: parse("Prompt")?,
            method: parse("Method")?,
            arguments: parse("Arguments")?,
            action: parse("Action")?,
        })
    }

    fn target(&self, kind: TargetKind) -> &EntityTypeName {
        match kind {
            TargetKind::Tool => &self.tool,
            TargetKind::Resource => &self.resource,
            TargetKind::Prompt => &self.prompt,
            TargetKind::Other => &self.method,
        }
    }
}

fn uid(type_name: &EntityTypeName, id: &str) -> EntityUid {
    EntityUid::from_type_name_and_id(type_name.clone(), EntityId::new(id))
}

fn string(value: &str) -> RestrictedExpression {
    RestrictedExpression::new_string(value.to_owned())
}

fn strings(values: &[String]) -> RestrictedExpression {
    RestrictedExpression::new_set(values.iter().map(|v| string(v)))
}

/// Tag text of a JSON value: a string is itself, anything else its RFC 8785 text.
fn tags<'a>(
    values: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>,
) -> Vec<(String, RestrictedExpression)> {
    values
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => s.clone(),
                other => crate::canonical::canonical_json(other).unwrap_or_default(),
            };
            (k.clone(), RestrictedExpression::new_string(text))
        })
        .collect()
}

impl CedarFacts {
    /// The facts of `input`; with `validate`, the request and entities are checked
    /// against `schema` too (see the module docs for when).
    pub(crate) fn new(input: &Input, names: &Names, schema: &Schema, validate: bool) -> Result<Self, String> {
        let p = &input.principal;
        let workload = uid(&names.workload, &p.workload);
        let user = p.user.as_deref().map(|u| uid(&names.user, u));
        let caller_id = match &p.user {
            Some(u) => format!("{}#{u}", p.workload),
            None => p.workload.clone(),
        };
        let caller = uid(&names.caller, &caller_id);
        let mut attrs = vec![
            ("workload".to_owned(), string(&p.workload)),
            ("anonymous".to_owned(), RestrictedExpression::new_bool(p.anonymous)),
            ("scopes".to_owned(), strings(&p.scopes)),
        ];
        if let Some(u) = &p.user {
            attrs.push(("user".to_owned(), string(u)));
        }
        let parents: Vec<EntityUid> = std::iter::once(workload.clone()).chain(user.clone()).collect();
        let caller_entity =
            Entity::new_with_tags(caller.clone(), attrs, parents, tags(&p.claims)).map_err(|e| e.to_string())?;

        let server = uid(&names.server, &input.server);
        let server_entity = Entity::new(
            server.clone(),
            [("name".to_owned(), string(&input.server))].into_iter().collect(),
            Default::default(),
        )
        .map_err(|e| e.to_string())?;
        let resource = uid(names.target(input.target.kind), &input.target.id);
        let resource_attrs = [
            ("name".to_owned(), string(&input.target.name)),
            ("server".to_owned(), string(&input.server)),
            ("tier".to_owned(), string(input.tier.as_str())),
        ];
        let resource_entity = Entity::new(
            resource.clone(),
            resource_attrs.into_iter().collect(),
            [server.clone()].into_iter().collect(),
        )
        .map_err(|e| e.to_string())?;

        let arguments = uid(&names.arguments, &input.arguments_sha256);
        let argument_tags = match &input.arguments {
            serde_json::Value::Object(map) => tags(map),
            _ => Vec::new(),
        };
        let arguments_entity =
            Entity::new_with_tags(arguments.clone(), [], [], argument_tags).map_err(|e| e.to_string())?;

        let mut context = vec![
            ("method".to_owned(), string(&input.method)),
            ("listing".to_owned(), RestrictedExpression::new_bool(input.listing)),
            (
                "require_reason".to_owned(),
                RestrictedExpression::new_bool(input.require_reason),
            ),
            ("arguments".to_owned(), RestrictedExpression::new_entity_uid(arguments)),
            ("arguments_sha256".to_owned(), string(&input.arguments_sha256)),
            ("time".to_owned(), RestrictedExpression::new_long(input.time)),
            (
                "approval_present".to_owned(),
                RestrictedExpression::new_bool(input.approval_present),
            ),
            (
                "break_glass".to_owned(),
                RestrictedExpression::new_bool(input.break_glass),
            ),
            ("session_labels".to_owned(), strings(&input.session_labels)),
            ("server_scopes".to_owned(), strings(&input.server_scopes)),
        ];
        if let Some(reason) = &input.reason {
            context.push(("reason".to_owned(), string(reason)));
        }
        let context = Context::from_pairs(context).map_err(|e| e.to_string())?;
        let action = uid(&names.action, input.action);
        let action_entity = names
            .actions
            .get(&action)
            .cloned()
            .ok_or_else(|| format!("the schema declares no action `{}`", input.action))?;
        let validate = validate.then_some(schema);
        let request = Request::new(caller, action, resource.clone(), context, validate).map_err(|e| e.to_string())?;

        let mut entities = vec![caller_entity, server_entity, resource_entity, arguments_entity];
        entities.push(Entity::with_uid(workload));
        entities.extend(user.map(Entity::with_uid));
        entities.push(action_entity);
        let entities = Entities::from_entities(entities, validate).map_err(|e| e.to_string())?;
        Ok(Self {
            request,
            entities,
            resource,
            server,
        })
    }
}

#[cfg(test)]
mod tests {
    use portcullis_core::{ServerName, Tier};

    use super::*;
    use crate::input::Settings;
    use crate::request::{DecisionRequest, PrincipalFacts, Timestamp};

    /// The per-call schema check is off in release builds; this keeps the facts'
    /// shape checked against the schema for every target kind in any build.
    #[test]
    fn facts_conform_to_the_schema() {
        let schema = crate::cedar::schema().expect("schema parses");
        let names = Names::new(&schema).expect("names");
        let server = ServerName::new("db").expect("server name");
        let mut user = PrincipalFacts::workload("spiffe://example.org/agent");
        user.user = Some("alice".into());
        user.scopes = vec!["mcp:read-sensitive".into(), "db:read-sensitive".into()];
        user.claims
            .insert("email".into(), serde_json::json!("alice@example.org"));
        user.claims.insert("groups".into(), serde_json::json!(["ops", "dev"]));
        let mut anonymous = PrincipalFacts::workload("anonymous");
        anonymous.anonymous = true;
        let methods = [
            ("tools/call", "query"),
            ("resources/read", "file:///etc/hosts"),
            ("prompts/get", "summary"),
            ("completion/complete", "completion/complete"),
        ];
        for principal in [user, anonymous] {
            for (method, target) in methods {
                for listing in [false, true] {
                    let mut request = DecisionRequest::call(
                        principal.clone(),
                        server.clone(),
                        method,
                        target,
                        Tier::ReadSensitive,
                        Timestamp::from_unix(1_777_627_800),
                    );
                    request.listing = listing;
                    request.reason = (!listing).then(|| "ticket 42".to_owned());
                    request.session_labels = vec!["untrusted".into()];
                    request.arguments = serde_json::json!({"sql": "select 1", "limit": 5, "opts": {"a": [1, 2]}});
                    let input = Input::new(&request, Settings::default()).expect("input");
                    let facts = CedarFacts::new(&input, &names, &schema, true);
                    assert!(facts.is_ok(), "{method} listing={listing}: {:?}", facts.err());
                }
            }
        }
    }
}
