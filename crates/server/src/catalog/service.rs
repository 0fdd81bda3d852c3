//! The catalog's rules: categories, products, per-store settings, photos and the menu.
//!
//! Every write raises the merchant's catalog version in its transaction and returns it as a
//! [`Changed`]; the caller tells the menu cache after the commit (see [`super::cache`]).

use super::cache::{CachedMenu, Lookup};
use super::model::*;
use super::store::{self, CategoryRow, ProductRow, StoreProductRow};
use crate::app::AppState;
use crate::db::{Db, MerchantScope, Tx, now_us, rfc3339};
use crate::error::{Error, Kind, Result};
use crate::http::{List, Page};
use crate::ids::{CategoryId, ProductId};
use o2o_ledger::{Currency, Money};
use std::sync::Arc;

/// A committed-to-be change of a merchant's catalog: tell [`AppState::menus`] after the commit.
#[must_use]
pub struct Changed<T> {
    pub value: T,
    pub merchant_id: String,
    pub version: i64,
}

impl<T> Changed<T> {
    /// Marks the merchant's cached menus stale on this node (call after the commit).
    pub fn announce(self, app: &AppState) -> T {
        app.menus.changed(&self.merchant_id, self.version);
        self.value
    }
}

/// The widths photos are stored at.
pub const PHOTO_WIDTHS: [u32; 2] = [160, 480];
/// The largest photo upload accepted.
pub const MAX_PHOTO_BYTES: usize = 5 * 1024 * 1024;
/// The largest image dimensions decoded (each side).
const MAX_PHOTO_SIDE_PX: u32 = 8_000;

fn product_not_found() -> Error {
    Error::not_found("product_not_found", "No such product.").param("id")
}

fn category_not_found() -> Error {
    Error::not_found("category_not_found", "No such category.").param("category_id")
}

fn store_not_found() -> Error {
    Error::not_found("store_not_found", "No such store.").param("id")
}

fn category_of(row: CategoryRow) -> Category {
    Category {
        id: row.id,
        name_zh: row.name_zh,
        name_en: row.name_en,
        position: row.position,
        created_at: rfc3339(row.created_at),
    }
}

/// The photo URLs of a product whose photo has this ETag.
pub fn photo_urls(product_id: &str, etag: &str) -> PhotoUrls {
    PhotoUrls {
        small: format!("/v1/products/{product_id}/photo/160?v={etag}"),
        large: format!("/v1/products/{product_id}/photo/480?v={etag}"),
    }
}

fn groups_of(row: &ProductRow) -> Result<Vec<OptionGroup>> {
    serde_json::from_str(&row.option_groups).map_err(Error::internal)
}

fn product_of(row: ProductRow) -> Result<Product> {
    let option_groups = groups_of(&row)?;
    Ok(Product {
        photo: row.photo_etag.as_deref().map(|e| photo_urls(&row.id, e)),
        id: row.id,
        merchant_id: row.merchant_id,
        category_id: row.category_id,
        name_zh: row.name_zh,
        name_en: row.name_en,
        description: row.description,
        price: row.price,
        currency: row.currency,
        option_groups,
        barcode: row.barcode,
        position: row.position,
        created_at: rfc3339(row.created_at),
        updated_at: rfc3339(row.updated_at),
    })
}

fn barcode_taken(e: crate::db::DbError) -> Error {
    if e.is_conflict_on("barcode") {
        Error::conflict(
            "barcode_taken",
            "Another product of this merchant has that barcode.",
        )
        .param("barcode")
    } else {
        e.into()
    }
}

async fn changed<T>(tx: &mut Tx, scope: &MerchantScope, value: T) -> Result<Changed<T>> {
    let version = store::bump_version(tx, scope.merchant_id()).await?;
    Ok(Changed {
        value,
        merchant_id: scope.merchant_id().to_owned(),
        version,
    })
}

// ----- categories -----

pub async fn create_category(
    tx: &mut Tx,
    scope: &MerchantScope,
    input: CreateCategory,
) -> Result<Changed<Category>> {
    let (name_zh, name_en) = parse_names(input.name_zh.as_deref(), input.name_en.as_deref())?;
    let row = CategoryRow {
        id: CategoryId::generate().to_string(),
        merchant_id: scope.merchant_id().to_owned(),
        name_zh,
        name_en,
        position: parse_position(input.position)?,
        created_at: now_us(),
    };
    store::insert_category(tx, scope, &row).await?;
    changed(tx, scope, category_of(row)).await
}

