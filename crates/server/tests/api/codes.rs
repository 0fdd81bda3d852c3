use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn table_setup(app: &TestApp) -> (String, String, String, String) {
    let (mid, owner) = app.merchant("Code Cafe").await;
    let store = app
        .store(&mid, &owner, "Code Cafe 一号店", 31.2304, 121.4737)
        .await;
    let table = app
        .post(
            &format!("/v1/stores/{store}/tables"),
            json!({"label": "A1"}),
            Some(&owner),
        )
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    (mid, owner, store, table)
}

async fn bytes(app: &TestApp, path: &str, token: &str) -> (StatusCode, Vec<u8>) {
    let r = app
        .client
        .get(app.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    (r.status(), r.bytes().await.unwrap().to_vec())
}

fn decode_qr(png: &[u8]) -> String {
    let img = image::load_from_memory(png).unwrap().to_luma8();
    let mut prepared = rqrr::PreparedImage::prepare(img);
    let grids = prepared.detect_grids();
    assert_eq!(grids.len(), 1, "one QR code in the image");
    grids[0].decode().unwrap().1
}

async fn landing_json(app: &TestApp, url: &str) -> (StatusCode, Value) {
    let r = app
        .client
        .get(url)
        .header("accept", "application/json")
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn a_table_code_opens_its_store_and_table_and_its_png_decodes_to_its_url() {
    let app = spawn_app().await;
    let (mid, owner, store, table) = table_setup(&app).await;
    let code = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "table", "store_id": store, "table_id": table}),
            Some(&owner),
        )
        .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
    let url = code.body["url"].as_str().unwrap().to_owned();
    assert!(url.starts_with(&format!("{}/q/", app.base)), "{url}");
    let short = url.rsplit('/').next().unwrap();
    assert_eq!(short.len(), 12);
    let (status, landing) = landing_json(&app, &url).await;
    assert_eq!(status, StatusCode::OK, "{landing}");
    assert_eq!(landing["kind"], "table");
    assert_eq!(landing["merchant"]["id"], mid.as_str());
    assert_eq!(landing["merchant"]["name"], "Code Cafe");
    assert_eq!(landing["store"]["id"], store.as_str());
    assert_eq!(landing["table"]["label"], "A1");
    let id = code.body["id"].as_str().unwrap();
    let (status, png) = bytes(&app, &format!("/v1/qr-codes/{id}.png?size=300"), &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decode_qr(&png), url);
    let (status, svg) = bytes(&app, &format!("/v1/qr-codes/{id}.svg"), &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(String::from_utf8(svg).unwrap().contains("<svg"));
    let (status, _) = bytes(&app, &format!("/v1/qr-codes/{id}.png?size=5"), &owner).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    // The page names the merchant and the table.
    let html = app
        .client
        .get(&url)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(html.contains("Code Cafe") && html.contains("A1"), "{html}");
}

#[tokio::test]
async fn a_revoked_code_stops_working_everywhere_at_once() {
    let app = spawn_app().await;
    let (_mid, owner, store, _table) = table_setup(&app).await;
    let code = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "store_pay", "store_id": store}),
            Some(&owner),
        )
        .await;
    let id = code.body["id"].as_str().unwrap().to_owned();
    let url = code.body["url"].as_str().unwrap().to_owned();
    assert_eq!(landing_json(&app, &url).await.0, StatusCode::OK);
    let revoked = app
        .post(
            &format!("/v1/qr-codes/{id}/revoke"),
            json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(revoked.body["status"], "revoked");
    let (status, body) = landing_json(&app, &url).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["error"]["code"], "qr_revoked");
    let page = app.client.get(&url).send().await.unwrap();
    assert_eq!(page.status(), StatusCode::NOT_FOUND);
    assert!(page.text().await.unwrap().contains("qr-revoked"));
}

