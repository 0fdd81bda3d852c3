//! Orders' JSON routes.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::events::Published;
use crate::http::{
    Auth, ConsumerAuth, Idem, Json, List, MerchantAuth, OptionalJson, PageParams, Path, Query,
    Reply, error::ErrorBody,
};
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use std::convert::Infallible;
use tokio::sync::broadcast::error::RecvError;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Places an order: dine-in at a table (added to the table's shared order), pickup, delivery or
/// scan-and-go. Prices come from the store's menu; `payment` pays while ordering.
#[utoipa::path(post, path = "/v1/orders", tag = "orders", security(("bearer" = [])), request_body = CreateOrder,
    responses((status = 201, body = Order), (status = 200, body = Order, description = "Added to the table's open order"),
        (status = 400, body = ErrorBody), (status = 402, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 409, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn create_order(
    State(app): State<AppState>,
    Auth(p): Auth,
    Idem(key): Idem,
    body: Json<CreateOrder>,
) -> Result<Reply> {
    service::create(&app, &p, body.value, key, &body.body_sha256).await
}

/// Quotes a delivery before it is placed: the fee, the minimum order, the distance and the
/// promised arrival, by the rules placing it would apply (outside the radius, a closed store or
/// an unknown item answer the same errors). Nothing is held or written; no login is needed.
#[utoipa::path(post, path = "/v1/orders/quote", tag = "orders", request_body = QuoteRequest,
    responses((status = 200, body = DeliveryQuote), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn quote(
    State(app): State<AppState>,
    body: Json<QuoteRequest>,
) -> Result<axum::Json<DeliveryQuote>> {
    Ok(axum::Json(service::quote(&app, body.value).await?))
}

/// One order: its consumer (anyone at the table, for a dine-in order) or the merchant's staff.
#[utoipa::path(get, path = "/v1/orders/{id}", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 404, body = ErrorBody)))]
async fn get_order(
    State(app): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<axum::Json<Order>> {
    Ok(axum::Json(service::get(&app, &p, &id).await?.public()))
}

/// Adds items (a table's shared order while unpaid, a scan-and-go basket while open).
#[utoipa::path(post, path = "/v1/orders/{id}/items", tag = "orders", security(("bearer" = [])), request_body = AddItems,
    responses((status = 200, body = Order), (status = 409, body = ErrorBody)))]
async fn add_items(
    State(app): State<AppState>,
    Auth(p): Auth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: Json<AddItems>,
) -> Result<Reply> {
    let hash = format!("items:{id}:{}", body.body_sha256);
    service::add_items(&app, &p, &id, body.value, key, &hash).await
}

/// Scan-and-go: adds the product whose EAN-13 / UPC-A barcode is in a photo (the raw image bytes
/// as the body, `Content-Type: image/jpeg`, `image/png` or `image/webp`, at most 5 MB).
#[utoipa::path(post, path = "/v1/orders/{id}/items/photo", tag = "orders", security(("bearer" = [])),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, body = Order), (status = 400, body = ErrorBody), (status = 413, body = ErrorBody),
        (status = 415, body = ErrorBody)))]
async fn add_by_photo(
    State(app): State<AppState>,
    Auth(p): Auth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: std::result::Result<axum::body::Bytes, axum::extract::rejection::BytesRejection>,
) -> Result<Reply> {
    let bytes = body.map_err(|rejection| {
        crate::http::json::unread_body(&rejection, "A photo is at most 5 MB.")
    })?;
    service::add_by_photo(&app, &p, &id, bytes, key).await
}

/// Sends a table's unsent items to the kitchen.
#[utoipa::path(post, path = "/v1/orders/{id}/place", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = Order), (status = 409, body = ErrorBody)))]
async fn place(
    State(app): State<AppState>,
    Auth(p): Auth,
    Idem(key): Idem,
    Path(id): Path<String>,
) -> Result<Reply> {
    service::place(&app, &p, &id, key, &format!("place:{id}")).await
}

/// Pays for an order (all that is due, or a share of a table's bill): from the wallet or a
/// member card, or cash recorded by the cashier. Answers the payment.
#[utoipa::path(post, path = "/v1/orders/{id}/pay", tag = "orders", security(("bearer" = [])), request_body = PayInput,
    responses((status = 201, body = crate::payments::model::Payment), (status = 402, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn pay(
    State(app): State<AppState>,
    Auth(p): Auth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: Json<PayInput>,
) -> Result<Reply> {
    let hash = format!("pay:{id}:{}", body.body_sha256);
    service::pay(&app, &p, &id, body.value, key, &hash).await
}

macro_rules! step_route {
    ($name:ident, $path:literal, $step:expr, $doc:literal) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "orders", security(("bearer" = [])),
                    responses((status = 200, body = Order), (status = 409, body = ErrorBody)))]
        async fn $name(
            State(app): State<AppState>,
            auth: MerchantAuth,
            Idem(key): Idem,
            Path(id): Path<String>,
        ) -> Result<Reply> {
            let hash = format!("{}:{id}", stringify!($name));
            service::step(&app, &auth.principal, &id, $step, key, &hash).await
        }
    };
}

