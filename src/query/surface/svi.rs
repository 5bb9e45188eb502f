//! Raw SVI (Gatheral 2004) for one expiry: total variance `w(k) = a + b(ρ(k − m) + √((k − m)² + σ²))`
//! in log-moneyness `k = ln(K/F)`.
//!
//! # Why our own fit rather than the `volsurf` crate
//! `volsurf` 4.0.1 fits SVI by the same quasi-explicit method, but it brings nalgebra into a
//! build already dominated by polars, filters quotes by its own heuristics (a "vol-cliff" filter
//! that silently drops points), and owns its weighting and error types. The fit here is ~200
//! lines, has no dependency, takes exactly the points and weights the surface chooses, and is
//! deterministic (fixed start grid), which the point-in-time property test relies on.
//!
//! # Method
//! Zeliade Systems, "Quasi-explicit calibration of Gatheral's SVI model" (2009): with
//! `y = (k − m)/σ`, `w = a + d·y + c·√(y² + 1)` is linear in `(a, d, c)` where `c = bσ`,
//! `d = ρbσ`. For fixed `(m, σ)` the inner problem is a weighted linear least squares over the
//! polygon `|d| ≤ c`, `|d| ≤ 4σ − c` (the wing-slope bound `b(1 + |ρ|) ≤ 4` of total variance, Rogers & Tehranchi 2010)
//! solved exactly: the interior solution if feasible, else the best of the polygon's edges and
//! vertices. The outer problem over `(m, ln σ)` is a Nelder–Mead search from the best point of
//! a small grid, restarted once. Where that fit has butterfly arbitrage within 0.25 of the
//! quotes' log-moneyness (Gatheral's density `g(k)` negative: quotes on one side of a steep
//! smile are matched as well by a fit turning sharply just past the last of them), the search
//! runs again with the negative density penalised, and takes the clean fit it finds.

/// Raw SVI parameters of one expiry (total variance in log-moneyness).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct SviParams {
    /// Level.
    pub a: f64,
    /// Slope of the wings (angle between them).
    pub b: f64,
    /// Skew, in (−1, 1).
    pub rho: f64,
    /// Shift in log-moneyness.
    pub m: f64,
    /// Curvature at the minimum (> 0).
    pub sigma: f64,
}

impl SviParams {
    /// Total variance `w(k)`.
    pub fn w(&self, k: f64) -> f64 {
        let x = k - self.m;
        self.a + self.b * (self.rho * x + (x * x + self.sigma * self.sigma).sqrt())
    }

    /// First derivative `w'(k)`.
    pub fn dw(&self, k: f64) -> f64 {
        let x = k - self.m;
        self.b * (self.rho + x / (x * x + self.sigma * self.sigma).sqrt())
    }

    /// Second derivative `w''(k)`.
    pub fn d2w(&self, k: f64) -> f64 {
        let x = k - self.m;
        let r = x * x + self.sigma * self.sigma;
        self.b * self.sigma * self.sigma / (r * r.sqrt())
    }

    /// Implied vol at `k` for maturity `t` years (NaN where the variance is negative).
    pub fn vol(&self, k: f64, t: f64) -> f64 {
        let w = self.w(k);
        if w < 0.0 {
            f64::NAN
        } else {
            (w / t).sqrt()
        }
    }

    /// Gatheral's density function `g(k)`; a butterfly arbitrage exists where it is negative
    /// (Gatheral & Jacquier 2014, eq. 2.1).
    pub fn g(&self, k: f64) -> f64 {
        let (w, w1, w2) = (self.w(k), self.dw(k), self.d2w(k));
        (1.0 - k * w1 / (2.0 * w)).powi(2) - w1 * w1 / 4.0 * (1.0 / w + 0.25) + w2 / 2.0
    }
}

