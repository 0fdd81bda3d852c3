//! The catalog's JSON routes. Merchant routes are scoped to the caller's merchant (another
//! merchant's ids answer 404) and need the manager role to change anything; the menu, photos,
//! barcode look-ups and quotes are public.

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::Result;
use crate::http::idempotency::{self, Begun};
use crate::http::{Idem, Json, List, MerchantAuth, Page, Path, Query, Reply, error::ErrorBody};
use crate::identity::Role;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, OriginalUri, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Creates a category of the caller's catalog.
#[utoipa::path(post, path = "/v1/categories", tag = "catalog", security(("bearer" = [])), request_body = CreateCategory,
    responses((status = 201, body = Category), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody)))]
async fn create_category(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    body: Json<CreateCategory>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let mut write =
        match idempotency::begin(&app.db, &auth.principal.id, key, &body.body_sha256).await? {
            Begun::Replay(reply) => return Ok(reply),
            Begun::Fresh(write) => write,
        };
    let change = service::create_category(write.tx(), &auth.scope, body.value).await?;
    let reply = write.finish(Reply::created(&change.value)?).await?;
    change.announce(&app);
    Ok(reply)
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// 1 to 100, default 20.
    pub limit: Option<i64>,
    /// An id from the previous page.
    pub starting_after: Option<String>,
    /// Products of this category only (`/v1/products`).
    pub category_id: Option<String>,
}

impl ListParams {
    fn page(&self) -> Result<Page> {
        crate::http::PageParams {
            limit: self.limit,
            starting_after: self.starting_after.clone(),
        }
        .parse()
    }
}

/// The caller's categories, newest first.
#[utoipa::path(get, path = "/v1/categories", tag = "catalog", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = List<Category>)))]
async fn list_categories(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<List<Category>>> {
    let page = params.page()?;
    Ok(axum::Json(
        service::list_categories(&app.db, &auth.scope, &page).await?,
    ))
}

/// Adds a product to the caller's catalog.
#[utoipa::path(post, path = "/v1/products", tag = "catalog", security(("bearer" = [])), request_body = CreateProduct,
    responses((status = 201, body = Product), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_product(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    body: Json<CreateProduct>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let mut write =
        match idempotency::begin(&app.db, &auth.principal.id, key, &body.body_sha256).await? {
            Begun::Replay(reply) => return Ok(reply),
            Begun::Fresh(write) => write,
        };
    let change = service::create_product(write.tx(), &auth.scope, body.value).await?;
    let reply = write.finish(Reply::created(&change.value)?).await?;
    change.announce(&app);
    Ok(reply)
}

/// The caller's products, newest first.
#[utoipa::path(get, path = "/v1/products", tag = "catalog", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = List<Product>)))]
async fn list_products(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Query(params): Query<ListParams>,
) -> Result<axum::Json<List<Product>>> {
    let page = params.page()?;
    Ok(axum::Json(
        service::list_products(&app.db, &auth.scope, params.category_id, &page).await?,
    ))
}

/// One of the caller's products.
#[utoipa::path(get, path = "/v1/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "prd_ id")),
    responses((status = 200, body = Product), (status = 404, body = ErrorBody)))]
async fn get_product(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<Product>> {
    Ok(axum::Json(
        service::get_product(&app.db, &auth.scope, &id).await?,
    ))
}

/// Changes some fields of one of the caller's products.
#[utoipa::path(patch, path = "/v1/products/{id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "prd_ id")), request_body = UpdateProduct,
    responses((status = 200, body = Product), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_product(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    body: Json<UpdateProduct>,
) -> Result<axum::Json<Product>> {
    auth.require(Role::Manager)?;
    let mut tx = app.db.begin().await?;
    let change = service::update_product(&mut tx, &auth.scope, &id, body.value).await?;
    tx.commit().await?;
    Ok(axum::Json(change.announce(&app)))
}

/// Uploads a product's photo: the raw image bytes as the body (`Content-Type: image/jpeg`,
/// `image/png` or `image/webp`), at most 5 MB. The image is checked by decoding it (whatever
/// its name or declared type), resized to 160 and 480 px wide and served from
/// `GET /v1/products/{id}/photo/{160|480}`.
#[utoipa::path(post, path = "/v1/products/{id}/photo", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "prd_ id")),
    request_body(content = Vec<u8>, content_type = "image/jpeg"),
    responses((status = 200, body = Product), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody),
        (status = 413, body = ErrorBody), (status = 415, body = ErrorBody)))]
