//! The in-memory storage engine: every series is a sorted time column and
//! a value column in RAM. Nothing survives a restart. The durable engine
//! keeps its recent points in the same structure as its head.
//!
//! Locking: the metric map lock is taken for writing only to add or remove
//! a metric, each metric's series index only to add or remove a series,
//! and each series has its own lock, so writers to different series do not
//! contend.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::Duration;

use parking_lot::{Mutex, RwLock, RwLockUpgradableReadGuard};

use super::{
    DeleteOutcome, MetricInfo, MetricSpec, RetentionPolicy, SeriesInfo, Storage, StorageError,
    StorageStats, WriteOutcome, default_policy_for, default_retention_policies,
};
use crate::clock::now_ns;
use crate::model::{
    Column, ColumnSlice, DataType, SeriesId, SeriesWrite, TagSet, TimeRange, TimestampNs, ValueKind,
};

/// Points of one series: `times_ns` is sorted ascending with one point
/// per timestamp, and `values` is parallel to it.
#[derive(Debug)]
pub struct SeriesData {
    times_ns: Vec<TimestampNs>,
    values: Column,
}

impl SeriesData {
    pub fn new(kind: ValueKind) -> SeriesData {
        SeriesData {
            times_ns: Vec::new(),
            values: Column::empty(kind),
        }
    }

    pub fn len(&self) -> usize {
        self.times_ns.len()
    }

    pub fn is_empty(&self) -> bool {
        self.times_ns.is_empty()
    }

    /// Appends points in any order. When a timestamp repeats, the point
    /// written last wins, both within `times_ns` and against stored
    /// points. A run that is ascending and after every stored point is
    /// copied in bulk. Any other run is sorted and merged into the stored
    /// tail it overlaps.
    pub fn append(&mut self, times_ns: &[TimestampNs], values: ColumnSlice<'_>) {
        if times_ns.is_empty() {
            return;
        }
        let ascending = times_ns.windows(2).all(|w| w[0] < w[1]);
        let after_last = self.times_ns.last().is_none_or(|&last| times_ns[0] > last);
        if ascending && after_last {
            self.extend_sorted(times_ns, values);
            return;
        }

        // Sort the run by time; a stable sort keeps write order among equal
        // timestamps, and the last of each group wins.
        let mut order: Vec<usize> = (0..times_ns.len()).collect();
        if !ascending {
            order.sort_by_key(|&i| times_ns[i]);
        }
        order.dedup_by(|later, earlier| {
            if times_ns[*later] == times_ns[*earlier] {
                *earlier = *later;
                true
            } else {
                false
            }
        });

        // Only the stored points at or after the run's first time need
        // merging.
        let split = self.times_ns.partition_point(|&t| t < times_ns[order[0]]);
        let old_times = self.times_ns.split_off(split);
        let old_values = self.values.split_off(split);

        let mut old = 0;
        let mut new = 0;
        while old < old_times.len() || new < order.len() {
            let take_new = match (old_times.get(old), order.get(new)) {
                (Some(&old_time), Some(&i)) => times_ns[i] <= old_time,
                (None, Some(_)) => true,
                _ => false,
            };
            if take_new {
                let i = order[new];
                if old_times.get(old) == Some(&times_ns[i]) {
                    // The new point replaces the stored one.
                    old += 1;
                }
                self.times_ns.push(times_ns[i]);
                self.values.push(values.get(i));
                new += 1;
            } else {
                self.times_ns.push(old_times[old]);
                self.values.push(old_values.get(old));
                old += 1;
            }
        }
    }

    /// Appends a run that is strictly ascending and after every stored
    /// point, copying whole slices.
    fn extend_sorted(&mut self, times_ns: &[TimestampNs], values: ColumnSlice<'_>) {
        self.times_ns.extend_from_slice(times_ns);
        match (&mut self.values, values) {
            (Column::F64(c), ColumnSlice::F64(v)) => c.extend_from_slice(v),
            (Column::F64(c), ColumnSlice::I64(v)) => c.extend(v.iter().map(|&x| x as f64)),
            (Column::I64(c), ColumnSlice::I64(v)) => c.extend_from_slice(v),
            (Column::Bool(c), ColumnSlice::Bool(v)) => c.extend_from_slice(v),
            (Column::Str(c), ColumnSlice::Str(v)) => c.extend_from_slice(v),
            (column, values) => panic!(
                "column of kind {:?} cannot hold values {values:?}",
                column.kind()
            ),
        }
    }

