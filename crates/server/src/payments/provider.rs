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
    /// The provider's view of the charge o2o asked for under its own `reference` (WeChat Pay's
    /// query by `out_trade_no`), [`ProviderError::NotFound`] if it made none: how o2o learns
    /// the outcome of a request whose answer it never saw.
    fn find(&self, reference: &str) -> BoxFuture<'_, Result<Charge, ProviderError>>;
}

type HmacSha256 = Hmac<Sha256>;

/// The built-in sandbox bank: every charge succeeds at once (amounts within limits).
pub struct SandboxBank {
    secret: Vec<u8>,
    charges: std::sync::Mutex<Charges>,
}

/// The sandbox's recent charges and the keys they were asked under; it is not the record.
#[derive(Default)]
struct Charges {
    by_ref: std::collections::HashMap<String, Charge>,
    /// o2o's reference → provider reference.
    by_reference: std::collections::HashMap<String, String>,
    /// Idempotency key → provider reference, and when it was first used. A key counts for as
    /// long as o2o keeps its own ([`crate::http::idempotency::KEEP_US`]), after which the same
    /// key may name a new request.
    by_key: std::collections::HashMap<String, (String, i64)>,
}

impl SandboxBank {
    pub fn new(secret: Vec<u8>) -> SandboxBank {
        SandboxBank {
            secret,
            charges: Default::default(),
        }
    }

    /// The recent charges the sandbox made for `account` (a consumer or a merchant), in the order
    /// of o2o's references: what a real provider's statement would list.
    pub fn charges_of(&self, account: &str) -> Vec<Charge> {
        let charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
        let mut of: Vec<Charge> = charges
            .by_ref
            .values()
            .filter(|c| c.account == account)
            .cloned()
            .collect();
        of.sort_by(|a, b| a.reference.cmp(&b.reference));
        of
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
            let mut charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
            if let Some(first) = request
                .idempotency_key
                .as_ref()
                .and_then(|k| charges.by_key.get(k))
                .filter(|(_, at)| now - at < crate::http::idempotency::KEEP_US)
                .and_then(|(r, _)| charges.by_ref.get(r))
            {
                let same = first.account == request.account
                    && first.amount == request.amount
                    && first.currency == request.currency
                    && first.direction == request.direction;
                return if same {
                    Ok(first.clone())
                } else {
                    Err(ProviderError::KeyReused)
                };
            }
            let charge = Charge {
                provider_ref: format!("sbx_{}", crate::ids::random_token(12)),
                reference: request.reference,
                account: request.account,
                amount: request.amount,
                currency: request.currency,
                direction: request.direction,
                status: ChargeStatus::Succeeded,
            };
            if charges.by_ref.len() > 100_000 {
                // Recent charges only: a copy racing this clear could be charged again, and a key
                // kept here is forgotten early (a retry that o2o answered from its own stored reply
                // never reaches the sandbox).
                charges.by_ref.clear();
                charges.by_reference.clear();
                charges.by_key.clear();
            }
            charges
                .by_ref
                .insert(charge.provider_ref.clone(), charge.clone());
            charges
                .by_reference
                .insert(charge.reference.clone(), charge.provider_ref.clone());
            if let Some(k) = request.idempotency_key {
                charges.by_key.insert(k, (charge.provider_ref.clone(), now));
            }
            Ok(charge)
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
        let found = self
            .charges
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .by_ref
            .get(provider_ref)
            .cloned();
        Box::pin(async move { found.ok_or(ProviderError::NotFound) })
    }

    fn find(&self, reference: &str) -> BoxFuture<'_, Result<Charge, ProviderError>> {
        let charges = self.charges.lock().unwrap_or_else(|e| e.into_inner());
        let found = charges
            .by_reference
            .get(reference)
            .and_then(|r| charges.by_ref.get(r))
            .cloned();
        drop(charges);
        Box::pin(async move { found.ok_or(ProviderError::NotFound) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn notifications_verify_and_tampering_is_caught() {
        let bank = SandboxBank::new(b"secret".to_vec());
        let charge = bank
            .create(ChargeRequest {
                reference: "wmv_1".into(),
                account: "usr_1".into(),
                amount: 100,
                currency: "CNY".into(),
                direction: Direction::In,
                idempotency_key: None,
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
        let bank = SandboxBank::new(b"secret".to_vec());
        let request = |reference: &str, amount: i64, key: Option<&str>| ChargeRequest {
            reference: reference.into(),
            account: "usr_1".into(),
            amount,
            currency: "CNY".into(),
            direction: Direction::In,
            idempotency_key: key.map(str::to_owned),
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
            .into_iter()
            .map(|c| c.reference)
            .collect();
        assert_eq!(refs, ["wmv_1", "wmv_5", "wmv_6", "wmv_7"]);
        assert!(bank.charges_of("usr_2").is_empty());
        // A key past o2o's own keeping time names a new request.
        {
            let mut charges = bank.charges.lock().unwrap();
            let (_, at) = charges.by_key.get_mut("k1").unwrap();
            *at -= crate::http::idempotency::KEEP_US;
        }
        let later = bank
            .create(request("wmv_8", 101, Some("k1")))
            .await
            .unwrap();
        assert_ne!(later.provider_ref, first.provider_ref);
        assert_eq!(bank.charges_of("usr_1").len(), 5);
    }
}
