//! The merchant console: sign up, log in, stores and their tables, staff, API keys.
//! Every console page needs a staff session; its data is reached through the same services (and
//! so the same tenant scope) as the API.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::db::MerchantScope;
use crate::error::Error;
use crate::http::{Form, Path};
use crate::identity::service as identity;
use crate::identity::{Email, PrincipalKind, Role};
use crate::stores::model::{CreateStore, CreateTable, Store, Table};
use crate::stores::service as stores;
use crate::web::{OrPage, PageCtx, PageError, T};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

/// The staff member behind a console page.
struct Console {
    scope: MerchantScope,
    role: Role,
    merchant: Merchant,
}

async fn console(app: &AppState, ctx: &PageCtx) -> Result<Option<Console>, PageError> {
    let Some(p) = ctx
        .principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Staff)
    else {
        return Ok(None);
    };
    let (Some(mid), Some(role)) = (p.merchant_id.clone(), p.role) else {
        return Ok(None);
    };
    let scope = MerchantScope::authenticated(mid.clone());
    let merchant = service::get_merchant(&app.db, &scope, &mid)
        .await
        .or_page(ctx.t)?;
    Ok(Some(Console {
        scope,
        role,
        merchant,
    }))
}

macro_rules! require_console {
    ($app:expr, $ctx:expr) => {
        match console(&$app, &$ctx).await? {
            Some(c) => c,
            None => return Ok($ctx.redirect("/console/login")),
        }
    };
}

#[derive(Template)]
#[template(path = "merchants/signup.html")]
struct SignupPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    error: Option<String>,
}

async fn signup_page(ctx: PageCtx) -> Result<Response, PageError> {
    ctx.render(&SignupPage {
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        csrf: &ctx.csrf,
        error: None,
    })
}

#[derive(Deserialize)]
struct SignupForm {
    csrf: String,
    name: String,
    mode: String,
    email: String,
    password: String,
}

async fn signup(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    Form(form): Form<SignupForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let mode = match form.mode.as_str() {
        "trading" => MerchantMode::Trading,
        "listing" => MerchantMode::Listing,
        _ => {
            return Err(PageError::from_error(
                ctx.t,
                Error::invalid("invalid_enum_value", ctx.t.s("error.choice")).param("mode"),
            ));
        }
    };
    let email = form.email.clone();
    let password = form.password.clone();
    let result = async {
        let input = service::NewMerchant::parse(
            CreateMerchant {
                name: form.name,
                mode,
                owner: NewOwner {
                    email: form.email,
                    password: form.password,
                },
            },
            &app.passwords,
        )
        .await?;
        let mut tx = app.db.begin().await?;
        service::create_merchant(&mut tx, input).await?;
        tx.commit().await?;
        let email = Email::parse(&email)?;
        identity::login_with_password(&app.db, &app.passwords, &email, &password).await
    }
    .await;
    match result {
        Ok(issued) => {
            ctx.set_session(&issued.token, identity::STAFF_SESSION_US / 1_000_000);
            Ok(ctx.redirect("/console"))
        }
        Err(e) => {
            let (status, error) = crate::web::refusal(ctx.t, e)?;
            let error = Some(error);
            let page = ctx.render(&SignupPage {
                t: ctx.t,
                logged_in: ctx.logged_in(),
                path: "/console/signup",
                csrf: &ctx.csrf,
                error,
            })?;
            Ok(crate::web::with_status(status, page))
        }
    }
}

#[derive(Template)]
#[template(path = "merchants/login.html")]
struct ConsoleLoginPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    error: Option<String>,
}

async fn login_page(ctx: PageCtx) -> Result<Response, PageError> {
    ctx.render(&ConsoleLoginPage {
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        csrf: &ctx.csrf,
        error: None,
    })
}

#[derive(Deserialize)]
struct LoginForm {
    csrf: String,
    email: String,
    password: String,
}

async fn login(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    Form(form): Form<LoginForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let result = match Email::parse(&form.email) {
        Ok(email) => {
            identity::login_with_password(&app.db, &app.passwords, &email, &form.password).await
        }
        Err(e) => Err(e),
    };
    match result {
        Ok(issued) if issued.principal.kind == PrincipalKind::Staff => {
            ctx.set_session(&issued.token, identity::STAFF_SESSION_US / 1_000_000);
            Ok(ctx.redirect("/console"))
        }
        Ok(issued) => {
            // The console is the staff's: an operator's or a rider's right password opens no
            // page here, so the session just made ends at once and the page says why.
            identity::revoke(&app.db, &issued.principal)
                .await
                .map_err(|e| PageError::from_error(ctx.t, e))?;
            login_refused(&ctx, ctx.t.s("console.login_staff_only").to_owned())
        }
        Err(e) => {
            let (status, error) = crate::web::refusal(ctx.t, e)?;
            Ok(crate::web::with_status(status, login_refused(&ctx, error)?))
        }
    }
}

