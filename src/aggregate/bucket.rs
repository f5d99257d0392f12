//! Time buckets: maps a timestamp to the half-open range [start, end) of
//! its bucket, either a fixed step aligned to the Unix epoch or a calendar
//! unit in a time zone.
//!
//! The query engine calls [`Bucketer::bucket_of`] for every point it
//! aggregates, and [`super::fill::fill`] walks the bucket sequence with
//! [`Bucketer::next_start`]. Timestamps are nanoseconds since the Unix
//! epoch (`crate::model::TimestampNs`). Results saturate at the i64 bounds
//! instead of overflowing.

use chrono::{
    DateTime, Datelike, Days, LocalResult, Months, NaiveDate, NaiveDateTime, NaiveTime, Offset,
    TimeZone,
};
use chrono_tz::Tz;

const NANOS_PER_SECOND: i64 = 1_000_000_000;

/// Half the width of the search for the end of a DST gap, in seconds. UTC
/// offsets are below 24 hours in magnitude, so the instant of any local
/// time lies within 24 hours of the same wall-clock reading in UTC.
const GAP_SEARCH_SECONDS: i64 = 26 * 3600;

/// Calendar unit of [`Bucketer::calendar`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Granularity {
    Second,
    Minute,
    Hour,
    /// Local midnight to the next local midnight: 23 or 25 hours on DST
    /// transition days.
    Day,
    /// ISO week, from Monday 00:00 local time.
    Week,
    /// Calendar month in local time.
    Month,
}

impl Granularity {
    /// Width of the sub-day units. Day, Week and Month have none.
    fn fixed_width_ns(self) -> Option<i64> {
        match self {
            Granularity::Second => Some(NANOS_PER_SECOND),
            Granularity::Minute => Some(60 * NANOS_PER_SECOND),
            Granularity::Hour => Some(3600 * NANOS_PER_SECOND),
            Granularity::Day | Granularity::Week | Granularity::Month => None,
        }
    }
}

/// The calendar units whose length varies.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CalendarUnit {
    Day,
    Week,
    Month,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Rule {
    /// Fixed width aligned to the Unix epoch.
    Fixed {
        width_ns: i64,
    },
    /// Fixed width aligned to local time: start = t − (t + offset(t)) mod
    /// width, so a DST transition keeps every bucket at the same width.
    LocalFixed {
        width_ns: i64,
        tz: Tz,
    },
    Calendar {
        unit: CalendarUnit,
        tz: Tz,
    },
}

/// Maps timestamps to buckets and caches the last bucket, so points that
/// arrive sorted cost one range check each and no time zone lookup.
///
/// Every bucket is a half-open range [start, end). The exception is the
/// bucket that contains `i64::MAX`: its end saturates at `i64::MAX` and
/// then includes that instant.
///
/// NOTE: sub-day buckets next to a transition overlap when the zone's
/// offset changes by an amount that is not a multiple of the unit, such as
/// the 30-minute DST shift of Australia/Lord_Howe with hourly buckets. The
/// cause is that alignment follows the offset at each timestamp.
#[derive(Debug, Clone)]
pub struct Bucketer {
    rule: Rule,
    /// Range in which every timestamp maps to this same bucket.
    cached: Option<(i64, i64)>,
    /// Number of bucket computations that missed the cache.
    cache_misses: u64,
}

impl Bucketer {
    /// Creates the `step` bucketer: fixed-width buckets aligned to the Unix
    /// epoch. Fails unless `width_ns` is greater than 0.
    pub fn fixed(width_ns: i64) -> Result<Bucketer, String> {
        if width_ns <= 0 {
            return Err(format!(
                "invalid bucket width {width_ns} ns: the width must be greater than 0"
            ));
        }
        Ok(Bucketer::with_rule(Rule::Fixed { width_ns }))
    }

