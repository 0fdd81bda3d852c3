//! Coupons' pages: the coupon center (`/coupons`, offers near the phone with claim buttons), the
//! consumer's coupons (`/me/coupons`: ready to use, used, expired), the coupon picker that the
//! checkout pages include (the consumer's usable coupons, best first and preselected), the
//! coupon a merchant's message carries, and the console page where a manager creates templates
//! and reads each one's results.
//!
//! Every action goes through the same service functions as the JSON API, so the rules (stock,
//! limits, audience, tenancy) are the same on both.

use super::model::{Coupon, CreateTemplate, Template};
use super::service;
use crate::app::AppState;
use crate::catalog::pages::shown_price;
use crate::db::MerchantScope;
use crate::error::{Error, Kind};
use crate::http::{Form, Page, Path};
use crate::identity::{PrincipalKind, Role};
use crate::web::{Lang, OrPage, PageCtx, PageError, StaffConsole, T, safe_next};
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

/// People's Square, Shanghai: where the coupon center looks when the phone gives no location.
const DEFAULT_CENTER: (f64, f64) = (31.2304, 121.4737);
/// The most coupons `/me/coupons` shows.
const MY_COUPONS_SHOWN: i64 = 100;
/// The most templates the console page lists with their results.
const CONSOLE_TEMPLATES_SHOWN: i64 = 50;

/// The consumer behind a page, when logged in with a phone.
fn account(ctx: &PageCtx) -> Option<&str> {
    ctx.principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer && !p.guest)
        .map(|p| p.id.as_str())
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A template's rule in words: `满¥30.00减¥5.00`, `八折 最多减¥10.00` / `¥5.00 off ¥30.00+`.
pub fn rule_text(t: T, tpl: &Template) -> String {
    let money = |v: i64| shown_price(v, &tpl.currency);
    let min = (tpl.min_spend > 0).then(|| money(tpl.min_spend));
    match (tpl.kind.as_str(), t.lang) {
        ("amount_off", Lang::Zh) => {
            let off = money(tpl.amount_off.unwrap_or(0));
            match min {
                Some(m) => format!("满{m}减{off}"),
                None => format!("立减{off}"),
            }
        }
        ("amount_off", Lang::En) => {
            let off = money(tpl.amount_off.unwrap_or(0));
            match min {
                Some(m) => format!("{off} off a spend of {m} or more"),
                None => format!("{off} off"),
            }
        }
        ("percent_off", Lang::Zh) => {
            let pct = tpl.percent_off.unwrap_or(0);
            let rest = 100 - pct;
            let zhe = if rest % 10 == 0 {
                format!("{}折", zh_digit(rest / 10))
            } else {
                format!("{}.{}折", rest / 10, rest % 10)
            };
            let mut s = zhe;
            if let Some(m) = min {
                s = format!("满{m} {s}");
            }
            if let Some(cap) = tpl.max_discount {
                s.push_str(&format!("，最多减{}", money(cap)));
            }
            s
        }
        ("percent_off", Lang::En) => {
            let mut s = format!("{}% off", tpl.percent_off.unwrap_or(0));
            if let Some(cap) = tpl.max_discount {
                s.push_str(&format!(", up to {}", money(cap)));
            }
            if let Some(m) = min {
                s.push_str(&format!(" on a spend of {m} or more"));
            }
            s
        }
        (_, Lang::Zh) => "赠品券".to_owned(),
        (_, Lang::En) => "A free item".to_owned(),
    }
}

fn zh_digit(n: i64) -> &'static str {
    match n {
        1 => "一",
        2 => "二",
        3 => "三",
        4 => "四",
        5 => "五",
        6 => "六",
        7 => "七",
        8 => "八",
        9 => "九",
        _ => "",
    }
}

/// How far, as the page says it: `350 m`, `1.2 km`.
fn distance_text(m: u32) -> String {
    if m < 1_000 {
        format!("{m} m")
    } else {
        format!("{}.{} km", m / 1_000, (m % 1_000) / 100)
    }
}

/// The page's words for a refused claim.
fn claim_refusal(t: T, e: &Error) -> String {
    match e.code.as_ref() {
        "coupon_sold_out" => t.s("coupon.sold_out_message").to_owned(),
        "coupon_not_claimable" => t.s("coupon.not_claimable").to_owned(),
        "coupon_not_eligible" => t.s("coupon.not_eligible").to_owned(),
        _ => crate::web::said(t, e),
    }
}

