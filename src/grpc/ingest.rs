//! `IngestService`: decodes and validates batches, then hands them to the
//! ingest pipeline and reports what was accepted.

use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::watch;
use tonic::{Code, Request, Response, Status, Streaming};

use super::points::decode_message;
use super::status::DECODE_ERROR_PREFIX;
use crate::ingest::{IngestError, IngestPipeline};
use crate::model::limits::Limits;
use crate::model::{MAX_LISTED_REJECTIONS, Rejection};
use crate::proto::raw_ingest::ingest_service_server::IngestService;
use crate::proto::v1::{PointError, StreamPointsResponse, WritePointsResponse};
use crate::storage::CommitTicket;

/// Number of rejections a response lists; the count covers all of them.
const MAX_REPORTED_ERRORS: usize = MAX_LISTED_REJECTIONS;

/// Messages a stream may apply past its oldest commit that is not yet
/// durable before it stops reading and waits for that commit. Bounds what
/// a crash can lose of a long stream, while the commits of the messages
/// in between overlap with their decoding.
const MAX_MESSAGES_AHEAD_OF_COMMIT: u64 = 8;

/// The durability wait a stream runs in the background.
struct PendingCommit {
    wait: tokio::task::JoinHandle<Result<(), IngestError>>,
    /// Messages applied since the wait started.
    messages_since: u64,
}

pub struct IngestHandler {
    pipeline: Arc<IngestPipeline>,
    limits: Arc<Limits>,
    /// Turns true when the server shuts down; open streams then stop
    /// reading and report what they applied.
    shutdown: watch::Receiver<bool>,
}

impl IngestHandler {
    pub fn new(
        pipeline: Arc<IngestPipeline>,
        limits: Arc<Limits>,
        shutdown: watch::Receiver<bool>,
    ) -> Self {
        IngestHandler {
            pipeline,
            limits,
            shutdown,
        }
    }
}

/// Running totals of one request or stream.
#[derive(Default)]
struct Tally {
    accepted: u64,
    rejected: u64,
    errors: Vec<PointError>,
    /// Commit ticket of the last applied message; the response waits for
    /// it, so every accepted point is durable before it is acknowledged.
    ticket: CommitTicket,
}

impl Tally {
    fn add_rejections(&mut self, rejections: Vec<Rejection>) {
        self.rejected += rejections.len() as u64;
        let room = MAX_REPORTED_ERRORS.saturating_sub(self.errors.len());
        self.errors
            .extend(rejections.into_iter().take(room).map(|r| PointError {
                index: r.index,
                reason: r.reason,
            }));
    }
}

impl IngestHandler {
    /// Validates and applies one message; returns after it is applied but
    /// before it is durable (see [`IngestHandler::finish`]). A message
    /// that is not valid protobuf is applied not at all.
    async fn apply_message(
        &self,
        message: &[u8],
        first_index: u64,
        tally: &mut Tally,
    ) -> Result<u64, Status> {
        let decoded = decode_message(message, first_index, &self.limits).map_err(Status::from)?;
        let mut rejections = decoded.rejections;
        tally.rejected += decoded.unlisted_rejections;

        if !decoded.batch.series.is_empty() {
            let applied = self.pipeline.submit(decoded.batch).await?;
            tally.accepted += applied.outcome.accepted;
            tally.ticket = tally.ticket.max(applied.ticket);
            tally.rejected += applied.outcome.unlisted_rejections;
            rejections.extend(applied.outcome.rejections);
        }

        // Decode-time and storage-time rejections interleave by position.
        // Each list contains its lowest positions, so the lowest of both
        // are listed.
        rejections.sort_by_key(|r| r.index);
        tally.add_rejections(rejections);
        Ok(decoded.point_count)
    }

    /// Keeps one durability wait running in the background for a stream
    /// and waits for it when the stream runs too far ahead of it.
    async fn pace_commits(
        &self,
        pending: &mut Option<PendingCommit>,
        ticket: CommitTicket,
    ) -> Result<(), Status> {
        if let Some(commit) = pending.as_mut() {
            commit.messages_since += 1;
            let due = commit.messages_since >= MAX_MESSAGES_AHEAD_OF_COMMIT;
            if !due && !commit.wait.is_finished() {
                return Ok(());
            }
            let commit = pending.take().expect("checked above");
            commit
                .wait
                .await
                .map_err(|e| Status::from(IngestError::WaitLost(e.to_string())))?
                .map_err(Status::from)?;
        }
        if ticket != CommitTicket::NONE {
            let pipeline = self.pipeline.clone();
            *pending = Some(PendingCommit {
                wait: tokio::spawn(async move { pipeline.wait_durable(ticket).await }),
                messages_since: 0,
            });
        }
        Ok(())
    }

