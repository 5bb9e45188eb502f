"""twslake's reliability table: writers killed at random instants, and processes sharing a lake
and a gateway, against the built-in simulator.

Run by `scripts/reliability.sh` (which builds the release binary, the venv and an S3 server on
loopback), or by hand:

    python scripts/reliability.py --bin target/release/twslake [--s3 http://127.0.0.1:PORT]

It prints the Markdown table that `BENCHMARKS.md` holds ("Reliability"), and exits non-zero
when any figure that must be zero is not.

- **Crash loop.** A reference lake is made by one uninterrupted `setup`. Then, in cycles of three
  on a fresh lake each, `setup` is started and SIGKILLed at a random instant (up to 70 % of
  the reference's duration), three times, and finally run to its end; `--kills` kills in all.
  Counted: kills that landed while the process still ran, files no reader can open, duplicate
  primary keys, rows of the reference missing from the healed lake, `twslake validate`'s verdict.
- **Concurrency.** `--procs` `setup` processes of overlapping symbols share one lake and one
  simulated gateway, `--rounds` times, each round on a fresh lake and gateway. Counted: processes
  that exited non-zero, pacing violations at the gateway (which counts them per gateway, as IB
  counts per login), historical requests asked more than once, and chain snapshots per symbol
  (one is right).
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq

# A small but whole setup: contracts, a chain snapshot, daily and 1-minute bars, option bars.
SETUP_FLAGS = [
    "--equity", "1 day/TRADES/20",
    "--equity", "1 min/TRADES/2",
    "--option-series", "1 min/MIDPOINT",
    "--option-sessions", "2",
    "--max-contracts", "12",
    "--expiry-days", "35",
    "--strike-band", "0.05",
]
# IB's pacing windows 100× shorter on both sides. Not shorter: the pacer's margin (3 % of a window
# + 25 ms) must cover a request's way from admission to the gateway on a loaded 2-core machine.
SCALE = "100"
KEYS = {
    "equity_bars": ["symbol", "bar_size", "what_to_show", "ts"],
    "option_bars": ["symbol", "bar_size", "what_to_show", "con_id", "ts"],
    "contracts": ["symbol", "con_id"],
}


class Sim:
    """`twslake sim` as a process, its request log in a file."""

    def __init__(self, bin_: str, workdir: Path):
        self.log = workdir / f"requests-{uuid.uuid4().hex[:8]}.jsonl"
        self.proc = subprocess.Popen(
            [bin_, "sim", "--listen", "127.0.0.1:0", "--pacing-scale", SCALE, "--request-log", str(self.log)],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )
        line = self.proc.stdout.readline()
        if not line.startswith("listening on "):
            raise SystemExit(f"the simulator did not start: {line!r}")
        self.address = line.split()[-1]

    def requests(self) -> list[dict]:
        if not self.log.exists():
            return []
        return [json.loads(l) for l in self.log.read_text().splitlines() if l.strip()]

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def setup_cmd(bin_: str, lake: str, gateway: str, symbols: list[str], client_id: int) -> list[str]:
    return [
        bin_, "setup", *symbols, "--lake", lake, "--gateway", gateway, "--client-id", str(client_id),
        "--pacing-scale", SCALE, "--timeout", "20", *SETUP_FLAGS,
    ]


def lake_env(s3: str | None, state: Path) -> dict:
    env = dict(os.environ, TWSLAKE_STATE_DIR=str(state), NO_COLOR="1")
    if s3:
        env.update(
            AWS_ENDPOINT_URL=s3, AWS_ACCESS_KEY_ID="test", AWS_SECRET_ACCESS_KEY="test",
            AWS_REGION="us-east-1", AWS_ALLOW_HTTP="true",
        )
    return env


def new_lake(workdir: Path, s3: str | None) -> str:
    if not s3:
        return str(workdir / f"lake-{uuid.uuid4().hex[:8]}")
    bucket = f"rel-{uuid.uuid4().hex[:12]}"
    req = urllib.request.Request(f"{s3.rstrip('/')}/{bucket}", method="PUT")
    urllib.request.urlopen(req).read()
    return f"s3://{bucket}/lake"


def storage_options(s3: str | None) -> dict | None:
    if not s3:
        return None
    return {
        "aws_endpoint_url": s3, "aws_access_key_id": "test", "aws_secret_access_key": "test",
        "aws_region": "us-east-1", "aws_allow_http": "true",
    }


def parquet_files(lake: str, s3: str | None, dataset: str) -> list[str]:
    if not s3:
        root = Path(lake) / dataset
        return sorted(str(p) for p in root.rglob("*.parquet")) if root.exists() else []
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(
        endpoint_override=s3, access_key="test", secret_key="test", region="us-east-1",
        scheme="http",
    )
    base = lake.removeprefix("s3://") + "/" + dataset
    try:
        infos = fs.get_file_info(pafs.FileSelector(base, recursive=True))
    except FileNotFoundError:
        return []
    return sorted(f"s3://{i.path}" for i in infos if i.path.endswith(".parquet"))


def unreadable(lake: str, s3: str | None) -> int:
    bad = 0
    fs = None
    if s3:
        import pyarrow.fs as pafs

        fs = pafs.S3FileSystem(
            endpoint_override=s3, access_key="test", secret_key="test", region="us-east-1",
            scheme="http",
        )
    for ds in ("contracts", "chains", "equity_bars", "option_bars"):
        for f in parquet_files(lake, s3, ds):
            try:
                pq.read_table(f.removeprefix("s3://"), filesystem=fs) if fs else pq.read_table(f)
            except Exception:  # noqa: BLE001 — any failure to read is what is counted
                bad += 1
    return bad


def keys(lake: str, s3: str | None, dataset: str) -> tuple[int, set]:
    """(rows, distinct primary keys) of a dataset."""
    files = parquet_files(lake, s3, dataset)
    if not files:
        return 0, set()
    df = pl.scan_parquet(
        files, hive_partitioning=True, storage_options=storage_options(s3), missing_columns="insert"
    )
    cols = [c for c in KEYS[dataset] if c in df.collect_schema().names()]
    rows = df.select(cols).collect()
    return rows.height, set(rows.iter_rows())


def validate(bin_: str, lake: str, env: dict) -> bool:
    return subprocess.run([bin_, "validate", "--lake", lake], env=env, capture_output=True).returncode == 0


def crash_loop(bin_: str, workdir: Path, s3: str | None, kills: int, rng: random.Random) -> dict:
    """`kills` SIGKILLs in cycles of three on a fresh lake each (so every kill lands in real work,
    not in a run with nothing left to do), each cycle then run to its end and checked."""
    sim = Sim(bin_, workdir)
    env = lake_env(s3, workdir / "state-crash")
    try:
        ref = new_lake(workdir, s3)
        t0 = time.monotonic()
        done = subprocess.run(setup_cmd(bin_, ref, sim.address, ["SPY"], 1), env=env, capture_output=True)
        whole = time.monotonic() - t0
        if done.returncode != 0:
            raise SystemExit(f"the reference setup failed: {done.stderr.decode()[-2000:]}")
        want = {ds: keys(ref, s3, ds)[1] for ds in KEYS}
        total = sum(len(w) for w in want.values())
        out = {"unreadable": 0, "duplicate_keys": 0, "rows_lost": 0, "final_exit": 0, "validate_ok": True}
        landed, k = 0, 0
        while k < kills:
            lake = new_lake(workdir, s3)
            for _ in range(min(3, kills - k)):
                p = subprocess.Popen(
                    setup_cmd(bin_, lake, sim.address, ["SPY"], 2 + k % 50), env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )
                time.sleep(rng.uniform(0.05, 0.7 * whole))
                landed += p.poll() is None
                p.send_signal(signal.SIGKILL)
                p.wait()
                k += 1
            last = subprocess.run(setup_cmd(bin_, lake, sim.address, ["SPY"], 99), env=env, capture_output=True)
            out["final_exit"] = out["final_exit"] or last.returncode
            for ds in KEYS:
                n, got = keys(lake, s3, ds)
                out["duplicate_keys"] += n - len(got)
                out["rows_lost"] += len(want[ds] - got)
            out["unreadable"] += unreadable(lake, s3)
            out["validate_ok"] = out["validate_ok"] and validate(bin_, lake, env)
        return {
            "storage": "S3 (moto)" if s3 else "local disk",
            "kills": kills,
            "kills_mid_run": landed,
            "setup_secs": round(whole, 1),
            "reference_rows": total,
            **out,
        }
    finally:
        sim.stop()


def chain_snapshots(lake: str, s3: str | None) -> dict[str, int]:
    files = parquet_files(lake, s3, "chains")
    if not files:
        return {}
    df = pl.scan_parquet(files, hive_partitioning=True, storage_options=storage_options(s3))
    counts = df.group_by("symbol").agg(pl.col("snapshot_at").n_unique()).collect()
    return dict(counts.iter_rows())


def concurrency(bin_: str, workdir: Path, s3: str | None, procs: int, rounds: int) -> dict:
    groups = [["SPY", "QQQ"], ["QQQ", "AAPL"], ["SPY", "AAPL"], ["SPY"], ["AAPL", "MSFT"], ["MSFT", "SPY"]]
    failed, violations, repeated, extra_snapshots, secs = 0, 0, 0, 0, 0.0
    for r in range(rounds):
        sim = Sim(bin_, workdir)
        env = lake_env(s3, workdir / f"state-{r}")
        lake = new_lake(workdir, s3)
        try:
            t0 = time.monotonic()
            ps = [
                subprocess.Popen(
                    setup_cmd(bin_, lake, sim.address, groups[i % len(groups)], 10 + i), env=env,
                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                )
                for i in range(procs)
            ]
            for p in ps:
                _, err = p.communicate()
                if p.returncode != 0:
                    failed += 1
                    print(f"round {r}: a setup exited {p.returncode}: {err.decode()[-400:]}", file=sys.stderr)
            secs += time.monotonic() - t0
            reqs = sim.requests()
        finally:
            sim.stop()
        hist = [q for q in reqs if q["kind"] == "historical_data"]
        # The simulator names the rule a refused request broke (IB's code 162 also means "no data").
        violations += sum(1 for q in hist if q.get("violation"))
        asked = collections.Counter(
            (q.get("con_id"), q.get("symbol"), q.get("bar_size"), q.get("what_to_show"), q.get("end"), q.get("duration"))
            for q in hist
            if not q.get("violation")
        )
        repeated += sum(n - 1 for n in asked.values() if n > 1)
        snaps = chain_snapshots(lake, s3)
        extra_snapshots += sum(n - 1 for n in snaps.values() if n > 1)
    return {
        "storage": "S3 (moto)" if s3 else "local disk",
        "processes": procs,
        "rounds": rounds,
        "failed_processes": failed,
        "pacing_violations": violations,
        "windows_asked_twice": repeated,
        "extra_chain_snapshots": extra_snapshots,
        "secs_per_round": round(secs / max(rounds, 1), 1),
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--bin", required=True, help="the twslake binary (release)")
    ap.add_argument("--s3", help="an S3 endpoint on loopback (moto) for the S3 rows")
    ap.add_argument("--kills", type=int, default=90, help="kills per storage")
    ap.add_argument("--procs", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--seed", type=int, default=12)
    ap.add_argument("--json", help="also write the figures here")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    stores = [None] + ([a.s3] if a.s3 else [])
    with tempfile.TemporaryDirectory(prefix="twslake-reliability-") as tmp:
        work = Path(tmp)
        crashes = [crash_loop(a.bin, work, s, a.kills, rng) for s in stores]
        shared = [concurrency(a.bin, work, s, a.procs, a.rounds) for s in stores]
    print("| storage | kills of `setup` (mid-run) | unreadable files | duplicate keys | rows lost (of) | `validate` after | final run exit |")
    print("|---|---|---|---|---|---|---|")
    for c in crashes:
        print(
            f"| {c['storage']} | {c['kills']} ({c['kills_mid_run']}) | {c['unreadable']} | {c['duplicate_keys']} | {c['rows_lost']} (of {c['reference_rows']:,}) | "
            f"{'clean' if c['validate_ok'] else 'PROBLEMS'} | {c['final_exit']} |"
        )
    print()
    print("| storage | processes × rounds | failed processes | pacing violations | windows asked twice | extra chain snapshots | s per round |")
    print("|---|---|---|---|---|---|---|")
    for c in shared:
        print(
            f"| {c['storage']} | {c['processes']} × {c['rounds']} | {c['failed_processes']} | {c['pacing_violations']} | "
            f"{c['windows_asked_twice']} | {c['extra_chain_snapshots']} | {c['secs_per_round']} |"
        )
    if a.json:
        Path(a.json).write_text(json.dumps({"crash_loop": crashes, "concurrency": shared}, indent=2))
    bad = any(
        c["unreadable"] or c["duplicate_keys"] or c["rows_lost"] or not c["validate_ok"] or c["final_exit"]
        or not c["reference_rows"]
        for c in crashes
    ) or any(
        c["failed_processes"] or c["pacing_violations"] or c["windows_asked_twice"] or c["extra_chain_snapshots"]
        for c in shared
    )
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
