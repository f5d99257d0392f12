//! Running statistics behind SUM, MIN, MAX, STD_DEV, VARIANCE and TREND:
//! slice kernels for sums and extrema, and mergeable central moments.
//!
//! Point-by-point updates use Welford's method. Slices are reduced with two
//! passes around their first value and then combined with the pairwise
//! update of Chan, Golub and LeVeque, which is Welford's update generalised
//! to a batch, so no path ever computes E[x²] − E[x]².

/// Number of independent partial results in the slice kernels. Separate
/// lanes break the dependency chain of a serial sum so the compiler can
/// vectorise the loop.
const LANES: usize = 8;

const NANOS_PER_SECOND: f64 = 1e9;

/// Maximum number of points that [`Trend::push_run`] converts at a time.
/// The 8 KiB buffer fits a typical 32 KiB L1 data cache.
const TREND_CHUNK: usize = 1024;

/// Sums `term(x)` over `values` in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum(values: &[f64], term: impl Fn(f64) -> f64) -> f64 {
    let mut lanes = [0.0; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane += term(x);
        }
    }

    let mut total: f64 = lanes.iter().sum();
    for &x in chunks.remainder() {
        total += term(x);
    }
    total
}

/// Sums `term(x, y)` over pairs of `xs` and `ys` in [`LANES`] partial sums.
#[inline(always)]
fn lane_sum_pairs(xs: &[f64], ys: &[f64], term: impl Fn(f64, f64) -> f64) -> f64 {
    let mut lanes = [0.0; LANES];
    let mut x_chunks = xs.chunks_exact(LANES);
    let mut y_chunks = ys.chunks_exact(LANES);
    for (x_chunk, y_chunk) in (&mut x_chunks).zip(&mut y_chunks) {
        for ((lane, &x), &y) in lanes.iter_mut().zip(x_chunk).zip(y_chunk) {
            *lane += term(x, y);
        }
    }

    let mut total: f64 = lanes.iter().sum();
    for (&x, &y) in x_chunks.remainder().iter().zip(y_chunks.remainder()) {
        total += term(x, y);
    }
    total
}

pub(super) fn sum(values: &[f64]) -> f64 {
    lane_sum(values, |x| x)
}

/// Minimum of `values`, or +∞ for an empty slice. Values are never NaN.
pub(super) fn min(values: &[f64]) -> f64 {
    let mut lanes = [f64::INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            if x < *lane {
                *lane = x;
            }
        }
    }
    chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f64::INFINITY, |acc, &x| if x < acc { x } else { acc })
}

/// Maximum of `values`, or −∞ for an empty slice. Values are never NaN.
pub(super) fn max(values: &[f64]) -> f64 {
    let mut lanes = [f64::NEG_INFINITY; LANES];
    let mut chunks = values.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            if x > *lane {
                *lane = x;
            }
        }
    }
    chunks
        .remainder()
        .iter()
        .chain(&lanes)
        .fold(f64::NEG_INFINITY, |acc, &x| if x > acc { x } else { acc })
}

/// Count, mean and sum of squared deviations from the mean (M2) of a
/// sample. Any infinite value makes `mean` infinite or NaN and `m2` NaN,
/// as IEEE arithmetic dictates.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub(super) struct Moments {
    pub count: u64,
    pub mean: f64,
    pub m2: f64,
}

impl Moments {
    /// Adds one value with Welford's update.
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Computes the moments of a slice in two passes. Deviations are taken
    /// from the first value, so a slice of equal values has an M2 of
    /// exactly 0 and a large common offset does not cost precision.
    pub fn of_slice(values: &[f64]) -> Moments {
        let Some(&shift) = values.first() else {
            return Moments::default();
        };
        let n = values.len() as f64;
        let mean_offset = lane_sum(values, |x| x - shift) / n;
        let m2 = lane_sum(values, |x| {
            let deviation = (x - shift) - mean_offset;
            deviation * deviation
        });
        Moments {
            count: values.len() as u64,
            mean: shift + mean_offset,
            m2,
        }
    }

    /// Combines the moments of two disjoint samples (Chan, Golub and
    /// LeVeque's pairwise update).
    pub fn merge(&mut self, other: &Moments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }

        let count = self.count + other.count;
        let (n_self, n_other, n) = (self.count as f64, other.count as f64, count as f64);
        let delta = other.mean - self.mean;
        self.mean += delta * (n_other / n);
        self.m2 += other.m2 + delta * delta * (n_self * n_other / n);
        self.count = count;
    }

    /// Sample variance with n − 1 in the denominator: `None` for no values
    /// and 0 for one value.
    pub fn sample_variance(&self) -> Option<f64> {
        match self.count {
            0 => None,
            1 => Some(0.0),
            n => Some(self.m2 / (n - 1) as f64),
        }
    }
}

/// Co-moments of paired samples (x, y): count, means, M2 of x and the sum
/// of products of deviations C = Σ (x − x̄)(y − ȳ).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct CoMoments {
    count: u64,
    mean_x: f64,
    mean_y: f64,
    m2_x: f64,
    c_xy: f64,
}

