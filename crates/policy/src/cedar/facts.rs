//! Turns the input document into a Cedar request and entity store, per the schema.
//!
//! Built afresh for every call. Principal is a `Caller` (member of its `Workload`
//! and `User`), the resource is the call's `Tool`/`Resource`/`Prompt`/`Method`
//! (member of its `Server`), the action entity comes from the schema (with any
//! action groups as ancestors), and the context is `CallContext`.
//!
//! # Cost
//! The facts are built as Cedar's own values, not through its public
//! constructors: those evaluate every attribute as a restricted expression,
//! build the context as a record expression and evaluate it, and recompute the
//! transitive closure of the entity graph (an SCC pass with several hash maps per
//! call) — together ~70% of a decision. Our graph has one fixed shape whose
//! closure is known: `Caller ∈ {Workload, User}`, target `∈ Server`, the action
//! with the ancestors the schema gave it (already closed), and no other edges.
//! So the facts are built directly (`cedar-policy-core`'s entity and value types,
//! the same version `cedar-policy` uses, pinned) and the store is created with the
//! closure taken as given.
//!
//! # Checks (fail closed)
//! That shortcut and the facts' shape are checked where a mistake would show:
//! in debug builds (every test) each call's store is created with Cedar checking
//! that the closure is complete and acyclic, its entities are rebuilt through the
//! public, schema-validating constructor and compared with ours (attributes,
//! tags and ancestors), and the request's context is validated against the
//! schema ([`VALIDATE_EVERY_CALL`]); `facts_conform_to_the_schema` below does the
//! same for every target kind in any build. Release builds skip those checks and
//! stay fail-closed: the policies are validated strictly at load, and a fact that
//! were missing or mistyped would make evaluation report an error, which denies.
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use cedar_policy::{Context, Entities, EntityId, EntityTypeName, EntityUid, Request, Schema};
use cedar_policy_core::ast::{self, PartialValue, Value};
use cedar_policy_core::entities::{Entities as CoreEntities, NoEntitiesSchema, TCComputation};
use cedar_policy_core::extensions::Extensions;
use smol_str::SmolStr;

use crate::input::Input;
use crate::request::TargetKind;

/// One call, in Cedar's terms.
pub(crate) struct CedarFacts {
    pub request: Request,
    pub entities: Entities,
}

/// The entities a call's policy set is selected by: its target and the target's server.
pub(crate) struct TargetKeys {
    pub resource: EntityUid,
    pub server: EntityUid,
}

impl TargetKeys {
    pub(crate) fn of(input: &Input, names: &Names) -> Self {
        Self {
            resource: uid(names.target(input.target.kind), &input.target.id),
            server: uid(&names.server, input.server),
        }
    }
}

/// Check every call's facts against the schema and Cedar's own closure: in debug
/// builds only (see the module docs).
pub(crate) const VALIDATE_EVERY_CALL: bool = cfg!(debug_assertions);

/// The schema's entity type names, parsed once at load: parsing a name runs the
/// Cedar parser, far too slow to repeat on every call. Also the schema's action
/// entities (with their ancestors, already closed), so a call adds only its own action.
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
    actions: HashMap<EntityUid, ast::Entity>,
    /// The empty set of strings, built once (see [`set_of`]).
    empty_set: Value,
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
            .map(|e| (e.uid(), AsRef::<ast::Entity>::as_ref(e).clone()))
            .collect();
        Ok(Self {
            actions,
            empty_set: Value::empty_set(None),
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

fn string(value: &str) -> PartialValue {
    PartialValue::Value(Value::from(value))
}

/// A set of strings. Most calls' sets are empty (no labels, findings or scopes): those share
/// one prebuilt empty set (a reference count) instead of building Cedar's set indexes anew.
fn set_of<'a>(values: impl ExactSizeIterator<Item = &'a str>, empty: &Value) -> Value {
    if values.len() == 0 {
        return empty.clone();
    }
    Value::set(values.map(Value::from), None)
}

/// Tag text of a JSON value: a string is itself, anything else its RFC 8785 text.
fn tags<'a>(values: impl IntoIterator<Item = (&'a String, &'a serde_json::Value)>) -> Vec<(SmolStr, PartialValue)> {
    values
        .into_iter()
        .map(|(k, v)| {
            let text = match v {
                serde_json::Value::String(s) => string(s),
                other => string(&crate::canonical::canonical_json(other).unwrap_or_default()),
            };
            (SmolStr::from(k.as_str()), text)
        })
        .collect()
}

