//! Catalog pages: the menu as consumers see it (shown on a table code's landing and on a store's
//! page; names in the page's language, prices in yuan text, sold-out marked), and the console
//! page where a manager adds categories and products, changes prices, sets each store's
//! availability, stock and price, and uploads photos.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Kind};
use crate::http::{Form, Path};
use crate::identity::Role;
use crate::web::{Lang, OrPage, PageCtx, PageError, StaffConsole, T};
use askama::Template;
use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use o2o_ledger::{Currency, Money};
use serde::Deserialize;

pub use o2o_ledger::shown_price;

/// The name in the page's language, falling back to the other one.
fn local(t: T, zh: &Option<String>, en: &Option<String>) -> String {
    let (first, second) = match t.lang {
        Lang::Zh => (zh, en),
        Lang::En => (en, zh),
    };
    first.clone().or_else(|| second.clone()).unwrap_or_default()
}

/// The name in the other language, when it differs.
fn other(t: T, zh: &Option<String>, en: &Option<String>) -> Option<String> {
    let main = local(t, zh, en);
    let o = match t.lang {
        Lang::Zh => en,
        Lang::En => zh,
    };
    o.clone().filter(|o| *o != main)
}

/// One product as a page shows it.
pub struct ItemView {
    pub id: String,
    pub name: String,
    pub alt_name: Option<String>,
    pub description: String,
    pub price: String,
    pub sold_out: bool,
    pub photo: Option<String>,
    pub photo_large: Option<String>,
    /// "杯型: 中杯 · 大杯 +¥3.00", one line per group.
    pub options: Vec<String>,
}

pub struct SectionView {
    pub name: String,
    pub items: Vec<ItemView>,
}

/// A menu ready for a template.
pub struct MenuView {
    pub sections: Vec<SectionView>,
}

impl MenuView {
    pub fn is_empty(&self) -> bool {
        self.sections.is_empty()
    }
}

pub fn menu_view(menu: &Menu, t: T) -> MenuView {
    let sections = menu
        .sections
        .iter()
        .map(|s| SectionView {
            name: if s.id.is_some() {
                local(t, &s.name_zh, &s.name_en)
            } else {
                t.s("menu.other").to_owned()
            },
            items: s
                .products
                .iter()
                .map(|p| ItemView {
                    id: p.id.clone(),
                    name: local(t, &p.name_zh, &p.name_en),
                    alt_name: other(t, &p.name_zh, &p.name_en),
                    description: p.description.clone(),
                    price: shown_price(p.price, &p.currency),
                    sold_out: p.sold_out,
                    photo: p.photo.as_ref().map(|u| u.small.clone()),
                    photo_large: p.photo.as_ref().map(|u| u.large.clone()),
                    options: p
                        .option_groups
                        .iter()
                        .map(|g| {
                            let opts: Vec<String> = g
                                .options
                                .iter()
                                .map(|o| {
                                    let n = local(t, &o.name_zh, &o.name_en);
                                    if o.price_delta > 0 {
                                        format!("{n} +{}", shown_price(o.price_delta, &p.currency))
                                    } else {
                                        n
                                    }
                                })
                                .collect();
                            format!("{}: {}", local(t, &g.name_zh, &g.name_en), opts.join(" · "))
                        })
                        .collect(),
                })
                .collect(),
        })
        .collect();
    MenuView { sections }
}

/// The menu of a store for a page, or an empty one when building it failed for a reason the
/// consumer cannot act on (the page still shows the store).
pub async fn store_menu(app: &AppState, store_id: &str, t: T) -> Result<MenuView, PageError> {
    let cached = service::menu(app, store_id).await.or_page(t)?;
    Ok(menu_view(&cached.menu, t))
}

// ----- the console -----

fn need_manager(ctx: &PageCtx, c: &StaffConsole) -> Result<(), PageError> {
    if c.role < Role::Manager {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden("insufficient_role", "Managers and owners edit the catalog."),
        ));
    }
    Ok(())
}

struct ConsoleProduct {
    id: String,
    name: String,
    category: String,
    base_price: String,
    base_price_input: String,
    photo: Option<String>,
    barcode: String,
    /// This store's settings.
    store_price_input: String,
    available: bool,
    stock_input: String,
    sold_out: bool,
}

#[derive(Template)]
#[template(path = "catalog/console.html")]
struct ConsolePage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    can_manage: bool,
    categories: Vec<(String, String)>,
    products: Vec<ConsoleProduct>,
    stores: Vec<(String, String)>,
    store_id: String,
    error: Option<String>,
}

