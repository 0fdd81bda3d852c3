//! Orders' shapes: the stored order (lines, discounts, delivery as JSON text), its public form,
//! the requests, and the state machine every channel follows.

use crate::db::rfc3339;
use crate::error::{Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// How the order reached the store.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    /// At a table: several phones add to one shared order; pay before the food or at the end.
    DineIn,
    /// Ordered ahead for a time slot, paid when ordering, handed over against a pickup code.
    Pickup,
    /// Brought to an address within the store's delivery radius, paid when ordering.
    Delivery,
    /// Products scanned by the consumer in the store, paid on the phone, checked at the door.
    ScanAndGo,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::DineIn => "dine_in",
            Channel::Pickup => "pickup",
            Channel::Delivery => "delivery",
            Channel::ScanAndGo => "scan_and_go",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Some(match s {
            "dine_in" => Channel::DineIn,
            "pickup" => Channel::Pickup,
            "delivery" => Channel::Delivery,
            "scan_and_go" => Channel::ScanAndGo,
            _ => return None,
        })
    }
}

/// Where an order is. The kitchen board shows `placed` (new) → `accepted` → `preparing` →
/// `ready` → `completed`.
///
/// - `open`: a cart being filled (a table's shared order before it goes to the kitchen, a
///   scan-and-go basket);
/// - `pending_payment`: a pickup or delivery order waiting for its payment (its stock is held
///   until `reserve_until`);
/// - `placed`, `accepted`, `preparing`, `ready`: in the kitchen (a scan-and-go order is `ready`
///   once paid: its exit pass opens the door);
/// - `completed` (handed over, eaten and paid, or through the door) and `canceled` are final.
///   Delivery orders end this journey at `ready` (ready for delivery); riders take them
///   on from there.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Open,
    PendingPayment,
    Placed,
    Accepted,
    Preparing,
    Ready,
    Completed,
    Canceled,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Open => "open",
            Status::PendingPayment => "pending_payment",
            Status::Placed => "placed",
            Status::Accepted => "accepted",
            Status::Preparing => "preparing",
            Status::Ready => "ready",
            Status::Completed => "completed",
            Status::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        Some(match s {
            "open" => Status::Open,
            "pending_payment" => Status::PendingPayment,
            "placed" => Status::Placed,
            "accepted" => Status::Accepted,
            "preparing" => Status::Preparing,
            "ready" => Status::Ready,
            "completed" => Status::Completed,
            "canceled" => Status::Canceled,
            _ => return None,
        })
    }

    pub fn is_final(self) -> bool {
        matches!(self, Status::Completed | Status::Canceled)
    }

    /// On the kitchen board.
    pub fn in_kitchen(self) -> bool {
        matches!(
            self,
            Status::Placed | Status::Accepted | Status::Preparing | Status::Ready
        )
    }
}

/// A move staff make on the board.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Step {
    Accept,
    Start,
    Ready,
    Complete,
}

impl Step {
    pub fn target(self) -> Status {
        match self {
            Step::Accept => Status::Accepted,
            Step::Start => Status::Preparing,
            Step::Ready => Status::Ready,
            Step::Complete => Status::Completed,
        }
    }

    /// Where this step may start from.
    pub fn allowed_from(self, channel: Channel) -> &'static [Status] {
        match (self, channel) {
            (Step::Accept, _) => &[Status::Placed],
            (Step::Start, _) => &[Status::Placed, Status::Accepted],
            (Step::Ready, _) => &[Status::Placed, Status::Accepted, Status::Preparing],
            (Step::Complete, Channel::ScanAndGo) => &[Status::Ready],
            // A delivery is completed by its rider's handover (the delivery capability).
            (Step::Complete, Channel::Delivery) => &[],
            (Step::Complete, _) => &[
                Status::Placed,
                Status::Accepted,
                Status::Preparing,
                Status::Ready,
            ],
        }
    }
}

/// The 409 for a move the state machine does not allow, saying which.
pub fn illegal(from: Status, to: &str) -> Error {
    Error::conflict(
        "order_transition_invalid",
        format!("This order is {}; it cannot go to {to}.", from.as_str()),
    )
}

