//! What kind of instrument a contract is, and which side an option is.

use crate::error::{Error, Result};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;
use std::str::FromStr;

/// Stock or option: the security types twslake asks IB about (a row built from defaults is a
/// stock's).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum SecType {
    /// A stock or ETF (`STK`).
    #[default]
    Stock,
    /// An equity option (`OPT`).
    Option,
}

impl SecType {
    /// IB's spelling.
    pub fn ib(self) -> &'static str {
        match self {
            SecType::Stock => "STK",
            SecType::Option => "OPT",
        }
    }
}

impl fmt::Display for SecType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.ib())
    }
}

impl FromStr for SecType {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.trim() {
            "STK" => Ok(SecType::Stock),
            "OPT" => Ok(SecType::Option),
            _ => Err(Error::bad_input("security type", s, "use STK or OPT")),
        }
    }
}

impl Serialize for SecType {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.ib())
    }
}

impl<'de> Deserialize<'de> for SecType {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

/// Call or put.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Right {
    /// A call.
    Call,
    /// A put.
    Put,
}

impl Right {
    /// `C` or `P`: how the lake stores it.
    pub fn letter(self) -> &'static str {
        match self {
            Right::Call => "C",
            Right::Put => "P",
        }
    }

    /// Reads IB's spellings (`C`, `CALL`, `P`, `PUT`, any case).
    pub fn parse(s: &str) -> Option<Right> {
        match s.trim().to_ascii_uppercase().as_str() {
            "C" | "CALL" => Some(Right::Call),
            "P" | "PUT" => Some(Right::Put),
            _ => None,
        }
    }

    /// True for a call.
    pub fn is_call(self) -> bool {
        self == Right::Call
    }
}

impl fmt::Display for Right {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.letter())
    }
}

impl FromStr for Right {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Right::parse(s).ok_or_else(|| Error::bad_input("option right", s, "use C or P (CALL or PUT)"))
    }
}

impl Serialize for Right {
    fn serialize<S: Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.letter())
    }
}

impl<'de> Deserialize<'de> for Right {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_round_trip() {
        for t in [SecType::Stock, SecType::Option] {
            assert_eq!(t.ib().parse::<SecType>().unwrap(), t);
            assert_eq!(serde_json::to_string(&t).unwrap(), format!("\"{}\"", t.ib()));
        }
        assert!("FUT".parse::<SecType>().unwrap_err().to_string().contains("\"FUT\""));
        for (s, r) in [("C", Right::Call), ("call", Right::Call), ("P", Right::Put), ("PUT", Right::Put)] {
            assert_eq!(s.parse::<Right>().unwrap(), r);
        }
        assert_eq!(serde_json::from_str::<Right>("\"P\"").unwrap(), Right::Put);
        assert!("X".parse::<Right>().is_err());
    }
}

/// When an option may be exercised: American contracts any day up to expiry, European ones only at
/// expiry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub enum ExerciseStyle {
    /// Exercisable on any day up to expiry (US equity and ETF options).
    #[default]
    American,
    /// Exercisable at expiry only (cash-settled index options).
    European,
}

/// The option classes (trading classes) of US index options, all European-style by their
/// exchanges' rules (Cboe: SPX, SPXW, XSP, RUT, RUTW, VIX, VIXW, NDX, NDXP, DJX, OEX is the one
/// American index class). Every other US equity or ETF option class is American.
const EUROPEAN_CLASSES: &[&str] = &[
    "SPX", "SPXW", "SPXPM", "XSP", "RUT", "RUTW", "MRUT", "NDX", "NDXP", "XND", "VIX", "VIXW", "DJX", "XEO", "MXEA",
    "MXEF",
];

impl ExerciseStyle {
    /// The style of an option of `trading_class` (IB's trading class, e.g. `SPXW`, `SPY`).
    pub fn of_class(trading_class: &str) -> ExerciseStyle {
        let class = trading_class.trim().to_ascii_uppercase();
        if EUROPEAN_CLASSES.contains(&class.as_str()) {
            ExerciseStyle::European
        } else {
            ExerciseStyle::American
        }
    }

    /// The stored spelling: `american` or `european`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExerciseStyle::American => "american",
            ExerciseStyle::European => "european",
        }
    }

    /// Reads the stored spelling back (case-insensitive).
    pub fn parse(s: &str) -> Option<ExerciseStyle> {
        match s.trim().to_ascii_lowercase().as_str() {
            "american" => Some(ExerciseStyle::American),
            "european" => Some(ExerciseStyle::European),
            _ => None,
        }
    }
}

impl fmt::Display for ExerciseStyle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod style_tests {
    use super::ExerciseStyle;

    #[test]
    fn index_classes_are_european_and_the_rest_american() {
        for c in ["SPX", "spxw", "XSP", "RUT", "NDX", "NDXP", "VIX"] {
            assert_eq!(ExerciseStyle::of_class(c), ExerciseStyle::European, "{c}");
        }
        for c in ["SPY", "QQQ", "AAPL", "BRK B", "OEX", "IWM"] {
            assert_eq!(ExerciseStyle::of_class(c), ExerciseStyle::American, "{c}");
        }
        for s in [ExerciseStyle::American, ExerciseStyle::European] {
            assert_eq!(ExerciseStyle::parse(s.as_str()), Some(s));
        }
        assert_eq!(ExerciseStyle::parse("bermudan"), None);
    }
}
