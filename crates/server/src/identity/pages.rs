//! Consumer login pages: phone → one-time code → back where the consumer was; "me"; logout.

use super::model::Phone;
use super::service;
use crate::app::AppState;
use crate::http::Form;
use crate::web::{OrPage, PageCtx, PageError, T, safe_next};
use askama::Template;
use axum::Router;
use axum::extract::{ConnectInfo, Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;
use std::net::SocketAddr;

#[derive(Template)]
#[template(path = "identity/login.html")]
struct LoginPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    next: &'a str,
    /// Set once a code was sent: the form then asks for the code.
    phone: Option<String>,
    phone_last4: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct NextQuery {
    next: Option<String>,
}

async fn login_page(ctx: PageCtx, Query(q): Query<NextQuery>) -> Result<Response, PageError> {
    let next = safe_next(q.next.as_deref());
    ctx.render(&LoginPage {
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        csrf: &ctx.csrf,
        next: &next,
        phone: None,
        phone_last4: None,
        error: None,
    })
}

#[derive(Deserialize)]
struct SendCodeForm {
    csrf: String,
    phone: String,
    next: Option<String>,
}

async fn send_code(
    State(app): State<AppState>,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    ctx: PageCtx,
    Form(form): Form<SendCodeForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let next = safe_next(form.next.as_deref());
    let result = match Phone::parse(&form.phone) {
        Ok(phone) => service::request_otp(&app.db, &phone, &addr.ip().to_string())
            .await
            .map(|m| (phone, m)),
        Err(e) => Err(e),
    };
    let (phone, error) = match result {
        Ok((phone, message)) => {
            if let Err(e) = app.sms.deliver(message).await {
                tracing::warn!(error = %e, "SMS delivery failed; the message stays in the outbox");
            }
            (Some(phone), None)
        }
        Err(e) if e.kind == crate::error::Kind::Internal => {
            return Err(PageError::from_error(ctx.t, e));
        }
        Err(e) => (None, Some(crate::web::said(ctx.t, &e))),
    };
    ctx.render(&LoginPage {
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: "/login",
        csrf: &ctx.csrf,
        next: &next,
        phone_last4: phone.as_ref().map(|p| p.last4().to_owned()),
        phone: phone.map(|p| p.as_str().to_owned()),
        error,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    phone: String,
    code: String,
    next: Option<String>,
}

async fn login(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let next = safe_next(form.next.as_deref());
    let phone = Phone::parse(&form.phone).or_page(ctx.t)?;
    match service::login_with_code(&app.db, &phone, form.code.trim(), ctx.principal.as_ref()).await
    {
        Ok(issued) => {
            ctx.set_session(&issued.token, service::CONSUMER_SESSION_US / 1_000_000);
            Ok(ctx.redirect(&next))
        }
        Err(e) if e.kind == crate::error::Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => ctx.render(&LoginPage {
            t: ctx.t,
            logged_in: ctx.logged_in(),
            path: "/login",
            csrf: &ctx.csrf,
            next: &next,
            phone_last4: Some(phone.last4().to_owned()),
            phone: Some(phone.as_str().to_owned()),
            error: Some(crate::web::said(ctx.t, &e)),
        }),
    }
}

#[derive(Template)]
#[template(path = "identity/me.html")]
struct MePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    phone_last4: Option<String>,
    kind: &'a str,
    /// The birthday given (`MM-DD`); member programs send a coupon on it.
    birthday: Option<String>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct MeQuery {
    error: Option<String>,
}

async fn me_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<MeQuery>,
) -> Result<Response, PageError> {
    let Some(p) = ctx.principal.as_ref() else {
        return Ok(ctx.redirect("/login?next=/me"));
    };
    let phone_last4 = service::consumer_phone(&app.db, &p.id)
        .await
        .or_page(ctx.t)?
        .map(|p| p.last4().to_owned());
    let birthday = service::consumer_birthday(&app.db, &p.id)
        .await
        .or_page(ctx.t)?;
    ctx.render(&MePage {
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        csrf: &ctx.csrf,
        phone_last4,
        kind: p.kind.as_str(),
        birthday,
        error: ctx.flashed(q.error),
    })
}

#[derive(Deserialize)]
struct BirthdayForm {
    csrf: String,
    #[serde(default)]
    birthday: String,
}

/// `POST /me/birthday`: gives the birthday (once); a refusal is shown on the profile.
async fn set_birthday(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<BirthdayForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(p) = ctx.principal.as_ref() else {
        return Ok(ctx.redirect("/login?next=/me"));
    };
    match service::set_birthday(&app.db, p, &form.birthday).await {
        Ok(_) => Ok(ctx.redirect("/me")),
        Err(e) if e.kind != crate::error::Kind::Internal => {
            let message: String =
                form_urlencoded::byte_serialize(ctx.flash(&crate::web::said(ctx.t, &e)).as_bytes())
                    .collect();
            Ok(ctx.redirect(&format!("/me?error={message}")))
        }
        Err(e) => Err(PageError::from_error(ctx.t, e)),
    }
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn logout(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    if let Some(p) = &ctx.principal {
        service::revoke(&app.db, p).await.or_page(ctx.t)?;
    }
    ctx.clear_session();
    Ok(ctx.redirect("/"))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/login", get(login_page).post(login))
        .route("/login/code", post(send_code))
        .route("/me", get(me_page))
        .route("/me/birthday", post(set_birthday))
        .route("/logout", post(logout))
}