    /// Creates a bucketer for calendar units in time zone `tz`.
    pub fn calendar(granularity: Granularity, tz: Tz) -> Bucketer {
        let rule = match (granularity.fixed_width_ns(), granularity) {
            // UTC has no offset, so local alignment equals epoch alignment
            // and needs no time zone lookups.
            (Some(width_ns), _) if tz == Tz::UTC => Rule::Fixed { width_ns },
            (Some(width_ns), _) => Rule::LocalFixed { width_ns, tz },
            (None, Granularity::Week) => Rule::Calendar {
                unit: CalendarUnit::Week,
                tz,
            },
            (None, Granularity::Month) => Rule::Calendar {
                unit: CalendarUnit::Month,
                tz,
            },
            (None, _) => Rule::Calendar {
                unit: CalendarUnit::Day,
                tz,
            },
        };
        Bucketer::with_rule(rule)
    }

    fn with_rule(rule: Rule) -> Bucketer {
        Bucketer {
            rule,
            cached: None,
            cache_misses: 0,
        }
    }

    /// Parses an IANA time zone name such as "Europe/Berlin". The empty
    /// string means UTC.
    pub fn parse_time_zone(name: &str) -> Result<Tz, String> {
        if name.is_empty() {
            return Ok(Tz::UTC);
        }
        name.parse::<Tz>().map_err(|_| {
            format!(
                "invalid time zone {}: expected an IANA name such as \"Europe/Berlin\", \
                 or an empty string for UTC",
                crate::model::limits::excerpt(name)
            )
        })
    }

    /// Width of every bucket for the epoch-aligned step and the sub-day
    /// calendar units. Day, Week and Month return None.
    pub fn fixed_width_ns(&self) -> Option<i64> {
        match self.rule {
            Rule::Fixed { width_ns } | Rule::LocalFixed { width_ns, .. } => Some(width_ns),
            Rule::Calendar { .. } => None,
        }
    }

    /// Width of every bucket when buckets are plain epoch-aligned floors,
    /// `start = floor(t / width) * width`: a `step`, or a sub-day unit in
    /// UTC. None when a time zone offset or the calendar shifts them.
    pub fn epoch_width_ns(&self) -> Option<i64> {
        match self.rule {
            Rule::Fixed { width_ns } => Some(width_ns),
            Rule::LocalFixed { .. } | Rule::Calendar { .. } => None,
        }
    }

    /// Returns [start, end) of the bucket that contains `time_ns`. Takes
    /// `&mut self` to cache the last bucket, because points arrive sorted
    /// per series.
    pub fn bucket_of(&mut self, time_ns: i64) -> (i64, i64) {
        if let Some((start, end)) = self.cached
            && start <= time_ns
            && time_ns < end
        {
            return (start, end);
        }

        self.cache_misses += 1;
        let (bucket, cacheable) = match self.rule {
            Rule::Fixed { width_ns } => (fixed_bucket(time_ns, width_ns), true),
            Rule::LocalFixed { width_ns, tz } => local_fixed_bucket(time_ns, width_ns, tz),
            Rule::Calendar { unit, tz } => (calendar_bucket(time_ns, unit, tz), true),
        };
        self.cached = cacheable.then_some(bucket);
        bucket
    }

    /// Returns the start of the bucket after the one that contains
    /// `start_ns`, saturating at `i64::MAX`.
    pub fn next_start(&mut self, start_ns: i64) -> i64 {
        if let Rule::LocalFixed { width_ns, .. } = self.rule {
            // Realign after the step. This equals start + width unless an
            // offset change that is not a multiple of the width moved the
            // alignment (see the note on the type).
            let stepped = start_ns.saturating_add(width_ns);
            let (realigned, _) = self.bucket_of(stepped);
            return if realigned > start_ns {
                realigned
            } else {
                stepped
            };
        }
        self.bucket_of(start_ns).1
    }