#[tokio::test]
async fn a_rotated_table_code_keeps_its_table_and_retires_the_old_one() {
    let app = spawn_app().await;
    let (_mid, owner, store, table) = table_setup(&app).await;
    let old = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "table", "store_id": store, "table_id": table}),
            Some(&owner),
        )
        .await;
    let old_id = old.body["id"].as_str().unwrap().to_owned();
    let new = app
        .post(
            &format!("/v1/qr-codes/{old_id}/rotate"),
            json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(new.status, StatusCode::CREATED, "{}", new.body);
    assert_eq!(new.body["table_id"], table.as_str());
    assert_ne!(new.body["url"], old.body["url"]);
    let (status, landing) = landing_json(&app, new.body["url"].as_str().unwrap()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(landing["table"]["id"], table.as_str());
    assert_eq!(
        landing_json(&app, old.body["url"].as_str().unwrap())
            .await
            .1["error"]["code"],
        "qr_revoked"
    );
    let old_now = app
        .get(&format!("/v1/qr-codes/{old_id}"), Some(&owner))
        .await;
    assert_eq!(old_now.body["replaced_by"], new.body["id"]);
}

#[tokio::test]
async fn unknown_and_tampered_codes_warn_and_are_counted() {
    let app = spawn_app().await;
    for path in [
        "/q/abcdefghjk12",
        "/q/not-a-code",
        "/q/ABCDEFGHJK12",
        "/q/%E4%BD%A0%E5%A5%BD",
    ] {
        let (status, body) = landing_json(&app, &app.url(path)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}");
        assert_eq!(body["error"]["code"], "qr_unknown", "{path}");
        let page = app.client.get(app.url(path)).send().await.unwrap();
        assert_eq!(page.status(), StatusCode::NOT_FOUND);
        let html = page.text().await.unwrap();
        assert!(html.contains("qr-unknown"), "{html}");
    }
    let metrics = app.metrics().await;
    assert!(
        metrics.contains("qr_resolutions_total{result=\"tampered\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("qr_resolutions_total{result=\"unknown\"}"),
        "{metrics}"
    );
}

#[tokio::test]
async fn codes_are_checked_before_they_are_made() {
    let app = spawn_app().await;
    let (mid, owner, store, table) = table_setup(&app).await;
    let other_store = app.store(&mid, &owner, "Second", 31.2, 121.4).await;
    let ours = app.product(&owner, "拿铁", 2800).await;
    let elsewhere = app.shop("Elsewhere").await;
    let theirs = app.product(&elsewhere.owner, "拿铁", 2800).await;
    let cases = [
        (
            json!({"kind": "product", "store_id": store, "product_id": "prd_missing"}),
            StatusCode::NOT_FOUND,
            "product_not_found",
        ),
        (
            json!({"kind": "product", "store_id": store, "product_id": theirs}),
            StatusCode::NOT_FOUND,
            "product_not_found",
        ),
        (
            json!({"kind": "store_pay", "store_id": store, "product_id": ours}),
            StatusCode::BAD_REQUEST,
            "unexpected_field",
        ),
        (
            json!({"kind": "table", "store_id": store}),
            StatusCode::BAD_REQUEST,
            "missing_field",
        ),
        (
            json!({"kind": "table", "store_id": other_store, "table_id": table}),
            StatusCode::NOT_FOUND,
            "table_not_found",
        ),
        (
            json!({"kind": "store_pay", "store_id": store, "table_id": table}),
            StatusCode::BAD_REQUEST,
            "unexpected_field",
        ),
        (
            json!({"kind": "product", "store_id": store}),
            StatusCode::BAD_REQUEST,
            "missing_field",
        ),
        (
            json!({"kind": "store_pay", "store_id": "sto_missing"}),
            StatusCode::NOT_FOUND,
            "store_not_found",
        ),
        (
            json!({"kind": "sticker", "store_id": store}),
            StatusCode::BAD_REQUEST,
            "invalid_enum_value",
        ),
    ];
    for (body, status, code) in cases {
        let r = app.post("/v1/qr-codes", body.clone(), Some(&owner)).await;
        assert_eq!((r.status, r.code()), (status, code), "{body}");
    }
    let list = app.get("/v1/qr-codes", Some(&owner)).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 0);
    let r = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "product", "store_id": store, "product_id": ours}),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["product_id"], ours.as_str());
}

