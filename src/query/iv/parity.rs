//! Forwards and discount factors from put–call parity, and the configured rates to fall back on.

use polars::prelude::*;

/// Where a forward and discount factor came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ForwardSource {
    /// Regression of C − P on strike over two-sided quotes near the money.
    Parity,
    /// The configured rate and dividend yield (too few call/put pairs for parity).
    Configured,
}

/// The forward and discount factor of one expiry.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ForwardDiscount {
    /// Forward price of the underlying to expiry.
    pub forward: f64,
    /// Discount factor to expiry.
    pub discount: f64,
    /// How they were obtained.
    pub source: ForwardSource,
}

/// Rates used when parity cannot be solved, continuously compounded per year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    /// Risk-free rate.
    pub rate: f64,
    /// Dividend yield.
    pub dividend_yield: f64,
}

impl Rates {
    /// `F = S e^{(r−q)t}`, `D = e^{−rt}`.
    pub fn forward_discount(&self, spot: f64, t: f64) -> ForwardDiscount {
        ForwardDiscount {
            forward: spot * ((self.rate - self.dividend_yield) * t).exp(),
            discount: (-self.rate * t).exp(),
            source: ForwardSource::Configured,
        }
    }
}

impl Rates {
    /// Adds `forward` (`spot·e^{(r−q)t}`) and `discount` (`e^{−rt}`) columns to a frame with
    /// `spot` and `t` columns (the option panel), so that [`super::with_implied_vol`] and
    /// [`super::with_greeks`] can run on it.
    pub fn with_columns(&self, lf: LazyFrame) -> LazyFrame {
        lf.with_columns([
            (col("spot") * (col("t") * lit(self.rate - self.dividend_yield)).exp()).alias("forward"),
            (col("t") * lit(-self.rate)).exp().alias("discount"),
        ])
    }
}

/// Forward and discount of one expiry from put–call parity, `C − P = D·F − D·K`: an ordinary
/// least-squares line of `C − P` on `K` over the `near` pairs closest to the spot gives
/// `D = −slope` and `F = intercept / D`. Falls back to `rates` with fewer than 3 pairs, or when
/// the line gives a discount outside (0.5, 1.1] or a forward further than 50 % from the spot
/// (stale or crossed quotes, not an interest rate). [`parity_carry`] with every pair at `spot`.
pub fn parity_forward(pairs: &[(f64, f64, f64)], spot: f64, t: f64, near: usize, rates: &Rates) -> ForwardDiscount {
    let at_spot: Vec<ParityPair> =
        pairs.iter().map(|&(strike, call, put)| ParityPair { strike, call, put, spot }).collect();
    parity_carry(&at_spot, spot, t, near, rates).at(spot)
}

/// A call and a put of one strike quoted at one instant, with the spot of that instant.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ParityPair {
    /// Strike.
    pub strike: f64,
    /// Call price (discounted, as quoted).
    pub call: f64,
    /// Put price.
    pub put: f64,
    /// The underlying's price when both were quoted.
    pub spot: f64,
}

/// The carry of one expiry: its forward as a multiple of the spot, and its discount factor.
/// Over the minutes a surface's quotes span the carry does not move; the spot does, so each
/// quote's forward is the carry times the spot of its own instant.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Carry {
    /// `F / S`.
    pub carry: f64,
    /// Discount factor to expiry.
    pub discount: f64,
    /// How they were obtained.
    pub source: ForwardSource,
}

impl Carry {
    /// The forward and discount when the spot is `spot`.
    pub fn at(&self, spot: f64) -> ForwardDiscount {
        ForwardDiscount { forward: self.carry * spot, discount: self.discount, source: self.source }
    }
}

