//! Payment providers: where money enters and leaves o2o (wallet top-ups and withdrawals).
//!
//! [`PaymentProvider`] is shaped after the flows real providers have (WeChat Pay v3, Alipay,
//! card acquirers; PROTOCOLS.md): create a charge or a payout, learn its outcome from an
//! asynchronous *signed* notification, query it, refund it. The built-in [`SandboxBank`] is such
//! a provider, in process: it confirms at once, and its notifications are signed like a real
//! provider's (HMAC-SHA256 over `{id}.{timestamp}.{body}`), so the notification path that a real
//! provider would call is the one the sandbox uses too.

use futures::future::BoxFuture;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

/// Which way money goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Direction {
    /// From the consumer's bank into o2o (a top-up).
    In,
    /// From o2o to the consumer's bank (a withdrawal).
    Out,
}

/// What o2o asks a provider to do.
#[derive(Clone, Debug)]
pub struct ChargeRequest {
    /// o2o's own id for it (`wmv_…`): the provider's `out_trade_no`.
    pub reference: String,
    /// Whose money it is: the consumer (`usr_…`), or the merchant funding its budget (`mch_…`).
    pub account: String,
    pub amount: i64,
    pub currency: String,
    pub direction: Direction,
    /// The request's key, when the caller sent one (see `payments::service::charge_bank`). Asked
    /// again under it, a provider answers with the charge it made the first time, and refuses the
    /// key for a different request ([`ProviderError::KeyReused`]). A card acquirer takes it as its
    /// idempotency key; a provider that dedupes only on the order number (WeChat Pay's
    /// `out_trade_no`) would be sent it as that number.
    pub idempotency_key: Option<String>,
    /// For a refund (see [`PaymentProvider::refund`]): the provider's id of the charge it
    /// refunds.
    pub refund_of: Option<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChargeStatus {
    Pending,
    Succeeded,
    Failed,
}

/// A provider's view of a charge.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Charge {
    pub provider_ref: String,
    pub reference: String,
    pub account: String,
    pub amount: i64,
    pub currency: String,
    pub direction: Direction,
    pub status: ChargeStatus,
    /// A refund's charge (the provider's id for it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refund_of: Option<String>,
}

/// A signed notification as received over HTTP.
pub struct SignedNotification {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
}

/// Why a provider call failed.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    #[error("the notification's signature does not verify")]
    BadSignature,
    #[error("the notification is malformed: {0}")]
    Malformed(String),
    #[error("no such charge")]
    NotFound,
    #[error("the provider declined: {0}")]
    Declined(String),
    #[error("this idempotency key was used with a different request")]
    KeyReused,
    #[error("the provider could not be reached: {0}")]
    Unavailable(String),
}

pub trait PaymentProvider: Send + Sync {
    /// The provider's name, part of its ledger account id (`bank:<name>:CNY`).
    fn name(&self) -> &'static str;
    /// Starts a charge (money in) or a payout (money out); under an idempotency key already
    /// used, answers with that charge (see [`ChargeRequest::idempotency_key`]).
    fn create(&self, request: ChargeRequest) -> BoxFuture<'_, Result<Charge, ProviderError>>;
    /// The notification the provider sends when a charge settles; the caller verifies it with
    /// [`PaymentProvider::verify_notification`] before trusting it.
    fn notification_for(&self, charge: &Charge) -> SignedNotification;
    /// Checks a notification's signature and reads it.
    fn verify_notification(&self, n: &SignedNotification) -> Result<Charge, ProviderError>;
    /// The provider's current view of a charge.
    fn query(&self, provider_ref: &str) -> BoxFuture<'_, Result<Charge, ProviderError>>;
    /// Closes the order o2o asked for under `request.reference` (WeChat Pay's close-order), so
    /// that a reference not made by now never will be: asked for again, it is answered as
    /// failed. Answers the charge as it stands: made (it was made before the close), or failed.
    /// o2o closes an order before it releases a movement the provider has no record of.
    fn close(&self, request: ChargeRequest) -> BoxFuture<'_, Result<Charge, ProviderError>>;
    /// Refunds (part of) a charge that brought money in, back to where it came from (WeChat
    /// Pay's refund, Alipay's `trade.refund`): `request.refund_of` names the charge, by the
    /// provider's id for it, and `request.reference` is o2o's id for the refund (the provider's
    /// `out_refund_no`). Never more than is left of the charge: the rest is declined. Like
    /// [`PaymentProvider::create`], asked again for a reference or under a key already used, it
    /// answers with the refund made then; its outcome is notified and closed the same way.
    fn refund(&self, request: ChargeRequest) -> BoxFuture<'_, Result<Charge, ProviderError>>;
}