/// An entity whose ancestors are exactly `parents` (no further ancestors exist).
fn entity(
    uid: &EntityUid,
    attrs: Vec<(SmolStr, PartialValue)>,
    parents: impl IntoIterator<Item = EntityUid>,
    tags: Vec<(SmolStr, PartialValue)>,
) -> ast::Entity {
    let parents: HashSet<ast::EntityUID> = parents.into_iter().map(Into::into).collect();
    ast::Entity::new_with_attr_partial_value(uid.clone().into(), attrs, HashSet::new(), parents, tags)
}

impl CedarFacts {
    /// The facts of `input` (whose target is `keys`); with `validate`, they are checked
    /// against `schema` and Cedar's own closure too (see the module docs for when).
    pub(crate) fn new(
        input: &Input,
        keys: &TargetKeys,
        names: &Names,
        schema: &Schema,
        validate: bool,
    ) -> Result<Self, String> {
        let p = &input.principal;
        let workload = uid(&names.workload, p.workload);
        let user = p.user.map(|u| uid(&names.user, u));
        let caller_id = match p.user {
            Some(u) => format!("{}#{u}", p.workload),
            None => p.workload.to_owned(),
        };
        let caller = uid(&names.caller, &caller_id);
        let mut attrs = vec![
            (SmolStr::new_static("workload"), string(p.workload)),
            (
                SmolStr::new_static("anonymous"),
                PartialValue::Value(Value::from(p.anonymous)),
            ),
            (
                SmolStr::new_static("scopes"),
                PartialValue::Value(set_of(p.scopes.iter().map(String::as_str), &names.empty_set)),
            ),
        ];
        if let Some(u) = p.user {
            attrs.push((SmolStr::new_static("user"), string(u)));
        }
        let parents = std::iter::once(workload.clone()).chain(user.clone());
        let caller_entity = entity(&caller, attrs, parents, tags(p.claims));

        let TargetKeys { resource, server } = keys;
        let server_attrs = vec![(SmolStr::new_static("name"), string(input.server))];
        let server_entity = entity(server, server_attrs, [], Vec::new());
        let resource_attrs = vec![
            (SmolStr::new_static("name"), string(input.target.name)),
            (SmolStr::new_static("server"), string(input.server)),
            (SmolStr::new_static("tier"), string(input.tier.as_str())),
        ];
        let resource_entity = entity(resource, resource_attrs, [server.clone()], Vec::new());

        let arguments_sha256 = input.arguments_sha256.hex();
        let arguments = uid(&names.arguments, &arguments_sha256);
        let argument_tags = match input.arguments {
            serde_json::Value::Object(map) => tags(map),
            _ => Vec::new(),
        };
        let arguments_entity = entity(&arguments, Vec::new(), [], argument_tags);

        let mut context: BTreeMap<SmolStr, Value> = BTreeMap::new();
        let mut put = |key: &'static str, value: Value| {
            context.insert(SmolStr::new_static(key), value);
        };
        put("method", Value::from(input.method));
        put("listing", Value::from(input.listing));
        put("require_reason", Value::from(input.require_reason));
        put("arguments", Value::from(ast::EntityUID::from(arguments)));
        put("arguments_sha256", Value::from(arguments_sha256.as_str()));
        put("time", Value::from(input.time));
        put("approval_present", Value::from(input.approval_present));
        put("break_glass", Value::from(input.break_glass));
        let set = |values: &[String]| set_of(values.iter().map(String::as_str), &names.empty_set);
        put("session_labels", set(input.session_labels));
        put("call_signed", Value::from(input.call_signed));
        put("tool_findings", set(input.tool_findings));
        put(
            "server_scopes",
            set_of(input.server_scopes.iter().copied(), &names.empty_set),
        );
        if let Some(reason) = input.reason {
            put("reason", Value::from(reason));
        }
        if let Some(credential) = input.credential {
            let fields = [
                ("rule", credential.rule.as_str()),
                ("source", credential.source.as_str()),
                ("kind", credential.kind.as_str()),
                ("scope", credential.scope.as_str()),
            ];
            put(
                "credential",
                Value::record(fields.map(|(k, v)| (k, Value::from(v))), None),
            );
        }
        let context = Context::from(ast::Context::Value(Arc::new(context)));
        let action = uid(&names.action, input.action);
        let action_entity = names
            .actions
            .get(&action)
            .cloned()
            .ok_or_else(|| format!("the schema declares no action `{}`", input.action))?;
        let validate = validate.then_some(schema);
        let request = Request::new(caller, action, resource.clone(), context, validate).map_err(|e| e.to_string())?;