/// One line of an order, as stored.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Line {
    pub line: u32,
    pub product_id: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    #[serde(default)]
    pub options: BTreeMap<String, Vec<String>>,
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
    pub added_by: Option<String>,
    pub added_at: i64,
    /// Sent to the kitchen.
    pub sent: bool,
    /// Units of the store's stock this line holds (0 when the store does not count stock).
    pub reserved: i64,
}

/// A discount on an order (filled by the marketing capability).
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
pub struct Discount {
    /// What gave it (a coupon id, a promotion).
    pub code: String,
    pub label: String,
    /// Minor units taken off.
    pub amount: i64,
}

/// Where a delivery goes.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryAddress {
    /// 1 to 200 characters.
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    /// Who to call at the door (optional).
    #[serde(default)]
    pub contact_phone: Option<String>,
    /// Filled by the server: the straight-line distance from the store, in metres.
    #[serde(default)]
    pub distance_m: Option<u32>,
}

/// An order row.
#[derive(Clone, Debug, sqlx::FromRow, serde::Deserialize)]
pub struct OrderRow {
    pub id: String,
    pub merchant_id: String,
    pub store_id: String,
    pub channel: String,
    pub status: String,
    pub table_id: Option<String>,
    pub active_table: Option<String>,
    pub user_id: Option<String>,
    pub currency: String,
    pub items: String,
    pub discounts: String,
    pub subtotal: i64,
    pub discount_total: i64,
    pub delivery_fee: i64,
    pub total: i64,
    pub amount_paid: i64,
    pub amount_refunded: i64,
    pub payments: String,
    pub delivery: Option<String>,
    pub pickup_at: Option<i64>,
    pub promised_at: Option<i64>,
    pub pickup_number: Option<String>,
    pub note: Option<String>,
    pub reserve_until: Option<i64>,
    pub cancel_reason: Option<String>,
    pub placed_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub ready_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

/// An order as the batch writes it: every column of `orders`, by name.
#[derive(Serialize)]
pub struct OrderWrite<'a> {
    id: &'a str,
    merchant_id: &'a str,
    store_id: &'a str,
    channel: &'static str,
    status: &'static str,
    table_id: Option<&'a str>,
    active_table: Option<&'a str>,
    user_id: Option<&'a str>,
    currency: &'a str,
    items: String,
    discounts: String,
    subtotal: i64,
    discount_total: i64,
    delivery_fee: i64,
    total: i64,
    amount_paid: i64,
    amount_refunded: i64,
    payments: String,
    delivery: Option<String>,
    pickup_at: Option<i64>,
    promised_at: Option<i64>,
    pickup_number: Option<&'a str>,
    note: Option<&'a str>,
    reserve_until: Option<i64>,
    cancel_reason: Option<&'a str>,
    placed_at: Option<i64>,
    paid_at: Option<i64>,
    ready_at: Option<i64>,
    completed_at: Option<i64>,
    canceled_at: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

/// A list or an address as the JSON text its column holds.
fn json_text<T: Serialize + ?Sized>(value: &T) -> String {
    serde_json::to_string(value).unwrap_or_else(|_| "null".into())
}

/// An order in memory (parsed JSON columns), as the sequencer changes it.
#[derive(Clone, Debug)]
pub struct OrderData {
    pub id: String,
    pub merchant_id: String,
    pub store_id: String,
    pub channel: Channel,
    pub status: Status,
    pub table_id: Option<String>,
    pub active_table: Option<String>,
    pub user_id: Option<String>,
    pub currency: String,
    pub lines: Vec<Line>,
    pub discounts: Vec<Discount>,
    pub subtotal: i64,
    pub discount_total: i64,
    pub delivery_fee: i64,
    pub total: i64,
    pub amount_paid: i64,
    pub amount_refunded: i64,
    pub payments: Vec<String>,
    pub delivery: Option<DeliveryAddress>,
    pub pickup_at: Option<i64>,
    pub promised_at: Option<i64>,
    pub pickup_number: Option<String>,
    pub note: Option<String>,
    pub reserve_until: Option<i64>,
    pub cancel_reason: Option<String>,
    pub placed_at: Option<i64>,
    pub paid_at: Option<i64>,
    pub ready_at: Option<i64>,
    pub completed_at: Option<i64>,
    pub canceled_at: Option<i64>,
    pub created_at: i64,
    pub updated_at: i64,
}

impl OrderData {
    pub fn from_row(r: OrderRow) -> Result<OrderData> {
        let bad = |what: &str| Error::internal(anyhow::anyhow!("order {} has a bad {what}", r.id));
        Ok(OrderData {
            channel: Channel::parse(&r.channel).ok_or_else(|| bad("channel"))?,
            status: Status::parse(&r.status).ok_or_else(|| bad("status"))?,
            lines: serde_json::from_str(&r.items).map_err(|_| bad("items"))?,
            discounts: serde_json::from_str(&r.discounts).map_err(|_| bad("discounts"))?,
            payments: serde_json::from_str(&r.payments).map_err(|_| bad("payments"))?,
            delivery: match &r.delivery {
                Some(d) => Some(serde_json::from_str(d).map_err(|_| bad("delivery"))?),
                None => None,
            },
            id: r.id,
            merchant_id: r.merchant_id,
            store_id: r.store_id,
            table_id: r.table_id,
            active_table: r.active_table,
            user_id: r.user_id,
            currency: r.currency,
            subtotal: r.subtotal,
            discount_total: r.discount_total,
            delivery_fee: r.delivery_fee,
            total: r.total,
            amount_paid: r.amount_paid,
            amount_refunded: r.amount_refunded,
            pickup_at: r.pickup_at,
            promised_at: r.promised_at,
            pickup_number: r.pickup_number,
            note: r.note,
            reserve_until: r.reserve_until,
            cancel_reason: r.cancel_reason,
            placed_at: r.placed_at,
            paid_at: r.paid_at,
            ready_at: r.ready_at,
            completed_at: r.completed_at,
            canceled_at: r.canceled_at,
            created_at: r.created_at,
            updated_at: r.updated_at,
        })
    }

