//! Codes' rules: creating, revoking and rotating printed codes, resolving them, the store's EMVCo
//! payload, pay codes, signed tokens, and scanning a consumer's code once.

use super::model::*;
use super::store;
use crate::db::{Db, MerchantScope, Tx, now_us, rfc3339};
use crate::error::{Error, Kind, Result};
use crate::http::{List, Page};
use crate::identity::service::sha256_hex;
use crate::stores::service as stores;
use o2o_codes::printed::{new_short_id, parse_short_id};
use o2o_codes::{Keyring, PayCode, TokenError, TokenKind};

/// Pay codes are valid for 60 seconds.
pub const PAY_CODE_TTL_US: i64 = 60 * 1_000_000;
/// A code held ahead starts this long after the one before it (windows overlap by 10 s).
pub const PAY_CODE_STEP_US: i64 = 50 * 1_000_000;

pub fn qr_of(row: store::QrRow, public_url: &str) -> QrCode {
    QrCode {
        url: format!("{public_url}/q/{}", row.short),
        png_url: format!("{public_url}/v1/qr-codes/{}.png", row.id),
        svg_url: format!("{public_url}/v1/qr-codes/{}.svg", row.id),
        kind: QrKind::parse(&row.kind).unwrap_or(QrKind::Campaign),
        status: row.status,
        merchant_id: row.merchant_id,
        store_id: row.store_id,
        table_id: row.table_id,
        product_id: row.product_id,
        target: row.target,
        replaced_by: row.replaced_by,
        created_at: rfc3339(row.created_at),
        id: row.id,
    }
}

fn qr_not_found() -> Error {
    Error::not_found("qr_not_found", "No such code.").param("id")
}

fn text_field(value: Option<String>, max: usize, param: &'static str) -> Result<Option<String>> {
    match value.map(|v| v.trim().to_owned()) {
        None => Ok(None),
        Some(v) if v.is_empty() || v.chars().count() > max || v.chars().any(char::is_control) => {
            Err(Error::invalid(
                "invalid_value",
                format!("{param} must be 1 to {max} characters."),
            )
            .param(param))
        }
        Some(v) => Ok(Some(v)),
    }
}

/// Creates a printed code at one of the caller's stores.
pub async fn create_code(
    tx: &mut Tx,
    scope: &MerchantScope,
    public_url: &str,
    input: CreateQrCode,
) -> Result<QrCode> {
    let store_id = input.store_id;
    if stores::get_own_store_tx(tx, scope, &store_id)
        .await?
        .is_none()
    {
        return Err(Error::not_found("store_not_found", "No such store.").param("store_id"));
    }
    let table_id = match (input.kind, input.table_id) {
        (QrKind::Table, Some(t)) => {
            if !stores::table_belongs(tx, scope, &store_id, &t).await? {
                return Err(
                    Error::not_found("table_not_found", "No such table at this store.")
                        .param("table_id"),
                );
            }
            Some(t)
        }
        (QrKind::Table, None) => {
            return Err(
                Error::invalid("missing_field", "A table code needs table_id.").param("table_id"),
            );
        }
        (_, Some(_)) => {
            return Err(
                Error::invalid("unexpected_field", "Only table codes take table_id.")
                    .param("table_id"),
            );
        }
        (_, None) => None,
    };
    let product_id = text_field(input.product_id, 64, "product_id")?;
    match (input.kind, &product_id) {
        (QrKind::Product, Some(p)) => {
            // The code opens this product at this store: it must be one of the merchant's.
            if crate::catalog::store::product_scoped_tx(tx, scope, p)
                .await?
                .is_none()
            {
                return Err(
                    Error::not_found("product_not_found", "No such product.").param("product_id")
                );
            }
        }
        (QrKind::Product, None) => {
            return Err(
                Error::invalid("missing_field", "A product code needs product_id.")
                    .param("product_id"),
            );
        }
        (_, Some(_)) => {
            return Err(
                Error::invalid("unexpected_field", "Only product codes take product_id.")
                    .param("product_id"),
            );
        }
        (_, None) => {}
    }
    let target = text_field(input.target, 500, "target")?;
    let short = new_short_id();
    let id = format!("qr_{}", crate::ids::new_body());
    let now = now_us();
    store::insert_qr(
        tx,
        scope,
        store::NewQr {
            id: &id,
            short: &short,
            store_id: &store_id,
            table_id: table_id.as_deref(),
            product_id: product_id.as_deref(),
            kind: input.kind.as_str(),
            target: target.as_deref(),
            now,
        },
    )
    .await?;
    let row = store::qr_scoped_tx(tx, scope, &id)
        .await?
        .ok_or_else(qr_not_found)?;
    Ok(qr_of(row, public_url))
}

