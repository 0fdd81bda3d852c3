//! Identity's rules: one-time codes by SMS, consumer login (joining a guest's activity to the
//! account), staff/rider/operator password login, session tokens, and API-key authentication.
//!
//! Tokens and `sk_` secrets are random, shown once, and stored only as SHA-256 hashes (they carry
//! 256 bits of entropy, so a fast hash is enough; passwords, which people choose, get Argon2id).

use super::model::{Email, Phone, Principal, PrincipalKind, Role};
use super::passwords::Passwords;
use super::store;
use crate::db::{Db, Tx, now_us};
use crate::error::{Error, Kind, Result};
use crate::ids::{UserId, new_body, random_token};
use futures::future::BoxFuture;
use rand::Rng;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// A one-time code lives this long.
pub const OTP_TTL_US: i64 = 5 * 60 * 1_000_000;
/// Wrong guesses allowed per code before it is burnt.
pub const OTP_MAX_ATTEMPTS: i64 = 5;
/// A phone may ask for a new code once a minute …
pub const OTP_PHONE_INTERVAL_US: i64 = 60 * 1_000_000;
/// … and at most this many times an hour.
pub const OTP_PHONE_PER_HOUR: i64 = 5;
/// One client address may ask for this many codes an hour (all phones together).
pub const OTP_IP_PER_HOUR: i64 = 30;
const HOUR_US: i64 = 3_600 * 1_000_000;
/// Sessions of consumers (and guests) last 30 days; staff, riders and operators 7 days.
pub const CONSUMER_SESSION_US: i64 = 30 * 24 * HOUR_US;
pub const STAFF_SESSION_US: i64 = 7 * 24 * HOUR_US;

/// An SMS to send.
#[derive(Clone)]
pub struct SmsMessage {
    pub phone: Phone,
    pub body: String,
}

/// Sends text messages. Every message is first written to the SMS outbox in the same transaction
/// as what caused it; a provider then delivers it. The built-in [`OutboxOnly`] sender delivers
/// nothing further: the outbox itself is where developers read codes (`GET /v1/dev/outbox`, only
/// with `--dev`). A real SMS provider implements this trait.
pub trait SmsSender: Send + Sync {
    fn name(&self) -> &'static str;
    fn deliver(&self, message: SmsMessage) -> BoxFuture<'static, anyhow::Result<()>>;
}

/// The built-in sender: messages stay in the outbox.
pub struct OutboxOnly;

impl SmsSender for OutboxOnly {
    fn name(&self) -> &'static str {
        "outbox"
    }
    fn deliver(&self, _message: SmsMessage) -> BoxFuture<'static, anyhow::Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

pub fn sha256_hex(s: &str) -> String {
    hex::encode(Sha256::digest(s.as_bytes()))
}

fn otp_hash(phone: &Phone, code: &str) -> String {
    sha256_hex(&format!("otp:{}:{}", phone.as_str(), code))
}

