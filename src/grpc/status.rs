//! The one place where engine errors become gRPC statuses.

use tonic::{Code, Status};

use super::points::MalformedMessage;
use crate::ingest::IngestError;
use crate::storage::StorageError;

/// Start of the status message for a request that is not valid protobuf:
/// tonic's (0.14), and also the ingest decoder's in `super::points`.
pub const DECODE_ERROR_PREFIX: &str = "failed to decode Protobuf message";

/// An error of the API layer, mapped to exactly one gRPC code.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Malformed or out-of-range input; the message names the field, the
    /// value and the limit.
    #[error("{0}")]
    InvalidArgument(String),

    /// Input over a size limit.
    #[error("{0}")]
    ResourceExhausted(String),

    #[error("{0}")]
    NotFound(String),

    #[error("{0}")]
    AlreadyExists(String),

    #[error("{0}")]
    Unavailable(String),

    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    pub fn invalid(message: impl Into<String>) -> ApiError {
        ApiError::InvalidArgument(message.into())
    }
}

/// Maximum length of a status message sent to a client. gRPC clients reject
/// responses whose metadata exceeds about 16 KiB, so a message that echoes
/// a huge input must be cut.
const MAX_STATUS_MESSAGE_BYTES: usize = 4096;

fn truncate_message(mut message: String) -> String {
    if message.len() <= MAX_STATUS_MESSAGE_BYTES {
        return message;
    }
    let mut cut = MAX_STATUS_MESSAGE_BYTES;
    while !message.is_char_boundary(cut) {
        cut -= 1;
    }
    message.truncate(cut);
    message.push_str("... (message truncated)");
    message
}

impl From<ApiError> for Status {
    fn from(error: ApiError) -> Status {
        let code = match &error {
            ApiError::InvalidArgument(_) => Code::InvalidArgument,
            ApiError::ResourceExhausted(_) => Code::ResourceExhausted,
            ApiError::NotFound(_) => Code::NotFound,
            ApiError::AlreadyExists(_) => Code::AlreadyExists,
            ApiError::Unavailable(_) => Code::Unavailable,
            ApiError::Internal(_) => Code::Internal,
        };
        if code == Code::Internal {
            tracing::error!(error = %error, "request failed with an internal error");
        }
        Status::new(code, truncate_message(error.to_string()))
    }
}

impl From<StorageError> for ApiError {
    fn from(error: StorageError) -> ApiError {
        match error {
            StorageError::MetricNotFound { .. } | StorageError::PolicyNotFound { .. } => {
                ApiError::NotFound(error.to_string())
            }
            StorageError::MetricExists { .. } => ApiError::AlreadyExists(error.to_string()),
            StorageError::Io { .. } | StorageError::Corrupt(_) => {
                ApiError::Internal(error.to_string())
            }
        }
    }
}

impl From<IngestError> for ApiError {
    fn from(error: IngestError) -> ApiError {
        match error {
            IngestError::ShuttingDown => ApiError::Unavailable(error.to_string()),
            IngestError::WorkerLost | IngestError::WaitLost(_) => {
                ApiError::Internal(error.to_string())
            }
            IngestError::Storage(storage) => storage.into(),
        }
    }
}

impl From<StorageError> for Status {
    fn from(error: StorageError) -> Status {
        ApiError::from(error).into()
    }
}

impl From<IngestError> for Status {
    fn from(error: IngestError) -> Status {
        ApiError::from(error).into()
    }
}

impl From<MalformedMessage> for ApiError {
    fn from(error: MalformedMessage) -> ApiError {
        ApiError::InvalidArgument(error.to_string())
    }
}

impl From<MalformedMessage> for Status {
    fn from(error: MalformedMessage) -> Status {
        ApiError::from(error).into()
    }
}

/// Builds the UNIMPLEMENTED status for a call to a method that a
/// hand-written service does not have, as the generated services return.
pub fn unknown_method(path: &str) -> Status {
    Status::unimplemented(truncate_message(format!(
        "method {path} is not implemented by this server"
    )))
}
