//! Robust trend statistics: Theil-Sen slope with its confidence interval, the Mann-Kendall
//! trend test with tie correction and the Hamed-Rao autocorrelation correction, and the
//! few normal-distribution helpers they need.
//!
//! Everything here works on plain slices and allocates at most O(n) besides the O(n^2)
//! pairwise slopes, which callers bound by decimating first.

use std::cmp::Ordering;

/// The `k`-th smallest value (0-based) of `values`, reordering them. NaNs sort last.
pub fn select(values: &mut [f64], k: usize) -> f64 {
    let (_, value, _) = values.select_nth_unstable_by(k, f64::total_cmp);
    *value
}

/// Median, reordering `values`; `None` when empty. Even counts average the middle pair.
pub fn median(values: &mut [f64]) -> Option<f64> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let upper = select(values, n / 2);
    if n % 2 == 1 {
        return Some(upper);
    }
    // After select_nth, everything left of n/2 is <= upper; the lower middle is their max.
    let lower = values[..n / 2]
        .iter()
        .copied()
        .fold(f64::NEG_INFINITY, f64::max);
    Some((lower + upper) / 2.0)
}

/// The positive gaps between consecutive samples of every slice of points, in seconds.
pub fn spacings<'a>(lives: impl IntoIterator<Item = &'a [crate::model::Point]>) -> Vec<f64> {
    lives
        .into_iter()
        .flat_map(|points| points.windows(2).map(|pair| pair[1].t - pair[0].t))
        .filter(|gap| *gap > 0.0)
        .collect()
}

/// The median of [`spacings`]: a series' typical sample spacing (an even count averages
/// the middle pair). `None` when no two samples are apart.
pub fn median_spacing<'a>(
    lives: impl IntoIterator<Item = &'a [crate::model::Point]>,
) -> Option<f64> {
    median(&mut spacings(lives))
}

/// Median of a slice without disturbing it.
pub fn median_of(values: &[f64]) -> Option<f64> {
    let mut scratch = values.to_vec();
    median(&mut scratch)
}

/// The `q`-quantile (nearest rank, `q` in 0..=1), reordering `values`.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let rank = ((values.len() - 1) as f64 * q.clamp(0.0, 1.0)).round() as usize;
    Some(select(values, rank))
}

/// Robust standard deviation: 1.4826 * median absolute deviation, which equals the
/// standard deviation for normal data but ignores outliers and jumps.
pub fn robust_sigma(values: &[f64]) -> f64 {
    let Some(center) = median_of(values) else {
        return 0.0;
    };
    let mut deviations: Vec<f64> = values.iter().map(|v| (v - center).abs()).collect();
    1.4826 * median(&mut deviations).unwrap_or(0.0)
}

/// Complementary error function, with relative error below 1.2e-7 everywhere
/// (Chebyshev fit of `t * exp(-x^2 + P(t))`, `t = 1 / (1 + x/2)`).
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let value = t * poly.exp();
    if x >= 0.0 {
        value
    } else {
        2.0 - value
    }
}

/// P(Z > z) for a standard normal Z.
pub fn normal_sf(z: f64) -> f64 {
    0.5 * erfc(z / std::f64::consts::SQRT_2)
}

/// The `p`-quantile of the standard normal distribution (bisection on [`normal_sf`]; the
/// engine needs it once per call, so simplicity beats speed).
pub fn normal_quantile(p: f64) -> f64 {
    if !(p > 0.0 && p < 1.0) {
        return if p >= 1.0 {
            f64::INFINITY
        } else {
            f64::NEG_INFINITY
        };
    }
    let (mut low, mut high) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        // CDF(mid) = 1 - sf(mid); increasing in mid.
        if 1.0 - normal_sf(mid) < p {
            low = mid;
        } else {
            high = mid;
        }
        if high - low < 1e-12 {
            break;
        }
    }
    0.5 * (low + high)
}

/// Ordinary least squares line `v = slope * t + intercept`; `None` with fewer than two
/// distinct times. Times are centred first so unix timestamps do not lose precision.
pub fn ols(times: &[f64], values: &[f64]) -> Option<(f64, f64)> {
    let n = times.len().min(values.len());
    if n < 2 {
        return None;
    }
    let t_mean = times[..n].iter().sum::<f64>() / n as f64;
    let v_mean = values[..n].iter().sum::<f64>() / n as f64;
    let (mut stt, mut stv) = (0.0, 0.0);
    for i in 0..n {
        let dt = times[i] - t_mean;
        stt += dt * dt;
        stv += dt * (values[i] - v_mean);
    }
    if stt <= 0.0 {
        return None;
    }
    let slope = stv / stt;
    Some((slope, v_mean - slope * t_mean))
}

