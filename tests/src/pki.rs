//! A development PKI for identity tests, made with the real `portcullis ca` commands:
//! one trust domain's CA and the SVIDs issued from it, all in one temp dir.
use std::{
    path::{Path, PathBuf},
    process::Command,
};

use crate::bin;

/// The dev CA of `example.org` in a temp dir.
pub struct DevPki {
    pub dir: tempfile::TempDir,
}

/// An issued SVID: certificate chain and private key files.
#[derive(Debug, Clone)]
pub struct SvidFiles {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl DevPki {
    /// `portcullis ca init --trust-domain example.org` into a new temp dir.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let pki = Self { dir };
        let ca_dir = pki.ca_dir();
        portcullis(&[
            "ca",
            "init",
            "--trust-domain",
            "example.org",
            "--dir",
            path_str(&ca_dir),
        ]);
        pki
    }

    pub fn ca_dir(&self) -> PathBuf {
        self.dir.path().join("ca")
    }

    /// The trust bundle (the CA certificate).
    pub fn bundle(&self) -> PathBuf {
        self.ca_dir().join("ca.pem")
    }

    /// `portcullis ca issue` for `spiffe_id` (15 minutes), written as `<name>.pem`/`.key`;
    /// `server_names` become DNS/IP SANs.
    pub fn issue(&self, name: &str, spiffe_id: &str, server_names: &[&str]) -> SvidFiles {
        let out = self.dir.path().join(name);
        let ca_dir = self.ca_dir();
        let mut args = vec![
            "ca",
            "issue",
            "--dir",
            path_str(&ca_dir),
            "--spiffe-id",
            spiffe_id,
            "--ttl",
            "15m",
            "--out",
            path_str(&out),
        ];
        for n in server_names {
            args.extend(["--server-name", n]);
        }
        portcullis(&args);
        SvidFiles {
            cert: out.with_extension("pem"),
            key: out.with_extension("key"),
        }
    }
}

impl Default for DevPki {
    fn default() -> Self {
        Self::new()
    }
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn portcullis(args: &[&str]) {
    let out = Command::new(bin("portcullis"))
        .args(args)
        .output()
        .expect("run portcullis");
    assert!(
        out.status.success(),
        "portcullis {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}
