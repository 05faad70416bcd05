//! The official MCP conformance suite (pinned in tools/peers), run through the
//! gateway: in `server` mode against the gateway in front of our fixture (over
//! stdio and over HTTP), compared with the fixture graded alone; in `client`
//! mode with the gateway between the client and the suite's mock servers.
use std::{collections::BTreeSet, process::Command};

use portcullis_e2e::{
    bin,
    procs::{GatewayProc, start_http_upstream},
    repo_root,
};

/// What one suite run reported: the scored totals and the passing scenarios.
#[derive(Debug)]
struct Score {
    passed: u32,
    failed: u32,
    passing: BTreeSet<String>,
}

fn run(script: &str, args: &[&str]) -> Score {
    let out = Command::new(repo_root().join("tools/peers").join(script))
        .args(args)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} could not run the suite (run tools/peers/install.sh):\n{text}"
    );
    let last = text.lines().last().unwrap_or_default();
    let field = |name: &str| -> u32 {
        let token = last
            .split_whitespace()
            .find_map(|t| t.strip_prefix(&format!("{name}=")))
            .unwrap_or("x");
        token
            .parse()
            .unwrap_or_else(|_| panic!("no {name} in {last:?}:\n{text}"))
    };
    let mut passing = BTreeSet::new();
    let mut revision = String::new();
    for line in text.lines() {
        if let Some(rev) = line
            .strip_prefix("=== conformance ")
            .and_then(|l| l.split_whitespace().last())
        {
            revision = rev.to_owned();
        }
        if let Some(rest) = line.strip_prefix("✓ ") {
            let name = rest.split(':').next().unwrap_or(rest).trim();
            passing.insert(format!("{revision} {name}"));
        }
    }
    Score {
        passed: field("PASSED"),
        failed: field("FAILED"),
        passing,
    }
}

fn server_suite(url: &str) -> Score {
    run("conformance-server.sh", &[url])
}

#[test]
fn server_mode_through_the_gateway_scores_as_the_fixture_alone() {
    let fixture = bin("portcullis-conformance-fixture");
    let alone = start_http_upstream(&fixture, &["--http", "{addr}"]);
    let baseline = server_suite(&alone.url);
    assert_eq!(
        baseline.failed, 0,
        "the fixture alone passes every scored scenario: {baseline:?}"
    );

    let stdio = GatewayProc::start(&format!(
        "[[servers]]\nname = \"fixture\"\ncommand = [\"{}\"]\n",
        fixture.display()
    ));
    let via_stdio = server_suite(&stdio.url);
    drop(stdio);
    let http = GatewayProc::start(&format!("[[servers]]\nname = \"fixture\"\nurl = \"{}\"\n", alone.url));
    let via_http = server_suite(&http.url);

    for (name, got) in [("stdio upstream", &via_stdio), ("HTTP upstream", &via_http)] {
        assert_eq!(
            (got.passed, got.failed),
            (baseline.passed, baseline.failed),
            "{name}: gateway score differs from the fixture's; scenarios lost: {:?}",
            baseline.passing.difference(&got.passing).collect::<Vec<_>>()
        );
    }
    eprintln!(
        "conformance (server mode): fixture alone {}/{}; via stdio {}/{}; via HTTP {}/{}",
        baseline.passed,
        baseline.passed + baseline.failed,
        via_stdio.passed,
        via_stdio.passed + via_stdio.failed,
        via_http.passed,
        via_http.passed + via_http.failed
    );
}

#[test]
fn client_mode_with_the_gateway_in_between() {
    let client = bin("portcullis-conformance-client");
    let portcullis = bin("portcullis");
    let direct = run("conformance-client.sh", &[client.to_str().unwrap(), "all"]);
    let through_cmd = format!(
        "{} {} {}",
        repo_root().join("tools/peers/client-through-gateway.sh").display(),
        portcullis.display(),
        client.display()
    );
    let through = run("conformance-client.sh", &[&through_cmd, "all"]);
    let lost: Vec<&String> = direct.passing.difference(&through.passing).collect();
    assert!(
        lost.is_empty(),
        "client scenarios that pass directly but fail through the gateway: {lost:?}"
    );
    assert_eq!(
        (through.passed, through.failed),
        (direct.passed, direct.failed),
        "same score both ways"
    );
    eprintln!(
        "conformance (client mode): direct {}/{}; through the gateway {}/{}",
        direct.passed,
        direct.passed + direct.failed,
        through.passed,
        through.passed + through.failed
    );
}
