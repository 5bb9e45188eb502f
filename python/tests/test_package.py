"""The package's answers, checked against the Rust CLI's on the same lake and against polars'
own reading of the files."""

from __future__ import annotations

import math
from datetime import date, datetime, timedelta, timezone

import polars as pl
import pyarrow as pa
import pytest

import twslake
from conftest import cli, cli_json

DATASETS = ["contracts", "chains", "equity_bars", "option_bars", "surfaces"]


def iso(t: datetime) -> str:
    return t.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def ts(s: str | None) -> datetime | None:
    return None if s is None else datetime.fromisoformat(s.replace("Z", "+00:00"))


@pytest.mark.parametrize("dataset", DATASETS)
def test_lazy_scans_equal_the_rust_scan_and_polars_over_the_files(lake, lake_dir, dataset):
    lazy = lake.scan(dataset)
    assert isinstance(lazy, pl.LazyFrame)
    ours = lazy.collect()
    rust = lake.read(dataset)
    assert ours.height > 0
    assert ours.schema == rust.schema
    key = [c for c in ours.columns if c not in ("ingested_at", "fetched_at")]
    assert ours.sort(key).equals(rust.sort(key))
    # polars alone over the hive folders sees the same rows.
    files = pl.scan_parquet(f"{lake_dir}/{dataset}/**/*.parquet", hive_partitioning=True).collect()
    assert files.height == ours.height
    sql = lake.sql(f"SELECT count(*) AS n FROM {dataset}")
    assert sql.item() == ours.height


def test_filters_prune_and_select(lake):
    days = lake.equity_bars("SPY").select("date").collect()["date"]
    lo, hi = days[100], days[160]
    spy = lake.equity_bars("SPY", start=lo, end=hi).collect()
    assert spy["symbol"].unique().to_list() == ["SPY"]
    assert spy["date"].min() == lo and spy["date"].max() == hi
    assert set(spy["bar_size"]) == {"1 day"} and set(spy["what_to_show"]) == {"TRADES"}
    everything = lake.scan("equity_bars").collect()
    expected = everything.filter(
        (pl.col("symbol") == "SPY")
        & pl.col("date").is_between(lo, hi)
        & (pl.col("bar_size") == "1 day")
        & (pl.col("what_to_show") == "TRADES")
    )
    assert spy.sort("ts").equals(expected.sort("ts")) and spy.height == 61
    last = lake.equity_bars("SPY", bar_size="1 min").select(pl.col("date").max()).collect().item()
    files, live = lake._native.files(("equity_bars", ["SPY"], "1 min", "TRADES", str(last), str(last)))
    assert live is None
    assert [u.rsplit("/", 1)[1] for _, u in files] == [f"1min-TRADES-{last}.parquet"]
    both = lake.option_bars(["SPY", "QQQ"]).select("symbol").unique().collect()
    assert sorted(both["symbol"]) == ["QQQ", "SPY"]


def test_missing_windows_match_the_cli(lake, lake_dir):
    last = lake.equity_bars("SPY").select(pl.col("date").max()).collect().item()
    recent = (str(last - timedelta(days=30)), str(last), "1 min")
    for start, end, bar in [("2020-01-01", str(last), "1 day"), recent]:
        ours = lake.missing_windows("SPY", start=start, end=end, bar_size=bar)
        doc = cli_json("gaps", "SPY", "--lake", lake_dir, "--from", start, "--to", end, "--bar-size", bar, "--json")
        theirs = [(w["start"], w["end"], w["trading_days"]) for w in doc["windows"]]
        got = [(s.isoformat(), e.isoformat(), n) for s, e, n in ours.iter_rows()]
        assert got == theirs
        assert ours.schema == {"start": pl.Date, "end": pl.Date, "trading_days": pl.UInt32}
    assert lake.missing_windows("SPY", start="2020-01-01", end=last)["trading_days"].sum() > 0
    assert lake.missing_windows("SPY", start=last - timedelta(days=300), end=last).height == 0


