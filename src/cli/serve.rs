//! `tidemark serve`: flags, logging set-up and the signal handling around
//! [`RunningServer`].

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;

use super::parse::parse_duration;
use crate::ingest::IngestConfig;
use crate::live::LiveConfig;
use crate::model::limits::Limits;
use crate::server::{RunningServer, ServerConfig};
use crate::storage::Storage;
use crate::storage::disk::{DEFAULT_CHUNK_CACHE_BYTES, DiskConfig, DiskStorage, Durability};
use crate::storage::memory::MemoryStorage;

/// Storage engine choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum StorageKind {
    /// Durable engine with a write-ahead log and compressed blocks under
    /// --data-dir.
    Disk,
    /// Everything in RAM; nothing survives a restart.
    Memory,
}

/// Flags of `tidemark serve`. Each can also be set through the
/// environment variable named in its help.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port.
    #[arg(long, env = "TIDEMARK_LISTEN", default_value = "127.0.0.1:50051")]
    pub listen: SocketAddr,

    /// Storage engine.
    #[arg(long, env = "TIDEMARK_STORAGE", value_enum, default_value = "disk")]
    pub storage: StorageKind,

    /// Directory of the disk engine's WAL, blocks and catalog; created if
    /// missing.
    #[arg(long, env = "TIDEMARK_DATA_DIR", default_value = "./tidemark-data")]
    pub data_dir: PathBuf,

    /// When a write is acknowledged by the disk engine: sync (after its WAL
    /// fsync), interval or interval:<N>ms (fsync every N ms, 100 by
    /// default; a power loss may lose that much), or none (no fsync).
    #[arg(long, env = "TIDEMARK_DURABILITY", default_value = "sync")]
    pub durability: Durability,

    /// The disk engine writes its in-memory head to a block once the head
    /// contains this many points.
    #[arg(long, env = "TIDEMARK_HEAD_FLUSH_POINTS", default_value_t = 1_000_000)]
    pub head_flush_points: u64,

    /// The disk engine writes its head to blocks at least this often while
    /// it has unflushed writes; this bounds WAL replay time after a crash.
    #[arg(long, env = "TIDEMARK_HEAD_FLUSH_AGE", default_value = "5m", value_parser = parse_duration)]
    pub head_flush_age: Duration,

    /// Budget in bytes of the disk engine's cache of block chunk bytes,
    /// which repeated queries read instead of the block files; 0 disables
    /// it. A regular gauge takes about 1.6 bytes per point.
    #[arg(long, env = "TIDEMARK_CHUNK_CACHE_BYTES", default_value_t = DEFAULT_CHUNK_CACHE_BYTES)]
    pub chunk_cache_bytes: usize,

    /// Log filter, such as info, debug or tidemark=debug,info.
    #[arg(long, env = "TIDEMARK_LOG", default_value = "info")]
    pub log_level: String,

    /// Number of ingest threads that apply batches to storage.
    #[arg(long, env = "TIDEMARK_INGEST_THREADS", default_value_t = 2, value_parser = parse_positive)]
    pub ingest_threads: usize,

    /// Capacity of the ingest queue in batches; writers wait when it is full.
    #[arg(long, env = "TIDEMARK_INGEST_QUEUE", default_value_t = 64, value_parser = parse_positive)]
    pub ingest_queue: usize,

    /// Maximum metric name length in bytes.
    #[arg(long, env = "TIDEMARK_MAX_METRIC_NAME_BYTES", default_value_t = 256, value_parser = parse_positive)]
    pub max_metric_name_bytes: usize,

    /// Maximum tags per point.
    #[arg(long, env = "TIDEMARK_MAX_TAGS", default_value_t = 32, value_parser = parse_positive)]
    pub max_tags: usize,

    /// Maximum tag key length in bytes.
    #[arg(long, env = "TIDEMARK_MAX_TAG_KEY_BYTES", default_value_t = 256, value_parser = parse_positive)]
    pub max_tag_key_bytes: usize,

    /// Maximum tag value length in bytes.
    #[arg(long, env = "TIDEMARK_MAX_TAG_VALUE_BYTES", default_value_t = 1024, value_parser = parse_positive)]
    pub max_tag_value_bytes: usize,

    /// Maximum string value length in bytes.
    #[arg(long, env = "TIDEMARK_MAX_STRING_VALUE_BYTES", default_value_t = 65536, value_parser = parse_positive)]
    pub max_string_value_bytes: usize,

    /// Maximum encoded gRPC message size in bytes.
    #[arg(long, env = "TIDEMARK_MAX_MESSAGE_BYTES", default_value_t = 16 * 1024 * 1024, value_parser = parse_positive)]
    pub max_message_bytes: usize,

    /// Maximum points one QueryPoints call may return; a request with
    /// limit 0 gets min(10000, this).
    #[arg(long, env = "TIDEMARK_MAX_QUERY_POINTS", default_value_t = 1_000_000, value_parser = parse_positive)]
    pub max_query_points: usize,

    /// Maximum buckets one Aggregate call may produce, over all groups.
    #[arg(long, env = "TIDEMARK_MAX_BUCKETS", default_value_t = 1_000_000, value_parser = parse_positive)]
    pub max_buckets: usize,

    /// A live subscriber gets a heartbeat after this long without updates
    /// (at least 10ms).
    #[arg(long, env = "TIDEMARK_HEARTBEAT_INTERVAL", default_value = "5s", value_parser = parse_heartbeat_interval)]
    pub heartbeat_interval: Duration,

    /// Capacity of each live subscriber queue; when full, the oldest update is dropped.
    #[arg(long, env = "TIDEMARK_SUBSCRIBER_QUEUE", default_value_t = 1024, value_parser = parse_positive)]
    pub subscriber_queue: usize,

    /// Interval of the background retention pass (at least 1s).
    #[arg(long, env = "TIDEMARK_RETENTION_INTERVAL", default_value = "1h", value_parser = parse_retention_interval)]
    pub retention_interval: Duration,

    /// On shutdown, how long to wait for requests in flight before
    /// stopping without them. A second SIGINT or SIGTERM stops at once.
    #[arg(long, env = "TIDEMARK_SHUTDOWN_GRACE", default_value = "10s", value_parser = parse_duration)]
    pub shutdown_grace: Duration,
}

