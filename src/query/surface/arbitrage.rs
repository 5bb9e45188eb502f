//! Static-arbitrage checks of fitted smiles, on a grid of log-moneyness.
//!
//! - Butterfly (per expiry): Gatheral's `g(k) ≥ 0` together with `w(k) > 0` means the smile's
//!   risk-neutral density is non-negative (Gatheral & Jacquier 2014, §2).
//! - Calendar (across expiries): total variance non-decreasing in maturity at every `k`
//!   (Gatheral & Jacquier 2014, Lemma 2.1, with `k` the forward log-moneyness).
//!
//! # What the calendar check judges
//! Two fits are compared only where both were fitted to quotes, and only by more than their own
//! error. For each pair of neighbouring expiries (in maturity order):
//! - **Range**: the common quoted range, `[max(lo₁, lo₂), min(hi₁, hi₂)]` of the two slices'
//!   quoted log-moneyness. Outside it at least one fit is an extrapolation (raw SVI's straight
//!   wings), which says nothing about the market; short expiries, fitted to cent-rounded mids of
//!   cheap options, cross their neighbours there without any price to trade. Slices whose quoted
//!   ranges do not overlap cannot be compared and pass.
//! - **Tolerance**: a crossing counts when `w_later(k) − w_earlier(k) < −τ` with
//!   `τ = 2·√(ε₁² + ε₂²) + 1e-9`, where `ε` is a fit's root-mean-square total-variance residual
//!   at its quotes ([`Slice::w_rmse`]): the fitted `w` at a quoted `k` is known to about `ε`, so
//!   the difference of two independent fits to about `√(ε₁² + ε₂²)`, and only a crossing deeper
//!   than two of those is a statement the data supports. Exact prices fit to `ε ≈ 0`, so the
//!   check stays as strict as before on clean data; a genuine inversion of total variance
//!   inside the quoted strikes is flagged (see the tests).

use super::svi::SviParams;

/// Tolerance on `g` and the floor of the calendar tolerance: fits are least squares in doubles,
/// and a smile that touches zero within 1e-9 is not an arbitrage anyone can trade.
pub const TOLERANCE: f64 = 1e-9;

/// How many standard errors of the difference of two fits a calendar crossing must exceed.
pub const CALENDAR_SIGMAS: f64 = 2.0;

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

/// One fitted expiry as the calendar check sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Slice {
    /// The fit.
    pub params: SviParams,
    /// The smallest and largest quoted log-moneyness.
    pub k_lo: f64,
    /// See `k_lo`.
    pub k_hi: f64,
    /// Root mean square of `w_fit(k) − w_market(k)` over the quoted points (total variance).
    pub w_rmse: f64,
}

/// The log-moneyness range both slices were fitted on, `None` when their quotes do not overlap.
pub fn common_range(a: &Slice, b: &Slice) -> Option<(f64, f64)> {
    let (lo, hi) = (a.k_lo.max(b.k_lo), a.k_hi.min(b.k_hi));
    (lo <= hi).then_some((lo, hi))
}

/// How deep a crossing of two slices' total variances must be to count (see the module docs).
pub fn calendar_tolerance(a: &Slice, b: &Slice) -> f64 {
    CALENDAR_SIGMAS * a.w_rmse.hypot(b.w_rmse) + TOLERANCE
}

/// The smallest `w_later(k) − w_earlier(k)` on `n` points of the common quoted range (negative
/// means the later expiry has less total variance there); `+∞` when the ranges do not overlap.
pub fn min_calendar_gap(earlier: &Slice, later: &Slice, n: usize) -> f64 {
    let Some((lo, hi)) = common_range(earlier, later) else {
        return f64::INFINITY;
    };
    grid(lo, hi, n).iter().map(|&k| later.params.w(k) - earlier.params.w(k)).fold(f64::INFINITY, f64::min)
}