def test_status_matches_the_cli(lake, lake_dir):
    ours = lake.status()
    doc = cli_json("status", "--lake", lake_dir, "--json")["datasets"]
    assert ours.height == len(doc)
    for row, theirs in zip(ours.iter_rows(named=True), doc):
        for k in ("symbol", "dataset", "rows", "missing_windows", "requests", "capture_gaps"):
            assert row[k] == theirs[k], (k, row, theirs)
        assert (row["first_date"].isoformat() if row["first_date"] else None) == theirs["first_date"]


def test_surface_matches_the_cli(lake, lake_dir, snapshot_at, staleness_min):
    s = lake.surface("SPY", snapshot_at, max_staleness_min=staleness_min)
    doc = cli_json(
        "surface",
        "SPY",
        "--lake",
        lake_dir,
        "--at",
        iso(snapshot_at),
        "--max-staleness-min",
        str(staleness_min),
        "--json",
    )
    assert s.spot == doc["spot"]
    assert (s.series, s.listing) == (doc["series"], doc["listing"]) == ("1 min MIDPOINT", "snapshot")
    for k in ("spot_as_of", "quotes_from", "chain_snapshot_at"):
        assert getattr(s, k) == ts(doc[k]), k
    assert s.chain_snapshot_at == snapshot_at
    assert [e.isoformat() for e in s.expiries["expiry"]] == [e["expiry"] for e in doc["expiries"]]
    for row, theirs in zip(s.expiries.iter_rows(named=True), doc["expiries"]):
        for k in ("t", "forward", "discount", "a", "b", "rho", "m", "sigma", "atm_vol", "rmse"):
            assert row[k] == pytest.approx(theirs[k], rel=1e-12, abs=1e-15), k
        assert (row["butterfly_ok"], row["calendar_ok"]) == (theirs["butterfly_ok"], theirs["calendar_ok"])
        assert (row["oldest_quote"], row["newest_quote"]) == (ts(theirs["oldest_quote"]), ts(theirs["newest_quote"]))
        assert (row["forward_source"], row["points"]) == (theirs["forward_source"], len(theirs["points"]))
    assert s.points.height == sum(len(e["points"]) for e in doc["expiries"])
    assert [(e.isoformat(), r) for e, r in s.skipped.iter_rows()] == [(k["expiry"], k["reason"]) for k in doc["skipped"]]
    # The fit reproduces its own points.
    e0 = s.expiries.row(len(s.expiries) - 1, named=True)
    pts = s.points.filter(pl.col("expiry") == e0["expiry"])
    w = s.svi_total_variance(e0["expiry"], pts["k"].to_list())
    fit = [math.sqrt(x / e0["t"]) for x in w]
    assert fit == pytest.approx(pts["iv_fit"].to_list(), rel=1e-9)


def test_surface_is_close_to_the_simulators_truth(lake, snapshot_at, staleness_min):
    s = lake.surface("SPY", snapshot_at, max_staleness_min=staleness_min)
    # The truth when the mids were struck (the last bar's close): after a session the simulated
    # market has moved on by the snapshot's instant, and the smile moves with the forward.
    struck = lake.option_bars("SPY").select(pl.col("ts").max()).collect().item() + timedelta(minutes=1)
    truth = twslake.sim_truth("SPY", struck)
    joined = s.points.join(truth.select("expiry", "strike", pl.col("iv").alias("iv_true")), on=["expiry", "strike"])
    assert joined.height >= 20
    longer = joined.filter(pl.col("t") > 14 / 365)
    assert longer.height > 0, "the demo stores expiries two weeks out and more"
    err = (longer["iv_fit"] - longer["iv_true"]).abs().max()
    assert err < 0.02, err


def test_sql_matches_the_cli(lake, lake_dir):
    q = "SELECT symbol, count(*) AS n, max(close) AS top FROM equity_bars GROUP BY symbol ORDER BY symbol"
    ours = lake.sql(q)
    theirs = cli_json("sql", "--lake", lake_dir, "--format", "json", q)
    assert ours.to_dicts() == theirs


