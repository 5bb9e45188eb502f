//! The batch ([`super::implied_vols`]) against the per-option solver on a chain.

use super::{implied_vols, American, Dividend};

const QUARTERLY: [Dividend; 3] =
    [Dividend { t: 0.1, amount: 0.8 }, Dividend { t: 0.35, amount: 0.8 }, Dividend { t: 0.6, amount: 0.8 }];

/// One row: spot, strike, expiry, call, price.
type Row = (f64, f64, f64, bool, f64);

fn option(spot: f64, strike: f64, t: f64, is_call: bool) -> American<'static> {
    American { spot, strike, t, rate: 0.04, yield_rate: 0.01, dividends: &QUARTERLY, is_call }
}

/// Two expiries (one with the dividends ahead, one before the first ex-date, whose calls are
/// never exercised early), 60 strikes each from −2.5 to +2.5 standard deviations (deep in and
/// out of the money), calls and puts, a skewed smile; a slice of one option (another spot);
/// a price below the exercise value and one above the bound.
fn chain() -> Vec<Row> {
    let mut rows = Vec::new();
    for t in [0.5, 0.05] {
        for s in 0..60 {
            let z = -2.5 + 5.0 * s as f64 / 59.0;
            let vol = 0.25 - 0.04 * z + 0.015 * z * z;
            let strike = 100.0 * (z * 0.25 * f64::sqrt(t)).exp();
            for is_call in [true, false] {
                rows.push((100.0, strike, t, is_call, option(100.0, strike, t, is_call).price(vol)));
            }
        }
    }
    rows.push((101.0, 95.0, 0.5, false, option(101.0, 95.0, 0.5, false).price(0.3)));
    rows.push((100.0, 120.0, 0.5, false, 19.0));
    rows.push((100.0, 80.0, 0.5, true, 100.5));
    // Rows in no particular order: the batch groups them itself.
    let n = rows.len();
    (0..n).map(|i| rows[(i * 101) % n]).collect()
}

#[test]
fn the_batch_agrees_with_the_per_option_solver() {
    let rows = chain();
    let n = rows.len();
    let col = |f: fn(&Row) -> f64| rows.iter().map(f).collect::<Vec<f64>>();
    let calls: Vec<bool> = rows.iter().map(|r| r.3).collect();
    let ivs = implied_vols(
        &col(|r| r.4),
        &col(|r| r.0),
        &col(|r| r.1),
        &col(|r| r.2),
        &vec![0.04; n],
        &vec![0.01; n],
        &vec![&QUARTERLY[..]; n],
        &calls,
    );
    let (mut errors, mut from_table) = (Vec::new(), 0);
    for (r, iv) in rows.iter().zip(&ivs) {
        let o = option(r.0, r.1, r.2, r.3);
        let Some(single) = o.implied_vol(r.4) else {
            assert!(iv.is_nan(), "{o:?} at {}: the batch has {iv}, the solver none", r.4);
            continue;
        };
        assert!(iv.is_finite(), "{o:?} at {}: the solver has {single}, the batch none", r.4);
        if r.0 == 101.0 {
            assert_eq!(*iv, single, "a slice of one option is solved one by one");
        }
        from_table += (*iv != single) as usize;
        // The American vega (per unit of vol); below 1 on a spot of 100 the vol is not pinned.
        if (o.price(single + 1e-3) - o.price(single - 1e-3)) / 2e-3 >= 1.0 {
            errors.push((iv - single).abs());
        }
    }
    errors.sort_by(f64::total_cmp);
    let m = errors.len();
    let (median, p90, worst) = (errors[m / 2], errors[m * 9 / 10], errors[m - 1]);
    eprintln!("{m} options with vega >= 1: median {median:.1e}, 90th percentile {p90:.1e}, worst {worst:.1e}; {from_table} from the table");
    // The tables were used: most of the 240 options that can be exercised early (with a yield,
    // calls too).
    assert!(from_table > 180, "only {from_table} answers differ from the per-option solver's");
    // Measured: median 9.5e-7, 90th percentile 4.7e-5, worst 5.8e-4 (the tree's noise in the strike, which
    // the per-option answers carry as much; `batch` module docs). Tables of 60 strikes a
    // right have 15 nodes in log-moneyness; the benchmark's 250 strikes, 21.
    assert!(median < 2e-5, "median {median:.1e}");
    assert!(p90 < 2e-4, "90th percentile {p90:.1e}");
    assert!(worst < 1e-3, "worst {worst:.1e}");
    assert!(m > 150, "{m}");
}
