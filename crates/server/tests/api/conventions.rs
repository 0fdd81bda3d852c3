use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn health_readiness_and_metrics_answer() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.body["status"], "ok");
    let ready = app.get("/readyz", None).await;
    assert_eq!(ready.body["database"], backend());
    let metrics = app.metrics().await;
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}

#[tokio::test]
async fn every_response_carries_a_request_id() {
    let app = spawn_app().await;
    let a = app.get("/healthz", None).await;
    let b = app.get("/v1/nowhere", None).await;
    let id_a = a
        .headers
        .get("request-id")
        .expect("request-id")
        .to_str()
        .unwrap()
        .to_owned();
    let id_b = b
        .headers
        .get("request-id")
        .expect("request-id")
        .to_str()
        .unwrap()
        .to_owned();
    assert_ne!(id_a, id_b);
    // Random UUIDs (version 4, RFC 9562 variant), in lower case.
    for id in [&id_a, &id_b] {
        let b = id.as_bytes();
        assert_eq!(b.len(), 36, "{id}");
        for (i, c) in b.iter().enumerate() {
            match i {
                8 | 13 | 18 | 23 => assert_eq!(*c, b'-', "{id}"),
                14 => assert_eq!(*c, b'4', "{id}"),
                19 => assert!(b"89ab".contains(c), "{id}"),
                _ => assert!(c.is_ascii_digit() || (b'a'..=b'f').contains(c), "{id}"),
            }
        }
    }
}

#[tokio::test]
async fn an_unknown_endpoint_is_a_json_404() {
    let app = spawn_app().await;
    let r = app.get("/v1/nowhere", None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "route_not_found");
    assert_eq!(r.body["error"]["type"], "not_found");
    // Elsewhere a browser gets a page, and a caller asking for JSON gets JSON (a code's URL
    // without its code, say).
    for path in ["/nowhere", "/q/"] {
        let r = app
            .send(
                app.client
                    .get(app.url(path))
                    .header("accept", "application/json"),
            )
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(r.code(), "route_not_found", "{path}");
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::NOT_FOUND, "{path}");
        assert!(
            page.headers()[reqwest::header::CONTENT_TYPE]
                .to_str()
                .unwrap()
                .starts_with("text/html"),
            "{path}"
        );
    }
}

#[tokio::test]
async fn a_path_parameter_that_is_not_text_is_a_json_400_naming_it() {
    let app = spawn_app().await;
    let shop = app.shop("Path Cafe").await;
    for (path, param) in [
        ("/v1/payments/%FF%FE".to_owned(), "id"),
        (
            format!("/v1/merchants/{}/statements/%C3%28", shop.merchant),
            "date",
        ),
        ("/q/%FF".to_owned(), "code"),
    ] {
        let r = app
            .send(
                app.client
                    .get(app.url(&path))
                    .bearer_auth(&shop.owner)
                    .header("accept", "application/json"),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{path}: {}", r.body);
        assert_eq!(r.code(), "invalid_path", "{path}");
        assert_eq!(r.body["error"]["param"], param, "{path}");
    }
}

#[tokio::test]
async fn malformed_bodies_get_specific_codes_and_change_nothing() {
    let app = spawn_app().await;
    let send_raw = |body: &'static str, content_type: &'static str| {
        app.client
            .post(app.url("/v1/merchants"))
            .header("content-type", content_type)
            .body(body)
    };
    let r = app.send(send_raw("{\"name\": ", "application/json")).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_json")
    );
    let r = app
        .send(send_raw("name=x", "application/x-www-form-urlencoded"))
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
    );
    let r = app.post("/v1/merchants", json!({"name": 5, "mode": "trading", "owner": {"email": "a@b.test", "password": "password-1"}}), None).await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "invalid_type")
    );
    assert_eq!(r.body["error"]["param"], "name");
    let huge = "x".repeat(200 * 1024);
    let r = app
        .post("/v1/merchants", json!({"name": huge, "mode": "trading", "owner": {"email": "a@b.test", "password": "password-1"}}), None)
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::PAYLOAD_TOO_LARGE, "body_too_large")
    );
    assert_eq!(app.count("merchants").await, 0);
}

