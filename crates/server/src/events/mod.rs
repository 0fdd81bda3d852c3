//! Events: what happened, recorded in the outbox (the `events` table, written in the same
//! transaction as the change) and published in-process after commit, for live pages (the
//! cashier's announcement, order boards) and the webhook dispatcher. With several nodes, the
//! NATS bridge ([`nats`]) carries each node's events to the others' buses.

pub mod nats;
pub mod pages;
pub mod webhooks;

use serde::Serialize;
use std::borrow::Cow;
use tokio::sync::{broadcast, watch};

/// An event after its transaction committed.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    pub id: String,
    pub merchant_id: String,
    pub store_id: Option<String>,
    #[serde(rename = "type")]
    pub kind: Cow<'static, str>,
    pub data: serde_json::Value,
    pub created_at: i64,
    /// True when another node committed it (the NATS bridge relayed it here).
    #[serde(skip)]
    pub remote: bool,
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
