//! Merchants' rules: who may create what, and what each operation checks.

use super::model::*;
use super::store;
use crate::db::{Db, MerchantScope, Tx, now_us, rfc3339};
use crate::error::{Error, Result};
use crate::http::{Page, query::List};
use crate::identity::service::{create_account, sha256_hex};
use crate::identity::{Email, NewPassword, Passwords, PrincipalKind, Role};
use crate::ids::{ApiKeyId, MerchantId, StaffId, random_token};

fn merchant_of(row: store::MerchantRow) -> Merchant {
    Merchant {
        id: row.id,
        name: row.name,
        mode: MerchantMode::parse(&row.mode),
        verified: row.verified,
        created_at: rfc3339(row.created_at),
        timezone: row.timezone,
    }
}

fn staff_of(row: store::StaffRow) -> Staff {
    Staff {
        id: row.id,
        merchant_id: row.merchant_id,
        email: row.email,
        role: Role::parse(&row.role).unwrap_or(Role::Cashier),
        created_at: rfc3339(row.created_at),
    }
}

fn key_of(row: store::ApiKeyRow) -> ApiKey {
    ApiKey {
        id: row.id,
        merchant_id: row.merchant_id,
        name: row.name,
        redacted: format!("sk_…{}", row.secret_last4),
        created_at: rfc3339(row.created_at),
        revoked: row.revoked_at.is_some(),
    }
}

/// Checked input for a new merchant; the password is already hashed (outside any transaction).
pub struct NewMerchant {
    pub name: String,
    pub mode: MerchantMode,
    pub owner_email: Email,
    pub owner_password_hash: String,
    pub verified: bool,
}

impl NewMerchant {
    pub async fn parse(input: CreateMerchant, passwords: &Passwords) -> Result<NewMerchant> {
        let name = parse_name(&input.name, 80, "name")?;
        let owner_email = Email::parse(&input.owner.email).map_err(|e| e.param("owner.email"))?;
        let password =
            NewPassword::parse(&input.owner.password).map_err(|e| e.param("owner.password"))?;
        let owner_password_hash = passwords
            .hash(password.expose())
            .await
            .map_err(Error::internal)?;
        Ok(NewMerchant {
            name,
            mode: input.mode,
            owner_email,
            owner_password_hash,
            verified: false,
        })
    }
}

/// Creates a merchant with its owner inside `tx`; returns it with the scope of the new merchant.
pub async fn create_merchant(
    tx: &mut Tx,
    input: NewMerchant,
) -> Result<(MerchantCreated, MerchantScope)> {
    let now = now_us();
    let id = MerchantId::generate();
    store::insert_merchant(
        tx,
        id.as_str(),
        &input.name,
        input.mode.as_str(),
        input.verified,
        now,
    )
    .await?;
    let owner_id = StaffId::generate();
    create_account(
        tx,
        owner_id.as_str(),
        PrincipalKind::Staff,
        Some(id.as_str()),
        Some(Role::Owner),
        &input.owner_email,
        &input.owner_password_hash,
    )
    .await
    .map_err(|e| {
        if e.param.as_deref() == Some("email") {
            e.param("owner.email")
        } else {
            e
        }
    })?;
    let created_at = rfc3339(now);
    Ok((
        MerchantCreated {
            merchant: Merchant {
                id: id.to_string(),
                name: input.name,
                mode: input.mode,
                verified: input.verified,
                created_at: created_at.clone(),
                timezone: None,
            },
            owner: Staff {
                id: owner_id.to_string(),
                merchant_id: id.to_string(),
                email: input.owner_email.as_str().to_owned(),
                role: Role::Owner,
                created_at,
            },
        },
        MerchantScope::authenticated(id.to_string()),
    ))
}

fn merchant_not_found() -> Error {
    Error::not_found("merchant_not_found", "No such merchant.").param("id")
}

/// Checks that the path's merchant id is the caller's own; any other id is "not found".
pub fn own(scope: &MerchantScope, merchant_id: &str) -> Result<()> {
    if scope.owns(merchant_id) {
        Ok(())
    } else {
        Err(merchant_not_found())
    }
}

pub async fn get_merchant(db: &Db, scope: &MerchantScope, id: &str) -> Result<Merchant> {
    own(scope, id)?;
    store::merchant(db, scope)
        .await?
        .map(merchant_of)
        .ok_or_else(merchant_not_found)
}

/// Sets or clears (`None`) the time zone the merchant's days are counted in (owners only).
pub async fn set_timezone(
    db: &Db,
    scope: &MerchantScope,
    id: &str,
    timezone: Option<&str>,
) -> Result<Merchant> {
    own(scope, id)?;
    let timezone = timezone
        .map(crate::stores::hours::parse_timezone)
        .transpose()?;
    if store::set_timezone(db, scope, timezone.as_deref()).await? == 0 {
        return Err(merchant_not_found());
    }
    get_merchant(db, scope, id).await
}

