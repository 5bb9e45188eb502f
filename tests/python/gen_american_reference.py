"""QuantLib reference prices of American options with discrete cash dividends, for
`tests/it/pricing.rs` (which reads `tests/data/american_reference.json`).

Each case has a true vol; QuantLib's finite-difference engine prices it in the escrowed dividend
model (`FdBlackScholesVanillaEngine(..., cashDividendModel=Escrowed)`, the model of
`twslake::pricing`), on a fine grid and on a grid twice as fine in each direction. The reference
price is the finer one, and `ref_error` (the difference of the two) bounds its own error. The
vega (per unit of vol) is a central difference of the fine-grid price. twslake's implied vol of
`price` must come back to `vol` within 1e-4 wherever `vega >= VEGA_MIN` (stated in the Rust test).

Usage: `python tests/python/gen_american_reference.py [OUT.json]` (default: the committed file).
Without cash dividends the reference is QuantLib's QD+ fixed-point engine (high-precision
scheme), and `ref_error` is its distance from the engine's "accurate" scheme.

`tests/python/test_american_reference.py` re-generates the values and checks they equal the
committed ones, so the reference cannot rot.
"""
import json
import math
import pathlib
import sys

import numpy as np
import QuantLib as ql

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_OUT = REPO / "tests" / "data" / "american_reference.json"
CASES = 120
SEED = 20261202
TODAY = ql.Date(2, 12, 2026)
DAY_COUNT = ql.Actual365Fixed()
# (time steps, space steps) of the two grids; the second is the reference price.
GRIDS = [(400, 400), (800, 800)]
VOL_BUMP = 1e-3


def cases():
    """The cases: calls and puts, ITM/ATM/OTM, 1 week to 2 years, r 0-5 %, q 0-3 %, 0-4
    quarterly dividends, vols 10-80 %."""
    rng = np.random.default_rng(SEED)
    out = []
    for i in range(CASES):
        days = int(round(math.exp(rng.uniform(math.log(7), math.log(730)))))
        t = days / 365.0
        vol = float(rng.uniform(0.10, 0.80))
        spot = 100.0
        # Moneyness in standard deviations: -1.5 (OTM) to 1.5 (ITM), both rights.
        is_call = bool(i % 2 == 0)
        z = float(rng.uniform(-1.5, 1.5))
        sign = 1.0 if is_call else -1.0
        strike = round(spot * math.exp(-sign * z * vol * math.sqrt(t)), 2)
        rate = round(float(rng.uniform(0.0, 0.05)), 4)
        q = 0.0 if rng.uniform() < 0.5 else round(float(rng.uniform(0.0, 0.03)), 4)
        n_div = int(rng.integers(0, 5))
        first = int(rng.integers(1, 91))
        amount = round(float(rng.uniform(0.2, 1.5)), 2)
        dividends = [{"days": first + 91 * k, "amount": amount} for k in range(n_div) if first + 91 * k < days]
        out.append({"spot": spot, "strike": strike, "days": days, "rate": rate, "yield": q, "vol": vol,
                    "is_call": is_call, "dividends": dividends})
    return out


def fd_price(case, vol, grid):
    """QuantLib's finite-difference American price, escrowed cash dividends."""
    ql.Settings.instance().evaluationDate = TODAY
    spot = ql.QuoteHandle(ql.SimpleQuote(case["spot"]))
    rates = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, case["rate"], DAY_COUNT))
    yields = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, case["yield"], DAY_COUNT))
    vols = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, DAY_COUNT))
    process = ql.BlackScholesMertonProcess(spot, yields, rates, vols)
    expiry = TODAY + case["days"]
    right = ql.Option.Call if case["is_call"] else ql.Option.Put
    option = ql.VanillaOption(ql.PlainVanillaPayoff(right, case["strike"]), ql.AmericanExercise(TODAY, expiry))
    schedule = ql.DividendVector([TODAY + d["days"] for d in case["dividends"]], [d["amount"] for d in case["dividends"]])
    engine = ql.FdBlackScholesVanillaEngine(process, schedule, grid[0], grid[1], 0, ql.FdmSchemeDesc.Douglas(),
                                            False, -ql.nullDouble(), ql.FdBlackScholesVanillaEngine.Escrowed)
    option.setPricingEngine(engine)
    return option.NPV()


def qdfp_price(case, vol, scheme=None):
    """QuantLib's QD+ fixed-point American engine (no cash dividends: continuous yield only)."""
    ql.Settings.instance().evaluationDate = TODAY
    spot = ql.QuoteHandle(ql.SimpleQuote(case["spot"]))
    rates = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, case["rate"], DAY_COUNT))
    yields = ql.YieldTermStructureHandle(ql.FlatForward(TODAY, case["yield"], DAY_COUNT))
    vols = ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), vol, DAY_COUNT))
    process = ql.BlackScholesMertonProcess(spot, yields, rates, vols)
    right = ql.Option.Call if case["is_call"] else ql.Option.Put
    option = ql.VanillaOption(ql.PlainVanillaPayoff(right, case["strike"]),
                              ql.AmericanExercise(TODAY, TODAY + case["days"]))
    option.setPricingEngine(ql.QdFpAmericanEngine(process, scheme or ql.QdFpAmericanEngine.highPrecisionScheme()))
    return option.NPV()


def price(case, vol, grid):
    """The reference price: QD+ (high precision) without cash dividends, else the FD grid."""
    return fd_price(case, vol, grid) if case["dividends"] else qdfp_price(case, vol)


def reference():
    rows = []
    for case in cases():
        if case["dividends"]:
            coarse = fd_price(case, case["vol"], GRIDS[0])
        else:
            coarse = qdfp_price(case, case["vol"], ql.QdFpAmericanEngine.accurateScheme())
        fine = price(case, case["vol"], GRIDS[1])
        up = price(case, case["vol"] + VOL_BUMP, GRIDS[1])
        down = price(case, case["vol"] - VOL_BUMP, GRIDS[1])
        rows.append({
            **case,
            "t": case["days"] / 365.0,
            "dividends": [{"t": d["days"] / 365.0, "amount": d["amount"], "days": d["days"]} for d in case["dividends"]],
            "price": fine,
            "ref_error": abs(fine - coarse),
            "vega": (up - down) / (2 * VOL_BUMP),
        })
    return {"quantlib": ql.__version__,
            "model": "escrowed cash dividends: FdBlackScholesVanillaEngine; none: QdFpAmericanEngine",
            "grids": GRIDS, "cases": rows}


if __name__ == "__main__":
    out = pathlib.Path(sys.argv[1]) if len(sys.argv) > 1 else DEFAULT_OUT
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(reference(), indent=1) + "\n")
    print(f"wrote {out}")