/// Carry and discount of one expiry from put–call parity with each pair at its own spot:
/// `C − P = D·c·S − D·K`, a least-squares fit of `C − P` on the pair's spot and strike (no
/// intercept) over the `near` pairs closest to the money, gives `D` and `c = F/S`. With every
/// pair at one spot this is [`parity_forward`]'s line. Falls back to `rates` (at `spot` and `t`)
/// with fewer than 3 pairs, a singular fit, a discount outside (0.5, 1.1] or a forward further
/// than 50 % from the spot.
pub fn parity_carry(pairs: &[ParityPair], spot: f64, t: f64, near: usize, rates: &Rates) -> Carry {
    let fallback = {
        let fd = rates.forward_discount(spot, t);
        Carry { carry: fd.forward / spot, discount: fd.discount, source: ForwardSource::Configured }
    };
    let mut pts: Vec<&ParityPair> = pairs
        .iter()
        .filter(|p| [p.strike, p.call, p.put, p.spot].iter().all(|x| x.is_finite()) && p.spot > 0.0)
        .collect();
    pts.sort_by(|a, b| (a.strike / a.spot - 1.0).abs().total_cmp(&(b.strike / b.spot - 1.0).abs()));
    pts.truncate(near.max(3));
    if pts.len() < 3 {
        return fallback;
    }
    // y = β₁·u + β₂·K with u = S/S̄ (≈ 1: the intercept of the one-spot line), β₁ = D·c·S̄ and
    // β₂ = −D, solved on orthogonal regressors u and K⊥ = K − λu (λ = Σ uK / Σ u²) so that no
    // digits cancel; with every u = 1 this is the centred line of `C − P` on `K`.
    let n = pts.len() as f64;
    let s_bar = pts.iter().map(|p| p.spot).sum::<f64>() / n;
    let u = |p: &ParityPair| p.spot / s_bar;
    let suu: f64 = pts.iter().map(|p| u(p) * u(p)).sum();
    let lambda = pts.iter().map(|p| u(p) * p.strike).sum::<f64>() / suu;
    let k_perp = |p: &ParityPair| p.strike - lambda * u(p);
    let skk: f64 = pts.iter().map(|p| k_perp(p).powi(2)).sum();
    if skk <= 0.0 {
        return fallback;
    }
    let b2 = pts.iter().map(|p| k_perp(p) * (p.call - p.put)).sum::<f64>() / skk;
    let gamma = pts.iter().map(|p| u(p) * (p.call - p.put)).sum::<f64>() / suu;
    let b1 = gamma - b2 * lambda;
    let discount = -b2;
    let carry = b1 / (discount * s_bar);
    let sane = discount > 0.5 && discount <= 1.1 && carry.is_finite() && (carry - 1.0).abs() < 0.5;
    if !sane {
        return fallback;
    }
    Carry { carry, discount, source: ForwardSource::Parity }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::iv::black_price;

    #[test]
    fn parity_recovers_forward_and_discount() {
        let (f, d, t) = (102.0, 0.98, 0.5);
        let pairs: Vec<(f64, f64, f64)> = (80..=120)
            .step_by(5)
            .map(|k| {
                let k = k as f64;
                (k, d * black_price(f, k, t, 0.2, true), d * black_price(f, k, t, 0.2, false))
            })
            .collect();
        let rates = Rates { rate: 0.0, dividend_yield: 0.0 };
        let fd = parity_forward(&pairs, 100.0, t, 6, &rates);
        assert_eq!(fd.source, ForwardSource::Parity);
        assert!((fd.forward - f).abs() < 1e-9 && (fd.discount - d).abs() < 1e-12, "{fd:?}");
        let few = parity_forward(&pairs[..2], 100.0, t, 6, &rates);
        assert_eq!(few.source, ForwardSource::Configured);
    }

    #[test]
    fn parity_carry_values_each_pair_at_its_own_spot() {
        // Pairs quoted over a few minutes while the spot moved: C − P = D·(c·S − K).
        let (c, d, t) = (1.004, 0.99, 0.25);
        let pairs: Vec<ParityPair> = [(90.0, 99.5), (95.0, 100.2), (100.0, 100.9), (105.0, 99.8), (110.0, 100.4)]
            .iter()
            .map(|&(k, s)| {
                let f = c * s;
                let (call, put) = (d * black_price(f, k, t, 0.2, true), d * black_price(f, k, t, 0.2, false));
                ParityPair { strike: k, call, put, spot: s }
            })
            .collect();
        let rates = Rates { rate: 0.0, dividend_yield: 0.0 };
        let got = parity_carry(&pairs, 100.0, t, 6, &rates);
        assert_eq!(got.source, ForwardSource::Parity);
        assert!((got.carry - c).abs() < 1e-12 && (got.discount - d).abs() < 1e-12, "{got:?}");
        assert!((got.at(101.0).forward - c * 101.0).abs() < 1e-9);
        // The one-spot line, read as if every pair were at one spot, is off by the spot's moves.
        let one: Vec<(f64, f64, f64)> = pairs.iter().map(|p| (p.strike, p.call, p.put)).collect();
        let naive = parity_forward(&one, 100.0, t, 6, &rates);
        assert!((naive.forward / 100.0 - c).abs() > 1e-4, "{naive:?}");
        // Crossed quotes (a put dearer than parity allows by far) fall back to the rates.
        let crossed: Vec<ParityPair> = pairs.iter().map(|p| ParityPair { put: p.put + 60.0, ..*p }).collect();
        assert_eq!(parity_carry(&crossed, 100.0, t, 6, &rates).source, ForwardSource::Configured);
    }
}
