//! Identity's SQL: consumers, accounts, sessions, one-time codes and the SMS outbox.

use crate::db::{Db, DbResult, Tx, query};

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct UserRow {
    pub id: String,
    pub phone: Option<String>,
    pub guest: bool,
    pub merged_into: Option<String>,
    pub created_at: i64,
}

pub async fn user_by_phone(tx: &mut Tx, phone: &str) -> DbResult<Option<UserRow>> {
    tx.fetch_optional(
        query("SELECT id, phone, guest, merged_into, created_at FROM users WHERE phone = $1")
            .bind(phone),
    )
    .await
}

pub async fn user_by_id(db: &Db, id: &str) -> DbResult<Option<UserRow>> {
    db.fetch_optional(
        query("SELECT id, phone, guest, merged_into, created_at FROM users WHERE id = $1").bind(id),
    )
    .await
}

pub async fn user_by_id_tx(tx: &mut Tx, id: &str) -> DbResult<Option<UserRow>> {
    tx.fetch_optional(
        query("SELECT id, phone, guest, merged_into, created_at FROM users WHERE id = $1").bind(id),
    )
    .await
}

pub async fn insert_user(
    tx: &mut Tx,
    id: &str,
    phone: Option<&str>,
    guest: bool,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query("INSERT INTO users (id, phone, guest, merged_into, created_at, updated_at) VALUES ($1, $2, $3, NULL, $4, $4)")
            .bind(id)
            .bind(phone)
            .bind(guest)
            .bind(now),
    )
    .await
    .map(drop)
}

/// Gives a guest its phone: the same `usr_` id becomes a full account.
pub async fn upgrade_guest(tx: &mut Tx, id: &str, phone: &str, now: i64) -> DbResult<u64> {
    tx.execute(
        query("UPDATE users SET phone = $1, guest = FALSE, updated_at = $2 WHERE id = $3 AND guest = TRUE")
            .bind(phone)
            .bind(now)
            .bind(id),
    )
    .await
}

pub async fn mark_merged(tx: &mut Tx, guest_id: &str, into: &str, now: i64) -> DbResult<()> {
    tx.execute(
        query("UPDATE users SET merged_into = $1, updated_at = $2 WHERE id = $3")
            .bind(into)
            .bind(now)
            .bind(guest_id),
    )
    .await
    .map(drop)
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct AccountRow {
    pub id: String,
    pub kind: String,
    pub merchant_id: Option<String>,
    pub role: Option<String>,
    pub email: String,
    pub password_hash: String,
    pub created_at: i64,
}

pub async fn account_by_email(db: &Db, email: &str) -> DbResult<Option<AccountRow>> {
    db.fetch_optional(
        query("SELECT id, kind, merchant_id, role, email, password_hash, created_at FROM accounts WHERE email = $1")
            .bind(email),
    )
    .await
}

#[allow(clippy::too_many_arguments)]
pub async fn insert_account(
    tx: &mut Tx,
    id: &str,
    kind: &str,
    merchant_id: Option<&str>,
    role: Option<&str>,
    email: &str,
    password_hash: &str,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO accounts (id, kind, merchant_id, role, email, password_hash, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(id)
        .bind(kind)
        .bind(merchant_id)
        .bind(role)
        .bind(email)
        .bind(password_hash)
        .bind(now),
    )
    .await
    .map(drop)
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct SessionRow {
    pub id: String,
    pub kind: String,
    pub subject_id: String,
    pub merchant_id: Option<String>,
    pub role: Option<String>,
    pub guest: bool,
    pub csrf: String,
    pub expires_at: i64,
}

pub struct NewSession<'a> {
    pub id: &'a str,
    pub token_hash: &'a str,
    pub kind: &'a str,
    pub subject_id: &'a str,
    pub merchant_id: Option<&'a str>,
    pub role: Option<&'a str>,
    pub guest: bool,
    pub csrf: &'a str,
    pub now: i64,
    pub expires_at: i64,
}

pub async fn insert_session(tx: &mut Tx, s: NewSession<'_>) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO sessions (id, token_hash, kind, subject_id, merchant_id, role, guest, csrf, created_at, expires_at, revoked_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, NULL)",
        )
        .bind(s.id)
        .bind(s.token_hash)
        .bind(s.kind)
        .bind(s.subject_id)
        .bind(s.merchant_id)
        .bind(s.role)
        .bind(s.guest)
        .bind(s.csrf)
        .bind(s.now)
        .bind(s.expires_at),
    )
    .await
    .map(drop)
}

pub async fn live_session(db: &Db, token_hash: &str, now: i64) -> DbResult<Option<SessionRow>> {
    db.fetch_optional(
        query(
            "SELECT id, kind, subject_id, merchant_id, role, guest, csrf, expires_at FROM sessions \
             WHERE token_hash = $1 AND revoked_at IS NULL AND expires_at > $2",
        )
        .bind(token_hash)
        .bind(now),
    )
    .await
}

