//! Offline policy tests (`portcullis policy test FILE`): cases of request and expected outcome.
//!
//! A fixture file is TOML (`[[cases]]` tables) or JSON (`{"cases": [...]}`); each case
//! has a `name`, a `request` in the [`DecisionRequest`] format and `expect = "allow"`
//! or `"deny"`. Cases run through the same fail-closed path as the gateway.
use serde::{Deserialize, Serialize};

use crate::engine::{Engine, decide};
use crate::request::DecisionRequest;

/// The expected outcome of a case.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Expect {
    Allow,
    Deny,
}

/// One test case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FixtureCase {
    pub name: String,
    pub request: DecisionRequest,
    pub expect: Expect,
}

/// A fixture file's contents.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Fixtures {
    pub cases: Vec<FixtureCase>,
}

/// A fixture file that does not parse.
#[derive(Debug, thiserror::Error)]
pub enum FixtureError {
    #[error("fixture file is not valid TOML: {0}; see the `[[cases]]` format in the policy docs")]
    Toml(#[from] toml::de::Error),
    #[error("fixture file is not valid JSON: {0}; expected `{{\"cases\": [...]}}`")]
    Json(#[from] serde_json::Error),
}

impl Fixtures {
    pub fn from_toml(text: &str) -> Result<Self, FixtureError> {
        Ok(toml::from_str(text)?)
    }

    pub fn from_json(text: &str) -> Result<Self, FixtureError> {
        Ok(serde_json::from_str(text)?)
    }
}

/// A case whose outcome differed from its expectation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Mismatch {
    pub name: String,
    pub expected: Expect,
    pub decision_id: String,
    /// Policy ids or deny reasons behind the actual outcome.
    pub reasons: Vec<String>,
    pub errors: Vec<String>,
}

/// The result of running fixtures.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FixtureReport {
    pub passed: usize,
    pub failed: usize,
    pub mismatches: Vec<Mismatch>,
}

impl FixtureReport {
    pub fn all_passed(&self) -> bool {
        self.failed == 0
    }
}

/// Runs every case on `engine`.
pub fn run_fixtures(engine: &dyn Engine, cases: &[FixtureCase]) -> FixtureReport {
    let mut report = FixtureReport {
        passed: 0,
        failed: 0,
        mismatches: Vec::new(),
    };
    for case in cases {
        let decision = decide(engine, &case.request);
        let actual = if decision.allowed { Expect::Allow } else { Expect::Deny };
        if actual == case.expect {
            report.passed += 1;
        } else {
            report.failed += 1;
            report.mismatches.push(Mismatch {
                name: case.name.clone(),
                expected: case.expect,
                decision_id: decision.decision_id,
                reasons: decision.reasons,
                errors: decision.errors,
            });
        }
    }
    report
}
