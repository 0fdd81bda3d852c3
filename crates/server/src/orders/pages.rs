//! Orders' pages. Consumers: the table's shared order on a table code's landing (everyone's
//! items, live; send to the kitchen; pay all or a share from the wallet), ordering ahead for
//! pickup in a time slot, scan-and-go in the store, one order's page (status live, pickup
//! number and code, exit pass) and the list of one's orders. Staff: the kitchen board (live
//! columns new → accepted → preparing → ready), a printable 80 mm kitchen ticket, and the
//! counter's handover of a pickup code or number.
//!
//! Every form goes through the same service functions as the JSON API, with the page's CSRF
//! token. Live parts of a page are one element that `assets/orders.js` fetches again when the
//! order's (or the store's) server-sent events say something changed, so every text is still
//! rendered here, in the page's language.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::catalog::model::Choice;
use crate::catalog::pages::shown_price;
use crate::db::{MerchantScope, now_us};
use crate::error::{Error, Kind};
use crate::http::{Form, Path};
use crate::identity::{Principal, PrincipalKind, Role};
use crate::stores::model::Store;
use crate::web::{Lang, OrPage, PageCtx, PageError, T};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde::Deserialize;
use std::collections::{BTreeMap, HashMap};

/// Pickup slots are this many minutes apart.
const SLOT_MINUTES: i64 = 15;
/// Orders the consumer's list shows.
const MY_ORDERS_SHOWN: i64 = 50;
/// Hours of orders the kitchen board shows.
const BOARD_HOURS: i64 = 12;

// ---------------------------------------------------------------------------------------------
// Shared helpers
// ---------------------------------------------------------------------------------------------

fn local(t: T, zh: &Option<String>, en: &Option<String>) -> String {
    let (first, second) = match t.lang {
        Lang::Zh => (zh, en),
        Lang::En => (en, zh),
    };
    first.clone().or_else(|| second.clone()).unwrap_or_default()
}

fn not_found(t: T) -> PageError {
    PageError {
        status: StatusCode::NOT_FOUND,
        message: t.s("error.not_found").to_owned(),
        t,
    }
}

fn no_store(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

fn urlencode(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// Any consumer, guests included (a guest can add to a table's order).
fn consumer(ctx: &PageCtx) -> Option<&Principal> {
    ctx.principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer)
}

/// A consumer logged in with a phone (money moves only for them).
fn account(ctx: &PageCtx) -> Option<&Principal> {
    consumer(ctx).filter(|p| !p.guest)
}

/// The staff member behind a console page, with the cashier role at least.
fn staff(ctx: &PageCtx) -> Result<Option<(&Principal, MerchantScope)>, PageError> {
    let Some(p) = ctx
        .principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Staff)
    else {
        return Ok(None);
    };
    let (Some(m), Some(role)) = (&p.merchant_id, p.role) else {
        return Ok(None);
    };
    if role < Role::Cashier {
        return Err(PageError::from_error(
            ctx.t,
            Error::forbidden("insufficient_role", "This needs the cashier role."),
        ));
    }
    Ok(Some((p, MerchantScope::authenticated(m.clone()))))
}

/// A form's one-time key: a double tap replays the first answer instead of acting twice.
fn form_key(raw: &str) -> Option<String> {
    let ok = (16..=100).contains(&raw.len())
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    ok.then(|| format!("page:{raw}"))
}

fn form_hash(what: &str) -> String {
    crate::identity::service::sha256_hex(what)
}

/// A refusal as the page says it: known ones in the page's language, others in the service's.
fn refusal_text(t: T, e: &Error) -> String {
    let key = match e.code.as_ref() {
        "insufficient_funds" => Some("error.insufficient"),
        "amount_invalid" => Some("pay.error.amount"),
        _ => None,
    };
    match key {
        Some(k) => t.s(k).to_owned(),
        None => crate::web::said(t, e),
    }
}

/// After a form: to `to`, with the refusal shown there; an internal failure is an error page.
fn back(ctx: &PageCtx, to: &str, result: Result<(), Error>) -> Result<Response, PageError> {
    match result {
        Ok(()) => Ok(ctx.redirect(to)),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => {
            let sep = if to.contains('?') { '&' } else { '?' };
            let text = refusal_text(ctx.t, &e);
            Ok(ctx.redirect(&format!("{to}{sep}error={}", urlencode(&ctx.flash(&text)))))
        }
    }
}

fn id_of(reply: &crate::http::Reply) -> Result<String, Error> {
    serde_json::from_str::<serde_json::Value>(&reply.body)
        .ok()
        .and_then(|v| v.get("id").and_then(|i| i.as_str()).map(str::to_owned))
        .ok_or_else(|| Error::internal(anyhow::anyhow!("an order reply without an id")))
}

fn local_clock(us: i64, timezone: &str) -> String {
    let tz = jiff::tz::TimeZone::get(timezone).unwrap_or(jiff::tz::TimeZone::UTC);
    match jiff::Timestamp::from_microsecond(us) {
        Ok(ts) => ts.to_zoned(tz).strftime("%H:%M").to_string(),
        Err(_) => String::new(),
    }
}

// ---------------------------------------------------------------------------------------------
// Views
// ---------------------------------------------------------------------------------------------

/// One line of an order as a page shows it.
pub struct LineView {
    pub name: String,
    pub options: String,
    pub quantity: i64,
    pub total: String,
    pub who: String,
    pub mine: bool,
    pub sent: bool,
}

/// An order as a page shows it.
pub struct OrderView {
    pub id: String,
    pub short: String,
    pub channel: &'static str,
    pub channel_key: &'static str,
    pub status: &'static str,
    pub status_key: &'static str,
    pub lines: Vec<LineView>,
    pub total: String,
    pub paid: String,
    pub due: String,
    pub has_paid: bool,
    pub fully_paid: bool,
    pub has_unsent: bool,
    pub pickup_number: Option<String>,
    pub pickup_at: Option<String>,
    pub table_label: Option<String>,
    pub note: Option<String>,
    pub store_id: String,
    pub updated: String,
    /// Discounts on the order (a coupon's name and what it took off).
    pub discounts: Vec<(String, String)>,
    /// A delivery: where it goes, how far that is, and the phone to call at the door.
    pub delivery_address: Option<String>,
    pub delivery_distance: Option<String>,
    pub contact_phone: Option<String>,
    /// The delivery fee, when there is one.
    pub delivery_fee: Option<String>,
    /// When a delivery is promised to arrive (local HH:MM).
    pub promised_at: Option<String>,
}

/// A distance as people say it: metres below a kilometre, else kilometres to one decimal.
pub fn distance_text(metres: u32) -> String {
    if metres < 1_000 {
        format!("{metres} m")
    } else {
        format!("{:.1} km", f64::from(metres) / 1000.0)
    }
}

fn option_names(t: T, item: Option<&crate::catalog::model::MenuItem>, line: &Line) -> String {
    let mut parts = Vec::new();
    for (group, keys) in &line.options {
        for key in keys {
            let name = item
                .and_then(|i| i.option_groups.iter().find(|g| &g.key == group))
                .and_then(|g| g.options.iter().find(|o| &o.key == key))
                .map(|o| local(t, &o.name_zh, &o.name_en))
                .unwrap_or_else(|| key.clone());
            parts.push(name);
        }
    }
    parts.join(" · ")
}

