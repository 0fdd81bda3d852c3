//! Codes' JSON routes (and the `/q/` landing, which answers JSON to JSON callers).

use super::model::*;
use super::service;
use crate::app::AppState;
use crate::error::{Error, Kind, Result};
use crate::http::idempotency::{self, Begun};
use crate::http::{
    ConsumerAuth, Idem, Json, List, MerchantAuth, OptionalJson, Path, Query, Reply,
    error::ErrorBody,
};
use crate::identity::Role;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

/// Creates a printed code for a touchpoint of one of the caller's stores.
#[utoipa::path(post, path = "/v1/qr-codes", tag = "codes", security(("bearer" = [])), request_body = CreateQrCode,
    responses((status = 201, body = QrCode), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn create_code(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Idem(key): Idem,
    body: Json<CreateQrCode>,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let mut write =
        match idempotency::begin(&app.db, &auth.principal.id, key, &body.body_sha256).await? {
            Begun::Replay(reply) => return Ok(reply),
            Begun::Fresh(write) => write,
        };
    let code =
        service::create_code(write.tx(), &auth.scope, &app.config.public_url, body.value).await?;
    write.finish(Reply::created(&code)?).await
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ListParams {
    /// Only the codes of this store.
    pub store_id: Option<String>,
    /// Only `active` or only `revoked` codes.
    pub status: Option<String>,
    pub limit: Option<i64>,
    pub starting_after: Option<String>,
}

/// The caller's codes, newest first.
#[utoipa::path(get, path = "/v1/qr-codes", tag = "codes", security(("bearer" = [])), params(ListParams),
    responses((status = 200, body = List<QrCode>)))]
async fn list_codes(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Query(q): Query<ListParams>,
) -> Result<axum::Json<List<QrCode>>> {
    let page = crate::http::PageParams {
        limit: q.limit,
        starting_after: q.starting_after,
    }
    .parse()?;
    Ok(axum::Json(
        service::list_codes(
            &app.db,
            &auth.scope,
            &app.config.public_url,
            q.store_id,
            q.status,
            &page,
        )
        .await?,
    ))
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ImageParams {
    /// PNG width and height in pixels (64 to 2048, default 512).
    pub size: Option<u32>,
}

fn image_response(content_type: &'static str, body: Vec<u8>) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, max-age=300"),
    );
    (headers, body).into_response()
}

fn render_error(e: o2o_codes::RenderError) -> Error {
    match e {
        o2o_codes::RenderError::BadSize { .. } => {
            Error::invalid("size_out_of_range", e.to_string()).param("size")
        }
        other => Error::internal(other),
    }
}

/// A code as JSON (`/v1/qr-codes/qr_…`), PNG (`….png?size=`) or SVG (`….svg`).
#[utoipa::path(get, path = "/v1/qr-codes/{id}", tag = "codes", security(("bearer" = [])),
    params(("id" = String, Path, description = "qr_ id, optionally with .png or .svg"), ImageParams),
    responses((status = 200, description = "The code as JSON, or its image when the id ends in .png or .svg",
            content((QrCode = "application/json"), ("image/png"), ("image/svg+xml"))),
        (status = 404, body = ErrorBody)))]
async fn get_code(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(file): Path<String>,
    Query(q): Query<ImageParams>,
) -> Result<Response> {
    let (id, ext) = match file.rsplit_once('.') {
        Some((id, ext)) => (id, Some(ext)),
        None => (file.as_str(), None),
    };
    let code = service::get_code(&app.db, &auth.scope, &app.config.public_url, id).await?;
    match ext {
        None => Ok(axum::Json(code).into_response()),
        Some("png") => {
            let png = o2o_codes::png(&code.url, q.size.unwrap_or(512)).map_err(render_error)?;
            Ok(image_response("image/png", png))
        }
        Some("svg") => {
            let svg = o2o_codes::svg(&code.url).map_err(render_error)?;
            Ok(image_response("image/svg+xml", svg.into_bytes()))
        }
        Some(_) => Err(Error::not_found(
            "qr_not_found",
            "Ask for .png, .svg or the code itself.",
        )),
    }
}