    /// Counts the buckets from the bucket of `first_start` to the bucket of
    /// `last_start`, both included, in constant time. Returns 0 if
    /// `last_start` lies in an earlier bucket.
    ///
    /// NOTE: for sub-day units in zones with the offset shifts described on
    /// the type, the count can be off by one per such transition.
    pub fn count_buckets(&mut self, first_start: i64, last_start: i64) -> u64 {
        let first = self.bucket_of(first_start).0;
        let last = self.bucket_of(last_start).0;
        if last < first {
            return 0;
        }

        let count = match self.rule {
            Rule::Fixed { width_ns } | Rule::LocalFixed { width_ns, .. } => {
                (last as i128 - first as i128) / width_ns as i128 + 1
            }
            Rule::Calendar { unit, tz } => {
                let first_date = local_date(first, tz);
                let last_date = local_date(last, tz);
                let days = last_date.signed_duration_since(first_date).num_days() as i128;
                match unit {
                    CalendarUnit::Day => days + 1,
                    CalendarUnit::Week => days / 7 + 1,
                    CalendarUnit::Month => {
                        let months_of =
                            |date: NaiveDate| date.year() as i128 * 12 + date.month0() as i128;
                        months_of(last_date) - months_of(first_date) + 1
                    }
                }
            }
        };
        count.clamp(0, u64::MAX as i128) as u64
    }
}

fn saturate(value: i128) -> i64 {
    value.clamp(i64::MIN as i128, i64::MAX as i128) as i64
}

/// Floor-divides by the width, so times before 1970 land in the bucket
/// below them.
fn fixed_bucket(time_ns: i64, width_ns: i64) -> (i64, i64) {
    let start = (time_ns as i128).div_euclid(width_ns as i128) * width_ns as i128;
    (saturate(start), saturate(start + width_ns as i128))
}

/// UTC offset of `tz` at `time_ns`, in nanoseconds.
fn offset_ns(time_ns: i64, tz: Tz) -> i64 {
    let utc = DateTime::from_timestamp_nanos(time_ns).naive_utc();
    i64::from(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc()) * NANOS_PER_SECOND
}

/// Computes a locally aligned fixed-width bucket. The flag is true when
/// the offset is the same at both ends of the bucket, so every timestamp
/// inside computes the same bucket and the result may be cached.
fn local_fixed_bucket(time_ns: i64, width_ns: i64, tz: Tz) -> ((i64, i64), bool) {
    let offset = offset_ns(time_ns, tz);
    let time = time_ns as i128;
    let start = time - (time + offset as i128).rem_euclid(width_ns as i128);
    let bucket = (saturate(start), saturate(start + width_ns as i128));

    let last_instant = saturate(start + width_ns as i128 - 1);
    let cacheable = offset_ns(bucket.0, tz) == offset && offset_ns(last_instant, tz) == offset;
    (bucket, cacheable)
}

fn local_date(time_ns: i64, tz: Tz) -> NaiveDate {
    DateTime::from_timestamp_nanos(time_ns)
        .with_timezone(&tz)
        .date_naive()
}

fn seconds_to_ns(seconds: i64) -> i64 {
    saturate(seconds as i128 * NANOS_PER_SECOND as i128)
}

/// Local wall-clock reading at `utc_seconds`, as seconds since the epoch.
fn local_seconds(utc_seconds: i64, tz: Tz) -> i64 {
    match DateTime::from_timestamp(utc_seconds, 0) {
        Some(utc) => {
            let offset = tz
                .offset_from_utc_datetime(&utc.naive_utc())
                .fix()
                .local_minus_utc();
            utc_seconds + i64::from(offset)
        }
        // Outside chrono's range of about ±262,000 years. Times derived from
        // i64 nanoseconds stay within ±300 years of 1970.
        None => utc_seconds,
    }
}

/// Start of local day `date`: the first instant of local midnight, or the
/// first instant after it when a DST gap skips midnight.
fn day_start_ns(date: NaiveDate, tz: Tz) -> i64 {
    let midnight = date.and_time(NaiveTime::MIN);
    match tz.from_local_datetime(&midnight) {
        LocalResult::Single(instant) => seconds_to_ns(instant.timestamp()),
        LocalResult::Ambiguous(earlier, later) => {
            seconds_to_ns(earlier.timestamp().min(later.timestamp()))
        }
        LocalResult::None => seconds_to_ns(end_of_gap_seconds(midnight, tz)),
    }
}

