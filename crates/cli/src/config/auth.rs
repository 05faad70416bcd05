//! The identity part of the config file: `[listen.tls]` (the HTTP front's
//! certificate and mutual TLS with SPIFFE SVIDs), `[listen.oauth]` (bearer
//! tokens) and `listen.require` (which of the two every call must carry).
//! Files (or the SPIFFE Workload API socket) are only named here; they are read
//! (or connected) when the gateway starts.
//!
//! Each client trust bundle belongs to one trust domain (`client_ca`: the gateway's own;
//! `bundles`: one file per federated trust domain), so a CA vouches only for its own
//! trust domain, as with SPIFFE federation.
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use portcullis_gateway::config::{BearerAuth, HttpAuth};
use portcullis_identity::{
    BundleSource, ClientAuth, ClientTrust, Reload, ServerTlsSettings, SvidPolicy, SvidSource, TrustDomain,
    jwt::{JwksSource, JwtSettings, JwtValidator, ProtectedResource, SigningAlgorithm},
};
use url::Url;

use super::{
    problems::{Checked, Problems, every},
    raw::{RawListen, RawOauth, RawTls},
    workload_api::{Source, WorkloadApiSlot, refuse_files, source},
};

/// The validated identity settings of the HTTP front.
pub struct AuthSettings {
    pub tls: Option<ServerTlsSettings>,
    pub http: HttpAuth,
}

/// Validates the identity settings of `[listen]`; relative paths are resolved against `base`.
pub fn auth(raw: &RawListen, base: &Path, apis: &mut WorkloadApiSlot, p: &mut Problems) -> Checked<AuthSettings> {
    let tls = raw.tls.as_ref().map(|t| tls(t, base, apis, p)).transpose();
    let bearer = raw.oauth.as_ref().map(|o| oauth(o, base, p)).transpose();
    let required = raw.require.as_deref().map(|list| require(list, p)).transpose();
    // A table with problems has reported them; what `require` needs of it is not checked again.
    let (tls, bearer, required) = (tls?, bearer?, required?);
    let trust = tls.as_ref().and_then(|t| t.client_trust.as_ref());
    let svid = trust.map(|trust| trust.svid_policy.clone());
    let (require_workload, require_user) = required.unwrap_or((
        trust.is_some_and(|trust| trust.mode == ClientAuth::Required),
        bearer.is_some(),
    ));
    let workload_ok = p.check(
        !require_workload || svid.is_some(),
        "listen.require",
        "\"workload\" needs client certificates: set [listen.tls] client_ca (or bundles) and trust_domains",
    );
    let user_ok = p.check(
        !require_user || bearer.is_some(),
        "listen.require",
        "\"user\" needs bearer tokens: add a [listen.oauth] table",
    );
    workload_ok?;
    user_ok?;
    Ok(AuthSettings {
        tls,
        http: HttpAuth {
            svid,
            bearer,
            require_workload,
            require_user,
            unattested_workload: raw.unattested_workload.as_deref().unwrap_or("unattested").to_owned(),
        },
    })
}

/// `listen.require`: (workload, user).
fn require(list: &[String], p: &mut Problems) -> Checked<(bool, bool)> {
    let (mut workload, mut user, mut known) = (false, false, Ok(()));
    for item in list {
        match item.as_str() {
            "workload" => workload = true,
            "user" => user = true,
            other => {
                known = Err(p.add(
                    "listen.require",
                    format!("unknown credential `{other}`; use \"workload\" and/or \"user\""),
                ));
            }
        }
    }
    known.map(|()| (workload, user))
}

/// Where client SVIDs' trust bundles come from, before the files are bound to trust domains.
enum ClientBundles {
    /// `client_ca` and `bundles` (at least one of them is set).
    Files {
        client_ca: Option<PathBuf>,
        bundles: BTreeMap<String, PathBuf>,
    },
    WorkloadApi(portcullis_identity::WorkloadApi),
}