/// One point of a fit: log-moneyness, total variance, weight.
#[derive(Debug, Clone, Copy)]
pub struct FitPoint {
    /// Log-moneyness ln(K/F).
    pub k: f64,
    /// Total implied variance σ²t.
    pub w: f64,
    /// Weight in the least squares (> 0).
    pub weight: f64,
}

/// The inner problem's result for fixed (m, σ): parameters and weighted squared error.
fn inner(points: &[FitPoint], m: f64, sigma: f64) -> Option<(SviParams, f64)> {
    // Normal equations of w ≈ a + d·y + c·z, z = √(y² + 1), accumulated once per (m, σ).
    let mut s = [[0.0f64; 4]; 4];
    for p in points {
        let y = (p.k - m) / sigma;
        let v = [1.0, y, (y * y + 1.0).sqrt(), p.w];
        for i in 0..4 {
            for j in i..4 {
                s[i][j] += p.weight * v[i] * v[j];
            }
        }
    }
    let sse = |a: f64, d: f64, c: f64| {
        let x = [a, d, c];
        // Σw(β·v − w)² expanded with the normal-equation sums.
        let mut q = s[3][3];
        for i in 0..3 {
            q -= 2.0 * x[i] * s[i][3];
            for j in 0..3 {
                let sij = if i <= j { s[i][j] } else { s[j][i] };
                q += x[i] * x[j] * sij;
            }
        }
        q.max(0.0)
    };
    let feasible = |d: f64, c: f64| c >= -1e-14 && d.abs() <= c + 1e-14 && d.abs() <= 4.0 * sigma - c + 1e-14;
    let mut best: Option<(f64, f64, f64, f64)> = None;
    let mut consider = |a: f64, d: f64, c: f64| {
        if a.is_finite() && d.is_finite() && c.is_finite() && feasible(d, c) {
            let e = sse(a, d, c);
            if best.is_none_or(|b| e < b.3) {
                best = Some((a, d, c, e));
            }
        }
    };
    if let Some([a, d, c]) = solve3(&s) {
        consider(a, d, c);
    }
    // Edges of the (c, d) polygon as lines d = u + v·c with c in [lo, hi].
    let edges = [(0.0, 1.0, 0.0, 2.0 * sigma), (0.0, -1.0, 0.0, 2.0 * sigma)];
    let edges2 = [(4.0 * sigma, -1.0, 2.0 * sigma, 4.0 * sigma), (-4.0 * sigma, 1.0, 2.0 * sigma, 4.0 * sigma)];
    for (u, v, lo, hi) in edges.into_iter().chain(edges2) {
        if let Some((_, c)) = line_fit(&s, u, v) {
            let c = c.clamp(lo, hi);
            let a = refit_a(&s, u + v * c, c);
            consider(a, u + v * c, c);
        }
    }
    for (d, c) in [(0.0, 0.0), (2.0 * sigma, 2.0 * sigma), (-2.0 * sigma, 2.0 * sigma), (0.0, 4.0 * sigma)] {
        consider(refit_a(&s, d, c), d, c);
    }
    let (a, d, c, e) = best?;
    let b = c / sigma;
    let rho = if c > 0.0 { (d / c).clamp(-1.0, 1.0) } else { 0.0 };
    Some((SviParams { a, b, rho, m, sigma }, e))
}

/// `a` minimising the error with `d`, `c` fixed.
fn refit_a(s: &[[f64; 4]; 4], d: f64, c: f64) -> f64 {
    (s[0][3] - d * s[0][1] - c * s[0][2]) / s[0][0]
}

/// Least squares on the line `d = u + v·c`: regress `w − u·y` on `(1, v·y + z)`.
fn line_fit(s: &[[f64; 4]; 4], u: f64, v: f64) -> Option<(f64, f64)> {
    // x = v·y + z; target t = w − u·y.
    let sxx = v * v * s[1][1] + 2.0 * v * s[1][2] + s[2][2];
    let s1x = v * s[0][1] + s[0][2];
    let s1t = s[0][3] - u * s[0][1];
    let sxt = v * s[1][3] + s[2][3] - u * (v * s[1][1] + s[1][2]);
    let det = s[0][0] * sxx - s1x * s1x;
    if det.abs() < 1e-300 {
        return None;
    }
    Some(((sxx * s1t - s1x * sxt) / det, (s[0][0] * sxt - s1x * s1t) / det))
}

