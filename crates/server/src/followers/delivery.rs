//! Delivering messages into inboxes, in the background, never in the request that sent them.
//!
//! A queued message first has its audience fixed (`audience_at`: followers who consented, or
//! members whose card was open, by then; `recipients`: how many of them had not muted the merchant). Then inbox rows are written
//! in chunks of [`CHUNK`] followers, in follower-id order. Each chunk is one short write
//! transaction: the inbox rows (a single `INSERT … SELECT`, re-checking follow and mute under
//! the writer) and the message's progress (`delivered`, `delivered_through`), so the progress
//! on disk always matches the rows written and a restart resumes after the last committed
//! chunk. Where the chunk ends is found beforehand on a reader, so the writer (on SQLite the write
//! lock the payments sequencer takes turns at) is held only for the writes themselves.
//!
//! Several nodes may work on the same message: a chunk's progress is recorded only if the
//! message is still where the chunk started (`delivered_through` unchanged), and an inbox row
//! has one id per (message, consumer), so nothing is delivered twice.

use super::model::Audience;
use super::service::{self, MESSAGE_SENT};
use super::store;
use crate::app::AppState;
use crate::db::now_us;
use crate::error::Result;

/// Followers per chunk: one short write transaction each.
pub const CHUNK: i64 = 1_000;

/// Unsent messages looked at per round.
const MESSAGES_PER_ROUND: i64 = 16;

/// Delivers every unsent message as far as it goes (each to the end, chunk by chunk). Returns
/// how many chunks were written.
pub async fn deliver_round(app: &AppState) -> Result<usize> {
    let mut chunks = 0;
    for row in store::unsent(&app.db, MESSAGES_PER_ROUND).await? {
        chunks += deliver_message(app, &row.id).await?;
    }
    Ok(chunks)
}

/// Takes one message from where it is to `sent`. Returns how many chunks were written here.
pub async fn deliver_message(app: &AppState, id: &str) -> Result<usize> {
    let mut chunks = 0;
    loop {
        let Some(row) = store::message(&app.db, id).await? else {
            return Ok(chunks);
        };
        // Stored only after parsing, so this holds; an unknown audience reaches nobody.
        let Ok(audience) = Audience::parse(&row.audience) else {
            return Ok(chunks);
        };
        match row.status.as_str() {
            "sent" => return Ok(chunks),
            "queued" => {
                // Fix the audience: who is in it now, and how many of them can be reached.
                let at = now_us();
                let (_, reachable) =
                    store::audience_count(&app.db, &row.merchant_id, &audience, at).await?;
                let mut tx = app.db.begin().await?;
                store::start_sending(&mut tx, &row.id, at, reachable).await?;
                tx.commit().await?;
            }
            _ => {
                let Some(audience_at) = row.audience_at else {
                    return Ok(chunks);
                };
                let after = row.delivered_through.clone();
                let end =
                    store::chunk_end(&app.db, &row.merchant_id, &audience, &after, CHUNK).await?;
                let now = now_us();
                let mut tx = app.db.begin().await?;
                let written = store::deliver_chunk(
                    &mut tx,
                    &row.id,
                    &row.merchant_id,
                    &audience,
                    &after,
                    end.as_deref(),
                    audience_at,
                    now,
                )
                .await?;
                let done = end.is_none();
                let through = end.clone().unwrap_or_else(|| after.clone());
                let moved = store::advance(
                    &mut tx,
                    &row.id,
                    &after,
                    &through,
                    written as i64,
                    done,
                    now,
                )
                .await?;
                if !moved {
                    // Another node moved this message on meanwhile: drop ours, look again.
                    drop(tx);
                    continue;
                }
                let event = if done {
                    let sent = store::message_tx(&mut tx, &row.id).await?;
                    match sent {
                        Some(sent) => Some(
                            service::event_of(
                                &mut tx,
                                &service::message_of(sent),
                                MESSAGE_SENT,
                                now,
                            )
                            .await?,
                        ),
                        None => None,
                    }
                } else {
                    None
                };
                tx.commit().await?;
                chunks += 1;
                metrics::counter!("message_inbox_rows_total").increment(written);
                if let Some(event) = event {
                    app.bus.publish(event);
                }
                // Let other writers (payments) in between chunks.
                tokio::task::yield_now().await;
            }
        }
    }
}