// ---------------------------------------------------------------------------------------------
// The coupon center
// ---------------------------------------------------------------------------------------------

struct OfferView {
    id: String,
    name: String,
    rule: String,
    merchant: String,
    store_id: String,
    distance: String,
    remaining: i64,
    shopped: bool,
    followers_only: bool,
    /// For members of the program (or of one tier).
    members_only: bool,
    claimable: bool,
    /// Every coupon of it has been claimed (listed after the claimable ones, marked).
    sold_out: bool,
}

#[derive(askama::Template)]
#[template(path = "marketing/center.html")]
struct CenterPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    offers: Vec<OfferView>,
    located: bool,
    near: String,
    notice: Option<String>,
    error: Option<String>,
    /// The claim forms' one-time key (each form adds its template id).
    key: String,
}

#[derive(Deserialize)]
struct CenterQuery {
    near: Option<String>,
    claimed: Option<String>,
    error: Option<String>,
}

/// `GET /coupons`: offers near the phone (its location, or `?near=lat,lng`, or the city centre).
async fn center_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<CenterQuery>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let parsed = q
        .near
        .as_deref()
        .and_then(|n| o2o_geo::LatLng::parse(n).ok());
    let located = parsed.is_some();
    let center = match parsed {
        Some(c) => c,
        None => o2o_geo::LatLng::new(DEFAULT_CENTER.0, DEFAULT_CENTER.1)
            .map_err(|e| PageError::internal(t, e))?,
    };
    let principal = ctx
        .principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer);
    let offers = service::center(&app, principal, center)
        .await
        .or_page(t)?
        .into_iter()
        .map(|o| OfferView {
            rule: rule_text(t, &o.template),
            id: o.template.id.clone(),
            name: o.template.name.clone(),
            merchant: o.merchant_name,
            store_id: o.store_id,
            distance: distance_text(o.distance_m),
            remaining: o.template.remaining,
            shopped: o.shopped_here,
            followers_only: o.template.audience == "followers",
            members_only: o.template.audience == "members"
                || o.template.audience.starts_with("tier:"),
            claimable: o.claimable,
            sold_out: o.sold_out,
        })
        .collect();
    let near = match q.near.as_deref() {
        Some(n) if located => n.to_owned(),
        _ => String::new(),
    };
    let page = CenterPage {
        t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        csrf: &ctx.csrf,
        offers,
        located,
        near,
        notice: q
            .claimed
            .filter(|c| c.starts_with("cpt_"))
            .map(|_| t.s("coupon.claimed_ok").to_owned()),
        error: ctx.flashed(q.error),
        key: crate::payments::pages::new_form_key(),
    };
    ctx.render(&page)
}

#[derive(Deserialize)]
struct ClaimForm {
    csrf: String,
    /// `center` (default) or `campaign` (a message's coupon).
    #[serde(default)]
    via: String,
    /// Where to go back to (a local path).
    #[serde(default)]
    next: String,
    /// The form's one-time key: a double tap claims once.
    #[serde(default)]
    key: String,
}

/// A claim form's one-time key (a hidden field, fresh on every render); anything malformed is
/// ignored.
fn claim_key(raw: &str) -> Option<String> {
    let ok = (16..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("page:{raw}"))
}

