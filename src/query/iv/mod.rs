//! Implied volatility and Black–Scholes greeks, vectorised over polars columns.
//!
//! Inversion is Jäckel's *Let's Be Rational* through the `implied-vol` crate: accurate to the
//! floor set by double precision; about 4.3 M options/s on one core here from polars columns or
//! plain slices alike (`BENCHMARKS.md`).
//! Everything is in Black's forward form: a market price `P` of an option expiring in `t` years
//! with discount factor `D` and forward `F` has undiscounted price `P / D`, which is what is
//! inverted. Forwards and discounts per expiry come from put–call parity ([`parity_forward`]).
//!
//! **By exercise style**: US equity and ETF options are American, index options European
//! ([`crate::domain::ExerciseStyle`]). A frame with an `exercise_style` column (`american` or
//! `european`; the option panel has one, from the contracts dataset) has its American rows
//! inverted with the American pricer (early exercise, the forward's carry as a continuous
//! yield: [`Terms`]) and their greeks taken from it; rows where the column is null, and frames
//! without it, are European: Let's Be Rational, as before. [`implied_vols_by_style`] is the
//! slice form. Forwards of American options from parity take the early-exercise premium out
//! ([`parity_carry_by_style`]).

use crate::domain::ExerciseStyle;
use crate::error::{Error, Result};
use crate::query::styles::STYLE_COLUMN;
use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility, PriceBlackScholes, SpecialFn};
use polars::prelude::*;
use std::borrow::Cow;

mod parity;
mod styled;
pub use parity::{parity_carry, parity_forward, Carry, ForwardDiscount, ForwardSource, ParityPair, Rates};
pub use styled::{dividends_from, parity_carry_by_style, CashDividend, Terms};

/// The implied Black volatility of one option, `None` when the price is outside the no-arbitrage
/// bounds (below intrinsic, above the forward for a call or the strike for a put) or an input is
/// not positive and finite. `undiscounted_price` is the market price divided by the discount factor.
#[inline]
pub fn implied_vol(undiscounted_price: f64, forward: f64, strike: f64, t: f64, is_call: bool) -> Option<f64> {
    // The builder's `build()` checks (forward and strike positive and finite, price finite and
    // not negative) plus `t > 0`, done once here so that the solver is entered through
    // `build_unchecked()` without repeating them.
    let non_negative = |x: f64| x >= 0.0 && x.is_finite();
    let positive = |x: f64| x > 0.0 && x.is_finite();
    if !(t > 0.0 && non_negative(undiscounted_price) && positive(forward) && positive(strike)) {
        return None;
    }
    let iv = ImpliedBlackVolatility::builder()
        .option_price(undiscounted_price)
        .forward(forward)
        .strike(strike)
        .expiry(t)
        .is_call(is_call)
        .build_unchecked()
        .calculate::<DefaultSpecialFn>()?;
    iv.is_finite().then_some(iv)
}

/// The undiscounted Black price of one option (multiply by the discount factor for a market price).
pub fn black_price(forward: f64, strike: f64, t: f64, vol: f64, is_call: bool) -> f64 {
    PriceBlackScholes::builder()
        .forward(forward)
        .strike(strike)
        .volatility(vol)
        .expiry(t)
        .is_call(is_call)
        .build()
        .map(|p| p.calculate::<DefaultSpecialFn>())
        .unwrap_or(f64::NAN)
}

/// Implied vols of many options at once (NaN where there is none); the slices have one length.
pub fn implied_vols(
    prices: &[f64],
    discounts: &[f64],
    forwards: &[f64],
    strikes: &[f64],
    ts: &[f64],
    calls: &[bool],
) -> Vec<f64> {
    let n = prices.len();
    assert!([discounts.len(), forwards.len(), strikes.len(), ts.len(), calls.len()].iter().all(|l| *l == n));
    (0..n).map(|i| iv_or_nan(prices[i], discounts[i], forwards[i], strikes[i], ts[i], calls[i])).collect()
}

/// One inversion from a discounted price, NaN where there is no implied vol.
#[inline(always)]
fn iv_or_nan(price: f64, discount: f64, forward: f64, strike: f64, t: f64, is_call: bool) -> f64 {
    implied_vol(price / discount, forward, strike, t, is_call).unwrap_or(f64::NAN)
}