#[tokio::test]
async fn huge_pages_and_bad_cursors_are_refused() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Pages").await;
    let r = app
        .get(
            &format!("/v1/merchants/{mid}/staff?limit=1000"),
            Some(&owner),
        )
        .await;
    assert_eq!(
        (r.status, r.code()),
        (StatusCode::BAD_REQUEST, "limit_out_of_range")
    );
    let r = app
        .get(&format!("/v1/merchants/{mid}/staff?limit=0"), Some(&owner))
        .await;
    assert_eq!(r.code(), "limit_out_of_range");
    let r = app
        .get(
            &format!("/v1/merchants/{mid}/staff?limit=ten"),
            Some(&owner),
        )
        .await;
    assert_eq!(r.code(), "invalid_query");
    // A parameter no list takes is refused, not ignored (a mistyped filter would otherwise
    // answer as if it were applied).
    let store = app.store(&mid, &owner, "Q1", 31.0, 121.0).await;
    for path in [
        format!("/v1/merchants/{mid}/staff?limt=5"),
        "/v1/payments?status=succeeded".to_owned(),
        // A list answered whole takes no parameter at all.
        format!("/v1/stores/{store}/tables?limit=5"),
    ] {
        let r = app.get(&path, Some(&owner)).await;
        assert_eq!(
            (r.status, r.code()),
            (StatusCode::BAD_REQUEST, "invalid_query"),
            "{path}: {}",
            r.body
        );
    }
    let r = app
        .get(
            &format!("/v1/merchants/{mid}/staff?starting_after=';drop"),
            Some(&owner),
        )
        .await;
    assert_eq!(r.code(), "invalid_cursor");
}

#[tokio::test]
async fn a_retried_post_with_the_same_key_has_one_effect_and_the_same_answer() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Idem Cafe").await;
    let body = json!({"merchant_id": mid, "name": "Once", "address": "1 Road", "lat": 31.2, "lng": 121.4,
        "timezone": "Asia/Shanghai", "opening_hours": "24/7"});
    let first = app
        .post_idem("/v1/stores", body.clone(), Some(&owner), "key-1")
        .await;
    let second = app
        .post_idem("/v1/stores", body.clone(), Some(&owner), "key-1")
        .await;
    assert_eq!(first.status, StatusCode::CREATED);
    assert_eq!(second.status, StatusCode::CREATED);
    assert_eq!(first.body, second.body);
    assert_eq!(app.count("stores").await, 1);
    let mut other = body.clone();
    other["name"] = json!("Twice");
    let reused = app
        .post_idem("/v1/stores", other, Some(&owner), "key-1")
        .await;
    assert_eq!(
        (reused.status, reused.code()),
        (StatusCode::CONFLICT, "idempotency_key_reused")
    );
    assert_eq!(app.count("stores").await, 1);
}

#[tokio::test]
async fn concurrent_retries_with_one_key_create_one_thing() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("Race Cafe").await;
    let body = json!({"merchant_id": mid, "name": "Raced", "address": "1 Road", "lat": 31.2, "lng": 121.4,
        "timezone": "Asia/Shanghai", "opening_hours": "24/7"});
    let mut tasks = Vec::new();
    for _ in 0..16 {
        let client = app.client.clone();
        let url = app.url("/v1/stores");
        let body = body.clone();
        let owner = owner.clone();
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(owner)
                .header("Idempotency-Key", "race")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<serde_json::Value>().await.unwrap())
        }));
    }
    let mut created_ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        match status {
            StatusCode::CREATED => {
                created_ids.insert(body["id"].as_str().unwrap().to_owned());
            }
            StatusCode::CONFLICT => assert_eq!(body["error"]["code"], "idempotency_key_in_use"),
            other => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!(created_ids.len(), 1, "every success names the same store");
    assert_eq!(app.count("stores").await, 1);
}