/// The order as a page shows it; `me` is the consumer looking (their lines say "you").
async fn order_view(
    app: &AppState,
    t: T,
    o: &OrderData,
    me: Option<&str>,
) -> Result<OrderView, Error> {
    let menu = crate::catalog::service::menu(app, &o.store_id).await.ok();
    let items: HashMap<&str, &crate::catalog::model::MenuItem> = menu
        .as_ref()
        .map(|m| {
            m.menu
                .sections
                .iter()
                .flat_map(|s| s.products.iter())
                .map(|p| (p.id.as_str(), p))
                .collect()
        })
        .unwrap_or_default();
    let mut who: HashMap<String, String> = HashMap::new();
    let mut lines = Vec::with_capacity(o.lines.len());
    for l in &o.lines {
        let mine = l.added_by.is_some() && l.added_by.as_deref() == me;
        let label = match &l.added_by {
            _ if mine => t.s("order.you").to_owned(),
            Some(id) if id.starts_with("usr_") => match who.get(id) {
                Some(w) => w.clone(),
                None => {
                    let w = match crate::identity::service::consumer_phone(&app.db, id).await? {
                        Some(phone) => format!("{} ···{}", t.s("order.guest"), phone.last4()),
                        None => {
                            let tail: String = id.chars().rev().take(4).collect();
                            let tail: String = tail.chars().rev().collect();
                            format!("{} #{tail}", t.s("order.guest"))
                        }
                    };
                    who.insert(id.clone(), w.clone());
                    w
                }
            },
            _ => String::new(),
        };
        lines.push(LineView {
            name: local(t, &l.name_zh, &l.name_en),
            options: option_names(t, items.get(l.product_id.as_str()).copied(), l),
            quantity: l.quantity,
            total: shown_price(l.line_total, &o.currency),
            who: label,
            mine,
            sent: l.sent,
        });
    }
    let store = crate::stores::service::find_store(&app.db, &o.store_id).await?;
    let tz = store
        .as_ref()
        .map(|s| s.timezone.clone())
        .unwrap_or_else(|| "Asia/Shanghai".to_owned());
    let table_label = match &o.table_id {
        Some(tid) => {
            crate::stores::service::table_label(&app.db, &o.merchant_id, &o.store_id, tid).await?
        }
        None => None,
    };
    Ok(OrderView {
        id: o.id.clone(),
        short: o
            .id
            .chars()
            .rev()
            .take(6)
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect(),
        channel: o.channel.as_str(),
        channel_key: match o.channel {
            Channel::DineIn => "channel.dine_in",
            Channel::Pickup => "channel.pickup",
            Channel::Delivery => "channel.delivery",
            Channel::ScanAndGo => "channel.scan_and_go",
        },
        status: o.status.as_str(),
        status_key: match o.status {
            Status::Open => "ostatus.open",
            Status::PendingPayment => "ostatus.pending_payment",
            Status::Placed => "ostatus.placed",
            Status::Accepted => "ostatus.accepted",
            Status::Preparing => "ostatus.preparing",
            Status::Ready => "ostatus.ready",
            Status::Completed => "ostatus.completed",
            Status::Canceled => "ostatus.canceled",
        },
        lines,
        total: shown_price(o.total, &o.currency),
        paid: shown_price(o.amount_paid, &o.currency),
        due: shown_price(o.due(), &o.currency),
        has_paid: o.amount_paid > 0,
        fully_paid: o.fully_paid(),
        has_unsent: o.lines.iter().any(|l| !l.sent),
        pickup_number: o.pickup_number.clone(),
        pickup_at: o.pickup_at.map(|at| local_clock(at, &tz)),
        table_label,
        note: o.note.clone(),
        store_id: o.store_id.clone(),
        updated: o.updated_at.to_string(),
        discounts: o
            .discounts
            .iter()
            .map(|d| {
                (
                    d.label.clone(),
                    format!("-{}", shown_price(d.amount, &o.currency)),
                )
            })
            .collect(),
        delivery_address: o.delivery.as_ref().map(|d| d.address.clone()),
        delivery_distance: o
            .delivery
            .as_ref()
            .and_then(|d| d.distance_m)
            .map(distance_text),
        contact_phone: o.delivery.as_ref().and_then(|d| d.contact_phone.clone()),
        delivery_fee: (o.channel == Channel::Delivery)
            .then(|| shown_price(o.delivery_fee, &o.currency)),
        promised_at: match o.channel {
            Channel::Delivery => o.promised_at.map(|at| local_clock(at, &tz)),
            _ => None,
        },
    })
}

/// One option of a group in the order form.
pub struct OptionView {
    pub key: String,
    pub name: String,
    /// Chosen on the form as it was sent.
    pub chosen: bool,
}

/// One option group in the order form: a select (single) or checkboxes (multi).
pub struct GroupView {
    pub key: String,
    pub name: String,
    pub multi: bool,
    pub required: bool,
    pub options: Vec<OptionView>,
}

/// A product in the order form.
pub struct FormItem {
    pub id: String,
    pub name: String,
    pub alt_name: Option<String>,
    pub description: String,
    pub price: String,
    pub sold_out: bool,
    pub photo: Option<String>,
    pub groups: Vec<GroupView>,
    /// The quantity as the form was sent ("0" on a fresh form).
    pub qty: String,
    /// A refusal about this product (sold out since the form was shown…).
    pub error: Option<String>,
}

pub struct FormSection {
    pub name: String,
    pub items: Vec<FormItem>,
}

/// The store's menu as an order form (`q.<product>` quantities, `o.<product>.<group>` options),
/// filled with what `fields` chose (a form sent back, or none).
async fn order_form(
    app: &AppState,
    store_id: &str,
    t: T,
    fields: &[(String, String)],
) -> Result<Vec<FormSection>, Error> {
    let cached = crate::catalog::service::menu(app, store_id).await?;
    let picked: std::collections::HashSet<(&str, &str)> = fields
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    Ok(cached
        .menu
        .sections
        .iter()
        .map(|s| FormSection {
            name: if s.id.is_some() {
                local(t, &s.name_zh, &s.name_en)
            } else {
                t.s("menu.other").to_owned()
            },
            items: s
                .products
                .iter()
                .map(|p| {
                    let name = local(t, &p.name_zh, &p.name_en);
                    let alt = match t.lang {
                        Lang::Zh => &p.name_en,
                        Lang::En => &p.name_zh,
                    };
                    let qty = field(fields, &format!("q.{}", p.id));
                    FormItem {
                        qty: match qty.trim() {
                            "" => "0".to_owned(),
                            typed => typed.chars().take(4).collect(),
                        },
                        error: None,
                        id: p.id.clone(),
                        alt_name: alt.clone().filter(|a| *a != name),
                        name,
                        description: p.description.clone(),
                        price: shown_price(p.price, &p.currency),
                        sold_out: p.sold_out,
                        photo: p.photo.as_ref().map(|u| u.small.clone()),
                        groups: p
                            .option_groups
                            .iter()
                            .map(|g| {
                                let input = format!("o.{}.{}", p.id, g.key);
                                GroupView {
                                    key: g.key.clone(),
                                    name: local(t, &g.name_zh, &g.name_en),
                                    multi: g.choice == Choice::Multi,
                                    required: g.required,
                                    options: g
                                        .options
                                        .iter()
                                        .map(|o| {
                                            let n = local(t, &o.name_zh, &o.name_en);
                                            OptionView {
                                                chosen: picked
                                                    .contains(&(input.as_str(), o.key.as_str())),
                                                key: o.key.clone(),
                                                name: if o.price_delta > 0 {
                                                    format!(
                                                        "{n} +{}",
                                                        shown_price(o.price_delta, &p.currency)
                                                    )
                                                } else {
                                                    n
                                                },
                                            }
                                        })
                                        .collect(),
                                }
                            })
                            .collect(),
                    }
                })
                .collect(),
        })
        .collect())
}

/// The items an order form asks for: every product with a quantity above zero, with its options.
fn items_of(fields: &[(String, String)]) -> Result<Vec<ItemInput>, Error> {
    let mut quantities: BTreeMap<&str, i64> = BTreeMap::new();
    let mut options: BTreeMap<&str, BTreeMap<String, Vec<String>>> = BTreeMap::new();
    for (k, v) in fields {
        if let Some(product) = k.strip_prefix("q.") {
            let v = v.trim();
            if v.is_empty() {
                continue;
            }
            let n: i64 = v.parse().map_err(|_| {
                Error::invalid("quantity_out_of_range", "Enter a whole number of items.")
                    .param("quantity")
            })?;
            if n > 0 {
                quantities.insert(product, n);
            }
        } else if let Some(rest) = k.strip_prefix("o.")
            && let Some((product, group)) = rest.split_once('.')
            && !v.is_empty()
        {
            options
                .entry(product)
                .or_default()
                .entry(group.to_owned())
                .or_default()
                .push(v.clone());
        }
    }
    Ok(quantities
        .into_iter()
        .map(|(product, quantity)| ItemInput {
            product_id: Some(product.to_owned()),
            barcode: None,
            quantity: Some(quantity),
            options: options.remove(product).unwrap_or_default(),
        })
        .collect())
}

fn field<'a>(fields: &'a [(String, String)], name: &str) -> &'a str {
    fields
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

/// What a form asked for, for its idempotency hash (the key and token left out).
fn form_digest(fields: &[(String, String)]) -> String {
    let mut kept: Vec<String> = fields
        .iter()
        .filter(|(k, _)| k != "csrf" && k != "key")
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    kept.sort();
    kept.join("&")
}

fn order_input(channel: Channel) -> CreateOrder {
    CreateOrder {
        channel: channel.as_str().to_owned(),
        store_id: None,
        table_id: None,
        qr: None,
        items: Vec::new(),
        pickup_at: None,
        delivery: None,
        note: None,
        place: false,
        payment: None,
    }
}