/// Solves the 3×3 symmetric normal equations (upper triangle of `s`, right side in column 3).
fn solve3(s: &[[f64; 4]; 4]) -> Option<[f64; 3]> {
    let m = |i: usize, j: usize| if i <= j { s[i][j] } else { s[j][i] };
    let det3 = |c: [[f64; 3]; 3]| {
        c[0][0] * (c[1][1] * c[2][2] - c[1][2] * c[2][1]) - c[0][1] * (c[1][0] * c[2][2] - c[1][2] * c[2][0])
            + c[0][2] * (c[1][0] * c[2][1] - c[1][1] * c[2][0])
    };
    let a = [[m(0, 0), m(0, 1), m(0, 2)], [m(1, 0), m(1, 1), m(1, 2)], [m(2, 0), m(2, 1), m(2, 2)]];
    let det = det3(a);
    if det.abs() < 1e-300 * a[0][0].abs().max(1.0) {
        return None;
    }
    let mut out = [0.0; 3];
    for (col, o) in out.iter_mut().enumerate() {
        let mut b = a;
        for (row, r) in b.iter_mut().enumerate() {
            r[col] = s[row][3];
        }
        *o = det3(b) / det;
    }
    Some(out)
}

/// Objective of the outer search over `(m, ln σ)`; `σ` below `sigma_min` is out of bounds.
/// Butterfly arbitrage on `checks` (Gatheral's `g(k) < 0`) is penalised: among fits that
/// match the quotes about as well, the search takes one without it. Quotes that only reach one
/// side of a steep smile are matched as closely by a fit that turns sharply just past the last
/// of them — a negative density there, in no quote — as by one that does not.
fn outer(points: &[FitPoint], x: [f64; 2], sigma_min: f64, checks: &[f64]) -> f64 {
    let sigma = x[1].exp();
    if !(sigma_min..=5.0).contains(&sigma) || x[0].abs() > 5.0 {
        return f64::INFINITY;
    }
    match inner(points, x[0], sigma) {
        // A negative minimum variance is not a volatility smile: rule it out.
        Some((p, e)) if p.a + p.b * p.sigma * (1.0 - p.rho * p.rho).sqrt() >= 0.0 => {
            let worst = checks.iter().map(|&k| if p.w(k) > 0.0 { p.g(k) } else { -1.0 }).fold(0.0, f64::min);
            e + ARBITRAGE_PENALTY * (-worst).max(0.0)
        }
        _ => f64::INFINITY,
    }
}

/// Weight of the butterfly penalty against the weighted squared error (which is about the
/// number of quotes for a fit within their errors): a negative density of 1e-3 costs as much
/// as a thousand quotes off by their error.
const ARBITRAGE_PENALTY: f64 = 1e6;
/// How far beyond the quoted log-moneyness the fit is kept free of butterfly arbitrage (the
/// surface's check looks 0.1 beyond the quotes of the whole surface).
const ARBITRAGE_MARGIN: f64 = 0.25;
/// Points of that check.
const ARBITRAGE_POINTS: usize = 121;

