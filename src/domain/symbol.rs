//! Instrument symbols as IB spells them, validated once and encoded for folder names.

use crate::error::{Error, Result};
use std::fmt;
use std::str::FromStr;

/// Characters a symbol may contain besides ASCII letters and digits.
const SYMBOL_EXTRA: &str = " .-_+&";
/// Longest accepted symbol (IB's longest local symbols for options are 21 characters).
pub const MAX_SYMBOL_LEN: usize = 32;

/// A validated instrument symbol (the underlying's, for options).
///
/// Folder names percent-encode everything but `A-Z`, `0-9`, `-` and `_`, so `BRK B` is
/// `symbol=BRK%20B` and `BF.B` is `symbol=BF%2EB`: every reader that decodes hive values gets the
/// symbol back, no encoded name contains `/` or `..`, and `spy` cannot collide with `SPY` on a
/// case-insensitive file system.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol(String);

impl Symbol {
    /// Validates `s` as a symbol; the error names the input and the allowed characters.
    pub fn new(s: &str) -> Result<Self> {
        let refuse = |reason: String| Err(Error::bad_input("symbol", s, reason));
        if s.is_empty() {
            return refuse("a symbol cannot be empty".into());
        }
        if s.len() > MAX_SYMBOL_LEN {
            return refuse(format!("longer than {MAX_SYMBOL_LEN} characters"));
        }
        if let Some(c) = s.chars().find(|c| !c.is_ascii_alphanumeric() && !SYMBOL_EXTRA.contains(*c)) {
            return refuse(format!(
                "character {c:?} is not allowed; use ASCII letters, digits and {SYMBOL_EXTRA:?} (IB's spelling, e.g. \"BRK B\")"
            ));
        }
        if s.starts_with(' ') || s.ends_with(' ') {
            return refuse("leading or trailing space; trim it".into());
        }
        if !s.chars().any(|c| c.is_ascii_alphanumeric()) {
            return refuse("a symbol needs at least one letter or digit".into());
        }
        Ok(Symbol(s.to_string()))
    }

    /// The symbol as IB spells it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The folder-safe encoding used in `symbol=<…>`.
    pub fn encoded(&self) -> String {
        let mut out = String::with_capacity(self.0.len() * 3);
        for b in self.0.bytes() {
            if b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'-' || b == b'_' {
                out.push(b as char);
            } else {
                out.push_str(&format!("%{b:02X}"));
            }
        }
        out
    }

    /// Decodes a folder value written by [`Symbol::encoded`] (or by hand, unencoded).
    pub fn decode(encoded: &str) -> Result<Self> {
        let bad = || Error::bad_input("symbol folder", encoded, "not a percent-encoded symbol");
        let bytes = encoded.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'%' {
                let hex = encoded.get(i + 1..i + 3).ok_or_else(bad)?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            } else {
                out.push(bytes[i]);
                i += 1;
            }
        }
        Symbol::new(&String::from_utf8(out).map_err(|_| bad())?)
    }
}

impl fmt::Display for Symbol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl FromStr for Symbol {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Symbol::new(s)
    }
}

impl serde::Serialize for Symbol {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(&self.0)
    }
}

impl<'de> serde::Deserialize<'de> for Symbol {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        Symbol::new(&<String as serde::Deserialize>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_symbols_are_refused_with_the_input_named() {
        for bad in ["", "../x", "a/b", "..", "a\\b", "x\ny", "tab\t", " SPY", "SPY ", "é", "a%2Fb", &"X".repeat(33)] {
            let err = Symbol::new(bad).unwrap_err().to_string();
            assert!(err.contains("symbol"), "{err}");
            assert!(err.contains(&format!("{bad:?}")), "error names the input: {err}");
        }
    }

    #[test]
    fn symbols_round_trip_through_folder_names() {
        for ok in ["SPY", "BRK B", "BF.B", "spy", "A-B_C", "M&M", "X+Y", "1"] {
            let s = Symbol::new(ok).unwrap();
            let enc = s.encoded();
            assert!(!enc.contains('/') && !enc.contains('.') && !enc.contains(' '), "{enc}");
            assert_eq!(Symbol::decode(&enc).unwrap(), s);
        }
        assert_ne!(Symbol::new("spy").unwrap().encoded().to_uppercase(), "SPY");
        assert_eq!(Symbol::new("BRK B").unwrap().encoded(), "BRK%20B");
    }
}