fn wallet() -> PayInput {
    PayInput {
        source: Some("wallet".to_owned()),
        amount: None,
        coupon: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The table's shared order (on the table code's landing)
// ---------------------------------------------------------------------------------------------

/// What the table code's landing shows for ordering.
pub struct TableOrdering {
    pub code: String,
    pub order: Option<OrderView>,
    pub menu: Vec<FormSection>,
    pub can_pay: bool,
    pub key: String,
    pub error: Option<String>,
    /// The payer's usable coupons on the order, the best preselected.
    pub coupons: Option<crate::marketing::pages::CouponPicker>,
    /// The page URL the live part is fetched from, and its event stream.
    pub src: String,
    pub events: String,
}

#[derive(Default)]
pub struct TableQuery {
    pub order: Option<String>,
    pub error: Option<String>,
    /// What the add form chose when it was refused (`q.…`, `o.…`), to fill it again.
    pub chosen: Vec<(String, String)>,
}

impl TableQuery {
    pub fn of(uri: &axum::http::Uri) -> TableQuery {
        let pairs: Vec<(String, String)> = uri
            .query()
            .and_then(|q| serde_urlencoded::from_str(q).ok())
            .unwrap_or_default();
        let named = |name: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        TableQuery {
            order: named("order"),
            error: named("error"),
            chosen: chosen_items(&pairs),
        }
    }
}

/// The item choices of an order form (quantities above zero and those products' options), to
/// send a refused form's choices back to it in a link.
fn chosen_items(fields: &[(String, String)]) -> Vec<(String, String)> {
    let ordered: Vec<&str> = fields
        .iter()
        .filter_map(|(k, v)| {
            let product = k.strip_prefix("q.")?;
            let n: i64 = v.trim().parse().ok()?;
            (n > 0).then_some(product)
        })
        .collect();
    fields
        .iter()
        .filter(|(k, _)| {
            let product = k.strip_prefix("q.").or_else(|| {
                k.strip_prefix("o.")
                    .and_then(|r| r.split_once('.'))
                    .map(|(p, _)| p)
            });
            product.is_some_and(|p| ordered.contains(&p))
        })
        .cloned()
        .collect()
}

/// The table's order (the open one, or the one named in `?order=` if it is this table's) and
/// the menu as an order form. `me` is the consumer looking, if any.
pub async fn table_ordering(
    app: &AppState,
    ctx: &PageCtx,
    code: &str,
    store_id: &str,
    table_id: &str,
    me: Option<&str>,
    q: TableQuery,
) -> Result<TableOrdering, PageError> {
    let t = ctx.t;
    let named = match q.order.as_deref().filter(|o| o.starts_with("ord_")) {
        Some(id) => super::store::get(&app.db, id)
            .await
            .map_err(Error::from)
            .or_page(t)?
            .map(OrderData::from_row)
            .transpose()
            .or_page(t)?
            .filter(|o| o.table_id.as_deref() == Some(table_id)),
        None => None,
    };
    if let Some(o) = &named {
        // Never show an order state a crash could still take back (see `Db::durable`).
        app.db.durable_since(o.updated_at).await;
    }
    let order = match named {
        Some(o) => Some(o),
        None => service::at_table(app, table_id).await.or_page(t)?,
    };
    let view = match &order {
        Some(o) => Some(order_view(app, t, o, me).await.or_page(t)?),
        None => None,
    };
    let coupons = match (&order, account(ctx)) {
        (Some(o), Some(p))
            if !o.fully_paid()
                && o.status != Status::Open
                && !o.lines.iter().any(|l| !l.sent)
                && !o.discounts.iter().any(|d| d.code.starts_with("cpn_")) =>
        {
            crate::marketing::pages::picker(
                app,
                t,
                &p.id,
                crate::marketing::pages::Bill {
                    store_id: &o.store_id,
                    channel: o.channel.as_str(),
                    base: o.subtotal - o.discount_total,
                    due: o.due(),
                    currency: &o.currency,
                },
                None,
            )
            .await
            .or_page(t)?
        }
        _ => None,
    };
    let (src, events) = match &view {
        Some(v) => (
            format!("/q/{code}?order={}", v.id),
            format!("/v1/orders/{}/events", v.id),
        ),
        None => (format!("/q/{code}"), format!("/q/{code}/events")),
    };
    Ok(TableOrdering {
        code: code.to_owned(),
        order: view,
        menu: order_form(app, store_id, t, &q.chosen).await.or_page(t)?,
        can_pay: account(ctx).is_some(),
        key: crate::payments::pages::new_form_key(),
        error: ctx.flashed(q.error),
        src,
        events,
        coupons,
    })
}

/// A table code, resolved: (store id, table id).
async fn table_of(app: &AppState, t: T, code: &str) -> Result<(String, String), PageError> {
    match crate::codes::service::resolve(&app.db, code)
        .await
        .or_page(t)?
    {
        Ok(r) if r.row.kind == "table" => match r.row.table_id {
            Some(table) => Ok((r.row.store_id, table)),
            None => Err(not_found(t)),
        },
        _ => Err(not_found(t)),
    }
}

/// The table code's pages act only on that table's orders: an order of another table (or none)
/// is not found from here, though the caller may know its id.
async fn order_at_table(
    app: &AppState,
    ctx: &PageCtx,
    p: &Principal,
    order: &str,
    table: &str,
) -> Result<(), PageError> {
    match service::get(app, p, order).await {
        Ok(o) if o.table_id.as_deref() == Some(table) => Ok(()),
        Ok(_) => Err(not_found(ctx.t)),
        Err(e) if e.kind == crate::error::Kind::NotFound => Err(not_found(ctx.t)),
        Err(e) => Err(PageError::from_error(ctx.t, e)),
    }
}

/// `GET /q/{code}/events`: the table's orders as they change (a phone at a table where nobody
/// has ordered yet learns of the order the others open).
async fn table_events(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
) -> Result<Response, PageError> {
    if consumer(&ctx).is_none() && ctx.principal.is_none() {
        return Err(PageError::from_error(
            ctx.t,
            Error::unauthenticated("authentication_required", "Open the table's code first."),
        ));
    }
    let (_, table) = table_of(&app, ctx.t, &code).await?;
    Ok(super::api::live(&app, move |e| {
        e.field_str("table_id") == Some(table.as_str())
    }))
}

/// `POST /q/{code}/items`: adds the chosen items to the table's shared order.
async fn table_add(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    ctx.check_csrf(field(&fields, "csrf"))?;
    table_of(&app, ctx.t, &code).await?;
    let landing = format!("/q/{code}");
    let Some(p) = ctx.principal.as_ref() else {
        return Ok(ctx.redirect(&landing));
    };
    let result = async {
        let items = items_of(&fields)?;
        if items.is_empty() {
            return Err(Error::invalid(
                "items_required",
                ctx.t.s("order.nothing_chosen"),
            ));
        }
        let mut input = order_input(Channel::DineIn);
        input.qr = Some(code.clone());
        input.items = items;
        let hash = form_hash(&format!("page-table:{code}:{}", form_digest(&fields)));
        service::create(&app, p, input, form_key(field(&fields, "key")), &hash)
            .await
            .map(|_| ())
    }
    .await;
    // A refusal comes back to the form with what was chosen still chosen.
    let kept = chosen_items(&fields);
    let to = if result.is_err() && !kept.is_empty() {
        let query = serde_urlencoded::to_string(&kept).unwrap_or_default();
        format!("{landing}?{query}")
    } else {
        landing
    };
    back(&ctx, &to, result)
}

/// `POST /q/{code}/place`: sends the table's unsent items to the kitchen.
async fn table_place(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    ctx.check_csrf(field(&fields, "csrf"))?;
    let (_, table) = table_of(&app, ctx.t, &code).await?;
    let order = field(&fields, "order").to_owned();
    let to = format!("/q/{code}?order={}", urlencode(&order));
    let Some(p) = ctx.principal.as_ref() else {
        return Ok(ctx.redirect(&to));
    };
    order_at_table(&app, &ctx, p, &order, &table).await?;
    let result = service::place(&app, p, &order, None, &format!("place:{order}"))
        .await
        .map(|_| ());
    back(&ctx, &to, result)
}

/// `POST /q/{code}/order-pay`: pays the table's order (all that is due, or a share) from the
/// wallet; a paid-up order goes to its receipt page.
async fn table_pay(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(code): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    ctx.check_csrf(field(&fields, "csrf"))?;
    let (_, table) = table_of(&app, ctx.t, &code).await?;
    let order = field(&fields, "order").to_owned();
    let to = format!("/q/{code}?order={}", urlencode(&order));
    let Some(p) = account(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&to))));
    };
    order_at_table(&app, &ctx, p, &order, &table).await?;
    let amount = match field(&fields, "amount").trim() {
        "" => None,
        typed => match crate::payments::pages::parse_yuan(typed) {
            Ok(a) => Some(a),
            Err(e) => return back(&ctx, &to, Err(e)),
        },
    };
    let coupon = Some(field(&fields, "coupon").trim().to_owned()).filter(|c| !c.is_empty());
    let input = PayInput {
        source: Some("wallet".to_owned()),
        amount,
        coupon: coupon.clone(),
    };
    let hash = match &coupon {
        Some(c) => form_hash(&format!("page-order-pay:{order}:{amount:?}:{c}")),
        None => form_hash(&format!("page-order-pay:{order}:{amount:?}")),
    };
    if let Err(e) = service::pay(
        &app,
        p,
        &order,
        input,
        form_key(field(&fields, "key")),
        &hash,
    )
    .await
    {
        return back(&ctx, &to, Err(e));
    }
    let paid = service::get(&app, p, &order).await.or_page(ctx.t)?;
    if paid.fully_paid() {
        return Ok(ctx.redirect(&format!("/me/orders/{}", paid.id)));
    }
    Ok(ctx.redirect(&to))
}

// ---------------------------------------------------------------------------------------------
// One order, and the consumer's orders
// ---------------------------------------------------------------------------------------------

/// A code the consumer shows, rendered: `live` with its QR, or `used` / `expired` (no QR).
struct ShownCode {
    kind: &'static str,
    state: &'static str,
    qr_svg: String,
    text: String,
}

