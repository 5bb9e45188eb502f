//! Option pricing beyond Black's formula: American exercise with discrete cash dividends.
//!
//! # The model and the method, and why
//! An [`American`] option is priced in the *escrowed dividend* model: the spot `S` is a risky
//! part `S* = S − PV(dividends up to expiry)` that follows geometric Brownian motion with rate
//! `r`, continuous yield `q` and volatility `σ`, plus the present value of the cash dividends
//! still to come. The forward is then exactly the one a discrete dividend schedule implies
//! (`F = (S − PV) e^{(r−q)T}`), a European option is Black's formula on that forward (so the
//! European piece is Let's Be Rational's, through the `implied-vol` crate), and the lattice
//! recombines. Exercise pays against the whole spot `S* + PV(dividends still to come)`, so a
//! call is exercised just before an ex-date when the dividend is worth more than the time
//! value left. QuantLib calls this model `Escrowed` in its finite-difference engine, which is
//! what the reference test (`tests/python/gen_american_reference.py`) compares with.
//!
//! The price is a **Leisen–Reimer binomial tree with the European price as control variate**:
//! the same tree prices the American and the European option, and the American price is
//! Black's European price plus the tree's early-exercise premium (American − European on the
//! tree), so most of the lattice's discretisation error cancels. At the levels of the ex-dates,
//! where exercise is worth a jump, the tree also offers exercise at the ex-date itself; for
//! calls the kink that decision makes in the value is taken off the lattice and priced by
//! Black's formula until it has diffused over a few nodes (module `kink`: a lattice integrates a
//! kink with an error that swings with where it falls between nodes, up to 8e-4 of a vol at
//! 101 steps before, and no extrapolation removes a swing), and for puts the node the boundary
//! crosses is smoothed, so the premium is continuous in the inputs and its error smooth enough
//! to extrapolate. Chosen over the alternatives the issue names because:
//! - Bjerksund–Stensland 2002 is fast but its error (up to a few 1e-3 of the price, more for
//!   puts) is far above the 1e-4 vol the research side needs, and it has no discrete dividends
//!   without an ad-hoc adjustment;
//! - the fast accurate integral-equation methods (QuantLib's QD+ fixed point) assume a
//!   continuous yield, not a cash dividend schedule;
//! - Leisen–Reimer converges as 1/N² for Europeans and is smooth in its inputs, so with the
//!   control variate (and two trees extrapolated, see `premium`) [`DEFAULT_STEPS`] reach 1e-4
//!   vol against QuantLib's fine grids in 116 of the 118 reference cases (worst 1.5e-4; all of
//!   them at 301 steps), at about 40 k implied vols/s on one core one by one and about 0.2 M/s
//!   in a batch over a chain ([`implied_vols`]; `BENCHMARKS.md`).

//! # Implied vol
//! [`American::implied_vol`] de-Americanises: start from the European implied vol of the
//! price, take the tree's early-exercise premium at that vol off the price, invert the rest
//! with Let's Be Rational, and repeat: secant steps on that fixed point, first on a 25-step tree
//! (cheap), then on the full one, which converges in four to six evaluations since the premium
//! moves with the vol far less than the European price does. A price a hair above the exercise
//! value, where the fixed point stalls, is bracketed instead (regula falsi on the price, the
//! flat stretch below the vol where exercising at once is best halved away first).
//! [`implied_vols`] is the batch form over columns: it shares the trees across the options of a
//! slice (one underlying and expiry), tabulating the premium once per slice and right and
//! solving each option on the table by Newton's method, about 5× faster on a chain (`batch`).
//!
//! # Greeks
//! [`American::greeks`] bumps and reprices the same control-variate price (central
//! differences), in IB's conventions: delta and gamma on the spot, vega per vol point (0.01),
//! theta per calendar day (the price one day nearer expiry with the spot held, dividends whose
//! ex-date passes in that day dropped, minus today's).

mod american;
mod batch;
#[cfg(test)]
mod batch_tests;
mod implied;
mod kink;
#[cfg(test)]
mod tests;

pub use american::{American, Dividend, Greeks, DEFAULT_STEPS, MAX_STEPS};
pub use batch::{implied_vols, implied_vols_of};
