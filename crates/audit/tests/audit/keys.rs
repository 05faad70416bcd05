//! Log keys: key ids, key files (private 0600), checkpoint signatures.

use std::os::unix::fs::PermissionsExt;

use portcullis_audit::keys::KeyError;
use portcullis_audit::{Checkpoint, LogPublicKey, LogSigner, SignedCheckpoint, checkpoint::SignatureError, leaf_hash};
use sha2::{Digest, Sha256};

use crate::support::{other_signer, signer, trusted};

#[test]
fn key_id_is_first_8_bytes_of_sha256_of_public_key() {
    let s = signer();
    let want = hex::encode(&Sha256::digest(s.public_key().to_bytes())[..8]);
    assert_eq!(s.key_id().as_str(), want);
    assert_eq!(s.key_id().as_str().len(), 16);
    assert_ne!(s.key_id(), other_signer().key_id());
}

#[test]
fn key_files_round_trip_with_private_mode_0600() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (private, public) = (dir.path().join("log.key"), dir.path().join("log.pub"));
    let s = LogSigner::generate().expect("generate");
    s.save(&private).expect("save private");
    s.public_key().save(&public).expect("save public");
    let mode = std::fs::metadata(&private).expect("meta").permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let loaded = LogSigner::load(&private).expect("load private");
    assert_eq!(loaded.key_id(), s.key_id());
    assert_eq!(LogPublicKey::load(&public).expect("load public"), s.public_key());
    assert!(
        format!("{loaded:?}").contains("redacted"),
        "Debug must not print the key"
    );
    // Never overwrite a key.
    assert!(matches!(s.save(&private), Err(KeyError::Io { .. })));
}

#[test]
fn loading_refuses_open_permissions_and_mismatched_key_ids() {
    let dir = tempfile::tempdir().expect("tempdir");
    let private = dir.path().join("log.key");
    signer().save(&private).expect("save");
    std::fs::set_permissions(&private, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    assert!(matches!(
        LogSigner::load(&private),
        Err(KeyError::TooOpen { mode: 0o644, .. })
    ));

    let public = dir.path().join("log.pub");
    signer().public_key().save(&public).expect("save public");
    let text = std::fs::read_to_string(&public).expect("read");
    let edited = text.replace(signer().key_id().as_str(), "0000000000000000");
    std::fs::write(&public, edited).expect("write");
    assert!(matches!(
        LogPublicKey::load(&public),
        Err(KeyError::KeyIdMismatch { .. })
    ));
}

#[test]
fn checkpoint_signatures_bind_size_root_and_time() {
    let s = signer();
    let cp = Checkpoint {
        size: 42,
        root: leaf_hash(b"x"),
        time_ms: 1_770_000_000_000,
    };
    let signed = SignedCheckpoint::sign(cp, &s);
    let keys = trusted(&[&s]);
    assert_eq!(signed.verify(&keys), Ok(()));
    assert_eq!(SignedCheckpoint::from_json(&signed.to_json()).expect("parse"), signed);
    for altered in [
        Checkpoint { size: 43, ..cp },
        Checkpoint {
            root: leaf_hash(b"y"),
            ..cp
        },
        Checkpoint {
            time_ms: cp.time_ms + 1,
            ..cp
        },
    ] {
        let forged = SignedCheckpoint {
            checkpoint: altered,
            ..signed.clone()
        };
        assert_eq!(forged.verify(&keys), Err(SignatureError::Invalid(s.key_id().clone())));
    }
    let unknown = SignedCheckpoint::sign(cp, &other_signer());
    assert!(matches!(unknown.verify(&keys), Err(SignatureError::UnknownKey(_))));
    let note = String::from_utf8(cp.note()).expect("utf8");
    assert!(note.starts_with("portcullis-audit/v1\n42\n"), "{note}");
}