/// Nelder–Mead on two variables (standard coefficients 1, 2, ½, ½).
fn nelder_mead(f: impl Fn([f64; 2]) -> f64, start: [f64; 2], step: [f64; 2], iters: usize) -> ([f64; 2], f64) {
    let mut s = [start, [start[0] + step[0], start[1]], [start[0], start[1] + step[1]]];
    let mut v = s.map(&f);
    let lerp = |a: [f64; 2], b: [f64; 2], t: f64| [a[0] + t * (b[0] - a[0]), a[1] + t * (b[1] - a[1])];
    for _ in 0..iters {
        let mut idx = [0, 1, 2];
        idx.sort_by(|&i, &j| v[i].total_cmp(&v[j]));
        (s, v) = (idx.map(|i| s[i]), idx.map(|i| v[i]));
        let size = (1..3).map(|i| (s[i][0] - s[0][0]).abs().max((s[i][1] - s[0][1]).abs())).fold(0.0, f64::max);
        if size < 1e-10 && v[0].is_finite() {
            break;
        }
        let c = lerp(s[0], s[1], 0.5);
        let r = lerp(c, s[2], -1.0);
        let fr = f(r);
        if fr < v[0] {
            let e = lerp(c, s[2], -2.0);
            let fe = f(e);
            (s[2], v[2]) = if fe < fr { (e, fe) } else { (r, fr) };
        } else if fr < v[1] {
            (s[2], v[2]) = (r, fr);
        } else {
            let k = lerp(c, s[2], 0.5);
            let fk = f(k);
            if fk < v[2] {
                (s[2], v[2]) = (k, fk);
            } else {
                for i in 1..3 {
                    s[i] = lerp(s[0], s[i], 0.5);
                    v[i] = f(s[i]);
                }
            }
        }
    }
    let i = (0..3).min_by(|&i, &j| v[i].total_cmp(&v[j])).unwrap_or(0);
    (s[i], v[i])
}

/// Fits raw SVI to the points; `None` with fewer than 5 points or no admissible fit.
pub fn fit(points: &[FitPoint]) -> Option<SviParams> {
    if points.len() < 5 || points.iter().any(|p| !(p.k.is_finite() && p.w.is_finite() && p.weight > 0.0)) {
        return None;
    }
    let (kmin, kmax) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.k), hi.max(p.k)));
    let span = (kmax - kmin).max(0.05);
    // Quotes a strike apart cannot resolve a bend sharper than that: σ (the width of the smile's
    // turn) stays at least half the median spacing of the quotes' log-moneyness. Without it a
    // fit to few quotes can put a kink just past the last one.
    let mut ks: Vec<f64> = points.iter().map(|p| p.k).collect();
    ks.sort_by(f64::total_cmp);
    let mut gaps: Vec<f64> = ks.windows(2).map(|w| w[1] - w[0]).filter(|g| *g > 1e-12).collect();
    gaps.sort_by(f64::total_cmp);
    let sigma_min = gaps.get(gaps.len() / 2).map_or(1e-4, |g| (0.5 * g).max(1e-4));
    let (lo, hi) = (kmin - ARBITRAGE_MARGIN, kmax + ARBITRAGE_MARGIN);
    let checks: Vec<f64> =
        (0..ARBITRAGE_POINTS).map(|i| lo + (hi - lo) * i as f64 / (ARBITRAGE_POINTS - 1) as f64).collect();
    // The plain fit; only where it has butterfly arbitrage near the quotes, the search again with
    // the arbitrage penalised (it costs some 25 times the plain objective, and the plain fit is
    // clean in all but a few slices).
    let plain = search(points, (kmin, span), sigma_min, &[])?;
    let clean = |p: &SviParams| super::arbitrage::butterfly_ok(p, &checks);
    if clean(&plain) {
        return Some(plain);
    }
    Some(search(points, (kmin, span), sigma_min, &checks).unwrap_or(plain))
}