/// Per expiry (in maturity order): true when, on the range it shares with each neighbouring
/// expiry, its total variance is not below the previous expiry's nor above the next one's by more
/// than [`calendar_tolerance`]; checked on `n` points of each common range.
pub fn calendar_ok(slices: &[Slice], n: usize) -> Vec<bool> {
    let gaps: Vec<bool> =
        slices.windows(2).map(|w| min_calendar_gap(&w[0], &w[1], n) >= -calendar_tolerance(&w[0], &w[1])).collect();
    (0..slices.len()).map(|i| (i == 0 || gaps[i - 1]) && (i + 1 == slices.len() || gaps[i])).collect()
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

    /// A slice fitted exactly (`w_rmse` 0) on the quoted range `[-0.3, 0.3]`.
    fn exact(params: SviParams) -> Slice {
        Slice { params, k_lo: -0.3, k_hi: 0.3, w_rmse: 0.0 }
    }

    #[test]
    fn crossing_slices_fail_calendar() {
        let later = SviParams { a: 0.02, ..P };
        // Steeper wings but less variance near the minimum: crosses `later` inside the quoted range.
        let crossing = SviParams { a: 0.005, b: 0.2, ..P };
        assert!(crossing.w(0.09) < later.w(0.09) && crossing.w(-0.3) > later.w(-0.3));
        assert_eq!(calendar_ok(&[exact(P), exact(later)], 101), vec![true, true]);
        assert_eq!(calendar_ok(&[exact(P), exact(later), exact(crossing)], 101), vec![true, false, false]);
    }

    #[test]
    fn a_crossing_inside_the_common_range_is_flagged_despite_noise() {
        // The later expiry has 0.002 less total variance at the money (about 1.5 vol points at
        // three months): ten times the combined fit error, so no tolerance excuses it.
        let earlier = Slice { w_rmse: 1e-4, ..exact(SviParams { a: 0.02, ..P }) };
        let later = Slice { w_rmse: 1e-4, ..exact(SviParams { a: 0.018, ..P }) };
        let gap = min_calendar_gap(&earlier, &later, 101);
        assert!(gap < -calendar_tolerance(&earlier, &later), "{gap}");
        assert_eq!(calendar_ok(&[earlier, later], 101), vec![false, false]);
    }

    #[test]
    fn only_the_common_quoted_range_is_judged() {
        // `short` has the flatter wings of a short expiry: it crosses `long` only below k ≈ −0.37.
        let short = SviParams { a: 0.012, b: 0.04, ..P };
        let long = SviParams { a: 0.014, b: 0.05, rho: 0.0, ..P };
        let quoted = |params, k_lo, k_hi| Slice { params, k_lo, k_hi, w_rmse: 0.0 };
        let inside = grid(-0.3, 0.3, 61);
        assert!(inside.iter().all(|&k| long.w(k) > short.w(k)));
        assert!(short.w(-0.6) > long.w(-0.6));
        // Quoted on [-0.3, 0.3] both: fine. The long expiry quoted down to -0.7 changes nothing:
        // the short one has no quote there to compare with.
        assert_eq!(calendar_ok(&[quoted(short, -0.3, 0.3), quoted(long, -0.3, 0.3)], 101), vec![true, true]);
        assert_eq!(calendar_ok(&[quoted(short, -0.3, 0.3), quoted(long, -0.7, 0.3)], 101), vec![true, true]);
        // Both quoted down to -0.7: the crossing is in the data, and flagged.
        assert_eq!(calendar_ok(&[quoted(short, -0.7, 0.3), quoted(long, -0.7, 0.3)], 101), vec![false, false]);
        // No common quotes at all: nothing to judge.
        assert_eq!(calendar_ok(&[quoted(short, -0.7, -0.5), quoted(long, 0.0, 0.3)], 101), vec![true, true]);
    }

    #[test]
    fn a_shallow_crossing_passes_only_within_the_fits_error() {
        let earlier = SviParams { a: 0.02, ..P };
        let later = SviParams { a: 0.02 - 3e-5, ..P };
        // 3e-5 below: within two standard errors of fits good to 2e-5 each, not of exact fits.
        let noisy = |params| Slice { w_rmse: 2e-5, ..exact(params) };
        assert_eq!(calendar_ok(&[noisy(earlier), noisy(later)], 101), vec![true, true]);
        assert_eq!(calendar_ok(&[exact(earlier), exact(later)], 101), vec![false, false]);
    }
}