pub async fn list_categories(
    db: &Db,
    scope: &MerchantScope,
    page: &Page,
) -> Result<List<Category>> {
    let rows = store::categories_page(db, scope, page.cursor(), page.fetch_limit()).await?;
    Ok(page.finish(rows.into_iter().map(category_of).collect()))
}

/// Every category of the caller's merchant in menu order (for the console).
pub async fn all_categories(db: &Db, scope: &MerchantScope) -> Result<Vec<Category>> {
    Ok(store::categories_of_merchant(db, scope.merchant_id())
        .await?
        .into_iter()
        .map(category_of)
        .collect())
}

async fn check_category(tx: &mut Tx, scope: &MerchantScope, id: Option<&str>) -> Result<()> {
    if let Some(id) = id {
        CategoryId::parse(id).map_err(|_| category_not_found())?;
        store::category_scoped_tx(tx, scope, id)
            .await?
            .ok_or_else(category_not_found)?;
    }
    Ok(())
}

// ----- products -----

pub async fn create_product(
    tx: &mut Tx,
    scope: &MerchantScope,
    input: CreateProduct,
) -> Result<Changed<Product>> {
    let (name_zh, name_en) = parse_names(input.name_zh.as_deref(), input.name_en.as_deref())?;
    let description = parse_description(input.description.as_deref())?;
    let price = parse_price(input.price, "price")?;
    let currency = parse_currency(input.currency.as_deref())?;
    let option_groups = parse_option_groups(input.option_groups)?;
    let barcode = input
        .barcode
        .as_deref()
        .map(Barcode::parse)
        .transpose()?
        .map(|b| b.as_str().to_owned());
    let position = parse_position(input.position)?;
    check_category(tx, scope, input.category_id.as_deref()).await?;
    let now = now_us();
    let row = ProductRow {
        id: ProductId::generate().to_string(),
        merchant_id: scope.merchant_id().to_owned(),
        category_id: input.category_id,
        name_zh,
        name_en,
        description,
        price,
        currency: currency.code().to_owned(),
        option_groups: serde_json::to_string(&option_groups).map_err(Error::internal)?,
        barcode,
        position,
        photo_etag: None,
        created_at: now,
        updated_at: now,
    };
    store::insert_product(tx, scope, &row)
        .await
        .map_err(barcode_taken)?;
    changed(tx, scope, product_of(row)?).await
}

pub async fn update_product(
    tx: &mut Tx,
    scope: &MerchantScope,
    id: &str,
    input: UpdateProduct,
) -> Result<Changed<Product>> {
    let mut row = store::product_scoped_tx(tx, scope, id)
        .await?
        .ok_or_else(product_not_found)?;
    let zh = match &input.name_zh {
        Some(v) => v.clone(),
        None => row.name_zh.clone(),
    };
    let en = match &input.name_en {
        Some(v) => v.clone(),
        None => row.name_en.clone(),
    };
    let (name_zh, name_en) = parse_names(zh.as_deref(), en.as_deref())?;
    row.name_zh = name_zh;
    row.name_en = name_en;
    if let Some(d) = input.description.as_deref() {
        row.description = parse_description(Some(d))?;
    }
    if let Some(p) = input.price {
        row.price = parse_price(p, "price")?;
    }
    if let Some(groups) = input.option_groups {
        let groups = parse_option_groups(groups)?;
        row.option_groups = serde_json::to_string(&groups).map_err(Error::internal)?;
    }
    if let Some(b) = input.barcode {
        row.barcode = b
            .as_deref()
            .map(Barcode::parse)
            .transpose()?
            .map(|b| b.as_str().to_owned());
    }
    if let Some(p) = input.position {
        row.position = parse_position(Some(p))?;
    }
    if let Some(c) = input.category_id {
        check_category(tx, scope, c.as_deref()).await?;
        row.category_id = c;
    }
    row.updated_at = now_us();
    store::update_product(tx, scope, &row)
        .await
        .map_err(barcode_taken)?;
    changed(tx, scope, product_of(row)?).await
}

pub async fn get_product(db: &Db, scope: &MerchantScope, id: &str) -> Result<Product> {
    product_of(
        store::product_scoped(db, scope, id)
            .await?
            .ok_or_else(product_not_found)?,
    )
}

