//! A mergeable quantile sketch with relative accuracy, in the style of
//! DDSketch, for live windows that outgrow their exact value cap.
//!
//! [`super::quantile`] switches an accumulator's kept values into a
//! [`QuantileSketch`] once they pass the cap, and the live-window
//! aggregator merges sketches of adjacent windows.

use std::collections::VecDeque;
use std::sync::LazyLock;

/// Relative accuracy α of [`QuantileSketch`].
pub const SKETCH_RELATIVE_ACCURACY: f64 = 0.01;

/// Constants of the logarithmic bucket mapping.
struct LogMapping {
    ln_gamma: f64,
    inverse_ln_gamma: f64,
    /// ln(2 / (1 + γ)): the representative of bucket i is γ^i · 2/(1 + γ).
    ln_representative_factor: f64,
}

static MAPPING: LazyLock<LogMapping> = LazyLock::new(|| {
    // The mapping uses an α a hair below the promised one. ln and exp round
    // by about 1e-13 relative for the largest bucket indexes, and this
    // margin of 1e-10 keeps such rounding from pushing an estimate past α.
    let alpha = SKETCH_RELATIVE_ACCURACY * (1.0 - 1e-8);
    let ln_gamma = (2.0 * alpha / (1.0 - alpha)).ln_1p();
    let gamma = ln_gamma.exp();
    LogMapping {
        ln_gamma,
        inverse_ln_gamma: 1.0 / ln_gamma,
        ln_representative_factor: (2.0 / (1.0 + gamma)).ln(),
    }
});

/// Bucket index of a positive normal magnitude. Bucket i covers the
/// magnitudes in (γ^(i−1), γ^i].
fn bucket_index(magnitude: f64) -> i32 {
    // For normal f64 magnitudes |ln x| < 710, so the index stays within
    // about ±36,000 and fits an i32.
    (magnitude.ln() * MAPPING.inverse_ln_gamma).ceil() as i32
}

/// Representative magnitude of bucket `index`, within α of every magnitude
/// in the bucket. It is capped at `f64::MAX` for the topmost bucket.
fn bucket_representative(index: i32) -> f64 {
    (index as f64 * MAPPING.ln_gamma + MAPPING.ln_representative_factor)
        .exp()
        .min(f64::MAX)
}

/// Counts per bucket index over a contiguous index range.
#[derive(Debug, Clone, Default, PartialEq)]
struct LogBuckets {
    first_index: i32,
    counts: VecDeque<u64>,
}

impl LogBuckets {
    fn add(&mut self, index: i32, count: u64) {
        if self.counts.is_empty() {
            self.first_index = index;
            self.counts.push_back(count);
            return;
        }

        if index < self.first_index {
            for _ in index..self.first_index {
                self.counts.push_front(0);
            }
            self.first_index = index;
        }
        let position = (index - self.first_index) as usize;
        if position >= self.counts.len() {
            self.counts.resize(position + 1, 0);
        }
        self.counts[position] += count;
    }

    /// Non-empty buckets as (index, count) in ascending index order.
    fn iter(&self) -> impl DoubleEndedIterator<Item = (i32, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, count)| **count > 0)
            .map(|(position, &count)| (self.first_index + position as i32, count))
    }

    fn merge(&mut self, other: &LogBuckets) {
        for (index, count) in other.iter() {
            self.add(index, count);
        }
    }
}

/// A mergeable quantile sketch with relative accuracy α =
/// [`SKETCH_RELATIVE_ACCURACY`] (1 %).
///
/// Positive and negative values go to separate logarithmic bucket stores
/// keyed by magnitude. Zeros, and subnormal values with a magnitude below
/// `f64::MIN_POSITIVE`, go to a zero count. +∞ and −∞ are counted at the
/// two extremes. The sketch also keeps the exact minimum and maximum.
///
/// Error bound: let x₀ ≤ x₁ ≤ … ≤ x₍ₙ₋₁₎ be the n added values in
/// ascending order and k = ⌊p·(n − 1)/100⌋, the lower of the two ranks
/// that exact percentile interpolation uses. Then `percentile(p)` returns
/// q̂ with |q̂ − x_k| ≤ α·|x_k|, with these exceptions and sharpenings:
/// - k = 0 and k = n − 1 return the exact minimum and maximum.
/// - An infinite x_k is returned exactly.
/// - A subnormal x_k is estimated as 0, an absolute error below 2.3e-308.
///
/// The sketch does not interpolate between ranks. The bound holds after
/// any sequence of [`QuantileSketch::merge`] calls, because merging adds
/// bucket counts and yields the sketch of the combined values.
///
/// Size: one u64 per bucket between the smallest and largest index seen
/// in each store. Values spanning a factor of 10 need about 116 buckets,
/// and the whole normal f64 range at most about 72,000 per store.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileSketch {
    positive: LogBuckets,
    negative: LogBuckets,
    zero_count: u64,
    negative_infinity_count: u64,
    positive_infinity_count: u64,
    count: u64,
    min: f64,
    max: f64,
}

