//! The exercise decision at an ex-date, taken out of the lattice and priced by Black's formula.
//!
//! At an ex-date exercising is worth a jump (a call's holder takes the dividend), so the value
//! on that level is `continuation + max(0, g)` with `g` the gain of exercising: a function with
//! a kink where `g` crosses zero. A lattice integrates a kink with an error that swings with
//! where the kink falls between two nodes (of the order of the slope's jump × the node
//! spacing² × the density there, up to 1e-3 of an implied vol at 100 steps), so the premium
//! jumps about as the steps or the inputs move and no extrapolation in the steps removes it.
//!
//! [`fit`] finds the boundary `S_b` and the slope `λ` of `g` there (a quadratic through the
//! three nodes around the crossing), the tree takes the kink's linear part
//! `λ·max(0, ±(S − S_b))` off its nodes, and a [`Kink`] carries it instead: a call or put on the
//! escrowed spot struck at `S_b`, expiring at the ex-date, whose value at any earlier node is
//! Black's formula — exact, wherever the nodes fall. What stays on the lattice is smooth to
//! first order. Black's formula is only needed for a few levels: [`MERGE_LEVELS`] steps before
//! the ex-date the kink has diffused over more than two node spacings, the lattice integrates
//! it with an error below `e^{−2π²·levels/4}` of the kink's size (the aliasing of a Gaussian on
//! a grid), and its value is put back on the nodes. For an ex-date strictly inside a step the
//! decision is taken at the ex-date itself: the kink expires there, so its value includes the
//! time still to wait.

use implied_vol::{DefaultSpecialFn, SpecialFn};

/// Levels before the ex-date after which a kink's value goes back onto the lattice.
pub(super) const MERGE_LEVELS: usize = 2;

/// A kink taken off the lattice: `weight` calls (or puts) on the escrowed spot, struck at
/// `strike`, expiring at `expiry` (years from now), to be put back on level `merge_at`.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct Kink {
    pub expiry: f64,
    pub strike: f64,
    pub weight: f64,
    pub is_call: bool,
    pub merge_at: usize,
}

/// The parameters a kink's value needs besides the spot: vol, rate, carry.
#[derive(Clone, Copy, Debug)]
pub(super) struct Market {
    pub vol: f64,
    pub rate: f64,
    pub carry: f64,
}

/// Standard deviations beyond which a kink's option is worth its forward intrinsic value or
/// nothing (the normal tail there is below 1e-12).
const TAIL: f64 = 6.0;

impl Kink {
    /// The kink as seen from one level (time `at`): what its value at each node needs.
    pub fn on_level(&self, at: f64, m: Market) -> OnLevel {
        let tau = (self.expiry - at).max(0.0);
        let sd = m.vol * tau.sqrt();
        let (grow, disc) = (((m.carry - m.rate) * tau).exp(), (-m.rate * tau).exp());
        // ln(S/X) = sd·d1 − (b + σ²/2)τ: the spots where d1 = ±TAIL.
        let centre = -(m.carry + 0.5 * m.vol * m.vol) * tau;
        OnLevel {
            kink: *self,
            sd,
            drift: -centre,
            lo: self.strike * (centre - TAIL * sd).exp(),
            hi: self.strike * (centre + TAIL * sd).exp(),
            grow: self.weight * grow,
            disc: self.weight * self.strike * disc,
        }
    }
}

/// A kink seen from one level.
#[derive(Clone, Copy, Debug, Default)]
pub(super) struct OnLevel {
    kink: Kink,
    sd: f64,
    /// `(b + σ²/2)τ`.
    drift: f64,
    /// Below `lo` and above `hi` the option is worth its forward intrinsic value or nothing.
    lo: f64,
    hi: f64,
    /// `weight·e^{(b−r)τ}` and `weight·strike·e^{−rτ}`.
    grow: f64,
    disc: f64,
}

impl OnLevel {
    /// The kink's value at escrowed spot `s`.
    #[inline]
    pub fn value(&self, s: f64) -> f64 {
        let k = &self.kink;
        if s >= self.hi {
            return if k.is_call { self.grow * s - self.disc } else { 0.0 };
        }
        if s <= self.lo {
            return if k.is_call { 0.0 } else { self.disc - self.grow * s };
        }
        if self.sd <= 0.0 {
            let sign = if k.is_call { 1.0 } else { -1.0 };
            return k.weight * (sign * (s - k.strike)).max(0.0);
        }
        let d1 = ((s / k.strike).ln() + self.drift) / self.sd;
        let n = DefaultSpecialFn::norm_cdf;
        if k.is_call {
            self.grow * s * n(d1) - self.disc * n(d1 - self.sd)
        } else {
            self.disc * n(self.sd - d1) - self.grow * s * n(-d1)
        }
    }
}

