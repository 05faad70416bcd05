//! Object keys compared the way case-insensitive decoders compare them (T22).
//!
//! Go's `encoding/json` matches an object key to a struct field when the two are equal
//! under Unicode simple case folding (`unicode.SimpleFold` orbits, so `ſ` matches `s` and
//! the Kelvin sign `K` matches `k`), and the last matching key wins. A message whose
//! keys are distinct to us but equal to such a decoder means two things at once. The
//! strict parser therefore refuses an object with two keys that fold equal; this module
//! says what "fold equal" is and keeps, per object, what it needs to tell.
//!
//! The fold is Unicode full case folding (CaseFolding.txt, statuses C and F, via
//! `unicase`): it identifies every pair that simple folding does — checked against Go's
//! own orbit table in `tests/t22` — and a few more (`ß` and `ss`), which only refuses more.
use std::collections::HashSet;

use unicase::UniCase;

/// Whether `key` may fold to something other than itself: it has an ASCII capital or a
/// non-ASCII character. Every other key (lowercase ASCII letters, digits, punctuation,
/// `_meta`) is its own fold, which keeps the common case free of work.
#[inline]
pub(crate) fn needs_fold(key: &str) -> bool {
    key.bytes().any(|b| b.is_ascii_uppercase() || !b.is_ascii())
}

/// The folded form of `key`: equal for two keys exactly when they match case-insensitively.
pub(crate) fn fold(key: &str) -> String {
    let mut out = String::new();
    fold_into(key, &mut out);
    out
}

/// Appends the folded form of `key` to `out`.
fn fold_into(key: &str, out: &mut String) {
    if key.is_ascii() {
        // ASCII folds only to ASCII (`k` and `s` are the targets of `K` and `ſ`, not sources).
        let start = out.len();
        out.push_str(key);
        out[start..].make_ascii_lowercase();
    } else {
        out.push_str(&UniCase::unicode(key).to_folded_case());
    }
}

/// Whether two keys fold equal (for error reports, off the hot path).
pub(crate) fn fold_eq(a: &str, b: &str) -> bool {
    UniCase::unicode(a) == UniCase::unicode(b)
}

/// The folded forms of the keys of one object that needed folding. Nothing is allocated
/// until such a key appears; keys that are their own fold are looked up in the object
/// itself. The first [`FoldedKeys::SCAN`] folds sit back to back in one string and are
/// scanned (cheaper than hashing short keys); past that they move to a hash set, so an
/// object with very many such keys costs no quadratic time.
#[derive(Default)]
pub(crate) struct FoldedKeys {
    /// The folds, back to back; with `many`, only the fold being checked.
    text: String,
    /// Where each fold in `text` ends.
    ends: Vec<usize>,
    many: Option<HashSet<String>>,
}

/// What a new key's check found.
pub(crate) enum Seen<'a> {
    /// No earlier key folds like this one; `folded` is its fold when it needed one.
    New { folded: Option<&'a str> },
    /// An earlier key of the same object folds like this one (or is this one). The
    /// object is refused, and the list is not to be used again.
    Clash,
}

impl FoldedKeys {
    const SCAN: usize = 16;

    /// Checks `key` against the earlier keys of its object, whose exact spellings
    /// `earlier` answers for, and remembers its fold.
    #[inline]
    pub(crate) fn check(&mut self, key: &str, earlier: impl Fn(&str) -> bool) -> Seen<'_> {
        if !needs_fold(key) {
            // Nothing to compare with (the common case) unless a folded key came before.
            return if self.contains(key, self.text.len()) {
                Seen::Clash
            } else {
                Seen::New { folded: None }
            };
        }
        if self.many.is_none() && self.ends.len() == Self::SCAN {
            self.spill();
        }
        if self.many.is_some() {
            self.text.clear();
        } else if self.ends.is_empty() {
            // One allocation each for the usual handful of camelCase keys.
            self.text.reserve(8 * Self::SCAN);
            self.ends.reserve(Self::SCAN);
        }
        let start = self.text.len();
        fold_into(key, &mut self.text);
        let folded = &self.text[start..];
        if earlier(folded) || self.contains(folded, start) {
            return Seen::Clash;
        }
        match &mut self.many {
            Some(set) => {
                set.insert(folded.to_owned());
            }
            None => self.ends.push(self.text.len()),
        }
        Seen::New {
            folded: Some(&self.text[start..]),
        }
    }

    /// Whether a fold recorded before `end` (in `text`) or in the set is `folded`.
    fn contains(&self, folded: &str, end: usize) -> bool {
        if let Some(set) = &self.many {
            return set.contains(folded);
        }
        let (text, folded) = (self.text.as_bytes(), folded.as_bytes());
        let mut start = 0;
        self.ends.iter().take_while(|&&e| e <= end).any(|&e| {
            let seen = text.get(start..e);
            start = e;
            seen == Some(folded)
        })
    }

    fn spill(&mut self) {
        let mut start = 0;
        let mut set = HashSet::with_capacity(2 * Self::SCAN);
        for &end in &self.ends {
            set.insert(self.text[start..end].to_owned());
            start = end;
        }
        self.ends.clear();
        self.many = Some(set);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folds_that_go_makes() {
        let cases = [
            ("Name", "name"),
            ("argumentſ", "arguments"),
            ("\u{212A}ey", "key"),
            ("ARGUMENTS", "arguments"),
            ("\u{1C5}", "\u{1C6}"),
            ("\u{1E9E}", "\u{DF}"),
        ];
        for (a, b) in cases {
            assert!(fold_eq(a, b), "{a} ~ {b}");
            assert_eq!(fold(a), fold(b), "{a} ~ {b}");
        }
        assert!(!fold_eq("name", "nаme"), "a Cyrillic а is another letter");
        assert!(!needs_fold("_meta") && !needs_fold("io.portcullis/reason-2"));
        assert!(needs_fold("maxResults") && needs_fold("straße"));
    }

    #[test]
    fn many_folded_keys_move_to_a_set_and_are_still_found() {
        let mut folds = FoldedKeys::default();
        for i in 0..40 {
            let key = format!("Key{i}");
            let want = key.to_lowercase();
            assert!(matches!(folds.check(&key, |_| false), Seen::New { folded: Some(f) } if f == want));
        }
        assert!(folds.many.is_some() && folds.ends.is_empty());
        for key in ["key3", "KEY39", "kEy20"] {
            assert!(matches!(folds.check(key, |_| false), Seen::Clash), "{key}");
        }
        assert!(matches!(folds.check("key40", |_| false), Seen::New { folded: None }));
    }

    #[test]
    fn a_plain_key_is_its_own_fold() {
        for key in ["name", "_meta", "a-b.c/d:1", "", "io.modelcontextprotocol/related-task"] {
            assert_eq!(fold(key), key);
        }
    }
}