step_route!(
    accept,
    "/v1/orders/{id}/accept",
    Step::Accept,
    "The kitchen accepts a placed order."
);
step_route!(
    start,
    "/v1/orders/{id}/start",
    Step::Start,
    "The kitchen starts preparing an order."
);
step_route!(
    ready,
    "/v1/orders/{id}/ready",
    Step::Ready,
    "The order is ready (for pickup, for the table, for delivery); the consumer is told."
);
step_route!(
    complete,
    "/v1/orders/{id}/complete",
    Step::Complete,
    "The order is handed over (a dine-in order must be paid)."
);

/// Cancels an order: the consumer until the kitchen accepts it, staff until it is completed.
/// Whatever was paid is refunded; held stock goes back on sale.
#[utoipa::path(post, path = "/v1/orders/{id}/cancel", tag = "orders", security(("bearer" = [])),
    request_body = Option<CancelOrder>, responses((status = 200, body = Order), (status = 409, body = ErrorBody)))]
async fn cancel(
    State(app): State<AppState>,
    Auth(p): Auth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: OptionalJson<CancelOrder>,
) -> Result<Reply> {
    service::cancel(&app, &p, &id, body.value, key, &body.body_sha256).await
}

/// Refunds an order's payments (all that is left, or `amount`), newest payment first (manager).
#[utoipa::path(post, path = "/v1/orders/{id}/refund", tag = "orders", security(("bearer" = [])),
    request_body = Option<RefundOrder>, responses((status = 200, body = Order), (status = 402, body = ErrorBody)))]
async fn refund(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    Path(id): Path<String>,
    body: OptionalJson<RefundOrder>,
) -> Result<Reply> {
    service::refund(
        &app,
        &auth.principal,
        &id,
        body.value,
        key,
        &body.body_sha256,
    )
    .await
}

/// The code the consumer shows: a pickup code (paid pickup order) or an exit pass (paid
/// scan-and-go order). Signed; verifiable offline with `GET /v1/codes/public-key`; used once.
#[utoipa::path(post, path = "/v1/orders/{id}/code", tag = "orders", security(("bearer" = [])),
    responses((status = 201, body = OrderCode), (status = 409, body = ErrorBody)))]
async fn order_code(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<(axum::http::StatusCode, axum::Json<OrderCode>)> {
    Ok((
        axum::http::StatusCode::CREATED,
        axum::Json(service::code(&app, &p, &id).await?),
    ))
}

/// The caller's orders, newest first.
#[utoipa::path(get, path = "/v1/me/orders", tag = "orders", security(("bearer" = [])), params(PageParams),
    responses((status = 200, body = List<Order>)))]
async fn my_orders(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Query(q): Query<PageParams>,
) -> Result<axum::Json<List<Order>>> {
    let page = q.parse()?;
    Ok(axum::Json(service::mine(&app, &p.id, &page).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct BoardParams {
    /// Orders created in the last this many hours (1 to 72, default 12).
    pub hours: Option<i64>,
}

/// A store's orders of the last hours, oldest first (the kitchen board, the counter).
#[utoipa::path(get, path = "/v1/stores/{id}/orders", tag = "orders", security(("bearer" = [])), params(BoardParams),
    responses((status = 200, body = List<Order>), (status = 404, body = ErrorBody)))]
async fn store_orders(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(q): Query<BoardParams>,
) -> Result<axum::Json<List<Order>>> {
    let orders =
        service::of_store(&app, auth.scope.merchant_id(), &id, q.hours.unwrap_or(12)).await?;
    // The board is the whole window at once.
    Ok(axum::Json(List::whole(orders)))
}

/// Hands an order over: the cashier scans the pickup code or exit pass, or types the pickup
/// number. The code is used once; the order is completed.
#[utoipa::path(post, path = "/v1/stores/{id}/handover", tag = "orders", security(("bearer" = [])), request_body = Handover,
    responses((status = 200, body = HandedOver), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn handover(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    body: Json<Handover>,
) -> Result<axum::Json<HandedOver>> {
    Ok(axum::Json(
        service::handover(&app, &auth.principal, &auth.scope, &id, body.value).await?,
    ))
}

/// A store's ordering settings: delivery fee, minimum order, delivery promise, preparation time.
#[utoipa::path(get, path = "/v1/stores/{id}/order-settings", tag = "orders", security(("bearer" = [])),
    responses((status = 200, body = OrderSettings), (status = 404, body = ErrorBody)))]
