//! The implied vol of an American price: de-Americanisation with secant steps.

use super::american::{American, DEFAULT_STEPS};
use implied_vol::{DefaultSpecialFn, ImpliedBlackVolatility};

/// Stop when one more step would move the vol by less than this.
pub(super) const VOL_TOLERANCE: f64 = 1e-11;
/// Tree evaluations allowed before giving up (four to six are typical).
const MAX_EVALUATIONS: usize = 30;
/// Evaluations after which a fixed point still 1e-6 away is given up.
const STALLED_AFTER: usize = 10;
/// Steps back from a vol where the premium leaves no European price, before giving up.
const MAX_MISSES: usize = 4;

impl American<'_> {
    /// The vol at which [`Self::price`] equals `price` (a market price, discounted), `None`
    /// when there is none: an input invalid, the price below the value of exercising now or
    /// above the no-arbitrage bound (the spot for a call, the strike for a put), or a price
    /// that does not pin a vol (at the exercise value, where the price is flat in the vol).
    pub fn implied_vol(&self, price: f64) -> Option<f64> {
        self.implied_vol_with_steps(price, DEFAULT_STEPS)
    }

    /// [`Self::implied_vol`] on a tree of `steps` steps.
    pub fn implied_vol_with_steps(&self, price: f64, steps: usize) -> Option<f64> {
        let bound = if self.is_call { self.spot } else { self.strike };
        if !(self.is_valid() && price.is_finite() && price > self.intrinsic() && price < bound) {
            return None;
        }
        let (discount, forward) = (self.discount(), self.forward());
        // The European vol of a discounted European price.
        let european_iv = |p: f64| -> Option<f64> {
            if !(p > 0.0 && p.is_finite()) {
                return None;
            }
            let iv = ImpliedBlackVolatility::builder()
                .option_price(p / discount)
                .forward(forward)
                .strike(self.strike)
                .expiry(self.t)
                .is_call(self.is_call)
                .build_unchecked()
                .calculate::<DefaultSpecialFn>()?;
            (iv.is_finite() && iv > 0.0).then_some(iv)
        };
        if self.never_early() {
            return european_iv(price);
        }
        // The premium is not negative, so the European vol of the whole price is an upper
        // bound. A coarse tree takes it most of the way, cheaply; the full tree finishes.
        let upper = european_iv(price)?;
        // The bracket's top a hair above the bound: Let's Be Rational's inverse and Black's
        // price agree to an ulp or so, not exactly, and a premium of 1e-16 moves the fixed point
        // by as much.
        let whole = (1e-4, upper.max(1e-3) * (1.0 + UPPER_SLACK));
        match solve(upper, 1e-7, |vol| european_iv(price - self.premium(vol, COARSE_STEPS))) {
            Some(coarse) if coarse <= upper * (1.0 + UPPER_SLACK) => {
                solve(coarse, VOL_TOLERANCE, |vol| european_iv(price - self.premium(vol, steps)))
                    .or_else(|| self.bracketed(price, whole, steps))
            }
            // The fixed point fails (a price a hair above the exercise value, where the premium
            // at a trial vol can exceed the time value): bracket the price itself, on the
            // coarse tree first (cheap), then on the full one close around that.
            _ => self
                .bracketed(price, whole, COARSE_STEPS)
                .and_then(|rough| {
                    self.bracketed(price, (rough * (1.0 - NEAR), (rough * (1.0 + NEAR)).min(whole.1)), steps)
                })
                .or_else(|| self.bracketed(price, whole, steps)),
        }
    }

    /// The fallback where the fixed point fails (prices a hair above the exercise value, where
    /// the premium at a trial vol can exceed the time value): regula falsi (Illinois) on the
    /// American price itself, which rises with the vol, between the vols `lo` and `hi` (`None`
    /// unless they bracket the price).
    pub(super) fn bracketed(&self, price: f64, (lo, hi): (f64, f64), steps: usize) -> Option<f64> {
        let f = |vol: f64| self.price_with_steps(vol, steps) - price;
        let (mut lo, mut hi) = (lo, hi);
        let (mut f_lo, mut f_hi) = (f(lo), f(hi));
        if !(f_lo < 0.0 && f_hi >= 0.0) {
            return None;
        }
        // Below some vol a deep in-the-money option is worth its exercise value whatever the
        // vol: there the price is flat, and secant steps from a flat end crawl. Halve the
        // bracket (in log vol) until its low end is off the flat part.
        let flat = self.intrinsic() - price;
        for _ in 0..64 {
            if (f_lo - flat).abs() > 1e-9 * price || hi < lo * (1.0 + 1e-12) {
                break;
            }
            let mid = (lo * hi).sqrt();
            let f_mid = f(mid);
            if f_mid < 0.0 {
                (lo, f_lo) = (mid, f_mid);
            } else {
                (hi, f_hi) = (mid, f_mid);
            }
        }
        illinois(f, (lo, f_lo), (hi, f_hi), 200, |fx, width| fx.abs() <= 1e-13 * price || width < VOL_TOLERANCE).ok()
    }
}

