//! Live windows: incremental aggregation of incoming points into tumbling
//! or hopping windows, pushed to subscribers as the server clock closes
//! them.
//!
//! Neighbours: the ingest threads call [`LiveHub::observe`] (through
//! [`BatchObserver`]) after each batch is stored; `crate::grpc::live`
//! calls [`LiveHub::subscribe`] and streams the subscriber's queue to the
//! client. Storage is read only to seed a new aggregation's open windows
//! and for backfill, never for live windows.
//!
//! Subscribers whose requests are equal share one [`SharedAggregation`].
//! A clock thread closes windows (FINAL), sends PARTIAL and REVISION
//! updates in ON_UPDATE mode, and sends heartbeats. It sleeps until the
//! next moment a window can close or a heartbeat can fall due, and a new
//! aggregation wakes it early. Every update of one tick goes to a
//! subscriber's queue in one push, and each window update is one
//! [`SharedWindow`], so the gRPC layer can encode it once for all
//! subscribers.

mod queue;
pub mod window;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use parking_lot::{Condvar, Mutex, RwLock};

pub use queue::SubscriberQueue;
use window::{WindowResult, WindowSpec, WindowState, WindowTable, finish_all, group_pairs};

use crate::aggregate::Accumulator;
use crate::clock::now_ns;
use crate::ingest::{ApplyGate, BatchObserver};
use crate::model::{GroupKey, TimeRange, TimestampNs, WriteBatch, group_key};
use crate::storage::{Storage, StorageError, WriteOutcome};

/// One message for a subscriber.
#[derive(Debug, Clone, PartialEq)]
pub enum LiveUpdate {
    Window(Arc<SharedWindow>),
    Heartbeat {
        watermark_ns: TimestampNs,
        late_points: u64,
    },
    Gap {
        dropped: u64,
    },
}

/// A window update, shared by every subscriber queue it is pushed to.
#[derive(Debug)]
pub struct SharedWindow {
    pub result: WindowResult,
    /// The encoded update, set by the first subscriber stream that sends
    /// it and reused by the others. The live module never reads it.
    pub encoded: OnceLock<Bytes>,
}

impl SharedWindow {
    pub fn new(result: WindowResult) -> SharedWindow {
        SharedWindow {
            result,
            encoded: OnceLock::new(),
        }
    }
}

/// Compares the window results only, since the encoding is a cache.
impl PartialEq for SharedWindow {
    fn eq(&self, other: &SharedWindow) -> bool {
        self.result == other.result
    }
}

/// Settings of the live hub.
#[derive(Debug, Clone)]
pub struct LiveConfig {
    /// Maximum time the clock thread sleeps while an ON_UPDATE aggregation
    /// exists, so PARTIAL and REVISION updates go out at most this late.
    /// Windows close and heartbeats go out at their own deadlines,
    /// independent of this setting.
    pub update_check_interval: Duration,
    /// A heartbeat goes out when nothing else was sent for this long.
    pub heartbeat_interval: Duration,
    /// Capacity of each subscriber's queue; when it is full, the oldest update is dropped.
    pub subscriber_queue_capacity: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            update_check_interval: Duration::from_millis(5),
            heartbeat_interval: Duration::from_secs(5),
            subscriber_queue_capacity: 1024,
        }
    }
}

struct AggregationState {
    table: WindowTable,
    subscribers: Vec<Arc<SubscriberQueue>>,
    /// Points for closed windows since the last heartbeat.
    late_points: u64,
    /// Points not aggregated because the window table was full.
    dropped_points: u64,
    last_sent_ns: TimestampNs,
    last_heartbeat_ns: TimestampNs,
}

/// The aggregation state shared by every subscriber of one request.
pub struct SharedAggregation {
    key: Vec<u8>,
    spec: WindowSpec,
    /// Guards the open windows and the subscriber list. Ingest threads
    /// take it per batch, the clock thread per tick.
    state: Mutex<AggregationState>,
}

impl SharedAggregation {
    /// Pushes all `updates` to every subscriber, one push per queue.
    fn broadcast(state: &mut AggregationState, updates: &[LiveUpdate], now_ns: TimestampNs) {
        if updates.is_empty() {
            return;
        }
        for subscriber in &state.subscribers {
            subscriber.push_all(updates);
        }
        state.last_sent_ns = now_ns;
    }

