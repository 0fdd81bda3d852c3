use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn a_consumer_logs_in_with_the_code_from_the_dev_outbox() {
    let app = spawn_app().await;
    let token = app.consumer_token("13800000001", None).await;
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!(me.body["kind"], "consumer");
    assert_eq!(me.body["guest"], false);
    assert_eq!(me.body["phone_last4"], "0001");
    assert!(me.body["id"].as_str().unwrap().starts_with("usr_"));
    // Logging in again with the same phone is the same consumer.
    app.age_codes().await;
    let again = app.consumer_token("+86 138 0000 0001", None).await;
    let me2 = app.get("/v1/me", Some(&again)).await;
    assert_eq!(me2.body["id"], me.body["id"]);
}

#[tokio::test]
async fn a_code_works_once() {
    let app = spawn_app().await;
    app.post("/v1/auth/otp", json!({"phone": "13800000002"}), None)
        .await;
    let code = app.latest_code("13800000002").await;
    let first = app
        .post(
            "/v1/sessions",
            json!({"phone": "13800000002", "code": code}),
            None,
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    let second = app
        .post(
            "/v1/sessions",
            json!({"phone": "13800000002", "code": code}),
            None,
        )
        .await;
    assert_eq!(second.status, StatusCode::UNAUTHORIZED);
    assert_eq!(second.code(), "otp_invalid");
}

#[tokio::test]
async fn five_wrong_codes_burn_the_code() {
    let app = spawn_app().await;
    app.post("/v1/auth/otp", json!({"phone": "13800000003"}), None)
        .await;
    let code = app.latest_code("13800000003").await;
    let wrong = if code == "000000" { "111111" } else { "000000" };
    for _ in 0..5 {
        let r = app
            .post(
                "/v1/sessions",
                json!({"phone": "13800000003", "code": wrong}),
                None,
            )
            .await;
        assert_eq!(r.code(), "otp_invalid");
    }
    let r = app
        .post(
            "/v1/sessions",
            json!({"phone": "13800000003", "code": code}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(r.code(), "otp_attempts_exceeded");
}

#[tokio::test]
async fn an_expired_code_is_refused() {
    let app = spawn_app().await;
    app.post("/v1/auth/otp", json!({"phone": "13800000004"}), None)
        .await;
    let code = app.latest_code("13800000004").await;
    app.state
        .db
        .execute(o2o_server::db::query("UPDATE otp_codes SET expires_at = 0"))
        .await
        .unwrap();
    let r = app
        .post(
            "/v1/sessions",
            json!({"phone": "13800000004", "code": code}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r.code(), "otp_invalid");
}

#[tokio::test]
async fn asking_for_codes_too_often_is_rate_limited_per_phone() {
    let app = spawn_app().await;
    let first = app
        .post("/v1/auth/otp", json!({"phone": "13800000005"}), None)
        .await;
    assert_eq!(first.status, StatusCode::ACCEPTED);
    let second = app
        .post("/v1/auth/otp", json!({"phone": "13800000005"}), None)
        .await;
    assert_eq!(second.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(second.code(), "otp_rate_limited");
    assert!(second.headers.get("retry-after").is_some());
    // Another phone is not affected.
    let other = app
        .post("/v1/auth/otp", json!({"phone": "13800000006"}), None)
        .await;
    assert_eq!(other.status, StatusCode::ACCEPTED);
}

#[tokio::test]
async fn asking_for_codes_for_many_phones_is_rate_limited_per_address() {
    let app = spawn_app().await;
    let mut limited = false;
    for i in 0..40 {
        let r = app
            .post(
                "/v1/auth/otp",
                json!({"phone": format!("1390000{i:04}")}),
                None,
            )
            .await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = true;
            assert!(i >= 30, "limited too early, at {i}");
            break;
        }
    }
    assert!(limited, "40 codes from one address were all sent");
}

#[tokio::test]
async fn a_malformed_phone_is_rejected_and_nothing_is_sent() {
    let app = spawn_app().await;
    for bad in ["12345", "abc", "23800000001", ""] {
        let r = app.post("/v1/auth/otp", json!({"phone": bad}), None).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}");
        assert_eq!(r.code(), "invalid_phone");
        assert_eq!(r.body["error"]["param"], "phone");
    }
    let (n,): (i64,) = app
        .state
        .db
        .fetch_one(o2o_server::db::query("SELECT COUNT(*) FROM sms_outbox"))
        .await
        .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_guest_keeps_their_id_and_visits_when_logging_in_with_a_new_phone() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Guest Cafe").await;
    let store = app
        .store(&mid, &owner, "Guest Cafe One", 31.23, 121.47)
        .await;
    let guest = app.post("/v1/sessions/guest", json!({}), None).await;
    assert_eq!(guest.status, StatusCode::CREATED);
    let guest_token = guest.body["token"].as_str().unwrap().to_owned();
    let guest_id = guest.body["principal"]["id"].as_str().unwrap().to_owned();
    assert_eq!(guest.body["principal"]["guest"], true);
    app.get(&format!("/v1/stores/{store}"), Some(&guest_token))
        .await;

    let token = app.consumer_token("13700000001", Some(&guest_token)).await;
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(
        me.body["id"],
        guest_id.as_str(),
        "the guest became the account"
    );
    assert_eq!(me.body["guest"], false);
    let recent = app.get("/v1/me/recent-stores", Some(&token)).await;
    assert_eq!(recent.body["data"][0]["id"], store.as_str());
    // The guest token was replaced by the account's.
    assert_eq!(
        app.get("/v1/me", Some(&guest_token)).await.status,
        StatusCode::UNAUTHORIZED
    );
}

#[tokio::test]
async fn a_guest_logging_into_an_existing_account_brings_their_visits_along() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Merge Cafe").await;
    let store = app
        .store(&mid, &owner, "Merge Cafe One", 31.23, 121.47)
        .await;
    let existing = app.consumer_token("13700000002", None).await;
    let account_id = app.get("/v1/me", Some(&existing)).await.body["id"].clone();

    let guest_token = app.guest_token().await;
    app.get(&format!("/v1/stores/{store}"), Some(&guest_token))
        .await;
    app.age_codes().await;
    let token = app.consumer_token("13700000002", Some(&guest_token)).await;
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.body["id"], account_id);
    let recent = app.get("/v1/me/recent-stores", Some(&token)).await;
    assert_eq!(recent.body["data"][0]["id"], store.as_str());
}

#[tokio::test]
async fn logging_out_revokes_the_token_at_once() {
    let app = spawn_app().await;
    let token = app.consumer_token("13800000007", None).await;
    assert_eq!(
        app.delete("/v1/sessions/current", Some(&token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me.code(), "invalid_token");
}

#[tokio::test]
async fn a_new_session_is_known_in_memory_from_its_first_request_and_logout_still_ends_it() {
    let app = spawn_app().await;
    let guest = app.guest_token().await;
    let guest_hash = o2o_server::identity::service::sha256_hex(&guest);
    assert!(
        app.state.db.hot().sessions.get(&guest_hash).is_err(),
        "a guest session is read into memory on first use, not kept ahead"
    );
    assert_eq!(app.get("/v1/me", Some(&guest)).await.status, StatusCode::OK);
    let token = app.consumer_token("13800000017", None).await;
    let hash = o2o_server::identity::service::sha256_hex(&token);
    // On PostgreSQL other tests share the notification channel: their logouts clear this node's
    // sessions too, so what is kept is asserted where this app is the only writer.
    let alone = app.state.db.backend() == o2o_server::db::Backend::Sqlite;
    let kept = app.state.db.hot().sessions.get(&hash);
    if alone {
        assert!(kept.is_ok(), "kept when it was created");
    }
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::OK);
    if let Ok((principal, _)) = kept {
        assert_eq!(me.body["id"], principal.id.as_str());
    }
    app.delete("/v1/sessions/current", Some(&token)).await;
    assert!(app.state.db.hot().sessions.get(&hash).is_err());
    let me = app.get("/v1/me", Some(&token)).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn a_wrong_password_and_an_unknown_email_fail_alike() {
    let app = spawn_app().await;
    let (_mid, _token) = app.merchant("Pw Cafe").await;
    let r1 = app
        .post(
            "/v1/sessions",
            json!({"email": "nobody@x.test", "password": "whatever-123"}),
            None,
        )
        .await;
    assert_eq!(r1.status, StatusCode::UNAUTHORIZED);
    assert_eq!(r1.code(), "invalid_credentials");
    let r2 = app
        .post("/v1/sessions", json!({"phone": "13800000001"}), None)
        .await;
    assert_eq!(r2.code(), "missing_credentials");
}

#[tokio::test]
async fn the_dev_outbox_is_hidden_unless_the_server_runs_in_dev_mode() {
    let app = spawn_app_with(|c| c.dev = false).await;
    app.post("/v1/auth/otp", json!({"phone": "13800000008"}), None)
        .await;
    let r = app.get("/v1/dev/outbox?to=13800000008", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn no_token_and_a_bad_token_are_told_apart() {
    let app = spawn_app().await;
    assert_eq!(
        app.get("/v1/me", None).await.code(),
        "authentication_required"
    );
    assert_eq!(
        app.get("/v1/me", Some("st_nope")).await.code(),
        "invalid_token"
    );
}
