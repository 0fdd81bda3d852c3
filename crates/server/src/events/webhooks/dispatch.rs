//! The webhook dispatcher: fans committed outbox events out into deliveries, claims the due
//! ones, sends them signed per Standard Webhooks, and records every attempt.
//!
//! Fan-out reads each new event and inserts its deliveries. A delivery is unique per endpoint
//! and event, so an event read twice (by two nodes, or again after a restart) makes no
//! duplicate, and an endpoint gets only events that happened since it was registered or last
//! enabled. On SQLite the fan-out follows the events in commit order from a cursor; on
//! PostgreSQL, whose nodes commit out of that order, from a queue filled by a trigger. A due
//! delivery is *claimed* by pushing its
//! `next_attempt_at` one lease into the future with a conditional update: only one node wins a
//! claim, and a node that dies mid-send leaves the delivery due again when the lease ends. The
//! outcome is recorded in one transaction: the attempt row, and the delivery's new status and
//! due time on the retry schedule (`Config::webhook_retry_delays_ms`).

use crate::app::AppState;
use crate::db::{Backend, Db, DbResult, Tx, Value, now_us, query, rfc3339};
use crate::error::{Error, Result};
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;

/// How long one request to an endpoint may take.
pub const SEND_TIMEOUT: Duration = Duration::from_secs(10);

/// How long a claim lasts: longer than a send, so a live claim never lapses.
const LEASE_US: i64 = 60 * 1_000_000;

/// How many sends run at once on one node.
const MAX_CONCURRENT_SENDS: usize = 32;

/// How many events one fan-out transaction takes.
const FAN_OUT_BATCH: i64 = 2_000;

/// How often the SQLite fan-out stores its cursor when no event had a delivery to make.
const CURSOR_STORE_EVERY: Duration = Duration::from_secs(10);

/// How many fan-out transactions one round may run before it sends.
const FAN_OUT_BATCHES_PER_ROUND: usize = 10;

/// The longest error text kept for an attempt.
const MAX_ERROR_LEN: usize = 300;

/// The HTTP client and the send slots of one node.
pub struct Dispatcher {
    client: reqwest::Client,
    slots: Arc<Semaphore>,
    /// Endpoints may be on private addresses (see [`super::guard`]).
    allow_private: bool,
    /// Where the SQLite fan-out is in the events (see `fan_out_in_order`).
    cursor: tokio::sync::Mutex<FanOutCursor>,
}

/// The last event the SQLite fan-out took (`None` until read from `fan_out_cursor`), and when
/// it last stored it.
#[derive(Default)]
struct FanOutCursor {
    seq: Option<i64>,
    stored_at: Option<Instant>,
}

impl Dispatcher {
    /// A dispatcher whose requests go to public addresses only, unless `allow_private`.
    pub fn new(allow_private: bool) -> anyhow::Result<Dispatcher> {
        let client = reqwest::Client::builder()
            .timeout(SEND_TIMEOUT)
            .connect_timeout(SEND_TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            // A proxy would connect wherever it is told, past the resolver's check.
            .no_proxy()
            .dns_resolver(Arc::new(super::guard::GuardedResolver { allow_private }))
            .user_agent(concat!("o2o-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Dispatcher {
            client,
            slots: Arc::new(Semaphore::new(MAX_CONCURRENT_SENDS)),
            allow_private,
            cursor: Default::default(),
        })
    }

    /// True when endpoints may be on private, loopback or link-local addresses.
    pub fn allows_private(&self) -> bool {
        self.allow_private
    }

    /// Whether [`Dispatcher::drain`] has run: the node is stopping, and its rounds are over.
    pub fn is_drained(&self) -> bool {
        self.slots.is_closed()
    }

    /// For shutdown, before the database closes: lets no round claim or send anything more, and
    /// waits for the sends under way to finish and record their outcome (at most a send's time
    /// limit, and a little for the recording). Answers whether they all did. A send cut off stays
    /// pending and is sent again once its claim lapses after the restart (within a minute), so
    /// its endpoint would get it twice.
    pub async fn drain(&self) -> bool {
        let all = MAX_CONCURRENT_SENDS as u32;
        let limit = SEND_TIMEOUT + Duration::from_secs(2);
        let finished = tokio::time::timeout(limit, self.slots.acquire_many(all)).await;
        // Rounds take their slots before they claim (see `dispatch_round`): with the slots closed
        // and the ones drained kept, a round still running claims nothing more.
        self.slots.close();
        match finished {
            Ok(Ok(held)) => {
                held.forget();
                true
            }
            _ => false,
        }
    }
}

/// The Standard Webhooks v1 signature of a message: `v1,` and the base64 HMAC-SHA256 of
/// `{msg_id}.{timestamp_s}.{body}`, keyed with the base64-decoded part of `whsec_…`.
pub fn sign(secret: &str, msg_id: &str, timestamp_s: i64, body: &str) -> anyhow::Result<String> {
    let encoded = secret.strip_prefix("whsec_").unwrap_or(secret);
    let key = base64::engine::general_purpose::STANDARD.decode(encoded)?;
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes any key length");
    mac.update(format!("{msg_id}.{timestamp_s}.").as_bytes());
    mac.update(body.as_bytes());
    Ok(format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    ))
}