/// Revokes a code: it answers `qr_revoked` everywhere at once.
#[utoipa::path(post, path = "/v1/qr-codes/{id}/revoke", tag = "codes", security(("bearer" = [])),
    params(("id" = String, Path, description = "qr_ id")),
    responses((status = 200, body = QrCode), (status = 404, body = ErrorBody)))]
async fn revoke_code(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<axum::Json<QrCode>> {
    auth.require(Role::Manager)?;
    let mut tx = app.db.begin().await?;
    let code = service::revoke(&mut tx, &auth.scope, &app.config.public_url, &id).await?;
    tx.commit().await?;
    Ok(axum::Json(code))
}

/// Replaces a code with a new one at the same touchpoint (a rotated table code keeps its
/// table); the old one is revoked.
#[utoipa::path(post, path = "/v1/qr-codes/{id}/rotate", tag = "codes", security(("bearer" = [])),
    params(("id" = String, Path, description = "qr_ id")),
    responses((status = 201, body = QrCode), (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn rotate_code(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Idem(key): Idem,
) -> Result<Reply> {
    auth.require(Role::Manager)?;
    let mut write = match idempotency::begin(
        &app.db,
        &auth.principal.id,
        key,
        &format!("rotate:{id}"),
    )
    .await?
    {
        Begun::Replay(reply) => return Ok(reply),
        Begun::Fresh(write) => write,
    };
    let code = service::rotate(write.tx(), &auth.scope, &app.config.public_url, &id).await?;
    write.finish(Reply::created(&code)?).await
}

/// Every table's code of a store on A4 pages, labelled, ready to print (codes are made for
/// tables that have none yet).
#[utoipa::path(get, path = "/v1/stores/{id}/qr-sheet.pdf", tag = "codes", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id")),
    responses((status = 200, content_type = "application/pdf"), (status = 404, body = ErrorBody), (status = 503, body = ErrorBody)))]
async fn qr_sheet(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
) -> Result<Response> {
    let store = crate::stores::service::get_own_store(&app.db, &auth.scope, &id).await?;
    let tables = crate::stores::service::list_tables(&app.db, &auth.scope, &id).await?;
    let mut cells = Vec::new();
    let mut tx = app.db.begin().await?;
    for t in &tables {
        let code = service::ensure_code(
            &mut tx,
            &auth.scope,
            &app.config.public_url,
            &id,
            QrKind::Table,
            Some(&t.id),
        )
        .await?;
        cells.push(super::sheet::Cell {
            url: code.url,
            label: t.label.clone(),
        });
    }
    tx.commit().await?;
    let title = store.name.clone();
    let subtitle = format!("{} · {}", store.merchant.name, store.address);
    let font = app.config.cjk_font.clone();
    let pdf = tokio::task::spawn_blocking(move || {
        super::sheet::render(&title, &subtitle, &cells, font.as_deref())
    })
    .await
    .map_err(Error::internal)?
    .map_err(|e| match e {
        super::sheet::SheetError::NoFont => {
            Error::new(Kind::Unavailable, "font_unavailable", e.to_string())
        }
        other => Error::internal(other),
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/pdf"),
    );
    headers.insert(
        header::CONTENT_DISPOSITION,
        HeaderValue::from_static("inline; filename=\"qr-sheet.pdf\""),
    );
    Ok((headers, pdf).into_response())
}

#[derive(Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct PayQrParams {
    /// `emv` (the only format).
    pub format: Option<String>,
    /// ISO 18245 merchant category code (default 5814, fast food and cafés).
    pub mcc: Option<String>,
    /// The city in Latin letters (default: read from the store's address).
    pub city: Option<String>,
    /// For the PNG: size in pixels.
    pub size: Option<u32>,
}

async fn pay_qr_payload(
    app: &AppState,
    auth: &MerchantAuth,
    id: &str,
    q: &PayQrParams,
) -> Result<(String, QrCode)> {
    if q.format.as_deref().is_some_and(|f| f != "emv") {
        return Err(Error::invalid("invalid_format", "format must be emv.").param("format"));
    }
    let mut tx = app.db.begin().await?;
    let out = service::emv_pay_qr(
        &mut tx,
        &auth.scope,
        &app.config.public_url,
        id,
        q.mcc.as_deref().unwrap_or("5814"),
        q.city.as_deref(),
    )
    .await?;
    tx.commit().await?;
    Ok(out)
}

/// The store's pay code as an EMVCo merchant-presented payload, for bank-app interoperability.
#[utoipa::path(get, path = "/v1/stores/{id}/pay-qr", tag = "codes", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id"), PayQrParams),
    responses((status = 200, body = EmvPayQr), (status = 400, body = ErrorBody), (status = 404, body = ErrorBody)))]
