//! The storage suite: every test runs on the local file system and on S3.

use super::on_both;
use crate::support::*;
use polars::prelude::*;
use twslake::datasets::{equity_bars, option_bars, Dataset};
use twslake::domain::Symbol;
use twslake::domain::{DateWindow, MissingWindow};
use twslake::lake::layout::Partition;
use twslake::lake::manifest::{Outcome, Request};
use twslake::lake::validate::ProblemKind;
use twslake::query::coverage::Coverage;
use twslake::query::coverage::SeriesSpec;
use twslake::query::status;
use twslake::query::Scans;
use twslake::query::{collect, ScanFilter};
use twslake::{calendar, Error};

on_both!(
    daily_bars_round_trip_into_yearly_partitions,
    rewriting_merges_instead_of_duplicating,
    coverage_counts_final_answers_only,
    option_bars_of_a_day_are_one_partition,
    validate_finds_every_kind_of_problem,
    refused_input_changes_nothing,
    manifest_compaction_keeps_every_entry,
    interrupted_record_is_settled,
    record_interrupted_between_partitions_names_only_what_it_wrote,
    status_summarises_the_lake,
);

fn spy() -> Symbol {
    Symbol::new("SPY").unwrap()
}

fn spec(symbol: &Symbol) -> SeriesSpec {
    SeriesSpec { dataset: Dataset::EquityBars, symbol: symbol.clone(), con_id: None, series: DAILY }
}

async fn record_daily(lake: &twslake::Lake, symbol: &Symbol, w: DateWindow, at: chrono::DateTime<chrono::Utc>) {
    let bars = daily_bars(&w.trading_days(), at);
    let batch = equity_bars::to_batch(&bars);
    let outcome = if bars.is_empty() { Outcome::Empty } else { Outcome::Ok { rows: bars.len() as u64 } };
    lake.record(Request::equity_bars(symbol, DAILY, w), at, outcome, Some(&batch)).await.unwrap();
}

async fn daily_bars_round_trip_into_yearly_partitions(f: Fixture) {
    let lake = f.lake();
    let sym = Symbol::new("BRK B").unwrap();
    let at = t("2025-01-10T00:00:00Z");
    let w = DateWindow::new(d("2023-01-01"), d("2024-12-31")).unwrap();
    record_daily(&lake, &sym, w, at).await;
    let parts = lake.partitions(Dataset::EquityBars, Some(&sym)).await.unwrap();
    assert_eq!(parts.len(), 2, "two years of daily bars are two partitions, not 500 files ({})", f.name);

    let df =
        collect(Scans::new(&lake).scan(Dataset::EquityBars, &ScanFilter::symbol(&sym)).await.unwrap()).await.unwrap();
    assert_eq!(df.height(), 250 + 252);
    assert_eq!(df.column("date").unwrap().dtype(), &DataType::Date);
    assert_eq!(df.column("symbol").unwrap().str().unwrap().get(0), Some("BRK B"));
    let rows = equity_bars::from_batch(&equity_bars::to_batch(&daily_bars(&w.trading_days(), at)));
    let closes: Vec<f64> = df.column("close").unwrap().f64().unwrap().into_no_null_iter().collect();
    assert_eq!(closes, rows.iter().map(|r| r.close).collect::<Vec<_>>());

    // A date filter reaches the files: one year's partition is enough.
    let filter = ScanFilter { from: Some(d("2024-03-01")), to: Some(d("2024-03-31")), ..ScanFilter::symbol(&sym) };
    let march = collect(Scans::new(&lake).scan(Dataset::EquityBars, &filter).await.unwrap()).await.unwrap();
    assert_eq!(march.height(), 20);

    let present = Coverage::new(&lake).present_dates(&spec(&sym), d("2024-12-20"), d("2025-01-10")).await.unwrap();
    assert_eq!(
        present,
        vec![
            d("2024-12-20"),
            d("2024-12-23"),
            d("2024-12-24"),
            d("2024-12-26"),
            d("2024-12-27"),
            d("2024-12-30"),
            d("2024-12-31")
        ]
    );
    let missing = Coverage::new(&lake).missing_windows(&spec(&sym), d("2024-12-20"), d("2025-01-10")).await.unwrap();
    assert_eq!(missing, vec![MissingWindow { start: d("2025-01-02"), end: d("2025-01-10"), trading_days: 6 }]);
}

