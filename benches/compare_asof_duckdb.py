"""DuckDB beside `Lake::option_panel`: a year of 1-minute option bars of one underlying closed by
an instant, each joined to the spot as of its bar end (ASOF join), with the expiry instant and the
time to expiry, materialised in memory.

Usage: python benches/compare_asof_duckdb.py LAKE_ROOT
LAKE_ROOT is the lake `cargo bench --bench research` builds ($CARGO_TARGET_DIR/research-bench-lake).
Prints the median of 5 runs with 2 threads and with 1 (DuckDB uses every core unless told).

The query computes what the panel computes: bars with `end = ts + 1 minute <= AT`, the spot of
the last spot bar ended at or before `end`, `expiry_at` = 16:00 New York of the expiry date, 13:00
on the early-close days of twslake's calendar (`EARLY_CLOSES`, the rule of `calendar.rs`, over
2000–2035 as `pit::with_time_to_expiry` uses them), and `t` in ACT/365 years from `end`. The
panel's columns, in its order (`year`, the hive key, is left out as twslake leaves it out).
"""
import datetime as dt
import statistics
import sys
import time

import duckdb

AT = "2025-01-01 00:00:00+00"


def early_closes():
    """13:00 closes of twslake's calendar (`calendar::is_early_close`) from 2000 to 2035: the day
    after Thanksgiving, Christmas Eve and July 3 when they are trading days before the holiday
    (Monday to Thursday; a Friday Dec 24 or July 3 is the observed holiday), and July 5, 2002."""
    out = [dt.date(2002, 7, 5)]
    for y in range(2000, 2036):
        nov1 = dt.date(y, 11, 1)
        thanksgiving = nov1 + dt.timedelta(days=(3 - nov1.weekday()) % 7 + 21)
        out.append(thanksgiving + dt.timedelta(days=1))
        out += [d for d in (dt.date(y, 7, 3), dt.date(y, 12, 24)) if d.weekday() <= 3]
    return sorted(out)


EARLY_CLOSES = ", ".join(f"DATE '{d}'" for d in early_closes())

QUERY = """
CREATE OR REPLACE TEMP TABLE panel AS
WITH o AS (
  SELECT * EXCLUDE (year), ts + INTERVAL 1 MINUTE AS "end"
  FROM read_parquet('{root}/option_bars/symbol=SPY/**/*.parquet', hive_partitioning = true)
  WHERE bar_size = '1 min' AND what_to_show = 'MIDPOINT' AND ts + INTERVAL 1 MINUTE <= TIMESTAMPTZ '{at}'
), s AS (
  SELECT ts + INTERVAL 1 MINUTE AS spot_end, close AS spot
  FROM read_parquet('{root}/equity_bars/symbol=SPY/**/*.parquet', hive_partitioning = true)
  WHERE bar_size = '1 min' AND what_to_show = 'MIDPOINT' AND ts + INTERVAL 1 MINUTE <= TIMESTAMPTZ '{at}'
), j AS (
  SELECT o.*, s.spot_end, s.spot,
    timezone('America/New_York', o.expiry::TIMESTAMP + INTERVAL 16 HOUR)
      - CASE WHEN o.expiry IN ({early}) THEN INTERVAL 3 HOUR ELSE INTERVAL 0 HOUR END AS expiry_at
  FROM o ASOF LEFT JOIN s ON o."end" >= s.spot_end
)
SELECT symbol, con_id, expiry, strike, "right", multiplier, ts, date, bar_size, what_to_show,
  open, high, low, close, volume, wap, bar_count, ingested_at, "end", spot_end, spot, expiry_at,
  (epoch_us(expiry_at) - epoch_us("end")) / (1e6 * 365 * 86400) AS t
FROM j
"""


def run(threads, root):
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    q = QUERY.format(root=root, at=AT, early=EARLY_CLOSES)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        con.execute(q)
        times.append(time.perf_counter() - t0)
    n = con.execute("SELECT count(*) FROM panel").fetchone()[0]
    return statistics.median(times), n


def main():
    root = sys.argv[1]
    for threads in (2, 1):
        secs, n = run(threads, root)
        print(f"duckdb {duckdb.__version__} ({threads} thread(s)): {secs * 1000:.0f} ms median of 5, "
              f"{n} rows, {n / secs / 1e6:.2f} M rows/s")


if __name__ == "__main__":
    main()