#[tokio::test]
async fn a_login_replayed_with_its_key_does_not_reveal_the_token_again() {
    let app = spawn_app().await;
    app.post("/v1/auth/otp", json!({"phone": "13800000009"}), None)
        .await;
    let code = app.latest_code("13800000009").await;
    let body = json!({"phone": "13800000009", "code": code});
    let first = app
        .post_idem("/v1/sessions", body.clone(), None, "login-1")
        .await;
    assert!(first.body["token"].is_string());
    let replay = app.post_idem("/v1/sessions", body, None, "login-1").await;
    assert_eq!(replay.status, StatusCode::CREATED);
    assert!(replay.body["token"].is_null());
    assert_eq!(
        replay.body["principal"]["id"],
        first.body["principal"]["id"]
    );
}

#[tokio::test]
async fn the_openapi_document_describes_every_operation() {
    let app = spawn_app().await;
    let doc = app.get("/openapi.json", None).await;
    assert_eq!(doc.body["openapi"], "3.1.0");
    let paths = doc.body["paths"].as_object().unwrap();
    for (path, method) in [
        ("/v1/auth/otp", "post"),
        ("/v1/sessions", "post"),
        ("/v1/sessions/current", "delete"),
        ("/v1/me", "get"),
        ("/v1/merchants", "post"),
        ("/v1/merchants/{id}/staff", "post"),
        ("/v1/merchants/{id}/api-keys", "post"),
        ("/v1/stores", "get"),
        ("/v1/stores", "post"),
        ("/v1/stores/{id}", "patch"),
        ("/v1/stores/{id}/tables", "post"),
        ("/v1/dev/outbox", "get"),
        ("/v1/webhook-endpoints", "post"),
        ("/v1/webhook-endpoints/{id}", "delete"),
        ("/v1/webhook-endpoints/{id}/deliveries", "get"),
        ("/v1/webhook-endpoints/{id}/enable", "post"),
        ("/v1/webhook-deliveries/{id}/replay", "post"),
        ("/healthz", "get"),
    ] {
        assert!(
            paths.get(path).and_then(|p| p.get(method)).is_some(),
            "{method} {path} undocumented"
        );
    }
    assert!(doc.body["components"]["schemas"]["ErrorBody"].is_object());
    // Two enums named Channel in the code: each keeps its own schema.
    let schemas = &doc.body["components"]["schemas"];
    assert_eq!(
        schemas["FollowChannel"]["enum"],
        json!(["page", "wifi", "campaign", "api"])
    );
    assert!(
        schemas["Channel"]["enum"]
            .as_array()
            .unwrap()
            .contains(&json!("dine_in"))
    );
    // Lists answered as `{data, has_more}` are documented so.
    for (path, method) in [
        ("/v1/stores/{id}/orders", "get"),
        ("/v1/me/coupons/usable", "get"),
        ("/v1/coupon-center", "get"),
        ("/v1/me/cards", "get"),
        ("/v1/stores/{id}/tables", "get"),
    ] {
        let body =
            &paths[path][method]["responses"]["200"]["content"]["application/json"]["schema"];
        assert!(
            body["properties"]["data"].is_object() || body["$ref"].is_string(),
            "{method} {path}: {body}"
        );
        assert_ne!(body["type"], "array", "{method} {path}: {body}");
    }
    let docs = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(docs.status(), StatusCode::OK);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

/// Sends `head` (and nothing more) on a fresh connection and reads until the server answers or
/// closes; answers what it sent back, and whether it closed the connection.
async fn send_and_wait(app: &TestApp, head: &str, within: std::time::Duration) -> (String, bool) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    s.write_all(head.as_bytes()).await.unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let read = tokio::time::timeout(within, async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return true,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    (
        String::from_utf8_lossy(&got).into_owned(),
        read.unwrap_or(false),
    )
}

#[tokio::test]
async fn a_body_that_stops_arriving_is_a_json_408_and_moves_nothing() {
    let app = spawn_app_with(|c| c.body_idle_timeout = std::time::Duration::from_millis(300)).await;
    let token = app.funded_consumer("+8613800000911", 5_000).await;
    let body = r#"{"amount": 1000, "currency": "CNY"}"#;
    // Announces more than it sends: the server stops waiting and says why.
    let head = format!(
        "POST /v1/wallet/withdrawals HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len() + 50
    );
    let (answer, _) = send_and_wait(&app, &head, std::time::Duration::from_secs(20)).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains(r#""code":"body_timeout""#), "{answer}");
    assert!(answer.contains("application/json"), "{answer}");
    assert_eq!(app.balance(&token).await, 5_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_page_form_that_stops_arriving_or_is_not_a_form_gets_its_status() {
    let app = spawn_app_with(|c| c.body_idle_timeout = std::time::Duration::from_millis(300)).await;
    let body = "csrf=x&phone=13800000912&code=123456";
    // A JSON caller gets the JSON error; a browser gets the error page with the same status.
    for (accept, json) in [("application/json", true), ("text/html", false)] {
        for (content_type, sent, status, code) in [
            (
                "application/x-www-form-urlencoded",
                body.len() + 50,
                "408",
                "body_timeout",
            ),
            ("text/plain", body.len(), "415", "unsupported_media_type"),
        ] {
            let head = format!(
                "POST /login HTTP/1.1\r\nHost: x\r\nAccept: {accept}\r\nContent-Type: {content_type}\r\n\
                 Connection: close\r\nContent-Length: {sent}\r\n\r\n{body}"
            );
            let (answer, _) = send_and_wait(&app, &head, std::time::Duration::from_secs(20)).await;
            assert!(
                answer.starts_with(&format!("HTTP/1.1 {status}")),
                "{answer}"
            );
            assert_eq!(
                answer.contains(&format!(r#""code":"{code}""#)),
                json,
                "{answer}"
            );
            assert_eq!(answer.contains("text/html"), !json, "{answer}");
        }
    }
    // A form missing a field, and a page path that is not text: pages for a browser.
    let r = app
        .client
        .post(app.url("/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("phone=13800000912")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert!(r.text().await.unwrap().contains("<html"));
    let r = app.client.get(app.url("/stores/%FF")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.text().await.unwrap().contains("<html"));
}

#[tokio::test]
async fn a_client_that_never_finishes_its_headers_is_disconnected() {
    let app =
        spawn_app_with(|c| c.header_read_timeout = std::time::Duration::from_millis(300)).await;
    let (answer, closed) = send_and_wait(
        &app,
        "GET /v1/me HTTP/1.1\r\nHost: x\r\n",
        std::time::Duration::from_secs(20),
    )
    .await;
    assert!(closed, "the connection was left open");
    assert!(!answer.contains("200 OK"), "{answer}");
    // Others are still served.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn a_client_that_stops_reading_its_answers_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        spawn_app_with(|c| c.write_stall_timeout = std::time::Duration::from_millis(300)).await;
    let size = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap()
        .bytes()
        .await
        .unwrap()
        .len();
    // Far more answers than the sockets' buffers hold, asked for at once and not read.
    let asked = (64 << 20) / size + 1;
    let addr = app.base.trim_start_matches("http://");
    let mut s = tokio::net::TcpStream::connect(addr).await.unwrap();
    let one = "GET /openapi.json HTTP/1.1\r\nHost: x\r\n\r\n";
    s.write_all(one.repeat(asked).as_bytes()).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    // Reading now, the client finds the connection already given up on.
    let mut got = 0usize;
    let mut buf = vec![0u8; 1 << 16];
    let closed = tokio::time::timeout(std::time::Duration::from_secs(20), async {
        loop {
            match s.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(n) => got += n,
            }
        }
    })
    .await
    .is_ok();
    assert!(closed, "the connection was still open after {got} bytes");
    assert!(got < asked * size, "every answer was sent: {got} bytes");
    // Others are still served.
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
}

#[tokio::test]
async fn shutdown_lets_the_server_stop_cleanly() {
    let app = spawn_app().await;
    assert_eq!(app.get("/healthz", None).await.status, StatusCode::OK);
    let base = app.base.clone();
    tokio::time::timeout(std::time::Duration::from_secs(10), app.stop())
        .await
        .expect("stopped in time");
    assert!(
        reqwest::get(format!("{base}/healthz")).await.is_err(),
        "nothing listens after shutdown"
    );
}
