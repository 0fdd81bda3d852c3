//! Identity's JSON routes: one-time codes, sessions, `GET /v1/me`, and the dev SMS outbox.

use super::model::{Email, Phone, Principal, PrincipalKind};
use super::service;
use crate::app::AppState;
use crate::db::rfc3339;
use crate::error::{Error, Result};
use crate::http::{
    Auth, ClientIp, Idem, Json, MaybeAuth, Query, Reply, error::ErrorBody, idempotency,
};
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OtpRequest {
    /// A mobile number: `13800000001` or E.164 `+8613800000001`.
    pub phone: String,
}

#[derive(Serialize, ToSchema)]
pub struct OtpSent {
    pub status: &'static str,
    pub expires_in_s: i64,
}

/// Sends a one-time login code by SMS (valid 5 minutes, 5 tries; rate-limited per phone and per
/// client address).
#[utoipa::path(post, path = "/v1/auth/otp", tag = "identity", request_body = OtpRequest,
    responses((status = 202, body = OtpSent), (status = 400, body = ErrorBody), (status = 429, body = ErrorBody)))]
async fn request_otp(
    State(app): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Json<OtpRequest>,
) -> Result<(StatusCode, axum::Json<OtpSent>)> {
    let phone = Phone::parse(&body.value.phone)?;
    let message = service::request_otp(&app.db, &phone, &ip).await?;
    if let Err(e) = app.sms.deliver(message).await {
        tracing::warn!(sender = app.sms.name(), error = %e, "SMS delivery failed; the message stays in the outbox");
    }
    Ok((
        StatusCode::ACCEPTED,
        axum::Json(OtpSent {
            status: "sent",
            expires_in_s: service::OTP_TTL_US / 1_000_000,
        }),
    ))
}

/// Either a phone with its one-time code (consumers) or an email with a password (staff, riders,
/// operators).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionRequest {
    pub phone: Option<String>,
    pub code: Option<String>,
    pub email: Option<String>,
    pub password: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct SessionCreated {
    /// The session token, shown once: send it as `Authorization: Bearer <token>`. An idempotent
    /// replay of this response carries `null` here.
    pub token: Option<String>,
    pub principal: Principal,
    pub expires_at: String,
}

/// Logs in. A guest calling this with its own token keeps its activity: it becomes the account,
/// or is joined to the phone's existing account.
#[utoipa::path(post, path = "/v1/sessions", tag = "identity", request_body = SessionRequest,
    responses((status = 201, body = SessionCreated), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody)))]
async fn create_session(
    State(app): State<AppState>,
    MaybeAuth(caller): MaybeAuth,
    ClientIp(ip): ClientIp,
    Idem(key): Idem,
    body: Json<SessionRequest>,
) -> Result<Reply> {
    let scope = caller
        .as_ref()
        .map(|p| p.id.clone())
        .unwrap_or_else(|| format!("ip:{ip}"));
    // Replays are answered before anything else happens (a code is single-use). Logins commit on
    // their own (a wrong code must count even though the request fails), so the reply is
    // remembered afterwards rather than in the same transaction.
    if let Some(reply) =
        idempotency::lookup(&app.db, &scope, key.as_deref(), &body.body_sha256).await?
    {
        return Ok(reply);
    }
    let req = body.value;
    let issued = match (req.phone, req.code, req.email, req.password) {
        (Some(phone), Some(code), None, None) => {
            let phone = Phone::parse(&phone)?;
            service::login_with_code(&app.db, &phone, &code, caller.as_ref()).await?
        }
        (None, None, Some(email), Some(password)) => {
            let email = Email::parse(&email)?;
            service::login_with_password(&app.db, &app.passwords, &email, &password).await?
        }
        _ => {
            return Err(Error::invalid(
                "missing_credentials",
                "Send either {phone, code} or {email, password}.",
            ));
        }
    };
    let created = SessionCreated {
        token: Some(issued.token),
        principal: issued.principal,
        expires_at: rfc3339(issued.expires_at),
    };
    let reply = Reply::created(&created)?;
    let stored = serde_json::to_string(&SessionCreated {
        token: None,
        ..created
    })
    .map_err(Error::internal)?;
    idempotency::remember(
        &app.db,
        &scope,
        key.as_deref(),
        &body.body_sha256,
        reply.status,
        stored,
    )
    .await?;
    Ok(reply)
}

/// Starts a guest consumer session: what a guest does is kept and joins the account at login.
#[utoipa::path(post, path = "/v1/sessions/guest", tag = "identity",
    responses((status = 201, body = SessionCreated)))]
