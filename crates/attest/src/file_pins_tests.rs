//! Tests of the file and directory pins (T19): known answers, stability, and that any
//! change under a pinned directory changes its digest.
use std::path::Path;

use super::*;

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, bytes).unwrap();
}

fn digest(path: &Path) -> String {
    path_digest("x", path).unwrap()
}

/// A small package: files in nested directories and an internal link.
fn package(root: &Path, reverse: bool) {
    let files: &[(&str, &[u8])] = &[
        ("package.json", b"{\"name\":\"pkg\"}"),
        ("lib/index.js", b"module.exports = 1;\n"),
        ("lib/util/a.js", b"a\n"),
        ("lib.js", b"x"),
    ];
    let ordered: Vec<_> = match reverse {
        true => files.iter().rev().collect(),
        false => files.iter().collect(),
    };
    for (rel, body) in ordered {
        write(&root.join(rel), body);
    }
    std::os::unix::fs::symlink("lib/index.js", root.join("main.js")).unwrap();
}

#[test]
fn t19_a_file_digest_is_its_sha256() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.py");
    write(&file, b"hello\n");
    // `printf 'hello\n' | sha256sum`
    assert_eq!(
        digest(&file),
        "sha256:5891b5b522d5df086d0ff0b110fbd9d21bb4fc7163af34d08286a2e846f6be03"
    );
}

#[test]
fn t19_directory_hash_is_stable_and_changes_when_any_file_under_it_changes() {
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    package(a.path(), false);
    package(b.path(), true);
    let pinned = digest(a.path());
    assert!(pinned.starts_with("sha256:") && pinned.len() == 71, "{pinned}");
    // Same content written in another order, at another place: same digest, every time.
    assert_eq!(digest(b.path()), pinned);
    assert_eq!(digest(a.path()), pinned);
    // Permissions and timestamps are not pinned.
    let js = a.path().join("lib/index.js");
    let mut perms = std::fs::metadata(&js).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o700);
    std::fs::set_permissions(&js, perms).unwrap();
    assert_eq!(digest(a.path()), pinned);

    type Change = fn(&Path);
    let changes: &[(&str, Change)] = &[
        ("one byte of a nested file", |r| write(&r.join("lib/util/a.js"), b"b\n")),
        ("a file appended to", |r| write(&r.join("lib.js"), b"xx")),
        ("a new file", |r| write(&r.join("lib/evil.js"), b"")),
        ("a removed file", |r| std::fs::remove_file(r.join("lib.js")).unwrap()),
        ("a renamed file", |r| {
            std::fs::rename(r.join("lib.js"), r.join("lib2.js")).unwrap()
        }),
        ("a new empty directory", |r| {
            std::fs::create_dir(r.join("hooks")).unwrap()
        }),
        ("a link retargeted", |r| {
            std::fs::remove_file(r.join("main.js")).unwrap();
            std::os::unix::fs::symlink("lib/util/a.js", r.join("main.js")).unwrap();
        }),
        ("a link replaced by the file it pointed to", |r| {
            std::fs::remove_file(r.join("main.js")).unwrap();
            write(&r.join("main.js"), b"module.exports = 1;\n");
        }),
    ];
    for (what, change) in changes {
        let dir = tempfile::tempdir().unwrap();
        package(dir.path(), false);
        assert_eq!(digest(dir.path()), pinned, "{what}: before");
        change(dir.path());
        assert_ne!(digest(dir.path()), pinned, "{what} must change the digest");
    }
}

#[test]
fn t19_links_inside_a_directory_are_hashed_as_links_not_followed() {
    let outside = tempfile::tempdir().unwrap();
    let target = outside.path().join("target.js");
    write(&target, b"1");
    let dir = tempfile::tempdir().unwrap();
    write(&dir.path().join("a.js"), b"a");
    std::os::unix::fs::symlink(&target, dir.path().join("link.js")).unwrap();
    // A link to itself's directory would loop if followed.
    std::os::unix::fs::symlink(".", dir.path().join("self")).unwrap();
    let pinned = digest(dir.path());
    write(&target, b"2");
    assert_eq!(digest(dir.path()), pinned, "the link's target outside is not covered");
    // The pinned path itself is followed when it is a link.
    let link = dir.path().join("link.js");
    assert_eq!(
        path_digest("link.js", &link).unwrap(),
        path_digest("t", &target).unwrap()
    );
}

#[test]
fn t19_a_pin_names_the_file_the_pinned_and_the_actual_digest() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("server.py");
    write(&file, b"print('ok')\n");
    let pin = FilePin::new("server.py", file.clone(), &digest(&file)).unwrap();
    pin.check().unwrap();
    FilePins::new([pin.clone()]).check().unwrap();

    write(&file, b"print('ok!')\n");
    let err = pin.check().unwrap_err();
    let message = err.to_string();
    assert!(matches!(&err, FilePinError::Mismatch { actual, .. } if *actual == digest(&file)));
    for part in [
        "`server.py`",
        &pin.digest,
        &digest(&file),
        "refusing to start",
        "pin-files",
    ] {
        assert!(message.contains(part), "`{message}` lacks `{part}`");
    }

    std::fs::remove_file(&file).unwrap();
    let err = FilePins::new([pin]).check().unwrap_err();
    assert!(matches!(err, FilePinError::Unreadable { .. }), "{err}");
    assert!(err.to_string().contains("`server.py`"), "{err}");
}

#[test]
fn malformed_digests_are_refused() {
    let ok = format!("sha256:{}", "a".repeat(64));
    assert!(FilePin::new("f", "f".into(), &ok).is_ok());
    for bad in [
        "a".repeat(64),
        format!("sha256:{}", "A".repeat(64)),
        format!("sha256:{}", "a".repeat(63)),
        format!("sha512:{}", "a".repeat(64)),
        String::new(),
    ] {
        let err = FilePin::new("f", "f".into(), &bad).unwrap_err();
        assert!(err.to_string().contains("sha256:` followed by 64"), "{err}");
    }
}