async fn rewriting_merges_instead_of_duplicating(f: Fixture) {
    let lake = f.lake();
    let sym = spy();
    let w = DateWindow::new(d("2024-06-03"), d("2024-06-28")).unwrap();
    record_daily(&lake, &sym, w, t("2024-07-01T00:00:00Z")).await;
    record_daily(&lake, &sym, w, t("2024-07-01T00:00:00Z")).await;
    let mut newer = daily_bars(&w.trading_days(), t("2024-07-02T00:00:00Z"));
    newer[3].close = 1.0;
    newer[3].low = 0.5;
    lake.write(Dataset::EquityBars, &sym, &equity_bars::to_batch(&newer[3..5]), None).await.unwrap();
    let p = Partition::for_date(Dataset::EquityBars, &sym, Some(DAILY), d("2024-06-03")).unwrap();
    let data = lake.read_partition(&p).await.unwrap().unwrap();
    let rows = equity_bars::from_batch(&data.batch);
    assert_eq!(rows.len(), w.trading_days().len(), "no duplicates after rewrites ({})", f.name);
    assert_eq!(rows[3].close, 1.0, "the newer answer wins");
    assert!(rows.windows(2).all(|p| p[0].ts < p[1].ts), "sorted by key");
    assert_eq!(data.requests.len(), 2, "both requests are named in the footer");
    assert!(lake.validate().await.unwrap().ok());
}

async fn coverage_counts_final_answers_only(f: Fixture) {
    let lake = f.lake();
    let sym = spy();
    // Final answers: rows for two weeks, empty for the next week.
    record_daily(&lake, &sym, DateWindow::new(d("2024-03-04"), d("2024-03-15")).unwrap(), t("2024-04-01T00:00:00Z"))
        .await;
    let empty = DateWindow::new(d("2024-03-18"), d("2024-03-22")).unwrap();
    let at = t("2024-04-01T00:00:00Z");
    lake.record(Request::equity_bars(&sym, DAILY, empty), at, Outcome::Empty, None).await.unwrap();
    // An error covers nothing.
    let err = DateWindow::new(d("2024-03-25"), d("2024-03-28")).unwrap();
    let e = Outcome::Error {
        code: 162,
        message: "Historical Market Data Service error message:HMDS query returned no data".into(),
    };
    lake.record(Request::equity_bars(&sym, DAILY, err), at, e, None).await.unwrap();
    // Asked at 12:00 New York on 2024-04-05: that day's session was not over.
    let during = DateWindow::new(d("2024-04-01"), d("2024-04-05")).unwrap();
    record_daily(&lake, &sym, during, t("2024-04-05T16:00:00Z")).await;

    let missing = Coverage::new(&lake).missing_windows(&spec(&sym), d("2024-03-01"), d("2024-04-08")).await.unwrap();
    let want = vec![
        MissingWindow { start: d("2024-03-01"), end: d("2024-03-01"), trading_days: 1 },
        MissingWindow { start: d("2024-03-25"), end: d("2024-03-28"), trading_days: 4 },
        MissingWindow { start: d("2024-04-05"), end: d("2024-04-08"), trading_days: 2 },
    ];
    assert_eq!(missing, want, "{}", f.name);
    let cov = Coverage::new(&lake).coverage(&spec(&sym), d("2024-03-01"), d("2024-04-08")).await.unwrap();
    assert_eq!(
        cov,
        vec![
            DateWindow::new(d("2024-03-04"), d("2024-03-22")).unwrap(),
            DateWindow::new(d("2024-04-01"), d("2024-04-04")).unwrap()
        ]
    );
    // Another series of the same symbol is untouched by all this.
    let other = SeriesSpec { con_id: Some(1), dataset: Dataset::OptionBars, ..spec(&sym) };
    assert_eq!(Coverage::new(&lake).missing_windows(&other, d("2024-03-01"), d("2024-03-08")).await.unwrap().len(), 1);
}

