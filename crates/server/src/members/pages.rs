//! Members' pages (mobile): the consumer's cards, one card with its balances, its tier's
//! benefits and the way to the next tier, the coupons its points can be exchanged for, top-up
//! form, history and closing, and joining from a store's pay-code landing. The pay form on that
//! landing offers the card as a source when the consumer holds one there ([`landing_member`]).

use super::model::Card;
use super::service;
use crate::app::AppState;
use crate::error::Kind;
use crate::http::{Form, Path};
use crate::identity::{Principal, PrincipalKind};
use crate::web::{OrPage, PageCtx, PageError, T};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

/// Fen as yuan, `¥12.50` (member cards hold yuan).
fn yuan(amount_minor: i64) -> String {
    crate::web::money(amount_minor, "CNY")
}

fn consumer(ctx: &PageCtx) -> Option<&Principal> {
    ctx.principal
        .as_ref()
        .filter(|p| p.kind == PrincipalKind::Consumer && !p.guest)
}

fn login(ctx: &PageCtx) -> Response {
    ctx.redirect(&format!("/login?next={}", ctx.path))
}

/// A card as a page shows it.
pub struct ShownCard {
    pub id: String,
    pub merchant_name: String,
    pub status: String,
    pub closed: bool,
    pub balance: String,
    pub bonus: String,
    pub spendable: String,
    pub points: i64,
    /// The points the card owes (a refund took back points already spent), if any.
    pub points_owed: Option<i64>,
    pub tier: String,
}

fn shown(t: T, c: &Card) -> ShownCard {
    ShownCard {
        id: c.id.clone(),
        merchant_name: c.merchant_name.clone(),
        status: c.status.clone(),
        closed: c.status != "active",
        balance: yuan(c.balance),
        bonus: yuan(c.bonus_balance),
        spendable: yuan(c.spendable),
        points: c.points,
        points_owed: (c.points < 0).then(|| -c.points),
        tier: c
            .tier
            .clone()
            .unwrap_or_else(|| t.s("member.no_tier").to_owned()),
    }
}

#[derive(Template)]
#[template(path = "members/cards.html")]
struct CardsPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    cards: Vec<ShownCard>,
}

/// `GET /me/cards`.
async fn cards_page(State(app): State<AppState>, ctx: PageCtx) -> Result<Response, PageError> {
    let Some(p) = consumer(&ctx) else {
        return Ok(login(&ctx));
    };
    let cards = service::my_cards(&app.db, &p.id).await.or_page(ctx.t)?;
    ctx.render(&CardsPage {
        t: ctx.t,
        logged_in: true,
        path: &ctx.path,
        cards: cards.iter().map(|c| shown(ctx.t, c)).collect(),
    })
}

struct ShownMovement {
    kind: String,
    label: &'static str,
    paid: String,
    bonus: Option<String>,
    /// `+100`, `-80`: the points it earned or spent.
    points: Option<String>,
    time: String,
}

/// The tier's benefits and the way to the next tier, in words.
#[derive(Default)]
struct ShownTier {
    /// `5% off card payments`, or empty without a percent off.
    percent_off: Option<String>,
    /// `Spend ¥150.00 more to reach Gold (5% off payments with the card)`; none at the top.
    next: Option<String>,
    next_name: Option<String>,
    spend_needed: Option<String>,
    /// The coupon given on reaching the next tier.
    upgrade_coupon: Option<String>,
}

fn shown_tier(t: T, b: &super::model::TierBenefits) -> ShownTier {
    let pct = |p: i64| t.s("member.percent_off").replacen("{}", &p.to_string(), 1);
    ShownTier {
        percent_off: (b.percent_off > 0).then(|| pct(b.percent_off)),
        next: b.next_tier.as_ref().map(|n| {
            let mut s = t
                .s("member.next_tier")
                .replacen("{}", &yuan(n.spend_needed), 1)
                .replacen("{}", &n.name, 1);
            if n.percent_off > 0 {
                s.push_str(&format!(" ({})", pct(n.percent_off)));
            }
            s
        }),
        next_name: b.next_tier.as_ref().map(|n| n.name.clone()),
        spend_needed: b.next_tier.as_ref().map(|n| yuan(n.spend_needed)),
        upgrade_coupon: b
            .next_tier
            .as_ref()
            .and_then(|n| n.upgrade_coupon.as_ref())
            .map(|c| c.name.clone()),
    }
}

/// A coupon the card's points can buy, as the card page lists it.
struct ShownOffer {
    template_id: String,
    name: String,
    rule: String,
    points_price: i64,
    sold_out: bool,
    limit_reached: bool,
    exchangeable: bool,
}

/// What the card page says after an exchange, or why one was refused.
#[derive(Default)]
pub struct Notes {
    /// A refused top-up or closing.
    pub error: Option<String>,
    /// A refused exchange (shown in the exchange section).
    pub exchange_error: Option<String>,
    /// An exchange went through.
    pub exchanged: bool,
}

#[derive(Template)]
#[template(path = "members/card.html")]
struct CardPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    key: String,
    card: ShownCard,
    rules: Vec<String>,
    tier: ShownTier,
    offers: Vec<ShownOffer>,
    history: Vec<ShownMovement>,
    error: Option<String>,
    exchange_error: Option<String>,
    exchanged: bool,
}

