// Points of the `legacy-blocks` data directory, which was written by the
// block format before frame-of-reference and byte-plane encodings. Both
// that directory's writer and the compatibility test in `tests.rs` take
// the points from here through `include!`, so the includer must import
// `Arc`, `Column`, `SeriesWrite`, `TagSet` and `WriteBatch`.

/// Returns a bit pattern of point `i` from a fixed integer hash, so the
/// points do not depend on floating-point library functions.
fn legacy_hash(i: u64) -> u64 {
    let mut z = i.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z ^ (z >> 31)
}

fn legacy_series(metric: &str, host: &str, times_ns: Vec<i64>, values: Column) -> SeriesWrite {
    SeriesWrite {
        metric: metric.to_owned(),
        tags: TagSet::from_pairs(vec![("host".to_owned(), host.to_owned())]),
        first_index: 0,
        times_ns,
        values,
    }
}

/// Returns one series per value encoding of the old format: decimal,
/// Gorilla and raw doubles, varint and packed integers, bools, strings,
/// and timestamps with exact, jittered and single-point spacing.
fn legacy_fixture_batch() -> WriteBatch {
    const START_NS: i64 = 1_700_000_000_000_000_000;
    const STEP_NS: i64 = 10_000_000_000;
    let regular: Vec<i64> = (0..300).map(|i| START_NS + i * STEP_NS).collect();
    let jittered: Vec<i64> = (0..300u64)
        .map(|i| START_NS + i as i64 * STEP_NS + (legacy_hash(i) % 11) as i64 * 1_000_000)
        .collect();

    let decimals = (0..300u64)
        .map(|i| 20.0 + (legacy_hash(i) % 101) as f64 / 100.0)
        .collect();
    let smooth = (0..300u64)
        .map(|i| 20.0 + (legacy_hash(i) >> 11) as f64 / (1u64 << 53) as f64 / 7.0)
        .collect();
    let random = (0..300u64)
        .map(|i| f64::from_bits(legacy_hash(i) >> 2))
        .collect();
    let specials = vec![-0.0, f64::from_bits(1), f64::MIN_POSITIVE, f64::MAX, -1.5];
    let counter = (0..300u64)
        .scan(0i64, |total, i| {
            *total += (legacy_hash(i) % 100) as i64;
            Some(*total)
        })
        .collect();
    let extremes = vec![i64::MIN, i64::MAX, 0, -1, i64::MIN];
    let flags = (0..300u64)
        .map(|i| !legacy_hash(i).is_multiple_of(7))
        .collect();
    let words = (0..300u64)
        .map(|i| Arc::from(["ok", "failed", ""][(legacy_hash(i) % 3) as usize]))
        .collect();

    WriteBatch {
        series: vec![
            legacy_series("gauge", "decimal", regular.clone(), Column::F64(decimals)),
            legacy_series("gauge", "smooth", jittered.clone(), Column::F64(smooth)),
            legacy_series("gauge", "random", regular.clone(), Column::F64(random)),
            legacy_series("gauge", "specials", regular[..5].to_vec(), Column::F64(specials)),
            legacy_series("gauge", "single", vec![START_NS], Column::F64(vec![0.5])),
            legacy_series("counter", "a", jittered.clone(), Column::I64(counter)),
            legacy_series("counter", "extremes", regular[..5].to_vec(), Column::I64(extremes)),
            legacy_series("up", "a", regular.clone(), Column::Bool(flags)),
            legacy_series("state", "a", jittered, Column::Str(words)),
        ],
    }
}
