//! The time of a call, as the policies see it: unix seconds, written as RFC 3339.
//!
//! The gateway stamps each request when it is received; fixtures may give the
//! time as an RFC 3339 string (`"2026-05-01T09:30:00Z"`) or as unix seconds.
use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

/// A point in time with one-second resolution (UTC).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// A time that is neither RFC 3339 nor representable.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("time `{0}` is not an RFC 3339 timestamp; write it like `2026-05-01T09:30:00Z` or give unix seconds")]
pub struct TimestampError(pub String);

impl Timestamp {
    /// From seconds since the unix epoch.
    pub const fn from_unix(seconds: i64) -> Self {
        Self(seconds)
    }

    /// The current wall-clock time.
    pub fn now() -> Self {
        let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        // A clock before 1970 is a broken clock; 0 makes time-based permits fail.
        Self(
            since
                .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
                .unwrap_or(0),
        )
    }

    /// Parses an RFC 3339 timestamp (any offset; kept as UTC).
    pub fn parse_rfc3339(text: &str) -> Result<Self, TimestampError> {
        chrono::DateTime::parse_from_rfc3339(text)
            .map(|t| Self(t.timestamp()))
            .map_err(|_| TimestampError(text.to_owned()))
    }

    /// Seconds since the unix epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// RFC 3339 in UTC, e.g. `2026-05-01T09:30:00Z`; unix seconds if out of chrono's range.
    pub fn rfc3339(self) -> String {
        match chrono::DateTime::from_timestamp(self.0, 0) {
            Some(t) => t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            None => self.0.to_string(),
        }
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.rfc3339())
    }
}

impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.rfc3339())
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl de::Visitor<'_> for Visitor {
            type Value = Timestamp;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an RFC 3339 timestamp string or unix seconds")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Timestamp, E> {
                Ok(Timestamp(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Timestamp, E> {
                i64::try_from(v)
                    .map(Timestamp)
                    .map_err(|_| E::custom(format!("unix time `{v}` is too large")))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Timestamp, E> {
                Timestamp::parse_rfc3339(v).map_err(E::custom)
            }
        }
        deserializer.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_rfc3339_and_unix_seconds_and_writes_rfc3339() {
        let a: Timestamp = serde_json::from_str("\"2026-05-01T11:30:00+02:00\"").unwrap();
        let b: Timestamp = serde_json::from_str("1777627800").unwrap();
        assert_eq!(a, b);
        assert_eq!(serde_json::to_string(&a).unwrap(), "\"2026-05-01T09:30:00Z\"");
        assert!(serde_json::from_str::<Timestamp>("\"yesterday\"").is_err());
    }
}
