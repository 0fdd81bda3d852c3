//! The NATS bridge: carries committed events between the nodes of one platform, so a live page
//! connected to one node (the cashier's announcer, an order board) hears what another node
//! committed.
//!
//! Off unless a NATS URL is configured (one node on SQLite needs nothing). When on, each node
//! publishes every event it commits on its [`Bus`] to the JetStream stream [`STREAM`], on the
//! subject `o2o.events.<merchant id>`, tagged with its node id (header [`NODE_HEADER`]) and
//! carrying the event id as `Nats-Msg-Id` so the stream drops a repeat. It also reads the stream
//! through an ordered consumer that starts at "now" and re-publishes on its own bus the events of
//! other nodes (its own are already there). The stream is created if missing; with several
//! nodes starting at once, each asks for the same configuration.
//!
//! The bridge is a convenience for live pages, not the record: the outbox (`events` table) is.
//! Losing NATS therefore stops nothing but cross-node announcements: payments go on, the bridge
//! logs, the client reconnects on its own, and the consumer is made again when it can be. What
//! an outage holds up is caught up afterwards, as long as it is fresh ([`FRESH_US`]): a publish
//! that fails is tried again once connected (the stream drops a repeat by its id, and each
//! node relays an event id once), and a consumer made again reads on from the last event it
//! had, skipping only stale ones (a live page has no use for a payment announced an hour late).
//! Webhooks read the outbox and lose nothing either way.

use super::{Bus, Published};
use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use serde::Deserialize;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;

/// The JetStream stream every node publishes to and reads.
pub const STREAM: &str = "O2O_EVENTS";

/// Subjects are `o2o.events.<merchant id>`.
pub const SUBJECT_PREFIX: &str = "o2o.events";

/// The header naming the node that committed an event.
pub const NODE_HEADER: &str = "O2o-Node";

/// How long the stream keeps an event: live pages need seconds; this bounds the disk.
const STREAM_MAX_AGE: Duration = Duration::from_secs(3_600);

/// The most the stream keeps, in bytes (older events go first).
const STREAM_MAX_BYTES: i64 = 1 << 30;

/// Publishes awaiting the stream's acknowledgement at most; beyond it the bridge waits for
/// some before publishing more (its bus subscription lags and drops, payments do not wait).
const MAX_ACKS_IN_FLIGHT: usize = 1_024;

/// How old an event may be and still be published again or relayed after an outage (µs).
const FRESH_US: i64 = 300_000_000;

/// The most events waiting to be published again; beyond it the oldest are dropped.
const RETRY_MAX: usize = 10_000;

/// How often publishes that failed are tried again.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// The longest wait between two attempts to set the stream and consumer up.
const MAX_SETUP_DELAY: Duration = Duration::from_secs(10);

/// A running bridge of one node.
#[derive(Clone)]
pub struct Bridge {
    node_id: Arc<str>,
    ready: watch::Receiver<bool>,
}

impl Bridge {
    /// Connects to `url` (in the background: a NATS server that is down does not stop the
    /// node) and starts publishing and consuming. Fails only on a URL that cannot be used.
    pub async fn start(url: &str, bus: Bus) -> anyhow::Result<Bridge> {
        let node_id: Arc<str> = new_node_id().into();
        // Each (re)connection: the consumer is made again at once (a server that restarted has
        // forgotten it), reading on from the last event read.
        let (connected_tx, connected) = watch::channel(0u64);
        let client = async_nats::ConnectOptions::new()
            .name(format!("o2o {node_id}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .event_callback(move |event| {
                let connected_tx = connected_tx.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            tracing::info!("NATS connected");
                            connected_tx.send_modify(|n| *n += 1);
                        }
                        async_nats::Event::Disconnected => {
                            tracing::warn!("NATS disconnected; reconnecting, payments go on")
                        }
                        other => tracing::warn!(event = %other, "NATS"),
                    }
                }
            })
            .connect(url)
            .await
            .map_err(|e| anyhow::anyhow!("NATS URL {url:?}: {e}"))?;
        let js = jetstream::new(client);
        let (ready_tx, ready) = watch::channel(false);
        // Subscribe now, so every event committed after the start is published.
        let local = bus.subscribe();
        tokio::spawn(publish_loop(
            js.clone(),
            bus.clone(),
            local,
            node_id.clone(),
        ));
        tokio::spawn(consume_loop(js, bus, node_id.clone(), ready_tx, connected));
        Ok(Bridge { node_id, ready })
    }

    /// This node's id, as other nodes see it on its events.
    pub fn node_id(&self) -> &str {
        &self.node_id
    }

    /// True once the stream exists and this node reads it.
    pub fn is_ready(&self) -> bool {
        *self.ready.borrow()
    }

    /// Waits until [`Bridge::is_ready`] (or `timeout` passes); returns whether it is.
    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let mut ready = self.ready.clone();
        tokio::time::timeout(timeout, ready.wait_for(|r| *r))
            .await
            .is_ok_and(|r| r.is_ok())
    }
}