#[derive(Deserialize)]
struct ConsoleQuery {
    store: Option<String>,
    error: Option<String>,
}

async fn console_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<ConsoleQuery>,
) -> Result<Response, PageError> {
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    let t = ctx.t;
    let stores =
        crate::stores::service::list_own_stores(&app.db, &c.scope, &crate::http::Page::first(100))
            .await
            .or_page(t)?
            .data;
    let store_id = q
        .store
        .filter(|s| stores.iter().any(|st| &st.id == s))
        .or_else(|| stores.last().map(|s| s.id.clone()))
        .unwrap_or_default();
    let categories = service::all_categories(&app.db, &c.scope)
        .await
        .or_page(t)?;
    let list = service::list_products(&app.db, &c.scope, None, &crate::http::Page::first(100))
        .await
        .or_page(t)?;
    let mut products = Vec::new();
    for p in list.data.into_iter().rev() {
        let setting = if store_id.is_empty() {
            None
        } else {
            Some(
                service::get_store_product(&app.db, &c.scope, &store_id, &p.id)
                    .await
                    .or_page(t)?,
            )
        };
        let category = p
            .category_id
            .as_ref()
            .and_then(|id| categories.iter().find(|c| &c.id == id))
            .map(|c| local(t, &c.name_zh, &c.name_en))
            .unwrap_or_default();
        let currency = Currency::parse(&p.currency).unwrap_or(Currency::CNY);
        products.push(ConsoleProduct {
            name: local(t, &p.name_zh, &p.name_en),
            category,
            base_price: shown_price(p.price, &p.currency),
            base_price_input: Money::new(p.price, currency).format_major(),
            photo: p.photo.as_ref().map(|u| u.small.clone()),
            barcode: p.barcode.clone().unwrap_or_default(),
            store_price_input: setting
                .as_ref()
                .and_then(|s| s.price)
                .map(|v| Money::new(v, currency).format_major())
                .unwrap_or_default(),
            available: setting.as_ref().is_none_or(|s| s.available),
            stock_input: setting
                .as_ref()
                .and_then(|s| s.stock)
                .map(|v| v.to_string())
                .unwrap_or_default(),
            sold_out: setting.as_ref().is_some_and(|s| s.sold_out),
            id: p.id,
        });
    }
    ctx.render(&ConsolePage {
        t,
        path: &ctx.path,
        csrf: &ctx.csrf,
        can_manage: c.role >= Role::Manager,
        categories: categories
            .iter()
            .map(|c| (c.id.clone(), local(t, &c.name_zh, &c.name_en)))
            .collect(),
        products,
        stores: stores.into_iter().map(|s| (s.id, s.name)).collect(),
        store_id,
        error: ctx.flashed(q.error),
    })
}

