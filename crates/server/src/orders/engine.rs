//! Orders in the sequencer. Every change of an order goes through the node's sequencer (the
//! payments engine), in the same batch transaction as the money it moves: reserving stock when
//! items are ordered, confirming it when the order is paid, releasing it when the order is
//! canceled or its payment does not come in time. Two consumers racing for the last item are
//! applied one after the other, so exactly one gets it.
//!
//! The payments engine calls [`load`] (the orders and stock a batch touches, locked on
//! PostgreSQL), [`apply`] for each [`OrderOp`], [`before_pay`]/[`after_pay`] around a payment
//! that names an order, [`after_refund`], and [`flush`] before the batch's events are written.

use super::model::*;
use super::store;
use crate::db::Tx;
use crate::error::{Error, Result};
use crate::http::Reply;
use crate::payments::engine::{self as pe, NewPayment, State, ids_json};
use std::collections::{BTreeMap, HashMap, HashSet};

/// Who asks for a change.
#[derive(Clone, Debug)]
pub enum Actor {
    Consumer(String),
    /// A merchant's staff member or key (by merchant id).
    Staff {
        merchant_id: String,
        id: String,
    },
}

impl Actor {
    fn id(&self) -> &str {
        match self {
            Actor::Consumer(u) => u,
            Actor::Staff { id, .. } => id,
        }
    }
}

/// A line priced by the service (from the store's menu), to be added by the sequencer.
#[derive(Clone, Debug)]
pub struct NewLine {
    pub product_id: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub options: BTreeMap<String, Vec<String>>,
    pub unit_price: i64,
    pub quantity: i64,
}

/// What an order command does.
#[derive(Clone, Debug)]
pub enum OrderOp {
    /// Adds lines to the table's open order, opening one when the table has none (dine-in).
    Table {
        template: Box<OrderData>,
        actor: Actor,
        lines: Vec<NewLine>,
        place: bool,
        /// Pay what is due at once (pay before the food), all or nothing with the items.
        pay: Option<Box<NewPayment>>,
    },
    /// A new pickup, delivery or scan-and-go order, with its payment when paid while ordering.
    Create {
        order: Box<OrderData>,
        lines: Vec<NewLine>,
        pay: Option<Box<NewPayment>>,
    },
    AddLines {
        order_id: String,
        actor: Actor,
        lines: Vec<NewLine>,
        place: bool,
    },
    Place {
        order_id: String,
        actor: Actor,
    },
    Step {
        order_id: String,
        merchant_id: String,
        step: Step,
    },
    Cancel {
        order_id: String,
        actor: Actor,
        reason: Option<String>,
        business_day: String,
    },
    /// The sweeper cancels an order whose payment did not come in time.
    Expire {
        order_id: String,
        business_day: String,
    },
    Refund {
        order_id: String,
        merchant_id: String,
        amount: Option<i64>,
        reason: Option<String>,
        business_day: String,
        staff_id: Option<String>,
    },
}

/// The orders and stock of one batch.
#[derive(Default)]
pub struct Batch {
    pub orders: HashMap<String, OrderData>,
    /// Open table orders by table id (ids into `orders`).
    tables: HashMap<String, String>,
    stock: HashMap<(String, String), crate::catalog::store::StockRow>,
    changed: Vec<String>,
    changed_set: HashSet<String>,
    stock_deltas: HashMap<(String, String), i64>,
    /// Merchants whose counted stock moved.
    menus_changed: HashSet<String>,
    /// Merchants with an item that sold out or came back.
    sold_out_flips: HashSet<String>,
    /// Merchants whose catalog version this node raised less than a second ago (their menus
    /// show stock counts at most that stale; sold-out flips show at once).
    pub(crate) recently_bumped: HashSet<String>,
    /// The catalog versions this batch raised, for the menu cache after the commit.
    pub(crate) versions: Vec<(String, i64)>,
    /// The order this module last published, and how many events the batch had made then.
    last_published: Option<(usize, String)>,
}

impl Batch {
    fn touch(&mut self, id: &str) {
        if self.changed_set.insert(id.to_owned()) {
            self.changed.push(id.to_owned());
        }
    }
}

/// How long an unpaid pickup or delivery order holds its stock.
pub const PAY_WITHIN_US: i64 = 15 * 60 * 1_000_000;
/// How long an untouched open cart (a table's, a scan-and-go basket) holds its stock.
pub const CART_IDLE_US: i64 = 2 * 60 * 60 * 1_000_000;
/// Lines on one order at most.
pub const MAX_LINES: usize = 200;

/// An order that comes to nothing (no items, or only free ones): there is nothing to pay.
fn nothing_to_pay() -> Error {
    Error::invalid(
        "order_empty",
        "This order comes to nothing: there is nothing to pay (free items go with paid ones).",
    )
    .param("items")
}

fn order_not_found() -> Error {
    Error::not_found("order_not_found", "No such order.").param("id")
}

