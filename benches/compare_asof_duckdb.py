"""DuckDB beside `Lake::option_panel`: a year of 1-minute option bars of one underlying, each
joined to the spot as of its bar end (ASOF join), with the time to expiry, materialised in memory.

Usage: python benches/compare_asof_duckdb.py LAKE_ROOT
LAKE_ROOT is the lake `cargo bench --bench research` builds ($CARGO_TARGET_DIR/research-bench-lake).
Prints the median of 5 runs. DuckDB uses every core unless told otherwise: both figures are given.
"""
import statistics
import sys
import time

import duckdb

QUERY = """
CREATE OR REPLACE TEMP TABLE panel AS
WITH o AS (
  SELECT *, ts + INTERVAL 1 MINUTE AS "end"
  FROM read_parquet('{root}/option_bars/symbol=SPY/**/*.parquet', hive_partitioning = true)
  WHERE bar_size = '1 min' AND what_to_show = 'MIDPOINT'
), s AS (
  SELECT ts + INTERVAL 1 MINUTE AS spot_end, close AS spot
  FROM read_parquet('{root}/equity_bars/symbol=SPY/**/*.parquet', hive_partitioning = true)
  WHERE bar_size = '1 min' AND what_to_show = 'MIDPOINT'
)
SELECT o.*, s.spot, s.spot_end,
  timezone('America/New_York', expiry::TIMESTAMP + INTERVAL 16 HOUR) AS expiry_at,
  epoch(timezone('America/New_York', expiry::TIMESTAMP + INTERVAL 16 HOUR) - o."end") / (365.0 * 86400) AS t
FROM o ASOF LEFT JOIN s ON o."end" >= s.spot_end
"""


def run(threads, root):
    con = duckdb.connect()
    con.execute(f"SET threads = {threads}")
    q = QUERY.format(root=root)
    times = []
    for _ in range(5):
        t0 = time.perf_counter()
        con.execute(q)
        times.append(time.perf_counter() - t0)
    n = con.execute("SELECT count(*) FROM panel").fetchone()[0]
    return statistics.median(times), n


def main():
    root = sys.argv[1]
    for threads in (1, 2):
        secs, n = run(threads, root)
        print(f"duckdb {duckdb.__version__} ({threads} thread(s)): {secs * 1000:.0f} ms median, {n} rows, {n / secs / 1e6:.1f} M rows/s")


if __name__ == "__main__":
    main()
