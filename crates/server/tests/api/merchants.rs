use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_merchant_signs_up_and_its_owner_logs_in() {
    let app = spawn_app().await;
    let res = app
        .post(
            "/v1/merchants",
            json!({"name": "Tea House", "mode": "listing", "owner": {"email": "Boss@Tea.test", "password": "leaves-and-water"}}),
            None,
        )
        .await;
    assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
    assert!(res.body["id"].as_str().unwrap().starts_with("mch_"));
    assert_eq!(res.body["mode"], "listing");
    assert_eq!(res.body["verified"], false);
    assert_eq!(res.body["owner"]["email"], "boss@tea.test");
    assert_eq!(res.body["owner"]["role"], "owner");
    assert!(res.body["owner"].get("password").is_none());
    let token = app
        .password_token("boss@tea.test", "leaves-and-water")
        .await;
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.body["kind"], "staff");
    assert_eq!(me.body["role"], "owner");
    assert_eq!(me.body["merchant_id"], res.body["id"]);
    let m = app
        .get(
            &format!("/v1/merchants/{}", res.body["id"].as_str().unwrap()),
            Some(&token),
        )
        .await;
    assert_eq!(m.body["name"], "Tea House");
}

#[tokio::test]
async fn a_taken_email_is_a_conflict_and_creates_no_merchant() {
    let app = spawn_app().await;
    let body = json!({"name": "A", "mode": "trading", "owner": {"email": "same@x.test", "password": "password-1"}});
    assert_eq!(
        app.post("/v1/merchants", body.clone(), None).await.status,
        StatusCode::CREATED
    );
    let again = app
        .post(
            "/v1/merchants",
            json!({"name": "B", "mode": "trading", "owner": {"email": "same@x.test", "password": "password-2"}}),
            None,
        )
        .await;
    assert_eq!(again.status, StatusCode::CONFLICT);
    assert_eq!(again.code(), "email_taken");
    assert_eq!(again.body["error"]["param"], "owner.email");
    assert_eq!(app.count("merchants").await, 1);
}

#[tokio::test]
async fn bad_sign_ups_say_which_field_is_wrong() {
    let app = spawn_app().await;
    let cases = [
        (
            json!({"name": "", "mode": "trading", "owner": {"email": "a@b.test", "password": "password-1"}}),
            "invalid_name",
        ),
        (
            json!({"name": "X", "mode": "barter", "owner": {"email": "a@b.test", "password": "password-1"}}),
            "invalid_enum_value",
        ),
        (
            json!({"name": "X", "mode": "trading", "owner": {"email": "nope", "password": "password-1"}}),
            "invalid_email",
        ),
        (
            json!({"name": "X", "mode": "trading", "owner": {"email": "a@b.test", "password": "short"}}),
            "weak_password",
        ),
        (json!({"name": "X", "mode": "trading"}), "missing_field"),
        (
            json!({"name": "X", "mode": "trading", "owner": {"email": "a@b.test", "password": "password-1", "admin": true}}),
            "unknown_field",
        ),
    ];
    for (body, code) in cases {
        let r = app.post("/v1/merchants", body.clone(), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(r.code(), code, "{body}: {}", r.body);
    }
    assert_eq!(app.count("merchants").await, 0);
    assert_eq!(app.count("accounts").await, 0);
}

#[tokio::test]
async fn owners_add_any_staff_managers_only_cashiers_and_cashiers_none() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Staff Cafe").await;
    let path = format!("/v1/merchants/{mid}/staff");
    let r = app
        .post(
            &path,
            json!({"email": "m@staff.test", "password": "manager-pass", "role": "manager"}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["id"].as_str().unwrap().starts_with("stf_"));
    let manager = app.password_token("m@staff.test", "manager-pass").await;
    let r = app
        .post(
            &path,
            json!({"email": "c@staff.test", "password": "cashier-pass", "role": "cashier"}),
            Some(&manager),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            &path,
            json!({"email": "m2@staff.test", "password": "manager-pass", "role": "manager"}),
            Some(&manager),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "insufficient_role");
    let cashier = app.password_token("c@staff.test", "cashier-pass").await;
    let r = app
        .post(
            &path,
            json!({"email": "c2@staff.test", "password": "cashier-pass", "role": "cashier"}),
            Some(&cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let list = app.get(&path, Some(&owner)).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 3);
    // A consumer is not staff at all.
    let consumer = app.consumer_token("13800000001", None).await;
    assert_eq!(
        app.get(&path, Some(&consumer)).await.code(),
        "merchant_only"
    );
}

#[tokio::test]
async fn an_api_key_secret_is_shown_once_works_and_stops_when_revoked() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Key Cafe").await;
    let created = app
        .post(
            &format!("/v1/merchants/{mid}/api-keys"),
            json!({"name": "POS"}),
            Some(&owner),
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.body);
    let secret = created.body["secret"].as_str().unwrap().to_owned();
    let key_id = created.body["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("sk_"));
    // The key reaches the merchant's data.
    let store = app.store(&mid, &secret, "Key Store", 31.2, 121.4).await;
    assert!(store.starts_with("sto_"));
    let me = app.get("/v1/me", Some(&secret)).await;
    assert_eq!(me.body["kind"], "api_key");
    // Lists never show the secret again, only its last four characters.
    let list = app
        .get(&format!("/v1/merchants/{mid}/api-keys"), Some(&owner))
        .await;
    let listed = list.body.to_string();
    assert!(!listed.contains(&secret));
    assert!(listed.contains(&secret[secret.len() - 4..]));
    // The stored hash is not the secret either.
    let (stored,): (String,) = app
        .state
        .db
        .fetch_one(o2o_server::db::query("SELECT secret_hash FROM api_keys"))
        .await
        .unwrap();
    assert_ne!(stored, secret);
    // A key cannot make more keys.
    let r = app
        .post(
            &format!("/v1/merchants/{mid}/api-keys"),
            json!({}),
            Some(&secret),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // Revoked: it stops working at once.
    let revoked = app
        .delete(
            &format!("/v1/merchants/{mid}/api-keys/{key_id}"),
            Some(&owner),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["revoked"], true);
    assert_eq!(
        app.get("/v1/me", Some(&secret)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_key_can_be_created_without_a_body() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Bodyless").await;
    let r = app
        .send(
            app.client
                .post(app.url(&format!("/v1/merchants/{mid}/api-keys")))
                .bearer_auth(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["name"], "API key");
}

#[tokio::test]
async fn an_operator_verifies_a_merchant_and_nobody_else_can() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Verify Me").await;
    o2o_server::identity::service::add_operator(&app.state, "op@o2o.test", "operator-pass")
        .await
        .unwrap();
    let op = app.password_token("op@o2o.test", "operator-pass").await;
    let path = format!("/v1/admin/merchants/{mid}/verification");
    let r = app
        .post(&path, json!({"verified": true}), Some(&owner))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app.post(&path, json!({"verified": true}), Some(&op)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["verified"], true);
    let m = app.get(&format!("/v1/merchants/{mid}"), Some(&owner)).await;
    assert_eq!(m.body["verified"], true);
}
