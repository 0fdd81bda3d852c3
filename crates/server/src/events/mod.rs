//! Events: what happened, recorded in the outbox (the `events` table, written in the same
//! transaction as the change) and published in-process after commit, for live pages (the
//! cashier's announcement, order boards) and the webhook dispatcher. With several nodes, the
//! NATS bridge ([`nats`]) carries each node's events to the others' buses.

pub mod nats;
pub mod pages;
pub mod webhooks;

use serde::Serialize;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::sync::OnceLock;
use tokio::sync::{broadcast, watch};

/// An event after its transaction committed.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    pub id: String,
    pub merchant_id: String,
    pub store_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    /// The event's object as JSON text: serialized once, where the event is made (on the
    /// sequencer's thread no tree of values is built), and sent as it is.
    pub data: Box<RawValue>,
    pub created_at: i64,
    /// True when another node committed it (the NATS bridge relayed it here).
    #[serde(skip)]
    pub remote: bool,
    /// `data` parsed, once, by the first listener that looks inside it.
    #[serde(skip)]
    parsed: OnceLock<serde_json::Value>,
}

impl Published {
    pub fn new(
        id: String,
        merchant_id: String,
        store_id: Option<String>,
        kind: Cow<'static, str>,
        data: Box<RawValue>,
        created_at: i64,
    ) -> Published {
        Published {
            id,
            merchant_id,
            store_id,
            kind,
            data,
            created_at,
            remote: false,
            parsed: OnceLock::new(),
        }
    }

    /// A text field of the event's object (`None` when it has no such field or it is not text).
    pub fn field_str(&self, name: &str) -> Option<&str> {
        self.field(name).and_then(|v| v.as_str())
    }

    /// One field of the event's object (`None` when it has no such field).
    pub fn field(&self, name: &str) -> Option<&serde_json::Value> {
        self.parsed
            .get_or_init(|| serde_json::from_str(self.data.get()).unwrap_or_default())
            .get(name)
    }
}

/// `value` as the JSON text of an event's object.
pub fn raw<T: Serialize + ?Sized>(value: &T) -> Box<RawValue> {
    serde_json::value::to_raw_value(value).unwrap_or_else(|_| empty_object())
}

fn empty_object() -> Box<RawValue> {
    RawValue::from_string("{}".to_owned()).expect("{} is JSON")
}

/// The in-process fan-out of committed events. Slow listeners miss events rather than slow
/// down payments (they can re-read the outbox).
#[derive(Clone)]
pub struct Bus {
    /// Events are shared, not copied, with each listener.
    tx: broadcast::Sender<std::sync::Arc<Published>>,
    /// Turns true when the node shuts down: live streams (server-sent events) end then, so a
    /// graceful shutdown is not held open by browsers that never hang up.
    closed: watch::Sender<bool>,
}

impl Default for Bus {
    fn default() -> Self {
        Bus::new()
    }
}

impl Bus {
    pub fn new() -> Bus {
        let (tx, _) = broadcast::channel(4096);
        let (closed, _) = watch::channel(false);
        Bus { tx, closed }
    }

    pub fn publish(&self, event: Published) {
        let _ = self.tx.send(std::sync::Arc::new(event));
    }

    pub fn subscribe(&self) -> broadcast::Receiver<std::sync::Arc<Published>> {
        self.tx.subscribe()
    }

    /// Tells every live stream to end (on shutdown).
    pub fn close(&self) {
        self.closed.send_replace(true);
    }

    /// Completes once [`Bus::close`] was called (at once if it already was).
    pub fn closed(&self) -> impl std::future::Future<Output = ()> + Send + 'static {
        let mut rx = self.closed.subscribe();
        async move {
            let _ = rx.wait_for(|closed| *closed).await;
        }
    }
}