pub async fn get_code(
    db: &Db,
    scope: &MerchantScope,
    public_url: &str,
    id: &str,
) -> Result<QrCode> {
    let row = store::qr_scoped(db, scope, id)
        .await?
        .ok_or_else(qr_not_found)?;
    Ok(qr_of(row, public_url))
}

pub async fn list_codes(
    db: &Db,
    scope: &MerchantScope,
    public_url: &str,
    store_id: Option<String>,
    status: Option<String>,
    page: &Page,
) -> Result<List<QrCode>> {
    if status
        .as_deref()
        .is_some_and(|s| s != "active" && s != "revoked")
    {
        return Err(
            Error::invalid("invalid_enum_value", "status is active or revoked.").param("status"),
        );
    }
    let rows = store::list_qr(
        db,
        scope,
        store_id,
        status,
        page.cursor(),
        page.fetch_limit(),
    )
    .await?;
    Ok(page.finish(rows.into_iter().map(|r| qr_of(r, public_url)).collect()))
}

/// Revokes a code: it stops resolving everywhere at once.
pub async fn revoke(
    tx: &mut Tx,
    scope: &MerchantScope,
    public_url: &str,
    id: &str,
) -> Result<QrCode> {
    store::qr_scoped_tx(tx, scope, id)
        .await?
        .ok_or_else(qr_not_found)?;
    store::revoke(tx, scope, id, None, now_us()).await?;
    let row = store::qr_scoped_tx(tx, scope, id)
        .await?
        .ok_or_else(qr_not_found)?;
    Ok(qr_of(row, public_url))
}

/// Replaces a code with a new one at the same touchpoint (same store, table, product, target);
/// the old one is revoked and points to its replacement.
pub async fn rotate(
    tx: &mut Tx,
    scope: &MerchantScope,
    public_url: &str,
    id: &str,
) -> Result<QrCode> {
    let old = store::qr_scoped_tx(tx, scope, id)
        .await?
        .ok_or_else(qr_not_found)?;
    if old.status != "active" {
        return Err(Error::conflict(
            "qr_revoked",
            "A revoked code cannot be rotated; create a new one.",
        ));
    }
    let short = new_short_id();
    let new_id = format!("qr_{}", crate::ids::new_body());
    let now = now_us();
    store::insert_qr(
        tx,
        scope,
        store::NewQr {
            id: &new_id,
            short: &short,
            store_id: &old.store_id,
            table_id: old.table_id.as_deref(),
            product_id: old.product_id.as_deref(),
            kind: &old.kind,
            target: old.target.as_deref(),
            now,
        },
    )
    .await?;
    store::revoke(tx, scope, id, Some(&new_id), now).await?;
    let row = store::qr_scoped_tx(tx, scope, &new_id)
        .await?
        .ok_or_else(qr_not_found)?;
    Ok(qr_of(row, public_url))
}