/// The Mann-Kendall statistic S and its variance under "no trend".
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MannKendall {
    /// Concordant minus discordant pairs.
    pub s: f64,
    /// Variance of S without trend, corrected for ties (and, once
    /// [`MannKendall::inflate`]d, for autocorrelation).
    pub var_s: f64,
}

impl MannKendall {
    /// Sum of independent statistics (segments judged together, e.g. process lives).
    pub fn combine(parts: impl IntoIterator<Item = MannKendall>) -> MannKendall {
        parts
            .into_iter()
            .fold(MannKendall { s: 0.0, var_s: 0.0 }, |total, part| {
                MannKendall {
                    s: total.s + part.s,
                    var_s: total.var_s + part.var_s,
                }
            })
    }

    /// Scale the variance by an autocorrelation factor (`n / n*` of Hamed and Rao).
    pub fn inflate(self, factor: f64) -> MannKendall {
        MannKendall {
            s: self.s,
            var_s: self.var_s * factor.max(1.0),
        }
    }

    /// Normal score with continuity correction.
    pub fn z(&self) -> f64 {
        if self.var_s <= 0.0 {
            return 0.0;
        }
        let sd = self.var_s.sqrt();
        match self.s.partial_cmp(&0.0) {
            Some(Ordering::Greater) => (self.s - 1.0) / sd,
            Some(Ordering::Less) => (self.s + 1.0) / sd,
            _ => 0.0,
        }
    }

    /// One-sided p-value of "the series increases".
    pub fn p_increasing(&self) -> f64 {
        if self.var_s <= 0.0 {
            return 1.0;
        }
        normal_sf(self.z())
    }
}

/// Mann-Kendall S of `values` in time order, with the tie-corrected variance.
pub fn mann_kendall(values: &[f64]) -> MannKendall {
    let n = values.len();
    let mut s = 0i64;
    for i in 0..n {
        let vi = values[i];
        for &vj in &values[i + 1..] {
            s += match vj.partial_cmp(&vi) {
                Some(Ordering::Greater) => 1,
                Some(Ordering::Less) => -1,
                _ => 0,
            };
        }
    }
    let nf = n as f64;
    let mut var_s = nf * (nf - 1.0) * (2.0 * nf + 5.0);
    // Ties shrink the variance: each group of t equal values removes t(t-1)(2t+5).
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && sorted[j] == sorted[i] {
            j += 1;
        }
        let t = (j - i) as f64;
        if t > 1.0 {
            var_s -= t * (t - 1.0) * (2.0 * t + 5.0);
        }
        i = j;
    }
    MannKendall {
        s: s as f64,
        var_s: (var_s / 18.0).max(0.0),
    }
}

/// Average ranks (1-based) of `values`, ties sharing the mean of their ranks.
pub fn ranks(values: &[f64]) -> Vec<f64> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut ranks = vec![0.0; n];
    let mut i = 0;
    while i < n {
        let mut j = i + 1;
        while j < n && values[order[j]] == values[order[i]] {
            j += 1;
        }
        let shared = (i + j + 1) as f64 / 2.0;
        for &index in &order[i..j] {
            ranks[index] = shared;
        }
        i = j;
    }
    ranks
}

/// Hamed-Rao variance inflation factor `n / n*` for the Mann-Kendall test.
///
/// Serial correlation makes S vary more than the independence formula says, so trends in
/// correlated noise look significant. Hamed and Rao (1998) estimate the autocorrelation of
/// the ranks of the detrended series and inflate Var(S) by
/// `1 + 2 / (n(n-1)(n-2)) * sum_k (n-k)(n-k-1)(n-k-2) rho_k` over significant lags
/// `k <= n/3`.
/// The factor is clamped to `[1, n]`: periodic residuals can make it drop below one, and
/// we would rather lose power than gain false alarms.
pub fn hamed_rao_factor(times: &[f64], values: &[f64], slope: f64) -> f64 {
    let n = times.len().min(values.len());
    if n < 10 {
        return 1.0;
    }
    let detrended: Vec<f64> = (0..n).map(|i| values[i] - slope * times[i]).collect();
    let ranks = ranks(&detrended);
    let mean = (n as f64 + 1.0) / 2.0;
    let centred: Vec<f64> = ranks.iter().map(|r| r - mean).collect();
    let denominator: f64 = centred.iter().map(|c| c * c).sum();
    if denominator <= 0.0 {
        return 1.0;
    }
    let nf = n as f64;
    let bound = 1.96 / nf.sqrt();
    let mut sum = 0.0;
    // Weights fall like (1 - k/n)^3 and far lags are estimated from few pairs, so lags
    // beyond n/3 add noise rather than information (and O(n^2) work); they are left out.
    for k in 1..(n / 3).max(2).min(n.saturating_sub(2)) {
        let numerator: f64 = (0..n - k).map(|i| centred[i] * centred[i + k]).sum();
        let rho = numerator / denominator;
        if rho.abs() > bound {
            let kf = k as f64;
            sum += (nf - kf) * (nf - kf - 1.0) * (nf - kf - 2.0) * rho;
        }
    }
    let factor = 1.0 + 2.0 * sum / (nf * (nf - 1.0) * (nf - 2.0));
    factor.clamp(1.0, nf)
}