    /// Closes due windows, sends updates and heartbeats, and returns the
    /// next server time at which this aggregation needs a tick.
    fn tick(
        &self,
        now_ns: TimestampNs,
        heartbeat_interval_ns: i64,
        update_check_ns: i64,
    ) -> TimestampNs {
        let mut state = self.state.lock();
        self.tick_locked(&mut state, now_ns, heartbeat_interval_ns);

        let spec = &self.spec;
        let mut next = spec.next_close_after(now_ns).min(
            state
                .last_heartbeat_ns
                .saturating_add(heartbeat_interval_ns),
        );
        // A quiet aggregation sends a heartbeat once nothing was sent for
        // the interval; late points make one due after the last heartbeat.
        next = next.min(state.last_sent_ns.saturating_add(heartbeat_interval_ns));
        if let window::EmitMode::OnUpdate { .. } = spec.emit {
            // NOTE: a window becomes dirty on ingest without waking the
            // clock, so ON_UPDATE aggregations are polled instead.
            next = next.min(now_ns.saturating_add(update_check_ns));
        }
        next
    }

    fn tick_locked(
        &self,
        state: &mut AggregationState,
        now_ns: TimestampNs,
        heartbeat_interval_ns: i64,
    ) {
        let spec = &self.spec;
        let mut updates = Vec::new();

        for ((start_ns, key), mut window) in state.table.take_closed(spec, now_ns) {
            let result = WindowResult {
                start_ns,
                end_ns: spec.end_of(start_ns),
                group: group_pairs(&spec.group_by, &key),
                count: window.accumulator.count(),
                values: window.accumulator.finish(&spec.functions, spec.window_ns),
                state: WindowState::Final,
                revision: window.updates_sent,
            };
            updates.push(LiveUpdate::Window(Arc::new(SharedWindow::new(result))));
        }

        if let window::EmitMode::OnUpdate { update_interval_ns } = spec.emit {
            for ((start_ns, key), window) in state.table.windows.iter_mut() {
                if !window.dirty
                    || now_ns.saturating_sub(window.last_update_ns) < update_interval_ns
                {
                    continue;
                }
                let end_ns = spec.end_of(*start_ns);
                let result = WindowResult {
                    start_ns: *start_ns,
                    end_ns,
                    group: group_pairs(&spec.group_by, key),
                    count: window.accumulator.count(),
                    values: window
                        .accumulator
                        .clone()
                        .finish(&spec.functions, spec.window_ns),
                    state: if now_ns < end_ns {
                        WindowState::Partial
                    } else {
                        WindowState::Revision
                    },
                    revision: window.updates_sent,
                };
                window.updates_sent += 1;
                window.dirty = false;
                window.last_update_ns = now_ns;
                updates.push(LiveUpdate::Window(Arc::new(SharedWindow::new(result))));
            }
        }

        let last_sent_ns = if updates.is_empty() {
            state.last_sent_ns
        } else {
            now_ns
        };
        let quiet = now_ns.saturating_sub(last_sent_ns) >= heartbeat_interval_ns;
        let late_due = state.late_points > 0
            && now_ns.saturating_sub(state.last_heartbeat_ns) >= heartbeat_interval_ns;
        if quiet || late_due {
            updates.push(LiveUpdate::Heartbeat {
                watermark_ns: now_ns.saturating_sub(spec.allowed_lateness_ns),
                late_points: std::mem::take(&mut state.late_points),
            });
            state.last_heartbeat_ns = now_ns;
            if state.dropped_points > 0 {
                tracing::warn!(
                    metric = %spec.metric,
                    dropped_points = state.dropped_points,
                    max_open_windows = window::MAX_OPEN_WINDOWS,
                    "live aggregation skipped points because too many windows were open"
                );
                state.dropped_points = 0;
            }
        }
        Self::broadcast(state, &updates, now_ns);
    }
}

/// A live subscription; dropping it unsubscribes.
pub struct Subscription {
    queue: Arc<SubscriberQueue>,
    aggregation: Arc<SharedAggregation>,
    hub: Arc<HubInner>,
}

impl Subscription {
    pub async fn next(&self) -> Option<LiveUpdate> {
        self.queue.next().await
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.hub.unsubscribe(&self.aggregation, &self.queue);
    }
}

struct HubInner {
    storage: Arc<dyn Storage>,
    gate: ApplyGate,
    config: LiveConfig,
    /// Guards the registry: metric to its aggregations, and request key to
    /// aggregation. Ingest threads take it for reading per batch.
    registry: RwLock<Registry>,
    stopping: AtomicBool,
    /// Guards the flag that makes the clock thread recompute its deadline.
    /// It is set when an aggregation is created or the hub stops.
    clock_signal: Mutex<bool>,
    /// Wakes the clock thread from its sleep; paired with `clock_signal`.
    clock_wakeup: Condvar,
}

