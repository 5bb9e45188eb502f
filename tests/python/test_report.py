"""`twslake report` in a real browser: headless Chromium (Debian's package) opens the page made
from a demo lake, says nothing on its console, parses heatmap cells that match
`twslake status --json` series by series and day by day, and draws a screenshot with the
page's colours in it.

Decided: Chromium is driven from its command line (`--dump-dom`, `--screenshot`) with its log on
stderr, not through the DevTools protocol: the venv has no websocket client, and the page has no
script, so the DOM as parsed is all there is to read. A console message of any kind fails the
test. The PNG is decoded with the standard library (zlib) — the venv has no Pillow.

The demo lake is $TWSLAKE_DEMO_LAKE when set (copied: the test adds to it), else made here by
`twslake demo`. The test adds one series to SPY's manifest whose days are answered empty,
missing, failed and not yet final, and one capture gap, so every state is on the page; and it
removes QQQ's stored surfaces, so the page fits QQQ's from its option bars.
"""
import datetime as dt
import json
import os
import pathlib
import shutil
import struct
import subprocess
import uuid
import zlib
from html.parser import HTMLParser

import polars as pl
import pytest

from conftest import twslake_bin

STATES = ["present", "empty", "not_final", "missing", "failed"]
# New York in winter; in summer these instants are an hour later, still before any close
# (11:00 EST is 12:00 EDT, before an early close at 13:00).
NY = dt.timezone(dt.timedelta(hours=-5))


def chromium() -> str:
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("no chromium: install Debian's package (`apt-get install chromium`; scripts/test.sh does as root)")


def run(args, **kw):
    p = subprocess.run(args, capture_output=True, text=True, timeout=600, **kw)
    assert p.returncode == 0, f"{args}: {p.stderr[-2000:]}"
    return p


def browser(tmp, *args):
    """Chromium headless with a fresh profile, no network of its own; (stdout, stderr)."""
    profile = tmp / f"profile-{uuid.uuid4().hex[:8]}"
    cmd = [
        chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run", "--hide-scrollbars",
        f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0", *args,
    ]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert p.returncode == 0, p.stderr[-2000:]
    return p.stdout, p.stderr


def manifest_entry(symbol, dataset, window, outcome, requested_at, completed_at, final_through, **extra):
    e = {
        "id": uuid.uuid4().hex, "dataset": dataset, "symbol": symbol, "sec_type": "STK", "use_rth": True,
        "window": {"start": window[0].isoformat(), "end": window[1].isoformat()},
        "requested_at": requested_at.isoformat(), "completed_at": completed_at.isoformat(),
        "outcome": outcome, "partitions": [],
    }
    if final_through:
        e["final_through"] = final_through.isoformat()
    e.update(extra)
    return e


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> pathlib.Path:
    tmp = tmp_path_factory.mktemp("report")
    root = tmp / "lake"
    demo = os.environ.get("TWSLAKE_DEMO_LAKE")
    if demo and pathlib.Path(demo).is_dir():
        shutil.copytree(demo, root)
    else:
        run([str(twslake_bin()), "demo", "--lake", str(root)], cwd=tmp)
    # Five trading days well before the demo's last session, from its daily bars.
    days = sorted(pl.read_parquet(str(root / "equity_bars" / "symbol=SPY" / "*" / "*.parquet"), hive_partitioning=False)
                  .filter(pl.col("bar_size") == "1 day")["date"].unique().to_list())
    d = days[-40:-35]
    at = lambda day, h: dt.datetime(day.year, day.month, day.day, h, tzinfo=NY).astimezone(dt.timezone.utc)
    series = {"bar_size": "1 hour", "what_to_show": "TRADES"}
    entries = [
        manifest_entry("SPY", "equity_bars", (d[0], d[0]), {"status": "empty"}, at(d[1], 9), at(d[1], 9), d[0], **series),
        manifest_entry("SPY", "equity_bars", (d[2], d[2]), {"status": "error", "code": 162, "message": "HMDS query returned no data"},
                       at(d[3], 9), at(d[3], 9), d[2], **series),
        manifest_entry("SPY", "equity_bars", (d[3], d[3]), {"status": "ok", "rows": 3}, at(d[3], 11), at(d[3], 11), None, **series),
        manifest_entry("SPY", "quotes", (d[4], d[4]), {"status": "error", "code": 1100, "message": "live capture gap"},
                       at(d[4], 11), at(d[4], 12), d[4]),
    ]
    # QQQ's stored surfaces are gone: the page fits one from its option bars and says so.
    shutil.rmtree(root / "surfaces" / "symbol=QQQ")
    folder = root / "_manifest" / "symbol=SPY"
    name = f"log-{at(d[4], 13).strftime('%Y%m%dT%H%M%S000000Z')}-{entries[0]['id']}-{uuid.uuid4().hex[:16]}.json"
    (folder / name).write_text(json.dumps({"format": "twslake.manifest/1", "entries": entries}, indent=1))
    return root