pub async fn list_products(
    db: &Db,
    scope: &MerchantScope,
    category_id: Option<String>,
    page: &Page,
) -> Result<List<Product>> {
    let rows =
        store::products_page(db, scope, category_id, page.cursor(), page.fetch_limit()).await?;
    let list = page.finish(rows);
    Ok(List {
        data: list
            .data
            .into_iter()
            .map(product_of)
            .collect::<Result<_>>()?,
        has_more: list.has_more,
    })
}

// ----- per-store settings -----

fn store_product_of(row: StoreProductRow) -> StoreProduct {
    StoreProduct {
        sold_out: !row.available || row.stock == Some(0),
        store_id: row.store_id,
        product_id: row.product_id,
        price: row.price,
        available: row.available,
        stock: row.stock,
        updated_at: rfc3339(row.updated_at),
    }
}

/// Sets one store's price, availability and stock for one product (replacing earlier settings).
pub async fn put_store_product(
    tx: &mut Tx,
    scope: &MerchantScope,
    store_id: &str,
    product_id: &str,
    input: PutStoreProduct,
) -> Result<Changed<StoreProduct>> {
    let price = input.price.map(|p| parse_price(p, "price")).transpose()?;
    let stock = parse_stock(input.stock)?;
    crate::stores::service::get_own_store_tx(tx, scope, store_id)
        .await?
        .ok_or_else(store_not_found)?;
    store::product_scoped_tx(tx, scope, product_id)
        .await?
        .ok_or_else(|| product_not_found().param("product_id"))?;
    let row = StoreProductRow {
        store_id: store_id.to_owned(),
        product_id: product_id.to_owned(),
        price,
        available: input.available.unwrap_or(true),
        stock,
        updated_at: now_us(),
    };
    store::upsert_store_product(tx, scope, &row).await?;
    changed(tx, scope, store_product_of(row)).await
}

/// One store's settings for a product of the caller's merchant (defaults when never set).
pub async fn get_store_product(
    db: &Db,
    scope: &MerchantScope,
    store_id: &str,
    product_id: &str,
) -> Result<StoreProduct> {
    if !crate::stores::service::own_store_exists(db, scope, store_id).await? {
        return Err(store_not_found());
    }
    let product = store::product_scoped(db, scope, product_id)
        .await?
        .ok_or_else(|| product_not_found().param("product_id"))?;
    Ok(
        match store::store_product(db, store_id, product_id).await? {
            Some(row) => store_product_of(row),
            None => StoreProduct {
                store_id: store_id.to_owned(),
                product_id: product_id.to_owned(),
                price: None,
                available: true,
                stock: None,
                sold_out: false,
                updated_at: rfc3339(product.updated_at),
            },
        },
    )
}

// ----- photos -----

/// Limits the photos decoded and resized at once, so uploads cannot take every core.
static PHOTO_WORK: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);

/// Decodes an uploaded photo (JPEG, PNG or WebP, judged by its bytes, not its name or type) and
/// renders it as JPEG at each of [`PHOTO_WIDTHS`] (never wider than the original).
pub fn render_photo(bytes: &[u8]) -> Result<Vec<(i64, Vec<u8>)>> {
    use image::{ImageFormat, ImageReader, Limits};
    let reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(Error::internal)?;
    match reader.format() {
        Some(ImageFormat::Png | ImageFormat::Jpeg | ImageFormat::WebP) => {}
        _ => {
            return Err(Error::new(
                Kind::UnsupportedMediaType,
                "unsupported_image_type",
                "Send a JPEG, PNG or WebP image.",
            ));
        }
    }
    let mut reader = reader;
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_PHOTO_SIDE_PX);
    limits.max_image_height = Some(MAX_PHOTO_SIDE_PX);
    limits.max_alloc = Some(512 * 1024 * 1024);
    reader.limits(limits);
    let img = reader.decode().map_err(|e| {
        Error::invalid(
            "invalid_image",
            format!("The image could not be read: {e}."),
        )
    })?;
    let mut out = Vec::new();
    for width in PHOTO_WIDTHS {
        let resized = if img.width() > width {
            let height =
                (u64::from(img.height()) * u64::from(width) / u64::from(img.width())).max(1) as u32;
            img.resize_exact(width, height, image::imageops::FilterType::Triangle)
        } else {
            img.clone()
        };
        // Transparent pixels become white: JPEG has no alpha.
        let rgba = resized.to_rgba8();
        let mut rgb = image::RgbImage::new(rgba.width(), rgba.height());
        for (dst, src) in rgb.pixels_mut().zip(rgba.pixels()) {
            let a = u32::from(src[3]);
            for c in 0..3 {
                dst[c] = ((u32::from(src[c]) * a + 255 * (255 - a)) / 255) as u8;
            }
        }
        let mut buf = Vec::new();
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut buf, 85)
            .encode_image(&rgb)
            .map_err(Error::internal)?;
        out.push((i64::from(width), buf));
    }
    Ok(out)
}