async fn option_bars_of_a_day_are_one_partition(f: Fixture) {
    let lake = f.lake();
    let sym = spy();
    let day = d("2024-11-22");
    let at = t("2024-11-23T00:00:00Z");
    let mut rows = Vec::new();
    for con_id in 1..=20 {
        let contract = option_bars::OptionContract {
            con_id,
            expiry: d("2024-12-20"),
            strike: 580.0 + con_id as f64,
            right: if con_id % 2 == 0 { twslake::domain::Right::Call } else { twslake::domain::Right::Put },
            multiplier: 100.0,
        };
        rows.extend(
            minute_bars(day, 390, at).into_iter().map(|bar| option_bars::OptionBar { contract: contract.clone(), bar }),
        );
    }
    lake.write(Dataset::OptionBars, &sym, &option_bars::to_batch(&rows), None).await.unwrap();
    let parts = lake.partitions(Dataset::OptionBars, Some(&sym)).await.unwrap();
    assert_eq!(parts.len(), 1, "{}", f.name);
    assert_eq!(parts[0].path().as_ref(), "option_bars/symbol=SPY/year=2024/1min-TRADES-2024-11-22.parquet");
    let lf = Scans::new(&lake).scan(Dataset::OptionBars, &ScanFilter::symbol(&sym)).await.unwrap();
    let df = collect(lf.filter(col("con_id").eq(lit(7i64))).select([len()])).await.unwrap();
    assert_eq!(df.column("len").unwrap().get(0).unwrap().extract::<u64>(), Some(390));
}

async fn validate_finds_every_kind_of_problem(f: Fixture) {
    use object_store::{ObjectStoreExt, PutPayload};
    let lake = f.lake();
    let sym = spy();
    record_daily(&lake, &sym, DateWindow::new(d("2024-01-02"), d("2024-01-31")).unwrap(), t("2024-02-01T00:00:00Z"))
        .await;
    record_daily(&lake, &sym, DateWindow::new(d("2023-01-03"), d("2023-01-31")).unwrap(), t("2024-02-01T00:00:00Z"))
        .await;
    assert!(lake.validate().await.unwrap().ok());
    let store = lake.store();
    let put = |p: &str, b: Vec<u8>| {
        let p = twslake::lake::layout::obj(p);
        async move { store.put(&p, PutPayload::from(b)).await.unwrap() }
    };
    put("equity_bars/symbol=SPY/notes.txt", b"hello".to_vec()).await;
    put("equity_bars/symbol=SPY/year=2022/1d-TRADES.parquet", b"PAR1 torn".to_vec()).await;
    // Rows written around the merge: a duplicated key and an absurd bar.
    let mut bars = daily_bars(&[d("2021-03-01"), d("2021-03-02")], t("2021-04-01T00:00:00Z"));
    bars.push(bars[0].clone());
    bars[1].high = bars[1].low - 1.0;
    let bytes =
        twslake::lake::parquet_io::encode(Dataset::EquityBars, &equity_bars::to_batch(&bars), &Default::default())
            .unwrap();
    put("equity_bars/symbol=SPY/year=2021/1d-TRADES.parquet", bytes).await;
    // The 2023 partition disappears behind the manifest's back.
    store.delete(&twslake::lake::layout::obj("equity_bars/symbol=SPY/year=2023/1d-TRADES.parquet")).await.unwrap();

    let report = lake.validate().await.unwrap();
    let kinds: Vec<ProblemKind> = report.problems.iter().map(|p| p.kind).collect();
    for k in [
        ProblemKind::Foreign,
        ProblemKind::Corrupt,
        ProblemKind::DuplicateKeys,
        ProblemKind::BadRows,
        ProblemKind::MissingPartition,
    ] {
        assert!(kinds.contains(&k), "{k:?} not found in {:#?} ({})", report.problems, f.name);
    }
    assert!(report.problems.iter().any(|p| p.path.contains("notes.txt")));
    // The command exits non-zero and names the files.
    let (code, out, _) = twslake(&["validate", "--lake", &f.url], &f.env());
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("year=2022/1d-TRADES.parquet"), "{out}");
}

async fn refused_input_changes_nothing(f: Fixture) {
    let lake = f.lake();
    // A request names its symbol by type: a hostile one is refused before any request exists.
    for bad in ["../x", "a/b", "", "x\ny"] {
        let err = twslake::domain::Symbol::new(bad).unwrap_err();
        assert!(matches!(err, Error::BadInput { .. }), "{err}");
        assert!(err.to_string().contains(&format!("{bad:?}")), "the error names the input: {err}");
    }
    let mut bars = daily_bars(&[d("2024-01-02"), d("2024-01-03")], t("2024-02-01T00:00:00Z"));
    bars[1].close = f64::NAN;
    let err = lake.write(Dataset::EquityBars, &spy(), &equity_bars::to_batch(&bars), None).await.unwrap_err();
    assert!(err.to_string().contains("close"), "{err}");
    bars[1].close = 1.0;
    bars[0].high = -1.0;
    assert!(lake.write(Dataset::EquityBars, &spy(), &equity_bars::to_batch(&bars), None).await.is_err());
    assert!(lake.list(None).await.unwrap().is_empty(), "nothing was written ({})", f.name);

    let (code, _, err) = twslake(&["gaps", "../x", "--lake", &f.url], &f.env());
    assert_eq!(code, 2);
    assert!(err.contains("invalid symbol \"../x\""), "{err}");
}