impl Default for QuantileSketch {
    fn default() -> Self {
        QuantileSketch::new()
    }
}

impl QuantileSketch {
    pub fn new() -> QuantileSketch {
        QuantileSketch {
            positive: LogBuckets::default(),
            negative: LogBuckets::default(),
            zero_count: 0,
            negative_infinity_count: 0,
            positive_infinity_count: 0,
            count: 0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
        }
    }

    /// Adds one value. NaN is ignored because ingest rejects it and it
    /// has no rank.
    pub fn add(&mut self, value: f64) {
        if value.is_nan() {
            return;
        }
        self.count += 1;
        self.min = self.min.min(value);
        self.max = self.max.max(value);

        if value == f64::INFINITY {
            self.positive_infinity_count += 1;
        } else if value == f64::NEG_INFINITY {
            self.negative_infinity_count += 1;
        } else if value.abs() < f64::MIN_POSITIVE {
            self.zero_count += 1;
        } else if value > 0.0 {
            self.positive.add(bucket_index(value), 1);
        } else {
            self.negative.add(bucket_index(-value), 1);
        }
    }

    /// Adds the values counted in `other`.
    pub fn merge(&mut self, other: &QuantileSketch) {
        self.positive.merge(&other.positive);
        self.negative.merge(&other.negative);
        self.zero_count += other.zero_count;
        self.negative_infinity_count += other.negative_infinity_count;
        self.positive_infinity_count += other.positive_infinity_count;
        self.count += other.count;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// Number of values added, NaN excluded.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Estimates the value at rank ⌊p·(n − 1)/100⌋ within the bound stated
    /// on the type. Returns `None` when the sketch is empty or `p` is not
    /// in 0..=100.
    pub fn percentile(&self, p: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=100.0).contains(&p) {
            return None;
        }
        let last_rank = self.count - 1;
        let rank = ((p * last_rank as f64 / 100.0).floor() as u64).min(last_rank);
        if rank == 0 {
            return Some(self.min);
        }
        if rank == last_rank {
            return Some(self.max);
        }

        // Walk the stores in ascending value order: −∞, negative values by
        // descending magnitude, zeros, positive values, +∞.
        let mut seen = self.negative_infinity_count;
        if rank < seen {
            return Some(f64::NEG_INFINITY);
        }
        for (index, count) in self.negative.iter().rev() {
            seen += count;
            if rank < seen {
                return Some(self.clamp(-bucket_representative(index)));
            }
        }
        seen += self.zero_count;
        if rank < seen {
            return Some(self.clamp(0.0));
        }
        for (index, count) in self.positive.iter() {
            seen += count;
            if rank < seen {
                return Some(self.clamp(bucket_representative(index)));
            }
        }
        Some(f64::INFINITY)
    }