    /// Returns every point.
    pub fn as_slices(&self) -> (&[TimestampNs], ColumnSlice<'_>) {
        (&self.times_ns, self.values.as_slice())
    }

    /// Returns the points inside `range`.
    pub fn range_slices(&self, range: TimeRange) -> (&[TimestampNs], ColumnSlice<'_>) {
        let from = self.times_ns.partition_point(|&t| t < range.start_ns);
        let to = self.times_ns.partition_point(|&t| t < range.end_ns);
        let to = to.max(from);
        (
            &self.times_ns[from..to],
            self.values.as_slice().slice(from, to),
        )
    }

    /// Drops the points older than `cutoff_ns` and returns how many.
    pub fn drop_before(&mut self, cutoff_ns: TimestampNs) -> usize {
        let count = self.times_ns.partition_point(|&t| t < cutoff_ns);
        self.times_ns.drain(..count);
        match &mut self.values {
            Column::F64(v) => drop(v.drain(..count)),
            Column::I64(v) => drop(v.drain(..count)),
            Column::Bool(v) => drop(v.drain(..count)),
            Column::Str(v) => drop(v.drain(..count)),
        }
        count
    }

    /// Estimates the heap bytes this series holds.
    pub fn memory_bytes(&self) -> usize {
        let values = match &self.values {
            Column::F64(v) => v.capacity() * 8,
            Column::I64(v) => v.capacity() * 8,
            Column::Bool(v) => v.capacity(),
            Column::Str(v) => v.capacity() * 16 + v.iter().map(|s| s.len() + 16).sum::<usize>(),
        };
        self.times_ns.capacity() * 8 + values
    }
}

struct SeriesStore {
    id: SeriesId,
    tags: Arc<TagSet>,
    /// Guards the points; writers of this series take it for writing,
    /// readers for reading.
    data: RwLock<SeriesData>,
}

#[derive(Default)]
struct SeriesIndex {
    by_tags: HashMap<Arc<TagSet>, Arc<SeriesStore>>,
    by_id: HashMap<SeriesId, Arc<SeriesStore>>,
}

struct MetricMeta {
    description: String,
    unit: String,
    retention_policy: String,
}

struct MetricStore {
    name: String,
    data_type: DataType,
    created_ns: TimestampNs,
    last_updated_ns: AtomicI64,
    point_count: AtomicI64,
    /// Guards the descriptive fields, which change only through the admin
    /// API.
    meta: Mutex<MetricMeta>,
    /// Guards the series index; taken for writing only when a series is
    /// added or removed.
    series: RwLock<SeriesIndex>,
}

impl MetricStore {
    fn info(&self) -> MetricInfo {
        let meta = self.meta.lock();
        MetricInfo {
            name: self.name.clone(),
            data_type: self.data_type,
            description: meta.description.clone(),
            unit: meta.unit.clone(),
            retention_policy: meta.retention_policy.clone(),
            created_ns: self.created_ns,
            last_updated_ns: self.last_updated_ns.load(Ordering::Relaxed),
            point_count: self.point_count.load(Ordering::Relaxed).max(0) as u64,
            series_count: self.series.read().by_id.len() as u64,
        }
    }

    fn series_for(&self, tags: &TagSet, next_id: &AtomicU64) -> Arc<SeriesStore> {
        if let Some(series) = self.series.read().by_tags.get(tags) {
            return series.clone();
        }
        let mut index = self.series.write();
        if let Some(series) = index.by_tags.get(tags) {
            return series.clone();
        }
        let tags = Arc::new(tags.clone());
        let series = Arc::new(SeriesStore {
            id: SeriesId(next_id.fetch_add(1, Ordering::Relaxed)),
            tags: tags.clone(),
            data: RwLock::new(SeriesData::new(self.data_type.column_kind())),
        });
        index.by_tags.insert(tags, series.clone());
        index.by_id.insert(series.id, series.clone());
        series
    }
}

/// Storage that keeps everything in memory.
pub struct MemoryStorage {
    /// Guards the metric map; taken for writing only when a metric is
    /// created or deleted.
    metrics: RwLock<HashMap<String, Arc<MetricStore>>>,
    /// Guards the retention policies: name to maximum age.
    policies: RwLock<BTreeMap<String, Duration>>,
    next_series_id: AtomicU64,
}