#[derive(Default)]
struct Registry {
    by_metric: HashMap<String, Vec<Arc<SharedAggregation>>>,
    by_key: HashMap<Vec<u8>, Arc<SharedAggregation>>,
}

impl HubInner {
    fn wake_clock(&self) {
        *self.clock_signal.lock() = true;
        self.clock_wakeup.notify_one();
    }

    fn unsubscribe(&self, aggregation: &Arc<SharedAggregation>, queue: &Arc<SubscriberQueue>) {
        let mut registry = self.registry.write();
        let mut state = aggregation.state.lock();
        state.subscribers.retain(|s| !Arc::ptr_eq(s, queue));
        if !state.subscribers.is_empty() {
            return;
        }
        drop(state);
        registry.by_key.remove(&aggregation.key);
        if let Some(list) = registry.by_metric.get_mut(&aggregation.spec.metric) {
            list.retain(|a| !Arc::ptr_eq(a, aggregation));
            if list.is_empty() {
                registry.by_metric.remove(&aggregation.spec.metric);
            }
        }
        tracing::debug!(metric = %aggregation.spec.metric, "removed live aggregation with no subscribers");
    }
}

/// Registry of live aggregations and their clock thread.
pub struct LiveHub {
    inner: Arc<HubInner>,
    clock_thread: Mutex<Option<JoinHandle<()>>>,
}

/// Most windows a subscriber may request as backfill.
pub const MAX_BACKFILL_WINDOWS: u32 = 10_000;

impl LiveHub {
    /// Creates the hub and starts its clock thread.
    pub fn start(storage: Arc<dyn Storage>, gate: ApplyGate, config: LiveConfig) -> Arc<LiveHub> {
        let inner = Arc::new(HubInner {
            storage,
            gate,
            config,
            registry: RwLock::new(Registry::default()),
            stopping: AtomicBool::new(false),
            clock_signal: Mutex::new(false),
            clock_wakeup: Condvar::new(),
        });
        let clock_inner = inner.clone();
        let thread = std::thread::Builder::new()
            .name("tidemark-live-clock".into())
            .spawn(move || run_clock(clock_inner))
            .expect("failed to spawn the live clock thread");
        Arc::new(LiveHub {
            inner,
            clock_thread: Mutex::new(Some(thread)),
        })
    }

    /// Subscribes to the aggregation described by `spec`, sharing state
    /// with equal requests (`key` is the canonical request encoding). The
    /// first updates are the last `backfill_windows` closed windows,
    /// computed from storage.
    pub fn subscribe(
        &self,
        key: Vec<u8>,
        spec: WindowSpec,
        backfill_windows: u32,
    ) -> Result<Subscription, StorageError> {
        let queue = Arc::new(SubscriberQueue::new(
            self.inner.config.subscriber_queue_capacity,
        ));
        let existing = self.inner.registry.read().by_key.get(&key).cloned();

        let aggregation = match existing {
            Some(aggregation) => aggregation,
            None => self.create_aggregation(key, spec)?,
        };

        // Under the state lock, windows due now are closed for the current
        // subscribers first, so the newcomer gets each closed window from
        // backfill and each later one live, never both.
        let now = now_ns();
        let mut state = aggregation.state.lock();
        aggregation.tick_locked(&mut state, now, i64::MAX);
        // NOTE: ingest into this aggregation waits while backfill scans
        // storage under the state lock.
        if backfill_windows > 0 {
            for result in backfill(
                self.inner.storage.as_ref(),
                &aggregation.spec,
                backfill_windows,
                now,
            )? {
                queue.push(LiveUpdate::Window(Arc::new(SharedWindow::new(result))));
            }
        }
        state.subscribers.push(queue.clone());
        drop(state);

        tracing::debug!(metric = %aggregation.spec.metric, backfill_windows, "subscribed to live windows");
        Ok(Subscription {
            queue,
            aggregation,
            hub: self.inner.clone(),
        })
    }

