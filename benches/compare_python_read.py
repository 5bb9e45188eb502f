"""Reading a dataset through the twslake Python package vs polars' own scan_parquet, same files.

    python benches/compare_python_read.py LAKE [SYMBOL]

LAKE is any twslake lake (the research benchmark's, or one made by `twslake demo`); the package
should be a release build (`pip install ./python`). Prints a Markdown table for BENCHMARKS.md:
- the package's lazy scan (`Lake.option_bars(...)`: the Rust layout code lists the partitions,
  polars reads them) against `pl.scan_parquet` over the symbol's folder and over the whole
  dataset's glob with hive partitioning, filtered to the symbol;
- a month of it, where the package lists only that month's day partitions and polars over the
  glob opens every file's footer to prune;
- the eager Rust read (`Lake.read`: polars in Rust, then the Arrow C stream into Python);
- the hand-over alone: importing an already-read frame through the C stream, whose cost does
  not grow with the rows if nothing is copied.
"""

from __future__ import annotations

import statistics
import sys
import time

import polars as pl

import twslake


def best(f, repeat=7):
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        out = f()
        times.append(time.perf_counter() - t0)
    return min(times), statistics.median(times), out


def main() -> None:
    root = sys.argv[1].rstrip("/")
    symbol = sys.argv[2] if len(sys.argv) > 2 else None
    lake = twslake.Lake(root)
    symbol = symbol or lake.scan("option_bars").select("symbol").first().collect().item()
    enc = symbol.replace(" ", "%20")
    dates = lake.scan("option_bars", symbol).select(pl.col("date").min().alias("lo"), pl.col("date").max().alias("hi"))
    lo, hi = dates.collect().row(0)
    mid = lo + (hi - lo) / 2
    month = (mid.replace(day=1), mid.replace(day=28))  # most of the middle month
    cases = {
        "twslake `Lake.option_bars(sym, ...)` (lazy, collected)": lambda: lake.scan("option_bars", symbol).collect(),
        "polars `scan_parquet(symbol folder)`": lambda: pl.scan_parquet(
            f"{root}/option_bars/symbol={enc}/**/*.parquet", hive_partitioning=False
        ).collect(),
        "polars `scan_parquet(dataset glob, hive)` filtered to the symbol": lambda: pl.scan_parquet(
            f"{root}/option_bars/**/*.parquet", hive_partitioning=True
        )
        .filter(pl.col("symbol") == symbol)
        .collect(),
        "twslake `Lake.read` (Rust scan, then Arrow C stream)": lambda: lake.read("option_bars", symbol),
        "one month: twslake `Lake.option_bars(sym, start=, end=)`": lambda: lake.scan(
            "option_bars", symbol, start=month[0], end=month[1]
        ).collect(),
        "one month: polars `scan_parquet(dataset glob, hive)` filtered on symbol and date": lambda: pl.scan_parquet(
            f"{root}/option_bars/**/*.parquet", hive_partitioning=True
        )
        .filter((pl.col("symbol") == symbol) & pl.col("date").is_between(*month))
        .collect(),
    }
    print(f"lake {root}, option_bars of {symbol}\n")
    print("| read | rows | best ms | median ms |\n|---|---:|---:|---:|")
    for name, f in cases.items():
        lo, med, out = best(f)
        print(f"| {name} | {out.height:,} | {lo * 1e3:.1f} | {med * 1e3:.1f} |")
    big = lake._native.read(("option_bars", [symbol], None, None, None, None))
    small = lake._native.sql("SELECT * FROM option_bars LIMIT 1000")
    print("\n| Arrow C stream hand-over (`pl.DataFrame(frame)`) | rows | chunks | MB | best µs |\n|---|---:|---:|---:|---:|")
    for name, frame in [("a 1,000-row frame", small), ("the whole read", big)]:
        lo, _, df = best(lambda: pl.DataFrame(frame), repeat=50)
        print(f"| {name} | {df.height:,} | {df.n_chunks()} | {df.estimated_size('mb'):.1f} | {lo * 1e6:.0f} |")


if __name__ == "__main__":
    main()
