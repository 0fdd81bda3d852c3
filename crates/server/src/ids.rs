//! Typed, prefixed ids: one type per entity, so a store id can never be passed where a merchant id
//! is expected, and every id says what it names (`sto_…`, `mch_…`).
//!
//! An id is its prefix plus 26 characters of Crockford base32: 48 bits of milliseconds since the
//! epoch then 80 random bits (the ULID layout). Ids therefore sort by creation time, which is what
//! key-based pagination (`starting_after`) orders by. They are names, not secrets: anything that
//! must not be guessed (tokens, keys, printed codes) uses [`random_token`] instead.

use rand::RngCore;
use std::fmt;

const CROCKFORD: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
const BODY_LEN: usize = 26;

/// Makes a fresh sortable id body (26 lowercase Crockford base32 characters).
pub fn new_body() -> String {
    let ms = jiff::Timestamp::now().as_millisecond().max(0) as u128;
    let mut random = [0u8; 10];
    rand::rng().fill_bytes(&mut random);
    let mut value: u128 = (ms & 0xFFFF_FFFF_FFFF) << 80;
    for (i, b) in random.iter().enumerate() {
        value |= u128::from(*b) << (8 * (9 - i));
    }
    // Monotonic within the process: an id made in the same millisecond as the previous one
    // still sorts after it (the ULID rule), so creation order is key order.
    static LAST: std::sync::Mutex<u128> = std::sync::Mutex::new(0);
    if let Ok(mut last) = LAST.lock() {
        if value <= *last {
            value = *last + 1;
        }
        *last = value;
    }
    encode_body(value)
}

/// The smallest id body made at millisecond `ms` since the epoch: a lower bound for a range of
/// ids by creation time (`id >= prefix + body_at(ms)`).
pub fn body_at(ms: i64) -> String {
    encode_body(((ms.max(0) as u128) & 0xFFFF_FFFF_FFFF) << 80)
}

/// 128 bits as an id body (Crockford base32, most significant first).
fn encode_body(mut value: u128) -> String {
    let mut out = [0u8; BODY_LEN];
    for i in (0..BODY_LEN).rev() {
        out[i] = CROCKFORD[(value & 31) as usize];
        value >>= 5;
    }
    String::from_utf8(out.to_vec()).expect("alphabet is ASCII")
}

