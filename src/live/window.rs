//! Window geometry and the per-window state of one shared aggregation.
//! `super` (the live hub) owns one [`WindowTable`] per aggregation, feeds
//! it from the ingest threads and drains closed windows on its clock.

use std::collections::{BTreeMap, HashMap};

use crate::aggregate::{Accumulator, AggFn, AggValue};
use crate::model::filter::FilterSet;
use crate::model::{GroupKey, SeriesId, TimestampNs, ValueRef};

/// Values kept exactly per window before a window switches its
/// percentiles to the quantile sketch.
pub const LIVE_EXACT_VALUE_CAP: usize = 65_536;

/// Emission policy of a subscription.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmitMode {
    /// Only the FINAL update when a window closes.
    OnClose,
    /// Also PARTIAL and REVISION updates, at most every `update_interval_ns`
    /// per window.
    OnUpdate { update_interval_ns: i64 },
}

/// A validated subscription request, minus the per-subscriber parts.
#[derive(Debug, Clone)]
pub struct WindowSpec {
    pub metric: String,
    pub filters: FilterSet,
    pub group_by: Vec<String>,
    pub window_ns: i64,
    /// Hop between window starts; equal to `window_ns` for tumbling windows.
    pub slide_ns: i64,
    pub functions: Vec<AggFn>,
    pub allowed_lateness_ns: i64,
    pub emit: EmitMode,
}

impl WindowSpec {
    /// Calls `f` with the start of every window that contains `time_ns`,
    /// latest first. Windows align to the Unix epoch.
    pub fn for_each_window(&self, time_ns: TimestampNs, mut f: impl FnMut(TimestampNs)) {
        // A window starting before i64::MIN cannot be represented.
        let Some(latest) = time_ns.checked_sub(time_ns.rem_euclid(self.slide_ns)) else {
            return;
        };
        let mut start = latest;
        // `start + window > time` written without overflow.
        while time_ns - start < self.window_ns {
            f(start);
            match start.checked_sub(self.slide_ns) {
                Some(earlier) => start = earlier,
                None => break,
            }
        }
    }

    pub fn end_of(&self, start_ns: TimestampNs) -> TimestampNs {
        start_ns.saturating_add(self.window_ns)
    }

    /// Reports whether the window starting at `start_ns` is closed at
    /// server time `now_ns`: the clock has passed end + allowed lateness.
    pub fn is_closed(&self, start_ns: TimestampNs, now_ns: TimestampNs) -> bool {
        self.end_of(start_ns)
            .saturating_add(self.allowed_lateness_ns)
            <= now_ns
    }

    /// Returns the earliest server time after `now_ns` at which a window
    /// closes (its end plus the allowed lateness), or `i64::MAX` when that
    /// time cannot be represented. Windows start at multiples of the
    /// slide, so this is true whether or not the window has points yet.
    pub fn next_close_after(&self, now_ns: TimestampNs) -> TimestampNs {
        let offset = i128::from(self.window_ns) + i128::from(self.allowed_lateness_ns);
        let slide = i128::from(self.slide_ns);
        let next = ((i128::from(now_ns) - offset).div_euclid(slide) + 1) * slide + offset;
        i64::try_from(next).unwrap_or(i64::MAX)
    }

    /// Start of the latest window that is closed at `now_ns`.
    pub fn latest_closed_start(&self, now_ns: TimestampNs) -> TimestampNs {
        let bound = now_ns
            .saturating_sub(self.allowed_lateness_ns)
            .saturating_sub(self.window_ns);
        bound.saturating_sub(bound.rem_euclid(self.slide_ns))
    }
}

/// Lifecycle of a window update, as sent to subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    Partial,
    Final,
    Revision,
}

/// One window of one group, as pushed to subscribers.
#[derive(Debug, Clone, PartialEq)]
pub struct WindowResult {
    pub start_ns: TimestampNs,
    pub end_ns: TimestampNs,
    pub group: Vec<(String, String)>,
    pub count: u64,
    pub values: Vec<AggValue>,
    pub state: WindowState,
    /// Number of updates sent for this window and group before this one.
    pub revision: u32,
}

