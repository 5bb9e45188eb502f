//! Option sessions come with their spot: `setup` extends the 1-minute equity series to the option
//! sessions, and refuses (counted, alerted, not complete) an option session whose spot could not
//! be fetched.

use super::*;
use crate::support::Fixture;
use chrono::{DateTime, NaiveDate, Utc};
use std::future::Future;
use std::sync::Mutex;
use twslake::datasets::Dataset;
use twslake::domain::SecType;
use twslake::domain::{Series, Symbol};
use twslake::monitor::{Alert, AlertSink, Severity};
use twslake::query::coverage::Coverage;
use twslake::query::coverage::SeriesSpec;
use twslake::query::pit::PointInTime;
use twslake::query::pit::{AsOf, SPOT_SERIES};
use twslake::sim::RequestRecord;
use twslake::source::{
    ChainParams, ContractQuery, HistRequest, Instrument, MarketData, NoticeStream, RawBar, SourceError, StreamContract,
    TickStream,
};

fn d(s: &str) -> NaiveDate {
    s.parse().unwrap()
}

/// The three sessions of `small_config`'s options, as of [`AFTER_CLOSE`] (Tuesday 2026-11-24).
fn sessions() -> [NaiveDate; 3] {
    [d("2026-11-20"), d("2026-11-23"), d("2026-11-24")]
}

fn spy() -> Symbol {
    Symbol::new("SPY").unwrap()
}

/// The session an option-bar request of the log ends on (`YYYYMMDD-HH:MM:SS`, a session's close).
fn end_date(r: &RequestRecord) -> NaiveDate {
    let end = r.end.as_deref().unwrap_or_default();
    NaiveDate::parse_from_str(end.get(..8).unwrap_or_default(), "%Y%m%d").unwrap()
}

fn option_requests(sim: &SimHandle) -> Vec<RequestRecord> {
    historical(sim).into_iter().filter(|r| r.sec_type.as_deref() == Some("OPT")).collect()
}

/// The option panel of `small_config`'s option series over the three sessions, on 1-minute TRADES.
async fn panel(lake: &Lake) -> polars::prelude::DataFrame {
    let at = DateTime::parse_from_rfc3339(AFTER_CLOSE).unwrap().with_timezone(&Utc);
    let series = small_config().options.series[0];
    let q = AsOf { symbol: spy(), series, from: sessions()[0], at };
    twslake::query::collect(PointInTime::new(lake).option_panel(&q, SPOT_SERIES[1]).await.unwrap()).await.unwrap()
}

fn dates_of(df: &polars::prelude::DataFrame) -> Vec<NaiveDate> {
    let epoch = d("1970-01-01");
    let days = df.column("date").unwrap().cast(&polars::prelude::DataType::Int32).unwrap();
    let mut out: Vec<NaiveDate> =
        days.i32().unwrap().into_no_null_iter().map(|n| epoch + chrono::Duration::days(n as i64)).collect();
    out.sort();
    out.dedup();
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn setup_extends_the_spot_to_every_option_session() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let mut cfg = small_config();
    cfg.equity = vec![parse_series("1 day/TRADES/60", 60).unwrap(), parse_series("1 min/TRADES/1", 1).unwrap()];
    assert_eq!(cfg.options.sessions, 3);
    let run = ingest(&sim, &lake, cfg).await;
    assert_eq!(run.cfg.equity[1].sessions, 3, "the 1-minute series is extended to the option sessions");
    assert!(
        run.config_notes.len() == 1 && run.config_notes[0].contains("1 min TRADES extended from 1 to 3 sessions"),
        "{:?}",
        run.config_notes
    );
    let report = run.setup(&[spy()]).await;
    assert!(report.complete(), "{report:#?}");
    assert_eq!((report.dependency_violations, report.symbols[0].option_days_refused), (0, 0));

    let one_minute = SeriesSpec { dataset: Dataset::EquityBars, symbol: spy(), con_id: None, series: SPOT_SERIES[1] };
    let [first, _, last] = sessions();
    assert_eq!(Coverage::new(&lake).present_dates(&one_minute, first, last).await.unwrap(), sessions().to_vec());
    let spot_requests = historical(&sim)
        .into_iter()
        .filter(|r| r.sec_type.as_deref() == Some("STK") && r.bar_size.as_deref() == Some("1 min"))
        .count();
    assert_eq!(spot_requests, 3, "one request per session of 1-minute bars");

    let df = panel(&lake).await;
    assert!(df.height() > 0);
    assert_eq!(dates_of(&df), sessions().to_vec(), "option bars of every session");
    let spot = df.column("spot").unwrap();
    assert_eq!(spot.null_count(), 0, "every option bar has its spot: {} of {} null", spot.null_count(), df.height());
}

/// The real client, except that the underlying's intraday bars of one session fail, as a farm
/// that keeps timing out on one window would.
struct NoSpotOn {
    inner: IbSource,
    day: NaiveDate,
}

impl MarketData for NoSpotOn {
    fn contract_details(
        &self,
        q: &ContractQuery,
    ) -> impl Future<Output = Result<Vec<twslake::datasets::contracts::Contract>, SourceError>> + Send {
        self.inner.contract_details(q)
    }

    fn option_chain(
        &self,
        symbol: &Symbol,
        underlying_con_id: i64,
    ) -> impl Future<Output = Result<Vec<ChainParams>, SourceError>> + Send {
        self.inner.option_chain(symbol, underlying_con_id)
    }

