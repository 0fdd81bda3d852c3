//! Payments' public shapes: wallet, payments, refunds, balances, statements.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `POST /v1/wallet/top-ups` and `POST /v1/wallet/withdrawals`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WalletMove {
    /// Minor units (fen), positive, at most 5,000,000 (¥50,000).
    pub amount: i64,
    pub currency: String,
}

/// `POST /v1/wallet/top-ups/{id}/refund`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TopUpRefund {
    /// Minor units (fen), positive; all that is left of the top-up when absent.
    pub amount: Option<i64>,
}

/// A wallet's balances.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct WalletBalance {
    /// What can be spent now.
    pub balance: i64,
    /// Held for payments awaiting capture.
    pub held: i64,
    pub currency: String,
}

/// The answer of a top-up or withdrawal.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletMoved {
    pub id: String,
    pub wallet: WalletBalance,
}

/// One movement on a wallet, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub struct WalletEntry {
    pub id: String,
    /// `top_up`, `withdrawal`, `top_up_refund` (a top-up refunded to where it came from),
    /// `payment`, `refund`, `hold`, `capture`, `release`.
    pub kind: String,
    /// Signed: positive in, negative out.
    pub amount: i64,
    pub currency: String,
    /// The payment, refund or top-up it belongs to.
    pub reference: String,
    pub created_at: String,
}

/// `GET /v1/wallet`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Wallet {
    pub balance: i64,
    pub held: i64,
    pub currency: String,
    pub entries: Vec<WalletEntry>,
    pub has_more: bool,
}

/// `POST /v1/payments`: one of three shapes (see the API contract).
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreatePayment {
    /// Consumer scans a printed code: the scanned text (the code's URL) or the code's id.
    pub qr: Option<String>,
    /// Cashier flows: the store taking the money.
    pub store_id: Option<String>,
    /// Cashier scans the consumer's 18-digit pay code.
    pub pay_code: Option<String>,
    pub amount: i64,
    pub currency: String,
    /// `wallet`, a member card `crd_…`, or `cash` (cashier only).
    pub source: Option<String>,
    /// `automatic` (default) or `manual` (hold now, capture later).
    pub capture: Option<String>,
    /// Hold lifetime in seconds for `capture: manual` (60 s to 7 days, default 24 h).
    pub hold_seconds: Option<i64>,
    /// The order this pays for, if any.
    pub order_id: Option<String>,
    pub description: Option<String>,
    /// Consumer scans a printed code: a coupon (`cpn_…`) of theirs to use; `amount` is the bill
    /// and the consumer pays it less the coupon's discount. Cashier (pay code or cash): the
    /// coupon's scanned code (`O2O:…`, from `POST /v1/me/coupons/{id}/codes`); with a pay code the
    /// coupon must be the pay code owner's.
    pub coupon: Option<String>,
}

/// A payment.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Payment {
    pub id: String,
    /// `succeeded`, `requires_capture`, `canceled` or `failed`.
    pub status: String,
    pub amount: i64,
    pub currency: String,
    pub amount_captured: i64,
    pub amount_refunded: i64,
    /// The platform fee on what was captured, less what refunds returned.
    pub fee: i64,
    pub merchant_id: String,
    pub store_id: Option<String>,
    /// `wallet`, `crd_…` or `cash`.
    pub source: String,
    /// `qr` (consumer scanned a printed code), `pay_code` or `cash`.
    pub method: String,
    pub consumer_id: Option<String>,
    pub order_id: Option<String>,
    pub description: Option<String>,
    /// For `requires_capture`: when the hold lapses.
    pub capture_before: Option<String>,
    /// The coupon used, and what it took off (paid by the merchant's promotion account; the
    /// payer paid `amount`).
    pub coupon_id: Option<String>,
    pub discount: i64,
    /// What the payer's member tier took off (paid with a member card whose tier has a
    /// `percent_off`): a price cut by the merchant, so the merchant receives `amount`.
    pub member_discount: i64,
    /// The tier that gave `member_discount`.
    pub member_tier: Option<String>,
    pub created_at: String,
}

/// `POST /v1/payments/{id}/capture`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CapturePayment {
    /// At most the held amount (default: all of it); the rest is released.
    pub amount: Option<i64>,
}

/// `POST /v1/payments/{id}/cancel`: no fields. The body may be left out (or be empty, or `{}`);
/// a field (an `amount`, as if part of a hold could be cancelled) is refused, not ignored.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelPayment {}

/// `POST /v1/refunds`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRefund {
    /// The payment (`pay_…`).
    pub payment: String,
    /// Default: all that is left to refund.
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

/// A refund.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Refund {
    pub id: String,
    pub payment: String,
    pub amount: i64,
    pub currency: String,
    /// The part of the platform fee returned to the merchant.
    pub fee_returned: i64,
    pub status: String,
    pub reason: Option<String>,
    pub created_at: String,
}

/// `GET /v1/merchants/{id}/balance`.
#[derive(Debug, Serialize, ToSchema)]
pub struct MerchantBalance {
    pub merchant_id: String,
    pub currency: String,
    /// Paid out to the merchant's bank on settlement.
    pub available: i64,
    /// Collected, not yet settled.
    pub pending: i64,
    /// Cash taken at the counter (held by the merchant; never paid out by the platform).
    pub cash: i64,
}

/// `GET /v1/merchants/{id}/statements/{day}`.
#[derive(Debug, Serialize, ToSchema)]
pub struct Statement {
    pub merchant_id: String,
    /// The business day (in each store's time zone), `YYYY-MM-DD`.
    pub date: String,
    pub currency: String,
    /// Captured payments that day.
    pub gross: i64,
    /// Refunds issued that day.
    pub refunds: i64,
    /// Platform fees that day, less fees returned by that day's refunds.
    pub fees: i64,
    /// gross − refunds − fees.
    pub net: i64,
    /// Payments captured that day.
    pub count: i64,
    pub refund_count: i64,
    /// Of gross: paid in cash at the counter.
    pub cash: i64,
}
