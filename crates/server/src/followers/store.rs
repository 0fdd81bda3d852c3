//! Followers' SQL: follows and the consent log, mutes, messages and their chunked delivery, the
//! inbox. Merchant reads take the [`MerchantScope`]; consumer reads take the consumer's id.

use super::model::Audience;
use crate::db::{Db, DbResult, MerchantScope, Tx, query};

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct FollowRow {
    pub id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub merchant_verified: bool,
    pub channel: String,
    pub store_id: Option<String>,
    pub consented_at: i64,
    pub muted: bool,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct FollowerRow {
    pub id: String,
    pub user_id: String,
    pub channel: String,
    pub store_id: Option<String>,
    pub consented_at: i64,
    pub muted: bool,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct MessageRow {
    pub id: String,
    pub merchant_id: String,
    pub title: String,
    pub body: String,
    pub audience: String,
    pub coupon_template_id: Option<String>,
    pub status: String,
    pub recipients: Option<i64>,
    pub delivered: i64,
    pub audience_at: Option<i64>,
    pub delivered_through: String,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct InboxRow {
    pub id: String,
    pub message_id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub merchant_verified: bool,
    pub title: String,
    pub body: String,
    pub coupon_template_id: Option<String>,
    pub created_at: i64,
    pub read_at: Option<i64>,
}

/// True when the merchant exists.
pub async fn merchant_exists_tx(tx: &mut Tx, merchant_id: &str) -> DbResult<bool> {
    Ok(tx
        .fetch_optional::<(String,)>(
            query("SELECT id FROM merchants WHERE id = $1").bind(merchant_id),
        )
        .await?
        .is_some())
}

/// The store's merchant, when the store exists.
pub async fn store_merchant(tx: &mut Tx, store_id: &str) -> DbResult<Option<String>> {
    Ok(tx
        .fetch_optional::<(String,)>(
            query("SELECT merchant_id FROM stores WHERE id = $1").bind(store_id),
        )
        .await?
        .map(|r| r.0))
}

pub async fn follow_of(db: &Db, user_id: &str, merchant_id: &str) -> DbResult<Option<FollowRow>> {
    db.fetch_optional(
        query(
            "SELECT f.id, f.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
             f.channel, f.store_id, f.consented_at, \
             EXISTS (SELECT 1 FROM merchant_mutes x WHERE x.merchant_id = f.merchant_id AND x.user_id = f.user_id) AS muted \
             FROM followers f JOIN merchants m ON m.id = f.merchant_id \
             WHERE f.user_id = $1 AND f.merchant_id = $2",
        )
        .bind(user_id)
        .bind(merchant_id),
    )
    .await
}

/// Inserts a follow unless one exists; returns whether it was new.
pub async fn insert_follow(
    tx: &mut Tx,
    id: &str,
    merchant_id: &str,
    user_id: &str,
    channel: &str,
    store_id: Option<&str>,
    now: i64,
) -> DbResult<bool> {
    let n = tx
        .execute(
            query(
                "INSERT INTO followers (id, merchant_id, user_id, channel, store_id, consented_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (merchant_id, user_id) DO NOTHING",
            )
            .bind(id)
            .bind(merchant_id)
            .bind(user_id)
            .bind(channel)
            .bind(store_id)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

/// Deletes a follow; returns whether there was one.
pub async fn delete_follow(tx: &mut Tx, merchant_id: &str, user_id: &str) -> DbResult<bool> {
    let n = tx
        .execute(
            query("DELETE FROM followers WHERE merchant_id = $1 AND user_id = $2")
                .bind(merchant_id)
                .bind(user_id),
        )
        .await?;
    Ok(n > 0)
}

/// Appends to the consent log.
#[allow(clippy::too_many_arguments)]
pub async fn log_consent(
    tx: &mut Tx,
    id: &str,
    merchant_id: &str,
    user_id: &str,
    action: &str,
    channel: &str,
    store_id: Option<&str>,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO follow_consents (id, merchant_id, user_id, action, channel, store_id, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(merchant_id)
        .bind(user_id)
        .bind(action)
        .bind(channel)
        .bind(store_id)
        .bind(now),
    )
    .await
    .map(drop)
}

/// The merchants a consumer follows, newest follow first.
pub async fn following_page(
    db: &Db,
    user_id: &str,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<FollowRow>> {
    db.fetch_all(
        query(
            "SELECT f.id, f.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
             f.channel, f.store_id, f.consented_at, \
             EXISTS (SELECT 1 FROM merchant_mutes x WHERE x.merchant_id = f.merchant_id AND x.user_id = f.user_id) AS muted \
             FROM followers f JOIN merchants m ON m.id = f.merchant_id \
             WHERE f.user_id = $1 AND ($2 IS NULL OR f.id < $2) ORDER BY f.id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(cursor)
        .bind(limit),
    )
    .await
}

/// A merchant's followers, newest first.
pub async fn followers_page(
    db: &Db,
    scope: &MerchantScope,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<FollowerRow>> {
    db.fetch_all(
        query(
            "SELECT f.id, f.user_id, f.channel, f.store_id, f.consented_at, \
             EXISTS (SELECT 1 FROM merchant_mutes x WHERE x.merchant_id = f.merchant_id AND x.user_id = f.user_id) AS muted \
             FROM followers f WHERE f.merchant_id = $1 AND ($2 IS NULL OR f.id < $2) ORDER BY f.id DESC LIMIT $3",
        )
        .bind(scope.merchant_id())
        .bind(cursor)
        .bind(limit),
    )
    .await
}

/// (the audience, of them not muted) of a merchant, as of `at` (followers who consented at or
/// before it; members whose card was opened by then and is open, of the tier if one is named).
pub async fn audience_count(
    db: &Db,
    merchant_id: &str,
    audience: &Audience,
    at: i64,
) -> DbResult<(i64, i64)> {
    let q = match audience {
        Audience::Followers => query(
            "SELECT CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM merchant_mutes x WHERE x.merchant_id = f.merchant_id \
                 AND x.user_id = f.user_id) THEN 0 ELSE 1 END), 0) AS BIGINT) \
             FROM followers f WHERE f.merchant_id = $1 AND f.consented_at <= $2",
        ),
        Audience::Members | Audience::Tier(_) => query(
            "SELECT CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(SUM(CASE WHEN EXISTS (SELECT 1 FROM merchant_mutes x WHERE x.merchant_id = f.merchant_id \
                 AND x.user_id = f.user_id) THEN 0 ELSE 1 END), 0) AS BIGINT) \
             FROM member_cards f WHERE f.merchant_id = $1 AND f.created_at <= $2 AND f.status = 'active' \
             AND ($3 = '' OR f.tier = $3)",
        ),
    }
    .bind(merchant_id)
    .bind(at);
    let q = match audience {
        Audience::Followers => q,
        other => q.bind(other.tier().unwrap_or("").to_owned()),
    };
    db.fetch_one(q).await
}

pub async fn mute(tx: &mut Tx, merchant_id: &str, user_id: &str, now: i64) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO merchant_mutes (merchant_id, user_id, created_at) VALUES ($1, $2, $3) \
             ON CONFLICT (merchant_id, user_id) DO NOTHING",
        )
        .bind(merchant_id)
        .bind(user_id)
        .bind(now),
    )
    .await
    .map(drop)
}

pub async fn unmute(tx: &mut Tx, merchant_id: &str, user_id: &str) -> DbResult<()> {
    tx.execute(
        query("DELETE FROM merchant_mutes WHERE merchant_id = $1 AND user_id = $2")
            .bind(merchant_id)
            .bind(user_id),
    )
    .await
    .map(drop)
}

// ----- messages -----

/// Takes the merchant's row lock on PostgreSQL, so two concurrent sends are counted against
/// the hourly limit one after the other (SQLite writes one transaction at a time already).
pub async fn lock_merchant(tx: &mut Tx, merchant_id: &str) -> DbResult<()> {
    tx.execute_for(
        "SELECT id FROM merchants WHERE id = $1",
        "SELECT id FROM merchants WHERE id = $1 FOR UPDATE",
        vec![merchant_id.into()],
    )
    .await
    .map(drop)
}

/// (messages created since `since`, the oldest one's creation time).
pub async fn sent_since(
    tx: &mut Tx,
    merchant_id: &str,
    since: i64,
) -> DbResult<(i64, Option<i64>)> {
    tx.fetch_one(
        query(
            "SELECT CAST(COUNT(*) AS BIGINT), MIN(created_at) FROM messages \
             WHERE merchant_id = $1 AND created_at > $2",
        )
        .bind(merchant_id)
        .bind(since),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_message(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
    title: &str,
    body: &str,
    audience: &str,
    coupon_template_id: Option<&str>,
    created_by: &str,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO messages (id, merchant_id, title, body, audience, coupon_template_id, status, recipients, \
             delivered, audience_at, delivered_through, created_by, created_at, updated_at, sent_at) \
             VALUES ($1, $2, $3, $4, $5, $8, 'queued', NULL, 0, NULL, '', $6, $7, $7, NULL)",
        )
        .bind(id)
        .bind(scope.merchant_id())
        .bind(title)
        .bind(body)
        .bind(audience)
        .bind(created_by)
        .bind(now)
        .bind(coupon_template_id.map(str::to_owned)),
    )
    .await
    .map(drop)
}

pub async fn message_scoped(
    db: &Db,
    scope: &MerchantScope,
    id: &str,
) -> DbResult<Option<MessageRow>> {
    db.fetch_optional(
        query(
            "SELECT id, merchant_id, title, body, audience, coupon_template_id, status, recipients, delivered, \
             audience_at, delivered_through, created_at, sent_at FROM messages WHERE id = $1 AND merchant_id = $2",
        )
        .bind(id)
        .bind(scope.merchant_id()),
    )
    .await
}

pub async fn message(db: &Db, id: &str) -> DbResult<Option<MessageRow>> {
    db.fetch_optional(
        query(
            "SELECT id, merchant_id, title, body, audience, coupon_template_id, status, recipients, delivered, \
             audience_at, delivered_through, created_at, sent_at FROM messages WHERE id = $1",
        )
        .bind(id),
    )
    .await
}

pub async fn message_tx(tx: &mut Tx, id: &str) -> DbResult<Option<MessageRow>> {
    tx.fetch_optional(
        query(
            "SELECT id, merchant_id, title, body, audience, coupon_template_id, status, recipients, delivered, \
             audience_at, delivered_through, created_at, sent_at FROM messages WHERE id = $1",
        )
        .bind(id),
    )
    .await
}

pub async fn messages_page(
    db: &Db,
    scope: &MerchantScope,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<MessageRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, title, body, audience, coupon_template_id, status, recipients, delivered, \
             audience_at, delivered_through, created_at, sent_at FROM messages \
             WHERE merchant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(scope.merchant_id())
        .bind(cursor)
        .bind(limit),
    )
    .await
}

/// Messages still to deliver, oldest first.
pub async fn unsent(db: &Db, limit: i64) -> DbResult<Vec<MessageRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, title, body, audience, coupon_template_id, status, recipients, delivered, \
             audience_at, delivered_through, created_at, sent_at FROM messages \
             WHERE status <> 'sent' ORDER BY id LIMIT $1",
        )
        .bind(limit),
    )
    .await
}

/// Fixes the audience of a queued message and starts sending; false when another node did.
pub async fn start_sending(
    tx: &mut Tx,
    id: &str,
    audience_at: i64,
    recipients: i64,
) -> DbResult<bool> {
    let n = tx
        .execute(
            query(
                "UPDATE messages SET status = 'sending', audience_at = $2, recipients = $3, updated_at = $2 \
                 WHERE id = $1 AND status = 'queued'",
            )
            .bind(id)
            .bind(audience_at)
            .bind(recipients),
        )
        .await?;
    Ok(n == 1)
}

/// The id (a follower's, or a member card's for a members or tier audience) that ends the next
/// chunk of `chunk` after `after`; `None` when fewer remain (the next chunk is the last).
pub async fn chunk_end(
    db: &Db,
    merchant_id: &str,
    audience: &Audience,
    after: &str,
    chunk: i64,
) -> DbResult<Option<String>> {
    let q = match audience {
        Audience::Followers => query(
            "SELECT id FROM followers WHERE merchant_id = $1 AND id > $2 ORDER BY id LIMIT 1 OFFSET $3",
        ),
        Audience::Members | Audience::Tier(_) => query(
            "SELECT id FROM member_cards WHERE merchant_id = $1 AND id > $2 AND status = 'active' \
             AND ($4 = '' OR tier = $4) ORDER BY id LIMIT 1 OFFSET $3",
        ),
    }
    .bind(merchant_id)
    .bind(after)
    .bind(chunk - 1);
    let q = match audience {
        Audience::Followers => q,
        other => q.bind(other.tier().unwrap_or("").to_owned()),
    };
    Ok(db.fetch_optional::<(String,)>(q).await?.map(|r| r.0))
}

/// Writes the inbox rows of one chunk: the audience's rows (followers, or open member cards of
/// the tier if one is named) after `after` up to `through` (to the end when `None`) that were
/// there by `audience_at`, of consumers who have not muted the merchant. Rows already there (a
/// chunk retried after a restart) are skipped. Returns how many were written.
#[allow(clippy::too_many_arguments)]
pub async fn deliver_chunk(
    tx: &mut Tx,
    message_id: &str,
    merchant_id: &str,
    audience: &Audience,
    after: &str,
    through: Option<&str>,
    audience_at: i64,
    now: i64,
) -> DbResult<u64> {
    let q = match audience {
        Audience::Followers => query(
            "INSERT INTO inbox_items (id, user_id, message_id, merchant_id, created_at, read_at) \
             SELECT 'inb_' || substr($1, 5) || substr(f.user_id, 5), f.user_id, $1, f.merchant_id, $2, NULL \
             FROM followers f \
             WHERE f.merchant_id = $3 AND f.id > $4 AND ($5 IS NULL OR f.id <= $5) AND f.consented_at <= $6 \
             AND NOT EXISTS (SELECT 1 FROM merchant_mutes x WHERE x.merchant_id = f.merchant_id AND x.user_id = f.user_id) \
             ON CONFLICT (id) DO NOTHING",
        ),
        Audience::Members | Audience::Tier(_) => query(
            "INSERT INTO inbox_items (id, user_id, message_id, merchant_id, created_at, read_at) \
             SELECT 'inb_' || substr($1, 5) || substr(f.user_id, 5), f.user_id, $1, f.merchant_id, $2, NULL \
             FROM member_cards f \
             WHERE f.merchant_id = $3 AND f.id > $4 AND ($5 IS NULL OR f.id <= $5) AND f.created_at <= $6 \
             AND f.status = 'active' AND ($7 = '' OR f.tier = $7) \
             AND NOT EXISTS (SELECT 1 FROM merchant_mutes x WHERE x.merchant_id = f.merchant_id AND x.user_id = f.user_id) \
             ON CONFLICT (id) DO NOTHING",
        ),
    }
    .bind(message_id)
    .bind(now)
    .bind(merchant_id)
    .bind(after)
    .bind(through)
    .bind(audience_at);
    let q = match audience {
        Audience::Followers => q,
        other => q.bind(other.tier().unwrap_or("").to_owned()),
    };
    tx.execute(q).await
}

/// Records a chunk's progress, only if nobody else moved the message on meanwhile.
pub async fn advance(
    tx: &mut Tx,
    id: &str,
    from: &str,
    to: &str,
    delivered: i64,
    done: bool,
    now: i64,
) -> DbResult<bool> {
    let n = tx
        .execute(
            query(
                "UPDATE messages SET delivered = delivered + $4, delivered_through = $3, updated_at = $5, \
                 status = CASE WHEN $6 THEN 'sent' ELSE status END, \
                 sent_at = CASE WHEN $6 THEN $5 ELSE sent_at END \
                 WHERE id = $1 AND delivered_through = $2 AND status = 'sending'",
            )
            .bind(id)
            .bind(from)
            .bind(to)
            .bind(delivered)
            .bind(now)
            .bind(done),
        )
        .await?;
    Ok(n == 1)
}

/// Appends an event to the outbox (in the transaction of the change it reports).
pub async fn insert_event(
    tx: &mut Tx,
    id: &str,
    merchant_id: &str,
    kind: &str,
    data: &str,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO events (id, merchant_id, type, data, created_at) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(id)
        .bind(merchant_id)
        .bind(kind)
        .bind(data)
        .bind(now),
    )
    .await
    .map(drop)
}

