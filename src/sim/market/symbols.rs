//! The instruments the simulator lists and their model parameters.

use chrono::NaiveDate;

use super::corporate::{self, CashDividend, Split};
use super::rng::{hash_str, Key};

/// One underlying and the parameters of its price model.
#[derive(Debug, Clone, PartialEq)]
pub struct SymbolSpec {
    /// IB's symbol (may contain a space, as `BRK B`).
    pub symbol: String,
    /// IB's contract id for the stock.
    pub con_id: i32,
    /// Long name shown in contract details.
    pub long_name: String,
    /// Primary listing exchange.
    pub primary_exchange: String,
    /// `ETF` or `COMMON`.
    pub stock_type: String,
    /// Root of the OCC option symbol and the options' trading class.
    pub option_root: String,
    /// Annualised volatility of daily log returns.
    pub vol: f64,
    /// Price on [`Self::REF_DATE`] the trend passes through.
    pub ref_price: f64,
    /// Trend growth per year (log).
    pub growth: f64,
    /// The yield the dividend schedule is sized from (a year's payments ≈ yield × price). Prices
    /// use the cash schedule [`Self::dividends`], not this; it stays as the schedule's summary (a
    /// continuous yield a client may fall back on).
    pub dividend_yield: f64,
    /// Cash dividends, by ex-date (see [`corporate`]).
    pub dividends: Vec<CashDividend>,
    /// Splits, by ex-date (see [`corporate`]).
    pub splits: Vec<Split>,
    /// Average daily volume in shares.
    pub adv: f64,
    /// Average trade size in shares (sets bar counts).
    pub trade_size: f64,
    /// Skew (SSVI ρ) of the option surface.
    pub skew: f64,
    /// Wings (SSVI η) of the option surface.
    pub wings: f64,
    /// Whether the simulated account holds a market-data subscription for it (else error 354).
    pub subscribed: bool,
}

impl SymbolSpec {
    /// The date the trend is anchored to.
    pub const REF_DATE: (i32, u32, u32) = (2025, 1, 2);

    /// The reference date as a date.
    pub fn ref_date() -> NaiveDate {
        let (y, m, d) = Self::REF_DATE;
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[allow(clippy::too_many_arguments)]
    fn known(
        symbol: &str,
        con_id: i32,
        long_name: &str,
        exch: &str,
        etf: bool,
        root: &str,
        vol: f64,
        price: f64,
        growth: f64,
        q: f64,
        adv: f64,
    ) -> Self {
        SymbolSpec {
            symbol: symbol.into(),
            con_id,
            long_name: long_name.into(),
            primary_exchange: exch.into(),
            stock_type: if etf { "ETF" } else { "COMMON" }.into(),
            option_root: root.into(),
            vol,
            ref_price: price,
            growth,
            dividend_yield: q,
            dividends: Vec::new(),
            splits: Vec::new(),
            adv,
            trade_size: if etf { 180.0 } else { 90.0 },
            skew: if etf { -0.7 } else { -0.4 },
            wings: if etf { 1.2 } else { 0.9 },
            subscribed: true,
        }
    }

    /// A known default symbol, or a generated one for any other name, with its corporate
    /// actions: quarterly dividends for every payer (BRK B pays none), and AAPL's 4:1 split with
    /// ex-date 2026-06-15 (inside the default history of every default setup).
    pub fn for_symbol(symbol: &str) -> Self {
        let mut spec = Self::model(symbol);
        let day = |m: u32, d: u32| NaiveDate::from_ymd_opt(2026, m, d).unwrap_or_default();
        let cal = |first_month, day| corporate::Calendar { first_month, day };
        let cal = match symbol {
            "SPY" => cal(3, 20),
            "QQQ" => cal(3, 22),
            "AAPL" => {
                spec.splits = vec![Split { ex_date: day(6, 15), ratio: 4.0 }];
                cal(2, 10)
            }
            "MSFT" => cal(2, 19),
            _ => cal(3, 12),
        };
        spec.dividends = corporate::quarterly(&spec, cal, super::first_date(), super::last_date());
        spec
    }

    /// The cumulative ratio of the splits whose ex-date is ≤ `date`: internal (never split)
    /// prices ÷ this are the prices of `date`'s basis.
    pub fn split_factor(&self, date: NaiveDate) -> f64 {
        self.splits.iter().filter(|s| s.ex_date <= date).map(|s| s.ratio).product()
    }

    fn model(symbol: &str) -> Self {
        match symbol {
            "SPY" => Self::known(
                "SPY",
                756733,
                "SPDR S&P 500 ETF TRUST",
                "ARCA",
                true,
                "SPY",
                0.17,
                585.0,
                0.075,
                0.013,
                60e6,
            ),
            "QQQ" => Self::known(
                "QQQ",
                320227571,
                "INVESCO QQQ TRUST SERIES 1",
                "NASDAQ",
                true,
                "QQQ",
                0.23,
                510.0,
                0.11,
                0.006,
                35e6,
            ),
            "AAPL" => Self::known("AAPL", 265598, "APPLE INC", "NASDAQ", false, "AAPL", 0.29, 243.0, 0.19, 0.005, 50e6),
            "MSFT" => {
                Self::known("MSFT", 272093, "MICROSOFT CORP", "NASDAQ", false, "MSFT", 0.26, 418.0, 0.10, 0.008, 22e6)
            }
            "BRK B" => Self::known(
                "BRK B",
                72063691,
                "BERKSHIRE HATHAWAY INC-CL B",
                "NYSE",
                false,
                "BRKB",
                0.19,
                453.0,
                0.09,
                0.0,
                4e6,
            ),
            other => Self::generated(other),
        }
    }

    fn generated(symbol: &str) -> Self {
        let k = Key::new(hash_str(symbol));
        let root: String = symbol.chars().filter(|c| c.is_ascii_alphanumeric()).take(6).collect();
        SymbolSpec {
            symbol: symbol.into(),
            // Above every real default, below the option con_id range.
            con_id: 400_000_000 + (hash_str(symbol) % 500_000_000) as i32,
            long_name: format!("{symbol} SIMULATED CORP"),
            primary_exchange: "NYSE".into(),
            stock_type: "COMMON".into(),
            option_root: if root.is_empty() { "X".into() } else { root },
            vol: 0.22 + 0.2 * k.with(1).uniform(),
            ref_price: 20.0 + 280.0 * k.with(2).uniform(),
            growth: 0.03 + 0.08 * k.with(3).uniform(),
            dividend_yield: 0.02 * k.with(4).uniform(),
            dividends: Vec::new(),
            splits: Vec::new(),
            adv: 2e6 + 1e7 * k.with(5).uniform(),
            trade_size: 100.0,
            skew: -0.4,
            wings: 0.9,
            subscribed: true,
        }
    }

    /// The default symbol list.
    pub fn defaults() -> Vec<SymbolSpec> {
        let mut v: Vec<_> = ["SPY", "QQQ", "AAPL", "MSFT", "BRK B"].iter().map(|s| Self::for_symbol(s)).collect();
        // One symbol without a market-data subscription, as accounts usually have (→ 354).
        if let Some(m) = v.iter_mut().find(|s| s.symbol == "MSFT") {
            m.subscribed = false;
        }
        v
    }
}
