//! Webhook endpoints and deliveries (Standard Webhooks v1).
//!
//! A merchant registers an *endpoint* (a URL and the event types it wants); the platform answers
//! with the endpoint's signing secret (`whsec_…`), shown once. Every outbox event of that
//! merchant which the endpoint subscribes to becomes one *delivery* (one row per endpoint and
//! event, never two); each HTTP request made for a delivery is an *attempt*. The dispatcher
//! ([`dispatch`]) fans events out into deliveries and sends the due ones, signed per Standard
//! Webhooks (`webhook-id` is the event id, so a receiver can drop repeats), retrying failures on
//! the configured schedule; an endpoint answering `410 Gone` is disabled.
//!
//! Endpoint statuses: `enabled`, `disabled` (it answered 410; `disabled_at` and
//! `disabled_reason` say when and why, and the merchant can enable it again), `deleted` (by the
//! merchant; it then answers 404 like anything that does not exist). Where an endpoint may point
//! is checked by [`guard`]: public addresses only, unless the node allows private targets. Delivery statuses: `pending` (due at
//! `next_attempt_at`), `succeeded` (a 2xx answer), `failed` (retries exhausted, or the endpoint
//! was disabled or deleted).

pub mod dispatch;
pub mod guard;

pub use dispatch::{Dispatcher, dispatch_once, dispatch_round, sign};

use crate::app::AppState;
use crate::db::{Db, DbResult, MerchantScope, Tx, now_us, query, rfc3339};
use crate::error::{Error, Result};
use crate::http::idempotency::{self, Begun};
use crate::http::{Idem, Json, List, MerchantAuth, Page, Path, Query, Reply, error::ErrorBody};
use crate::identity::Role;
use crate::ids::{WebhookDeliveryId, WebhookEndpointId};
use axum::extract::State;
use base64::Engine;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// The event types an endpoint can subscribe to (or `*` for all of them).
pub const EVENT_TYPES: [&str; 15] = [
    "payment.succeeded",
    "payment.requires_capture",
    "payment.canceled",
    "payment.refunded",
    "order.placed",
    "order.paid",
    "order.ready",
    "order.completed",
    "order.canceled",
    "order.refunded",
    "order.updated",
    "message.created",
    "message.sent",
    "member.tier_changed",
    "member.points_exchanged",
];

/// The longest endpoint URL accepted, in characters.
pub const MAX_URL_LEN: usize = 2048;

/// The most endpoints one merchant may have that are not deleted.
pub const MAX_ENDPOINTS_PER_MERCHANT: i64 = 16;

/// Random bytes in a signing secret (Standard Webhooks asks for 24 to 64).
const SECRET_BYTES: usize = 24;

/// An endpoint URL: absolute `http` or `https` with a host, at most [`MAX_URL_LEN`] characters.
#[derive(Debug, Clone)]
pub struct EndpointUrl(String);

