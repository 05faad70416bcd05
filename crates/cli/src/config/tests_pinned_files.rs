//! `pinned_files` in the config (T19): paths resolve against the server's `cwd`, else the
//! config's directory; digests must have the `sha256:` form; HTTP servers take none.
use std::path::{Path, PathBuf};

use super::parse;

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn pins(text: &str) -> Vec<(String, PathBuf, String)> {
    let loaded = parse(text, "t.toml", Path::new("/etc/pc")).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let server = &loaded.gateway.servers[0];
    server
        .pinned_files
        .iter()
        .map(|p| (p.shown.clone(), p.path.clone(), p.digest.clone()))
        .collect()
}

#[test]
fn t19_pinned_file_paths_resolve_against_cwd_else_the_config_dir() {
    let entry = |extra: &str| {
        format!(
            "[[servers]]\nname = \"py\"\ncommand = [\"/bin/sh\", \"server.py\"]\n{extra}pinned_files = {{ \"server.py\" = \"{}\", \"/opt/lock.txt\" = \"{}\" }}\n",
            digest('a'),
            digest('b')
        )
    };
    assert_eq!(
        pins(&entry("")),
        vec![
            ("/opt/lock.txt".into(), "/opt/lock.txt".into(), digest('b')),
            ("server.py".into(), "/etc/pc/server.py".into(), digest('a')),
        ]
    );
    assert_eq!(
        pins(&entry("cwd = \"srv\"\n"))[1].1,
        PathBuf::from("/etc/pc/srv/server.py")
    );
    let none = pins("[[servers]]\nname = \"py\"\ncommand = [\"/bin/sh\"]\n");
    assert!(none.is_empty());
}

#[test]
fn t19_pinned_files_config_errors_name_key_and_reason() {
    let cases = [
        (
            "[[servers]]\nname = \"py\"\ncommand = [\"/bin/sh\"]\npinned_files = { \"server.py\" = \"abc\" }\n"
                .to_owned(),
            "servers[0].pinned_files.\"server.py\"",
            "`sha256:` followed by 64 lowercase hex digits",
        ),
        (
            format!(
                "[[servers]]\nname = \"py\"\ncommand = [\"/bin/sh\"]\npinned_files = {{ \"\" = \"{}\" }}\n",
                digest('a')
            ),
            "servers[0].pinned_files.\"\"",
            "the path is empty",
        ),
        (
            format!(
                "[[servers]]\nname = \"web\"\nurl = \"https://example.org/mcp\"\npinned_files = {{ \"a\" = \"{}\" }}\n",
                digest('a')
            ),
            "servers[0].pinned_files",
            "only stdio servers",
        ),
    ];
    for (text, key, reason) in cases {
        let e = parse(&text, "bad.toml", Path::new("/")).expect_err(&text);
        assert_eq!(e.key, key, "{e}\nfor:\n{text}");
        assert!(
            e.reason.contains(reason),
            "reason {:?} should contain {reason:?}",
            e.reason
        );
    }
}
