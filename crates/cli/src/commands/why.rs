//! `portcullis why DECISION_ID`: the answer to "why was my call denied?" from the id the
//! refusal quoted — the decision's records in the audit log, the rules that decided, the
//! decision replayed against the current policy set, and what would have allowed it.
use std::{path::PathBuf, process::ExitCode};

use crate::{commands::audit, config, policy_open, replay};

#[derive(Debug, clap::Args)]
#[command(
    after_help = "Example (the id a refusal quoted: \"call denied by policy: … (decision 08a0…)\"):\n  \
                        portcullis why 08a0c2f1e4b24f6d9b1a7e3c5d2f4a61 --config portcullis.toml"
)]
pub struct WhyArgs {
    /// The decision id a refusal named (`data.decisionId` in the JSON-RPC error).
    pub decision_id: String,
    /// The gateway config: its audit log and its current policy set.
    #[arg(long, short, env = "PORTCULLIS_CONFIG")]
    pub config: PathBuf,
}

pub async fn run(args: WhyArgs) -> anyhow::Result<ExitCode> {
    let loaded = config::load(&args.config)?;
    let reader = audit::reader_for(&args.config).await?;
    let id = args.decision_id.trim().to_ascii_lowercase();
    let found = audit::find_decision(&reader, &id).await?;
    let Some((index, decision)) = found
        .iter()
        .find(|(_, r)| r.kind == portcullis_audit::RecordKind::Decision)
        .cloned()
    else {
        anyhow::bail!(
            "no decision `{id}` in the audit log of {}; check the id (the refusal's `decisionId`) and that the \
             config is the gateway's that refused",
            args.config.display()
        );
    };
    println!("records:");
    for (i, record) in &found {
        let mut value = serde_json::to_value(record)?;
        if let Some(obj) = value.as_object_mut() {
            obj.insert("index".into(), (*i).into());
        }
        println!("  {value}");
    }
    let authoriser = policy_open::open(&loaded.policy).map_err(|e| {
        anyhow::Error::from(config::ConfigError::one(
            args.config.display().to_string(),
            "policy",
            format!("{e:#}"),
        ))
    })?;
    let replayed = replay::request_of(&decision, index, &loaded.gateway.anonymous_principal.workload)?;
    let explanation = authoriser.store.explain(&replayed.request);
    print!(
        "{}",
        replay::describe(&decision, index, &replayed, &explanation, &authoriser.store)
    );
    Ok(ExitCode::SUCCESS)
}