/// The active code of a kind at a store (and table), made when there is none yet.
pub async fn ensure_code(
    tx: &mut Tx,
    scope: &MerchantScope,
    public_url: &str,
    store_id: &str,
    kind: QrKind,
    table_id: Option<&str>,
) -> Result<QrCode> {
    if let Some(row) = store::active_for(tx, scope, store_id, kind.as_str(), table_id).await? {
        return Ok(qr_of(row, public_url));
    }
    create_code(
        tx,
        scope,
        public_url,
        CreateQrCode {
            kind,
            store_id: store_id.to_owned(),
            table_id: table_id.map(str::to_owned),
            product_id: None,
            target: None,
        },
    )
    .await
}

/// Why a printed code did not resolve; each is counted in metrics, since a spike of one means
/// stickers are being pasted over or tampered with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResolveFailure {
    /// Not of our form at all (a foreign or altered code).
    Tampered,
    /// Of our form, but no such code.
    Unknown,
    /// Revoked by its merchant.
    Revoked,
}

impl ResolveFailure {
    pub fn label(self) -> &'static str {
        match self {
            ResolveFailure::Tampered => "tampered",
            ResolveFailure::Unknown => "unknown",
            ResolveFailure::Revoked => "revoked",
        }
    }

    pub fn error(self) -> Error {
        match self {
            ResolveFailure::Revoked => Error::not_found(
                "qr_revoked",
                "This code was revoked by its merchant. Do not pay with it.",
            ),
            _ => Error::not_found(
                "qr_unknown",
                "This is not a valid o2o code. Do not pay with it.",
            ),
        }
    }
}

/// A resolved printed code: what the landing page needs.
pub struct Resolved {
    pub row: store::ResolvedRow,
    pub store: crate::stores::model::Store,
}

/// A printed code as a node keeps it in memory: the resolved row, and the JSON landing last
/// built from it with the minute it was built in. Only whether the store is open changes with
/// time, and opening hours change state on the minute, so one build serves its whole minute.
pub struct HotCode {
    pub row: store::ResolvedRow,
    landing: std::sync::Mutex<Option<(i64, axum::body::Bytes)>>,
}

impl HotCode {
    fn new(row: store::ResolvedRow) -> HotCode {
        HotCode {
            row,
            landing: std::sync::Mutex::new(None),
        }
    }
}

/// Resolves `/q/<short>`; counts every outcome in `qr_resolutions_total{result}`.
pub async fn resolve(
    db: &Db,
    segment: &str,
) -> Result<std::result::Result<Resolved, ResolveFailure>> {
    Ok(resolve_code(db, segment)
        .await?
        .map(|code| resolved_of(&code.row, now_us())))
}

/// Resolves `/q/<short>` to the code as kept in memory, for a caller that needs the code's own
/// row only (a payment: its kind, merchant, terms and store's time zone), not whether its store
/// is open now. Every resolution goes through here, so each outcome is counted once.
pub async fn resolve_code(
    db: &Db,
    segment: &str,
) -> Result<std::result::Result<std::sync::Arc<HotCode>, ResolveFailure>> {
    Ok(counted(hot_code(db, segment).await?))
}

/// Resolves `/q/<short>` for a JSON caller: the landing `build` serializes, built at most once a
/// minute per code on this node (the hot path of every machine scan).
pub async fn resolve_json(
    db: &Db,
    segment: &str,
    build: impl FnOnce(Resolved) -> Result<axum::body::Bytes>,
) -> Result<std::result::Result<axum::body::Bytes, ResolveFailure>> {
    let code = match resolve_code(db, segment).await? {
        Ok(code) => code,
        Err(failure) => return Ok(Err(failure)),
    };
    let now = now_us();
    let minute = now.div_euclid(60_000_000);
    let lock = || code.landing.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((at, json)) = lock().as_ref()
        && *at == minute
    {
        return Ok(Ok(json.clone()));
    }
    let json = build(resolved_of(&code.row, now))?;
    *lock() = Some((minute, json.clone()));
    Ok(Ok(json))
}