def test_point_in_time_answers(lake, snapshot_at):
    spot = lake.spot_at("SPY", snapshot_at)
    assert spot.as_of <= snapshot_at
    minute = lake.equity_bars("SPY", bar_size="1 min", what_to_show=spot.what_to_show).collect()
    last = minute.filter(pl.col("ts") + timedelta(minutes=1) <= snapshot_at).sort("ts").tail(1)
    assert spot.price == last["close"].item()
    chain = lake.chain_as_of("SPY", snapshot_at)
    assert chain.height > 0 and chain["snapshot_at"].max() <= snapshot_at
    with pytest.raises(twslake.BadInputError, match="no chain snapshot"):
        lake.chain_as_of("SPY", snapshot_at - timedelta(days=30))
    at = spot.as_of - timedelta(minutes=30)
    panel = lake.option_panel("SPY", at, greeks=True)
    assert panel.height > 0
    assert panel["end"].max() <= at, "no bar that closed after the instant"
    assert (panel["spot_end"].drop_nulls() <= panel["end"].filter(panel["spot_end"].is_not_null())).all()
    priced = panel.filter(pl.col("spot").is_not_null() & (pl.col("t") > 20 / 365))
    assert priced["iv"].is_nan().sum() < priced.height / 10
    assert priced.filter(pl.col("right") == "C")["delta"].is_between(0, 1).all()


def black(f, k, t, v, call):
    n = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))
    d1 = (math.log(f / k) + 0.5 * v * v * t) / (v * math.sqrt(t))
    d2 = d1 - v * math.sqrt(t)
    return f * n(d1) - k * n(d2) if call else k * n(-d2) - f * n(-d1)


def test_implied_vols_of_a_user_table_round_trip():
    rows = []
    for k in (80.0, 95.0, 100.0, 110.0, 130.0):
        for t in (0.1, 0.5, 2.0):
            for call in (True, False):
                v = 0.15 + 0.1 * abs(math.log(k / 100))
                rows.append(dict(close=0.98 * black(100.0, k, t, v, call), discount=0.98, forward=100.0,
                                 strike=k, t=t, right="C" if call else "P", spot=98.0, truth=v))
    table = pl.DataFrame(rows)
    out = twslake.implied_vols(table, greeks=True)
    assert out.columns[: table.width] == table.columns
    assert (out["iv"] - out["truth"]).abs().max() < 1e-10
    assert out.filter(pl.col("right") == "P")["delta"].is_between(-1, 0).all()
    # A price outside the no-arbitrage bounds has no implied vol.
    bad = table.head(1).with_columns(pl.lit(200.0).alias("close"))
    assert math.isnan(twslake.implied_vols(bad)["iv"].item())
    with pytest.raises(twslake.BadInputError, match="no such column"):
        twslake.implied_vols(table.drop("t"))
    with pytest.raises(twslake.BadInputError):
        twslake.implied_vols([1, 2, 3])


def test_frames_cross_through_the_arrow_c_stream(lake):
    native = lake._native.read(("equity_bars", ["SPY"], "1 day", "TRADES", None, None))
    assert hasattr(native, "__arrow_c_stream__")
    table = pa.table(native)  # pyarrow takes the same capsule
    df = pl.DataFrame(native)
    assert table.num_rows == df.height == len(native) > 0
    assert table.column("close").to_pylist() == df["close"].to_list()
    assert table.schema.field("ts").type == pa.timestamp("us", tz="UTC")


def test_errors_name_the_input_and_change_nothing(lake, lake_dir, tmp_path):
    with pytest.raises(twslake.BadInputError, match="no lake there"):
        twslake.Lake(tmp_path / "nothing")
    assert not (tmp_path / "nothing").exists()
    with pytest.raises(twslake.BadInputError, match="symbol"):
        lake.spot_at("../etc", "2026-01-05 15:00")
    with pytest.raises(twslake.BadInputError, match="timestamp"):
        lake.spot_at("SPY", "yesterday-ish")
    with pytest.raises(twslake.BadInputError, match="dataset"):
        lake.scan("trades")
    with pytest.raises(twslake.BadInputError, match="bar size"):
        lake.equity_bars("SPY", bar_size="7 mins").collect()
    with pytest.raises(twslake.BadInputError, match="start must not be after end"):
        lake.missing_windows("SPY", start="2026-02-01", end="2026-01-01")
    with pytest.raises(twslake.BadInputError, match="SQL"):
        lake.sql("SELECT nope FROM")
    with pytest.raises(twslake.TwslakeError):
        lake.surface("SPY", "2001-01-02 15:00")
    assert issubclass(twslake.StorageError, twslake.TwslakeError)
    assert lake.status().height == len(cli_json("status", "--lake", lake_dir, "--json")["datasets"])


