//! The Leisen–Reimer tree with control variate in the escrowed dividend model (see the module
//! docs of [`crate::pricing`] for the why).

use super::kink::{self, Fit, Kink, Market, OnLevel, MERGE_LEVELS};
use implied_vol::{DefaultSpecialFn, PriceBlackScholes};

/// Steps of the tree by default (the larger of the two extrapolated trees): odd, as
/// Leisen–Reimer wants. Against QuantLib's reference (`tests/it/pricing.rs`, where vega ≥ 1)
/// 101 steps give implied vols within 2.3e-6 (median), 3.1e-5 (90th percentile) and 5.2e-5
/// (95th), worst 1.5e-4 (116 of 118 within 1e-4); 301 steps bring every case within 1e-4
/// (worst 7.3e-5) at a ninth of the speed (figures in `BENCHMARKS.md`).
pub const DEFAULT_STEPS: usize = 101;

/// The most steps a tree takes, whatever is asked (memory and time stay bounded).
pub const MAX_STEPS: usize = 10_001;

/// Days of a calendar year, for theta per calendar day.
const DAYS_PER_YEAR: f64 = 365.0;

/// A cash dividend: its ex-date in years from now and its amount per share.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Dividend {
    /// Years from now to the ex-date.
    pub t: f64,
    /// Cash per share.
    pub amount: f64,
}

/// An American call or put on a spot with a continuous yield and discrete cash dividends.
#[derive(Clone, Copy, Debug)]
pub struct American<'a> {
    /// Spot price now.
    pub spot: f64,
    /// Strike.
    pub strike: f64,
    /// Years to expiry.
    pub t: f64,
    /// Continuously compounded risk-free rate.
    pub rate: f64,
    /// Continuous dividend (or borrow) yield; 0 when the dividends are all in `dividends`.
    pub yield_rate: f64,
    /// Cash dividends; those with an ex-date not in `(0, t]` do not affect the option.
    pub dividends: &'a [Dividend],
    /// A call (else a put).
    pub is_call: bool,
}

/// Greeks in IB's conventions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Greeks {
    /// The price.
    pub price: f64,
    /// d price / d spot.
    pub delta: f64,
    /// d² price / d spot².
    pub gamma: f64,
    /// Price change for a vol move of one point (0.01).
    pub vega: f64,
    /// Price change over one calendar day, spot held.
    pub theta: f64,
}

/// The two prices one tree gives.
pub(super) struct TreePrices {
    /// American price on the tree.
    pub american: f64,
    /// European price on the same tree.
    pub european: f64,
}

