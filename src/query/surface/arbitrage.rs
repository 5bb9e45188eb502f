//! Static-arbitrage checks of fitted smiles, on a grid of log-moneyness.
//!
//! - Butterfly (per expiry): Gatheral's `g(k) ≥ 0` together with `w(k) > 0` means the smile's
//!   risk-neutral density is non-negative (Gatheral & Jacquier 2014, §2).
//! - Calendar (across expiries): total variance non-decreasing in maturity at every `k`
//!   (Gatheral & Jacquier 2014, Lemma 2.1, with `k` the forward log-moneyness).

use super::svi::SviParams;

/// Tolerance on `g` and on total-variance differences: fits are least squares in doubles, and a
/// smile that touches zero within 1e-9 is not an arbitrage anyone can trade.
pub const TOLERANCE: f64 = 1e-9;

/// The grid the checks run on: `n` evenly spaced points over `[lo, hi]`.
pub fn grid(lo: f64, hi: f64, n: usize) -> Vec<f64> {
    let n = n.max(2);
    (0..n).map(|i| lo + (hi - lo) * i as f64 / (n - 1) as f64).collect()
}

/// The smallest `g(k)` on the grid (negative total variance counts as `−∞`), and where.
pub fn min_g(p: &SviParams, grid: &[f64]) -> (f64, f64) {
    grid.iter()
        .map(|&k| (if p.w(k) > 0.0 { p.g(k) } else { f64::NEG_INFINITY }, k))
        .fold((f64::INFINITY, f64::NAN), |a, b| if b.0 < a.0 { b } else { a })
}

/// True when the smile has no butterfly arbitrage on the grid.
pub fn butterfly_ok(p: &SviParams, grid: &[f64]) -> bool {
    min_g(p, grid).0 >= -TOLERANCE
}

/// The smallest `w_later(k) − w_earlier(k)` on the grid: negative means calendar arbitrage.
pub fn min_calendar_gap(earlier: &SviParams, later: &SviParams, grid: &[f64]) -> f64 {
    grid.iter().map(|&k| later.w(k) - earlier.w(k)).fold(f64::INFINITY, f64::min)
}

/// Per expiry (in maturity order): true when its total variance lies on or above the previous
/// expiry's and on or below the next one's at every grid point.
pub fn calendar_ok(smiles: &[SviParams], grid: &[f64]) -> Vec<bool> {
    let gaps: Vec<bool> = smiles.windows(2).map(|w| min_calendar_gap(&w[0], &w[1], grid) >= -TOLERANCE).collect();
    (0..smiles.len()).map(|i| (i == 0 || gaps[i - 1]) && (i + 1 == smiles.len() || gaps[i])).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const P: SviParams = SviParams { a: 0.01, b: 0.1, rho: -0.4, m: 0.02, sigma: 0.15 };

    #[test]
    fn a_sane_smile_passes() {
        assert!(butterfly_ok(&P, &grid(-1.5, 1.5, 301)));
    }

    #[test]
    fn a_steep_narrow_smile_fails_butterfly() {
        // Gatheral & Jacquier 2014, §5.2: an SVI slice with butterfly arbitrage.
        let bad = SviParams { a: -0.0410, b: 0.1331, rho: 0.3060, m: 0.3586, sigma: 0.4153 };
        let (g, _) = min_g(&bad, &grid(-1.5, 1.5, 301));
        assert!(g < 0.0, "{g}");
    }

    #[test]
    fn crossing_slices_fail_calendar() {
        let later = SviParams { a: 0.02, ..P };
        let crossing = SviParams { a: 0.005, b: 0.2, ..P };
        let g = grid(-1.0, 1.0, 101);
        assert_eq!(calendar_ok(&[P, later], &g), vec![true, true]);
        assert_eq!(calendar_ok(&[P, later, crossing], &g), vec![true, false, false]);
    }
}