async fn pay_qr(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(q): Query<PayQrParams>,
) -> Result<axum::Json<EmvPayQr>> {
    let (payload, code) = pay_qr_payload(&app, &auth, &id, &q).await?;
    let mut png_url = format!("{}/v1/stores/{id}/pay-qr.png", app.config.public_url);
    if let Some(m) = &q.mcc {
        png_url.push_str(&format!("?mcc={m}"));
    }
    Ok(axum::Json(EmvPayQr {
        payload,
        png_url,
        url: code.url,
    }))
}

/// The EMVCo payload of the store's pay code as a PNG.
#[utoipa::path(get, path = "/v1/stores/{id}/pay-qr.png", tag = "codes", security(("bearer" = [])),
    params(("id" = String, Path, description = "sto_ id"), PayQrParams),
    responses((status = 200, content_type = "image/png"), (status = 404, body = ErrorBody)))]
async fn pay_qr_png(
    State(app): State<AppState>,
    auth: MerchantAuth,
    Path(id): Path<String>,
    Query(q): Query<PayQrParams>,
) -> Result<Response> {
    let (payload, _) = pay_qr_payload(&app, &auth, &id, &q).await?;
    let png = o2o_codes::png(&payload, q.size.unwrap_or(512)).map_err(render_error)?;
    Ok(image_response("image/png", png))
}

/// The public keys that verify consumer-presented codes, so a scanner can check them offline.
#[utoipa::path(get, path = "/v1/codes/public-key", tag = "codes", responses((status = 200, body = PublicKeys)))]
async fn public_keys(State(app): State<AppState>) -> axum::Json<PublicKeys> {
    let b64 = base64::engine::general_purpose::STANDARD;
    axum::Json(PublicKeys {
        active: app.keys.active_id(),
        keys: app
            .keys
            .public_keys()
            .into_iter()
            .map(|(id, k)| PublicKey {
                id,
                algorithm: "Ed25519",
                public_key: b64.encode(k),
            })
            .collect(),
        format: "O2O:<base32 of version(1) kind(1) key_id(4) expires_unix_s(8) nonce(8) subject_len(1) subject signature(64)>",
    })
}