type HmacSha256 = Hmac<Sha256>;

/// The built-in sandbox bank: every charge succeeds at once (amounts within limits). Its
/// statement is kept in the database (`sandbox_charges`), apart from o2o's own records.
pub struct SandboxBank {
    secret: Vec<u8>,
    db: crate::db::Db,
}

/// A row of the sandbox's statement.
#[derive(sqlx::FromRow, serde::Deserialize)]
struct SandboxRow {
    provider_ref: String,
    reference: String,
    account: String,
    amount: i64,
    currency: String,
    direction: String,
    status: String,
    created_at: i64,
    refund_of: Option<String>,
}

impl SandboxRow {
    fn charge(self) -> Result<Charge, ProviderError> {
        Ok(Charge {
            provider_ref: self.provider_ref,
            reference: self.reference,
            account: self.account,
            amount: self.amount,
            currency: self.currency,
            direction: from_word(&self.direction)?,
            status: from_word(&self.status)?,
            refund_of: self.refund_of,
        })
    }
}

/// What the sandbox records for `request`, under a new id of its own.
fn sandbox_charge(request: &ChargeRequest, status: ChargeStatus) -> Charge {
    Charge {
        provider_ref: format!("sbx_{}", crate::ids::random_token(12)),
        reference: request.reference.clone(),
        account: request.account.clone(),
        amount: request.amount,
        currency: request.currency.clone(),
        direction: request.direction,
        status,
        refund_of: request.refund_of.clone(),
    }
}

fn from_word<T: serde::de::DeserializeOwned>(w: &str) -> Result<T, ProviderError> {
    serde_json::from_value(serde_json::Value::String(w.to_owned()))
        .map_err(|e| ProviderError::Malformed(e.to_string()))
}

/// How a direction or status is written (`in`, `succeeded`…).
fn word<T: Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(w)) => w,
        _ => String::new(),
    }
}

/// The sandbox's statement by a column's value.
#[derive(Clone, Copy)]
enum By {
    Account,
    ProviderRef,
    Reference,
    Key,
}

impl By {
    fn sql(self) -> &'static str {
        match self {
            By::Account => "SELECT * FROM sandbox_charges WHERE account = $1 ORDER BY reference",
            By::ProviderRef => "SELECT * FROM sandbox_charges WHERE provider_ref = $1",
            By::Reference => "SELECT * FROM sandbox_charges WHERE reference = $1",
            By::Key => "SELECT * FROM sandbox_charges WHERE idempotency_key = $1",
        }
    }
}

fn unavailable(e: crate::db::DbError) -> ProviderError {
    ProviderError::Unavailable(e.to_string())
}

impl SandboxBank {
    pub fn new(secret: Vec<u8>, db: crate::db::Db) -> SandboxBank {
        SandboxBank { secret, db }
    }

    /// The charges the sandbox made for `account` (a consumer or a merchant), in the order of
    /// o2o's references: what a real provider's statement would list.
    pub async fn charges_of(&self, account: &str) -> Vec<Charge> {
        self.rows(By::Account, account).await.unwrap_or_default()
    }

    /// The charge the sandbox made (or closed) for o2o's `reference`.
    pub async fn find(&self, reference: &str) -> Result<Charge, ProviderError> {
        self.one(By::Reference, reference).await
    }

    async fn rows(&self, by: By, value: &str) -> Result<Vec<Charge>, ProviderError> {
        self.raw(by, value)
            .await?
            .into_iter()
            .map(SandboxRow::charge)
            .collect()
    }

    async fn raw(&self, by: By, value: &str) -> Result<Vec<SandboxRow>, ProviderError> {
        self.db
            .fetch_all(crate::db::query(by.sql()).bind(value))
            .await
            .map_err(unavailable)
    }

    async fn one(&self, by: By, value: &str) -> Result<Charge, ProviderError> {
        self.rows(by, value)
            .await?
            .pop()
            .ok_or(ProviderError::NotFound)
    }

