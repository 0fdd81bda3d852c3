//! Followers' JSON routes. Consumers (logged in with a phone) follow, unfollow, mute and read
//! their inbox; a merchant's staff or `sk_` key sees its followers and sends messages, scoped to
//! its own merchant (another merchant's id answers 404).

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::Result;
use crate::http::idempotency::{self, Begun};
use crate::http::{
    ConsumerAuth, Idem, Json, List, MerchantAuth, OptionalJson, PageParams, Path, Query, Reply,
    error::ErrorBody,
};
use crate::identity::Role;
use crate::merchants::service::own;
use axum::extract::State;
use axum::http::StatusCode;
use std::future::Future;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Runs an effect that commits on its own once per Idempotency-Key: a retry gets the first
/// answer back.
async fn once(
    app: &AppState,
    scope: &str,
    key: Option<String>,
    body_sha256: &str,
    effect: impl Future<Output = Result<Reply>>,
) -> Result<Reply> {
    if let Some(reply) = idempotency::lookup(&app.db, scope, key.as_deref(), body_sha256).await? {
        return Ok(reply);
    }
    let reply = effect.await?;
    idempotency::remember(
        &app.db,
        scope,
        key.as_deref(),
        body_sha256,
        reply.status,
        reply.body.clone(),
    )
    .await?;
    Ok(reply)
}