async fn render_card(
    app: &AppState,
    ctx: &PageCtx,
    user_id: &str,
    id: &str,
    notes: Notes,
    status: StatusCode,
) -> Result<Response, PageError> {
    let card = match service::my_card(app, user_id, id).await {
        Ok(c) => c,
        Err(e) if e.kind == Kind::NotFound => {
            return Err(PageError {
                status: StatusCode::NOT_FOUND,
                message: ctx.t.s("error.not_found").to_owned(),
                t: ctx.t,
            });
        }
        Err(e) => return Err(PageError::from_error(ctx.t, e)),
    };
    let program = service::program(&app.db, &card.merchant_id)
        .await
        .or_page(ctx.t)?;
    let rules = program
        .map(|p| {
            p.top_up_bonuses
                .iter()
                .map(|b| {
                    ctx.t
                        .s("member.bonus_rule")
                        .replacen("{}", &yuan(b.min_top_up), 1)
                        .replacen("{}", &yuan(b.bonus), 1)
                })
                .collect()
        })
        .unwrap_or_default();
    let history = card
        .movements
        .clone()
        .unwrap_or_default()
        .into_iter()
        .map(|m| ShownMovement {
            label: match m.kind.as_str() {
                "top_up" => ctx.t.s("member.kind.top_up"),
                "payment" => ctx.t.s("member.kind.payment"),
                "refund" => ctx.t.s("member.kind.refund"),
                "exchange" => ctx.t.s("member.kind.exchange"),
                _ => ctx.t.s("member.kind.close"),
            },
            points: (m.points != 0).then(|| format!("{:+}", m.points)),
            kind: m.kind,
            paid: yuan(m.paid),
            bonus: (m.bonus != 0).then(|| yuan(m.bonus)),
            time: m.created_at,
        })
        .collect();
    let offers = service::exchange_offers(app, user_id, id)
        .await
        .or_page(ctx.t)?
        .into_iter()
        .map(|o| ShownOffer {
            rule: crate::marketing::pages::rule_text(ctx.t, &o.template),
            template_id: o.template.id.clone(),
            name: o.template.name.clone(),
            points_price: o.points_price,
            sold_out: o.sold_out,
            limit_reached: o.held >= o.template.per_consumer_limit,
            exchangeable: o.exchangeable,
        })
        .collect();
    let tier = card
        .tier_benefits
        .as_ref()
        .map(|b| shown_tier(ctx.t, b))
        .unwrap_or_default();
    let mut response = ctx.render(&CardPage {
        t: ctx.t,
        logged_in: true,
        path: &ctx.path,
        csrf: &ctx.csrf,
        key: crate::payments::pages::new_form_key(),
        card: shown(ctx.t, &card),
        rules,
        tier,
        offers,
        history,
        error: notes.error,
        exchange_error: notes.exchange_error,
        exchanged: notes.exchanged,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

#[derive(Deserialize)]
struct CardQuery {
    /// Set after an exchange went through (the coupon's id).
    exchanged: Option<String>,
}

/// `GET /me/cards/{id}`.
async fn card_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Query(q): Query<CardQuery>,
) -> Result<Response, PageError> {
    let Some(p) = consumer(&ctx) else {
        return Ok(login(&ctx));
    };
    let notes = Notes {
        exchanged: q.exchanged.is_some_and(|c| c.starts_with("cpn_")),
        ..Notes::default()
    };
    render_card(&app, &ctx, &p.id, &id, notes, StatusCode::OK).await
}

#[derive(Deserialize)]
struct JoinForm {
    csrf: String,
    merchant_id: String,
}

/// `POST /me/cards`: joins from a store's page, then shows the card.
async fn join(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<JoinForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(p) = consumer(&ctx) else {
        return Ok(ctx.redirect("/login?next=/me/cards"));
    };
    let reply = service::join(
        &app,
        &p.id,
        super::model::JoinProgram {
            merchant_id: form.merchant_id,
        },
    )
    .await
    .or_page(ctx.t)?;
    let card: serde_json::Value =
        serde_json::from_str(&reply.body).map_err(|e| PageError::internal(ctx.t, e))?;
    let id = card["id"].as_str().unwrap_or_default();
    Ok(ctx.redirect(&format!("/me/cards/{id}")))
}

#[derive(Deserialize)]
struct TopUpForm {
    csrf: String,
    amount: String,
    #[serde(default)]
    key: String,
}

/// `POST /me/cards/{id}/top-ups`: a refused top-up re-renders the card with why.
async fn top_up(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<TopUpForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(p) = consumer(&ctx) else {
        return Ok(login(&ctx));
    };
    let amount = match crate::payments::pages::parse_yuan(&form.amount) {
        Ok(a) => a,
        Err(e) => {
            let notes = Notes {
                error: Some(crate::web::said(ctx.t, &e)),
                ..Notes::default()
            };
            return render_card(&app, &ctx, &p.id, &id, notes, StatusCode::BAD_REQUEST).await;
        }
    };
    let key = (16..=100).contains(&form.key.len()).then(|| {
        format!(
            "page:{}",
            form.key
                .chars()
                .filter(char::is_ascii_alphanumeric)
                .collect::<String>()
        )
    });
    let input = super::model::CardTopUp {
        amount,
        currency: "CNY".to_owned(),
    };
    let hash = crate::identity::service::sha256_hex(&format!("page-card-top-up:{id}:{amount}"));
    match service::top_up(&app, &p.id, &id, input, key, &hash).await {
        Ok(_) => Ok(ctx.redirect(&format!("/me/cards/{id}"))),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => {
            let (status, _) = crate::http::error::status_of(e.kind);
            let notes = Notes {
                error: Some(crate::web::said(ctx.t, &e)),
                ..Notes::default()
            };
            render_card(&app, &ctx, &p.id, &id, notes, status).await
        }
    }
}

#[derive(Deserialize)]
struct CloseForm {
    csrf: String,
}

/// `POST /me/cards/{id}/close`.
async fn close(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<CloseForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(p) = consumer(&ctx) else {
        return Ok(login(&ctx));
    };
    match service::close(&app, &p.id, &id, None).await {
        Ok(_) => Ok(ctx.redirect(&format!("/me/cards/{id}"))),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => {
            let (status, _) = crate::http::error::status_of(e.kind);
            let notes = Notes {
                error: Some(crate::web::said(ctx.t, &e)),
                ..Notes::default()
            };
            render_card(&app, &ctx, &p.id, &id, notes, status).await
        }
    }
}

#[derive(Deserialize)]
struct ExchangeForm {
    csrf: String,
    coupon_template_id: String,
    /// The form's one-time key: a double tap exchanges once.
    #[serde(default)]
    key: String,
}

/// The page's words for a refused exchange.
fn exchange_refusal(t: T, e: &crate::error::Error) -> String {
    match e.code.as_ref() {
        "coupon_sold_out" => t.s("coupon.sold_out_message").to_owned(),
        "coupon_not_claimable" => t.s("coupon.not_claimable").to_owned(),
        "coupon_not_exchangeable" => t.s("member.not_exchangeable").to_owned(),
        _ => crate::web::said(t, e),
    }
}

/// `POST /me/cards/{id}/exchanges`: points for a coupon; the card shows the points left and a
/// link to the coupon, or, refused, why (nothing changed).
async fn exchange(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<ExchangeForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(p) = consumer(&ctx) else {
        return Ok(login(&ctx));
    };
    let key = (16..=100).contains(&form.key.len()).then(|| {
        format!(
            "page:{}",
            form.key
                .chars()
                .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
                .collect::<String>()
        )
    });
    let hash = crate::identity::service::sha256_hex(&format!(
        "page-card-exchange:{id}:{}",
        form.coupon_template_id
    ));
    let input = super::model::ExchangeInput {
        coupon_template_id: form.coupon_template_id,
    };
    match service::exchange(&app, p, &id, input, key, &hash).await {
        Ok(reply) => {
            let done: serde_json::Value =
                serde_json::from_str(&reply.body).map_err(|e| PageError::internal(ctx.t, e))?;
            let coupon = done["coupon"]["id"].as_str().unwrap_or_default();
            Ok(ctx.redirect(&format!("/me/cards/{id}?exchanged={coupon}")))
        }
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) if e.kind == Kind::NotFound && e.code == "card_not_found" => Err(PageError {
            status: StatusCode::NOT_FOUND,
            message: ctx.t.s("error.not_found").to_owned(),
            t: ctx.t,
        }),
        Err(e) => {
            let (status, _) = crate::http::error::status_of(e.kind);
            let notes = Notes {
                exchange_error: Some(exchange_refusal(ctx.t, &e)),
                ..Notes::default()
            };
            render_card(&app, &ctx, &p.id, &id, notes, status).await
        }
    }
}

/// What a store's pay-code landing offers about membership.
pub struct LandingMember {
    pub merchant_id: String,
    /// The consumer's active card there and what it can spend, if they hold one.
    pub card: Option<(String, String)>,
}

/// The landing's membership offer: `None` when the merchant runs no program.
pub async fn landing_member(
    app: &AppState,
    ctx: &PageCtx,
    merchant_id: &str,
) -> Result<Option<LandingMember>, PageError> {
    if service::program(&app.db, merchant_id)
        .await
        .or_page(ctx.t)?
        .is_none()
    {
        return Ok(None);
    }
    let card = match consumer(ctx) {
        Some(p) => service::active_card_at(&app.db, &p.id, merchant_id)
            .await
            .or_page(ctx.t)?
            .map(|c| (c.id.clone(), yuan(c.spendable))),
        None => None,
    };
    Ok(Some(LandingMember {
        merchant_id: merchant_id.to_owned(),
        card,
    }))
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/cards", get(cards_page).post(join))
        .route("/me/cards/{id}", get(card_page))
        .route("/me/cards/{id}/top-ups", post(top_up))
        .route("/me/cards/{id}/close", post(close))
        .route("/me/cards/{id}/exchanges", post(exchange))
}