def test_default_lake_comes_from_the_environment(lake_dir, monkeypatch):
    monkeypatch.setenv("TWSLAKE_LAKE", lake_dir)
    assert twslake.Lake().symbols() == twslake.Lake(lake_dir).symbols()


def test_a_lake_on_s3_answers_like_the_same_lake_on_disk(lake, lake_dir, snapshot_at, staleness_min, monkeypatch):
    import os
    import urllib.parse
    import urllib.request
    import uuid
    from pathlib import Path

    endpoint = os.environ.get("TWSLAKE_TEST_S3_ENDPOINT")
    if not endpoint:
        pytest.fail("needs an S3 server: run the README's test command, or set TWSLAKE_TEST_S3_ENDPOINT")
    bucket = f"py-{uuid.uuid4().hex[:12]}"

    def put(path: str, body: bytes = b"") -> None:
        url = f"{endpoint}/{urllib.parse.quote(path, safe='/=')}"
        # urllib's default content type (a form) makes the server try to parse the Parquet bytes.
        headers = {"Content-Type": "application/octet-stream"}
        req = urllib.request.Request(url, data=body, method="PUT", headers=headers)
        with urllib.request.urlopen(req, timeout=60) as r:
            assert r.status == 200

    put(bucket)
    root = Path(lake_dir)
    for f in root.rglob("*"):
        if f.is_file() and not f.name.endswith(".lock"):
            put(f"{bucket}/lake/{f.relative_to(root).as_posix()}", f.read_bytes())
    for k, v in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "test",
        "AWS_SECRET_ACCESS_KEY": "test",
    }.items():
        monkeypatch.setenv(k, v)
    s3 = twslake.Lake(f"s3://{bucket}/lake")
    assert s3.symbols() == lake.symbols()
    for name in ("equity_bars", "chains"):
        a = s3.scan(name, "BRK B").collect()
        b = lake.scan(name, "BRK B").collect()
        assert a.height == b.height > 0
        assert a.sort(a.columns).equals(b.sort(b.columns))
    a, b = s3.surfaces("BRK B").collect(), lake.surfaces("BRK B").collect()
    assert a.height == b.height > 0 and a.sort(a.columns).equals(b.sort(b.columns))
    # The same settings given as storage options instead of the environment.
    options = {"aws_endpoint_url": endpoint, "aws_region": "us-east-1", "aws_access_key_id": "test",
               "aws_secret_access_key": "test"}
    for k in ("AWS_ENDPOINT_URL", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(k)
    by_options = twslake.Lake(f"s3://{bucket}/lake", storage_options=options)
    assert by_options.equity_bars("SPY").collect().height == lake.equity_bars("SPY").collect().height > 0
    with pytest.raises(twslake.BadInputError, match="s3:// lakes only"):
        twslake.Lake(lake_dir, storage_options={"aws_region": "us-east-1"})
    kw = dict(start="2020-01-01", end=date.today())
    assert s3.missing_windows("SPY", **kw).equals(lake.missing_windows("SPY", **kw))
    assert s3.surface("SPY", snapshot_at, max_staleness_min=staleness_min).expiries.equals(
        lake.surface("SPY", snapshot_at, max_staleness_min=staleness_min).expiries
    )


def test_quotes_being_captured_read_once_per_key(lake_dir, tmp_path):
    """Days a live capture is writing (micro-batches beside the day file) read like the Rust
    reader: merged on (con_id, ts, seq), the latest ingested row winning."""
    import shutil

    import pyarrow.parquet as pq

    root = tmp_path / "lake"
    shutil.copytree(lake_dir, root)
    lake = twslake.Lake(root)
    schema = pa.table(lake._native.read(("quotes", [], None, None, None, None))).schema
    arrow = pa.schema(
        [pa.field(f.name, pa.string() if f.type == pa.string_view() else f.type) for f in schema if f.name != "symbol"]
    )
    t0 = datetime(2026, 11, 24, 15, 0, tzinfo=timezone.utc)

    def batch(n: int, bid: float, ingested: datetime) -> pa.Table:
        none = [None] * n
        cols = {
            "ts": [t0 + timedelta(seconds=i) for i in range(n)],
            "date": [date(2026, 11, 24)] * n,
            "con_id": [42] * n,
            "seq": list(range(n)),
            "sec_type": ["STK"] * n,
            "bid": [bid] * n,
            "ask": [bid + 0.01] * n,
            "ingested_at": [ingested] * n,
        }
        return pa.table({f.name: cols.get(f.name, none) for f in arrow}, schema=arrow)

    day = root / "quotes" / "symbol=SPY" / "year=2026"
    day.mkdir(parents=True)
    pq.write_table(batch(10, 100.0, t0), day / "quotes-2026-11-24.part-00000000000000aa-000001.parquet")
    pq.write_table(batch(4, 101.0, t0 + timedelta(seconds=5)), day / "quotes-2026-11-24.part-00000000000000aa-000002.parquet")
    ours = lake.quotes("SPY").sort("ts").collect()
    assert ours.height == 10
    assert ours["bid"].to_list() == [101.0] * 4 + [100.0] * 6
    assert ours.equals(lake.read("quotes", "SPY").sort("ts"))
    assert lake.sql("SELECT count(*) FROM quotes").item() == 10


def test_instants_read_as_the_cli_reads_them(lake, snapshot_at):
    from zoneinfo import ZoneInfo

    ny = snapshot_at.astimezone(ZoneInfo("America/New_York"))
    wall = ny.replace(tzinfo=None)
    same = [
        snapshot_at,  # aware, UTC
        ny,  # aware, New York
        wall,  # naive: New York wall clock
        wall.strftime("%Y-%m-%d %H:%M:%S.%f"),  # the same as text
        snapshot_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),  # RFC 3339
    ]
    answers = {lake.spot_at("SPY", at) for at in same}
    assert len(answers) == 1, answers
    # A date alone is its close: the spot then is that session's last close.
    last = lake.equity_bars("SPY", bar_size="1 min").select(pl.col("date").max()).collect().item()
    spot = lake.spot_at("SPY", last)
    assert spot.as_of.astimezone(ZoneInfo("America/New_York")).hour in (13, 16)


