//! A tower layer that gives request decoding failures the status codes
//! this API documents.
//!
//! Tonic fails a request before any handler runs when its message is over
//! `max_decoding_message_size` (OUT_OF_RANGE) or is not valid protobuf
//! (INTERNAL). Both are the client's fault: this layer rewrites them to
//! RESOURCE_EXHAUSTED and INVALID_ARGUMENT in trailers-only responses,
//! which is how unary calls fail before their handler returns. Streams
//! see these errors inside the handler, which maps them itself. The
//! message, which names the size and the limit or the decode error, is
//! kept.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::Service;

use crate::grpc::status::DECODE_ERROR_PREFIX;
use tonic::codegen::http::{self, HeaderValue};

const INVALID_ARGUMENT: &str = "3";
const RESOURCE_EXHAUSTED: &str = "8";
const OUT_OF_RANGE: &str = "11";
const INTERNAL: &str = "13";

#[derive(Debug, Clone, Copy)]
pub struct DecodeErrorLayer;

impl<S> tower::Layer<S> for DecodeErrorLayer {
    type Service = DecodeErrorService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        DecodeErrorService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct DecodeErrorService<S> {
    inner: S,
}

fn rewrite(headers: &mut http::HeaderMap) {
    let status = headers.get("grpc-status").and_then(|v| v.to_str().ok());
    // grpc-message is percent-encoded; spaces arrive as %20.
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(|m| m.replace("%20", " "))
        .unwrap_or_default();

    let replacement = match status {
        Some(OUT_OF_RANGE) if message.contains("message length too large") => RESOURCE_EXHAUSTED,
        Some(INTERNAL) if message.starts_with(DECODE_ERROR_PREFIX) => INVALID_ARGUMENT,
        _ => return,
    };
    headers.insert("grpc-status", HeaderValue::from_static(replacement));
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for DecodeErrorService<S>
where
    S: Service<http::Request<ReqBody>, Response = http::Response<ResBody>> + Send,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<ReqBody>) -> Self::Future {
        let future = self.inner.call(request);
        Box::pin(async move {
            let mut response = future.await?;
            rewrite(response.headers_mut());
            Ok(response)
        })
    }
}