fn login_refused(ctx: &PageCtx, error: String) -> Result<Response, PageError> {
    ctx.render(&ConsoleLoginPage {
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: "/console/login",
        csrf: &ctx.csrf,
        error: Some(error),
    })
}

#[derive(Template)]
#[template(path = "merchants/dashboard.html")]
struct DashboardPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    merchant: &'a Merchant,
    role: Role,
    stores: Vec<Store>,
    error: Option<String>,
    can_manage: bool,
}

async fn dashboard(State(app): State<AppState>, ctx: PageCtx) -> Result<Response, PageError> {
    let c = require_console!(app, ctx);
    render_dashboard(&app, &ctx, &c, None).await
}

async fn render_dashboard(
    app: &AppState,
    ctx: &PageCtx,
    c: &Console,
    error: Option<String>,
) -> Result<Response, PageError> {
    let page = crate::http::Page::first(100);
    let stores = stores::list_own_stores(&app.db, &c.scope, &page)
        .await
        .or_page(ctx.t)?
        .data;
    ctx.render(&DashboardPage {
        t: ctx.t,
        path: &ctx.path,
        csrf: &ctx.csrf,
        merchant: &c.merchant,
        role: c.role,
        stores,
        error,
        can_manage: c.role >= Role::Manager,
    })
}

#[derive(Deserialize)]
struct StoreForm {
    csrf: String,
    name: String,
    address: String,
    lat: String,
    lng: String,
    timezone: String,
    opening_hours: String,
    delivery_radius_m: String,
    fence_radius_m: String,
}

fn number<N: std::str::FromStr>(raw: &str, param: &'static str) -> Result<N, Error> {
    raw.trim().parse().map_err(|_| {
        Error::invalid("invalid_number", format!("{param} must be a number.")).param(param)
    })
}

async fn create_store(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<StoreForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let c = require_console!(app, ctx);
    if c.role < Role::Manager {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden("insufficient_role", "Managers and owners add stores."),
        ));
    }
    let result = async {
        let input = CreateStore {
            merchant_id: c.merchant.id.clone(),
            name: form.name,
            address: form.address,
            lat: number(&form.lat, "lat")?,
            lng: number(&form.lng, "lng")?,
            timezone: form.timezone,
            opening_hours: form.opening_hours,
            delivery_radius_m: Some(number(&form.delivery_radius_m, "delivery_radius_m")?),
            fence_radius_m: Some(number(&form.fence_radius_m, "fence_radius_m")?),
        };
        let mut tx = app.db.begin().await?;
        let store = stores::create_store(&mut tx, &c.scope, input).await?;
        tx.commit().await?;
        Ok::<_, Error>(store)
    }
    .await;
    match result {
        Ok(store) => Ok(ctx.redirect(&format!("/console/stores/{}", store.id))),
        Err(e) => {
            let (status, error) = crate::web::refusal(ctx.t, e)?;
            let page = render_dashboard(&app, &ctx, &c, Some(error)).await?;
            Ok(crate::web::with_status(status, page))
        }
    }
}

#[derive(Template)]
#[template(path = "merchants/store.html")]
struct StoreDetailPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    store: Store,
    tables: Vec<Table>,
    /// Active codes with their table's label (empty for other kinds).
    codes: Vec<(crate::codes::model::QrCode, String)>,
    /// More than the page shows (list them all with GET /v1/qr-codes).
    more_codes: bool,
    error: Option<String>,
    can_manage: bool,
}

async fn store_detail(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let c = require_console!(app, ctx);
    render_store(&app, &ctx, &c, &id, None).await
}