    /// The row the batch writes (its lists and address kept as JSON text).
    pub fn row(&self) -> OrderWrite<'_> {
        OrderWrite {
            id: &self.id,
            merchant_id: &self.merchant_id,
            store_id: &self.store_id,
            channel: self.channel.as_str(),
            status: self.status.as_str(),
            table_id: self.table_id.as_deref(),
            active_table: self.active_table.as_deref(),
            user_id: self.user_id.as_deref(),
            currency: &self.currency,
            items: json_text(&self.lines),
            discounts: json_text(&self.discounts),
            subtotal: self.subtotal,
            discount_total: self.discount_total,
            delivery_fee: self.delivery_fee,
            total: self.total,
            amount_paid: self.amount_paid,
            amount_refunded: self.amount_refunded,
            payments: json_text(&self.payments),
            delivery: self.delivery.as_ref().map(json_text),
            pickup_at: self.pickup_at,
            promised_at: self.promised_at,
            pickup_number: self.pickup_number.as_deref(),
            note: self.note.as_deref(),
            reserve_until: self.reserve_until,
            cancel_reason: self.cancel_reason.as_deref(),
            placed_at: self.placed_at,
            paid_at: self.paid_at,
            ready_at: self.ready_at,
            completed_at: self.completed_at,
            canceled_at: self.canceled_at,
            created_at: self.created_at,
            updated_at: self.updated_at,
        }
    }

    /// What is still to pay.
    pub fn due(&self) -> i64 {
        (self.total - self.amount_paid).max(0)
    }

    pub fn fully_paid(&self) -> bool {
        self.total > 0 && self.amount_paid >= self.total
    }

