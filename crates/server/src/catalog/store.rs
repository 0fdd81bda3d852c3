//! The catalog's SQL. Merchant writes and merchant reads take the [`MerchantScope`]; the menu's
//! reads are public and go by the store's merchant.

use crate::db::{Db, DbResult, MerchantScope, Tx, query};

/// The most products (and categories) one menu carries.
pub const MENU_MAX_ROWS: i64 = 2_000;

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct CategoryRow {
    pub id: String,
    pub merchant_id: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub position: i64,
    pub created_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct ProductRow {
    pub id: String,
    pub merchant_id: String,
    pub category_id: Option<String>,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub description: String,
    pub price: i64,
    pub currency: String,
    pub option_groups: String,
    pub barcode: Option<String>,
    pub position: i64,
    pub photo_etag: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct StoreProductRow {
    pub store_id: String,
    pub product_id: String,
    pub price: Option<i64>,
    pub available: bool,
    pub stock: Option<i64>,
    pub updated_at: i64,
}

#[derive(Debug, sqlx::FromRow, serde::Deserialize)]
pub struct PhotoRow {
    pub etag: String,
    pub content_type: String,
    pub bytes: Vec<u8>,
}

const CATEGORY_COLUMNS_BY_ID: &str = "SELECT id, merchant_id, name_zh, name_en, position, created_at FROM catalog_categories \
     WHERE id = $1 AND merchant_id = $2";

pub async fn insert_category(
    tx: &mut Tx,
    scope: &MerchantScope,
    row: &CategoryRow,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO catalog_categories (id, merchant_id, name_zh, name_en, position, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&row.id)
        .bind(scope.merchant_id())
        .bind(row.name_zh.clone())
        .bind(row.name_en.clone())
        .bind(row.position)
        .bind(row.created_at),
    )
    .await
    .map(drop)
}

pub async fn category_scoped_tx(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
) -> DbResult<Option<CategoryRow>> {
    tx.fetch_optional(
        query(CATEGORY_COLUMNS_BY_ID)
            .bind(id)
            .bind(scope.merchant_id()),
    )
    .await
}

pub async fn categories_page(
    db: &Db,
    scope: &MerchantScope,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<CategoryRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, name_zh, name_en, position, created_at FROM catalog_categories \
             WHERE merchant_id = $1 AND ($2 IS NULL OR id < $2) ORDER BY id DESC LIMIT $3",
        )
        .bind(scope.merchant_id())
        .bind(cursor)
        .bind(limit),
    )
    .await
}

/// Every category of a merchant in menu order.
pub async fn categories_of_merchant(db: &Db, merchant_id: &str) -> DbResult<Vec<CategoryRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, name_zh, name_en, position, created_at FROM catalog_categories \
             WHERE merchant_id = $1 ORDER BY position, id LIMIT $2",
        )
        .bind(merchant_id)
        .bind(MENU_MAX_ROWS),
    )
    .await
}

const PRODUCT_SELECT_BY_ID: &str = "SELECT id, merchant_id, category_id, name_zh, name_en, description, price, currency, \
     option_groups, barcode, position, photo_etag, created_at, updated_at FROM catalog_products \
     WHERE id = $1 AND merchant_id = $2";

pub async fn insert_product(tx: &mut Tx, scope: &MerchantScope, p: &ProductRow) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO catalog_products (id, merchant_id, category_id, name_zh, name_en, description, price, \
             currency, option_groups, barcode, position, photo_etag, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, NULL, $12, $12)",
        )
        .bind(&p.id)
        .bind(scope.merchant_id())
        .bind(p.category_id.clone())
        .bind(p.name_zh.clone())
        .bind(p.name_en.clone())
        .bind(&p.description)
        .bind(p.price)
        .bind(&p.currency)
        .bind(&p.option_groups)
        .bind(p.barcode.clone())
        .bind(p.position)
        .bind(p.created_at),
    )
    .await
    .map(drop)
}

pub async fn update_product(tx: &mut Tx, scope: &MerchantScope, p: &ProductRow) -> DbResult<u64> {
    tx.execute(
        query(
            "UPDATE catalog_products SET category_id = $1, name_zh = $2, name_en = $3, description = $4, \
             price = $5, option_groups = $6, barcode = $7, position = $8, updated_at = $9 \
             WHERE id = $10 AND merchant_id = $11",
        )
        .bind(p.category_id.clone())
        .bind(p.name_zh.clone())
        .bind(p.name_en.clone())
        .bind(&p.description)
        .bind(p.price)
        .bind(&p.option_groups)
        .bind(p.barcode.clone())
        .bind(p.position)
        .bind(p.updated_at)
        .bind(&p.id)
        .bind(scope.merchant_id()),
    )
    .await
}

