//! Stores' SQL. Reads for consumers are public; writes take the [`MerchantScope`].

use crate::db::{Db, DbResult, MerchantScope, Tx, query};

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct StoreRow {
    pub id: String,
    pub merchant_id: String,
    pub merchant_name: String,
    pub merchant_verified: bool,
    pub name: String,
    pub address: String,
    pub lat: f64,
    pub lng: f64,
    pub timezone: String,
    pub opening_hours: String,
    pub delivery_radius_m: i64,
    pub fence_radius_m: i64,
    pub created_at: i64,
}

pub struct NewStore<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub address: &'a str,
    pub lat: f64,
    pub lng: f64,
    pub timezone: &'a str,
    pub opening_hours: &'a str,
    pub delivery_radius_m: i64,
    pub fence_radius_m: i64,
    pub now: i64,
}

pub async fn insert_store(tx: &mut Tx, scope: &MerchantScope, s: NewStore<'_>) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO stores (id, merchant_id, name, address, lat, lng, timezone, opening_hours, delivery_radius_m, fence_radius_m, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        )
        .bind(s.id)
        .bind(scope.merchant_id())
        .bind(s.name)
        .bind(s.address)
        .bind(s.lat)
        .bind(s.lng)
        .bind(s.timezone)
        .bind(s.opening_hours)
        .bind(s.delivery_radius_m)
        .bind(s.fence_radius_m)
        .bind(s.now),
    )
    .await
    .map(drop)
}

pub async fn update_store(tx: &mut Tx, scope: &MerchantScope, s: NewStore<'_>) -> DbResult<u64> {
    tx.touches(crate::db::Touched::CODES);
    tx.execute(
        query(
            "UPDATE stores SET name = $1, address = $2, lat = $3, lng = $4, timezone = $5, opening_hours = $6, \
             delivery_radius_m = $7, fence_radius_m = $8 WHERE id = $9 AND merchant_id = $10",
        )
        .bind(s.name)
        .bind(s.address)
        .bind(s.lat)
        .bind(s.lng)
        .bind(s.timezone)
        .bind(s.opening_hours)
        .bind(s.delivery_radius_m)
        .bind(s.fence_radius_m)
        .bind(s.id)
        .bind(scope.merchant_id()),
    )
    .await
}

/// Any store, for public pages and discovery.
pub async fn store_public(db: &Db, id: &str) -> DbResult<Option<StoreRow>> {
    const SQL: &str = const_format_store_by_id();
    db.fetch_optional(query(SQL).bind(id)).await
}

/// A store of the scope's merchant (inside a write).
pub async fn store_scoped_tx(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
) -> DbResult<Option<StoreRow>> {
    const SQL: &str = const_format_store_scoped();
    tx.fetch_optional(query(SQL).bind(id).bind(scope.merchant_id()))
        .await
}

pub async fn store_scoped(db: &Db, scope: &MerchantScope, id: &str) -> DbResult<Option<StoreRow>> {
    const SQL: &str = const_format_store_scoped();
    db.fetch_optional(query(SQL).bind(id).bind(scope.merchant_id()))
        .await
}

pub async fn stores_of(
    db: &Db,
    scope: &MerchantScope,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<StoreRow>> {
    const SQL: &str = const_format_stores_of();
    db.fetch_all(
        query(SQL)
            .bind(scope.merchant_id())
            .bind(cursor)
            .bind(limit),
    )
    .await
}

/// Stores inside a latitude/longitude box (the indexed pre-filter of discovery).
pub async fn stores_in_box(
    db: &Db,
    min_lat: f64,
    max_lat: f64,
    min_lng: f64,
    max_lng: f64,
    cap: i64,
) -> DbResult<Vec<StoreRow>> {
    const SQL: &str = const_format_box();
    db.fetch_all(
        query(SQL)
            .bind(min_lat)
            .bind(max_lat)
            .bind(min_lng)
            .bind(max_lng)
            .bind(cap),
    )
    .await
}

// Complete SQL texts (the column list repeats: every query must stay a `&'static str`).
const fn const_format_store_by_id() -> &'static str {
    "SELECT s.id, s.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
     s.name, s.address, s.lat, s.lng, s.timezone, s.opening_hours, s.delivery_radius_m, s.fence_radius_m, s.created_at \
     FROM stores s JOIN merchants m ON m.id = s.merchant_id WHERE s.id = $1"
}
const fn const_format_store_scoped() -> &'static str {
    "SELECT s.id, s.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
     s.name, s.address, s.lat, s.lng, s.timezone, s.opening_hours, s.delivery_radius_m, s.fence_radius_m, s.created_at \
     FROM stores s JOIN merchants m ON m.id = s.merchant_id WHERE s.id = $1 AND s.merchant_id = $2"
}
const fn const_format_stores_of() -> &'static str {
    "SELECT s.id, s.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
     s.name, s.address, s.lat, s.lng, s.timezone, s.opening_hours, s.delivery_radius_m, s.fence_radius_m, s.created_at \
     FROM stores s JOIN merchants m ON m.id = s.merchant_id WHERE s.merchant_id = $1 AND ($2 IS NULL OR s.id < $2) \
     ORDER BY s.id DESC LIMIT $3"
}
const fn const_format_box() -> &'static str {
    "SELECT s.id, s.merchant_id, m.name AS merchant_name, m.verified AS merchant_verified, \
     s.name, s.address, s.lat, s.lng, s.timezone, s.opening_hours, s.delivery_radius_m, s.fence_radius_m, s.created_at \
     FROM stores s JOIN merchants m ON m.id = s.merchant_id \
     WHERE s.lat BETWEEN $1 AND $2 AND s.lng BETWEEN $3 AND $4 LIMIT $5"
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct TableRow {
    pub id: String,
    pub store_id: String,
    pub label: String,
    pub created_at: i64,
}

