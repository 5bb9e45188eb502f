//! The whole product at once: a lake ingested from the simulator over TCP, and the volatility
//! surface reconstructed from it, compared with the simulator's true surface.

use super::*;
use crate::support::Fixture;
use twslake::domain::Symbol;
use twslake::query::surface::SurfaceOptions;
use twslake::query::surface::Surfaces;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_reconstructed_surface_matches_the_simulators_truth() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let cfg = IngestConfig {
        equity: vec![parse_series("1 day/TRADES/20", 20).unwrap(), parse_series("1 min/TRADES/1", 1).unwrap()],
        options: OptionSelection {
            expiry_days: 70,
            strike_band: 0.12,
            max_contracts: 400,
            series: vec![parse_series("1 min/MIDPOINT", 1).unwrap().series],
            sessions: 1,
        },
        pacing_scale: SCALE,
        concurrency: 8,
        ..Default::default()
    };
    let spy = Symbol::new("SPY").unwrap();
    let report = ingest(&sim, &lake, cfg).await.setup(std::slice::from_ref(&spy)).await;
    assert!(report.complete(), "{report:#?}");

    // After the close, once the day is final and the chain snapshot of the run is known.
    let at = chrono::DateTime::parse_from_rfc3339(AFTER_CLOSE).unwrap().with_timezone(&chrono::Utc);
    let truth = twslake::sim::truth::truth(sim.market(), "SPY", at).expect("truth");
    let opts = SurfaceOptions {
        rates: twslake::query::iv::Rates { rate: truth.rate, dividend_yield: truth.dividend_yield },
        dividends: dividends_of(&truth),
        ..Default::default()
    };
    let surface = Surfaces::new(&lake).surface(&spy, at, &opts).await.unwrap();
    // Every expiry the simulator lists within the 70 days ingested has a slice, down to this
    // week's (three days out, on Thanksgiving week): none is skipped for want of quotes.
    assert!(surface.skipped.is_empty(), "skipped: {:?}", surface.skipped);
    assert!(surface.expiries.len() >= 8, "{} slices", surface.expiries.len());
    assert!(surface.expiries[0].t < 7.0 / 365.0, "nearest slice {}", surface.expiries[0].expiry);
    let mut checked = 0;
    for slice in &surface.expiries {
        let tag = slice.expiry.format("%Y%m%d").to_string();
        // Both checks hold for every slice. Short expiries used to fail them: their far wings are
        // at the price floor (zero bid: mid 1.5 cents), now left out of the fit, and the calendar
        // check now judges only the strikes both neighbours quote, beyond the fits' own error.
        assert!(slice.points.len() >= 10, "{tag}: {} points", slice.points.len());
        assert!(slice.butterfly_ok && slice.calendar_ok, "{tag}: arbitrage checks {slice:?}");
        let true_slice = truth.expiries.iter().find(|e| e.expiry == tag).expect("the expiry is in the truth");
        // Both expire options at the session's close (13:00 New York on early-close days), so the
        // times to expiry agree.
        assert!((true_slice.t - slice.t).abs() < 1e-9, "{tag}: t {} against the truth's {}", slice.t, true_slice.t);
        let errors: Vec<f64> = slice
            .points
            .iter()
            .filter_map(|p| {
                true_slice
                    .strikes
                    .iter()
                    .find(|s| (s.strike - p.strike).abs() < 1e-9)
                    .map(|s| slice.vol_at_strike(p.strike) - s.iv)
            })
            .collect();
        assert!(errors.len() >= 5, "{tag}: {} points", errors.len());
        let rmse = (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt();
        eprintln!("{tag}: t {:.3}, RMSE {:.4} vol points against the truth", slice.t, rmse * 100.0);
        // Every slice within 0.15 vol points, the shortest included: their cheap wings, whose mids
        // are rounded to the cent, weigh by the precision of their prices (about 0.11 vol points
        // at three days; 0.16 when every quote weighed alike).
        assert!(rmse <= 0.0015, "{tag}: RMSE {:.3} vol points against the truth", rmse * 100.0);
        if slice.t >= 0.1 {
            // Liquid expiries: a tenth of that.
            assert!(rmse <= 0.00015, "{tag}: RMSE {:.4} vol points against the truth", rmse * 100.0);
        }
        checked += 1;
    }
    assert!(checked >= 8, "expiries checked: {checked}");

    // The same surface from the command line, the dividends given as `--dividend`: the same
    // fits; without them (the schedule parity implies) not.
    let mut args: Vec<String> =
        ["surface", "SPY", "--at", AFTER_CLOSE, "--lake", &f.url, "--json"].map(String::from).to_vec();
    args.extend(["--rate".into(), truth.rate.to_string(), "--dividend-yield".into(), truth.dividend_yield.to_string()]);
    let without = args.clone();
    for d in dividends_of(&truth) {
        args.extend(["--dividend".into(), format!("{}={}", d.ex_date, d.amount)]);
    }
    let levels = |args: &[String]| {
        let (code, stdout, stderr) = crate::support::twslake(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[]);
        assert_eq!(code, 0, "{stderr}");
        let doc: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        doc["expiries"].as_array().unwrap().iter().map(|e| e["a"].as_f64().unwrap()).collect::<Vec<f64>>()
    };
    let api: Vec<f64> = surface.expiries.iter().map(|e| e.a).collect();
    let apart = |x: &[f64]| x.len() != api.len() || x.iter().zip(&api).any(|(a, b)| (a - b).abs() > 1e-9 * b.abs());
    assert!(!apart(&levels(&args)), "the command line's fits differ from the API's");
    assert!(apart(&levels(&without)), "the dividends changed no fit");
}