# -- the history the lake holds (issue [history]) ---------------------------------------------


def tree(root) -> dict[str, bytes]:
    """Every file under a lake folder with its bytes: what "nothing was written" compares."""
    from pathlib import Path

    return {f.relative_to(root).as_posix(): f.read_bytes() for f in Path(root).rglob("*") if f.is_file()}


def copy_of(lake_dir, tmp_path):
    import shutil

    root = tmp_path / "lake"
    shutil.copytree(lake_dir, root)
    return root, twslake.Lake(root)


def test_defaults_read_the_series_the_lake_holds(lake, lake_dir, last_close):
    """The demo stores 1-minute mids and 1-minute TRADES spot bars: read without being told."""
    at = last_close - timedelta(minutes=30)
    s = lake.surface("SPY", at)
    assert s.series == "1 min MIDPOINT"
    doc = cli_json("surface", "SPY", "--lake", lake_dir, "--at", iso(at), "--json")
    assert doc["series"] == s.series and doc["quotes_from"] == s.raw["quotes_from"]
    told = lake.surface("SPY", at, bar_size="1 min", max_staleness_min=5)
    assert s.expiries.equals(told.expiries) and s.quotes_from == told.quotes_from
    # The default staleness is five bars of session time, so five minutes here.
    assert at - s.quotes_from == timedelta(minutes=5)
    panel = lake.option_panel("SPY", at, implied_vol=False)
    assert panel.height > 0
    assert set(panel["bar_size"]) == {"1 min"} and set(panel["what_to_show"]) == {"MIDPOINT"}
    assert panel.equals(lake.option_panel("SPY", at, bar_size="1 min", spot_what_to_show="TRADES", implied_vol=False))
    # The spot of each option bar is the 1-minute TRADES close of the same end.
    minute = lake.equity_bars("SPY", bar_size="1 min", what_to_show="TRADES").select(
        (pl.col("ts") + timedelta(minutes=1)).alias("end"), pl.col("close").alias("equity_close")
    )
    joined = panel.lazy().join(minute, on="end").collect()
    assert joined.height == panel.height
    assert (joined["spot"] == joined["equity_close"]).all() and (joined["spot_end"] == joined["end"]).all()
    # Option bars read the finest mids held unless told, and nothing where there are none.
    bars = lake.option_bars("SPY").collect()
    assert bars.height > 0 and set(bars["bar_size"]) == {"1 min"} and set(bars["what_to_show"]) == {"MIDPOINT"}
    assert lake.option_bars("SPY", start="2001-01-02", end="2001-01-31").collect().height == 0
    # Overnight, quotes age in session time only: the last session's closing mids serve.
    night = lake.surface("SPY", last_close + timedelta(hours=1))
    assert night.expiries["newest_quote"].max() == last_close
    # When nothing fits, the errors name what the lake holds.
    held = r"1 min MIDPOINT \(\d{4}-\d\d-\d\d \.\. \d{4}-\d\d-\d\d, 2 days\)"
    with pytest.raises(twslake.BadInputError, match=held):
        lake.surface("SPY", last_close + timedelta(days=14))
    first_day = lake.option_bars("SPY").select(pl.col("date").min()).collect().item()
    with pytest.raises(twslake.BadInputError, match=held):
        lake.option_panel("SPY", datetime.combine(first_day - timedelta(days=7), datetime.min.time()))
    with pytest.raises(twslake.BadInputError, match="MIDPOINT.*1 min TRADES"):
        lake.option_panel("SPY", at, spot_what_to_show="MIDPOINT")
    with pytest.raises(twslake.BadInputError, match="max_staleness_min"):
        lake.surface("SPY", at, max_staleness_min=0)


