//! The gRPC service of `LiveService`, written by hand instead of the
//! generated `LiveServiceServer`, so that a subscriber's stream can carry
//! `WindowUpdate` messages that are already encoded.
//!
//! Neighbours: `crate::server` mounts [`LiveServer`], and `super::live`
//! handles the call and encodes the updates. The request is decoded with
//! tonic-prost's decoder, as in the generated services, and each encoded
//! message is written to the wire unchanged, so clients see the protobuf
//! `WindowUpdate` of `proto/tidemark/v1/` as before.

use std::convert::Infallible;
use std::sync::Arc;

use bytes::{BufMut, Bytes};
use tonic::codec::{Codec, EncodeBuf, Encoder};
use tonic::codegen::{Body, BoxFuture, Context, Poll, Service, StdError, http};
use tonic::server::{Grpc, NamedService, ServerStreamingService};
use tonic::{Request, Response, Status};
use tonic_prost::ProstDecoder;

use super::live::{EncodedUpdateStream, LiveHandler};
use super::status::unknown_method;
use crate::proto::v1 as pb;

const SUBSCRIBE_WINDOWS_PATH: &str = "/tidemark.v1.LiveService/SubscribeWindows";

/// Codec of `SubscribeWindows`: decodes the protobuf request and writes
/// responses that are encoded `WindowUpdate` messages already.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodedUpdateCodec;

/// Writes an encoded message as it is.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncodedUpdateEncoder;

impl Encoder for EncodedUpdateEncoder {
    type Item = Bytes;
    type Error = Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

impl Codec for EncodedUpdateCodec {
    type Encode = Bytes;
    type Decode = pb::SubscribeWindowsRequest;
    type Encoder = EncodedUpdateEncoder;
    type Decoder = ProstDecoder<pb::SubscribeWindowsRequest>;

    fn encoder(&mut self) -> Self::Encoder {
        EncodedUpdateEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder::default()
    }
}

/// The `tidemark.v1.LiveService` gRPC service.
#[derive(Clone)]
pub struct LiveServer {
    handler: Arc<LiveHandler>,
    max_decoding_message_size: Option<usize>,
}

impl LiveServer {
    pub fn new(handler: LiveHandler) -> LiveServer {
        LiveServer {
            handler: Arc::new(handler),
            max_decoding_message_size: None,
        }
    }

    /// Sets the largest request tonic decodes; larger ones fail with a
    /// status before the handler runs.
    #[must_use]
    pub fn max_decoding_message_size(mut self, limit: usize) -> LiveServer {
        self.max_decoding_message_size = Some(limit);
        self
    }
}

impl NamedService for LiveServer {
    const NAME: &'static str = pb::live_service_server::SERVICE_NAME;
}

struct SubscribeWindows(Arc<LiveHandler>);

impl ServerStreamingService<pb::SubscribeWindowsRequest> for SubscribeWindows {
    type Response = Bytes;
    type ResponseStream = EncodedUpdateStream;
    type Future = BoxFuture<Response<EncodedUpdateStream>, Status>;

    fn call(&mut self, request: Request<pb::SubscribeWindowsRequest>) -> Self::Future {
        let handler = self.0.clone();
        Box::pin(async move { handler.subscribe_windows(request).await })
    }
}

impl<B> Service<http::Request<B>> for LiveServer
where
    B: Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<tonic::body::Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Infallible>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != SUBSCRIBE_WINDOWS_PATH {
            let status = unknown_method(request.uri().path());
            return Box::pin(async move { Ok(status.into_http()) });
        }
        let method = SubscribeWindows(self.handler.clone());
        let mut grpc = Grpc::new(EncodedUpdateCodec)
            .apply_max_message_size_config(self.max_decoding_message_size, None);
        Box::pin(async move { Ok(grpc.server_streaming(method, request).await) })
    }
}