pub struct OpenWindow {
    pub accumulator: Accumulator,
    pub updates_sent: u32,
    /// Changed since the last PARTIAL or REVISION update.
    pub dirty: bool,
    pub last_update_ns: TimestampNs,
}

/// Open windows of one shared aggregation, keyed by (start, group).
#[derive(Default)]
pub struct WindowTable {
    pub windows: BTreeMap<(TimestampNs, GroupKey), OpenWindow>,
}

/// Largest number of open (window, group) pairs one aggregation keeps.
/// Points that would open more are counted as dropped, not aggregated.
pub const MAX_OPEN_WINDOWS: usize = 100_000;

/// Points of one [`WindowTable::add_run`] call that were not aggregated.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RunOutcome {
    /// Points with at least one window already closed.
    pub late: u64,
    /// Points skipped because the table was full, and not late.
    pub dropped: u64,
}

/// Outcome of adding one point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddOutcome {
    Added,
    /// At least one window of the point was already closed.
    Late,
    /// The table is full.
    Dropped,
}

impl WindowTable {
    /// Adds a point to its open windows. Closed windows are never
    /// reopened.
    #[allow(clippy::too_many_arguments)]
    pub fn add(
        &mut self,
        spec: &WindowSpec,
        group: &GroupKey,
        series: SeriesId,
        time_ns: TimestampNs,
        value: ValueRef<'_>,
        now_ns: TimestampNs,
    ) -> AddOutcome {
        let mut outcome = AddOutcome::Added;
        spec.for_each_window(time_ns, |start_ns| {
            if spec.is_closed(start_ns, now_ns) {
                outcome = AddOutcome::Late;
                return;
            }
            let Some(window) = open_window(&mut self.windows, spec, start_ns, group) else {
                if outcome == AddOutcome::Added {
                    outcome = AddOutcome::Dropped;
                }
                return;
            };
            window.accumulator.push(series, time_ns, value);
            window.dirty = true;
        });
        outcome
    }

    /// Adds the points of one series (a run) to their open windows, with
    /// the same outcome per point as [`WindowTable::add`].
    pub fn add_run<'v>(
        &mut self,
        spec: &WindowSpec,
        group: &GroupKey,
        series: SeriesId,
        points: impl Iterator<Item = (TimestampNs, ValueRef<'v>)>,
        now_ns: TimestampNs,
    ) -> RunOutcome {
        let mut outcome = RunOutcome::default();
        if spec.slide_ns != spec.window_ns {
            for (time_ns, value) in points {
                match self.add(spec, group, series, time_ns, value, now_ns) {
                    AddOutcome::Added => {}
                    AddOutcome::Late => outcome.late += 1,
                    AddOutcome::Dropped => outcome.dropped += 1,
                }
            }
            return outcome;
        }

        // Tumbling windows: a point belongs to one window, and the points
        // of a run mostly share it, so the window found for one point
        // serves the next ones without a search or a key clone.
        let mut current: Option<(TimestampNs, &mut OpenWindow)> = None;
        for (time_ns, value) in points {
            // The same start as `for_each_window`, which finds no window
            // for times whose window would start before i64::MIN.
            let Some(start_ns) = time_ns.checked_sub(time_ns.rem_euclid(spec.slide_ns)) else {
                continue;
            };
            if let Some((current_start, window)) = current.as_mut()
                && *current_start == start_ns
            {
                window.accumulator.push(series, time_ns, value);
                window.dirty = true;
                continue;
            }
            current = None;
            if spec.is_closed(start_ns, now_ns) {
                outcome.late += 1;
                continue;
            }
            match open_window(&mut self.windows, spec, start_ns, group) {
                Some(window) => {
                    window.accumulator.push(series, time_ns, value);
                    window.dirty = true;
                    current = Some((start_ns, window));
                }
                None => outcome.dropped += 1,
            }
        }
        outcome
    }

    /// Removes and returns the windows closed at `now_ns`, ordered by
    /// start and group.
    pub fn take_closed(
        &mut self,
        spec: &WindowSpec,
        now_ns: TimestampNs,
    ) -> Vec<((TimestampNs, GroupKey), OpenWindow)> {
        let mut closed = Vec::new();
        while let Some(entry) = self.windows.first_entry() {
            if !spec.is_closed(entry.key().0, now_ns) {
                break;
            }
            closed.push(entry.remove_entry());
        }
        closed
    }
}

