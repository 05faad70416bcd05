//! Rule matching (server, tool glob, tier, workload glob, user glob, first match in config
//! order, no rule → no credential) and the configuration checks of `Broker::new`, each
//! naming the rule or source and the key.
use std::time::Duration;

use ed25519_dalek::SigningKey;
use portcullis_broker::{
    Broker, BrokerError, CallMatch, Delivery, JwtConfig, Per, PostgresRoleConfig, Privilege, Rule, SchemaGrant,
    SecretConfig, SecretFrom, SourceConfig, SourceKind, TokenExchangeConfig,
};
use portcullis_core::{Secret, Tier};

use crate::support::rule;

fn secret_source(name: &str) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        kind: SourceKind::Secret(SecretConfig {
            from: SecretFrom::Env {
                var: "PATH".into(),
                value: Secret::new("value".into()),
            },
        }),
    }
}

fn pg_source(name: &str, prefix: &str) -> SourceConfig {
    SourceConfig {
        name: name.into(),
        kind: SourceKind::PostgresRole(PostgresRoleConfig {
            admin_url: Secret::new("postgres://admin:s3cret-admin@127.0.0.1:5432/app".into()),
            connect_url: "postgres://{user}:{password}@127.0.0.1:5432/app".into(),
            prefix: prefix.into(),
            ttl: Duration::from_secs(60),
            per: Per::Call,
            grants: vec![SchemaGrant {
                schema: "sales".into(),
                privileges: vec![Privilege::Select],
            }],
            connection_limit: 2,
        }),
    }
}

fn rules() -> Vec<Rule> {
    vec![
        Rule {
            tools: vec!["read_*".into()],
            tiers: vec![Tier::Read],
            workloads: vec!["spiffe://example.org/agent/*".into()],
            ..rule("agent-reads", "files", "s")
        },
        Rule {
            users: vec!["al*".into()],
            ..rule("alice-anything", "files", "s")
        },
        rule("files-rest", "files", "s"),
        Rule {
            tools: vec!["query".into(), "explain_*".into()],
            tiers: vec![Tier::ReadSensitive],
            ..rule("db-query", "db", "s")
        },
    ]
}

/// Server, target, tier, workload, user → the rule expected.
type Case = (
    &'static str,
    &'static str,
    Tier,
    &'static str,
    Option<&'static str>,
    Option<&'static str>,
);

#[test]
fn first_matching_rule_in_config_order_wins() {
    let broker = Broker::new(rules(), vec![secret_source("s")]).expect("broker");
    assert!(!broker.is_empty());
    let agent = "spiffe://example.org/agent/dev";
    let other = "spiffe://other.org/agent/dev";
    #[rustfmt::skip]
    let cases: [Case; 10] = [
        ("files", "read_file", Tier::Read,          agent, None,          Some("agent-reads")),
        ("files", "read_file", Tier::Write,         agent, Some("alice"), Some("alice-anything")), // tier
        ("files", "read_file", Tier::Read,          other, Some("bob"),   Some("files-rest")),     // workload, user
        ("files", "write_file", Tier::Read,         agent, Some("alan"),  Some("alice-anything")), // tool
        ("files", "write_file", Tier::Read,         agent, None,          Some("files-rest")),     // users need a user
        ("db",    "query",      Tier::ReadSensitive, agent, None,         Some("db-query")),
        ("db",    "explain_q",  Tier::ReadSensitive, other, None,         Some("db-query")),
        ("db",    "query",      Tier::Read,          agent, None,         None),                   // tier
        ("db",    "drop_table", Tier::ReadSensitive, agent, None,         None),                   // tool
        ("mail",  "send",       Tier::Read,          agent, None,         None),                   // server
    ];
    for (server, target, tier, workload, user, expected) in cases {
        let call = CallMatch {
            server,
            target,
            tier,
            workload,
            user,
        };
        let plan = broker.plan(&call);
        assert_eq!(plan.as_ref().map(|p| p.rule.as_str()), expected, "{call:?}");
        if let Some(plan) = plan {
            assert_eq!((plan.source.as_str(), plan.kind), ("s", "secret"));
            assert_eq!(plan.scope, "static secret from environment variable `PATH`");
        }
    }
}

