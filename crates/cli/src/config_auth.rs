//! The identity part of the config file: `[listen.tls]` (the HTTP front's
//! certificate and mutual TLS with SPIFFE SVIDs), `[listen.oauth]` (bearer
//! tokens) and `listen.require` (which of the two every call must carry).
//! Files (or the SPIFFE Workload API socket) are only named here; they are read
//! (or connected) when the gateway starts.
use std::{path::Path, sync::Arc, time::Duration};

use portcullis_gateway::config::{BearerAuth, HttpAuth};
use portcullis_identity::{
    BundleSource, ClientAuth, ClientTrust, Reload, ServerTlsSettings, SvidPolicy, SvidSource, TrustDomain,
    jwt::{JwksSource, JwtSettings, JwtValidator, ProtectedResource, SigningAlgorithm},
};
use serde::Deserialize;
use url::Url;

use crate::config::ConfigError;
use crate::config_workload_api::{Source, WorkloadApiSlot, refuse_files, source};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    /// `files` (default) or `workload-api`.
    source: Option<String>,
    workload_api_socket: Option<String>,
    workload_api_timeout_secs: Option<u64>,
    cert: Option<std::path::PathBuf>,
    key: Option<std::path::PathBuf>,
    client_ca: Option<std::path::PathBuf>,
    require_client_cert: Option<bool>,
    #[serde(default)]
    trust_domains: Vec<String>,
    reload_interval_secs: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawOauth {
    issuer: Option<String>,
    resource: Option<String>,
    jwks_url: Option<String>,
    jwks_file: Option<std::path::PathBuf>,
    algorithms: Option<Vec<String>>,
    leeway_secs: Option<u64>,
    #[serde(default)]
    required_scopes: Vec<String>,
    authorization_servers: Option<Vec<String>>,
    scopes_supported: Option<Vec<String>>,
}

/// What the `[listen]` table says about identity.
pub struct RawAuth<'a> {
    pub tls: Option<&'a RawTls>,
    pub oauth: Option<&'a RawOauth>,
    pub require: Option<&'a [String]>,
    pub unattested_workload: Option<&'a str>,
}

/// The validated identity settings of the HTTP front.
pub struct AuthSettings {
    pub tls: Option<ServerTlsSettings>,
    pub http: HttpAuth,
}

type Err<'a> = &'a dyn Fn(&str, String) -> ConfigError;

/// Validates the identity settings; relative paths are resolved against `base`.
pub fn auth(
    raw: &RawAuth<'_>,
    base: &Path,
    apis: &mut WorkloadApiSlot,
    err: Err<'_>,
) -> Result<AuthSettings, ConfigError> {
    let tls = raw.tls.map(|t| tls(t, base, apis, err)).transpose()?;
    let svid = tls
        .as_ref()
        .and_then(|t| t.client_trust.as_ref())
        .map(|trust| trust.svid_policy.clone());
    let client_cert_required = tls
        .as_ref()
        .and_then(|t| t.client_trust.as_ref())
        .is_some_and(|trust| trust.mode == ClientAuth::Required);
    let bearer = raw.oauth.map(|o| oauth(o, base, err)).transpose()?;
    let (require_workload, require_user) = match raw.require {
        None => (client_cert_required, bearer.is_some()),
        Some(list) => {
            let mut workload = false;
            let mut user = false;
            for item in list {
                match item.as_str() {
                    "workload" => workload = true,
                    "user" => user = true,
                    other => {
                        return Err(err(
                            "listen.require",
                            format!("unknown credential `{other}`; use \"workload\" and/or \"user\""),
                        ));
                    }
                }
            }
            (workload, user)
        }
    };
    if require_workload && svid.is_none() {
        return Err(err(
            "listen.require",
            "\"workload\" needs client certificates: set [listen.tls] client_ca and trust_domains".into(),
        ));
    }
    if require_user && bearer.is_none() {
        return Err(err(
            "listen.require",
            "\"user\" needs bearer tokens: add a [listen.oauth] table".into(),
        ));
    }
    Ok(AuthSettings {
        tls,
        http: HttpAuth {
            svid,
            bearer,
            require_workload,
            require_user,
            unattested_workload: raw.unattested_workload.unwrap_or("unattested").to_owned(),
        },
    })
}

/// Where `[listen.tls]` takes the gateway's SVID and the client trust bundle from.
fn material(
    raw: &RawTls,
    base: &Path,
    apis: &mut WorkloadApiSlot,
    err: Err<'_>,
) -> Result<(SvidSource, Option<BundleSource>), ConfigError> {
    match source(raw.source.as_deref(), "listen.tls.source", err)? {
        Source::Files => {
            if raw.workload_api_socket.is_some() || raw.workload_api_timeout_secs.is_some() {
                return Err(err(
                    "listen.tls.workload_api_socket",
                    "only applies with source = \"workload-api\"".into(),
                ));
            }
            let (Some(cert), Some(key)) = (&raw.cert, &raw.key) else {
                return Err(err(
                    "listen.tls",
                    "set both `cert` (the gateway's PEM chain) and `key`; `portcullis ca issue` makes them \
                     (or take them from a SPIRE agent with source = \"workload-api\")"
                        .into(),
                ));
            };
            let svid = SvidSource::Files {
                cert_chain: base.join(cert),
                private_key: base.join(key),
            };
            Ok((svid, raw.client_ca.as_ref().map(|b| BundleSource::File(base.join(b)))))
        }
        Source::WorkloadApi => {
            let given = [
                ("cert", raw.cert.is_some()),
                ("key", raw.key.is_some()),
                ("client_ca", raw.client_ca.is_some()),
            ];
            refuse_files("listen.tls", &given, err)?;
            let api = apis.use_for(
                "listen.tls",
                raw.workload_api_socket.as_deref(),
                raw.workload_api_timeout_secs,
                err,
            )?;
            Ok((
                SvidSource::WorkloadApi(api.clone()),
                Some(BundleSource::WorkloadApi(api)),
            ))
        }
    }
}