pub async fn product_scoped(
    db: &Db,
    scope: &MerchantScope,
    id: &str,
) -> DbResult<Option<ProductRow>> {
    db.fetch_optional(
        query(PRODUCT_SELECT_BY_ID)
            .bind(id)
            .bind(scope.merchant_id()),
    )
    .await
}

pub async fn product_scoped_tx(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
) -> DbResult<Option<ProductRow>> {
    tx.fetch_optional(
        query(PRODUCT_SELECT_BY_ID)
            .bind(id)
            .bind(scope.merchant_id()),
    )
    .await
}

/// A product of the given merchant, for public reads (the menu's quote).
pub async fn product_of_merchant(
    db: &Db,
    merchant_id: &str,
    id: &str,
) -> DbResult<Option<ProductRow>> {
    db.fetch_optional(query(PRODUCT_SELECT_BY_ID).bind(id).bind(merchant_id))
        .await
}

pub async fn products_page(
    db: &Db,
    scope: &MerchantScope,
    category_id: Option<String>,
    cursor: Option<String>,
    limit: i64,
) -> DbResult<Vec<ProductRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, category_id, name_zh, name_en, description, price, currency, \
             option_groups, barcode, position, photo_etag, created_at, updated_at FROM catalog_products \
             WHERE merchant_id = $1 AND ($2 IS NULL OR category_id = $2) AND ($3 IS NULL OR id < $3) \
             ORDER BY id DESC LIMIT $4",
        )
        .bind(scope.merchant_id())
        .bind(category_id)
        .bind(cursor)
        .bind(limit),
    )
    .await
}

/// Every product of a merchant in menu order.
pub async fn products_of_merchant(db: &Db, merchant_id: &str) -> DbResult<Vec<ProductRow>> {
    db.fetch_all(
        query(
            "SELECT id, merchant_id, category_id, name_zh, name_en, description, price, currency, \
             option_groups, barcode, position, photo_etag, created_at, updated_at FROM catalog_products \
             WHERE merchant_id = $1 ORDER BY position, id LIMIT $2",
        )
        .bind(merchant_id)
        .bind(MENU_MAX_ROWS),
    )
    .await
}

pub async fn product_by_barcode(
    db: &Db,
    merchant_id: &str,
    barcode: &str,
) -> DbResult<Option<ProductRow>> {
    db.fetch_optional(
        query(
            "SELECT id, merchant_id, category_id, name_zh, name_en, description, price, currency, \
             option_groups, barcode, position, photo_etag, created_at, updated_at FROM catalog_products \
             WHERE merchant_id = $1 AND barcode = $2",
        )
        .bind(merchant_id)
        .bind(barcode),
    )
    .await
}

pub async fn upsert_store_product(
    tx: &mut Tx,
    scope: &MerchantScope,
    row: &StoreProductRow,
) -> DbResult<()> {
    tx.execute(
        query(
            "INSERT INTO catalog_store_products (store_id, product_id, merchant_id, price, available, stock, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) \
             ON CONFLICT (store_id, product_id) DO UPDATE SET price = excluded.price, \
             available = excluded.available, stock = excluded.stock, updated_at = excluded.updated_at",
        )
        .bind(&row.store_id)
        .bind(&row.product_id)
        .bind(scope.merchant_id())
        .bind(row.price)
        .bind(row.available)
        .bind(row.stock)
        .bind(row.updated_at),
    )
    .await
    .map(drop)
}

pub async fn store_product(
    db: &Db,
    store_id: &str,
    product_id: &str,
) -> DbResult<Option<StoreProductRow>> {
    db.fetch_optional(
        query(
            "SELECT store_id, product_id, price, available, stock, updated_at FROM catalog_store_products \
             WHERE store_id = $1 AND product_id = $2",
        )
        .bind(store_id)
        .bind(product_id),
    )
    .await
}

pub async fn store_products_of(db: &Db, store_id: &str) -> DbResult<Vec<StoreProductRow>> {
    db.fetch_all(
        query(
            "SELECT store_id, product_id, price, available, stock, updated_at FROM catalog_store_products \
             WHERE store_id = $1 LIMIT $2",
        )
        .bind(store_id)
        .bind(MENU_MAX_ROWS),
    )
    .await
}

