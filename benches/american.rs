//! American implied vols with discrete dividends on one core (figures in BENCHMARKS.md,
//! "American options"): a chain of 10,000 options of one underlying — 20 expiries from 1 week
//! to 16 months, 250 strikes each from −2.5 to +2.5 standard deviations, calls and puts, a
//! skewed smile, quarterly cash dividends of 0.55 — priced by `twslake::pricing` at the smile's
//! vols, then inverted. `benches/compare_american.py` builds the same chain and times
//! QuantLib's American engines on it.

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use twslake::pricing::{implied_vols, American, Dividend};

/// Expiries, strikes per expiry and rights: 20 × 250 × 2.
const EXPIRIES: usize = 20;
const STRIKES: usize = 250;
const SPOT: f64 = 100.0;
const RATE: f64 = 0.04;

/// One option of the chain: (days to expiry, strike, call, vol); the formulas are the ones
/// `benches/compare_american.py` uses.
fn chain() -> Vec<(f64, f64, bool, f64)> {
    let mut out = Vec::new();
    for e in 0..EXPIRIES {
        let days = (7.0 * 1.25f64.powi(e as i32)).round();
        let t = days / 365.0;
        for s in 0..STRIKES {
            let z = -2.5 + 5.0 * s as f64 / (STRIKES - 1) as f64;
            let vol = 0.22 - 0.03 * z + 0.01 * z * z;
            let strike = (SPOT * (z * 0.25 * t.sqrt()).exp() * 100.0).round() / 100.0;
            for call in [true, false] {
                out.push((days, strike, call, vol));
            }
        }
    }
    out
}

/// Ex-dates 30 days from now and every 91 days after, 0.55 each.
fn dividends() -> Vec<Dividend> {
    (0..6).map(|m| Dividend { t: (30.0 + 91.0 * m as f64) / 365.0, amount: 0.55 }).collect()
}

fn bench(c: &mut Criterion) {
    let divs = dividends();
    let options = chain();
    let n = options.len();
    let ts: Vec<f64> = options.iter().map(|o| o.0 / 365.0).collect();
    let strikes: Vec<f64> = options.iter().map(|o| o.1).collect();
    let calls: Vec<bool> = options.iter().map(|o| o.2).collect();
    let price = |i: usize, vol: f64| {
        American {
            spot: SPOT,
            strike: strikes[i],
            t: ts[i],
            rate: RATE,
            yield_rate: 0.0,
            dividends: &divs,
            is_call: calls[i],
        }
        .price(vol)
    };
    let prices: Vec<f64> = (0..n).map(|i| price(i, options[i].3)).collect();
    let spots = vec![SPOT; n];
    let rates = vec![RATE; n];
    let yields = vec![0.0; n];
    let schedules: Vec<&[Dividend]> = vec![&divs[..]; n];
    let ivs = implied_vols(&prices, &spots, &strikes, &ts, &rates, &yields, &schedules, &calls);
    let recovered = (0..n).filter(|i| (ivs[*i] - options[*i].3).abs() < 1e-9).count();
    let near = (0..n).filter(|i| (ivs[*i] - options[*i].3).abs() < 1e-4).count();
    let time_value = (0..n)
        .filter(|i| {
            let o = American {
                spot: SPOT,
                strike: strikes[*i],
                t: ts[*i],
                rate: RATE,
                yield_rate: 0.0,
                dividends: &divs,
                is_call: calls[*i],
            };
            prices[*i] - o.intrinsic() > 1e-3
        })
        .count();
    eprintln!(
        "chain of {n}: {recovered} implied vols recovered to 1e-9, {near} to 1e-4, {time_value} with a time value above 0.001"
    );

    let mut g = c.benchmark_group("american");
    g.sample_size(10);
    g.throughput(Throughput::Elements(n as u64));
    g.bench_function("implied_vols_10k_chain", |b| {
        b.iter(|| implied_vols(&prices, &spots, &strikes, &ts, &rates, &yields, &schedules, &calls))
    });
    // The per-option solver on the same chain, for the table's gain.
    g.bench_function("implied_vol_one_by_one_10k_chain", |b| {
        b.iter(|| {
            (0..n)
                .map(|i| {
                    let o = American {
                        spot: SPOT,
                        strike: strikes[i],
                        t: ts[i],
                        rate: RATE,
                        yield_rate: 0.0,
                        dividends: &divs,
                        is_call: calls[i],
                    };
                    o.implied_vol(prices[i]).unwrap_or(0.0)
                })
                .sum::<f64>()
        })
    });
    g.bench_function("prices_10k_chain", |b| b.iter(|| (0..n).map(|i| price(i, options[i].3)).sum::<f64>()));
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
