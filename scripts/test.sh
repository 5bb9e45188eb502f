#!/usr/bin/env bash
# Runs every test of twslake, doing its own set-up on a fresh machine:
#   - a Python venv with the interop readers (DuckDB, pyarrow, polars) and moto's S3 server;
#   - Debian's chromium, for the report's test in a real browser (installed when root);
#   - an S3 server on loopback (moto) for the storage suite's S3 half;
#   - formatting and lint checks, the Rust tests (unit, integration, doc), the Python tests;
#   - the Python package built with maturin into a fresh venv, its tests, and every notebook
#     executed on a lake made by `twslake demo`.
# Build output goes to $CARGO_TARGET_DIR (default: a cache folder outside the clone), so a warm
# machine rebuilds little.
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${TWSLAKE_CACHE:-$HOME/.cache/twslake}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VENV="${TWSLAKE_VENV:-$CACHE/venv}"
mkdir -p "$CACHE"

step() { printf '\n== %s (%s)\n' "$1" "$(date +%H:%M:%S)"; }

step "python venv at $VENV"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
export TWSLAKE_VENV="$VENV"

step "chromium (the headless browser of tests/python/test_report.py)"
if ! command -v chromium >/dev/null 2>&1; then
  if [ "$(id -u)" = 0 ]; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends chromium >/dev/null
  else
    echo "chromium is missing and installing it needs root: run" >&2
    echo "  sudo apt-get install --no-install-recommends chromium" >&2
    echo "then this command again" >&2
    exit 1
  fi
fi
chromium --version 2>/dev/null

step "S3 server (moto) on loopback"
# shellcheck source=scripts/moto.sh
source scripts/moto.sh
start_moto "$CACHE/moto.log"
export TWSLAKE_TEST_S3_ENDPOINT="$S3_ENDPOINT"
# The pacing ledger of the binaries the tests start (one file per gateway) stays in the cache.
export TWSLAKE_STATE_DIR="${TWSLAKE_STATE_DIR:-$CACHE/state}"
echo "moto listening on $TWSLAKE_TEST_S3_ENDPOINT"

step "cargo fmt --check"
cargo fmt --all --check

step "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings
cargo clippy -p twslake-python --quiet -- -D warnings

step "cargo test"
export TWSLAKE_INTEROP_DIR="$CARGO_TARGET_DIR/interop"
rm -rf "$TWSLAKE_INTEROP_DIR"
cargo test --quiet

step "python tests"
"$VENV/bin/python" -m pytest -q tests/python

step "python package: maturin build (dev profile) into a fresh venv"
PKG_VENV="$CARGO_TARGET_DIR/python-package-venv"
rm -rf "$PKG_VENV"
python3 -m venv "$PKG_VENV"
"$PKG_VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r python/requirements-test.txt
WHEELS="$CARGO_TARGET_DIR/wheels"
rm -rf "$WHEELS"
# The dev profile reuses the dependencies `cargo test` just built; `pip install ./python` (the
# user's one command) builds the same package in release.
"$PKG_VENV/bin/maturin" build --quiet --profile dev -m python/Cargo.toml --out "$WHEELS"
"$PKG_VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps "$WHEELS"/twslake-*.whl

step "demo lake for the package tests and the notebooks"
DEMO_LAKE="$CARGO_TARGET_DIR/demo-lake"
rm -rf "$DEMO_LAKE"
"$CARGO_TARGET_DIR/debug/twslake" demo --lake "$DEMO_LAKE" >"$CACHE/demo.log" 2>&1 || { tail -50 "$CACHE/demo.log"; exit 1; }
export TWSLAKE_DEMO_LAKE="$DEMO_LAKE" TWSLAKE_BIN="$CARGO_TARGET_DIR/debug/twslake"

step "python package tests"
"$PKG_VENV/bin/python" -m pytest -q python/tests

step "notebooks (nbclient, on the demo lake)"
TWSLAKE_LAKE="$DEMO_LAKE" "$PKG_VENV/bin/python" notebooks/run.py
