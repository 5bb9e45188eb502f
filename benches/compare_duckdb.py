"""DuckDB beside twslake's missing_windows: the distinct dates of one symbol over the same files.

Usage: python benches/compare_duckdb.py LAKE_ROOT [SYMBOL]
The lake is the synthetic one `cargo bench --bench missing_windows` builds under
$CARGO_TARGET_DIR/bench-lake. Prints the median of 20 runs for each query shape.
"""
import statistics
import sys
import time

import duckdb


def timed(con, sql, runs=20):
    out = []
    for _ in range(runs):
        t0 = time.perf_counter()
        rows = con.execute(sql).fetchall()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), len(rows)


def main():
    root = sys.argv[1]
    symbol = sys.argv[2] if len(sys.argv) > 2 else "S0250"
    con = duckdb.connect()
    shapes = {
        "glob over the whole dataset, WHERE symbol": (
            f"SELECT DISTINCT date FROM read_parquet('{root}/equity_bars/**/*.parquet', hive_partitioning = true) "
            f"WHERE symbol = '{symbol}' ORDER BY date"
        ),
        "the symbol's own folder": (
            f"SELECT DISTINCT date FROM read_parquet('{root}/equity_bars/symbol={symbol}/**/*.parquet') ORDER BY date"
        ),
    }
    for name, sql in shapes.items():
        secs, n = timed(con, sql)
        print(f"duckdb {duckdb.__version__}: {name}: {secs * 1000:.2f} ms median ({n} dates)")


if __name__ == "__main__":
    main()
