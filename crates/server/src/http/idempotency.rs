//! Idempotency keys: a POST retried with the same `Idempotency-Key` returns the first response
//! (same status, same body) and has no second effect. The key is stored with its response in the
//! same transaction as the effect, so either both exist or neither does. The same key with a
//! different body is `409 idempotency_key_reused`. Two requests racing with one key: where the
//! effect is a transaction of its own, one wins and the other gets `409 idempotency_key_in_use`;
//! where the payments sequencer applies it (payments, refunds, wallet and budget movements), every
//! copy gets the winner's reply. Keys are scoped to the caller and kept 48 hours.

use super::json::Reply;
use crate::db::{Db, DbError, Tx, now_us, query};
use crate::error::{Error, Result};

/// How long keys are kept (at least the 24 h promised).
pub const KEEP_US: i64 = 48 * 3_600 * 1_000_000;

/// The refusal of a key sent before with a different request.
pub fn key_reused() -> Error {
    Error::conflict(
        "idempotency_key_reused",
        "This Idempotency-Key was used with a different request.",
    )
}

/// Keys of requests in progress on this node that ask an outside party (a payment provider) to
/// act, where the sequencer cannot stand between copies of one request: holding its key, a copy
/// waits for any other copy with that key to finish, and then finds its stored reply (or, for
/// another body under that key, refuses it) before asking anyone anything. Copies on different
/// nodes are not held back; the provider's own idempotency key keeps those to one charge.
#[derive(Default)]
pub struct KeyLocks {
    held: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    released: tokio::sync::Notify,
}

/// A key held (see [`KeyLocks::hold`]), released when dropped.
pub struct HeldKey<'a> {
    locks: &'a KeyLocks,
    key: (String, String),
}

impl KeyLocks {
    /// Holds `key` in `scope` (nothing, without a key), waiting while another request holds it.
    pub async fn hold<'a>(&'a self, scope: &str, key: Option<&str>) -> Option<HeldKey<'a>> {
        let key = (scope.to_owned(), key?.to_owned());
        loop {
            let released = self.released.notified();
            {
                let mut held = self.held.lock().unwrap_or_else(|e| e.into_inner());
                if held.insert(key.clone()) {
                    return Some(HeldKey { locks: self, key });
                }
            }
            // Created before the look, so a release in between still wakes it.
            released.await;
        }
    }
}

impl Drop for HeldKey<'_> {
    fn drop(&mut self) {
        self.locks
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&self.key);
        self.locks.released.notify_waiters();
    }
}

/// A write in progress: its transaction, and the key to record the response under.
pub struct Write {
    tx: Tx,
    scope: String,
    key: Option<String>,
    body_sha256: String,
}

/// What starting a keyed write found.
pub enum Begun {
    /// The key was used before with this body: answer with the stored response.
    Replay(Reply),
    /// A fresh write: do the effect in [`Write::tx`], then [`Write::finish`].
    Fresh(Write),
}

#[derive(sqlx::FromRow, serde::Deserialize)]
struct Stored {
    request_hash: String,
    status: i64,
    body: String,
}

/// Starts a write for `scope` (the caller) with the request's key and body hash.
pub async fn begin(db: &Db, scope: &str, key: Option<String>, body_sha256: &str) -> Result<Begun> {
    let mut tx = db.begin().await?;
    if let Some(k) = &key
        && let Some(stored) = tx
            .fetch_optional::<Stored>(
                query("SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2")
                    .bind(scope)
                    .bind(k),
            )
            .await?
    {
        if stored.request_hash != body_sha256 {
            return Err(key_reused());
        }
        // The stored outcome may be committed but not yet on the disk: never repeat it before.
        drop(tx);
        db.durable().await;
        return Ok(Begun::Replay(Reply {
            status: stored.status as u16,
            body: stored.body,
        }));
    }
    Ok(Begun::Fresh(Write {
        tx,
        scope: scope.to_owned(),
        key,
        body_sha256: body_sha256.to_owned(),
    }))
}

impl Write {
    pub fn tx(&mut self) -> &mut Tx {
        &mut self.tx
    }

    /// Records the response under the key (if any) and commits the effect with it.
    pub async fn finish(self, reply: Reply) -> Result<Reply> {
        let stored_body = reply.body.clone();
        self.finish_storing(reply, stored_body).await
    }

    /// Like [`Write::finish`], but stores `stored_body` for replays instead of the live body:
    /// for responses that carry a secret shown once, which must not be kept in plain text.
    pub async fn finish_storing(mut self, reply: Reply, stored_body: String) -> Result<Reply> {
        if let Some(key) = &self.key {
            let inserted = self
                .tx
                .execute(
                    query(
                        "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at) \
                         VALUES ($1, $2, $3, $4, $5, $6)",
                    )
                    .bind(&self.scope)
                    .bind(key)
                    .bind(&self.body_sha256)
                    .bind(i64::from(reply.status))
                    .bind(stored_body)
                    .bind(now_us()),
                )
                .await;
            match inserted {
                Ok(_) => {}
                Err(DbError::Conflict { .. }) => {
                    return Err(Error::conflict(
                        "idempotency_key_in_use",
                        "Another request with this Idempotency-Key is in progress; retry shortly.",
                    ));
                }
                Err(e) => return Err(e.into()),
            }
        }
        self.tx.commit().await.map_err(|e| match e {
            DbError::Conflict { .. } => Error::conflict(
                "idempotency_key_in_use",
                "Another request with this Idempotency-Key is in progress; retry shortly.",
            ),
            other => other.into(),
        })?;
        Ok(reply)
    }
}

/// For effects that manage their own transactions (logins): the stored reply for this key, if
/// the same request was answered before. Pair with [`remember`].
pub async fn lookup(
    db: &Db,
    scope: &str,
    key: Option<&str>,
    body_sha256: &str,
) -> Result<Option<Reply>> {
    let Some(k) = key else { return Ok(None) };
    let stored = db
        .fetch_optional::<Stored>(
            query("SELECT request_hash, status, body FROM idempotency_keys WHERE scope = $1 AND key = $2")
                .bind(scope)
                .bind(k),
        )
        .await?;
    match stored {
        None => Ok(None),
        Some(s) if s.request_hash != body_sha256 => Err(key_reused()),
        Some(s) => {
            // As in `begin`: the stored outcome is repeated only once it is on the disk.
            db.durable().await;
            Ok(Some(Reply {
                status: s.status as u16,
                body: s.body,
            }))
        }
    }
}

/// Stores the reply of an effect that committed on its own (see [`lookup`]).
pub async fn remember(
    db: &Db,
    scope: &str,
    key: Option<&str>,
    body_sha256: &str,
    status: u16,
    body: String,
) -> Result<()> {
    let Some(k) = key else { return Ok(()) };
    let mut tx = db.begin().await?;
    let _ = tx
        .execute(
            query(
                "INSERT INTO idempotency_keys (scope, key, request_hash, status, body, created_at) \
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (scope, key) DO NOTHING",
            )
            .bind(scope)
            .bind(k)
            .bind(body_sha256)
            .bind(i64::from(status))
            .bind(body)
            .bind(now_us()),
        )
        .await?;
    tx.commit().await?;
    Ok(())
}

/// Deletes keys older than [`KEEP_US`].
pub async fn sweep(db: &Db) -> Result<u64> {
    Ok(db
        .execute(
            query("DELETE FROM idempotency_keys WHERE created_at < $1").bind(now_us() - KEEP_US),
        )
        .await?)
}