impl American<'_> {
    /// Whether every input is usable: prices positive and finite, expiry positive, rates
    /// finite, dividends finite and non-negative, and the spot above their present value.
    pub fn is_valid(&self) -> bool {
        let positive = |x: f64| x > 0.0 && x.is_finite();
        positive(self.spot)
            && positive(self.strike)
            && positive(self.t)
            && self.rate.is_finite()
            && self.yield_rate.is_finite()
            && self.dividends.iter().all(|d| d.t.is_finite() && d.amount.is_finite() && d.amount >= 0.0)
            && self.risky_spot() > 0.0
    }

    /// The dividends that matter: ex-date in `(0, t]`.
    fn live_dividends(&self) -> impl Iterator<Item = &Dividend> + Clone + '_ {
        self.dividends.iter().filter(move |d| d.t > 0.0 && d.t <= self.t)
    }

    /// Present value at time `at` of the dividends going ex after `at` (and by expiry),
    /// discounted at `r − q` like the escrowed part they are carved from (QuantLib's escrowed
    /// model does the same).
    fn pv_dividends(&self, at: f64) -> f64 {
        let carry = self.rate - self.yield_rate;
        self.live_dividends().filter(|d| d.t > at).map(|d| d.amount * (-carry * (d.t - at)).exp()).sum()
    }

    /// The escrowed spot `S − PV(dividends)`.
    pub(super) fn risky_spot(&self) -> f64 {
        self.spot - self.pv_dividends(0.0)
    }

    /// The discount factor to expiry.
    pub(super) fn discount(&self) -> f64 {
        (-self.rate * self.t).exp()
    }

    /// The forward to expiry.
    pub(super) fn forward(&self) -> f64 {
        self.risky_spot() * ((self.rate - self.yield_rate) * self.t).exp()
    }

    /// Whether early exercise can never pay: a call with no dividend to capture and no yield
    /// (at a non-negative rate), whose American price is the European one.
    pub(super) fn never_early(&self) -> bool {
        self.is_call && self.yield_rate <= 0.0 && self.rate >= 0.0 && self.live_dividends().next().is_none()
    }

    /// Black's European price at `vol`, discounted (NaN if the inputs are invalid).
    pub(super) fn european(&self, vol: f64) -> f64 {
        let undiscounted = PriceBlackScholes::builder()
            .forward(self.forward())
            .strike(self.strike)
            .volatility(vol)
            .expiry(self.t)
            .is_call(self.is_call)
            .build()
            .map(|p| p.calculate::<DefaultSpecialFn>())
            .unwrap_or(f64::NAN);
        undiscounted * self.discount()
    }

    /// The American price at `vol` with [`DEFAULT_STEPS`]; NaN if an input is invalid.
    pub fn price(&self, vol: f64) -> f64 {
        self.price_with_steps(vol, DEFAULT_STEPS)
    }

    /// The American price at `vol` on a tree of `steps` steps (made odd, 7 to [`MAX_STEPS`]): Black's
    /// European price plus the tree's early-exercise premium. NaN if an input is invalid.
    pub fn price_with_steps(&self, vol: f64, steps: usize) -> f64 {
        if !(self.is_valid() && vol > 0.0 && vol.is_finite()) {
            return f64::NAN;
        }
        let european = self.european(vol);
        if self.never_early() {
            return european;
        }
        european + self.premium(vol, steps)
    }

    /// The early-exercise premium at `vol`, never negative; the caller has checked the inputs.
    /// The premium of one tree (American − European) errs by about `c/N` (the exercise
    /// boundary lies between nodes), so two trees of `N/2` and `N` steps are extrapolated to
    /// `N → ∞` (Richardson): at 1.25 times the cost of the larger tree, the error of a tree
    /// many times larger.
    pub(super) fn premium(&self, vol: f64, steps: usize) -> f64 {
        let steps = steps.clamp(7, MAX_STEPS);
        // Calls: the kinks at the ex-dates make the premium smooth in the steps; puts still
        // move with where an ex-date falls in its step, so their trees put it just after one.
        let (fine, coarse) = if self.is_call {
            (steps | 1, (steps / 2) | 1)
        } else {
            (self.aligned_steps(steps), self.aligned_steps(steps / 2))
        };
        let premium = |n: usize| {
            let p = self.tree(vol, n);
            p.american - p.european
        };
        let (pf, pc) = (premium(fine), premium(coarse));
        let (nf, nc) = (fine as f64, coarse as f64);
        ((nf * pf - nc * pc) / (nf - nc)).max(0.0)
    }

    /// An odd number of steps from `target` up to a quarter more that puts every ex-date as
    /// close as possible after a step of the tree (the farther an ex-date lies after it, the
    /// more the tree's exercise at that step misses). The choice depends on the expiry and the
    /// ex-dates only, so the price stays continuous in the spot and the vol.
    fn aligned_steps(&self, target: usize) -> usize {
        let first = target | 1;
        // Each ex-date as a fraction of the expiry (the first few: they matter most).
        let mut fractions = [0.0; MAX_EVENTS];
        let mut count = 0;
        for d in self.live_dividends().take(MAX_EVENTS) {
            fractions[count] = d.t / self.t;
            count += 1;
        }
        if count == 0 {
            return first;
        }
        let fractions = &fractions[..count];
        let shortfall = |n: usize| fractions.iter().map(|f| (f * n as f64).fract()).fold(0.0, f64::max);
        let mut best = (f64::INFINITY, first);
        for n in (first..=first + first / 4).step_by(2) {
            let miss = shortfall(n);
            if miss < best.0 {
                best = (miss, n);
            }
        }
        best.1
    }

    /// The greeks at `vol` by central differences of [`Self::price`]: spot bumped by 0.5 %,
    /// vol by 0.001, and one calendar day of time. All NaN if an input is invalid.
    pub fn greeks(&self, vol: f64) -> Greeks {
        let price = self.price(vol);
        if price.is_nan() {
            let nan = f64::NAN;
            return Greeks { price, delta: nan, gamma: nan, vega: nan, theta: nan };
        }
        // The spot bump stays below the escrowed spot, so both bumped spots stay valid.
        let h = 0.005 * self.spot.min(self.risky_spot());
        let at = |spot: f64| American { spot, ..*self }.price(vol);
        let (up, down) = (at(self.spot + h), at(self.spot - h));
        let dv = 1e-3_f64.min(0.5 * vol);
        let vega = (self.price(vol + dv) - self.price(vol - dv)) / (2.0 * dv) * 0.01;
        let day = 1.0 / DAYS_PER_YEAR;
        let tomorrow = if self.t > day {
            let shifted: Vec<Dividend> =
                self.dividends.iter().map(|d| Dividend { t: d.t - day, amount: d.amount }).collect();
            American { t: self.t - day, dividends: &shifted, ..*self }.price(vol)
        } else {
            self.intrinsic()
        };
        Greeks {
            price,
            delta: (up - down) / (2.0 * h),
            gamma: (up - 2.0 * price + down) / (h * h),
            vega,
            theta: tomorrow - price,
        }
    }

    /// The value of exercising now.
    pub fn intrinsic(&self) -> f64 {
        let v = if self.is_call { self.spot - self.strike } else { self.strike - self.spot };
        v.max(0.0)
    }

    /// The Leisen–Reimer tree (Peizer–Pratt inversion, method 2) on the escrowed spot: the
    /// American price from one backward pass, the European price on the same tree from the
    /// expiry's payoffs directly (see [`european_on_tree`]).
    ///
    /// At the levels where a dividend goes ex (at the level's time or within the step after
    /// it), exercising is worth a jump (the call's holder takes the dividend): exercising *at*
    /// the ex-date (a call just before, a put just after) is one more strategy open at the
    /// node, decided at the ex-date; and the kink the decision makes in the value is taken off
    /// the lattice and priced by Black's formula until it has diffused ([`super::kink`]), so
    /// the premium moves smoothly with the steps and the inputs and the extrapolation in the
    /// steps works (before, the worst cases of the reference — in-the-money calls, an ex-date
    /// close ahead — were off by up to 8e-4 in vol at 101 steps).
    pub(super) fn tree(&self, vol: f64, steps: usize) -> TreePrices {
        let n = steps.clamp(3, MAX_STEPS) | 1;
        let s0 = self.risky_spot();
        let (k, t, r, b) = (self.strike, self.t, self.rate, self.rate - self.yield_rate);
        let dt = t / n as f64;
        let sd = vol * t.sqrt();
        let d1 = ((s0 / k).ln() + (b + 0.5 * vol * vol) * t) / sd;
        let d2 = d1 - sd;
        let p = peizer_pratt(d2, n);
        let growth = (b * dt).exp();
        let u = growth * peizer_pratt(d1, n) / p;
        let d = (growth - p * u) / (1.0 - p);
        let disc = (-r * dt).exp();
        let (pu, pd) = (disc * p, disc * (1.0 - p));
        let market = Market { vol, rate: r, carry: b };

        // Node j of level i has escrowed spot a[j] · d^(i−n) with a[j] = s0 u^j d^(n−j).
        // The buffers are the thread's own, reused (no allocation per tree).
        BUFFERS.with_borrow_mut(|buf| {
            buf.clear();
            buf.resize(4 * (n + 1), 0.0);
            // Each live dividend's ex-date and amount·e^{−b t}, after the nodes.
            for v in self.live_dividends() {
                buf.extend([v.t, v.amount * (-b * v.t).exp()]);
            }
            let (nodes, weighted) = buf.split_at_mut(4 * (n + 1));
            let weighted: &[f64] = weighted;
            let (a, rest) = nodes.split_at_mut(n + 1);
            let (am, scratch) = rest.split_at_mut(n + 1);
            let (cont, gain) = scratch.split_at_mut(n + 1);
            let ratio = u / d;
            let mut s = s0 * d.powi(n as i32);
            let sign = if self.is_call { 1.0 } else { -1.0 };
            for j in 0..=n {
                a[j] = s;
                am[j] = (sign * (s - k)).max(0.0);
                s *= ratio;
            }
            let european = european_on_tree(am, p) * (-r * t).exp();
            // The dividends still to come, by ex-date.
            let dividends = self.live_dividends();
            let inv_d = 1.0 / d;
            let mut scale = 1.0;
            // PV at time `at` of a dividend at `v.t` is amount·e^{−b v.t}·e^{b at}: the first
            // factor once per dividend, the second by one product per level.
            let inv_growth = 1.0 / growth;
            let mut carry = growth.powi(n as i32);
            // The kinks taken off the lattice and not yet put back.
            let mut kinks = [Kink::default(); MAX_KINKS];
            let mut live = 0;
            let mut seen = [OnLevel::default(); MAX_KINKS];
            // The levels an ex-date lies at or just after (±1 for rounding): only there do
            // the dividends still to come change, and exercise at an ex-date arise.
            let mut near = [0usize; 3 * MAX_EVENTS];
            let mut events = 0;
            let mut every_level = false;
            for v in dividends.clone() {
                if events == near.len() {
                    every_level = true;
                    break;
                }
                let level = ((v.t + 1e-12) / dt).floor() as usize;
                near[events..events + 3].copy_from_slice(&[level + 1, level, level.saturating_sub(1)]);
                events += 3;
            }
            let near = &mut near[..events];
            near.sort_unstable_by(|x, y| y.cmp(x));
            let mut next = 0;
            let mut weights = f64::NAN;
            for i in (0..n).rev() {
                scale *= inv_d;
                carry *= inv_growth;
                let at = i as f64 * dt;
                while next < near.len() && near[next] > i {
                    next += 1;
                }
                let event = every_level || (next < near.len() && near[next] == i);
                // A dividend going ex at this step's time is still in the spot: exercise now
                // is exercise just before the ex-date.
                if event || weights.is_nan() {
                    weights = weighted.chunks_exact(2).filter(|v| v[0] > at - 1e-12).map(|v| v[1]).sum::<f64>();
                }
                let pv = carry * weights;
                // Exercise value sign·(a[j]·scale + pv − k) = sign·a[j]·scale + shift.
                let (mul, shift) = (sign * scale, sign * (pv - k));
                // An ex-date strictly inside this step: exercising at it (a call just before,
                // a put just after) is a strategy open at this node too, its expected value
                // seen from here; the decision itself is the kink's, at the ex-date.
                let inside =
                    if event { dividends.clone().find(|v| v.t > at + 1e-12 && v.t < at + dt - 1e-12) } else { None };
                let second = inside.map(|ex| {
                    let tau = ex.t - at;
                    let pv_at: f64 = dividends
                        .clone()
                        .filter(|v| if self.is_call { v.t >= ex.t } else { v.t > ex.t })
                        .map(|v| v.amount * (-b * (v.t - ex.t)).exp())
                        .sum();
                    (sign * scale * ((b - r) * tau).exp(), sign * (-r * tau).exp() * (pv_at - k))
                });
                let on_ex_date = event && dividends.clone().any(|v| (v.t - at).abs() <= 1e-12);
                for q in 0..live {
                    seen[q] = kinks[q].on_level(at, market);
                }
                let held = &seen[..live];
                if second.is_some() || on_ex_date {
                    let second = second.unwrap_or((mul, shift));
                    let (cont, gain) = (&mut cont[..=i], &mut gain[..=i]);
                    kink::ex_level(
                        &mut am[..=i + 1],
                        &a[..=i],
                        (cont, &mut *gain),
                        (pu, pd),
                        scale,
                        [(mul, shift), second],
                        held,
                    );
                    let fitted = if self.is_call { kink::fit(gain, |j| a[j] * scale) } else { Fit::Many };
                    match fitted {
                        Fit::One(found) if live < MAX_KINKS => {
                            kink::take_off(&mut am[..=i], &a[..=i], scale, &found);
                            let tau = inside.map_or(0.0, |ex| ex.t - at);
                            kinks[live] = found.kink(at + tau, tau, market, i.saturating_sub(MERGE_LEVELS));
                            live += 1;
                        }
                        Fit::None | Fit::One(_) => {}
                        Fit::Many => kink::jensen(&mut am[..=i], gain),
                    }
                } else if live > 0 {
                    kink::held_level(&mut am[..=i + 1], &a[..=i], (pu, pd), scale, (mul, shift), held);
                } else {
                    step(&mut am[..=i + 1], &a[..=i], pu, pd, mul, shift);
                }
                // Kinks due back on the lattice at this level.
                let mut kept = 0;
                for q in 0..live {
                    let kink = kinks[q];
                    if kink.merge_at >= i {
                        kink::put_back(&mut am[..=i], &a[..=i], scale, &kink.on_level(at, market));
                    } else {
                        kinks[kept] = kink;
                        kept += 1;
                    }
                }
                live = kept;
            }
            TreePrices { american: am[0], european }
        })
    }
}