impl Default for MemoryStorage {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryStorage {
    pub fn new() -> MemoryStorage {
        let policies = default_retention_policies()
            .into_iter()
            .map(|p| (p.name, p.max_age))
            .collect();
        MemoryStorage {
            metrics: RwLock::new(HashMap::new()),
            policies: RwLock::new(policies),
            next_series_id: AtomicU64::new(1),
        }
    }

    fn metric_store(&self, name: &str) -> Option<Arc<MetricStore>> {
        self.metrics.read().get(name).cloned()
    }

    fn new_metric_store(spec: MetricSpec) -> Arc<MetricStore> {
        let now = now_ns();
        let retention_policy = if spec.retention_policy.is_empty() {
            default_policy_for(&spec.name).to_owned()
        } else {
            spec.retention_policy
        };
        Arc::new(MetricStore {
            name: spec.name,
            data_type: spec.data_type,
            created_ns: now,
            last_updated_ns: AtomicI64::new(now),
            point_count: AtomicI64::new(0),
            meta: Mutex::new(MetricMeta {
                description: spec.description,
                unit: spec.unit,
                retention_policy,
            }),
            series: RwLock::new(SeriesIndex::default()),
        })
    }

    /// Returns the metric for a write, creating it with the type inferred
    /// from the first value when it does not exist yet.
    fn metric_for_write(&self, name: &str, kind: ValueKind) -> Arc<MetricStore> {
        if let Some(metric) = self.metric_store(name) {
            return metric;
        }
        let metrics = self.metrics.upgradable_read();
        if let Some(metric) = metrics.get(name) {
            return metric.clone();
        }
        let metric = Self::new_metric_store(MetricSpec {
            name: name.to_owned(),
            data_type: DataType::inferred_from(kind),
            description: String::new(),
            unit: String::new(),
            retention_policy: String::new(),
        });
        let mut metrics = RwLockUpgradableReadGuard::upgrade(metrics);
        metrics.insert(name.to_owned(), metric.clone());
        tracing::debug!(metric = name, data_type = %metric.data_type, "created metric on first write");
        metric
    }

    fn write_entry(&self, entry: &SeriesWrite) -> Result<u64, String> {
        let kind = entry.values.kind();
        let metric = self.metric_for_write(&entry.metric, kind);
        if !metric.data_type.accepts(kind) {
            return Err(format!(
                "value kind {} does not fit metric {:?} of type {}",
                kind.name(),
                metric.name,
                metric.data_type
            ));
        }

        let series = metric.series_for(&entry.tags, &self.next_series_id);
        let mut data = series.data.write();
        let before = data.len() as i64;
        data.append(&entry.times_ns, entry.values.as_slice());
        let after = data.len() as i64;
        drop(data);

        metric
            .point_count
            .fetch_add(after - before, Ordering::Relaxed);
        metric.last_updated_ns.store(now_ns(), Ordering::Relaxed);
        Ok(entry.len() as u64)
    }
}

impl Storage for MemoryStorage {
    fn write(&self, batch: &crate::model::WriteBatch) -> Result<WriteOutcome, StorageError> {
        let mut outcome = WriteOutcome::default();
        for (entry_index, entry) in batch.series.iter().enumerate() {
            match self.write_entry(entry) {
                Ok(accepted) => outcome.accepted += accepted,
                Err(reason) => {
                    outcome.rejected_entries.push(entry_index);
                    outcome.reject_run(entry.first_index, entry.len() as u64, &reason);
                }
            }
        }
        Ok(outcome)
    }

    fn create_metric(&self, spec: MetricSpec) -> Result<MetricInfo, StorageError> {
        if !spec.retention_policy.is_empty()
            && !self.policies.read().contains_key(&spec.retention_policy)
        {
            return Err(StorageError::PolicyNotFound {
                name: spec.retention_policy,
            });
        }
        let mut metrics = self.metrics.write();
        if let Some(existing) = metrics.get(&spec.name) {
            return Err(StorageError::MetricExists {
                name: spec.name,
                existing: existing.data_type,
            });
        }
        let metric = Self::new_metric_store(spec);
        metrics.insert(metric.name.clone(), metric.clone());
        Ok(metric.info())
    }

    fn metric(&self, name: &str) -> Option<MetricInfo> {
        self.metric_store(name).map(|m| m.info())
    }

    fn list_metrics(&self) -> Vec<MetricInfo> {
        let stores: Vec<Arc<MetricStore>> = self.metrics.read().values().cloned().collect();
        let mut infos: Vec<MetricInfo> = stores.iter().map(|m| m.info()).collect();
        infos.sort_by(|a, b| a.name.cmp(&b.name));
        infos
    }