/// `POST /coupons/{template_id}/claim`: claims one coupon; guests log in first.
async fn claim(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(template_id): Path<String>,
    Form(form): Form<ClaimForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let back = if form.next.is_empty() {
        "/coupons".to_owned()
    } else {
        safe_next(Some(&form.next))
    };
    let Some(p) = ctx
        .principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer && !p.guest)
    else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&back))));
    };
    let via = match form.via.as_str() {
        "campaign" => "campaign",
        _ => "center",
    };
    let sep = if back.contains('?') { '&' } else { '?' };
    let hash = format!("page-claim:{template_id}:{via}");
    match service::claim(&app, p, &template_id, via, claim_key(&form.key), &hash).await {
        Ok(_) => Ok(ctx.redirect(&format!("{back}{sep}claimed={}", urlencode(&template_id)))),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => Ok(ctx.redirect(&format!(
            "{back}{sep}error={}",
            urlencode(&ctx.flash(&claim_refusal(ctx.t, &e)))
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// My coupons
// ---------------------------------------------------------------------------------------------

/// A coupon of the consumer's, as the pages show it.
pub struct CouponView {
    pub id: String,
    pub name: String,
    pub rule: String,
    pub status: &'static str,
    pub valid_until: Option<String>,
    pub used_at: Option<String>,
    pub saved: String,
}

fn coupon_view(t: T, c: &Coupon) -> CouponView {
    CouponView {
        id: c.id.clone(),
        name: c.template.name.clone(),
        rule: rule_text(t, &c.template),
        status: c.status,
        valid_until: c
            .valid_until
            .as_deref()
            .map(crate::followers::pages::shown_time),
        used_at: c
            .used_at
            .as_deref()
            .map(crate::followers::pages::shown_time),
        saved: shown_price(c.discount, &c.template.currency),
    }
}

#[derive(askama::Template)]
#[template(path = "marketing/mine.html")]
struct MinePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    active: Vec<CouponView>,
    used: Vec<CouponView>,
    expired: Vec<CouponView>,
}

/// `GET /me/coupons`: the consumer's coupons, in three groups.
async fn my_coupons(State(app): State<AppState>, ctx: PageCtx) -> Result<Response, PageError> {
    let Some(user_id) = account(&ctx) else {
        return Ok(ctx.redirect("/login?next=/me/coupons"));
    };
    let t = ctx.t;
    let list = service::mine(&app, user_id, &Page::first(MY_COUPONS_SHOWN))
        .await
        .or_page(t)?;
    let (mut active, mut used, mut expired) = (Vec::new(), Vec::new(), Vec::new());
    for c in &list.data {
        let v = coupon_view(t, c);
        match c.status {
            "used" => used.push(v),
            "expired" => expired.push(v),
            _ => active.push(v),
        }
    }
    ctx.render(&MinePage {
        t,
        logged_in: true,
        path: &ctx.path,
        active,
        used,
        expired,
    })
}

#[derive(askama::Template)]
#[template(path = "marketing/code.html")]
struct CodePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    coupon: CouponView,
    qr_svg: String,
    code: String,
}

/// `GET /me/coupons/{id}/code`: a fresh code of an active coupon, as a QR for the cashier to
/// scan (valid five minutes; the page is never cached).
async fn coupon_code_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(user_id) = account(&ctx) else {
        return Ok(ctx.redirect("/login?next=/me/coupons"));
    };
    let t = ctx.t;
    let coupon = match service::coupon(&app, user_id, &id).await {
        Ok(c) => c,
        Err(e) if e.kind == Kind::NotFound => {
            return Err(PageError {
                status: axum::http::StatusCode::NOT_FOUND,
                message: t.s("error.not_found").to_owned(),
                t,
            });
        }
        Err(e) => return Err(PageError::from_error(t, e)),
    };
    if coupon.status != "active" {
        return Ok(ctx.redirect("/me/coupons"));
    }
    let (code, _) = service::coupon_code(&app, user_id, &id).await.or_page(t)?;
    let qr_svg =
        o2o_codes::svg(&code).map_err(|e| PageError::internal(t, anyhow::anyhow!("{e}")))?;
    let mut response = ctx.render(&CodePage {
        t,
        logged_in: true,
        path: &ctx.path,
        coupon: coupon_view(t, &coupon),
        qr_svg,
        code,
    })?;
    response.headers_mut().insert(
        axum::http::header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

// ---------------------------------------------------------------------------------------------
// The checkout's coupon picker
// ---------------------------------------------------------------------------------------------

/// One usable coupon at checkout.
pub struct CouponChoice {
    pub id: String,
    pub name: String,
    pub rule: String,
    /// `-¥5.00`
    pub discount: String,
    /// What is left to pay with it.
    pub to_pay: String,
    pub selected: bool,
}

/// The consumer's usable coupons on a bill, best first; one of them (or none) selected.
pub struct CouponPicker {
    pub choices: Vec<CouponChoice>,
    /// What is left to pay without a coupon.
    pub full: String,
    /// What the selected choice leaves to pay, and its discount (empty without a coupon).
    pub to_pay: String,
    pub discount: String,
}

impl CouponPicker {
    /// The selected coupon's id, if any.
    pub fn selected(&self) -> Option<&str> {
        self.choices
            .iter()
            .find(|c| c.selected)
            .map(|c| c.id.as_str())
    }
}

/// A bill at checkout: what the coupon rules measure (`base`: the amount entered, or the
/// order's subtotal less its discounts) and what is left to pay without a coupon (`due`).
pub struct Bill<'a> {
    pub store_id: &'a str,
    pub channel: &'a str,
    pub base: i64,
    pub due: i64,
    pub currency: &'a str,
}

/// The consumer's coupons usable on a bill, best first (from [`service::usable`]), each with
/// what it takes off and what is left to pay (a coupon always leaves at least a fen).
/// `chosen`: `None` preselects the best; `Some("")` selects none; `Some(id)` that coupon.
/// `None` when the consumer holds no usable coupon.
pub async fn picker(
    app: &AppState,
    t: T,
    user_id: &str,
    bill: Bill<'_>,
    chosen: Option<&str>,
) -> Result<Option<CouponPicker>, Error> {
    let Bill {
        store_id,
        channel,
        base,
        due,
        currency,
    } = bill;
    if base <= 0 || due <= 1 {
        return Ok(None);
    }
    let usable = service::usable(app, user_id, store_id, channel, base).await?;
    let mut choices = Vec::with_capacity(usable.len());
    for (c, d) in &usable {
        if c.template.currency != currency {
            continue;
        }
        let d = (*d).min(due - 1).max(0);
        if d == 0 {
            continue;
        }
        choices.push(CouponChoice {
            id: c.id.clone(),
            name: c.template.name.clone(),
            rule: rule_text(t, &c.template),
            discount: format!("-{}", shown_price(d, currency)),
            to_pay: shown_price(due - d, currency),
            selected: chosen.is_some_and(|id| id == c.id),
        });
    }
    if choices.is_empty() {
        return Ok(None);
    }
    if chosen.is_none() {
        choices[0].selected = true;
    }
    let full = shown_price(due, currency);
    let (to_pay, discount) = match choices.iter().find(|c| c.selected) {
        Some(c) => (c.to_pay.clone(), c.discount.clone()),
        None => (full.clone(), String::new()),
    };
    Ok(Some(CouponPicker {
        choices,
        full,
        to_pay,
        discount,
    }))
}

// ---------------------------------------------------------------------------------------------
// A message's coupon (in the inbox)
// ---------------------------------------------------------------------------------------------

/// The coupon a merchant's message carries, as the inbox shows it.
pub struct AttachedCoupon {
    pub template_id: String,
    pub name: String,
    pub rule: String,
    /// The consumer may claim one now (in stock, under their limit).
    pub claimable: bool,
    /// Why not, when not: `coupon.claimed` or `coupon.sold_out`.
    pub state: &'static str,
}

/// What the inbox shows of a message's coupon, for the consumer reading it.
pub async fn attached(
    app: &AppState,
    t: T,
    user_id: &str,
    template_id: &str,
) -> Result<Option<AttachedCoupon>, Error> {
    let Some(row) = service::template_row(app, template_id).await? else {
        return Ok(None);
    };
    let held = service::held(app, user_id, template_id).await?;
    let tpl = row.public();
    let (claimable, state) = if held >= tpl.per_consumer_limit {
        (false, "coupon.claimed")
    } else if tpl.remaining == 0 {
        (false, "coupon.sold_out")
    } else {
        (true, "")
    };
    Ok(Some(AttachedCoupon {
        template_id: tpl.id.clone(),
        name: tpl.name.clone(),
        rule: rule_text(t, &tpl),
        claimable,
        state,
    }))
}

// ---------------------------------------------------------------------------------------------
// The console
// ---------------------------------------------------------------------------------------------

struct TemplateView {
    id: String,
    name: String,
    rule: String,
    /// Who may claim, in words (a tier's name is shown as typed).
    audience: String,
    stock: String,
    claim_window: String,
    issued: i64,
    used: i64,
    expired: i64,
    discount_given: String,
    sales: String,
    /// Its price in member points, when exchanged rather than claimed.
    points_price: Option<i64>,
}

#[derive(askama::Template)]
#[template(path = "marketing/console.html")]
struct ConsolePage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    can_create: bool,
    templates: Vec<TemplateView>,
    notice: Option<String>,
    error: Option<String>,
    form: TemplateForm,
    /// The member program's tiers, each an audience of its own.
    tiers: Vec<String>,
}

#[derive(Deserialize)]
struct ConsoleQuery {
    created: Option<String>,
    error: Option<String>,
}

/// The merchant's templates claimed free as (id, name), newest first: the message form's coupon
/// choice (a template priced in points is exchanged, never claimed from a message). Up to
/// [`CONSOLE_TEMPLATES_SHOWN`] of them, read page by page past the priced ones (at most ten
/// pages, so a merchant with thousands of priced templates still gets the form quickly).
pub async fn template_names(
    app: &AppState,
    scope: &MerchantScope,
) -> Result<Vec<(String, String)>, Error> {
    let mut names = Vec::new();
    let mut page = Page::first(100);
    for _ in 0..10 {
        let list = service::templates(app, scope, &page).await?;
        page.starting_after = list.data.last().map(|t| t.id.clone());
        names.extend(
            list.data
                .into_iter()
                .filter(|t| t.points_price.is_none())
                .map(|t| (t.id, t.name)),
        );
        if names.len() >= CONSOLE_TEMPLATES_SHOWN as usize || !list.has_more {
            break;
        }
    }
    names.truncate(CONSOLE_TEMPLATES_SHOWN as usize);
    Ok(names)
}

/// `GET /console/coupons`: the new-coupon form and every template with its results.
async fn console_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<ConsoleQuery>,
) -> Result<Response, PageError> {
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    render_console(
        &app,
        &ctx,
        &c,
        q.created
            .filter(|id| id.starts_with("cpt_"))
            .map(|_| ctx.t.s("coupon.created").to_owned()),
        ctx.flashed(q.error),
        TemplateForm::default(),
        axum::http::StatusCode::OK,
    )
    .await
}