/// Where `[listen.tls]` takes the gateway's SVID and the client trust bundles from.
fn material(
    raw: &RawTls,
    base: &Path,
    apis: &mut WorkloadApiSlot,
    p: &mut Problems,
) -> Checked<(SvidSource, Option<ClientBundles>)> {
    match source(raw.source.as_deref(), "listen.tls.source", p)? {
        Source::Files => {
            let no_socket = p.check(
                raw.workload_api_socket.is_none() && raw.workload_api_timeout_secs.is_none(),
                "listen.tls.workload_api_socket",
                "only applies with source = \"workload-api\"",
            );
            let (Some(cert), Some(key)) = (&raw.cert, &raw.key) else {
                return Err(p.add(
                    "listen.tls",
                    "set both `cert` (the gateway's PEM chain) and `key`; `portcullis ca issue` makes them \
                     (or take them from a SPIRE agent with source = \"workload-api\")",
                ));
            };
            no_socket?;
            let svid = SvidSource::Files {
                cert_chain: base.join(cert),
                private_key: base.join(key),
            };
            let bundles = (raw.client_ca.is_some() || !raw.bundles.is_empty()).then(|| ClientBundles::Files {
                client_ca: raw.client_ca.as_ref().map(|b| base.join(b)),
                bundles: raw.bundles.iter().map(|(td, b)| (td.clone(), base.join(b))).collect(),
            });
            Ok((svid, bundles))
        }
        Source::WorkloadApi => {
            let given = [
                ("cert", raw.cert.is_some()),
                ("key", raw.key.is_some()),
                ("client_ca", raw.client_ca.is_some()),
                ("bundles", !raw.bundles.is_empty()),
            ];
            let no_files = refuse_files("listen.tls", &given, p);
            let api = apis.use_for(
                "listen.tls",
                raw.workload_api_socket.as_deref(),
                raw.workload_api_timeout_secs,
                p,
            );
            no_files?;
            let api = api?;
            Ok((
                SvidSource::WorkloadApi(api.clone()),
                Some(ClientBundles::WorkloadApi(api)),
            ))
        }
    }
}