fn counted<T>(
    outcome: std::result::Result<T, ResolveFailure>,
) -> std::result::Result<T, ResolveFailure> {
    let label = match &outcome {
        Ok(_) => "ok",
        Err(f) => f.label(),
    };
    metrics::counter!("qr_resolutions_total", "result" => label).increment(1);
    outcome
}

/// The live code behind a short id, from this node's memory when it has it.
async fn hot_code(
    db: &Db,
    segment: &str,
) -> Result<std::result::Result<std::sync::Arc<HotCode>, ResolveFailure>> {
    let Ok(short) = parse_short_id(segment) else {
        return Ok(Err(ResolveFailure::Tampered));
    };
    let code = match db.hot().codes.get(short) {
        Ok(code) => code,
        Err(ticket) => {
            let Some(row) = store::resolve(db, short).await? else {
                return Ok(Err(ResolveFailure::Unknown));
            };
            let code = std::sync::Arc::new(HotCode::new(row));
            db.hot().codes.put(ticket, short, code.clone());
            code
        }
    };
    if code.row.status != "active" {
        return Ok(Err(ResolveFailure::Revoked));
    }
    Ok(Ok(code))
}

/// What a resolution shows at `now`: the code and its store (open or not).
fn resolved_of(row: &store::ResolvedRow, now: i64) -> Resolved {
    let row = row.clone();
    let store = stores::store_of(
        crate::stores::store::StoreRow {
            id: row.store_id.clone(),
            merchant_id: row.merchant_id.clone(),
            merchant_name: row.merchant_name.clone(),
            merchant_verified: row.merchant_verified,
            name: row.store_name.clone(),
            address: row.store_address.clone(),
            lat: row.store_lat,
            lng: row.store_lng,
            timezone: row.store_timezone.clone(),
            opening_hours: row.store_opening_hours.clone(),
            delivery_radius_m: row.store_delivery_radius_m,
            fence_radius_m: row.store_fence_radius_m,
            created_at: row.store_created_at,
        },
        now,
        None,
    );
    Resolved { row, store }
}

/// The EMVCo merchant-presented payload of a store's pay code: static, CNY, the o2o URL in a
/// merchant account template (ID 26, globally unique identifier `o2o.pay`), the merchant's
/// name in Latin letters (and in Chinese in the language template 64).
pub async fn emv_pay_qr(
    tx: &mut Tx,
    scope: &MerchantScope,
    public_url: &str,
    store_id: &str,
    mcc: &str,
    city: Option<&str>,
) -> Result<(String, QrCode)> {
    let store = stores::get_own_store_tx(tx, scope, store_id)
        .await?
        .ok_or_else(|| Error::not_found("store_not_found", "No such store.").param("id"))?;
    if mcc.len() != 4 || !mcc.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            Error::invalid("invalid_mcc", "mcc is a 4-digit merchant category code.").param("mcc"),
        );
    }
    let code = ensure_code(tx, scope, public_url, store_id, QrKind::StorePay, None).await?;
    let latin = |s: &str, max: usize| -> String {
        let t: String = s
            .chars()
            .filter(|c| {
                c.is_ascii_alphanumeric() || *c == ' ' || *c == '&' || *c == '.' || *c == '-'
            })
            .collect();
        let t = t
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
            .to_uppercase();
        t.chars().take(max).collect::<String>().trim().to_owned()
    };
    let mut name = latin(&store.merchant.name, 25);
    if name.is_empty() {
        name = "O2O MERCHANT".to_owned();
    }
    let city = match city {
        Some(c) => {
            let c = latin(c, 15);
            if c.is_empty() {
                return Err(
                    Error::invalid("invalid_city", "city must have Latin letters.").param("city"),
                );
            }
            c
        }
        None => city_of(&store.address).to_owned(),
    };
    let account = o2o_codes::emv::encode_objects(&[
        o2o_codes::Tlv::new("00", o2o_codes::printed::O2O_PAY_GUID),
        o2o_codes::Tlv::new("01", code.url.clone()),
    ])
    .map_err(|e| {
        Error::invalid(
            "url_too_long",
            format!("The public URL is too long for an EMVCo payload: {e}."),
        )
    })?;
    let local_name: String = store.merchant.name.chars().take(25).collect();
    let mut other = Vec::new();
    if !local_name.is_ascii()
        && let Ok(lang) = o2o_codes::emv::encode_objects(&[
            o2o_codes::Tlv::new("00", "ZH"),
            o2o_codes::Tlv::new("01", local_name),
        ])
    {
        other.push(o2o_codes::Tlv::new("64", lang));
    }
    let qr = o2o_codes::MerchantPresented {
        point_of_initiation: o2o_codes::PointOfInitiation::Static,
        merchant_accounts: vec![o2o_codes::Tlv::new("26", account)],
        merchant_category_code: mcc.to_owned(),
        currency_numeric: "156".to_owned(),
        amount: None,
        country_code: "CN".to_owned(),
        merchant_name: name,
        merchant_city: city,
        other,
    };
    let payload = qr.encode().map_err(|e| {
        Error::invalid(
            "emv_invalid",
            format!("The store's details do not fit an EMVCo payload: {e}."),
        )
    })?;
    Ok((payload, code))
}