pub async fn revoke_session(tx: &mut Tx, session_id: &str, now: i64) -> DbResult<u64> {
    tx.touches(crate::db::Touched::SESSIONS);
    tx.execute(
        query("UPDATE sessions SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(session_id),
    )
    .await
}

pub async fn revoke_sessions_of(tx: &mut Tx, subject_id: &str, now: i64) -> DbResult<u64> {
    tx.touches(crate::db::Touched::SESSIONS);
    tx.execute(
        query("UPDATE sessions SET revoked_at = $1 WHERE subject_id = $2 AND revoked_at IS NULL")
            .bind(now)
            .bind(subject_id),
    )
    .await
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct OtpRow {
    pub id: String,
    pub code_hash: String,
    pub attempts: i64,
    pub expires_at: i64,
}

/// The newest unconsumed code for a phone, if any.
pub async fn active_otp(tx: &mut Tx, phone: &str) -> DbResult<Option<OtpRow>> {
    tx.fetch_optional(
        query(
            "SELECT id, code_hash, attempts, expires_at FROM otp_codes \
             WHERE phone = $1 AND consumed_at IS NULL ORDER BY created_at DESC LIMIT 1",
        )
        .bind(phone),
    )
    .await
}

pub async fn count_otps_for_phone_since(
    tx: &mut Tx,
    phone: &str,
    since: i64,
) -> DbResult<(i64, Option<i64>)> {
    let (n, last): (i64, Option<i64>) = tx
        .fetch_one(
            query("SELECT COUNT(*), MAX(created_at) FROM otp_codes WHERE phone = $1 AND created_at > $2")
                .bind(phone)
                .bind(since),
        )
        .await?;
    Ok((n, last))
}

pub async fn count_otps_for_ip_since(tx: &mut Tx, ip: &str, since: i64) -> DbResult<i64> {
    let (n,): (i64,) = tx
        .fetch_one(
            query("SELECT COUNT(*) FROM otp_codes WHERE ip = $1 AND created_at > $2")
                .bind(ip)
                .bind(since),
        )
        .await?;
    Ok(n)
}

/// Retires every earlier code of the phone, so only the newest one works.
pub async fn retire_otps(tx: &mut Tx, phone: &str, now: i64) -> DbResult<()> {
    tx.execute(
        query("UPDATE otp_codes SET consumed_at = $1 WHERE phone = $2 AND consumed_at IS NULL")
            .bind(now)
            .bind(phone),
    )
    .await
    .map(drop)
}

pub async fn insert_otp(
    tx: &mut Tx,
    id: &str,
    phone: &str,
    ip: &str,
    code_hash: &str,
    now: i64,
    expires_at: i64,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO otp_codes (id, phone, ip, code_hash, attempts, created_at, expires_at, consumed_at) \
             VALUES ($1, $2, $3, $4, 0, $5, $6, NULL)",
        )
        .bind(id)
        .bind(phone)
        .bind(ip)
        .bind(code_hash)
        .bind(now)
        .bind(expires_at),
    )
    .await
    .map(drop)
}

pub async fn count_failed_otp_attempt(tx: &mut Tx, id: &str) -> DbResult<()> {
    tx.execute(query("UPDATE otp_codes SET attempts = attempts + 1 WHERE id = $1").bind(id))
        .await
        .map(drop)
}

pub async fn consume_otp(tx: &mut Tx, id: &str, now: i64) -> DbResult<u64> {
    tx.execute(
        query("UPDATE otp_codes SET consumed_at = $1 WHERE id = $2 AND consumed_at IS NULL")
            .bind(now)
            .bind(id),
    )
    .await
}

pub async fn insert_sms(
    tx: &mut Tx,
    id: &str,
    phone: &str,
    body: &str,
    code: Option<&str>,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query("INSERT INTO sms_outbox (id, phone, body, code, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(phone)
            .bind(body)
            .bind(code)
            .bind(now),
    )
    .await
    .map(drop)
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct SmsRow {
    pub phone: String,
    pub body: String,
    pub code: Option<String>,
    pub created_at: i64,
}

pub async fn sms_for(db: &Db, phone: &str) -> DbResult<Vec<SmsRow>> {
    db.fetch_all(
        query("SELECT phone, body, code, created_at FROM sms_outbox WHERE phone = $1 ORDER BY id DESC LIMIT 20")
            .bind(phone),
    )
    .await
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct ApiKeyAuthRow {
    pub id: String,
    pub merchant_id: String,
}

pub async fn live_api_key(db: &Db, secret_hash: &str) -> DbResult<Option<ApiKeyAuthRow>> {
    db.fetch_optional(
        query("SELECT id, merchant_id FROM api_keys WHERE secret_hash = $1 AND revoked_at IS NULL")
            .bind(secret_hash),
    )
    .await
}

/// A consumer's birthday (`MM-DD`), if they gave one.
pub async fn birthday(db: &Db, user_id: &str) -> DbResult<Option<String>> {
    let row: Option<(Option<String>,)> = db
        .fetch_optional(query("SELECT birthday FROM users WHERE id = $1").bind(user_id))
        .await?;
    Ok(row.and_then(|r| r.0))
}

/// Sets a consumer's birthday if none is set yet; returns the birthday now stored.
pub async fn set_birthday(
    db: &Db,
    user_id: &str,
    birthday: &str,
    now: i64,
) -> DbResult<Option<String>> {
    db.execute(
        query("UPDATE users SET birthday = $2, updated_at = $3 WHERE id = $1 AND birthday IS NULL")
            .bind(user_id)
            .bind(birthday)
            .bind(now),
    )
    .await?;
    self::birthday(db, user_id).await
}

/// Consumers whose birthday is `day` or `also` (`MM-DD`; pass the same day twice for one).
pub async fn born_on(db: &Db, day: &str, also: &str) -> DbResult<Vec<String>> {
    let rows: Vec<(String,)> = db
        .fetch_all(
            query("SELECT id FROM users WHERE birthday = $1 OR birthday = $2 ORDER BY id")
                .bind(day)
                .bind(also),
        )
        .await?;
    Ok(rows.into_iter().map(|r| r.0).collect())
}