/// One round on the running node: fans out new events, then starts a send task for each due
/// delivery it can claim (as many as there are free send slots). Returns how many started.
pub async fn dispatch_round(app: &AppState) -> Result<usize> {
    // A burst of events is taken in a few batches, not one batch a round.
    for _ in 0..FAN_OUT_BATCHES_PER_ROUND {
        if fan_out(app, now_us()).await? < FAN_OUT_BATCH as usize {
            break;
        }
    }
    // The send slots are taken before the deliveries are claimed, one per claim: a claim then
    // always has a slot to be sent in, and once the dispatcher is drained (its slots closed)
    // nothing more is claimed, so nothing is leased that this node will not send.
    let mut slots = Vec::new();
    while let Ok(slot) = app.webhooks.slots.clone().try_acquire_owned() {
        slots.push(slot);
    }
    if slots.is_empty() {
        return Ok(0);
    }
    let claimed = claim(&app.db, now_us(), slots.len() as i64).await?;
    let n = claimed.len();
    for (id, slot) in claimed.into_iter().zip(slots) {
        let app = app.clone();
        tokio::spawn(async move {
            let _slot = slot;
            if let Err(e) = deliver(&app, &id, Mode::Scheduled).await {
                tracing::warn!(delivery = %id, error = %e.message, "recording a webhook delivery failed");
            }
        });
    }
    Ok(n)
}

/// One complete round as of `now` (UTC microseconds): fans out, claims what is due by then and
/// sends it, waiting for every send. For tools and tests that move the clock.
pub async fn dispatch_once(app: &AppState, now: i64) -> Result<usize> {
    fan_out(app, now).await?;
    let claimed = claim(&app.db, now, MAX_CONCURRENT_SENDS as i64).await?;
    let n = claimed.len();
    let sends = claimed
        .iter()
        .map(|id| deliver_at(app, id, Mode::Scheduled, now));
    for r in futures::future::join_all(sends).await {
        r?;
    }
    Ok(n)
}

/// Creates the deliveries of events not fanned out yet. Returns how many events it took.
///
/// Two nodes (or two rounds) fanning out the same events make no duplicate: a delivery is unique
/// per (endpoint, event), and inserting it again does nothing.
async fn fan_out(app: &AppState, now: i64) -> Result<usize> {
    match app.db.backend() {
        Backend::Sqlite => fan_out_in_order(app, now).await,
        Backend::Postgres => fan_out_queued(&app.db, now).await,
    }
}

