//! The licence the workspace declares is the one in the repository: `Cargo.toml` says
//! `license = "Apache-2.0"`, so `LICENSE` holds the Apache License 2.0, unaltered (its
//! SHA-256 is the digest of the text as the Apache Software Foundation publishes it).

/// SHA-256 of the Apache License 2.0 text (`LICENSE-2.0.txt`).
const APACHE_2_0_SHA256: &str = "cfc7749b96f63bd31c3c42b5c471bf756814053e847c10f3eb003417bc523d30";

#[test]
fn license_file_is_the_declared_apache_2_0_text() {
    let root = portcullis_e2e::repo_root();
    let manifest = std::fs::read_to_string(root.join("Cargo.toml")).expect("workspace Cargo.toml");
    assert!(
        manifest.contains("license = \"Apache-2.0\""),
        "the workspace declares Apache-2.0"
    );
    let text = std::fs::read(root.join("LICENSE")).expect("a LICENSE file at the repository root");
    assert!(
        String::from_utf8_lossy(&text).contains("Apache License\n                           Version 2.0, January 2004"),
        "LICENSE is the Apache License 2.0"
    );
    assert_eq!(
        portcullis_audit::Sha256Hex::of(&text).to_string(),
        APACHE_2_0_SHA256,
        "LICENSE is the Apache License 2.0 text, unaltered"
    );
}