    /// Creates a shared aggregation and seeds its open windows from
    /// storage. Ingest is paused meanwhile (the apply gate), so every
    /// point is either in the seed or observed later, never both.
    fn create_aggregation(
        &self,
        key: Vec<u8>,
        spec: WindowSpec,
    ) -> Result<Arc<SharedAggregation>, StorageError> {
        let _paused = self.inner.gate.write();
        let mut registry = self.inner.registry.write();
        if let Some(existing) = registry.by_key.get(&key) {
            return Ok(existing.clone());
        }

        let now = now_ns();
        let mut table = WindowTable::default();
        let seed_from = spec.latest_closed_start(now).saturating_add(spec.slide_ns);
        scan_matching(
            self.inner.storage.as_ref(),
            &spec,
            TimeRange::new(seed_from, i64::MAX),
            &mut |group, series, time_ns, value| {
                table.add(&spec, group, series, time_ns, value, now);
            },
        )?;
        for window in table.windows.values_mut() {
            window.dirty = true;
        }

        let aggregation = Arc::new(SharedAggregation {
            key: key.clone(),
            spec,
            state: Mutex::new(AggregationState {
                table,
                subscribers: Vec::new(),
                late_points: 0,
                dropped_points: 0,
                last_sent_ns: now,
                last_heartbeat_ns: now,
            }),
        });
        registry.by_key.insert(key, aggregation.clone());
        registry
            .by_metric
            .entry(aggregation.spec.metric.clone())
            .or_default()
            .push(aggregation.clone());
        drop(registry);
        // The clock may be asleep until a later deadline than this
        // aggregation's first window close.
        self.inner.wake_clock();
        tracing::debug!(metric = %aggregation.spec.metric, "created live aggregation");
        Ok(aggregation)
    }

    /// Number of shared aggregations, for tests and statistics.
    pub fn aggregation_count(&self) -> usize {
        self.inner.registry.read().by_key.len()
    }

    /// Stops the clock thread and ends every subscriber's stream.
    pub fn shutdown(&self) {
        self.inner.stopping.store(true, Ordering::Relaxed);
        self.inner.wake_clock();
        if let Some(thread) = self.clock_thread.lock().take()
            && thread.join().is_err()
        {
            tracing::error!("the live clock thread panicked");
        }
        let registry = self.inner.registry.read();
        for aggregation in registry.by_key.values() {
            for subscriber in &aggregation.state.lock().subscribers {
                subscriber.close();
            }
        }
    }
}

impl BatchObserver for LiveHub {
    fn observe(&self, batch: &WriteBatch, outcome: &WriteOutcome) {
        let registry = self.inner.registry.read();
        if registry.by_metric.is_empty() {
            return;
        }
        for (entry_index, entry) in batch.series.iter().enumerate() {
            let Some(aggregations) = registry.by_metric.get(&entry.metric) else {
                continue;
            };
            if outcome.rejected_entries.contains(&entry_index) {
                continue;
            }
            // Series ids are not known here; a hash of the tags is used instead,
            // which is enough to tell counters apart for INCREASE.
            let series = crate::model::SeriesId(tag_hash(&entry.tags));
            for aggregation in aggregations {
                let spec = &aggregation.spec;
                if !spec.filters.matches_series(&entry.tags) {
                    continue;
                }
                let group = group_key(&entry.tags, &spec.group_by);
                let points = entry
                    .times_ns
                    .iter()
                    .enumerate()
                    .map(|(i, &time_ns)| (time_ns, entry.values.get(i)))
                    .filter(|&(time_ns, value)| spec.filters.matches_point(time_ns, value));
                let mut state = aggregation.state.lock();
                // Read under the lock: a window the clock closed before
                // this thread got the lock is closed at this time too, so
                // its points count as late and never reopen it.
                let now = now_ns();
                let outcome = state.table.add_run(spec, &group, series, points, now);
                state.late_points += outcome.late;
                state.dropped_points += outcome.dropped;
            }
        }
    }
}

fn tag_hash(tags: &crate::model::TagSet) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    tags.hash(&mut hasher);
    hasher.finish()
}