async fn get_settings(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<OrderSettings>> {
    Ok(axum::Json(service::settings(&app, &auth.scope, &id).await?))
}

/// Sets a store's ordering settings (manager).
#[utoipa::path(put, path = "/v1/stores/{id}/order-settings", tag = "orders", security(("bearer" = [])),
    request_body = OrderSettings, responses((status = 200, body = OrderSettings), (status = 400, body = ErrorBody)))]
async fn put_settings(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    body: Json<OrderSettings>,
) -> Result<axum::Json<OrderSettings>> {
    auth.require(crate::identity::Role::Manager)?;
    Ok(axum::Json(
        service::put_settings(&app, &auth.scope, &id, body.value).await?,
    ))
}

/// How long a live stream stays open; browsers reconnect by themselves.
const LIVE_STREAM_MAX: std::time::Duration = std::time::Duration::from_secs(30 * 60);
const LIVE_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(15);

pub(crate) fn live(
    app: &AppState,
    keep: impl Fn(&Published) -> bool + Send + Sync + 'static,
) -> Response {
    let events = app.bus.subscribe();
    let closed = app.bus.closed();
    let end: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>> =
        Box::pin(async move {
            tokio::select! {
                _ = closed => {}
                _ = tokio::time::sleep(LIVE_STREAM_MAX) => {}
            }
        });
    let keep = std::sync::Arc::new(keep);
    let stream = futures::stream::unfold((events, end), move |(mut events, mut end)| {
        let keep = keep.clone();
        async move {
            loop {
                tokio::select! {
                    _ = &mut end => return None,
                    received = events.recv() => match received {
                        Ok(e) if e.kind.starts_with("order.") && keep(&e) => {
                            let Ok(event) = Event::default().event("order").json_data(&*e) else {
                                continue;
                            };
                            return Some((Ok::<_, Infallible>(event), (events, end)));
                        }
                        Ok(_) | Err(RecvError::Lagged(_)) => continue,
                        Err(RecvError::Closed) => return None,
                    },
                }
            }
        }
    });
    let mut response = Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(LIVE_KEEP_ALIVE))
        .into_response();
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Live changes of a store's orders (server-sent events `order`, each an order event): the
/// kitchen board and the counter.
#[utoipa::path(get, path = "/v1/stores/{id}/orders/events", tag = "orders", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = ErrorBody)))]
async fn store_events(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<Response> {
    if crate::stores::service::own_store_timezone(&app.db, auth.scope.merchant_id(), &id)
        .await?
        .is_none()
    {
        return Err(Error::not_found("store_not_found", "No such store.").param("id"));
    }
    let merchant = auth.scope.merchant_id().to_owned();
    Ok(live(&app, move |e| {
        e.merchant_id == merchant && e.store_id.as_deref() == Some(id.as_str())
    }))
}

/// Live changes of one order (server-sent events `order`): everyone at a table sees the others'
/// items appear; a consumer sees their order become ready.
#[utoipa::path(get, path = "/v1/orders/{id}/events", tag = "orders", security(("bearer" = [])),
    responses((status = 200, content_type = "text/event-stream", body = String), (status = 404, body = ErrorBody)))]
async fn order_events(
    State(app): State<AppState>,
    Auth(p): Auth,
    Path(id): Path<String>,
) -> Result<Response> {
    let order = service::get(&app, &p, &id).await?;
    let oid = order.id;
    Ok(live(&app, move |e| e.field_str("id") == Some(oid.as_str())))
}

pub fn routes() -> OpenApiRouter<AppState> {
    // A photo of a barcode is the one body here that may exceed the JSON limit.
    let photos = OpenApiRouter::new().routes(routes!(add_by_photo)).layer(
        axum::extract::DefaultBodyLimit::max(crate::catalog::service::MAX_PHOTO_BYTES),
    );
    OpenApiRouter::new()
        .routes(routes!(create_order))
        .routes(routes!(quote))
        .routes(routes!(get_order))
        .routes(routes!(add_items))
        .routes(routes!(place))
        .routes(routes!(pay))
        .routes(routes!(accept))
        .routes(routes!(start))
        .routes(routes!(ready))
        .routes(routes!(complete))
        .routes(routes!(cancel))
        .routes(routes!(refund))
        .routes(routes!(order_code))
        .routes(routes!(my_orders))
        .routes(routes!(store_orders))
        .routes(routes!(handover))
        .routes(routes!(get_settings, put_settings))
        .routes(routes!(store_events))
        .routes(routes!(order_events))
        .merge(photos)
}
