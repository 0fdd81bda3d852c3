//! The WiFi login pages: what `/q/<code>` shows for a `wifi` code (log in with a phone, or go
//! online at once when logged in; an unticked "follow" box), and the "you're online" page, or
//! the redirect back to the store's router.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::codes::pages::Landing;
use crate::error::Error;
use crate::followers::model::Channel;
use crate::followers::service as followers;
use crate::http::{Form, Path};
use crate::identity::model::Phone;
use crate::identity::{PrincipalKind, service as identity};
use crate::web::{OrPage, PageCtx, PageError, T};
use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::post;
use serde::Deserialize;
use std::net::SocketAddr;

/// Which form the login page shows.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Logged in already: one button.
    Connect,
    /// Asks for the phone number.
    Phone,
    /// Asks for the code sent to the phone.
    Code,
}

#[derive(Template)]
#[template(path = "wifi/login.html")]
struct LoginPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    code: &'a str,
    store_name: &'a str,
    merchant_name: &'a str,
    verified: bool,
    router: String,
    step: Step,
    phone: Option<String>,
    phone_last4: Option<String>,
    already_following: bool,
    error: Option<String>,
}

#[derive(Template)]
#[template(path = "wifi/online.html")]
struct OnlinePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    store_name: &'a str,
    merchant_name: &'a str,
    store_id: &'a str,
    until: String,
    following: bool,
    redir: Option<String>,
}

/// A resolved `wifi` code: the store and merchant the login is for.
struct Spot {
    store_id: String,
    store_name: String,
    timezone: String,
    merchant_id: String,
    merchant_name: String,
    verified: bool,
}

impl Spot {
    fn of(landing: &Landing) -> Spot {
        Spot {
            store_id: landing.store.id.clone(),
            store_name: landing.store.name.clone(),
            timezone: landing.store.timezone.clone(),
            merchant_id: landing.merchant.id.clone(),
            merchant_name: landing.merchant.name.clone(),
            verified: landing.merchant.verified,
        }
    }
}

fn not_found(t: T) -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        message: t.s("error.not_found").to_owned(),
        t,
    }
}

/// The `wifi` code behind a form's path, or a 404 page.
async fn spot(app: &AppState, t: T, code: &str) -> Result<Spot, PageError> {
    match crate::codes::service::resolve(&app.db, code)
        .await
        .or_page(t)?
    {
        Ok(r) if r.row.kind == "wifi" => Ok(Spot {
            store_id: r.store.id.clone(),
            store_name: r.store.name.clone(),
            timezone: r.store.timezone.clone(),
            merchant_id: r.row.merchant_id.clone(),
            merchant_name: r.row.merchant_name.clone(),
            verified: r.row.merchant_verified,
        }),
        _ => Err(not_found(t)),
    }
}

fn account(ctx: &PageCtx) -> Option<String> {
    ctx.principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer && !p.guest)
        .map(|p| p.id.clone())
}

fn router_params(raw: &str) -> Result<RouterParams, Error> {
    let raw: RawRouterParams = serde_urlencoded::from_str(raw).map_err(|_| {
        Error::invalid(
            "invalid_router_parameter",
            "The router's parameters could not be read.",
        )
    })?;
    RouterParams::parse(raw)
}

fn bad_request(t: T, e: Error) -> PageError {
    PageError::from_error(t, e)
}

struct LoginView<'a> {
    code: &'a str,
    spot: &'a Spot,
    params: &'a RouterParams,
}

impl LoginView<'_> {
    /// Renders the login page at `step`, with `status`.
    #[allow(clippy::too_many_arguments)]
    fn render(
        &self,
        ctx: &PageCtx,
        step: Step,
        phone: Option<&Phone>,
        already_following: bool,
        error: Option<String>,
        status: StatusCode,
    ) -> Result<Response, PageError> {
        let path = format!("/q/{}", self.code);
        let mut response = ctx.render(&LoginPage {
            t: ctx.t,
            logged_in: ctx.logged_in(),
            path: &path,
            csrf: &ctx.csrf,
            code: self.code,
            store_name: &self.spot.store_name,
            merchant_name: &self.spot.merchant_name,
            verified: self.spot.verified,
            router: self.params.to_query(),
            step,
            phone_last4: phone.map(|p| p.last4().to_owned()),
            phone: phone.map(|p| p.as_str().to_owned()),
            already_following,
            error,
        })?;
        *response.status_mut() = status;
        Ok(response)
    }
}

/// What `/q/<code>` shows for a `wifi` code. `code` is the short id the path carried.
pub async fn landing(
    app: &AppState,
    ctx: PageCtx,
    code: &str,
    landing: &Landing,
    query: Option<&str>,
) -> Result<Response, PageError> {
    let params = router_params(query.unwrap_or("")).map_err(|e| bad_request(ctx.t, e))?;
    let spot = Spot::of(landing);
    let form = LoginView {
        code,
        spot: &spot,
        params: &params,
    };
    match account(&ctx) {
        Some(user_id) => {
            let following = followers::follow_state(&app.db, &user_id, &spot.merchant_id)
                .await
                .or_page(ctx.t)?
                .is_some();
            form.render(&ctx, Step::Connect, None, following, None, StatusCode::OK)
        }
        None => form.render(&ctx, Step::Phone, None, false, None, StatusCode::OK),
    }
}

