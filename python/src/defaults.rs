//! What the package reads when it is not told, and the checks a surface history runs before it
//! writes anything. The choices are the crate's ([`twslake::query::series`]), so the package, the
//! CLI and the surface history read the same series of the same lake.

use crate::{bad, py_err};
use pyo3::prelude::*;
use twslake::calendar;
use twslake::datasets::Dataset;
use twslake::domain::{Series, Symbol, WhatToShow};
use twslake::error::{Error, Result};
use twslake::query::iv::Rates;
use twslake::query::series::Holdings;
use twslake::query::series::{self as choose, HeldSeries};
use twslake::query::surface::SurfaceOptions;
use twslake::Lake;

/// The option series an option panel of `what` bars over `[from, to]` reads by default: for
/// MIDPOINT, [`Holdings::default_option_series`]; for another what-to-show, the finest intraday
/// series of it with a partition on those dates. The error names the series the lake holds.
pub(crate) async fn option_series(
    lake: &Lake,
    symbol: &Symbol,
    what: WhatToShow,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Series> {
    if what == WhatToShow::Midpoint {
        return Holdings::new(lake).default_option_series(symbol, from, to).await;
    }
    let held = Holdings::new(lake).held_series(Dataset::OptionBars, symbol).await?;
    held.iter()
        .filter(|h| h.series.what_to_show == what && h.days_in(from, to) > 0)
        .min_by_key(|h| h.series.bar_size.seconds().unwrap_or(u32::MAX))
        .map(|h| h.series)
        .ok_or_else(|| {
            let why = format!(
                "no {what} option bars on these dates; the lake holds these intraday option series: {}",
                choose::describe_all(&held)
            );
            Error::bad_input("option bars", format!("{symbol} {from} .. {to}"), why)
        })
}

/// The spot series option bars of `option` are joined to over `[from, to]`:
/// [`Holdings::spot_series_for`], restricted to `what` when the caller names one.
pub(crate) async fn spot_series(
    lake: &Lake,
    symbol: &Symbol,
    option: Series,
    what: Option<WhatToShow>,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
) -> Result<Series> {
    let Some(what) = what else { return Holdings::new(lake).spot_series_for(symbol, option, from, to).await };
    let held = Holdings::new(lake).held_series(Dataset::EquityBars, symbol).await?;
    let kind: Vec<HeldSeries> = held.iter().filter(|h| h.series.what_to_show == what).cloned().collect();
    choose::choose_spot_series(symbol, &kind, option, from, to).map_err(|_| {
        let why = format!(
            "option bars of {} need the underlying's {what} bars of the same sessions at {} or finer; \
             the lake holds these intraday equity series: {}",
            option.bar_size,
            option.bar_size,
            choose::describe_all(&held)
        );
        Error::bad_input("spot bars", format!("{symbol} {what} {from} .. {to}"), why)
    })
}

/// Surface options from the Python arguments, checked as the CLI checks its flags: `None` keeps
/// the crate's default (the finest MIDPOINT series held; five bars of session time).
pub(crate) fn surface_options(
    bar_size: Option<&str>,
    max_staleness_min: Option<i64>,
    rate: f64,
    dividend_yield: f64,
) -> PyResult<SurfaceOptions> {
    if let Some(m) = max_staleness_min.filter(|m| !(1..=100_000).contains(m)) {
        return Err(bad("max_staleness_min", &m.to_string(), "give 1 to 100000 minutes (or None: five bars)"));
    }
    let series = match bar_size {
        Some(b) => Some(Series { bar_size: b.parse().map_err(py_err)?, what_to_show: WhatToShow::Midpoint }),
        None => None,
    };
    Ok(SurfaceOptions {
        series,
        max_staleness: max_staleness_min.map(chrono::Duration::minutes),
        rates: Rates { rate, dividend_yield },
        ..Default::default()
    })
}

/// Refuses a surface history that could only record empty sessions, before anything is written:
/// a symbol the lake never asked for, or no MIDPOINT option bars (of `series`, if given) on the
/// dates read (the session before `from`'s included: quotes reach back over the night).
pub(crate) async fn check_history_input(
    lake: &Lake,
    symbol: &Symbol,
    from: chrono::NaiveDate,
    to: chrono::NaiveDate,
    series: Option<Series>,
) -> Result<()> {
    let known = lake.manifest_symbols().await?;
    if !known.contains(symbol) {
        let names: Vec<&str> = known.iter().map(|s| s.as_str()).collect();
        let why = format!("the lake holds nothing for it; it holds: {}", names.join(", "));
        return Err(Error::bad_input("symbol", symbol.as_str(), why));
    }
    let first = calendar::prev_trading_day(from);
    let held = Holdings::new(lake).held_series(Dataset::OptionBars, symbol).await?;
    let wanted = |h: &&HeldSeries| match series {
        Some(s) => h.series == s,
        None => h.series.what_to_show == WhatToShow::Midpoint,
    };
    if held.iter().filter(wanted).any(|h| h.days_in(first, to) > 0) {
        return Ok(());
    }
    let what = series.map_or("MIDPOINT".to_string(), |s| format!("{} {}", s.bar_size, s.what_to_show));
    let why = format!(
        "no {what} option bars on these dates; the lake holds these intraday option series: {}",
        choose::describe_all(&held)
    );
    Err(Error::bad_input("option bars", format!("{symbol} {from} .. {to}"), why))
}
