//! Background threads of the disk engine. One flushes the head when it
//! is due and then compacts. In `Durability::Interval` mode a second one
//! fsyncs the WAL at the configured interval. Both stop at `close`.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use super::Durability;
use super::engine::Engine;
use super::maintenance::FlushStop;

pub(super) struct Background {
    engine: Arc<Engine>,
    threads: Vec<JoinHandle<()>>,
}

impl Background {
    pub fn start(engine: Arc<Engine>) -> Background {
        let mut threads = Vec::new();
        let maintenance_engine = engine.clone();
        threads.push(
            thread::Builder::new()
                .name("tidemark-flush".to_owned())
                .spawn(move || run_maintenance(&maintenance_engine))
                .expect("spawning the flush thread"),
        );
        if let Durability::Interval(interval) = engine.config.durability {
            let sync_engine = engine.clone();
            threads.push(
                thread::Builder::new()
                    .name("tidemark-wal-sync".to_owned())
                    .spawn(move || run_wal_sync(&sync_engine, interval))
                    .expect("spawning the wal sync thread"),
            );
        }
        Background { engine, threads }
    }

    /// Signals the threads to stop and waits for them.
    pub fn stop(self) {
        {
            let mut wake = self.engine.wake.lock();
            wake.stopping = true;
            self.engine.wake_signal.notify_all();
        }
        for thread in self.threads {
            if thread.join().is_err() {
                tracing::error!("a disk engine background thread panicked");
            }
        }
    }
}

/// Waits up to `timeout` for a wake-up. Returns whether a flush was
/// requested, clearing the request, or `None` when the engine is
/// stopping.
fn wait_for_flush(engine: &Engine, timeout: Duration) -> Option<bool> {
    let mut wake = engine.wake.lock();
    if !wake.stopping && !wake.flush_requested {
        engine.wake_signal.wait_for(&mut wake, timeout);
    }
    if wake.stopping {
        return None;
    }
    Some(std::mem::take(&mut wake.flush_requested))
}

/// Waits up to `timeout` or until any wake-up; returns false when the
/// engine is stopping. Leaves flush requests to the flush thread.
fn wait_for_tick(engine: &Engine, timeout: Duration) -> bool {
    let mut wake = engine.wake.lock();
    if !wake.stopping {
        engine.wake_signal.wait_for(&mut wake, timeout);
    }
    !wake.stopping
}

fn run_maintenance(engine: &Engine) {
    while let Some(requested) = wait_for_flush(engine, engine.config.maintenance_interval) {
        if (requested || engine.flush_due())
            && let Err(err) = engine.flush(FlushStop::Complete)
        {
            tracing::error!(
                data_dir = %engine.dirs.root.display(),
                error = %err,
                "head flush failed; retrying at the next check"
            );
            continue;
        }
        // `compact` logs each failed metric once per distinct error.
        if let Err(err) = engine.compact() {
            tracing::debug!(
                data_dir = %engine.dirs.root.display(),
                error = %err,
                "compaction failed; retrying at the next check"
            );
        }
    }
}

fn run_wal_sync(engine: &Engine, interval: Duration) {
    while wait_for_tick(engine, interval) {
        if let Err(err) = engine.wal().sync() {
            tracing::error!(data_dir = %engine.dirs.root.display(), error = %err, "periodic wal fsync failed");
            return;
        }
    }
}