/// A random id for this process: ids are per run, so a restarted node is a new node.
fn new_node_id() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    format!("node_{}", hex::encode(bytes))
}

/// The subject of a merchant's events. Merchant ids are `mch_` and base-32 characters; anything
/// a subject cannot carry is replaced, so a subject is always one token.
pub fn subject(merchant_id: &str) -> String {
    let token: String = merchant_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{SUBJECT_PREFIX}.{token}")
}

fn stream_config() -> stream::Config {
    stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{SUBJECT_PREFIX}.>")],
        max_age: STREAM_MAX_AGE,
        max_bytes: STREAM_MAX_BYTES,
        storage: stream::StorageType::File,
        discard: stream::DiscardPolicy::Old,
        // Repeats of one event (a publish retried across a reconnect) are dropped within it.
        duplicate_window: Duration::from_secs(120),
        ..Default::default()
    }
}

/// How an event travels: [`Published`] with its type as an owned string.
#[derive(Deserialize)]
struct Wire {
    id: String,
    merchant_id: String,
    store_id: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    data: Box<serde_json::value::RawValue>,
    created_at: i64,
}

/// Publishes this node's committed events until the bus closes; what fails is tried again
/// every [`RETRY_EVERY`] while it is fresh.
async fn publish_loop(
    js: jetstream::Context,
    bus: Bus,
    mut local: tokio::sync::broadcast::Receiver<Arc<Published>>,
    node_id: Arc<str>,
) {
    let closed = bus.closed();
    tokio::pin!(closed);
    let mut acks = FuturesUnordered::new();
    // By event id: ids sort by creation time, so the oldest is sent again first.
    let mut retry: BTreeMap<String, Arc<Published>> = BTreeMap::new();
    let mut tick = tokio::time::interval(RETRY_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Failures are logged once per outage, not once per event.
    let mut failing = false;
    loop {
        let event = tokio::select! {
            _ = &mut closed => return,
            Some((event, outcome)) = acks.next(), if !acks.is_empty() => {
                if note_outcome(outcome, &mut failing) {
                    held_back(&mut retry, event);
                }
                continue;
            }
            _ = tick.tick(), if !retry.is_empty() && acks.len() < MAX_ACKS_IN_FLIGHT => {
                // Only while connected: a disconnected client would only pile copies up in its
                // buffer.
                if js.client().connection_state() != async_nats::connection::State::Connected {
                    continue;
                }
                let now = crate::db::now_us();
                while let Some((_, event)) = retry.pop_first() {
                    if event.created_at < now - FRESH_US {
                        metrics::counter!("nats_events_dropped_total").increment(1);
                        continue;
                    }
                    match publish(&js, &node_id, event).await {
                        Ok(ack) => acks.push(ack),
                        Err(e) => {
                            // Refused on a working connection (too big, say): it never will be
                            // sent, so it must not hold the others up.
                            metrics::counter!("nats_events_dropped_total").increment(1);
                            tracing::warn!(error = %e, "an event NATS refused was dropped");
                        }
                    }
                    if acks.len() >= MAX_ACKS_IN_FLIGHT {
                        break;
                    }
                }
                continue;
            }
            received = local.recv(), if acks.len() < MAX_ACKS_IN_FLIGHT => match received {
                Ok(event) => event,
                Err(RecvError::Lagged(missed)) => {
                    metrics::counter!("nats_events_dropped_total").increment(missed);
                    tracing::warn!(missed, "NATS bridge fell behind; events not published");
                    continue;
                }
                Err(RecvError::Closed) => return,
            },
        };
        if event.remote {
            continue;
        }
        // Behind others waiting to be sent again: it goes with them, oldest first.
        if !retry.is_empty() {
            held_back(&mut retry, event);
            continue;
        }
        match publish(&js, &node_id, event.clone()).await {
            Ok(ack) => acks.push(ack),
            Err(e) => {
                note_outcome(Err::<(), _>(e), &mut failing);
                held_back(&mut retry, event);
            }
        }
    }
}

/// The outcome of publishing one event, with the event (to send it again if it failed).
type Acked = (Arc<Published>, Result<(), String>);

/// Sends one event to the stream; the answer is the stream's acknowledgement to wait for.
async fn publish(
    js: &jetstream::Context,
    node_id: &str,
    event: Arc<Published>,
) -> Result<impl std::future::Future<Output = Acked> + use<>, String> {
    let payload = serde_json::to_vec(&*event).map_err(|e| e.to_string())?;
    let message = jetstream::message::PublishMessage::build()
        .payload(payload.into())
        .header(NODE_HEADER, node_id)
        .message_id(&event.id);
    let ack = js
        .send_publish(subject(&event.merchant_id), message)
        .await
        .map_err(|e| e.to_string())?;
    Ok(async move {
        let outcome = ack.await.map(drop).map_err(|e| e.to_string());
        (event, outcome)
    })
}

/// Keeps an event to publish again, dropping the oldest beyond [`RETRY_MAX`].
fn held_back(retry: &mut BTreeMap<String, Arc<Published>>, event: Arc<Published>) {
    if retry.len() >= RETRY_MAX {
        retry.pop_first();
        metrics::counter!("nats_events_dropped_total").increment(1);
    }
    retry.insert(event.id.clone(), event);
}

/// The ids of the events relayed lately: an event the stream holds twice (sent again after its
/// acknowledgement was lost, later than the stream's duplicate window) or read twice (by a
/// consumer made again) reaches the live pages once.
struct Relayed {
    ids: HashSet<String>,
    order: VecDeque<String>,
}

impl Relayed {
    const MAX: usize = 16_384;

    fn new() -> Relayed {
        Relayed {
            ids: HashSet::new(),
            order: VecDeque::new(),
        }
    }

    /// True the first time `id` is seen (among the last [`Relayed::MAX`]).
    fn first(&mut self, id: &str) -> bool {
        if self.ids.contains(id) {
            return false;
        }
        if self.order.len() >= Self::MAX
            && let Some(old) = self.order.pop_front()
        {
            self.ids.remove(&old);
        }
        self.ids.insert(id.to_owned());
        self.order.push_back(id.to_owned());
        true
    }
}

/// Logs a publish's outcome (once per outage); answers whether it failed.
fn note_outcome<E: ToString>(outcome: Result<(), E>, failing: &mut bool) -> bool {
    match outcome {
        Ok(()) => {
            if *failing {
                tracing::info!("NATS publishing works again");
            }
            *failing = false;
            false
        }
        Err(e) => {
            metrics::counter!("nats_publish_failures_total").increment(1);
            if !*failing {
                tracing::warn!(error = %e.to_string(), "publishing an event to NATS failed; payments go on, it is tried again");
            }
            *failing = true;
            true
        }
    }
}

/// Makes the stream and an ordered consumer from "now" (the event after the stream's last; made
/// again, after the last one read), and re-publishes other nodes' events on the bus, until the
/// bus closes. Any failure waits (up to [`MAX_SETUP_DELAY`]) and starts over.
async fn consume_loop(
    js: jetstream::Context,
    bus: Bus,
    node_id: Arc<str>,
    ready: watch::Sender<bool>,
    mut connected: watch::Receiver<u64>,
) {
    let closed = bus.closed();
    tokio::pin!(closed);
    let mut delay = Duration::from_millis(200);
    // The stream sequence read up to (at first, the stream's last when the bridge started): a
    // consumer made again reads on after it.
    let mut last: Option<u64> = None;
    let mut relayed = Relayed::new();
    loop {
        // Connections made before this consumer do not call for another.
        connected.borrow_and_update();
        let attempt = async {
            let mut stream = js
                .get_or_create_stream(stream_config())
                .await
                .map_err(|e| e.to_string())?;
            let info = stream.info().await.map_err(|e| e.to_string())?;
            let (first_seq, last_seq) = (info.state.first_sequence, info.state.last_sequence);
            let from = match last {
                Some(seq) if seq <= last_seq => seq,
                // A stream made anew (or that lost its tail) numbers from lower down: read it
                // from its start (what is stale is skipped).
                Some(_) => first_seq.saturating_sub(1),
                None => last_seq,
            };
            last = Some(from);
            let deliver_policy = consumer::DeliverPolicy::ByStartSequence {
                start_sequence: from + 1,
            };
            let consumer = stream
                .create_consumer(consumer::pull::OrderedConfig {
                    filter_subject: format!("{SUBJECT_PREFIX}.>"),
                    deliver_policy,
                    ..Default::default()
                })
                .await
                .map_err(|e| e.to_string())?;
            consumer.messages().await.map_err(|e| e.to_string())
        };
        let messages = tokio::select! {
            _ = &mut closed => return,
            made = attempt => made,
        };
        match messages {
            Ok(mut messages) => {
                tracing::info!(node = %node_id, stream = STREAM, "NATS bridge reading events");
                ready.send_replace(true);
                // The connection it was made on does not call for another.
                connected.borrow_and_update();
                loop {
                    let next = tokio::select! {
                        _ = &mut closed => return,
                        Ok(()) = connected.changed() => {
                            tracing::info!("NATS reconnected; reading events on from the last one read");
                            delay = Duration::ZERO;
                            break;
                        }
                        next = messages.next() => next,
                    };
                    match next {
                        Some(Ok(message)) => {
                            // Reading works: a later failure starts over soon.
                            delay = Duration::from_millis(200);
                            if let Ok(info) = message.info() {
                                last = last.max(Some(info.stream_sequence));
                            }
                            relay(&bus, &node_id, &message, &mut relayed);
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "reading events from NATS failed; starting over");
                            break;
                        }
                        None => break,
                    }
                }
                ready.send_replace(false);
            }
            Err(e) => {
                tracing::warn!(error = %e, "setting up the NATS event stream failed; retrying");
            }
        }
        tokio::select! {
            _ = &mut closed => return,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).clamp(Duration::from_millis(200), MAX_SETUP_DELAY);
    }
}

