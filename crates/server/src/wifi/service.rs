//! WiFi's rules: a store's key (made or rotated by its managers, shown once, kept hashed),
//! granting a logged-in consumer's device access for the configured time, and answering the
//! router's check.

use super::model::*;
use super::store;
use crate::db::{Db, MerchantScope, Tx, now_us, rfc3339};
use crate::error::{Error, Result};
use crate::identity::service::sha256_hex;
use crate::ids::{WifiGrantId, random_token};

fn key_of(row: store::KeyRow, secret: Option<String>) -> WifiKey {
    WifiKey {
        store_id: row.store_id,
        redacted: format!("wk_…{}", row.secret_last4),
        auth_url: row.auth_url,
        created_at: rfc3339(row.created_at),
        secret,
    }
}

fn store_not_found() -> Error {
    Error::not_found("store_not_found", "No such store.").param("id")
}

/// Makes (or rotates) the WiFi key of one of the caller's stores; the old key stops working.
pub async fn create_key(
    tx: &mut Tx,
    scope: &MerchantScope,
    store_id: &str,
    input: CreateWifiKey,
) -> Result<WifiKey> {
    let auth_url = input
        .auth_url
        .as_deref()
        .map(|u| http_url(u, 500, "auth_url"))
        .transpose()?;
    if crate::stores::service::get_own_store_tx(tx, scope, store_id)
        .await?
        .is_none()
    {
        return Err(store_not_found());
    }
    let secret = format!("wk_{}", random_token(32));
    let last4 = secret[secret.len() - 4..].to_owned();
    let now = now_us();
    store::put_key(
        tx,
        scope,
        store_id,
        &sha256_hex(&secret),
        &last4,
        auth_url.as_deref(),
        now,
    )
    .await?;
    Ok(key_of(
        store::KeyRow {
            store_id: store_id.to_owned(),
            merchant_id: scope.merchant_id().to_owned(),
            secret_last4: last4,
            auth_url,
            created_at: now,
        },
        Some(secret),
    ))
}

/// The key of one of the caller's stores, without its secret.
pub async fn get_key(db: &Db, scope: &MerchantScope, store_id: &str) -> Result<WifiKey> {
    if !crate::stores::service::own_store_exists(db, scope, store_id).await? {
        return Err(store_not_found());
    }
    store::key_scoped(db, scope, store_id)
        .await?
        .map(|row| key_of(row, None))
        .ok_or_else(|| {
            Error::not_found("wifi_key_not_found", "This store has no WiFi key yet.").param("id")
        })
}

/// The store whose key this is; a wrong or old key is `401 invalid_wifi_key`.
pub async fn authenticate(db: &Db, secret: Option<&str>) -> Result<store::KeyRow> {
    let wrong = || {
        Error::unauthenticated(
            "invalid_wifi_key",
            "Send the store's WiFi key as Authorization: Bearer wk_….",
        )
    };
    let secret = secret
        .filter(|s| s.starts_with("wk_") && s.len() <= 128)
        .ok_or_else(wrong)?;
    store::key_by_hash(db, &sha256_hex(secret))
        .await?
        .ok_or_else(wrong)
}

/// A grant just made: until when, and where to send the client.
pub struct Granted {
    pub id: String,
    pub expires_at_us: i64,
    /// The router's auth address with the client's token, when the router sent a token and the
    /// store has an auth address.
    pub router_auth: Option<String>,
}

/// Grants the consumer's device access at the store for `minutes`.
pub async fn grant(
    db: &Db,
    merchant_id: &str,
    store_id: &str,
    user_id: &str,
    params: &RouterParams,
    minutes: u32,
) -> Result<Granted> {
    let now = now_us();
    let expires_at = now + i64::from(minutes) * 60 * 1_000_000;
    let id = WifiGrantId::generate();
    let mut tx = db.begin().await?;
    store::insert_grant(
        &mut tx,
        id.as_str(),
        merchant_id,
        store_id,
        user_id,
        params.mac.as_ref().map(MacAddress::as_str),
        params.ip.map(|ip| ip.to_string()).as_deref(),
        params.gateway.as_deref(),
        params.tok.as_deref().map(sha256_hex).as_deref(),
        now,
        expires_at,
    )
    .await?;
    tx.commit().await?;
    metrics::counter!("wifi_grants_total").increment(1);
    let router_auth = match &params.tok {
        Some(tok) => store::auth_url(db, store_id)
            .await?
            .and_then(|base| router_auth_url(&base, tok, params.redir.as_deref())),
        None => None,
    };
    Ok(Granted {
        id: id.to_string(),
        expires_at_us: expires_at,
        router_auth,
    })
}

/// `<auth_url>?tok=<tok>&redir=<redir>` (added to any query the address already has).
fn router_auth_url(base: &str, tok: &str, redir: Option<&str>) -> Option<String> {
    let mut url = reqwest::Url::parse(base).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("tok", tok);
        if let Some(r) = redir {
            q.append_pair("redir", r);
        }
    }
    Some(url.to_string())
}

/// The router's check: is there a live grant for this device at the key's store (and, when the
/// router sends its token, one made with that token)?
pub async fn verify(db: &Db, key: &store::KeyRow, input: VerifyGrant) -> Result<GrantVerdict> {
    let mac = MacAddress::parse(&input.mac)?;
    let tok_hash = match input.tok.as_deref() {
        Some(t) if t.is_empty() || t.len() > 256 || !t.bytes().all(|b| b.is_ascii_graphic()) => {
            return Err(Error::invalid(
                "invalid_router_parameter",
                "tok must be 1 to 256 visible ASCII characters.",
            )
            .param("tok"));
        }
        Some(t) => Some(sha256_hex(t)),
        None => None,
    };
    let grants = store::live_grants(db, &key.store_id, mac.as_str(), now_us()).await?;
    let found = grants
        .into_iter()
        .find(|g| tok_hash.is_none() || g.tok_hash == tok_hash);
    Ok(match found {
        Some(g) => GrantVerdict {
            allowed: true,
            store_id: key.store_id.clone(),
            expires_at: Some(rfc3339(g.expires_at)),
            grant_id: Some(g.id),
            consumer_id: Some(g.user_id),
        },
        None => GrantVerdict {
            allowed: false,
            store_id: key.store_id.clone(),
            expires_at: None,
            grant_id: None,
            consumer_id: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_router_address_gets_the_token_and_the_first_page() {
        assert_eq!(
            router_auth_url(
                "http://192.168.8.1:2050/opennds_auth/",
                "abc",
                Some("http://example.com/x?y=1")
            )
            .unwrap(),
            "http://192.168.8.1:2050/opennds_auth/?tok=abc&redir=http%3A%2F%2Fexample.com%2Fx%3Fy%3D1"
        );
        assert_eq!(
            router_auth_url("http://10.0.0.1/auth?gw=1", "t", None).unwrap(),
            "http://10.0.0.1/auth?gw=1&tok=t"
        );
    }
}
