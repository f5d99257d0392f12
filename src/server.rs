//! Assembles the server: storage, ingest pipeline, live hub, query
//! engine, gRPC services, health and reflection, and the retention task.
//!
//! Shutdown: when the shutdown future resolves, tonic stops accepting
//! connections and waits for in-flight requests; open live streams are
//! ended by closing every subscriber queue. Then the ingest pipeline
//! drains its queue and joins its threads, so every acknowledged batch is
//! applied before [`RunningServer::wait`] returns.

mod decode_errors;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::RwLock;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tonic::transport::server::TcpIncoming;

use crate::grpc::admin::AdminHandler;
use crate::grpc::ingest::IngestHandler;
use crate::grpc::live::LiveHandler;
use crate::grpc::live_server::LiveServer;
use crate::grpc::query::QueryHandler;
use crate::ingest::{IngestConfig, IngestPipeline};
use crate::live::{LiveConfig, LiveHub};
use crate::model::limits::Limits;
use crate::proto::raw_ingest::ingest_service_server::IngestServiceServer;
use crate::proto::v1::admin_service_server::AdminServiceServer;
use crate::proto::v1::query_service_server::QueryServiceServer;
use crate::query::QueryEngine;
use crate::retention::spawn_retention_task;
use crate::storage::Storage;

/// Everything the server needs besides its storage and listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub limits: Limits,
    pub ingest: IngestConfig,
    pub live: LiveConfig,
    /// Interval of the background retention pass.
    pub retention_interval: Duration,
    /// How long shutdown waits for requests in flight before it stops
    /// anyway.
    pub shutdown_grace: Duration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            limits: Limits::default(),
            ingest: IngestConfig::default(),
            live: LiveConfig::default(),
            retention_interval: Duration::from_secs(3600),
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// Errors of server start-up and shutdown.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("failed to bind {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },

    #[error("failed to build the reflection service: {0}")]
    Reflection(String),

    #[error("gRPC transport failed: {0}")]
    Transport(#[from] tonic::transport::Error),

    #[error("server task failed: {0}")]
    Join(String),
}

/// A server running on a tokio task.
pub struct RunningServer {
    local_addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: tokio::task::JoinHandle<Result<(), ServerError>>,
}

impl RunningServer {
    /// Binds `addr` (port 0 picks a free port) and starts serving.
    pub async fn start(
        addr: SocketAddr,
        storage: Arc<dyn Storage>,
        config: ServerConfig,
    ) -> Result<RunningServer, ServerError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ServerError::Bind { addr, source })?;
        let local_addr = listener
            .local_addr()
            .map_err(|source| ServerError::Bind { addr, source })?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let task = tokio::spawn(serve(listener, storage, config, shutdown_rx));
        Ok(RunningServer {
            local_addr,
            shutdown,
            task,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Asks the server to stop; [`RunningServer::wait`] returns when it has.
    pub fn trigger_shutdown(&self) {
        let _ = self.shutdown.send(true);
    }

    pub async fn wait(self) -> Result<(), ServerError> {
        self.task
            .await
            .map_err(|e| ServerError::Join(e.to_string()))?
    }

    /// Stops the server and waits until it has stopped.
    pub async fn stop(self) -> Result<(), ServerError> {
        self.trigger_shutdown();
        self.wait().await
    }
}

async fn serve(
    listener: TcpListener,
    storage: Arc<dyn Storage>,
    config: ServerConfig,
    shutdown: watch::Receiver<bool>,
) -> Result<(), ServerError> {
    let limits = Arc::new(config.limits.clone());
    let gate = Arc::new(RwLock::new(()));
    let hub = LiveHub::start(storage.clone(), gate.clone(), config.live.clone());
    let pipeline = Arc::new(IngestPipeline::start(
        storage.clone(),
        hub.clone(),
        gate,
        config.ingest.clone(),
    ));
    let engine = QueryEngine::new(storage.clone(), limits.clone());
    let retention =
        spawn_retention_task(storage.clone(), config.retention_interval, shutdown.clone());

    // Tonic rejects messages over its decoding limit itself;
    // `decode_errors` turns that status into RESOURCE_EXHAUSTED.
    let max_message = config.limits.max_message_bytes;
    let ingest = IngestServiceServer::new(IngestHandler::new(
        pipeline.clone(),
        limits.clone(),
        shutdown.clone(),
    ))
    .max_decoding_message_size(max_message);
    let query =
        QueryServiceServer::new(QueryHandler::new(engine)).max_decoding_message_size(max_message);
    let live = LiveServer::new(LiveHandler::new(hub.clone(), limits.clone()))
        .max_decoding_message_size(max_message);
    let admin = AdminServiceServer::new(AdminHandler::new(storage.clone(), limits.clone()))
        .max_decoding_message_size(max_message);

    let (health_reporter, health) = tonic_health::server::health_reporter();
    health_reporter
        .set_serving::<IngestServiceServer<IngestHandler>>()
        .await;
    health_reporter
        .set_serving::<QueryServiceServer<QueryHandler>>()
        .await;
    health_reporter.set_serving::<LiveServer>().await;
    health_reporter
        .set_serving::<AdminServiceServer<AdminHandler>>()
        .await;

    let reflection_v1 = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;
    let reflection_v1alpha = tonic_reflection::server::Builder::configure()
        .register_encoded_file_descriptor_set(crate::proto::FILE_DESCRIPTOR_SET)
        .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        .build_v1alpha()
        .map_err(|e| ServerError::Reflection(e.to_string()))?;

    let local_addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_else(|_| "unknown".to_owned());
    tracing::info!(
        addr = %local_addr,
        engine = storage.stats().engine,
        "tidemark ready to accept gRPC connections"
    );

    let live_hub = hub.clone();
    let mut stop_signal = shutdown.clone();
    let stop = async move {
        let _ = stop_signal.wait_for(|stop| *stop).await;
        tracing::info!("shutting down: no new connections, finishing requests in flight");
        // Live streams never end on their own; closing the queues ends them
        // so the graceful shutdown does not wait forever.
        live_hub.shutdown();
    };

    // TCP_NODELAY: without it, Nagle's algorithm and delayed ACKs hold
    // small acknowledgements back for about 40 ms.
    let incoming = TcpIncoming::from(listener).with_nodelay(Some(true));
    let serving = tonic::transport::Server::builder()
        .layer(decode_errors::DecodeErrorLayer)
        .add_service(health)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(ingest)
        .add_service(query)
        .add_service(live)
        .add_service(admin)
        .serve_with_incoming_shutdown(incoming, stop);

    // A client that never finishes its request must not hold shutdown
    // forever: after the grace period the server stops without it.
    let grace = config.shutdown_grace;
    let mut grace_signal = shutdown.clone();
    let grace_expired = async move {
        let _ = grace_signal.wait_for(|stop| *stop).await;
        tokio::time::sleep(grace).await;
    };
    let result = tokio::select! {
        result = serving => result,
        _ = grace_expired => {
            tracing::warn!(grace_secs = grace.as_secs_f64(), "requests still in flight after the shutdown grace period; stopping without them");
            Ok(())
        }
    };

    // Every handler has returned, so no new batch can arrive; drain the
    // ones queued and join the ingest threads.
    let pipeline_for_join = pipeline.clone();
    let _ = tokio::task::spawn_blocking(move || pipeline_for_join.shutdown()).await;
    hub.shutdown();
    retention.abort();
    tracing::info!("tidemark stopped");
    result.map_err(ServerError::from)
}
