//! Tests of the option model.

use super::*;

#[test]
fn implied_vol_inverts_black() {
    for (right, k) in [(Right::Call, 90.0), (Right::Put, 110.0), (Right::Call, 130.0)] {
        let p = black(right, 100.0, k, 0.4, 0.03, 0.27).price;
        let iv = implied_vol(right, 100.0, k, 0.4, 0.03, p).unwrap_or(0.0);
        assert!((iv - 0.27).abs() < 1e-6, "{iv}");
    }
    assert!((ncdf(1.959964) - 0.975).abs() < 1e-6);
}

/// Black–Scholes–Merton on the spot, written independently of `black`.
fn bsm(right: Right, s: f64, k: f64, t: f64, r: f64, q: f64, v: f64) -> f64 {
    let d1 = ((s / k).ln() + (r - q + v * v / 2.0) * t) / (v * t.sqrt());
    let d2 = d1 - v * t.sqrt();
    match right {
        Right::Call => s * (-q * t).exp() * ncdf(d1) - k * (-r * t).exp() * ncdf(d2),
        Right::Put => k * (-r * t).exp() * ncdf(-d2) - s * (-q * t).exp() * ncdf(-d1),
    }
}

#[test]
fn tick_greeks_are_ibs_spot_greeks() {
    let spec = SymbolSpec::for_symbol("SPY");
    let at = chrono::DateTime::parse_from_rfc3339("2026-03-02T15:00:00Z").map(|t| t.to_utc()).unwrap_or_default();
    let mut checked = 0;
    let mut with_dividends = 0;
    for expiry in ["2026-03-06", "2026-03-20", "2026-09-18", "2027-01-15"] {
        let expiry: NaiveDate = expiry.parse().unwrap_or_default();
        let divs = corporate::dividends_to(&spec, at, expiry);
        with_dividends += usize::from(!divs.is_empty());
        for strike in [420.0, 480.0, 500.0, 520.0, 600.0] {
            for right in [Right::Call, Right::Put] {
                let o = OptionId { underlying: 0, expiry, strike, right };
                let Some(g) = european_quote(Key::new(1), &spec, &o, at, 500.0) else { continue };
                let (t, r, v) = (g.t, g.rate, g.iv);
                // Escrowed dividends: Black–Scholes on the spot less the dividends' present
                // value; `h` moves the valuation instant back in time (dividends further off).
                let p = |s: f64, h: f64, v: f64| {
                    let pv: f64 = divs.iter().map(|(ti, d)| d * (-r * (ti + h)).exp()).sum();
                    bsm(right, s - pv, strike, t + h, r, 0.0, v)
                };
                assert!((g.price - p(500.0, 0.0, v)).abs() < 1e-9, "price {} {}", g.price, p(500.0, 0.0, v));
                let h = 0.01;
                let delta = (p(500.0 + h, 0.0, v) - p(500.0 - h, 0.0, v)) / (2.0 * h);
                let gamma = (p(500.0 + h, 0.0, v) - 2.0 * p(500.0, 0.0, v) + p(500.0 - h, 0.0, v)) / (h * h);
                let dv = 1e-5;
                let vega = (p(500.0, 0.0, v + dv) - p(500.0, 0.0, v - dv)) / (2.0 * dv) * 0.01;
                let dt = 1e-6;
                let theta = -(p(500.0, dt, v) - p(500.0, -dt, v)) / (2.0 * dt) / 365.0;
                let label = format!("{right:?} {strike} {expiry}");
                assert!((g.delta - delta).abs() < 1e-6, "delta {label}: {} vs {delta}", g.delta);
                assert!((g.gamma - gamma).abs() < 1e-6, "gamma {label}: {} vs {gamma}", g.gamma);
                assert!((g.vega - vega).abs() < 1e-6, "vega {label}: {} vs {vega}", g.vega);
                assert!((g.theta - theta).abs() < 1e-6, "theta {label}: {} vs {theta}", g.theta);
                checked += 1;
            }
        }
    }
    assert_eq!(checked, 40, "every contract priced");
    assert_eq!(with_dividends, 3, "every expiry from 2026-03-20 sees a dividend (its own ex-date included)");
}

#[test]
fn ssvi_slices_are_butterfly_free() {
    let spec = SymbolSpec::for_symbol("SPY");
    let d = NaiveDate::from_ymd_opt(2026, 3, 2).unwrap_or_default();
    for t in [0.01, 0.1, 0.5, 1.0, 2.0] {
        let s = svi(Key::new(1), &spec, d, t);
        // SSVI: θ = w(0) is the ATM total variance, and b = θφ/2.
        let theta = s.w(0.0);
        let v = atm_vol(Key::new(1), &spec, d, t);
        assert!((theta - v * v * t).abs() < 1e-12);
        let phi = 2.0 * s.b / theta;
        assert!(theta * phi * (1.0 + s.rho.abs()) <= 4.0 && theta * phi * phi * (1.0 + s.rho.abs()) <= 4.0);
    }
}