#[derive(Template)]
#[template(path = "orders/order.html")]
struct OrderPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    order: OrderView,
    store_name: String,
    code: Option<ShownCode>,
}

/// `GET /me/orders/{id}`: the order, its status live; a paid pickup order shows its number and
/// pickup code, a paid scan-and-go order its exit pass.
async fn order_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(p) = consumer(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&ctx.path))));
    };
    let t = ctx.t;
    let order = match service::get(&app, p, &id).await {
        Ok(o) => o,
        Err(e) if e.kind == Kind::NotFound => return Err(not_found(t)),
        Err(e) => return Err(PageError::from_error(t, e)),
    };
    let owner = order.user_id.as_deref() == Some(p.id.as_str());
    let wants_code = owner
        && order.fully_paid()
        && match order.channel {
            Channel::Pickup => order.status.in_kitchen(),
            Channel::ScanAndGo => order.status == Status::Ready,
            _ => false,
        };
    let code = if wants_code {
        let kind = if order.channel == Channel::ScanAndGo {
            "order.exit_pass"
        } else {
            "order.pickup_code"
        };
        let blank = |state| ShownCode {
            kind,
            state,
            qr_svg: String::new(),
            text: String::new(),
        };
        Some(
            match service::shown_code(&app, p, &order.id).await.or_page(t)? {
                service::CodeState::Live(issued) => ShownCode {
                    kind,
                    state: "live",
                    qr_svg: o2o_codes::svg(&issued.code)
                        .map_err(|e| PageError::internal(t, anyhow::anyhow!("{e}")))?,
                    text: issued.code,
                },
                service::CodeState::Used => blank("used"),
                service::CodeState::Expired => blank("expired"),
            },
        )
    } else {
        None
    };
    let store_name = crate::stores::service::find_store(&app.db, &order.store_id)
        .await
        .or_page(t)?
        .map(|s| s.name)
        .unwrap_or_default();
    let view = order_view(&app, t, &order, Some(&p.id)).await.or_page(t)?;
    Ok(no_store(ctx.render(&OrderPage {
        t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        csrf: &ctx.csrf,
        order: view,
        store_name,
        code,
    })?))
}

#[derive(Deserialize)]
struct CodeForm {
    csrf: String,
}

/// `POST /me/orders/{id}/code`: a new code in place of one that expired (a live one stays as it
/// is; a used one is not replaced).
async fn renew_code(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<CodeForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let to = format!("/me/orders/{}", urlencode(&id));
    let Some(p) = consumer(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&to))));
    };
    match service::code(&app, p, &id).await {
        Ok(_) => Ok(ctx.redirect(&to)),
        Err(e) if e.kind == Kind::NotFound => Err(not_found(ctx.t)),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        // Used, or no code to show any more: the page says how the order stands.
        Err(_) => Ok(ctx.redirect(&to)),
    }
}

struct ListedOrder {
    id: String,
    channel_key: &'static str,
    status_key: &'static str,
    total: String,
    items: String,
    pickup_number: Option<String>,
}

#[derive(Template)]
#[template(path = "orders/mine.html")]
struct MinePage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    orders: Vec<ListedOrder>,
}

/// `GET /me/orders`: the consumer's orders, newest first.
async fn my_orders(State(app): State<AppState>, ctx: PageCtx) -> Result<Response, PageError> {
    let Some(p) = consumer(&ctx) else {
        return Ok(ctx.redirect("/login?next=/me/orders"));
    };
    let t = ctx.t;
    let list = service::mine(&app, &p.id, &crate::http::Page::first(MY_ORDERS_SHOWN))
        .await
        .or_page(t)?;
    let orders = list
        .data
        .into_iter()
        .map(|o| ListedOrder {
            channel_key: match o.channel {
                Channel::DineIn => "channel.dine_in",
                Channel::Pickup => "channel.pickup",
                Channel::Delivery => "channel.delivery",
                Channel::ScanAndGo => "channel.scan_and_go",
            },
            status_key: match o.status {
                Status::Open => "ostatus.open",
                Status::PendingPayment => "ostatus.pending_payment",
                Status::Placed => "ostatus.placed",
                Status::Accepted => "ostatus.accepted",
                Status::Preparing => "ostatus.preparing",
                Status::Ready => "ostatus.ready",
                Status::Completed => "ostatus.completed",
                Status::Canceled => "ostatus.canceled",
            },
            total: shown_price(o.total, &o.currency),
            items: o
                .items
                .iter()
                .map(|i| format!("{} ×{}", local(t, &i.name_zh, &i.name_en), i.quantity))
                .collect::<Vec<_>>()
                .join("、"),
            pickup_number: o.pickup_number,
            id: o.id,
        })
        .collect();
    Ok(no_store(ctx.render(&MinePage {
        t,
        logged_in: ctx.logged_in(),
        path: &ctx.path,
        orders,
    })?))
}

// ---------------------------------------------------------------------------------------------
// Ordering ahead: pickup in a time slot, or delivery to an address; paid from the wallet
// ---------------------------------------------------------------------------------------------
//
// The two forms are one page with a different middle (a pickup slot, or an address and its
// quote): the same menu filled with what was chosen, the same coupon choice, the same placing of
// the order. A refused form comes back as the page itself, filled as it was sent, with the
// refusal next to the field it is about.

/// The pickup slots offered in the store's time zone: every [`SLOT_MINUTES`] from the kitchen's
/// preparation time from now until the day ends, where the store is open; when none is left
/// today (late at night, after closing), those of the next day the store opens, within the
/// week an order may be placed ahead, labelled with their date.
/// (value as RFC 3339, label as local HH:MM, or MM-DD HH:MM on a later day)
pub fn pickup_slots(
    opening_hours: &str,
    timezone: &str,
    prep_minutes: i64,
    now: i64,
) -> Vec<(String, String)> {
    let Ok(tz) = jiff::tz::TimeZone::get(timezone) else {
        return Vec::new();
    };
    let earliest = now + prep_minutes * 60_000_000;
    let Ok(first) = jiff::Timestamp::from_microsecond(earliest) else {
        return Vec::new();
    };
    let Ok(mut day) = first.to_zoned(tz.clone()).start_of_day() else {
        return Vec::new();
    };
    let today = jiff::Timestamp::from_microsecond(now)
        .map(|t| t.to_zoned(tz.clone()).date())
        .unwrap_or(day.date());
    let slot_us = SLOT_MINUTES * 60_000_000;
    for _ in 0..7 {
        let later_day = day.date() != today;
        let day_start = day.timestamp().as_microsecond();
        let Ok(next) = day.tomorrow() else {
            break;
        };
        let day_end = next.timestamp().as_microsecond();
        let mut at =
            day_start + (earliest.max(day_start) - day_start + slot_us - 1) / slot_us * slot_us;
        let mut slots = Vec::new();
        while at < day_end {
            if crate::stores::hours::is_open_at(opening_hours, timezone, at)
                && let Ok(ts) = jiff::Timestamp::from_microsecond(at)
            {
                let label = if later_day {
                    ts.to_zoned(tz.clone()).strftime("%m-%d %H:%M").to_string()
                } else {
                    local_clock(at, timezone)
                };
                slots.push((ts.to_string(), label));
            }
            at += slot_us;
        }
        if !slots.is_empty() {
            return slots;
        }
        day = next;
    }
    Vec::new()
}

/// A refused ordering form's refusal, next to the field it is about.
pub struct FormError {
    /// Where: `form` (above the form), `menu`, `slot`, `address`, `coordinates`,
    /// `contact_phone`, `note`, `coupon` or `pay` (by the button); `item` when it is about one
    /// product, shown on that product.
    pub at: &'static str,
    pub text: String,
    /// Topping up the wallet would help: the refusal links to it.
    pub top_up: bool,
}

/// Where a refusal belongs on an ordering form, by the field it names (and, for one product's
/// refusal, which product).
fn refusal_at(e: &Error, items: &[ItemInput]) -> (&'static str, Option<String>) {
    let param = e.param.as_deref().unwrap_or("");
    if let Some(rest) = param.strip_prefix("items[") {
        let product = rest
            .split_once(']')
            .and_then(|(i, _)| i.parse::<usize>().ok())
            .and_then(|i| items.get(i))
            .and_then(|item| item.product_id.clone());
        return match product {
            Some(p) => ("item", Some(p)),
            None => ("menu", None),
        };
    }
    let code = e.code.as_ref();
    let at = match param {
        _ if code == "insufficient_funds" => "pay",
        "items" | "quantity" => "menu",
        "pickup_at" => "slot",
        "delivery.address" => "address",
        "delivery.contact_phone" => "contact_phone",
        "note" => "note",
        p if p.starts_with("delivery") => "coordinates",
        _ if code == "address_required" => "address",
        _ if matches!(code, "coordinates_invalid" | "outside_delivery_area") => "coordinates",
        p if code.starts_with("coupon") || p.contains("coupon") => "coupon",
        p if p.starts_with("payment") => "pay",
        _ => "form",
    };
    (at, None)
}

/// The coupon choice on an ordering form: the best one (the default), one of the consumer's
/// coupons good for the channel here, or none.
pub struct CouponChoices {
    pub best: bool,
    pub none: bool,
    /// (id, name and rule, chosen)
    pub list: Vec<(String, String, bool)>,
}