    /// Records `charge` unless its reference (or `key`) is taken, or it is a refund made beyond
    /// what is left of its charge; answers whether it did.
    async fn insert(
        &self,
        charge: &Charge,
        key: Option<&str>,
        now: i64,
    ) -> Result<bool, ProviderError> {
        // A refund made is checked against its charge in the insert, with the charge's row
        // locked first (PostgreSQL; SQLite's transaction holds the database's write lock), so
        // that refunds racing each other cannot both pass.
        let bounded = charge.status == ChargeStatus::Succeeded && charge.refund_of.is_some();
        let mut q = crate::db::query(if bounded {
            "INSERT INTO sandbox_charges (provider_ref, reference, account, amount, currency, direction, \
             status, idempotency_key, created_at, refund_of) \
             SELECT $1, $2, $3, $4, $5, $6, $7, $8, $9, $10 WHERE $4 <= ( \
               SELECT c.amount - COALESCE((SELECT SUM(r.amount) FROM sandbox_charges r \
                 WHERE r.refund_of = c.provider_ref AND r.status = 'succeeded'), 0) \
               FROM sandbox_charges c WHERE c.provider_ref = $11) \
             ON CONFLICT DO NOTHING"
        } else {
            "INSERT INTO sandbox_charges (provider_ref, reference, account, amount, currency, direction, \
             status, idempotency_key, created_at, refund_of) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) \
             ON CONFLICT DO NOTHING"
        })
        .bind(&charge.provider_ref)
        .bind(&charge.reference)
        .bind(&charge.account)
        .bind(charge.amount)
        .bind(&charge.currency)
        .bind(word(&charge.direction))
        .bind(word(&charge.status))
        .bind(key)
        .bind(now)
        .bind(charge.refund_of.as_deref());
        let Some(refunded) = charge.refund_of.as_deref().filter(|_| bounded) else {
            return Ok(self.db.execute(q).await.map_err(unavailable)? == 1);
        };
        q = q.bind(refunded);
        let mut tx = self.db.begin().await.map_err(unavailable)?;
        tx.execute(
            crate::db::query("UPDATE sandbox_charges SET status = status WHERE provider_ref = $1")
                .bind(refunded),
        )
        .await
        .map_err(unavailable)?;
        let made = tx.execute(q).await.map_err(unavailable)?;
        tx.commit().await.map_err(unavailable)?;
        Ok(made == 1)
    }

    /// The charge already made for `request`: for its reference, else under its key (a key
    /// kept no longer is let go, and `None` answered). The same request is answered with it;
    /// another is refused, charging nothing.
    async fn made_before(
        &self,
        request: &ChargeRequest,
        now: i64,
    ) -> Result<Option<Charge>, ProviderError> {
        let mut first = self.raw(By::Reference, &request.reference).await?.pop();
        if first.is_none()
            && let Some(k) = &request.idempotency_key
        {
            first = self.raw(By::Key, k).await?.pop();
            if first
                .as_ref()
                .is_some_and(|f| f.created_at <= now - crate::http::idempotency::KEEP_US)
            {
                // A key past o2o's own keeping time may name a new request.
                self.db
                    .execute(
                        crate::db::query(
                            "UPDATE sandbox_charges SET idempotency_key = NULL WHERE idempotency_key = $1",
                        )
                        .bind(k),
                    )
                    .await
                    .map_err(unavailable)?;
                return Ok(None);
            }
        }
        let Some(first) = first else {
            return Err(ProviderError::NotFound);
        };
        let first = first.charge()?;
        let same = first.account == request.account
            && first.amount == request.amount
            && first.currency == request.currency
            && first.direction == request.direction
            && first.refund_of == request.refund_of;
        if same {
            Ok(Some(first))
        } else {
            Err(ProviderError::KeyReused)
        }
    }

    fn sign(&self, id: &str, ts: &str, body: &str) -> String {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes any key length");
        mac.update(format!("{id}.{ts}.{body}").as_bytes());
        hex::encode(mac.finalize().into_bytes())
    }
}