    fn delete_metric(&self, name: &str) -> Result<DeleteOutcome, StorageError> {
        let Some(metric) = self.metrics.write().remove(name) else {
            return Err(StorageError::MetricNotFound {
                name: name.to_owned(),
            });
        };
        let index = metric.series.read();
        Ok(DeleteOutcome {
            points_deleted: index
                .by_id
                .values()
                .map(|s| s.data.read().len() as u64)
                .sum(),
            series_deleted: index.by_id.len() as u64,
        })
    }

    fn set_retention_policy(&self, policy: RetentionPolicy) -> Result<(), StorageError> {
        self.policies.write().insert(policy.name, policy.max_age);
        Ok(())
    }

    fn retention_policies(&self) -> Vec<RetentionPolicy> {
        self.policies
            .read()
            .iter()
            .map(|(name, max_age)| RetentionPolicy {
                name: name.clone(),
                max_age: *max_age,
            })
            .collect()
    }

    fn set_metric_policy(&self, metric: &str, policy: &str) -> Result<(), StorageError> {
        if !self.policies.read().contains_key(policy) {
            return Err(StorageError::PolicyNotFound {
                name: policy.to_owned(),
            });
        }
        let store = self
            .metric_store(metric)
            .ok_or_else(|| StorageError::MetricNotFound {
                name: metric.to_owned(),
            })?;
        store.meta.lock().retention_policy = policy.to_owned();
        Ok(())
    }

    fn delete_before(
        &self,
        metric: &str,
        cutoff_ns: TimestampNs,
    ) -> Result<DeleteOutcome, StorageError> {
        let store = self
            .metric_store(metric)
            .ok_or_else(|| StorageError::MetricNotFound {
                name: metric.to_owned(),
            })?;

        let all: Vec<Arc<SeriesStore>> = store.series.read().by_id.values().cloned().collect();
        let mut outcome = DeleteOutcome::default();
        let mut emptied = Vec::new();
        for series in all {
            let mut data = series.data.write();
            let dropped = data.drop_before(cutoff_ns);
            outcome.points_deleted += dropped as u64;
            if data.is_empty() {
                emptied.push(series.clone());
            }
        }
        store
            .point_count
            .fetch_sub(outcome.points_deleted as i64, Ordering::Relaxed);

        if !emptied.is_empty() {
            let mut index = store.series.write();
            for series in emptied {
                // A write may have landed since the check above.
                if series.data.read().is_empty() {
                    index.by_tags.remove(&series.tags);
                    index.by_id.remove(&series.id);
                    outcome.series_deleted += 1;
                }
            }
        }
        Ok(outcome)
    }

    fn series(&self, metric: &str) -> Vec<SeriesInfo> {
        let Some(store) = self.metric_store(metric) else {
            return Vec::new();
        };
        let index = store.series.read();
        let mut list: Vec<SeriesInfo> = index
            .by_id
            .values()
            .map(|s| SeriesInfo {
                id: s.id,
                tags: s.tags.clone(),
            })
            .collect();
        list.sort_by_key(|s| s.id);
        list
    }

