"""twslake's implied vols against independent references: py_vollib_vectorized (Jäckel's Let's Be
Rational, as packaged for Python) and QuantLib's blackFormulaImpliedStdDev, on 20,000 options
(5-150 % vol, 1 day to 2 years, calls and puts, strikes 50-200 % of the forward).

Agreement required: 1e-10 in vol wherever vega (undiscounted, per unit of vol) is at least 1e-2,
the bound below which a price carries too little information about the vol for any solver.
twslake's side runs through the binary (the hidden `twslake iv IN.csv OUT.csv`): set TWSLAKE_BIN,
or build it first (`cargo build`; scripts/test.sh builds it with the Rust tests).
"""
import math
import subprocess

import numpy as np
import pandas as pd
import pytest
import QuantLib as ql
import py_vollib_vectorized  # noqa: F401  (registers the vectorised functions)
from py_vollib_vectorized import vectorized_black, vectorized_implied_volatility_black

from conftest import twslake_bin

N = 20_000
TOL = 1e-10


@pytest.fixture(scope="module")
def options() -> pd.DataFrame:
    rng = np.random.default_rng(20261125)
    forward = 100.0
    t = np.exp(rng.uniform(math.log(1 / 365), math.log(2.0), N))
    vol = rng.uniform(0.05, 1.5, N)
    strike = forward * np.exp(rng.uniform(math.log(0.5), math.log(2.0), N))
    right = np.where(rng.uniform(size=N) < 0.5, "C", "P")
    flag = np.where(right == "C", "c", "p")
    price = vectorized_black(flag, forward, strike, t, 0.0, vol, return_as="numpy")
    df = pd.DataFrame({"price": price, "forward": forward, "strike": strike, "t": t, "right": right, "true_vol": vol})
    sd = vol * np.sqrt(t)
    d1 = (np.log(forward / strike) + 0.5 * sd * sd) / sd
    df["vega"] = forward * np.exp(-0.5 * d1 * d1) / math.sqrt(2 * math.pi) * np.sqrt(t)
    return df


@pytest.fixture(scope="module")
def twslake_ivs(options, tmp_path_factory) -> np.ndarray:
    d = tmp_path_factory.mktemp("iv")
    src, out = d / "in.csv", d / "out.csv"
    # repr round-trips doubles exactly, so both sides invert the same prices.
    options[["price", "forward", "strike", "t", "right"]].to_csv(src, index=False, float_format="%.17g")
    subprocess.run([str(twslake_bin()), "iv", str(src), str(out)], check=True, capture_output=True)
    got = pd.read_csv(out, converters={"iv": float, "strike": float})
    assert len(got) == len(options)
    assert np.array_equal(got["strike"].to_numpy(), options["strike"].to_numpy())
    return got["iv"].to_numpy()


def compared(options, ours, theirs, name):
    mask = (options["vega"].to_numpy() >= 1e-2) & np.isfinite(theirs)
    assert mask.sum() > N // 2, f"too few comparable options ({mask.sum()})"
    err = np.abs(ours[mask] - theirs[mask])
    worst = int(np.argmax(err))
    assert err.max() < TOL, f"{name}: max |Δvol| {err.max():.3e} at {options[mask].iloc[worst].to_dict()}"
    return err.max()


def test_against_py_vollib_vectorized(options, twslake_ivs):
    flag = np.where(options["right"] == "C", "c", "p")
    ref = vectorized_implied_volatility_black(
        options["price"].to_numpy(), options["forward"].to_numpy(), options["strike"].to_numpy(), 0.0,
        options["t"].to_numpy(), flag, return_as="numpy",
    )
    compared(options, twslake_ivs, np.asarray(ref, dtype=float), "py_vollib_vectorized")


def test_against_quantlib(options, twslake_ivs):
    ref = np.full(N, np.nan)
    for i, o in enumerate(options.itertuples()):
        kind = ql.Option.Call if o.right == "C" else ql.Option.Put
        try:
            sd = ql.blackFormulaImpliedStdDev(kind, o.strike, o.forward, o.price, 1.0, 0.0, o.true_vol * math.sqrt(o.t), 1e-14, 200)
        except RuntimeError:
            continue
        ref[i] = sd / math.sqrt(o.t)
    compared(options, twslake_ivs, ref, "QuantLib")


def test_against_the_generating_vols(options, twslake_ivs):
    compared(options, twslake_ivs, options["true_vol"].to_numpy(), "generating vols")