async fn render_console(
    app: &AppState,
    ctx: &PageCtx,
    c: &StaffConsole,
    notice: Option<String>,
    error: Option<String>,
    form: TemplateForm,
    status: axum::http::StatusCode,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let list = service::templates(app, &c.scope, &Page::first(CONSOLE_TEMPLATES_SHOWN))
        .await
        .or_page(t)?;
    let tiers = crate::members::service::tier_names(&app.db, c.scope.merchant_id())
        .await
        .or_page(t)?;
    let mut templates = Vec::with_capacity(list.data.len());
    for tpl in &list.data {
        let s = service::stats(app, &c.scope, &tpl.id).await.or_page(t)?;
        let window = match &tpl.claim_ends_at {
            Some(end) => format!(
                "{} – {}",
                crate::followers::pages::shown_time(&tpl.claim_starts_at),
                crate::followers::pages::shown_time(end)
            ),
            None => format!(
                "{} –",
                crate::followers::pages::shown_time(&tpl.claim_starts_at)
            ),
        };
        templates.push(TemplateView {
            id: tpl.id.clone(),
            name: tpl.name.clone(),
            rule: rule_text(t, tpl),
            audience: match tpl.audience.as_str() {
                "followers" => t.s("coupon.audience.followers").to_owned(),
                "members" => t.s("coupon.audience.members").to_owned(),
                other => match other.strip_prefix("tier:") {
                    Some(tier) => format!("{}{tier}", t.s("coupon.audience.tier")),
                    None => t.s("coupon.audience.everyone").to_owned(),
                },
            },
            stock: format!(
                "{} / {} · {} {}",
                tpl.issued,
                tpl.total_stock,
                t.s("coupon.per_consumer"),
                tpl.per_consumer_limit
            ),
            claim_window: window,
            issued: s.issued,
            used: s.used,
            expired: s.expired,
            discount_given: shown_price(s.discount_given, &tpl.currency),
            sales: shown_price(s.sales, &tpl.currency),
            points_price: tpl.points_price,
        });
    }
    let mut response = ctx.render(&ConsolePage {
        t,
        path: &ctx.path,
        csrf: &ctx.csrf,
        can_create: c.role >= Role::Manager,
        templates,
        notice,
        error,
        form,
        tiers,
    })?;
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    Ok(response)
}