/// Calls `f` for every stored point of the spec's metric inside `range`
/// that passes its filters.
fn scan_matching(
    storage: &dyn Storage,
    spec: &WindowSpec,
    range: TimeRange,
    f: &mut dyn FnMut(&GroupKey, crate::model::SeriesId, TimestampNs, crate::model::ValueRef<'_>),
) -> Result<(), StorageError> {
    let range = spec.filters.narrow_range(range);
    if range.is_empty() {
        return Ok(());
    }
    for series in storage.series(&spec.metric) {
        if !spec.filters.matches_series(&series.tags) {
            continue;
        }
        let group = group_key(&series.tags, &spec.group_by);
        let id = crate::model::SeriesId(tag_hash(&series.tags));
        storage.scan(&spec.metric, series.id, range, &mut |times, values| {
            for (i, &time_ns) in times.iter().enumerate() {
                let value = values.get(i);
                if spec.filters.matches_point(time_ns, value) {
                    f(&group, id, time_ns, value);
                }
            }
        })?;
    }
    Ok(())
}

/// Computes the last `count` windows closed at `now_ns` from storage.
fn backfill(
    storage: &dyn Storage,
    spec: &WindowSpec,
    count: u32,
    now_ns: TimestampNs,
) -> Result<Vec<WindowResult>, StorageError> {
    let last_start = spec.latest_closed_start(now_ns);
    let span = spec
        .slide_ns
        .saturating_mul(i64::from(count.saturating_sub(1)));
    let first_start = last_start.saturating_sub(span);
    let range = TimeRange::new(first_start, spec.end_of(last_start));

    let mut accumulators: HashMap<(TimestampNs, GroupKey), Accumulator> = HashMap::new();
    scan_matching(
        storage,
        spec,
        range,
        &mut |group, series, time_ns, value| {
            spec.for_each_window(time_ns, |start_ns| {
                if start_ns < first_start || start_ns > last_start {
                    return;
                }
                accumulators
                    .entry((start_ns, group.clone()))
                    .or_insert_with(|| Accumulator::new(&spec.functions, None))
                    .push(series, time_ns, value);
            });
        },
    )?;
    Ok(finish_all(spec, accumulators, WindowState::Final))
}

/// Shortest sleep of the clock thread, so that windows with a slide of
/// a few nanoseconds do not keep it spinning.
const MIN_CLOCK_SLEEP_NS: i64 = 100_000;

fn run_clock(inner: Arc<HubInner>) {
    let heartbeat_ns =
        i64::try_from(inner.config.heartbeat_interval.as_nanos()).unwrap_or(i64::MAX);
    let update_check_ns =
        i64::try_from(inner.config.update_check_interval.as_nanos()).unwrap_or(i64::MAX);
    while !inner.stopping.load(Ordering::Relaxed) {
        let aggregations: Vec<Arc<SharedAggregation>> =
            inner.registry.read().by_key.values().cloned().collect();
        let now = now_ns();
        // With no aggregation the clock sleeps until one is created.
        let mut next = now.saturating_add(heartbeat_ns);
        for aggregation in aggregations {
            next = next.min(aggregation.tick(now, heartbeat_ns, update_check_ns));
        }

        // The deadline is server (wall clock) time; the sleep is measured
        // on the monotonic clock from the time left.
        let sleep_ns = next.saturating_sub(now_ns()).max(MIN_CLOCK_SLEEP_NS);
        let deadline = Instant::now() + Duration::from_nanos(sleep_ns.unsigned_abs());
        let mut signal = inner.clock_signal.lock();
        if !*signal {
            inner.clock_wakeup.wait_until(&mut signal, deadline);
        }
        *signal = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aggregate::AggFn;
    use crate::model::filter::FilterSet;
    use crate::storage::memory::MemoryStorage;
    use window::EmitMode;

    fn spec() -> WindowSpec {
        WindowSpec {
            metric: "m".into(),
            filters: FilterSet::default(),
            group_by: vec![],
            window_ns: 1_000_000_000,
            slide_ns: 1_000_000_000,
            functions: vec![AggFn::Count],
            allowed_lateness_ns: 0,
            emit: EmitMode::OnClose,
        }
    }

    #[test]
    fn equal_requests_share_one_aggregation() {
        let storage: Arc<dyn Storage> = Arc::new(MemoryStorage::new());
        let hub = LiveHub::start(storage, Arc::new(RwLock::new(())), LiveConfig::default());

        let first = hub.subscribe(b"same".to_vec(), spec(), 0).unwrap();
        let second = hub.subscribe(b"same".to_vec(), spec(), 0).unwrap();
        let other = hub.subscribe(b"other".to_vec(), spec(), 0).unwrap();
        assert_eq!(hub.aggregation_count(), 2);
        assert!(Arc::ptr_eq(&first.aggregation, &second.aggregation));

        drop(first);
        assert_eq!(hub.aggregation_count(), 2);
        drop(second);
        assert_eq!(hub.aggregation_count(), 1);
        drop(other);
        assert_eq!(hub.aggregation_count(), 0);
        hub.shutdown();
    }
}