/// The outer search from the best of a fixed grid of starts, with butterfly arbitrage on
/// `checks` penalised ([`outer`]).
fn search(points: &[FitPoint], (kmin, span): (f64, f64), sigma_min: f64, checks: &[f64]) -> Option<SviParams> {
    let obj = |x: [f64; 2]| outer(points, x, sigma_min, checks);
    // Deterministic start grid: m across the quoted range, σ from tight to wide.
    let mut starts: Vec<([f64; 2], f64)> = Vec::new();
    for i in 0..5 {
        let m = kmin + span * (i as f64) / 4.0;
        for s in [0.02, 0.08, 0.3, 1.0] {
            let x = [m, (s * span).max(sigma_min * 1.01).ln()];
            starts.push((x, obj(x)));
        }
    }
    let (start, _) = *starts.iter().min_by(|a, b| a.1.total_cmp(&b.1))?;
    // One search from the best grid point, then a restart with a fresh simplex from where it
    // stopped: the usual guard against Nelder–Mead collapsing early (Press et al., §10.5).
    // Searches from the next-best grid points as well changed no fit of the simulator's quotes at
    // 120 random instants and doubled the cost, so there is one.
    let first = nelder_mead(obj, start, [0.1 * span, 0.5], 300);
    let best = nelder_mead(obj, first.0, [0.01 * span, 0.05], 300);
    if !best.1.is_finite() {
        return None;
    }
    inner(points, best.0[0], best.0[1].exp()).map(|(p, _)| p)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quotes_on_one_side_of_a_steep_smile_get_a_fit_without_butterfly_arbitrage() {
        // A 23-day expiry of the demo's SPY (2026-12-01 16:30 UTC): ten quotes, all on the
        // falling side of the skew. The fit that matches them best turned sharply just past the
        // last one (ρ 0.87, σ 0.015), a negative density at k ≈ 0.12 where no quote is.
        let t = 0.06318493150684931;
        let quotes = [
            (-0.063946, 0.318213),
            (-0.053583, 0.303911),
            (-0.043327, 0.289179),
            (-0.033174, 0.274078),
            (-0.023124, 0.258521),
            (-0.013173, 0.242567),
            (-0.003321, 0.226438),
            (0.006435, 0.210190),
            (0.016097, 0.194445),
            (0.025666, 0.180526),
        ];
        let points: Vec<FitPoint> =
            quotes.iter().map(|&(k, v)| FitPoint { k, w: v * v * t, weight: 1.0 / (2.0 * v * t).powi(2) }).collect();
        let p = fit(&points).unwrap();
        for &(k, v) in &quotes {
            assert!((p.vol(k, t) - v).abs() < 5e-4, "{k}: {} against {v}", p.vol(k, t));
        }
        let worst = (0..=400).map(|i| -0.4 + 0.002 * i as f64).map(|k| p.g(k)).fold(f64::INFINITY, f64::min);
        assert!(worst >= 0.0, "{p:?}: g down to {worst:.2e}");
    }

    const TRUE: SviParams = SviParams { a: 0.01, b: 0.1, rho: -0.4, m: 0.02, sigma: 0.15 };

    #[test]
    fn recovers_known_parameters() {
        let points: Vec<FitPoint> =
            (-20..=20).map(|i| i as f64 * 0.025).map(|k| FitPoint { k, w: TRUE.w(k), weight: 1.0 }).collect();
        let p = fit(&points).unwrap();
        for k in [-0.5, -0.1, 0.0, 0.2, 0.5] {
            assert!((p.w(k) - TRUE.w(k)).abs() < 1e-8, "{p:?}");
        }
        assert!((p.rho - TRUE.rho).abs() < 1e-4 && (p.sigma - TRUE.sigma).abs() < 1e-4, "{p:?}");
    }

    #[test]
    fn derivatives_match_finite_differences() {
        let h = 1e-5;
        for k in [-0.3, 0.0, 0.4] {
            assert!(((TRUE.w(k + h) - TRUE.w(k - h)) / (2.0 * h) - TRUE.dw(k)).abs() < 1e-8);
            assert!(((TRUE.dw(k + h) - TRUE.dw(k - h)) / (2.0 * h) - TRUE.d2w(k)).abs() < 1e-6);
        }
        assert!(TRUE.g(0.0) > 0.0);
    }

    #[test]
    fn refuses_too_few_points() {
        let pts = [FitPoint { k: 0.0, w: 0.01, weight: 1.0 }; 4];
        assert!(fit(&pts).is_none());
    }
}