impl PaymentProvider for SandboxBank {
    fn name(&self) -> &'static str {
        "sandbox"
    }

    fn create(&self, request: ChargeRequest) -> BoxFuture<'_, Result<Charge, ProviderError>> {
        Box::pin(async move {
            let now = crate::db::now_us();
            let charge = sandbox_charge(&request, ChargeStatus::Succeeded);
            let key = request.idempotency_key.as_deref();
            // Twice at most: the second time after letting go of a key kept no longer.
            for _ in 0..2 {
                if self.insert(&charge, key, now).await? {
                    return Ok(charge);
                }
                if let Some(first) = self.made_before(&request, now).await? {
                    return Ok(first);
                }
            }
            Err(ProviderError::Unavailable(
                "the sandbox could not record the charge".into(),
            ))
        })
    }

    fn close(&self, request: ChargeRequest) -> BoxFuture<'_, Result<Charge, ProviderError>> {
        Box::pin(async move {
            let closed = sandbox_charge(&request, ChargeStatus::Failed);
            // A closed order is kept as a failed charge under its reference (without the key:
            // the key may name a new request, which o2o makes under a new reference).
            if self.insert(&closed, None, crate::db::now_us()).await? {
                return Ok(closed);
            }
            self.one(By::Reference, &request.reference).await
        })
    }

    fn refund(&self, request: ChargeRequest) -> BoxFuture<'_, Result<Charge, ProviderError>> {
        Box::pin(async move {
            let now = crate::db::now_us();
            let Some(charge_ref) = request.refund_of.clone() else {
                return Err(ProviderError::Declined(
                    "a refund names the charge it refunds".into(),
                ));
            };
            if request.amount <= 0 {
                return Err(ProviderError::Declined(
                    "a refund is of a positive amount".into(),
                ));
            }
            let refund = sandbox_charge(&request, ChargeStatus::Succeeded);
            let key = request.idempotency_key.as_deref();
            // Twice at most, as `create`.
            for _ in 0..2 {
                match self.made_before(&request, now).await {
                    Ok(Some(first)) => return Ok(first),
                    Ok(None) | Err(ProviderError::NotFound) => {}
                    Err(e) => return Err(e),
                }
                let charge = match self.one(By::ProviderRef, &charge_ref).await {
                    Err(ProviderError::NotFound) => {
                        return Err(ProviderError::Declined("no such charge to refund".into()));
                    }
                    other => other?,
                };
                if charge.direction != Direction::In
                    || charge.status != ChargeStatus::Succeeded
                    || request.direction != Direction::Out
                    || charge.account != request.account
                    || charge.currency != request.currency
                {
                    return Err(ProviderError::Declined(
                        "only a charge made into this account can be refunded to it".into(),
                    ));
                }
                if self.insert(&refund, key, now).await? {
                    return Ok(refund);
                }
                // Not recorded: made meanwhile under its reference or key, or more than is left
                // of the charge.
                match self.made_before(&request, now).await {
                    Ok(Some(first)) => return Ok(first),
                    Ok(None) => continue,
                    Err(ProviderError::NotFound) => {
                        return Err(ProviderError::Declined(
                            "the refund is more than is left of the charge".into(),
                        ));
                    }
                    Err(e) => return Err(e),
                }
            }
            Err(ProviderError::Unavailable(
                "the sandbox could not record the refund".into(),
            ))
        })
    }

    fn notification_for(&self, charge: &Charge) -> SignedNotification {
        let body = serde_json::to_string(charge).unwrap_or_default();
        let id = format!("ntf_{}", crate::ids::random_token(8));
        let timestamp = (crate::db::now_us() / 1_000_000).to_string();
        let signature = self.sign(&id, &timestamp, &body);
        SignedNotification {
            id,
            timestamp,
            signature,
            body,
        }
    }

    fn verify_notification(&self, n: &SignedNotification) -> Result<Charge, ProviderError> {
        let expected = self.sign(&n.id, &n.timestamp, &n.body);
        if !bool::from(subtle::ConstantTimeEq::ct_eq(
            expected.as_bytes(),
            n.signature.as_bytes(),
        )) {
            return Err(ProviderError::BadSignature);
        }
        let ts: i64 = n
            .timestamp
            .parse()
            .map_err(|_| ProviderError::Malformed("timestamp".into()))?;
        if (crate::db::now_us() / 1_000_000 - ts).abs() > 300 {
            return Err(ProviderError::Malformed("stale timestamp".into()));
        }
        serde_json::from_str(&n.body).map_err(|e| ProviderError::Malformed(e.to_string()))
    }

    fn query(&self, provider_ref: &str) -> BoxFuture<'_, Result<Charge, ProviderError>> {
        let provider_ref = provider_ref.to_owned();
        Box::pin(async move { self.one(By::ProviderRef, &provider_ref).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sandbox bank over a fresh SQLite database (kept while the directory is).
    async fn bank() -> (SandboxBank, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let db = crate::db::Db::connect(&crate::db::DbOptions {
            url: format!("sqlite:{}", dir.path().join("o2o.db").display()),
            pg_schema: None,
            max_connections: 4,
        })
        .await
        .unwrap();
        db.migrate().await.unwrap();
        (SandboxBank::new(b"secret".to_vec(), db), dir)
    }

    #[tokio::test]
    async fn notifications_verify_and_tampering_is_caught() {
        let (bank, _dir) = bank().await;
        let charge = bank
            .create(ChargeRequest {
                reference: "wmv_1".into(),
                account: "usr_1".into(),
                amount: 100,
                currency: "CNY".into(),
                direction: Direction::In,
                idempotency_key: None,
                refund_of: None,
            })
            .await
            .unwrap();
        let n = bank.notification_for(&charge);
        assert_eq!(bank.verify_notification(&n).unwrap().amount, 100);
        let forged = SignedNotification {
            body: n.body.replace("100", "100000"),
            ..n
        };
        assert!(matches!(
            bank.verify_notification(&forged),
            Err(ProviderError::BadSignature)
        ));
        assert_eq!(
            bank.query(&charge.provider_ref).await.unwrap().status,
            ChargeStatus::Succeeded
        );
    }

    #[tokio::test]
    async fn one_key_is_one_charge_and_a_key_for_another_request_is_refused() {
        let (bank, _dir) = bank().await;
        let request = |reference: &str, amount: i64, key: Option<&str>| ChargeRequest {
            reference: reference.into(),
            account: "usr_1".into(),
            amount,
            currency: "CNY".into(),
            direction: Direction::In,
            idempotency_key: key.map(str::to_owned),
            refund_of: None,
        };
        let first = bank
            .create(request("wmv_1", 100, Some("k1")))
            .await
            .unwrap();
        // Asked again under the key (by a racing retry with its own reference): the first charge.
        let again = bank
            .create(request("wmv_2", 100, Some("k1")))
            .await
            .unwrap();
        assert_eq!(again.provider_ref, first.provider_ref);
        assert_eq!(again.reference, "wmv_1");
        // The key for another amount, or the other way: refused, nothing charged.
        assert!(matches!(
            bank.create(request("wmv_3", 101, Some("k1"))).await,
            Err(ProviderError::KeyReused)
        ));
        let mut out = request("wmv_4", 100, Some("k1"));
        out.direction = Direction::Out;
        assert!(matches!(
            bank.create(out).await,
            Err(ProviderError::KeyReused)
        ));
        // Without a key, or with another, each request is a charge of its own.
        bank.create(request("wmv_5", 100, None)).await.unwrap();
        bank.create(request("wmv_6", 100, None)).await.unwrap();
        bank.create(request("wmv_7", 100, Some("k2")))
            .await
            .unwrap();
        let refs: Vec<String> = bank
            .charges_of("usr_1")
            .await
            .into_iter()
            .map(|c| c.reference)
            .collect();
        assert_eq!(refs, ["wmv_1", "wmv_5", "wmv_6", "wmv_7"]);
        assert!(bank.charges_of("usr_2").await.is_empty());
        // The reference asked again without the key: the charge made for it (WeChat Pay's
        // `out_trade_no`), not a second one; for another amount, refused.
        let made = bank.find("wmv_5").await.unwrap();
        let same_ref = bank.create(request("wmv_5", 100, None)).await.unwrap();
        assert_eq!(same_ref.provider_ref, made.provider_ref);
        assert!(matches!(
            bank.create(request("wmv_5", 300, None)).await,
            Err(ProviderError::KeyReused)
        ));
        assert_eq!(bank.charges_of("usr_1").await.len(), 4);
        // Closing an order: one made stays made; one not made never will be, even asked for
        // later under a key.
        let closed = bank.close(request("wmv_5", 100, None)).await.unwrap();
        assert_eq!(
            (closed.status, closed.provider_ref),
            (ChargeStatus::Succeeded, made.provider_ref)
        );
        let closed = bank.close(request("wmv_9", 100, None)).await.unwrap();
        assert_eq!(closed.status, ChargeStatus::Failed);
        let late = bank
            .create(request("wmv_9", 100, Some("k9")))
            .await
            .unwrap();
        assert_eq!(late.status, ChargeStatus::Failed);
        // A key past o2o's own keeping time names a new request.
        bank.db
            .execute(
                crate::db::query(
                    "UPDATE sandbox_charges SET created_at = created_at - $1 WHERE idempotency_key = 'k1'",
                )
                .bind(crate::http::idempotency::KEEP_US),
            )
            .await
            .unwrap();
        let later = bank
            .create(request("wmv_8", 101, Some("k1")))
            .await
            .unwrap();
        assert_ne!(later.provider_ref, first.provider_ref);
        assert_eq!(bank.charges_of("usr_1").await.len(), 6);
        // The statement outlives the process: another sandbox over the same database reads it.
        let again = SandboxBank::new(b"secret".to_vec(), bank.db.clone());
        assert_eq!(again.charges_of("usr_1").await.len(), 6);
        assert_eq!(
            again.query(&first.provider_ref).await.unwrap().reference,
            "wmv_1"
        );
    }

    #[tokio::test]
    async fn a_charge_is_refunded_never_beyond_it_and_a_refund_once_per_key() {
        let (bank, _dir) = bank().await;
        let charge = |reference: &str, direction: Direction| ChargeRequest {
            reference: reference.into(),
            account: "usr_1".into(),
            amount: 1_000,
            currency: "CNY".into(),
            direction,
            idempotency_key: None,
            refund_of: None,
        };
        let top_up = bank.create(charge("wmv_1", Direction::In)).await.unwrap();
        let payout = bank.create(charge("wmv_2", Direction::Out)).await.unwrap();
        let refund = |reference: &str, of: &str, amount: i64, key: Option<&str>| ChargeRequest {
            reference: reference.into(),
            account: "usr_1".into(),
            amount,
            currency: "CNY".into(),
            direction: Direction::Out,
            idempotency_key: key.map(str::to_owned),
            refund_of: Some(of.to_owned()),
        };
        let first = bank
            .refund(refund("wmv_3", &top_up.provider_ref, 600, Some("r1")))
            .await
            .unwrap();
        assert_eq!(first.status, ChargeStatus::Succeeded);
        assert_eq!(
            first.refund_of.as_deref(),
            Some(top_up.provider_ref.as_str())
        );
        // Asked again under its key, or for its reference: the refund made, not a second.
        for again in [
            refund("wmv_4", &top_up.provider_ref, 600, Some("r1")),
            refund("wmv_3", &top_up.provider_ref, 600, None),
        ] {
            let again = bank.refund(again).await.unwrap();
            assert_eq!(again.provider_ref, first.provider_ref);
        }
        // The key for another refund: refused.
        assert!(matches!(
            bank.refund(refund("wmv_5", &top_up.provider_ref, 100, Some("r1")))
                .await,
            Err(ProviderError::KeyReused)
        ));
        // Beyond what is left of the charge (400), of a payout, of another's charge, of no
        // charge, or without naming one: declined, nothing recorded.
        let mut foreign = refund("wmv_9", &top_up.provider_ref, 100, None);
        foreign.account = "usr_2".into();
        let mut unnamed = refund("wmv_10", &top_up.provider_ref, 100, None);
        unnamed.refund_of = None;
        for declined in [
            refund("wmv_6", &top_up.provider_ref, 401, None),
            refund("wmv_7", &payout.provider_ref, 100, None),
            refund("wmv_8", "sbx_none", 100, None),
            foreign,
            unnamed,
        ] {
            let reference = declined.reference.clone();
            assert!(
                matches!(bank.refund(declined).await, Err(ProviderError::Declined(_))),
                "{reference}"
            );
            assert!(matches!(
                bank.find(&reference).await,
                Err(ProviderError::NotFound)
            ));
        }
        // The rest of it, exactly.
        let rest = bank
            .refund(refund("wmv_11", &top_up.provider_ref, 400, None))
            .await
            .unwrap();
        assert_eq!(rest.status, ChargeStatus::Succeeded);
        assert!(matches!(
            bank.refund(refund("wmv_12", &top_up.provider_ref, 1, None))
                .await,
            Err(ProviderError::Declined(_))
        ));
        // A refund closed before it was made is never made after.
        bank.close(refund("wmv_13", &top_up.provider_ref, 1, None))
            .await
            .unwrap();
        let late = bank
            .refund(refund("wmv_13", &top_up.provider_ref, 1, None))
            .await
            .unwrap();
        assert_eq!(late.status, ChargeStatus::Failed);
    }
}
