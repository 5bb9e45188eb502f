//! Counter-based randomness: every draw is a pure function of (seed, labels), so any day, minute
//! or second of the market is produced on its own without walking a generator from the start.

/// SplitMix64's finaliser: a fast bijective mixer with good avalanche.
pub fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a string (FNV-1a), independent of the Rust version.
pub fn hash_str(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ b as u64).wrapping_mul(0x0100_0000_01b3))
}

/// A key folding several labels into one stream position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(pub u64);

impl Key {
    /// The root key of a seed.
    pub fn new(seed: u64) -> Self {
        Key(mix(seed ^ 0x5EED))
    }
    /// A child key for one more label.
    pub fn with(self, label: u64) -> Self {
        Key(mix(self.0 ^ mix(label)))
    }
    /// A child key for a string label.
    pub fn with_str(self, label: &str) -> Self {
        self.with(hash_str(label))
    }
    /// A uniform draw in (0, 1).
    pub fn uniform(self) -> f64 {
        ((self.0 >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }
    /// A standard normal draw (inverse CDF of the uniform, so one hash gives one normal).
    pub fn normal(self) -> f64 {
        inv_norm(self.uniform())
    }
}

/// A cheap approximately normal draw for the intraday paths: Irwin–Hall of four 16-bit uniforms,
/// rescaled to unit variance. Tails are bounded at ±3.46, which suits second-to-second noise.
pub fn quick_normal(h: u64) -> f64 {
    let s = (h & 0xFFFF) + ((h >> 16) & 0xFFFF) + ((h >> 32) & 0xFFFF) + (h >> 48);
    (s as f64 / 65535.0 - 2.0) * 3f64.sqrt()
}

/// Acklam's rational approximation of the standard normal quantile (relative error < 1.2e-9).
pub fn inv_norm(p: f64) -> f64 {
    const A: [f64; 6] = [
        -3.969683028665376e1,
        2.209460984245205e2,
        -2.759285104469687e2,
        1.38357751867269e2,
        -3.066479806614716e1,
        2.506628277459239,
    ];
    const B: [f64; 5] =
        [-5.447609879822406e1, 1.615858368580409e2, -1.556989798598866e2, 6.680131188771972e1, -1.328068155288572e1];
    const C: [f64; 6] = [
        -7.784894002430293e-3,
        -3.223964580411365e-1,
        -2.400758277161838,
        -2.549732539343734,
        4.374664141464968,
        2.938163982698783,
    ];
    const D: [f64; 4] = [7.784695709041462e-3, 3.224671290700398e-1, 2.445134137142996, 3.754408661907416];
    let p = p.clamp(1e-300, 1.0 - 1e-16);
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.02425 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.02425 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_are_deterministic_and_centred() {
        let k = Key::new(7).with_str("SPY");
        assert_eq!(k.with(3).normal(), k.with(3).normal());
        let n = 20_000;
        let (mut s, mut s2) = (0.0, 0.0);
        for i in 0..n {
            let z = k.with(i).normal();
            s += z;
            s2 += z * z;
        }
        let mean = s / n as f64;
        let var = s2 / n as f64 - mean * mean;
        assert!(mean.abs() < 0.05 && (var - 1.0).abs() < 0.05, "{mean} {var}");
        assert!((inv_norm(0.975) - 1.959964).abs() < 1e-5);
    }
}
