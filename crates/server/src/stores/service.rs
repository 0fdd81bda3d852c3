//! Stores' rules: checking a store's location, hours and radii; tables; discovery by distance.

use super::hours::{is_open_at, parse_opening_hours, parse_timezone};
use super::model::*;
use super::store;
use crate::db::{Db, MerchantScope, Tx, now_us, rfc3339};
use crate::error::{Error, Result};
use crate::http::{List, Page};
use crate::ids::{StoreId, TableId};
use crate::merchants::model::parse_name;
use o2o_geo::{BoundingBox, LatLng, Radius, distance_m_rounded};

/// The most stores a discovery query weighs before sorting by distance.
const DISCOVERY_CANDIDATES: i64 = 2_000;

pub(crate) fn store_of(row: store::StoreRow, now: i64, distance_m: Option<u32>) -> Store {
    Store {
        open_now: is_open_at(&row.opening_hours, &row.timezone, now),
        merchant: StoreMerchant {
            id: row.merchant_id.clone(),
            name: row.merchant_name,
            verified: row.merchant_verified,
        },
        id: row.id,
        merchant_id: row.merchant_id,
        name: row.name,
        address: row.address,
        lat: row.lat,
        lng: row.lng,
        timezone: row.timezone,
        opening_hours: row.opening_hours,
        delivery_radius_m: row.delivery_radius_m,
        fence_radius_m: row.fence_radius_m,
        created_at: rfc3339(row.created_at),
        distance_m,
    }
}

fn store_not_found() -> Error {
    Error::not_found("store_not_found", "No such store.").param("id")
}

fn parse_radius(value: i64, min: i64, max: i64, param: &'static str) -> Result<i64> {
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(Error::invalid(
            "radius_out_of_range",
            format!("{param} must be between {min} and {max} metres."),
        )
        .param(param))
    }
}

fn parse_address(raw: &str) -> Result<String> {
    parse_name(raw, 200, "address").map_err(|e| Error {
        code: "invalid_address".into(),
        ..e
    })
}

fn parse_location(lat: f64, lng: f64) -> Result<LatLng> {
    LatLng::new(lat, lng).map_err(|e| {
        let param = if (-90.0..=90.0).contains(&lat) {
            "lng"
        } else {
            "lat"
        };
        Error::from(e).param(param)
    })
}

/// Checked store fields.
struct StoreFields {
    name: String,
    address: String,
    location: LatLng,
    timezone: String,
    opening_hours: String,
    delivery_radius_m: i64,
    fence_radius_m: i64,
}

impl StoreFields {
    fn write<'a>(&'a self, id: &'a str, now: i64) -> store::NewStore<'a> {
        store::NewStore {
            id,
            name: &self.name,
            address: &self.address,
            lat: self.location.lat(),
            lng: self.location.lng(),
            timezone: &self.timezone,
            opening_hours: &self.opening_hours,
            delivery_radius_m: self.delivery_radius_m,
            fence_radius_m: self.fence_radius_m,
            now,
        }
    }
}

/// Creates a store for the caller's merchant; `merchant_id` must be the caller's own.
pub async fn create_store(tx: &mut Tx, scope: &MerchantScope, input: CreateStore) -> Result<Store> {
    if !scope.owns(&input.merchant_id) {
        return Err(
            Error::not_found("merchant_not_found", "No such merchant.").param("merchant_id")
        );
    }
    let fields = StoreFields {
        name: parse_name(&input.name, 80, "name")?,
        address: parse_address(&input.address)?,
        location: parse_location(input.lat, input.lng)?,
        timezone: parse_timezone(&input.timezone)?,
        opening_hours: parse_opening_hours(&input.opening_hours)?,
        delivery_radius_m: parse_radius(
            input.delivery_radius_m.unwrap_or(3_000),
            0,
            50_000,
            "delivery_radius_m",
        )?,
        fence_radius_m: parse_radius(
            input.fence_radius_m.unwrap_or(200),
            10,
            5_000,
            "fence_radius_m",
        )?,
    };
    let id = StoreId::generate();
    let now = now_us();
    store::insert_store(tx, scope, fields.write(id.as_str(), now)).await?;
    let row = store::store_scoped_tx(tx, scope, id.as_str())
        .await?
        .ok_or_else(store_not_found)?;
    Ok(store_of(row, now, None))
}