/// Appends the slope of every pair `(i < j)` with distinct times to `out`.
pub fn pairwise_slopes(times: &[f64], values: &[f64], out: &mut Vec<f64>) {
    let n = times.len().min(values.len());
    out.reserve(n * n.saturating_sub(1) / 2);
    for i in 0..n {
        for j in i + 1..n {
            let dt = times[j] - times[i];
            if dt != 0.0 {
                out.push((values[j] - values[i]) / dt);
            }
        }
    }
}

/// A Theil-Sen slope with its rank-based confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SlopeEstimate {
    pub slope: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Median of `slopes` and the distribution-free interval around it (Sen 1968): with
/// `C = z * sqrt(Var(S))`, the bounds are the `(N - C)/2`-th and `(N + C)/2 + 1`-th
/// ordered slopes. `var_s` should already include any autocorrelation inflation, which
/// widens the interval accordingly. Reorders `slopes`.
pub fn slope_interval(slopes: &mut [f64], var_s: f64, z: f64) -> Option<SlopeEstimate> {
    let n = slopes.len();
    if n == 0 {
        return None;
    }
    let slope = median(slopes)?;
    let c = z * var_s.max(0.0).sqrt();
    let nf = n as f64;
    let lower_rank = ((nf - c) / 2.0).floor().max(1.0) as usize; // 1-based
    let upper_rank = (((nf + c) / 2.0).ceil() as usize + 1).min(n);
    let lower = select(slopes, lower_rank - 1);
    let upper = select(slopes, upper_rank - 1);
    Some(SlopeEstimate {
        slope,
        lower: lower.min(slope),
        upper: upper.max(slope),
    })
}

