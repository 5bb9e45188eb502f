//! Surfaces from American prices: quotes priced with the American pricer at the vols of the
//! known SSVI surface (early exercise, the carry as a continuous yield) are fitted back within
//! 0.15 vol points of the truth when read as American, and missed on the puts when read as
//! European (the premium taken into the parity line and the vols).

use super::market::{true_vol, DIV, RATE};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use polars::prelude::*;
use twslake::calendar::time_to_expiry;
use twslake::domain::Right;
use twslake::query::iv::{Rates, Terms};
use twslake::query::surface::{fit_surface, Surface, SurfaceOptions};

/// Six expiries (2 weeks to a year) × strikes 70–130, calls and puts, American prices at the
/// true vols rounded to the cent, labelled `style`.
fn panel(at: DateTime<Utc>, style: &str) -> DataFrame {
    let (mut e, mut k, mut r, mut p, mut t) = (vec![], vec![], vec![], vec![], vec![]);
    for days in [14, 30, 60, 91, 182, 365] {
        let expiry = at.date_naive() + Duration::days(days);
        let tt = time_to_expiry(at, expiry);
        let (f, d) = (100.0 * ((RATE - DIV) * tt).exp(), (-RATE * tt).exp());
        let terms = Terms { spot: 100.0, forward: f, discount: d, t: tt, dividends: &[] };
        for j in 0..=24 {
            let strike = 70.0 + 2.5 * j as f64;
            for call in [true, false] {
                let price = terms.american(strike, call).unwrap().price(true_vol(100.0, strike, tt));
                e.push((expiry - NaiveDate::default()).num_days() as i32);
                k.push(strike);
                r.push(if call { "C" } else { "P" });
                t.push(tt);
                p.push((price * 100.0).round() / 100.0);
            }
        }
    }
    let style = vec![style; e.len()];
    let df =
        df!("expiry" => e, "strike" => k, "right" => r, "close" => p, "t" => t, "exercise_style" => style).unwrap();
    df.lazy().with_column(col("expiry").cast(DataType::Date)).collect().unwrap()
}

/// Per slice: the RMSE of the fit against the truth (vol units), and the mean error of the
/// put points' market vols against the truth.
fn errors(s: &Surface) -> Vec<(f64, f64)> {
    s.expiries
        .iter()
        .map(|e| {
            let fit: Vec<f64> =
                e.points.iter().map(|p| e.vol_at_strike(p.strike) - true_vol(100.0, p.strike, e.t)).collect();
            let puts: Vec<f64> = e
                .points
                .iter()
                .filter(|p| p.right == Right::Put)
                .map(|p| p.iv_market - true_vol(100.0, p.strike, e.t))
                .collect();
            let rmse = (fit.iter().map(|x| x * x).sum::<f64>() / fit.len() as f64).sqrt();
            (rmse, puts.iter().sum::<f64>() / puts.len() as f64)
        })
        .collect()
}

#[test]
fn american_prices_fit_the_truth_as_american_and_miss_it_as_european() {
    let at: DateTime<Utc> = "2024-11-22T16:00:00Z".parse().unwrap();
    let opts = SurfaceOptions { rates: Rates { rate: RATE, dividend_yield: DIV }, ..Default::default() };
    let american = fit_surface("SPY", at, 100.0, &panel(at, "american"), None, &opts).unwrap();
    let european = fit_surface("SPY", at, 100.0, &panel(at, "european"), None, &opts).unwrap();
    assert_eq!(american.expiries.len(), 6, "{:?}", american.skipped);
    assert_eq!(european.expiries.len(), 6, "{:?}", european.skipped);
    // The forward from parity with the premium taken out is the true one, up to the prices'
    // rounding: half a cent at most on each of the six pairs' C − P, about 2e-5 of a spot of 100
    // on average; 1e-4 is five times that. The plain line is off by up to 0.4 % here.
    for e in &american.expiries {
        let f = 100.0 * ((RATE - DIV) * e.t).exp();
        assert!((e.forward / f - 1.0).abs() < 1e-4, "{}: forward {} vs {f}", e.expiry, e.forward);
        assert!(e.butterfly_ok && e.calendar_ok, "{}: checks", e.expiry);
    }
    let (a, eu) = (errors(&american), errors(&european));
    for (i, e) in american.expiries.iter().enumerate() {
        eprintln!(
            "{}: RMSE american {:.4}, european {:.4} vol points; mean put error {:.4} vs {:.4}",
            e.expiry,
            a[i].0 * 100.0,
            eu[i].0 * 100.0,
            a[i].1 * 100.0,
            eu[i].1 * 100.0
        );
        // Read as American: within 0.15 vol points of the truth.
        assert!(a[i].0 <= 0.0015, "{}: RMSE {:.3} vol points", e.expiry, a[i].0 * 100.0);
        // Read as European, the puts miss: the plain parity line takes the premiums into its
        // forward and discount, and the puts' vols come out biased (low here) by more than the
        // American reading's error, on every expiry.
        assert!(eu[i].1.abs() > a[i].1.abs() + 1e-4, "{}: european put error {} vs {}", e.expiry, eu[i].1, a[i].1);
    }
    // Over the surface the European reading is worse.
    let worst = |x: &[(f64, f64)]| x.iter().map(|v| v.0).fold(0.0, f64::max);
    assert!(worst(&eu) > 2.0 * worst(&a), "european {} vs american {}", worst(&eu), worst(&a));
}
