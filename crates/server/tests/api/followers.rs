//! Followers, messages and the inbox; the free-WiFi login and its grant check.

use crate::helpers::*;
use o2o_server::db::query;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn follow(app: &TestApp, merchant: &str, token: &str, body: Value) -> Res {
    app.post(
        &format!("/v1/merchants/{merchant}/followers"),
        body,
        Some(token),
    )
    .await
}

async fn send(app: &TestApp, merchant: &str, token: &str, title: &str) -> Res {
    app.post(
        &format!("/v1/merchants/{merchant}/messages"),
        json!({"title": title, "body": "Two for one on lattes today.\nSee you!", "audience": "followers"}),
        Some(token),
    )
    .await
}

/// Polls a message until it is `sent` (delivery runs in the background).
pub(crate) async fn until_sent(app: &TestApp, merchant: &str, token: &str, id: &str) -> Value {
    for _ in 0..200 {
        let r = app
            .get(
                &format!("/v1/merchants/{merchant}/messages/{id}"),
                Some(token),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        if r.body["status"] == "sent" {
            return r.body;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("message {id} was not sent in time");
}

pub(crate) async fn inbox(app: &TestApp, token: &str) -> Value {
    let r = app.get("/v1/me/inbox", Some(token)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn scalar(app: &TestApp, sql: &'static str, arg: &str) -> i64 {
    let (n,): (i64,) = app.state.db.fetch_one(query(sql).bind(arg)).await.unwrap();
    n
}

#[tokio::test]
async fn a_consumer_follows_once_with_the_channel_they_consented_through_and_can_unfollow() {
    let app = spawn_app().await;
    let shop = app.shop("Lotus").await;
    let me = app.consumer_token("+8613900000001", None).await;

    let first = follow(
        &app,
        &shop.merchant,
        &me,
        json!({"channel": "page", "store_id": shop.store}),
    )
    .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(first.body["channel"], "page");
    assert_eq!(first.body["store_id"], shop.store.as_str());
    assert_eq!(first.body["merchant"]["id"], shop.merchant.as_str());
    assert!(first.body["id"].as_str().unwrap().starts_with("fol_"));

    // Following again keeps the first consent.
    let again = follow(&app, &shop.merchant, &me, json!({"channel": "campaign"})).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.body["channel"], "page");

    let mine = app.get("/v1/me/following", Some(&me)).await;
    assert_eq!(mine.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(mine.body["data"][0]["merchant"]["name"], "Lotus");
    assert_eq!(
        mine.body["data"][0]["followed_at"],
        first.body["followed_at"]
    );

    let theirs = app
        .get(
            &format!("/v1/merchants/{}/followers", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(theirs.status, StatusCode::OK, "{}", theirs.body);
    assert_eq!(theirs.body["data"].as_array().unwrap().len(), 1);
    assert_eq!(theirs.body["data"][0]["channel"], "page");
    assert_eq!(theirs.body["has_more"], false);
    let consumer_id = theirs.body["data"][0]["consumer_id"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(consumer_id.starts_with("usr_"));
    assert!(theirs.body["data"][0].get("phone").is_none());

    let count = app
        .get(
            &format!("/v1/merchants/{}/followers/count", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(count.body["followers"], 1);
    assert_eq!(count.body["reachable"], 1);

    let gone = app
        .delete(
            &format!("/v1/merchants/{}/followers/me", shop.merchant),
            Some(&me),
        )
        .await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert_eq!(gone.body["following"], false);
    let mine = app.get("/v1/me/following", Some(&me)).await;
    assert!(mine.body["data"].as_array().unwrap().is_empty());
    let count = app
        .get(
            &format!("/v1/merchants/{}/followers/count", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(count.body["followers"], 0);
    // Unfollowing again is no error and records nothing more.
    let again = app
        .delete(
            &format!("/v1/merchants/{}/followers/me", shop.merchant),
            Some(&me),
        )
        .await;
    assert_eq!(again.status, StatusCode::OK);

    // The consent log keeps both the follow (with its channel) and the withdrawal.
    let log: Vec<(String, String)> = app
        .state
        .db
        .fetch_all(
            query("SELECT action, channel FROM follow_consents WHERE user_id = $1 ORDER BY id")
                .bind(consumer_id.as_str()),
        )
        .await
        .unwrap();
    assert_eq!(
        log,
        vec![
            ("follow".to_owned(), "page".to_owned()),
            ("unfollow".to_owned(), "api".to_owned())
        ]
    );

    // Following with no body consents through the API channel.
    let api = app
        .client
        .post(app.url(&format!("/v1/merchants/{}/followers", shop.merchant)))
        .bearer_auth(&me)
        .send()
        .await
        .unwrap();
    assert_eq!(api.status(), StatusCode::CREATED);
    assert_eq!(api.json::<Value>().await.unwrap()["channel"], "api");
}

#[tokio::test]
async fn paying_a_merchant_does_not_make_a_follower() {
    let app = spawn_app().await;
    let shop = app.shop("Paid").await;
    let me = app.funded_consumer("+8613900000002", 10_000).await;
    let paid = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 2500, "currency": "CNY", "source": "wallet"}),
            Some(&me),
        )
        .await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    let mine = app.get("/v1/me/following", Some(&me)).await;
    assert!(mine.body["data"].as_array().unwrap().is_empty());
    let count = app
        .get(
            &format!("/v1/merchants/{}/followers/count", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(count.body["followers"], 0);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn another_merchants_followers_and_messages_are_not_found() {
    let app = spawn_app().await;
    let a = app.shop("Alpha").await;
    let b = app.shop("Beta").await;
    let me = app.consumer_token("+8613900000003", None).await;
    assert_eq!(
        follow(&app, &a.merchant, &me, json!({})).await.status,
        StatusCode::CREATED
    );
    let sent = send(&app, &a.merchant, &a.owner, "Alpha news").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let msg = sent.body["id"].as_str().unwrap();

    for path in [
        format!("/v1/merchants/{}/followers", a.merchant),
        format!("/v1/merchants/{}/followers/count", a.merchant),
        format!("/v1/merchants/{}/messages", a.merchant),
        format!("/v1/merchants/{}/messages/{msg}", a.merchant),
        format!("/v1/merchants/{}/messages/{msg}", b.merchant),
    ] {
        let r = app.get(&path, Some(&b.owner)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let r = send(&app, &a.merchant, &b.owner, "Not yours").await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            &format!("/v1/stores/{}/wifi-key", a.store),
            json!({}),
            Some(&b.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "store_not_found");
    // Following with a store of another merchant is refused (whether following already or not).
    let r = follow(&app, &a.merchant, &me, json!({"store_id": b.store})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let other = app.consumer_token("+8613900000004", None).await;
    let r = follow(&app, &a.merchant, &other, json!({"store_id": b.store})).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "store_not_found");
    // Consumers cannot see a merchant's followers; merchants cannot follow.
    let r = app
        .get(
            &format!("/v1/merchants/{}/followers", a.merchant),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = follow(&app, &a.merchant, &b.owner, json!({})).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    // A cashier of the merchant cannot send.
    let r = send(&app, &a.merchant, &a.cashier, "From the till").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let list = app
        .get(
            &format!("/v1/merchants/{}/messages", a.merchant),
            Some(&a.owner),
        )
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_message_reaches_exactly_the_followers_who_did_not_mute_and_is_read_once() {
    let app = spawn_app().await;
    let shop = app.shop("Broadcast").await;
    let other = app.shop("Elsewhere").await;
    let fan = app.consumer_token("+8613900000011", None).await;
    let muted = app.consumer_token("+8613900000012", None).await;
    let stranger = app.consumer_token("+8613900000013", None).await;
    let left = app.consumer_token("+8613900000014", None).await;
    let elsewhere = app.consumer_token("+8613900000015", None).await;
    for t in [&fan, &muted, &left] {
        assert_eq!(
            follow(&app, &shop.merchant, t, json!({})).await.status,
            StatusCode::CREATED
        );
    }
    assert_eq!(
        follow(&app, &other.merchant, &elsewhere, json!({}))
            .await
            .status,
        StatusCode::CREATED
    );
    let r = app
        .post(
            &format!("/v1/merchants/{}/mute", shop.merchant),
            json!({}),
            Some(&muted),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["muted"], true);
    app.delete(
        &format!("/v1/merchants/{}/followers/me", shop.merchant),
        Some(&left),
    )
    .await;
    // A consumer muting a merchant they do not follow changes nothing for the others.
    let r = app
        .post(
            &format!("/v1/merchants/{}/mute", shop.merchant),
            json!({}),
            Some(&stranger),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);

    let sent = send(&app, &shop.merchant, &shop.owner, "Latte day").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    assert!(sent.body["id"].as_str().unwrap().starts_with("msg_"));
    assert!(["queued", "sending", "sent"].contains(&sent.body["status"].as_str().unwrap()));
    let done = until_sent(
        &app,
        &shop.merchant,
        &shop.owner,
        sent.body["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(done["recipients"], 1, "{done}");
    assert_eq!(done["delivered"], 1, "{done}");
    assert!(done["sent_at"].is_string());

    let got = inbox(&app, &fan).await;
    assert_eq!(got["unread_count"], 1, "{got}");
    assert_eq!(got["data"].as_array().unwrap().len(), 1);
    let item = &got["data"][0];
    assert_eq!(item["title"], "Latte day");
    assert_eq!(item["body"], "Two for one on lattes today.\nSee you!");
    assert_eq!(item["merchant"]["name"], "Broadcast");
    assert_eq!(item["read"], false);
    for t in [&muted, &stranger, &left, &elsewhere] {
        let other_inbox = inbox(&app, t).await;
        assert!(
            other_inbox["data"].as_array().unwrap().is_empty(),
            "{other_inbox}"
        );
        assert_eq!(other_inbox["unread_count"], 0);
    }

    // Reading: once, and the first time is kept.
    let id = item["id"].as_str().unwrap();
    let read = app
        .post(&format!("/v1/me/inbox/{id}/read"), json!({}), Some(&fan))
        .await;
    assert_eq!(read.status, StatusCode::OK, "{}", read.body);
    assert_eq!(read.body["read"], true);
    let again = app
        .post(&format!("/v1/me/inbox/{id}/read"), json!({}), Some(&fan))
        .await;
    assert_eq!(again.body["read_at"], read.body["read_at"]);
    assert_eq!(inbox(&app, &fan).await["unread_count"], 0);
    // Someone else's item is not found.
    let theirs = app
        .post(&format!("/v1/me/inbox/{id}/read"), json!({}), Some(&muted))
        .await;
    assert_eq!(theirs.status, StatusCode::NOT_FOUND);
    assert_eq!(theirs.code(), "inbox_item_not_found");

    // Unmuted, the next message arrives; newest first.
    app.delete(
        &format!("/v1/merchants/{}/mute", shop.merchant),
        Some(&muted),
    )
    .await;
    let second = send(&app, &shop.merchant, &shop.owner, "Cake day").await;
    let done = until_sent(
        &app,
        &shop.merchant,
        &shop.owner,
        second.body["id"].as_str().unwrap(),
    )
    .await;
    assert_eq!(done["delivered"], 2);
    let got = inbox(&app, &fan).await;
    assert_eq!(got["data"][0]["title"], "Cake day");
    assert_eq!(got["data"][1]["title"], "Latte day");
    assert_eq!(got["unread_count"], 1);
    let page = app.get("/v1/me/inbox?limit=1", Some(&fan)).await;
    assert_eq!(page.body["has_more"], true);
    let next_id = page.body["data"][0]["id"].as_str().unwrap();
    let next = app
        .get(
            &format!("/v1/me/inbox?limit=1&starting_after={next_id}"),
            Some(&fan),
        )
        .await;
    assert_eq!(next.body["data"][0]["title"], "Latte day");
    assert_eq!(next.body["has_more"], false);
    assert_eq!(inbox(&app, &muted).await["data"][0]["title"], "Cake day");

    // Each message left its events in the outbox.
    assert_eq!(
        scalar(&app, "SELECT CAST(COUNT(*) AS BIGINT) FROM events WHERE merchant_id = $1 AND type LIKE 'message.%'", &shop.merchant).await,
        4
    );
}

/// Inserts `n` consumers who follow the merchant (ids in follow order), in one transaction.
async fn many_followers(app: &TestApp, merchant: &str, n: usize) -> Vec<String> {
    let now = o2o_server::db::now_us();
    let mut tx = app.state.db.begin().await.unwrap();
    let mut follower_ids = Vec::with_capacity(n);
    for _ in 0..n {
        let user = o2o_server::ids::UserId::generate();
        let fol = o2o_server::ids::FollowerId::generate();
        tx.execute(
            query("INSERT INTO users (id, phone, guest, merged_into, created_at, updated_at) VALUES ($1, NULL, $2, NULL, $3, $3)")
                .bind(user.as_str())
                .bind(false)
                .bind(now),
        )
        .await
        .unwrap();
        tx.execute(
            query("INSERT INTO followers (id, merchant_id, user_id, channel, store_id, consented_at) VALUES ($1, $2, $3, 'campaign', NULL, $4)")
                .bind(fol.as_str())
                .bind(merchant)
                .bind(user.as_str())
                .bind(now),
        )
        .await
        .unwrap();
        follower_ids.push(fol.to_string());
    }
    tx.commit().await.unwrap();
    follower_ids
}

#[tokio::test]
async fn a_large_audience_is_delivered_in_chunks_exactly_once() {
    let app = spawn_app().await;
    let shop = app.shop("Crowd").await;
    let n = 2_345;
    many_followers(&app, &shop.merchant, n).await;
    let sent = send(&app, &shop.merchant, &shop.owner, "To everyone").await;
    assert_eq!(sent.status, StatusCode::ACCEPTED, "{}", sent.body);
    let id = sent.body["id"].as_str().unwrap();
    let done = until_sent(&app, &shop.merchant, &shop.owner, id).await;
    assert_eq!(done["recipients"], n as i64);
    assert_eq!(done["delivered"], n as i64);
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM inbox_items WHERE message_id = $1",
            id
        )
        .await,
        n as i64
    );
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(COUNT(DISTINCT user_id) AS BIGINT) FROM inbox_items WHERE message_id = $1",
            id
        )
        .await,
        n as i64
    );
}

#[tokio::test]
async fn an_interrupted_delivery_resumes_after_its_last_committed_chunk() {
    let app = spawn_app().await;
    let shop = app.shop("Resume").await;
    let followers = many_followers(&app, &shop.merchant, 1_500).await;
    // A message as a crash would leave it: sending, the first 1,000 followers' chunk committed.
    // (Their inbox rows are left out here, so what the resumed delivery writes shows where it
    // started.)
    let now = o2o_server::db::now_us();
    let id = o2o_server::ids::MessageId::generate();
    app.state
        .db
        .execute(
            query(
                "INSERT INTO messages (id, merchant_id, title, body, audience, coupon_template_id, status, recipients, \
                 delivered, audience_at, delivered_through, created_by, created_at, updated_at, sent_at) \
                 VALUES ($1, $2, 'Resumed', 'Body', 'followers', NULL, 'sending', 1500, 1000, $3, $4, 'stf_test', $3, $3, NULL)",
            )
            .bind(id.as_str())
            .bind(shop.merchant.as_str())
            .bind(now)
            .bind(followers[999].as_str()),
        )
        .await
        .unwrap();
    let done = until_sent(&app, &shop.merchant, &shop.owner, id.as_str()).await;
    assert_eq!(done["delivered"], 1_500);
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM inbox_items WHERE message_id = $1",
            id.as_str()
        )
        .await,
        500
    );
}

#[tokio::test]
async fn a_merchant_over_its_hourly_message_limit_is_told_when_to_retry() {
    let app = spawn_app_with(|c| c.messages_per_hour = 2).await;
    let shop = app.shop("Chatty").await;
    for title in ["One", "Two"] {
        let r = send(&app, &shop.merchant, &shop.owner, title).await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    }
    let r = send(&app, &shop.merchant, &shop.owner, "Three").await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS, "{}", r.body);
    assert_eq!(r.code(), "rate_limited");
    assert_eq!(r.body["error"]["type"], "rate_limited");
    let wait: u64 = r.headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((3_500..=3_600).contains(&wait), "{wait}");
    // The console's form is refused the same way, with the same hint of when to try again.
    let page = app
        .client
        .post(app.url("/console/messages"))
        .header("cookie", page_cookies(&shop.owner))
        .header("accept-language", "en")
        .form(&[
            ("csrf", PAGE_CSRF),
            ("key", "form-over-limit"),
            ("title", "Four"),
            ("body", "x"),
            ("audience", "followers"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::TOO_MANY_REQUESTS);
    let wait: u64 = page.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((3_500..=3_600).contains(&wait), "{wait}");
    let list = app
        .get(
            &format!("/v1/merchants/{}/messages", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 2);
    // Another merchant has its own allowance.
    let other = app.shop("Quiet").await;
    assert_eq!(
        send(&app, &other.merchant, &other.owner, "Hi").await.status,
        StatusCode::ACCEPTED
    );
}

#[tokio::test]
async fn bad_messages_and_follows_are_refused_and_store_nothing() {
    let app = spawn_app().await;
    let shop = app.shop("Strict").await;
    let me = app.consumer_token("+8613900000021", None).await;
    let path = format!("/v1/merchants/{}/messages", shop.merchant);
    for (body, status, code) in [
        (
            json!({"title": "", "body": "x", "audience": "followers"}),
            400,
            "invalid_value",
        ),
        (
            json!({"title": "t".repeat(65), "body": "x", "audience": "followers"}),
            400,
            "invalid_value",
        ),
        (
            json!({"title": "t", "body": "b".repeat(2001), "audience": "followers"}),
            400,
            "invalid_value",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "everyone"}),
            400,
            "invalid_audience",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "tier:"}),
            400,
            "invalid_audience",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "followers", "coupon_template_id": "cpt_x"}),
            404,
            "template_not_found",
        ),
        (
            json!({"title": "t", "body": "x", "audience": "followers", "extra": 1}),
            400,
            "unknown_field",
        ),
        (
            json!({"title": 5, "body": "x", "audience": "followers"}),
            400,
            "invalid_type",
        ),
        (
            json!({"body": "x", "audience": "followers"}),
            400,
            "missing_field",
        ),
    ] {
        let r = app.post(&path, body.clone(), Some(&shop.owner)).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert_eq!(r.code(), code, "{body}");
    }
    let bad_json = app
        .send(
            app.client
                .post(app.url(&path))
                .bearer_auth(&shop.owner)
                .header("content-type", "application/json")
                .body("{\"title\":"),
        )
        .await;
    assert_eq!(bad_json.status, StatusCode::BAD_REQUEST);
    assert_eq!(bad_json.code(), "invalid_json");
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM messages WHERE merchant_id = $1",
            &shop.merchant
        )
        .await,
        0
    );

    for (merchant, body, status, code) in [
        ("mch_nope", json!({}), 404, "merchant_not_found"),
        (
            "mch_01jq3v7h0000000000000000ab",
            json!({}),
            404,
            "merchant_not_found",
        ),
        (
            shop.merchant.as_str(),
            json!({"channel": "sms"}),
            400,
            "invalid_enum_value",
        ),
        (
            shop.merchant.as_str(),
            json!({"store_id": "sto_nope"}),
            404,
            "store_not_found",
        ),
        (
            shop.merchant.as_str(),
            json!({"why": "x"}),
            400,
            "unknown_field",
        ),
    ] {
        let r = follow(&app, merchant, &me, body.clone()).await;
        assert_eq!(r.status.as_u16(), status, "{merchant} {body}: {}", r.body);
        assert_eq!(r.code(), code, "{body}");
    }
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM followers WHERE merchant_id = $1",
            &shop.merchant
        )
        .await,
        0
    );

    for (path, code) in [
        ("/v1/me/inbox?limit=0", "limit_out_of_range"),
        ("/v1/me/inbox?starting_after=x%20y", "invalid_cursor"),
        ("/v1/me/following?limit=101", "limit_out_of_range"),
    ] {
        let r = app.get(path, Some(&me)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}");
        assert_eq!(r.code(), code);
    }
    let r = app
        .post("/v1/me/inbox/inb_nope/read", json!({}), Some(&me))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(
            &format!("/v1/merchants/{}/messages/msg_nope", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "message_not_found");
    let r = app
        .post(
            &format!("/v1/merchants/{}/mute", "mch_nope"),
            json!({}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Without a login: 401.
    assert_eq!(
        app.get("/v1/me/inbox", None).await.status,
        StatusCode::UNAUTHORIZED
    );
}

/// A store's wifi code (its short id) and a new WiFi key for the store.
async fn wifi_store(app: &TestApp, shop: &Shop, body: Value) -> (String, String) {
    let code = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "wifi", "store_id": shop.store}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
    let short = code.body["url"]
        .as_str()
        .unwrap()
        .rsplit('/')
        .next()
        .unwrap()
        .to_owned();
    let key = app
        .post(
            &format!("/v1/stores/{}/wifi-key", shop.store),
            body,
            Some(&shop.owner),
        )
        .await;
    assert_eq!(key.status, StatusCode::CREATED, "{}", key.body);
    let secret = key.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("wk_"));
    (short, secret)
}

async fn verify(app: &TestApp, key: &str, body: Value) -> Res {
    app.post("/v1/wifi/grants/verify", body, Some(key)).await
}

#[tokio::test]
async fn a_wifi_login_grants_the_device_until_it_expires_and_follows_only_when_ticked() {
    let app = spawn_app().await;
    let shop = app.shop("Wifi Cafe").await;
    let (short, key) = wifi_store(&app, &shop, json!({})).await;
    let mac = "AA-BB-CC-00-11-22";

    // The router sends the client to the code's URL with its parameters: the login page.
    let landing = app
        .client
        .get(app.url(&format!(
            "/q/{short}?gw=Cafe-GW&mac={mac}&ip=192.168.8.23&tok=router-tok-1&redir=http%3A%2F%2Fexample.com%2F"
        )))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(landing.status(), StatusCode::OK);
    let html = landing.text().await.unwrap();
    assert!(html.contains("data-test=\"wifi-login\""), "{html}");
    assert!(html.contains("Free WiFi"));
    assert!(html.contains("data-test=\"wifi-phone-form\""));

    // Unknown before the login.
    let before = verify(&app, &key, json!({"mac": mac})).await;
    assert_eq!(before.status, StatusCode::OK, "{}", before.body);
    assert_eq!(before.body["allowed"], false);

    // Log in through the page (phone, then code), leaving "follow" unticked.
    let guest = {
        let r = app
            .client
            .get(app.url(&format!("/q/{short}")))
            .send()
            .await
            .unwrap();
        let cookie = r
            .headers()
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .find(|c| c.starts_with("o2o_session="))
            .expect("a guest session");
        cookie["o2o_session=".len()..cookie.find(';').unwrap()].to_owned()
    };
    let router = "gw=Cafe-GW&mac=aa%3Abb%3Acc%3A00%3A11%3A22&ip=192.168.8.23&tok=router-tok-1";
    let (status, _, html) = post_page(
        &app,
        &format!("/wifi/{short}/code"),
        &guest,
        &[
            ("csrf", PAGE_CSRF),
            ("router", router),
            ("phone", "13900000031"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-step=\"code\""), "{html}");
    let code = app.latest_code("+8613900000031").await;
    let (status, _, html) = post_page(
        &app,
        &format!("/wifi/{short}/login"),
        &guest,
        &[
            ("csrf", PAGE_CSRF),
            ("router", router),
            ("phone", "+8613900000031"),
            ("code", &code),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-test=\"wifi-online\""), "{html}");

    let allowed = verify(
        &app,
        &key,
        json!({"mac": "aa:bb:cc:00:11:22", "tok": "router-tok-1"}),
    )
    .await;
    assert_eq!(allowed.status, StatusCode::OK, "{}", allowed.body);
    assert_eq!(allowed.body["allowed"], true);
    assert_eq!(allowed.body["store_id"], shop.store.as_str());
    assert!(
        allowed.body["consumer_id"]
            .as_str()
            .unwrap()
            .starts_with("usr_")
    );
    let expires: jiff::Timestamp = allowed.body["expires_at"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let minutes = (expires - jiff::Timestamp::now())
        .total(jiff::Unit::Minute)
        .unwrap();
    assert!((235.0..=240.0).contains(&minutes), "{minutes} minutes");
    // The same device by its MAC alone is allowed; a different token or device is not.
    assert_eq!(
        verify(&app, &key, json!({"mac": "AABBCC001122"}))
            .await
            .body["allowed"],
        true
    );
    assert_eq!(
        verify(&app, &key, json!({"mac": mac, "tok": "other"}))
            .await
            .body["allowed"],
        false
    );
    assert_eq!(
        verify(&app, &key, json!({"mac": "aa:bb:cc:00:11:23"}))
            .await
            .body["allowed"],
        false
    );

    // Unticked means not following.
    let count = app
        .get(
            &format!("/v1/merchants/{}/followers/count", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(count.body["followers"], 0);

    // Another store's key knows nothing of this device.
    let other = app.shop("Other Cafe").await;
    let (_, other_key) = wifi_store(&app, &other, json!({})).await;
    assert_eq!(
        verify(&app, &other_key, json!({"mac": mac})).await.body["allowed"],
        false
    );

    // Expired: no longer allowed.
    app.state
        .db
        .execute(query("UPDATE wifi_grants SET expires_at = $1").bind(o2o_server::db::now_us() - 1))
        .await
        .unwrap();
    let expired = verify(&app, &key, json!({"mac": mac})).await;
    assert_eq!(expired.body["allowed"], false);
    assert!(expired.body["expires_at"].is_null());
}

#[tokio::test]
async fn a_logged_in_consumer_who_ticks_follow_is_sent_back_to_the_router_and_follows() {
    let app = spawn_app().await;
    let shop = app.shop("Router Cafe").await;
    let (short, key) = wifi_store(
        &app,
        &shop,
        json!({"auth_url": "http://192.168.8.1:2050/opennds_auth/"}),
    )
    .await;
    let me = app.consumer_token("+8613900000041", None).await;
    let page = app
        .client
        .get(app.url(&format!("/q/{short}?mac=aabbccddeeff&tok=t0k")))
        .header("cookie", page_cookies(&me))
        .send()
        .await
        .unwrap();
    let html = page.text().await.unwrap();
    assert!(html.contains("data-step=\"connect\""), "{html}");
    assert!(html.contains("name=\"follow\" value=\"1\""));
    assert!(!html.contains("checked"), "the follow box starts unticked");

    let (status, location, _) = post_page(
        &app,
        &format!("/wifi/{short}/connect"),
        &me,
        &[
            ("csrf", PAGE_CSRF),
            (
                "router",
                "mac=aabbccddeeff&tok=t0k&redir=http%3A%2F%2Fexample.com%2F",
            ),
            ("follow", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        location,
        "http://192.168.8.1:2050/opennds_auth/?tok=t0k&redir=http%3A%2F%2Fexample.com%2F"
    );
    let v = verify(
        &app,
        &key,
        json!({"mac": "aa:bb:cc:dd:ee:ff", "tok": "t0k"}),
    )
    .await;
    assert_eq!(v.body["allowed"], true);
    let mine = app.get("/v1/me/following", Some(&me)).await;
    assert_eq!(mine.body["data"][0]["channel"], "wifi");
    assert_eq!(mine.body["data"][0]["store_id"], shop.store.as_str());

    // Without router parameters the page just says the consumer is online.
    let (status, _, html) = post_page(
        &app,
        &format!("/wifi/{short}/connect"),
        &me,
        &[("csrf", PAGE_CSRF), ("router", "")],
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"wifi-online\""));
}

#[tokio::test]
async fn wifi_keys_are_shown_once_rotate_and_bad_router_input_is_refused() {
    let app = spawn_app().await;
    let shop = app.shop("Key Cafe").await;
    let (short, first) = wifi_store(&app, &shop, json!({})).await;
    let shown = app
        .get(
            &format!("/v1/stores/{}/wifi-key", shop.store),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(shown.status, StatusCode::OK);
    assert!(shown.body.get("secret").is_none());
    assert!(
        shown.body["redacted"]
            .as_str()
            .unwrap()
            .ends_with(&first[first.len() - 4..])
    );

    // Rotating: the old key stops working, the new one works.
    let rotated = app
        .post(
            &format!("/v1/stores/{}/wifi-key", shop.store),
            json!({}),
            Some(&shop.owner),
        )
        .await;
    let second = rotated.body["secret"].as_str().unwrap();
    assert_ne!(second, first);
    let old = verify(&app, &first, json!({"mac": "aa:bb:cc:dd:ee:ff"})).await;
    assert_eq!(old.status, StatusCode::UNAUTHORIZED);
    assert_eq!(old.code(), "invalid_wifi_key");
    assert_eq!(
        verify(&app, second, json!({"mac": "aa:bb:cc:dd:ee:ff"}))
            .await
            .status,
        StatusCode::OK
    );

    for (auth, body, status, code) in [
        (
            None,
            json!({"mac": "aa:bb:cc:dd:ee:ff"}),
            401,
            "invalid_wifi_key",
        ),
        (
            Some(shop.owner.as_str()),
            json!({"mac": "aa:bb:cc:dd:ee:ff"}),
            401,
            "invalid_wifi_key",
        ),
        (
            Some("wk_forged"),
            json!({"mac": "aa:bb:cc:dd:ee:ff"}),
            401,
            "invalid_wifi_key",
        ),
        (
            Some(second),
            json!({"mac": "not-a-mac"}),
            400,
            "invalid_mac",
        ),
        (
            Some(second),
            json!({"mac": "aa:bb:cc:dd:ee:ff", "tok": ""}),
            400,
            "invalid_router_parameter",
        ),
        (Some(second), json!({"mac": 5}), 400, "invalid_type"),
        (Some(second), json!({"tok": "x"}), 400, "missing_field"),
    ] {
        let r = app.post("/v1/wifi/grants/verify", body.clone(), auth).await;
        assert_eq!(r.status.as_u16(), status, "{body}: {}", r.body);
        assert_eq!(r.code(), code, "{body}");
    }
    // The router's login address is checked as a webhook endpoint's is: port 0 and a tab
    // inside are refused too.
    for auth_url in [
        "ftp://x",
        "http://192.168.8.1:0/opennds_auth/",
        "http://192.168.8.1:2050/opennds\t_auth/",
    ] {
        let r = app
            .post(
                &format!("/v1/stores/{}/wifi-key", shop.store),
                json!({ "auth_url": auth_url }),
                Some(&shop.owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{auth_url}: {}", r.body);
        assert_eq!(r.code(), "invalid_url");
    }
    let r = app
        .post(
            &format!("/v1/stores/{}/wifi-key", shop.store),
            json!({}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    // A router's bad parameters get a 4xx page, and no grant.
    for q in [
        "mac=zz",
        "tok=abc",
        "mac=aabbccddeeff&ip=999.1.1.1",
        "mac=aabbccddeeff&redir=javascript%3Aalert(1)",
    ] {
        let r = app
            .client
            .get(app.url(&format!("/q/{short}?{q}")))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::BAD_REQUEST, "{q}");
    }
    let me = app.consumer_token("+8613900000051", None).await;
    let (status, _, _) = post_page(
        &app,
        &format!("/wifi/{short}/connect"),
        &me,
        &[("csrf", PAGE_CSRF), ("router", "mac=nope")],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _, _) = post_page(
        &app,
        &format!("/wifi/{short}/connect"),
        &me,
        &[
            ("csrf", "wrong-token-wrong-token"),
            ("router", "mac=aabbccddeeff"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    // A code of another kind is not a WiFi login.
    let (status, _, _) = post_page(
        &app,
        &format!("/wifi/{}/connect", shop.qr.rsplit('/').next().unwrap()),
        &me,
        &[("csrf", PAGE_CSRF), ("router", "")],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(
        scalar(
            &app,
            "SELECT CAST(COUNT(*) AS BIGINT) FROM wifi_grants WHERE store_id = $1",
            &shop.store
        )
        .await,
        0
    );
}

#[tokio::test]
async fn the_inbox_and_console_pages_show_messages_and_progress() {
    let app = spawn_app().await;
    let shop = app.shop("Page Cafe").await;
    let me = app.consumer_token("+8613900000061", None).await;
    // The store page's follow button follows through the page channel.
    let (status, location, _) = post_page(
        &app,
        &format!("/stores/{}/follow", shop.store),
        &me,
        &[("csrf", PAGE_CSRF), ("action", "follow")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/stores/{}", shop.store));
    let store_page = app
        .client
        .get(app.url(&format!("/stores/{}", shop.store)))
        .header("cookie", page_cookies(&me))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        store_page.contains("data-test=\"unfollow-button\""),
        "{store_page}"
    );

    let (status, location, _) = post_page(
        &app,
        "/console/messages",
        &shop.owner,
        &[
            ("csrf", PAGE_CSRF),
            ("key", "form-1"),
            ("title", "Page news"),
            ("body", "Hello <b>friends</b>"),
            ("audience", "followers"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/console/messages");
    // The same form sent twice sends once.
    post_page(
        &app,
        "/console/messages",
        &shop.owner,
        &[
            ("csrf", PAGE_CSRF),
            ("key", "form-1"),
            ("title", "Page news"),
            ("body", "Hello <b>friends</b>"),
            ("audience", "followers"),
        ],
    )
    .await;
    let list = app
        .get(
            &format!("/v1/merchants/{}/messages", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    until_sent(
        &app,
        &shop.merchant,
        &shop.owner,
        list.body["data"][0]["id"].as_str().unwrap(),
    )
    .await;
    let console = app
        .client
        .get(app.url("/console/messages"))
        .header("cookie", page_cookies(&shop.owner))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        console.contains("data-test=\"follower-count\">1<"),
        "{console}"
    );
    assert!(console.contains("data-status=\"sent\""));

    let page = app
        .client
        .get(app.url("/me/inbox"))
        .header("cookie", page_cookies(&me))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("data-test=\"unread-count\">1<"), "{page}");
    assert!(page.contains("Page news"));
    assert!(
        page.contains("Hello &#60;b&#62;friends&#60;/b&#62;"),
        "escaped: {page}"
    );
    assert!(!page.contains("<b>friends"));

    // A bad message from the console is shown there, as typed, and nothing is sent.
    let (status, _, html) = post_page(
        &app,
        "/console/messages",
        &shop.owner,
        &[
            ("csrf", PAGE_CSRF),
            ("key", "form-2"),
            ("title", ""),
            ("body", "x"),
            ("audience", "members"),
        ],
    )
    .await;
    assert!(status.is_client_error(), "{status}: {html}");
    assert!(html.contains("data-test=\"error\""), "{html}");
    assert!(html.contains(">x</textarea>"), "{html}");
    let list = app
        .get(
            &format!("/v1/merchants/{}/messages", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn the_openapi_document_describes_the_followers_and_wifi_operations() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json", None).await;
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/merchants/{id}/followers", "post"),
        ("/v1/merchants/{id}/followers", "get"),
        ("/v1/merchants/{id}/followers/count", "get"),
        ("/v1/merchants/{id}/followers/me", "delete"),
        ("/v1/me/following", "get"),
        ("/v1/merchants/{id}/mute", "post"),
        ("/v1/merchants/{id}/mute", "delete"),
        ("/v1/merchants/{id}/messages", "post"),
        ("/v1/merchants/{id}/messages", "get"),
        ("/v1/merchants/{id}/messages/{msg_id}", "get"),
        ("/v1/me/inbox", "get"),
        ("/v1/me/inbox/{id}/read", "post"),
        ("/v1/stores/{id}/wifi-key", "post"),
        ("/v1/stores/{id}/wifi-key", "get"),
        ("/v1/wifi/grants/verify", "post"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
}