impl EndpointUrl {
    pub fn parse(raw: &str) -> Result<EndpointUrl> {
        if raw.len() > MAX_URL_LEN {
            return Err(Error::invalid(
                "url_too_long",
                format!("url must be at most {MAX_URL_LEN} characters."),
            )
            .param("url"));
        }
        let invalid = || {
            Error::invalid(
                "url_invalid",
                "url must be an absolute http:// or https:// URL with a host.",
            )
            .param("url")
        };
        let url = crate::http::url::absolute_http(raw).ok_or_else(invalid)?;
        Ok(EndpointUrl(url))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// The event types an endpoint subscribes to: known types, or `*` alone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventFilter(Vec<String>);

impl EventFilter {
    pub fn parse(events: Vec<String>) -> Result<EventFilter> {
        if events.is_empty() {
            return Err(Error::invalid(
                "events_empty",
                "events must name at least one event type, or \"*\" for all.",
            )
            .param("events"));
        }
        let mut out: Vec<String> = Vec::new();
        for (i, e) in events.into_iter().enumerate() {
            if e != "*" && !EVENT_TYPES.contains(&e.as_str()) {
                return Err(Error::invalid(
                    "event_type_unknown",
                    format!(
                        "{e:?} is not an event type; use \"*\" or one of: {}.",
                        EVENT_TYPES.join(", ")
                    ),
                )
                .param(format!("events[{i}]")));
            }
            if !out.contains(&e) {
                out.push(e);
            }
        }
        if out.iter().any(|e| e == "*") {
            out = vec!["*".to_owned()];
        }
        Ok(EventFilter(out))
    }

    /// Reads the stored form (a JSON array); anything unreadable subscribes to nothing.
    fn from_stored(text: &str) -> EventFilter {
        EventFilter(serde_json::from_str(text).unwrap_or_default())
    }

    fn to_stored(&self) -> String {
        serde_json::to_string(&self.0).unwrap_or_else(|_| "[]".to_owned())
    }

    /// True when an event of type `kind` goes to this endpoint.
    pub fn matches(&self, kind: &str) -> bool {
        self.0.iter().any(|e| e == "*" || e == kind)
    }
}

/// A new endpoint.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateWebhookEndpoint {
    /// Where to POST events: an absolute `http(s)://` URL, at most 2048 characters.
    pub url: String,
    /// Event types, or `["*"]` for all: `payment.succeeded`, `payment.requires_capture`,
    /// `payment.canceled`, `payment.refunded`, `order.placed`, `order.paid`, `order.ready`,
    /// `order.completed`, `order.canceled`, `order.refunded`, `order.updated`, `message.created`,
    /// `message.sent`, `member.tier_changed`, `member.points_exchanged`.
    pub events: Vec<String>,
}

/// A webhook endpoint. `secret` is present only in the answer that created it.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WebhookEndpoint {
    pub id: WebhookEndpointId,
    pub url: String,
    pub events: Vec<String>,
    /// `enabled`, or `disabled` after the endpoint answered 410 Gone.
    pub status: String,
    /// When the endpoint was disabled (disabled endpoints only).
    pub disabled_at: Option<String>,
    /// Why the endpoint was disabled: `gone` (it answered 410 Gone). Disabled endpoints only.
    pub disabled_reason: Option<String>,
    /// The signing secret (`whsec_` then base64), shown once.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    pub created_at: String,
}

/// One delivery of one event to one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDelivery {
    pub id: WebhookDeliveryId,
    pub endpoint_id: WebhookEndpointId,
    pub event_id: String,
    pub event_type: String,
    /// `pending`, `succeeded` or `failed`.
    pub status: String,
    /// How many requests were made so far.
    pub attempts: i64,
    /// The HTTP status of the latest answer (none when the request itself failed).
    pub last_status: Option<i64>,
    pub last_error: Option<String>,
    /// When the next attempt is due (pending deliveries only).
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
    /// Every attempt, oldest first (when one delivery is asked for).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attempt_log: Option<Vec<WebhookAttempt>>,
}

/// One HTTP request made for a delivery.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttempt {
    pub attempt: i64,
    /// The HTTP status answered, if any.
    pub status: Option<i64>,
    /// Why the request failed without an answer (timeout, refused connection), or which
    /// non-2xx status it got.
    pub error: Option<String>,
    pub duration_ms: i64,
    pub created_at: String,
}

// ---------------------------------------------------------------------------------------------
// storage
// ---------------------------------------------------------------------------------------------

#[derive(sqlx::FromRow, serde::Deserialize)]
struct EndpointRow {
    id: String,
    url: String,
    events: String,
    status: String,
    disabled_at: Option<i64>,
    disabled_reason: Option<String>,
    created_at: i64,
}

/// The columns of [`EndpointRow`], for `concat!` into a query.
macro_rules! endpoint_columns {
    () => {
        "id, url, events, status, disabled_at, disabled_reason, created_at"
    };
}