#[derive(Deserialize)]
struct PhoneForm {
    csrf: String,
    #[serde(default)]
    router: String,
    phone: String,
}

/// `POST /wifi/{code}/code`: sends the one-time code, then asks for it.
async fn send_code(
    State(app): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Form(form): Form<PhoneForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let spot = spot(&app, ctx.t, &code).await?;
    let params = router_params(&form.router).map_err(|e| bad_request(ctx.t, e))?;
    let page = LoginView {
        code: &code,
        spot: &spot,
        params: &params,
    };
    let phone = match Phone::parse(&form.phone) {
        Ok(p) => p,
        Err(e) => {
            let (status, said) = crate::web::refusal(ctx.t, e)?;
            return page.render(&ctx, Step::Phone, None, false, Some(said), status);
        }
    };
    match identity::request_otp(&app.db, &phone, &addr.ip().to_string()).await {
        Ok(message) => {
            if let Err(e) = app.sms.deliver(message).await {
                tracing::warn!(error = %e, "SMS delivery failed; the message stays in the outbox");
            }
            page.render(&ctx, Step::Code, Some(&phone), false, None, StatusCode::OK)
        }
        Err(e) => {
            let (status, said) = crate::web::refusal(ctx.t, e)?;
            page.render(&ctx, Step::Phone, None, false, Some(said), status)
        }
    }
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    #[serde(default)]
    router: String,
    phone: String,
    code: String,
    /// `1` when the consumer ticked "follow"; absent otherwise.
    follow: Option<String>,
}

/// `POST /wifi/{code}/login`: logs in with the code, then grants access (and follows, when
/// ticked).
async fn login(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    Path(code): Path<String>,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let spot = spot(&app, ctx.t, &code).await?;
    let params = router_params(&form.router).map_err(|e| bad_request(ctx.t, e))?;
    let phone = Phone::parse(&form.phone).map_err(|e| bad_request(ctx.t, e))?;
    let issued =
        match identity::login_with_code(&app.db, &phone, form.code.trim(), ctx.principal.as_ref())
            .await
        {
            Ok(issued) => issued,
            Err(e) => {
                let (status, said) = crate::web::refusal(ctx.t, e)?;
                let page = LoginView {
                    code: &code,
                    spot: &spot,
                    params: &params,
                };
                return page.render(&ctx, Step::Code, Some(&phone), false, Some(said), status);
            }
        };
    ctx.set_session(&issued.token, identity::CONSUMER_SESSION_US / 1_000_000);
    let follow = form.follow.as_deref() == Some("1");
    go_online(&app, &ctx, &spot, &issued.principal.id, &params, follow).await
}

#[derive(Deserialize)]
struct ConnectForm {
    csrf: String,
    #[serde(default)]
    router: String,
    follow: Option<String>,
}

/// `POST /wifi/{code}/connect`: a logged-in consumer goes online (and follows, when ticked).
async fn connect(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Form(form): Form<ConnectForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let spot = spot(&app, ctx.t, &code).await?;
    let params = router_params(&form.router).map_err(|e| bad_request(ctx.t, e))?;
    let Some(user_id) = account(&ctx) else {
        let query = params.to_query();
        let back = if query.is_empty() {
            format!("/q/{code}")
        } else {
            format!("/q/{code}?{query}")
        };
        return Ok(ctx.redirect(&back));
    };
    let follow = form.follow.as_deref() == Some("1");
    go_online(&app, &ctx, &spot, &user_id, &params, follow).await
}

/// Records the follow (only when ticked) and the grant, then sends the client back to the
/// router, or shows that it is online.
async fn go_online(
    app: &AppState,
    ctx: &PageCtx,
    spot: &Spot,
    user_id: &str,
    params: &RouterParams,
    follow: bool,
) -> Result<Response, PageError> {
    if follow {
        followers::follow(
            &app.db,
            user_id,
            &spot.merchant_id,
            Channel::Wifi,
            Some(&spot.store_id),
        )
        .await
        .or_page(ctx.t)?;
    }
    let granted = service::grant(
        &app.db,
        &spot.merchant_id,
        &spot.store_id,
        user_id,
        params,
        app.config.wifi_grant_minutes,
    )
    .await
    .or_page(ctx.t)?;
    if let Some(to) = &granted.router_auth {
        // 303 to the router, which lets the client out and sends it on to `redir`.
        return Ok(ctx.redirect(to));
    }
    let following = followers::follow_state(&app.db, user_id, &spot.merchant_id)
        .await
        .or_page(ctx.t)?
        .is_some();
    let until = jiff::Timestamp::from_microsecond(granted.expires_at_us)
        .ok()
        .map(|ts| {
            let tz = jiff::tz::TimeZone::get(&spot.timezone).unwrap_or(jiff::tz::TimeZone::UTC);
            ts.to_zoned(tz).strftime("%H:%M").to_string()
        })
        .unwrap_or_default();
    ctx.render(&OnlinePage {
        t: ctx.t,
        logged_in: true,
        path: "/me",
        store_name: &spot.store_name,
        merchant_name: &spot.merchant_name,
        store_id: &spot.store_id,
        until,
        following,
        redir: params.redir.clone(),
    })
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/wifi/{code}/code", post(send_code))
        .route("/wifi/{code}/login", post(login))
        .route("/wifi/{code}/connect", post(connect))
}
