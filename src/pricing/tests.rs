//! The pricer's own properties: bounds, early exercise, convergence, round trips, greeks.

use super::{implied_vols, American, Dividend};
use implied_vol::{DefaultSpecialFn, SpecialFn};

fn option(strike: f64, t: f64, is_call: bool, dividends: &[Dividend]) -> American<'_> {
    American { spot: 100.0, strike, t, rate: 0.04, yield_rate: 0.01, dividends, is_call }
}

const QUARTERLY: [Dividend; 3] =
    [Dividend { t: 0.1, amount: 0.8 }, Dividend { t: 0.35, amount: 0.8 }, Dividend { t: 0.6, amount: 0.8 }];

#[test]
fn american_is_at_least_european_and_the_exercise_value() {
    for is_call in [true, false] {
        for strike in [70.0, 90.0, 100.0, 110.0, 130.0] {
            for divs in [&[][..], &QUARTERLY[..]] {
                let o = option(strike, 0.75, is_call, divs);
                let p = o.price(0.3);
                assert!(p >= o.european(0.3) - 1e-12, "{o:?}: {p} below European {}", o.european(0.3));
                assert!(p >= o.intrinsic() - 1e-12, "{o:?}: {p} below intrinsic");
            }
        }
    }
}

#[test]
fn a_call_without_dividends_or_yield_is_european() {
    let o = American { spot: 100.0, strike: 95.0, t: 1.0, rate: 0.05, yield_rate: 0.0, dividends: &[], is_call: true };
    assert_eq!(o.price(0.25), o.european(0.25));
    // And the tree agrees that exercising early never pays.
    let p = o.tree(0.25, 201);
    assert!((p.american - p.european).abs() < 1e-12, "{} vs {}", p.american, p.european);
}

#[test]
fn a_deep_in_the_money_put_has_an_early_exercise_premium() {
    let o =
        American { spot: 100.0, strike: 140.0, t: 1.0, rate: 0.05, yield_rate: 0.0, dividends: &[], is_call: false };
    let premium = o.price(0.2) - o.european(0.2);
    assert!(premium > 0.5, "premium {premium}");
    // At this depth exercising now is optimal: the price is the exercise value (to the
    // extrapolation's error).
    assert!((o.price(0.2) - 40.0).abs() < 1e-4, "{}", o.price(0.2));
}

#[test]
fn a_call_before_a_large_dividend_is_worth_exercising_for_it() {
    let divs = [Dividend { t: 0.1, amount: 5.0 }];
    let o =
        American { spot: 100.0, strike: 80.0, t: 0.5, rate: 0.03, yield_rate: 0.0, dividends: &divs, is_call: true };
    assert!(o.price(0.2) - o.european(0.2) > 1.0, "{} vs {}", o.price(0.2), o.european(0.2));
}

#[test]
fn the_tree_converges_as_steps_grow() {
    let o = option(105.0, 1.0, false, &QUARTERLY);
    let fine = o.price_with_steps(0.3, 4001);
    let errors: Vec<f64> = [25, 101, 401].iter().map(|n| (o.price_with_steps(0.3, *n) - fine).abs()).collect();
    assert!(errors[0] > errors[2], "{errors:?}");
    assert!(errors[2] < 1e-3, "{errors:?}");
    assert!(errors[1] < 5e-3, "{errors:?}");
}

#[test]
fn price_to_implied_vol_to_price_round_trips() {
    let mut worst: f64 = 0.0;
    for is_call in [true, false] {
        for strike in [60.0, 85.0, 100.0, 115.0, 150.0] {
            for t in [7.0 / 365.0, 0.25, 1.0, 2.0] {
                for divs in [&[][..], &QUARTERLY[..]] {
                    for vol in [0.1, 0.3, 0.8] {
                        let o = option(strike, t, is_call, divs);
                        let p = o.price(vol);
                        // A price that barely moves with the vol does not pin one (deep in
                        // the money: at the exercise value, or at the forward's bound).
                        if o.price(vol * 1.01) - p < 1e-9 {
                            continue;
                        }
                        let iv = o.implied_vol(p).unwrap_or_else(|| panic!("{o:?} vol {vol}: no IV of {p}"));
                        let back = o.price(iv);
                        let rel = ((back - p) / p).abs();
                        worst = worst.max(rel);
                        assert!(rel < 1e-10, "{o:?} vol {vol}: {p} -> {iv} -> {back}");
                    }
                }
            }
        }
    }
    assert!(worst.is_finite());
}

