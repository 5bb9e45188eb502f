//! Quotes and greeks as the model says; kill and restart; a dropped connection.

use super::*;
use std::collections::HashSet;
use twslake::lake::manifest::Outcome;
use twslake::query::status;

fn at(s: &str) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&chrono::Utc)
}

fn assert_unique(rows: &[Quote]) {
    let keys: HashSet<(i64, i64, i64)> = rows.iter().map(|q| (q.con_id, q.ts.timestamp_micros(), q.seq)).collect();
    assert_eq!(keys.len(), rows.len(), "duplicated primary keys");
    let seqs: HashSet<i64> = rows.iter().map(|q| q.seq).collect();
    assert_eq!(seqs.len(), rows.len(), "seq is unique within a capture and across restarts");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn quotes_and_greeks_match_the_model() {
    let symbols = syms(&["SPY", "QQQ"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let lake = f.lake();
    let run = ingest(&sim, &lake, live_config()).await;
    // Micro-batches merged in the background every 3 flushes: nothing may be lost on the way.
    let opts = LiveOptions { rollup_every: 3, ..fast() };
    let report = capture_for(&run, &symbols, &opts, 3.0).await;
    assert!(report.rolled_up >= 3, "{report:?}");
    assert_eq!(report.lines, 2 + 2 * 4, "{report:?}");
    assert!(report.without_options.is_empty());
    assert!(report.rows > 0 && report.rows == report.rows.min(report.ticks));
    let m = sim.market();
    let mut total = 0;
    for s in &symbols {
        let rows = stored(&lake, s).await;
        total += rows.len() as u64;
        assert_unique(&rows);
        let i = m.symbol_index(s.as_str()).unwrap();
        let spot = m.spot_at(i, at(MIDDAY)).unwrap();
        let truth = twslake::sim::truth::truth(m, s.as_str(), at(MIDDAY)).unwrap();
        let stock: Vec<&Quote> =
            rows.iter().filter(|q| q.sec_type == twslake::domain::SecType::Stock && q.last.is_some()).collect();
        assert!(!stock.is_empty(), "{s}: stock quotes");
        for q in &stock {
            assert_eq!(q.last, Some(spot), "{s}: last is the model's spot");
            assert!(q.bid.unwrap() < spot && spot < q.ask.unwrap());
        }
        let options: Vec<&Quote> =
            rows.iter().filter(|q| q.sec_type == twslake::domain::SecType::Option && q.implied_vol.is_some()).collect();
        let contracts: HashSet<i64> = options.iter().map(|q| q.con_id).collect();
        assert_eq!(contracts.len(), 4, "{s}: every selected option streamed greeks");
        for q in options {
            let expiry = q.expiry.unwrap().format("%Y%m%d").to_string();
            let slice = truth.expiries.iter().find(|e| e.expiry == expiry).expect("expiry in the truth");
            let k = slice.strikes.iter().find(|k| (k.strike - q.strike.unwrap()).abs() < 1e-9).expect("strike");
            assert!((q.implied_vol.unwrap() - k.iv).abs() < 1e-9, "{s} {q:?} vs {}", k.iv);
            assert_eq!(q.underlying_price, Some(truth.spot));
            let delta = q.delta.unwrap();
            match q.right.map(|r| r.letter()) {
                Some("C") => assert!(delta > 0.0 && delta < 1.0, "{delta}"),
                _ => assert!(delta < 0.0 && delta > -1.0, "{delta}"),
            }
            assert!(q.gamma.unwrap() > 0.0 && q.vega.unwrap() > 0.0);
        }
    }
    assert_eq!(total, report.rows, "every row written is visible");
    assert_eq!(opts.metrics.rows_written.load(std::sync::atomic::Ordering::Relaxed), report.rows);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_and_restart_lose_only_unflushed_rows_and_duplicate_none() {
    let symbols = syms(&["SPY"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let lake = f.lake();
    let run = ingest(&sim, &lake, live_config()).await;
    // A kill: the capture future is dropped mid-run, with no flush and no shutdown.
    let opts1 = fast();
    let (_tx, rx) = tokio::sync::watch::channel(false);
    let killed = tokio::time::timeout(Duration::from_millis(2500), live::run(&run, &symbols, &opts1, rx)).await;
    assert!(killed.is_err(), "still capturing when killed");
    let written1 = opts1.metrics.rows_written.load(std::sync::atomic::Ordering::Relaxed);
    let after_kill = stored(&lake, &symbols[0]).await;
    assert!(written1 > 0);
    assert_eq!(after_kill.len() as u64, written1, "every flushed row is visible, nothing torn");
    assert_eq!(scanned_rows(&lake, &symbols[0]).await, after_kill.len(), "the polars scan sees the same rows");
    let left = micro_batch_count(&lake, &symbols[0]).await;
    assert!(left > 0, "a killed run leaves its micro-batches uncompacted");
    let max1 = after_kill.iter().map(|q| q.seq).max().unwrap();
    drop(run);

    let run = ingest(&sim, &lake, live_config()).await;
    let opts2 = fast();
    let report = capture_for(&run, &symbols, &opts2, 1.5).await;
    assert_eq!(report.compacted_at_start, left, "the restart compacts what the killed run left");
    assert!(report.compacted > 0, "{report:?}");
    assert_eq!(micro_batch_count(&lake, &symbols[0]).await, 0, "compacted at the end of the run");
    let rows = stored(&lake, &symbols[0]).await;
    assert_unique(&rows);
    assert_eq!(rows.len() as u64, written1 + report.rows, "no row lost or merged away");
    assert_eq!(scanned_rows(&lake, &symbols[0]).await, rows.len());
    assert!(rows.iter().filter(|q| q.seq > max1).count() as u64 == report.rows, "restart numbers after the kill");
    assert!(lake.validate().await.unwrap().ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_connection_is_survived_and_the_gap_recorded() {
    let symbols = syms(&["SPY"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let lake = f.lake();
    let run = ingest(&sim, &lake, live_config()).await;
    let opts = fast();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let rows_before_drop = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let faults = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        rows_before_drop.store(
            opts.metrics.ticks_received.load(std::sync::atomic::Ordering::Relaxed),
            std::sync::atomic::Ordering::Relaxed,
        );
        sim.drop_connections();
        tokio::time::sleep(Duration::from_millis(4000)).await;
        tx.send(true).unwrap();
    };
    let (report, ()) = tokio::join!(live::run(&run, &symbols, &opts, rx), faults);
    let report = report.unwrap();
    assert!(report.gaps >= 1, "{report:?}");
    assert!(opts.metrics.reconnects.load(std::sync::atomic::Ordering::Relaxed) >= 1);
    assert!(
        opts.metrics.ticks_received.load(std::sync::atomic::Ordering::Relaxed)
            > rows_before_drop.load(std::sync::atomic::Ordering::Relaxed),
        "ticks flow again after the reconnect"
    );
    let m = lake.manifest(&symbols[0]).await.unwrap();
    let gap = m
        .entries
        .iter()
        .find(|e| e.request.dataset == Dataset::Quotes && matches!(e.outcome, Outcome::Error { code: 1100, .. }))
        .expect("gap entry in the manifest");
    assert!(gap.completed_at >= gap.requested_at);
    let status = status::status(&lake, sim.market().now()).await.unwrap();
    let row = status.iter().find(|r| r.symbol == "SPY" && r.dataset == "quotes").expect("quotes in status");
    assert!(row.capture_gaps >= 1 && row.rows > 0, "{row:?}");
    assert_eq!(row.latest_quote_age_secs, Some(0), "the capture is fresh (frozen clock)");
    assert!(lake.validate().await.unwrap().ok(), "the gap entry is a valid manifest entry");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connectivity_notices_are_survived_and_the_gap_recorded() {
    let symbols = syms(&["SPY"]);
    let (sim, f) = prepared(MIDDAY, &symbols).await;
    let lake = f.lake();
    let run = ingest(&sim, &lake, live_config()).await;
    let opts = fast();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let ticks = |o: &LiveOptions| o.metrics.ticks_received.load(std::sync::atomic::Ordering::Relaxed);
    let faults = async {
        tokio::time::sleep(Duration::from_millis(1200)).await;
        sim.send_notice(1100);
        tokio::time::sleep(Duration::from_millis(600)).await;
        sim.send_notice(1101);
        tokio::time::sleep(Duration::from_millis(400)).await;
        let before = ticks(&opts);
        tokio::time::sleep(Duration::from_millis(1500)).await;
        tx.send(true).unwrap();
        before
    };
    let (report, before) = tokio::join!(live::run(&run, &symbols, &opts, rx), faults);
    let report = report.unwrap();
    assert_eq!(report.gaps, 1, "{report:?}");
    assert!(ticks(&opts) > before, "ticks flow after 1101's resubscription");
    let resubscribed = sim.requests().iter().filter(|r| r.kind == "market_data").count();
    assert!(resubscribed >= 2 * report.lines, "1101 takes every subscription again: {resubscribed}");
    let m = lake.manifest(&symbols[0]).await.unwrap();
    assert!(m
        .entries
        .iter()
        .any(|e| e.request.dataset == Dataset::Quotes && matches!(e.outcome, Outcome::Error { code: 1100, .. })));
    assert_unique(&stored(&lake, &symbols[0]).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_option_selection_follows_the_spot() {
    use std::sync::Arc;
    use twslake::sim::{ManualClock, Sim};
    let clock = Arc::new(ManualClock::new(at(MIDDAY)));
    let sim = Sim::builder()
        .listen("127.0.0.1:0")
        .seed(7)
        .pacing_scale(crate::ingest::SCALE)
        .clock(clock.clone())
        .start()
        .await
        .unwrap();
    let f = crate::support::Fixture::local();
    let lake = f.lake();
    let symbols = syms(&["SPY"]);
    let run = ingest(&sim, &lake, live_config()).await;
    assert!(run.setup(&symbols).await.complete());
    let opts = LiveOptions { reselect_every: Duration::from_millis(300), max_lines: 5, ..fast() };
    let (tx, rx) = tokio::sync::watch::channel(false);
    let later = at("2026-11-24T20:45:00Z");
    let moves = async {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        clock.set(later);
        tokio::time::sleep(Duration::from_millis(2000)).await;
        tx.send(true).unwrap();
    };
    let (report, ()) = tokio::join!(live::run(&run, &symbols, &opts, rx), moves);
    let report = report.unwrap();
    let i = sim.market().symbol_index("SPY").unwrap();
    let spot = sim.market().spot_at(i, later).unwrap();
    let expiries = run.latest_chain(&symbols[0]).await.unwrap().iter().map(|r| r.expiration).collect();
    let mut wanted: Vec<i64> =
        run.select_options(&symbols[0], &expiries, spot).await.unwrap().iter().map(|t| t.contract.con_id).collect();
    wanted.truncate(4);
    let stock = run.stock_contract(&symbols[0]).await.unwrap().unwrap().con_id;
    let mut expected = wanted.clone();
    expected.push(stock);
    expected.sort_unstable();
    assert_eq!(report.subscribed, expected, "subscribed at the end: the selection around the moved spot");
    assert!(report.reselected > 0, "{report:?}");
    assert!(opts.metrics.subscribed_lines.load(std::sync::atomic::Ordering::Relaxed) <= 5);
    // Options that left the band were cancelled at the gateway.
    assert!(sim.requests().iter().any(|r| r.kind == "cancel_market_data"));
    let rows = stored(&lake, &symbols[0]).await;
    for id in &wanted {
        assert!(rows.iter().any(|q| q.con_id == *id && q.ts == later), "{id} streamed after the move");
    }
}