/// The city of a Chinese address, in Latin letters, for the EMVCo city field.
fn city_of(address: &str) -> &'static str {
    const CITIES: &[(&str, &str)] = &[
        ("上海", "SHANGHAI"),
        ("北京", "BEIJING"),
        ("广州", "GUANGZHOU"),
        ("深圳", "SHENZHEN"),
        ("杭州", "HANGZHOU"),
        ("成都", "CHENGDU"),
        ("重庆", "CHONGQING"),
        ("南京", "NANJING"),
        ("武汉", "WUHAN"),
        ("西安", "XIAN"),
        ("苏州", "SUZHOU"),
        ("天津", "TIANJIN"),
        ("香港", "HONG KONG"),
    ];
    CITIES
        .iter()
        .find(|(zh, _)| address.contains(zh))
        .map(|(_, en)| *en)
        .unwrap_or("CHINA")
}

/// Issues pay codes for a consumer: the first valid now, the others each 50 s after the one
/// before, all bound to the consumer and the chosen source, each usable once. A card as the
/// source must be one of the consumer's own open cards (`404 card_not_found`, `409
/// card_closed`), as a payment from it must be: no code is made that could never pay.
pub async fn issue_pay_codes(
    db: &Db,
    user_id: &str,
    source: &str,
    count: u32,
) -> Result<Vec<PayCodeOut>> {
    if !(1..=5).contains(&count) {
        return Err(
            Error::invalid("count_out_of_range", "count must be between 1 and 5.").param("count"),
        );
    }
    if source != "wallet" {
        let card = crate::members::service::own_card(db, user_id, source)
            .await
            .map_err(|e| e.param("source"))?;
        if card.status != "active" {
            return Err(crate::members::engine::card_closed().param("source"));
        }
    }
    let now = now_us();
    let mut tx = db.begin().await?;
    let mut out = Vec::new();
    for i in 0..i64::from(count) {
        let code = PayCode::generate();
        let valid_from = now + i * PAY_CODE_STEP_US;
        let expires_at = valid_from + PAY_CODE_TTL_US;
        store::insert_pay_code(
            &mut tx,
            &sha256_hex(code.as_str()),
            user_id,
            source,
            valid_from,
            expires_at,
            now,
        )
        .await?;
        out.push(PayCodeOut {
            code: code.as_str().to_owned(),
            valid_from: rfc3339(valid_from),
            expires_at: rfc3339(expires_at),
        });
    }
    tx.commit().await?;
    Ok(out)
}