    pub fn public(&self) -> Order {
        let t = |v: Option<i64>| v.map(rfc3339);
        Order {
            id: self.id.clone(),
            merchant_id: self.merchant_id.clone(),
            store_id: self.store_id.clone(),
            channel: self.channel,
            status: self.status,
            payment_status: if self.amount_refunded > 0 && self.amount_refunded >= self.amount_paid
            {
                "refunded"
            } else if self.fully_paid() {
                "paid"
            } else if self.amount_paid > 0 {
                "partially_paid"
            } else {
                "unpaid"
            },
            table_id: self.table_id.clone(),
            consumer_id: self.user_id.clone(),
            currency: self.currency.clone(),
            items: self
                .lines
                .iter()
                .map(|l| OrderItem {
                    line: l.line,
                    product_id: l.product_id.clone(),
                    name_zh: l.name_zh.clone(),
                    name_en: l.name_en.clone(),
                    options: l.options.clone(),
                    unit_price: l.unit_price,
                    quantity: l.quantity,
                    line_total: l.line_total,
                    added_by: l.added_by.clone(),
                    sent: l.sent,
                })
                .collect(),
            discounts: self.discounts.clone(),
            subtotal: self.subtotal,
            discount_total: self.discount_total,
            delivery_fee: self.delivery_fee,
            total: self.total,
            amount_paid: self.amount_paid,
            amount_due: self.due(),
            amount_refunded: self.amount_refunded,
            payments: self.payments.clone(),
            delivery: self.delivery.clone(),
            pickup_at: t(self.pickup_at),
            promised_at: t(self.promised_at),
            pickup_number: self.pickup_number.clone(),
            note: self.note.clone(),
            pay_before: if self.status == Status::Canceled || self.fully_paid() {
                None
            } else {
                t(self.reserve_until)
            },
            cancel_reason: self.cancel_reason.clone(),
            placed_at: t(self.placed_at),
            paid_at: t(self.paid_at),
            ready_at: t(self.ready_at),
            completed_at: t(self.completed_at),
            canceled_at: t(self.canceled_at),
            created_at: rfc3339(self.created_at),
            updated_at: rfc3339(self.updated_at),
        }
    }
}

/// An order line as the API shows it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OrderItem {
    pub line: u32,
    pub product_id: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    /// Option keys chosen, by group key.
    pub options: BTreeMap<String, Vec<String>>,
    /// Price of one unit with its options, computed by the server.
    pub unit_price: i64,
    pub quantity: i64,
    pub line_total: i64,
    /// The consumer (or staff member) who added it.
    pub added_by: Option<String>,
    /// Sent to the kitchen.
    pub sent: bool,
}

/// An order.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Order {
    pub id: String,
    pub merchant_id: String,
    pub store_id: String,
    pub channel: Channel,
    pub status: Status,
    /// `unpaid`, `partially_paid`, `paid` or `refunded`.
    pub payment_status: &'static str,
    pub table_id: Option<String>,
    pub consumer_id: Option<String>,
    pub currency: String,
    pub items: Vec<OrderItem>,
    pub discounts: Vec<Discount>,
    /// Sum of the lines.
    pub subtotal: i64,
    pub discount_total: i64,
    pub delivery_fee: i64,
    /// subtotal − discounts + delivery fee, never below zero.
    pub total: i64,
    pub amount_paid: i64,
    pub amount_due: i64,
    pub amount_refunded: i64,
    /// The payments (`pay_…`) made for this order.
    pub payments: Vec<String>,
    pub delivery: Option<DeliveryAddress>,
    pub pickup_at: Option<String>,
    pub promised_at: Option<String>,
    /// Six digits the cashier can type instead of scanning the pickup code.
    pub pickup_number: Option<String>,
    pub note: Option<String>,
    /// An unpaid order's stock is held until then; after it the order is canceled.
    pub pay_before: Option<String>,
    pub cancel_reason: Option<String>,
    pub placed_at: Option<String>,
    pub paid_at: Option<String>,
    pub ready_at: Option<String>,
    pub completed_at: Option<String>,
    pub canceled_at: Option<String>,
    pub created_at: String,
    pub updated_at: String,
}

/// An item asked for. Prices are never taken from the client: fields such as `unit_price` are
/// refused as unknown.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ItemInput {
    /// The product; or give `barcode` (scan-and-go).
    pub product_id: Option<String>,
    /// An EAN-13 / UPC-A barcode of the merchant's catalog.
    pub barcode: Option<String>,
    /// 1 to 99 (default 1).
    pub quantity: Option<i64>,
    /// Option keys chosen, by group key: `{"size": ["large"]}`.
    #[serde(default)]
    pub options: BTreeMap<String, Vec<String>>,
}

/// Paying while ordering.
#[derive(Clone, Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PayInput {
    /// `wallet` (default), a member card `crd_…`, or `cash` (staff at the counter).
    pub source: Option<String>,
    /// Part of what is due (splitting a table's bill); default: all of it.
    pub amount: Option<i64>,
    /// A coupon (`cpn_…`) of the payer's to use on the order.
    pub coupon: Option<String>,
}