async fn create_guest_session(State(app): State<AppState>) -> Result<Reply> {
    let issued = service::start_guest(&app.db).await?;
    Reply::created(&SessionCreated {
        token: Some(issued.token),
        principal: issued.principal,
        expires_at: rfc3339(issued.expires_at),
    })
}

#[derive(Serialize, ToSchema)]
pub struct Me {
    #[serde(flatten)]
    pub principal: Principal,
    /// Consumers: the last four digits of the phone.
    pub phone_last4: Option<String>,
    /// Consumers: the birthday they gave (`MM-DD`), for member programs' birthday coupons.
    pub birthday: Option<String>,
}

/// `PATCH /v1/me`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct UpdateMe {
    /// Month and day, `MM-DD`. Set once; another day later is `409 birthday_already_set`.
    pub birthday: String,
}

/// Who the token belongs to.
#[utoipa::path(get, path = "/v1/me", tag = "identity", security(("bearer" = [])),
    responses((status = 200, body = Me), (status = 401, body = ErrorBody)))]
async fn me(State(app): State<AppState>, Auth(principal): Auth) -> Result<axum::Json<Me>> {
    let (phone_last4, birthday) = if principal.kind == PrincipalKind::Consumer {
        (
            service::consumer_phone(&app.db, &principal.id)
                .await?
                .map(|p| p.last4().to_owned()),
            service::consumer_birthday(&app.db, &principal.id).await?,
        )
    } else {
        (None, None)
    };
    Ok(axum::Json(Me {
        principal,
        phone_last4,
        birthday,
    }))
}

/// Adds to the consumer's profile: the birthday (month and day), which member programs with a
/// birthday coupon celebrate. Logged-in consumers only.
#[utoipa::path(patch, path = "/v1/me", tag = "identity", security(("bearer" = [])), request_body = UpdateMe,
    responses((status = 200, body = Me), (status = 400, body = ErrorBody), (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody), (status = 409, body = ErrorBody)))]
async fn update_me(
    State(app): State<AppState>,
    Auth(principal): Auth,
    body: Json<UpdateMe>,
) -> Result<axum::Json<Me>> {
    let birthday = service::set_birthday(&app.db, &principal, &body.value.birthday).await?;
    let phone_last4 = service::consumer_phone(&app.db, &principal.id)
        .await?
        .map(|p| p.last4().to_owned());
    Ok(axum::Json(Me {
        principal,
        phone_last4,
        birthday: Some(birthday),
    }))
}

/// Logs out: the token stops working at once.
#[utoipa::path(delete, path = "/v1/sessions/current", tag = "identity", security(("bearer" = [])),
    responses((status = 204), (status = 401, body = ErrorBody)))]
async fn delete_session(State(app): State<AppState>, Auth(principal): Auth) -> Result<StatusCode> {
    if principal.kind == PrincipalKind::ApiKey {
        return Err(Error::invalid(
            "not_a_session",
            "An API key is revoked with DELETE /v1/merchants/{id}/api-keys/{key_id}.",
        ));
    }
    service::revoke(&app.db, &principal).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
pub struct OutboxParams {
    /// The phone number the messages went to.
    pub to: String,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxMessage {
    pub to: String,
    pub body: String,
    pub code: Option<String>,
    pub created_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct OutboxList {
    pub data: Vec<OutboxMessage>,
}

/// The SMS dev outbox, newest first. Only when the server runs with `--dev` or `--demo`.
#[utoipa::path(get, path = "/v1/dev/outbox", tag = "identity", params(OutboxParams),
    responses((status = 200, body = OutboxList), (status = 404, body = ErrorBody)))]
async fn dev_outbox(
    State(app): State<AppState>,
    Query(params): Query<OutboxParams>,
) -> Result<axum::Json<OutboxList>> {
    if !app.config.dev {
        return Err(Error::not_found("route_not_found", "No such endpoint."));
    }
    let phone = Phone::parse(&params.to).map_err(|e| e.param("to"))?;
    let data = service::outbox(&app.db, &phone)
        .await?
        .into_iter()
        .map(|m| OutboxMessage {
            to: m.phone,
            body: m.body,
            code: m.code,
            created_at: rfc3339(m.created_at),
        })
        .collect();
    Ok(axum::Json(OutboxList { data }))
}

pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(request_otp))
        .routes(routes!(create_session))
        .routes(routes!(create_guest_session))
        .routes(routes!(me, update_me))
        .routes(routes!(delete_session))
        .routes(routes!(dev_outbox))
}
