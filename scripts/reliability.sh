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

# shellcheck source=scripts/moto.sh
source scripts/moto.sh
start_moto "$CACHE/moto-reliability.log"

echo "machine: $(nproc) cores, $(uname -sm); binary: $BIN"
"$VENV/bin/python" scripts/reliability.py --bin "$BIN" --s3 "$S3_ENDPOINT" "$@"