/// The sum of the values of `kinks` at `s`.
#[inline]
pub(super) fn total(kinks: &[OnLevel], s: f64) -> f64 {
    kinks.iter().map(|k| k.value(s)).sum()
}

/// An exercise boundary found on a level: exercise above it (`is_call`) or below it, the gain
/// rising with slope `slope` (> 0) away from it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Found {
    pub boundary: f64,
    pub slope: f64,
    pub is_call: bool,
}

impl Found {
    /// The kink's value at expiry in the terms of the level it was found on
    /// (`λ·max(0, ±(S − S_b))`), the part taken off that level's nodes.
    #[inline]
    pub fn intrinsic(&self, s: f64) -> f64 {
        let sign = if self.is_call { 1.0 } else { -1.0 };
        self.slope * (sign * (s - self.boundary)).max(0.0)
    }

    /// The kink that carries it: decided at `expiry` (the ex-date, `tau` after the level's
    /// time), in the terms of that date — the escrowed spot grows by `e^{b τ}` meanwhile, and
    /// the gain is discounted by `e^{−r τ}`.
    pub fn kink(&self, expiry: f64, tau: f64, m: Market, merge_at: usize) -> Kink {
        Kink {
            expiry,
            strike: self.boundary * (m.carry * tau).exp(),
            weight: self.slope * ((m.rate - m.carry) * tau).exp(),
            is_call: self.is_call,
            merge_at,
        }
    }
}

/// What the gains of one level show.
pub(super) enum Fit {
    /// No exercise boundary among the nodes: all exercise or none does.
    None,
    /// One boundary.
    One(Found),
    /// More than one: left to the lattice.
    Many,
}

/// The exercise boundary of one level from the gains `gain[j]` at the nodes of spots
/// `spot(j)` (rising in `j`).
pub(super) fn fit(gain: &[f64], spot: impl Fn(usize) -> f64) -> Fit {
    let n = gain.len();
    let mut crossing = None;
    for j in 0..n.saturating_sub(1) {
        if (gain[j] < 0.0) != (gain[j + 1] < 0.0) {
            if crossing.is_some() {
                return Fit::Many;
            }
            crossing = Some(j);
        }
    }
    let Some(j) = crossing else { return Fit::None };
    let is_call = gain[j] < 0.0;
    let (s1, s2) = (spot(j), spot(j + 1));
    let secant = (gain[j + 1] - gain[j]) / (s2 - s1);
    let root = s1 - gain[j] / secant;
    // The root and slope of the quadratic through nodes `first..first + 3`, where its root
    // lies in the crossing cell and its slope has the crossing's sign.
    let quadratic = |first: usize| -> Option<(f64, f64)> {
        let xs = [spot(first), spot(first + 1), spot(first + 2)];
        let ys = [gain[first], gain[first + 1], gain[first + 2]];
        let d1 = (ys[1] - ys[0]) / (xs[1] - xs[0]);
        let d2 = ((ys[2] - ys[1]) / (xs[2] - xs[1]) - d1) / (xs[2] - xs[0]);
        let g = |x: f64| ys[0] + d1 * (x - xs[0]) + d2 * (x - xs[0]) * (x - xs[1]);
        let dg = |x: f64| d1 + d2 * (2.0 * x - xs[0] - xs[1]);
        let mut x = root;
        for _ in 0..8 {
            let step = g(x) / dg(x);
            x -= step;
            if step.abs() <= 1e-13 * x || step.is_nan() {
                break;
            }
        }
        let d = dg(x);
        (x > s1 && x < s2 && d.is_finite() && d != 0.0 && (d > 0.0) == is_call).then_some((x, d))
    };
    // The quadratics through the crossing cell and the node left of it, and the node right of
    // it, blended by where the crossing lies in the cell: the slope to O(h²), and continuous
    // as the crossing moves from cell to cell (at a cell's edge the weight is all on the
    // triple the next cell shares), so the price is continuous in the inputs.
    let left = if j >= 1 { quadratic(j - 1) } else { None };
    let right = if j + 2 < n { quadratic(j) } else { None };
    let w = ((root - s1) / (s2 - s1)).clamp(0.0, 1.0);
    let (boundary, slope) = match (left, right) {
        (Some(l), Some(r)) => ((1.0 - w) * l.0 + w * r.0, (1.0 - w) * l.1 + w * r.1),
        (Some(one), None) | (None, Some(one)) => one,
        (None, None) => (root, secant),
    };
    if !(boundary.is_finite() && slope.is_finite() && slope != 0.0) {
        return Fit::Many;
    }
    Fit::One(Found { boundary, slope: slope.abs(), is_call })
}

