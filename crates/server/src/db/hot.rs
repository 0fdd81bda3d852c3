//! Hot reads kept in memory on each node: the session behind a bearer token and the resolution
//! of a printed code. Nearly every request makes one or both reads, and they change rarely (a
//! logout, a revoked code, an edited store), so a node answers them from memory and goes to the
//! database only for what it has not seen.
//!
//! Staying exact:
//! - A transaction that changes what is kept says so ([`Tx::touches`](super::Tx::touches)); when
//!   it commits, the node forgets that whole kind of entry. A reader that raced with the commit
//!   (read the old row before it, stores it after) is caught by a generation counter: a read
//!   started before a forget is never stored.
//! - On PostgreSQL other nodes learn of the change through `NOTIFY o2o_hot` sent in the same
//!   transaction (delivered on commit); each node listens and forgets likewise. If the listening
//!   connection drops, the node forgets everything and reconnects.
//! - Entries also expire after a while ([`Hot::ttl`]), for writers outside the server (another
//!   process on the same SQLite file, such as an `o2o` command).
//! - Only rows that exist are kept, so a flood of unknown tokens or codes cannot fill memory, and
//!   each kind holds at most [`MAX_ENTRIES`] entries (starting over when full).

use super::Backend;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Kinds of hot entries a transaction may change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Touched(u8);

impl Touched {
    /// Sessions and API keys (revoked, merged away).
    pub const SESSIONS: Touched = Touched(1);
    /// Printed codes and what their resolution shows of the store and merchant.
    pub const CODES: Touched = Touched(2);
    const ALL: Touched = Touched(3);