/// The consumer's coupons that could apply to an order of `channel` at the store (minimum spend
/// is checked when ordering, against what was chosen), with `chosen` (a form's `coupon` value:
/// `best`, an id, or empty for none) marked.
async fn coupon_choices(
    app: &AppState,
    t: T,
    user_id: &str,
    store_id: &str,
    channel: Channel,
    chosen: &str,
) -> crate::error::Result<CouponChoices> {
    let list = crate::marketing::service::usable(
        app,
        user_id,
        store_id,
        channel.as_str(),
        crate::payments::service::MAX_PAYMENT,
    )
    .await?
    .into_iter()
    .map(|(c, _)| {
        let rule = crate::marketing::pages::rule_text(t, &c.template);
        let picked = c.id == chosen;
        (c.id, format!("{} · {rule}", c.template.name), picked)
    })
    .collect();
    Ok(CouponChoices {
        best: chosen == "best",
        none: chosen.is_empty(),
        list,
    })
}

/// The coupon a checkout form chose: none, one by id, or `best`: the best of the consumer's
/// coupons for what was chosen.
async fn chosen_coupon(
    app: &AppState,
    user_id: &str,
    store_id: &str,
    channel: Channel,
    items: &[ItemInput],
    raw: &str,
) -> Result<Option<String>, Error> {
    Ok(match raw.trim() {
        "" => None,
        "best" => {
            let subtotal = service::subtotal(app, store_id, items).await?;
            crate::marketing::service::usable(app, user_id, store_id, channel.as_str(), subtotal)
                .await?
                .into_iter()
                .next()
                .map(|(c, _)| c.id)
        }
        chosen => Some(chosen.to_owned()),
    })
}

async fn find_store(app: &AppState, t: T, id: &str) -> Result<Store, PageError> {
    crate::stores::service::find_store(&app.db, id)
        .await
        .or_page(t)?
        .ok_or_else(|| PageError {
            status: StatusCode::NOT_FOUND,
            message: t.s("store.not_found").to_owned(),
            t,
        })
}

/// The page of an ordering channel: `pickup` or `delivery`.
fn ahead_page(channel: Channel) -> &'static str {
    match channel {
        Channel::Delivery => "delivery",
        _ => "pickup",
    }
}

#[derive(Template)]
#[template(path = "orders/pickup.html")]
struct PickupPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    store: Store,
    order_menu: Vec<FormSection>,
    /// (value as RFC 3339, local HH:MM, chosen)
    slots: Vec<(String, String, bool)>,
    key: String,
    error: Option<FormError>,
    coupons: CouponChoices,
}

#[derive(Template)]
#[template(path = "orders/delivery.html")]
struct DeliveryPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    store: Store,
    order_menu: Vec<FormSection>,
    /// The store's terms: radius, fee, minimum.
    radius: String,
    fee: String,
    min_order: String,
    at: AddressFields,
    note: String,
    quote: QuoteView,
    key: String,
    error: Option<FormError>,
    coupons: CouponChoices,
}

/// The pickup or delivery page for the consumer, its form filled from `fields` (what was sent,
/// or a link's query), with `refused` said next to its field (answered with the refusal's status).
async fn ordering_page(
    app: &AppState,
    ctx: &PageCtx,
    store: Store,
    channel: Channel,
    fields: &[(String, String)],
    refused: Option<Error>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let Some(p) = account(ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&ctx.path))));
    };
    let settings = super::store::settings(&app.db, &store.id)
        .await
        .map_err(Error::from)
        .or_page(t)?;
    let mut order_menu = order_form(app, &store.id, t, fields).await.or_page(t)?;
    let mut status = StatusCode::OK;
    let error = match refused {
        Some(e) => {
            status = crate::http::error::status_of(e.kind).0;
            let items = items_of(fields).unwrap_or_default();
            let (at, product) = refusal_at(&e, &items);
            let text = match channel {
                Channel::Delivery => delivery_refusal(t, &e, &store, &settings),
                _ => refusal_text(t, &e),
            };
            let on_item = product.and_then(|id| {
                order_menu
                    .iter_mut()
                    .flat_map(|s| s.items.iter_mut())
                    .find(|item| item.id == id)
            });
            match on_item {
                Some(item) => {
                    item.error = Some(text.clone());
                    Some(FormError {
                        at,
                        text,
                        top_up: false,
                    })
                }
                None => Some(FormError {
                    at: if at == "item" { "menu" } else { at },
                    top_up: e.code == "insufficient_funds",
                    text,
                }),
            }
        }
        None => ctx
            .flashed(Some(field(fields, "error").to_owned()))
            .map(|text| FormError {
                at: "form",
                text,
                top_up: false,
            }),
    };
    let chosen = if fields.iter().any(|(k, _)| k == "coupon") {
        field(fields, "coupon").trim()
    } else {
        "best"
    };
    let coupons = coupon_choices(app, t, &p.id, &store.id, channel, chosen)
        .await
        .or_page(t)?;
    let key = crate::payments::pages::new_form_key();
    let response = match channel {
        Channel::Delivery => {
            let quote = delivery_quote(app, t, &store, &settings, fields).await?;
            ctx.render(&DeliveryPage {
                t,
                logged_in: true,
                path: &ctx.path,
                csrf: &ctx.csrf,
                radius: format!("{:.1}", store.delivery_radius_m as f64 / 1000.0),
                fee: shown_price(settings.delivery_fee, "CNY"),
                min_order: shown_price(settings.min_order, "CNY"),
                at: AddressFields::of(fields),
                note: field(fields, "note").chars().take(200).collect(),
                store,
                order_menu,
                quote,
                key,
                error,
                coupons,
            })?
        }
        _ => {
            let chosen_slot = field(fields, "pickup_at").trim();
            let slots = pickup_slots(
                &store.opening_hours,
                &store.timezone,
                settings.prep_minutes,
                now_us(),
            )
            .into_iter()
            .map(|(value, label)| {
                let picked = value == chosen_slot;
                (value, label, picked)
            })
            .collect();
            ctx.render(&PickupPage {
                t,
                logged_in: true,
                path: &ctx.path,
                csrf: &ctx.csrf,
                store,
                order_menu,
                slots,
                key,
                error,
                coupons,
            })?
        }
    };
    let mut response = no_store(response);
    *response.status_mut() = status;
    Ok(response)
}

/// Orders the chosen items from a pickup or delivery form, paid from the wallet: to the order's
/// page, or back to the form, filled as it was sent, with the refusal.
async fn order_ahead(
    app: &AppState,
    ctx: &PageCtx,
    id: &str,
    channel: Channel,
    fields: &[(String, String)],
) -> Result<Response, PageError> {
    ctx.check_csrf(field(fields, "csrf"))?;
    let store = find_store(app, ctx.t, id).await?;
    let page = ahead_page(channel);
    let Some(p) = account(ctx) else {
        let here = format!("/stores/{}/{page}", store.id);
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&here))));
    };
    let result = async {
        let items = items_of(fields)?;
        if items.is_empty() {
            return Err(
                Error::invalid("items_required", ctx.t.s("order.nothing_chosen")).param("items"),
            );
        }
        let mut input = order_input(channel);
        input.store_id = Some(store.id.clone());
        if channel == Channel::Delivery {
            input.delivery = Some(AddressFields::sent(fields).parse()?);
            input.note = Some(field(fields, "note").to_owned());
        } else {
            input.pickup_at =
                Some(field(fields, "pickup_at").trim().to_owned()).filter(|s| !s.is_empty());
        }
        let mut payment = wallet();
        payment.coupon = chosen_coupon(
            app,
            &p.id,
            &store.id,
            channel,
            &items,
            field(fields, "coupon"),
        )
        .await?;
        input.items = items;
        input.payment = Some(payment);
        let hash = form_hash(&format!("page-{page}:{}:{}", store.id, form_digest(fields)));
        let reply = service::create(app, p, input, form_key(field(fields, "key")), &hash).await?;
        id_of(&reply)
    }
    .await;
    match result {
        Ok(order) => Ok(ctx.redirect(&format!("/me/orders/{order}"))),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => ordering_page(app, ctx, store, channel, fields, Some(e)).await,
    }
}

/// `GET /stores/{id}/pickup`: the menu as an order form, a pickup time, and pay.
async fn pickup_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let store = find_store(&app, ctx.t, &id).await?;
    ordering_page(&app, &ctx, store, Channel::Pickup, &fields, None).await
}

/// `POST /stores/{id}/pickup`: orders the chosen items for the slot, paid from the wallet.
async fn pickup_order(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    order_ahead(&app, &ctx, &id, Channel::Pickup, &fields).await
}

/// `GET /stores/{id}/delivery`: the menu as an order form, where to deliver, the quote, pay.
async fn delivery_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let store = find_store(&app, ctx.t, &id).await?;
    ordering_page(&app, &ctx, store, Channel::Delivery, &fields, None).await
}

/// `POST /stores/{id}/delivery`: orders the chosen items to the address, paid from the wallet.
async fn delivery_order(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    order_ahead(&app, &ctx, &id, Channel::Delivery, &fields).await
}