        let mut entities = vec![caller_entity, server_entity, resource_entity, arguments_entity];
        entities.push(entity(&workload, Vec::new(), [], Vec::new()));
        entities.extend(user.map(|u| entity(&u, Vec::new(), [], Vec::new())));
        entities.push(action_entity);
        // The closure is complete by construction (module docs); checked when validating.
        let closure = match validate {
            Some(_) => TCComputation::EnforceAlreadyComputed,
            None => TCComputation::AssumeAlreadyComputed,
        };
        let to_check = validate.map(|schema| (schema, entities.clone()));
        let store = CoreEntities::from_entities(
            entities,
            None::<&NoEntitiesSchema>,
            closure,
            Extensions::all_available(),
        )
        .map_err(|e| e.to_string())?;
        let entities_api = Entities::from(store);
        if let Some((schema, entities)) = to_check {
            same_as_checked(&entities_api, entities, schema)?;
        }
        Ok(Self {
            request,
            entities: entities_api,
        })
    }
}

/// Rebuilds `entities` through Cedar's public, schema-validating constructor (which
/// computes the closure itself) and checks that `store` holds the same entities.
fn same_as_checked(store: &Entities, entities: Vec<ast::Entity>, schema: &Schema) -> Result<(), String> {
    let checked = Entities::from_entities(entities.into_iter().map(cedar_policy::Entity::from), Some(schema))
        .map_err(|e| e.to_string())?;
    // The checked store also holds every action of the schema; ours only this call's.
    let mut compared = 0;
    for want in checked.iter() {
        let got = store.get(&want.uid());
        let is_action = want.uid().type_name().to_string() == "Action";
        if is_action && got.is_none() {
            continue;
        }
        let same = got.is_some_and(|got| AsRef::<ast::Entity>::as_ref(got).deep_eq(want.as_ref()));
        if !same {
            return Err(format!("entity `{}` differs from Cedar's own construction", want.uid()));
        }
        compared += 1;
    }
    if compared != store.iter().count() {
        return Err("the entity store holds other entities than Cedar's own construction".to_owned());
    }
    Ok(())
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
                    request.arguments =
                        serde_json::json!({"sql": "select 1", "limit": 5, "opts": {"a": [1, 2]}}).into();
                    let input = Input::new(&request, Settings::default());
                    let keys = TargetKeys::of(&input, &names);
                    let facts = CedarFacts::new(&input, &keys, &names, &schema, true);
                    assert!(facts.is_ok(), "{method} listing={listing}: {:?}", facts.err());
                }
            }
        }
    }
}
