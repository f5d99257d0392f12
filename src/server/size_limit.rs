//! A tower layer that reports oversized requests as RESOURCE_EXHAUSTED.
//!
//! Tonic rejects a message over `max_decoding_message_size` with
//! OUT_OF_RANGE before any handler runs. Clients of this API expect size
//! limits to be RESOURCE_EXHAUSTED, so this layer rewrites that one status
//! in trailers-only responses (which is how unary and client-streaming
//! calls fail before their handler returns). The message, which names
//! the size and the limit, is kept.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tonic::codegen::Service;
use tonic::codegen::http::{self, HeaderValue};

const OUT_OF_RANGE: &str = "11";
const RESOURCE_EXHAUSTED: &str = "8";

#[derive(Debug, Clone, Copy)]
pub struct SizeLimitLayer;

impl<S> tower::Layer<S> for SizeLimitLayer {
    type Service = SizeLimitService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SizeLimitService { inner }
    }
}

#[derive(Debug, Clone)]
pub struct SizeLimitService<S> {
    inner: S,
}

fn rewrite(headers: &mut http::HeaderMap) {
    let is_out_of_range = headers
        .get("grpc-status")
        .is_some_and(|v| v == OUT_OF_RANGE);
    let is_size_error = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|m| {
            m.contains("message%20length%20too%20large") || m.contains("message length too large")
        });
    if is_out_of_range && is_size_error {
        headers.insert("grpc-status", HeaderValue::from_static(RESOURCE_EXHAUSTED));
    }
}

impl<S, ReqBody, ResBody> Service<http::Request<ReqBody>> for SizeLimitService<S>
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
