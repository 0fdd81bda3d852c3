//! Liveness, readiness and metrics: `GET /healthz` (the process answers), `GET /readyz` (the
//! database answers), `GET /metrics` (Prometheus text).

use crate::app::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Serialize, ToSchema)]
pub struct Health {
    pub status: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "system", responses((status = 200, body = Health)))]
async fn healthz() -> axum::Json<Health> {
    axum::Json(Health { status: "ok" })
}

#[derive(Serialize, ToSchema)]
pub struct Ready {
    pub status: &'static str,
    pub database: &'static str,
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "system",
    responses((status = 200, body = Ready), (status = 503, body = crate::http::error::ErrorBody)))]
async fn readyz(State(app): State<AppState>) -> Result<axum::Json<Ready>, crate::error::Error> {
    app.db.ping().await.map_err(|e| {
        let mut err = crate::error::Error::new(
            crate::error::Kind::Unavailable,
            "database_unavailable",
            "The database does not answer.",
        );
        err.source = Some(e.into());
        err
    })?;
    Ok(axum::Json(Ready {
        status: "ok",
        database: app.db.backend().name(),
    }))
}

/// Prometheus metrics in the text exposition format.
#[utoipa::path(get, path = "/metrics", tag = "system", responses((status = 200, content_type = "text/plain", body = String)))]
async fn metrics(State(app): State<AppState>) -> impl IntoResponse {
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        app.metrics.render(),
    )
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
}
