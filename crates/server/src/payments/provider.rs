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
    /// Whose money it is (the consumer, `usr_…`).
    pub account: String,
    pub amount: i64,
    pub currency: String,
    pub direction: Direction,
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
}

pub trait PaymentProvider: Send + Sync {
    /// The provider's name, part of its ledger account id (`bank:<name>:CNY`).
    fn name(&self) -> &'static str;
    /// Starts a charge (money in) or a payout (money out).
    fn create(&self, request: ChargeRequest) -> BoxFuture<'_, Result<Charge, ProviderError>>;
    /// The notification the provider sends when a charge settles; the caller verifies it with
    /// [`PaymentProvider::verify_notification`] before trusting it.
    fn notification_for(&self, charge: &Charge) -> SignedNotification;
    /// Checks a notification's signature and reads it.
    fn verify_notification(&self, n: &SignedNotification) -> Result<Charge, ProviderError>;
    /// The provider's current view of a charge.
    fn query(&self, provider_ref: &str) -> BoxFuture<'_, Result<Charge, ProviderError>>;
}

type HmacSha256 = Hmac<Sha256>;

/// The built-in sandbox bank: every charge succeeds at once (amounts within limits).
pub struct SandboxBank {
    secret: Vec<u8>,
    charges: std::sync::Mutex<std::collections::HashMap<String, Charge>>,
}

impl SandboxBank {
    pub fn new(secret: Vec<u8>) -> SandboxBank {
        SandboxBank {
            secret,
            charges: Default::default(),
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
            let charge = Charge {
                provider_ref: format!("sbx_{}", crate::ids::random_token(12)),
                reference: request.reference,
                account: request.account,
                amount: request.amount,
                currency: request.currency,
                direction: request.direction,
                status: ChargeStatus::Succeeded,
            };
            if let Ok(mut charges) = self.charges.lock() {
                // The sandbox remembers recent charges for `query`; it is not the record.
                if charges.len() > 100_000 {
                    charges.clear();
                }
                charges.insert(charge.provider_ref.clone(), charge.clone());
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
            .ok()
            .and_then(|c| c.get(provider_ref).cloned());
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
}