    /// Waits until everything the request applied is durable, then
    /// returns `result`: a response, or the error that ended the stream.
    /// A failed wait replaces both, since the points are not durable.
    async fn finish<T>(&self, tally: &Tally, result: Result<T, Status>) -> Result<T, Status> {
        if let Err(error) = self.pipeline.wait_durable(tally.ticket).await {
            tracing::error!(
                %error,
                accepted = tally.accepted,
                "applied points could not be made durable"
            );
            return Err(Status::from(error));
        }
        result
    }
}

/// Explains why a stream stopped, with how much of it was applied and
/// where to resend from. Tonic reports an oversized message as
/// OUT_OF_RANGE, which becomes RESOURCE_EXHAUSTED. A body cut inside a
/// message (INTERNAL from tonic) and invalid protobuf become
/// INVALID_ARGUMENT.
fn stream_error(status: Status, tally: &Tally, next_index: u64) -> Status {
    let stopped = format!(
        "the stream stopped there after {} points were accepted and {} rejected",
        tally.accepted, tally.rejected
    );
    let message = status.message();

    let undecodable = matches!(status.code(), Code::Internal | Code::InvalidArgument)
        && message.starts_with(DECODE_ERROR_PREFIX);
    // tonic's error for a body that ends inside a message frame.
    let cut_frame = status.code() == Code::Internal && message.contains("Unexpected EOF");
    if undecodable || cut_frame {
        return Status::invalid_argument(format!(
            "{message}; {stopped}; resend from position {next_index}"
        ));
    }
    if status.code() == Code::OutOfRange && message.contains("too large") {
        return Status::resource_exhausted(format!(
            "{message}; {stopped}; resend from position {next_index} in smaller messages"
        ));
    }
    // Other failures (storage, shutdown, cancellation) keep their code.
    Status::new(
        status.code(),
        format!("{message}; {stopped}; resend from position {next_index}"),
    )
}

#[tonic::async_trait]
impl IngestService for IngestHandler {
    async fn stream_points(
        &self,
        request: Request<Streaming<Bytes>>,
    ) -> Result<Response<StreamPointsResponse>, Status> {
        let mut stream = request.into_inner();
        let mut tally = Tally::default();
        let mut next_index = 0u64;
        let mut messages = 0u64;

        let mut shutdown = self.shutdown.clone();
        let mut pending_commit: Option<PendingCommit> = None;

        // Each message is applied before the next one is read, so the
        // stream's messages are applied in order. Their WAL commits run
        // behind (see `pace_commits`), and the response waits for the
        // last one. If the client cancels, `message()` fails and what was
        // applied stays applied.
        loop {
            let received = tokio::select! {
                received = stream.message() => Some(received),
                _ = shutdown.wait_for(|stopping| *stopping) => None,
            };
            let Some(received) = received else {
                let status = Status::unavailable(format!(
                    "server is shutting down; this stream stopped after {} points were accepted and {} rejected; resend from position {next_index}",
                    tally.accepted, tally.rejected
                ));
                return self.finish(&tally, Err(status)).await;
            };
            let message = match received {
                Ok(Some(message)) => message,
                Ok(None) => break,
                Err(status) => {
                    let status = stream_error(status, &tally, next_index);
                    return self.finish(&tally, Err(status)).await;
                }
            };
            let applied = match self.apply_message(&message, next_index, &mut tally).await {
                Ok(count) => self
                    .pace_commits(&mut pending_commit, tally.ticket)
                    .await
                    .map(|()| count),
                Err(status) => Err(status),
            };
            let count = match applied {
                Ok(count) => count,
                Err(status) => {
                    let status = stream_error(status, &tally, next_index);
                    return self.finish(&tally, Err(status)).await;
                }
            };
            next_index += count;
            messages += 1;
        }

        self.finish(&tally, Ok(())).await?;

        tracing::debug!(
            messages,
            accepted = tally.accepted,
            rejected = tally.rejected,
            "stream_points finished"
        );
        Ok(Response::new(StreamPointsResponse {
            accepted: tally.accepted,
            rejected: tally.rejected,
            errors: tally.errors,
        }))
    }

    async fn write_points(
        &self,
        request: Request<Bytes>,
    ) -> Result<Response<WritePointsResponse>, Status> {
        let message = request.into_inner();
        let mut tally = Tally::default();
        let applied = self.apply_message(&message, 0, &mut tally).await;
        self.finish(&tally, applied).await?;

        tracing::debug!(
            accepted = tally.accepted,
            rejected = tally.rejected,
            "write_points finished"
        );
        Ok(Response::new(WritePointsResponse {
            accepted: tally.accepted,
            rejected: tally.rejected,
            errors: tally.errors,
        }))
    }
}