async fn manifest_compaction_keeps_every_entry(f: Fixture) {
    let lake = f.lake();
    let sym = spy();
    let days = calendar::trading_days(d("2024-01-02"), d("2024-02-29"));
    for day in &days[..24] {
        let w = DateWindow::new(*day, *day).unwrap();
        lake.record(Request::equity_bars(&sym, DAILY, w), t("2024-03-01T00:00:00Z"), Outcome::Empty, None)
            .await
            .unwrap();
    }
    let before = lake.manifest(&sym).await.unwrap();
    assert_eq!((before.entries.len(), before.logs), (24, 24));
    // Two compactions race: one wins, the other changes nothing.
    let (a, b) = tokio::join!(lake.compact_manifest(&sym), lake.compact_manifest(&sym));
    let (a, b) = (a.unwrap(), b.unwrap());
    assert!(a.is_some() || b.is_some(), "{} {a:?} {b:?}", f.name);
    for day in &days[24..30] {
        let w = DateWindow::new(*day, *day).unwrap();
        lake.record(Request::equity_bars(&sym, DAILY, w), t("2024-03-01T00:00:00Z"), Outcome::Empty, None)
            .await
            .unwrap();
    }
    let last = lake.compact_manifest(&sym).await.unwrap().unwrap();
    assert!(last >= 2, "a new snapshot after more logs: {last}");
    let after = lake.manifest(&sym).await.unwrap();
    assert_eq!(after.entries.len(), 30);
    assert_eq!(after.logs, 0);
    let ids = |m: &twslake::lake::manifest::SymbolManifest| {
        m.entries.iter().map(|e| e.id.clone()).collect::<std::collections::BTreeSet<_>>()
    };
    assert!(ids(&before).is_subset(&ids(&after)));
}

async fn interrupted_record_is_settled(f: Fixture) {
    let lake = f.lake();
    let sym = spy();
    let at = t("2024-02-01T00:00:00Z");
    // A writer that died after its rows became visible but before its log was written…
    let w1 = DateWindow::new(d("2024-01-02"), d("2024-01-05")).unwrap();
    let batch = equity_bars::to_batch(&daily_bars(&w1.trading_days(), at));
    let mut e1 =
        twslake::lake::manifest::Entry::new(Request::equity_bars(&sym, DAILY, w1), at, at, Outcome::Ok { rows: 4 });
    let parts = twslake::lake::write::split(Dataset::EquityBars, &sym, &batch).unwrap();
    e1.partitions = parts.keys().map(|p| p.path().to_string()).collect();
    lake.put_pending(&sym, std::slice::from_ref(&e1)).await.unwrap();
    for (p, rows) in &parts {
        lake.commit(p, rows, &[e1.id.clone()].into()).await.unwrap();
    }
    // …and one that died before its rows became visible.
    let w2 = DateWindow::new(d("2024-01-08"), d("2024-01-12")).unwrap();
    let mut e2 =
        twslake::lake::manifest::Entry::new(Request::equity_bars(&sym, DAILY, w2), at, at, Outcome::Ok { rows: 5 });
    e2.partitions = e1.partitions.clone();
    lake.put_pending(&sym, std::slice::from_ref(&e2)).await.unwrap();

    let m = lake.manifest(&sym).await.unwrap();
    assert_eq!(m.entries.iter().map(|e| e.id.clone()).collect::<Vec<_>>(), vec![e1.id.clone()], "{}", f.name);
    assert_eq!(m.pending_lost, vec![e2.id.clone()]);
    let missing = Coverage::new(&lake).missing_windows(&spec(&sym), d("2024-01-02"), d("2024-01-12")).await.unwrap();
    assert_eq!(missing, vec![MissingWindow { start: d("2024-01-08"), end: d("2024-01-12"), trading_days: 5 }]);
    assert_eq!(lake.recover_manifest(&sym).await.unwrap(), (1, 1));
    let m = lake.manifest(&sym).await.unwrap();
    assert_eq!((m.entries.len(), m.pending_lost.len(), m.pending_visible.len()), (1, 0, 0));
    assert!(lake.validate().await.unwrap().ok());
}

