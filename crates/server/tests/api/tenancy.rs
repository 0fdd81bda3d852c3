//! Tenant isolation: every merchant-scoped endpoint, called by another merchant's staff or key
//! with the first merchant's ids, answers 404 and changes nothing.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn another_merchants_ids_answer_not_found_everywhere() {
    let app = spawn_app().await;
    let (a, a_owner) = app.merchant("Alpha").await;
    let a_store = app.store(&a, &a_owner, "Alpha One", 31.2, 121.4).await;
    let a_key = app
        .post(
            &format!("/v1/merchants/{a}/api-keys"),
            json!({}),
            Some(&a_owner),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_table = app
        .post(
            &format!("/v1/stores/{a_store}/tables"),
            json!({"label": "A1"}),
            Some(&a_owner),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let a_qr = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "store_pay", "store_id": a_store}),
            Some(&a_owner),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (b, b_owner) = app.merchant("Beta").await;
    let b_secret = app
        .post(
            &format!("/v1/merchants/{b}/api-keys"),
            json!({}),
            Some(&b_owner),
        )
        .await
        .body["secret"]
        .as_str()
        .unwrap()
        .to_owned();
    let before = (
        app.count("stores").await,
        app.count("accounts").await,
        app.count("store_tables").await,
        app.count("api_keys").await,
    );

    for token in [&b_owner, &b_secret] {
        let calls: Vec<(&str, String, Option<serde_json::Value>)> = vec![
            ("GET", format!("/v1/merchants/{a}"), None),
            (
                "PATCH",
                format!("/v1/merchants/{a}"),
                Some(json!({"timezone": "Pacific/Honolulu"})),
            ),
            ("GET", format!("/v1/merchants/{a}/staff"), None),
            (
                "POST",
                format!("/v1/merchants/{a}/staff"),
                Some(json!({"email": "x@evil.test", "password": "password-1", "role": "cashier"})),
            ),
            ("GET", format!("/v1/merchants/{a}/api-keys"), None),
            (
                "POST",
                format!("/v1/merchants/{a}/api-keys"),
                Some(json!({})),
            ),
            (
                "DELETE",
                format!("/v1/merchants/{b}/api-keys/{a_key}"),
                None,
            ),
            ("GET", format!("/v1/merchants/{a}/stores"), None),
            (
                "POST",
                "/v1/stores".to_owned(),
                Some(
                    json!({"merchant_id": a, "name": "Evil", "address": "x", "lat": 1.0, "lng": 1.0, "timezone": "Asia/Shanghai", "opening_hours": "24/7"}),
                ),
            ),
            (
                "PATCH",
                format!("/v1/stores/{a_store}"),
                Some(json!({"name": "Pwned"})),
            ),
            (
                "POST",
                format!("/v1/stores/{a_store}/tables"),
                Some(json!({"label": "X"})),
            ),
            ("GET", format!("/v1/stores/{a_store}/tables"), None),
            (
                "POST",
                "/v1/qr-codes".to_owned(),
                Some(json!({"kind": "store_pay", "store_id": a_store})),
            ),
            (
                "POST",
                "/v1/qr-codes".to_owned(),
                Some(json!({"kind": "table", "store_id": a_store, "table_id": a_table})),
            ),
            ("GET", format!("/v1/qr-codes/{a_qr}"), None),
            ("GET", format!("/v1/qr-codes/{a_qr}.png"), None),
            ("GET", format!("/v1/qr-codes/{a_qr}.svg"), None),
            (
                "POST",
                format!("/v1/qr-codes/{a_qr}/revoke"),
                Some(json!({})),
            ),
            (
                "POST",
                format!("/v1/qr-codes/{a_qr}/rotate"),
                Some(json!({})),
            ),
            ("GET", format!("/v1/stores/{a_store}/qr-sheet.pdf"), None),
            (
                "GET",
                format!("/v1/stores/{a_store}/pay-qr?format=emv"),
                None,
            ),
            ("GET", format!("/v1/stores/{a_store}/pay-qr.png"), None),
            (
                "POST",
                "/v1/scan".to_owned(),
                Some(json!({"payload": "191234567890123456", "store_id": a_store})),
            ),
        ];
        for (method, path, body) in calls {
            let mut req = match method {
                "GET" => app.client.get(app.url(&path)),
                "POST" => app.client.post(app.url(&path)),
                "PATCH" => app.client.patch(app.url(&path)),
                "DELETE" => app.client.delete(app.url(&path)),
                _ => unreachable!(),
            };
            if let Some(b) = body {
                req = req.json(&b);
            }
            let r = app.send(req.bearer_auth(token)).await;
            // An API key may not manage keys at all (403); everything else is "not found".
            let is_key_management = path.contains("/api-keys") && token.starts_with("sk_");
            if is_key_management && r.status == StatusCode::FORBIDDEN {
                continue;
            }
            assert_eq!(
                r.status,
                StatusCode::NOT_FOUND,
                "{method} {path}: {}",
                r.body
            );
            assert_eq!(r.body["error"]["type"], "not_found");
        }
    }
    let after = (
        app.count("stores").await,
        app.count("accounts").await,
        app.count("store_tables").await,
        app.count("api_keys").await,
    );
    assert_eq!(before, after, "nothing was written");
    assert_eq!(
        app.get(&format!("/v1/stores/{a_store}"), None).await.body["name"],
        "Alpha One"
    );
}