async fn render_store(
    app: &AppState,
    ctx: &PageCtx,
    c: &Console,
    id: &str,
    error: Option<String>,
) -> Result<Response, PageError> {
    let store = stores::get_own_store(&app.db, &c.scope, id)
        .await
        .or_page(ctx.t)?;
    let tables = stores::list_tables(&app.db, &c.scope, id)
        .await
        .or_page(ctx.t)?;
    let page = crate::http::Page::first(100);
    let codes = crate::codes::service::list_codes(
        &app.db,
        &c.scope,
        &app.config.public_url,
        Some(id.to_owned()),
        Some("active".to_owned()),
        &page,
    )
    .await
    .or_page(ctx.t)?;
    let more_codes = codes.has_more;
    let codes: Vec<(crate::codes::model::QrCode, String)> = codes
        .data
        .into_iter()
        .map(|q| {
            let label = q
                .table_id
                .as_ref()
                .and_then(|tid| tables.iter().find(|t| &t.id == tid))
                .map(|t| t.label.clone())
                .unwrap_or_default();
            (q, label)
        })
        .collect();
    ctx.render(&StoreDetailPage {
        t: ctx.t,
        path: &ctx.path,
        csrf: &ctx.csrf,
        store,
        tables,
        codes,
        more_codes,
        error,
        can_manage: c.role >= Role::Manager,
    })
}

#[derive(Deserialize)]
struct TableForm {
    csrf: String,
    label: String,
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
    kind: String,
}

/// Makes the store's pay code (or a WiFi code) from the console; table codes come with the sheet.
async fn add_code(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<CodeForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let c = require_console!(app, ctx);
    if c.role < Role::Manager {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden("insufficient_role", "Managers and owners make codes."),
        ));
    }
    let kind = match form.kind.as_str() {
        "store_pay" => crate::codes::model::QrKind::StorePay,
        "wifi" => crate::codes::model::QrKind::Wifi,
        _ => {
            return Err(PageError::from_error(
                ctx.t,
                Error::invalid("invalid_enum_value", "Choose a pay or WiFi code."),
            ));
        }
    };
    let mut tx = app.db.begin().await.map_err(Error::from).or_page(ctx.t)?;
    crate::codes::service::ensure_code(&mut tx, &c.scope, &app.config.public_url, &id, kind, None)
        .await
        .or_page(ctx.t)?;
    tx.commit().await.map_err(Error::from).or_page(ctx.t)?;
    Ok(ctx.redirect(&format!("/console/stores/{id}")))
}

async fn add_table(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<TableForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let c = require_console!(app, ctx);
    if c.role < Role::Manager {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden("insufficient_role", "Managers and owners add tables."),
        ));
    }
    let result = async {
        let mut tx = app.db.begin().await?;
        let table =
            stores::add_table(&mut tx, &c.scope, &id, CreateTable { label: form.label }).await?;
        tx.commit().await?;
        Ok::<_, Error>(table)
    }
    .await;
    match result {
        Ok(_) => Ok(ctx.redirect(&format!("/console/stores/{id}"))),
        Err(e) => {
            let (status, error) = crate::web::refusal(ctx.t, e)?;
            let page = render_store(&app, &ctx, &c, &id, Some(error)).await?;
            Ok(crate::web::with_status(status, page))
        }
    }
}

#[derive(Template)]
#[template(path = "merchants/staff.html")]
struct StaffPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    staff: Vec<Staff>,
    error: Option<String>,
    is_owner: bool,
    /// Owners add any staff and managers add cashiers; a cashier adds no one and sees no form.
    can_add: bool,
}

async fn staff_page(State(app): State<AppState>, ctx: PageCtx) -> Result<Response, PageError> {
    let c = require_console!(app, ctx);
    render_staff(&app, &ctx, &c, None).await
}

async fn render_staff(
    app: &AppState,
    ctx: &PageCtx,
    c: &Console,
    error: Option<String>,
) -> Result<Response, PageError> {
    let page = crate::http::Page::first(100);
    let staff = service::list_staff(&app.db, &c.scope, &page)
        .await
        .or_page(ctx.t)?
        .data;
    ctx.render(&StaffPage {
        t: ctx.t,
        path: "/console/staff",
        csrf: &ctx.csrf,
        staff,
        error,
        is_owner: c.role == Role::Owner,
        can_add: c.role != Role::Cashier,
    })
}

#[derive(Deserialize)]
struct StaffForm {
    csrf: String,
    email: String,
    password: String,
    role: String,
}