/// `bytes` random bytes as unpadded URL-safe base64: for tokens and secrets.
pub fn random_token(bytes: usize) -> String {
    use base64::Engine;
    let mut buf = vec![0u8; bytes];
    rand::rng().fill_bytes(&mut buf);
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

/// True when `body` could be an id body (length and alphabet).
fn valid_body(body: &str) -> bool {
    body.len() == BODY_LEN && body.bytes().all(|b| CROCKFORD.contains(&b))
}

/// Why a string is not an id of the expected type.
#[derive(Debug, thiserror::Error)]
#[error("not a valid {expected} id")]
pub struct IdError {
    pub expected: &'static str,
}

macro_rules! define_id {
    ($(#[$doc:meta])* $name:ident, $prefix:literal) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
        #[serde(transparent)]
        pub struct $name(String);

        impl $name {
            pub const PREFIX: &'static str = $prefix;

            /// A fresh id.
            pub fn generate() -> Self {
                $name(format!("{}{}", $prefix, new_body()))
            }

            /// Parses an id of this type; anything else is an error.
            pub fn parse(s: &str) -> Result<Self, IdError> {
                match s.strip_prefix($prefix) {
                    Some(body) if valid_body(body) => Ok($name(s.to_owned())),
                    _ => Err(IdError { expected: $prefix }),
                }
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl<'de> serde::Deserialize<'de> for $name {
            fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
                $name::parse(&s).map_err(serde::de::Error::custom)
            }
        }

        impl From<$name> for crate::db::Value {
            fn from(id: $name) -> Self {
                crate::db::Value::Text(Some(id.0))
            }
        }

        impl From<&$name> for crate::db::Value {
            fn from(id: &$name) -> Self {
                crate::db::Value::Text(Some(id.0.clone()))
            }
        }

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("An id with the prefix `", $prefix, "`.")))
                    .examples([concat!($prefix, "01jq3v7h0000000000000000ab")])
                    .into()
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}

define_id!(
    /// A consumer (`usr_`), guest or with a phone.
    UserId,
    "usr_"
);
define_id!(
    /// A merchant's staff member (`stf_`).
    StaffId,
    "stf_"
);
define_id!(
    /// A rider (`rdr_`).
    RiderId,
    "rdr_"
);
define_id!(
    /// A platform operator (`opr_`).
    OperatorId,
    "opr_"
);
define_id!(
    /// A merchant (`mch_`).
    MerchantId,
    "mch_"
);
define_id!(
    /// A store (`sto_`).
    StoreId,
    "sto_"
);
define_id!(
    /// A table in a store (`tbl_`).
    TableId,
    "tbl_"
);
define_id!(
    /// A merchant API key (`key_`); its secret is the separate `sk_…` string.
    ApiKeyId,
    "key_"
);

define_id!(
    /// A payment (`pay_`).
    PaymentId,
    "pay_"
);
define_id!(
    /// A refund (`rfd_`).
    RefundId,
    "rfd_"
);
define_id!(
    /// A ledger transfer (`trf_`).
    TransferId,
    "trf_"
);
define_id!(
    /// An event in the outbox (`evt_`).
    EventId,
    "evt_"
);
define_id!(
    /// A webhook endpoint (`whe_`).
    WebhookEndpointId,
    "whe_"
);
define_id!(
    /// A webhook delivery (`whd_`).
    WebhookDeliveryId,
    "whd_"
);
define_id!(
    /// A consumer following a merchant (`fol_`).
    FollowerId,
    "fol_"
);
define_id!(
    /// A recorded follow or unfollow: consent given or withdrawn (`fcn_`).
    ConsentId,
    "fcn_"
);
define_id!(
    /// A merchant's message to its followers (`msg_`).
    MessageId,
    "msg_"
);
define_id!(
    /// Internet access granted at a store's WiFi (`wfg_`).
    WifiGrantId,
    "wfg_"
);
define_id!(
    /// A wallet top-up or withdrawal (`wmv_`).
    WalletMovementId,
    "wmv_"
);
define_id!(
    /// A product in a merchant's catalog (`prd_`).
    ProductId,
    "prd_"
);
define_id!(
    /// A category of a merchant's catalog (`cat_`).
    CategoryId,
    "cat_"
);

define_id!(
    /// An order (`ord_`): dine-in, pickup, delivery or scan-and-go.
    OrderId,
    "ord_"
);

define_id!(
    /// A coupon template (`cpt_`).
    CouponTemplateId,
    "cpt_"
);
define_id!(
    /// A claimed coupon (`cpn_`).
    CouponId,
    "cpn_"
);

define_id!(
    /// A stored-value member card (`crd_`): one per consumer per merchant.
    CardId,
    "crd_"
);

define_id!(
    /// A movement of a member card (`cmv_`): a top-up, payment, refund or closing.
    CardMovementId,
    "cmv_"
);

define_id!(
    /// A funding of a merchant's promotion budget (`pfd_`).
    PromotionFundingId,
    "pfd_"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_parse_back_and_carry_their_prefix() {
        let id = StoreId::generate();
        assert!(id.as_str().starts_with("sto_"));
        assert_eq!(StoreId::parse(id.as_str()).unwrap(), id);
    }

    #[test]
    fn an_id_of_another_type_is_rejected() {
        let id = MerchantId::generate();
        assert!(StoreId::parse(id.as_str()).is_err());
        assert!(StoreId::parse("sto_short").is_err());
        assert!(StoreId::parse("sto_01JQ3V7H0000000000000000AB").is_err());
    }

    #[test]
    fn later_ids_sort_after_earlier_ones_even_within_a_millisecond() {
        let ids: Vec<String> = (0..1_000).map(|_| new_body()).collect();
        assert!(ids.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn a_time_bound_sorts_between_the_ids_made_before_and_after_it() {
        let before = new_body();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let now_ms = jiff::Timestamp::now().as_millisecond();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let after = new_body();
        let bound = body_at(now_ms);
        assert!(before < bound && bound <= after, "{before} {bound} {after}");
        assert!(valid_body(&bound));
    }

    #[test]
    fn random_tokens_do_not_repeat() {
        let a = random_token(32);
        let b = random_token(32);
        assert_ne!(a, b);
        assert_eq!(a.len(), 43);
    }
}
