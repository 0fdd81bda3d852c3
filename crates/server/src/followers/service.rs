//! Followers' rules: following only by explicit consent (recorded with its channel), muting,
//! messages (checked, rate-limited per merchant, stored with their outbox event, delivered
//! later by [`super::delivery`]), and the consumer's inbox.

use super::model::*;
use super::store::{self, FollowRow, FollowerRow, InboxRow, MessageRow};
use crate::app::AppState;
use crate::db::{Db, MerchantScope, Tx, now_us, rfc3339};
use crate::error::{Error, Result};
use crate::events::Published;
use crate::http::{List, Page};
use crate::identity::{Principal, PrincipalKind};
use crate::ids::{ConsentId, EventId, FollowerId, MessageId};

const HOUR_US: i64 = 3_600 * 1_000_000;

/// Event types this capability writes to the outbox.
pub const MESSAGE_CREATED: &str = "message.created";
pub const MESSAGE_SENT: &str = "message.sent";

fn merchant_not_found() -> Error {
    Error::not_found("merchant_not_found", "No such merchant.").param("id")
}

fn message_not_found() -> Error {
    Error::not_found("message_not_found", "No such message.").param("msg_id")
}

fn inbox_item_not_found() -> Error {
    Error::not_found("inbox_item_not_found", "No such message in your inbox.").param("id")
}

/// The consumer behind a request, who must have logged in with a phone: follows, mutes and the
/// inbox belong to an account, not to a guest session that a lost cookie ends.
pub fn account_holder(p: &Principal) -> Result<&str> {
    if p.kind != PrincipalKind::Consumer {
        return Err(Error::forbidden(
            "consumer_only",
            "Only consumers can do this.",
        ));
    }
    if p.guest {
        return Err(Error::forbidden(
            "phone_login_required",
            "Log in with your phone number first.",
        ));
    }
    Ok(&p.id)
}

fn follow_of(row: FollowRow) -> Follow {
    Follow {
        id: row.id,
        merchant: FollowedMerchant {
            id: row.merchant_id,
            name: row.merchant_name,
            verified: row.merchant_verified,
        },
        channel: Channel::parse(&row.channel).unwrap_or(Channel::Api),
        store_id: row.store_id,
        followed_at: rfc3339(row.consented_at),
        muted: row.muted,
    }
}

fn follower_of(row: FollowerRow) -> Follower {
    Follower {
        id: row.id,
        consumer_id: row.user_id,
        channel: Channel::parse(&row.channel).unwrap_or(Channel::Api),
        store_id: row.store_id,
        followed_at: rfc3339(row.consented_at),
        muted: row.muted,
    }
}

pub fn message_of(row: MessageRow) -> Message {
    Message {
        id: row.id,
        merchant_id: row.merchant_id,
        title: row.title,
        body: row.body,
        audience: row.audience,
        coupon_template_id: row.coupon_template_id,
        status: MessageStatus::parse(&row.status),
        recipients: row.recipients,
        delivered: row.delivered,
        created_at: rfc3339(row.created_at),
        sent_at: row.sent_at.map(rfc3339),
    }
}

fn inbox_item_of(row: InboxRow) -> InboxItem {
    InboxItem {
        id: row.id,
        message_id: row.message_id,
        merchant: FollowedMerchant {
            id: row.merchant_id,
            name: row.merchant_name,
            verified: row.merchant_verified,
        },
        title: row.title,
        body: row.body,
        coupon_template_id: row.coupon_template_id,
        created_at: rfc3339(row.created_at),
        read: row.read_at.is_some(),
        read_at: row.read_at.map(rfc3339),
    }
}

// ----- following -----

/// Follows a merchant with the consumer's consent, given through `channel` (at `store_id`, when
/// there was a store). Following again changes nothing: the first consent is kept. Returns the
/// follow and whether it is new.
pub async fn follow(
    db: &Db,
    user_id: &str,
    merchant_id: &str,
    channel: Channel,
    store_id: Option<&str>,
) -> Result<(Follow, bool)> {
    if crate::ids::MerchantId::parse(merchant_id).is_err() {
        return Err(merchant_not_found());
    }
    let now = now_us();
    let mut tx = db.begin().await?;
    if !store::merchant_exists_tx(&mut tx, merchant_id).await? {
        return Err(merchant_not_found());
    }
    if let Some(sid) = store_id
        && store::store_merchant(&mut tx, sid).await?.as_deref() != Some(merchant_id)
    {
        return Err(
            Error::not_found("store_not_found", "No such store of this merchant.")
                .param("store_id"),
        );
    }
    let created = store::insert_follow(
        &mut tx,
        FollowerId::generate().as_str(),
        merchant_id,
        user_id,
        channel.as_str(),
        store_id,
        now,
    )
    .await?;
    if created {
        store::log_consent(
            &mut tx,
            ConsentId::generate().as_str(),
            merchant_id,
            user_id,
            "follow",
            channel.as_str(),
            store_id,
            now,
        )
        .await?;
    }
    tx.commit().await?;
    let row = store::follow_of(db, user_id, merchant_id)
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a committed follow is missing")))?;
    Ok((follow_of(row), created))
}