/// Pay codes to show at the counter: 18 digits, valid 60 seconds, usable once, bound to the
/// consumer and the chosen source. `count` > 1 holds codes ahead for a weak connection.
#[utoipa::path(post, path = "/v1/me/pay-codes", tag = "codes", security(("bearer" = [])), request_body = Option<CreatePayCodes>,
    responses((status = 201, body = PayCodes), (status = 400, body = ErrorBody), (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn create_pay_codes(
    State(app): State<AppState>,
    ConsumerAuth(p): ConsumerAuth,
    body: OptionalJson<CreatePayCodes>,
) -> Result<Reply> {
    if p.guest {
        return Err(Error::forbidden(
            "login_required",
            "Log in with your phone to pay with a pay code.",
        ));
    }
    let input = body.value;
    let source = match input.source.as_deref() {
        None | Some("wallet") => "wallet".to_owned(),
        Some(s)
            if s.starts_with("crd_")
                && s.len() <= 64
                && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') =>
        {
            s.to_owned()
        }
        Some(_) => {
            return Err(Error::invalid(
                "invalid_source",
                "source is wallet or a member card id (crd_…).",
            )
            .param("source"));
        }
    };
    let mut codes =
        service::issue_pay_codes(&app.db, &p.id, &source, input.count.unwrap_or(1)).await?;
    let first = codes.remove(0);
    Reply::created(&PayCodes {
        code: first.code,
        expires_at: first.expires_at,
        source,
        ahead: codes,
    })
}

/// Staff accept a consumer's code: what it is, and it is now used (a second scan answers
/// `code_used`). A coupon's code is only read (`used: false`, with the coupon's value, rules and
/// status): sending it as `coupon` with the payment uses the coupon. Errors: `qr_invalid`,
/// `code_expired`, `code_used`, `code_wrong_store`.
#[utoipa::path(post, path = "/v1/scan", tag = "codes", security(("bearer" = [])), request_body = ScanRequest,
    responses((status = 200, body = Scanned), (status = 400, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn scan(
    State(app): State<AppState>,
    auth: MerchantAuth,
    body: Json<ScanRequest>,
) -> Result<axum::Json<Scanned>> {
    // A pickup code or exit pass hands its order over: the order is checked first, then the
    // code is used and the order completed.
    let payload = body.value.payload.trim().to_owned();
    // A coupon's code: what the coupon is worth and whether it can be used; the payment it is
    // sent with uses it.
    if let Ok(claims) = app.keys.verify(&payload, crate::db::now_us() / 1_000_000)
        && claims.kind == o2o_codes::token::TokenKind::Coupon
    {
        let code = crate::codes::service::check_coupon_code(
            &app.db,
            &app.keys,
            &auth.scope,
            &payload,
            "payload",
        )
        .await?;
        let coupon = crate::marketing::service::coupon(&app, &code.user_id, &code.coupon_id)
            .await
            .map_err(|e| e.param("payload"))?;
        return Ok(axum::Json(Scanned {
            kind: claims.kind.as_str().to_owned(),
            consumer_id: Some(code.user_id),
            source: None,
            subject: Some(code.coupon_id),
            store_id: body.value.store_id.clone(),
            expires_at: crate::db::rfc3339(code.expires_at),
            used: false,
            order: None,
            coupon: serde_json::to_value(coupon).ok(),
        }));
    }
    if let Ok(claims) = app.keys.verify(&payload, crate::db::now_us() / 1_000_000)
        && matches!(
            claims.kind,
            o2o_codes::token::TokenKind::Pickup | o2o_codes::token::TokenKind::ExitPass
        )
        && claims.subject.starts_with("ord_")
        && let Ok(order) = crate::orders::service::get(&app, &auth.principal, &claims.subject).await
    {
        let store_id = body
            .value
            .store_id
            .clone()
            .unwrap_or_else(|| order.store_id.clone());
        let done = crate::orders::service::handover(
            &app,
            &auth.principal,
            &auth.scope,
            &store_id,
            crate::orders::model::Handover { code: payload },
        )
        .await
        .map_err(|e| e.param("payload"))?;
        return Ok(axum::Json(Scanned {
            kind: claims.kind.as_str().to_owned(),
            consumer_id: order.user_id.clone(),
            source: None,
            subject: Some(claims.subject),
            store_id: Some(store_id),
            expires_at: crate::db::rfc3339(claims.expires_at.saturating_mul(1_000_000)),
            used: true,
            order: serde_json::to_value(done.order).ok(),
            coupon: None,
        }));
    }
    Ok(axum::Json(
        service::scan(
            &app.db,
            &app.keys,
            &auth.scope,
            &auth.principal.id,
            body.value,
        )
        .await?,
    ))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(create_code, list_codes))
        .routes(routes!(get_code))
        .routes(routes!(revoke_code))
        .routes(routes!(rotate_code))
        .routes(routes!(qr_sheet))
        .routes(routes!(pay_qr))
        .routes(routes!(pay_qr_png))
        .routes(routes!(public_keys))
        .routes(routes!(create_pay_codes))
        .routes(routes!(scan))
        .routes(routes!(super::pages::landing))
}