/// American implied vols where `styles[i]` is American (spot, forward and discount give the
/// pricer's rate and yield, [`Terms`]; all such rows in one batch of `pricing::implied_vols`),
/// Let's Be Rational elsewhere; NaN where there is none.
/// The slices have one length.
#[allow(clippy::too_many_arguments)]
pub fn implied_vols_by_style(
    prices: &[f64],
    discounts: &[f64],
    forwards: &[f64],
    spots: &[f64],
    strikes: &[f64],
    ts: &[f64],
    calls: &[bool],
    styles: &[ExerciseStyle],
) -> Vec<f64> {
    let n = prices.len();
    let lengths = [discounts.len(), forwards.len(), spots.len(), strikes.len(), ts.len(), calls.len(), styles.len()];
    assert!(lengths.iter().all(|l| *l == n), "implied_vols_by_style: columns of different lengths");
    let mut out: Vec<f64> = (0..n)
        .map(|i| match styles[i] {
            ExerciseStyle::European => iv_or_nan(prices[i], discounts[i], forwards[i], strikes[i], ts[i], calls[i]),
            ExerciseStyle::American => f64::NAN,
        })
        .collect();
    // The American rows go to the pricer's batch together: options of one quote time and
    // expiry share its table of early-exercise premiums.
    let american: Vec<(usize, crate::pricing::American)> = (0..n)
        .filter(|&i| styles[i] == ExerciseStyle::American)
        .filter_map(|i| {
            let terms =
                Terms { spot: spots[i], forward: forwards[i], discount: discounts[i], t: ts[i], dividends: &[] };
            Some((i, terms.american(strikes[i], calls[i])?))
        })
        .collect();
    let options: Vec<crate::pricing::American> = american.iter().map(|(_, o)| *o).collect();
    let ivs =
        crate::pricing::implied_vols_of(&options, &american.iter().map(|(i, _)| prices[*i]).collect::<Vec<f64>>());
    for ((i, _), iv) in american.iter().zip(ivs) {
        out[*i] = iv;
    }
    out
}

/// The exercise style of every row: from the `exercise_style` column where present and not
/// null, European otherwise. `None` when no row is American (the fast path).
fn style_col(df: &DataFrame) -> Result<Option<Vec<ExerciseStyle>>> {
    let Ok(c) = df.column(STYLE_COLUMN) else { return Ok(None) };
    let c = c.cast(&DataType::String)?;
    let styles: Vec<ExerciseStyle> =
        c.str()?.iter().map(|v| v.and_then(ExerciseStyle::parse).unwrap_or(ExerciseStyle::European)).collect();
    Ok(styles.contains(&ExerciseStyle::American).then_some(styles))
}

/// The columns [`with_implied_vol`] and [`with_greeks`] read.
#[derive(Debug, Clone)]
pub struct IvColumns {
    /// Market (discounted) option price.
    pub price: String,
    /// Discount factor to expiry.
    pub discount: String,
    /// Forward of the underlying to expiry.
    pub forward: String,
    /// Strike.
    pub strike: String,
    /// Time to expiry in years.
    pub t: String,
    /// `"C"` or `"P"`.
    pub right: String,
    /// Underlying spot (greeks only: delta and gamma are with respect to spot).
    pub spot: String,
    /// Implied vol (written by [`with_implied_vol`], read by [`with_greeks`]).
    pub iv: String,
}

impl Default for IvColumns {
    /// The names of the option panel ([`super::pit`]): `close` is the bar's mid.
    fn default() -> Self {
        let s = |x: &str| x.to_string();
        IvColumns {
            price: s("close"),
            discount: s("discount"),
            forward: s("forward"),
            strike: s("strike"),
            t: s("t"),
            right: s("right"),
            spot: s("spot"),
            iv: s("iv"),
        }
    }
}

/// The values of a numeric column as `f64`, nulls as NaN. A column that already is one
/// null-free `Float64` chunk (the usual case) is borrowed, not copied: at 100,000 rows the five
/// copies the IV path used to make cost more than their `memcpy` (fresh pages, page faults on
/// every call: ~10 % of the inversions' time).
fn f64_col<'a>(df: &'a DataFrame, name: &str) -> Result<Cow<'a, [f64]>> {
    let c = df.column(name)?;
    if let Ok(ca) = c.f64() {
        if let Ok(s) = ca.cont_slice() {
            return Ok(Cow::Borrowed(s));
        }
    }
    let c = c.cast(&DataType::Float64)?;
    let ca = c.f64()?;
    if let Ok(s) = ca.cont_slice() {
        return Ok(Cow::Owned(s.to_vec()));
    }
    Ok(Cow::Owned(ca.iter().map(|v| v.unwrap_or(f64::NAN)).collect()))
}

fn right_col<'a>(df: &'a DataFrame, name: &str) -> Result<&'a StringChunked> {
    df.column(name)?
        .str()
        .map_err(|_| Error::bad_input("column", name, "the option right must be a text column of C or P"))
}