/// Public facts about a merchant (for pages that name the merchant to a consumer).
pub async fn public_merchant(db: &Db, id: &str) -> Result<Option<Merchant>> {
    Ok(store::merchant_public(db, id).await?.map(merchant_of))
}

/// Checked input for a new staff member (password hashed).
pub struct NewStaff {
    pub email: Email,
    pub password_hash: String,
    pub role: Role,
}

impl NewStaff {
    pub async fn parse(input: CreateStaff, passwords: &Passwords) -> Result<NewStaff> {
        let email = Email::parse(&input.email)?;
        let password = NewPassword::parse(&input.password)?;
        let password_hash = passwords
            .hash(password.expose())
            .await
            .map_err(Error::internal)?;
        Ok(NewStaff {
            email,
            password_hash,
            role: input.role,
        })
    }
}

/// Adds a staff member. Owners may add any role; managers may add cashiers.
pub async fn add_staff(
    tx: &mut Tx,
    scope: &MerchantScope,
    caller_role: Role,
    input: NewStaff,
) -> Result<Staff> {
    let allowed =
        caller_role == Role::Owner || (caller_role == Role::Manager && input.role == Role::Cashier);
    if !allowed {
        return Err(Error::forbidden(
            "insufficient_role",
            "Owners add any staff; managers add cashiers.",
        ));
    }
    let id = StaffId::generate();
    let now = now_us();
    create_account(
        tx,
        id.as_str(),
        PrincipalKind::Staff,
        Some(scope.merchant_id()),
        Some(input.role),
        &input.email,
        &input.password_hash,
    )
    .await?;
    Ok(Staff {
        id: id.to_string(),
        merchant_id: scope.merchant_id().to_owned(),
        email: input.email.as_str().to_owned(),
        role: input.role,
        created_at: rfc3339(now),
    })
}

pub async fn list_staff(db: &Db, scope: &MerchantScope, page: &Page) -> Result<List<Staff>> {
    let rows = store::list_staff(db, scope, page.cursor(), page.fetch_limit()).await?;
    Ok(page.finish(rows.into_iter().map(staff_of).collect()))
}

/// Creates an API key; its secret is returned once and stored only as a hash.
pub async fn create_api_key(
    tx: &mut Tx,
    scope: &MerchantScope,
    input: CreateApiKey,
) -> Result<ApiKeyCreated> {
    let name = match input.name {
        Some(n) => parse_name(&n, 60, "name")?,
        None => "API key".to_owned(),
    };
    let secret = format!("sk_{}", random_token(32));
    let last4 = secret[secret.len() - 4..].to_owned();
    let id = ApiKeyId::generate();
    let now = now_us();
    store::insert_api_key(
        tx,
        scope,
        id.as_str(),
        &name,
        &sha256_hex(&secret),
        &last4,
        now,
    )
    .await?;
    Ok(ApiKeyCreated {
        key: ApiKey {
            id: id.to_string(),
            merchant_id: scope.merchant_id().to_owned(),
            name,
            redacted: format!("sk_…{last4}"),
            created_at: rfc3339(now),
            revoked: false,
        },
        secret: Some(secret),
    })
}

pub async fn list_api_keys(db: &Db, scope: &MerchantScope, page: &Page) -> Result<List<ApiKey>> {
    let rows = store::list_api_keys(db, scope, page.cursor(), page.fetch_limit()).await?;
    Ok(page.finish(rows.into_iter().map(key_of).collect()))
}

/// Revokes a key: it stops working at once.
pub async fn revoke_api_key(tx: &mut Tx, scope: &MerchantScope, key_id: &str) -> Result<ApiKey> {
    store::revoke_api_key(tx, scope, key_id, now_us())
        .await?
        .map(key_of)
        .ok_or_else(|| Error::not_found("api_key_not_found", "No such API key.").param("key_id"))
}

/// Marks a merchant verified (or not): operators only.
pub async fn set_verified(tx: &mut Tx, merchant_id: &str, verified: bool) -> Result<()> {
    if store::set_verified(tx, merchant_id, verified).await? == 0 {
        return Err(merchant_not_found());
    }
    Ok(())
}

/// The merchant's payment terms (platform fee rate, whether it may take money).
pub async fn payment_terms(db: &Db, merchant_id: &str) -> Result<Option<store::PaymentTerms>> {
    Ok(store::payment_terms(db, merchant_id).await?)
}

/// Sets the platform fee a merchant pays, in basis points of each captured payment (0 to 1000,
/// that is up to 10 %); payments taken before keep the rate they were taken at.
pub async fn set_fee(tx: &mut Tx, merchant_id: &str, fee_bps: i64) -> Result<()> {
    if !(0..=1_000).contains(&fee_bps) {
        return Err(Error::invalid(
            "fee_bps_out_of_range",
            "fee_bps must be between 0 and 1000 (10 %).",
        )
        .param("fee_bps"));
    }
    if store::set_fee(tx, merchant_id, fee_bps).await? == 0 {
        return Err(merchant_not_found());
    }
    Ok(())
}