/// A freshly signed token: its text, claims, when it was made and when it expires (UTC µs).
struct Signed {
    text: String,
    claims: o2o_codes::token::Claims,
    now: i64,
    expires_at: i64,
}

fn sign_new(keys: &Keyring, kind: TokenKind, subject: &str, ttl_s: i64) -> Result<Signed> {
    let now = now_us();
    let expires_s = now / 1_000_000 + ttl_s;
    let text = keys
        .sign(kind, subject, expires_s)
        .map_err(|e| Error::invalid("invalid_subject", e.to_string()))?;
    let (_, claims, _) = o2o_codes::token::parse(&text).map_err(Error::internal)?;
    Ok(Signed {
        text,
        claims,
        now,
        expires_at: expires_s * 1_000_000,
    })
}

/// Issues a signed token (a coupon's voucher; an order's pickup code and exit pass go through
/// [`slot_token`]) and records it, so it can be used once and only at its merchant (and store,
/// when given).
#[allow(clippy::too_many_arguments)]
pub async fn issue_token(
    tx: &mut Tx,
    keys: &Keyring,
    kind: TokenKind,
    subject: &str,
    merchant_id: Option<&str>,
    store_id: Option<&str>,
    user_id: Option<&str>,
    ttl_s: i64,
) -> Result<String> {
    let t = sign_new(keys, kind, subject, ttl_s)?;
    store::insert_token(
        tx,
        None,
        &hex::encode(t.claims.nonce),
        kind.as_str(),
        subject,
        merchant_id,
        store_id,
        user_id,
        t.claims.key_id,
        t.expires_at,
        t.now,
    )
    .await?;
    Ok(t.text)
}

/// A token issued before, as it stands now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeptToken {
    /// Still usable: its text (the same bytes as when it was issued) and its expiry (UTC µs).
    Live {
        text: String,
        expires_at: i64,
    },
    Used,
    Expired,
}

/// The latest token of `kind` issued for `subject` to `user_id`, signed again from its row, so a
/// code shown twice is the same code. `None` when none was issued, or when the one issued cannot
/// be rebuilt (issued before key ids were kept, or signed by a key no longer held): the caller
/// issues a new one.
pub async fn kept_token(
    db: &Db,
    keys: &Keyring,
    kind: TokenKind,
    subject: &str,
    user_id: &str,
) -> Result<Option<KeptToken>> {
    let Some(row) = store::latest_token(db, kind.as_str(), subject, user_id).await? else {
        return Ok(None);
    };
    if row.used_at.is_some() {
        return Ok(Some(KeptToken::Used));
    }
    if row.expires_at <= now_us() {
        return Ok(Some(KeptToken::Expired));
    }
    Ok(rebuild(
        keys,
        kind,
        subject,
        &row.nonce,
        row.key_id,
        row.expires_at,
    ))
}

/// A live token signed again from what was kept of it; `None` when it cannot be.
fn rebuild(
    keys: &Keyring,
    kind: TokenKind,
    subject: &str,
    nonce: &str,
    key_id: Option<i64>,
    expires_at: i64,
) -> Option<KeptToken> {
    let nonce: [u8; 8] = hex::decode(nonce).ok()?.try_into().ok()?;
    let claims = o2o_codes::token::Claims {
        kind,
        subject: subject.to_owned(),
        expires_at: expires_at / 1_000_000,
        nonce,
        key_id: u32::try_from(key_id?).ok()?,
    };
    let text = keys.sign_again(&claims).ok()?;
    Some(KeptToken::Live { text, expires_at })
}

/// Rounds a racing request may lose before it gives up (each lost round means another request
/// just put a live token in the slot, so a second round nearly always shows it).
const SLOT_ROUNDS: usize = 4;

