//! Pages: server-rendered, mobile-first HTML (askama templates, escaped by construction) in
//! zh-CN and en, with static assets embedded in the binary (no CDN).
//!
//! Every page handler takes a [`PageCtx`]: the language, the page session (from the
//! `o2o_session` cookie) and the CSRF token. Forms carry that token in a hidden `csrf` field and
//! it must equal the `o2o_csrf` cookie (double submit; the cookie is `SameSite=Strict`, so another
//! site cannot make the browser send it).

pub mod i18n;
mod refusals;

use crate::app::AppState;
use crate::error::{Error, Kind};
use crate::http::Path;
use crate::http::auth::{SESSION_COOKIE, cookie_value};
use crate::identity::{Principal, service as identity};
use askama::Template;
use axum::Router;
use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
pub use i18n::{Lang, T};
pub use refusals::said;
use serde::Deserialize;

const CSRF_COOKIE: &str = "o2o_csrf";
const LANG_COOKIE: &str = "lang";

/// What every page knows about its request.
pub struct PageCtx {
    pub t: T,
    pub principal: Option<Principal>,
    pub csrf: String,
    /// Cookies to set on the response (a new CSRF token, a session).
    pub set_cookies: Vec<String>,
    pub secure: bool,
    /// This page's path with its query string, for "come back here" links.
    pub path: String,
}

/// A refused form as its page shows it: the error's status and message (4xx), or an error page
/// (5xx).
pub fn refusal(t: T, e: Error) -> Result<(StatusCode, String), PageError> {
    if e.kind == Kind::Internal {
        Err(PageError::from_error(t, e))
    } else {
        Ok((crate::http::error::status_of(e.kind).0, said(t, &e)))
    }
}

/// The staff member behind a console page: their merchant's scope, role and id.
pub struct StaffConsole {
    pub scope: crate::db::MerchantScope,
    pub role: crate::identity::Role,
    pub staff_id: String,
}

impl FromRequestParts<AppState> for PageCtx {
    type Rejection = Error;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        PageCtx::build(state, &parts.headers, &parts.uri).await
    }
}

impl PageCtx {
    /// The staff member signed in, if a staff member is (console pages send others to log in).
    pub fn staff(&self) -> Option<StaffConsole> {
        let p = self
            .principal
            .as_ref()
            .filter(|p| p.kind == crate::identity::PrincipalKind::Staff)?;
        Some(StaffConsole {
            scope: crate::db::MerchantScope::authenticated(p.merchant_id.clone()?),
            role: p.role?,
            staff_id: p.id.clone(),
        })
    }

    /// The page context of a request (for handlers that need it only on some paths).
    pub async fn build(
        state: &AppState,
        headers: &HeaderMap,
        uri: &axum::http::Uri,
    ) -> Result<PageCtx, Error> {
        let lang = lang_of(headers);
        let principal = match cookie_value(headers, SESSION_COOKIE) {
            Some(token) => identity::authenticate(&state.db, &token).await?,
            None => None,
        };
        let secure = state.config.secure_cookies();
        let mut set_cookies = Vec::new();
        let csrf =
            match cookie_value(headers, CSRF_COOKIE).filter(|v| v.len() >= 20 && v.len() <= 64) {
                Some(v) => v,
                None => {
                    let v = crate::ids::random_token(24);
                    set_cookies.push(cookie(CSRF_COOKIE, &v, "Strict", secure, None));
                    v
                }
            };
        Ok(PageCtx {
            t: T { lang },
            principal,
            csrf,
            set_cookies,
            secure,
            path: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_else(|| "/".to_owned()),
        })
    }
}

/// Minor units as a page shows money, the sign first: `¥25.00`, `-¥0.05`, `25.00 USD` (see
/// [`o2o_ledger::shown_price`]).
pub fn money(amount_minor: i64, currency: &str) -> String {
    match amount_minor.checked_neg() {
        Some(magnitude) if amount_minor < 0 => {
            format!("-{}", o2o_ledger::shown_price(magnitude, currency))
        }
        _ => o2o_ledger::shown_price(amount_minor, currency),
    }
}

/// A `Set-Cookie` value: HttpOnly always, Secure when the public URL is HTTPS.
pub fn cookie(
    name: &str,
    value: &str,
    same_site: &str,
    secure: bool,
    max_age_s: Option<i64>,
) -> String {
    let mut c = format!("{name}={value}; Path=/; HttpOnly; SameSite={same_site}");
    if secure {
        c.push_str("; Secure");
    }
    if let Some(age) = max_age_s {
        c.push_str(&format!("; Max-Age={age}"));
    }
    c
}

