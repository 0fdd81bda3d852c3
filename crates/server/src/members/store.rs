//! Members' SQL. Card balances are read from the ledger's accounts; the sequencer writes cards'
//! points, tier and status (see `engine`), this file writes programs and opens cards.

use super::model::{CardRow, ProgramRow};
use crate::db::{Db, DbResult, MerchantScope, Tx, query};
use crate::payments::accounts::AccountSpec;

/// A merchant's program, if it runs one.
pub async fn program(db: &Db, merchant_id: &str) -> DbResult<Option<ProgramRow>> {
    db.fetch_optional(
        query("SELECT * FROM member_programs WHERE merchant_id = $1").bind(merchant_id),
    )
    .await
}

/// The programs of the merchants `merchant_ids_json` (a JSON array of ids) that run one.
pub async fn programs_of(db: &Db, merchant_ids_json: String) -> DbResult<Vec<ProgramRow>> {
    db.fetch_all_for(
        "SELECT * FROM member_programs WHERE merchant_id IN (SELECT value FROM json_each($1))",
        "SELECT * FROM member_programs WHERE merchant_id IN (SELECT json_array_elements_text($1::json))",
        vec![merchant_ids_json.into()],
    )
    .await
}

/// Creates or replaces the scoped merchant's program.
#[allow(clippy::too_many_arguments)]
pub async fn put_program(
    db: &Db,
    scope: &MerchantScope,
    currency: &str,
    bonuses_json: String,
    points_per_yuan: i64,
    tiers_json: String,
    birthday_coupon_template_id: Option<String>,
    now: i64,
) -> DbResult<()> {
    db.execute(
        query(
            "INSERT INTO member_programs (merchant_id, currency, top_up_bonuses, points_per_yuan, tiers, created_at, updated_at, \
             birthday_coupon_template_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $6, $7) \
             ON CONFLICT (merchant_id) DO UPDATE SET currency = excluded.currency, top_up_bonuses = excluded.top_up_bonuses, \
             points_per_yuan = excluded.points_per_yuan, tiers = excluded.tiers, updated_at = excluded.updated_at, \
             birthday_coupon_template_id = excluded.birthday_coupon_template_id",
        )
        .bind(scope.merchant_id())
        .bind(currency)
        .bind(bonuses_json)
        .bind(points_per_yuan)
        .bind(tiers_json)
        .bind(now)
        .bind(birthday_coupon_template_id),
    )
    .await
    .map(|_| ())
}

/// How many cards the merchant has opened (the program's currency is fixed once there is one).
pub async fn card_count(db: &Db, merchant_id: &str) -> DbResult<i64> {
    let (n,): (i64,) = db
        .fetch_one(
            query("SELECT COUNT(*) FROM member_cards WHERE merchant_id = $1").bind(merchant_id),
        )
        .await?;
    Ok(n)
}

/// The consumer's card at a merchant, whatever its status.
pub async fn card_of(tx: &mut Tx, user_id: &str, merchant_id: &str) -> DbResult<Option<CardRow>> {
    tx.fetch_optional(
        query("SELECT * FROM member_cards WHERE user_id = $1 AND merchant_id = $2")
            .bind(user_id)
            .bind(merchant_id),
    )
    .await
}

/// The consumer's card at a merchant, read outside a transaction.
pub async fn card_at(db: &Db, user_id: &str, merchant_id: &str) -> DbResult<Option<CardRow>> {
    db.fetch_optional(
        query("SELECT * FROM member_cards WHERE user_id = $1 AND merchant_id = $2")
            .bind(user_id)
            .bind(merchant_id),
    )
    .await
}

/// Opens a card with its two ledger accounts (zero balances), in the caller's transaction.
pub async fn insert_card(tx: &mut Tx, card: &CardRow, accounts: &[AccountSpec]) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO member_cards (id, merchant_id, user_id, currency, status, points, tier, created_at, updated_at, closed_at) \
             VALUES ($1, $2, $3, $4, 'active', 0, NULL, $5, $5, NULL)",
        )
        .bind(card.id.as_str())
        .bind(card.merchant_id.as_str())
        .bind(card.user_id.as_str())
        .bind(card.currency.as_str())
        .bind(card.created_at),
    )
    .await?;
    for a in accounts {
        tx.execute(
            query(
                "INSERT INTO ledger_accounts (id, kind, owner_id, currency, no_overdraft, balance, pending_out, pending_in, created_at) \
                 VALUES ($1, $2, $3, $4, $5, 0, 0, 0, $6)",
            )
            .bind(a.id.as_str())
            .bind(a.kind.as_str())
            .bind(a.owner.clone())
            .bind(a.currency.code())
            .bind(a.no_overdraft)
            .bind(card.created_at),
        )
        .await?;
    }
    Ok(())
}