#[test]
fn no_rules_no_credentials() {
    let broker = Broker::new(vec![], vec![secret_source("s")]).expect("broker");
    assert!(broker.is_empty());
    let call = crate::support::call_match("files", "read_file");
    assert_eq!(broker.plan(&call), None);
}

#[test]
fn plan_serialises_without_a_secret_and_names_the_delivery() {
    let broker = Broker::new(vec![rule("r", "files", "s")], vec![secret_source("s")]).expect("broker");
    let plan = broker.plan(&crate::support::call_match("files", "x")).expect("plan");
    assert_eq!(
        serde_json::to_value(&plan).expect("json"),
        serde_json::json!({
            "rule": "r", "source": "s", "kind": "secret",
            "scope": "static secret from environment variable `PATH`",
            "delivery": {"to": "header", "name": "Authorization", "prefix": "Bearer "}
        })
    );
}

/// The subject, key and message of the config error `Broker::new` returns.
fn config_error(rules: Vec<Rule>, sources: Vec<SourceConfig>) -> (String, &'static str, String) {
    match Broker::new(rules, sources) {
        Err(e @ BrokerError::Config { .. }) => {
            let message = e.to_string();
            let BrokerError::Config { subject, key, .. } = e else {
                unreachable!()
            };
            (subject, key, message)
        }
        Err(other) => panic!("expected a config error, got {other:?}"),
        Ok(_) => panic!("the config was accepted"),
    }
}