impl EndpointRow {
    fn into_api(self) -> Result<WebhookEndpoint> {
        Ok(WebhookEndpoint {
            id: WebhookEndpointId::parse(&self.id).map_err(Error::internal)?,
            url: self.url,
            events: EventFilter::from_stored(&self.events).0,
            disabled_at: match self.status.as_str() {
                "disabled" => self.disabled_at.map(rfc3339),
                _ => None,
            },
            disabled_reason: match self.status.as_str() {
                "disabled" => self.disabled_reason,
                _ => None,
            },
            status: self.status,
            secret: None,
            created_at: rfc3339(self.created_at),
        })
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct DeliveryRow {
    id: String,
    endpoint_id: String,
    event_id: String,
    event_type: String,
    status: String,
    attempts: i64,
    next_attempt_at: Option<i64>,
    last_status: Option<i64>,
    last_error: Option<String>,
    created_at: i64,
    updated_at: i64,
}

impl DeliveryRow {
    fn into_api(self) -> Result<WebhookDelivery> {
        Ok(WebhookDelivery {
            id: WebhookDeliveryId::parse(&self.id).map_err(Error::internal)?,
            endpoint_id: WebhookEndpointId::parse(&self.endpoint_id).map_err(Error::internal)?,
            event_id: self.event_id,
            event_type: self.event_type,
            next_attempt_at: match self.status.as_str() {
                "pending" => self.next_attempt_at.map(rfc3339),
                _ => None,
            },
            status: self.status,
            attempts: self.attempts,
            last_status: self.last_status,
            last_error: self.last_error,
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
            attempt_log: None,
        })
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct AttemptRow {
    attempt: i64,
    status: Option<i64>,
    error: Option<String>,
    duration_ms: i64,
    created_at: i64,
}

async fn endpoint_scoped(
    db: &Db,
    scope: &MerchantScope,
    id: &str,
) -> DbResult<Option<EndpointRow>> {
    db.fetch_optional(
        query(concat!(
            "SELECT ",
            endpoint_columns!(),
            " FROM webhook_endpoints \
             WHERE id = $1 AND merchant_id = $2 AND status <> 'deleted'",
        ))
        .bind(id)
        .bind(scope.merchant_id()),
    )
    .await
}

async fn delivery_scoped(
    db: &Db,
    scope: &MerchantScope,
    id: &str,
) -> DbResult<Option<DeliveryRow>> {
    db.fetch_optional(
        query(
            "SELECT d.id, d.endpoint_id, d.event_id, ev.type AS event_type, d.status, d.attempts, \
             d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at \
             FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             JOIN events ev ON ev.id = d.event_id \
             WHERE d.id = $1 AND e.merchant_id = $2 AND e.status <> 'deleted'",
        )
        .bind(id)
        .bind(scope.merchant_id()),
    )
    .await
}

fn endpoint_not_found() -> Error {
    Error::not_found("webhook_endpoint_not_found", "No such webhook endpoint.").param("id")
}

fn delivery_not_found() -> Error {
    Error::not_found("webhook_delivery_not_found", "No such webhook delivery.").param("id")
}

/// A fresh signing secret: `whsec_` and the standard base64 of [`SECRET_BYTES`] random bytes.
fn new_secret() -> String {
    use rand::RngCore;
    let mut key = [0u8; SECRET_BYTES];
    rand::rng().fill_bytes(&mut key);
    format!(
        "whsec_{}",
        base64::engine::general_purpose::STANDARD.encode(key)
    )
}

// ---------------------------------------------------------------------------------------------
// services
// ---------------------------------------------------------------------------------------------

/// Creates an endpoint for the scope's merchant; the answer carries the secret.
pub async fn create_endpoint(
    tx: &mut Tx,
    scope: &MerchantScope,
    input: CreateWebhookEndpoint,
) -> Result<WebhookEndpoint> {
    let url = EndpointUrl::parse(&input.url)?;
    let events = EventFilter::parse(input.events)?;
    let (existing,): (i64,) = tx
        .fetch_one(
            query(
                "SELECT COUNT(*) FROM webhook_endpoints WHERE merchant_id = $1 AND status <> 'deleted'",
            )
            .bind(scope.merchant_id()),
        )
        .await?;
    if existing >= MAX_ENDPOINTS_PER_MERCHANT {
        return Err(Error::conflict(
            "webhook_endpoint_limit",
            format!(
                "A merchant can have at most {MAX_ENDPOINTS_PER_MERCHANT} webhook endpoints; delete one first."
            ),
        ));
    }
    let id = WebhookEndpointId::generate();
    let secret = new_secret();
    let now = now_us();
    tx.execute(
        query(
            "INSERT INTO webhook_endpoints (id, merchant_id, url, events, secret, status, created_at) \
             VALUES ($1, $2, $3, $4, $5, 'enabled', $6)",
        )
        .bind(&id)
        .bind(scope.merchant_id())
        .bind(url.as_str())
        .bind(events.to_stored())
        .bind(&secret)
        .bind(now),
    )
    .await?;
    Ok(WebhookEndpoint {
        id,
        url: url.0,
        events: events.0,
        status: "enabled".to_owned(),
        disabled_at: None,
        disabled_reason: None,
        secret: Some(secret),
        created_at: rfc3339(now),
    })
}

/// Deletes an endpoint: it gets nothing more, and its pending deliveries fail.
pub async fn delete_endpoint(db: &Db, scope: &MerchantScope, id: &str) -> Result<WebhookEndpoint> {
    let mut tx = db.begin().await?;
    let row: Option<EndpointRow> = tx
        .fetch_optional(
            query(concat!(
                "UPDATE webhook_endpoints SET status = 'deleted' \
                 WHERE id = $1 AND merchant_id = $2 AND status <> 'deleted' \
                 RETURNING ",
                endpoint_columns!(),
                "",
            ))
            .bind(id)
            .bind(scope.merchant_id()),
        )
        .await?;
    let Some(row) = row else {
        return Err(endpoint_not_found());
    };
    fail_pending(&mut tx, id, "the endpoint was deleted", now_us()).await?;
    tx.commit().await?;
    row.into_api()
}

/// Enables a disabled endpoint again (the merchant fixed its receiver): events from now on
/// reach it, and its failed deliveries can be replayed. Its URL is checked again first. An
/// enabled endpoint is answered as it is.
pub async fn enable_endpoint(
    app: &AppState,
    scope: &MerchantScope,
    id: &str,
) -> Result<WebhookEndpoint> {
    let row = endpoint_scoped(&app.db, scope, id)
        .await?
        .ok_or_else(endpoint_not_found)?;
    if row.status == "enabled" {
        return row.into_api();
    }
    // Checked before the write: resolving a name must not hold the writer.
    guard::check_endpoint(&row.url, app.webhooks.allows_private()).await?;
    let mut tx = app.db.begin().await?;
    let updated: Option<EndpointRow> = tx
        .fetch_optional(
            query(concat!(
"UPDATE webhook_endpoints SET status = 'enabled', disabled_at = NULL, disabled_reason = NULL, \
                 receives_from = $3 \
                 WHERE id = $1 AND merchant_id = $2 AND status <> 'deleted' \
                 RETURNING ",
 endpoint_columns!(),
 "",
))
            .bind(id)
            .bind(scope.merchant_id())
            .bind(crate::db::now_us()),
        )
        .await?;
    tx.commit().await?;
    updated.ok_or_else(endpoint_not_found)?.into_api()
}

/// Marks the pending deliveries of an endpoint failed, with the reason.
async fn fail_pending(tx: &mut Tx, endpoint_id: &str, reason: &str, now: i64) -> DbResult<u64> {
    tx.execute(
        query(
            "UPDATE webhook_deliveries SET status = 'failed', next_attempt_at = NULL, last_error = $2, updated_at = $3 \
             WHERE endpoint_id = $1 AND status = 'pending'",
        )
        .bind(endpoint_id)
        .bind(reason)
        .bind(now),
    )
    .await
}

pub async fn list_endpoints(
    db: &Db,
    scope: &MerchantScope,
    page: &Page,
) -> Result<List<WebhookEndpoint>> {
    let rows: Vec<EndpointRow> = db
        .fetch_all(
            query(concat!(
                "SELECT ",
                endpoint_columns!(),
                " FROM webhook_endpoints \
                 WHERE merchant_id = $1 AND status <> 'deleted' AND ($2 IS NULL OR id < $2) \
                 ORDER BY id DESC LIMIT $3",
            ))
            .bind(scope.merchant_id())
            .bind(page.cursor())
            .bind(page.fetch_limit()),
        )
        .await?;
    let items = rows
        .into_iter()
        .map(EndpointRow::into_api)
        .collect::<Result<Vec<_>>>()?;
    Ok(page.finish(items))
}

/// The status a delivery list may be filtered by.
fn parse_delivery_status(status: Option<String>) -> Result<Option<String>> {
    match status.as_deref() {
        None => Ok(None),
        Some("pending" | "succeeded" | "failed") => Ok(status),
        Some(_) => Err(Error::invalid(
            "status_unknown",
            "status must be pending, succeeded or failed.",
        )
        .param("status")),
    }
}

pub async fn list_deliveries(
    db: &Db,
    scope: &MerchantScope,
    endpoint_id: &str,
    status: Option<String>,
    page: &Page,
) -> Result<List<WebhookDelivery>> {
    let status = parse_delivery_status(status)?;
    endpoint_scoped(db, scope, endpoint_id)
        .await?
        .ok_or_else(endpoint_not_found)?;
    let rows: Vec<DeliveryRow> = db
        .fetch_all(
            query(
                "SELECT d.id, d.endpoint_id, d.event_id, ev.type AS event_type, d.status, d.attempts, \
                 d.next_attempt_at, d.last_status, d.last_error, d.created_at, d.updated_at \
                 FROM webhook_deliveries d JOIN events ev ON ev.id = d.event_id \
                 WHERE d.endpoint_id = $1 AND ($2 IS NULL OR d.id < $2) AND ($3 IS NULL OR d.status = $3) \
                 ORDER BY d.id DESC LIMIT $4",
            )
            .bind(endpoint_id)
            .bind(page.cursor())
            .bind(status)
            .bind(page.fetch_limit()),
        )
        .await?;
    let items = rows
        .into_iter()
        .map(DeliveryRow::into_api)
        .collect::<Result<Vec<_>>>()?;
    Ok(page.finish(items))
}

/// One delivery with every attempt.
pub async fn get_delivery(db: &Db, scope: &MerchantScope, id: &str) -> Result<WebhookDelivery> {
    let row = delivery_scoped(db, scope, id)
        .await?
        .ok_or_else(delivery_not_found)?;
    let attempts: Vec<AttemptRow> = db
        .fetch_all(
            query(
                "SELECT attempt, status, error, duration_ms, created_at FROM webhook_attempts \
                 WHERE delivery_id = $1 ORDER BY attempt",
            )
            .bind(id),
        )
        .await?;
    let mut delivery = row.into_api()?;
    delivery.attempt_log = Some(
        attempts
            .into_iter()
            .map(|a| WebhookAttempt {
                attempt: a.attempt,
                status: a.status,
                error: a.error,
                duration_ms: a.duration_ms,
                created_at: rfc3339(a.created_at),
            })
            .collect(),
    );
    Ok(delivery)
}

/// Sends a delivery again now, whatever its status (a new attempt with the same `webhook-id`).
pub async fn replay(app: &AppState, scope: &MerchantScope, id: &str) -> Result<WebhookDelivery> {
    delivery_scoped(&app.db, scope, id)
        .await?
        .ok_or_else(delivery_not_found)?;
    dispatch::replay(app, id).await?;
    get_delivery(&app.db, scope, id).await
}

// ---------------------------------------------------------------------------------------------
// routes
// ---------------------------------------------------------------------------------------------

/// Registers an endpoint for the caller's merchant. The signing secret is shown only here.
/// The URL must lead to a public address (`400 webhook_url_not_allowed` otherwise) unless the
/// platform allows private targets.
#[utoipa::path(post, path = "/v1/webhook-endpoints", tag = "webhooks", security(("bearer" = [])),
    request_body = CreateWebhookEndpoint,
    responses((status = 201, body = WebhookEndpoint), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 409, body = ErrorBody)))]
async fn create(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    body: Json<CreateWebhookEndpoint>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let (reply, _) = register(
        &app,
        &auth.scope,
        &auth.principal.id,
        key,
        &body.body_sha256,
        body.value,
    )
    .await?;
    Ok(reply)
}

/// Registers an endpoint once per idempotency key (the API's and the console's way in): the
/// answer, and the endpoint with its secret when this call created it (`None` on a replay).
/// Where the URL leads is checked before the write begins: resolving a name must not hold the
/// writer. The syntax is checked first, so a malformed URL keeps its own code.
pub async fn register(
    app: &AppState,
    scope: &MerchantScope,
    caller: &str,
    key: Option<String>,
    body_sha256: &str,
    input: CreateWebhookEndpoint,
) -> Result<(Reply, Option<WebhookEndpoint>)> {
    let url = EndpointUrl::parse(&input.url)?;
    guard::check_endpoint(url.as_str(), app.webhooks.allows_private()).await?;
    let mut write = match idempotency::begin(&app.db, caller, key, body_sha256).await? {
        Begun::Replay(reply) => return Ok((reply, None)),
        Begun::Fresh(write) => write,
    };
    let created = create_endpoint(write.tx(), scope, input).await?;
    let reply = Reply::created(&created)?;
    // A replayed answer does not carry the secret: it is not kept outside the endpoint.
    let stored = serde_json::to_string(&WebhookEndpoint {
        secret: None,
        ..created.clone()
    })
    .map_err(Error::internal)?;
    Ok((write.finish_storing(reply, stored).await?, Some(created)))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
}

/// The caller's endpoints (without secrets), newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints", tag = "webhooks", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = List<WebhookEndpoint>), (status = 403, body = ErrorBody)))]
async fn list(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<List<WebhookEndpoint>>> {
    auth.require(Role::Manager)?;
    let page = crate::http::PageParams {
        limit: q.limit,
        starting_after: q.starting_after,
    }
    .parse()?;
    Ok(axum::Json(
        list_endpoints(&app.db, &auth.scope, &page).await?,
    ))
}

/// One endpoint (without its secret).
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "whe_ id")),
    responses((status = 200, body = WebhookEndpoint), (status = 404, body = ErrorBody)))]