/// Stops following (withdraws consent, recorded with the channel it was withdrawn through).
/// Not following already is no error.
pub async fn unfollow(
    db: &Db,
    user_id: &str,
    merchant_id: &str,
    channel: Channel,
) -> Result<Unfollowed> {
    if crate::ids::MerchantId::parse(merchant_id).is_err() {
        return Err(merchant_not_found());
    }
    let mut tx = db.begin().await?;
    if !store::merchant_exists_tx(&mut tx, merchant_id).await? {
        return Err(merchant_not_found());
    }
    if store::delete_follow(&mut tx, merchant_id, user_id).await? {
        store::log_consent(
            &mut tx,
            ConsentId::generate().as_str(),
            merchant_id,
            user_id,
            "unfollow",
            channel.as_str(),
            None,
            now_us(),
        )
        .await?;
    }
    tx.commit().await?;
    Ok(Unfollowed {
        merchant_id: merchant_id.to_owned(),
        following: false,
    })
}

/// The consumer's follow of a merchant, if any.
pub async fn follow_state(db: &Db, user_id: &str, merchant_id: &str) -> Result<Option<Follow>> {
    Ok(store::follow_of(db, user_id, merchant_id)
        .await?
        .map(follow_of))
}

pub async fn following(db: &Db, user_id: &str, page: &Page) -> Result<List<Follow>> {
    let rows = store::following_page(db, user_id, page.cursor(), page.fetch_limit()).await?;
    Ok(page.finish(rows.into_iter().map(follow_of).collect()))
}

pub async fn followers(db: &Db, scope: &MerchantScope, page: &Page) -> Result<List<Follower>> {
    let rows = store::followers_page(db, scope, page.cursor(), page.fetch_limit()).await?;
    Ok(page.finish(rows.into_iter().map(follower_of).collect()))
}

pub async fn follower_count(db: &Db, scope: &MerchantScope) -> Result<FollowerCount> {
    let (followers, reachable) =
        store::audience_count(db, scope.merchant_id(), &Audience::Followers, i64::MAX).await?;
    Ok(FollowerCount {
        merchant_id: scope.merchant_id().to_owned(),
        followers,
        reachable,
    })
}

/// Mutes (or unmutes) a merchant for the consumer: while muted, none of its messages reach the
/// inbox.
pub async fn set_muted(
    db: &Db,
    user_id: &str,
    merchant_id: &str,
    muted: bool,
) -> Result<MuteState> {
    if crate::ids::MerchantId::parse(merchant_id).is_err() {
        return Err(merchant_not_found());
    }
    let mut tx = db.begin().await?;
    if !store::merchant_exists_tx(&mut tx, merchant_id).await? {
        return Err(merchant_not_found());
    }
    if muted {
        store::mute(&mut tx, merchant_id, user_id, now_us()).await?;
    } else {
        store::unmute(&mut tx, merchant_id, user_id).await?;
    }
    tx.commit().await?;
    Ok(MuteState {
        merchant_id: merchant_id.to_owned(),
        muted,
    })
}

// ----- messages -----

/// A checked message.
pub struct NewMessage {
    pub title: String,
    pub body: String,
    pub audience: Audience,
    /// A coupon template of the merchant's, claimable from the inbox.
    pub coupon_template_id: Option<String>,
}

impl NewMessage {
    pub fn parse(input: CreateMessage) -> Result<NewMessage> {
        let title = parse_text(&input.title, MAX_TITLE_CHARS, "title", false)?;
        let body = parse_text(&input.body, MAX_BODY_CHARS, "body", true)?;
        let audience = Audience::parse(&input.audience)?;
        Ok(NewMessage {
            title,
            body,
            audience,
            coupon_template_id: input
                .coupon_template_id
                .map(|c| c.trim().to_owned())
                .filter(|c| !c.is_empty()),
        })
    }

    /// Checks that the attached coupon template is the merchant's (`404 template_not_found`
    /// otherwise) and claimed free: recipients claim it from the inbox, which a template priced
    /// in points refuses, so attaching one is `409 coupon_exchange_only`. Templates are never
    /// deleted and their points price never changes, so the check holds when the message is
    /// stored.
    pub async fn check_coupon(&self, app: &AppState, scope: &MerchantScope) -> Result<()> {
        if let Some(id) = &self.coupon_template_id {
            let t = crate::marketing::service::own_template_row(app, scope, id)
                .await
                .map_err(|e| e.param("coupon_template_id"))?;
            if let Some(points) = t.points_price {
                return Err(Error::conflict(
                    "coupon_exchange_only",
                    format!(
                        "The coupon \"{}\" is exchanged for {points} member points, so recipients \
                         could not claim it from a message; attach a coupon that is claimed free, \
                         or none.",
                        t.name
                    ),
                )
                .param("coupon_template_id"));
            }
        }
        Ok(())
    }
}