#[tokio::test]
async fn the_qr_sheet_is_a_pdf_with_a_code_for_every_table() {
    let app = spawn_app().await;
    let (_mid, owner, store, _t) = table_setup(&app).await;
    for label in ["A2", "窗边 3"] {
        app.post(
            &format!("/v1/stores/{store}/tables"),
            json!({"label": label}),
            Some(&owner),
        )
        .await;
    }
    let (status, pdf) = bytes(&app, &format!("/v1/stores/{store}/qr-sheet.pdf"), &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(pdf.starts_with(b"%PDF"));
    let codes = app
        .get(&format!("/v1/qr-codes?store_id={store}"), Some(&owner))
        .await;
    assert_eq!(
        codes.body["data"].as_array().unwrap().len(),
        3,
        "one table code per table"
    );
    // Asking again reuses the codes.
    bytes(&app, &format!("/v1/stores/{store}/qr-sheet.pdf"), &owner).await;
    let again = app
        .get(&format!("/v1/qr-codes?store_id={store}"), Some(&owner))
        .await;
    assert_eq!(again.body["data"].as_array().unwrap().len(), 3);
    if let Ok(dir) = std::env::var("O2O_CODE_SAMPLES_DIR") {
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(format!("{dir}/qr-sheet.pdf"), &pdf).unwrap();
        let urls: Vec<String> = again.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["url"].as_str().unwrap().to_owned())
            .collect();
        std::fs::write(format!("{dir}/qr-sheet.urls"), urls.join("\n")).unwrap();
    }
}

