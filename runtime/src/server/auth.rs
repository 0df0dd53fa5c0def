//! Optional bearer-token check for the network listener, as a tower HTTP layer: it runs before
//! the WebSocket upgrade, so an unauthorised client never gets a connection.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use jsonrpsee::server::{HttpBody, HttpRequest, HttpResponse};

#[derive(Clone)]
pub struct BearerAuthLayer {
    expected: Option<Arc<str>>,
}

impl BearerAuthLayer {
    pub fn new(token: Option<String>) -> Self {
        BearerAuthLayer { expected: token.map(|t| Arc::from(format!("Bearer {t}"))) }
    }
}

impl<S> tower::Layer<S> for BearerAuthLayer {
    type Service = BearerAuth<S>;
    fn layer(&self, inner: S) -> Self::Service {
        BearerAuth { inner, expected: self.expected.clone() }
    }
}

#[derive(Clone)]
pub struct BearerAuth<S> {
    inner: S,
    expected: Option<Arc<str>>,
}

/// Compares in time independent of where the first difference is.
fn same(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl<S, B> tower::Service<HttpRequest<B>> for BearerAuth<S>
where
    S: tower::Service<HttpRequest<B>, Response = HttpResponse> + Send,
    S::Future: Send + 'static,
    S::Error: 'static,
{
    type Response = HttpResponse;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<HttpResponse, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: HttpRequest<B>) -> Self::Future {
        if let Some(expected) = &self.expected {
            let given = req.headers().get("authorization").map(|v| v.as_bytes()).unwrap_or_default();
            if !same(given, expected.as_bytes()) {
                let response = HttpResponse::builder()
                    .status(401)
                    .header("www-authenticate", "Bearer")
                    .body(HttpBody::from("missing or wrong bearer token: send `Authorization: Bearer <token>`"))
                    .expect("static response is valid");
                return Box::pin(async move { Ok(response) });
            }
        }
        Box::pin(self.inner.call(req))
    }
}