/// Follows a merchant: the consumer's explicit consent, recorded with its channel (default
/// `api`) and time. Following again changes nothing and answers 200 with the first consent.
#[utoipa::path(post, path = "/v1/merchants/{id}/followers", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")), request_body(content = Option<FollowRequest>),
    responses((status = 201, body = Follow), (status = 200, body = Follow), (status = 400, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn follow(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
    body: OptionalJson<FollowRequest>,
) -> Result<Reply> {
    let user_id = service::account_holder(&p)?.to_owned();
    let (input, sha) = (body.value, body.body_sha256);
    once(&app, &p.id, key, &sha, async {
        let (follow, created) = service::follow(
            &app.db,
            &user_id,
            &id,
            input.channel.unwrap_or(Channel::Api),
            input.store_id.as_deref(),
        )
        .await?;
        let status = if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        Reply::new(status, &follow)
    })
    .await
}

/// The merchant's followers, newest first (managers and owners, or an `sk_` key).
#[utoipa::path(get, path = "/v1/merchants/{id}/followers", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id"), PageParams),
    responses((status = 200, body = List<Follower>), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn list_followers(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<List<Follower>>> {
    own(&auth.scope, &id)?;
    auth.require(Role::Manager)?;
    let page = params.parse()?;
    Ok(axum::Json(
        service::followers(&app.db, &auth.scope, &page).await?,
    ))
}

/// How many follow the merchant, and how many of them messages reach (not muted).
#[utoipa::path(get, path = "/v1/merchants/{id}/followers/count", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")),
    responses((status = 200, body = FollowerCount), (status = 404, body = ErrorBody)))]
async fn follower_count(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<FollowerCount>> {
    own(&auth.scope, &id)?;
    Ok(axum::Json(
        service::follower_count(&app.db, &auth.scope).await?,
    ))
}

/// Stops following a merchant (withdraws consent; recorded). Not following is no error.
#[utoipa::path(delete, path = "/v1/merchants/{id}/followers/me", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")),
    responses((status = 200, body = Unfollowed), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unfollow(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<Unfollowed>> {
    let user_id = service::account_holder(&p)?;
    Ok(axum::Json(
        service::unfollow(&app.db, user_id, &id, Channel::Api).await?,
    ))
}

/// The merchants the consumer follows, newest follow first.
#[utoipa::path(get, path = "/v1/me/following", tag = "followers", security(("bearer" = [])),
    params(PageParams), responses((status = 200, body = List<Follow>), (status = 403, body = ErrorBody)))]
async fn my_following(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<List<Follow>>> {
    let user_id = service::account_holder(&p)?;
    let page = params.parse()?;
    Ok(axum::Json(
        service::following(&app.db, user_id, &page).await?,
    ))
}

/// Mutes a merchant: none of its messages reach the consumer's inbox until unmuted (whether the
/// consumer follows it or not).
#[utoipa::path(post, path = "/v1/merchants/{id}/mute", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")),
    responses((status = 200, body = MuteState), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn mute(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<MuteState>> {
    let user_id = service::account_holder(&p)?;
    Ok(axum::Json(
        service::set_muted(&app.db, user_id, &id, true).await?,
    ))
}

/// Unmutes a merchant.
#[utoipa::path(delete, path = "/v1/merchants/{id}/mute", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")),
    responses((status = 200, body = MuteState), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn unmute(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<MuteState>> {
    let user_id = service::account_holder(&p)?;
    Ok(axum::Json(
        service::set_muted(&app.db, user_id, &id, false).await?,
    ))
}

/// Sends a message to the merchant's followers, members or one tier of members (managers and
/// owners, or an `sk_` key). The
/// message is stored `queued` and answered at once (202); delivery into inboxes happens in the
/// background, in chunks; follow it with `GET /v1/merchants/{id}/messages/{msg_id}`. The
/// audience is fixed when sending starts; consumers who muted the merchant get nothing.
/// `members` reaches holders of an open member card, `tier:<name>` those whose card is in that
/// tier. A `coupon_template_id` must be the merchant's (404 otherwise) and claimed free (a
/// template priced in points is `409 coupon_exchange_only`: nothing is stored or sent);
/// recipients claim it from the inbox.
/// At most the configured number of messages per merchant per hour (429
/// `rate_limited` with `Retry-After`).
#[utoipa::path(post, path = "/v1/merchants/{id}/messages", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id")), request_body = CreateMessage,
    responses((status = 202, body = Message), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody), (status = 422, body = ErrorBody),
        (status = 429, body = ErrorBody)))]
async fn create_message(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
    body: Json<CreateMessage>,
) -> Result<Reply> {
    own(&auth.scope, &id)?;
    auth.require(Role::Manager)?;
    let input = service::NewMessage::parse(body.value)?;
    input.check_coupon(&app, &auth.scope).await?;
    let mut write =
        match idempotency::begin(&app.db, &auth.principal.id, key, &body.body_sha256).await? {
            Begun::Replay(reply) => return Ok(reply),
            Begun::Fresh(write) => write,
        };
    let queued = service::create_message(
        write.tx(),
        &auth.scope,
        &auth.principal.id,
        app.config.messages_per_hour,
        input,
    )
    .await?;
    let reply = write
        .finish(Reply::new(StatusCode::ACCEPTED, &queued.message)?)
        .await?;
    queued.announce(&app);
    Ok(reply)
}

/// The merchant's messages, newest first, each with its delivery progress.
#[utoipa::path(get, path = "/v1/merchants/{id}/messages", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id"), PageParams),
    responses((status = 200, body = List<Message>), (status = 404, body = ErrorBody)))]
async fn list_messages(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<List<Message>>> {
    own(&auth.scope, &id)?;
    let page = params.parse()?;
    Ok(axum::Json(
        service::list_messages(&app.db, &auth.scope, &page).await?,
    ))
}

/// One message and its progress: `status` (`queued` → `sending` → `sent`), `recipients`,
/// `delivered`.
#[utoipa::path(get, path = "/v1/merchants/{id}/messages/{msg_id}", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "mch_ id"), ("msg_id" = String, Path, description = "msg_ id")),
    responses((status = 200, body = Message), (status = 404, body = ErrorBody)))]
async fn get_message(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path((id, msg_id)): Path<(String, String)>,
) -> Result<axum::Json<Message>> {
    own(&auth.scope, &id)?;
    Ok(axum::Json(
        service::get_message(&app.db, &auth.scope, &msg_id).await?,
    ))
}

/// The consumer's inbox, newest first, with the number of unread messages.
#[utoipa::path(get, path = "/v1/me/inbox", tag = "followers", security(("bearer" = [])),
    params(PageParams), responses((status = 200, body = Inbox), (status = 403, body = ErrorBody)))]
async fn my_inbox(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Query(params): Query<PageParams>,
) -> Result<axum::Json<Inbox>> {
    let user_id = service::account_holder(&p)?;
    let page = params.parse()?;
    Ok(axum::Json(service::inbox(&app.db, user_id, &page).await?))
}

/// Marks one inbox message read (again: no change).
#[utoipa::path(post, path = "/v1/me/inbox/{id}/read", tag = "followers", security(("bearer" = [])),
    params(("id" = String, Path, description = "inb_ id")),
    responses((status = 200, body = InboxItem), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn mark_read(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<InboxItem>> {
    let user_id = service::account_holder(&p)?;
    Ok(axum::Json(service::mark_read(&app.db, user_id, &id).await?))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(follow, list_followers))
        .routes(routes!(follower_count))
        .routes(routes!(unfollow))
        .routes(routes!(my_following))
        .routes(routes!(mute, unmute))
        .routes(routes!(create_message, list_messages))
        .routes(routes!(get_message))
        .routes(routes!(my_inbox))
        .routes(routes!(mark_read))
}