/// Raises the merchant's catalog version by one and returns it.
pub async fn bump_version(tx: &mut Tx, merchant_id: &str) -> DbResult<i64> {
    let (v,): (i64,) = tx
        .fetch_one(
            query(
                "INSERT INTO catalog_versions (merchant_id, version) VALUES ($1, 1) \
                 ON CONFLICT (merchant_id) DO UPDATE SET version = catalog_versions.version + 1 \
                 RETURNING version",
            )
            .bind(merchant_id),
        )
        .await?;
    Ok(v)
}

/// The merchant's catalog version (0 before any change).
pub async fn version_of(db: &Db, merchant_id: &str) -> DbResult<i64> {
    let row: Option<(i64,)> = db
        .fetch_optional(
            query("SELECT version FROM catalog_versions WHERE merchant_id = $1").bind(merchant_id),
        )
        .await?;
    Ok(row.map(|r| r.0).unwrap_or(0))
}

/// Replaces a product's photos with the given renditions and records the new ETag.
pub async fn replace_photos(
    tx: &mut Tx,
    scope: &MerchantScope,
    product_id: &str,
    etag: &str,
    renditions: Vec<(i64, Vec<u8>)>,
    now: i64,
) -> DbResult<()> {
    tx.execute(
        query("DELETE FROM catalog_photos WHERE product_id = $1 AND merchant_id = $2")
            .bind(product_id)
            .bind(scope.merchant_id()),
    )
    .await?;
    for (width, bytes) in renditions {
        tx.execute(
            query(
                "INSERT INTO catalog_photos (product_id, width_px, merchant_id, etag, content_type, bytes) \
                 VALUES ($1, $2, $3, $4, 'image/jpeg', $5)",
            )
            .bind(product_id)
            .bind(width)
            .bind(scope.merchant_id())
            .bind(etag)
            .bind(bytes),
        )
        .await?;
    }
    tx.execute(
        query(
            "UPDATE catalog_products SET photo_etag = $1, updated_at = $2 WHERE id = $3 AND merchant_id = $4",
        )
        .bind(etag)
        .bind(now)
        .bind(product_id)
        .bind(scope.merchant_id()),
    )
    .await
    .map(drop)
}

pub async fn photo(db: &Db, product_id: &str, width_px: i64) -> DbResult<Option<PhotoRow>> {
    db.fetch_optional(
        query(
            "SELECT etag, content_type, bytes FROM catalog_photos WHERE product_id = $1 AND width_px = $2",
        )
        .bind(product_id)
        .bind(width_px),
    )
    .await
}

/// A store's count of one product, as the orders sequencer reserves and releases it.
#[derive(Debug, Clone, sqlx::FromRow, serde::Deserialize)]
pub struct StockRow {
    pub store_id: String,
    pub product_id: String,
    pub merchant_id: String,
    pub available: bool,
    pub stock: Option<i64>,
}

/// The store settings of these `(store, product)` pairs (a JSON array of `{"s", "p"}`), locked
/// for the batch on PostgreSQL. Pairs without settings are absent (on sale, stock not counted).
pub async fn stock_for_update(tx: &mut Tx, pairs_json: String) -> DbResult<Vec<StockRow>> {
    tx.fetch_all_for(
        "SELECT sp.store_id, sp.product_id, sp.merchant_id, sp.available, sp.stock FROM catalog_store_products sp \
         JOIN json_each($1) j ON sp.store_id = json_extract(j.value, '$.s') AND sp.product_id = json_extract(j.value, '$.p') \
         ORDER BY sp.store_id, sp.product_id",
        "SELECT sp.store_id, sp.product_id, sp.merchant_id, sp.available, sp.stock FROM catalog_store_products sp \
         JOIN json_to_recordset($1::json) AS j(s text, p text) ON sp.store_id = j.s AND sp.product_id = j.p \
         ORDER BY sp.store_id, sp.product_id FOR UPDATE OF sp",
        vec![crate::db::Value::from(pairs_json)],
    )
    .await
}

/// Adds signed deltas to counted stock (rows of `{"s", "p", "d"}`) (SQLite, PostgreSQL); one
/// of the batch's deferred writes.
pub(crate) const ADD_STOCK: (&str, &str) = (
    "UPDATE catalog_store_products SET stock = stock + :d WHERE store_id = :s AND product_id = :p AND stock IS NOT NULL",
    "UPDATE catalog_store_products AS sp SET stock = sp.stock + j.d \
         FROM json_to_recordset($1::json) AS j(s text, p text, d bigint) \
         WHERE sp.store_id = j.s AND sp.product_id = j.p AND sp.stock IS NOT NULL",
);