/// The new-coupon form, as typed (amounts in yuan, times in China time).
#[derive(Deserialize, Default)]
struct TemplateForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    amount_off: String,
    #[serde(default)]
    percent_off: String,
    #[serde(default)]
    max_discount: String,
    #[serde(default)]
    min_spend: String,
    #[serde(default)]
    total_stock: String,
    #[serde(default)]
    per_consumer_limit: String,
    #[serde(default)]
    claim_starts_at: String,
    #[serde(default)]
    claim_ends_at: String,
    #[serde(default)]
    valid_days_after_claim: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    points_price: String,
}

fn yuan(t: T, raw: &str, param: &'static str) -> Result<Option<i64>, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    crate::payments::pages::parse_yuan(raw)
        .map(Some)
        .map_err(|_| Error::invalid("amount_invalid", t.s("coupon.error.amount")).param(param))
}

fn whole(t: T, raw: &str, param: &'static str) -> Result<Option<i64>, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    raw.parse::<i64>()
        .map(Some)
        .map_err(|_| Error::invalid("number_invalid", t.s("coupon.error.number")).param(param))
}

/// A `datetime-local` value (`2026-12-02T10:00`) in China time, as RFC 3339.
fn local_time(t: T, raw: &str, param: &'static str) -> Result<Option<String>, Error> {
    let raw = raw.trim();
    if raw.is_empty() {
        return Ok(None);
    }
    let bad = || Error::invalid("time_invalid", t.s("coupon.error.time")).param(param);
    let civil: jiff::civil::DateTime = raw.parse().map_err(|_| bad())?;
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").map_err(|_| bad())?;
    let zoned = civil.to_zoned(tz).map_err(|_| bad())?;
    Ok(Some(zoned.timestamp().to_string()))
}