fn tls(raw: &RawTls, base: &Path, apis: &mut WorkloadApiSlot, p: &mut Problems) -> Checked<ServerTlsSettings> {
    let (svid, bundles) = material(raw, base, apis, p)?;
    let client_trust = match bundles {
        None => {
            let no_mtls = p.check(
                raw.require_client_cert != Some(true),
                "listen.tls.require_client_cert",
                "client certificates need `client_ca` or `bundles` (the trust bundles for client SVIDs) \
                 or source = \"workload-api\"",
            );
            no_mtls?;
            None
        }
        Some(bundles) => {
            let listed = p.check(
                !raw.trust_domains.is_empty(),
                "listen.tls.trust_domains",
                "list the trust domains whose SVIDs are accepted, e.g. [\"example.org\"]",
            );
            let domains: Checked<Vec<TrustDomain>> = every(
                raw.trust_domains
                    .iter()
                    .map(|name| p.take("listen.tls.trust_domains", TrustDomain::new(name))),
            );
            listed?;
            let domains = domains?;
            let bundle = match bundles {
                ClientBundles::WorkloadApi(api) => Ok(BundleSource::WorkloadApi(api)),
                ClientBundles::Files { client_ca, bundles } => bind_bundles(client_ca, &bundles, &domains, p),
            };
            let svid_policy = p.take("listen.tls.trust_domains", SvidPolicy::new(domains))?;
            Some(ClientTrust {
                bundle: bundle?,
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

/// Binds each bundle file to its trust domain: `bundles` names theirs, and `client_ca` is
/// the bundle of the one trusted trust domain `bundles` does not name (the gateway's own;
/// with a single trust domain, that one). Every trusted trust domain needs a bundle, and a
/// bundle must belong to a trusted trust domain. A file is never shared between trust
/// domains: a CA in it would vouch for all of them (a partner's CA issuing our IDs).
fn bind_bundles(
    client_ca: Option<PathBuf>,
    bundles: &BTreeMap<String, PathBuf>,
    trusted: &[TrustDomain],
    p: &mut Problems,
) -> Checked<BundleSource> {
    let mut files = BTreeMap::new();
    let mut all_ok = Ok(());
    for (name, path) in bundles {
        let key = format!("listen.tls.bundles.\"{name}\"");
        let bound = p.take(&key, TrustDomain::new(name)).and_then(|td| {
            let known = trusted.contains(&td);
            p.check(
                known,
                &key,
                format!("`{td}` is not in trust_domains; add it there to accept its SVIDs, or remove its bundle"),
            )?;
            files.insert(td, path.clone());
            Ok(())
        });
        all_ok = all_ok.and(bound);
    }
    all_ok?;
    let without: Vec<TrustDomain> = trusted.iter().filter(|td| !files.contains_key(*td)).cloned().collect();
    let list = |tds: &[TrustDomain]| tds.iter().map(|td| format!("`{td}`")).collect::<Vec<_>>().join(", ");
    match (client_ca, without.as_slice()) {
        (Some(ca), [own]) => {
            files.insert(own.clone(), ca);
        }
        (Some(_), []) => {
            return Err(p.add(
                "listen.tls.client_ca",
                "every trust domain in trust_domains has its own file in `bundles`, so client_ca would \
                 belong to none; remove it (or the gateway's own trust domain from `bundles`)",
            ));
        }
        (Some(_), several) => {
            return Err(p.add(
                "listen.tls.client_ca",
                format!(
                    "is the bundle of one trust domain, but {} have no bundle of their own; a CA vouches only \
                     for its own trust domain, so give each its own file: bundles = {{ \"<trust domain>\" = \"FILE\", … }}",
                    list(several)
                ),
            ));
        }
        (None, []) => {}
        (None, missing) => {
            return Err(p.add(
                "listen.tls.bundles",
                format!(
                    "trust domain(s) {} have no trust bundle; add `\"<trust domain>\" = \"FILE\"` for each \
                     (client_ca is the bundle of the gateway's own)",
                    list(missing)
                ),
            ));
        }
    }
    Ok(BundleSource::Files(files))
}

fn oauth(raw: &RawOauth, base: &Path, p: &mut Problems) -> Checked<BearerAuth> {
    let url = |p: &mut Problems, key: &str, text: &str| {
        p.take(
            key,
            Url::parse(text).map_err(|e| format!("`{text}` is not an absolute URL: {e}")),
        )
    };
    let issuer = raw
        .issuer
        .as_deref()
        .ok_or_else(|| p.add("listen.oauth.issuer", "set the authorization server's issuer"));
    let resource = match raw.resource.as_deref() {
        Some(text) => url(p, "listen.oauth.resource", text).map(|parsed| (text, parsed)),
        None => Err(p.add(
            "listen.oauth.resource",
            "set this gateway's resource URI (e.g. https://gateway.example.com/mcp); tokens must name it as audience",
        )),
    };
    let jwks = match (&raw.jwks_url, &raw.jwks_file) {
        (Some(u), None) => url(p, "listen.oauth.jwks_url", u).map(JwksSource::url),
        (None, Some(f)) => Ok(JwksSource::File(base.join(f))),
        _ => Err(p.add(
            "listen.oauth",
            "set exactly one of `jwks_url` and `jwks_file` (the issuer's signing keys)",
        )),
    };
    let algorithms: Option<Checked<Vec<SigningAlgorithm>>> = raw.algorithms.as_ref().map(|names| {
        every(names.iter().map(|name| {
            SigningAlgorithm::from_jws(name).ok_or_else(|| {
                p.add(
                    "listen.oauth.algorithms",
                    format!("`{name}` is not an accepted algorithm; use asymmetric ones such as RS256, ES256, EdDSA"),
                )
            })
        }))
    });
    let leeway_ok = p.check(
        raw.leeway_secs.is_none_or(|secs| secs <= 300),
        "listen.oauth.leeway_secs",
        "at most 300 seconds of clock skew",
    );
    // Default: the issuer (already reported when missing).
    let servers = match (&raw.authorization_servers, &issuer) {
        (Some(list), _) => every(
            list.iter()
                .map(|text| url(p, "listen.oauth.authorization_servers", text)),
        ),
        (None, Ok(issuer)) => every([url(p, "listen.oauth.authorization_servers", issuer)]),
        (None, Err(noted)) => Err(*noted),
    };
    let (issuer, (resource_text, resource), jwks) = (issuer?, resource?, jwks?);
    let algorithms = algorithms.transpose()?;
    let authorization_servers = servers?;
    leeway_ok?;
    let mut settings = JwtSettings::new(issuer, resource_text, jwks);
    if let Some(algorithms) = algorithms {
        settings.algorithms = algorithms;
    }
    if let Some(secs) = raw.leeway_secs {
        settings.leeway = Duration::from_secs(secs);
    }
    let validator = p.take("listen.oauth", JwtValidator::new(settings))?;
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