async fn add_staff(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<StaffForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let c = require_console!(app, ctx);
    let result = async {
        let role = Role::parse(&form.role).ok_or_else(|| {
            Error::invalid("invalid_enum_value", "Choose owner, manager or cashier.").param("role")
        })?;
        let input = service::NewStaff::parse(
            CreateStaff {
                email: form.email,
                password: form.password,
                role,
            },
            &app.passwords,
        )
        .await?;
        let mut tx = app.db.begin().await?;
        service::add_staff(&mut tx, &c.scope, c.role, input).await?;
        tx.commit().await?;
        Ok::<_, Error>(())
    }
    .await;
    match result {
        Ok(()) => Ok(ctx.redirect("/console/staff")),
        Err(e) => {
            let (status, error) = crate::web::refusal(ctx.t, e)?;
            let page = render_staff(&app, &ctx, &c, Some(error)).await?;
            Ok(crate::web::with_status(status, page))
        }
    }
}

#[derive(Template)]
#[template(path = "merchants/keys.html")]
struct KeysPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    keys: Vec<ApiKey>,
    /// A secret just created: shown on this one response only.
    secret: Option<String>,
    is_owner: bool,
}

/// A just-created secret travels to the next page once, in a short-lived cookie limited to that
/// page, so the form can redirect (a reload never creates a second key).
const SECRET_FLASH: &str = "o2o_new_secret";

async fn keys_page(
    State(app): State<AppState>,
    mut ctx: PageCtx,
    headers: axum::http::HeaderMap,
) -> Result<Response, PageError> {
    let c = require_console!(app, ctx);
    let secret =
        crate::http::auth::cookie_value(&headers, SECRET_FLASH).filter(|v| v.starts_with("sk_"));
    if secret.is_some() {
        ctx.set_cookies.push(format!(
            "{SECRET_FLASH}=; Path=/console/api-keys; HttpOnly; SameSite=Strict; Max-Age=0{}",
            if ctx.secure { "; Secure" } else { "" }
        ));
    }
    let mut response = render_keys(&app, &ctx, &c, secret).await?;
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

async fn render_keys(
    app: &AppState,
    ctx: &PageCtx,
    c: &Console,
    secret: Option<String>,
) -> Result<Response, PageError> {
    let page = crate::http::Page::first(100);
    let keys = if c.role >= Role::Manager {
        service::list_api_keys(&app.db, &c.scope, &page)
            .await
            .or_page(ctx.t)?
            .data
    } else {
        Vec::new()
    };
    ctx.render(&KeysPage {
        t: ctx.t,
        path: "/console/api-keys",
        csrf: &ctx.csrf,
        keys,
        secret,
        is_owner: c.role == Role::Owner,
    })
}

#[derive(Deserialize)]
struct KeyForm {
    csrf: String,
    name: Option<String>,
}

async fn create_key(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<KeyForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let c = require_console!(app, ctx);
    if c.role != Role::Owner {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden("insufficient_role", "Only owners create API keys."),
        ));
    }
    let name = form.name.filter(|n| !n.trim().is_empty());
    let mut tx = app.db.begin().await.map_err(Error::from).or_page(ctx.t)?;
    let created = service::create_api_key(&mut tx, &c.scope, CreateApiKey { name })
        .await
        .or_page(ctx.t)?;
    tx.commit().await.map_err(Error::from).or_page(ctx.t)?;
    let mut ctx = ctx;
    if let Some(secret) = created.secret {
        ctx.set_cookies.push(format!(
            "{SECRET_FLASH}={secret}; Path=/console/api-keys; HttpOnly; SameSite=Strict; Max-Age=120{}",
            if ctx.secure { "; Secure" } else { "" }
        ));
    }
    Ok(ctx.redirect("/console/api-keys"))
}

async fn revoke_key(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(key_id): Path<String>,
    Form(form): Form<KeyForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let c = require_console!(app, ctx);
    if c.role != Role::Owner {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden("insufficient_role", "Only owners revoke API keys."),
        ));
    }
    let mut tx = app.db.begin().await.map_err(Error::from).or_page(ctx.t)?;
    service::revoke_api_key(&mut tx, &c.scope, &key_id)
        .await
        .or_page(ctx.t)?;
    tx.commit().await.map_err(Error::from).or_page(ctx.t)?;
    Ok(ctx.redirect("/console/api-keys"))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console", get(dashboard))
        .route("/console/signup", get(signup_page).post(signup))
        .route("/console/login", get(login_page).post(login))
        .route("/console/stores", post(create_store))
        .route("/console/stores/{id}", get(store_detail))
        .route("/console/stores/{id}/tables", post(add_table))
        .route("/console/stores/{id}/codes", post(add_code))
        .route("/console/staff", get(staff_page).post(add_staff))
        .route("/console/api-keys", get(keys_page).post(create_key))
        .route("/console/api-keys/{key_id}/revoke", post(revoke_key))
}
