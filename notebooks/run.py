"""Executes every notebook here top to bottom with nbclient; a failing cell fails the run.

    python notebooks/run.py            # run on $TWSLAKE_LAKE (default ../lake), outputs discarded
    python notebooks/run.py --save     # and write the outputs (plots included) into the notebooks

The README's test command runs it on a lake made by `twslake demo`. Each notebook runs with the
notebooks folder as its working directory and the Python of this interpreter's environment.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--save", action="store_true", help="write the executed notebooks back")
    ap.add_argument("--timeout", type=int, default=600, help="seconds per cell")
    ap.add_argument("notebooks", nargs="*", type=Path, help="default: every *.ipynb here")
    args = ap.parse_args()
    paths = args.notebooks or sorted(HERE.glob("*.ipynb"))
    if not paths:
        print("no notebooks found", file=sys.stderr)
        return 1
    failed = 0
    for path in paths:
        nb = nbformat.read(path, as_version=4)
        client = NotebookClient(
            nb, timeout=args.timeout, kernel_name="python3", resources={"metadata": {"path": str(HERE)}}
        )
        t0 = time.monotonic()
        try:
            client.execute()
        except CellExecutionError as e:
            failed += 1
            print(f"FAILED {path.name}:\n{e}", file=sys.stderr)
            continue
        print(f"ok     {path.name} ({time.monotonic() - t0:.1f} s, {len(nb.cells)} cells)")
        if args.save:
            nbformat.write(nb, path)
    print(f"{len(paths) - failed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