@pytest.fixture(scope="module")
def page(lake, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("page")
    out = tmp / "report.html"
    run([str(twslake_bin()), "report", "--lake", str(lake), "--out", str(out)])
    status = json.loads(run([str(twslake_bin()), "status", "--json", "--lake", str(lake)]).stdout)
    return tmp, out, status


class Dom(HTMLParser):
    """The elements the test reads from the DOM Chromium dumped."""

    def __init__(self):
        super().__init__()
        self.cells, self.sections, self.rows, self.svgs, self.polylines = [], {}, [], [], []
        self.section = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "section":
            self.section = a.get("id")
            self.sections[self.section] = a
        elif tag == "rect" and "data-state" in a:
            self.cells.append(a)
        elif tag == "tr" and "data-symbol" in a:
            self.rows.append((self.section, a["data-symbol"]))
        elif tag == "svg":
            self.svgs.append((self.section, a.get("id") or a.get("class")))
        elif tag == "polyline":
            self.polylines.append(self.section)


def test_report_in_headless_chromium(page):
    tmp, out, status = page
    html = out.read_text()
    for forbidden in ("<script", "http://", "https://", "url(", "@import"):
        assert forbidden not in html, f"self-contained: found {forbidden!r}"
    dom_text, log = browser(tmp, "--dump-dom", out.as_uri())
    console = [line for line in log.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    assert not console, f"console said: {console}"
    dom = Dom()
    dom.feed(dom_text)
    assert {"coverage", "requests", "chains", "gaps", "surfaces"} <= set(dom.sections), dom.sections.keys()
    check_cells(dom, status)
    symbols = sorted({r["symbol"] for r in status["datasets"]})
    assert sorted(s for sec, s in dom.rows if sec == "chains") == symbols, "a chain row per symbol"
    gaps = {r["symbol"]: r["capture_gaps"] for r in status["datasets"] if r["dataset"] == "quotes"}
    assert sorted(s for sec, s in dom.rows if sec == "gaps") == sorted(s for s, n in gaps.items() for _ in range(n))
    assert gaps.get("SPY") == 1, gaps
    assert ("requests", "requests-chart") in dom.svgs and ("requests", "pacing-chart") in dom.svgs
    with_surface = {r["symbol"] for r in status["datasets"] if r["dataset"] == "surfaces" and r["rows"] > 0}
    assert with_surface == set(symbols) - {"QQQ"}, "the demo stores surfaces (QQQ's were removed)"
    assert dom.polylines.count("surfaces") >= 2 * len(symbols), "a term structure and smiles per symbol"
    assert dom_text.count("(fitted now, not stored)") == 2 and dom_text.count("(stored)") == 2 * len(with_surface)


def check_cells(dom, status):
    last_final = dt.date.fromisoformat(dom.sections["coverage"]["data-last-final"])
    order = {s: i for i, s in enumerate(STATES)}
    per_series, summary = {}, {}
    for c in dom.cells:
        assert c["data-state"] in STATES, c
        covered = c["data-covered"] == "1"
        assert not covered or c["data-state"] in ("present", "empty"), c
        assert covered or c["data-state"] != "empty", c
        key = (c["data-symbol"], c["data-dataset"], c["data-series"])
        target = summary if c.get("data-summary") == "1" else per_series
        target.setdefault(key, []).append((dt.date.fromisoformat(c["data-date"]), c["data-state"], covered, int(c["data-rows"])))
    assert per_series, "the heatmap has cells"
    # Every (symbol, dataset) status knows a series of, and only those: rows and missing windows agree.
    got = {}
    for (sym, ds, _), cells in per_series.items():
        cells.sort()
        dates = [c[0] for c in cells]
        assert dates == sorted(set(dates)), "one cell per day"
        rows, windows = got.get((sym, ds), (0, 0))
        rows += sum(c[3] for c in cells)
        first = next((i for i, c in enumerate(cells) if c[2]), None)
        # Present without a final answer: rows held from before the first covered day only.
        for i, c in enumerate(cells):
            assert c[2] or c[1] != "present" or (c[3] > 0 and first is not None and i < first), (sym, ds, c)
        if first is not None:
            uncovered = [not c[2] for c in cells[first:] if c[0] <= last_final]
            windows += sum(1 for i, u in enumerate(uncovered) if u and (i == 0 or not uncovered[i - 1]))
        got[(sym, ds)] = (rows, windows)
    want = {(r["symbol"], r["dataset"]): (r["rows"], r["missing_windows"]) for r in status["datasets"]
            if r["dataset"] in ("equity_bars", "option_bars", "surfaces") and r["requests"] > 0}
    assert got == want
    # The series the test added: each day in the state its entries give.
    added = [cells for (sym, ds, series), cells in per_series.items() if sym == "SPY" and series.startswith("1 hour")]
    assert len(added) == 1, "the added series has one row"
    states = [s for _, s, _, _ in added[0]]
    assert states[:5] == ["empty", "missing", "failed", "not_final", "missing"], states[:8]
    assert set(states[5:]) == {"missing"}
    assert {s for cells in per_series.values() for _, s, _, _ in cells} == set(STATES), "every state shown"
    # A summed-up option row: per day the worst state of its contracts and the sum of their rows.
    assert summary, "option rows are summed up"
    for (sym, ds, series), cells in summary.items():
        label = series.rsplit(" (", 1)[0]
        contracts = [v for (s, d, name), v in per_series.items() if s == sym and d == ds and name.startswith(label + " ")]
        for day, state, _, rows in cells:
            of_day = [c for cs in contracts for c in cs if c[0] == day]
            assert rows == sum(c[3] for c in of_day)
            assert state == max((c[1] for c in of_day), key=order.get)


def png_pixels(data: bytes):
    """Width, height and RGB(A) rows of an 8-bit, non-interlaced PNG."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "a PNG signature"
    pos, idat, head = 8, b"", None
    while pos < len(data):
        (n,), kind = struct.unpack(">I", data[pos:pos + 4]), data[pos + 4:pos + 8]
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            head = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    w, h, depth, colour, _, _, interlace = head
    assert depth == 8 and colour in (2, 6) and interlace == 0, head
    bpp = 4 if colour == 6 else 3
    raw, stride, rows, prev = zlib.decompress(idat), w * bpp, [], bytearray(w * bpp)
    for y in range(h):
        f, line = raw[y * (stride + 1)], bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if f == 1:
                line[i] = (line[i] + a) & 255
            elif f == 2:
                line[i] = (line[i] + b) & 255
            elif f == 3:
                line[i] = (line[i] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, h, bpp, rows


def test_screenshot_shows_the_page(page):
    tmp, out, _ = page
    shot = tmp / "report.png"
    browser(tmp, f"--screenshot={shot}", "--window-size=1280,1400", out.as_uri())
    data = shot.read_bytes()
    assert len(data) > 20_000, f"a picture of a page, not a blank: {len(data)} bytes"
    w, h, bpp, rows = png_pixels(data)
    assert (w, h) == (1280, 1400)
    colours = {}
    for row in rows[::2]:
        for x in range(0, w * bpp, bpp * 2):
            px = row[x:x + 3]
            colours[px] = colours.get(px, 0) + 1
    total = sum(colours.values())
    white = colours.get(b"\xff\xff\xff", 0)
    assert white < 0.97 * total, "not blank"
    # The heatmap's present green, the request bars' blue and the waits' orange (CSS of the page).
    for name, rgb in {"present": (0x2B, 0x8A, 0x3E), "requests": (0x1C, 0x7E, 0xD6), "waits": (0xF0, 0x8C, 0x00)}.items():
        near = sum(n for px, n in colours.items() if all(abs(px[i] - rgb[i]) <= 4 for i in range(3)))
        assert near >= 20, f"{name} colour drawn ({near} pixels)"
