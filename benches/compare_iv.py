"""Implied-vol inversion beside twslake's: py_vollib_vectorized 0.1.1 and QuantLib, one core,
on the distribution `cargo bench --bench research` uses (100,000 options, forward 100, 5-150 %
vol, 1 day-2 years log-uniform, strikes 50-200 % of the forward log-uniform, calls and puts).

Usage: python benches/compare_iv.py   (venv: tests/python/requirements.txt)
Prints options/s (median of 5 runs) and the max |vol error| where vega >= 1e-2.
"""
import math
import os
import statistics
import time

os.environ.setdefault("NUMBA_NUM_THREADS", "1")  # one core, as the Rust figure

import numpy as np
import QuantLib as ql
from py_vollib_vectorized import vectorized_black, vectorized_implied_volatility_black

N = 100_000


def options():
    rng = np.random.default_rng(7)
    t = np.exp(rng.uniform(math.log(1 / 365), math.log(2.0), N))
    vol = rng.uniform(0.05, 1.5, N)
    k = 100.0 * np.exp(rng.uniform(math.log(0.5), math.log(2.0), N))
    flag = np.where(rng.uniform(size=N) < 0.5, "c", "p")
    price = np.asarray(vectorized_black(flag, 100.0, k, t, 0.0, vol, return_as="numpy"), dtype=float)
    sd = vol * np.sqrt(t)
    d1 = (np.log(100.0 / k) + 0.5 * sd * sd) / sd
    vega = 100.0 * np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) * np.sqrt(t)
    return price, k, t, flag, vol, vega


def timed(f, runs=5):
    out, res = [], None
    for _ in range(runs):
        t0 = time.perf_counter()
        res = f()
        out.append(time.perf_counter() - t0)
    return statistics.median(out), res


def main():
    price, k, t, flag, vol, vega = options()
    ok = vega >= 1e-2

    def pvv():
        return np.asarray(vectorized_implied_volatility_black(price, 100.0, k, 0.0, t, flag, return_as="numpy"), dtype=float)

    pvv()  # numba compiles on first call
    secs, iv = timed(pvv)
    print(f"py_vollib_vectorized 0.1.1: {N / secs / 1e6:.2f} M options/s, max err {np.nanmax(np.abs(iv - vol)[ok]):.1e}")

    kinds = [ql.Option.Call if f == "c" else ql.Option.Put for f in flag]

    def quantlib():
        out = np.full(N, np.nan)
        for i in range(N):
            try:
                out[i] = ql.blackFormulaImpliedStdDev(kinds[i], k[i], 100.0, price[i], 1.0, 0.0, 0.2 * math.sqrt(t[i]), 1e-12, 100) / math.sqrt(t[i])
            except RuntimeError:
                pass
        return out

    secs, iv = timed(quantlib, runs=3)
    print(f"QuantLib {ql.__version__}: {N / secs / 1e6:.2f} M options/s, max err {np.nanmax(np.abs(iv - vol)[ok]):.1e}")


if __name__ == "__main__":
    main()
