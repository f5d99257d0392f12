//! The ingest pipeline: from validated write batches to storage and the
//! live window aggregator.
//!
//! gRPC handlers (in `crate::grpc::ingest`) decode and validate a request
//! message into a [`WriteBatch`], then call [`IngestPipeline::submit`].
//! The batch travels through a bounded crossbeam channel to dedicated
//! ingest threads, which apply it to [`Storage`] and then hand the applied
//! points to the [`BatchObserver`] (the live hub). `submit` resolves
//! after the batch is applied, so a point is visible to queries before it
//! is acknowledged, and returns a [`CommitTicket`]. Handlers acknowledge
//! only after [`IngestPipeline::wait_durable`] for the ticket, which
//! waits for the WAL commit on a blocking thread. The ingest threads do not
//! wait for the commit's fsync, so a stream can apply its next message
//! while the last one is being synced, and one fsync covers the batches
//! of many streams.
//!
//! Backpressure: a tokio task must never block on the channel. Each job
//! carries a permit of a semaphore sized like the channel, and `submit`
//! awaits a permit before `try_send`, so a full pipeline suspends the
//! handler instead of a worker thread. A suspended handler stops reading
//! its stream, and HTTP/2 flow control slows the client.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use crossbeam_channel::{Receiver, Sender, TrySendError};
use parking_lot::{Mutex, RwLock};
use tokio::sync::{OwnedSemaphorePermit, Semaphore, oneshot};

use crate::model::WriteBatch;
use crate::storage::{CommitTicket, Storage, StorageError, WriteOutcome};

/// Errors of the ingest pipeline.
#[derive(Debug, thiserror::Error)]
pub enum IngestError {
    #[error("server is shutting down; the batch was not applied")]
    ShuttingDown,

    #[error("ingest thread stopped before it answered; the batch may not be applied")]
    WorkerLost,

    #[error("the durability wait stopped unexpectedly: {0}")]
    WaitLost(String),

    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// Receives every applied batch after storage accepted it.
pub trait BatchObserver: Send + Sync + 'static {
    /// Called on an ingest thread after `outcome` was stored; entries in
    /// `outcome.rejected_entries` were not stored and must be skipped.
    fn observe(&self, batch: &WriteBatch, outcome: &WriteOutcome);
}

/// An observer that ignores batches, for engines without live windows.
pub struct NoObserver;

impl BatchObserver for NoObserver {
    fn observe(&self, _batch: &WriteBatch, _outcome: &WriteOutcome) {}
}

/// Lock held for reading across "write to storage, then observe" on every
/// ingest thread. The live hub takes it for writing while it seeds a new
/// aggregation from storage, so no point is missed or counted twice.
pub type ApplyGate = Arc<RwLock<()>>;

/// Pipeline sizing.
#[derive(Debug, Clone)]
pub struct IngestConfig {
    /// Number of dedicated ingest threads.
    pub threads: usize,
    /// Capacity of the channel in batches. When it is full, `submit`
    /// waits asynchronously for a free slot.
    pub queue_capacity: usize,
}

impl Default for IngestConfig {
    fn default() -> Self {
        IngestConfig {
            threads: 2,
            queue_capacity: 64,
        }
    }
}

/// An applied batch: what storage accepted, and the ticket to wait for
/// before acknowledging it.
#[derive(Debug)]
pub struct Applied {
    pub outcome: WriteOutcome,
    pub ticket: CommitTicket,
}

struct IngestJob {
    batch: WriteBatch,
    reply: oneshot::Sender<Result<Applied, StorageError>>,
    /// Released when the job is dropped, after it is applied.
    _permit: OwnedSemaphorePermit,
}