/// SQLite: the events after the cursor, in the order they were committed (`seq`, see migration
/// 0020). Everything is read from a reader. The writer (the write lock the payments sequencer
/// takes turns at, and whose page cache every other commit empties) is taken only when an event
/// has a delivery to make, or to store the cursor every [`CURSOR_STORE_EVERY`]. A restart goes
/// on from the stored cursor: the events after it are fanned out again, which makes nothing new.
async fn fan_out_in_order(app: &AppState, now: i64) -> Result<usize> {
    let db = &app.db;
    let mut cursor = app.webhooks.cursor.lock().await;
    let from = match cursor.seq {
        Some(seq) => seq,
        None => {
            let (seq,): (i64,) = db
                .fetch_one(query("SELECT event_seq FROM fan_out_cursor WHERE id = 1"))
                .await?;
            cursor.seq = Some(seq);
            seq
        }
    };
    let events: Vec<(i64, String, Option<String>, String, i64)> = db
        .fetch_all(
            query(
                "SELECT seq, id, merchant_id, type, created_at FROM events \
                 WHERE seq > $1 ORDER BY seq LIMIT $2",
            )
            .bind(from)
            .bind(FAN_OUT_BATCH),
        )
        .await?;
    let Some(last) = events.last().map(|e| e.0) else {
        return Ok(0);
    };
    let deliveries = deliveries_of(
        db,
        events
            .iter()
            .map(|(_, id, merchant, kind, at)| (id, merchant, kind, *at)),
    )
    .await?;
    let store = !deliveries.is_empty()
        || cursor
            .stored_at
            .is_none_or(|at| at.elapsed() >= CURSOR_STORE_EVERY);
    if store {
        let mut tx = db.begin().await?;
        insert_deliveries(&mut tx, &deliveries, now).await?;
        tx.execute(
            query("UPDATE fan_out_cursor SET event_seq = $1 WHERE id = 1 AND event_seq < $1")
                .bind(last),
        )
        .await?;
        tx.commit().await?;
        cursor.stored_at = Some(Instant::now());
    }
    cursor.seq = Some(last);
    Ok(events.len())
}

/// PostgreSQL: every event inserted is queued (`events_to_fan_out`, filled by a trigger), and
/// taken off the queue in the transaction that inserts its deliveries, so only one node's delete
/// takes it. (Its commits are not in `seq` order across nodes, so a cursor could pass an event
/// that commits late.) Everything is read first; the transaction is short: the new deliveries
/// (usually none) and one statement taking the events off the queue.
async fn fan_out_queued(db: &Db, now: i64) -> Result<usize> {
    // The queue first, then its events by id: one index probe each. (Joined in one statement,
    // PostgreSQL merged the queue with the whole events index from its start, reading every
    // event ever written on each round.)
    let queued: Vec<(String,)> = db
        .fetch_all(
            query("SELECT id FROM events_to_fan_out ORDER BY id LIMIT $1").bind(FAN_OUT_BATCH),
        )
        .await?;
    if queued.is_empty() {
        return Ok(0);
    }
    let queued: Vec<Option<String>> = queued.into_iter().map(|(id,)| Some(id)).collect();
    let taken = queued.len();
    let events: Vec<(String, Option<String>, String, i64)> = db
        .fetch_all(
            query(
                "SELECT id, merchant_id, type, created_at FROM events WHERE id = ANY($1) ORDER BY id",
            )
            .bind(Value::TextArray(queued.clone())),
        )
        .await?;
    let deliveries = deliveries_of(
        db,
        events
            .iter()
            .map(|(id, merchant, kind, at)| (id, merchant, kind, *at)),
    )
    .await?;
    let mut tx = db.begin().await?;
    insert_deliveries(&mut tx, &deliveries, now).await?;
    tx.execute(
        query("DELETE FROM events_to_fan_out WHERE id = ANY($1)").bind(Value::TextArray(queued)),
    )
    .await?;
    tx.commit().await?;
    Ok(taken)
}