impl CoMoments {
    /// Adds one pair with the co-moment form of Welford's update.
    fn push(&mut self, x: f64, y: f64) {
        self.count += 1;
        let n = self.count as f64;
        let delta_x = x - self.mean_x;
        self.mean_x += delta_x / n;
        self.mean_y += (y - self.mean_y) / n;
        self.m2_x += delta_x * (x - self.mean_x);
        self.c_xy += delta_x * (y - self.mean_y);
    }

    /// Computes the co-moments of paired slices of equal length in two
    /// passes, with deviations taken from the first pair.
    fn of_slices(xs: &[f64], ys: &[f64]) -> CoMoments {
        debug_assert_eq!(xs.len(), ys.len());
        let (Some(&shift_x), Some(&shift_y)) = (xs.first(), ys.first()) else {
            return CoMoments::default();
        };
        let n = xs.len() as f64;
        let mean_offset_x = lane_sum(xs, |x| x - shift_x) / n;
        let mean_offset_y = lane_sum(ys, |y| y - shift_y) / n;
        let m2_x = lane_sum(xs, |x| {
            let deviation = (x - shift_x) - mean_offset_x;
            deviation * deviation
        });
        let c_xy = lane_sum_pairs(xs, ys, |x, y| {
            ((x - shift_x) - mean_offset_x) * ((y - shift_y) - mean_offset_y)
        });
        CoMoments {
            count: xs.len() as u64,
            mean_x: shift_x + mean_offset_x,
            mean_y: shift_y + mean_offset_y,
            m2_x,
            c_xy,
        }
    }

    /// Combines the co-moments of two disjoint samples.
    fn merge(&mut self, other: &CoMoments) {
        if other.count == 0 {
            return;
        }
        if self.count == 0 {
            *self = *other;
            return;
        }

        let count = self.count + other.count;
        let (n_self, n_other, n) = (self.count as f64, other.count as f64, count as f64);
        let delta_x = other.mean_x - self.mean_x;
        let delta_y = other.mean_y - self.mean_y;
        let weight = n_self * n_other / n;
        self.mean_x += delta_x * (n_other / n);
        self.mean_y += delta_y * (n_other / n);
        self.m2_x += other.m2_x + delta_x * delta_x * weight;
        self.c_xy += other.c_xy + delta_x * delta_y * weight;
        self.count = count;
    }
}

/// State of TREND: the least-squares slope of value over time.
///
/// Times enter as nanoseconds relative to `origin_ns`, the first time seen,
/// so the co-moments never see squares of raw epoch timestamps. The slope
/// is converted to seconds only at the end, which keeps a division out of
/// the per-point loop.
#[derive(Debug, Clone, Default, PartialEq)]
pub(super) struct Trend {
    origin_ns: i64,
    min_time_ns: i64,
    max_time_ns: i64,
    moments: CoMoments,
}

/// Nanoseconds from `origin_ns` to `time_ns` as f64, with an exact
/// subtraction for any pair of i64 timestamps.
fn nanos_between(origin_ns: i64, time_ns: i64) -> f64 {
    match time_ns.checked_sub(origin_ns) {
        Some(offset_ns) => offset_ns as f64,
        None => (time_ns as i128 - origin_ns as i128) as f64,
    }
}

impl Trend {
    fn observe_times(&mut self, earliest_ns: i64, latest_ns: i64) {
        if self.moments.count == 0 {
            self.origin_ns = earliest_ns;
            self.min_time_ns = earliest_ns;
            self.max_time_ns = latest_ns;
        } else {
            self.min_time_ns = self.min_time_ns.min(earliest_ns);
            self.max_time_ns = self.max_time_ns.max(latest_ns);
        }
    }

    pub fn push(&mut self, time_ns: i64, value: f64) {
        self.observe_times(time_ns, time_ns);
        self.moments
            .push(nanos_between(self.origin_ns, time_ns), value);
    }

    /// Adds points whose times are in ascending order.
    pub fn push_run(&mut self, times_ns: &[i64], values: &[f64]) {
        debug_assert_eq!(times_ns.len(), values.len());
        let (Some(&earliest), Some(&latest)) = (times_ns.first(), times_ns.last()) else {
            return;
        };
        self.observe_times(earliest, latest);

        // Times are ascending, so if both ends are within i64 range of the
        // origin, every time in between is too and the i64 subtraction,
        // which vectorises, is exact.
        let origin = self.origin_ns;
        let fits_i64 =
            earliest.checked_sub(origin).is_some() && latest.checked_sub(origin).is_some();

        let mut offsets = [0.0; TREND_CHUNK];
        for (times, chunk_values) in times_ns.chunks(TREND_CHUNK).zip(values.chunks(TREND_CHUNK)) {
            let offsets = &mut offsets[..times.len()];
            if fits_i64 {
                for (slot, &time) in offsets.iter_mut().zip(times) {
                    *slot = (time - origin) as f64;
                }
            } else {
                for (slot, &time) in offsets.iter_mut().zip(times) {
                    *slot = nanos_between(origin, time);
                }
            }
            self.moments
                .merge(&CoMoments::of_slices(offsets, chunk_values));
        }
    }

