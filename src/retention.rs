//! The retention pass: deletes points older than their metric's policy.
//!
//! Age is measured from the server clock, never from the newest stored
//! timestamp, so a metric that stopped receiving points still expires. A
//! background task runs the pass every `interval` (one hour by default),
//! and `AdminService.ApplyRetention` runs it at once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::clock::now_ns;
use crate::storage::{DeleteOutcome, Storage, StorageError};

/// Counts of one retention pass.
#[derive(Debug, Clone, Copy, Default)]
pub struct RetentionOutcome {
    pub deleted: DeleteOutcome,
    pub metrics_checked: u64,
}

/// Runs one retention pass with the current server time.
pub fn apply_retention(storage: &dyn Storage) -> Result<RetentionOutcome, StorageError> {
    apply_retention_at(storage, now_ns())
}

/// Runs one retention pass as if the server clock read `now_ns`.
pub fn apply_retention_at(
    storage: &dyn Storage,
    now_ns: i64,
) -> Result<RetentionOutcome, StorageError> {
    let started = Instant::now();
    let policies = storage.retention_policies();
    let mut outcome = RetentionOutcome::default();

    for metric in storage.list_metrics() {
        outcome.metrics_checked += 1;
        let Some(policy) = policies.iter().find(|p| p.name == metric.retention_policy) else {
            tracing::warn!(
                metric = %metric.name,
                policy = %metric.retention_policy,
                "metric names a retention policy that does not exist; its points are kept"
            );
            continue;
        };
        // In i128 because a policy may be longer than the 292 years an i64
        // of nanoseconds spans; then nothing of this metric can expire.
        let cutoff_ns = i128::from(now_ns) - policy.max_age.as_nanos() as i128;
        let Ok(cutoff_ns) = i64::try_from(cutoff_ns) else {
            continue;
        };
        match storage.delete_before(&metric.name, cutoff_ns) {
            Ok(deleted) => outcome.deleted += deleted,
            // Deleted by a client while the pass ran.
            Err(StorageError::MetricNotFound { .. }) => {}
            Err(error) => return Err(error),
        }
    }

    tracing::info!(
        metrics = outcome.metrics_checked,
        points_deleted = outcome.deleted.points_deleted,
        series_deleted = outcome.deleted.series_deleted,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "retention pass finished"
    );
    Ok(outcome)
}

/// Spawns the periodic retention task; it ends when `shutdown` fires.
pub fn spawn_retention_task(
    storage: Arc<dyn Storage>,
    interval: Duration,
    mut shutdown: tokio::sync::watch::Receiver<bool>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(interval);
        // The first tick fires at once; skip it so start-up stays quick.
        ticker.tick().await;
        loop {
            tokio::select! {
                _ = ticker.tick() => {}
                _ = shutdown.changed() => return,
            }
            let storage = storage.clone();
            let result =
                tokio::task::spawn_blocking(move || apply_retention(storage.as_ref())).await;
            match result {
                Ok(Ok(_)) => {}
                Ok(Err(error)) => tracing::error!(%error, "retention pass failed"),
                Err(error) => tracing::error!(%error, "retention pass panicked"),
            }
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Column, SeriesWrite, TagSet, WriteBatch};
    use crate::storage::memory::MemoryStorage;

    const DAY_NS: i64 = 24 * 3600 * 1_000_000_000;

    fn write(storage: &MemoryStorage, metric: &str, times: Vec<i64>) {
        let values = Column::F64(times.iter().map(|_| 1.0).collect());
        let batch = WriteBatch {
            series: vec![SeriesWrite {
                metric: metric.into(),
                tags: TagSet::default(),
                first_index: 0,
                times_ns: times,
                values,
            }],
        };
        storage.write(&batch).unwrap();
    }

    #[test]
    fn default_policies_follow_metric_names() {
        let now = 1_000 * DAY_NS;
        let storage = MemoryStorage::new();
        // 40 days old: beyond low_frequency (30d), inside archive (365d).
        write(&storage, "job_errors", vec![now - 40 * DAY_NS, now]);
        write(
            &storage,
            "step_duration",
            vec![now - 8 * DAY_NS, now - 6 * DAY_NS],
        );
        write(
            &storage,
            "throughput",
            vec![now - 31 * DAY_NS, now - 29 * DAY_NS],
        );

        let outcome = apply_retention_at(&storage, now).unwrap();

        assert_eq!(outcome.metrics_checked, 3);
        assert_eq!(storage.metric("job_errors").unwrap().point_count, 2);
        assert_eq!(storage.metric("step_duration").unwrap().point_count, 1);
        assert_eq!(storage.metric("throughput").unwrap().point_count, 1);
        assert_eq!(outcome.deleted.points_deleted, 2);
    }

    #[test]
    fn policy_longer_than_i64_range_deletes_nothing() {
        let storage = MemoryStorage::new();
        write(
            &storage,
            "ancient",
            vec![i64::MIN, -7_500_000_000_000_000_000],
        );
        storage
            .set_retention_policy(crate::storage::RetentionPolicy {
                name: "forever".into(),
                max_age: std::time::Duration::from_secs(1000 * 365 * 24 * 3600),
            })
            .unwrap();
        storage.set_metric_policy("ancient", "forever").unwrap();

        let outcome = apply_retention_at(&storage, 1_700_000_000_000_000_000).unwrap();

        assert_eq!(outcome.deleted.points_deleted, 0);
        assert_eq!(storage.metric("ancient").unwrap().point_count, 2);
    }

    #[test]
    fn age_counts_from_server_clock_not_newest_point() {
        let now = 1_000 * DAY_NS;
        let storage = MemoryStorage::new();
        // All points are old; the newest one must expire too.
        write(
            &storage,
            "stale",
            vec![now - 50 * DAY_NS, now - 40 * DAY_NS],
        );
        apply_retention_at(&storage, now).unwrap();
        assert!(storage.series("stale").is_empty());
    }
}
