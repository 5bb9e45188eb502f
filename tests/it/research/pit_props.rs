//! The point-in-time property: for a random instant t, every answer at t (spot, chain, option
//! panel, surface, and the stored surface history at instants up to t) is unchanged when
//! everything stamped after t is deleted from the lake.

use super::market::{self, Market};
use chrono::{DateTime, Duration, Utc};
use polars::prelude::*;
use proptest::prelude::*;
use twslake::datasets::{surfaces, Dataset};
use twslake::query::collect;
use twslake::query::pit::PointInTime;
use twslake::query::pit::{AsOf, SPOT_SERIES};
use twslake::query::surface::history::HistoryOptions;
use twslake::query::surface::SurfaceOptions;
use twslake::query::surface::Surfaces;
use twslake::Lake;

/// The surface history of the market's session at 5-minute steps, computed as of the end of the
/// day, as text: the rows at instants up to `at` (`computed_at` aside).
async fn history_until(lake: &Lake, m: &Market, at: DateTime<Utc>) -> Vec<String> {
    let end_of_day = m.open() + Duration::hours(12);
    let opts = HistoryOptions { threads: 2, ..HistoryOptions::every(Duration::minutes(5)) };
    match Surfaces::new(lake).surface_history(&m.symbol, m.day, m.day, end_of_day, &opts).await {
        // A lake cut before the first option bar has no history to fit: refused, nothing written.
        Ok(_) | Err(twslake::Error::BadInput { what: "surface history", .. }) => {}
        Err(e) => panic!("{e}"),
    }
    let mut out = Vec::new();
    for p in lake.partitions(Dataset::Surfaces, Some(&m.symbol)).await.unwrap() {
        let data = lake.read_partition(&p).await.unwrap().unwrap();
        for mut r in surfaces::from_batch(&data.batch).into_iter().filter(|r| r.at <= at) {
            r.computed_at = Default::default();
            out.push(format!("{r:?}"));
        }
    }
    out
}

/// Every answer at `at`, as comparable text (errors included: they must not change either).
async fn answers(lake: &Lake, m: &Market, at: DateTime<Utc>) -> Vec<String> {
    let spot = PointInTime::new(lake).spot_at(&m.symbol, at).await.map(|s| format!("{s:?}"));
    let chain = PointInTime::new(lake).chain_as_of(&m.symbol, at).await.map(|df| format!("{df:?}"));
    let q = AsOf { symbol: m.symbol.clone(), series: market::MIDPOINT_1M, from: m.day, at };
    let panel = match PointInTime::new(lake).option_panel(&q, SPOT_SERIES[0]).await {
        Ok(lf) => {
            let sorted = lf.sort(["end", "con_id"], Default::default());
            collect(sorted).await.map(|df| (df.height(), df))
        }
        Err(e) => Err(e),
    };
    let surface = Surfaces::new(lake).surface(&m.symbol, at, &SurfaceOptions::default()).await;
    let text = |r: twslake::Result<String>| r.unwrap_or_else(|e| format!("error: {e}"));
    let panel = panel.map(|(n, df)| {
        // Full-precision checksums of every column: `{df:?}` elides the middle rows.
        let sums: Vec<String> = df
            .columns()
            .iter()
            .map(|c| match c.cast(&DataType::Float64) {
                Ok(f) => format!("{}={:?}", c.name(), f.f64().map(|a| a.sum()).ok().flatten()),
                Err(_) => format!("{}={}", c.name(), c.n_unique().unwrap_or(0)),
            })
            .collect();
        format!("{n} rows {}", sums.join(" "))
    });
    vec![text(spot), text(chain), text(panel), text(surface.map(|s| serde_json::to_string(&s).unwrap()))]
}

async fn check(at: DateTime<Utc>) {
    let m = Market { minutes: 45, ..Market::standard() };
    let (full_dir, cut_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let full = Lake::open(full_dir.path().to_str().unwrap()).unwrap();
    let cut = Lake::open(cut_dir.path().to_str().unwrap()).unwrap();
    market::write(&full, &m, None).await;
    market::write(&cut, &m, Some(at)).await;
    let (a, b) = (answers(&full, &m, at).await, answers(&cut, &m, at).await);
    for (x, y) in a.iter().zip(&b) {
        assert_eq!(x, y, "at {at}");
    }
    let (a, b) = (history_until(&full, &m, at).await, history_until(&cut, &m, at).await);
    assert_eq!(a, b, "surface history up to {at}");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 12, ..ProptestConfig::default() })]

    /// Instants from before the first snapshot to after the last bar, to the second.
    #[test]
    fn answers_do_not_depend_on_later_data(secs in 0i64..(100 * 60)) {
        let m = Market::standard();
        let at = m.snapshots()[0] - Duration::minutes(5) + Duration::seconds(secs);
        let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        rt.block_on(check(at));
    }
}