/// Plain Theil-Sen fit: the median pairwise slope and the median of `v - slope * t`.
pub fn theil_sen(times: &[f64], values: &[f64]) -> Option<(f64, f64)> {
    let mut slopes = Vec::new();
    pairwise_slopes(times, values, &mut slopes);
    let slope = median(&mut slopes)?;
    let mut intercepts: Vec<f64> = times
        .iter()
        .zip(values)
        .map(|(t, v)| v - slope * t)
        .collect();
    Some((slope, median(&mut intercepts)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn erfc_matches_tabulated_values() {
        for (x, expected) in [
            (0.0, 1.0),
            (0.5, 0.479_500_122_2),
            (1.0, 0.157_299_207_1),
            (2.0, 0.004_677_734_981),
            (-1.0, 1.842_700_792_9),
        ] {
            assert!(
                close(erfc(x), expected, 2e-7 * expected.max(1e-3)),
                "erfc({x})"
            );
        }
    }

    #[test]
    fn normal_quantile_inverts_the_tail() {
        assert!(close(normal_quantile(0.975), 1.959_964, 1e-5));
        assert!(close(normal_quantile(0.5), 0.0, 1e-6));
        assert!(close(normal_sf(3.719_016), 1e-4, 1e-8));
    }

    #[test]
    fn median_handles_odd_even_and_empty() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), Some(2.5));
        assert_eq!(median(&mut []), None);
    }

    #[test]
    fn theil_sen_recovers_a_line_despite_outliers() {
        let times: Vec<f64> = (0..50).map(f64::from).collect();
        let mut values: Vec<f64> = times.iter().map(|t| 3.0 * t + 7.0).collect();
        // A quarter of the points wildly off: least squares would be dragged, Theil-Sen not.
        for i in (0..50).step_by(4) {
            values[i] += 1000.0;
        }
        let (slope, intercept) = theil_sen(&times, &values).unwrap();
        assert!(close(slope, 3.0, 1e-9), "slope {slope}");
        assert!(close(intercept, 7.0, 1e-9), "intercept {intercept}");
        let (ols_slope, _) = ols(&times, &values).unwrap();
        assert!((ols_slope - 3.0).abs() > 0.5, "least squares is not robust");
    }

    #[test]
    fn theil_sen_on_known_small_data() {
        // Pairwise slopes of (0,1) (1,3) (2,2) (3,6): 2, 0.5, 5/3, -1, 1.5, 4 -> median 1.583
        let (slope, _) = theil_sen(&[0.0, 1.0, 2.0, 3.0], &[1.0, 3.0, 2.0, 6.0]).unwrap();
        assert!(close(slope, (1.5 + 5.0 / 3.0) / 2.0, 1e-12));
    }

    #[test]
    fn mann_kendall_on_monotone_series() {
        let values: Vec<f64> = (0..20).map(f64::from).collect();
        let mk = mann_kendall(&values);
        assert_eq!(mk.s, 190.0); // every one of the 20*19/2 pairs is concordant
        assert!(close(mk.var_s, 20.0 * 19.0 * 45.0 / 18.0, 1e-9));
        assert!(mk.p_increasing() < 1e-6);
        let falling: Vec<f64> = values.iter().rev().copied().collect();
        assert!(mann_kendall(&falling).p_increasing() > 0.999_999);
    }

    #[test]
    fn mann_kendall_on_random_series_is_not_significant() {
        // A fixed pseudo-random permutation-like sequence without trend.
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let values: Vec<f64> = (0..200)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state % 1000) as f64
            })
            .collect();
        let mk = mann_kendall(&values);
        assert!(mk.z().abs() < 2.5, "z = {}", mk.z());
        assert!(mk.p_increasing() > 0.005);
    }

    #[test]
    fn mann_kendall_variance_accounts_for_ties() {
        let mk = mann_kendall(&[1.0, 1.0, 1.0, 2.0]);
        assert_eq!(mk.s, 3.0);
        // n=4: 4*3*13 = 156; one tie group of 3: 3*2*11 = 66 -> (156 - 66)/18 = 5
        assert!(close(mk.var_s, 5.0, 1e-12));
        assert_eq!(mann_kendall(&[5.0; 10]).var_s, 0.0);
        assert_eq!(mann_kendall(&[5.0; 10]).p_increasing(), 1.0);
    }

    #[test]
    fn hamed_rao_inflates_variance_for_correlated_residuals() {
        let times: Vec<f64> = (0..120).map(f64::from).collect();
        // Slow sine residual: neighbours are strongly correlated.
        let correlated: Vec<f64> = times.iter().map(|t| (t / 12.0).sin()).collect();
        assert!(hamed_rao_factor(&times, &correlated, 0.0) > 3.0);
        // Alternating residual: negatively correlated, clamped to 1.
        let alternating: Vec<f64> = times
            .iter()
            .map(|t| if (*t as i64) % 2 == 0 { 1.0 } else { -1.0 })
            .collect();
        assert_eq!(hamed_rao_factor(&times, &alternating, 0.0), 1.0);
    }

    #[test]
    fn slope_interval_brackets_the_slope_and_narrows_with_data() {
        let make = |n: usize| {
            let mut state = 0x9e37_79b9_7f4a_7c15_u64;
            let times: Vec<f64> = (0..n).map(|i| i as f64).collect();
            let values: Vec<f64> = times
                .iter()
                .map(|t| {
                    state ^= state << 13;
                    state ^= state >> 7;
                    state ^= state << 17;
                    0.5 * t + (state % 1000) as f64 / 100.0
                })
                .collect();
            let mut slopes = Vec::new();
            pairwise_slopes(&times, &values, &mut slopes);
            let mk = mann_kendall(&values);
            slope_interval(&mut slopes, mk.var_s, 1.96).unwrap()
        };
        let small = make(30);
        let large = make(300);
        for estimate in [small, large] {
            assert!(
                estimate.lower <= 0.5 && 0.5 <= estimate.upper,
                "{estimate:?}"
            );
            assert!(estimate.lower < estimate.slope && estimate.slope < estimate.upper);
        }
        assert!(large.upper - large.lower < small.upper - small.lower);
    }

    #[test]
    fn ranks_share_ties() {
        assert_eq!(ranks(&[10.0, 20.0, 10.0, 30.0]), vec![1.5, 3.0, 1.5, 4.0]);
    }
}
