"""twslake for Python: the lake's own answers as polars frames.

Open a lake made by ``twslake setup`` or ``twslake demo`` (a path, ``file://`` or ``s3://`` URL;
S3 is configured from the standard AWS environment, as for the CLI)::

    import polars as pl
    import twslake
    lake = twslake.Lake("lake")
    lake.equity_bars("SPY", bar_size="1 day").collect()      # a polars LazyFrame, pruned
    lake.missing_windows("SPY", start="2024-01-01", end="2024-12-31")
    lake.surface("SPY", at="2026-11-24 15:30").expiries       # fitted SVI slices, checks
    lake.surfaces("SPY").filter(pl.col("kind") == "grid")     # the stored surface history

Datasets come back as lazy frames read by polars itself (only the partitions a filter needs are
listed); computed answers (missing windows, status, chains as of an instant, the option panel,
implied vols, surfaces) are made by the same Rust code as the ``twslake`` binary and cross into
Python through the Arrow C stream interface, without a copy through text.

Bar series are chosen as the CLI chooses them when not given: the option panel and the surface
read the finest MIDPOINT option series the lake holds on the dates read (``"1 min"`` in a demo
lake, ``"5 mins"`` after a default ``twslake setup``), the panel's spot an intraday equity
series no coarser than those option bars.

Instants are read as the CLI's ``--at`` reads them: timezone-aware ``datetime`` objects (the
lake's own timestamps are UTC-aware), RFC 3339 strings (``2026-11-24T15:30:00Z``), New York
wall-clock times (``"2026-11-24 10:30"``, or a naive ``datetime``: the exchange's clock), or a
date alone, meaning that date's close. Dates are ``date`` objects or ``YYYY-MM-DD`` strings.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Iterable, Sequence, Union

import polars as pl

from . import _native
from ._native import (
    BadInputError,
    CorruptError,
    GatewayError,
    IntegrityError,
    PrerequisiteError,
    QueryError,
    StorageError,
    TwslakeError,
)

__all__ = [
    "Lake",
    "Spot",
    "Surface",
    "implied_vols",
    "sim_truth",
    "sim_truth_grid",
    "TwslakeError",
    "BadInputError",
    "StorageError",
    "CorruptError",
    "IntegrityError",
    "QueryError",
    "PrerequisiteError",
    "GatewayError",
]

__version__ = _native.version()

Instant = Union[datetime, date, str]
Day = Union[date, str]
Symbols = Union[str, Sequence[str], None]

DATASETS = ("contracts", "chains", "equity_bars", "option_bars", "quotes", "surfaces")


def _instant(at: Instant) -> str:
    if isinstance(at, datetime):
        if at.tzinfo is None:  # the exchange's wall clock, as a string without an offset
            return at.strftime("%Y-%m-%dT%H:%M:%S.%f")
        return at.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%f") + "Z"
    if isinstance(at, date):
        return at.isoformat()
    if isinstance(at, str):
        return at
    raise BadInputError(f"invalid instant {at!r}: give a datetime or a string like '2026-11-24 20:55'")


def _day(d: Day | None) -> str | None:
    if d is None:
        return None
    if isinstance(d, datetime):
        return d.date().isoformat()
    if isinstance(d, date):
        return d.isoformat()
    if isinstance(d, str):
        return d
    raise BadInputError(f"invalid date {d!r}: give a date or a string like '2024-01-31'")


def _symbols(symbols: Symbols) -> list[str] | None:
    if symbols is None:
        return None
    if isinstance(symbols, str):
        return [symbols]
    return list(symbols)


def _frame(native: _native.Frame) -> pl.DataFrame:
    # polars imports the Arrow C stream: the buffers made in Rust are taken over, not copied.
    return pl.DataFrame(native)


@dataclass(frozen=True)
class Spot:
    """The spot of an underlying at an instant: the close of the last 1-minute bar closed by then."""

    price: float
    as_of: datetime
    what_to_show: str


@dataclass(frozen=True)
class Surface:
    """An implied-volatility surface at an instant (see ``twslake surface --json``).

    ``spot`` is the underlying's price at ``at`` (from the bar that ended at ``spot_as_of``);
    ``series`` the option bars read (``"1 min MIDPOINT"``); ``quotes_from`` the earliest bar end
    a quote may have (older ones were stale, counted in session time). ``listing`` says where the
    list of contracts came from: ``"snapshot"`` when a chain snapshot had been taken by ``at``
    (``chain_snapshot_at``; its unquoted expiries are in ``skipped``), ``"bars"`` when none had
    (a backfilled past: the bars themselves prove their contracts were listed).

    ``expiries`` has one row per expiry (``expiry``, ``t``, ``forward``, ``discount``,
    ``forward_source`` (``parity`` or ``configured``), the raw SVI parameters
    ``a b rho m sigma``, ``atm_vol`` (the fit at ``k = 0``), ``rmse``, ``points``,
    ``butterfly_ok``, ``calendar_ok``, ``min_g``, and ``oldest_quote``/``newest_quote``: the
    ends of the slice's oldest and newest bars); ``points`` one row per quoted strike
    (``strike``, ``right``, ``k``, ``iv_market``, ``iv_fit`` and the slice's fields);
    ``skipped`` one row per listed expiry left without a slice and why. ``raw`` is the JSON
    document as a dict.
    """

    symbol: str
    at: datetime
    spot: float
    spot_as_of: datetime
    series: str
    listing: str
    chain_snapshot_at: datetime | None
    quotes_from: datetime
    expiries: pl.DataFrame
    points: pl.DataFrame
    skipped: pl.DataFrame
    raw: dict

    @property
    def arbitrage_free(self) -> bool:
        """True when every slice passes the butterfly and calendar checks."""
        return bool(self.expiries["butterfly_ok"].all() and self.expiries["calendar_ok"].all())

    def svi_total_variance(self, expiry: date, k: Iterable[float]) -> list[float]:
        """The fitted raw-SVI total variance w(k) of one expiry at log-moneyness values ``k``."""
        row = self.expiries.filter(pl.col("expiry") == expiry)
        if row.height != 1:
            raise BadInputError(f"invalid expiry {expiry!r}: the surface has {self.expiries['expiry'].to_list()}")
        a, b, rho, m, sigma = (row[c][0] for c in ("a", "b", "rho", "m", "sigma"))
        return [a + b * (rho * (x - m) + ((x - m) ** 2 + sigma**2) ** 0.5) for x in k]


def _parse_ts(s: str) -> datetime:
    return datetime.fromisoformat(s.replace("Z", "+00:00"))


class Lake:
    """A twslake lake, opened read-only.

    ``url`` is a folder path, ``file://`` or ``s3://bucket/prefix`` URL; by default the
    ``TWSLAKE_LAKE`` environment variable, else ``./lake``. A local folder that does not exist is
    an error (:class:`BadInputError`). Nothing is created or written, except by
    :meth:`build_surfaces`, which derives the ``surfaces`` dataset from the option bars already
    in the lake (as ``twslake surfaces`` does).

    S3 is configured from the standard AWS environment (``AWS_REGION``, ``AWS_ACCESS_KEY_ID``,
    ``AWS_SECRET_ACCESS_KEY``, ``AWS_SESSION_TOKEN``, ``AWS_ENDPOINT_URL``), or by
    ``storage_options`` with polars' keys (``aws_region``, ``aws_access_key_id``,
    ``aws_secret_access_key``, ``aws_endpoint_url``, ...), which take precedence and are used for
    every file the lake reads.
    """

    def __init__(
        self, url: str | os.PathLike[str] | None = None, *, storage_options: dict[str, str] | None = None
    ) -> None:
        if url is None:
            url = os.environ.get("TWSLAKE_LAKE", "lake")
        options = [(str(k), str(v)) for k, v in (storage_options or {}).items()]
        self._native = _native.NativeLake(os.fspath(url), options)

    def __repr__(self) -> str:
        return f"Lake({self.url!r})"

    @property
    def url(self) -> str:
        """The lake's location as a URL."""
        return self._native.url

    def symbols(self) -> list[str]:
        """The symbols the lake has ever requested anything for."""
        return self._native.symbols()

    # -- datasets, lazily -------------------------------------------------------------------

    def scan(
        self,
        dataset: str,
        symbols: Symbols = None,
        *,
        bar_size: str | None = None,
        what_to_show: str | None = None,
        start: Day | None = None,
        end: Day | None = None,
    ) -> pl.LazyFrame:
        """A lazy scan of one dataset: ``symbol`` plus the file columns.

        Only the partitions the filters keep are listed (by the Rust layout code); polars reads
        them with its own Parquet reader, so projections and predicates push down as usual.
        ``start``/``end`` bound the trading ``date`` (not for ``contracts``; for ``surfaces``
        the date of the instant ``at``); ``bar_size`` and ``what_to_show`` (IB's spellings:
        ``"1 min"``, ``"MIDPOINT"``) pick one bar series.
        """
        if dataset not in DATASETS:
            raise BadInputError(f"invalid dataset {dataset!r}: use one of {', '.join(DATASETS)}")
        s, e = _day(start), _day(end)
        args = (dataset, _symbols(symbols), bar_size, what_to_show, s, e)
        files, live = self._native.files(args)
        schema = self._schema(dataset)
        by_symbol: dict[str, list[str]] = {}
        for sym, url in files:
            by_symbol.setdefault(sym, []).append(url)
        opts = dict(self._native.storage_options()) or None
        frames = [
            pl.scan_parquet(urls, storage_options=opts, hive_partitioning=False)
            .with_columns(pl.lit(sym, dtype=pl.String).alias("symbol"))
            .select(list(schema))
            for sym, urls in by_symbol.items()
        ]
        if live is not None:
            # Days a live capture is still writing (a day file plus micro-batches, or only
            # micro-batches): merged on the key by the Rust reader, as every twslake answer is.
            frames.append(_frame(live).lazy())
        if not frames:
            return pl.DataFrame(schema=schema).lazy()
        lf = pl.concat(frames, how="vertical")
        if dataset != "contracts":
            if s is not None:
                lf = lf.filter(pl.col("date") >= date.fromisoformat(s))
            if e is not None:
                lf = lf.filter(pl.col("date") <= date.fromisoformat(e))
        if bar_size is not None and what_to_show is not None:
            lf = lf.filter((pl.col("bar_size") == bar_size) & (pl.col("what_to_show") == what_to_show))
        return lf

    def _schema(self, dataset: str) -> dict[str, pl.DataType]:
        cached = getattr(self, "_schemas", None)
        if cached is None:
            cached = self._schemas = {}
        if dataset not in cached:
            cached[dataset] = dict(_frame(self._native.read((dataset, [], None, None, None, None))).schema)
        return cached[dataset]

    def equity_bars(
        self,
        symbols: Symbols = None,
        *,
        bar_size: str = "1 day",
        what_to_show: str = "TRADES",
        start: Day | None = None,
        end: Day | None = None,
    ) -> pl.LazyFrame:
        """Equity bars of one series (default daily TRADES), lazily."""
        return self.scan("equity_bars", symbols, bar_size=bar_size, what_to_show=what_to_show, start=start, end=end)

    def option_bars(
        self,
        symbols: Symbols = None,
        *,
        bar_size: str | None = None,
        what_to_show: str = "MIDPOINT",
        start: Day | None = None,
        end: Day | None = None,
    ) -> pl.LazyFrame:
        """Option bars of one series of the underlyings ``symbols``, lazily: by default the finest
        series of ``what_to_show`` (MIDPOINT: the mids) the lake holds for them on those dates."""
        if bar_size is None:
            bar_size = self._native.finest_series("option_bars", _symbols(symbols), what_to_show, _day(start), _day(end))
            if bar_size is None:
                return pl.DataFrame(schema=self._schema("option_bars")).lazy()
        return self.scan("option_bars", symbols, bar_size=bar_size, what_to_show=what_to_show, start=start, end=end)

    def chains(self, symbols: Symbols = None, *, start: Day | None = None, end: Day | None = None) -> pl.LazyFrame:
        """Every option-chain snapshot (the chain's history), lazily."""
        return self.scan("chains", symbols, start=start, end=end)

    def contracts(self, symbols: Symbols = None) -> pl.LazyFrame:
        """Contract descriptions, lazily."""
        return self.scan("contracts", symbols)

    def quotes(self, symbols: Symbols = None, *, start: Day | None = None, end: Day | None = None) -> pl.LazyFrame:
        """Live quotes and option computations captured by ``twslake live``, lazily."""
        return self.scan("quotes", symbols, start=start, end=end)

    def surfaces(self, symbols: Symbols = None, start: Day | None = None, end: Day | None = None) -> pl.LazyFrame:
        """The stored surface history (``twslake surfaces``, :meth:`build_surfaces`), lazily;
        ``start``/``end`` bound the trading ``date`` of the instants.

        One long table with two kinds of rows per instant ``at`` (plus ``date``, ``spot``, the
        option ``series`` read, ``listing`` and ``computed_at`` on every row):

        - ``kind == "expiry"``: one fitted expiry (``expiry``, ``t``, ``forward``,
          ``discount``, SVI ``a b rho m sigma``, ``atm_vol``, ``rmse``, ``points``,
          ``butterfly_ok``, ``calendar_ok``, ``forward_source``, ``oldest_quote``,
          ``newest_quote``);
        - ``kind == "grid"``: one point of the standardized surface, a maturity in calendar
          ``days`` (7, 14, 30, 60, 91, 182, 365) and a forward call ``delta`` (0.10 to 0.90 by
          0.05), with ``strike``, ``k`` (ln K/F), ``iv``, and ``atm_vol`` at that maturity.
          Points the quotes do not support (beyond the quoted strikes, before the first expiry
          or after the last) have no row.

        Columns that do not apply to a kind are null.
        """
        return self.scan("surfaces", symbols, start=start, end=end)

    def read(self, dataset: str, symbols: Symbols = None, **filters: str | None) -> pl.DataFrame:
        """A dataset read eagerly by the Rust scan (same filters as :meth:`scan`)."""
        return _frame(
            self._native.read(
                (
                    dataset,
                    _symbols(symbols),
                    filters.get("bar_size"),
                    filters.get("what_to_show"),
                    _day(filters.get("start")),
                    _day(filters.get("end")),
                )
            )
        )

    # -- what is missing ---------------------------------------------------------------------

    def missing_windows(
        self,
        symbol: str,
        *,
        start: Day,
        end: Day,
        bar_size: str = "1 day",
        what_to_show: str = "TRADES",
        dataset: str = "equity_bars",
        con_id: int | None = None,
    ) -> pl.DataFrame:
        """Runs of NYSE trading days in ``[start, end]`` that no stored answer covers.

        Columns ``start``, ``end`` (dates) and ``trading_days``. For option bars give the
        ``con_id`` of the contract. Empty answers remembered in the manifest count as covered.
        """
        return _frame(
            self._native.missing_windows(dataset, symbol, bar_size, what_to_show, _day(start), _day(end), con_id)
        )

    def status(self, now: Instant | None = None) -> pl.DataFrame:
        """Per symbol and dataset: rows, first/last date, missing windows, requests, freshness."""
        return _frame(self._native.status(None if now is None else _instant(now)))

    # -- point in time ----------------------------------------------------------------------

    def spot_at(self, symbol: str, at: Instant) -> Spot:
        """The spot at ``at``: the close of the latest 1-minute bar that had closed by then."""
        price, as_of, what = self._native.spot_at(symbol, _instant(at))
        return Spot(price=price, as_of=_parse_ts(as_of), what_to_show=what)

    def chain_as_of(self, symbol: str, at: Instant) -> pl.DataFrame:
        """The latest option-chain snapshot taken at or before ``at`` (expirations × strikes)."""
        return _frame(self._native.chain_as_of(symbol, _instant(at)))

    def option_panel(
        self,
        symbol: str,
        at: Instant,
        *,
        start: Day | None = None,
        bar_size: str | None = None,
        what_to_show: str = "MIDPOINT",
        spot_what_to_show: str | None = None,
        rate: float = 0.04,
        dividend_yield: float = 0.0,
        implied_vol: bool = True,
        greeks: bool = False,
    ) -> pl.DataFrame:
        """Option bars closed by ``at`` (from ``start``, default ``at``'s trading day), each with
        the underlying's spot as of the bar's end, ``t`` (ACT/365 years to the expiry session's
        close: 16:00 New York, 13:00 on early-close days), and, by default,
        ``forward``/``discount`` from the given rates and the Let's Be Rational implied vol
        ``iv`` of the bar's close; ``greeks=True`` adds ``delta gamma vega theta``. Nothing
        stamped after ``at`` is used.

        The option bars are the ``bar_size`` series of ``what_to_show``; by default the finest
        one the lake holds on the dates read. The spot comes from a backward as-of join on an
        intraday equity series no coarser than the option bars (so each option bar's end is a
        spot bar's end): of ``spot_what_to_show`` if given, else MIDPOINT or TRADES, the one with
        bars on most of the dates. When there is no such series the error names the series the
        lake holds.
        """
        return _frame(
            self._native.option_panel(
                symbol,
                _instant(at),
                _day(start),
                bar_size,
                what_to_show,
                spot_what_to_show,
                rate,
                dividend_yield,
                implied_vol,
                greeks,
            )
        )

    def surface(
        self,
        symbol: str,
        at: Instant,
        *,
        bar_size: str | None = None,
        max_staleness_min: int | None = None,
        rate: float = 0.04,
        dividend_yield: float = 0.0,
    ) -> Surface:
        """The arbitrage-checked implied-volatility surface at ``at`` (raw SVI per expiry), as
        ``twslake surface`` fits it, at any instant the option bars cover.

        Each option's latest mid that ended by ``at`` is used, valued at its own bar's end, unless
        it ended more than ``max_staleness_min`` minutes of *session time* before ``at`` (nights,
        weekends and holidays do not count, so an overnight surface uses the last session's
        closing bars); by default five bars of the series read. The series is the MIDPOINT
        option bars of ``bar_size``; by default the finest the lake holds on the dates read.
        ``rate`` and ``dividend_yield`` serve only where put–call parity cannot be solved.
        """
        doc, points, expiries, skipped = self._native.surface(
            symbol, _instant(at), bar_size, max_staleness_min, rate, dividend_yield
        )
        raw = json.loads(doc)
        snapshot = raw.get("chain_snapshot_at")
        return Surface(
            symbol=raw["symbol"],
            at=_parse_ts(raw["at"]),
            spot=raw["spot"],
            spot_as_of=_parse_ts(raw["spot_as_of"]),
            series=raw["series"],
            listing=raw["listing"],
            chain_snapshot_at=None if snapshot is None else _parse_ts(snapshot),
            quotes_from=_parse_ts(raw["quotes_from"]),
            expiries=_frame(expiries),
            points=_frame(points),
            skipped=_frame(skipped),
            raw=raw,
        )

    def build_surfaces(
        self,
        symbol: str,
        start: Day,
        end: Day,
        every: str | timedelta = "30m",
        *,
        bar_size: str | None = None,
        max_staleness_min: int | None = None,
        rate: float = 0.04,
        dividend_yield: float = 0.0,
        threads: int | None = None,
    ) -> dict:
        """Fits the surface at every step of every session from ``start`` to ``end`` and stores
        it in the ``surfaces`` dataset, as ``twslake surfaces SYMBOL --from --to --every`` does;
        read it back with :meth:`surfaces`. This is the one method that writes to the lake.

        Instants run from each session's open every ``every`` (``"30m"``, ``"1h"``, a
        ``timedelta``; 1 minute to 8 hours) up to its close, which is always one of them; those
        after now are not fitted. Each surface is the one :meth:`surface` gives at that instant
        with the same options. A session already stored from the same inputs is skipped, so a
        second call writes nothing; a session whose option bars, spot bars or chain snapshots
        changed since is fitted again. ``threads`` fit instants in parallel (default: every core).

        Returns the run's report: ``sessions``, ``sessions_done`` (skipped, already stored),
        ``sessions_written``, ``instants``, ``surfaces`` (instants with a surface), ``rows``,
        ``fit_secs``, ``secs`` and ``failures`` (the first few reasons an instant had none).
        An unknown symbol, a bad step or a range without option bars is refused
        (:class:`BadInputError`) before anything is written.
        """
        if isinstance(every, timedelta):
            seconds = every.total_seconds()
            if seconds != int(seconds):
                raise BadInputError(f"invalid step {every!r}: give whole seconds, e.g. timedelta(minutes=30)")
            every = f"{int(seconds)}s"
        if not isinstance(every, str):
            raise BadInputError(f"invalid step {every!r}: give a string like '30m' or a timedelta")
        s, e = _day(start), _day(end)
        if s is None or e is None:
            raise BadInputError("invalid date range: give both start and end")
        doc = self._native.surface_history(
            symbol, s, e, every, bar_size, max_staleness_min, rate, dividend_yield, threads
        )
        return json.loads(doc)

    def sql(self, query: str) -> pl.DataFrame:
        """polars SQL over the datasets registered as tables (``equity_bars``, ``option_bars``,
        ``chains``, ``contracts``, ``quotes``, ``surfaces``)."""
        return _frame(self._native.sql(query))


def implied_vols(
    table: pl.DataFrame,
    *,
    price: str = "close",
    discount: str = "discount",
    forward: str = "forward",
    strike: str = "strike",
    t: str = "t",
    right: str = "right",
    spot: str = "spot",
    out: str = "iv",
    greeks: bool = False,
) -> pl.DataFrame:
    """Adds the Black implied vol of each row's (discounted) ``price`` as column ``out``
    (Let's Be Rational; NaN outside the no-arbitrage bounds), and with ``greeks=True`` the
    Black–Scholes ``delta gamma vega theta`` (with respect to ``spot``). ``right`` holds ``C``/``P``.
    The table crosses to Rust and back through the Arrow C stream interface.
    """
    if not hasattr(table, "__arrow_c_stream__"):
        raise BadInputError(f"invalid table {type(table).__name__}: pass a polars DataFrame")
    return _frame(_native.implied_vols(table, price, discount, forward, strike, t, right, spot, out, greeks))


def sim_truth(symbol: str, at: Instant, *, seed: int = 0) -> pl.DataFrame:
    """The built-in simulator's true surface at ``at`` (what ``twslake demo`` lakes are made
    from): one row per listed expiry and strike with ``expiry``, ``t``, ``forward``,
    ``atm_vol``, ``strike``, ``iv``, ``call``, ``put``."""
    return _frame(_native.sim_truth(symbol, _instant(at), seed))


def sim_truth_grid(symbol: str, at: Instant, *, seed: int = 0) -> pl.DataFrame:
    """The built-in simulator's true surface at ``at`` on the standardized grid of the
    ``surfaces`` dataset: the truth's SVI slices put through the same interpolation as the
    stored ``kind == "grid"`` rows (so the two compare point for point), supported on the
    truth's listed strikes. One row per point: ``days``, ``delta``, ``t``, ``forward``,
    ``discount``, ``k``, ``strike``, ``iv``, ``atm_vol``."""
    return _frame(_native.sim_truth_grid(symbol, _instant(at), seed))