/// Changes some of a store's fields; the rest stay.
pub async fn update_store(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
    input: UpdateStore,
) -> Result<Store> {
    let current = store::store_scoped_tx(tx, scope, id)
        .await?
        .ok_or_else(store_not_found)?;
    let fields = StoreFields {
        name: parse_name(input.name.as_deref().unwrap_or(&current.name), 80, "name")?,
        address: parse_address(input.address.as_deref().unwrap_or(&current.address))?,
        location: parse_location(
            input.lat.unwrap_or(current.lat),
            input.lng.unwrap_or(current.lng),
        )?,
        timezone: parse_timezone(input.timezone.as_deref().unwrap_or(&current.timezone))?,
        opening_hours: parse_opening_hours(
            input
                .opening_hours
                .as_deref()
                .unwrap_or(&current.opening_hours),
        )?,
        delivery_radius_m: parse_radius(
            input.delivery_radius_m.unwrap_or(current.delivery_radius_m),
            0,
            50_000,
            "delivery_radius_m",
        )?,
        fence_radius_m: parse_radius(
            input.fence_radius_m.unwrap_or(current.fence_radius_m),
            10,
            5_000,
            "fence_radius_m",
        )?,
    };
    let now = now_us();
    store::update_store(tx, scope, fields.write(id, now)).await?;
    let row = store::store_scoped_tx(tx, scope, id)
        .await?
        .ok_or_else(store_not_found)?;
    Ok(store_of(row, now, None))
}

/// Any store, as the public sees it.
pub async fn get_store(db: &Db, id: &str) -> Result<Store> {
    let row = store::store_public(db, id)
        .await?
        .ok_or_else(store_not_found)?;
    Ok(store_of(row, now_us(), None))
}

/// Any store, or none (for pages).
pub async fn find_store(db: &Db, id: &str) -> Result<Option<Store>> {
    Ok(store::store_public(db, id)
        .await?
        .map(|row| store_of(row, now_us(), None)))
}

/// A store of the caller's merchant; others are "not found".
pub async fn get_own_store(db: &Db, scope: &MerchantScope, id: &str) -> Result<Store> {
    let row = store::store_scoped(db, scope, id)
        .await?
        .ok_or_else(store_not_found)?;
    Ok(store_of(row, now_us(), None))
}

pub async fn list_own_stores(db: &Db, scope: &MerchantScope, page: &Page) -> Result<List<Store>> {
    let now = now_us();
    let rows = store::stores_of(db, scope, page.cursor(), page.fetch_limit()).await?;
    Ok(page.finish(rows.into_iter().map(|r| store_of(r, now, None)).collect()))
}

/// Stores within `radius` of `center`, nearest first, at most `limit`.
pub async fn nearby(db: &Db, center: LatLng, radius: Radius, limit: usize) -> Result<List<Store>> {
    let bbox: BoundingBox = radius.bounding_box(center);
    let rows = store::stores_in_box(
        db,
        bbox.min_lat(),
        bbox.max_lat(),
        bbox.min_lng(),
        bbox.max_lng(),
        DISCOVERY_CANDIDATES,
    )
    .await?;
    let now = now_us();
    let mut found: Vec<(u32, store::StoreRow)> = rows
        .into_iter()
        .filter_map(|row| {
            let at = LatLng::new(row.lat, row.lng).ok()?;
            let d = distance_m_rounded(center, at);
            (d <= radius.metres()).then_some((d, row))
        })
        .collect();
    found.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.id.cmp(&b.1.id)));
    let has_more = found.len() > limit;
    let data = found
        .into_iter()
        .take(limit)
        .map(|(d, row)| store_of(row, now, Some(d)))
        .collect();
    Ok(List { data, has_more })
}

fn table_of(row: store::TableRow) -> Table {
    Table {
        id: row.id,
        store_id: row.store_id,
        label: row.label,
        created_at: rfc3339(row.created_at),
    }
}