/// Handle to the ingest threads; cheap to share behind an `Arc`.
pub struct IngestPipeline {
    storage: Arc<dyn Storage>,
    /// `None` after shutdown started, so new submissions fail fast.
    sender: RwLock<Option<Sender<IngestJob>>>,
    /// One permit per free channel slot.
    permits: Arc<Semaphore>,
    /// Join handles, taken by `shutdown`.
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl IngestPipeline {
    /// Starts the ingest threads.
    pub fn start(
        storage: Arc<dyn Storage>,
        observer: Arc<dyn BatchObserver>,
        gate: ApplyGate,
        config: IngestConfig,
    ) -> IngestPipeline {
        let capacity = config.queue_capacity.max(1);
        let (sender, receiver) = crossbeam_channel::bounded::<IngestJob>(capacity);

        let threads = (0..config.threads.max(1))
            .map(|i| {
                let receiver = receiver.clone();
                let storage = storage.clone();
                let observer = observer.clone();
                let gate = gate.clone();
                std::thread::Builder::new()
                    .name(format!("tidemark-ingest-{i}"))
                    .spawn(move || run_ingest_thread(receiver, storage, observer, gate))
                    .expect("failed to spawn an ingest thread")
            })
            .collect();

        IngestPipeline {
            storage,
            sender: RwLock::new(Some(sender)),
            permits: Arc::new(Semaphore::new(capacity)),
            threads: Mutex::new(threads),
        }
    }

    /// Applies a batch and waits until it is stored and observed, but not
    /// until it is durable: see [`IngestPipeline::wait_durable`].
    pub async fn submit(&self, batch: WriteBatch) -> Result<Applied, IngestError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| IngestError::ShuttingDown)?;

        let (reply, answer) = oneshot::channel();
        let job = IngestJob {
            batch,
            reply,
            _permit: permit,
        };

        {
            let sender = self.sender.read();
            let Some(sender) = sender.as_ref() else {
                return Err(IngestError::ShuttingDown);
            };
            // The permit guarantees a free slot, so `Full` cannot happen
            // unless the accounting is broken.
            match sender.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Disconnected(_)) => return Err(IngestError::ShuttingDown),
                Err(TrySendError::Full(_)) => {
                    unreachable!("ingest channel full although a permit was held")
                }
            }
        }

        match answer.await {
            Ok(result) => Ok(result?),
            Err(_) => Err(IngestError::WorkerLost),
        }
    }

    /// Waits until every batch up to `ticket` is durable (as the storage
    /// engine's mode defines it). The wait blocks on the WAL's group
    /// commit, so it runs on tokio's blocking pool.
    pub async fn wait_durable(&self, ticket: CommitTicket) -> Result<(), IngestError> {
        if ticket == CommitTicket::NONE {
            return Ok(());
        }
        let storage = self.storage.clone();
        tokio::task::spawn_blocking(move || storage.wait_durable(ticket))
            .await
            .map_err(|e| IngestError::WaitLost(e.to_string()))?
            .map_err(IngestError::from)
    }

    /// Stops accepting batches, lets the threads drain what is queued,
    /// and joins them.
    pub fn shutdown(&self) {
        self.sender.write().take();
        self.permits.close();
        let threads: Vec<JoinHandle<()>> = std::mem::take(&mut *self.threads.lock());
        for thread in threads {
            if thread.join().is_err() {
                tracing::error!("an ingest thread panicked during shutdown");
            }
        }
    }
}

impl Drop for IngestPipeline {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn run_ingest_thread(
    receiver: Receiver<IngestJob>,
    storage: Arc<dyn Storage>,
    observer: Arc<dyn BatchObserver>,
    gate: ApplyGate,
) {
    // The loop ends when every sender is gone and the queue is empty.
    for job in receiver {
        let started = Instant::now();
        let points = job.batch.point_count();

        let result = {
            let _applying = gate.read();
            // NOTE: live windows see the points before they are durable.
            // After a crash they may have counted points that the WAL lost
            // and that were never acknowledged to their writer.
            let result = storage.write_applied(&job.batch);
            if let Ok((outcome, _)) = &result {
                observer.observe(&job.batch, outcome);
            }
            result.map(|(outcome, ticket)| Applied { outcome, ticket })
        };

        if let Err(error) = &result {
            tracing::error!(%error, points, "failed to apply a write batch");
        } else {
            tracing::trace!(
                points,
                elapsed_us = started.elapsed().as_micros() as u64,
                "applied batch"
            );
        }
        // The handler may have gone away (client cancelled); the batch is
        // applied either way.
        let _ = job.reply.send(result);
    }
}