    fn scan(
        &self,
        metric: &str,
        series: SeriesId,
        range: TimeRange,
        visit: &mut dyn FnMut(&[TimestampNs], ColumnSlice<'_>),
    ) -> Result<(), StorageError> {
        let Some(store) = self.metric_store(metric) else {
            return Ok(());
        };
        let Some(series) = store.series.read().by_id.get(&series).cloned() else {
            return Ok(());
        };
        let data = series.data.read();
        let (times, values) = data.range_slices(range);
        if !times.is_empty() {
            visit(times, values);
        }
        Ok(())
    }

    fn stats(&self) -> StorageStats {
        let stores: Vec<Arc<MetricStore>> = self.metrics.read().values().cloned().collect();
        let mut stats = StorageStats {
            engine: "memory",
            metrics: stores.len() as u64,
            ..StorageStats::default()
        };
        for metric in stores {
            let index = metric.series.read();
            stats.series += index.by_id.len() as u64;
            for series in index.by_id.values() {
                let data = series.data.read();
                stats.points += data.len() as u64;
                stats.memory_bytes += (data.memory_bytes() + series.tags.len() * 64 + 128) as u64;
            }
        }
        stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::WriteBatch;

    fn entry(metric: &str, times: Vec<i64>, values: Column) -> SeriesWrite {
        SeriesWrite {
            metric: metric.into(),
            tags: TagSet::default(),
            first_index: 0,
            times_ns: times,
            values,
        }
    }

    fn read_all(storage: &MemoryStorage, metric: &str) -> Vec<(i64, f64)> {
        let mut out = Vec::new();
        for series in storage.series(metric) {
            storage
                .scan(metric, series.id, TimeRange::ALL, &mut |times, values| {
                    for (i, &t) in times.iter().enumerate() {
                        out.push((t, values.get(i).as_f64().unwrap()));
                    }
                })
                .unwrap();
        }
        out
    }

    #[test]
    fn out_of_order_writes_read_sorted_last_wins() {
        let storage = MemoryStorage::new();
        let batch = WriteBatch {
            series: vec![
                entry(
                    "m",
                    vec![30, 10, 20, 10],
                    Column::F64(vec![3.0, 1.0, 2.0, 1.5]),
                ),
                entry("m", vec![20, 40, 40], Column::F64(vec![2.5, 4.0, 4.5])),
            ],
        };
        storage.write(&batch).unwrap();
        assert_eq!(
            read_all(&storage, "m"),
            vec![(10, 1.5), (20, 2.5), (30, 3.0), (40, 4.5)]
        );
        assert_eq!(storage.metric("m").unwrap().point_count, 4);
    }

    #[test]
    fn append_matches_last_write_wins_model() {
        // A small linear congruential generator keeps the test dependency
        // free and repeatable.
        let mut state: u64 = 0x2545_f491_4f6c_dd1d;
        let mut next = move |bound: u64| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1);
            (state >> 33) % bound
        };
        let mut data = SeriesData::new(ValueKind::F64);
        let mut model = std::collections::BTreeMap::new();
        for round in 0..300 {
            let len = next(20) as usize;
            let base = next(500) as i64;
            let times: Vec<i64> = (0..len).map(|_| base + next(40) as i64 - 20).collect();
            let values: Vec<f64> = (0..len).map(|i| (round * 100 + i) as f64).collect();
            data.append(&times, ColumnSlice::F64(&values));
            for (t, v) in times.iter().zip(&values) {
                model.insert(*t, *v);
            }
        }
        let (times, values) = data.range_slices(TimeRange::ALL);
        let stored: Vec<(i64, f64)> = times
            .iter()
            .enumerate()
            .map(|(i, &t)| (t, values.get(i).as_f64().unwrap()))
            .collect();
        let expected: Vec<(i64, f64)> = model.into_iter().collect();
        assert_eq!(stored, expected);
    }

    #[test]
    fn type_mismatch_rejects_entry() {
        let storage = MemoryStorage::new();
        let first = WriteBatch {
            series: vec![entry("m", vec![1], Column::I64(vec![1]))],
        };
        storage.write(&first).unwrap();
        assert_eq!(storage.metric("m").unwrap().data_type, DataType::Integer);

        let mismatched = WriteBatch {
            series: vec![entry("m", vec![2, 3], Column::F64(vec![1.0, 2.0]))],
        };
        let outcome = storage.write(&mismatched).unwrap();
        assert_eq!(outcome.accepted, 0);
        assert_eq!(outcome.rejections.len(), 2);
        assert!(outcome.rejections[0].reason.contains("INTEGER"));
    }

    #[test]
    fn ints_fit_float_metric() {
        let storage = MemoryStorage::new();
        let batch = WriteBatch {
            series: vec![
                entry("m", vec![1], Column::F64(vec![0.5])),
                entry("m", vec![2], Column::I64(vec![2])),
            ],
        };
        let outcome = storage.write(&batch).unwrap();
        assert_eq!(outcome.accepted, 2);
        assert_eq!(read_all(&storage, "m"), vec![(1, 0.5), (2, 2.0)]);
    }

    #[test]
    fn delete_before_drops_old_points_and_empty_series() {
        let storage = MemoryStorage::new();
        let batch = WriteBatch {
            series: vec![entry("m", vec![5, 1, 9], Column::F64(vec![5.0, 1.0, 9.0]))],
        };
        storage.write(&batch).unwrap();
        let outcome = storage.delete_before("m", 6).unwrap();
        assert_eq!(outcome.points_deleted, 2);
        assert_eq!(read_all(&storage, "m"), vec![(9, 9.0)]);
        let outcome = storage.delete_before("m", 100).unwrap();
        assert_eq!(outcome.series_deleted, 1);
        assert!(storage.series("m").is_empty());
    }
}