#[test]
fn prices_outside_the_bounds_have_no_implied_vol() {
    let o = option(120.0, 0.5, false, &QUARTERLY);
    assert_eq!(o.implied_vol(19.0), None, "below intrinsic 20");
    assert_eq!(o.implied_vol(120.5), None, "above the strike");
    assert_eq!(o.implied_vol(f64::NAN), None);
    let call = option(80.0, 0.5, true, &[]);
    assert_eq!(call.implied_vol(100.5), None, "above the spot");
    let bad = American { spot: -1.0, ..call };
    assert_eq!(bad.implied_vol(5.0), None);
    assert!(bad.price(0.2).is_nan());
    let drained = American { dividends: &[Dividend { t: 0.1, amount: 150.0 }], ..call };
    assert!(drained.price(0.2).is_nan(), "dividends worth more than the spot");
}

#[test]
fn greeks_match_black_where_american_is_european() {
    // No dividend and no yield: the American call is European, whose greeks are closed form.
    let (s, k, t, r, vol) = (100.0, 105.0, 0.5, 0.03, 0.25);
    let o = American { spot: s, strike: k, t, rate: r, yield_rate: 0.0, dividends: &[], is_call: true };
    let g = o.greeks(vol);
    let sd = vol * t.sqrt();
    let d1 = ((s / k).ln() + (r + 0.5 * vol * vol) * t) / sd;
    let n = |x: f64| (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt();
    let cdf = DefaultSpecialFn::norm_cdf;
    let delta = cdf(d1);
    let gamma = n(d1) / (s * sd);
    let vega = s * n(d1) * t.sqrt() * 0.01;
    let day = 1.0 / 365.0;
    let theta = American { t: t - day, ..o }.european(vol) - o.european(vol);
    assert!((g.delta - delta).abs() < 1e-5, "delta {} vs {delta}", g.delta);
    assert!((g.gamma - gamma).abs() < 1e-5, "gamma {} vs {gamma}", g.gamma);
    assert!((g.vega - vega).abs() < 1e-6, "vega {} vs {vega}", g.vega);
    assert!((g.theta - theta).abs() < 1e-9, "theta {} vs {theta}", g.theta);
}

#[test]
fn greeks_match_finite_differences_of_the_price() {
    // A put with dividends: greeks against differences taken with other bump sizes.
    let o = option(105.0, 0.8, false, &QUARTERLY);
    let vol = 0.3;
    let g = o.greeks(vol);
    let h = 0.2;
    let at = |spot: f64| American { spot, ..o }.price(vol);
    let delta = (at(100.0 + h) - at(100.0 - h)) / (2.0 * h);
    let gamma = (at(100.0 + 2.0 * h) - 2.0 * o.price(vol) + at(100.0 - 2.0 * h)) / (4.0 * h * h);
    let vega = (o.price(vol + 0.005) - o.price(vol - 0.005)) / 0.01 * 0.01;
    assert!((g.delta - delta).abs() < 2e-3, "delta {} vs {delta}", g.delta);
    assert!((-1.0..0.0).contains(&g.delta));
    assert!((g.gamma - gamma).abs() < 2e-3, "gamma {} vs {gamma}", g.gamma);
    assert!(g.gamma > 0.0);
    assert!((g.vega - vega).abs() < 1e-3, "vega {} vs {vega}", g.vega);
    assert!(g.theta < 0.0, "theta {}", g.theta);
}

#[test]
fn the_batch_matches_one_by_one_and_marks_the_impossible() {
    let strikes = [90.0, 100.0, 110.0];
    let o = |i: usize| option(strikes[i], 0.5, i != 1, &QUARTERLY);
    let mut prices: Vec<f64> = (0..3).map(|i| o(i).price(0.2 + 0.1 * i as f64)).collect();
    prices.push(0.0);
    let n = prices.len();
    let ivs = implied_vols(
        &prices,
        &[100.0; 4],
        &[90.0, 100.0, 110.0, 100.0],
        &[0.5; 4],
        &[0.04; 4],
        &[0.01; 4],
        &vec![&QUARTERLY[..]; n],
        &[true, false, true, true],
    );
    for (i, iv) in ivs.iter().enumerate().take(3) {
        assert!((iv - (0.2 + 0.1 * i as f64)).abs() < 1e-9, "{i}: {iv}");
    }
    assert!(ivs[3].is_nan());
}

#[test]
fn absurd_step_counts_are_bounded_not_fatal() {
    let o = option(100.0, 0.5, false, &QUARTERLY);
    assert!(o.price_with_steps(0.3, usize::MAX).is_finite());
    assert!(o.price_with_steps(0.3, 0).is_finite());
    assert!(!o.price(1e6).is_infinite());
}

#[test]
fn the_european_on_the_tree_is_the_backward_pass() {
    // The tree's European price comes from the expiry's payoffs in one sum; a plain backward
    // pass over the same tree must give the same number.
    for is_call in [true, false] {
        for strike in [80.0, 100.0, 125.0] {
            let o = option(strike, 0.6, is_call, &QUARTERLY);
            let (vol, n) = (0.35, 75);
            let s0 = o.risky_spot();
            let (t, r, b) = (o.t, o.rate, o.rate - o.yield_rate);
            let dt = t / n as f64;
            let sd = vol * t.sqrt();
            let d1 = ((s0 / strike).ln() + (b + 0.5 * vol * vol) * t) / sd;
            let pp = |z: f64| {
                let x = z / (n as f64 + 1.0 / 3.0 + 0.1 / (n as f64 + 1.0));
                let root = (0.25 - 0.25 * (-x * x * (n as f64 + 1.0 / 6.0)).exp()).sqrt();
                if z >= 0.0 {
                    0.5 + root
                } else {
                    0.5 - root
                }
            };
            let p = pp(d1 - sd);
            let u = (b * dt).exp() * pp(d1) / p;
            let d = ((b * dt).exp() - p * u) / (1.0 - p);
            let mut v: Vec<f64> = (0..=n)
                .map(|j| {
                    let s = s0 * u.powi(j as i32) * d.powi((n - j) as i32);
                    if is_call {
                        (s - strike).max(0.0)
                    } else {
                        (strike - s).max(0.0)
                    }
                })
                .collect();
            for i in (0..n).rev() {
                for j in 0..=i {
                    v[j] = (-r * dt).exp() * (p * v[j + 1] + (1.0 - p) * v[j]);
                }
            }
            let tree = o.tree(vol, n);
            assert!((tree.european - v[0]).abs() < 1e-11 * v[0].max(1.0), "{o:?}: {} vs {}", tree.european, v[0]);
        }
    }
}

#[test]
fn the_price_is_continuous_in_the_vol_across_an_ex_date() {
    // A call with an ex-date inside a step of the tree, just before expiry: as the vol moves,
    // the exercise boundary at the ex-date crosses nodes, where the smoothing of that level
    // takes over from one node to the next. It must hand over continuously (a smoothing of the
    // cell with the boundary alone, without the neighbours' halves, made a 15-step tree's
    // premium jump by 0.03 here).
    let divs = [Dividend { t: 30.0 / 365.0, amount: 0.55 }];
    let o = American {
        spot: 100.0,
        strike: 102.06,
        t: 33.0 / 365.0,
        rate: 0.04,
        yield_rate: 0.0,
        dividends: &divs,
        is_call: true,
    };
    for n in [15, 25, 101] {
        let premium = |vol: f64| {
            let p = o.tree(vol, n);
            p.american - p.european
        };
        let mut worst: f64 = 0.0;
        let mut last = premium(0.15);
        for i in 1..=2000 {
            let next = premium(0.15 + 1e-4 * i as f64);
            worst = worst.max((next - last).abs());
            last = next;
        }
        // The premium's slope in the vol is below 1 here (a vol step of 1e-4 moves it by
        // well under 1e-3); a jump would show as a step far above that.
        assert!(worst < 2e-4, "{n} steps: largest move {worst:.2e} for a vol step of 1e-4");
    }
}

#[test]
fn a_call_whose_yield_is_rounding_noise_has_its_implied_vol() {
    // From the demo: the forward implies a yield of 3e-16, so the call is not "never early"
    // and goes through the tree, whose premium is 7e-16; its European vol then lies an ulp
    // above the European vol of the whole price, the bound the solver kept to, and the call
    // had no implied vol at all.
    let o = American {
        spot: 507.83,
        strike: 520.0,
        t: 0.07979261796042618,
        rate: 0.04,
        yield_rate: 2.9e-16,
        dividends: &[],
        is_call: true,
    };
    let iv = o.implied_vol(5.55).expect("an implied vol");
    assert!((o.price(iv) - 5.55).abs() < 1e-9, "{iv}");
    let batch =
        super::implied_vols(&[5.55], &[o.spot], &[o.strike], &[o.t], &[o.rate], &[o.yield_rate], &[&[]], &[true]);
    assert!((batch[0] - iv).abs() < 1e-9, "{batch:?}");
}