    pub fn merge(&mut self, other: &Trend) {
        if other.moments.count == 0 {
            return;
        }
        if self.moments.count == 0 {
            *self = other.clone();
            return;
        }

        let mut shifted = other.moments;
        shifted.mean_x += nanos_between(self.origin_ns, other.origin_ns);
        self.moments.merge(&shifted);
        self.min_time_ns = self.min_time_ns.min(other.min_time_ns);
        self.max_time_ns = self.max_time_ns.max(other.max_time_ns);
    }

    /// Slope in value units per second, or `None` with fewer than two
    /// points or when every point has the same time.
    pub fn slope(&self) -> Option<f64> {
        if self.moments.count < 2
            || self.min_time_ns == self.max_time_ns
            || self.moments.m2_x <= 0.0
        {
            return None;
        }
        Some(self.moments.c_xy / self.moments.m2_x * NANOS_PER_SECOND)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assert_close(actual: f64, expected: f64, tolerance: f64) {
        assert!(
            (actual - expected).abs() <= tolerance,
            "expected {expected}, got {actual}"
        );
    }

    #[test]
    fn slice_kernels_match_serial_results() {
        // Lengths around multiples of LANES exercise the remainder loops.
        for len in [0usize, 1, 7, 8, 9, 17, 100] {
            let values: Vec<f64> = (0..len).map(|i| ((i * 37) % 11) as f64 - 5.0).collect();
            let expected_sum: f64 = values.iter().sum();
            let expected_min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let expected_max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);

            assert_eq!(sum(&values), expected_sum, "sum, len {len}");
            assert_eq!(min(&values), expected_min, "min, len {len}");
            assert_eq!(max(&values), expected_max, "max, len {len}");
        }
    }

    #[test]
    fn welford_push_matches_slice_moments() {
        let values = [3.0, -1.5, 8.25, 0.0, 4.0, 4.0, 12.5];
        let mut pushed = Moments::default();
        for &x in &values {
            pushed.push(x);
        }
        let sliced = Moments::of_slice(&values);

        // Mean 4.1785714..., M2 computed by hand from the deviations.
        let mean = values.iter().sum::<f64>() / 7.0;
        let m2: f64 = values.iter().map(|x| (x - mean) * (x - mean)).sum();
        assert_eq!(pushed.count, 7);
        assert_close(pushed.mean, mean, 1e-12);
        assert_close(pushed.m2, m2, 1e-9);
        assert_eq!(sliced.count, 7);
        assert_close(sliced.mean, mean, 1e-12);
        assert_close(sliced.m2, m2, 1e-9);
    }

    #[test]
    fn moments_merge_equals_single_pass() {
        let values: Vec<f64> = (0..50).map(|i| (i as f64).sin() * 100.0).collect();
        let whole = Moments::of_slice(&values);
        let mut merged = Moments::of_slice(&values[..13]);
        merged.merge(&Moments::of_slice(&values[13..]));
        merged.merge(&Moments::default());

        assert_eq!(merged.count, whole.count);
        assert_close(merged.mean, whole.mean, 1e-12);
        assert_close(merged.m2, whole.m2, 1e-9);
    }

    #[test]
    fn slice_of_equal_values_has_zero_m2() {
        let values = [0.1; 3];
        assert_eq!(Moments::of_slice(&values).m2, 0.0);
        assert_eq!(Moments::of_slice(&values).mean, 0.1);
    }

    #[test]
    fn trend_push_and_run_agree() {
        let times: Vec<i64> = (0..5)
            .map(|i| 1_700_000_000_000_000_000 + i * 500_000_000)
            .collect();
        let values = [1.0, 2.0, 2.5, 4.0, 5.5];
        let mut pushed = Trend::default();
        for (&t, &v) in times.iter().zip(&values) {
            pushed.push(t, v);
        }
        let mut run = Trend::default();
        run.push_run(&times, &values);

        // x = 0, 0.5, 1, 1.5, 2 s, so x̄ = 1 and Σ(x−x̄)² = 2.5.
        // Σ(x−x̄)(y−ȳ) with ȳ = 3: (−1)(−2) + (−0.5)(−1) + 0 + 0.5·1 + 1·2.5 = 5.5.
        assert_close(pushed.slope().unwrap(), 5.5 / 2.5, 1e-12);
        assert_close(run.slope().unwrap(), 5.5 / 2.5, 1e-12);
    }

    #[test]
    fn trend_merge_shifts_origin() {
        let mut early = Trend::default();
        early.push_run(&[0, 1_000_000_000], &[10.0, 12.0]);
        let mut late = Trend::default();
        late.push_run(&[2_000_000_000, 3_000_000_000], &[14.0, 16.0]);
        early.merge(&late);

        assert_close(early.slope().unwrap(), 2.0, 1e-12);
    }

    #[test]
    fn trend_handles_extreme_time_span() {
        let mut trend = Trend::default();
        trend.push_run(&[i64::MIN, i64::MAX], &[0.0, 1.0]);
        let span_seconds = (i64::MAX as f64 - i64::MIN as f64) / 1e9;

        assert_close(trend.slope().unwrap(), 1.0 / span_seconds, 1e-25);
    }
}