/// The quote part of the delivery page: what the chosen items to the typed address come to and
/// when they would arrive, or why they cannot be delivered.
pub struct QuoteView {
    /// `none` (no address yet), `ok` or `refused`.
    pub state: &'static str,
    pub refusal: Option<String>,
    pub subtotal: String,
    pub fee: String,
    pub total: String,
    pub min_order: String,
    /// What the order still needs to reach the minimum, if anything.
    pub short_by: Option<String>,
    pub distance: String,
    pub minutes: i64,
    pub arrive_at: String,
}

impl QuoteView {
    fn none() -> QuoteView {
        QuoteView {
            state: "none",
            refusal: None,
            subtotal: String::new(),
            fee: String::new(),
            total: String::new(),
            min_order: String::new(),
            short_by: None,
            distance: String::new(),
            minutes: 0,
            arrive_at: String::new(),
        }
    }
}

/// A delivery refusal as the page says it, with the store's own numbers.
fn delivery_refusal(t: T, e: &Error, store: &Store, settings: &OrderSettings) -> String {
    let km = format!("{:.1}", store.delivery_radius_m as f64 / 1000.0);
    match e.code.as_ref() {
        "outside_delivery_area" => t.s("delivery.outside").replace("{km}", &km),
        "below_minimum_order" => t
            .s("delivery.below_minimum")
            .replace("{min}", &shown_price(settings.min_order, "CNY")),
        "delivery_unavailable" => t.s("delivery.unavailable").to_owned(),
        "coordinates_invalid" => t.s("delivery.coordinates_invalid").to_owned(),
        "address_required" => t.s("delivery.address_required").to_owned(),
        _ => refusal_text(t, e),
    }
}

/// Where a delivery page's form says to deliver (blank fields: nothing to quote yet).
struct AddressFields {
    address: String,
    lat: String,
    lng: String,
    contact_phone: String,
}

impl AddressFields {
    /// The fields as typed, to show again on the form (each cut to 200 characters).
    fn of(fields: &[(String, String)]) -> AddressFields {
        AddressFields::cut(fields, 200)
    }

    /// The fields as sent, whole, to check and use: what is too long is refused, not cut.
    fn sent(fields: &[(String, String)]) -> AddressFields {
        AddressFields::cut(fields, usize::MAX)
    }

    fn cut(fields: &[(String, String)], at_most: usize) -> AddressFields {
        let f = |name: &str| {
            field(fields, name)
                .trim()
                .chars()
                .take(at_most)
                .collect::<String>()
        };
        AddressFields {
            address: f("address"),
            lat: f("lat"),
            lng: f("lng"),
            contact_phone: f("contact_phone"),
        }
    }

    fn is_blank(&self) -> bool {
        self.lat.is_empty() || self.lng.is_empty()
    }

    /// The address as the API takes it; coordinates that are not numbers are refused.
    fn parse(&self) -> Result<DeliveryAddress, Error> {
        let number = |raw: &str, param: &'static str| {
            raw.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| {
                    Error::invalid(
                        "coordinates_invalid",
                        "lat and lng must be numbers in degrees.",
                    )
                    .param(param)
                })
        };
        Ok(DeliveryAddress {
            address: self.address.clone(),
            lat: number(&self.lat, "delivery.lat")?,
            lng: number(&self.lng, "delivery.lng")?,
            contact_phone: Some(self.contact_phone.clone()).filter(|p| !p.is_empty()),
            distance_m: None,
        })
    }
}

/// The quote for what a delivery form asks (the server's own rules, via the quote service).
async fn delivery_quote(
    app: &AppState,
    t: T,
    store: &Store,
    settings: &OrderSettings,
    fields: &[(String, String)],
) -> Result<QuoteView, PageError> {
    let at = AddressFields::sent(fields);
    if at.is_blank() {
        return Ok(QuoteView::none());
    }
    let refused = |e: &Error| QuoteView {
        state: "refused",
        refusal: Some(delivery_refusal(t, e, store, settings)),
        ..QuoteView::none()
    };
    let result = async {
        let mut address = at.parse()?;
        if address.address.is_empty() {
            // The quote needs only the point; the address text is asked for when ordering.
            address.address = "-".to_owned();
        }
        let items = items_of(fields)?;
        service::quote(
            app,
            QuoteRequest {
                channel: Channel::Delivery.as_str().to_owned(),
                store_id: Some(store.id.clone()),
                items,
                delivery: address,
            },
        )
        .await
    }
    .await;
    match result {
        Ok(q) => {
            let arrive_us = now_us() + q.promise_minutes * 60_000_000;
            Ok(QuoteView {
                state: "ok",
                refusal: None,
                subtotal: shown_price(q.subtotal, &q.currency),
                fee: shown_price(q.delivery_fee, &q.currency),
                total: shown_price(q.total, &q.currency),
                min_order: shown_price(q.min_order, &q.currency),
                short_by: (q.below_minimum_by > 0)
                    .then(|| shown_price(q.below_minimum_by, &q.currency)),
                distance: distance_text(q.distance_m),
                minutes: q.promise_minutes,
                arrive_at: local_clock(arrive_us, &store.timezone),
            })
        }
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(t, e)),
        Err(e) => Ok(refused(&e)),
    }
}

#[derive(Template)]
#[template(path = "orders/delivery_quote.html")]
struct DeliveryQuotePart {
    t: T,
    quote: QuoteView,
}

/// `GET /stores/{id}/delivery/quote?…`: the quote part alone, for the page's script to show as
/// the consumer chooses items and types the address.
async fn delivery_quote_part(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(fields): Query<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let store = find_store(&app, t, &id).await?;
    let settings = super::store::settings(&app.db, &store.id)
        .await
        .map_err(Error::from)
        .or_page(t)?;
    let quote = delivery_quote(&app, t, &store, &settings, &fields).await?;
    Ok(no_store(ctx.render(&DeliveryQuotePart { t, quote })?))
}

// ---------------------------------------------------------------------------------------------
// Scan and go
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "orders/scan.html")]
struct ScanPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    store: Store,
    basket: Option<OrderView>,
    /// The open basket, even while it is empty.
    order_id: Option<String>,
    key: String,
    error: Option<String>,
    /// The session's token for the JSON API, which the camera's upload sends.
    api_csrf: String,
    /// The barcode field as a refused scan left it.
    barcode: String,
}

#[derive(Deserialize)]
struct ScanQuery {
    order: Option<String>,
    error: Option<String>,
    /// The code the API answered a photo with (the page says it in its language).
    photo_error: Option<String>,
    /// The barcode a refused scan typed, to show it again.
    barcode: Option<String>,
}

/// What the page says when a photo added nothing, by the API's error code.
fn photo_refusal(t: T, code: &str) -> String {
    t.s(match code {
        "barcode_not_found" => "scan.no_barcode",
        "product_not_found" => "scan.unknown_product",
        "unsupported_image_type" | "invalid_image" | "invalid_body" => "scan.bad_photo",
        "body_too_large" => "scan.too_large",
        "store_closed" => "error.store_closed",
        "product_sold_out" => "error.sold_out",
        _ => "scan.photo_failed",
    })
    .to_owned()
}

/// The consumer's open scan-and-go basket at this store, by id.
async fn basket(
    app: &AppState,
    p: &Principal,
    store_id: &str,
    order_id: &str,
) -> Result<Option<OrderData>, Error> {
    match service::get(app, p, order_id).await {
        Ok(o)
            if o.channel == Channel::ScanAndGo
                && o.store_id == store_id
                && o.user_id.as_deref() == Some(p.id.as_str()) =>
        {
            Ok(Some(o))
        }
        Ok(_) => Ok(None),
        Err(e) if e.kind == Kind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// `GET /stores/{id}/scan-and-go?order=`: type (or scan) barcodes, see the basket, pay.
async fn scan_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(q): Query<ScanQuery>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let store = find_store(&app, t, &id).await?;
    let Some(p) = account(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&ctx.path))));
    };
    let order = match q.order.as_deref().filter(|o| !o.is_empty()) {
        Some(oid) => match basket(&app, p, &store.id, oid).await.or_page(t)? {
            Some(o) => Some(o),
            None => return Err(not_found(t)),
        },
        None => None,
    };
    if let Some(o) = &order
        && o.status != Status::Open
    {
        return Ok(ctx.redirect(&format!("/me/orders/{}", o.id)));
    }
    // A basket opened by a photo that showed no barcode is still empty: shown as empty, kept
    // for the next scan.
    let basket = match &order {
        Some(o) if !o.lines.is_empty() => {
            Some(order_view(&app, t, o, Some(&p.id)).await.or_page(t)?)
        }
        _ => None,
    };
    Ok(no_store(
        ctx.render(&ScanPage {
            t,
            logged_in: true,
            path: &ctx.path,
            csrf: &ctx.csrf,
            store,
            basket,
            order_id: order.map(|o| o.id),
            key: crate::payments::pages::new_form_key(),
            error: match q.photo_error.as_deref().filter(|c| !c.is_empty()) {
                Some(code) => Some(photo_refusal(t, code)),
                None => ctx.flashed(q.error),
            },
            api_csrf: p.csrf.clone().unwrap_or_default(),
            barcode: q
                .barcode
                .unwrap_or_default()
                .chars()
                .filter(char::is_ascii_digit)
                .take(20)
                .collect(),
        })?,
    ))
}