/// Replaces a product's photo with an uploaded image.
pub async fn set_photo(
    db: &Db,
    scope: &MerchantScope,
    product_id: &str,
    bytes: axum::body::Bytes,
) -> Result<Changed<Product>> {
    if bytes.is_empty() {
        return Err(Error::invalid(
            "invalid_image",
            "The body is empty: send the image bytes.",
        ));
    }
    store::product_scoped(db, scope, product_id)
        .await?
        .ok_or_else(product_not_found)?;
    let etag = {
        use sha2::{Digest, Sha256};
        hex::encode(&Sha256::digest(&bytes)[..8])
    };
    let renditions = {
        let _permit = PHOTO_WORK.acquire().await.map_err(Error::internal)?;
        tokio::task::spawn_blocking(move || render_photo(&bytes))
            .await
            .map_err(Error::internal)??
    };
    let mut tx = db.begin().await?;
    let change = store_rendered_photo(&mut tx, scope, product_id, &etag, renditions).await?;
    tx.commit().await?;
    Ok(change)
}

/// Stores the renditions made by [`render_photo`] as a product's photo, inside a write.
pub async fn store_rendered_photo(
    tx: &mut Tx,
    scope: &MerchantScope,
    product_id: &str,
    etag: &str,
    renditions: Vec<(i64, Vec<u8>)>,
) -> Result<Changed<Product>> {
    store::product_scoped_tx(tx, scope, product_id)
        .await?
        .ok_or_else(product_not_found)?;
    store::replace_photos(tx, scope, product_id, etag, renditions, now_us()).await?;
    let row = store::product_scoped_tx(tx, scope, product_id)
        .await?
        .ok_or_else(product_not_found)?;
    changed(tx, scope, product_of(row)?).await
}

/// A stored photo rendition: (ETag, content type, bytes).
pub async fn photo(db: &Db, product_id: &str, width: &str) -> Result<store::PhotoRow> {
    let width: i64 = match width {
        "160" => 160,
        "480" => 480,
        _ => {
            return Err(Error::not_found(
                "photo_size_unknown",
                "Photos come 160 or 480 pixels wide.",
            )
            .param("width"));
        }
    };
    store::photo(db, product_id, width)
        .await?
        .ok_or_else(|| Error::not_found("photo_not_found", "This product has no photo."))
}

// ----- the menu -----

fn menu_item(row: ProductRow, setting: Option<&StoreProductRow>) -> Result<MenuItem> {
    let option_groups = groups_of(&row)?;
    let price = setting.and_then(|s| s.price).unwrap_or(row.price);
    let available = setting.is_none_or(|s| s.available);
    let stock = setting.and_then(|s| s.stock);
    let currency = Currency::parse(&row.currency).map_err(Error::internal)?;
    Ok(MenuItem {
        photo: row.photo_etag.as_deref().map(|e| photo_urls(&row.id, e)),
        price_major: Money::new(price, currency).format_major(),
        id: row.id,
        name_zh: row.name_zh,
        name_en: row.name_en,
        description: row.description,
        price,
        currency: row.currency,
        available,
        stock,
        sold_out: !available || stock == Some(0),
        option_groups,
        barcode: row.barcode,
    })
}

