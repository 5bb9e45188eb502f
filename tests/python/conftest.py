"""Fixtures for the interop tests: the lake the Rust suite wrote and what the Rust reader returned."""
import json
import os
import pathlib

import pytest

REPO = pathlib.Path(__file__).resolve().parents[2]


def twslake_bin() -> pathlib.Path:
    """The twslake binary the tests run: $TWSLAKE_BIN, or the debug build of $CARGO_TARGET_DIR,
    ./target or the test command's cache."""
    candidates = [os.environ.get("TWSLAKE_BIN")]
    target = os.environ.get("CARGO_TARGET_DIR")
    if target:
        candidates.append(str(pathlib.Path(target) / "debug" / "twslake"))
    candidates += [str(REPO / "target" / "debug" / "twslake"), str(pathlib.Path.home() / ".cache/twslake/target/debug/twslake")]
    for c in candidates:
        if c and pathlib.Path(c).is_file():
            return pathlib.Path(c)
    pytest.fail("no twslake binary: set TWSLAKE_BIN or run `cargo build` (scripts/test.sh does)")


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
