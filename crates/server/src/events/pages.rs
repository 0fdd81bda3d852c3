//! The console's webhooks page (`/console/webhooks`): a merchant's endpoints with their recent
//! deliveries, registering an endpoint (its secret shown once), deleting or enabling one, and
//! sending a delivery again. Managers and owners only, as in the API.

use super::webhooks::{self, CreateWebhookEndpoint, EVENT_TYPES, WebhookDelivery, WebhookEndpoint};
use crate::app::AppState;
use crate::error::{Error, Result};
use crate::http::{Form, Page, Path};
use crate::identity::Role;
use crate::web::{OrPage, PageCtx, PageError, StaffConsole, T};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

const PATH: &str = "/console/webhooks";
/// Recent deliveries shown under each endpoint.
const DELIVERIES_SHOWN: i64 = 10;
/// A just-created secret travels to the next page once, in a short-lived cookie limited to this
/// page, so the form can redirect (a reload never registers a second endpoint).
const SECRET_FLASH: &str = "o2o_new_webhook_secret";

fn managers_only() -> Error {
    Error::forbidden("insufficient_role", "Managers and owners manage webhooks.")
}

struct EndpointView {
    endpoint: WebhookEndpoint,
    events: String,
    deliveries: Vec<WebhookDelivery>,
}

#[derive(Template)]
#[template(path = "events/webhooks.html")]
struct WebhooksPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    /// The one-time key of the registration form (a double submit registers once).
    key: String,
    can_manage: bool,
    endpoints: Vec<EndpointView>,
    event_types: &'static [&'static str],
    secret: Option<String>,
    error: Option<String>,
    /// The registration form as typed, when it was refused.
    url: String,
    chosen: Vec<String>,
}

impl WebhooksPage<'_> {
    fn is_chosen(&self, event: &&str) -> bool {
        self.chosen.iter().any(|c| c == event)
    }

    fn status_key(&self, status: &str) -> &'static str {
        match status {
            "succeeded" => "webhooks.status.succeeded",
            "failed" => "webhooks.status.failed",
            _ => "webhooks.status.pending",
        }
    }
}