def test_a_surface_in_the_backfilled_past_is_answered_from_the_bars(lake, snapshot_at, last_close):
    """The demo backfills its option sessions, then snapshots the chain: before the snapshot
    the bars themselves say what was listed, and the fit is as close to the truth as ever."""
    at = last_close - timedelta(minutes=30)
    assert snapshot_at > at
    s = lake.surface("SPY", at)
    assert s.listing == "bars" and s.chain_snapshot_at is None
    assert s.spot_as_of <= at and s.quotes_from < at
    assert (s.expiries["oldest_quote"] >= s.quotes_from).all() and (s.expiries["newest_quote"] <= at).all()
    # `atm_vol` is the fit at the forward.
    for e in s.expiries.iter_rows(named=True):
        (w,) = s.svi_total_variance(e["expiry"], [0.0])
        assert e["atm_vol"] == pytest.approx(math.sqrt(w / e["t"]), rel=1e-9)
    truth = twslake.sim_truth("SPY", at).select("expiry", "strike", pl.col("iv").alias("iv_true"))
    joined = s.points.filter(pl.col("t") >= 7 / 365).join(truth, on=["expiry", "strike"])
    per_slice = joined.group_by("expiry").agg(
        ((pl.col("iv_fit") - pl.col("iv_true")) ** 2).mean().sqrt().alias("rmse"), pl.len().alias("n")
    )
    assert per_slice.height >= 4 and per_slice["n"].min() >= 4, per_slice
    # 0.15 vol points.
    assert per_slice["rmse"].max() < 0.0015, per_slice