impl TemplateForm {
    fn input(&self, t: T, merchant_id: &str) -> Result<CreateTemplate, Error> {
        let kind = match self.kind.as_str() {
            "percent_off" => "percent_off",
            "amount_off" => "amount_off",
            _ => {
                return Err(Error::invalid("invalid_enum_value", t.s("error.choice")).param("kind"));
            }
        };
        Ok(CreateTemplate {
            merchant_id: merchant_id.to_owned(),
            name: self.name.clone(),
            kind: kind.to_owned(),
            amount_off: if kind == "amount_off" {
                yuan(t, &self.amount_off, "amount_off")?
            } else {
                None
            },
            percent_off: if kind == "percent_off" {
                whole(t, &self.percent_off, "percent_off")?
            } else {
                None
            },
            max_discount: if kind == "percent_off" {
                yuan(t, &self.max_discount, "max_discount")?
            } else {
                None
            },
            product_id: None,
            min_spend: yuan(t, &self.min_spend, "min_spend")?,
            currency: "CNY".to_owned(),
            store_ids: Vec::new(),
            channels: Vec::new(),
            claim_starts_at: local_time(t, &self.claim_starts_at, "claim_starts_at")?,
            claim_ends_at: local_time(t, &self.claim_ends_at, "claim_ends_at")?,
            use_starts_at: None,
            use_ends_at: None,
            valid_days_after_claim: whole(
                t,
                &self.valid_days_after_claim,
                "valid_days_after_claim",
            )?,
            total_stock: whole(t, &self.total_stock, "total_stock")?.unwrap_or(0),
            per_consumer_limit: whole(t, &self.per_consumer_limit, "per_consumer_limit")?,
            audience: Some(
                match self.audience.as_str() {
                    "" => "everyone",
                    // followers, members, tier:<name>, or anything else: the service decides.
                    other => other,
                }
                .to_owned(),
            ),
            stackable: Some(false),
            points_price: whole(t, &self.points_price, "points_price")?,
        })
    }
}

/// `POST /console/coupons`: creates a template (managers and owners); a refused form is shown
/// again with what was typed and why.
async fn create(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<TemplateForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    let result = async {
        if c.role < Role::Manager {
            return Err(Error::forbidden(
                "insufficient_role",
                "Managers and owners create coupons.",
            ));
        }
        let input = form.input(ctx.t, c.scope.merchant_id())?;
        service::create_template(&app, &c.scope, input).await
    }
    .await;
    match result {
        Ok(tpl) => Ok(ctx.redirect(&format!("/console/coupons?created={}", tpl.id))),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => {
            let (status, _) = crate::http::error::status_of(e.kind);
            render_console(
                &app,
                &ctx,
                &c,
                None,
                Some(crate::web::said(ctx.t, &e)),
                form,
                status,
            )
            .await
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/coupons", get(center_page))
        .route("/coupons/{id}/claim", post(claim))
        .route("/me/coupons", get(my_coupons))
        .route("/me/coupons/{id}/code", get(coupon_code_page))
        .route("/console/coupons", get(console_page).post(create))
}