/// Reopens a closed card (its accounts stay; closing emptied them).
pub async fn reopen(tx: &mut Tx, card_id: &str, now: i64) -> DbResult<u64> {
    tx.execute(
        query(
            "UPDATE member_cards SET status = 'active', closed_at = NULL, updated_at = $2 \
             WHERE id = $1 AND status = 'closed'",
        )
        .bind(card_id)
        .bind(now),
    )
    .await
}

/// A card by id (the caller checks whose it is).
pub async fn card(db: &Db, card_id: &str) -> DbResult<Option<CardRow>> {
    db.fetch_optional(query("SELECT * FROM member_cards WHERE id = $1").bind(card_id))
        .await
}

/// The consumer's cards, newest first.
pub async fn cards_of_user(db: &Db, user_id: &str, limit: i64) -> DbResult<Vec<CardRow>> {
    db.fetch_all(
        query("SELECT * FROM member_cards WHERE user_id = $1 ORDER BY id DESC LIMIT $2")
            .bind(user_id)
            .bind(limit),
    )
    .await
}

/// A merchant's name.
pub async fn merchant_name(db: &Db, merchant_id: &str) -> DbResult<Option<String>> {
    let row: Option<(String,)> = db
        .fetch_optional(query("SELECT name FROM merchants WHERE id = $1").bind(merchant_id))
        .await?;
    Ok(row.map(|r| r.0))
}

/// An account's spendable balance (balance less holds), 0 when it does not exist.
pub async fn available(db: &Db, account_id: &str) -> DbResult<i64> {
    let row: Option<(i64, i64)> = db
        .fetch_optional(
            query("SELECT balance, pending_out FROM ledger_accounts WHERE id = $1")
                .bind(account_id),
        )
        .await?;
    Ok(row.map(|(b, p)| b - p).unwrap_or(0))
}

/// What the card spent in the window starting at `since` (payments less refunds).
pub async fn spend_since(db: &Db, card_id: &str, since: i64) -> DbResult<i64> {
    let (n,): (i64,) = db
        .fetch_one(
            query(
                "SELECT CAST(COALESCE(SUM(spend), 0) AS BIGINT) FROM member_card_movements \
                 WHERE card_id = $1 AND created_at >= $2",
            )
            .bind(card_id)
            .bind(since),
        )
        .await?;
    Ok(n)
}

/// A card's movement, as stored.
#[derive(sqlx::FromRow, serde::Deserialize)]
pub struct MovementRow {
    pub id: String,
    pub kind: String,
    pub paid: i64,
    pub bonus: i64,
    pub points: i64,
    pub payment_id: Option<String>,
    pub reference: String,
    pub created_at: i64,
}

/// A card's latest movements, newest first.
pub async fn movements(db: &Db, card_id: &str, limit: i64) -> DbResult<Vec<MovementRow>> {
    db.fetch_all(
        query(
            "SELECT id, kind, paid, bonus, points, payment_id, reference, created_at \
             FROM member_card_movements WHERE card_id = $1 ORDER BY id DESC LIMIT $2",
        )
        .bind(card_id)
        .bind(limit),
    )
    .await
}

/// The programs that give a birthday coupon.
pub async fn birthday_programs(db: &Db) -> DbResult<Vec<ProgramRow>> {
    db.fetch_all(query(
        "SELECT * FROM member_programs WHERE birthday_coupon_template_id IS NOT NULL ORDER BY merchant_id",
    ))
    .await
}

/// The open cards at a merchant of the given consumers (a JSON array of ids): (card, consumer).
pub async fn open_cards_of(
    db: &Db,
    merchant_id: &str,
    user_ids_json: String,
) -> DbResult<Vec<(String, String)>> {
    db.fetch_all_for(
        "SELECT id, user_id FROM member_cards WHERE merchant_id = $1 AND status = 'active' \
         AND user_id IN (SELECT value FROM json_each($2)) ORDER BY id",
        "SELECT id, user_id FROM member_cards WHERE merchant_id = $1 AND status = 'active' \
         AND user_id IN (SELECT json_array_elements_text($2::json)) ORDER BY id",
        vec![merchant_id.into(), user_ids_json.into()],
    )
    .await
}
