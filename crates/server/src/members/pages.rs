//! Members' pages (mobile): the consumer's cards, one card with its balances, top-up form,
//! history and closing, and joining from a store's pay-code landing. The pay form on that
//! landing offers the card as a source when the consumer holds one there ([`landing_member`]).

use super::model::Card;
use super::service;
use crate::app::AppState;
use crate::error::Kind;
use crate::identity::{Principal, PrincipalKind};
use crate::web::{OrPage, PageCtx, PageError, T};
use askama::Template;
use axum::Form;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

/// Fen as yuan, `¥12.50`.
fn yuan(amount_minor: i64) -> String {
    let sign = if amount_minor < 0 { "-" } else { "" };
    let a = amount_minor.unsigned_abs();
    format!("{sign}¥{}.{:02}", a / 100, a % 100)
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
    time: String,
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
    history: Vec<ShownMovement>,
    error: Option<String>,
}

async fn render_card(
    app: &AppState,
    ctx: &PageCtx,
    user_id: &str,
    id: &str,
    error: Option<String>,
    status: StatusCode,
) -> Result<Response, PageError> {
    let card = match service::my_card(&app.db, user_id, id).await {
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
                _ => ctx.t.s("member.kind.close"),
            },
            kind: m.kind,
            paid: yuan(m.paid),
            bonus: (m.bonus != 0).then(|| yuan(m.bonus)),
            time: m.created_at,
        })
        .collect();
    let mut response = ctx.render(&CardPage {
        t: ctx.t,
        logged_in: true,
        path: &ctx.path,
        csrf: &ctx.csrf,
        key: crate::payments::pages::new_form_key(),
        card: shown(ctx.t, &card),
        rules,
        history,
        error,
    })?;
    *response.status_mut() = status;
    Ok(response)
}

/// `GET /me/cards/{id}`.
async fn card_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
) -> Result<Response, PageError> {
    let Some(p) = consumer(&ctx) else {
        return Ok(login(&ctx));
    };
    render_card(&app, &ctx, &p.id, &id, None, StatusCode::OK).await
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
            return render_card(
                &app,
                &ctx,
                &p.id,
                &id,
                Some(e.message),
                StatusCode::BAD_REQUEST,
            )
            .await;
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
            render_card(&app, &ctx, &p.id, &id, Some(e.message), status).await
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
            render_card(&app, &ctx, &p.id, &id, Some(e.message), status).await
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
}