/// First UTC second whose local time is at or after `local`, for a local
/// time that a DST gap skips.
fn end_of_gap_seconds(local: NaiveDateTime, tz: Tz) -> i64 {
    // Around a gap the local time only moves forward, so binary search
    // applies. Offsets and transitions in the tz database are whole
    // seconds, so second resolution finds the transition instant.
    let target = local.and_utc().timestamp();
    let mut before = target - GAP_SEARCH_SECONDS;
    let mut after = target + GAP_SEARCH_SECONDS;
    while after - before > 1 {
        let middle = before + (after - before) / 2;
        if local_seconds(middle, tz) >= target {
            after = middle;
        } else {
            before = middle;
        }
    }
    after
}

/// First local date of the calendar period that contains `date`, and of
/// the next period. The second is None past chrono's last date.
fn period_dates(date: NaiveDate, unit: CalendarUnit) -> (NaiveDate, Option<NaiveDate>) {
    match unit {
        CalendarUnit::Day => (date, date.succ_opt()),
        CalendarUnit::Week => {
            let days_since_monday = u64::from(date.weekday().num_days_from_monday());
            let monday = date
                .checked_sub_days(Days::new(days_since_monday))
                .unwrap_or(date);
            (monday, monday.checked_add_days(Days::new(7)))
        }
        CalendarUnit::Month => {
            let first_of_month = date.with_day(1).unwrap_or(date);
            (
                first_of_month,
                first_of_month.checked_add_months(Months::new(1)),
            )
        }
    }
}

fn period_bounds(first_date: NaiveDate, next_date: Option<NaiveDate>, tz: Tz) -> (i64, i64) {
    let start = day_start_ns(first_date, tz);
    let end = next_date.map_or(i64::MAX, |date| day_start_ns(date, tz));
    (start, end)
}