/// A rendered page answered with `status` (a refusal's 4xx); a page that is itself a redirect or
/// an error keeps its own.
pub fn with_status(status: StatusCode, mut response: Response) -> Response {
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    response
}

/// The most characters a flashed sentence keeps (see [`PageCtx::flash`]).
const FLASH_CHARS: usize = 200;

impl PageCtx {
    /// A sentence for the page a redirect leads to (the value of its `?error=`, say), sealed
    /// with this browser's CSRF token: the page shows it only if [`PageCtx::flashed`] finds the
    /// seal, so only this server's own redirects, never a link from elsewhere, put words on a
    /// page. (Another site cannot know the token, and its links arrive without the cookie, which
    /// is `SameSite=Strict`.) The text is cut to [`FLASH_CHARS`] characters.
    pub fn flash(&self, text: &str) -> String {
        let text: String = text.chars().take(FLASH_CHARS).collect();
        format!("{}.{text}", self.flash_seal(&text))
    }

    /// The sentence a redirect left with [`PageCtx::flash`]; None when there is none, it is
    /// blank, or its seal is not this browser's.
    pub fn flashed(&self, raw: Option<String>) -> Option<String> {
        use subtle::ConstantTimeEq;
        let raw = raw?;
        let (seal, text) = raw.split_once('.')?;
        let sealed: bool = seal
            .as_bytes()
            .ct_eq(self.flash_seal(text).as_bytes())
            .into();
        (sealed && !text.trim().is_empty()).then(|| text.to_owned())
    }

    fn flash_seal(&self, text: &str) -> String {
        use hmac::{KeyInit, Mac};
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(self.csrf.as_bytes())
            .expect("HMAC takes any key length");
        mac.update(b"o2o-flash:");
        mac.update(text.as_bytes());
        hex::encode(&mac.finalize().into_bytes()[..12])
    }

    /// Fails unless a submitted form carries this browser's CSRF token.
    pub fn check_csrf(&self, submitted: &str) -> Result<(), PageError> {
        let fresh = self.set_cookies.iter().any(|c| c.starts_with(CSRF_COOKIE));
        if fresh || submitted.is_empty() || submitted != self.csrf {
            return Err(PageError {
                status: StatusCode::FORBIDDEN,
                message: self.t.s("error.csrf").to_owned(),
                t: self.t,
            });
        }
        Ok(())
    }

    /// Sets the page session cookie (after a login).
    pub fn set_session(&mut self, token: &str, max_age_s: i64) {
        self.set_cookies.push(cookie(
            SESSION_COOKIE,
            token,
            "Lax",
            self.secure,
            Some(max_age_s),
        ));
    }

    /// Clears the page session cookie (logout).
    pub fn clear_session(&mut self) {
        self.set_cookies
            .push(cookie(SESSION_COOKIE, "", "Lax", self.secure, Some(0)));
    }

    /// Renders a template into a response carrying the pending cookies.
    pub fn render(&self, template: &impl Template) -> Result<Response, PageError> {
        let html = template
            .render()
            .map_err(|e| PageError::internal(self.t, e))?;
        Ok(self.with_cookies(Html(html).into_response()))
    }

    /// A 303 redirect carrying the pending cookies.
    pub fn redirect(&self, to: &str) -> Response {
        self.with_cookies(Redirect::to(to).into_response())
    }

    fn with_cookies(&self, mut response: Response) -> Response {
        for c in &self.set_cookies {
            if let Ok(v) = HeaderValue::from_str(c) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }

    /// The login state the layout shows.
    pub fn logged_in(&self) -> bool {
        self.principal.as_ref().is_some_and(|p| !p.guest)
    }
}

/// Only local paths may be redirect targets (no open redirects).
pub fn safe_next(next: Option<&str>) -> String {
    match next {
        Some(n)
            if n.starts_with('/') && !n.starts_with("//") && !n.contains('\\') && n.len() < 500 =>
        {
            n.to_owned()
        }
        _ => "/".to_owned(),
    }
}

/// A page that failed: shown as an HTML error page with the right status.
pub struct PageError {
    pub status: StatusCode,
    pub message: String,
    pub t: T,
}

impl PageError {
    pub fn internal(t: T, e: impl Into<anyhow::Error>) -> PageError {
        let e: anyhow::Error = e.into();
        tracing::error!(error = ?e, "page failed");
        PageError {
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: t.s("error.title").to_owned(),
            t,
        }
    }