pub async fn insert_table(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
    store_id: &str,
    label: &str,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query("INSERT INTO store_tables (id, merchant_id, store_id, label, created_at) VALUES ($1, $2, $3, $4, $5)")
            .bind(id)
            .bind(scope.merchant_id())
            .bind(store_id)
            .bind(label)
            .bind(now),
    )
    .await
    .map(drop)
}

pub async fn tables_of(db: &Db, scope: &MerchantScope, store_id: &str) -> DbResult<Vec<TableRow>> {
    db.fetch_all(
        query(
            "SELECT id, store_id, label, created_at FROM store_tables WHERE store_id = $1 AND merchant_id = $2 \
             ORDER BY label LIMIT 1000",
        )
        .bind(store_id)
        .bind(scope.merchant_id()),
    )
    .await
}

pub async fn record_visit(tx: &mut Tx, user_id: &str, store_id: &str, now: i64) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO store_visits (user_id, store_id, visited_at) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, store_id) DO UPDATE SET visited_at = excluded.visited_at",
        )
        .bind(user_id)
        .bind(store_id)
        .bind(now),
    )
    .await
    .map(drop)
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct VisitRow {
    pub store_id: String,
    pub visited_at: i64,
}

pub async fn visits_of(db: &Db, user_id: &str, limit: i64) -> DbResult<Vec<VisitRow>> {
    db.fetch_all(
        query("SELECT store_id, visited_at FROM store_visits WHERE user_id = $1 ORDER BY visited_at DESC LIMIT $2")
            .bind(user_id)
            .bind(limit),
    )
    .await
}

/// Moves a guest's visits to the account it logged into (keeping the later visit of a store
/// both have seen).
pub async fn merge_visits(tx: &mut Tx, from: &str, into: &str) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO store_visits (user_id, store_id, visited_at) \
             SELECT $1, store_id, visited_at FROM store_visits WHERE user_id = $2 \
             ON CONFLICT (user_id, store_id) DO UPDATE SET visited_at = \
             CASE WHEN excluded.visited_at > store_visits.visited_at THEN excluded.visited_at ELSE store_visits.visited_at END",
        )
        .bind(into)
        .bind(from),
    )
    .await?;
    tx.execute(query("DELETE FROM store_visits WHERE user_id = $1").bind(from))
        .await
        .map(drop)
}

pub async fn table_scoped(
    tx: &mut Tx,
    scope: &MerchantScope,
    store_id: &str,
    table_id: &str,
) -> DbResult<Option<TableRow>> {
    tx.fetch_optional(
        query("SELECT id, store_id, label, created_at FROM store_tables WHERE id = $1 AND store_id = $2 AND merchant_id = $3")
            .bind(table_id)
            .bind(store_id)
            .bind(scope.merchant_id()),
    )
    .await
}

/// A store's time zone, if the store belongs to the merchant.
pub async fn own_store_timezone(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
) -> DbResult<Option<String>> {
    let row: Option<(String,)> = db
        .fetch_optional(
            query("SELECT timezone FROM stores WHERE id = $1 AND merchant_id = $2")
                .bind(store_id)
                .bind(merchant_id),
        )
        .await?;
    Ok(row.map(|r| r.0))
}

/// A table's label, if the table is the merchant's and in that store.
pub async fn table_label(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
    table_id: &str,
) -> DbResult<Option<String>> {
    let row: Option<(String,)> = db
        .fetch_optional(
            query("SELECT label FROM store_tables WHERE id = $1 AND store_id = $2 AND merchant_id = $3")
                .bind(table_id)
                .bind(store_id)
                .bind(merchant_id),
        )
        .await?;
    Ok(row.map(|r| r.0))
}

/// The time zone a merchant's days are counted in: the one its owner set, else its first
/// store's (`None`: neither).
pub async fn merchant_timezone(db: &Db, merchant_id: &str) -> DbResult<Option<String>> {
    let row: Option<(Option<String>,)> = db
        .fetch_optional(
            query(
                "SELECT COALESCE(m.timezone, \
                 (SELECT s.timezone FROM stores s WHERE s.merchant_id = m.id ORDER BY s.id LIMIT 1)) \
                 FROM merchants m WHERE m.id = $1",
            )
            .bind(merchant_id),
        )
        .await?;
    Ok(row.and_then(|r| r.0))
}