fn op_order_id(op: &OrderOp) -> Option<&str> {
    match op {
        OrderOp::Table { .. } | OrderOp::Create { .. } => None,
        OrderOp::AddLines { order_id, .. }
        | OrderOp::Place { order_id, .. }
        | OrderOp::Step { order_id, .. }
        | OrderOp::Cancel { order_id, .. }
        | OrderOp::Expire { order_id, .. }
        | OrderOp::Refund { order_id, .. } => Some(order_id),
    }
}

/// Loads the orders the batch names (by id, by table, and those its payments are for).
/// Returns the payment ids of orders that may be refunded, for the payments engine to load.
pub(crate) async fn load_orders(
    tx: &mut Tx,
    ops: &[&OrderOp],
    paid_orders: &[&str],
    state: &mut State,
) -> std::result::Result<Vec<String>, pe::BatchError> {
    let ids = ids_json(
        ops.iter()
            .filter_map(|op| op_order_id(op))
            .chain(paid_orders.iter().copied()),
    );
    let tables = ids_json(ops.iter().filter_map(|op| match op {
        OrderOp::Table { template, .. } => template.table_id.as_deref(),
        _ => None,
    }));
    let mut rows = Vec::new();
    if ids != "[]" {
        rows.extend(store::for_update_by_ids(tx, ids).await?);
    }
    if tables != "[]" {
        rows.extend(store::for_update_by_tables(tx, tables).await?);
    }
    let mut payments = Vec::new();
    for row in rows {
        let refundable = matches!(
            ops.iter()
                .find(|op| op_order_id(op) == Some(row.id.as_str())),
            Some(OrderOp::Cancel { .. } | OrderOp::Expire { .. } | OrderOp::Refund { .. })
        );
        let order =
            OrderData::from_row(row).map_err(|e| pe::BatchError::Corrupt(e.message.to_string()))?;
        if refundable {
            payments.extend(order.payments.iter().cloned());
        }
        if let Some(t) = &order.active_table {
            state.orders.tables.insert(t.clone(), order.id.clone());
        }
        state.orders.orders.insert(order.id.clone(), order);
    }
    Ok(payments)
}

/// Loads (and locks) the stock rows the batch's lines and releases touch.
pub(crate) async fn load_stock(
    tx: &mut Tx,
    ops: &[&OrderOp],
    state: &mut State,
) -> std::result::Result<(), pe::BatchError> {
    let mut pairs: Vec<(String, String)> = Vec::new();
    for op in ops {
        let (store_id, lines): (Option<String>, &[NewLine]) = match op {
            OrderOp::Table {
                template, lines, ..
            } => (Some(template.store_id.clone()), lines),
            OrderOp::Create { order, lines, .. } => (Some(order.store_id.clone()), lines),
            OrderOp::AddLines {
                order_id, lines, ..
            } => (
                state
                    .orders
                    .orders
                    .get(order_id)
                    .map(|o| o.store_id.clone()),
                lines,
            ),
            _ => (None, &[]),
        };
        if let Some(s) = store_id {
            pairs.extend(lines.iter().map(|l| (s.clone(), l.product_id.clone())));
        }
        if let Some(id) = op_order_id(op)
            && matches!(op, OrderOp::Cancel { .. } | OrderOp::Expire { .. })
            && let Some(o) = state.orders.orders.get(id)
        {
            pairs.extend(
                o.lines
                    .iter()
                    .filter(|l| l.reserved > 0)
                    .map(|l| (o.store_id.clone(), l.product_id.clone())),
            );
        }
    }
    if pairs.is_empty() {
        return Ok(());
    }
    pairs.sort();
    pairs.dedup();
    let json: Vec<serde_json::Value> = pairs
        .iter()
        .map(|(s, p)| serde_json::json!({"s": s, "p": p}))
        .collect();
    let rows = crate::catalog::store::stock_for_update(tx, serde_json::to_string(&json)?).await?;
    for r in rows {
        state
            .orders
            .stock
            .insert((r.store_id.clone(), r.product_id.clone()), r);
    }
    Ok(())
}

/// The order whose payments a command may refund.
pub(crate) fn refundable_order(op: &OrderOp) -> Option<&str> {
    match op {
        OrderOp::Cancel { order_id, .. }
        | OrderOp::Expire { order_id, .. }
        | OrderOp::Refund { order_id, .. } => Some(order_id),
        _ => None,
    }
}

/// The payment of a create-and-pay command, for the payments engine's account loading.
pub(crate) fn payment_of(op: &OrderOp) -> Option<&NewPayment> {
    match op {
        OrderOp::Create { pay: Some(p), .. } | OrderOp::Table { pay: Some(p), .. } => Some(p),
        _ => None,
    }
}

/// A product sold out at the store, by its Chinese name or else its English one (kept as the
/// figure `name` for pages, see `web::refusals`); `why` ends the sentence.
pub(crate) fn sold_out(name: &Option<String>, alt: &Option<String>, why: &str) -> Error {
    let named = name.as_deref().or(alt.as_deref());
    Error::conflict(
        "product_sold_out",
        format!("{} {why}", named.unwrap_or("This product")),
    )
    .param("items")
    .arg_some("name", named)
}

