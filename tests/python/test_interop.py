"""Other engines read a twslake lake as it is: DuckDB, pyarrow.dataset and polars, plain Hive
partitioning, no help from twslake. Each must return exactly the rows and keys the Rust reader
returned for the same lake (written by the Rust suite with the expected rows beside it)."""
import datetime as dt
import json
import pathlib

import duckdb
import jsonschema
import polars as pl
import pyarrow.dataset as pads
import pytest

from conftest import REPO

DATASETS = ["contracts", "chains", "equity_bars", "option_bars", "quotes", "surfaces", "corporate_actions"]
EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.timezone.utc)


def canon(v):
    """The cell form the Rust side wrote: dates as ISO strings, timestamps as microseconds."""
    if isinstance(v, dt.datetime):
        assert v.tzinfo is not None, f"timestamp {v} lost its UTC zone"
        return (v - EPOCH) // dt.timedelta(microseconds=1)
    if isinstance(v, dt.date):
        return v.isoformat()
    return v


def rows_of(records, columns, key):
    rows = [[canon(r[c]) for c in columns] for r in records]
    idx = [columns.index(k) for k in key]
    # Key columns may be null (the surfaces dataset's expiry rows have no grid delta): nulls last.
    return sorted(rows, key=lambda r: [(r[i] is None, 0 if r[i] is None else r[i]) for i in idx])


def read_duckdb(root, ds):
    con = duckdb.connect()
    cur = con.execute(f"SELECT * FROM read_parquet('{root}/{ds}/**/*.parquet', hive_partitioning = true)")
    rows = cur.fetchall()
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r)) for r in rows], {d[0]: str(d[1]) for d in cur.description}


def read_pyarrow(root, ds):
    table = pads.dataset(str(root / ds), format="parquet", partitioning="hive").to_table()
    return table.to_pylist(), {f.name: str(f.type) for f in table.schema}


def read_polars(root, ds):
    df = pl.scan_parquet(f"{root}/{ds}/**/*.parquet", hive_partitioning=True).collect()
    return df.to_dicts(), {c: str(t) for c, t in df.schema.items()}


READERS = {"duckdb": read_duckdb, "pyarrow": read_pyarrow, "polars": read_polars}


@pytest.mark.parametrize("ds", DATASETS)
@pytest.mark.parametrize("engine", list(READERS))
def test_engine_reads_what_the_rust_reader_reads(lake_root, expected, engine, ds):
    want = expected[ds]
    records, types = READERS[engine](lake_root, ds)
    got = rows_of(records, want["columns"], want["key"])
    assert len(got) == len(want["rows"])
    assert got == rows_of([dict(zip(want["columns"], r)) for r in want["rows"]], want["columns"], want["key"])
    symbols = {r["symbol"] for r in records}
    assert "BRK B" in symbols, f"{engine} decodes the percent-encoded folder name"
    if ds != "contracts":
        assert "year" in types and "int" in types["year"].lower()
        assert types["date"].lower().startswith("date"), types["date"]


def test_date_partition_filters_reach_the_files(lake_root):
    # A filter on the partition keys prunes folders: only BRK B's 2023 daily file is read.
    con = duckdb.connect()
    n = con.execute(
        f"SELECT count(*) FROM read_parquet('{lake_root}/equity_bars/**/*.parquet', hive_partitioning = true) "
        "WHERE symbol = 'BRK B' AND year = 2023 AND bar_size = '1 day'"
    ).fetchall()[0][0]
    assert n == 3  # 2023-12-27, 28, 29


def test_manifest_files_follow_the_schema(lake_root):
    schema = json.loads((REPO / "lake-layout" / "manifest.schema.json").read_text())
    files = sorted((lake_root / "_manifest").rglob("*.json"))
    assert files, "the example lake has manifest files"
    for f in files:
        jsonschema.validate(json.loads(f.read_text()), schema)


def test_committed_example_lake_reads_the_same(expected):
    # The example in lake-layout/ is byte-for-byte what the code writes (checked in Rust);
    # here it is read by an outside engine straight from the repository.
    root = REPO / "lake-layout" / "example"
    records, _ = read_polars(root, "equity_bars")
    want = expected["equity_bars"]
    assert rows_of(records, want["columns"], want["key"]) == rows_of(
        [dict(zip(want["columns"], r)) for r in want["rows"]], want["columns"], want["key"]
    )
