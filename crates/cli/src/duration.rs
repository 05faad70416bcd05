//! Humane durations on the command line (`90s`, `15m`, `24h`, `1h30m`, `7d`), for TTLs
//! and timeouts given as flags.
use std::time::Duration;

/// Parses one or more `<number><unit>` parts, unit `s`, `m`, `h` or `d`; for clap's
/// `value_parser`. A bare number is refused: `15` is ambiguous between seconds and minutes.
pub fn parse(text: &str) -> Result<Duration, String> {
    let bad = || format!("`{text}` is not a duration; write it like 90s, 15m, 24h or 1h30m");
    let mut total: u64 = 0;
    let mut digits = String::new();
    for c in text.trim().chars() {
        if c.is_ascii_digit() {
            digits.push(c);
            continue;
        }
        let unit = match c {
            's' => 1,
            'm' => 60,
            'h' => 3600,
            'd' => 86_400,
            _ => return Err(bad()),
        };
        let n: u64 = digits.parse().map_err(|_| bad())?;
        digits.clear();
        total = n
            .checked_mul(unit)
            .and_then(|secs| total.checked_add(secs))
            .ok_or_else(|| format!("`{text}` is too long a duration"))?;
    }
    if !digits.is_empty() || text.trim().is_empty() {
        return Err(bad());
    }
    Ok(Duration::from_secs(total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_humane_durations_and_refuses_the_rest() {
        let ok = [
            ("90s", 90),
            ("15m", 900),
            ("24h", 86_400),
            ("1h30m", 5400),
            ("7d", 604_800),
            ("0s", 0),
        ];
        for (text, secs) in ok {
            assert_eq!(parse(text), Ok(Duration::from_secs(secs)), "{text}");
        }
        for text in ["", "15", "m", "1.5h", "10 m", "-5m", "5x", "99999999999999999999d"] {
            assert!(parse(text).is_err(), "{text} should be refused");
        }
    }
}