/// Computes the calendar bucket that contains `time_ns`.
fn calendar_bucket(time_ns: i64, unit: CalendarUnit, tz: Tz) -> (i64, i64) {
    let (mut first_date, mut next_date) = period_dates(local_date(time_ns, tz), unit);
    let mut bounds = period_bounds(first_date, next_date, tz);

    // Periods are taken as [start of period, start of next period), which
    // tiles the time line. Where clocks fall back across midnight, the local
    // date of an instant can lie outside that range, so step to the period
    // that contains it. One step suffices for real zones, and the limit
    // only guarantees termination.
    for _ in 0..4 {
        let (start, end) = bounds;
        if time_ns < start {
            let Some(previous_day) = first_date.pred_opt() else {
                break;
            };
            (first_date, next_date) = period_dates(previous_day, unit);
        } else if time_ns >= end && end != i64::MAX {
            let Some(next) = next_date else { break };
            (first_date, next_date) = period_dates(next, unit);
        } else {
            break;
        }
        bounds = period_bounds(first_date, next_date, tz);
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono_tz::{America, Asia, Europe};

    const SECOND: i64 = NANOS_PER_SECOND;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;
    const DAY: i64 = 24 * HOUR;

    /// Nanoseconds of a UTC date and time.
    fn utc(year: i32, month: u32, day: u32, hour: u32, minute: u32) -> i64 {
        Tz::UTC
            .with_ymd_and_hms(year, month, day, hour, minute, 0)
            .unwrap()
            .timestamp_nanos_opt()
            .unwrap()
    }

    #[test]
    fn fixed_rejects_non_positive_width() {
        assert!(Bucketer::fixed(0).is_err());
        assert!(Bucketer::fixed(-5).is_err());
        let message = Bucketer::fixed(-5).unwrap_err();
        assert!(message.contains("-5"), "{message}");
        assert!(Bucketer::fixed(1).is_ok());
    }

    #[test]
    fn fixed_buckets_table() {
        // (width, time, expected start, expected end)
        let cases = [
            (HOUR, 0, 0, HOUR),
            (HOUR, HOUR - 1, 0, HOUR),
            (HOUR, HOUR, HOUR, 2 * HOUR),
            (HOUR, -1, -HOUR, 0),
            (HOUR, -HOUR, -HOUR, 0),
            (HOUR, -HOUR - 1, -2 * HOUR, -HOUR),
            (10, 25, 20, 30),
            (10, -25, -30, -20),
            (7 * DAY, 3 * DAY, 0, 7 * DAY),
            // 9,223,372,036,854,775,807 / 3.6e12 = 2,562,047.78, so the
            // last bucket starts at 2,562,047 · 3.6e12 and its end saturates.
            (HOUR, i64::MAX, 9_223_369_200_000_000_000, i64::MAX),
            // The floor multiple −2,562,048 · 3.6e12 lies below i64::MIN.
            (HOUR, i64::MIN, i64::MIN, -9_223_369_200_000_000_000),
            (1, i64::MAX, i64::MAX, i64::MAX),
            (1, i64::MIN, i64::MIN, i64::MIN + 1),
            (i64::MAX, i64::MAX, i64::MAX, i64::MAX),
            (i64::MAX, -1, -i64::MAX, 0),
            // The floor multiple −2 · i64::MAX lies below i64::MIN.
            (i64::MAX, i64::MIN, i64::MIN, -i64::MAX),
        ];
        for (width, time, start, end) in cases {
            let mut bucketer = Bucketer::fixed(width).unwrap();
            assert_eq!(
                bucketer.bucket_of(time),
                (start, end),
                "width {width}, time {time}"
            );
        }
    }

    #[test]
    fn utc_calendar_table() {
        let jan_3_2024 = utc(2024, 1, 3, 15, 42) + 17 * SECOND + 5;
        // (granularity, time, expected start, expected end)
        let cases = [
            (
                Granularity::Second,
                jan_3_2024,
                jan_3_2024 - 5,
                jan_3_2024 - 5 + SECOND,
            ),
            (
                Granularity::Minute,
                jan_3_2024,
                utc(2024, 1, 3, 15, 42),
                utc(2024, 1, 3, 15, 43),
            ),
            (
                Granularity::Hour,
                jan_3_2024,
                utc(2024, 1, 3, 15, 0),
                utc(2024, 1, 3, 16, 0),
            ),
            (
                Granularity::Day,
                jan_3_2024,
                utc(2024, 1, 3, 0, 0),
                utc(2024, 1, 4, 0, 0),
            ),
            // 2024-01-03 is a Wednesday, so its ISO week starts Monday 1 January.
            (
                Granularity::Week,
                jan_3_2024,
                utc(2024, 1, 1, 0, 0),
                utc(2024, 1, 8, 0, 0),
            ),
            (
                Granularity::Month,
                utc(2024, 2, 29, 23, 59),
                utc(2024, 2, 1, 0, 0),
                utc(2024, 3, 1, 0, 0),
            ),
            (
                Granularity::Month,
                utc(2023, 12, 31, 12, 0),
                utc(2023, 12, 1, 0, 0),
                utc(2024, 1, 1, 0, 0),
            ),
            // Before 1970.
            (Granularity::Day, -12 * HOUR, -DAY, 0),
            (Granularity::Hour, -1, -HOUR, 0),
            // 1969-12-31 is a Wednesday, so its week starts Monday 29 December.
            (Granularity::Week, -1, -3 * DAY, 4 * DAY),
            (Granularity::Month, -1, utc(1969, 12, 1, 0, 0), 0),
        ];
        for (granularity, time, start, end) in cases {
            let mut bucketer = Bucketer::calendar(granularity, Tz::UTC);
            assert_eq!(
                bucketer.bucket_of(time),
                (start, end),
                "{granularity:?} at {time}"
            );
        }
    }

    #[test]
    fn dst_day_lengths_table() {
        // (zone, time inside the day, expected start, expected length)
        let cases = [
            // New York springs forward at 02:00 EST: 05:00 UTC to 04:00 UTC.
            (
                America::New_York,
                utc(2024, 3, 10, 12, 0),
                utc(2024, 3, 10, 5, 0),
                23 * HOUR,
            ),
            // New York falls back at 02:00 EDT: 04:00 UTC to 05:00 UTC.
            (
                America::New_York,
                utc(2024, 11, 3, 12, 0),
                utc(2024, 11, 3, 4, 0),
                25 * HOUR,
            ),
            (
                America::New_York,
                utc(2024, 11, 4, 12, 0),
                utc(2024, 11, 4, 5, 0),
                24 * HOUR,
            ),
            // Berlin: 31 March 2024 from 23:00 UTC (CET) to 22:00 UTC (CEST).
            (
                Europe::Berlin,
                utc(2024, 3, 31, 12, 0),
                utc(2024, 3, 30, 23, 0),
                23 * HOUR,
            ),
            // Berlin: 27 October 2024 from 22:00 UTC (CEST) to 23:00 UTC (CET).
            (
                Europe::Berlin,
                utc(2024, 10, 27, 12, 0),
                utc(2024, 10, 26, 22, 0),
                25 * HOUR,
            ),
            // Santiago skips 8 September 2024 00:00 −04 to 01:00 −03, so the
            // day starts at 04:00 UTC and ends at 9 September 00:00 −03.
            (
                America::Santiago,
                utc(2024, 9, 8, 12, 0),
                utc(2024, 9, 8, 4, 0),
                23 * HOUR,
            ),
            (
                America::Santiago,
                utc(2024, 9, 7, 12, 0),
                utc(2024, 9, 7, 4, 0),
                24 * HOUR,
            ),
            // Santiago falls back on 7 April 2024 00:00 −03 to 6 April
            // 23:00 −04, so 6 April runs from 03:00 UTC to 04:00 UTC.
            (
                America::Santiago,
                utc(2024, 4, 6, 12, 0),
                utc(2024, 4, 6, 3, 0),
                25 * HOUR,
            ),
            // Beirut skips 31 March 2024 00:00 +02 to 01:00 +03.
            (
                Asia::Beirut,
                utc(2024, 3, 31, 12, 0),
                utc(2024, 3, 30, 22, 0),
                23 * HOUR,
            ),
            // Beirut falls back on 27 October 2024 00:00 +03 to 26 October
            // 23:00 +02, so 26 October runs from 21:00 UTC on the 25th to
            // 22:00 UTC on the 26th.
            (
                Asia::Beirut,
                utc(2024, 10, 26, 12, 0),
                utc(2024, 10, 25, 21, 0),
                25 * HOUR,
            ),
        ];
        for (tz, time, start, length) in cases {
            let mut bucketer = Bucketer::calendar(Granularity::Day, tz);
            let (actual_start, actual_end) = bucketer.bucket_of(time);
            assert_eq!(actual_start, start, "{tz} start at {time}");
            assert_eq!(actual_end - actual_start, length, "{tz} length at {time}");
        }
    }

    #[test]
    fn day_gap_start_belongs_to_new_day() {
        let mut bucketer = Bucketer::calendar(Granularity::Day, America::Santiago);
        let gap_end = utc(2024, 9, 8, 4, 0);
        assert_eq!(bucketer.bucket_of(gap_end).0, gap_end);
        assert_eq!(bucketer.bucket_of(gap_end - 1).1, gap_end);
    }

    #[test]
    fn local_week_and_month_table() {
        // (zone, granularity, time, expected start, expected end)
        let cases = [
            // The week of Sunday 10 March 2024 in New York: Monday 4 March
            // 00:00 EST to Monday 11 March 00:00 EDT, one hour short.
            (
                America::New_York,
                Granularity::Week,
                utc(2024, 3, 10, 12, 0),
                utc(2024, 3, 4, 5, 0),
                utc(2024, 3, 11, 4, 0),
            ),
            // 00:30 UTC on Monday 4 March is still Sunday evening in New York.
            (
                America::New_York,
                Granularity::Week,
                utc(2024, 3, 4, 0, 30),
                utc(2024, 2, 26, 5, 0),
                utc(2024, 3, 4, 5, 0),
            ),
            // March 2024 in Berlin: 29 February 23:00 UTC to 31 March 22:00 UTC.
            (
                Europe::Berlin,
                Granularity::Month,
                utc(2024, 3, 15, 0, 0),
                utc(2024, 2, 29, 23, 0),
                utc(2024, 3, 31, 22, 0),
            ),
            // 23:30 UTC on 29 February is already March in Berlin.
            (
                Europe::Berlin,
                Granularity::Month,
                utc(2024, 2, 29, 23, 30),
                utc(2024, 2, 29, 23, 0),
                utc(2024, 3, 31, 22, 0),
            ),
        ];
        for (tz, granularity, time, start, end) in cases {
            let mut bucketer = Bucketer::calendar(granularity, tz);
            assert_eq!(
                bucketer.bucket_of(time),
                (start, end),
                "{tz} {granularity:?} at {time}"
            );
        }
    }

    #[test]
    fn sub_day_local_alignment_table() {
        // (zone, granularity, time, expected start, expected end)
        let cases = [
            // Kolkata is UTC+05:30: 00:10 UTC is 05:40 local, in the local
            // hour that starts at 05:00 local = 23:30 UTC.
            (
                Asia::Kolkata,
                Granularity::Hour,
                utc(2024, 1, 1, 0, 10),
                utc(2023, 12, 31, 23, 30),
                utc(2024, 1, 1, 0, 30),
            ),
            (
                Asia::Kolkata,
                Granularity::Minute,
                utc(2024, 1, 1, 0, 10) + 59 * SECOND,
                utc(2024, 1, 1, 0, 10),
                utc(2024, 1, 1, 0, 11),
            ),
            // New York hours around the spring transition at 07:00 UTC keep
            // their width.
            (
                America::New_York,
                Granularity::Hour,
                utc(2024, 3, 10, 6, 30),
                utc(2024, 3, 10, 6, 0),
                utc(2024, 3, 10, 7, 0),
            ),
            (
                America::New_York,
                Granularity::Hour,
                utc(2024, 3, 10, 7, 30),
                utc(2024, 3, 10, 7, 0),
                utc(2024, 3, 10, 8, 0),
            ),
            (America::New_York, Granularity::Second, -1, -SECOND, 0),
        ];
        for (tz, granularity, time, start, end) in cases {
            let mut bucketer = Bucketer::calendar(granularity, tz);
            assert_eq!(
                bucketer.bucket_of(time),
                (start, end),
                "{tz} {granularity:?} at {time}"
            );
        }
    }

    #[test]
    fn extreme_times_never_panic() {
        let zones = [
            Tz::UTC,
            America::New_York,
            Asia::Kolkata,
            Europe::Berlin,
            America::Santiago,
        ];
        let granularities = [
            Granularity::Second,
            Granularity::Minute,
            Granularity::Hour,
            Granularity::Day,
            Granularity::Week,
            Granularity::Month,
        ];
        for tz in zones {
            for granularity in granularities {
                let mut bucketer = Bucketer::calendar(granularity, tz);
                for time in [i64::MIN, i64::MIN + 1, -1, 0, i64::MAX - 1, i64::MAX] {
                    let (start, end) = bucketer.bucket_of(time);
                    let context = format!("{tz} {granularity:?} at {time}");
                    assert!(start <= time, "{context}: start {start}");
                    assert!(time < end || end == i64::MAX, "{context}: end {end}");
                    let next = bucketer.next_start(start);
                    assert!(next > start, "{context}: next start {next}");
                }
                let (_, end_of_last) = bucketer.bucket_of(i64::MAX);
                assert_eq!(end_of_last, i64::MAX, "{tz} {granularity:?} last end");
                let (start_of_first, _) = bucketer.bucket_of(i64::MIN);
                assert_eq!(start_of_first, i64::MIN, "{tz} {granularity:?} first start");
            }
        }
    }

    #[test]
    fn next_start_table() {
        let mut fixed = Bucketer::fixed(10).unwrap();
        assert_eq!(fixed.next_start(20), 30);
        assert_eq!(fixed.next_start(-10), 0);
        assert_eq!(fixed.next_start(i64::MAX - 3), i64::MAX);

        let mut days = Bucketer::calendar(Granularity::Day, America::New_York);
        assert_eq!(
            days.next_start(utc(2024, 3, 10, 5, 0)),
            utc(2024, 3, 11, 4, 0)
        );
        let mut months = Bucketer::calendar(Granularity::Month, Tz::UTC);
        assert_eq!(
            months.next_start(utc(2024, 1, 1, 0, 0)),
            utc(2024, 2, 1, 0, 0)
        );
        let mut hours = Bucketer::calendar(Granularity::Hour, Asia::Kolkata);
        assert_eq!(
            hours.next_start(utc(2023, 12, 31, 23, 30)),
            utc(2024, 1, 1, 0, 30)
        );
    }

    #[test]
    fn sorted_input_hits_cache() {
        let mut bucketer = Bucketer::calendar(Granularity::Day, Europe::Berlin);
        let start = utc(2024, 3, 1, 0, 0);
        for minute in 0..(3 * 24 * 60) {
            bucketer.bucket_of(start + minute * MINUTE);
        }
        // 1 March 00:00 UTC is 01:00 in Berlin, so three UTC days touch four
        // local days.
        assert_eq!(bucketer.cache_misses, 4);

        let mut hours = Bucketer::calendar(Granularity::Hour, America::New_York);
        for minute in 0..(10 * 60) {
            hours.bucket_of(start + minute * MINUTE);
        }
        assert_eq!(hours.cache_misses, 10);
    }

    #[test]
    fn count_buckets_table() {
        let mut fixed = Bucketer::fixed(10).unwrap();
        assert_eq!(fixed.count_buckets(0, 90), 10);
        assert_eq!(fixed.count_buckets(-15, 5), 3);
        assert_eq!(fixed.count_buckets(50, 0), 0);
        assert_eq!(
            Bucketer::fixed(1)
                .unwrap()
                .count_buckets(i64::MIN, i64::MAX),
            u64::MAX
        );

        let mut days = Bucketer::calendar(Granularity::Day, America::New_York);
        assert_eq!(
            days.count_buckets(utc(2024, 3, 9, 12, 0), utc(2024, 3, 12, 12, 0)),
            4
        );
        let mut weeks = Bucketer::calendar(Granularity::Week, Tz::UTC);
        assert_eq!(
            weeks.count_buckets(utc(2024, 1, 1, 0, 0), utc(2024, 1, 31, 0, 0)),
            5
        );
        let mut months = Bucketer::calendar(Granularity::Month, Europe::Berlin);
        assert_eq!(
            months.count_buckets(utc(2023, 11, 15, 0, 0), utc(2024, 2, 15, 0, 0)),
            4
        );
    }

    #[test]
    fn parse_time_zone_table() {
        assert_eq!(Bucketer::parse_time_zone(""), Ok(Tz::UTC));
        assert_eq!(Bucketer::parse_time_zone("UTC"), Ok(Tz::UTC));
        assert_eq!(
            Bucketer::parse_time_zone("Europe/Berlin"),
            Ok(Europe::Berlin)
        );
        let message = Bucketer::parse_time_zone("Mars/Olympus").unwrap_err();
        assert!(message.contains("\"Mars/Olympus\""), "{message}");
    }
}
