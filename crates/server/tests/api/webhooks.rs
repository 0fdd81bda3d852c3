//! Webhooks: each test runs a small receiver on 127.0.0.1, registers it as an endpoint, makes
//! payments, and checks what arrived and what the platform recorded.

use crate::helpers::*;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One request the receiver got.
#[derive(Clone, Debug)]
struct Received {
    id: String,
    timestamp: String,
    signature: String,
    body: String,
}

impl Received {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// A webhook receiver answering the scripted statuses in turn (the last one repeats).
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

async fn receiver(script: &[u16]) -> Receiver {
    receiver_taking(script, Duration::ZERO).await
}

/// [`receiver`] taking `delay` to answer each request (after noting it).
async fn receiver_taking(script: &[u16], delay: Duration) -> Receiver {
    let got = Arc::new(Mutex::new(Vec::new()));
    let script = Arc::new(Mutex::new(script.iter().copied().collect::<VecDeque<_>>()));
    let (log, answers) = (got.clone(), script.clone());
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let (log, answers) = (log.clone(), answers.clone());
            async move {
                let header = |name: &str| {
                    headers
                        .get(name)
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or("")
                        .to_owned()
                };
                log.lock().unwrap().push(Received {
                    id: header("webhook-id"),
                    timestamp: header("webhook-timestamp"),
                    signature: header("webhook-signature"),
                    body,
                });
                let status = {
                    let mut answers = answers.lock().unwrap();
                    if answers.len() > 1 {
                        answers.pop_front().unwrap()
                    } else {
                        answers.front().copied().unwrap_or(200)
                    }
                };
                tokio::time::sleep(delay).await;
                axum::http::StatusCode::from_u16(status).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Receiver {
        url: format!("http://{addr}/hook"),
        got,
    }
}

impl Receiver {
    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// Waits (at most 15 s) until `n` requests have arrived.
    async fn wait_for(&self, n: usize) -> Vec<Received> {
        for _ in 0..150 {
            let got = self.received();
            if got.len() >= n {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "expected {n} webhook requests, got {}",
            self.received().len()
        );
    }
}

/// Checks a request's Standard Webhooks signature independently of the server's code.
fn assert_signed(secret: &str, r: &Received) {
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("a whsec_ secret"))
        .expect("a base64 secret");
    assert!(key.len() >= 24, "the secret holds {} bytes", key.len());
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).unwrap();
    mac.update(format!("{}.{}.{}", r.id, r.timestamp, r.body).as_bytes());
    let expected = format!(
        "v1,{}",
        base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
    );
    assert!(
        r.signature.split(' ').any(|s| s == expected),
        "signature {} does not verify (expected {expected})",
        r.signature
    );
    let ts: i64 = r.timestamp.parse().expect("a numeric timestamp");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    assert!((now - ts).abs() < 120, "timestamp {ts} is not now ({now})");
}

async fn register(app: &TestApp, token: &str, url: &str, events: Value) -> Value {
    let r = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": url, "events": events}),
            Some(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn pay(app: &TestApp, consumer: &str, shop: &Shop, amount: i64) -> Value {
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": amount, "currency": "CNY"}),
            Some(consumer),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn deliveries(app: &TestApp, token: &str, endpoint: &str) -> Vec<Value> {
    let r = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint}/deliveries"),
            Some(token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

/// Waits (at most 15 s) until the endpoint's newest delivery has `status`; returns it.
async fn wait_for_delivery(app: &TestApp, token: &str, endpoint: &str, status: &str) -> Value {
    for _ in 0..150 {
        if let Some(d) = deliveries(app, token, endpoint).await.first()
            && d["status"] == status
        {
            return d.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no {status} delivery: {:?}",
        deliveries(app, token, endpoint).await
    );
}

#[tokio::test]
async fn a_payment_reaches_the_endpoint_once_signed_per_standard_webhooks() {
    let app = spawn_app().await;
    let shop = app.shop("Hook Cafe").await;
    let hook = receiver(&[200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["payment.succeeded"])).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{secret}");
    assert!(endpoint["id"].as_str().unwrap().starts_with("whe_"));
    assert_eq!(endpoint["status"], "enabled");
    assert_eq!(endpoint["events"], json!(["payment.succeeded"]));
    assert_eq!(endpoint["url"], hook.url);

    let listed = app.get("/v1/webhook-endpoints", Some(&shop.owner)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["data"][0]["id"], endpoint["id"]);
    assert!(listed.body["data"][0].get("secret").is_none());

    let me = app.funded_consumer("13700000101", 10_000).await;
    let payment = pay(&app, &me, &shop, 2500).await;
    let got = hook.wait_for(1).await;
    let message = &got[0];
    assert_signed(&secret, message);
    let body = message.json();
    assert_eq!(body["type"], "payment.succeeded");
    assert_eq!(body["id"], message.id.as_str());
    assert!(message.id.starts_with("evt_"));
    assert_eq!(body["data"]["id"], payment["id"]);
    assert_eq!(body["data"]["amount"], 2500);
    assert!(body["created_at"].as_str().unwrap().ends_with('Z'));

    if let Ok(path) = std::env::var("O2O_WEBHOOK_CAPTURE")
        && !path.is_empty()
    {
        let capture = json!({
            "secret": secret,
            "headers": {
                "webhook-id": message.id,
                "webhook-timestamp": message.timestamp,
                "webhook-signature": message.signature,
            },
            "body": message.body,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&capture).unwrap()).unwrap();
    }

    let endpoint_id = endpoint["id"].as_str().unwrap();
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "succeeded").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status"], 200);
    assert_eq!(d["event_id"], message.id.as_str());
    assert_eq!(d["event_type"], "payment.succeeded");
    assert!(d["next_attempt_at"].is_null());
    // Later rounds of the dispatcher send nothing more.
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(hook.received().len(), 1);
    assert_eq!(deliveries(&app, &shop.owner, endpoint_id).await.len(), 1);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_refused_delivery_is_retried_on_the_schedule_until_it_succeeds() {
    let app = spawn_app_with(|c| c.webhook_retry_delays_ms = vec![300, 300]).await;
    let shop = app.shop("Retry Cafe").await;
    let hook = receiver(&[500, 200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["*"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let secret = endpoint["secret"].as_str().unwrap();
    let me = app.funded_consumer("13700000102", 10_000).await;
    pay(&app, &me, &shop, 2500).await;

    let got = hook.wait_for(2).await;
    assert_eq!(got[0].id, got[1].id, "a retry carries the same webhook-id");
    assert_eq!(got[0].body, got[1].body);
    for r in &got {
        assert_signed(secret, r);
    }
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "succeeded").await;
    assert_eq!(d["attempts"], 2);
    let one = app
        .get(
            &format!("/v1/webhook-deliveries/{}", d["id"].as_str().unwrap()),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(one.status, StatusCode::OK, "{}", one.body);
    let log = one.body["attempt_log"].as_array().unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0]["attempt"], 1);
    assert_eq!(log[0]["status"], 500);
    assert_eq!(log[0]["error"], "answered HTTP 500");
    assert_eq!(log[1]["status"], 200);
    assert!(log[1]["error"].is_null());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hook.received().len(), 2);
}

#[tokio::test]
async fn a_delivery_that_keeps_failing_ends_failed_after_the_last_retry() {
    let app = spawn_app_with(|c| c.webhook_retry_delays_ms = vec![100, 100]).await;
    let shop = app.shop("Broken Cafe").await;
    let hook = receiver(&[503]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["*"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let me = app.funded_consumer("13700000103", 10_000).await;
    pay(&app, &me, &shop, 2500).await;
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "failed").await;
    assert_eq!(d["attempts"], 3, "the first attempt and two retries");
    assert_eq!(d["last_status"], 503);
    assert!(d["next_attempt_at"].is_null());
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hook.received().len(), 3);
    // The endpoint itself stays enabled: only 410 disables it.
    let e = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(e.body["status"], "enabled");
}

#[tokio::test]
async fn retries_wait_for_their_time_on_the_dispatchers_clock() {
    // The default schedule: the first retry is due 5 s after the first failure.
    let app = spawn_app().await;
    let shop = app.shop("Clock Cafe").await;
    let hook = receiver(&[500, 200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["*"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let me = app.funded_consumer("13700000104", 10_000).await;
    pay(&app, &me, &shop, 2500).await;
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "pending").await;
    let d = if d["attempts"] == 0 {
        hook.wait_for(1).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        deliveries(&app, &shop.owner, endpoint_id).await[0].clone()
    } else {
        d
    };
    assert_eq!(d["attempts"], 1, "{d}");
    assert_eq!(d["last_status"], 500);
    assert!(d["next_attempt_at"].is_string());
    // Not due yet: a round now sends nothing.
    let now = o2o_server::db::now_us();
    let sent = o2o_server::events::webhooks::dispatch_once(&app.state, now)
        .await
        .unwrap();
    assert_eq!(sent, 0);
    assert_eq!(hook.received().len(), 1);
    // Six seconds later it is.
    let sent = o2o_server::events::webhooks::dispatch_once(&app.state, now + 6_000_000)
        .await
        .unwrap();
    assert_eq!(sent, 1);
    assert_eq!(hook.received().len(), 2);
    let d = deliveries(&app, &shop.owner, endpoint_id).await[0].clone();
    assert_eq!(d["status"], "succeeded");
    assert_eq!(d["attempts"], 2);
}

#[tokio::test]
async fn an_endpoint_answering_410_is_disabled_and_gets_nothing_more() {
    let app = spawn_app().await;
    let shop = app.shop("Gone Cafe").await;
    let hook = receiver(&[410]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["payment.succeeded"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let me = app.funded_consumer("13700000105", 10_000).await;
    pay(&app, &me, &shop, 2500).await;
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "failed").await;
    assert_eq!(d["attempts"], 1);
    assert_eq!(d["last_status"], 410);
    let e = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(e.body["status"], "disabled");

    pay(&app, &me, &shop, 1000).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(hook.received().len(), 1);
    assert_eq!(deliveries(&app, &shop.owner, endpoint_id).await.len(), 1);
    // A disabled endpoint cannot be replayed to.
    let r = app
        .post(
            &format!(
                "/v1/webhook-deliveries/{}/replay",
                d["id"].as_str().unwrap()
            ),
            json!({}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "webhook_endpoint_disabled");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_replay_sends_the_same_message_again_as_a_new_attempt() {
    let app = spawn_app().await;
    let shop = app.shop("Replay Cafe").await;
    let hook = receiver(&[200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["*"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let secret = endpoint["secret"].as_str().unwrap();
    let me = app.funded_consumer("13700000106", 10_000).await;
    pay(&app, &me, &shop, 2500).await;
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "succeeded").await;
    let delivery_id = d["id"].as_str().unwrap();
    assert!(delivery_id.starts_with("whd_"));

    let r = app
        .post(
            &format!("/v1/webhook-deliveries/{delivery_id}/replay"),
            json!({}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(r.body["attempts"], 2);
    assert_eq!(r.body["attempt_log"].as_array().unwrap().len(), 2);
    let got = hook.wait_for(2).await;
    assert_eq!(got.len(), 2);
    assert_eq!(got[0].id, got[1].id);
    assert_eq!(got[0].body, got[1].body);
    assert_signed(secret, &got[1]);
}

#[tokio::test]
async fn bad_endpoints_are_refused_with_a_code_and_create_nothing() {
    let app = spawn_app().await;
    let shop = app.shop("Strict Cafe").await;
    let long = format!("https://example.com/{}", "a".repeat(2048));
    for (body, code, param) in [
        (
            json!({"url": "example.com/hook", "events": ["*"]}),
            "url_invalid",
            "url",
        ),
        (
            json!({"url": "ftp://example.com/hook", "events": ["*"]}),
            "url_invalid",
            "url",
        ),
        (json!({"url": long, "events": ["*"]}), "url_too_long", "url"),
        (
            json!({"url": "https://example.com/hook", "events": []}),
            "events_empty",
            "events",
        ),
        (
            json!({"url": "https://example.com/hook", "events": ["payment.succeeded", "order.eaten"]}),
            "event_type_unknown",
            "events[1]",
        ),
    ] {
        let r = app
            .post("/v1/webhook-endpoints", body.clone(), Some(&shop.owner))
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{body}: {}", r.body);
        assert_eq!(r.code(), code, "{body}");
        assert_eq!(r.body["error"]["param"], param, "{body}");
    }
    for body in [
        json!({"url": "https://example.com/hook"}),
        json!({"url": "https://example.com/hook", "events": "*"}),
        json!({"url": "https://example.com/hook", "events": ["*"], "secret": "mine"}),
    ] {
        let r = app
            .post("/v1/webhook-endpoints", body.clone(), Some(&shop.owner))
            .await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
    }
    let r = app
        .post(
            "/v1/webhook-endpoints",
            json!({"url": "https://example.com/hook", "events": ["*"]}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(app.count("webhook_endpoints").await, 0);
}

#[tokio::test]
async fn an_idempotent_retry_creates_one_endpoint_and_does_not_repeat_the_secret() {
    let app = spawn_app().await;
    let shop = app.shop("Once Cafe").await;
    let body = json!({"url": "https://example.com/hook", "events": ["*"]});
    let first = app
        .post_idem(
            "/v1/webhook-endpoints",
            body.clone(),
            Some(&shop.owner),
            "k1",
        )
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert!(first.body["secret"].is_string());
    let again = app
        .post_idem("/v1/webhook-endpoints", body, Some(&shop.owner), "k1")
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body["id"], first.body["id"]);
    assert!(again.body.get("secret").is_none());
    assert_eq!(app.count("webhook_endpoints").await, 1);
}

#[tokio::test]
async fn other_merchants_cannot_see_or_touch_an_endpoint() {
    let app = spawn_app().await;
    let shop = app.shop("Mine Cafe").await;
    let other = app.shop("Other Cafe").await;
    let hook = receiver(&[200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["*"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let me = app.funded_consumer("13700000107", 10_000).await;
    pay(&app, &me, &shop, 2500).await;
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "succeeded").await;
    let delivery_id = d["id"].as_str().unwrap();

    // The other merchant's payments do not reach this endpoint.
    pay(&app, &me, &other, 700).await;

    let listed = app.get("/v1/webhook-endpoints", Some(&other.owner)).await;
    assert_eq!(listed.status, StatusCode::OK);
    assert_eq!(listed.body["data"], json!([]));
    for path in [
        format!("/v1/webhook-endpoints/{endpoint_id}"),
        format!("/v1/webhook-endpoints/{endpoint_id}/deliveries"),
        format!("/v1/webhook-deliveries/{delivery_id}"),
    ] {
        let r = app.get(&path, Some(&other.owner)).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}: {}", r.body);
    }
    let r = app
        .post(
            &format!("/v1/webhook-deliveries/{delivery_id}/replay"),
            json!({}),
            Some(&other.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    let r = app
        .delete(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&other.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(hook.received().len(), 1);

    // Its owner deletes it; then it is gone for everyone.
    let r = app
        .delete(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let listed = app.get("/v1/webhook-endpoints", Some(&shop.owner)).await;
    assert_eq!(listed.body["data"], json!([]));
    pay(&app, &me, &shop, 300).await;
    tokio::time::sleep(Duration::from_millis(2_000)).await;
    assert_eq!(hook.received().len(), 1);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn two_nodes_on_one_database_send_each_event_once() {
    // Several nodes share one database only on PostgreSQL (SQLite has one writer process).
    if backend() != "postgres" {
        eprintln!("two nodes need PostgreSQL; this test checks one node on SQLite");
    }
    let app = spawn_app().await;
    let second = if backend() == "postgres" {
        Some(
            o2o_server::AppState::open(app.state.config.clone())
                .await
                .expect("a second node"),
        )
    } else {
        None
    };
    let shop = app.shop("Busy Cafe").await;
    let hook = receiver(&[200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["*"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    let me = app.funded_consumer("13700000108", 100_000).await;
    for amount in [100, 200, 300, 400, 500, 600] {
        pay(&app, &me, &shop, amount).await;
    }
    // Both nodes race for the same due deliveries, besides their background dispatchers.
    let now = o2o_server::db::now_us();
    let first = o2o_server::events::webhooks::dispatch_once(&app.state, now);
    match &second {
        Some(node) => {
            let other = o2o_server::events::webhooks::dispatch_once(node, now);
            let (a, b) = tokio::join!(first, other);
            a.unwrap();
            b.unwrap();
        }
        None => {
            first.await.unwrap();
        }
    }
    let got = hook.wait_for(6).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got_later = hook.received();
    assert_eq!(
        got_later.len(),
        6,
        "{} requests for 6 events",
        got_later.len()
    );
    let mut ids: Vec<&str> = got.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 6);
    let all = deliveries(&app, &shop.owner, endpoint_id).await;
    assert_eq!(all.len(), 6);
    assert!(
        all.iter()
            .all(|d| d["status"] == "succeeded" && d["attempts"] == 1)
    );
    app.assert_ledger_verifies().await;
}

/// Points an endpoint somewhere else behind the API's back, as a name's DNS record changing
/// after registration would.
async fn repoint(app: &TestApp, endpoint_id: &str, url: &str) {
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE webhook_endpoints SET url = $1 WHERE id = $2")
                .bind(url)
                .bind(endpoint_id),
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn endpoints_into_private_networks_are_refused_and_create_nothing() {
    let app = spawn_app_with(|c| c.webhooks_allow_private = false).await;
    let shop = app.shop("Fenced Cafe").await;
    for url in [
        "http://127.0.0.1:9000/hook",
        "http://localhost:9000/hook",
        "http://10.0.0.7/hook",
        "http://172.20.1.1/hook",
        "http://192.168.1.10/hook",
        "http://169.254.169.254/latest/meta-data",
        "http://100.64.0.1/hook",
        "http://0.0.0.0/hook",
        "http://224.0.0.1/hook",
        "http://[::1]/hook",
        "http://[fd00::1]/hook",
        "http://[fe80::1]/hook",
        "http://[::ffff:127.0.0.1]/hook",
        "http://0x7f000001/hook",
        "http://2130706433/hook",
    ] {
        let r = app
            .post(
                "/v1/webhook-endpoints",
                json!({"url": url, "events": ["*"]}),
                Some(&shop.owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{url}: {}", r.body);
        assert_eq!(r.code(), "webhook_url_not_allowed", "{url}");
        assert_eq!(r.body["error"]["param"], "url", "{url}");
    }
    assert_eq!(app.count("webhook_endpoints").await, 0);
    // A public address is fine (registering sends nothing).
    let created = register(
        &app,
        &shop.owner,
        "https://93.184.215.14/hook",
        json!(["*"]),
    )
    .await;
    assert_eq!(created["status"], "enabled");
    assert_eq!(app.count("webhook_endpoints").await, 1);
}

#[tokio::test]
async fn a_delivery_is_not_sent_when_the_endpoint_now_leads_into_a_private_network() {
    let app = spawn_app_with(|c| {
        c.webhooks_allow_private = false;
        c.webhook_retry_delays_ms = vec![60_000];
    })
    .await;
    let shop = app.shop("Rebound Cafe").await;
    let hook = receiver(&[200]).await;
    let endpoint = register(
        &app,
        &shop.owner,
        "https://93.184.215.14/hook",
        json!(["payment.succeeded"]),
    )
    .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    // Since registration the endpoint's name resolves to this machine.
    let port = hook
        .url
        .split(':')
        .nth(2)
        .unwrap()
        .split('/')
        .next()
        .unwrap();
    repoint(&app, endpoint_id, &format!("http://localhost:{port}/hook")).await;
    let me = app.funded_consumer("13700000120", 10_000).await;
    pay(&app, &me, &shop, 2500).await;
    let d = wait_for_attempts(&app, &shop.owner, endpoint_id, 1).await;
    assert_eq!(d["status"], "pending", "retried on the schedule: {d}");
    assert!(d["last_status"].is_null(), "{d}");
    let error = d["last_error"].as_str().unwrap();
    assert!(
        error.starts_with("not sent: localhost resolves to"),
        "{error}"
    );

    // An address written into the URL is checked as well (it never reaches the resolver).
    repoint(&app, endpoint_id, &hook.url).await;
    let r = app
        .post(
            &format!(
                "/v1/webhook-deliveries/{}/replay",
                d["id"].as_str().unwrap()
            ),
            json!({}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["attempts"], 2);
    assert!(
        r.body["last_error"]
            .as_str()
            .unwrap()
            .starts_with("not sent: 127.0.0.1 is a private"),
        "{}",
        r.body
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(hook.received().is_empty(), "nothing reached the receiver");
    app.assert_ledger_verifies().await;
}

/// Waits (at most 15 s) until the endpoint's newest delivery has `n` attempts; returns it.
async fn wait_for_attempts(app: &TestApp, token: &str, endpoint: &str, n: i64) -> Value {
    for _ in 0..150 {
        if let Some(d) = deliveries(app, token, endpoint).await.first()
            && d["attempts"].as_i64() >= Some(n)
        {
            return d.clone();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "no delivery with {n} attempts: {:?}",
        deliveries(app, token, endpoint).await
    );
}

#[tokio::test]
async fn a_disabled_endpoint_shows_why_and_when_and_can_be_enabled_again() {
    let app = spawn_app().await;
    let shop = app.shop("Revived Cafe").await;
    // Gone at first; fixed afterwards.
    let hook = receiver(&[410, 200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["payment.succeeded"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    assert!(endpoint["disabled_at"].is_null() && endpoint["disabled_reason"].is_null());
    let me = app.funded_consumer("13700000121", 10_000).await;
    pay(&app, &me, &shop, 2500).await;
    let first = wait_for_delivery(&app, &shop.owner, endpoint_id, "failed").await;
    let e = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(e.body["status"], "disabled");
    assert_eq!(e.body["disabled_reason"], "gone");
    let disabled_at = e.body["disabled_at"].as_str().unwrap();
    assert!(disabled_at.ends_with('Z') && disabled_at >= first["created_at"].as_str().unwrap());
    let listed = app.get("/v1/webhook-endpoints", Some(&shop.owner)).await;
    assert_eq!(listed.body["data"][0]["disabled_reason"], "gone");

    // Only the merchant's managers may enable it.
    let enable = format!("/v1/webhook-endpoints/{endpoint_id}/enable");
    let r = app.post(&enable, json!({}), Some(&shop.cashier)).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let other = app.shop("Other Cafe").await;
    let r = app.post(&enable, json!({}), Some(&other.owner)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.code(), "webhook_endpoint_not_found");
    let r = app
        .post(
            "/v1/webhook-endpoints/whe_nosuchendpoint/enable",
            json!({}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);

    let r = app.post(&enable, json!({}), Some(&shop.owner)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "enabled");
    assert!(r.body["disabled_at"].is_null() && r.body["disabled_reason"].is_null());
    assert!(r.body.get("secret").is_none(), "{}", r.body);
    // Enabling an enabled endpoint changes nothing.
    let again = app.post(&enable, json!({}), Some(&shop.owner)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body, r.body);

    // The failed delivery can be replayed now, and new events arrive again.
    let r = app
        .post(
            &format!(
                "/v1/webhook-deliveries/{}/replay",
                first["id"].as_str().unwrap()
            ),
            json!({}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    pay(&app, &me, &shop, 1000).await;
    let got = hook.wait_for(3).await;
    assert_eq!(got[0].id, got[1].id, "the replay repeats the first event");
    assert_eq!(got[2].json()["data"]["amount"], 1000);
    let newest = wait_for_delivery(&app, &shop.owner, endpoint_id, "succeeded").await;
    assert_ne!(newest["id"], first["id"]);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn an_endpoint_now_leading_into_a_private_network_is_not_enabled_again() {
    let app = spawn_app_with(|c| c.webhooks_allow_private = false).await;
    let shop = app.shop("Moved Cafe").await;
    let endpoint = register(
        &app,
        &shop.owner,
        "https://93.184.215.14/hook",
        json!(["*"]),
    )
    .await;
    let endpoint_id = endpoint["id"].as_str().unwrap();
    app.state
        .db
        .execute(
            o2o_server::db::query(
                "UPDATE webhook_endpoints SET status = 'disabled', disabled_at = 1, disabled_reason = 'gone', \
                 url = 'http://10.0.0.7/hook' WHERE id = $1",
            )
            .bind(endpoint_id),
        )
        .await
        .unwrap();
    let r = app
        .post(
            &format!("/v1/webhook-endpoints/{endpoint_id}/enable"),
            json!({}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "webhook_url_not_allowed");
    let e = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(e.body["status"], "disabled");
}

/// How many outbox events of `kind` were written.
async fn events_of(app: &TestApp, kind: &str) -> i64 {
    let (n,): (i64,) = app
        .state
        .db
        .fetch_one(o2o_server::db::query("SELECT COUNT(*) FROM events WHERE type = $1").bind(kind))
        .await
        .unwrap();
    n
}

#[tokio::test]
async fn a_points_exchange_reaches_an_endpoint_subscribed_to_it_and_a_refused_one_writes_nothing() {
    let app = spawn_app().await;
    let shop = app.shop("Points Hook Cafe").await;
    // A program giving 2 points per yuan, without tiers (so no tier event comes in between).
    let r = app
        .client
        .put(app.url(&format!("/v1/member-programs/{}", shop.merchant)))
        .bearer_auth(&shop.owner)
        .json(&json!({"top_up_bonuses": [], "points_per_yuan": 2, "tiers": []}));
    let r = app.send(r).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let hook = receiver(&[200]).await;
    let endpoint = register(
        &app,
        &shop.owner,
        &hook.url,
        json!(["member.points_exchanged", "member.tier_changed"]),
    )
    .await;
    assert_eq!(
        endpoint["events"],
        json!(["member.points_exchanged", "member.tier_changed"])
    );
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let endpoint_id = endpoint["id"].as_str().unwrap();

    let me = app.funded_consumer("13700000401", 20_000).await;
    let r = app
        .post(
            "/v1/me/cards",
            json!({"merchant_id": shop.merchant}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let card = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/me/cards/{card}/top-ups"),
            json!({"amount": 10_000, "currency": "CNY"}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 6_000, "currency": "CNY", "source": card}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let template = |name: &str, price: i64| {
        json!({"merchant_id": shop.merchant, "name": name, "kind": "amount_off",
            "amount_off": 500, "currency": "CNY", "total_stock": 10, "points_price": price})
    };
    let r = app
        .post(
            "/v1/coupon-templates",
            template("积分换5元", 100),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let cheap = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            "/v1/coupon-templates",
            template("积分换大礼", 1_000),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let dear = r.body["id"].as_str().unwrap().to_owned();

    // A refused exchange (120 points, 1,000 asked) writes no event and sends nothing.
    let r = app
        .post(
            &format!("/v1/me/cards/{card}/exchanges"),
            json!({"coupon_template_id": dear}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "points_insufficient");
    assert_eq!(events_of(&app, "member.points_exchanged").await, 0);

    let r = app
        .post(
            &format!("/v1/me/cards/{card}/exchanges"),
            json!({"coupon_template_id": cheap}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let coupon = r.body["coupon"]["id"].as_str().unwrap().to_owned();
    assert_eq!(events_of(&app, "member.points_exchanged").await, 1);

    let got = hook.wait_for(1).await;
    assert_signed(&secret, &got[0]);
    let body = got[0].json();
    assert_eq!(body["type"], "member.points_exchanged", "{body}");
    let consumer = app.get("/v1/me", Some(&me)).await.body["id"].clone();
    assert_eq!(
        body["data"],
        json!({"card_id": card, "consumer_id": consumer, "coupon_id": coupon,
            "coupon_template_id": cheap, "points": 100}),
    );
    let d = wait_for_delivery(&app, &shop.owner, endpoint_id, "succeeded").await;
    assert_eq!(d["event_type"], "member.points_exchanged");
    // Only the exchange was delivered: the refused one and the payment sent nothing.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hook.received().len(), 1);
    assert_eq!(deliveries(&app, &shop.owner, endpoint_id).await.len(), 1);
    app.assert_ledger_verifies().await;
}

/// The `data-<name>` values of the elements a page marks with `data-test="<test>"`, in order.
fn marked(html: &str, test: &str, name: &str) -> Vec<String> {
    html.split(&format!("data-test=\"{test}\""))
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>')?];
            let value = tag.split(&format!("data-{name}=\"")).nth(1)?;
            Some(value[..value.find('"')?].to_owned())
        })
        .collect()
}

#[tokio::test]
async fn the_console_registers_lists_replays_and_deletes_endpoints() {
    let app = spawn_app().await;
    let shop = app.shop("Console Hooks").await;
    let hook = receiver(&[200]).await;
    let (status, html) = get_page(&app, "/console/webhooks", &shop.owner).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-test=\"webhooks-none\""), "{html}");

    // Bad input: the form comes back with a clear refusal, and nothing is registered.
    for (url, event) in [
        ("not a url", "payment.succeeded"),
        ("ftp://example.com/", "payment.succeeded"),
        (hook.url.as_str(), "payment.teleported"),
    ] {
        let (status, _, html) = post_page(
            &app,
            "/console/webhooks",
            &shop.owner,
            &[
                ("csrf", PAGE_CSRF),
                ("key", "bad-form"),
                ("url", url),
                ("events", event),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{url}: {html}");
        assert!(html.contains("data-test=\"error\""), "{html}");
        assert!(
            html.contains(&format!("value=\"{url}\"")),
            "the URL is kept: {html}"
        );
    }
    // A cashier cannot register one.
    let (status, _, html) = post_page(
        &app,
        "/console/webhooks",
        &shop.cashier,
        &[("csrf", PAGE_CSRF), ("url", &hook.url)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{html}");
    let (_, html) = get_page(&app, "/console/webhooks", &shop.cashier).await;
    assert!(
        html.contains("data-test=\"webhooks-managers-only\""),
        "{html}"
    );
    assert_eq!(app.count("webhook_endpoints").await, 0);

    // Registered once however often the form is sent; the secret is shown once, after the
    // redirect, and it signs what the endpoint receives.
    let form = [
        ("csrf", PAGE_CSRF),
        ("key", "register-1"),
        ("url", hook.url.as_str()),
        ("events", "payment.succeeded"),
        ("events", "payment.refunded"),
    ];
    let flash_of = |r: &reqwest::Response| {
        r.headers()
            .get_all("set-cookie")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .find_map(|c| c.strip_prefix("o2o_new_webhook_secret="))
            .map(|c| c.split(';').next().unwrap().to_owned())
            .filter(|c| !c.is_empty())
    };
    let send = || {
        app.client
            .post(app.url("/console/webhooks"))
            .header("cookie", page_cookies(&shop.owner))
            .form(&form)
            .send()
    };
    let r = send().await.unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], "/console/webhooks");
    // The flash cookie names the merchant it belongs to, then the secret.
    let flash = flash_of(&r).expect("the secret travels to the next page");
    let (merchant, secret) = flash.split_once('.').unwrap();
    assert_eq!(merchant, shop.merchant);
    assert!(secret.starts_with("whsec_"), "{flash}");
    let secret = secret.to_owned();
    let again = send().await.unwrap();
    assert_eq!(again.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        flash_of(&again),
        None,
        "a repeated form shows no new secret"
    );
    assert_eq!(app.count("webhook_endpoints").await, 1);
    let listed = app.get("/v1/webhook-endpoints", Some(&shop.owner)).await;
    let endpoint = &listed.body["data"][0];
    assert_eq!(endpoint["url"], hook.url);
    assert_eq!(
        endpoint["events"],
        json!(["payment.succeeded", "payment.refunded"])
    );
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let with_flash = |session: &str| {
        app.client
            .get(app.url("/console/webhooks"))
            .header(
                "cookie",
                format!("{}; o2o_new_webhook_secret={flash}", page_cookies(session)),
            )
            .send()
    };
    let r = with_flash(&shop.owner).await.unwrap();
    assert_eq!(
        flash_of(&r),
        None,
        "the page that shows the secret clears its cookie"
    );
    assert!(r.headers().get_all("set-cookie").iter().any(|v| {
        v.to_str().unwrap().starts_with("o2o_new_webhook_secret=;")
            && v.to_str().unwrap().contains("Max-Age=0")
    }));
    let shown = r.text().await.unwrap();
    assert!(shown.contains(&secret), "{shown}");
    // Not to a cashier of the merchant, nor to another merchant's staff on the same browser.
    let other = app.shop("Other Hooks").await;
    for session in [&shop.cashier, &other.owner] {
        let html = with_flash(session).await.unwrap().text().await.unwrap();
        assert!(!html.contains(&secret), "{html}");
    }
    // A second endpoint with no event chosen gets every event.
    let (status, _, _) = post_page(
        &app,
        "/console/webhooks",
        &shop.owner,
        &[
            ("csrf", PAGE_CSRF),
            ("key", "register-2"),
            ("url", &hook.url),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, html) = get_page(&app, "/console/webhooks", &shop.owner).await;
    assert!(
        !html.contains(&secret),
        "the secret is not kept anywhere else"
    );
    let endpoints = marked(&html, "webhook-endpoint", "endpoint");
    assert_eq!(endpoints.len(), 2, "{html}");
    let all = endpoints
        .iter()
        .find(|e| **e != endpoint_id)
        .unwrap()
        .clone();
    let r = app
        .get(&format!("/v1/webhook-endpoints/{all}"), Some(&shop.owner))
        .await;
    assert_eq!(r.body["events"], json!(["*"]));
    // Deleted from the page, it is gone.
    let (status, location, _) = post_page(
        &app,
        &format!("/console/webhooks/{all}/delete"),
        &shop.owner,
        &[("csrf", PAGE_CSRF)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/webhooks")
    );
    let r = app
        .get(&format!("/v1/webhook-endpoints/{all}"), Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    // A payment's delivery shows on the page with its attempts, and sending it again adds one.
    let me = app.funded_consumer("13700000191", 10_000).await;
    pay(&app, &me, &shop, 1800).await;
    let d = wait_for_delivery(&app, &shop.owner, &endpoint_id, "succeeded").await;
    let delivery_id = d["id"].as_str().unwrap();
    let (_, html) = get_page(&app, "/console/webhooks", &shop.owner).await;
    assert_eq!(
        marked(&html, "webhook-endpoint", "endpoint"),
        vec![endpoint_id.clone()]
    );
    assert_eq!(
        marked(&html, "webhook-delivery", "status"),
        vec!["succeeded".to_owned()]
    );
    let (status, location, _) = post_page(
        &app,
        &format!("/console/webhook-deliveries/{delivery_id}/replay"),
        &shop.owner,
        &[("csrf", PAGE_CSRF)],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/webhooks")
    );
    let got = hook.wait_for(2).await;
    assert_eq!(got[0].body, got[1].body);
    assert_signed(&secret, &got[1]);
    let r = app
        .get(
            &format!("/v1/webhook-deliveries/{delivery_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.body["attempts"], 2);

    // Another merchant's delivery cannot be sent again from this console, and a form without
    // its CSRF token changes nothing.
    let (status, _, html) = post_page(
        &app,
        &format!("/console/webhook-deliveries/{delivery_id}/replay"),
        &other.owner,
        &[("csrf", PAGE_CSRF)],
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    assert!(html.contains("data-test=\"error\""), "{html}");
    let (status, _, _) = post_page(
        &app,
        &format!("/console/webhooks/{endpoint_id}/delete"),
        &shop.cashier,
        &[("csrf", PAGE_CSRF)],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_page(
        &app,
        &format!("/console/webhooks/{endpoint_id}/delete"),
        &shop.owner,
        &[("csrf", "forged")],
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert_eq!(hook.received().len(), 2);
    let r = app
        .get(
            &format!("/v1/webhook-endpoints/{endpoint_id}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn events_written_outside_the_sequencer_are_fanned_out_too_and_none_is_left() {
    let app = spawn_app().await;
    let shop = app.shop("Queue Cafe").await;
    let hook = receiver(&[200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["message.created"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    // A merchant's message is written by its own transaction, not by the payments sequencer:
    // the outbox queues it all the same.
    let r = app
        .post(
            &format!("/v1/merchants/{}/messages", shop.merchant),
            json!({"title": "Autumn menu", "body": "Chestnut latte is back.", "audience": "followers"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let got = hook.wait_for(1).await;
    let body = got[0].json();
    assert_eq!(body["type"], "message.created");
    assert_eq!(body["data"]["id"], r.body["id"]);
    assert_eq!(body["data"]["title"], "Autumn menu");
    // A payment's events are written by the sequencer's batch. On PostgreSQL they are queued
    // for the fan-out, and none is left once fanned out.
    let me = app.funded_consumer("13700000177", 10_000).await;
    pay(&app, &me, &shop, 1800).await;
    if backend() == "postgres" {
        let mut left = app.count("events_to_fan_out").await;
        for _ in 0..100 {
            if left == 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
            left = app.count("events_to_fan_out").await;
        }
        assert_eq!(left, 0, "every event left the fan-out queue");
    }
    assert!(events_of(&app, "payment.succeeded").await >= 1);
    // The endpoint subscribed to messages only: one delivery, however many events.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hook.received().len(), 1);
    assert_eq!(deliveries(&app, &shop.owner, &endpoint_id).await.len(), 1);
    app.assert_ledger_verifies().await;
}

/// Waits (at most 15 s) until the endpoint has `n` deliveries, every one succeeded.
async fn wait_for_succeeded(app: &TestApp, token: &str, endpoint: &str, n: usize) {
    for _ in 0..150 {
        let all = deliveries(app, token, endpoint).await;
        if all.len() == n && all.iter().all(|d| d["status"] == "succeeded") {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!(
        "expected {n} succeeded deliveries: {:?}",
        deliveries(app, token, endpoint).await
    );
}

/// SQLite: as if the fan-out had never stored how far it got, so that a node started on `db`
/// reads every event again from the first. (PostgreSQL's fan-out keeps no cursor.)
async fn forget_fan_out_cursor(db: &o2o_server::db::Db) {
    if backend() == "sqlite" {
        db.execute(o2o_server::db::query(
            "UPDATE fan_out_cursor SET event_seq = 0",
        ))
        .await
        .unwrap();
    }
}

#[tokio::test]
async fn a_restarted_node_fans_out_what_it_had_not_and_sends_nothing_twice() {
    let app = spawn_app().await;
    let shop = app.shop("Restart Cafe").await;
    let hook = receiver(&[200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["payment.succeeded"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let me = app.funded_consumer("13700000178", 10_000).await;
    pay(&app, &me, &shop, 100).await;
    pay(&app, &me, &shop, 200).await;
    wait_for_succeeded(&app, &shop.owner, &endpoint_id, 2).await;
    let stopped = app.stop_keeping_data().await;
    // While the node is down: an event committed that it never saw (as one committed just
    // before a crash would be) and, on SQLite, a cursor that never got stored, so that every
    // event is read again from the start.
    let db = stopped.db().await;
    let offline = format!("evt_{}", o2o_server::ids::new_body());
    db.execute(
        o2o_server::db::query(
            "INSERT INTO events (id, merchant_id, type, data, created_at) VALUES ($1, $2, 'payment.succeeded', '{}', $3)",
        )
        .bind(offline.as_str())
        .bind(shop.merchant.as_str())
        .bind(o2o_server::db::now_us()),
    )
    .await
    .unwrap();
    forget_fan_out_cursor(&db).await;
    db.close().await;
    let app = stopped.start().await;
    let paid = pay(&app, &me, &shop, 300).await;
    let got = hook.wait_for(4).await;
    assert!(
        got[2..].iter().any(|r| r.id == offline),
        "the waiting event was sent"
    );
    assert!(
        got[2..]
            .iter()
            .any(|r| r.json()["data"]["id"] == paid["id"])
    );
    wait_for_succeeded(&app, &shop.owner, &endpoint_id, 4).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(hook.received().len(), 4, "each event was sent once");
    let all = deliveries(&app, &shop.owner, &endpoint_id).await;
    assert!(all.iter().all(|d| d["attempts"] == 1), "{all:?}");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_delivery_being_sent_at_shutdown_records_its_outcome_and_is_not_sent_again() {
    let app = spawn_app().await;
    let shop = app.shop("Shutdown Cafe").await;
    let hook = receiver_taking(&[200], Duration::from_secs(3)).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["payment.succeeded"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let me = app.funded_consumer("13700000180", 10_000).await;
    pay(&app, &me, &shop, 100).await;
    // The endpoint has the request and takes 3 s to answer: the node stops meanwhile.
    hook.wait_for(1).await;
    let stopped = app.stop_keeping_data().await;
    let db = stopped.db().await;
    let (status, attempts, last): (String, i64, Option<i64>) = db
        .fetch_one(
            o2o_server::db::query(
                "SELECT status, attempts, last_status FROM webhook_deliveries WHERE endpoint_id = $1",
            )
            .bind(endpoint_id.as_str()),
        )
        .await
        .unwrap();
    assert_eq!(
        (status.as_str(), attempts, last),
        ("succeeded", 1, Some(200))
    );
    db.close().await;
    // Started again, the node has nothing left to send, even once any claim has lapsed.
    let app = stopped.start().await;
    let later = o2o_server::db::now_us() + 61_000_000;
    let sent = o2o_server::events::webhooks::dispatch_once(&app.state, later)
        .await
        .unwrap();
    assert_eq!(sent, 0);
    assert_eq!(hook.received().len(), 1, "sent once");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn an_endpoint_enabled_again_never_gets_what_happened_while_it_was_disabled() {
    let app = spawn_app().await;
    let shop = app.shop("Gone Cafe").await;
    let hook = receiver(&[410, 200]).await;
    let endpoint = register(&app, &shop.owner, &hook.url, json!(["payment.succeeded"])).await;
    let endpoint_id = endpoint["id"].as_str().unwrap().to_owned();
    let me = app.funded_consumer("13700000179", 10_000).await;
    pay(&app, &me, &shop, 100).await;
    hook.wait_for(1).await;
    // The 410 is recorded, and the endpoint disabled, in one transaction.
    wait_for_delivery(&app, &shop.owner, &endpoint_id, "failed").await;
    let path = format!("/v1/webhook-endpoints/{endpoint_id}");
    assert_eq!(
        app.get(&path, Some(&shop.owner)).await.body["status"],
        "disabled"
    );
    let while_disabled = pay(&app, &me, &shop, 200).await;
    // Long enough for the fan-out to have read it while the endpoint was disabled.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    let r = app
        .post(&format!("{path}/enable"), json!({}), Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let after = pay(&app, &me, &shop, 300).await;
    hook.wait_for(2).await;
    // After a restart the fan-out may read the events again (on SQLite from the start, as if
    // its cursor had never been stored): still nothing from while it was disabled.
    let stopped = app.stop_keeping_data().await;
    let db = stopped.db().await;
    forget_fan_out_cursor(&db).await;
    db.close().await;
    let app = stopped.start().await;
    let last = pay(&app, &me, &shop, 400).await;
    let got = hook.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    let got_later = hook.received();
    assert_eq!(got_later.len(), 3, "the 410, then two payments");
    let sent: Vec<Value> = got.iter().map(|r| r.json()["data"]["id"].clone()).collect();
    assert_eq!(sent[1], after["id"]);
    assert_eq!(sent[2], last["id"]);
    assert!(!sent.contains(&while_disabled["id"]));
    app.assert_ledger_verifies().await;
}

/// What an event is about: the order itself, or the order a payment was for.
fn order_of(body: &Value) -> String {
    let data = &body["data"];
    match body["type"].as_str().unwrap() {
        t if t.starts_with("payment.") => data["order_id"].as_str().unwrap().to_owned(),
        _ => data["id"].as_str().unwrap().to_owned(),
    }
}

/// A table order of `cakes` cakes, sent to the kitchen and paid from the wallet in one request.
async fn placed_and_paid(app: &TestApp, c: &crate::orders::Cafe, token: &str, cakes: i64) -> Res {
    app.post(
        "/v1/orders",
        json!({"channel": "dine_in", "qr": c.table_qr, "place": true, "payment": {"source": "wallet"},
               "items": [{"product_id": c.cake, "quantity": cakes}]}),
        Some(token),
    )
    .await
}

#[tokio::test]
async fn order_events_reach_a_subscribed_endpoint_signed_and_in_the_order_they_happened() {
    let app = spawn_app().await;
    let c = crate::orders::cafe(&app, "Order Hook Cafe").await;
    let hook = receiver(&[200]).await;
    let events = [
        "order.placed",
        "order.paid",
        "order.ready",
        "order.completed",
        "order.canceled",
        "order.refunded",
        "payment.succeeded",
        "payment.refunded",
    ];
    let endpoint = register(&app, &c.shop.owner, &hook.url, json!(events)).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let ann = app.funded_consumer("+8613800000701", 20_000).await;

    // A guest at a table sends a cake to the kitchen and pays for it in one request, and the
    // kitchen takes it through to completed.
    let r = placed_and_paid(&app, &c, &ann, 1).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "placed");
    assert_eq!(
        r.body["payment_status"], "paid",
        "the answer is the order as paid"
    );
    let table_order = r.body["id"].as_str().unwrap().to_owned();
    for s in ["accept", "start", "ready", "complete"] {
        let r = crate::orders::step(&app, &c.shop.cashier, &table_order, s).await;
        assert_eq!(r.status, StatusCode::OK, "{s}: {}", r.body);
    }
    // The owner gives back part of it afterwards.
    let r = app
        .post(
            &format!("/v1/orders/{table_order}/refund"),
            json!({"amount": 1000, "reason": "cold"}),
            Some(&c.shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A pickup order, paid when ordering, that the shop cancels: its payment is refunded.
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pickup = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{pickup}/cancel"),
            json!({"reason": "out of cake"}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // A pickup order paid afterwards: its payment places it.
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "pending_payment");
    let later = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/v1/orders/{later}/pay"), json!({}), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(crate::orders::stock_of(&app, &c.shop, &c.cake).await, 3);
    // A refused order (more cakes than in stock) publishes nothing.
    let r = placed_and_paid(&app, &c, &ann, 9).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "product_sold_out");
    // Nor does one whose payment is declined once the order was made and sent to the kitchen.
    let bo = app.funded_consumer("+8613800000702", 1_000).await;
    let r = placed_and_paid(&app, &c, &bo, 1).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(app.balance(&bo).await, 1_000);
    assert_eq!(
        crate::orders::stock_of(&app, &c.shop, &c.cake).await,
        3,
        "the declined order holds no cake"
    );

    let got = hook.wait_for(15).await;
    for m in &got {
        assert_signed(&secret, m);
    }
    // Event ids sort in the order the events were made.
    let mut bodies: Vec<Value> = got.iter().map(Received::json).collect();
    bodies.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let seen: Vec<(String, String)> = bodies
        .iter()
        .map(|b| (b["type"].as_str().unwrap().to_owned(), order_of(b)))
        .collect();
    let at = |kind: &str, order: &str| (kind.to_owned(), order.to_owned());
    assert_eq!(
        seen,
        vec![
            at("order.placed", &table_order),
            at("payment.succeeded", &table_order),
            at("order.paid", &table_order),
            at("order.ready", &table_order),
            at("order.completed", &table_order),
            at("payment.refunded", &table_order),
            at("order.refunded", &table_order),
            at("payment.succeeded", &pickup),
            at("order.paid", &pickup),
            at("order.placed", &pickup),
            at("payment.refunded", &pickup),
            at("order.canceled", &pickup),
            at("payment.succeeded", &later),
            at("order.paid", &later),
            at("order.placed", &later),
        ]
    );
    // Each carries the order as it was then.
    let table: Vec<&Value> = bodies
        .iter()
        .filter(|b| {
            b["type"].as_str().unwrap().starts_with("order.")
                && b["data"]["id"] == table_order.as_str()
        })
        .collect();
    assert_eq!(table[0]["data"]["status"], "placed");
    assert_eq!(table[0]["data"]["payment_status"], "unpaid");
    assert_eq!(table[0]["data"]["amount_due"], 3200);
    assert_eq!(table[1]["data"]["payment_status"], "paid");
    assert_eq!(table[1]["data"]["amount_due"], 0);
    assert_eq!(table[2]["data"]["status"], "ready");
    assert_eq!(table[3]["data"]["status"], "completed");
    assert_eq!(table[4]["type"], "order.refunded");
    assert_eq!(table[4]["data"]["amount_refunded"], 1000);
    let canceled = bodies
        .iter()
        .find(|b| b["type"] == "order.canceled")
        .unwrap();
    assert_eq!(canceled["data"]["status"], "canceled");
    assert_eq!(canceled["data"]["amount_refunded"], 3200);
    assert_eq!(canceled["data"]["cancel_reason"], "out of cake");
    let placed_later = bodies.last().unwrap();
    assert_eq!(placed_later["type"], "order.placed");
    assert_eq!(placed_later["data"]["status"], "placed");
    assert_eq!(placed_later["data"]["payment_status"], "paid");
    // Nothing more: the steps in between (accepted, preparing) are not subscribed to.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hook.received().len(), 15);
    assert_eq!(events_of(&app, "order.placed").await, 3);
    assert_eq!(app.balance(&ann).await, 20_000 - 3200 + 1000 - 3200);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_holds_life_reaches_the_endpoint_held_captured_canceled_lapsed_and_refunded() {
    let app = spawn_app().await;
    let shop = app.shop("Hold Hook Hotel").await;
    let hook = receiver(&[200]).await;
    let payments = [
        "payment.requires_capture",
        "payment.succeeded",
        "payment.canceled",
        "payment.refunded",
    ];
    let endpoint = register(&app, &shop.owner, &hook.url, json!(payments)).await;
    let secret = endpoint["secret"].as_str().unwrap().to_owned();
    let me = app.funded_consumer("13700000711", 50_000).await;
    let hold = |amount: i64| {
        let (app, shop, me) = (&app, &shop, &me);
        async move {
            let r = app
                .post(
                    "/v1/payments",
                    json!({"qr": shop.qr, "amount": amount, "currency": "CNY", "capture": "manual"}),
                    Some(me),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let staff = |path: String, body: Value| {
        let (app, shop) = (&app, &shop);
        async move {
            let r = app.post(&path, body, Some(&shop.cashier)).await;
            assert!(r.status.is_success(), "{path}: {}", r.body);
            r.body
        }
    };
    // Held, then captured in part.
    let captured = hold(30_000).await;
    staff(
        format!("/v1/payments/{captured}/capture"),
        json!({"amount": 25_000}),
    )
    .await;
    // Held, then canceled by the shop.
    let canceled = hold(5_000).await;
    staff(format!("/v1/payments/{canceled}/cancel"), json!({})).await;
    // Held, then left to lapse: the sweeper releases it.
    let lapsed = hold(4_000).await;
    app.lapse_hold(&lapsed).await;
    // The captured part refunded in part.
    let refund = staff(
        "/v1/refunds".into(),
        json!({"payment": captured, "amount": 5_000, "reason": "minibar not used"}),
    )
    .await;

    let got = hook.wait_for(7).await;
    for m in &got {
        assert_signed(&secret, m);
    }
    let mut bodies: Vec<Value> = got.iter().map(Received::json).collect();
    bodies.sort_by(|a, b| a["id"].as_str().cmp(&b["id"].as_str()));
    let seen: Vec<(&str, &str, &str)> = bodies
        .iter()
        .map(|b| {
            (
                b["type"].as_str().unwrap(),
                b["data"]["id"].as_str().unwrap(),
                b["data"]["status"].as_str().unwrap(),
            )
        })
        .collect();
    // The lapse comes whenever the sweeper runs: after the lapsed hold was made, in any place
    // among the later events.
    let lapse = ("payment.canceled", lapsed.as_str(), "canceled");
    assert!(seen.contains(&lapse), "{seen:?}");
    let at = seen.iter().position(|e| *e == lapse).unwrap();
    assert!(
        seen[..at].contains(&(
            "payment.requires_capture",
            lapsed.as_str(),
            "requires_capture"
        )),
        "{seen:?}"
    );
    let rest: Vec<_> = seen.iter().filter(|e| **e != lapse).copied().collect();
    assert_eq!(
        rest,
        vec![
            (
                "payment.requires_capture",
                captured.as_str(),
                "requires_capture"
            ),
            ("payment.succeeded", captured.as_str(), "succeeded"),
            (
                "payment.requires_capture",
                canceled.as_str(),
                "requires_capture"
            ),
            ("payment.canceled", canceled.as_str(), "canceled"),
            (
                "payment.requires_capture",
                lapsed.as_str(),
                "requires_capture"
            ),
            ("payment.refunded", captured.as_str(), "succeeded"),
        ]
    );
    let of = |kind: &str, id: &str| {
        bodies
            .iter()
            .find(|b| b["type"] == kind && b["data"]["id"] == id)
            .unwrap()["data"]
            .clone()
    };
    let held = of("payment.requires_capture", &captured);
    assert_eq!(
        (held["amount"].as_i64(), held["amount_captured"].as_i64()),
        (Some(30_000), Some(0))
    );
    assert!(held["capture_before"].is_string());
    let done = of("payment.succeeded", &captured);
    assert_eq!(done["amount_captured"], 25_000);
    assert_eq!(done["fee"], 150);
    assert_eq!(
        of("payment.canceled", &canceled)["cancellation_reason"],
        "canceled"
    );
    assert_eq!(
        of("payment.canceled", &lapsed)["cancellation_reason"],
        "expired"
    );
    let refunded = of("payment.refunded", &captured);
    assert_eq!(refunded["amount_refunded"], 5_000);
    assert_eq!(refunded["refund"]["id"], refund["id"]);
    assert_eq!(refunded["refund"]["amount"], 5_000);
    // Nothing more, and the money is where the events say.
    tokio::time::sleep(Duration::from_millis(1_500)).await;
    assert_eq!(hook.received().len(), 7);
    assert_eq!(app.balance(&me).await, 50_000 - 25_000 + 5_000);
    app.assert_ledger_verifies().await;
}