/// The backward step onto a level where a dividend goes ex: node `j`'s continuation
/// `pu·v[j+1] + pd·v[j]`, its gain of exercising (the better of the two strategies
/// `mul·a[j] + shift`, against the whole continuation, the `held` kinks' values included), and
/// the new value `continuation + max(0, gain)` (`v` is one longer than `a`; `scale` turns
/// `a[j]` into the node's escrowed spot).
#[inline(never)]
pub(super) fn ex_level(
    v: &mut [f64],
    a: &[f64],
    (cont, gain): (&mut [f64], &mut [f64]),
    (pu, pd): (f64, f64),
    scale: f64,
    strategies: [(f64, f64); 2],
    held: &[OnLevel],
) {
    let [(m1, s1), (m2, s2)] = strategies;
    for j in 0..a.len() {
        cont[j] = pu * v[j + 1] + pd * v[j];
        let exercise = (m1 * a[j] + s1).max(m2 * a[j] + s2);
        gain[j] = exercise - cont[j] - total(held, a[j] * scale);
        v[j] = cont[j] + gain[j].max(0.0);
    }
}

/// The backward step onto a level while kinks are off the lattice: exercise is weighed against
/// the whole value, the kinks' included (their values only where exercise could pay).
#[inline(never)]
pub(super) fn held_level(
    v: &mut [f64],
    a: &[f64],
    (pu, pd): (f64, f64),
    scale: f64,
    (mul, shift): (f64, f64),
    held: &[OnLevel],
) {
    for j in 0..a.len() {
        let c = pu * v[j + 1] + pd * v[j];
        let exercise = mul * a[j] + shift;
        v[j] = if exercise > c {
            let off = total(held, a[j] * scale);
            if exercise > c + off {
                exercise - off
            } else {
                c
            }
        } else {
            c
        };
    }
}

/// Takes a found kink's linear part off a level's nodes.
#[inline(never)]
pub(super) fn take_off(v: &mut [f64], a: &[f64], scale: f64, found: &Found) {
    for (value, node) in v.iter_mut().zip(a) {
        *value -= found.intrinsic(node * scale);
    }
}

/// Puts a kink's value back on a level's nodes.
#[inline(never)]
pub(super) fn put_back(v: &mut [f64], a: &[f64], scale: f64, kink: &OnLevel) {
    for (value, node) in v.iter_mut().zip(a) {
        *value += kink.value(node * scale);
    }
}

/// Where a level's gains cross zero more than once (no single boundary for a kink): each node
/// whose cell a crossing falls in gets the cell's Jensen gap added — the cell's average of
/// `max(0, gain)`, the gain linear between nodes, less the same max of its average — so the
/// price still moves continuously as the boundary moves between nodes.
#[inline(never)]
pub(super) fn jensen(v: &mut [f64], gain: &[f64]) {
    let n = v.len();
    // The average over a unit interval of max(0, ·) of the line from y0 to y1.
    let positive = |y0: f64, y1: f64| -> f64 {
        if y0 >= 0.0 && y1 >= 0.0 {
            0.5 * (y0 + y1)
        } else if y0 <= 0.0 && y1 <= 0.0 {
            0.0
        } else {
            let p = y0.max(y1);
            p * p / (2.0 * (y0.abs() + y1.abs()))
        }
    };
    for m in 0..n {
        let f = gain[m];
        let (before, after) = (gain[m.saturating_sub(1)], gain[(m + 1).min(n - 1)]);
        // Three gains of one sign: so are the cell's edges (their averages); nothing to add.
        if (before >= 0.0 && f >= 0.0 && after >= 0.0) || (before <= 0.0 && f <= 0.0 && after <= 0.0) {
            continue;
        }
        let left = 0.5 * (before + f);
        let right = 0.5 * (f + after);
        let all_above = left >= 0.0 && f >= 0.0 && right >= 0.0;
        let all_below = left <= 0.0 && f <= 0.0 && right <= 0.0;
        if all_above || all_below {
            continue;
        }
        let average = 0.25 * (left + 2.0 * f + right);
        let gap = 0.5 * (positive(left, f) + positive(f, right)) - average.max(0.0);
        v[m] += gap;
    }
}