/// `C`, `c` or `CALL` is a call; anything else (`P`, null) a put.
#[inline(always)]
fn is_call(right: Option<&str>) -> bool {
    matches!(right.map(str::as_bytes), Some(b"C" | b"c" | b"CALL"))
}

fn call_col(df: &DataFrame, name: &str) -> Result<Vec<bool>> {
    Ok(right_col(df, name)?.iter().map(is_call).collect())
}

/// Adds the implied-vol column (`cols.iv`, NaN where the price has no implied vol). Rows marked
/// American in an `exercise_style` column are inverted with the American pricer, which also
/// reads `cols.spot` (module docs).
///
/// One pass over the columns as they are stored: the numeric columns are borrowed (one
/// null-free chunk), the right is read from the string column as it goes, and the result vector
/// becomes the new column without a copy. Runs on one thread; as fast as [`implied_vols`] on
/// plain slices (BENCHMARKS.md).
pub fn with_implied_vol(mut df: DataFrame, cols: &IvColumns) -> Result<DataFrame> {
    let n = df.height();
    if let Some(styles) = style_col(&df)? {
        let (p, d, f) = (f64_col(&df, &cols.price)?, f64_col(&df, &cols.discount)?, f64_col(&df, &cols.forward)?);
        let (k, t, s) = (f64_col(&df, &cols.strike)?, f64_col(&df, &cols.t)?, f64_col(&df, &cols.spot)?);
        let calls = call_col(&df, &cols.right)?;
        let iv = implied_vols_by_style(&p[..n], &d[..n], &f[..n], &s[..n], &k[..n], &t[..n], &calls, &styles);
        df.with_column(Float64Chunked::from_vec(cols.iv.as_str().into(), iv).into_column())?;
        return Ok(df);
    }
    let iv = {
        let (p, d, f) = (f64_col(&df, &cols.price)?, f64_col(&df, &cols.discount)?, f64_col(&df, &cols.forward)?);
        let (k, t, right) = (f64_col(&df, &cols.strike)?, f64_col(&df, &cols.t)?, right_col(&df, &cols.right)?);
        let (p, d, f, k, t) = (&p[..n], &d[..n], &f[..n], &k[..n], &t[..n]);
        let mut iv = Vec::with_capacity(n);
        iv.extend(right.iter().enumerate().map(|(i, r)| iv_or_nan(p[i], d[i], f[i], k[i], t[i], is_call(r))));
        iv
    };
    // `from_vec` moves the vector into the column (`Column::new` would copy it).
    df.with_column(Float64Chunked::from_vec(cols.iv.as_str().into(), iv).into_column())?;
    Ok(df)
}

/// Black–Scholes sensitivities of one option, per unit of the underlying (not per contract).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Greeks {
    /// ∂V/∂S.
    pub delta: f64,
    /// ∂²V/∂S².
    pub gamma: f64,
    /// ∂V/∂σ, per unit of vol (1.00 = 100 vol points).
    pub vega: f64,
    /// ∂V/∂t per year of calendar time (negative for a long option, usually).
    pub theta: f64,
}

/// Inputs of one option for [`greeks`].
#[derive(Debug, Clone, Copy)]
pub struct OptionPoint {
    /// Spot.
    pub spot: f64,
    /// Forward to expiry.
    pub forward: f64,
    /// Discount factor to expiry.
    pub discount: f64,
    /// Strike.
    pub strike: f64,
    /// Years to expiry.
    pub t: f64,
    /// Volatility.
    pub vol: f64,
    /// Call (true) or put.
    pub is_call: bool,
}

/// Greeks under Black–Scholes with a continuous rate `r = -ln D / t` and yield
/// `q = r - ln(F/S) / t` implied by the forward and discount (Hull, ch. 19 formulas with
/// `S e^{-qt} = D F`). NaN fields when an input is not positive.
pub fn greeks(o: OptionPoint) -> Greeks {
    let nan = Greeks { delta: f64::NAN, gamma: f64::NAN, vega: f64::NAN, theta: f64::NAN };
    let ok = [o.spot, o.forward, o.discount, o.strike, o.t, o.vol].iter().all(|x| x.is_finite() && *x > 0.0);
    if !ok {
        return nan;
    }
    let sd = o.vol * o.t.sqrt();
    let d1 = ((o.forward / o.strike).ln() + 0.5 * sd * sd) / sd;
    let d2 = d1 - sd;
    let pdf = (-0.5 * d1 * d1).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let n = DefaultSpecialFn::norm_cdf;
    let (r, growth) = (-o.discount.ln() / o.t, o.forward / o.spot);
    let q = r - growth.ln() / o.t;
    // S e^{-qt} = D F: the dividend-discounted spot.
    let dfs = o.discount * o.forward;
    let sign = if o.is_call { 1.0 } else { -1.0 };
    let delta = o.discount * growth * if o.is_call { n(d1) } else { n(d1) - 1.0 };
    let gamma = o.discount * growth * growth * pdf / (o.forward * sd);
    let vega = dfs * pdf * o.t.sqrt();
    let theta = -dfs * pdf * o.vol / (2.0 * o.t.sqrt()) - sign * r * o.strike * o.discount * n(sign * d2)
        + sign * q * dfs * n(sign * d1);
    Greeks { delta, gamma, vega, theta }
}