#[derive(Deserialize)]
struct ScanForm {
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    order: String,
    #[serde(default)]
    barcode: String,
}

/// `POST /stores/{id}/scan-and-go/items`: adds the product with this barcode to the basket
/// (the first one opens the basket).
async fn scan_add(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<ScanForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let store = find_store(&app, ctx.t, &id).await?;
    let mut here = format!("/stores/{}/scan-and-go", store.id);
    if !form.order.is_empty() {
        here.push_str(&format!("?order={}", urlencode(&form.order)));
    }
    let Some(p) = account(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&here))));
    };
    let barcode: String = form
        .barcode
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    let item = ItemInput {
        product_id: None,
        barcode: Some(barcode.clone()),
        quantity: Some(1),
        options: BTreeMap::new(),
    };
    let key = form_key(&form.key);
    let result = if form.order.is_empty() {
        let mut input = order_input(Channel::ScanAndGo);
        input.store_id = Some(store.id.clone());
        input.items = vec![item];
        let hash = form_hash(&format!("page-scan:{}:{barcode}", store.id));
        service::create(&app, p, input, key, &hash)
            .await
            .and_then(|r| id_of(&r))
    } else {
        let hash = form_hash(&format!("page-scan:{}:{barcode}", form.order));
        let input = AddItems {
            items: vec![item],
            place: false,
        };
        service::add_items(&app, p, &form.order, input, key, &hash)
            .await
            .map(|_| form.order.clone())
    };
    match result {
        Ok(order) => Ok(ctx.redirect(&format!(
            "/stores/{}/scan-and-go?order={}",
            store.id,
            urlencode(&order)
        ))),
        Err(e) => {
            let sep = if here.contains('?') { '&' } else { '?' };
            back(
                &ctx,
                &format!("{here}{sep}barcode={}", urlencode(&barcode)),
                Err(e),
            )
        }
    }
}

/// `POST /stores/{id}/scan-and-go/pay`: pays the basket from the wallet; the order page then
/// shows the exit pass.
async fn scan_pay(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<ScanForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let store = find_store(&app, ctx.t, &id).await?;
    let here = format!(
        "/stores/{}/scan-and-go?order={}",
        store.id,
        urlencode(&form.order)
    );
    let Some(p) = account(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={}", urlencode(&here))));
    };
    if basket(&app, p, &store.id, &form.order)
        .await
        .or_page(ctx.t)?
        .is_none()
    {
        return Err(not_found(ctx.t));
    }
    let hash = form_hash(&format!("page-scan-pay:{}", form.order));
    match service::pay(&app, p, &form.order, wallet(), form_key(&form.key), &hash).await {
        Ok(_) => Ok(ctx.redirect(&format!("/me/orders/{}", urlencode(&form.order)))),
        Err(e) => back(&ctx, &here, Err(e)),
    }
}

// ---------------------------------------------------------------------------------------------
// The kitchen board, the ticket, the counter's handover
// ---------------------------------------------------------------------------------------------

struct BoardColumn {
    status: &'static str,
    title: &'static str,
    /// The move each card in this column offers: (step, label key).
    step: Option<(&'static str, &'static str)>,
    orders: Vec<OrderView>,
}

#[derive(Template)]
#[template(path = "orders/kitchen.html")]
struct KitchenPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    stores: Vec<Store>,
    store: Store,
    columns: Vec<BoardColumn>,
    error: Option<String>,
}

#[derive(Deserialize)]
struct BoardQuery {
    store_id: Option<String>,
    error: Option<String>,
}

/// `GET /console/kitchen?store_id=`: the store's orders in the kitchen, by status, live.
async fn kitchen(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<BoardQuery>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let Some((_, scope)) = staff(&ctx)? else {
        return Ok(ctx.redirect("/console/login"));
    };
    let stores =
        crate::stores::service::list_own_stores(&app.db, &scope, &crate::http::Page::first(100))
            .await
            .or_page(t)?
            .data;
    let store = match q.store_id.as_deref() {
        Some(id) => stores
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| not_found(t))?,
        None => stores.first().cloned().ok_or_else(|| PageError {
            status: StatusCode::NOT_FOUND,
            message: t.s("console.no_stores").to_owned(),
            t,
        })?,
    };
    let rows = super::store::of_store(
        &app.db,
        scope.merchant_id(),
        &store.id,
        now_us() - BOARD_HOURS * 3_600_000_000,
        500,
    )
    .await
    .map_err(Error::from)
    .or_page(t)?;
    let mut columns = vec![
        BoardColumn {
            status: "placed",
            title: "kitchen.col.placed",
            step: Some(("accept", "kitchen.accept")),
            orders: Vec::new(),
        },
        BoardColumn {
            status: "accepted",
            title: "kitchen.col.accepted",
            step: Some(("start", "kitchen.start")),
            orders: Vec::new(),
        },
        BoardColumn {
            status: "preparing",
            title: "kitchen.col.preparing",
            step: Some(("ready", "kitchen.ready")),
            orders: Vec::new(),
        },
        BoardColumn {
            status: "ready",
            title: "kitchen.col.ready",
            step: Some(("complete", "kitchen.complete")),
            orders: Vec::new(),
        },
    ];
    for row in rows {
        let o = OrderData::from_row(row).or_page(t)?;
        if !o.status.in_kitchen() || o.channel == Channel::ScanAndGo {
            continue;
        }
        let Some(col) = columns.iter_mut().find(|c| c.status == o.status.as_str()) else {
            continue;
        };
        col.orders
            .push(order_view(&app, t, &o, None).await.or_page(t)?);
    }
    let path = format!("/console/kitchen?store_id={}", store.id);
    Ok(no_store(ctx.render(&KitchenPage {
        t,
        path: &path,
        csrf: &ctx.csrf,
        stores,
        store,
        columns,
        error: ctx.flashed(q.error),
    })?))
}

#[derive(Deserialize)]
struct StepForm {
    csrf: String,
    step: String,
    #[serde(default)]
    store_id: String,
}

/// `POST /console/orders/{id}/step`: accept, start, ready or complete, from the board.
async fn board_step(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<StepForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some((p, _)) = staff(&ctx)? else {
        return Ok(ctx.redirect("/console/login"));
    };
    let to = format!("/console/kitchen?store_id={}", urlencode(&form.store_id));
    let step = match form.step.as_str() {
        "accept" => Step::Accept,
        "start" => Step::Start,
        "ready" => Step::Ready,
        "complete" => Step::Complete,
        _ => {
            return back(
                &ctx,
                &to,
                Err(Error::invalid("step_invalid", "No such step.").param("step")),
            );
        }
    };
    let hash = format!("page-step:{}:{id}", form.step);
    let result = service::step(&app, p, &id, step, None, &hash)
        .await
        .map(|_| ());
    back(&ctx, &to, result)
}

#[derive(Template)]
#[template(path = "orders/ticket.html")]
struct TicketPage {
    t: T,
    order: OrderView,
    store_name: String,
    printed_at: String,
}

/// `GET /console/orders/{id}/ticket`: an 80 mm kitchen ticket.
async fn ticket(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let Some((p, _)) = staff(&ctx)? else {
        return Ok(ctx.redirect("/console/login"));
    };
    let order = match service::get(&app, p, &id).await {
        Ok(o) => o,
        Err(e) if e.kind == Kind::NotFound => return Err(not_found(t)),
        Err(e) => return Err(PageError::from_error(t, e)),
    };
    let store = crate::stores::service::find_store(&app.db, &order.store_id)
        .await
        .or_page(t)?;
    let tz = store
        .as_ref()
        .map(|s| s.timezone.clone())
        .unwrap_or_else(|| "Asia/Shanghai".to_owned());
    let view = order_view(&app, t, &order, None).await.or_page(t)?;
    Ok(no_store(ctx.render(&TicketPage {
        t,
        order: view,
        store_name: store.map(|s| s.name).unwrap_or_default(),
        printed_at: local_clock(now_us(), &tz),
    })?))
}

#[derive(Deserialize)]
struct HandoverForm {
    csrf: String,
    store_id: String,
    code: String,
}

/// `POST /console/counter/handover`: a pickup code scanned or a pickup number typed at the
/// counter; the order is handed over (completed) and the counter says which.
async fn counter_handover(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<HandoverForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some((p, scope)) = staff(&ctx)? else {
        return Ok(ctx.redirect("/console/login"));
    };
    let to = format!("/console/counter?store_id={}", urlencode(&form.store_id));
    let code: String = form.code.chars().filter(|c| !c.is_whitespace()).collect();
    match service::handover(&app, p, &scope, &form.store_id, Handover { code }).await {
        Ok(done) => {
            let shown = done.order.pickup_number.clone().unwrap_or(done.order.id);
            Ok(ctx.redirect(&format!(
                "{to}&handed_over={}",
                urlencode(&ctx.flash(&shown))
            )))
        }
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => Ok(ctx.redirect(&format!(
            "{to}&handover_error={}",
            urlencode(&ctx.flash(&refusal_text(ctx.t, &e)))
        ))),
    }
}

