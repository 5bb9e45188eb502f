# Sourced by scripts/test.sh and scripts/reliability.sh: starts moto's S3 server on a free
# loopback port, stops it when the calling script exits, and sets S3_ENDPOINT to its URL.
# Needs VENV (a venv with moto[server]) and takes the log file as its argument.
start_moto() {
  local port
  port=$("$VENV/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  "$VENV/bin/moto_server" -H 127.0.0.1 -p "$port" >"$1" 2>&1 &
  MOTO_PID=$!
  trap 'kill "$MOTO_PID" 2>/dev/null || true' EXIT
  for _ in $(seq 1 100); do
    if "$VENV/bin/python" -c "import urllib.request; urllib.request.urlopen('http://127.0.0.1:$port/moto-api/')" 2>/dev/null; then
      break
    fi
    sleep 0.2
  done
  S3_ENDPOINT="http://127.0.0.1:$port"
}