/// How far, relative, above the European vol of the whole price an American vol may come out
/// (rounding) and the bracket of the price reaches.
pub(super) const UPPER_SLACK: f64 = 1e-9;

/// The half-width, relative, of the bracket around the coarse tree's vol where the full tree
/// looks for its own.
const NEAR: f64 = 0.05;

/// Steps of the tree that finds the first approximation of an implied vol.
const COARSE_STEPS: usize = 25;

/// The fixed point of `g` (the European vol of the price less the premium at a vol: the
/// American implied vol), from `x0`: secant steps on `h(σ) = g(σ) − σ`, falling back to plain
/// fixed-point steps; `None` when `g` fails at the start or it does not converge.
pub(super) fn solve(x0: f64, tolerance: f64, g: impl Fn(f64) -> Option<f64>) -> Option<f64> {
    let mut x0 = x0;
    let mut g0 = g(x0)?;
    let mut h0 = g0 - x0;
    if h0.abs() < tolerance {
        return Some(g0);
    }
    let mut x1 = g0;
    let mut misses = 0;
    for evaluation in 1..MAX_EVALUATIONS {
        let Some(g1) = g(x1) else {
            // The premium at x1 took the price below any European's: step back halfway, a few
            // times (a price a hair above the exercise value keeps missing: the caller's
            // bracketing solver does better there).
            misses += 1;
            if misses > MAX_MISSES {
                return None;
            }
            x1 = 0.5 * (x0 + x1);
            continue;
        };
        let h1 = g1 - x1;
        if h1.abs() < tolerance {
            return Some(g1);
        }
        if evaluation >= STALLED_AFTER && h1.abs() > 1e-6 {
            // Far from converging where four to six steps are typical: a price the fixed
            // point handles badly (a hair above the exercise value); the caller brackets it.
            return None;
        }
        let secant = x1 - h1 * (x1 - x0) / (h1 - h0);
        let next = if secant.is_finite() && secant > 0.0 { secant } else { g1 };
        (x0, h0, g0) = (x1, h1, g1);
        x1 = next;
    }
    // Not converged to the tolerance: accept the last fixed-point value if it is close.
    (h0.abs() < 1e-8).then_some(g0)
}

/// Regula falsi with the Illinois modification on `f`, rising through zero between `lo` (where
/// it is `f_lo` < 0) and `hi` (`f_hi` ≥ 0): `Ok(x)` once `done(f(x), width of the bracket)`,
/// `Err(middle of the bracket)` after `max_iter` steps. The one bracketing solver of the module
/// (the per-option fallback and the batch's tables both use it).
pub(super) fn illinois(
    f: impl Fn(f64) -> f64,
    (mut lo, mut f_lo): (f64, f64),
    (mut hi, mut f_hi): (f64, f64),
    max_iter: usize,
    done: impl Fn(f64, f64) -> bool,
) -> std::result::Result<f64, f64> {
    let mut side = 0;
    for _ in 0..max_iter {
        let x = (lo * f_hi - hi * f_lo) / (f_hi - f_lo);
        let fx = f(x);
        if done(fx, hi - lo) {
            return Ok(x);
        }
        if fx < 0.0 {
            (lo, f_lo) = (x, fx);
            if side == -1 {
                f_hi *= 0.5;
            }
            side = -1;
        } else {
            (hi, f_hi) = (x, fx);
            if side == 1 {
                f_lo *= 0.5;
            }
            side = 1;
        }
    }
    Err(0.5 * (lo + hi))
}
