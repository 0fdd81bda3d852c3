//! Followers' pages: the consumer's inbox (`/me/inbox`, unread count, mark read), the follow
//! button of a store page, and the console page where a manager writes a message to the
//! followers and watches it being delivered.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Kind};
use crate::http::idempotency::{self, Begun};
use crate::http::{Form, Page, Path, json::Reply};
use crate::identity::{PrincipalKind, Role};
use crate::web::{OrPage, PageCtx, PageError, StaffConsole, T};
use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::{get, post};
use serde::Deserialize;

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

/// A time as the pages show it: `2026-11-23 14:05` in China time (the platform's pages are for
/// shops in China; stored times stay UTC).
pub fn shown_time(rfc3339: &str) -> String {
    rfc3339
        .parse::<jiff::Timestamp>()
        .ok()
        .and_then(|ts| {
            jiff::tz::TimeZone::get("Asia/Shanghai")
                .ok()
                .map(|tz| ts.to_zoned(tz).strftime("%Y-%m-%d %H:%M").to_string())
        })
        .unwrap_or_else(|| rfc3339.to_owned())
}

// ----- the inbox -----

struct ItemView {
    id: String,
    merchant: String,
    title: String,
    body: String,
    time: String,
    read: bool,
    /// The coupon the message carries, with a claim button.
    coupon: Option<crate::marketing::pages::AttachedCoupon>,
}

#[derive(Template)]
#[template(path = "followers/inbox.html")]
struct InboxPage<'a> {
    t: T,
    logged_in: bool,
    path: &'a str,
    csrf: &'a str,
    unread_count: i64,
    items: Vec<ItemView>,
    notice: Option<String>,
    error: Option<String>,
    /// The coupon claim forms' one-time key (each form adds its template id).
    key: String,
}

#[derive(Deserialize)]
struct InboxQuery {
    claimed: Option<String>,
    error: Option<String>,
}

async fn inbox_page(
    State(app): State<AppState>,
    ctx: PageCtx,
    Query(q): Query<InboxQuery>,
) -> Result<Response, PageError> {
    let Some(user_id) = account(&ctx) else {
        return Ok(ctx.redirect("/login?next=/me/inbox"));
    };
    let inbox = service::inbox(&app.db, user_id, &Page::first(50))
        .await
        .or_page(ctx.t)?;
    let mut items = Vec::with_capacity(inbox.data.len());
    for i in inbox.data {
        let coupon = match &i.coupon_template_id {
            Some(tpl) => crate::marketing::pages::attached(&app, ctx.t, user_id, tpl)
                .await
                .or_page(ctx.t)?,
            None => None,
        };
        items.push(ItemView {
            time: shown_time(&i.created_at),
            id: i.id,
            merchant: i.merchant.name,
            title: i.title,
            body: i.body,
            read: i.read,
            coupon,
        });
    }
    ctx.render(&InboxPage {
        t: ctx.t,
        logged_in: true,
        path: &ctx.path,
        csrf: &ctx.csrf,
        unread_count: inbox.unread_count,
        items,
        notice: q
            .claimed
            .filter(|c| c.starts_with("cpt_"))
            .map(|_| ctx.t.s("coupon.claimed_ok").to_owned()),
        error: ctx.flashed(q.error),
        key: crate::payments::pages::new_form_key(),
    })
}

#[derive(Deserialize)]
struct CsrfForm {
    csrf: String,
}

async fn read_item(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(user_id) = account(&ctx) else {
        return Ok(ctx.redirect("/login?next=/me/inbox"));
    };
    service::mark_read(&app.db, user_id, &id)
        .await
        .or_page(ctx.t)?;
    Ok(ctx.redirect("/me/inbox"))
}

// ----- the follow button of a store page -----

/// What the follow button of a store page shows.
pub struct FollowButton {
    pub store_id: String,
    pub following: bool,
    /// A guest or nobody: the button leads to the login first.
    pub needs_login: bool,
}

/// The follow button for `merchant_id` on the page of `store_id`.
pub async fn follow_button(
    app: &AppState,
    ctx: &PageCtx,
    merchant_id: &str,
    store_id: &str,
) -> Result<FollowButton, PageError> {
    let following = match account(ctx) {
        Some(user_id) => service::follow_state(&app.db, user_id, merchant_id)
            .await
            .or_page(ctx.t)?
            .is_some(),
        None => false,
    };
    Ok(FollowButton {
        store_id: store_id.to_owned(),
        following,
        needs_login: account(ctx).is_none(),
    })
}

