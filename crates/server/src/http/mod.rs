//! The HTTP edge: errors, JSON bodies, query strings and pages of lists, authentication
//! extractors, idempotency, and the layers every request passes (request id, logs, metrics,
//! panics, time limits, body limits).

pub mod auth;
pub mod error;
pub mod form;
pub mod idempotency;
pub mod json;
pub mod openapi;
pub mod path;
pub mod query;
pub mod url;

pub use auth::{Auth, ClientIp, ConsumerAuth, MaybeAuth, MerchantAuth, OperatorAuth};
pub use form::Form;
pub use json::{Idem, Json, OptionalJson, Reply};
pub use path::Path;
pub use query::{List, NoParams, Page, PageParams, Query};

use crate::error::{Error, Kind};
use axum::Router;
use axum::extract::{MatchedPath, Request};
use axum::http::HeaderName;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use std::time::{Duration, Instant};
use tower_http::catch_panic::CatchPanicLayer;
use tower_http::request_id::{
    MakeRequestUuid, PropagateRequestIdLayer, RequestId, SetRequestIdLayer,
};
use tower_http::trace::TraceLayer;

/// Requests taking longer than this are answered 503 (`timeout`).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// A request body that sends nothing for this long is abandoned, by default: 408
/// (`body_timeout`), so that a client announcing more than it sends cannot hold a request open
/// until [`REQUEST_TIMEOUT`].
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);

static REQUEST_ID: HeaderName = HeaderName::from_static("request-id");

/// Wraps the router in the layers every request passes, outermost first: request id, trace span
/// (method, path without the query string, request id), panic catcher, metrics, time limit, and
/// the body limit.
pub fn layers(router: Router, body_idle_timeout: Duration) -> Router {
    router
        .layer(axum::extract::DefaultBodyLimit::max(json::MAX_JSON_BODY_BYTES))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(
            body_idle_timeout,
        ))
        .layer(axum::middleware::from_fn(time_limit))
        .layer(axum::middleware::from_fn(record_metrics))
        .layer(CatchPanicLayer::custom(|_panic: Box<dyn std::any::Any + Send>| {
            tracing::error!("a handler panicked");
            Error::new(Kind::Internal, "internal_error", "Something went wrong on our side.").into_response()
        }))
        .layer(
            TraceLayer::new_for_http()
                .make_span_with(|req: &Request| {
                    let id = req
                        .extensions()
                        .get::<RequestId>()
                        .and_then(|id| id.header_value().to_str().ok())
                        .unwrap_or("-");
                    // The path only: query strings may carry phone numbers or codes.
                    tracing::info_span!("request", id = %id, method = %req.method(), path = %req.uri().path())
                })
                .on_request(())
                .on_response(|res: &Response, latency: Duration, _span: &tracing::Span| {
                    tracing::info!(status = res.status().as_u16(), ms = latency.as_secs_f64() * 1e3, "response");
                }),
        )
        .layer(PropagateRequestIdLayer::new(REQUEST_ID.clone()))
        .layer(SetRequestIdLayer::new(REQUEST_ID.clone(), MakeRequestUuid))
}

/// Answers a request still running after [`REQUEST_TIMEOUT`] with 503 (`timeout`), in the
/// error shape every other answer has.
async fn time_limit(req: Request, next: Next) -> Response {
    match tokio::time::timeout(REQUEST_TIMEOUT, next.run(req)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!("request timed out");
            Error::unavailable(
                "timeout",
                "This took too long on our side; try again in a moment.",
                1,
            )
            .into_response()
        }
    }
}

async fn record_metrics(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = req.method().to_string();
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "unmatched".to_owned());
    let response = next.run(req).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("http_requests_total", "method" => method.clone(), "route" => route.clone(), "status" => status)
        .increment(1);
    metrics::histogram!("http_request_duration_seconds", "method" => method, "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}