async fn upload_photo(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
    method: axum::http::Method,
    OriginalUri(uri): OriginalUri,
    body: std::result::Result<Bytes, BytesRejection>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let bytes = body.map_err(|rejection| {
        crate::http::json::unread_body(
            &rejection,
            &format!("A photo is at most {} bytes.", service::MAX_PHOTO_BYTES),
        )
    })?;
    let hash = crate::http::json::finish_hash(
        crate::http::json::request_hasher(&method, uri.path()),
        &bytes,
    );
    if let Some(reply) =
        idempotency::lookup(&app.db, &auth.principal.id, key.as_deref(), &hash).await?
    {
        return Ok(reply);
    }
    let change = service::set_photo(&app.db, &auth.scope, &id, bytes).await?;
    let product = change.announce(&app);
    let reply = Reply::ok(&product)?;
    idempotency::remember(
        &app.db,
        &auth.principal.id,
        key.as_deref(),
        &hash,
        reply.status,
        reply.body.clone(),
    )
    .await?;
    Ok(reply)
}

/// A product's photo, as JPEG, 160 or 480 px wide. Public. The URLs in products and menus carry
/// `?v=<etag>`, so a new photo has a new URL; responses carry an `ETag` and may be cached a day.
#[utoipa::path(get, path = "/v1/products/{id}/photo/{width}", tag = "catalog",
    params(("id" = String, Path, description = "prd_ id"), ("width" = String, Path, description = "160 or 480")),
    responses((status = 200, content_type = "image/jpeg"), (status = 304), (status = 404, body = ErrorBody)))]
async fn get_photo(
    State(app): State<AppState>,
    Path((id, width)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response> {
    let photo = service::photo(&app.db, &id, &width).await?;
    let etag = format!("\"{}-{width}\"", photo.etag);
    let mut out_headers = HeaderMap::new();
    if let Ok(v) = HeaderValue::from_str(&etag) {
        out_headers.insert(header::ETAG, v);
    }
    out_headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("public, max-age=86400"),
    );
    if if_none_match(&headers, &etag) {
        return Ok((StatusCode::NOT_MODIFIED, out_headers).into_response());
    }
    if let Ok(v) = HeaderValue::from_str(&photo.content_type) {
        out_headers.insert(header::CONTENT_TYPE, v);
    }
    Ok((out_headers, photo.bytes).into_response())
}

/// True when `Accept-Encoding` accepts gzip: named with a weight above 0, or not named and
/// covered by `*` with a weight above 0 (RFC 9110, 12.5.3).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    let (mut gzip, mut any) = (None, None);
    for item in headers
        .get_all(header::ACCEPT_ENCODING)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
    {
        let mut parts = item.split(';');
        let coding = parts.next().unwrap_or("").trim();
        let accepted = !parts.any(|p| {
            let p = p.trim();
            p.len() > 2
                && p[..2].eq_ignore_ascii_case("q=")
                && p[2..].trim().parse::<f32>().is_ok_and(|q| q <= 0.0)
        });
        if coding.eq_ignore_ascii_case("gzip") {
            gzip = Some(accepted);
        } else if coding == "*" {
            any = Some(accepted);
        }
    }
    gzip.or(any).unwrap_or(false)
}

fn if_none_match(headers: &HeaderMap, etag: &str) -> bool {
    headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|t| t.trim() == etag || t.trim() == "*"))
}

