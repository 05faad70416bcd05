//! The byte-level half of the strict parser ([`crate::strict`]): whitespace, strings,
//! numbers and the three literals, read straight from the message's bytes.
//!
//! Every message that enters the gateway passes through here, so two things matter.
//! First, it accepts exactly the JSON that `serde_json` accepts and reads it to the
//! same values (RFC 8259's grammar; strings valid UTF-8 without raw control characters
//! and without unpaired surrogate escapes; integers as `u64`/`i64` where they fit and
//! everything else through `serde_json`'s own number reading), so that the gateway and a
//! `serde_json`-based peer never disagree about a message (the fuzz harness checks both
//! directions). Second, it is cheap: a string is scanned sixteen bytes at a time and comes
//! back borrowed from the input unless it has an escape.
use std::borrow::Cow;

use serde_json::{Number, Value};

use crate::{encode::clean_run, strict::ParseError};

/// A cursor over one message's bytes.
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    pos: usize,
    /// Where a string with escapes is decoded; reused across the message's strings.
    scratch: Vec<u8>,
    /// No number so far that `serde_json` would write differently, and no whitespace
    /// but spaces ([`crate::strict::WireText::exact`]).
    exact: bool,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8]) -> Self {
        Self {
            bytes,
            pos: 0,
            scratch: Vec::new(),
            exact: true,
        }
    }

    /// Whether the bytes read so far would be written out again exactly as they are.
    pub(crate) fn exact(&self) -> bool {
        self.exact
    }

    /// The position of the next value, after any whitespace.
    pub(crate) fn value_start(&mut self) -> usize {
        self.peek();
        self.pos
    }

    /// The position just after what has been read.
    pub(crate) fn position(&self) -> usize {
        self.pos
    }

    /// The next byte after any whitespace, not consumed.
    #[inline]
    pub(crate) fn peek(&mut self) -> Option<u8> {
        while let Some(&b) = self.bytes.get(self.pos) {
            match b {
                b' ' => {}
                b'\n' | b'\t' | b'\r' => self.exact = false,
                _ => return Some(b),
            }
            self.pos += 1;
        }
        None
    }

    /// Consumes the byte [`Self::peek`] returned.
    #[inline]
    pub(crate) fn bump(&mut self) {
        self.pos += 1;
    }

    /// Whether only whitespace is left.
    pub(crate) fn at_end(&mut self) -> bool {
        self.peek().is_none()
    }

    /// A syntax error at the current position, with `what` went wrong.
    #[cold]
    pub(crate) fn error(&self, what: &str) -> ParseError {
        self.error_at(self.pos, what)
    }

    /// A syntax error at byte `pos`.
    #[cold]
    fn error_at(&self, pos: usize, what: &str) -> ParseError {
        let before = &self.bytes[..pos.min(self.bytes.len())];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let column = 1 + before.iter().rev().take_while(|&&b| b != b'\n').count();
        ParseError::Syntax(format!("{what} at line {line} column {column}"))
    }

    /// Reads the string whose opening quote was just consumed, through its closing quote.
    pub(crate) fn string(&mut self) -> Result<Cow<'a, str>, ParseError> {
        let bytes = self.bytes;
        let start = self.pos;
        let stop = clean_run(self.bytes, start);
        self.pos = stop;
        match bytes.get(stop) {
            Some(b'"') => {
                self.pos += 1;
                let text = std::str::from_utf8(&bytes[start..stop]).map_err(|e| self.invalid_utf8(start, e))?;
                Ok(Cow::Borrowed(text))
            }
            Some(b'\\') => self.escaped(start).map(Cow::Owned),
            Some(_) => Err(self.error("control character (\\u0000-\\u001F) found while parsing a string")),
            None => Err(self.error("EOF while parsing a string")),
        }
    }

    /// The rest of a string that has escapes, decoded into a new string. `start` is its
    /// first byte; the cursor is on its first backslash.
    fn escaped(&mut self, start: usize) -> Result<String, ParseError> {
        let bytes = self.bytes;
        let mut out = std::mem::take(&mut self.scratch);
        out.clear();
        out.extend_from_slice(&bytes[start..self.pos]);
        let result = loop {
            match bytes.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    break Ok(());
                }
                Some(b'\\') => {
                    self.pos += 1;
                    if let Err(e) = self.escape(&mut out) {
                        break Err(e);
                    }
                }
                Some(_) => break Err(self.error("control character (\\u0000-\\u001F) found while parsing a string")),
                None => break Err(self.error("EOF while parsing a string")),
            }
            let run = clean_run(self.bytes, self.pos);
            out.extend_from_slice(&bytes[self.pos..run]);
            self.pos = run;
        };
        let text = result.and_then(|()| match std::str::from_utf8(&out) {
            Ok(text) => Ok(text.to_owned()),
            Err(_) => Err(self.error("invalid unicode code point")),
        });
        self.scratch = out;
        text
    }

    /// Decodes the escape after a backslash into `out`.
    fn escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let Some(&c) = self.bytes.get(self.pos) else {
            return Err(self.error("EOF while parsing a string"));
        };
        self.pos += 1;
        let byte = match c {
            b'"' => b'"',
            b'\\' => b'\\',
            b'/' => b'/',
            b'b' => 0x08,
            b'f' => 0x0C,
            b'n' => b'\n',
            b'r' => b'\r',
            b't' => b'\t',
            b'u' => return self.unicode_escape(out),
            _ => return Err(self.error("invalid escape")),
        };
        out.push(byte);
        Ok(())
    }

    /// A `\uXXXX` escape (the `\u` consumed), with the second half of a surrogate pair.
    /// An unpaired surrogate is refused, as `serde_json` refuses it in a string.
    fn unicode_escape(&mut self, out: &mut Vec<u8>) -> Result<(), ParseError> {
        let first = self.hex4()?;
        let code = match first {
            0xDC00..=0xDFFF => return Err(self.error("lone leading surrogate in hex escape")),
            0xD800..=0xDBFF => {
                if self.bytes.get(self.pos..self.pos + 2) != Some(b"\\u") {
                    self.pos = (self.pos + 1).min(self.bytes.len());
                    return Err(self.error("unexpected end of hex escape"));
                }
                self.pos += 2;
                let second = self.hex4()?;
                if !(0xDC00..=0xDFFF).contains(&second) {
                    return Err(self.error("lone leading surrogate in hex escape"));
                }
                0x1_0000 + ((u32::from(first) - 0xD800) << 10 | (u32::from(second) - 0xDC00))
            }
            other => u32::from(other),
        };
        let c = char::from_u32(code).ok_or_else(|| self.error("invalid unicode code point"))?;
        out.extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
        Ok(())
    }

    fn hex4(&mut self) -> Result<u16, ParseError> {
        let Some(digits) = self.bytes.get(self.pos..self.pos + 4) else {
            self.pos = self.bytes.len();
            return Err(self.error("EOF while parsing a string"));
        };
        let mut n = 0u16;
        for &d in digits {
            let v = match d {
                b'0'..=b'9' => d - b'0',
                b'a'..=b'f' => d - b'a' + 10,
                b'A'..=b'F' => d - b'A' + 10,
                _ => return Err(self.error("invalid escape")),
            };
            n = n << 4 | u16::from(v);
        }
        self.pos += 4;
        Ok(n)
    }

    #[cold]
    fn invalid_utf8(&self, start: usize, e: std::str::Utf8Error) -> ParseError {
        self.error_at(start + e.valid_up_to(), "invalid unicode code point")
    }

    /// `true`, `false` or `null`; the cursor is on its first letter.
    pub(crate) fn literal(&mut self) -> Result<Value, ParseError> {
        let (word, value): (&[u8], _) = match self.bytes.get(self.pos) {
            Some(b't') => (b"true", Value::Bool(true)),
            Some(b'f') => (b"false", Value::Bool(false)),
            _ => (b"null", Value::Null),
        };
        for &expected in word {
            match self.bytes.get(self.pos) {
                Some(&b) if b == expected => self.pos += 1,
                Some(_) => return Err(self.error("expected ident")),
                None => return Err(self.error("EOF while parsing a value")),
            }
        }
        Ok(value)
    }

    /// A number; the cursor is on its `-` or first digit. Integers that fit `u64` (or,
    /// negative, `i64`) are built here; any other number (fraction, exponent, `-0`, too
    /// many digits) is handed to `serde_json`, whose reading of it is the reference.
    pub(crate) fn number(&mut self) -> Result<Value, ParseError> {
        let bytes = self.bytes;
        let start = self.pos;
        let negative = bytes.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        let digits_start = self.pos;
        match bytes.get(self.pos) {
            Some(b'0') => {
                self.pos += 1;
                if bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
                    return Err(self.error("invalid number"));
                }
            }
            Some(b'1'..=b'9') => self.skip_digits(),
            Some(_) => return Err(self.error("invalid number")),
            None => return Err(self.error("EOF while parsing a value")),
        }
        let digits_end = self.pos;
        let mut integer = true;
        if bytes.get(self.pos) == Some(&b'.') {
            integer = false;
            self.pos += 1;
            self.required_digits()?;
        }
        if matches!(bytes.get(self.pos), Some(b'e' | b'E')) {
            integer = false;
            self.pos += 1;
            if matches!(bytes.get(self.pos), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            self.required_digits()?;
        }
        if integer && let Some(value) = small_integer(&bytes[digits_start..digits_end], negative) {
            return Ok(value);
        }
        self.exact = false;
        match serde_json::from_slice::<Number>(&bytes[start..self.pos]) {
            Ok(n) => Ok(Value::Number(n)),
            Err(e) if e.to_string().contains("out of range") => Err(self.error("number out of range")),
            Err(_) => Err(self.error("invalid number")),
        }
    }

    fn skip_digits(&mut self) {
        while self.bytes.get(self.pos).is_some_and(u8::is_ascii_digit) {
            self.pos += 1;
        }
    }

    /// One or more digits (after `.`, or in an exponent).
    fn required_digits(&mut self) -> Result<(), ParseError> {
        match self.bytes.get(self.pos) {
            Some(b'0'..=b'9') => {
                self.skip_digits();
                Ok(())
            }
            Some(_) => Err(self.error("invalid number")),
            None => Err(self.error("EOF while parsing a value")),
        }
    }
}

/// The integer spelled by `digits` (no sign, no leading zero but a lone `0`), when it is
/// exactly a `u64` (non-negative) or an `i64` (negative, not zero); `None` otherwise.
fn small_integer(digits: &[u8], negative: bool) -> Option<Value> {
    if digits.len() > 20 {
        return None;
    }
    let mut n: u64 = 0;
    for &d in digits {
        n = n.checked_mul(10)?.checked_add(u64::from(d - b'0'))?;
    }
    if !negative {
        return Some(Value::from(n));
    }
    // `-0` is a float to serde_json, and so is anything below `i64::MIN`.
    let magnitude = i64::MIN.unsigned_abs();
    match n {
        0 => None,
        n if n == magnitude => Some(Value::from(i64::MIN)),
        n if n < magnitude => i64::try_from(n).ok().map(|n| Value::from(-n)),
        _ => None,
    }
}
