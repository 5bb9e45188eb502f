"""Fixtures for the interop tests: the lake the Rust suite wrote and what the Rust reader returned."""
import json
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def interop_dir() -> pathlib.Path:
    d = os.environ.get("TWSLAKE_INTEROP_DIR")
    if not d or not (pathlib.Path(d) / "expected.json").exists():
        pytest.fail(
            "no interop fixture: run the README's test command (bash scripts/test.sh), "
            "whose Rust suite writes it to $TWSLAKE_INTEROP_DIR"
        )
    return pathlib.Path(d)


@pytest.fixture(scope="session")
def lake_root(interop_dir) -> pathlib.Path:
    return interop_dir / "lake"


@pytest.fixture(scope="session")
def expected(interop_dir) -> dict:
    return json.loads((interop_dir / "expected.json").read_text())
