//! Property tests: missing-window arithmetic and the merge on the primary key.

use crate::support::*;
use chrono::Duration;
use proptest::prelude::*;
use twslake::calendar;
use twslake::datasets::{equity_bars, Dataset};
use twslake::domain::window::missing_windows_from;
use twslake::domain::window::union;
use twslake::domain::DateWindow;
use twslake::lake::parquet_io::merge;

fn window() -> impl Strategy<Value = DateWindow> {
    (0i64..1500, 0i64..60).prop_map(|(start, len)| {
        let s = d("2019-12-20") + Duration::days(start);
        DateWindow::new(s, s + Duration::days(len)).unwrap()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn missing_and_covered_partition_the_trading_days(covered in prop::collection::vec(window(), 0..12), range in window()) {
        let cov = union(covered);
        let missing = missing_windows_from(&cov, range.start, range.end);
        let in_cov = |day| cov.iter().any(|w| w.start <= day && day <= w.end);
        let in_miss = |day| missing.iter().any(|w| w.start <= day && day <= w.end);
        for day in calendar::trading_days(range.start, range.end) {
            prop_assert!(in_cov(day) != in_miss(day), "{day} must be exactly one of covered or missing");
        }
        for w in &missing {
            prop_assert!(calendar::is_trading_day(w.start) && calendar::is_trading_day(w.end));
            prop_assert_eq!(w.trading_days, calendar::trading_days(w.start, w.end).len());
            prop_assert!(calendar::trading_days(w.start, w.end).iter().all(|d| !in_cov(*d)));
        }
        for pair in missing.windows(2) {
            prop_assert!(pair[0].end < pair[1].start, "disjoint and sorted");
            let between = calendar::trading_days(pair[0].end + Duration::days(1), pair[1].start - Duration::days(1));
            prop_assert!(!between.is_empty() && between.iter().all(|d| in_cov(*d)), "merged: only covered days between windows");
        }
    }

    #[test]
    fn merge_is_idempotent_and_order_independent(
        a in prop::collection::vec((0usize..8, 0i64..3, 0u8..4), 0..20),
        b in prop::collection::vec((0usize..8, 0i64..3, 0u8..4), 0..20),
    ) {
        let days = calendar::trading_days(d("2024-01-02"), d("2024-01-12"));
        let rows = |spec: &[(usize, i64, u8)]| {
            let bars: Vec<_> = spec.iter().map(|&(day, version, price)| {
                let mut bar = daily_bars(&[days[day]], t("2024-02-01T00:00:00Z") + Duration::hours(version)).remove(0);
                bar.close = 100.0 + price as f64;
                bar
            }).collect();
            equity_bars::to_batch(&bars)
        };
        let (ra, rb) = (rows(&a), rows(&b));
        let ab = merge(Dataset::EquityBars, &[ra.clone(), rb.clone()]).unwrap();
        let ba = merge(Dataset::EquityBars, &[rb.clone(), ra.clone()]).unwrap();
        prop_assert_eq!(&ab, &ba);
        prop_assert_eq!(&merge(Dataset::EquityBars, std::slice::from_ref(&ab)).unwrap(), &ab);
        let stepwise = merge(Dataset::EquityBars, &[merge(Dataset::EquityBars, &[ra]).unwrap(), rb]).unwrap();
        prop_assert_eq!(&stepwise, &ab);
        let distinct: std::collections::BTreeSet<usize> = a.iter().chain(&b).map(|r| r.0).collect();
        prop_assert_eq!(ab.num_rows(), distinct.len());
    }
}