fn tls(raw: &RawTls, base: &Path, apis: &mut WorkloadApiSlot, err: Err<'_>) -> Result<ServerTlsSettings, ConfigError> {
    let (svid, bundle) = material(raw, base, apis, err)?;
    let client_trust = match bundle {
        None => {
            if raw.require_client_cert == Some(true) {
                return Err(err(
                    "listen.tls.require_client_cert",
                    "client certificates need `client_ca` (the trust bundle for client SVIDs) \
                     or source = \"workload-api\""
                        .into(),
                ));
            }
            None
        }
        Some(bundle) => {
            if raw.trust_domains.is_empty() {
                return Err(err(
                    "listen.tls.trust_domains",
                    "list the trust domains whose SVIDs are accepted, e.g. [\"example.org\"]".into(),
                ));
            }
            let mut domains = Vec::new();
            for name in &raw.trust_domains {
                domains.push(TrustDomain::new(name).map_err(|e| err("listen.tls.trust_domains", e.to_string()))?);
            }
            let svid_policy = SvidPolicy::new(domains).map_err(|e| err("listen.tls.trust_domains", e.to_string()))?;
            Some(ClientTrust {
                bundle,
                mode: match raw.require_client_cert.unwrap_or(true) {
                    true => ClientAuth::Required,
                    false => ClientAuth::Optional,
                },
                svid_policy,
            })
        }
    };
    Ok(ServerTlsSettings {
        svid,
        client_trust,
        reload: Reload::Poll(Duration::from_secs(raw.reload_interval_secs.unwrap_or(5))),
        alpn_protocols: vec!["http/1.1".into()],
    })
}

fn oauth(raw: &RawOauth, base: &Path, err: Err<'_>) -> Result<BearerAuth, ConfigError> {
    let url =
        |key: &str, text: &str| Url::parse(text).map_err(|e| err(key, format!("`{text}` is not an absolute URL: {e}")));
    let Some(issuer) = raw.issuer.as_deref() else {
        return Err(err(
            "listen.oauth.issuer",
            "set the authorization server's issuer".into(),
        ));
    };
    let Some(resource_text) = raw.resource.as_deref() else {
        return Err(err(
            "listen.oauth.resource",
            "set this gateway's resource URI (e.g. https://gateway.example.com/mcp); tokens must name it as audience"
                .into(),
        ));
    };
    let resource = url("listen.oauth.resource", resource_text)?;
    let jwks = match (&raw.jwks_url, &raw.jwks_file) {
        (Some(u), None) => JwksSource::url(url("listen.oauth.jwks_url", u)?),
        (None, Some(f)) => JwksSource::File(base.join(f)),
        _ => {
            return Err(err(
                "listen.oauth",
                "set exactly one of `jwks_url` and `jwks_file` (the issuer's signing keys)".into(),
            ));
        }
    };
    let mut settings = JwtSettings::new(issuer, resource_text, jwks);
    if let Some(names) = &raw.algorithms {
        let mut algorithms = Vec::new();
        for name in names {
            algorithms.push(SigningAlgorithm::from_jws(name).ok_or_else(|| {
                err(
                    "listen.oauth.algorithms",
                    format!("`{name}` is not an accepted algorithm; use asymmetric ones such as RS256, ES256, EdDSA"),
                )
            })?);
        }
        settings.algorithms = algorithms;
    }
    if let Some(secs) = raw.leeway_secs {
        if secs > 300 {
            return Err(err(
                "listen.oauth.leeway_secs",
                "at most 300 seconds of clock skew".into(),
            ));
        }
        settings.leeway = Duration::from_secs(secs);
    }
    let validator = JwtValidator::new(settings).map_err(|e| err("listen.oauth", e.to_string()))?;
    let mut authorization_servers = Vec::new();
    for text in raw
        .authorization_servers
        .clone()
        .unwrap_or_else(|| vec![issuer.to_owned()])
    {
        authorization_servers.push(url("listen.oauth.authorization_servers", &text)?);
    }
    Ok(BearerAuth {
        validator: Arc::new(validator),
        resource: ProtectedResource {
            resource,
            authorization_servers,
            scopes_supported: raw
                .scopes_supported
                .clone()
                .unwrap_or_else(|| raw.required_scopes.clone()),
        },
        required_scopes: raw.required_scopes.clone(),
    })
}
