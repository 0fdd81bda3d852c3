//! Codes' pages: the landing of every printed code (`/q/<short>`), which always names the
//! verified merchant before any money moves and warns loudly about codes that are not ours, and
//! the consumer's pay-code page (QR and Code 128, refreshed before expiry, a few held ahead).

use super::model::PayCodeOut;
use super::service::{self, ResolveFailure};
use crate::app::AppState;
use crate::error::Error;
use crate::http::{Path, error::ErrorBody};
use crate::identity::PrincipalKind;
use crate::identity::service as identity;
use crate::stores::model::Store;
use crate::web::{OrPage, PageCtx, PageError, T};
use askama::Template;
use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Serialize, ToSchema)]
pub struct LandingMerchant {
    pub id: String,
    pub name: String,
    pub verified: bool,
}

#[derive(Serialize, ToSchema)]
pub struct LandingTable {
    pub id: String,
    pub label: String,
}

/// What a printed code stands for, as JSON callers see it.
#[derive(Serialize, ToSchema)]
pub struct Landing {
    pub id: String,
    pub kind: String,
    pub merchant: LandingMerchant,
    pub store: Store,
    pub table: Option<LandingTable>,
    pub product_id: Option<String>,
    pub target: Option<String>,
}

#[derive(Template)]
#[template(path = "codes/landing.html")]
struct LandingPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    landing: &'a Landing,
    csrf: &'a str,
    trading: bool,
    /// The pay form's one-time key (a double tap pays once).
    pay_key: String,
    /// The store's menu, on a table code's landing.
    menu: Option<crate::catalog::pages::MenuView>,
    /// A table code's landing: the table's shared order and the menu as an order form.
    ordering: Option<crate::orders::pages::TableOrdering>,
    order_menu: Vec<crate::orders::pages::FormSection>,
    /// A store pay code's membership offer: join, or pay with the card held there.
    member: Option<crate::members::pages::LandingMember>,
    /// A campaign code's offer: the merchant's coupon it leads to.
    offer: Option<crate::marketing::pages::AttachedCoupon>,
}

#[derive(Template)]
#[template(path = "codes/warning.html")]
struct WarningPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    revoked: bool,
}

/// The landing of every printed code. A browser gets the page for that touchpoint; a JSON caller
/// (`Accept: application/json`) gets what the code stands for. Unknown, revoked or tampered codes
/// answer 404 (`qr_unknown` / `qr_revoked`) with a warning page.
#[utoipa::path(get, path = "/q/{code}", tag = "codes",
    params(("code" = String, Path, description = "the short id printed in the code's URL")),
    responses((status = 200, description = "JSON when asked for (Accept: application/json), else the page",
        content((Landing = "application/json"), ("text/html"))),
    (status = 404, description = "JSON when asked for, else a page saying the code is unknown",
        content((ErrorBody = "application/json"), ("text/html")))))]
pub async fn landing(
    State(app): State<AppState>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    if crate::web::wants_json(&headers) {
        // The hot path of machine scans: no page context (session lookup, CSRF cookie) is needed,
        // and the landing's JSON is built once a minute per code.
        let outcome = service::resolve_json(&app.db, &code, |resolved| {
            serde_json::to_vec(&landing_of(resolved))
                .map(axum::body::Bytes::from)
                .map_err(Error::internal)
        })
        .await;
        return Ok(match outcome {
            Ok(Ok(json)) => (
                [(
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                )],
                json,
            )
                .into_response(),
            Ok(Err(failure)) => failure.error().into_response(),
            Err(e) => e.into_response(),
        });
    }
    let outcome = service::resolve(&app.db, &code).await;
    let mut ctx = PageCtx::build(&app, &headers, &uri).await.map_err(|e| {
        PageError::from_error(
            crate::web::T {
                lang: crate::web::Lang::Zh,
            },
            e,
        )
    })?;
    let resolved = match outcome {
        Ok(Ok(r)) => r,
        Ok(Err(failure)) => {
            let page = WarningPage {
                t: ctx.t,
                logged_in: ctx.logged_in(),
                path: &ctx.path,
                revoked: failure == ResolveFailure::Revoked,
            };
            let html = page.render().map_err(|e| PageError::internal(ctx.t, e))?;
            return Ok((StatusCode::NOT_FOUND, Html(html)).into_response());
        }
        Err(e) => return Err(PageError::from_error(ctx.t, e)),
    };
    let trading = resolved.row.merchant_mode == "trading";
    let landing = landing_of(resolved);
    // A scan is the consumer's from the first moment: a guest session starts if there is none,
    // and the store is remembered (it joins the account at login).
    let consumer_id = match &ctx.principal {
        Some(p) if p.kind == PrincipalKind::Consumer => Some(p.id.clone()),
        Some(_) => None,
        None => {
            let guest = identity::start_guest(&app.db).await.or_page(ctx.t)?;
            ctx.set_session(&guest.token, identity::CONSUMER_SESSION_US / 1_000_000);
            Some(guest.principal.id)
        }
    };
    if let Some(uid) = &consumer_id {
        crate::stores::service::record_visit(&app.db, uid, &landing.store.id)
            .await
            .or_page(ctx.t)?;
    }
    // A WiFi code opens the WiFi login, with the router's parameters when a router sent the
    // client here.
    if landing.kind == "wifi" {
        return crate::wifi::pages::landing(&app, ctx, &code, &landing, uri.query()).await;
    }
    // A table code opens the store's menu for that table, as an order form when the merchant
    // takes orders.
    let (menu, mut ordering) = match (&landing.kind[..], &landing.table) {
        ("table", Some(table)) if trading => {
            let ordering = crate::orders::pages::table_ordering(
                &app,
                &ctx,
                &code,
                &landing.store.id,
                &table.id,
                consumer_id.as_deref(),
                crate::orders::pages::TableQuery::of(&uri),
            )
            .await?;
            (None, Some(ordering))
        }
        ("table", _) => (
            Some(crate::catalog::pages::store_menu(&app, &landing.store.id, ctx.t).await?),
            None,
        ),
        _ => (None, None),
    };
    let order_menu = ordering
        .as_mut()
        .map(|o| std::mem::take(&mut o.menu))
        .unwrap_or_default();
    let member = if landing.kind == "store_pay" && trading {
        crate::members::pages::landing_member(&app, &ctx, &landing.merchant.id).await?
    } else {
        None
    };
    // A campaign code whose target is one of the merchant's coupons offers it.
    let offer = match (&landing.kind[..], &landing.target) {
        ("campaign", Some(target)) if target.starts_with("cpt_") => {
            let user = ctx
                .principal
                .as_ref()
                .map(|p| p.id.clone())
                .unwrap_or_default();
            let theirs = crate::marketing::service::template_row(&app, target)
                .await
                .or_page(ctx.t)?
                .is_some_and(|t| t.merchant_id == landing.merchant.id);
            if theirs {
                crate::marketing::pages::attached(&app, ctx.t, &user, target)
                    .await
                    .or_page(ctx.t)?
            } else {
                None
            }
        }
        _ => None,
    };
    ctx.render(&LandingPage {
        offer,
        member,
        menu,
        ordering,
        order_menu,
        t: ctx.t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        landing: &landing,
        csrf: &ctx.csrf,
        trading,
        pay_key: crate::payments::pages::new_form_key(),
    })
}