/// Finds the open window of `(start_ns, group)` with one search, creating
/// it unless the table already contains [`MAX_OPEN_WINDOWS`] windows.
fn open_window<'t>(
    windows: &'t mut BTreeMap<(TimestampNs, GroupKey), OpenWindow>,
    spec: &WindowSpec,
    start_ns: TimestampNs,
    group: &GroupKey,
) -> Option<&'t mut OpenWindow> {
    let key = (start_ns, group.clone());
    if windows.len() >= MAX_OPEN_WINDOWS {
        return windows.get_mut(&key);
    }
    Some(windows.entry(key).or_insert_with(|| OpenWindow {
        accumulator: Accumulator::new(&spec.functions, Some(LIVE_EXACT_VALUE_CAP)),
        updates_sent: 0,
        dirty: false,
        last_update_ns: i64::MIN,
    }))
}

/// Builds the group map of a group key.
pub fn group_pairs(group_by: &[String], key: &GroupKey) -> Vec<(String, String)> {
    group_by
        .iter()
        .zip(key)
        .filter_map(|(name, value)| value.as_ref().map(|v| (name.clone(), v.clone())))
        .collect()
}

/// Computes finished windows for a set of accumulators (backfill).
pub fn finish_all(
    spec: &WindowSpec,
    accumulators: HashMap<(TimestampNs, GroupKey), Accumulator>,
    state: WindowState,
) -> Vec<WindowResult> {
    let mut ordered: Vec<((TimestampNs, GroupKey), Accumulator)> =
        accumulators.into_iter().collect();
    ordered.sort_by(|a, b| a.0.cmp(&b.0));
    ordered
        .into_iter()
        .map(|((start_ns, key), mut accumulator)| WindowResult {
            start_ns,
            end_ns: spec.end_of(start_ns),
            group: group_pairs(&spec.group_by, &key),
            count: accumulator.count(),
            values: accumulator.finish(&spec.functions, spec.window_ns),
            state,
            revision: 0,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(window_ns: i64, slide_ns: i64, lateness_ns: i64) -> WindowSpec {
        WindowSpec {
            metric: "m".into(),
            filters: FilterSet::default(),
            group_by: vec![],
            window_ns,
            slide_ns,
            functions: vec![AggFn::Count],
            allowed_lateness_ns: lateness_ns,
            emit: EmitMode::OnClose,
        }
    }

    fn windows_of(spec: &WindowSpec, t: i64) -> Vec<i64> {
        let mut starts = Vec::new();
        spec.for_each_window(t, |s| starts.push(s));
        starts
    }

    #[test]
    fn tumbling_window_assignment() {
        let s = spec(10, 10, 0);
        assert_eq!(windows_of(&s, 0), vec![0]);
        assert_eq!(windows_of(&s, 9), vec![0]);
        assert_eq!(windows_of(&s, 10), vec![10]);
        assert_eq!(windows_of(&s, -1), vec![-10]);
    }

    #[test]
    fn hopping_window_assignment() {
        let s = spec(10, 5, 0);
        assert_eq!(windows_of(&s, 12), vec![10, 5]);
        assert_eq!(windows_of(&s, 10), vec![10, 5]);
        assert_eq!(windows_of(&s, 9), vec![5, 0]);
        assert_eq!(windows_of(&s, -3), vec![-5, -10]);
    }

    #[test]
    fn window_assignment_at_extremes_does_not_overflow() {
        let s = spec(10, 5, 0);
        assert!(windows_of(&s, i64::MIN).is_empty());
        assert_eq!(windows_of(&s, i64::MIN + 3), vec![i64::MIN + 3]);
        assert_eq!(windows_of(&s, i64::MAX).len(), 2);
    }

    #[test]
    fn closing_respects_lateness() {
        let s = spec(10, 10, 3);
        assert!(!s.is_closed(0, 12));
        assert!(s.is_closed(0, 13));
        assert_eq!(s.latest_closed_start(13), 0);
        assert_eq!(s.latest_closed_start(22), 0);
        assert_eq!(s.latest_closed_start(23), 10);
    }

    #[test]
    fn late_point_not_added_to_other_windows() {
        let s = spec(10, 10, 0);
        let mut table = WindowTable::default();
        let outcome = table.add(&s, &vec![], SeriesId(1), 5, ValueRef::F64(1.0), 10);
        assert_eq!(outcome, AddOutcome::Late);
        assert!(table.windows.is_empty());
        let outcome = table.add(&s, &vec![], SeriesId(1), 15, ValueRef::F64(1.0), 10);
        assert_eq!(outcome, AddOutcome::Added);
        assert_eq!(table.windows.len(), 1);
    }

    #[test]
    fn next_close_after_follows_slide_and_lateness() {
        let tumbling = spec(10, 10, 0);
        assert_eq!(tumbling.next_close_after(0), 10);
        assert_eq!(tumbling.next_close_after(9), 10);
        assert_eq!(tumbling.next_close_after(10), 20);
        assert_eq!(tumbling.next_close_after(-15), -10);

        let hopping = spec(10, 5, 3);
        // Windows start at 0, 5, 10, ... and close 13 later.
        assert_eq!(hopping.next_close_after(12), 13);
        assert_eq!(hopping.next_close_after(13), 18);
        assert!(hopping.is_closed(5, 18));
        assert!(!hopping.is_closed(5, 17));

        assert_eq!(tumbling.next_close_after(i64::MAX - 5), i64::MAX);
    }

    fn points(times: &[i64]) -> impl Iterator<Item = (i64, ValueRef<'static>)> + '_ {
        times.iter().map(|&t| (t, ValueRef::F64(1.0)))
    }

    fn counts(table: &WindowTable) -> Vec<(i64, u64)> {
        table
            .windows
            .iter()
            .map(|((start, _), window)| (*start, window.accumulator.count()))
            .collect()
    }

    #[test]
    fn add_run_matches_add_per_point() {
        // Late points, window changes and a return to an earlier window.
        let times = [3, 5, 12, 14, 27, 13, 8, 21, i64::MIN];
        for s in [spec(10, 10, 0), spec(10, 5, 0)] {
            let mut by_point = WindowTable::default();
            let mut expected = RunOutcome::default();
            for &t in &times {
                match by_point.add(&s, &vec![], SeriesId(1), t, ValueRef::F64(1.0), 10) {
                    AddOutcome::Added => {}
                    AddOutcome::Late => expected.late += 1,
                    AddOutcome::Dropped => expected.dropped += 1,
                }
            }
            let mut by_run = WindowTable::default();
            let outcome = by_run.add_run(&s, &vec![], SeriesId(1), points(&times), 10);
            assert_eq!(outcome, expected);
            assert_eq!(counts(&by_run), counts(&by_point));
        }
    }

    #[test]
    fn add_run_counts_late_points() {
        let s = spec(10, 10, 0);
        let mut table = WindowTable::default();
        let outcome = table.add_run(&s, &vec![], SeriesId(1), points(&[1, 2, 15, 3]), 10);
        assert_eq!(outcome.late, 3);
        assert_eq!(counts(&table), vec![(10, 1)]);
    }

    #[test]
    fn add_run_drops_when_table_full() {
        let s = spec(10, 10, 0);
        let mut table = WindowTable::default();
        let far: Vec<i64> = (0..MAX_OPEN_WINDOWS as i64).map(|i| 100 + i * 10).collect();
        table.add_run(&s, &vec![], SeriesId(1), points(&far), 0);
        assert_eq!(table.windows.len(), MAX_OPEN_WINDOWS);

        // One point for an open window, two for a new one.
        let outcome = table.add_run(&s, &vec![], SeriesId(1), points(&[105, 55, 56]), 0);
        assert_eq!(outcome.dropped, 2);
        assert_eq!(outcome.late, 0);
        assert_eq!(table.windows.len(), MAX_OPEN_WINDOWS);
        assert_eq!(table.windows[&(100, vec![])].accumulator.count(), 2);
    }
}