def test_the_surface_history_reads_as_the_cli_and_polars_read_it(lake, lake_dir, tmp_path, last_close):
    ours = lake.surfaces().collect()
    assert ours.height > 0 and set(ours["kind"]) == {"expiry", "grid"}
    assert set(ours["symbol"]) == {"SPY", "QQQ", "BRK B"}
    out = tmp_path / "surfaces.parquet"
    cli("sql", "--lake", lake_dir, "--format", "parquet", "--out", str(out), "SELECT * FROM surfaces")
    theirs = pl.read_parquet(out)
    key = ["symbol", "at", "kind", "expiry", "days", "delta"]
    assert theirs.columns == ours.columns
    assert ours.sort(key).equals(theirs.sort(key))
    # polars alone over one symbol's files sees the same rows.
    spy = lake.surfaces("SPY").collect()
    files = pl.scan_parquet(f"{lake_dir}/surfaces/symbol=SPY/**/*.parquet", hive_partitioning=False).collect()
    assert spy.drop("symbol").sort(key[1:]).equals(files.sort(key[1:]))
    # Dates bound the trading date of the instants.
    days = sorted(set(spy["date"]))
    assert len(days) == 2
    last = lake.surfaces("SPY", start=days[1], end=days[1]).collect()
    assert set(last["date"]) == {days[1]} and last.height == spy.filter(pl.col("date") == days[1]).height
    assert lake.surfaces(["SPY", "QQQ"], end=days[0]).select("symbol").unique().collect().height == 2
    # Every instant of a session, every 30 minutes from the open to the close, from the bars.
    from zoneinfo import ZoneInfo

    instants = spy.filter(pl.col("date") == days[1])["at"].unique().sort()
    assert instants[0].astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "10:00"
    assert instants[-1] == last_close
    assert (instants.diff().drop_nulls()[:-1] == timedelta(minutes=30)).all()
    assert set(spy["listing"]) == {"bars"} and set(spy["series"]) == {"1 min MIDPOINT"}


def test_stored_surfaces_are_the_surface_at_their_instant(lake):
    spy = lake.surfaces("SPY").filter(pl.col("kind") == "expiry").collect()
    at = spy["at"].unique().sort()[5]
    stored = spy.filter(pl.col("at") == at).sort("expiry")
    fresh = lake.surface("SPY", at)
    assert stored["expiry"].to_list() == fresh.expiries["expiry"].to_list()
    for k in ("t", "forward", "discount", "a", "b", "rho", "m", "sigma", "atm_vol", "rmse", "points",
              "butterfly_ok", "calendar_ok", "forward_source", "oldest_quote", "newest_quote"):
        assert stored[k].to_list() == fresh.expiries[k].to_list(), k
    assert (stored["spot"] == fresh.spot).all()


def normal_cdf(x: float) -> float:
    return 0.5 * (1 + math.erf(x / math.sqrt(2)))


def test_grid_rows_are_close_to_the_truth_on_the_same_grid(lake):
    grid = lake.surfaces("SPY").filter(pl.col("kind") == "grid").collect()
    # The grid's own arithmetic: each delta's strike on the smile, forward call delta N(d1).
    for r in grid.sample(50, seed=1).iter_rows(named=True):
        w = r["iv"] ** 2 * r["t"]
        assert r["t"] == pytest.approx(r["days"] / 365)
        assert r["strike"] == pytest.approx(r["forward"] * math.exp(r["k"]), rel=1e-12)
        assert normal_cdf((-r["k"] + w / 2) / math.sqrt(w)) == pytest.approx(r["delta"], abs=1e-6)
    instants = grid["at"].unique().sort()
    slices = lake.surfaces("SPY").filter(pl.col("kind") == "expiry").collect()
    for at in (instants[3], instants[-3]):
        ours = grid.filter(pl.col("at") == at)
        truth = twslake.sim_truth_grid("SPY", at)
        assert truth.columns == ["days", "delta", "t", "forward", "discount", "k", "strike", "iv", "atm_vol"]
        assert set(truth["days"]) >= {7, 14, 30, 60, 91}
        both = ours.join(truth, on=["days", "delta"], suffix="_true")
        # Every grid maturity the fitted expiries reach, and none beyond (the grid does not
        # extrapolate). Which ones that is moves with the calendar: the demo lists expiries up
        # to about 30 days from its own date.
        fitted = slices.filter((pl.col("at") == at) & pl.col("butterfly_ok"))
        reach = (fitted["t"].min() * 365, fitted["t"].max() * 365)
        expected = {d for d in (7, 14, 30, 60, 91, 182, 365) if reach[0] <= d <= reach[1]}
        assert len(expected) >= 2, f"the fitted expiries reach {reach} days"
        assert both.height >= 20 and set(both["days"]) == expected, (sorted(set(both["days"])), reach)
        assert (both["iv"] - both["iv_true"]).abs().max() < 0.003
        atm = both.filter(pl.col("days") >= 14).group_by("days").agg(pl.col("atm_vol", "atm_vol_true").first())
        # 0.3 vol points at the money.
        assert (atm["atm_vol"] - atm["atm_vol_true"]).abs().max() < 0.003, atm
    with pytest.raises(twslake.BadInputError, match="ZZZ"):
        twslake.sim_truth_grid("ZZZ", instants[0])


