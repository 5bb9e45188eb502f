//! Bars per second the simulator serves to the real `ibapi` client over loopback TCP: one
//! historical request at a time, each answered with one bars message, decoded by ibapi.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use ibapi::contracts::Contract;
use ibapi::market_data::historical::{BarSize, Duration as IbDuration, WhatToShow};
use ibapi::Client;
use time::OffsetDateTime;
use twslake::sim::{ManualClock, Sim};

fn bench(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().expect("runtime");
    let now: DateTime<Utc> = DateTime::parse_from_rfc3339("2026-11-24T21:30:00Z").expect("now").with_timezone(&Utc);
    // Pacing shrunk a billion-fold: the benchmark measures serving, not IB's waiting.
    let sim = rt
        .block_on(Sim::builder().seed(7).pacing_scale(1e9).clock(Arc::new(ManualClock::new(now))).start())
        .expect("sim");
    let client = rt
        .block_on(
            Client::builder().address(sim.address()).client_id(1).one_shot_timeout(Duration::from_secs(30)).connect(),
        )
        .expect("client");
    let spy = Contract::stock("SPY").build();
    // The closes of the last 120 sessions (bars of 30 s or less are only kept six months).
    let first = now.date_naive() - chrono::Duration::days(175);
    let ends: Vec<OffsetDateTime> = twslake::calendar::trading_days(first, now.date_naive())
        .into_iter()
        .filter_map(twslake::calendar::session)
        .filter_map(|s| OffsetDateTime::from_unix_timestamp(s.close.timestamp()).ok())
        .collect();
    let cases = [
        ("1 min bars, 1 D", BarSize::Min, IbDuration::days(1), 390u64),
        ("5 secs bars, 3600 S", BarSize::Sec5, IbDuration::seconds(3600), 720),
        ("1 day bars, 1 Y", BarSize::Day, IbDuration::years(1), 251),
    ];
    let mut group = c.benchmark_group("sim_bars");
    group.sample_size(20).measurement_time(Duration::from_secs(8));
    for (name, size, duration, bars) in cases {
        group.throughput(Throughput::Elements(bars));
        let mut i = 0usize;
        group.bench_function(name, |b| {
            b.iter(|| {
                // A different session each time, so cold and cached days are both served.
                i = (i + 1) % ends.len();
                let request = client
                    .historical_data(&spy, size)
                    .what_to_show(WhatToShow::Trades)
                    .duration(duration)
                    .ending(ends[i]);
                let data = rt.block_on(request.fetch()).expect("bars");
                std::hint::black_box(data.bars.len())
            })
        });
    }
    group.finish();
    drop(client);
    rt.block_on(sim.shutdown());
}

criterion_group!(benches, bench);
criterion_main!(benches);