/// The simulator's cash dividends, for the American options' pricer (the lake holds none).
fn dividends_of(truth: &twslake::sim::truth::Truth) -> Vec<twslake::query::iv::CashDividend> {
    truth.dividends.iter().map(|d| twslake::query::iv::CashDividend { ex_date: d.ex_date, amount: d.amount }).collect()
}

/// The RMSE (vol units) of a slice's fitted vols against the truth's at the slice's quoted
/// strikes, or `None` when the truth has no such expiry.
fn rmse_to_truth(slice: &twslake::query::surface::ExpirySlice, truth: &twslake::sim::truth::Truth) -> Option<f64> {
    let tag = slice.expiry.format("%Y%m%d").to_string();
    let true_slice = truth.expiries.iter().find(|e| e.expiry == tag)?;
    let errors: Vec<f64> = slice
        .points
        .iter()
        .filter_map(|p| {
            let s = true_slice.strikes.iter().find(|s| (s.strike - p.strike).abs() < 1e-9)?;
            Some(slice.vol_at_strike(p.strike) - s.iv)
        })
        .collect();
    (!errors.is_empty()).then(|| (errors.iter().map(|e| e * e).sum::<f64>() / errors.len() as f64).sqrt())
}

/// Asserts every slice is within 0.15 vol points of `truth` and passes both checks.
fn assert_matches_truth(surface: &twslake::query::surface::Surface, truth: &twslake::sim::truth::Truth, what: &str) {
    assert!(surface.expiries.len() >= 5, "{what}: {} slices, skipped {:?}", surface.expiries.len(), surface.skipped);
    for slice in &surface.expiries {
        let tag = format!("{what} {}", slice.expiry);
        assert!(slice.points.len() >= 8, "{tag}: {} points", slice.points.len());
        assert!(slice.butterfly_ok && slice.calendar_ok, "{tag}: arbitrage checks {slice:?}");
        let rmse = rmse_to_truth(slice, truth).unwrap_or_else(|| panic!("{tag}: not in the truth"));
        eprintln!("{tag}: t {:.3}, RMSE {:.4} vol points against the truth", slice.t, rmse * 100.0);
        assert!(rmse <= 0.0015, "{tag}: RMSE {:.3} vol points against the truth", rmse * 100.0);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn surfaces_inside_the_backfill_and_overnight_match_the_truth() {
    use rand::{Rng, SeedableRng};
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    // Two sessions (Monday and Tuesday) of 1-minute mids, backfilled after Tuesday's close: the
    // chain snapshot of the run is later than every bar.
    let cfg = IngestConfig {
        equity: vec![parse_series("1 day/TRADES/20", 20).unwrap(), parse_series("1 min/TRADES/2", 2).unwrap()],
        options: OptionSelection {
            expiry_days: 45,
            strike_band: 0.08,
            max_contracts: 260,
            series: vec![parse_series("1 min/MIDPOINT", 1).unwrap().series],
            sessions: 2,
        },
        pacing_scale: SCALE,
        concurrency: 8,
        ..Default::default()
    };
    let spy = Symbol::new("SPY").unwrap();
    let report = ingest(&sim, &lake, cfg).await.setup(std::slice::from_ref(&spy)).await;
    assert!(report.complete(), "{report:#?}");
    let sessions: Vec<_> =
        ["2026-11-23", "2026-11-24"].iter().map(|d| twslake::calendar::session(d.parse().unwrap()).unwrap()).collect();
    let mut rng = rand::rngs::StdRng::seed_from_u64(20261124);
    for _ in 0..6 {
        let s = &sessions[rng.random_range(0..sessions.len())];
        let minutes = (s.close - s.open).num_minutes();
        let at = s.open
            + chrono::Duration::minutes(rng.random_range(10..=minutes))
            + chrono::Duration::seconds(rng.random_range(0..60));
        let rates = |t: &twslake::sim::truth::Truth| twslake::query::iv::Rates {
            rate: t.rate,
            dividend_yield: t.dividend_yield,
        };
        let truth = twslake::sim::truth::truth(sim.market(), "SPY", at).expect("truth");
        let opts = SurfaceOptions { rates: rates(&truth), dividends: dividends_of(&truth), ..Default::default() };
        let surface = Surfaces::new(&lake).surface(&spy, at, &opts).await.unwrap();
        // No chain snapshot was taken by then: the bars themselves list the contracts.
        assert_eq!(surface.listing, twslake::query::surface::Listing::Bars, "at {at}");
        assert_eq!(surface.series, "1 min MIDPOINT");
        assert!(at - surface.spot_as_of < chrono::Duration::minutes(1), "spot of {} at {at}", surface.spot_as_of);
        assert_matches_truth(&surface, &truth, &format!("at {at}"));
    }
    // Overnight (03:20 New York on Wednesday), from Tuesday's closing bars: the quotes are valued
    // at their own time, so the surface is the truth at the bars' time, not at 03:20.
    let close = sessions[1].close;
    let at: chrono::DateTime<chrono::Utc> = "2026-11-25T08:20:00Z".parse().unwrap();
    let truth = twslake::sim::truth::truth(sim.market(), "SPY", close).expect("truth");
    let opts = SurfaceOptions {
        rates: twslake::query::iv::Rates { rate: truth.rate, dividend_yield: truth.dividend_yield },
        dividends: dividends_of(&truth),
        ..Default::default()
    };
    let surface = Surfaces::new(&lake).surface(&spy, at, &opts).await.unwrap();
    assert_eq!(surface.spot_as_of, close);
    assert!(surface.expiries.iter().all(|e| e.newest_quote == close), "quotes of the close");
    assert_matches_truth(&surface, &truth, "overnight");
}