/// `POST /v1/orders`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateOrder {
    /// `dine_in`, `pickup`, `delivery` or `scan_and_go`.
    pub channel: String,
    /// The store (for dine-in it may come from the table code instead).
    pub store_id: Option<String>,
    /// Dine-in: the table (`tbl_…`), or the scanned table code (its URL or `qr_…` id) in `qr`.
    pub table_id: Option<String>,
    pub qr: Option<String>,
    #[serde(default)]
    pub items: Vec<ItemInput>,
    /// Pickup: when (RFC 3339), within the store's opening hours; default as soon as ready.
    pub pickup_at: Option<String>,
    /// Delivery: where.
    pub delivery: Option<DeliveryAddress>,
    /// A note for the kitchen (up to 200 characters).
    pub note: Option<String>,
    /// Dine-in: send the items to the kitchen now (default false: they wait in the table's cart).
    #[serde(default)]
    pub place: bool,
    /// Pay while ordering (pickup and delivery are paid when ordering; without this the order
    /// waits in `pending_payment` for a few minutes).
    pub payment: Option<PayInput>,
}

/// `POST /v1/orders/quote`: a delivery order as it would be placed, to learn its fee, minimum
/// and promised time before paying.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    /// `delivery` (the one channel with a fee and a promise that depend on the address).
    pub channel: String,
    pub store_id: Option<String>,
    /// The items as they would be ordered (may be empty: the fee, minimum and promise still show).
    #[serde(default)]
    pub items: Vec<ItemInput>,
    /// Where to deliver.
    pub delivery: DeliveryAddress,
}

/// What a delivery would come to and when it would arrive, computed as placing it would.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct DeliveryQuote {
    pub store_id: String,
    pub currency: String,
    /// The items at the menu's prices with their options.
    pub subtotal: i64,
    pub delivery_fee: i64,
    /// subtotal + delivery fee (before any coupon).
    pub total: i64,
    /// The smallest subtotal the store delivers.
    pub min_order: i64,
    /// How much more of items the order needs to be delivered (0: enough).
    pub below_minimum_by: i64,
    /// Straight-line distance from the store, in metres.
    pub distance_m: u32,
    pub delivery_radius_m: i64,
    /// Minutes from ordering to arrival.
    pub promise_minutes: i64,
    /// When it would arrive if ordered now.
    pub promised_at: String,
}

/// `POST /v1/orders/{id}/items`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AddItems {
    pub items: Vec<ItemInput>,
    /// Send every unsent item to the kitchen now.
    #[serde(default)]
    pub place: bool,
}

/// `POST /v1/orders/{id}/cancel`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancelOrder {
    pub reason: Option<String>,
}

/// `POST /v1/orders/{id}/refund`.
#[derive(Debug, Default, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RefundOrder {
    /// Default: everything paid and not yet refunded.
    pub amount: Option<i64>,
    pub reason: Option<String>,
}

/// `POST /v1/stores/{id}/handover`: a pickup code or exit pass scanned, or a pickup number typed.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Handover {
    pub code: String,
}

/// A store's ordering settings.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OrderSettings {
    /// Delivery fee in minor units (default 500).
    pub delivery_fee: i64,
    /// Minimum subtotal of a delivery order (default 2000).
    pub min_order: i64,
    /// A fixed delivery promise in minutes (HEMA's 30 minutes); none: computed from distance.
    pub promise_minutes: Option<i64>,
    /// Minutes the kitchen needs (default 10): the earliest pickup, and part of a delivery's promise.
    pub prep_minutes: i64,
}

impl Default for OrderSettings {
    fn default() -> Self {
        OrderSettings {
            delivery_fee: 500,
            min_order: 2000,
            promise_minutes: None,
            prep_minutes: 10,
        }
    }
}

/// A code scanned at a handover, with the order it completed.
#[derive(Serialize, ToSchema)]
pub struct HandedOver {
    /// `pickup` or `exit_pass`.
    pub kind: String,
    pub order: Order,
}

/// A signed consumer-presented code for an order (pickup code, exit pass).
#[derive(Serialize, ToSchema)]
pub struct OrderCode {
    /// `pickup` or `exit_pass`.
    pub kind: &'static str,
    /// The text in the QR (`O2O:…`), verifiable offline with the platform's public key.
    pub code: String,
    /// Pickup: six digits the cashier can type instead.
    pub pickup_number: Option<String>,
    pub expires_at: String,
}
