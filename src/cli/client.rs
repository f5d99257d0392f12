//! Connection to the server, and translation of gRPC failures into error
//! messages that name the failed call and suggest the next step.

use std::time::Duration;

use anyhow::anyhow;
use tonic::transport::{Channel, Endpoint};
use tonic::{Code, Status};

use crate::proto::v1::admin_service_client::AdminServiceClient;
use crate::proto::v1::ingest_service_client::IngestServiceClient;
use crate::proto::v1::live_service_client::LiveServiceClient;
use crate::proto::v1::query_service_client::QueryServiceClient;

/// Time allowed for the TCP and HTTP/2 connection to the server.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Largest response message the client decodes. tonic's default of 4 MiB
/// is too small for large query results: the server returns up to
/// 1,000,000 points per QueryPoints call by default, which is an
/// estimated 50-100 MB at 50-100 bytes per encoded point.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// An open channel to the server and the address it was opened to, for
/// error messages.
#[derive(Clone)]
pub struct Connection {
    channel: Channel,
    address: String,
}

impl Connection {
    pub fn ingest(&self) -> IngestServiceClient<Channel> {
        IngestServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    pub fn query(&self) -> QueryServiceClient<Channel> {
        QueryServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    pub fn live(&self) -> LiveServiceClient<Channel> {
        LiveServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    pub fn admin(&self) -> AdminServiceClient<Channel> {
        AdminServiceClient::new(self.channel.clone()).max_decoding_message_size(MAX_RESPONSE_BYTES)
    }

    /// Converts a failed call into an error that names the call, the
    /// status code and the server's message.
    pub fn status_error(&self, rpc: &str, status: Status) -> anyhow::Error {
        anyhow!(describe_status(rpc, &self.address, &status))
    }
}

/// Adds `http://` to an address without a scheme. Rejects `https://`,
/// because this client speaks plain HTTP/2 only.
pub fn normalize_address(address: &str) -> Result<String, String> {
    let address = address.trim();
    if address.is_empty() {
        return Err(
            "the server address is empty; pass --addr HOST:PORT or set TIDEMARK_ADDR".to_owned(),
        );
    }
    if address.starts_with("https://") {
        return Err(format!(
            "invalid server address {address:?}: this client does not support TLS; use http://"
        ));
    }
    if address.starts_with("http://") {
        return Ok(address.to_owned());
    }
    if let Some((scheme, _)) = address.split_once("://") {
        return Err(format!(
            "invalid server address {address:?}: unsupported scheme {scheme:?}; use http://HOST:PORT or HOST:PORT"
        ));
    }
    Ok(format!("http://{address}"))
}

/// Opens a connection to the server, failing fast when nothing listens at
/// the address.
pub async fn connect(address: &str) -> anyhow::Result<Connection> {
    let address = normalize_address(address).map_err(|err| anyhow!(err))?;
    let endpoint = Endpoint::from_shared(address.clone())
        .map_err(|err| {
            anyhow!("invalid server address {address:?}: {err}; use HOST:PORT or http://HOST:PORT")
        })?
        .connect_timeout(CONNECT_TIMEOUT);

    match endpoint.connect().await {
        Ok(channel) => Ok(Connection { channel, address }),
        Err(err) => Err(anyhow!(
            "failed to connect to the tidemark server at {address}: {}; \
             start one with `tidemark serve`, or point --addr or TIDEMARK_ADDR at a running server",
            error_chain(&err)
        )),
    }
}

/// Joins an error and its sources into one line, skipping sources whose
/// text repeats the previous one.
fn error_chain(err: &dyn std::error::Error) -> String {
    let mut parts = vec![err.to_string()];
    let mut source = err.source();
    while let Some(cause) = source {
        let text = cause.to_string();
        if parts.last() != Some(&text) {
            parts.push(text);
        }
        source = cause.source();
    }
    parts.join(": ")
}

/// Returns the canonical upper-case name of a gRPC status code.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

/// Describes a failed call: what failed, the status code and message, and
/// for codes that are not about the request itself, what to do.
pub fn describe_status(rpc: &str, address: &str, status: &Status) -> String {
    let code = code_name(status.code());
    let message = match status.message() {
        "" => "no message".to_owned(),
        text => text.to_owned(),
    };
    match status.code() {
        Code::Unavailable => format!(
            "lost the connection to the tidemark server at {address} during {rpc} ({code}): {message}; \
             check that `tidemark serve` is still running and retry"
        ),
        Code::DeadlineExceeded => format!(
            "{rpc} timed out at the server at {address} ({code}): {message}; narrow the time range or retry"
        ),
        Code::Unimplemented => format!(
            "the server at {address} does not implement {rpc} ({code}): {message}; \
             check that --addr points at a tidemark server of a matching version"
        ),
        Code::Internal | Code::Unknown | Code::DataLoss => format!(
            "the server failed the {rpc} request ({code}): {message}; the server log may have details"
        ),
        Code::Cancelled => format!("the {rpc} request was cancelled ({code}): {message}"),
        _ => format!("server rejected the {rpc} request ({code}): {message}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn address_normalization() {
        let cases: &[(&str, &str)] = &[
            ("http://127.0.0.1:50051", "http://127.0.0.1:50051"),
            ("127.0.0.1:50051", "http://127.0.0.1:50051"),
            ("localhost:9000", "http://localhost:9000"),
            ("[::1]:50051", "http://[::1]:50051"),
            (" 127.0.0.1:1 ", "http://127.0.0.1:1"),
        ];
        for (input, expected) in cases {
            assert_eq!(
                normalize_address(input).as_deref(),
                Ok(*expected),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn address_rejected() {
        let err = normalize_address("https://127.0.0.1:1").unwrap_err();
        assert!(err.contains("does not support TLS"), "{err}");
        let err = normalize_address("unix:///tmp/socket").unwrap_err();
        assert!(err.contains("unsupported scheme \"unix\""), "{err}");
        let err = normalize_address("").unwrap_err();
        assert!(err.contains("TIDEMARK_ADDR"), "{err}");
    }

    #[test]
    fn status_descriptions() {
        let address = "http://127.0.0.1:50051";
        let invalid = Status::invalid_argument("bad filter");
        assert_eq!(
            describe_status("QueryPoints", address, &invalid),
            "server rejected the QueryPoints request (INVALID_ARGUMENT): bad filter"
        );

        let not_found = Status::not_found("metric \"cpu\" not found");
        let text = describe_status("GetMetric", address, &not_found);
        assert!(
            text.contains("(NOT_FOUND): metric \"cpu\" not found"),
            "{text}"
        );

        let unavailable = Status::unavailable("connection reset");
        let text = describe_status("Aggregate", address, &unavailable);
        assert!(text.contains(address), "{text}");
        assert!(text.contains("tidemark serve"), "{text}");
        assert!(text.contains("(UNAVAILABLE)"), "{text}");

        let internal = Status::internal("");
        let text = describe_status("Aggregate", address, &internal);
        assert!(text.contains("(INTERNAL): no message"), "{text}");
    }

    #[tokio::test]
    async fn connect_failure_names_address() {
        // Bind and drop a listener to find a loopback port with nothing on it.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        drop(listener);

        let err = match connect(&format!("127.0.0.1:{port}")).await {
            Ok(_) => panic!("connected to a closed port"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains(&format!("http://127.0.0.1:{port}")), "{err}");
        assert!(err.contains("tidemark serve"), "{err}");
    }
}
