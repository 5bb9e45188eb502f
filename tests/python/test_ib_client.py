"""IB's own Python client (`ibapi` from PyPI) against `twslake sim`: bar dates for formatDate=1 and 2,
the greeks of the option-computation ticks against Black-Scholes-Merton on the inputs of
`twslake sim truth`, and the refusal a text-protocol client gets, read by IB's own decoder.

The binary comes from TWSLAKE_BIN, else $CARGO_TARGET_DIR/debug/twslake (what `cargo test` builds).
"""
import datetime as dt
import itertools
import json
import math
import queue
import socket
import struct
import subprocess
import threading
import time
from zoneinfo import ZoneInfo

import pytest
from ibapi import comm, decoder
from ibapi.client import EClient
from ibapi.contract import Contract
from ibapi.wrapper import EWrapper

from conftest import twslake_bin

NOW = "2026-11-24T17:00:00Z"  # a Tuesday, 12:00 in New York: mid-session
SEED = "7"
# SPY's options are American (its class, like every equity and ETF class); XSP's class is an index
# class, European by its exchange's rules, so its greeks are Black-Scholes's.
SYMBOLS = ["SPY", "XSP"]
NEW_YORK = ZoneInfo("America/New_York")


@pytest.fixture(scope="module")
def sim_port():
    # Pacing shrunk a millionfold: the tests ask the same window in both date formats at once.
    proc = subprocess.Popen(
        [str(twslake_bin()), "sim", "--listen", "127.0.0.1:0", "--seed", SEED, "--now", NOW, "--pacing-scale", "1000000",
         "--symbols", ",".join(SYMBOLS)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        assert line.startswith("listening on "), line
        yield int(line.strip().rsplit(":", 1)[1])
    finally:
        proc.terminate()
        proc.wait(timeout=10)


class App(EWrapper, EClient):
    """Collects answers per request id; `finished` gets a request id when its answer is complete."""

    def __init__(self):
        EClient.__init__(self, self)
        self.ready = threading.Event()
        self.finished: "queue.Queue[int]" = queue.Queue()
        self.bars: dict[int, list[str]] = {}
        self.computations: dict[int, dict[int, tuple]] = {}
        self.errors: list[tuple[int, int, str]] = []

    def nextValidId(self, orderId):
        self.ready.set()

    def error(self, reqId, errorTime, errorCode, errorString, advancedOrderRejectJson=""):
        self.errors.append((reqId, errorCode, errorString))
        if reqId >= 0:
            self.finished.put(reqId)

    def historicalData(self, reqId, bar):
        self.bars.setdefault(reqId, []).append(bar.date)

    def historicalDataEnd(self, reqId, start, end):
        self.finished.put(reqId)

    def tickOptionComputation(self, reqId, tickType, tickAttrib, impliedVol, delta, optPrice, pvDividend, gamma, vega, theta, undPrice):
        self.computations.setdefault(reqId, {})[tickType] = (impliedVol, delta, optPrice, gamma, vega, theta, undPrice)

    def tickSnapshotEnd(self, reqId):
        self.finished.put(reqId)

    def wait(self, ids):
        pending = set(ids)
        deadline = time.monotonic() + 20
        while pending:
            pending.discard(self.finished.get(timeout=max(0.1, deadline - time.monotonic())))
        refused = [e for e in self.errors if e[0] in set(ids)]
        assert not refused, refused


CLIENT_IDS = itertools.count(1)


@pytest.fixture
def app(sim_port):
    a = App()
    # A fresh client id per test: the gateway may not have noticed the previous one leave yet.
    a.connect("127.0.0.1", sim_port, next(CLIENT_IDS))
    thread = threading.Thread(target=a.run, daemon=True)
    thread.start()
    assert a.ready.wait(10), "connected and handed a next valid id"
    assert a.serverVersion() >= 215
    yield a
    a.disconnect()
    thread.join(timeout=10)


def spy() -> Contract:
    c = Contract()
    c.symbol, c.secType, c.exchange, c.currency = "SPY", "STK", "SMART", "USD"
    return c


def test_format_date_1_is_text_in_the_exchange_zone_and_2_is_epoch_seconds(app):
    app.reqHistoricalData(1, spy(), "", "1 D", "5 mins", "TRADES", 1, 1, False, [])
    app.reqHistoricalData(2, spy(), "", "1 D", "5 mins", "TRADES", 1, 2, False, [])
    app.reqHistoricalData(3, spy(), "", "1 M", "1 day", "TRADES", 1, 1, False, [])
    app.reqHistoricalData(4, spy(), "", "1 M", "1 day", "TRADES", 1, 2, False, [])
    app.wait([1, 2, 3, 4])
    text, epoch = app.bars[1], app.bars[2]
    assert len(text) == 30, "09:30 to 11:55 New York, the completed 5-minute bars at noon"
    assert text[0] == "20261124 09:30:00 US/Eastern"
    for t, e in zip(text, epoch):
        local, zone = t.rsplit(" ", 1)
        assert zone == "US/Eastern", t
        when = dt.datetime.strptime(local, "%Y%m%d %H:%M:%S").replace(tzinfo=NEW_YORK)
        assert int(when.timestamp()) == int(e), (t, e)
    assert app.bars[3] == app.bars[4], "daily bars are dated yyyyMMdd whatever the format"
    assert app.bars[3][-1] == "20261124"
    for d in app.bars[3]:
        dt.datetime.strptime(d, "%Y%m%d")


def norm_cdf(x: float) -> float:
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


def ib_greeks(call: bool, s: float, pv: float, k: float, t: float, r: float, v: float):
    """Black-Scholes greeks as IB states them (spot delta, gamma, vega per vol point, theta per
    calendar day with the spot held) for a European option on a spot paying cash dividends whose
    present value is `pv` (the escrowed model: forward F = (S - pv) e^{rT})."""
    f = (s - pv) * math.exp(r * t)
    sd = v * math.sqrt(t)
    d1 = (math.log(f / k) + sd * sd / 2) / sd
    d2 = d1 - sd
    pdf = math.exp(-d1 * d1 / 2) / math.sqrt(2 * math.pi)
    df = math.exp(-r * t)
    if call:
        price, delta = df * (f * norm_cdf(d1) - k * norm_cdf(d2)), norm_cdf(d1)
    else:
        price, delta = df * (k * norm_cdf(-d2) - f * norm_cdf(-d1)), -norm_cdf(-d1)
    # As a calendar day passes with S held, T shortens and every dividend comes nearer
    # (d pv/dt = r pv), so dF/dt = -r S e^{rT}; the price moves by df N(d1) dF for a call, so
    # theta = (d price/dt at fixed F) - r S delta.
    theta = r * price - df * f * pdf * v / (2 * math.sqrt(t)) - r * s * delta
    gamma = pdf / ((s - pv) * sd)
    vega = 0.01 * (s - pv) * pdf * math.sqrt(t)
    return price, delta, gamma, vega, theta / 365.0


def truth_of(symbol: str) -> dict:
    out = subprocess.run(
        [str(twslake_bin()), "sim", "truth", symbol, "--at", NOW, "--seed", SEED, "--json", "--symbols", ",".join(SYMBOLS)],
        check=True, capture_output=True, text=True,
    )
    return json.loads(out.stdout)


def ask_model_ticks(app, symbol: str, truth: dict, first_id: int):
    cases = []
    for sl in truth["expiries"][:3] + truth["expiries"][-1:]:
        strikes = sl["strikes"]
        for k in strikes[:: max(1, len(strikes) // 4)]:
            for right in ["C", "P"]:
                cases.append((len(cases) + first_id, sl, k, right))
    for req_id, sl, k, right in cases:
        o = Contract()
        o.symbol, o.secType, o.exchange, o.currency = symbol, "OPT", "SMART", "USD"
        o.lastTradeDateOrContractMonth, o.strike, o.right = sl["expiry"], k["strike"], right
        app.reqMktData(req_id, o, "", True, False, [])
    app.wait([c[0] for c in cases])
    assert len(cases) >= 24
    return cases


def test_european_option_greeks_match_black_scholes_on_the_truth(app):
    truth = truth_of("XSP")
    assert truth["rate"] > 0 and truth["dividends"], "both the rate and the dividends shape the greeks"
    cases = ask_model_ticks(app, "XSP", truth, 10)
    assert any(sl["pv_dividend"] > 0 for _, sl, _, _ in cases), "some expiry lies past an ex-date"
    for req_id, sl, k, right in cases:
        iv, delta, price, gamma, vega, theta, und = app.computations[req_id][13]  # the model tick
        assert abs(iv - k["iv"]) < 1e-9 and und == truth["spot"]
        want = ib_greeks(right == "C", truth["spot"], sl["pv_dividend"], k["strike"], sl["t"], truth["rate"], k["iv"])
        assert abs(want[0] - k["call" if right == "C" else "put"]) < 1e-6, "the truth's price is Black's"
        for name, got, w in zip(["price", "delta", "gamma", "vega", "theta"], [price, delta, gamma, vega, theta], want):
            assert abs(got - w) < 1e-6, (name, sl["expiry"], k["strike"], right, got, w)


def test_american_option_ticks_carry_the_truths_vol_and_american_price(app):
    truth = truth_of("SPY")
    cases = ask_model_ticks(app, "SPY", truth, 500)
    early = 0
    for req_id, sl, k, right in cases:
        iv, delta, price, gamma, vega, theta, und = app.computations[req_id][13]
        assert abs(iv - k["iv"]) < 1e-9 and und == truth["spot"]
        assert abs(price - k["call" if right == "C" else "put"]) < 1e-9, "the truth's American price"
        european = ib_greeks(right == "C", truth["spot"], sl["pv_dividend"], k["strike"], sl["t"], truth["rate"], k["iv"])
        assert price >= european[0] - 1e-6, "an American option is worth at least its European twin"
        assert gamma > -1e-9 and vega > -1e-9 and (-1e-9 <= delta <= 1 + 1e-9 if right == "C" else -1 - 1e-9 <= delta <= 1e-9)
        if right == "P" and price > european[0] + 0.01:
            early += 1
            assert delta <= european[1] + 1e-3, "early exercise steepens a put's delta"
    assert early > 0, "some put carries an early-exercise premium"


class Errors(EWrapper):
    def __init__(self):
        super().__init__()
        self.seen = []

    def error(self, reqId, errorTime, errorCode, errorString, advancedOrderRejectJson=""):
        self.seen.append((reqId, errorCode, errorString))


def test_a_text_protocol_client_gets_a_refusal_ibs_decoder_reads_within_a_second(sim_port):
    began = time.monotonic()
    with socket.create_connection(("127.0.0.1", sim_port), timeout=1) as s:
        # ib_async's and ib_insync's greeting: versions 157..178, the text protocol.
        s.sendall(b"API\0" + comm.make_initial_msg("v157..178"))
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    elapsed = time.monotonic() - began
    assert elapsed < 1.0, elapsed
    size, msg, rest = comm.read_msg(data)
    assert size > 0 and rest == b"", "one message, then the socket closed"
    fields = comm.read_fields(msg)
    wrapper = Errors()
    # Decoded as EClient.run decodes a text message of a server below the protobuf versions: the
    # message id split off, the rest read with no server version known yet.
    decoder.Decoder(wrapper, 0).interpret(fields[1:], int(fields[0]))
    assert len(wrapper.seen) == 1, wrapper.seen
    req_id, code, text = wrapper.seen[0]
    assert (req_id, code) == (-1, 506)
    assert text.startswith("Unsupported version") and "v157..178" in text, text
    assert struct.unpack("!I", data[:4])[0] == len(data) - 4