/// Issues a one-time code for `phone`, rate-limited per phone and per client address, and queues
/// the SMS. Earlier codes of the phone stop working. Returns the message for delivery.
pub async fn request_otp(db: &Db, phone: &Phone, ip: &str) -> Result<SmsMessage> {
    let now = now_us();
    let mut tx = db.begin().await?;
    let (last_hour, last_at) =
        store::count_otps_for_phone_since(&mut tx, phone.as_str(), now - HOUR_US).await?;
    if let Some(last) = last_at
        && now - last < OTP_PHONE_INTERVAL_US
    {
        let wait = ((OTP_PHONE_INTERVAL_US - (now - last)) / 1_000_000).max(1) as u64;
        return Err(Error::rate_limited(
            "otp_rate_limited",
            format!("A code was just sent to this number; try again in {wait} s."),
            wait,
        )
        .arg("wait", wait));
    }
    if last_hour >= OTP_PHONE_PER_HOUR {
        return Err(Error::rate_limited(
            "otp_rate_limited",
            "Too many codes for this number; try again later.",
            600,
        ));
    }
    if store::count_otps_for_ip_since(&mut tx, ip, now - HOUR_US).await? >= OTP_IP_PER_HOUR {
        return Err(Error::rate_limited(
            "otp_rate_limited",
            "Too many codes from this network; try again later.",
            600,
        ));
    }
    let code = format!("{:06}", rand::rng().random_range(0..1_000_000u32));
    store::retire_otps(&mut tx, phone.as_str(), now).await?;
    store::insert_otp(
        &mut tx,
        &format!("otp_{}", new_body()),
        phone.as_str(),
        ip,
        &otp_hash(phone, &code),
        now,
        now + OTP_TTL_US,
    )
    .await?;
    let body = format!(
        "【o2o】验证码 {code}，5 分钟内有效。Your o2o code is {code}; it expires in 5 minutes."
    );
    store::insert_sms(
        &mut tx,
        &format!("sms_{}", new_body()),
        phone.as_str(),
        &body,
        Some(&code),
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(SmsMessage {
        phone: phone.clone(),
        body,
    })
}

/// A new session: the token is shown to the caller once.
pub struct IssuedSession {
    pub token: String,
    pub principal: Principal,
    pub expires_at: i64,
}

async fn issue_session(
    tx: &mut Tx,
    kind: PrincipalKind,
    subject_id: &str,
    merchant_id: Option<&str>,
    role: Option<Role>,
    guest: bool,
    now: i64,
) -> Result<IssuedSession> {
    let token = format!("st_{}", random_token(32));
    let csrf = random_token(24);
    let session_id = format!("ses_{}", new_body());
    let ttl = if kind == PrincipalKind::Consumer {
        CONSUMER_SESSION_US
    } else {
        STAFF_SESSION_US
    };
    let token_hash = sha256_hex(&token);
    store::insert_session(
        tx,
        store::NewSession {
            id: &session_id,
            token_hash: &token_hash,
            kind: kind.as_str(),
            subject_id,
            merchant_id,
            role: role.map(Role::as_str),
            guest,
            csrf: &csrf,
            now,
            expires_at: now + ttl,
        },
    )
    .await?;
    let principal = Principal {
        kind,
        id: subject_id.to_owned(),
        merchant_id: merchant_id.map(str::to_owned),
        role,
        guest,
        session_id: Some(session_id),
        csrf: Some(csrf),
    };
    // A guest session is started by any scan without a cookie (crawlers, link previews): it is
    // read into memory when its token is first used, not kept ahead.
    if !guest {
        tx.keeps_session(&token_hash, (principal.clone(), now + ttl));
    }
    Ok(IssuedSession {
        token,
        principal,
        expires_at: now + ttl,
    })
}

/// Starts a guest consumer: a `usr_` id without a phone, so that what a person does before
/// logging in (a scan, a cart, a visit) is theirs from the first moment.
pub async fn start_guest(db: &Db) -> Result<IssuedSession> {
    let now = now_us();
    let mut tx = db.begin().await?;
    let id = UserId::generate();
    store::insert_user(&mut tx, id.as_str(), None, true, now).await?;
    let session = issue_session(
        &mut tx,
        PrincipalKind::Consumer,
        id.as_str(),
        None,
        None,
        true,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(session)
}

fn otp_wrong() -> Error {
    Error::unauthenticated("otp_invalid", "That code is wrong or has expired.").param("code")
}

/// Logs a consumer in with a phone and its one-time code. A guest calling this keeps its `usr_`
/// id (it becomes the account) or, when the phone already has an account, has its activity moved
/// there. Wrong codes count against the code; after [`OTP_MAX_ATTEMPTS`] it is burnt.
pub async fn login_with_code(
    db: &Db,
    phone: &Phone,
    code: &str,
    guest: Option<&Principal>,
) -> Result<IssuedSession> {
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Error::invalid(
            "invalid_code_format",
            "The code is the 6 digits from the SMS.",
        )
        .param("code"));
    }
    let now = now_us();
    let mut tx = db.begin().await?;
    let Some(otp) = store::active_otp(&mut tx, phone.as_str()).await? else {
        return Err(otp_wrong());
    };
    if otp.expires_at <= now {
        return Err(otp_wrong());
    }
    if otp.attempts >= OTP_MAX_ATTEMPTS {
        return Err(Error::new(
            Kind::RateLimited,
            "otp_attempts_exceeded",
            "Too many wrong codes; ask for a new one.",
        ));
    }
    let matches: bool = otp_hash(phone, code)
        .as_bytes()
        .ct_eq(otp.code_hash.as_bytes())
        .into();
    if !matches {
        store::count_failed_otp_attempt(&mut tx, &otp.id).await?;
        tx.commit().await?;
        return Err(otp_wrong());
    }
    if store::consume_otp(&mut tx, &otp.id, now).await? != 1 {
        return Err(otp_wrong());
    }
    let guest_id = guest
        .filter(|p| p.kind == PrincipalKind::Consumer && p.guest)
        .map(|p| p.id.clone());
    let user_id = match store::user_by_phone(&mut tx, phone.as_str()).await? {
        Some(existing) => {
            if let Some(gid) = &guest_id
                && gid != &existing.id
            {
                merge_consumer(&mut tx, gid, &existing.id).await?;
                store::mark_merged(&mut tx, gid, &existing.id, now).await?;
                store::revoke_sessions_of(&mut tx, gid, now).await?;
            }
            existing.id
        }
        None => match &guest_id {
            Some(gid) if store::upgrade_guest(&mut tx, gid, phone.as_str(), now).await? == 1 => {
                store::revoke_sessions_of(&mut tx, gid, now).await?;
                gid.clone()
            }
            _ => {
                let id = UserId::generate();
                store::insert_user(&mut tx, id.as_str(), Some(phone.as_str()), false, now).await?;
                id.to_string()
            }
        },
    };
    let session = issue_session(
        &mut tx,
        PrincipalKind::Consumer,
        &user_id,
        None,
        None,
        false,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(session)
}

/// Moves everything a guest did to the account it logged into. Each capability that keeps
/// per-consumer rows adds its step here.
async fn merge_consumer(tx: &mut Tx, from: &str, into: &str) -> Result<()> {
    crate::stores::service::merge_visits(tx, from, into).await?;
    crate::orders::service::merge_guest(tx, from, into).await?;
    Ok(())
}

/// Logs in staff, riders and operators with email and password.
pub async fn login_with_password(
    db: &Db,
    passwords: &Passwords,
    email: &Email,
    password: &str,
) -> Result<IssuedSession> {
    let wrong = || Error::unauthenticated("invalid_credentials", "Email or password is wrong.");
    let account = store::account_by_email(db, email.as_str()).await?;
    // With no such account, a dummy hash is checked anyway: a wrong email takes as long as a
    // wrong password, so response times do not tell which emails exist.
    let phc = match &account {
        Some(a) => a.password_hash.clone(),
        None => passwords.dummy_hash().await.map_err(Error::internal)?,
    };
    let ok = passwords
        .verify(password, &phc)
        .await
        .map_err(Error::internal)?;
    let Some(account) = account.filter(|_| ok) else {
        return Err(wrong());
    };
    let kind = PrincipalKind::parse(&account.kind)
        .ok_or_else(|| Error::internal(anyhow::anyhow!("bad account kind")))?;
    let role = account.role.as_deref().and_then(Role::parse);
    let now = now_us();
    let mut tx = db.begin().await?;
    let session = issue_session(
        &mut tx,
        kind,
        &account.id,
        account.merchant_id.as_deref(),
        role,
        false,
        now,
    )
    .await?;
    tx.commit().await?;
    Ok(session)
}

/// Ends a session (logout). Its token stops working at once, on every node.
pub async fn revoke(db: &Db, principal: &Principal) -> Result<()> {
    if let Some(sid) = &principal.session_id {
        let mut tx = db.begin().await?;
        store::revoke_session(&mut tx, sid, now_us()).await?;
        tx.commit().await?;
    }
    Ok(())
}

/// Resolves a bearer token or cookie value to the principal it stands for, if it is live.
pub async fn authenticate(db: &Db, token: &str) -> Result<Option<Principal>> {
    if token.is_empty() || token.len() > 200 {
        return Ok(None);
    }
    let hash = sha256_hex(token);
    let now = now_us();
    let ticket = match db.hot().sessions.get(&hash) {
        Ok((principal, expires_at)) if expires_at > now => return Ok(Some(principal)),
        Ok(_) => return Ok(None),
        Err(ticket) => ticket,
    };
    let found = if token.starts_with("sk_") {
        store::live_api_key(db, &hash).await?.map(|key| {
            let p = Principal {
                kind: PrincipalKind::ApiKey,
                id: key.id,
                merchant_id: Some(key.merchant_id),
                role: Some(Role::Manager),
                guest: false,
                session_id: None,
                csrf: None,
            };
            (p, i64::MAX)
        })
    } else {
        match store::live_session(db, &hash, now).await? {
            Some(row) => PrincipalKind::parse(&row.kind).map(|kind| {
                let p = Principal {
                    kind,
                    id: row.subject_id,
                    merchant_id: row.merchant_id,
                    role: row.role.as_deref().and_then(Role::parse),
                    guest: row.guest,
                    session_id: Some(row.id),
                    csrf: Some(row.csrf),
                };
                (p, row.expires_at)
            }),
            None => None,
        }
    };
    Ok(found.map(|entry| {
        db.hot().sessions.put(ticket, &hash, entry.clone());
        entry.0
    }))
}

/// What `GET /v1/me` shows of a consumer.
pub async fn consumer_phone(db: &Db, user_id: &str) -> Result<Option<Phone>> {
    Ok(store::user_by_id(db, user_id)
        .await?
        .and_then(|u| u.phone.map(Phone::from_db)))
}

/// Creates a login account (staff of a merchant, a rider, or an operator) inside `tx`. The
/// password is hashed beforehand ([`Passwords::hash`]), never while a transaction is open.
pub async fn create_account(
    tx: &mut Tx,
    id: &str,
    kind: PrincipalKind,
    merchant_id: Option<&str>,
    role: Option<Role>,
    email: &Email,
    password_hash: &str,
) -> Result<()> {
    store::insert_account(
        tx,
        id,
        kind.as_str(),
        merchant_id,
        role.map(Role::as_str),
        email.as_str(),
        password_hash,
        now_us(),
    )
    .await
    .map_err(|e| {
        if e.is_conflict_on("email") {
            Error::conflict("email_taken", "An account with this email already exists.")
                .param("email")
        } else {
            e.into()
        }
    })
}

/// Reads the SMS outbox for a phone (dev only).
pub async fn outbox(db: &Db, phone: &Phone) -> Result<Vec<store::SmsRow>> {
    Ok(store::sms_for(db, phone.as_str()).await?)
}

/// Creates a platform operator login (for `o2o operator add`).
pub async fn add_operator(
    app: &crate::app::AppState,
    email: &str,
    password: &str,
) -> Result<String> {
    let email = Email::parse(email)?;
    let password = super::model::NewPassword::parse(password)?;
    let hash = app
        .passwords
        .hash(password.expose())
        .await
        .map_err(Error::internal)?;
    let id = crate::ids::OperatorId::generate();
    let mut tx = app.db.begin().await?;
    create_account(
        &mut tx,
        id.as_str(),
        PrincipalKind::Operator,
        None,
        None,
        &email,
        &hash,
    )
    .await?;
    tx.commit().await?;
    Ok(id.to_string())
}

/// A consumer's birthday (`MM-DD`), if they gave one.
pub async fn consumer_birthday(db: &Db, user_id: &str) -> Result<Option<String>> {
    Ok(store::birthday(db, user_id).await?)
}

/// Gives a consumer's birthday. It is set once: the same day again is accepted, another day is
/// `409 birthday_already_set` (a birthday that could move would give its coupon again and
/// again). Guests have no profile (`403 phone_login_required`).
pub async fn set_birthday(db: &Db, principal: &Principal, raw: &str) -> Result<String> {
    if principal.kind != PrincipalKind::Consumer {
        return Err(Error::forbidden(
            "consumer_only",
            "Only consumers have a birthday here.",
        ));
    }
    if principal.guest {
        return Err(Error::forbidden(
            "phone_login_required",
            "Log in with your phone to keep a profile.",
        ));
    }
    let birthday = super::model::Birthday::parse(raw)?;
    let stored = store::set_birthday(db, &principal.id, birthday.as_str(), now_us()).await?;
    match stored {
        Some(b) if b == birthday.as_str() => Ok(b),
        Some(_) => Err(Error::conflict(
            "birthday_already_set",
            "Your birthday is already on your profile; it cannot be changed.",
        )
        .param("birthday")),
        None => Err(Error::not_found("user_not_found", "No such consumer.")),
    }
}

/// Consumers whose birthday is celebrated on `date` (see [`super::model::Birthday::celebrated_on`]).
pub async fn born_on(db: &Db, date: jiff::civil::Date) -> Result<Vec<String>> {
    let days = super::model::Birthday::celebrated_on(date);
    let also = days.get(1).unwrap_or(&days[0]);
    Ok(store::born_on(db, &days[0], also).await?)
}