#[derive(Deserialize)]
struct FollowForm {
    csrf: String,
    /// `follow` or `unfollow`.
    action: String,
}

/// `POST /stores/{id}/follow`: the store page's follow / unfollow button (consent through the
/// `page` channel, at that store).
async fn follow_from_store(
    State(app): State<AppState>,
    ctx: PageCtx,
    Path(store_id): Path<String>,
    Form(form): Form<FollowForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(store) = crate::stores::service::find_store(&app.db, &store_id)
        .await
        .or_page(ctx.t)?
    else {
        return Err(PageError {
            status: StatusCode::NOT_FOUND,
            message: ctx.t.s("store.not_found").to_owned(),
            t: ctx.t,
        });
    };
    let back = format!("/stores/{}", urlencode(&store.id));
    let Some(user_id) = account(&ctx) else {
        return Ok(ctx.redirect(&format!("/login?next={back}")));
    };
    match form.action.as_str() {
        "follow" => {
            service::follow(
                &app.db,
                user_id,
                &store.merchant_id,
                Channel::Page,
                Some(&store.id),
            )
            .await
            .or_page(ctx.t)?;
        }
        "unfollow" => {
            service::unfollow(&app.db, user_id, &store.merchant_id, Channel::Page)
                .await
                .or_page(ctx.t)?;
        }
        _ => {
            return Err(PageError::from_error(
                ctx.t,
                Error::invalid("invalid_action", "action must be follow or unfollow."),
            ));
        }
    }
    Ok(ctx.redirect(&back))
}

// ----- the console -----

struct MessageView {
    id: String,
    title: String,
    /// The i18n key of the status, and the status itself (for tests and styles).
    status: &'static str,
    state: &'static str,
    recipients: String,
    delivered: i64,
    time: String,
}

#[derive(Template)]
#[template(path = "followers/console.html")]
struct ConsolePage<'a> {
    t: T,
    path: &'a str,
    csrf: &'a str,
    key: String,
    can_send: bool,
    followers: i64,
    reachable: i64,
    messages: Vec<MessageView>,
    /// A message is still being delivered: the page reloads itself to show progress.
    in_progress: bool,
    error: Option<String>,
    /// The merchant's coupon templates claimed free, to attach one: (id, name).
    coupons: Vec<(String, String)>,
    /// The member program's tiers, each an audience of its own.
    tiers: Vec<String>,
    /// The form as typed, when it comes back with an error.
    form: MessageForm,
}

impl ConsolePage<'_> {
    /// Whether the form's audience is `audience` (`followers` when none of the others is).
    fn audience_is(&self, audience: &str) -> bool {
        let typed = self.form.audience.as_str();
        let known = typed == "members"
            || typed
                .strip_prefix("tier:")
                .is_some_and(|tier| self.tiers.iter().any(|t| t == tier));
        if known {
            typed == audience
        } else {
            audience == "followers"
        }
    }

    fn audience_is_tier(&self, tier: &str) -> bool {
        self.audience_is(&format!("tier:{tier}"))
    }

    /// Whether the form attaches one of the listed coupons.
    fn coupon_chosen(&self) -> bool {
        self.coupons
            .iter()
            .any(|(id, _)| *id == self.form.coupon_template_id)
    }

    fn coupon_is(&self, id: &str) -> bool {
        self.form.coupon_template_id == id
    }
}

#[derive(Deserialize)]
struct ConsoleQuery {
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
    render_console(
        &app,
        &ctx,
        &c,
        ctx.flashed(q.error),
        MessageForm::default(),
        StatusCode::OK,
    )
    .await
}

