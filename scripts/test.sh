#!/usr/bin/env bash
# Runs every test of twslake, doing its own set-up on a fresh machine:
#   - a Python venv with the interop readers (DuckDB, pyarrow, polars) and moto's S3 server;
#   - an S3 server on loopback (moto) for the storage suite's S3 half;
#   - formatting and lint checks, the Rust tests (unit, integration, doc), the Python tests.
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

step "S3 server (moto) on loopback"
PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
MOTO_LOG="$CACHE/moto.log"
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$MOTO_LOG" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done
export TWSLAKE_TEST_S3_ENDPOINT="http://127.0.0.1:$PORT"
echo "moto listening on $TWSLAKE_TEST_S3_ENDPOINT"

step "cargo fmt --check"
cargo fmt --check

step "cargo clippy"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo test"
export TWSLAKE_INTEROP_DIR="$CARGO_TARGET_DIR/interop"
rm -rf "$TWSLAKE_INTEROP_DIR"
cargo test --quiet

step "python tests"
"$VENV/bin/python" -m pytest -q tests/python