async fn build_menu(db: &Db, store_id: &str, merchant_id: &str) -> Result<Menu> {
    // The version is read first: a change committing meanwhile leaves a higher version behind,
    // so the next check rebuilds.
    let version = store::version_of(db, merchant_id).await?;
    let categories = store::categories_of_merchant(db, merchant_id).await?;
    let products = store::products_of_merchant(db, merchant_id).await?;
    let settings = store::store_products_of(db, store_id).await?;
    let settings: std::collections::HashMap<&str, &StoreProductRow> = settings
        .iter()
        .map(|s| (s.product_id.as_str(), s))
        .collect();
    let mut sections: Vec<MenuSection> = categories
        .into_iter()
        .map(|c| MenuSection {
            id: Some(c.id),
            name_zh: c.name_zh,
            name_en: c.name_en,
            products: Vec::new(),
        })
        .collect();
    let mut loose = Vec::new();
    for row in products {
        let at = row
            .category_id
            .as_deref()
            .and_then(|cid| sections.iter().position(|s| s.id.as_deref() == Some(cid)));
        let item = menu_item(row, None)?;
        let item = match settings.get(item.id.as_str()) {
            Some(s) => apply_setting(item, s),
            None => item,
        };
        match at {
            Some(i) => sections[i].products.push(item),
            None => loose.push(item),
        }
    }
    sections.retain(|s| !s.products.is_empty());
    if !loose.is_empty() {
        sections.push(MenuSection {
            id: None,
            name_zh: None,
            name_en: None,
            products: loose,
        });
    }
    Ok(Menu {
        store_id: store_id.to_owned(),
        merchant_id: merchant_id.to_owned(),
        version,
        sections,
    })
}

fn apply_setting(mut item: MenuItem, s: &StoreProductRow) -> MenuItem {
    if let Some(p) = s.price {
        item.price = p;
        if let Ok(c) = Currency::parse(&item.currency) {
            item.price_major = Money::new(p, c).format_major();
        }
    }
    item.available = s.available;
    item.stock = s.stock;
    item.sold_out = !s.available || s.stock == Some(0);
    item
}

/// A store's menu, from the cache when it is current (see [`super::cache`]).
pub async fn menu(app: &AppState, store_id: &str) -> Result<Arc<CachedMenu>> {
    if let Lookup::Fresh(m) = app.menus.lookup(store_id) {
        return Ok(m);
    }
    // Stale or missing: one request at a time checks and builds; those waiting meanwhile find
    // the menu it built.
    let _turn = app.menus.build_turn(store_id).await;
    let merchant_id = match app.menus.lookup(store_id) {
        Lookup::Fresh(m) => return Ok(m),
        Lookup::Check(m) => {
            let version = store::version_of(&app.db, &m.menu.merchant_id).await?;
            if version == m.menu.version {
                app.menus.confirm(&m);
                return Ok(m);
            }
            m.menu.merchant_id.clone()
        }
        Lookup::Missing => {
            let store = crate::stores::service::find_store(&app.db, store_id)
                .await?
                .ok_or_else(store_not_found)?;
            store.merchant_id
        }
    };
    let menu = build_menu(&app.db, store_id, &merchant_id).await?;
    let json = serde_json::to_vec(&menu).map_err(Error::internal)?;
    let entry = Arc::new(CachedMenu::new(menu, json.into(), app.menus.now_ms()));
    app.menus.insert(entry.clone());
    Ok(entry)
}

/// A product of the store's merchant by its barcode, with the store's price and availability.
pub async fn by_barcode(db: &Db, store_id: &str, code: &str) -> Result<MenuItem> {
    let barcode = Barcode::parse(code).map_err(|e| e.param("code"))?;
    let store = crate::stores::service::find_store(db, store_id)
        .await?
        .ok_or_else(store_not_found)?;
    let row = store::product_by_barcode(db, &store.merchant_id, barcode.as_str())
        .await?
        .ok_or_else(|| {
            Error::not_found("product_not_found", "No product has this barcode here.").param("code")
        })?;
    let setting = store::store_product(db, store_id, &row.id).await?;
    menu_item(row, setting.as_ref())
}

/// What one unit of a product costs at a store with the chosen options; sold-out products
/// cannot be ordered (`409 product_sold_out`). The orders capability prices items through this.
pub async fn quote(db: &Db, store_id: &str, input: &QuoteRequest) -> Result<Quote> {
    let store = crate::stores::service::find_store(db, store_id)
        .await?
        .ok_or_else(store_not_found)?;
    let row = store::product_of_merchant(db, &store.merchant_id, &input.product_id)
        .await?
        .ok_or_else(|| product_not_found().param("product_id"))?;
    let setting = store::store_product(db, store_id, &row.id).await?;
    let item = menu_item(row, setting.as_ref())?;
    if item.sold_out {
        return Err(
            Error::conflict("product_sold_out", "This product is sold out here.")
                .param("product_id"),
        );
    }
    let currency = Currency::parse(&item.currency).map_err(Error::internal)?;
    let unit = price_with_options(
        Money::new(item.price, currency),
        &item.option_groups,
        &input.options,
    )?;
    Ok(Quote {
        product_id: item.id,
        unit_price: unit.amount_minor(),
        currency: item.currency,
    })
}