/// What a reservation that finds too little stock says.
const TOO_LITTLE_LEFT: &str = "is sold out here (or fewer are left than you asked for).";

/// Reserves the stock of `lines` at `store_id`; all or nothing.
fn reserve(state: &mut State, store_id: &str, lines: &[NewLine]) -> Result<Vec<i64>> {
    // Check first (several lines may name one product), then take.
    let mut want: HashMap<&str, i64> = HashMap::new();
    for l in lines {
        *want.entry(&l.product_id).or_default() += l.quantity;
    }
    for l in lines {
        if let Some(row) = state
            .orders
            .stock
            .get(&(store_id.to_owned(), l.product_id.clone()))
        {
            if !row.available {
                return Err(sold_out(&l.name_zh, &l.name_en, TOO_LITTLE_LEFT));
            }
            if let Some(n) = row.stock
                && n < want[l.product_id.as_str()]
            {
                return Err(sold_out(&l.name_zh, &l.name_en, TOO_LITTLE_LEFT));
            }
        }
    }
    let mut reserved = Vec::with_capacity(lines.len());
    for l in lines {
        let key = (store_id.to_owned(), l.product_id.clone());
        let counted = match state.orders.stock.get_mut(&key) {
            Some(row) if row.stock.is_some() => {
                let n = row.stock.unwrap_or(0) - l.quantity;
                row.stock = Some(n);
                state.orders.menus_changed.insert(row.merchant_id.clone());
                if n == 0 {
                    state.orders.sold_out_flips.insert(row.merchant_id.clone());
                }
                true
            }
            _ => false,
        };
        if counted {
            *state.orders.stock_deltas.entry(key).or_default() -= l.quantity;
            reserved.push(l.quantity);
        } else {
            reserved.push(0);
        }
    }
    Ok(reserved)
}

/// Gives back the stock an order's lines hold.
fn release(state: &mut State, order_id: &str) {
    let Some(o) = state.orders.orders.get_mut(order_id) else {
        return;
    };
    let store_id = o.store_id.clone();
    let mut back = Vec::new();
    for l in o.lines.iter_mut() {
        if l.reserved > 0 {
            back.push((l.product_id.clone(), l.reserved));
            l.reserved = 0;
        }
    }
    for (product, n) in back {
        let key = (store_id.clone(), product);
        if let Some(row) = state.orders.stock.get_mut(&key)
            && let Some(s) = row.stock
        {
            state.orders.menus_changed.insert(row.merchant_id.clone());
            if s == 0 {
                state.orders.sold_out_flips.insert(row.merchant_id.clone());
            }
            row.stock = Some(s + n);
            *state.orders.stock_deltas.entry(key).or_default() += n;
        }
    }
}

/// An order paid in full at once (all but a table's) may not come to more than one payment
/// takes (see [`before_pay`]): it could never be paid.
fn payable_at_once(o: &OrderData) -> Result<()> {
    if o.channel != Channel::DineIn && o.total > crate::payments::service::MAX_PAYMENT {
        return Err(Error::invalid(
            "amount_too_large",
            format!(
                "This order would come to more than one payment takes ({}); it is paid at once.",
                o2o_ledger::shown_price(crate::payments::service::MAX_PAYMENT, &o.currency)
            ),
        )
        .param("items"));
    }
    Ok(())
}

/// Recomputes subtotal and total after the lines changed.
fn totals(o: &mut OrderData) -> Result<()> {
    let mut subtotal: i64 = 0;
    for l in &o.lines {
        subtotal = subtotal
            .checked_add(l.line_total)
            .ok_or_else(|| Error::invalid("amount_too_large", "The order is too large."))?;
    }
    let discounts: i64 = o.discounts.iter().map(|d| d.amount.max(0)).sum();
    o.subtotal = subtotal;
    o.discount_total = discounts.min(subtotal);
    o.total = subtotal - o.discount_total + o.delivery_fee;
    Ok(())
}

fn add_lines(
    state: &mut State,
    order_id: &str,
    lines: &[NewLine],
    added_by: Option<&str>,
) -> Result<()> {
    let now = state.now;
    let (store_id, count) = {
        let o = &state.orders.orders[order_id];
        (o.store_id.clone(), o.lines.len())
    };
    if count + lines.len() > MAX_LINES {
        return Err(Error::invalid(
            "too_many_items",
            format!("An order holds at most {MAX_LINES} lines."),
        )
        .param("items")
        .arg("max", MAX_LINES));
    }
    let reserved = reserve(state, &store_id, lines)?;
    let o = state
        .orders
        .orders
        .get_mut(order_id)
        .ok_or_else(order_not_found)?;
    let before = o.lines.clone();
    for (l, r) in lines.iter().zip(reserved) {
        let next = o.lines.iter().map(|l| l.line).max().unwrap_or(0) + 1;
        o.lines.push(Line {
            line: next,
            product_id: l.product_id.clone(),
            name_zh: l.name_zh.clone(),
            name_en: l.name_en.clone(),
            options: l.options.clone(),
            unit_price: l.unit_price,
            quantity: l.quantity,
            line_total: l.unit_price.saturating_mul(l.quantity),
            added_by: added_by.map(str::to_owned),
            added_at: now,
            sent: false,
            reserved: r,
        });
    }
    if let Err(e) = totals(o).and_then(|()| payable_at_once(o)) {
        o.lines = before;
        release_lines_taken(state, &store_id, lines);
        return Err(e);
    }
    if matches!(o.status, Status::Open) {
        o.reserve_until = Some(now + CART_IDLE_US);
    }
    o.updated_at = now;
    Ok(())
}