/// Re-publishes one message of the stream on the bus, unless this node committed it.
fn relay(bus: &Bus, node_id: &str, message: &jetstream::Message, relayed: &mut Relayed) {
    let origin = message
        .headers
        .as_ref()
        .and_then(|h| h.get(NODE_HEADER))
        .map(|v| v.as_str());
    if origin == Some(node_id) {
        return;
    }
    let Ok(wire) = serde_json::from_slice::<Wire>(&message.payload) else {
        metrics::counter!("nats_events_unreadable_total").increment(1);
        tracing::warn!(subject = %message.subject, "an unreadable event on NATS was skipped");
        return;
    };
    if !relayed.first(&wire.id) {
        metrics::counter!("nats_events_repeated_total").increment(1);
        return;
    }
    if wire.created_at < crate::db::now_us() - FRESH_US {
        // Caught up after an outage, too late for a live page.
        metrics::counter!("nats_events_stale_total").increment(1);
        return;
    }
    metrics::counter!("nats_events_relayed_total").increment(1);
    let mut event = Published::new(
        wire.id,
        wire.merchant_id,
        wire.store_id,
        Cow::Owned(wire.kind),
        wire.data,
        wire.created_at,
    );
    event.remote = true;
    bus.publish(event);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_event_id_is_relayed_once_among_the_latest() {
        let mut relayed = Relayed::new();
        assert!(relayed.first("evt_1"));
        assert!(!relayed.first("evt_1"), "a repeat");
        for n in 2..=Relayed::MAX + 1 {
            assert!(relayed.first(&format!("evt_{n}")));
        }
        assert_eq!(relayed.ids.len(), Relayed::MAX);
        assert!(
            relayed.first("evt_1"),
            "forgotten once older than the latest"
        );
    }

    #[test]
    fn a_merchant_is_one_subject_token() {
        assert_eq!(subject("mch_abc123"), "o2o.events.mch_abc123");
        assert_eq!(subject("mch.a b*>"), "o2o.events.mch_a_b__");
    }

    #[test]
    fn an_event_travels_with_its_type() {
        let event = Published::new(
            "evt_1".into(),
            "mch_1".into(),
            Some("sto_1".into()),
            Cow::Borrowed("payment.succeeded"),
            crate::events::raw(&serde_json::json!({"amount": 2500})),
            7,
        );
        let wire: Wire = serde_json::from_slice(&serde_json::to_vec(&event).unwrap()).unwrap();
        assert_eq!(wire.kind, "payment.succeeded");
        assert_eq!(wire.store_id.as_deref(), Some("sto_1"));
        assert_eq!(wire.data.get(), r#"{"amount":2500}"#);
        assert_eq!((wire.id.as_str(), wire.created_at), ("evt_1", 7));
    }
}
