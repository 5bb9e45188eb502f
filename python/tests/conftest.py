"""Fixtures of the package's tests: a lake made by `twslake demo`, and the CLI to compare with.

The lake is the one named by TWSLAKE_DEMO_LAKE (the README's test command makes it once for
these tests and the notebooks), else one made here with the `twslake` binary (TWSLAKE_BIN, or
the debug build under CARGO_TARGET_DIR).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import polars as pl
import pytest

import twslake


def binary() -> str:
    if os.environ.get("TWSLAKE_BIN"):
        return os.environ["TWSLAKE_BIN"]
    target = os.environ.get("CARGO_TARGET_DIR", str(Path.home() / ".cache/twslake/target"))
    path = Path(target) / "debug" / "twslake"
    if not path.exists():
        pytest.fail(f"no twslake binary at {path}: build it (cargo build) or set TWSLAKE_BIN")
    return str(path)


def cli(*args: str) -> str:
    done = subprocess.run([binary(), *args], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, f"twslake {' '.join(args)} failed:\n{done.stderr}"
    return done.stdout


def cli_json(*args: str):
    return json.loads(cli(*args))


@pytest.fixture(scope="session")
def lake_dir(tmp_path_factory) -> str:
    given = os.environ.get("TWSLAKE_DEMO_LAKE")
    if given and Path(given).exists():
        return given
    path = tmp_path_factory.mktemp("demo") / "lake"
    cli("demo", "--lake", str(path))
    return str(path)


@pytest.fixture(scope="session")
def lake(lake_dir) -> twslake.Lake:
    return twslake.Lake(lake_dir)


@pytest.fixture(scope="session")
def snapshot_at(lake):
    """The instant of SPY's latest chain snapshot: after the last session the demo ingested."""
    return lake.chains("SPY").select(pl.col("snapshot_at").max()).collect().item()


@pytest.fixture(scope="session")
def staleness_min(lake, snapshot_at) -> int:
    """Minutes from SPY's last option bar's close to the snapshot, plus a margin: how stale the
    surface at `snapshot_at` must allow its mids to be. The demo follows the wall clock, so this
    is minutes after a session, hours at night, days over a weekend or a holiday."""
    last_start = lake.option_bars("SPY").select(pl.col("ts").max()).collect().item()
    gap = snapshot_at - last_start
    return int(gap.total_seconds() // 60) + 5


@pytest.fixture(scope="session")
def last_close(lake):
    """The close of the last session the demo stored option bars for (the end of its last
    1-minute bar): the demo backfills finished sessions, then snapshots the chain."""
    from datetime import timedelta

    return lake.option_bars("SPY").select(pl.col("ts").max()).collect().item() + timedelta(minutes=1)