    fn head_timestamp(
        &self,
        instrument: &Instrument,
        series: Series,
    ) -> impl Future<Output = Result<DateTime<Utc>, SourceError>> + Send {
        self.inner.head_timestamp(instrument, series)
    }

    fn historical_bars(&self, req: &HistRequest) -> impl Future<Output = Result<Vec<RawBar>, SourceError>> + Send {
        let fails = req.instrument.sec_type == SecType::Stock
            && req.series.bar_size.is_intraday()
            && twslake::calendar::trading_date(req.end) == self.day;
        async move {
            if fails {
                return Err(SourceError::ib(366, "No historical data query found for ticker id:1"));
            }
            self.inner.historical_bars(req).await
        }
    }

    fn stream_quotes(&self, contract: &StreamContract) -> impl Future<Output = Result<TickStream, SourceError>> + Send {
        self.inner.stream_quotes(contract)
    }

    fn notices(&self) -> Result<NoticeStream, SourceError> {
        self.inner.notices()
    }
}

/// Keeps every alert.
#[derive(Default)]
struct Alerts(Mutex<Vec<Alert>>);

impl AlertSink for Alerts {
    fn send(&self, a: &Alert) {
        self.0.lock().unwrap().push(a.clone());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_option_session_whose_spot_cannot_be_fetched_is_refused() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let [friday, no_spot, tuesday] = sessions();
    let mut cfg = small_config();
    cfg.attempts = 2;
    let ib = IbConfig {
        gateway: sim.address(),
        client_id: CLIENT_IDS.fetch_add(1, Ordering::SeqCst),
        timeout: Duration::from_secs(5),
    };
    let source = NoSpotOn { inner: IbSource::connect(&ib).await.unwrap(), day: no_spot };
    let mut run = Ingest::new(lake.clone(), source, cfg.clone(), sim.market().clock().clone());
    let alerts = Arc::new(Alerts::default());
    run.alerts.push(alerts.clone());
    let report = run.setup(&[spy()]).await;

    // The 1-minute bars of Monday failed; no option request reaches into Monday.
    assert_eq!(report.symbols[0].equity.failed, 1, "{report:#?}");
    let options = option_requests(&sim);
    assert!(!options.is_empty(), "the other sessions' option bars are asked for");
    for r in &options {
        assert_eq!(r.duration.as_deref(), Some("1 D"), "{r:?}");
        assert!([friday, tuesday].contains(&end_date(r)), "an option request for the session without spot: {r:?}");
    }
    let contracts: std::collections::BTreeSet<_> = options.iter().filter_map(|r| r.con_id).collect();
    assert_eq!(options.len(), 2 * contracts.len(), "Friday and Tuesday for each contract");

    // Counted once (one symbol, one option series), alerted, reported, not complete.
    assert_eq!(report.dependency_violations, 1);
    assert_eq!(report.symbols[0].option_days_refused, 1);
    assert!(!report.complete());
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["symbols"][0]["option_days_refused"], 1);
    let critical: Vec<Alert> =
        alerts.0.lock().unwrap().iter().filter(|a| a.severity == Severity::Critical).cloned().collect();
    assert_eq!(critical.len(), 1, "{critical:?}");
    let m = &critical[0].message;
    assert!(critical[0].symbol == "SPY" && m.contains("SPY"), "{m}");
    assert!(m.contains("5 mins MIDPOINT") && m.contains("2026-11-23") && !m.contains("2026-11-24"), "{m}");

    // The gateway healthy again, the next run fetches the spot, then the refused session.
    let sent = option_requests(&sim).len();
    let again = ingest(&sim, &lake, cfg).await.setup(&[spy()]).await;
    assert!(again.complete(), "{again:#?}");
    assert_eq!((again.dependency_violations, again.symbols[0].option_days_refused), (0, 0));
    let later = &option_requests(&sim)[sent..];
    assert_eq!(later.len(), contracts.len());
    assert!(later.iter().all(|r| end_date(r) == no_spot), "{later:?}");
    let df = panel(&lake).await;
    assert_eq!(dates_of(&df), sessions().to_vec());
    assert_eq!(df.column("spot").unwrap().null_count(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn settings_changed_behind_the_rule_still_get_no_option_bars_without_spot() {
    let sim = sim_at(AFTER_CLOSE).await;
    let f = Fixture::local();
    let lake = f.lake();
    let mut run = ingest(&sim, &lake, small_config()).await;
    // Past `Ingest::new`, nothing completes the settings: one session of 1-minute spot only.
    run.cfg.equity[1].sessions = 1;
    let report = run.setup(&[spy()]).await;
    let s = &report.symbols[0];
    assert!(s.error.is_none() && s.equity.failed == 0 && s.options.failed == 0 && s.equity_windows_missing == 0);
    assert_eq!(s.option_days_refused, 2, "{report:#?}");
    assert_eq!(report.dependency_violations, 1);
    assert!(!report.complete(), "refused sessions alone make the run incomplete");
    let options = option_requests(&sim);
    assert!(!options.is_empty() && options.iter().all(|r| end_date(r) == sessions()[2]), "{options:?}");
    assert!(options.iter().all(|r| r.duration.as_deref() == Some("1 D")));
}