// ----- the inbox -----

pub async fn inbox_page(
    db: &Db,
    user_id: &str,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<InboxRow>> {
    db.fetch_all(
        query(
            "SELECT i.id, i.message_id, i.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
             g.title, g.body, g.coupon_template_id, i.created_at, i.read_at \
             FROM inbox_items i JOIN messages g ON g.id = i.message_id JOIN merchants m ON m.id = i.merchant_id \
             WHERE i.user_id = $1 AND ($2 IS NULL OR i.id < $2) ORDER BY i.id DESC LIMIT $3",
        )
        .bind(user_id)
        .bind(cursor)
        .bind(limit),
    )
    .await
}

pub async fn unread_count(db: &Db, user_id: &str) -> DbResult<i64> {
    let (n,): (i64,) = db
        .fetch_one(
            query("SELECT CAST(COUNT(*) AS BIGINT) FROM inbox_items WHERE user_id = $1 AND read_at IS NULL")
                .bind(user_id),
        )
        .await?;
    Ok(n)
}

/// Marks an item read (once; reading it again keeps the first time). False when the consumer
/// has no such item.
pub async fn mark_read(tx: &mut Tx, user_id: &str, id: &str, now: i64) -> DbResult<bool> {
    let n = tx
        .execute(
            query(
                "UPDATE inbox_items SET read_at = COALESCE(read_at, $3) WHERE id = $1 AND user_id = $2",
            )
            .bind(id)
            .bind(user_id)
            .bind(now),
        )
        .await?;
    Ok(n == 1)
}

pub async fn inbox_item(db: &Db, user_id: &str, id: &str) -> DbResult<Option<InboxRow>> {
    db.fetch_optional(
        query(
            "SELECT i.id, i.message_id, i.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
             g.title, g.body, g.coupon_template_id, i.created_at, i.read_at \
             FROM inbox_items i JOIN messages g ON g.id = i.message_id JOIN merchants m ON m.id = i.merchant_id \
             WHERE i.id = $1 AND i.user_id = $2",
        )
        .bind(id)
        .bind(user_id),
    )
    .await
}