/// The one live token of `kind` for `subject` shown to `user_id` (an order's pickup code or exit
/// pass): the one holding the subject's slot while it can be shown (not used, not expired,
/// `user_id`'s and rebuildable), else a new one that takes the slot from it. Race-free: the
/// slot is unique (migration 0015), so of two requests issuing at once one inserts and the
/// other shows what it inserted. Returns the token's text and its expiry (UTC µs).
#[allow(clippy::too_many_arguments)]
pub async fn slot_token(
    db: &Db,
    keys: &Keyring,
    kind: TokenKind,
    subject: &str,
    merchant_id: Option<&str>,
    store_id: Option<&str>,
    user_id: &str,
    ttl_s: i64,
) -> Result<(String, i64)> {
    let slot = format!("{}:{subject}", kind.as_str());
    for _ in 0..SLOT_ROUNDS {
        let holder = store::slot_holder(db, &slot).await?;
        if let Some(h) = &holder
            && h.used_at.is_none()
            && h.expires_at > now_us()
            && h.user_id.as_deref() == Some(user_id)
            && let Some(KeptToken::Live { text, expires_at }) =
                rebuild(keys, kind, subject, &h.nonce, h.key_id, h.expires_at)
        {
            return Ok((text, expires_at));
        }
        let t = sign_new(keys, kind, subject, ttl_s)?;
        let mut tx = db.begin().await?;
        if let Some(h) = &holder
            && store::free_slot(&mut tx, &slot, &h.nonce, t.now).await? == 0
        {
            // Another request replaced it meanwhile: show that one in the next round.
            continue;
        }
        let took = store::insert_token(
            &mut tx,
            Some(&slot),
            &hex::encode(t.claims.nonce),
            kind.as_str(),
            subject,
            merchant_id,
            store_id,
            Some(user_id),
            t.claims.key_id,
            t.expires_at,
            t.now,
        )
        .await?;
        tx.commit().await?;
        if took {
            return Ok((t.text, t.expires_at));
        }
    }
    Err(Error::unavailable(
        "code_busy",
        "This code is being issued by another request; try again.",
        1,
    ))
}

/// Whether a token (already verified) was used.
pub async fn token_used(db: &Db, claims: &o2o_codes::token::Claims) -> Result<bool> {
    Ok(store::token_read(db, &hex::encode(claims.nonce))
        .await?
        .is_some_and(|row| row.used_at.is_some()))
}

fn invalid_code() -> Error {
    Error::invalid("qr_invalid", "This is not a valid o2o code.").param("payload")
}

fn scan_error(code: &'static str, message: &'static str) -> Error {
    Error::new(Kind::Conflict, code, message).param("payload")
}

/// A coupon's code as a merchant's cashier scanned it.
pub struct CouponCode {
    pub coupon_id: String,
    pub user_id: String,
    /// UTC microseconds.
    pub expires_at: i64,
}

/// Checks a coupon's code (the signed token a consumer shows for one of their coupons) for the
/// scoped merchant, without using it: the coupon itself is used once, by the payment.
/// Errors: `qr_invalid` (not a coupon's code), `code_expired`, `code_wrong_store` (another
/// merchant's coupon). `param` names the field it came in.
pub async fn check_coupon_code(
    db: &Db,
    keys: &Keyring,
    scope: &MerchantScope,
    text: &str,
    param: &'static str,
) -> Result<CouponCode> {
    let invalid = || Error::invalid("qr_invalid", "This is not a valid coupon code.").param(param);
    let text = text.trim();
    if text.len() > o2o_codes::token::MAX_TEXT_LEN {
        return Err(invalid());
    }
    let claims = keys
        .verify(text, now_us() / 1_000_000)
        .map_err(|e| match e {
            TokenError::Expired => scan_error(
                "code_expired",
                "This code has expired; ask for a fresh one.",
            )
            .param(param),
            _ => invalid(),
        })?;
    if claims.kind != TokenKind::Coupon {
        return Err(invalid());
    }
    let row = store::token_read(db, &hex::encode(claims.nonce))
        .await?
        .ok_or_else(invalid)?;
    if !row.merchant_id.as_deref().is_some_and(|m| scope.owns(m)) {
        return Err(scan_error(
            "code_wrong_store",
            "This coupon belongs to another merchant.",
        )
        .param(param));
    }
    let user_id = row.user_id.ok_or_else(invalid)?;
    Ok(CouponCode {
        coupon_id: claims.subject,
        user_id,
        expires_at: claims.expires_at.saturating_mul(1_000_000),
    })
}

