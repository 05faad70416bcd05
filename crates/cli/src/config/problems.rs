//! Config errors, collected: validation notes each problem it finds in [`Problems`] and
//! goes on, so one run of `portcullis check-config` lists every problem of a file, each
//! with its key path (`servers[2].url`) and what to do. A part that cannot be built
//! yields [`Noted`] (only [`Problems`] makes one, so a failed part always has its problem
//! on the list); parts that depend on it are then skipped rather than reported again.
use std::fmt::{self, Display};

/// One thing wrong in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The key path, such as `servers[2].url`, or `line L, column C` for a TOML error.
    pub key: String,
    /// What is wrong and what to do about it.
    pub reason: String,
}

/// A config file that cannot be used: every problem found in it, in the order checked.
/// The first problem's key and reason are fields of their own (what a caller that shows
/// one line wants); the rest are in `more`.
#[derive(Debug)]
pub struct ConfigError {
    pub file: String,
    pub key: String,
    pub reason: String,
    /// The further problems, if any.
    pub more: Vec<Problem>,
}

impl ConfigError {
    /// A config error with a single problem.
    pub fn one(file: impl Into<String>, key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            file: file.into(),
            key: key.into(),
            reason: reason.into(),
            more: Vec::new(),
        }
    }

    /// Every problem, the first included, as (key, reason).
    pub fn problems(&self) -> impl Iterator<Item = (&str, &str)> {
        let first = std::iter::once((self.key.as_str(), self.reason.as_str()));
        first.chain(self.more.iter().map(|p| (p.key.as_str(), p.reason.as_str())))
    }
}

/// One problem: `FILE: KEY: REASON`. Several: a count, then one numbered
/// `FILE: KEY: REASON` line each (every line stands alone, for grep and editors).
impl Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = &self.file;
        if self.more.is_empty() {
            // A problem of the file as a whole ("-": it cannot be read) has no key to name.
            if self.key == "-" {
                return write!(f, "{file}: {}", self.reason);
            }
            return write!(f, "{file}: {}: {}", self.key, self.reason);
        }
        write!(
            f,
            "{file}: {} problems; fix them all, then check again with `portcullis check-config`:",
            self.more.len() + 1
        )?;
        for (n, (key, reason)) in self.problems().enumerate() {
            write!(f, "\n  {}. {file}: {key}: {reason}", n + 1)?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

/// Proof that a problem is on the [`Problems`] list: the part it concerns has no value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Noted(());

/// A validated part, or [`Noted`] when it had problems (already on the list).
pub type Checked<T> = Result<T, Noted>;

/// The problems found so far in one config file.
#[derive(Debug, Default)]
pub struct Problems(Vec<Problem>);

impl Problems {
    /// Notes a problem at `key`.
    pub fn add(&mut self, key: impl Into<String>, reason: impl Into<String>) -> Noted {
        self.0.push(Problem {
            key: key.into(),
            reason: reason.into(),
        });
        Noted(())
    }

    /// `result`'s value, or its error noted at `key`.
    pub fn take<T, E: Display>(&mut self, key: impl Into<String>, result: Result<T, E>) -> Checked<T> {
        result.map_err(|e| self.add(key, e.to_string()))
    }

    /// Notes `reason` at `key` unless `holds`.
    pub fn check(&mut self, holds: bool, key: impl Into<String>, reason: impl Into<String>) -> Checked<()> {
        if holds { Ok(()) } else { Err(self.add(key, reason)) }
    }

    /// The validated config, or every problem noted, as one error for `file`.
    pub fn finish<T>(self, file: &str, checked: Checked<T>) -> Result<T, ConfigError> {
        let mut problems = self.0.into_iter();
        match (checked, problems.next()) {
            (Ok(value), None) => Ok(value),
            (_, Some(first)) => Err(ConfigError {
                file: file.to_owned(),
                key: first.key,
                reason: first.reason,
                more: problems.collect(),
            }),
            // Unreachable: a `Noted` is only made by noting a problem. Fail closed anyway.
            (Err(Noted(())), None) => Err(ConfigError::one(file, "-", "is not valid (no problem was recorded)")),
        }
    }
}

/// Every item's value, or [`Noted`] if any had problems. All items are evaluated first,
/// so each notes its own problems (a plain `collect` would stop at the first).
pub fn every<T, C: FromIterator<T>>(items: impl IntoIterator<Item = Checked<T>>) -> Checked<C> {
    let items: Vec<Checked<T>> = items.into_iter().collect();
    items.into_iter().collect()
}
