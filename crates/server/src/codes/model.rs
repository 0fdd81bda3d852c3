//! Codes' API shapes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The touchpoint a printed code stands at.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum QrKind {
    /// Pay this shop any amount.
    StorePay,
    /// Order at this table.
    Table,
    /// This item on a shelf.
    Product,
    /// A poster, receipt or event: an offer, a follow, a survey.
    Campaign,
    /// Log in to the store's WiFi.
    Wifi,
}

impl QrKind {
    pub fn as_str(self) -> &'static str {
        match self {
            QrKind::StorePay => "store_pay",
            QrKind::Table => "table",
            QrKind::Product => "product",
            QrKind::Campaign => "campaign",
            QrKind::Wifi => "wifi",
        }
    }

    pub fn parse(s: &str) -> Option<QrKind> {
        match s {
            "store_pay" => Some(QrKind::StorePay),
            "table" => Some(QrKind::Table),
            "product" => Some(QrKind::Product),
            "campaign" => Some(QrKind::Campaign),
            "wifi" => Some(QrKind::Wifi),
            _ => None,
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct QrCode {
    /// `qr_…`
    pub id: String,
    pub kind: QrKind,
    /// What a phone camera opens: `<public_url>/q/<short id>`.
    pub url: String,
    pub png_url: String,
    pub svg_url: String,
    /// `active` or `revoked`.
    pub status: String,
    pub merchant_id: String,
    pub store_id: String,
    pub table_id: Option<String>,
    pub product_id: Option<String>,
    pub target: Option<String>,
    /// After a rotation: the code that replaced this one.
    pub replaced_by: Option<String>,
    pub created_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateQrCode {
    pub kind: QrKind,
    pub store_id: String,
    /// Required for `table` codes: a table of that store.
    pub table_id: Option<String>,
    /// Required for `product` codes.
    pub product_id: Option<String>,
    /// For `campaign` codes: what the code leads to (an offer id or a URL), at most 500 characters.
    pub target: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct EmvPayQr {
    /// The EMVCo merchant-presented payload (static, CNY, CRC included).
    pub payload: String,
    pub png_url: String,
    /// The o2o URL carried in the merchant account template.
    pub url: String,
}

#[derive(Serialize, ToSchema)]
pub struct PublicKey {
    pub id: u32,
    pub algorithm: &'static str,
    /// The 32-byte Ed25519 public key, base64.
    pub public_key: String,
}

#[derive(Serialize, ToSchema)]
pub struct PublicKeys {
    /// The id of the key that signs new codes.
    pub active: u32,
    pub keys: Vec<PublicKey>,
    /// The token text format, for offline scanners.
    pub format: &'static str,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreatePayCodes {
    /// What the payment will draw on: `wallet` (default) or a member card `crd_…`.
    pub source: Option<String>,
    /// How many codes to hold ahead for a weak connection (1 to 5, default 1); each is valid
    /// 60 seconds, one after another.
    pub count: Option<u32>,
}

#[derive(Clone, Serialize, ToSchema)]
pub struct PayCodeOut {
    /// 18 digits.
    pub code: String,
    pub valid_from: String,
    pub expires_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct PayCodes {
    /// The code to show now.
    pub code: String,
    pub expires_at: String,
    pub source: String,
    /// Codes to show next, each valid in its own window.
    pub ahead: Vec<PayCodeOut>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ScanRequest {
    /// The scanned text: an 18-digit pay code or a signed token (`O2O:…`).
    pub payload: String,
    /// The store where the code is scanned (checked against codes bound to a store).
    pub store_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct Scanned {
    /// `pay_code`, `voucher`, `pickup`, `exit_pass`, `delivery_handover` or `coupon`.
    pub kind: String,
    /// The consumer the code belongs to.
    pub consumer_id: Option<String>,
    /// Pay codes: the funding source chosen.
    pub source: Option<String>,
    /// Tokens: what the token is for (an order, a voucher…).
    pub subject: Option<String>,
    pub store_id: Option<String>,
    pub expires_at: String,
    /// The code is now used; scanning it again answers `code_used`.
    pub used: bool,
    /// A pickup code or exit pass: the order it stands for, now completed (handed over).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub order: Option<serde_json::Value>,
    /// A coupon's code: the coupon (its template with the value and rules, its status). It is
    /// not used by the scan: send the scanned text as `coupon` with the pay-code or cash
    /// payment (`POST /v1/payments`), which uses the coupon.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub coupon: Option<serde_json::Value>,
}