/// Undoes [`reserve`] for lines whose order could not take them.
fn release_lines_taken(state: &mut State, store_id: &str, lines: &[NewLine]) {
    for l in lines {
        let key = (store_id.to_owned(), l.product_id.clone());
        if let Some(row) = state.orders.stock.get_mut(&key)
            && let Some(s) = row.stock
        {
            row.stock = Some(s + l.quantity);
            *state.orders.stock_deltas.entry(key).or_default() += l.quantity;
        }
    }
}

/// Frees the order's table for the next guests.
fn close_table(state: &mut State, order_id: &str) {
    state.orders.tables.retain(|_, id| id != order_id);
}

/// Sends unsent lines to the kitchen. Returns whether anything was sent.
fn send(o: &mut OrderData, now: i64) -> bool {
    let mut any = false;
    for l in o.lines.iter_mut().filter(|l| !l.sent) {
        l.sent = true;
        any = true;
    }
    if any {
        if o.placed_at.is_none() {
            o.placed_at = Some(now);
        }
        // New items go back to the kitchen's "new" column.
        o.status = Status::Placed;
        o.reserve_until = None;
    }
    any
}

fn publish(state: &mut State, id: &str, kind: &'static str) -> bool {
    publish_as(state, id, &[kind])
}

/// Publishes the order as it now is once per kind, serialized once for all of them.
fn publish_as(state: &mut State, id: &str, kinds: &[&'static str]) -> bool {
    let Some(o) = state.orders.orders.get(id) else {
        return false;
    };
    let data = crate::events::raw(&o.public());
    let (m, s) = (o.merchant_id.clone(), o.store_id.clone());
    for kind in kinds {
        pe::event_json(state, &m, Some(&s), kind, data.clone());
    }
    state.orders.last_published = Some((pe::events_made(state), id.to_owned()));
    true
}

/// Publishes the order as `kind` and answers with the event's own JSON text: the order as it
/// now is, serialized once for both.
fn publish_and_reply(
    state: &mut State,
    id: &str,
    kind: &'static str,
    created: bool,
) -> Result<Reply> {
    if !publish(state, id, kind) {
        return Err(order_not_found());
    }
    reply_as_published(state, id, created)
}

/// Answers with the order as the batch's last event published it, where that event is this
/// order's (a payment ends with one, see `after_pay`); else with the order serialized anew.
fn reply_as_published(state: &State, id: &str, created: bool) -> Result<Reply> {
    let made = pe::events_made(state);
    match (&state.orders.last_published, pe::last_event_json(state)) {
        (Some((at, order)), Some(body)) if *at == made && order == id => Ok(Reply {
            status: if created { 201 } else { 200 },
            body: body.to_owned(),
        }),
        _ => reply(state, id, created),
    }
}

fn reply(state: &State, id: &str, created: bool) -> Result<Reply> {
    let o = state.orders.orders.get(id).ok_or_else(order_not_found)?;
    if created {
        Reply::created(&o.public())
    } else {
        Reply::ok(&o.public())
    }
}

fn may_touch(o: &OrderData, actor: &Actor) -> bool {
    match actor {
        Actor::Staff { merchant_id, .. } => &o.merchant_id == merchant_id,
        // Anyone at the table may add to its order (the order id is known only from the table);
        // other orders belong to the consumer who placed them.
        Actor::Consumer(u) => o.channel == Channel::DineIn || o.user_id.as_deref() == Some(u),
    }
}

/// Applies one order command.
pub(crate) fn apply(state: &mut State, op: &OrderOp) -> Result<Reply> {
    match op {
        OrderOp::Table {
            template,
            actor,
            lines,
            place,
            pay,
        } => {
            let table = template.table_id.clone().unwrap_or_default();
            let existing = state.orders.tables.get(&table).cloned();
            // Paying with the items: on a refused payment, the order is as it was.
            let before = existing
                .as_ref()
                .and_then(|id| state.orders.orders.get(id))
                .cloned();
            let (id, created) = match existing {
                Some(id) => (id, false),
                None => {
                    let mut o = (**template).clone();
                    o.active_table = Some(table.clone());
                    o.created_at = state.now;
                    o.updated_at = state.now;
                    let id = o.id.clone();
                    state.orders.tables.insert(table.clone(), id.clone());
                    state.orders.orders.insert(id.clone(), o);
                    (id, true)
                }
            };
            if let Err(e) = add_lines(state, &id, lines, Some(actor.id())) {
                if created {
                    state.orders.orders.remove(&id);
                    state.orders.tables.remove(&table);
                }
                return Err(e);
            }
            let now = state.now;
            let sent = *place && send(state.orders.orders.get_mut(&id).expect("present"), now);
            let kind = if sent {
                "order.placed"
            } else {
                "order.updated"
            };
            let Some(p) = pay else {
                state.orders.touch(&id);
                return publish_and_reply(state, &id, kind, created);
            };
            // What happened to the order goes out first, then its payment: a guest who pays
            // before the food sends it to the kitchen and then pays for it, and the outbox says
            // so in that order (`order.placed`, `payment.succeeded`, `order.paid`).
            let published = pe::events_made(state);
            publish(state, &id, kind);
            let mut p = (**p).clone();
            p.order_id = Some(id.clone());
            p.amount = 0;
            if let Err(e) = pe::pay(state, &p) {
                pe::take_back_events(state, published);
                release_lines_taken(state, &template.store_id, lines);
                match before {
                    Some(o) => {
                        state.orders.orders.insert(id.clone(), o);
                    }
                    None => {
                        state.orders.orders.remove(&id);
                        state.orders.tables.remove(&table);
                    }
                }
                return Err(e);
            }
            state.orders.touch(&id);
            // The payment published the order as it now is (see `after_pay`).
            reply_as_published(state, &id, created)
        }
        OrderOp::Create { order, lines, pay } => {
            let mut o = (**order).clone();
            o.created_at = state.now;
            o.updated_at = state.now;
            let id = o.id.clone();
            state.orders.orders.insert(id.clone(), o);
            let undo = |state: &mut State| {
                release(state, &id);
                state.orders.orders.remove(&id);
            };
            if let Err(e) = add_lines(state, &id, lines, order.user_id.as_deref()) {
                state.orders.orders.remove(&id);
                return Err(e);
            }
            let now = state.now;
            // Pickup and delivery are paid when ordered: one that comes to nothing could never
            // be paid, and would wait for payment until its time ran out.
            if matches!(order.channel, Channel::Pickup | Channel::Delivery)
                && state.orders.orders[&id].total <= 0
            {
                undo(state);
                return Err(nothing_to_pay());
            }
            {
                let o = state.orders.orders.get_mut(&id).expect("present");
                match o.channel {
                    Channel::Pickup | Channel::Delivery => {
                        for l in o.lines.iter_mut() {
                            l.sent = true;
                        }
                        o.status = Status::PendingPayment;
                        o.reserve_until = Some(now + PAY_WITHIN_US);
                    }
                    _ => {}
                }
            }
            if let Some(p) = pay {
                let mut p = (**p).clone();
                // Zero asks for what is due (after a coupon the payment brings).
                p.amount = 0;
                if state.orders.orders[&id].due() <= 0 {
                    undo(state);
                    return Err(nothing_to_pay());
                }
                if let Err(e) = pe::pay(state, &p) {
                    undo(state);
                    return Err(e);
                }
                state.orders.touch(&id);
                // The payment published the order, placed by it (see `after_pay`).
                return reply_as_published(state, &id, true);
            }
            state.orders.touch(&id);
            let kind = if state.orders.orders[&id].status.in_kitchen() {
                "order.placed"
            } else {
                "order.updated"
            };
            publish_and_reply(state, &id, kind, true)
        }
        OrderOp::AddLines {
            order_id,
            actor,
            lines,
            place,
        } => {
            let o = state
                .orders
                .orders
                .get(order_id)
                .filter(|o| may_touch(o, actor))
                .ok_or_else(order_not_found)?;
            let addable = match o.channel {
                Channel::DineIn => !o.status.is_final() && !o.fully_paid(),
                Channel::ScanAndGo => o.status == Status::Open,
                _ => false,
            };
            if !addable {
                return Err(Error::conflict(
                    "order_not_open",
                    format!(
                        "This order is {}{}; no more items can be added.",
                        o.status.as_str(),
                        if o.fully_paid() { " and paid" } else { "" }
                    ),
                ));
            }
            let channel = o.channel;
            add_lines(state, order_id, lines, Some(actor.id()))?;
            let now = state.now;
            let sent = channel == Channel::DineIn
                && *place
                && send(state.orders.orders.get_mut(order_id).expect("present"), now);
            state.orders.touch(order_id);
            publish_and_reply(
                state,
                order_id,
                if sent {
                    "order.placed"
                } else {
                    "order.updated"
                },
                false,
            )
        }
        OrderOp::Place { order_id, actor } => {
            let now = state.now;
            let o = state
                .orders
                .orders
                .get_mut(order_id)
                .filter(|o| may_touch(o, actor))
                .ok_or_else(order_not_found)?;
            if o.channel != Channel::DineIn || o.status.is_final() {
                return Err(illegal(o.status, "placed"));
            }
            if !send(o, now) {
                return Err(Error::conflict(
                    "nothing_to_place",
                    "Every item of this order is already with the kitchen.",
                ));
            }
            o.updated_at = now;
            state.orders.touch(order_id);
            publish_and_reply(state, order_id, "order.placed", false)
        }
        OrderOp::Step {
            order_id,
            merchant_id,
            step,
        } => {
            let now = state.now;
            let o = state
                .orders
                .orders
                .get_mut(order_id)
                .filter(|o| &o.merchant_id == merchant_id)
                .ok_or_else(order_not_found)?;
            let target = step.target();
            if !step.allowed_from(o.channel).contains(&o.status) {
                return Err(illegal(o.status, target.as_str()));
            }
            if *step == Step::Complete && !o.fully_paid() {
                return Err(Error::conflict(
                    "order_unpaid",
                    format!(
                        "This order still has {} to pay; take the payment before completing it.",
                        o2o_ledger::shown_price(o.due(), &o.currency)
                    ),
                ));
            }
            o.status = target;
            o.updated_at = now;
            match step {
                Step::Ready => o.ready_at = Some(now),
                Step::Complete => {
                    o.completed_at = Some(now);
                    o.active_table = None;
                    o.reserve_until = None;
                }
                _ => {}
            }
            if *step == Step::Complete {
                close_table(state, order_id);
            }
            let kind = match step {
                Step::Ready => "order.ready",
                Step::Complete => "order.completed",
                _ => "order.updated",
            };
            state.orders.touch(order_id);
            publish_and_reply(state, order_id, kind, false)
        }
        OrderOp::Cancel {
            order_id,
            actor,
            reason,
            business_day,
        } => {
            let o = state
                .orders
                .orders
                .get(order_id)
                .filter(|o| may_touch(o, actor))
                .ok_or_else(order_not_found)?;
            if o.status.is_final() {
                return Err(illegal(o.status, "canceled"));
            }
            // A consumer may cancel until the kitchen accepts the order.
            if matches!(actor, Actor::Consumer(_))
                && !matches!(
                    o.status,
                    Status::Open | Status::PendingPayment | Status::Placed
                )
            {
                return Err(illegal(o.status, "canceled"));
            }
            if matches!(actor, Actor::Consumer(u) if o.channel == Channel::DineIn && o.user_id.as_deref() != Some(u.as_str()))
                && o.amount_paid > 0
            {
                return Err(Error::forbidden(
                    "not_your_order",
                    "Only staff can cancel a table order someone has paid for.",
                ));
            }
            let staff_id = match actor {
                Actor::Staff { id, .. } => Some(id.clone()),
                Actor::Consumer(_) => None,
            };
            cancel(
                state,
                order_id,
                reason
                    .clone()
                    .unwrap_or_else(|| "canceled".to_owned())
                    .as_str(),
                business_day,
                staff_id,
            )?;
            reply(state, order_id, false)
        }
        OrderOp::Expire {
            order_id,
            business_day,
        } => {
            let o = state
                .orders
                .orders
                .get(order_id)
                .ok_or_else(order_not_found)?;
            let lapsed = o.reserve_until.is_some_and(|t| t <= state.now)
                && !o.fully_paid()
                && o.amount_paid == 0
                && matches!(o.status, Status::Open | Status::PendingPayment);
            if !lapsed {
                return Err(Error::conflict(
                    "order_not_expired",
                    "This order's reservation has not lapsed.",
                ));
            }
            cancel(state, order_id, "payment_timeout", business_day, None)?;
            reply(state, order_id, false)
        }
        OrderOp::Refund {
            order_id,
            merchant_id,
            amount,
            reason,
            business_day,
            staff_id,
        } => {
            let o = state
                .orders
                .orders
                .get(order_id)
                .filter(|o| &o.merchant_id == merchant_id)
                .ok_or_else(order_not_found)?;
            let left = o.amount_paid - o.amount_refunded;
            let amount = amount.unwrap_or(left);
            if left <= 0 {
                return Err(Error::payment(
                    "refund_exceeds_payment",
                    "Nothing paid for this order is left to refund.",
                ));
            }
            if amount <= 0 {
                return Err(
                    Error::invalid("amount_invalid", "The amount must be positive.")
                        .param("amount"),
                );
            }
            if amount > left {
                return Err(Error::payment(
                    "refund_exceeds_payment",
                    "That is more than is left to refund on this order.",
                ));
            }
            refund_payments(
                state,
                order_id,
                amount,
                reason.clone(),
                business_day,
                staff_id.clone(),
            )?;
            publish_and_reply(state, order_id, "order.refunded", false)
        }
    }
}

/// Refunds `amount` of an order across its payments, newest first.
fn refund_payments(
    state: &mut State,
    order_id: &str,
    amount: i64,
    reason: Option<String>,
    business_day: &str,
    staff_id: Option<String>,
) -> Result<()> {
    let o = state
        .orders
        .orders
        .get(order_id)
        .ok_or_else(order_not_found)?;
    let merchant_id = o.merchant_id.clone();
    let mut left = amount;
    for pid in o.payments.clone().iter().rev() {
        if left == 0 {
            break;
        }
        let Some(p) = state.payments.get(pid) else {
            continue;
        };
        if p.status != "succeeded" {
            continue;
        }
        let room = p.amount_captured - p.amount_refunded;
        let take = room.min(left);
        if take <= 0 {
            continue;
        }
        pe::refund(
            state,
            crate::ids::RefundId::generate().as_str(),
            pid,
            &merchant_id,
            Some(take),
            reason.clone(),
            business_day,
            staff_id.clone(),
        )?;
        left -= take;
    }
    if left > 0 {
        return Err(Error::internal(anyhow::anyhow!(
            "order {order_id}: {left} could not be refunded"
        )));
    }
    Ok(())
}

fn cancel(
    state: &mut State,
    order_id: &str,
    reason: &str,
    business_day: &str,
    staff_id: Option<String>,
) -> Result<()> {
    let (paid, refunded) = {
        let o = &state.orders.orders[order_id];
        (o.amount_paid, o.amount_refunded)
    };
    if paid - refunded > 0 {
        refund_payments(
            state,
            order_id,
            paid - refunded,
            Some(format!("order canceled: {reason}")),
            business_day,
            staff_id,
        )?;
    }
    release(state, order_id);
    let now = state.now;
    let o = state.orders.orders.get_mut(order_id).expect("present");
    o.status = Status::Canceled;
    o.cancel_reason = Some(reason.to_owned());
    o.canceled_at = Some(now);
    o.active_table = None;
    o.reserve_until = None;
    o.updated_at = now;
    state.orders.touch(order_id);
    close_table(state, order_id);
    publish(state, order_id, "order.canceled");
    Ok(())
}

/// Checks that a payment may go to its order; returns the amount to take (a zero amount asks
/// for what is due), after `discount` (a coupon the payment brings) comes off.
pub(crate) fn before_pay(state: &State, p: &NewPayment, discount: i64) -> Result<i64> {
    let Some(order_id) = &p.order_id else {
        return Ok(p.amount - discount);
    };
    let o = state
        .orders
        .orders
        .get(order_id)
        .filter(|o| o.merchant_id == p.merchant_id)
        .ok_or_else(|| order_not_found().param("order_id"))?;
    if o.status.is_final() {
        return Err(Error::conflict(
            "order_not_payable",
            format!("This order is {}.", o.status.as_str()),
        ));
    }
    if o.status == Status::Open && o.channel == Channel::DineIn {
        return Err(Error::conflict(
            "order_not_placed",
            "Send the order to the kitchen before paying.",
        ));
    }
    if o.lines.iter().any(|l| !l.sent) && o.channel == Channel::DineIn {
        return Err(Error::conflict(
            "order_has_unsent_items",
            "Some items have not been sent to the kitchen yet: place them or remove them first.",
        ));
    }
    if p.currency.code() != o.currency {
        return Err(Error::invalid(
            "currency_mismatch",
            format!("This order is in {}.", o.currency),
        )
        .param("currency"));
    }
    if p.hold_until.is_some() {
        return Err(Error::invalid(
            "capture_invalid",
            "An order is paid with automatic capture.",
        )
        .param("capture"));
    }
    let due = (o.due() - discount).max(0);
    if o.due() == 0 && o.amount_paid == 0 {
        return Err(nothing_to_pay());
    }
    if o.due() == 0 {
        return Err(Error::conflict(
            "order_already_paid",
            "This order is paid already.",
        ));
    }
    let amount = if p.amount == 0 { due } else { p.amount };
    if amount > due {
        let left = o2o_ledger::shown_price(due, &o.currency);
        return Err(Error::invalid(
            "amount_exceeds_due",
            format!("Only {left} is left to pay on this order."),
        )
        .param("amount")
        .arg("due", left));
    }
    if amount < due && o.channel != Channel::DineIn {
        return Err(
            Error::invalid("amount_must_be_due", "This order is paid in full at once.")
                .param("amount"),
        );
    }
    // The same ceiling as any payment's (`POST /v1/payments`): a table's bill beyond it is paid
    // in parts (other orders never come to more, see `payable_at_once`).
    if amount > crate::payments::service::MAX_PAYMENT {
        return Err(Error::invalid(
            "amount_too_large",
            format!(
                "One payment takes at most {}: pay this bill in parts (amount).",
                o2o_ledger::shown_price(crate::payments::service::MAX_PAYMENT, &o.currency)
            ),
        )
        .param("amount"));
    }
    Ok(amount)
}

/// What a coupon takes off an order (checked against the order's lines, store and channel).
pub(crate) fn coupon_discount(
    state: &State,
    order_id: &str,
    p: &NewPayment,
    user_id: Option<&str>,
    coupon: &str,
) -> Result<i64> {
    let o = state
        .orders
        .orders
        .get(order_id)
        .filter(|o| o.merchant_id == p.merchant_id)
        .ok_or_else(|| order_not_found().param("order_id"))?;
    if o.discounts.iter().any(|d| d.code == coupon) {
        return Err(
            Error::conflict("coupon_used", "This coupon is already on this order.").param("coupon"),
        );
    }
    let lines: Vec<(String, i64)> = o
        .lines
        .iter()
        .map(|l| (l.product_id.clone(), l.unit_price))
        .collect();
    let free = move |product: &str| {
        lines
            .iter()
            .find(|(p, _)| p == product)
            .map(|(_, unit)| *unit)
    };
    let bill = crate::marketing::engine::Bill {
        user_id,
        merchant_id: &o.merchant_id,
        store_id: Some(&o.store_id),
        channel: o.channel.as_str(),
        currency: &o.currency,
        base: o.subtotal - o.discount_total,
        coupons_on_order: o
            .discounts
            .iter()
            .filter(|d| d.code.starts_with("cpn_"))
            .count(),
        free_item_price: Some(&free),
    };
    let d = crate::marketing::engine::quote(state, coupon, &bill)?;
    // Never more than is still due, leaving at least a fen to pay.
    Ok(d.min(o.due() - 1).max(0))
}

/// Puts a used coupon's discount on its order.
pub(crate) fn add_discount(state: &mut State, order_id: &str, discount: Discount) {
    if let Some(o) = state.orders.orders.get_mut(order_id) {
        o.discounts.push(discount);
        let _ = totals(o);
        state.orders.touch(order_id);
    }
}

/// Records a succeeded payment on its order.
pub(crate) fn after_pay(state: &mut State, order_id: &str, payment_id: &str, amount: i64) {
    let now = state.now;
    let Some(o) = state.orders.orders.get_mut(order_id) else {
        return;
    };
    o.amount_paid += amount;
    o.payments.push(payment_id.to_owned());
    o.updated_at = now;
    let paid = o.fully_paid();
    // Paying is what places a pickup, delivery or scan-and-go order.
    let mut placed = false;
    if paid {
        o.paid_at = Some(now);
        o.reserve_until = None;
        o.active_table = None;
        match (o.channel, o.status) {
            (Channel::Pickup | Channel::Delivery, Status::PendingPayment) => {
                o.status = Status::Placed;
                o.placed_at = Some(now);
                placed = true;
            }
            (Channel::ScanAndGo, Status::Open) => {
                o.status = Status::Ready;
                o.placed_at = Some(now);
                o.ready_at = Some(now);
                placed = true;
            }
            _ => {}
        }
    }
    state.orders.touch(order_id);
    if paid {
        close_table(state, order_id);
        if placed {
            publish_as(state, order_id, &["order.paid", "order.placed"]);
        } else {
            publish(state, order_id, "order.paid");
        }
    } else {
        publish(state, order_id, "order.updated");
    }
}

/// Records a refund of one of an order's payments on the order.
pub(crate) fn after_refund(state: &mut State, order_id: &str, amount: i64) {
    if let Some(o) = state.orders.orders.get_mut(order_id) {
        o.amount_refunded += amount;
        o.updated_at = state.now;
        state.orders.touch(order_id);
    }
}

/// Writes (or collects, see [`pe::Sink`]) the batch's orders and stock changes.
pub(crate) fn write_rows(
    sink: &mut pe::Sink<'_>,
    state: &State,
) -> std::result::Result<(), pe::BatchError> {
    let b = &state.orders;
    let rows: Vec<OrderWrite> = b
        .changed
        .iter()
        .filter_map(|id| b.orders.get(id))
        .map(OrderData::row)
        .collect();
    sink.add(&rows, store::UPSERT)?;
    let deltas: Vec<StockDelta> = b
        .stock_deltas
        .iter()
        .filter(|(_, d)| **d != 0)
        .map(|((s, p), d)| StockDelta { s, p, d: *d })
        .collect();
    sink.add(&deltas, crate::catalog::store::ADD_STOCK)?;
    Ok(())
}

/// A change of a product's counted stock in a store, as [`crate::catalog::store::ADD_STOCK`]
/// reads it.
#[derive(serde::Serialize)]
struct StockDelta<'a> {
    s: &'a str,
    p: &'a str,
    d: i64,
}

/// Before the batch's last write: raises the catalog versions of merchants whose counted stock
/// moved.
pub(crate) async fn bump_versions(
    tx: &mut Tx,
    state: &mut State,
) -> std::result::Result<(), pe::BatchError> {
    let b = &mut state.orders;
    // Counted stock shows on the menu: raise the merchant's catalog version so menus rebuild,
    // here at once and on other nodes within their recheck window. A sold-out flip always does;
    // a count that merely moved does at most once a second per merchant, so a busy store's
    // menu is not rebuilt for every batch (the sequencer, not the menu, decides who gets the
    // last item).
    let mut merchants: Vec<String> = b
        .menus_changed
        .iter()
        .filter(|m| b.sold_out_flips.contains(*m) || !b.recently_bumped.contains(*m))
        .cloned()
        .collect();
    merchants.sort();
    for m in merchants {
        let v = crate::catalog::store::bump_version(tx, &m).await?;
        b.versions.push((m, v));
    }
    Ok(())
}
