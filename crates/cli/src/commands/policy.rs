//! `portcullis policy …`: validate the policy set, run fixtures against it, and
//! explain a decision — offline, with exactly the engine the gateway would use.
use std::{path::PathBuf, process::ExitCode};

use anyhow::Context;
use clap::Subcommand;
use portcullis_policy::{DecisionRequest, Expect, Fixtures, run_fixtures};

use crate::{config, policy_open, replay};

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Validate the config's policy set against the schema; exit 2 if invalid.
    Check {
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Run fixtures (TOML or JSON: `[[cases]]` of request → expected decision); exit 1 on a mismatch.
    Test {
        /// The fixtures file (`.toml`, or `.json`).
        file: PathBuf,
        /// The gateway config file (or $PORTCULLIS_CONFIG).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
    },
    /// Show which policies decide a request: a JSON DecisionRequest, or a decision from the
    /// audit log replayed against the current policy set.
    #[command(
        after_help = "Examples:\n  portcullis policy explain --config portcullis.toml --audit-index 41\n  \
                            portcullis policy explain --config portcullis.toml --request call.json"
    )]
    Explain {
        /// The gateway config: its policy set (and, for --audit-index, its audit log).
        #[arg(long, short, env = "PORTCULLIS_CONFIG")]
        config: PathBuf,
        /// The request as JSON (the DecisionRequest format of docs/policy.md), in a file or `-` for stdin.
        #[arg(long, required_unless_present = "audit_index", conflicts_with = "audit_index")]
        request: Option<PathBuf>,
        /// Replay the decision record at this index of the config's audit log (its tier and
        /// the caller's reason are in the record); `portcullis why ID` finds it by decision id.
        #[arg(long, value_name = "N")]
        audit_index: Option<u64>,
    },
}

pub async fn run(command: PolicyCommand) -> anyhow::Result<ExitCode> {
    match command {
        PolicyCommand::Check { config } => {
            let loaded = config::load(&config)?;
            let authoriser = policy_open::open(&loaded.policy).map_err(invalid(&config))?;
            let source = if loaded.policy.patterns.is_empty() {
                "built-in tier policies".to_owned()
            } else {
                loaded.policy.patterns.join(", ")
            };
            println!(
                "ok: {source} ({:?}), policy hash {}",
                loaded.policy.engine,
                authoriser.store.policy_hash()
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Test { file, config } => {
            let loaded = config::load(&config)?;
            let authoriser = policy_open::open(&loaded.policy).map_err(invalid(&config))?;
            let text = std::fs::read_to_string(&file).with_context(|| format!("cannot read {}", file.display()))?;
            let is_json = file.extension().is_some_and(|e| e == "json");
            let fixtures = if is_json {
                Fixtures::from_json(&text)
            } else {
                Fixtures::from_toml(&text)
            }
            .with_context(|| format!("{}", file.display()))?;
            let report = run_fixtures(authoriser.store.current_engine().as_ref(), &fixtures.cases);
            for m in &report.mismatches {
                let expected = match m.expected {
                    Expect::Allow => "allow",
                    Expect::Deny => "deny",
                };
                println!(
                    "MISMATCH {}: expected {expected}; decision {} ({})",
                    m.name,
                    m.decision_id,
                    m.reasons.join(", ")
                );
                for e in &m.errors {
                    println!("    error: {e}");
                }
            }
            println!("{} passed, {} failed", report.passed, report.failed);
            Ok(if report.failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::FAILURE
            })
        }
        PolicyCommand::Explain {
            config,
            request: None,
            audit_index: Some(index),
        } => {
            let loaded = config::load(&config)?;
            let authoriser = policy_open::open(&loaded.policy).map_err(invalid(&config))?;
            let reader = crate::commands::audit::reader_for(&config).await?;
            let record = crate::commands::audit::record_at(&reader, index).await?;
            let anonymous = &loaded.gateway.anonymous_principal.workload;
            let replayed = replay::request_of(&record, index, anonymous)?;
            let explanation = authoriser.store.explain(&replayed.request);
            print!(
                "{}",
                replay::describe(&record, index, &replayed, &explanation, &authoriser.store)
            );
            Ok(ExitCode::SUCCESS)
        }
        PolicyCommand::Explain { config, request, .. } => {
            let request = request.context("give --request FILE or --audit-index N")?;
            let loaded = config::load(&config)?;
            let authoriser = policy_open::open(&loaded.policy).map_err(invalid(&config))?;
            let text = if request.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("cannot read the request from stdin")?
            } else {
                std::fs::read_to_string(&request).with_context(|| format!("cannot read {}", request.display()))?
            };
            let request: DecisionRequest =
                serde_json::from_str(&text).context("the request is not a valid DecisionRequest JSON document")?;
            println!("{}", authoriser.store.explain(&request));
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn invalid(path: &std::path::Path) -> impl Fn(anyhow::Error) -> anyhow::Error + '_ {
    move |e| config::ConfigError::one(path.display().to_string(), "policy", format!("{e:#}")).into()
}