/// Rules, sources → the subject, key and a phrase of the error expected.
type BadConfig = (Vec<Rule>, Vec<SourceConfig>, &'static str, &'static str, &'static str);

#[test]
fn bad_configs_name_the_rule_or_source_and_the_key() {
    let jwt = |name: &str, kid: &str| SourceConfig {
        name: name.into(),
        kind: SourceKind::Jwt(JwtConfig {
            issuer: "https://gateway.example".into(),
            audience: None,
            ttl: Duration::from_secs(60),
            key: SigningKey::from_bytes(&[1; 32]),
            kid: kid.into(),
        }),
    };
    let exchange = |endpoint: &str| SourceConfig {
        name: "tx".into(),
        kind: SourceKind::TokenExchange(TokenExchangeConfig {
            token_endpoint: endpoint.into(),
            client_id: "gateway".into(),
            client_secret: None,
            audience: None,
            scope: None,
            timeout: Duration::from_secs(2),
        }),
    };
    let with_pg = |f: &dyn Fn(&mut PostgresRoleConfig)| {
        let mut source = pg_source("pg", "pc_");
        if let SourceKind::PostgresRole(c) = &mut source.kind {
            f(c);
        }
        source
    };
    let env_rule = |var: &str| Rule {
        delivery: Delivery::Env { var: var.into() },
        ..rule("r", "files", "s")
    };
    #[rustfmt::skip]
    let cases: Vec<BadConfig> = vec![
        (vec![rule("r", "files", "nope")], vec![secret_source("s")], "rule `r`", "source", "no credential source is named `nope`"),
        (vec![Rule { tools: vec!["read_[".into()], ..rule("r", "files", "s") }], vec![secret_source("s")], "rule `r`", "tools", "`read_[` is not a valid glob"),
        (vec![Rule { workloads: vec!["spiffe://[".into()], ..rule("r", "files", "s") }], vec![secret_source("s")], "rule `r`", "workloads", "not a valid glob"),
        (vec![Rule { users: vec!["[a".into()], ..rule("r", "files", "s") }], vec![secret_source("s")], "rule `r`", "users", "not a valid glob"),
        (vec![env_rule("1BAD")], vec![secret_source("s")], "rule `r`", "env", "`1BAD` is not a valid environment variable name"),
        (vec![env_rule("A-B")], vec![secret_source("s")], "rule `r`", "env", "`A-B` is not a valid environment variable name"),
        (vec![Rule { delivery: Delivery::Header { name: "Bad Header".into(), prefix: String::new() }, ..rule("r", "files", "s") }], vec![secret_source("s")], "rule `r`", "header", "not a valid HTTP header name"),
        (vec![Rule { delivery: Delivery::Header { name: "Host".into(), prefix: String::new() }, ..rule("r", "files", "s") }], vec![secret_source("s")], "rule `r`", "header", "set by the gateway itself"),
        (vec![rule("r", "files", "s"), rule("r", "db", "s")], vec![secret_source("s")], "rule `r`", "id", "two rules have this id"),
        (vec![], vec![secret_source("s"), secret_source("s")], "source `s`", "name", "two sources have this name"),
        (vec![], vec![pg_source("pg", "Bad")], "source `pg`", "prefix", "`Bad` is not a valid role prefix"),
        (vec![], vec![pg_source("pg", "pc-")], "source `pg`", "prefix", "not a valid role prefix"),
        (vec![], vec![pg_source("a", "pc_"), pg_source("b", "pc_")], "source `b`", "prefix", "source `a` uses prefix `pc_` too"),
        (vec![], vec![with_pg(&|c| c.connect_url = "postgres://{user}@127.0.0.1/app".into())], "source `pg`", "connect_url", "must contain `{user}` and `{password}`"),
        (vec![], vec![with_pg(&|c| c.admin_url = Secret::new("not a url".into()))], "source `pg`", "admin_url", "not a valid PostgreSQL connection URL"),
        (vec![], vec![with_pg(&|c| c.grants.clear())], "source `pg`", "grants", "list at least one schema"),
        (vec![], vec![with_pg(&|c| c.grants[0].privileges.clear())], "source `pg`", "grants.privileges", "schema `sales` lists no privilege"),
        (vec![], vec![with_pg(&|c| c.connection_limit = 0)], "source `pg`", "connection_limit", "at least 1"),
        (vec![], vec![with_pg(&|c| { c.per = Per::Session; c.ttl = Duration::from_secs(30) })], "source `pg`", "ttl", "at least 31 s for per-session roles"),
        (vec![], vec![with_pg(&|c| c.ttl = Duration::ZERO)], "source `pg`", "ttl", "at least 1 s"),
        (vec![], vec![exchange("http://idp.example.com/token")], "source `tx`", "token_endpoint", "must use https"),
        (vec![], vec![exchange("::not a url")], "source `tx`", "token_endpoint", "is not a URL"),
        (vec![], vec![SourceConfig { name: "s".into(), kind: SourceKind::Secret(SecretConfig { from: SecretFrom::Env { var: "X=Y".into(), value: Secret::new("v".into()) } }) }], "source `s`", "env", "`X=Y` is not a valid environment variable name"),
        (vec![], vec![SourceConfig { name: "bad name".into(), ..secret_source("s") }], "source `bad name`", "name", "use 1 to 64 characters"),
        (vec![], vec![jwt("j", ""), SourceConfig { kind: SourceKind::Jwt(JwtConfig { issuer: String::new(), audience: None, ttl: Duration::from_secs(1), key: SigningKey::from_bytes(&[2; 32]), kid: String::new() }), name: "k".into() }], "source `k`", "issuer", "name the issuer"),
    ];
    for (rules, sources, subject, key, needle) in cases {
        let (got_subject, got_key, message) = config_error(rules, sources);
        assert_eq!((got_subject.as_str(), got_key), (subject, key), "{message}");
        assert!(message.contains(needle), "`{message}` does not say `{needle}`");
        assert!(message.starts_with("credentials config: "), "{message}");
    }
}

/// The gateway shares one broker between tasks and spawns calls: the broker, its leases and
/// every future it returns must be `Send` (compile-time check; the futures are never polled).
#[test]
fn broker_leases_and_futures_are_send() {
    fn shareable<T: Send + Sync>() {}
    fn send<T: Send>(_: T) {}
    shareable::<Broker>();
    shareable::<portcullis_broker::Lease>();
    shareable::<BrokerError>();
    let broker = Broker::new(vec![rule("r", "files", "s")], vec![secret_source("s")]).expect("broker");
    let plan = broker.plan(&crate::support::call_match("files", "x")).expect("plan");
    let call = crate::support::facts("files", "x", "s1");
    send(broker.mint(&plan, &call));
    send(broker.sweep(portcullis_broker::Sweep::Start));
    send(broker.end_session("s1"));
}