async fn get_one(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookEndpoint>> {
    auth.require(Role::Manager)?;
    let row = endpoint_scoped(&app.db, &auth.scope, &id)
        .await?
        .ok_or_else(endpoint_not_found)?;
    Ok(axum::Json(row.into_api()?))
}

/// Deletes an endpoint: nothing more is sent to it, and its pending deliveries fail.
#[utoipa::path(delete, path = "/v1/webhook-endpoints/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "whe_ id")),
    responses((status = 200, body = WebhookEndpoint), (status = 404, body = ErrorBody)))]
async fn delete(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookEndpoint>> {
    auth.require(Role::Manager)?;
    Ok(axum::Json(
        delete_endpoint(&app.db, &auth.scope, &id).await?,
    ))
}

/// Enables a disabled endpoint again: events committed from now on are delivered to it, and
/// its failed deliveries can be replayed. Its URL is checked again. An enabled endpoint is
/// answered as it is.
#[utoipa::path(post, path = "/v1/webhook-endpoints/{id}/enable", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "whe_ id")),
    responses((status = 200, body = WebhookEndpoint), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody)))]
async fn enable(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookEndpoint>> {
    auth.require(Role::Manager)?;
    Ok(axum::Json(enable_endpoint(&app, &auth.scope, &id).await?))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct DeliveryListParams {
    /// Only `pending`, `succeeded` or `failed` deliveries.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
}

/// An endpoint's deliveries, newest first.
#[utoipa::path(get, path = "/v1/webhook-endpoints/{id}/deliveries", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "whe_ id"), DeliveryListParams),
    responses((status = 200, body = List<WebhookDelivery>), (status = 404, body = ErrorBody)))]