/// The (endpoint, event) pairs to deliver for `events` (id, merchant, type, created at): each
/// enabled endpoint of the event's merchant that subscribes to its type and received events
/// when it happened (registered before it, and not enabled again after it).
async fn deliveries_of<'a>(
    db: &Db,
    events: impl Iterator<Item = (&'a String, &'a Option<String>, &'a String, i64)>,
) -> Result<Vec<(String, String)>> {
    // Per merchant: (endpoint, its filter, from when it receives events).
    let mut endpoints: HashMap<String, Vec<(String, super::EventFilter, i64)>> = HashMap::new();
    let mut deliveries: Vec<(String, String)> = Vec::new();
    for (event_id, merchant_id, kind, created_at) in events {
        let Some(merchant_id) = merchant_id else {
            continue;
        };
        if !endpoints.contains_key(merchant_id) {
            let rows: Vec<(String, String, i64)> = db
                .fetch_all(
                    query(
                        "SELECT id, events, COALESCE(receives_from, created_at) FROM webhook_endpoints \
                         WHERE merchant_id = $1 AND status = 'enabled'",
                    )
                    .bind(merchant_id),
                )
                .await?;
            endpoints.insert(
                merchant_id.clone(),
                rows.into_iter()
                    .map(|(id, ev, at)| (id, super::EventFilter::from_stored(&ev), at))
                    .collect(),
            );
        }
        for (endpoint_id, filter, receives_from) in &endpoints[merchant_id] {
            // An endpoint gets the events that happened since it was registered or enabled.
            if *receives_from > created_at || !filter.matches(kind) {
                continue;
            }
            deliveries.push((endpoint_id.clone(), event_id.clone()));
        }
    }
    Ok(deliveries)
}

/// Inserts `deliveries` (endpoint, event), due at once; one already made is left as it is.
async fn insert_deliveries(tx: &mut Tx, deliveries: &[(String, String)], now: i64) -> Result<()> {
    for (endpoint_id, event_id) in deliveries {
        tx.execute(
            query(
                "INSERT INTO webhook_deliveries (id, endpoint_id, event_id, status, attempts, \
                 next_attempt_at, created_at, updated_at) \
                 VALUES ($1, $2, $3, 'pending', 0, $4, $4, $4) \
                 ON CONFLICT (endpoint_id, event_id) DO NOTHING",
            )
            .bind(crate::ids::WebhookDeliveryId::generate())
            .bind(endpoint_id)
            .bind(event_id)
            .bind(now),
        )
        .await?;
    }
    Ok(())
}

/// Claims up to `limit` deliveries due at `now`; returns their ids.
async fn claim(db: &Db, now: i64, limit: i64) -> Result<Vec<String>> {
    let due: Option<(String,)> = db
        .fetch_optional(
            query(
                "SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $1 LIMIT 1",
            )
            .bind(now),
        )
        .await?;
    if due.is_none() {
        return Ok(Vec::new());
    }
    let mut tx = db.begin().await?;
    // The outer conditions are checked again on the row actually updated, so two nodes that
    // picked the same id cannot both claim it.
    let claimed: Vec<(String,)> = tx
        .fetch_all_for(
            "UPDATE webhook_deliveries SET next_attempt_at = $1, updated_at = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at LIMIT $3) \
             AND status = 'pending' AND next_attempt_at <= $2 RETURNING id",
            "UPDATE webhook_deliveries SET next_attempt_at = $1, updated_at = $2 \
             WHERE id IN (SELECT id FROM webhook_deliveries WHERE status = 'pending' AND next_attempt_at <= $2 \
             ORDER BY next_attempt_at LIMIT $3 FOR UPDATE SKIP LOCKED) \
             AND status = 'pending' AND next_attempt_at <= $2 RETURNING id",
            vec![
                Value::from(now + LEASE_US),
                Value::from(now),
                Value::from(limit),
            ],
        )
        .await?;
    tx.commit().await?;
    Ok(claimed.into_iter().map(|(id,)| id).collect())
}

/// Why an attempt is made.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    /// The dispatcher's: a failure schedules the next retry.
    Scheduled,
    /// A merchant's replay: a failure leaves the delivery's status and schedule as they were.
    Replay,
}

/// What an attempt got.
struct Outcome {
    status: Option<u16>,
    error: Option<String>,
    duration_ms: i64,
}