/// The greeks of an American option on `o`'s terms (continuous-yield carry, [`Terms`]), in the
/// units of [`Greeks`]: vega per unit of vol, theta per year (the pricer's theta is over one
/// calendar day: times 365).
pub fn american_greeks(o: OptionPoint) -> Greeks {
    let nan = Greeks { delta: f64::NAN, gamma: f64::NAN, vega: f64::NAN, theta: f64::NAN };
    let terms = Terms { spot: o.spot, forward: o.forward, discount: o.discount, t: o.t, dividends: &[] };
    match terms.american(o.strike, o.is_call) {
        Some(a) if o.vol > 0.0 && o.vol.is_finite() => {
            let g = a.greeks(o.vol);
            Greeks { delta: g.delta, gamma: g.gamma, vega: g.vega * 100.0, theta: g.theta * 365.0 }
        }
        _ => nan,
    }
}

/// Adds `delta`, `gamma`, `vega`, `theta` from the implied-vol column (`cols.iv`), in this
/// module's units ([`Greeks`]) for every row; rows marked American in an `exercise_style`
/// column take them from the American pricer (bumped tree prices, rescaled from IB's per-point
/// vega and per-day theta).
pub fn with_greeks(mut df: DataFrame, cols: &IvColumns) -> Result<DataFrame> {
    let styles = style_col(&df)?;
    let (spot, fwd, disc) = (f64_col(&df, &cols.spot)?, f64_col(&df, &cols.forward)?, f64_col(&df, &cols.discount)?);
    let (k, t, vol, calls) =
        (f64_col(&df, &cols.strike)?, f64_col(&df, &cols.t)?, f64_col(&df, &cols.iv)?, call_col(&df, &cols.right)?);
    let g: Vec<Greeks> = (0..df.height())
        .map(|i| {
            let p = OptionPoint {
                spot: spot[i],
                forward: fwd[i],
                discount: disc[i],
                strike: k[i],
                t: t[i],
                vol: vol[i],
                is_call: calls[i],
            };
            match styles.as_ref().map(|s| s[i]) {
                Some(ExerciseStyle::American) => american_greeks(p),
                _ => greeks(p),
            }
        })
        .collect();
    type Get = fn(&Greeks) -> f64;
    let fields: [(&str, Get); 4] =
        [("delta", |g| g.delta), ("gamma", |g| g.gamma), ("vega", |g| g.vega), ("theta", |g| g.theta)];
    for (name, get) in fields {
        df.with_column(Float64Chunked::from_vec(name.into(), g.iter().map(get).collect()).into_column())?;
    }
    Ok(df)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_black_prices() {
        for &(k, t, v, call) in &[(90.0, 0.1, 0.3, false), (100.0, 1.0, 0.2, true), (130.0, 2.0, 1.2, true)] {
            let p = black_price(100.0, k, t, v, call);
            let iv = implied_vol(p, 100.0, k, t, call).unwrap();
            assert!((iv - v).abs() < 1e-12, "{k} {t} {v}: {iv}");
        }
    }

    #[test]
    fn no_vol_outside_the_bounds() {
        assert_eq!(implied_vol(-1.0, 100.0, 100.0, 1.0, true), None);
        assert_eq!(implied_vol(101.0, 100.0, 100.0, 1.0, true), None);
        assert_eq!(implied_vol(5.0, 100.0, 100.0, 0.0, true), None);
        assert_eq!(implied_vol(f64::NAN, 100.0, 100.0, 1.0, true), None);
    }

    #[test]
    fn greeks_match_finite_differences() {
        let (s, r, q, t) = (100.0, 0.04, 0.01, 0.5);
        let o = |spot: f64, t: f64, vol: f64, is_call| OptionPoint {
            spot,
            forward: spot * ((r - q) * t).exp(),
            discount: (-r * t).exp(),
            strike: 105.0,
            t,
            vol,
            is_call,
        };
        let price = |p: OptionPoint| p.discount * black_price(p.forward, p.strike, p.t, p.vol, p.is_call);
        for call in [true, false] {
            let g = greeks(o(s, t, 0.25, call));
            let h = 1e-3;
            let d = (price(o(s + h, t, 0.25, call)) - price(o(s - h, t, 0.25, call))) / (2.0 * h);
            let gm = (price(o(s + h, t, 0.25, call)) - 2.0 * price(o(s, t, 0.25, call))
                + price(o(s - h, t, 0.25, call)))
                / (h * h);
            let v = (price(o(s, t, 0.25 + 1e-5, call)) - price(o(s, t, 0.25 - 1e-5, call))) / 2e-5;
            let th = -(price(o(s, t + 1e-5, 0.25, call)) - price(o(s, t - 1e-5, 0.25, call))) / 2e-5;
            assert!((g.delta - d).abs() < 1e-6, "delta {} {d}", g.delta);
            assert!((g.gamma - gm).abs() < 1e-4, "gamma {} {gm}", g.gamma);
            assert!((g.vega - v).abs() < 1e-5, "vega {} {v}", g.vega);
            assert!((g.theta - th).abs() < 1e-4, "theta {} {th}", g.theta);
        }
    }

    #[test]
    fn american_rows_are_inverted_as_american_and_european_ones_as_before() {
        let (s, r, q, t) = (100.0, 0.05f64, 0.01, 0.5f64);
        let (f, d) = (s * ((r - q) * t).exp(), (-r * t).exp());
        let terms = Terms { spot: s, forward: f, discount: d, t, dividends: &[] };
        let american = |k: f64, vol: f64, call| terms.american(k, call).unwrap().price(vol);
        let prices =
            [american(110.0, 0.3, false), american(90.0, 0.25, false), d * black_price(f, 95.0, t, 0.2, false)];
        let df = df!(
            "close" => prices, "discount" => [d; 3], "forward" => [f; 3], "strike" => [110.0, 90.0, 95.0],
            "t" => [t; 3], "right" => ["P", "P", "P"], "spot" => [s; 3],
            "exercise_style" => [Some("american"), Some("american"), None]
        )
        .unwrap();
        let cols = IvColumns::default();
        let out = with_greeks(with_implied_vol(df, &cols).unwrap(), &cols).unwrap();
        let get = |n: &str| out.column(n).unwrap().f64().unwrap().into_no_null_iter().collect::<Vec<f64>>();
        let iv = get("iv");
        assert!((iv[0] - 0.3).abs() < 1e-6 && (iv[1] - 0.25).abs() < 1e-6, "{iv:?}");
        // The null style is European: Let's Be Rational's answer, unchanged.
        assert_eq!(iv[2], implied_vol(prices[2] / d, f, 95.0, t, false).unwrap());
        // The same frame without the column reads every row as European: the in-the-money
        // American put's premium shows up as vol.
        let plain = with_implied_vol(out.drop("exercise_style").unwrap(), &cols).unwrap();
        assert!(plain.column("iv").unwrap().f64().unwrap().get(0).unwrap() > 0.3 + 1e-3);
        // American greeks: the pricer's, per unit of vol and per year.
        let g = terms.american(110.0, false).unwrap().greeks(0.3);
        let (delta, vega, theta) = (get("delta"), get("vega"), get("theta"));
        assert!((delta[0] - g.delta).abs() < 1e-6 && (vega[0] - 100.0 * g.vega).abs() < 1e-4, "{delta:?} {vega:?}");
        assert!((theta[0] - 365.0 * g.theta).abs() < 1e-3 && delta[0] < -0.5, "{theta:?}");
    }

    #[test]
    fn columns_in_columns_out() {
        let df = df!(
            "close" => [0.98 * black_price(100.0, 95.0, 0.25, 0.3, false)],
            "discount" => [0.98], "forward" => [100.0], "strike" => [95.0], "t" => [0.25],
            "right" => ["P"], "spot" => [99.0]
        )
        .unwrap();
        let cols = IvColumns::default();
        let out = with_greeks(with_implied_vol(df, &cols).unwrap(), &cols).unwrap();
        let iv = out.column("iv").unwrap().f64().unwrap().get(0).unwrap();
        assert!((iv - 0.3).abs() < 1e-12);
        assert!(out.column("delta").unwrap().f64().unwrap().get(0).unwrap() < 0.0);
    }
}
