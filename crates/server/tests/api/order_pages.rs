//! The orders pages: the kitchen board and tickets are for staff, and ids that name nothing
//! (or someone else's order) answer a 404 page, never a 500.

use crate::helpers::*;
use reqwest::StatusCode;

const CSRF: &str = "page-test-csrf-token-0123456789";

fn cookies(session: &str) -> String {
    format!("o2o_session={session}; o2o_csrf={CSRF}")
}

async fn get_page(
    app: &TestApp,
    path: &str,
    session: Option<&str>,
) -> (StatusCode, String, String) {
    let mut req = app
        .client
        .get(app.url(path))
        .header("accept-language", "en");
    if let Some(s) = session {
        req = req.header("cookie", cookies(s));
    }
    let r = req.send().await.unwrap();
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

#[tokio::test]
async fn the_kitchen_board_is_for_staff_only() {
    let app = spawn_app().await;
    let shop = app.shop("Board Cafe").await;
    let (status, location, _) = get_page(&app, "/console/kitchen", None).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/console/login");
    let consumer = app.consumer_token("13700000071", None).await;
    let (status, location, _) = get_page(&app, "/console/kitchen", Some(&consumer)).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/console/login");
    let path = format!("/console/kitchen?store_id={}", shop.store);
    let (status, _, html) = get_page(&app, &path, Some(&shop.cashier)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Kitchen board"), "{html}");
    assert!(
        html.contains(&format!("/v1/stores/{}/orders/events", shop.store)),
        "{html}"
    );
    // Another merchant's store is not on this cashier's board.
    let other = app.shop("Other Cafe").await;
    let path = format!("/console/kitchen?store_id={}", other.store);
    let (status, _, _) = get_page(&app, &path, Some(&shop.cashier)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn ids_that_name_nothing_get_a_not_found_page() {
    let app = spawn_app().await;
    let shop = app.shop("Missing Cafe").await;
    let consumer = app.consumer_token("13700000072", None).await;
    for path in [
        "/me/orders/ord_nothing",
        "/me/orders/%27%22%3Cx%3E",
        "/stores/sto_nothing/pickup",
        "/stores/sto_nothing/scan-and-go",
    ] {
        let (status, _, html) = get_page(&app, path, Some(&consumer)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{path}: {html}");
        assert!(html.contains("data-test=\"error\""), "{path}: {html}");
    }
    let path = format!("/stores/{}/scan-and-go?order=ord_nothing", shop.store);
    let (status, _, _) = get_page(&app, &path, Some(&consumer)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _, html) = get_page(
        &app,
        "/console/orders/ord_nothing/ticket",
        Some(&shop.cashier),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
}

#[tokio::test]
async fn a_consumer_sees_only_their_own_pickup_order_and_its_code() {
    let app = spawn_app().await;
    let shop = app.shop("Pickup Cafe").await;
    let r = app
        .patch(
            &format!("/v1/stores/{}", shop.store),
            serde_json::json!({"opening_hours": "Mo-Su 00:00-24:00"}),
            Some(&shop.owner),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let product = app
        .post(
            "/v1/products",
            serde_json::json!({"name_zh": "美式", "name_en": "Americano", "description": "", "price": 2200, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.body);
    let buyer = app.funded_consumer("13700000073", 10_000).await;
    let order = app
        .post(
            "/v1/orders",
            serde_json::json!({"channel": "pickup", "store_id": shop.store,
                "items": [{"product_id": product.body["id"]}], "payment": {"source": "wallet"}}),
            Some(&buyer),
        )
        .await;
    assert_eq!(order.status, StatusCode::CREATED, "{}", order.body);
    let id = order.body["id"].as_str().unwrap();
    let number = order.body["pickup_number"].as_str().unwrap();
    let path = format!("/me/orders/{id}");
    let (status, _, html) = get_page(&app, &path, Some(&buyer)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains(number), "{html}");
    assert!(html.contains("<svg"), "the pickup code is drawn: {html}");
    assert!(html.contains(&format!("/v1/orders/{id}/events")), "{html}");
    let stranger = app.consumer_token("13700000074", None).await;
    let (status, _, html) = get_page(&app, &path, Some(&stranger)).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{html}");
    assert!(!html.contains(number));
    // The kitchen board shows it with its pickup number; the ticket too.
    let board = format!("/console/kitchen?store_id={}", shop.store);
    let (status, _, html) = get_page(&app, &board, Some(&shop.cashier)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(id) && html.contains(number), "{html}");
    let ticket = format!("/console/orders/{id}/ticket");
    let (status, _, html) = get_page(&app, &ticket, Some(&shop.cashier)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("80mm") && html.contains("@media print"),
        "{html}"
    );
}

#[tokio::test]
async fn a_handover_form_without_its_csrf_token_is_refused() {
    let app = spawn_app().await;
    let shop = app.shop("Forged Cafe").await;
    let r = app
        .client
        .post(app.url("/console/counter/handover"))
        .header(
            "cookie",
            format!("o2o_session={}; o2o_csrf={CSRF}", shop.cashier),
        )
        .form(&[
            ("csrf", "forged-forged-forged-forged"),
            ("store_id", shop.store.as_str()),
            ("code", "123456"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
}