impl Outcome {
    fn succeeded(&self) -> bool {
        self.status.is_some_and(|s| (200..300).contains(&s))
    }
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct Outgoing {
    endpoint_id: String,
    url: String,
    secret: String,
    endpoint_status: String,
    event_id: String,
    event_type: String,
    data: String,
    event_created_at: i64,
}

async fn outgoing(db: &Db, delivery_id: &str) -> DbResult<Option<Outgoing>> {
    db.fetch_optional(
        query(
            "SELECT e.id AS endpoint_id, e.url, e.secret, e.status AS endpoint_status, \
             ev.id AS event_id, ev.type AS event_type, ev.data, ev.created_at AS event_created_at \
             FROM webhook_deliveries d \
             JOIN webhook_endpoints e ON e.id = d.endpoint_id \
             JOIN events ev ON ev.id = d.event_id \
             WHERE d.id = $1",
        )
        .bind(delivery_id),
    )
    .await
}

async fn deliver(app: &AppState, delivery_id: &str, mode: Mode) -> Result<()> {
    deliver_at(app, delivery_id, mode, now_us()).await
}

/// Sends one delivery and records the attempt; `now` places the next retry.
async fn deliver_at(app: &AppState, delivery_id: &str, mode: Mode, now: i64) -> Result<()> {
    let Some(out) = outgoing(&app.db, delivery_id).await? else {
        return Ok(());
    };
    if out.endpoint_status != "enabled" {
        if mode == Mode::Replay {
            return Err(Error::conflict(
                "webhook_endpoint_disabled",
                "The endpoint is disabled (it answered 410 Gone); enable it again to send to it.",
            ));
        }
        // Disabled or deleted since the delivery was made: nothing more is sent.
        let mut tx = app.db.begin().await?;
        super::fail_pending(&mut tx, &out.endpoint_id, "the endpoint is disabled", now).await?;
        tx.commit().await?;
        return Ok(());
    }
    let outcome = send(&app.webhooks, &out).await?;
    record(
        &app.db,
        delivery_id,
        &out.endpoint_id,
        &outcome,
        mode,
        &app.config.webhook_retry_delays_ms,
        now,
    )
    .await
}

/// A replay: one attempt now, recorded.
pub(super) async fn replay(app: &AppState, delivery_id: &str) -> Result<()> {
    deliver(app, delivery_id, Mode::Replay).await
}

/// The body sent for an event.
fn payload(out: &Outgoing) -> Result<String> {
    let data: serde_json::Value = serde_json::from_str(&out.data).map_err(Error::internal)?;
    serde_json::to_string(&serde_json::json!({
        "id": out.event_id,
        "type": out.event_type,
        "created_at": rfc3339(out.event_created_at),
        "data": data,
    }))
    .map_err(Error::internal)
}

async fn send(dispatcher: &Dispatcher, out: &Outgoing) -> Result<Outcome> {
    let body = payload(out)?;
    // A name is checked by the client's resolver as it connects; an address here.
    if !dispatcher.allow_private
        && let Ok(url) = reqwest::Url::parse(&out.url)
        && let Err(refused) = super::guard::check_literal(&url)
    {
        return Ok(Outcome {
            status: None,
            error: Some(clip(format!("not sent: {refused}"), MAX_ERROR_LEN)),
            duration_ms: 0,
        });
    }
    let client = &dispatcher.client;
    let timestamp_s = jiff::Timestamp::now().as_second();
    let signature =
        sign(&out.secret, &out.event_id, timestamp_s, &body).map_err(Error::internal)?;
    let started = Instant::now();
    let answer = client
        .post(&out.url)
        .header("content-type", "application/json")
        .header("webhook-id", &out.event_id)
        .header("webhook-timestamp", timestamp_s.to_string())
        .header("webhook-signature", signature)
        .body(body)
        .send()
        .await;
    let duration_ms = started.elapsed().as_millis().min(i64::MAX as u128) as i64;
    Ok(match answer {
        Ok(res) => {
            let status = res.status().as_u16();
            // The answer's body is not needed; dropping the response closes it.
            Outcome {
                status: Some(status),
                error: (!(200..300).contains(&status)).then(|| format!("answered HTTP {status}")),
                duration_ms,
            }
        }
        Err(e) => {
            let text = if let Some(refused) = super::guard::refusal_in(&e) {
                clip(format!("not sent: {refused}"), MAX_ERROR_LEN)
            } else if e.is_timeout() {
                format!("no answer within {} s", SEND_TIMEOUT.as_secs())
            } else if e.is_connect() {
                "could not connect".to_owned()
            } else {
                clip(format!("request failed: {e}"), MAX_ERROR_LEN)
            };
            Outcome {
                status: None,
                error: Some(text),
                duration_ms,
            }
        }
    })
}

/// `text` cut to at most `max` bytes, on a character boundary.
fn clip(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Records an attempt and moves the delivery on: succeeded, retried later, or failed; a 410
/// disables the endpoint and fails its other pending deliveries.
async fn record(
    db: &Db,
    delivery_id: &str,
    endpoint_id: &str,
    outcome: &Outcome,
    mode: Mode,
    delays_ms: &[u64],
    now: i64,
) -> Result<()> {
    let mut tx = db.begin().await?;
    // Taking the row first numbers the attempt: concurrent recorders queue behind the lock.
    let (attempt, status, next_attempt_at): (i64, String, Option<i64>) = tx
        .fetch_one(
            query(
                "UPDATE webhook_deliveries SET attempts = attempts + 1, updated_at = $2 WHERE id = $1 \
                 RETURNING attempts, status, next_attempt_at",
            )
            .bind(delivery_id)
            .bind(now),
        )
        .await?;
    let gone = outcome.status == Some(410);
    let (status, next_attempt_at) = if outcome.succeeded() {
        ("succeeded".to_owned(), None)
    } else if gone {
        ("failed".to_owned(), None)
    } else if mode == Mode::Replay {
        (status, next_attempt_at)
    } else {
        // Attempt n failed: the n-th delay comes before attempt n + 1, if there is one.
        match usize::try_from(attempt - 1)
            .ok()
            .and_then(|i| delays_ms.get(i))
        {
            Some(delay_ms) => (
                "pending".to_owned(),
                Some(now.saturating_add((*delay_ms as i64).saturating_mul(1_000))),
            ),
            None => ("failed".to_owned(), None),
        }
    };
    tx.execute(
        query(
            "UPDATE webhook_deliveries SET status = $2, next_attempt_at = $3, last_status = $4, last_error = $5 \
             WHERE id = $1",
        )
        .bind(delivery_id)
        .bind(status)
        .bind(next_attempt_at)
        .bind(outcome.status.map(i64::from))
        .bind(outcome.error.clone()),
    )
    .await?;
    tx.execute(
        query(
            "INSERT INTO webhook_attempts (delivery_id, attempt, status, error, duration_ms, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(delivery_id)
        .bind(attempt)
        .bind(outcome.status.map(i64::from))
        .bind(outcome.error.clone())
        .bind(outcome.duration_ms)
        .bind(now),
    )
    .await?;
    if gone {
        tx.execute(
            query(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_at = $2, disabled_reason = 'gone' \
                 WHERE id = $1 AND status = 'enabled'",
            )
            .bind(endpoint_id)
            .bind(now),
        )
        .await?;
        super::fail_pending(
            &mut tx,
            endpoint_id,
            "the endpoint answered 410 Gone and was disabled",
            now,
        )
        .await?;
    }
    tx.commit().await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_match_the_standard_webhooks_example() {
        // The example of the Standard Webhooks specification and its reference libraries.
        let secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";
        let body = r#"{"test": 2432232314}"#;
        let sig = sign(secret, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body).unwrap();
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
    }

    #[test]
    fn a_secret_that_is_not_base64_is_refused() {
        assert!(sign("whsec_not base64!", "evt_1", 1, "{}").is_err());
    }
}