/// What a resolved code stands for, as JSON callers and the page see it.
fn landing_of(resolved: service::Resolved) -> Landing {
    let row = resolved.row;
    Landing {
        id: row.id,
        kind: row.kind,
        merchant: LandingMerchant {
            id: row.merchant_id,
            name: row.merchant_name,
            verified: row.merchant_verified,
        },
        store: resolved.store,
        table: match (row.table_id, row.table_label) {
            (Some(id), Some(label)) => Some(LandingTable { id, label }),
            _ => None,
        },
        product_id: row.product_id,
        target: row.target,
    }
}

/// One pay code as the page shows it.
struct ShownCode {
    code: String,
    grouped: String,
    valid_from: String,
    expires_at: String,
    qr_svg: String,
    barcode_svg: String,
}

#[derive(Template)]
#[template(path = "codes/pay_code.html")]
struct PayCodePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    codes: Vec<ShownCode>,
}

fn barcode_svg(code: &str) -> Result<String, Error> {
    let encoded = barcoders::sym::code128::Code128::new(format!("\u{0106}{code}"))
        .map_err(|e| Error::internal(anyhow::anyhow!("code128: {e:?}")))?
        .encode();
    let mut svg = barcoders::generators::svg::SVG::new(80);
    svg.xdim = 2;
    svg.generate(&encoded)
        .map_err(|e| Error::internal(anyhow::anyhow!("code128 svg: {e:?}")))
}

fn shown(c: PayCodeOut) -> Result<ShownCode, Error> {
    let grouped = c
        .code
        .as_bytes()
        .chunks(4)
        .map(|ch| String::from_utf8_lossy(ch).into_owned())
        .collect::<Vec<_>>()
        .join(" ");
    Ok(ShownCode {
        qr_svg: o2o_codes::svg(&c.code).map_err(Error::internal)?,
        barcode_svg: barcode_svg(&c.code)?,
        grouped,
        code: c.code,
        valid_from: c.valid_from,
        expires_at: c.expires_at,
    })
}

/// The consumer's pay code: three codes, each valid 60 s in turn, so paying works for a while
/// without a connection; the page reloads for fresh ones before the last expires.
async fn pay_code_page(State(app): State<AppState>, ctx: PageCtx) -> Result<Response, PageError> {
    let Some(p) = ctx
        .principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer && !p.guest)
    else {
        return Ok(ctx.redirect("/login?next=/me/pay-code"));
    };
    let issued = service::issue_pay_codes(&app.db, &p.id, "wallet", 3)
        .await
        .or_page(ctx.t)?;
    let codes = issued
        .into_iter()
        .map(shown)
        .collect::<Result<Vec<_>, _>>()
        .or_page(ctx.t)?;
    let mut response = ctx.render(&PayCodePage {
        t: ctx.t,
        logged_in: true,
        path: &ctx.path,
        codes,
    })?;
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

pub fn router() -> Router<AppState> {
    Router::new().route("/me/pay-code", get(pay_code_page))
}