// ---------------------------------------------------------------------------------------------
// The console's delivery settings of a store
// ---------------------------------------------------------------------------------------------

#[derive(Template)]
#[template(path = "orders/delivery_settings.html")]
struct DeliverySettingsPage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    store: Store,
    fee: String,
    min_order: String,
    promise_minutes: String,
    prep_minutes: i64,
    can_manage: bool,
    saved: bool,
    error: Option<String>,
}

#[derive(Deserialize)]
struct SettingsQuery {
    saved: Option<String>,
    error: Option<String>,
}

fn yuan(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

/// `GET /console/stores/{id}/delivery`: the store's delivery radius, fee, minimum and promise.
async fn delivery_settings(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(q): Query<SettingsQuery>,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let Some((p, scope)) = staff(&ctx)? else {
        return Ok(ctx.redirect("/console/login"));
    };
    let store = match crate::stores::service::get_own_store(&app.db, &scope, &id).await {
        Ok(s) => s,
        Err(e) if e.kind == Kind::NotFound => return Err(not_found(t)),
        Err(e) => return Err(PageError::from_error(t, e)),
    };
    let settings = service::settings(&app, &scope, &store.id)
        .await
        .or_page(t)?;
    let path = format!("/console/stores/{}/delivery", store.id);
    Ok(no_store(
        ctx.render(&DeliverySettingsPage {
            t,
            path: &path,
            csrf: &ctx.csrf,
            store,
            fee: yuan(settings.delivery_fee),
            min_order: yuan(settings.min_order),
            promise_minutes: settings
                .promise_minutes
                .map(|m| m.to_string())
                .unwrap_or_default(),
            prep_minutes: settings.prep_minutes,
            can_manage: p.role.is_some_and(|r| r >= Role::Manager),
            saved: q.saved.is_some(),
            error: ctx.flashed(q.error),
        })?,
    ))
}

#[derive(Deserialize)]
struct SettingsForm {
    csrf: String,
    delivery_radius_m: String,
    delivery_fee: String,
    min_order: String,
    #[serde(default)]
    promise_minutes: String,
    prep_minutes: String,
}

/// `POST /console/stores/{id}/delivery`: saves them (manager).
async fn save_delivery_settings(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<SettingsForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some((p, scope)) = staff(&ctx)? else {
        return Ok(ctx.redirect("/console/login"));
    };
    let here = format!("/console/stores/{}/delivery", urlencode(&id));
    let whole = |raw: &str, code: &'static str, param: &'static str| {
        raw.trim().parse::<i64>().map_err(|_| {
            Error::invalid(code, format!("{param} must be a whole number.")).param(param)
        })
    };
    let result = async {
        if p.role.is_none_or(|r| r < Role::Manager) {
            return Err(Error::forbidden(
                "insufficient_role",
                "Managers and owners change the delivery settings.",
            ));
        }
        let radius = whole(
            &form.delivery_radius_m,
            "radius_out_of_range",
            "delivery_radius_m",
        )?;
        let settings = OrderSettings {
            delivery_fee: crate::payments::pages::parse_yuan(&form.delivery_fee)
                .map_err(|e| e.param("delivery_fee"))?,
            min_order: crate::payments::pages::parse_yuan(&form.min_order)
                .map_err(|e| e.param("min_order"))?,
            promise_minutes: match form.promise_minutes.trim() {
                "" => None,
                m => Some(whole(m, "promise_minutes_out_of_range", "promise_minutes")?),
            },
            prep_minutes: whole(
                &form.prep_minutes,
                "prep_minutes_out_of_range",
                "prep_minutes",
            )?,
        };
        service::put_delivery(&app, &scope, &id, radius, settings).await
    }
    .await;
    match result {
        Ok(_) => Ok(ctx.redirect(&format!("{here}?saved=1"))),
        Err(e) if e.kind == Kind::NotFound => Err(not_found(ctx.t)),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => Ok(ctx.redirect(&format!(
            "{here}?error={}",
            urlencode(&ctx.flash(&settings_refusal(ctx.t, &e)))
        ))),
    }
}

/// A refused setting, said in the page's language.
fn settings_refusal(t: T, e: &Error) -> String {
    let key = match e.param.as_deref() {
        Some("delivery_radius_m") => "delivery.radius_m",
        Some("delivery_fee") => "delivery.fee_yuan",
        Some("min_order") => "delivery.min_order_yuan",
        Some("promise_minutes") => "delivery.promise_minutes",
        Some("prep_minutes") => "delivery.prep_minutes",
        _ => return refusal_text(t, e),
    };
    format!("{}: {}", t.s(key), t.s("delivery.setting_invalid"))
}

const ORDERS_JS: &str = include_str!("../../assets/orders.js");

async fn orders_js() -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/javascript; charset=utf-8"),
    );
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=3600"),
    );
    (headers, ORDERS_JS).into_response()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/q/{code}/events", get(table_events))
        .route("/q/{code}/items", post(table_add))
        .route("/q/{code}/place", post(table_place))
        .route("/q/{code}/order-pay", post(table_pay))
        .route("/me/orders", get(my_orders))
        .route("/me/orders/{id}", get(order_page))
        .route("/me/orders/{id}/code", post(renew_code))
        .route("/stores/{id}/pickup", get(pickup_page).post(pickup_order))
        .route(
            "/stores/{id}/delivery",
            get(delivery_page).post(delivery_order),
        )
        .route("/stores/{id}/delivery/quote", get(delivery_quote_part))
        .route("/stores/{id}/scan-and-go", get(scan_page))
        .route("/stores/{id}/scan-and-go/items", post(scan_add))
        .route("/stores/{id}/scan-and-go/pay", post(scan_pay))
        .route("/console/kitchen", get(kitchen))
        .route(
            "/console/stores/{id}/delivery",
            get(delivery_settings).post(save_delivery_settings),
        )
        .route("/console/orders/{id}/step", post(board_step))
        .route("/console/orders/{id}/ticket", get(ticket))
        .route("/console/counter/handover", post(counter_handover))
        .route("/assets/orders.js", get(orders_js))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> i64 {
        rfc3339.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    #[test]
    fn pickup_slots_run_every_quarter_hour_from_prep_time_to_closing_in_local_time() {
        // 2026-11-23 (Monday) 13:02 in Shanghai; prep 10 minutes → first slot 13:15.
        let slots = pickup_slots(
            "Mo-Fr 07:30-22:00",
            "Asia/Shanghai",
            10,
            at("2026-11-23T05:02:00Z"),
        );
        assert_eq!(slots.first().unwrap().1, "13:15");
        assert_eq!(slots.first().unwrap().0, "2026-11-23T05:15:00Z");
        assert_eq!(slots.last().unwrap().1, "21:45");
        assert_eq!(slots.len(), 35);
    }

    #[test]
    fn after_closing_the_next_open_days_slots_are_offered_with_their_date() {
        // Monday 22:30 in Shanghai, closed: Tuesday's slots, from opening.
        let slots = pickup_slots(
            "Mo-Fr 07:30-22:00",
            "Asia/Shanghai",
            10,
            at("2026-11-23T14:30:00Z"),
        );
        assert_eq!(slots.first().unwrap().1, "11-24 07:30");
        assert_eq!(slots.first().unwrap().0, "2026-11-23T23:30:00Z");
        assert_eq!(slots.len(), 58);
        // Friday night: the weekend is closed, so Monday's.
        let slots = pickup_slots(
            "Mo-Fr 07:30-22:00",
            "Asia/Shanghai",
            10,
            at("2026-11-27T14:30:00Z"),
        );
        assert_eq!(slots.first().unwrap().1, "11-30 07:30");
        // Open all day, ten minutes to midnight: no slot is left today, so tomorrow's.
        let slots = pickup_slots(
            "Mo-Su 00:00-24:00",
            "Asia/Shanghai",
            15,
            at("2026-11-23T15:50:00Z"),
        );
        assert_eq!(slots.first().unwrap().0, "2026-11-23T16:15:00Z");
        assert_eq!(slots.first().unwrap().1, "11-24 00:15");
        // Never open: nothing.
        assert!(pickup_slots("off", "Asia/Shanghai", 10, at("2026-11-23T05:02:00Z")).is_empty());
    }

    #[test]
    fn the_order_form_reads_quantities_and_options() {
        let fields: Vec<(String, String)> = [
            ("csrf", "x"),
            ("q.prd_a", "2"),
            ("o.prd_a.size", "large"),
            ("q.prd_b", "0"),
            ("o.prd_b.size", "medium"),
            ("q.prd_c", ""),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let items = items_of(&fields).unwrap();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].product_id.as_deref(), Some("prd_a"));
        assert_eq!(items[0].quantity, Some(2));
        assert_eq!(items[0].options["size"], vec!["large".to_owned()]);
        let bad = vec![("q.prd_a".to_owned(), "two".to_owned())];
        assert_eq!(items_of(&bad).unwrap_err().code, "quantity_out_of_range");
    }
}
