//! Merchants' domain types and API shapes.

use crate::identity::Role;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// Whether a merchant takes payments.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MerchantMode {
    /// Takes payments.
    Trading,
    /// Publishes stores and offers only (a pure information platform).
    Listing,
}

impl MerchantMode {
    pub fn as_str(self) -> &'static str {
        match self {
            MerchantMode::Trading => "trading",
            MerchantMode::Listing => "listing",
        }
    }
    pub fn parse(s: &str) -> MerchantMode {
        if s == "listing" {
            MerchantMode::Listing
        } else {
            MerchantMode::Trading
        }
    }
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Merchant {
    pub id: String,
    pub name: String,
    pub mode: MerchantMode,
    pub verified: bool,
    pub created_at: String,
    /// The IANA time zone the merchant's days are counted in (its daily settlement); `null`:
    /// its first store's.
    pub timezone: Option<String>,
}

/// Changes a merchant's settings; absent fields stay. `timezone` may be `null` to count the
/// merchant's days in its first store's zone again.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateMerchant {
    #[serde(default, deserialize_with = "crate::catalog::model::double_option")]
    #[schema(value_type = Option<String>)]
    pub timezone: Option<Option<String>>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewOwner {
    pub email: String,
    pub password: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateMerchant {
    /// 1 to 80 characters.
    pub name: String,
    pub mode: MerchantMode,
    pub owner: NewOwner,
}

#[derive(Serialize, ToSchema)]
pub struct MerchantCreated {
    #[serde(flatten)]
    pub merchant: Merchant,
    pub owner: Staff,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Staff {
    pub id: String,
    pub merchant_id: String,
    pub email: String,
    pub role: Role,
    pub created_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateStaff {
    pub email: String,
    pub password: String,
    pub role: Role,
}

#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ApiKey {
    pub id: String,
    pub merchant_id: String,
    pub name: String,
    /// The secret's last four characters, to tell keys apart (`sk_…abcd`).
    pub redacted: String,
    pub created_at: String,
    pub revoked: bool,
}

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct CreateApiKey {
    /// What the key is for ("POS", "ERP"); 1 to 60 characters. Default "API key".
    pub name: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub struct ApiKeyCreated {
    #[serde(flatten)]
    pub key: ApiKey,
    /// The secret (`sk_…`), shown only in this response; it is stored hashed. An idempotent
    /// replay of this response carries `null` here.
    pub secret: Option<String>,
}

/// Checks a display name: trimmed, 1 to `max` characters, no control characters.
pub fn parse_name(raw: &str, max: usize, param: &'static str) -> crate::error::Result<String> {
    let name = raw.trim();
    let n = name.chars().count();
    if n == 0 || n > max || name.chars().any(char::is_control) {
        return Err(crate::error::Error::invalid(
            "invalid_name",
            format!("{param} must be 1 to {max} characters."),
        )
        .param(param));
    }
    Ok(name.to_owned())
}