    pub const fn empty() -> Touched {
        Touched(0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    fn contains(self, other: Touched) -> bool {
        self.0 & other.0 != 0
    }

    /// As sent in a notification to other nodes.
    pub(super) fn bits(self) -> u8 {
        self.0
    }

    pub(super) fn from_bits(bits: u8) -> Touched {
        Touched(bits & Touched::ALL.0)
    }
}

impl std::ops::BitOrAssign for Touched {
    fn bitor_assign(&mut self, rhs: Touched) {
        self.0 |= rhs.0;
    }
}

/// Entries per kind before the kind starts over.
pub const MAX_ENTRIES: usize = 200_000;

/// One kind of hot entry.
pub struct Shelf<V> {
    inner: Mutex<ShelfInner<V>>,
    ttl: Duration,
}

struct ShelfInner<V> {
    entries: HashMap<String, (V, Instant)>,
    generation: u64,
}

/// Proof of when a read began, for [`Shelf::put`].
#[derive(Clone, Copy, Debug)]
pub struct Ticket(u64);

impl<V: Clone> Shelf<V> {
    fn new(ttl: Duration) -> Shelf<V> {
        Shelf {
            inner: Mutex::new(ShelfInner {
                entries: HashMap::new(),
                generation: 0,
            }),
            ttl,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, ShelfInner<V>> {
        // A panic while holding this lock cannot leave the map inconsistent (every update is
        // one call on it), so a poisoned lock is used as it is.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The entry if it is known and fresh; else a ticket to [`Shelf::put`] what the caller reads.
    pub fn get(&self, key: &str) -> Result<V, Ticket> {
        let inner = self.lock();
        match inner.entries.get(key) {
            Some((v, at)) if at.elapsed() < self.ttl => Ok(v.clone()),
            _ => Err(Ticket(inner.generation)),
        }
    }

    /// A ticket for a value known now without a read (a row this node is writing), to
    /// [`Shelf::put`] once the write commits.
    pub fn ticket(&self) -> Ticket {
        Ticket(self.lock().generation)
    }

    /// Keeps what was read, unless the kind was forgotten since the read began.
    pub fn put(&self, ticket: Ticket, key: &str, value: V) {
        let mut inner = self.lock();
        if inner.generation != ticket.0 {
            return;
        }
        if inner.entries.len() >= MAX_ENTRIES {
            inner.entries.clear();
        }
        inner
            .entries
            .insert(key.to_owned(), (value, Instant::now()));
    }

    fn forget(&self) {
        let mut inner = self.lock();
        inner.generation += 1;
        inner.entries.clear();
    }

    /// Entries kept now (for tests and metrics).
    pub fn len(&self) -> usize {
        self.lock().entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A session's principal and when the session ends (microseconds; `i64::MAX` for API keys).
pub type SessionEntry = (crate::identity::Principal, i64);

/// The node's hot entries.
pub struct Hot {
    pub sessions: Shelf<SessionEntry>,
    pub codes: Shelf<std::sync::Arc<crate::codes::service::HotCode>>,
    listener: Mutex<Option<tokio::task::AbortHandle>>,
}

impl std::fmt::Debug for Hot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hot")
            .field("sessions", &self.sessions.len())
            .field("codes", &self.codes.len())
            .finish()
    }
}

impl Hot {
    pub(super) fn new(backend: Backend) -> Hot {
        let ttl = Hot::ttl(backend);
        Hot {
            sessions: Shelf::new(ttl),
            codes: Shelf::new(ttl),
            listener: Mutex::new(None),
        }
    }

    /// How long an entry is trusted without hearing of a change: a minute on SQLite (one node;
    /// only another process on the same file can change rows unseen), five seconds on
    /// PostgreSQL (other nodes' changes arrive by notification; this bounds a lost one).
    pub fn ttl(backend: Backend) -> Duration {
        match backend {
            Backend::Sqlite => Duration::from_secs(60),
            Backend::Postgres => Duration::from_secs(5),
        }
    }

    /// Forgets the kinds of entry `what` names.
    pub fn forget(&self, what: Touched) {
        if what.contains(Touched::SESSIONS) {
            self.sessions.forget();
        }
        if what.contains(Touched::CODES) {
            self.codes.forget();
        }
    }

    pub(super) fn set_listener(&self, handle: tokio::task::AbortHandle) {
        let mut l = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(old) = l.replace(handle) {
            old.abort();
        }
    }

    pub(super) fn stop_listener(&self) {
        let mut l = self.listener.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(h) = l.take() {
            h.abort();
        }
    }
}

/// The notification channel on PostgreSQL.
pub(super) const CHANNEL: &str = "o2o_hot";

/// Listens for other nodes' changes (PostgreSQL): forgets what they touched; forgets everything
/// whenever the connection is (re)made, since notifications may have been missed meanwhile.
pub(super) async fn listen(pool: sqlx::PgPool, hot: std::sync::Weak<Hot>) {
    loop {
        let listener = async {
            let mut l = sqlx::postgres::PgListener::connect_with(&pool).await?;
            l.listen(CHANNEL).await?;
            Ok::<_, sqlx::Error>(l)
        }
        .await;
        match listener {
            Ok(mut l) => {
                let Some(h) = hot.upgrade() else { return };
                h.forget(Touched::ALL);
                drop(h);
                loop {
                    match l.try_recv().await {
                        Ok(Some(n)) => {
                            let Some(h) = hot.upgrade() else { return };
                            let bits = n.payload().parse::<u8>().unwrap_or(Touched::ALL.0);
                            h.forget(Touched::from_bits(bits));
                        }
                        // The connection dropped: notifications may be lost.
                        Ok(None) => {
                            let Some(h) = hot.upgrade() else { return };
                            h.forget(Touched::ALL);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "hot-read listener failed; reconnecting");
                            break;
                        }
                    }
                }
            }
            Err(e) => {
                if pool.is_closed() {
                    return;
                }
                tracing::warn!(error = %e, "hot-read listener cannot connect; retrying");
            }
        }
        if let Some(h) = hot.upgrade() {
            h.forget(Touched::ALL);
        } else {
            return;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_begun_before_a_forget_is_not_kept() {
        let shelf: Shelf<i32> = Shelf::new(Duration::from_secs(60));
        let ticket = shelf.get("a").unwrap_err();
        shelf.forget();
        shelf.put(ticket, "a", 1);
        assert!(shelf.get("a").is_err());
        let ticket = shelf.get("a").unwrap_err();
        shelf.put(ticket, "a", 2);
        assert_eq!(shelf.get("a").ok(), Some(2));
        shelf.forget();
        assert!(shelf.get("a").is_err());
    }

    #[test]
    fn entries_expire() {
        let shelf: Shelf<i32> = Shelf::new(Duration::from_millis(0));
        let ticket = shelf.get("a").unwrap_err();
        shelf.put(ticket, "a", 1);
        assert!(shelf.get("a").is_err());
    }

    #[test]
    fn touched_kinds_combine() {
        let mut t = Touched::empty();
        assert!(t.is_empty());
        t |= Touched::CODES;
        assert!(t.contains(Touched::CODES) && !t.contains(Touched::SESSIONS));
        assert_eq!(Touched::from_bits(t.bits()), t);
    }
}