async fn deliveries(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(q): Query<DeliveryListParams>,
) -> Result<axum::Json<List<WebhookDelivery>>> {
    auth.require(Role::Manager)?;
    let page = crate::http::PageParams {
        limit: q.limit,
        starting_after: q.starting_after,
    }
    .parse()?;
    Ok(axum::Json(
        list_deliveries(&app.db, &auth.scope, &id, q.status, &page).await?,
    ))
}

/// One delivery with all its attempts.
#[utoipa::path(get, path = "/v1/webhook-deliveries/{id}", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "whd_ id")),
    responses((status = 200, body = WebhookDelivery), (status = 404, body = ErrorBody)))]
async fn delivery(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookDelivery>> {
    auth.require(Role::Manager)?;
    Ok(axum::Json(get_delivery(&app.db, &auth.scope, &id).await?))
}

/// Sends a delivery again now (a new attempt, same `webhook-id`) and answers with the result.
#[utoipa::path(post, path = "/v1/webhook-deliveries/{id}/replay", tag = "webhooks", security(("bearer" = [])),
    params(("id" = String, Path, description = "whd_ id")),
    responses((status = 200, body = WebhookDelivery), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn replay_delivery(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<WebhookDelivery>> {
    auth.require(Role::Manager)?;
    Ok(axum::Json(replay(&app, &auth.scope, &id).await?))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create, list))
        .routes(routes!(get_one, delete))
        .routes(routes!(enable))
        .routes(routes!(deliveries))
        .routes(routes!(delivery))
        .routes(routes!(replay_delivery))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_urls_must_be_absolute_http() {
        // The rules are `http::url::absolute_http`'s (tested there); here, their codes.
        assert!(EndpointUrl::parse("https://example.com/hooks").is_ok());
        for bad in ["example.com/hooks", "http://127.0.0.1:0/"] {
            assert_eq!(
                EndpointUrl::parse(bad).unwrap_err().code,
                "url_invalid",
                "{bad}"
            );
        }
        let long = format!("https://example.com/{}", "a".repeat(MAX_URL_LEN));
        assert_eq!(EndpointUrl::parse(&long).unwrap_err().code, "url_too_long");
    }

    #[test]
    fn event_filters_take_known_types_or_everything() {
        let f = EventFilter::parse(vec!["payment.succeeded".into()]).unwrap();
        assert!(f.matches("payment.succeeded"));
        assert!(!f.matches("payment.refunded"));
        let all = EventFilter::parse(vec!["payment.refunded".into(), "*".into()]).unwrap();
        assert_eq!(all.0, vec!["*"]);
        assert!(all.matches("payment.canceled"));
        assert_eq!(EventFilter::parse(vec![]).unwrap_err().code, "events_empty");
        let e =
            EventFilter::parse(vec!["payment.succeeded".into(), "order.eaten".into()]).unwrap_err();
        assert_eq!(e.code, "event_type_unknown");
        assert_eq!(e.param.as_deref(), Some("events[1]"));
    }

    #[test]
    fn secrets_decode_to_enough_random_bytes() {
        let s = new_secret();
        let key = base64::engine::general_purpose::STANDARD
            .decode(s.strip_prefix("whsec_").unwrap())
            .unwrap();
        assert_eq!(key.len(), SECRET_BYTES);
        assert_ne!(s, new_secret());
    }
}