def test_build_surfaces_stores_each_session_once(lake_dir, tmp_path):
    root, lake = copy_of(lake_dir, tmp_path)
    days = sorted(lake.surfaces("SPY").select("date").unique().collect()["date"])
    # The demo stored these sessions every 30 minutes: the same run finds them done.
    same = lake.build_surfaces("SPY", days[0], days[-1])
    assert same["sessions"] == same["sessions_done"] == 2 and same["rows"] == 0
    before = lake.surfaces("SPY").collect()
    hourly = lake.build_surfaces("SPY", days[0], days[-1], timedelta(hours=1), threads=1)
    assert hourly["sessions_written"] == 2 and hourly["surfaces"] == hourly["instants"] > 0
    assert hourly["rows"] > 0 and hourly["failures"] == []
    after = lake.surfaces("SPY").collect()
    # Hourly instants are also half-hourly ones: the same surfaces, merged on the key.
    key = ["at", "kind", "expiry", "days", "delta"]
    assert after.height == before.height
    assert after.drop("computed_at").sort(key).equals(before.drop("computed_at").sort(key))
    assert after["computed_at"].n_unique() == 2
    files = tree(root)
    again = lake.build_surfaces("SPY", days[0], days[-1], "1h")
    assert again["sessions"] == again["sessions_done"] == 2
    assert again["sessions_written"] == again["rows"] == 0
    assert tree(root) == files


def test_build_surfaces_refuses_bad_input_and_writes_nothing(lake_dir, tmp_path):
    root, lake = copy_of(lake_dir, tmp_path)
    files = tree(root)
    days = sorted(lake.surfaces("SPY").select("date").unique().collect()["date"])
    with pytest.raises(twslake.BadInputError, match="XYZ.*it holds: .*SPY"):
        lake.build_surfaces("XYZ", days[0], days[-1])
    with pytest.raises(twslake.BadInputError, match='"7x"'):
        lake.build_surfaces("SPY", days[0], days[-1], "7x")
    with pytest.raises(twslake.BadInputError, match="step"):
        lake.build_surfaces("SPY", days[0], days[-1], timedelta(seconds=30))
    with pytest.raises(twslake.BadInputError, match="start must not be after end"):
        lake.build_surfaces("SPY", days[-1], days[0])
    with pytest.raises(twslake.BadInputError, match=r"2025-01-06 \.\. 2025-01-10.*1 min MIDPOINT"):
        lake.build_surfaces("SPY", "2025-01-06", "2025-01-10")
    with pytest.raises(twslake.BadInputError, match="5 mins MIDPOINT.*1 min MIDPOINT"):
        lake.build_surfaces("SPY", days[0], days[-1], bar_size="5 mins")
    with pytest.raises(twslake.BadInputError, match="symbol"):
        lake.build_surfaces("../x", days[0], days[-1])
    assert tree(root) == files
