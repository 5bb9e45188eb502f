"""QuantLib's American engines on the chain `cargo bench --bench american` inverts (10,000 options
of one underlying: 20 expiries from 1 week to 16 months, 250 strikes from -2.5 to +2.5 standard
deviations, calls and puts, a skewed smile, cash dividends of 0.55 every 91 days from day 30,
rate 4 %), one core.

For each engine: implied vols per second (QuantLib's Brent solver repricing through the engine,
accuracy 1e-8 in vol, from a guess 20 % off; on a
fixed sample of options with a time value above 0.001, priced by the same engine at the smile's
vol, so the timing is the inversion alone) and the engine's accuracy in vol against a fine grid
(|price - reference| / vega at the smile's vol; the reference is the FD engine on an 800 x 800
grid with the escrowed dividends, or QD+ at high precision without dividends).
- with the cash dividends: FdBlackScholesVanillaEngine, escrowed model, several grids (the only
  QuantLib American engine that takes a cash dividend schedule);
- without them (the same chain, dividends dropped): Leisen-Reimer binomial at several step counts
  and QdFpAmericanEngine, QuantLib's fastest American engine.

Usage: python benches/compare_american.py [SAMPLE]   (venv: tests/python/requirements.txt)
"""
import math
import statistics
import sys
import time

import numpy as np
import QuantLib as ql

TODAY = ql.Date(2, 12, 2026)
DC = ql.Actual365Fixed()
SPOT, RATE = 100.0, 0.04
EXPIRIES, STRIKES = 20, 250


def chain():
    out = []
    for e in range(EXPIRIES):
        days = round(7.0 * 1.25 ** e)
        t = days / 365.0
        for s in range(STRIKES):
            z = -2.5 + 5.0 * s / (STRIKES - 1)
            vol = 0.22 - 0.03 * z + 0.01 * z * z
            strike = round(SPOT * math.exp(z * 0.25 * math.sqrt(t)) * 100.0) / 100.0
            for call in (True, False):
                out.append((days, strike, call, vol))
    return out


def dividend_days(days):
    return [30 + 91 * m for m in range(6) if 30 + 91 * m <= days]


def setup(days, strike, call, vol, with_dividends):
    ql.Settings.instance().evaluationDate = TODAY
    vol_quote = ql.SimpleQuote(vol)
    process = ql.BlackScholesMertonProcess(
        ql.QuoteHandle(ql.SimpleQuote(SPOT)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, 0.0, DC)),
        ql.YieldTermStructureHandle(ql.FlatForward(TODAY, RATE, DC)),
        ql.BlackVolTermStructureHandle(ql.BlackConstantVol(TODAY, ql.NullCalendar(), ql.QuoteHandle(vol_quote), DC)))
    right = ql.Option.Call if call else ql.Option.Put
    option = ql.VanillaOption(ql.PlainVanillaPayoff(right, strike), ql.AmericanExercise(TODAY, TODAY + days))
    ex = dividend_days(days) if with_dividends else []
    schedule = ql.DividendVector([TODAY + d for d in ex], [0.55] * len(ex))
    return option, process, schedule, vol_quote


def fd(grid):
    def make(process, schedule):
        return ql.FdBlackScholesVanillaEngine(process, schedule, grid, grid, 0, ql.FdmSchemeDesc.Douglas(), False,
                                              -ql.nullDouble(), ql.FdBlackScholesVanillaEngine.Escrowed)
    return make


def lr(steps):
    return lambda process, schedule: ql.BinomialLRVanillaEngine(process, steps)


def qdfp(scheme):
    return lambda process, schedule: ql.QdFpAmericanEngine(process, scheme)


def references(reference, sample, with_dividends):
    """The reference price and vega (per unit of vol) of each sampled option, once."""
    out = []
    for days, strike, call, vol in sample:
        option, process, schedule, quote = setup(days, strike, call, vol, with_dividends)
        option.setPricingEngine(reference(process, schedule))
        ref = option.NPV()
        quote.setValue(vol + 1e-3)
        up = option.NPV()
        quote.setValue(vol - 1e-3)
        out.append((ref, (up - option.NPV()) / 2e-3))
    return out


def run(name, make, refs, sample, with_dividends):
    errors, elapsed, solved = [], 0.0, 0
    for (days, strike, call, vol), (ref, vega) in zip(sample, refs):
        option, process, schedule, quote = setup(days, strike, call, vol, with_dividends)
        option.setPricingEngine(make(process, schedule))
        price = option.NPV()
        if vega >= 1.0:
            errors.append(abs(price - ref) / vega)
        # QuantLib's own `impliedVolatility` prices American options with an FD engine of its
        # choosing; to time each engine, Brent's solver reprices through the engine under test.
        def objective(v):
            quote.setValue(v)
            return option.NPV() - price

        start = time.perf_counter()
        try:
            ql.Brent().solve(objective, 1e-8, vol * 1.2, 0.01, 4.0)
            solved += 1
        except RuntimeError:
            pass
        elapsed += time.perf_counter() - start
    print(f"{name:<34} {len(sample) / elapsed:>10.0f} IV/s   vol error vs reference: median "
          f"{statistics.median(errors):.1e}, max {max(errors):.1e} ({len(errors)} with vega >= 1; {solved} solved)")


def main():
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 100
    rng = np.random.default_rng(13)
    options = chain()
    # A fixed random sample of the options with a time value above 0.001 (those whose vol the
    # Rust bench recovers).
    sample = []
    for i in rng.permutation(len(options)):
        days, strike, call, vol = options[i]
        intrinsic = max(SPOT - strike, 0.0) if call else max(strike - SPOT, 0.0)
        option, process, schedule, _ = setup(days, strike, call, vol, True)
        option.setPricingEngine(fd(100)(process, schedule))
        if option.NPV() - intrinsic > 1e-3:
            sample.append(options[i])
        if len(sample) == n:
            break
    print(f"QuantLib {ql.__version__}, {n} options sampled from the {len(options)}-option chain")
    print("with the cash dividends (escrowed):")
    refs = references(fd(800), sample, True)
    for grid in (50, 100, 200, 400):
        run(f"  FD {grid} x {grid}", fd(grid), refs, sample, True)
    print("without dividends:")
    refs = references(qdfp(ql.QdFpAmericanEngine.highPrecisionScheme()), sample, False)
    for steps in (101, 201, 801):
        run(f"  binomial LR {steps} steps", lr(steps), refs, sample, False)
    run("  QdFpAmericanEngine (fast scheme)", qdfp(ql.QdFpAmericanEngine.fastScheme()), refs, sample, False)
    run("  QdFpAmericanEngine (accurate)", qdfp(ql.QdFpAmericanEngine.accurateScheme()), refs, sample, False)

if __name__ == "__main__":
    main()