    pub fn from_error(t: T, e: Error) -> PageError {
        e.log();
        let (status, _) = crate::http::error::status_of(e.kind);
        let message = if e.kind == Kind::Internal {
            t.s("error.title").to_owned()
        } else {
            said(t, &e)
        };
        PageError { status, message, t }
    }
}

#[derive(Template)]
#[template(path = "error.html")]
struct ErrorPage<'a> {
    t: T,
    message: &'a str,
    logged_in: bool,
    path: &'a str,
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let page = ErrorPage {
            t: self.t,
            message: &self.message,
            logged_in: false,
            path: "/",
        };
        match page.render() {
            Ok(html) => (self.status, Html(html)).into_response(),
            Err(_) => (self.status, self.message).into_response(),
        }
    }
}

/// Runs a page-level step, turning a service error into an error page.
pub trait OrPage<V> {
    fn or_page(self, t: T) -> Result<V, PageError>;
}

impl<V> OrPage<V> for Result<V, Error> {
    fn or_page(self, t: T) -> Result<V, PageError> {
        self.map_err(|e| PageError::from_error(t, e))
    }
}

#[derive(Deserialize)]
struct LangQuery {
    next: Option<String>,
}

/// Switches the page language and goes back.
async fn switch_lang(
    ctx: PageCtx,
    Path(code): Path<String>,
    Query(q): Query<LangQuery>,
) -> Response {
    let lang = Lang::parse(&code).unwrap_or(Lang::Zh);
    let mut response = ctx.redirect(&safe_next(q.next.as_deref()));
    if let Ok(v) = HeaderValue::from_str(&cookie(
        LANG_COOKIE,
        lang.code(),
        "Lax",
        ctx.secure,
        Some(31_536_000),
    )) {
        response.headers_mut().append(header::SET_COOKIE, v);
    }
    response
}

const APP_CSS: &str = include_str!("../../assets/app.css");
const APP_JS: &str = include_str!("../../assets/app.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    (headers, body).into_response()
}

/// Whether the caller asks for JSON rather than a page (`Accept: application/json` without
/// `text/html`), where a path serves both.
pub(crate) fn wants_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.contains("application/json") && !a.contains("text/html"))
}

/// The language a request's pages speak: the one chosen on the site (its cookie), else the
/// browser's, else Chinese.
fn lang_of(headers: &HeaderMap) -> Lang {
    cookie_value(headers, LANG_COOKIE)
        .and_then(|v| Lang::parse(&v))
        .or_else(|| {
            headers
                .get(header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok())
                .and_then(Lang::from_accept_language)
        })
        .unwrap_or(Lang::Zh)
}

/// Whether a request is answered as the API (JSON errors) rather than as a page: it is under
/// `/v1`, or its caller asks for JSON.
pub(crate) fn answers_json(path: &str, headers: &HeaderMap) -> bool {
    path.starts_with("/v1/") || path == "/v1" || wants_json(headers)
}

/// A request the shared extractors (path, query, body) could not read: the JSON error for the
/// API and JSON callers; for a browser, the error page with that status, saying the page does
/// not exist (a path that cannot be read names nothing) or that the form should be sent again.
pub(crate) fn unreadable(path: &str, headers: &HeaderMap, e: Error) -> Response {
    if answers_json(path, headers) {
        return e.into_response();
    }
    let t = T {
        lang: lang_of(headers),
    };
    let (status, _) = crate::http::error::status_of(e.kind);
    let (status, message) = if e.code == "invalid_path" {
        (StatusCode::NOT_FOUND, t.s("error.not_found"))
    } else {
        (status, t.s("error.form"))
    };
    PageError {
        status,
        message: message.to_owned(),
        t,
    }
    .into_response()
}

/// Unknown paths: a JSON error under `/v1/` or for a caller that asks for JSON, a page
/// elsewhere.
async fn fallback(uri: axum::http::Uri, headers: HeaderMap) -> Response {
    if answers_json(uri.path(), &headers) {
        return Error::not_found("route_not_found", "No such endpoint.").into_response();
    }
    let t = T {
        lang: lang_of(&headers),
    };
    PageError {
        status: StatusCode::NOT_FOUND,
        message: t.s("error.not_found").to_owned(),
        t,
    }
    .into_response()
}

/// Every page route.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/lang/{code}", get(switch_lang))
        .route(
            "/assets/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/assets/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .merge(crate::identity::pages::router())
        .merge(crate::stores::pages::router())
        .merge(crate::merchants::pages::router())
        .merge(crate::codes::pages::router())
        .merge(crate::payments::pages::router())
        .merge(crate::catalog::pages::router())
        .merge(crate::orders::pages::router())
        .merge(crate::followers::pages::router())
        .merge(crate::wifi::pages::router())
        .merge(crate::members::pages::router())
        .merge(crate::marketing::pages::router())
        .merge(crate::events::pages::router())
        .fallback(fallback)
}