/// A message stored with its outbox event, not yet delivered: publish it after the commit so
/// the delivery task starts at once.
#[must_use]
pub struct Queued {
    pub message: Message,
    event: Published,
}

impl Queued {
    /// Tells this node's delivery task (and live listeners); call after the commit.
    pub fn announce(self, app: &AppState) -> Message {
        app.bus.publish(self.event);
        self.message
    }
}

/// Stores a message to send, inside the caller's transaction, unless the merchant already sent
/// `per_hour` messages in the last hour (`429 rate_limited`, with how long to wait).
pub async fn create_message(
    tx: &mut Tx,
    scope: &MerchantScope,
    created_by: &str,
    per_hour: u32,
    input: NewMessage,
) -> Result<Queued> {
    let now = now_us();
    store::lock_merchant(tx, scope.merchant_id()).await?;
    let (recent, oldest) = store::sent_since(tx, scope.merchant_id(), now - HOUR_US).await?;
    if recent >= i64::from(per_hour) {
        let free_at = oldest.unwrap_or(now) + HOUR_US;
        let wait_s = ((free_at - now).max(0) + 999_999) / 1_000_000;
        return Err(Error::rate_limited(
            "rate_limited",
            format!(
                "A merchant may send at most {per_hour} messages an hour; try again in {wait_s} s."
            ),
            wait_s.max(1) as u64,
        )
        .arg("per_hour", per_hour)
        .arg("wait", wait_s.max(1)));
    }
    let id = MessageId::generate();
    store::insert_message(
        tx,
        scope,
        id.as_str(),
        &input.title,
        &input.body,
        &input.audience.as_string(),
        input.coupon_template_id.as_deref(),
        created_by,
        now,
    )
    .await?;
    let row = store::message_tx(tx, id.as_str())
        .await?
        .ok_or_else(|| Error::internal(anyhow::anyhow!("a stored message is missing")))?;
    let message = message_of(row);
    let event = event_of(tx, &message, MESSAGE_CREATED, now).await?;
    Ok(Queued { message, event })
}

/// Writes the outbox event of a message change; returns it for publishing after the commit.
pub async fn event_of(
    tx: &mut Tx,
    message: &Message,
    kind: &'static str,
    now: i64,
) -> Result<Published> {
    let data = serde_json::value::to_raw_value(message).map_err(Error::internal)?;
    let id = EventId::generate().to_string();
    store::insert_event(tx, &id, &message.merchant_id, kind, data.get(), now).await?;
    Ok(Published::new(
        id,
        message.merchant_id.clone(),
        None,
        kind.into(),
        data,
        now,
    ))
}

pub async fn get_message(db: &Db, scope: &MerchantScope, id: &str) -> Result<Message> {
    if MessageId::parse(id).is_err() {
        return Err(message_not_found());
    }
    store::message_scoped(db, scope, id)
        .await?
        .map(message_of)
        .ok_or_else(message_not_found)
}

pub async fn list_messages(db: &Db, scope: &MerchantScope, page: &Page) -> Result<List<Message>> {
    let rows = store::messages_page(db, scope, page.cursor(), page.fetch_limit()).await?;
    Ok(page.finish(rows.into_iter().map(message_of).collect()))
}

// ----- the inbox -----

pub async fn inbox(db: &Db, user_id: &str, page: &Page) -> Result<Inbox> {
    let rows = store::inbox_page(db, user_id, page.cursor(), page.fetch_limit()).await?;
    let list = page.finish(rows.into_iter().map(inbox_item_of).collect());
    let unread_count = store::unread_count(db, user_id).await?;
    Ok(Inbox {
        data: list.data,
        has_more: list.has_more,
        unread_count,
    })
}

pub async fn unread_count(db: &Db, user_id: &str) -> Result<i64> {
    Ok(store::unread_count(db, user_id).await?)
}

/// Marks one of the consumer's inbox items read (reading it twice keeps the first time).
pub async fn mark_read(db: &Db, user_id: &str, id: &str) -> Result<InboxItem> {
    if !valid_inbox_id(id) {
        return Err(inbox_item_not_found());
    }
    let mut tx = db.begin().await?;
    if !store::mark_read(&mut tx, user_id, id, now_us()).await? {
        return Err(inbox_item_not_found());
    }
    tx.commit().await?;
    store::inbox_item(db, user_id, id)
        .await?
        .map(inbox_item_of)
        .ok_or_else(inbox_item_not_found)
}
