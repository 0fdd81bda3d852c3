//! The OpenAPI 3.1 document: every capability's routes are registered through
//! [`api_router`], so an operation cannot exist without being described.

use crate::app::AppState;
use utoipa::Modify;
use utoipa::OpenApi;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa_axum::router::OpenApiRouter;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "o2o API",
        description = "Online-to-offline commerce: codes, payments, orders, marketing and membership. \
            JSON over HTTP; money in integer minor units with an ISO 4217 currency; errors as \
            `{\"error\": {\"type\", \"code\", \"message\", \"param\"}}`; lists as `{\"data\", \"has_more\"}`; \
            every POST accepts `Idempotency-Key`.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(crate::http::error::ErrorBody))
)]
struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A session token (`st_…`) or a merchant secret key (`sk_…`).",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every JSON route of the platform with its description.
pub fn api_router() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .merge(crate::system::routes())
        .merge(crate::identity::api::routes())
        .merge(crate::merchants::api::routes())
        .merge(crate::stores::api::routes())
        .merge(crate::codes::api::routes())
        .merge(crate::payments::api::routes())
        .merge(crate::events::webhooks::routes())
        .merge(crate::catalog::api::routes())
        .merge(crate::orders::api::routes())
        .merge(crate::marketing::api::routes())
        .merge(crate::followers::api::routes())
        .merge(crate::wifi::api::routes())
        .merge(crate::members::api::routes())
}