    /// Moves an estimate into [min, max]. The true value lies there too, so
    /// this never increases the error.
    fn clamp(&self, estimate: f64) -> f64 {
        estimate.max(self.min).min(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// SplitMix64, a small deterministic generator for test data.
    struct SplitMix64(u64);

    impl SplitMix64 {
        fn next_u64(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^ (z >> 31)
        }

        /// Uniform in [0, 1).
        fn next_f64(&mut self) -> f64 {
            (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
        }
    }

    fn lower_rank(p: f64, n: usize) -> usize {
        let last_rank = (n - 1) as u64;
        ((p * last_rank as f64 / 100.0).floor() as u64).min(last_rank) as usize
    }

    fn assert_within_bound(estimate: f64, exact: f64, context: &str) {
        if exact.is_infinite() {
            assert_eq!(estimate, exact, "{context}");
        } else {
            let error = (estimate - exact).abs();
            assert!(
                error <= SKETCH_RELATIVE_ACCURACY * exact.abs(),
                "{context}: estimate {estimate}, exact {exact}, relative error {}",
                error / exact.abs()
            );
        }
    }

    #[test]
    fn bound_holds_on_million_values() {
        let mut random = SplitMix64(42);
        let mut values = Vec::with_capacity(1_000_000);
        for i in 0..1_000_000 {
            let value = match i % 1000 {
                0 => 0.0,
                1 if i < 20_000 => f64::INFINITY,
                2 if i < 20_000 => f64::NEG_INFINITY,
                _ => {
                    // Magnitudes log-uniform over 1e-12..1e12, two thirds positive.
                    let magnitude = (random.next_f64() * 55.0 - 27.6).exp();
                    if random.next_f64() < 2.0 / 3.0 {
                        magnitude
                    } else {
                        -magnitude
                    }
                }
            };
            values.push(value);
        }

        let mut sketch = QuantileSketch::new();
        for &value in &values {
            sketch.add(value);
        }
        values.sort_by(f64::total_cmp);

        assert_eq!(sketch.count(), 1_000_000);
        for permille in 0..=1000 {
            let p = permille as f64 / 10.0;
            let exact = values[lower_rank(p, values.len())];
            let estimate = sketch.percentile(p).unwrap();
            assert_within_bound(estimate, exact, &format!("p = {p}"));
        }
        // Ranks next to the infinities and the zeros.
        for p in [0.0001, 0.0002, 0.1998, 0.2, 0.2002, 99.8, 99.998, 99.9999] {
            let exact = values[lower_rank(p, values.len())];
            assert_within_bound(sketch.percentile(p).unwrap(), exact, &format!("p = {p}"));
        }
    }

    #[test]
    fn bound_holds_at_bucket_edges() {
        // Powers of γ lie on bucket boundaries, where the representative
        // error is largest and rounding decides the bucket.
        let gamma = MAPPING.ln_gamma.exp();
        for index in [-35_000, -1000, -1, 0, 1, 2, 57, 1000, 35_000] {
            let edge = gamma.powi(index);
            for value in [edge, edge * (1.0 + 1e-15), edge * (1.0 - 1e-15), -edge] {
                let mut sketch = QuantileSketch::new();
                // Pad with a smaller and a larger value so the middle rank
                // is estimated from its bucket, not from min or max.
                sketch.add(value - 3.0 * value.abs());
                sketch.add(value);
                sketch.add(value + 3.0 * value.abs());
                let estimate = sketch.percentile(50.0).unwrap();
                assert_within_bound(estimate, value, &format!("value {value:e}"));
            }
        }
    }

    #[test]
    fn extremes_are_exact() {
        let mut sketch = QuantileSketch::new();
        for value in [3.3, -7.25, 1e300, 0.5] {
            sketch.add(value);
        }
        assert_eq!(sketch.percentile(0.0), Some(-7.25));
        assert_eq!(sketch.percentile(100.0), Some(1e300));
    }

    #[test]
    fn infinities_counted_at_extremes() {
        let mut sketch = QuantileSketch::new();
        for value in [
            f64::NEG_INFINITY,
            f64::NEG_INFINITY,
            1.0,
            f64::INFINITY,
            f64::INFINITY,
        ] {
            sketch.add(value);
        }
        // Ranks 0..=4: −∞, −∞, 1, +∞, +∞.
        assert_eq!(sketch.percentile(25.0), Some(f64::NEG_INFINITY));
        assert_eq!(sketch.percentile(75.0), Some(f64::INFINITY));
        assert_within_bound(sketch.percentile(50.0).unwrap(), 1.0, "middle rank");
    }

    #[test]
    fn subnormals_count_as_zero() {
        let mut sketch = QuantileSketch::new();
        for value in [-1.0, 1e-310, -0.0, 5e-324, 1.0] {
            sketch.add(value);
        }
        assert_eq!(sketch.percentile(50.0), Some(0.0));
        assert_eq!(sketch.percentile(25.0), Some(0.0));
    }

    #[test]
    fn largest_finite_values_within_bound() {
        let mut sketch = QuantileSketch::new();
        for value in [f64::MAX, f64::MAX, f64::MAX, -f64::MAX, -f64::MAX] {
            sketch.add(value);
        }
        // Ranks 1 and 3 are estimated from their buckets, not from min or max.
        assert_within_bound(sketch.percentile(75.0).unwrap(), f64::MAX, "rank 3");
        assert_within_bound(sketch.percentile(25.0).unwrap(), -f64::MAX, "rank 1");
    }

    #[test]
    fn empty_or_invalid_percentile_is_none() {
        let mut sketch = QuantileSketch::new();
        assert_eq!(sketch.percentile(50.0), None);
        sketch.add(1.0);
        assert_eq!(sketch.percentile(-1.0), None);
        assert_eq!(sketch.percentile(100.5), None);
        assert_eq!(sketch.percentile(f64::NAN), None);
        assert_eq!(sketch.percentile(50.0), Some(1.0));
    }

    #[test]
    fn nan_is_ignored() {
        let mut sketch = QuantileSketch::new();
        sketch.add(f64::NAN);
        assert_eq!(sketch.count(), 0);
    }

    #[test]
    fn merge_equals_sketch_of_union() {
        let mut random = SplitMix64(7);
        let values: Vec<f64> = (0..10_000)
            .map(|_| random.next_f64() * 2000.0 - 500.0)
            .collect();

        let mut whole = QuantileSketch::new();
        values.iter().for_each(|&v| whole.add(v));
        let mut left = QuantileSketch::new();
        values[..3000].iter().for_each(|&v| left.add(v));
        let mut right = QuantileSketch::new();
        values[3000..].iter().for_each(|&v| right.add(v));
        left.merge(&right);

        assert_eq!(left, whole);
    }
}