#[tokio::test]
async fn the_stores_emv_payload_decodes_strictly_and_carries_its_pay_code() {
    let app = spawn_app().await;
    let (mid, owner) = app.merchant("莲花咖啡 Lotus Coffee").await;
    let r = app
        .post(
            "/v1/stores",
            json!({"merchant_id": mid, "name": "外滩店", "address": "上海市黄浦区中山东一路 18 号", "lat": 31.24, "lng": 121.49,
                "timezone": "Asia/Shanghai", "opening_hours": "24/7"}),
            Some(&owner),
        )
        .await;
    let store = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .get(
            &format!("/v1/stores/{store}/pay-qr?format=emv"),
            Some(&owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let payload = r.body["payload"].as_str().unwrap().to_owned();
    let qr = o2o_codes::MerchantPresented::decode(&payload).unwrap();
    assert_eq!(qr.currency_numeric, "156");
    assert_eq!(qr.country_code, "CN");
    assert_eq!(qr.merchant_city, "SHANGHAI");
    assert_eq!(qr.merchant_name, "LOTUS COFFEE");
    assert_eq!(qr.point_of_initiation, o2o_codes::PointOfInitiation::Static);
    let url = r.body["url"].as_str().unwrap();
    assert!(qr.merchant_accounts[0].value.contains(url));
    assert_eq!(landing_json(&app, url).await.1["kind"], "store_pay");
    let (status, png) = bytes(&app, &format!("/v1/stores/{store}/pay-qr.png"), &owner).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(decode_qr(&png), payload);
    // The same store pay code is reused.
    let again = app
        .get(
            &format!("/v1/stores/{store}/pay-qr?format=emv"),
            Some(&owner),
        )
        .await;
    assert_eq!(again.body["payload"], payload.as_str());
    let bad = app
        .get(
            &format!("/v1/stores/{store}/pay-qr?format=upi"),
            Some(&owner),
        )
        .await;
    assert_eq!(bad.code(), "invalid_format");
}

async fn cashier(app: &TestApp, mid: &str, owner: &str, email: &str) -> String {
    app.post(
        &format!("/v1/merchants/{mid}/staff"),
        json!({"email": email, "password": "cashier-pass", "role": "cashier"}),
        Some(owner),
    )
    .await;
    app.password_token(email, "cashier-pass").await
}

#[tokio::test]
async fn a_pay_code_is_18_digits_bound_to_its_consumer_and_works_once() {
    let app = spawn_app().await;
    let (mid, owner, store, _t) = table_setup(&app).await;
    let consumer = app.consumer_token("13600000001", None).await;
    let me = app.get("/v1/me", Some(&consumer)).await.body["id"].clone();
    let r = app
        .post("/v1/me/pay-codes", json!({"count": 3}), Some(&consumer))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.body["code"].as_str().unwrap().to_owned();
    assert_eq!(code.len(), 18);
    assert!(code.starts_with("19") && code.bytes().all(|b| b.is_ascii_digit()));
    assert_eq!(r.body["ahead"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["source"], "wallet");
    let cashier = cashier(&app, &mid, &owner, "cash@code.test").await;
    let scan = app
        .post(
            "/v1/scan",
            json!({"payload": code, "store_id": store}),
            Some(&cashier),
        )
        .await;
    assert_eq!(scan.status, StatusCode::OK, "{}", scan.body);
    assert_eq!(scan.body["kind"], "pay_code");
    assert_eq!(scan.body["consumer_id"], me);
    let again = app
        .post("/v1/scan", json!({"payload": code}), Some(&cashier))
        .await;
    assert_eq!(
        (again.status, again.code()),
        (StatusCode::CONFLICT, "code_used")
    );
    // A code held ahead is not valid yet.
    let ahead = r.body["ahead"][1]["code"].as_str().unwrap();
    assert_eq!(
        app.post("/v1/scan", json!({"payload": ahead}), Some(&cashier))
            .await
            .code(),
        "code_not_yet_valid"
    );
    // Made-up codes and junk are invalid.
    for junk in ["191234567890123456", "hello", "134567890123456789", ""] {
        assert_eq!(
            app.post("/v1/scan", json!({"payload": junk}), Some(&cashier))
                .await
                .code(),
            "qr_invalid",
            "{junk}"
        );
    }
    // A consumer cannot scan.
    assert_eq!(
        app.post("/v1/scan", json!({"payload": code}), Some(&consumer))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
}

#[tokio::test]
async fn an_expired_pay_code_is_declined() {
    let app = spawn_app().await;
    let (mid, owner, _store, _t) = table_setup(&app).await;
    let consumer = app.consumer_token("13600000002", None).await;
    let code = app
        .post("/v1/me/pay-codes", json!({}), Some(&consumer))
        .await
        .body["code"]
        .as_str()
        .unwrap()
        .to_owned();
    app.state
        .db
        .execute(o2o_server::db::query("UPDATE pay_codes SET expires_at = 1"))
        .await
        .unwrap();
    let cashier = cashier(&app, &mid, &owner, "cash2@code.test").await;
    assert_eq!(
        app.post("/v1/scan", json!({"payload": code}), Some(&cashier))
            .await
            .code(),
        "code_expired"
    );
}

#[tokio::test]
async fn guests_get_no_pay_codes_and_bad_requests_are_refused() {
    let app = spawn_app().await;
    let guest = app.guest_token().await;
    assert_eq!(
        app.post("/v1/me/pay-codes", json!({}), Some(&guest))
            .await
            .code(),
        "login_required"
    );
    let consumer = app.consumer_token("13600000003", None).await;
    assert_eq!(
        app.post("/v1/me/pay-codes", json!({"count": 9}), Some(&consumer))
            .await
            .code(),
        "count_out_of_range"
    );
    assert_eq!(
        app.post(
            "/v1/me/pay-codes",
            json!({"source": "bank"}),
            Some(&consumer)
        )
        .await
        .code(),
        "invalid_source"
    );
}

#[tokio::test]
async fn two_cashiers_scanning_one_pay_code_at_once_exactly_one_wins() {
    let app = spawn_app().await;
    let (mid, owner, _store, _t) = table_setup(&app).await;
    let consumer = app.consumer_token("13600000004", None).await;
    let mut cashiers = Vec::new();
    for i in 0..4 {
        cashiers.push(cashier(&app, &mid, &owner, &format!("c{i}@race.test")).await);
    }
    for _round in 0..5 {
        let code = app
            .post("/v1/me/pay-codes", json!({}), Some(&consumer))
            .await
            .body["code"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut tasks = Vec::new();
        for c in &cashiers {
            for _ in 0..2 {
                let (client, url, c, code) = (
                    app.client.clone(),
                    app.url("/v1/scan"),
                    c.clone(),
                    code.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    client
                        .post(url)
                        .bearer_auth(c)
                        .json(&json!({"payload": code}))
                        .send()
                        .await
                        .unwrap()
                        .status()
                }));
            }
        }
        let mut wins = 0;
        for t in tasks {
            let s = t.await.unwrap();
            if s == StatusCode::OK {
                wins += 1;
            } else {
                assert_eq!(s, StatusCode::CONFLICT);
            }
        }
        assert_eq!(wins, 1);
    }
}

#[tokio::test]
async fn a_signed_token_verifies_offline_and_is_used_once_at_its_own_store() {
    let app = spawn_app().await;
    let (mid, owner, store, _t) = table_setup(&app).await;
    let other_store = app.store(&mid, &owner, "Other", 31.2, 121.4).await;
    let mut tx = app.state.db.begin().await.unwrap();
    let token = o2o_server::codes::service::issue_token(
        &mut tx,
        &app.state.keys,
        o2o_codes::TokenKind::ExitPass,
        "ord_test",
        Some(&mid),
        Some(&store),
        None,
        300,
    )
    .await
    .unwrap();
    let expired = o2o_server::codes::service::issue_token(
        &mut tx,
        &app.state.keys,
        o2o_codes::TokenKind::Pickup,
        "ord_old",
        Some(&mid),
        None,
        None,
        -5,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();

    // Offline: the published key verifies it.
    let keys = app.get("/v1/codes/public-key", None).await;
    use base64::Engine;
    let pk: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(keys.body["keys"][0]["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let now = jiff::Timestamp::now().as_second();
    let claims = o2o_codes::token::verify_offline(&pk, &token, now).unwrap();
    assert_eq!(claims.subject, "ord_test");

    let cashier = cashier(&app, &mid, &owner, "door@token.test").await;
    let wrong = app
        .post(
            "/v1/scan",
            json!({"payload": token, "store_id": other_store}),
            Some(&cashier),
        )
        .await;
    assert_eq!(wrong.code(), "code_wrong_store");
    let ok = app
        .post(
            "/v1/scan",
            json!({"payload": token, "store_id": store}),
            Some(&cashier),
        )
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.body);
    assert_eq!(ok.body["kind"], "exit_pass");
    assert_eq!(ok.body["subject"], "ord_test");
    assert_eq!(
        app.post("/v1/scan", json!({"payload": token}), Some(&cashier))
            .await
            .code(),
        "code_used"
    );
    assert_eq!(
        app.post("/v1/scan", json!({"payload": expired}), Some(&cashier))
            .await
            .code(),
        "code_expired"
    );
    let mut tampered = token.clone().into_bytes();
    let last = tampered.len() - 3;
    tampered[last] = if tampered[last] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    assert_eq!(
        app.post("/v1/scan", json!({"payload": tampered}), Some(&cashier))
            .await
            .code(),
        "qr_invalid"
    );
    // Another merchant's staff cannot use it.
    let (_m2, owner2) = app.merchant("Elsewhere").await;
    let mut tx = app.state.db.begin().await.unwrap();
    let token2 = o2o_server::codes::service::issue_token(
        &mut tx,
        &app.state.keys,
        o2o_codes::TokenKind::Voucher,
        "vch_1",
        Some(&mid),
        None,
        None,
        300,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    assert_eq!(
        app.post("/v1/scan", json!({"payload": token2}), Some(&owner2))
            .await
            .code(),
        "code_wrong_store"
    );
}

/// Writes a sample of every kind of code o2o renders, with the text each must decode to, for the
/// independent decoder check in `scripts/test` (zbarimg); without `O2O_CODE_SAMPLES_DIR` it
/// still checks each sample with rqrr.
#[tokio::test]
async fn every_rendered_code_decodes_to_exactly_its_payload() {
    let app = spawn_app().await;
    let (_mid, owner, store, table) = table_setup(&app).await;
    let product = app.product(&owner, "拿铁", 2800).await;
    let mut samples: Vec<(String, Vec<u8>, String)> = Vec::new();
    for (kind, extra) in [
        ("table", json!({"table_id": table})),
        ("store_pay", json!({})),
        ("product", json!({"product_id": product})),
        ("campaign", json!({"target": "spring-offer"})),
        ("wifi", json!({})),
    ] {
        let mut body = json!({"kind": kind, "store_id": store});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let code = app.post("/v1/qr-codes", body, Some(&owner)).await;
        assert_eq!(code.status, StatusCode::CREATED, "{kind}: {}", code.body);
        let id = code.body["id"].as_str().unwrap().to_owned();
        for size in [128u32, 512] {
            let (_, png) = bytes(&app, &format!("/v1/qr-codes/{id}.png?size={size}"), &owner).await;
            samples.push((
                format!("{kind}-{size}"),
                png,
                code.body["url"].as_str().unwrap().to_owned(),
            ));
        }
    }
    let emv = app
        .get(
            &format!("/v1/stores/{store}/pay-qr?format=emv"),
            Some(&owner),
        )
        .await;
    let (_, png) = bytes(&app, &format!("/v1/stores/{store}/pay-qr.png"), &owner).await;
    samples.push((
        "emv".into(),
        png,
        emv.body["payload"].as_str().unwrap().to_owned(),
    ));
    let consumer = app.consumer_token("13600000009", None).await;
    let pay = app
        .post("/v1/me/pay-codes", json!({}), Some(&consumer))
        .await
        .body["code"]
        .as_str()
        .unwrap()
        .to_owned();
    samples.push(("pay-code".into(), o2o_codes::png(&pay, 300).unwrap(), pay));
    let mut tx = app.state.db.begin().await.unwrap();
    let token = o2o_server::codes::service::issue_token(
        &mut tx,
        &app.state.keys,
        o2o_codes::TokenKind::Pickup,
        "ord_sample",
        None,
        None,
        None,
        600,
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    samples.push(("token".into(), o2o_codes::png(&token, 400).unwrap(), token));
    let dir = std::env::var("O2O_CODE_SAMPLES_DIR").ok();
    for (name, png, text) in &samples {
        assert_eq!(&decode_qr(png), text, "{name}");
        if let Some(dir) = &dir {
            std::fs::create_dir_all(dir).unwrap();
            std::fs::write(format!("{dir}/{name}.png"), png).unwrap();
            std::fs::write(format!("{dir}/{name}.txt"), text).unwrap();
        }
    }
}

#[tokio::test]
async fn every_node_forgets_a_revoked_code_and_an_ended_session() {
    // Nodes keep resolved codes and sessions in memory; a change made through one node reaches
    // the others (on PostgreSQL, by notification well before the entries' own expiry).
    let app = spawn_app().await;
    let two_nodes = backend() == "postgres";
    let node2 = if two_nodes {
        Some(app.second_node().await)
    } else {
        None
    };
    let other = node2.as_ref().unwrap_or(&app);
    let (_mid, owner, store, _table) = table_setup(&app).await;
    let code = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "store_pay", "store_id": store}),
            Some(&owner),
        )
        .await;
    let id = code.body["id"].as_str().unwrap().to_owned();
    let url = code.body["url"]
        .as_str()
        .unwrap()
        .replace(&app.base, &other.base);
    let token = app.consumer_token("13800000031", None).await;
    // Both are now kept by the other node.
    assert_eq!(landing_json(other, &url).await.0, StatusCode::OK);
    assert_eq!(
        other.get("/v1/me", Some(&token)).await.status,
        StatusCode::OK
    );
    let revoked = app
        .post(
            &format!("/v1/qr-codes/{id}/revoke"),
            json!({}),
            Some(&owner),
        )
        .await;
    assert_eq!(revoked.status, StatusCode::OK);
    assert_eq!(
        app.delete("/v1/sessions/current", Some(&token))
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    let deadline = std::time::Instant::now() + o2o_server::db::Hot::ttl(app.state.db.backend()) / 2;
    loop {
        let (status, body) = landing_json(other, &url).await;
        let me = other.get("/v1/me", Some(&token)).await;
        if status == StatusCode::NOT_FOUND && me.status == StatusCode::UNAUTHORIZED {
            assert_eq!(body["error"]["code"], "qr_revoked");
            break;
        }
        assert!(
            !two_nodes || std::time::Instant::now() < deadline,
            "the other node still trusts them"
        );
        assert!(
            two_nodes,
            "one node forgets at once: {status} {}",
            me.status
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    if let Some(n) = node2 {
        n.stop().await;
    }
}
