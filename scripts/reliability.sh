#!/usr/bin/env bash
# Re-runs the reliability table of BENCHMARKS.md: `setup` killed at random instants (local disk
# and S3 on loopback), and concurrent `setup`s sharing one lake and one simulated gateway.
#   bash scripts/reliability.sh [--kills N] [--procs N] [--rounds N]
# Uses the release binary and the test command's venv (created here when missing).
set -euo pipefail
cd "$(dirname "$0")/.."

CACHE="${TWSLAKE_CACHE:-$HOME/.cache/twslake}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$CACHE/target}"
VENV="${TWSLAKE_VENV:-$CACHE/venv}"
mkdir -p "$CACHE"
if [ ! -x "$VENV/bin/python" ]; then
  python3 -m venv "$VENV"
fi
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt

cargo build --release --quiet
BIN="$CARGO_TARGET_DIR/release/twslake"

PORT=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$VENV/bin/moto_server" -H 127.0.0.1 -p "$PORT" >"$CACHE/moto-reliability.log" 2>&1 &
MOTO_PID=$!
trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$PORT/moto-api/')" 2>/dev/null; then
    break
  fi
  sleep 0.2
done

echo "machine: $(nproc) cores, $(uname -sm); binary: $BIN"
"$VENV/bin/python" scripts/reliability.py --bin "$BIN" --s3 "http://127.0.0.1:$PORT" "$@"