/// The console page, with `error` above the form and `form` as typed (a refused message comes
/// back with what was written, so nothing has to be typed again).
async fn render_console(
    app: &AppState,
    ctx: &PageCtx,
    c: &StaffConsole,
    error: Option<String>,
    form: MessageForm,
    status: StatusCode,
) -> Result<Response, PageError> {
    let t = ctx.t;
    let count = service::follower_count(&app.db, &c.scope)
        .await
        .or_page(t)?;
    let list = service::list_messages(&app.db, &c.scope, &Page::first(20))
        .await
        .or_page(t)?;
    let in_progress = list.data.iter().any(|m| m.status != MessageStatus::Sent);
    let coupons = crate::marketing::pages::template_names(app, &c.scope)
        .await
        .or_page(t)?;
    let tiers = crate::members::service::tier_names(&app.db, c.scope.merchant_id())
        .await
        .or_page(t)?;
    let messages = list
        .data
        .into_iter()
        .map(|m| MessageView {
            status: match m.status {
                MessageStatus::Queued => "messages.status.queued",
                MessageStatus::Sending => "messages.status.sending",
                MessageStatus::Sent => "messages.status.sent",
            },
            state: m.status.as_str(),
            recipients: m.recipients.map(|r| r.to_string()).unwrap_or_default(),
            delivered: m.delivered,
            time: shown_time(&m.created_at),
            id: m.id,
            title: m.title,
        })
        .collect();
    let mut response = ctx.render(&ConsolePage {
        t,
        path: &ctx.path,
        csrf: &ctx.csrf,
        key: crate::payments::pages::new_form_key(),
        can_send: c.role >= Role::Manager,
        followers: count.followers,
        reachable: count.reachable,
        messages,
        in_progress,
        error,
        coupons,
        tiers,
        form,
    })?;
    if response.status().is_success() {
        *response.status_mut() = status;
    }
    Ok(response)
}

#[derive(Deserialize, Default)]
struct MessageForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    key: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    body: String,
    #[serde(default)]
    audience: String,
    #[serde(default)]
    coupon_template_id: String,
}

/// `POST /console/messages`: sends a message (once per form, however often it is submitted).
async fn send_message(
    State(app): State<AppState>,
    ctx: PageCtx,
    Form(form): Form<MessageForm>,
) -> Result<Response, PageError> {
    ctx.check_csrf(&form.csrf)?;
    let Some(c) = ctx.staff() else {
        return Ok(ctx.redirect("/console/login"));
    };
    let result = async {
        if c.role < Role::Manager {
            return Err(Error::forbidden(
                "insufficient_role",
                "Managers and owners send messages.",
            ));
        }
        let input = service::NewMessage::parse(CreateMessage {
            title: form.title.clone(),
            body: form.body.clone(),
            audience: form.audience.clone(),
            coupon_template_id: Some(form.coupon_template_id.clone()),
        })?;
        input.check_coupon(&app, &c.scope).await?;
        let key =
            (!form.key.is_empty() && form.key.len() <= 64).then(|| format!("page:{}", form.key));
        let hash = crate::identity::service::sha256_hex(&format!(
            "{}\u{0}{}\u{0}{}\u{0}{}",
            form.title, form.body, form.audience, form.coupon_template_id
        ));
        let mut write = match idempotency::begin(&app.db, &c.staff_id, key, &hash).await? {
            Begun::Replay(_) => return Ok(()),
            Begun::Fresh(write) => write,
        };
        let queued = service::create_message(
            write.tx(),
            &c.scope,
            &c.staff_id,
            app.config.messages_per_hour,
            input,
        )
        .await?;
        write
            .finish(Reply::new(StatusCode::ACCEPTED, &queued.message)?)
            .await?;
        queued.announce(&app);
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(ctx.redirect("/console/messages")),
        Err(e) if e.kind == Kind::Internal => Err(PageError::from_error(ctx.t, e)),
        Err(e) => {
            let (status, _) = crate::http::error::status_of(e.kind);
            let mut page = render_console(
                &app,
                &ctx,
                &c,
                Some(crate::web::said(ctx.t, &e)),
                form,
                status,
            )
            .await?;
            // A rate limit or overload says when to try again, as the API does.
            if let Some(s) = e.retry_after_s {
                page.headers_mut()
                    .insert(axum::http::header::RETRY_AFTER, s.into());
            }
            Ok(page)
        }
    }
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/me/inbox", get(inbox_page))
        .route("/me/inbox/{id}/read", post(read_item))
        .route("/stores/{id}/follow", post(follow_from_store))
        .route("/console/messages", get(console_page).post(send_message))
}