/// Accepts a consumer's code at the counter: tells what it is and marks it used. Two cashiers
/// scanning one code at once: exactly one gets it; the other is told `code_used`.
pub async fn scan(
    db: &Db,
    keys: &Keyring,
    scope: &MerchantScope,
    staff_id: &str,
    input: ScanRequest,
) -> Result<Scanned> {
    let payload = input.payload.trim();
    if payload.is_empty() || payload.len() > 512 {
        return Err(invalid_code());
    }
    if let Some(store_id) = &input.store_id
        && !stores::own_store_exists(db, scope, store_id).await?
    {
        return Err(Error::not_found("store_not_found", "No such store.").param("store_id"));
    }
    let now = now_us();
    if payload.starts_with(o2o_codes::token::PREFIX) {
        let claims = keys.verify(payload, now / 1_000_000).map_err(|e| match e {
            TokenError::Expired => scan_error(
                "code_expired",
                "This code has expired; ask for a fresh one.",
            ),
            _ => invalid_code(),
        })?;
        let nonce = hex::encode(claims.nonce);
        let mut tx = db.begin().await?;
        let row = store::token(&mut tx, &nonce)
            .await?
            .ok_or_else(invalid_code)?;
        if row.merchant_id.as_deref().is_some_and(|m| !scope.owns(m)) {
            return Err(scan_error(
                "code_wrong_store",
                "This code belongs to another merchant.",
            ));
        }
        if let (Some(bound), Some(here)) = (&row.store_id, &input.store_id)
            && bound != here
        {
            return Err(scan_error(
                "code_wrong_store",
                "This code is for another store.",
            ));
        }
        if row.used_at.is_some() || !store::use_token(&mut tx, &nonce, staff_id, now).await? {
            return Err(scan_error("code_used", "This code was already used."));
        }
        tx.commit().await?;
        return Ok(Scanned {
            kind: claims.kind.as_str().to_owned(),
            consumer_id: row.user_id,
            source: None,
            subject: Some(claims.subject),
            store_id: row.store_id,
            expires_at: rfc3339(claims.expires_at.saturating_mul(1_000_000)),
            used: true,
            order: None,
            coupon: None,
        });
    }
    let code = PayCode::parse(payload).map_err(|_| invalid_code())?;
    let hash = sha256_hex(code.as_str());
    let mut tx = db.begin().await?;
    let row = store::pay_code(&mut tx, &hash)
        .await?
        .ok_or_else(invalid_code)?;
    if row.used_at.is_some() {
        return Err(scan_error("code_used", "This pay code was already used."));
    }
    if row.expires_at <= now {
        return Err(scan_error(
            "code_expired",
            "This pay code has expired; ask for a fresh one.",
        ));
    }
    if row.valid_from > now {
        return Err(scan_error(
            "code_not_yet_valid",
            "This pay code is not valid yet; show the current one.",
        ));
    }
    if !store::use_pay_code(&mut tx, &hash, staff_id, now).await? {
        return Err(scan_error("code_used", "This pay code was already used."));
    }
    tx.commit().await?;
    Ok(Scanned {
        kind: "pay_code".to_owned(),
        consumer_id: Some(row.user_id),
        source: Some(row.source),
        subject: None,
        store_id: input.store_id,
        expires_at: rfc3339(row.expires_at),
        used: true,
        order: None,
        coupon: None,
    })
}