/// Adds a table to one of the caller's stores; labels are unique within a store.
pub async fn add_table(
    tx: &mut Tx,
    scope: &MerchantScope,
    store_id: &str,
    input: CreateTable,
) -> Result<Table> {
    let label = parse_name(&input.label, 20, "label").map_err(|e| Error {
        code: "invalid_label".into(),
        ..e
    })?;
    store::store_scoped_tx(tx, scope, store_id)
        .await?
        .ok_or_else(store_not_found)?;
    let id = TableId::generate();
    let now = now_us();
    store::insert_table(tx, scope, id.as_str(), store_id, &label, now)
        .await
        .map_err(|e| {
            if e.is_conflict_on("label") || e.is_conflict_on("store_tables") {
                Error::conflict(
                    "table_label_taken",
                    "This store already has a table with that label.",
                )
                .param("label")
            } else {
                e.into()
            }
        })?;
    Ok(Table {
        id: id.to_string(),
        store_id: store_id.to_owned(),
        label,
        created_at: rfc3339(now),
    })
}

pub async fn list_tables(db: &Db, scope: &MerchantScope, store_id: &str) -> Result<Vec<Table>> {
    store::store_scoped(db, scope, store_id)
        .await?
        .ok_or_else(store_not_found)?;
    Ok(store::tables_of(db, scope, store_id)
        .await?
        .into_iter()
        .map(table_of)
        .collect())
}

/// Remembers that a consumer (or guest) looked at a store.
pub async fn record_visit(db: &Db, user_id: &str, store_id: &str) -> Result<()> {
    let mut tx = db.begin().await?;
    store::record_visit(&mut tx, user_id, store_id, now_us()).await?;
    tx.commit().await?;
    Ok(())
}

/// The stores a consumer visited lately, most recent first.
pub async fn recent_visits(db: &Db, user_id: &str, limit: i64) -> Result<Vec<Store>> {
    let mut out = Vec::new();
    for v in store::visits_of(db, user_id, limit).await? {
        if let Some(s) = find_store(db, &v.store_id).await? {
            out.push(s);
        }
    }
    Ok(out)
}

/// Joins a guest's store visits to the account it logged into.
pub async fn merge_visits(tx: &mut Tx, from: &str, into: &str) -> Result<()> {
    Ok(store::merge_visits(tx, from, into).await?)
}

/// A store of the caller's merchant inside a write, or none.
pub async fn get_own_store_tx(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
) -> Result<Option<Store>> {
    Ok(store::store_scoped_tx(tx, scope, id)
        .await?
        .map(|row| store_of(row, now_us(), None)))
}

/// True when the caller's merchant has this store.
pub async fn own_store_exists(db: &Db, scope: &MerchantScope, id: &str) -> Result<bool> {
    Ok(store::store_scoped(db, scope, id).await?.is_some())
}

/// True when `table_id` is a table of the caller's store `store_id`.
pub async fn table_belongs(
    tx: &mut Tx,
    scope: &MerchantScope,
    store_id: &str,
    table_id: &str,
) -> Result<bool> {
    Ok(store::table_scoped(tx, scope, store_id, table_id)
        .await?
        .is_some())
}

/// The IANA time zone of one of the merchant's stores (`None`: no such store of theirs). One
/// indexed read, for hot paths that need only the business day (taking a payment).
pub async fn own_store_timezone(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
) -> Result<Option<String>> {
    Ok(store::own_store_timezone(db, merchant_id, store_id).await?)
}

/// The time zone a merchant's days are counted in: the one its owner set, else its first
/// store's (`None`: neither).
pub async fn merchant_timezone(db: &Db, merchant_id: &str) -> Result<Option<String>> {
    Ok(store::merchant_timezone(db, merchant_id).await?)
}

/// [`merchant_timezone`] as a zone, for counting a merchant's days: Asia/Shanghai when it has
/// no store yet or its zone is unknown.
pub async fn merchant_zone(db: &Db, merchant_id: &str) -> Result<jiff::tz::TimeZone> {
    Ok(merchant_timezone(db, merchant_id)
        .await?
        .and_then(|z| jiff::tz::TimeZone::get(&z).ok())
        .unwrap_or_else(|| {
            jiff::tz::TimeZone::get(crate::members::service::DEFAULT_TIMEZONE)
                .unwrap_or(jiff::tz::TimeZone::UTC)
        }))
}

/// A table's label, if the table belongs to the merchant's store.
pub async fn table_label(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
    table_id: &str,
) -> Result<Option<String>> {
    Ok(store::table_label(db, merchant_id, store_id, table_id).await?)
}