fn parse_positive(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(0) => Err("0 is not allowed; the value must be at least 1".to_owned()),
        Ok(value) => Ok(value),
        Err(error) => Err(format!("invalid number {text:?}: {error}")),
    }
}

fn parse_duration_at_least(text: &str, minimum: Duration) -> Result<Duration, String> {
    let duration = parse_duration(text)?;
    if duration < minimum {
        return Err(format!(
            "{text:?} is shorter than the minimum of {minimum:?}"
        ));
    }
    Ok(duration)
}

fn parse_heartbeat_interval(text: &str) -> Result<Duration, String> {
    parse_duration_at_least(text, Duration::from_millis(10))
}

fn parse_retention_interval(text: &str) -> Result<Duration, String> {
    parse_duration_at_least(text, Duration::from_secs(1))
}

impl ServeArgs {
    fn server_config(&self) -> ServerConfig {
        ServerConfig {
            limits: Limits {
                max_metric_name_bytes: self.max_metric_name_bytes,
                max_tags_per_point: self.max_tags,
                max_tag_key_bytes: self.max_tag_key_bytes,
                max_tag_value_bytes: self.max_tag_value_bytes,
                max_string_value_bytes: self.max_string_value_bytes,
                max_message_bytes: self.max_message_bytes,
                max_query_points: self.max_query_points,
                max_buckets: self.max_buckets,
            },
            ingest: IngestConfig {
                threads: self.ingest_threads,
                queue_capacity: self.ingest_queue,
            },
            live: LiveConfig {
                heartbeat_interval: self.heartbeat_interval,
                subscriber_queue_capacity: self.subscriber_queue,
                ..LiveConfig::default()
            },
            retention_interval: self.retention_interval,
            shutdown_grace: self.shutdown_grace,
        }
    }
}

/// Runs the server until SIGINT or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<()> {
    init_logging(&args.log_level)?;

    let mut disk = None;
    let storage: Arc<dyn Storage> = match args.storage {
        StorageKind::Memory => Arc::new(MemoryStorage::new()),
        StorageKind::Disk => {
            let mut config = DiskConfig::new(&args.data_dir);
            config.durability = args.durability;
            config.head_flush_points = args.head_flush_points;
            config.head_flush_age = args.head_flush_age;
            config.chunk_cache_bytes = args.chunk_cache_bytes;
            let storage = DiskStorage::open(config).with_context(|| {
                format!(
                    "could not open the data directory {}",
                    args.data_dir.display()
                )
            })?;
            let storage = Arc::new(storage);
            disk = Some(storage.clone());
            storage
        }
    };

    let server = RunningServer::start(args.listen, storage, args.server_config())
        .await
        .with_context(|| {
            format!(
                "could not start the server on {}; is another process using that port?",
                args.listen
            )
        })?;

    wait_for_signal().await?;
    server.trigger_shutdown();
    // A second signal means the operator does not want to wait. Under
    // sync durability every acknowledged write is already on disk.
    tokio::spawn(async {
        if wait_for_signal().await.is_ok() {
            tracing::warn!(
                "second shutdown signal; exiting without waiting for requests in flight"
            );
            std::process::exit(130);
        }
    });
    server
        .wait()
        .await
        .context("the server failed while shutting down")?;
    if let Some(disk) = disk {
        // Flushes the head into blocks so the next start replays little.
        tokio::task::spawn_blocking(move || disk.close())
            .await
            .context("closing the disk storage panicked")?
            .context("closing the disk storage failed; the next start replays the WAL")?;
    }
    Ok(())
}

fn init_logging(filter: &str) -> anyhow::Result<()> {
    let filter = tracing_subscriber::EnvFilter::try_new(filter).with_context(|| {
        format!("invalid --log-level {filter:?}; use a level such as info or debug")
    })?;
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr)
        .try_init()
        .map_err(|e| anyhow::anyhow!("failed to set up logging: {e}"))
}

async fn wait_for_signal() -> anyhow::Result<()> {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("failed to install the SIGTERM handler")?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            result.context("failed to wait for SIGINT")?;
            tracing::info!(signal = "SIGINT", "received shutdown signal");
        }
        _ = terminate.recv() => {
            tracing::info!(signal = "SIGTERM", "received shutdown signal");
        }
    }
    Ok(())
}