/// Ex-dates whose levels a tree marks in advance; with more, it checks every level.
const MAX_EVENTS: usize = 16;

/// The most kinks off the lattice at once (each stays off for [`MERGE_LEVELS`] levels; a
/// level that finds one more leaves it on the lattice).
const MAX_KINKS: usize = 8;

thread_local! {
    /// The tree's working memory, one per thread, reused across trees.
    static BUFFERS: std::cell::RefCell<Vec<f64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The European value on the tree, undiscounted, in O(n) instead of a backward pass: the
/// payoffs at expiry weighted by the binomial probabilities `C(n, j) pʲ (1 − p)ⁿ⁻ʲ`. The
/// weights are taken relative to the mode's (so none overflows; those far out underflow to 0,
/// where they are below any price's precision) and normalised by their sum.
fn european_on_tree(payoff: &[f64], p: f64) -> f64 {
    let n = payoff.len() - 1;
    let odds = p / (1.0 - p);
    let mode = ((n as f64 + 1.0) * p).floor().clamp(0.0, n as f64) as usize;
    let (mut total, mut value) = (1.0, payoff[mode]);
    let mut w = 1.0;
    for j in mode..n {
        w *= odds * (n - j) as f64 / (j + 1) as f64;
        if w < 1e-300 {
            break;
        }
        total += w;
        value += w * payoff[j + 1];
    }
    w = 1.0;
    for j in (1..=mode).rev() {
        w *= j as f64 / ((n - j + 1) as f64 * odds);
        if w < 1e-300 {
            break;
        }
        total += w;
        value += w * payoff[j - 1];
    }
    value / total
}

/// Peizer–Pratt inversion (method 2) of the normal distribution for a tree of `n` steps.
fn peizer_pratt(z: f64, n: usize) -> f64 {
    let n = n as f64;
    let x = z / (n + 1.0 / 3.0 + 0.1 / (n + 1.0));
    let root = (0.25 - 0.25 * (-x * x * (n + 1.0 / 6.0)).exp()).sqrt();
    if z >= 0.0 {
        0.5 + root
    } else {
        0.5 - root
    }
}

/// One backward step of the American values: `v[j] ← max(pu·v[j+1] + pd·v[j], mul·a[j] + shift)`
/// for `j < a.len()` (`v` is one longer than `a`). Four nodes at a time, each block's five
/// values read before its four are written: an in-place loop lets the compiler store a pair of
/// values that the next pair's load half overlaps, a store-forwarding stall per node that
/// cost a quarter of the tree's time in some builds.
#[inline(always)]
fn step(v: &mut [f64], a: &[f64], pu: f64, pd: f64, mul: f64, shift: f64) {
    const BLOCK: usize = 4;
    let n = a.len();
    let (v, a) = (&mut v[..n + 1], &a[..n]);
    let node = |old: f64, up: f64, a: f64| {
        let cont = pu * up + pd * old;
        let exercise = mul * a + shift;
        if exercise > cont {
            exercise
        } else {
            cont
        }
    };
    let blocks = n / BLOCK;
    for b in 0..blocks {
        let j = b * BLOCK;
        let w: [f64; BLOCK + 1] = v[j..j + BLOCK + 1].try_into().expect("a block of five");
        let x: [f64; BLOCK] = a[j..j + BLOCK].try_into().expect("a block of four");
        for q in 0..BLOCK {
            v[j + q] = node(w[q], w[q + 1], x[q]);
        }
    }
    for j in blocks * BLOCK..n {
        v[j] = node(v[j], v[j + 1], a[j]);
    }
}
