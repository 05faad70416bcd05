//! The `secret` source: a static secret for servers that can take nothing better, read
//! from a file at every mint — a rotated file is picked up without a restart, and a
//! missing or empty one denies the call — or a variable of the gateway's environment
//! (read by the CLI at load). It is still delivered
//! only to the calls its rule names.
use portcullis_core::Secret;

use super::{Minted, grant_id};
use crate::config::{SecretConfig, SecretFrom};
use crate::error::BrokerError;
use crate::rule::valid_env_var;

pub(crate) struct StaticSecret {
    name: String,
    from: SecretFrom,
}

impl StaticSecret {
    pub fn new(name: String, config: SecretConfig) -> Result<Self, BrokerError> {
        let subject = format!("source `{name}`");
        match &config.from {
            SecretFrom::File(path) if path.as_os_str().is_empty() => {
                return Err(BrokerError::config(
                    subject,
                    "file",
                    "name the file that holds the secret",
                ));
            }
            SecretFrom::Env { var, .. } if !valid_env_var(var) => {
                return Err(BrokerError::config(
                    subject,
                    "env",
                    format!("`{var}` is not a valid environment variable name; use letters, digits and `_`"),
                ));
            }
            _ => {}
        }
        Ok(Self {
            name,
            from: config.from,
        })
    }

    pub fn scope(&self) -> String {
        match &self.from {
            SecretFrom::File(path) => format!("static secret from file `{}`", path.display()),
            SecretFrom::Env { var, .. } => format!("static secret from environment variable `{var}`"),
        }
    }

    pub async fn mint(&self) -> Result<Minted, BrokerError> {
        let value = match &self.from {
            SecretFrom::File(path) => tokio::fs::read_to_string(path).await.map_err(|e| {
                BrokerError::unavailable(
                    &self.name,
                    format!("cannot read the secret file `{}` ({e}); restore it", path.display()),
                )
            })?,
            SecretFrom::Env { value, .. } => value.expose().clone(),
        };
        let value = value.trim_end_matches(['\n', '\r']);
        if value.is_empty() {
            return Err(BrokerError::unavailable(
                &self.name,
                "the secret is empty; put the secret in its file or variable",
            ));
        }
        Ok(Minted {
            grant_id: grant_id(),
            secret: Secret::new(value.to_owned()),
            // A static secret does not expire (0, see `Lease::expires_at`).
            expires_at: 0,
            owned: None,
        })
    }
}