/// After a form: back to the console page, with the error sentence of a 4xx shown there.
fn back(ctx: &PageCtx, store: &str, result: Result<(), Error>) -> Result<Response, PageError> {
    let mut to = format!("/console/catalog?store={}", urlencode(store));
    match result {
        Ok(()) => {}
        Err(e) if e.kind == Kind::Internal => return Err(PageError::from_error(ctx.t, e)),
        Err(e) => to.push_str(&format!(
            "&error={}",
            urlencode(&ctx.flash(&crate::web::said(ctx.t, &e)))
        )),
    }
    Ok(ctx.redirect(&to))
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn optional_yuan(raw: &str) -> Result<Option<i64>, Error> {
    if raw.trim().is_empty() {
        Ok(None)
    } else {
        crate::payments::pages::parse_yuan(raw)
            .map(Some)
            .map_err(|e| Error::invalid("price_invalid", e.message).param("price"))
    }
}

fn blank_none(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

#[derive(Deserialize)]
struct CategoryForm {
    csrf: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    name_en: String,
}

async fn add_category(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<CategoryForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    need_manager(&ctx, &c)?;
    let result = async {
        let mut tx = app.db.begin().await?;
        let change = service::create_category(
            &mut tx,
            &c.scope,
            CreateCategory {
                name_zh: blank_none(&form.name_zh),
                name_en: blank_none(&form.name_en),
                position: None,
            },
        )
        .await?;
        tx.commit().await?;
        change.announce(&app);
        Ok(())
    }
    .await;
    back(&ctx, &form.store, result)
}

#[derive(Deserialize)]
struct ProductForm {
    csrf: String,
    #[serde(default)]
    store: String,
    #[serde(default)]
    name_zh: String,
    #[serde(default)]
    name_en: String,
    #[serde(default)]
    description: String,
    price: String,
    #[serde(default)]
    category_id: String,
    #[serde(default)]
    barcode: String,
}

async fn add_product(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<ProductForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    need_manager(&ctx, &c)?;
    let result = async {
        let price = optional_yuan(&form.price)?.ok_or_else(|| {
            Error::invalid("price_invalid", "Enter a price in yuan, such as 28.00.").param("price")
        })?;
        let mut tx = app.db.begin().await?;
        let change = service::create_product(
            &mut tx,
            &c.scope,
            CreateProduct {
                name_zh: blank_none(&form.name_zh),
                name_en: blank_none(&form.name_en),
                description: blank_none(&form.description),
                price,
                currency: None,
                category_id: blank_none(&form.category_id),
                option_groups: Vec::new(),
                barcode: blank_none(&form.barcode),
                position: None,
            },
        )
        .await?;
        tx.commit().await?;
        change.announce(&app);
        Ok(())
    }
    .await;
    back(&ctx, &form.store, result)
}

#[derive(Deserialize)]
struct PriceForm {
    csrf: String,
    #[serde(default)]
    store: String,
    price: String,
}

async fn set_price(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<PriceForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    need_manager(&ctx, &c)?;
    let result = async {
        let price = optional_yuan(&form.price)?.ok_or_else(|| {
            Error::invalid("price_invalid", "Enter a price in yuan, such as 28.00.").param("price")
        })?;
        let mut tx = app.db.begin().await?;
        let change = service::update_product(
            &mut tx,
            &c.scope,
            &id,
            UpdateProduct {
                price: Some(price),
                ..UpdateProduct::default()
            },
        )
        .await?;
        tx.commit().await?;
        change.announce(&app);
        Ok(())
    }
    .await;
    back(&ctx, &form.store, result)
}

#[derive(Deserialize)]
struct StoreForm {
    csrf: String,
    #[serde(default)]
    price: String,
    #[serde(default)]
    available: Option<String>,
    #[serde(default)]
    stock: String,
}

async fn set_store_product(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path((store_id, product_id)): Path<(String, String)>,
    Form(form): Form<StoreForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    need_manager(&ctx, &c)?;
    let result = async {
        let price = optional_yuan(&form.price)?;
        let stock = match form.stock.trim() {
            "" => None,
            s => Some(s.parse::<i64>().map_err(|_| {
                Error::invalid("stock_out_of_range", "Enter the stock as a whole number.")
                    .param("stock")
            })?),
        };
        let mut tx = app.db.begin().await?;
        let change = service::put_store_product(
            &mut tx,
            &c.scope,
            &store_id,
            &product_id,
            PutStoreProduct {
                price,
                available: Some(form.available.is_some()),
                stock,
            },
        )
        .await?;
        tx.commit().await?;
        change.announce(&app);
        Ok(())
    }
    .await;
    back(&ctx, &store_id, result)
}

/// Photo upload from the console: the raw file as the body (sent by the page's script), with
/// the page's CSRF token in `X-CSRF-Token`. Answers 204, or the error as text with its status.
async fn upload_photo(
    State(app): State<AppState>,
    ctx: PageCtx,
    headers: HeaderMap,
    Path(id): Path<String>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, PageError> {
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    ctx.check_csrf(sent)?;
    let Some(c) = ctx.staff() else {
        return Ok(StatusCode::UNAUTHORIZED.into_response());
    };
    need_manager(&ctx, &c)?;
    let bytes = match body {
        Ok(b) => b,
        Err(r) => return Ok((r.status(), r.body_text()).into_response()),
    };
    match service::set_photo(&app.db, &c.scope, &id, bytes).await {
        Ok(change) => {
            change.announce(&app);
            Ok(StatusCode::NO_CONTENT.into_response())
        }
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => {
            let (status, _) = crate::http::error::status_of(e.kind);
            Ok((status, crate::web::said(ctx.t, &e)).into_response())
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/console/catalog", get(console_page))
        .route("/console/catalog/categories", post(add_category))
        .route("/console/catalog/products", post(add_product))
        .route("/console/catalog/products/{id}/price", post(set_price))
        .route(
            "/console/catalog/stores/{store_id}/products/{product_id}",
            post(set_store_product),
        )
        .route(
            "/console/catalog/products/{id}/photo",
            post(upload_photo).layer(DefaultBodyLimit::max(service::MAX_PHOTO_BYTES)),
        )
}
