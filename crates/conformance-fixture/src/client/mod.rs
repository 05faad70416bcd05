//! The MCP client behind `portcullis-conformance-client`: the suite's `client` mode starts a
//! mock server per scenario and runs `portcullis-conformance-client URL` with the scenario in
//! `MCP_CONFORMANCE_SCENARIO`, the protocol version in `MCP_CONFORMANCE_PROTOCOL_VERSION` and
//! scenario data in `MCP_CONFORMANCE_CONTEXT`. This module maps each scenario to a flow.

mod handler;
mod scenarios;

use anyhow::{Context as _, bail};
use rmcp::{
    ClientLifecycleMode, ClientServiceExt as _, model::ProtocolVersion, transport::StreamableHttpClientTransport,
};
use serde_json::Value;

pub use handler::ConformanceClient;

/// What the runner asked for.
pub struct Invocation {
    pub url: String,
    pub scenario: String,
    /// The wire protocol version; 2026-07-28 and later use the stateless lifecycle.
    pub protocol_version: Option<String>,
    /// Parsed `MCP_CONFORMANCE_CONTEXT`, when the scenario provides one.
    pub context: Option<Value>,
}

fn lifecycle(version: &ProtocolVersion) -> ClientLifecycleMode {
    if version.as_str() >= ProtocolVersion::V_2026_07_28.as_str() {
        ClientLifecycleMode::Discover {
            preferred_versions: vec![version.clone()],
        }
    } else {
        ClientLifecycleMode::Initialize
    }
}

/// Run one scenario's client flow to completion.
pub async fn run(invocation: &Invocation) -> anyhow::Result<()> {
    let version: ProtocolVersion = match &invocation.protocol_version {
        Some(v) => serde_json::from_value(Value::String(v.clone()))
            .with_context(|| format!("unknown protocol version `{v}`"))?,
        None => ProtocolVersion::V_2025_11_25,
    };
    let transport = StreamableHttpClientTransport::from_uri(invocation.url.as_str());
    let client = ConformanceClient::new(version.clone())
        .serve_with_lifecycle(transport, lifecycle(&version))
        .await
        .context("connecting to the scenario's server")?;
    let outcome = match invocation.scenario.as_str() {
        "initialize" | "tools_call" | "tools-call" => scenarios::basic(&client).await,
        "request-metadata" | "json-schema-ref-no-deref" => scenarios::list_only(&client).await,
        "json-schema-2020-12-preservation" => scenarios::schema_echo(&client).await,
        "elicitation-sep1034-client-defaults" | "elicitation-defaults" => {
            scenarios::call_each(&client, &["test_client_elicitation_defaults"]).await
        }
        "sse-retry" => scenarios::call_each(&client, &["test_reconnection"]).await,
        "sep-2322-client-request-state" => {
            let tools = [
                "test_mrtr_echo_state",
                "test_mrtr_unrelated",
                "test_mrtr_no_state",
                "test_mrtr_no_result_type",
            ];
            scenarios::call_each(&client, &tools).await
        }
        "http-custom-headers" => match &invocation.context {
            Some(context) => scenarios::context_tool_calls(&client, context).await,
            None => Err(anyhow::anyhow!("`http-custom-headers` needs MCP_CONFORMANCE_CONTEXT")),
        },
        "http-standard-headers" | "http-invalid-tool-headers" => scenarios::exercise_all(&client).await,
        other => Err(anyhow::anyhow!("scenario `{other}` is not implemented by this client")),
    };
    let closed = client.cancel().await;
    outcome?;
    if let Err(e) = closed {
        bail!("closing the client failed: {e}");
    }
    Ok(())
}