/// A writer killed after the first of an entry's partitions and before the second: the entry is
/// remembered as an error (asked again) naming only the partition that holds its rows, so
/// `validate` stays clean and the rows are never unaccounted for.
async fn record_interrupted_between_partitions_names_only_what_it_wrote(f: Fixture) {
    let lake = f.lake();
    let sym = spy();
    let at = t("2024-02-01T00:00:00Z");
    let w = DateWindow::new(d("2023-12-27"), d("2024-01-05")).unwrap();
    let batch = equity_bars::to_batch(&daily_bars(&w.trading_days(), at));
    let mut e =
        twslake::lake::manifest::Entry::new(Request::equity_bars(&sym, DAILY, w), at, at, Outcome::Ok { rows: 7 });
    let parts = twslake::lake::write::split(Dataset::EquityBars, &sym, &batch).unwrap();
    assert_eq!(parts.len(), 2, "the window spans two yearly partitions");
    e.partitions = parts.keys().map(|p| p.path().to_string()).collect();
    lake.put_pending(&sym, std::slice::from_ref(&e)).await.unwrap();
    let (first, rows) = parts.iter().next().unwrap();
    lake.commit(first, rows, &[e.id.clone()].into()).await.unwrap();

    let m = lake.manifest(&sym).await.unwrap();
    assert_eq!(m.entries.len(), 1, "{}", f.name);
    assert_eq!(m.entries[0].partitions, vec![first.path().to_string()]);
    assert!(matches!(m.entries[0].outcome, Outcome::Error { .. }), "{:?}", m.entries[0].outcome);
    let report = lake.validate().await.unwrap();
    assert!(report.ok(), "{:#?}", report.problems);
    let missing = Coverage::new(&lake).missing_windows(&spec(&sym), d("2023-12-27"), d("2024-01-05")).await.unwrap();
    assert_eq!(missing.iter().map(|m| m.trading_days).sum::<usize>(), 7, "the whole window is asked again");
    assert_eq!(lake.recover_manifest(&sym).await.unwrap(), (1, 0));
    let m = lake.manifest(&sym).await.unwrap();
    assert_eq!(m.entries[0].partitions, vec![first.path().to_string()]);
    assert!(lake.validate().await.unwrap().ok());
}

async fn status_summarises_the_lake(f: Fixture) {
    let lake = f.lake();
    twslake::lake::example::write_example(&lake).await.unwrap();
    let rows = status::status(&lake, t("2024-01-05T21:00:00Z")).await.unwrap();
    let find = |s: &str, ds: &str| {
        rows.iter().find(|r| r.symbol == s && r.dataset == ds).unwrap_or_else(|| panic!("{s} {ds}: {rows:#?}"))
    };
    let eq = find("BRK B", "equity_bars");
    assert_eq!((eq.rows, eq.first_date, eq.last_date), (7 + 30, Some(d("2023-12-27")), Some(d("2024-01-05"))));
    assert_eq!(eq.missing_windows, 0, "{eq:?}");
    let ch = find("SPY", "chains");
    assert_eq!((ch.rows, ch.latest_snapshot_age_secs), (6, Some(6 * 3600)));
    assert_eq!(find("SPY", "option_bars").rows, 20);
    assert_eq!(find("SPY", "contracts").rows, 3);
    let sf = find("SPY", "surfaces");
    assert_eq!((sf.rows, sf.requests, sf.missing_windows), (3, 1, 0), "{sf:?}");
    let (code, out, err) = twslake(&["status", "--lake", &f.url, "--json"], &f.env());
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    // Seven datasets for each of the two symbols.
    assert_eq!(doc["datasets"].as_array().unwrap().len(), 14, "{out}");

    let args = ["gaps", "BRK B", "--lake", &f.url, "--from", "2023-12-20", "--to", "2024-01-10", "--json"];
    let (code, out, err) = twslake(&args, &f.env());
    assert_eq!(code, 0, "{err}");
    let doc: serde_json::Value = serde_json::from_str(&out).unwrap();
    let windows: Vec<(String, String, u64)> = doc["windows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["start"].as_str().unwrap().into(),
                w["end"].as_str().unwrap().into(),
                w["trading_days"].as_u64().unwrap(),
            )
        })
        .collect();
    let want = [("2023-12-20", "2023-12-26", 4), ("2024-01-08", "2024-01-10", 3)];
    assert_eq!(windows, want.map(|(a, b, n)| (a.to_string(), b.to_string(), n)));
    assert_eq!(doc["missing_trading_days"], 7);
}