/// `GET /console/webhooks`.
async fn webhooks_page(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    headers: HeaderMap,
) -> Result<Response, PageError> {
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    // The flash names the merchant it belongs to: shown only to that merchant's managers.
    let flash = crate::http::auth::cookie_value(&headers, SECRET_FLASH);
    let secret = flash
        .as_deref()
        .and_then(|v| v.split_once('.'))
        .filter(|(merchant, secret)| {
            *merchant == c.scope.merchant_id()
                && secret.starts_with("whsec_")
                && c.role >= Role::Manager
        })
        .map(|(_, secret)| secret.to_owned());
    if flash.is_some() {
        ctx.set_cookies.push(format!(
            "{SECRET_FLASH}=; Path={PATH}; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if ctx.secure { "; Secure" } else { "" }
        ));
    }
    let mut response = render(
        &app,
        &ctx,
        &c,
        secret,
        None,
        Registration::default(),
        StatusCode::OK,
    )
    .await?;
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

/// The registration form as typed.
#[derive(Default)]
struct Registration {
    url: String,
    events: Vec<String>,
}

async fn render(
    app: &AppState,
    ctx: &PageCtx,
    c: &StaffConsole,
    secret: Option<String>,
    error: Option<String>,
    form: Registration,
    status: StatusCode,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let can_manage = c.role >= Role::Manager;
    let mut endpoints = Vec::new();
    if can_manage {
        let list = webhooks::list_endpoints(
            &app.db,
            &c.scope,
            &Page::first(webhooks::MAX_ENDPOINTS_PER_MERCHANT),
        )
        .await
        .or_page(t)?;
        for endpoint in list.data {
            let deliveries = webhooks::list_deliveries(
                &app.db,
                &c.scope,
                endpoint.id.as_str(),
                None,
                &Page::first(DELIVERIES_SHOWN),
            )
            .await
            .or_page(t)?
            .data;
            endpoints.push(EndpointView {
                events: endpoint.events.join(", "),
                endpoint,
                deliveries,
            });
        }
    }
    let mut response = ctx.render(&WebhooksPage {
        t,
        path: PATH,
        csrf: &ctx.csrf,
        key: crate::payments::pages::new_form_key(),
        can_manage,
        endpoints,
        event_types: &EVENT_TYPES,
        secret,
        error,
        url: form.url,
        chosen: form.events,
    })?;
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// `POST /console/webhooks`: registers an endpoint. The fields are `csrf`, `key`, `url` and one
/// `events` per chosen type (none chosen means every type).
async fn register(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    ctx.check_csrf(&field("csrf"))?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    let form = Registration {
        url: field("url").trim().to_owned(),
        events: fields
            .iter()
            .filter(|(k, _)| k == "events")
            .map(|(_, v)| v.clone())
            .collect(),
    };
    let key = field("key");
    let result = async {
        if c.role < Role::Manager {
            return Err(managers_only());
        }
        let events = if form.events.is_empty() {
            vec!["*".to_owned()]
        } else {
            form.events.clone()
        };
        let hash =
            crate::identity::service::sha256_hex(&format!("{}\u{0}{}", form.url, events.join(",")));
        let key = (!key.is_empty() && key.len() <= 64).then(|| format!("page:{key}"));
        webhooks::register(
            &app,
            &c.scope,
            &c.staff_id,
            key,
            &hash,
            CreateWebhookEndpoint {
                url: form.url.clone(),
                events,
            },
        )
        .await
    }
    .await;
    match result {
        Ok((_, created)) => {
            if let Some(secret) = created.and_then(|e| e.secret) {
                ctx.set_cookies.push(format!(
                    "{SECRET_FLASH}={}.{secret}; Path={PATH}; HttpOnly; SameSite=Strict; Max-Age=120{}",
                    c.scope.merchant_id(),
                    if ctx.secure { "; Secure" } else { "" }
                ));
            }
            Ok(ctx.redirect(PATH))
        }
        Err(e) => {
            let (status, message) = crate::web::refusal(ctx.t, e)?;
            render(&app, &ctx, &c, None, Some(message), form, status).await
        }
    }
}

#[derive(Deserialize)]
struct ActionForm {
    csrf: String,
}

/// What an action on an endpoint or a delivery does.
#[derive(Clone, Copy)]
enum Action {
    Delete,
    Enable,
    Replay,
}

async fn act(
    app: &AppState,
    ctx: &PageCtx,
    form: &ActionForm,
    id: &str,
    action: Action,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    let result = async {
        if c.role < Role::Manager {
            return Err(managers_only());
        }
        match action {
            Action::Delete => webhooks::delete_endpoint(&app.db, &c.scope, id)
                .await
                .map(drop),
            Action::Enable => webhooks::enable_endpoint(app, &c.scope, id).await.map(drop),
            Action::Replay => webhooks::replay(app, &c.scope, id).await.map(drop),
        }
    }
    .await;
    match result {
        Ok(()) => Ok(ctx.redirect(PATH)),
        Err(e) => {
            let (status, message) = crate::web::refusal(ctx.t, e)?;
            render(
                app,
                ctx,
                &c,
                None,
                Some(message),
                Registration::default(),
                status,
            )
            .await
        }
    }
}

async fn delete(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    act(&app, &ctx, &form, &id, Action::Delete).await
}

async fn enable(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    act(&app, &ctx, &form, &id, Action::Enable).await
}

async fn replay(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<ActionForm>,
) -> Result<Response, PageError> {
    act(&app, &ctx, &form, &id, Action::Replay).await
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(PATH, get(webhooks_page).post(register))
        .route("/console/webhooks/{id}/delete", post(delete))
        .route("/console/webhooks/{id}/enable", post(enable))
        .route("/console/webhook-deliveries/{id}/replay", post(replay))
}