/// Sets one store's price (`null`: the base price), availability and stock (`null`: not
/// counted) for one product. A product with stock 0 or not available is sold out there.
#[utoipa::path(put, path = "/v1/stores/{id}/products/{product_id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id"), ("product_id" = String, Path, description = "prd_ id")),
    request_body = PutStoreProduct,
    responses((status = 200, body = StoreProduct), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn put_store_product(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path((store_id, product_id)): Path<(String, String)>,
    body: Json<PutStoreProduct>,
) -> Result<axum::Json<StoreProduct>> {
    auth.require(Role::Manager)?;
    let mut tx = app.db.begin().await?;
    let change =
        service::put_store_product(&mut tx, &auth.scope, &store_id, &product_id, body.value)
            .await?;
    tx.commit().await?;
    Ok(axum::Json(change.announce(&app)))
}

/// One store's settings for one of the caller's products.
#[utoipa::path(get, path = "/v1/stores/{id}/products/{product_id}", tag = "catalog", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id"), ("product_id" = String, Path, description = "prd_ id")),
    responses((status = 200, body = StoreProduct), (status = 404, body = ErrorBody)))]
async fn get_store_product(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path((store_id, product_id)): Path<(String, String)>,
) -> Result<axum::Json<StoreProduct>> {
    Ok(axum::Json(
        service::get_store_product(&app.db, &auth.scope, &store_id, &product_id).await?,
    ))
}

/// A store's menu (public): categories in order, each with its products at this store's price,
/// availability, stock, options and photos. Served from a cache that every catalog change
/// invalidates; `ETag` / `If-None-Match` answer 304 when nothing changed. Sent gzip-compressed
/// (compressed once per menu version, with a tag of its own) to clients that accept it.
#[utoipa::path(get, path = "/v1/stores/{id}/menu", tag = "catalog",
    params(("id" = String, Path, description = "sto_ id")),
    responses((status = 200, body = Menu), (status = 304), (status = 404, body = ErrorBody)))]
async fn get_menu(
    State(app): State<AppState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Result<Response> {
    let cached = service::menu(&app, &id).await?;
    let gzip = accepts_gzip(&headers).then(|| cached.gzipped()).flatten();
    // The representation being sent, and its tag.
    let (body, tag) = match gzip {
        Some(body) => (body, &cached.etag_gzip),
        None => (&cached.json, &cached.etag),
    };
    let mut out = HeaderMap::with_capacity(5);
    if let Some(v) = &tag.header {
        out.insert(header::ETAG, v.clone());
    }
    out.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    out.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    if if_none_match(&headers, &tag.text) {
        return Ok((StatusCode::NOT_MODIFIED, out).into_response());
    }
    out.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if gzip.is_some() {
        out.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    Ok((out, body.clone()).into_response())
}

/// A product of the store's merchant by its EAN-13 / UPC-A barcode, at this store's price and
/// availability (public; for scan-and-go).
#[utoipa::path(get, path = "/v1/stores/{id}/products/by-barcode/{code}", tag = "catalog",
    params(("id" = String, Path, description = "sto_ id"), ("code" = String, Path, description = "EAN-13 or UPC-A digits")),
    responses((status = 200, body = MenuItem), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn by_barcode(
    State(app): State<AppState>,
    Path((id, code)): Path<(String, String)>,
) -> Result<axum::Json<MenuItem>> {
    Ok(axum::Json(service::by_barcode(&app.db, &id, &code).await?))
}

/// What one unit of a product costs at this store with the chosen options (public; changes
/// nothing). Unknown groups or options, a missing required choice or a sold-out product are 4xx.
#[utoipa::path(post, path = "/v1/stores/{id}/quote", tag = "catalog",
    params(("id" = String, Path, description = "sto_ id")), request_body = QuoteRequest,
    responses((status = 200, body = Quote), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn quote(
    State(app): State<AppState>,
    Path(id): Path<String>,
    body: Json<QuoteRequest>,
) -> Result<axum::Json<Quote>> {
    Ok(axum::Json(service::quote(&app.db, &id, &body.value).await?))
}

pub fn routes() -> OpenApiRouter<AppState> {
    // Photo uploads are the one place a body may exceed the JSON limit.
    let uploads = OpenApiRouter::new()
        .routes(routes!(upload_photo))
        .layer(DefaultBodyLimit::max(service::MAX_PHOTO_BYTES));
    OpenApiRouter::new()
        .routes(routes!(create_category, list_categories))
        .routes(routes!(create_product, list_products))
        .routes(routes!(get_product, update_product))
        .routes(routes!(get_photo))
        .routes(routes!(put_store_product, get_store_product))
        .routes(routes!(get_menu))
        .routes(routes!(by_barcode))
        .routes(routes!(quote))
        .merge(uploads)
}
