//! The orders pages: the kitchen board and tickets are for staff, and ids that name nothing
//! (or someone else's order) answer a 404 page, never a 500.

use crate::helpers::*;
use reqwest::StatusCode;

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
        req = req.header("cookie", page_cookies(s));
    }
    let r = req.send().await.unwrap();
    page_reply(r).await
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
            format!("o2o_session={}; o2o_csrf={PAGE_CSRF}", shop.cashier),
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

async fn get_page_in(app: &TestApp, path: &str, session: &str, lang: &str) -> (StatusCode, String) {
    let r = app
        .client
        .get(app.url(path))
        .header("accept-language", lang)
        .header("cookie", page_cookies(session))
        .send()
        .await
        .unwrap();
    let status = r.status();
    (status, r.text().await.unwrap())
}

async fn post_form(
    app: &TestApp,
    path: &str,
    session: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String) {
    let mut form: Vec<(&str, &str)> = vec![("csrf", PAGE_CSRF)];
    form.extend_from_slice(fields);
    let r = app
        .client
        .post(app.url(path))
        .header("accept-language", "en")
        .header("cookie", page_cookies(session))
        .form(&form)
        .send()
        .await
        .unwrap();
    let (status, location, _) = page_reply(r).await;
    (status, location)
}

/// A shop open round the clock with one product at `price` fen; answers (shop, product id).
async fn open_shop(app: &TestApp, name: &str, price: i64) -> (Shop, String) {
    let shop = app.shop(name).await;
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
            serde_json::json!({"name_zh": "美式", "name_en": "Americano", "description": "", "price": price, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.body);
    let id = product.body["id"].as_str().unwrap().to_owned();
    (shop, id)
}

#[tokio::test]
async fn the_delivery_page_quotes_orders_and_pays_and_the_kitchen_board_shows_the_address() {
    let app = spawn_app().await;
    let (shop, americano) = open_shop(&app, "Delivery Page Cafe", 1200).await;
    let buyer = app.funded_consumer("13700000081", 10_000).await;
    let page = format!("/stores/{}/delivery", shop.store);
    let (status, _, html) = get_page(&app, &page, Some(&buyer)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("Delivers within 3.0 km · fee ¥5.00 · minimum order ¥20.00"),
        "{html}"
    );
    assert!(html.contains("data-locate-me"), "{html}");
    assert!(html.contains("data-state=\"none\""), "{html}");
    // The store's page links here.
    let (_, _, store_html) = get_page(&app, &format!("/stores/{}", shop.store), Some(&buyer)).await;
    assert!(
        store_html.contains(&format!("href=\"{page}\"")),
        "{store_html}"
    );

    // One coffee 300 m away: quoted, ¥8.00 short of the minimum.
    let quote = format!("{page}/quote?address=Near+Road&lat=31.2330&lng=121.4737&q.{americano}=1");
    let (status, html) = get_page_in(&app, &quote, &buyer, "en").await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-state=\"ok\""), "{html}");
    assert!(html.contains("¥12.00") && html.contains("¥17.00"), "{html}");
    assert!(html.contains("add ¥8.00 more"), "{html}");
    assert!(html.contains("about 12 min"), "{html}");
    let (_, html) = get_page_in(&app, &quote, &buyer, "zh-CN").await;
    assert!(
        html.contains("还差 ¥8.00") && html.contains("约 12 分钟"),
        "{html}"
    );
    // 11 km away: refused in the page's language.
    let far = format!("{page}/quote?lat=31.33&lng=121.4737&q.{americano}=2");
    let (_, html) = get_page_in(&app, &far, &buyer, "en").await;
    assert!(html.contains("data-state=\"refused\""), "{html}");
    assert!(
        html.contains("outside the store&#39;s delivery area (within 3.0 km)")
            || html.contains("outside the store&#x27;s delivery area (within 3.0 km)"),
        "{html}"
    );
    let (_, html) = get_page_in(&app, &far, &buyer, "zh-CN").await;
    assert!(
        html.contains("超出了门店的配送范围（3.0 公里内）"),
        "{html}"
    );
    let (_, html) = get_page_in(&app, &format!("{page}/quote?lat=abc&lng=1"), &buyer, "en").await;
    assert!(
        html.contains("Enter a valid latitude and longitude"),
        "{html}"
    );

    // Ordering outside the area comes back as the form with the address kept and the refusal.
    let qty = format!("q.{americano}");
    let (status, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "delivery-page-key-0001"),
            (&qty, "2"),
            ("address", "Far Road 9"),
            ("lat", "31.33"),
            ("lng", "121.4737"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("value=\"Far Road 9\""), "{html}");
    assert!(error_at(&html, "coordinates").is_some(), "{html}");
    // Below the minimum: refused too, nothing paid.
    let (status, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "delivery-page-key-0002"),
            (&qty, "1"),
            ("address", "Near Road 1"),
            ("lat", "31.2330"),
            ("lng", "121.4737"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("Delivery needs at least ¥20.00"), "{html}");
    assert!(html.contains("value=\"Near Road 1\""), "{html}");
    assert_eq!(app.balance(&buyer).await, 10_000);

    // An address too long to keep is refused, not cut short, and nothing is paid.
    let long = "路".repeat(201);
    let (_, location) = post_form(
        &app,
        &page,
        &buyer,
        &[
            ("key", "delivery-page-key-0102"),
            (&qty, "2"),
            ("address", &long),
            ("lat", "31.2330"),
            ("lng", "121.4737"),
        ],
    )
    .await;
    assert!(!location.starts_with("/me/orders/"), "{location}");
    assert_eq!(app.balance(&buyer).await, 10_000);

    // Two coffees near by: ordered and paid, ¥24 + ¥5.
    let (status, location) = post_form(
        &app,
        &page,
        &buyer,
        &[
            ("key", "delivery-page-key-0003"),
            (&qty, "2"),
            ("address", "Near Road 1, flat 3"),
            ("lat", "31.2330"),
            ("lng", "121.4737"),
            ("contact_phone", "13700000081"),
            ("note", "Ring twice"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/me/orders/ord_"), "{location}");
    assert_eq!(app.balance(&buyer).await, 10_000 - 2900);
    let id = location.trim_start_matches("/me/orders/").to_owned();
    let (status, _, html) = get_page(&app, &location, Some(&buyer)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("Near Road 1, flat 3"), "{html}");
    assert!(html.contains("data-test=\"promised-at\""), "{html}");
    assert!(html.contains("¥5.00") && html.contains("¥29.00"), "{html}");
    assert!(html.contains(&format!("/v1/orders/{id}/events")), "{html}");

    // The kitchen board shows the address, the distance and the promise; ready for delivery.
    let board = format!("/console/kitchen?store_id={}", shop.store);
    let (_, _, html) = get_page(&app, &board, Some(&shop.cashier)).await;
    assert!(
        html.contains(&id) && html.contains("Near Road 1, flat 3"),
        "{html}"
    );
    assert!(html.contains("data-test=\"card-promised\""), "{html}");
    assert!(html.contains("13700000081"), "{html}");
    for step in ["accept", "start", "ready"] {
        let (status, location) = post_form(
            &app,
            &format!("/console/orders/{id}/step"),
            &shop.cashier,
            &[("step", step), ("store_id", shop.store.as_str())],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert!(!location.contains("error="), "{step}: {location}");
    }
    let (_, _, html) = get_page(&app, &board, Some(&shop.cashier)).await;
    assert!(html.contains("Awaiting a rider"), "{html}");
    let (_, _, html) = get_page(&app, &location, Some(&buyer)).await;
    assert!(html.contains("ready for delivery"), "{html}");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_console_saves_a_stores_delivery_settings_for_managers_only() {
    let app = spawn_app().await;
    let shop = app.shop("Settings Cafe").await;
    let page = format!("/console/stores/{}/delivery", shop.store);
    let (status, _, html) = get_page(&app, &page, Some(&shop.owner)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("value=\"3000\"") && html.contains("value=\"5.00\""),
        "{html}"
    );
    let fields = [
        ("delivery_radius_m", "5000"),
        ("delivery_fee", "6.5"),
        ("min_order", "30"),
        ("promise_minutes", "25"),
        ("prep_minutes", "8"),
    ];
    // A cashier may look but not change them.
    let (status, location) = post_form(&app, &page, &shop.cashier, &fields).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.contains("error="), "{location}");
    // A fee that is not an amount changes nothing.
    let mut bad = fields;
    bad[1] = ("delivery_fee", "lots");
    bad[0] = ("delivery_radius_m", "4000");
    let (_, location) = post_form(&app, &page, &shop.owner, &bad).await;
    assert!(location.contains("error="), "{location}");
    let (_, _, html) = get_page(&app, &location, Some(&shop.owner)).await;
    assert!(html.contains("Delivery fee (yuan)"), "{html}");
    let store = app.get(&format!("/v1/stores/{}", shop.store), None).await;
    assert_eq!(store.body["delivery_radius_m"], 3000);
    // The owner saves them.
    let (_, location) = post_form(&app, &page, &shop.owner, &fields).await;
    assert_eq!(location, format!("{page}?saved=1"));
    let r = app
        .get(
            &format!("/v1/stores/{}/order-settings", shop.store),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.body["delivery_fee"], 650, "{}", r.body);
    assert_eq!(r.body["min_order"], 3000);
    assert_eq!(r.body["promise_minutes"], 25);
    assert_eq!(r.body["prep_minutes"], 8);
    let store = app.get(&format!("/v1/stores/{}", shop.store), None).await;
    assert_eq!(store.body["delivery_radius_m"], 5000);
    // Another merchant's store is not found.
    let other = app.shop("Other Settings Cafe").await;
    let (status, _, _) = get_page(
        &app,
        &format!("/console/stores/{}/delivery", other.store),
        Some(&shop.owner),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn the_scan_and_go_page_has_a_camera_and_says_when_a_photo_held_no_barcode() {
    let app = spawn_app().await;
    let (shop, _) = open_shop(&app, "Camera Shop", 500).await;
    let buyer = app.funded_consumer("13700000082", 1_000).await;
    let page = format!("/stores/{}/scan-and-go", shop.store);
    let (status, _, html) = get_page(&app, &page, Some(&buyer)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(
        html.contains("accept=\"image/*\" capture=\"environment\""),
        "{html}"
    );
    assert!(html.contains("data-scan-camera"), "{html}");
    let (_, html) = get_page_in(
        &app,
        &format!("{page}?photo_error=barcode_not_found"),
        &buyer,
        "zh-CN",
    )
    .await;
    assert!(html.contains("照片里没有找到条码"), "{html}");
    let (_, _, html) = get_page(
        &app,
        &format!("{page}?photo_error=%3Cscript%3E"),
        Some(&buyer),
    )
    .await;
    assert!(html.contains("The photo could not be added"), "{html}");
    assert!(!html.contains("<script>"), "{html}");
}

/// Posts a form and answers (status, location, body): a refused ordering form comes back as
/// the page itself.
async fn post_form_page(
    app: &TestApp,
    path: &str,
    session: &str,
    fields: &[(&str, &str)],
) -> (StatusCode, String, String) {
    post_form_page_in(app, path, session, fields, "en").await
}

/// [`post_form_page`] in the page language `lang`.
async fn post_form_page_in(
    app: &TestApp,
    path: &str,
    session: &str,
    fields: &[(&str, &str)],
    lang: &str,
) -> (StatusCode, String, String) {
    let mut form: Vec<(&str, &str)> = vec![("csrf", PAGE_CSRF)];
    form.extend_from_slice(fields);
    post_page_in(app, path, session, &form, lang).await
}

/// The `<p class="error" …>` a page shows at `at` (its text), if any.
fn error_at(html: &str, at: &str) -> Option<String> {
    let marker = format!("data-test=\"error\" data-at=\"{at}\">");
    let start = html.find(&marker)? + marker.len();
    Some(html[start..].split("</p>").next().unwrap_or("").to_owned())
}

/// The attributes of the form control named `name`, as rendered.
fn control<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("name=\"{name}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no control {name}: {html}"));
    let end = html[start..].find('>').unwrap() + start;
    &html[start..end]
}

/// The options of the select named `name`, up to its end.
fn select<'a>(html: &'a str, name: &str) -> &'a str {
    let marker = format!("<select name=\"{name}\"");
    let start = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no select {name}: {html}"));
    let end = html[start..].find("</select>").unwrap() + start;
    &html[start..end]
}

/// A latte with a size to choose, on the shop's menu; answers its id.
async fn latte(app: &TestApp, shop: &Shop) -> String {
    let r = app
        .post(
            "/v1/products",
            serde_json::json!({
                "name_zh": "拿铁", "name_en": "Latte", "description": "", "price": 2800, "currency": "CNY",
                "option_groups": [{"key": "size", "name_zh": "杯型", "name_en": "Size", "choice": "single", "required": true,
                    "options": [{"key": "medium", "name_zh": "中杯", "name_en": "Medium", "price_delta": 0},
                                {"key": "large", "name_zh": "大杯", "name_en": "Large", "price_delta": 300}]}]
            }),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

/// A coupon of the shop's, claimed by `consumer`; answers the claimed coupon's id.
async fn claimed_coupon(app: &TestApp, shop: &Shop, consumer: &str) -> String {
    let two_off = serde_json::json!({"name": "Two off", "kind": "amount_off", "amount_off": 200});
    claimed_coupon_of(app, shop, consumer, two_off).await
}

/// A coupon of the shop's made from `template` (its name, kind and rule), claimed by
/// `consumer`; answers the claimed coupon's id.
async fn claimed_coupon_of(
    app: &TestApp,
    shop: &Shop,
    consumer: &str,
    mut template: serde_json::Value,
) -> String {
    template["merchant_id"] = shop.merchant.clone().into();
    template["currency"] = "CNY".into();
    template["total_stock"] = 10.into();
    let r = app
        .post("/v1/coupon-templates", template, Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let template = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/coupon-templates/{template}/claims"),
            serde_json::json!({}),
            Some(consumer),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mine = app.get("/v1/me/coupons", Some(consumer)).await;
    mine.body["data"][0]["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_refused_delivery_form_comes_back_with_everything_chosen_and_the_refusal_by_its_field() {
    let app = spawn_app().await;
    let (shop, americano) = open_shop(&app, "Refused Delivery Cafe", 1200).await;
    let latte = latte(&app, &shop).await;
    let buyer = app.funded_consumer("13700000091", 10_000).await;
    let coupon = claimed_coupon(&app, &shop, &buyer).await;
    let page = format!("/stores/{}/delivery", shop.store);
    let (q_americano, q_latte, o_latte) = (
        format!("q.{americano}"),
        format!("q.{latte}"),
        format!("o.{latte}.size"),
    );
    let far = [
        ("key", "refused-delivery-key-0001"),
        (q_americano.as_str(), "2"),
        (q_latte.as_str(), "1"),
        (o_latte.as_str(), "large"),
        ("address", "Far Road 9"),
        ("lat", "31.33"),
        ("lng", "121.4737"),
        ("contact_phone", "13700000091"),
        ("note", "Ring twice"),
        ("coupon", coupon.as_str()),
    ];
    // 11 km away: the page itself comes back, filled as it was sent.
    let (status, location, html) = post_form_page(&app, &page, &buyer, &far).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{location} {html}");
    assert!(
        control(&html, &q_americano).contains("value=\"2\""),
        "{html}"
    );
    assert!(control(&html, &q_latte).contains("value=\"1\""), "{html}");
    assert!(
        select(&html, &o_latte).contains("value=\"large\" selected"),
        "{html}"
    );
    assert!(
        !select(&html, &o_latte).contains("value=\"medium\" selected"),
        "{html}"
    );
    assert!(
        control(&html, "address").contains("value=\"Far Road 9\""),
        "{html}"
    );
    assert!(control(&html, "lat").contains("value=\"31.33\""), "{html}");
    assert!(
        control(&html, "lng").contains("value=\"121.4737\""),
        "{html}"
    );
    assert!(
        control(&html, "contact_phone").contains("value=\"13700000091\""),
        "{html}"
    );
    assert!(
        control(&html, "note").contains("value=\"Ring twice\""),
        "{html}"
    );
    let coupons = select(&html, "coupon");
    assert!(
        coupons.contains(&format!("value=\"{coupon}\" selected")),
        "{coupons}"
    );
    assert!(!coupons.contains("value=\"best\" selected"), "{coupons}");
    // The refusal is by the coordinates, and only there.
    let said = error_at(&html, "coordinates").expect("an error by the coordinates");
    assert!(said.contains("delivery area (within 3.0 km)"), "{said}");
    assert_eq!(html.matches("data-test=\"error\"").count(), 1, "{html}");
    // The quote part says the same, and the form has a fresh key.
    assert!(html.contains("data-state=\"refused\""), "{html}");
    assert!(!html.contains("refused-delivery-key-0001"), "{html}");

    // Near by but below the minimum: by the menu; "no coupon" stays chosen.
    let (status, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "refused-delivery-key-0002"),
            (q_americano.as_str(), "1"),
            ("address", "Near Road 1"),
            ("lat", "31.2330"),
            ("lng", "121.4737"),
            ("coupon", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    let said = error_at(&html, "menu").expect("an error by the menu");
    assert!(said.contains("Delivery needs at least ¥20.00"), "{said}");
    assert!(
        control(&html, &q_americano).contains("value=\"1\""),
        "{html}"
    );
    assert!(
        select(&html, "coupon").contains("value=\"\" selected"),
        "{html}"
    );

    // No address text: by the address field.
    let (_, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "refused-delivery-key-0003"),
            (q_americano.as_str(), "2"),
            ("address", ""),
            ("lat", "31.2330"),
            ("lng", "121.4737"),
        ],
    )
    .await;
    assert!(error_at(&html, "address").is_some(), "{html}");

    // Sold out since the form was shown: said on that product.
    let r = app
        .send(
            app.client
                .put(app.url(&format!("/v1/stores/{}/products/{americano}", shop.store)))
                .bearer_auth(&shop.owner)
                .json(&serde_json::json!({"stock": 0})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (status, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "refused-delivery-key-0004"),
            (q_americano.as_str(), "2"),
            (q_latte.as_str(), "1"),
            (o_latte.as_str(), "large"),
            ("address", "Near Road 1"),
            ("lat", "31.2330"),
            ("lng", "121.4737"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    let item = html
        .split("data-test=\"menu-item\"")
        .find(|part| part.contains(&format!("data-product=\"{americano}\"")))
        .unwrap();
    assert!(
        item.contains("data-test=\"error\" data-at=\"item\""),
        "{item}"
    );
    assert!(control(&html, &q_latte).contains("value=\"1\""), "{html}");

    // Nothing moved; the corrected form orders.
    assert_eq!(app.balance(&buyer).await, 10_000);
    let (status, location, _) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "refused-delivery-key-0005"),
            (q_latte.as_str(), "1"),
            (o_latte.as_str(), "large"),
            ("address", "Near Road 1"),
            ("lat", "31.2330"),
            ("lng", "121.4737"),
            ("coupon", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/me/orders/ord_"), "{location}");
    // ¥28 + ¥3 (large) + ¥5 fee.
    assert_eq!(app.balance(&buyer).await, 10_000 - 3_600);
    app.assert_ledger_verifies().await;
}

/// The value of the first pickup slot the page offers (not "as soon as ready").
fn first_slot(html: &str) -> String {
    let slots = select(html, "pickup_at");
    slots
        .split("<option value=\"")
        .skip(1)
        .map(|o| o.split('"').next().unwrap())
        .find(|v| !v.is_empty())
        .unwrap_or_else(|| panic!("no slot: {slots}"))
        .to_owned()
}

#[tokio::test]
async fn a_coupon_that_does_not_apply_is_refused_with_its_reason_and_figures_in_either_language() {
    let app = spawn_app().await;
    let (shop, americano) = open_shop(&app, "Min Spend Cafe", 1200).await;
    let buyer = app.funded_consumer("13700000093", 10_000).await;
    let five_off_fifty = serde_json::json!({"name": "Five off fifty", "kind": "amount_off",
        "amount_off": 500, "min_spend": 5000});
    let coupon = claimed_coupon_of(&app, &shop, &buyer, five_off_fifty).await;
    let page = format!("/stores/{}/pickup", shop.store);
    let (_, _, html) = get_page(&app, &page, Some(&buyer)).await;
    let slot = first_slot(&html);
    let q_americano = format!("q.{americano}");
    for (lang, key, said) in [
        (
            "zh-CN",
            "min-spend-pickup-key-0001",
            "满 ¥50.00 才能用这张券，这笔消费为 ¥12.00。",
        ),
        (
            "en",
            "min-spend-pickup-key-0002",
            "This coupon needs a spend of at least ¥50.00 (this bill is ¥12.00).",
        ),
    ] {
        let (status, _, html) = post_form_page_in(
            &app,
            &page,
            &buyer,
            &[
                ("key", key),
                (q_americano.as_str(), "1"),
                ("pickup_at", slot.as_str()),
                ("coupon", coupon.as_str()),
            ],
            lang,
        )
        .await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{lang}: {html}");
        assert!(html.contains(said), "{lang}: {html}");
    }
    // Nothing was paid.
    let wallet = app.get("/v1/wallet", Some(&buyer)).await;
    assert_eq!(wallet.body["balance"], 10_000, "{}", wallet.body);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_refused_pickup_form_comes_back_with_the_slot_items_and_coupon_chosen() {
    let app = spawn_app().await;
    let (shop, americano) = open_shop(&app, "Refused Pickup Cafe", 1200).await;
    let latte = latte(&app, &shop).await;
    // ¥10 in the wallet: not enough for what is chosen.
    let buyer = app.funded_consumer("13700000092", 1_000).await;
    let coupon = claimed_coupon(&app, &shop, &buyer).await;
    let page = format!("/stores/{}/pickup", shop.store);
    let (_, _, html) = get_page(&app, &page, Some(&buyer)).await;
    let slot = first_slot(&html);
    let (q_americano, q_latte, o_latte) = (
        format!("q.{americano}"),
        format!("q.{latte}"),
        format!("o.{latte}.size"),
    );
    let (status, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "refused-pickup-key-00001"),
            (q_americano.as_str(), "1"),
            (q_latte.as_str(), "2"),
            (o_latte.as_str(), "large"),
            ("pickup_at", slot.as_str()),
            ("coupon", coupon.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED, "{html}");
    assert!(
        control(&html, &q_americano).contains("value=\"1\""),
        "{html}"
    );
    assert!(control(&html, &q_latte).contains("value=\"2\""), "{html}");
    assert!(
        select(&html, &o_latte).contains("value=\"large\" selected"),
        "{html}"
    );
    assert!(
        select(&html, "pickup_at").contains(&format!("value=\"{slot}\" selected")),
        "{html}"
    );
    assert!(
        select(&html, "coupon").contains(&format!("value=\"{coupon}\" selected")),
        "{html}"
    );
    // Not enough in the wallet: said by the button, with the way to top up.
    let said = error_at(&html, "pay").expect("an error by the pay button");
    assert!(said.contains("data-test=\"top-up-link\""), "{said}");
    assert_eq!(html.matches("data-test=\"error\"").count(), 1, "{html}");

    // A time more than a week ahead: said by the slot, the items still chosen.
    let (status, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "refused-pickup-key-00002"),
            (q_americano.as_str(), "1"),
            ("pickup_at", "2099-01-01T04:00:00Z"),
            ("coupon", "best"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(error_at(&html, "slot").is_some(), "{html}");
    assert!(
        control(&html, &q_americano).contains("value=\"1\""),
        "{html}"
    );
    assert!(
        select(&html, "coupon").contains("value=\"best\" selected"),
        "{html}"
    );
    // A time that is no time: said by the slot in the page's words, not the parser's.
    let (status, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[
            ("key", "refused-pickup-key-00004"),
            (q_americano.as_str(), "1"),
            ("pickup_at", "tomorrow-ish"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    let said = error_at(&html, "slot").expect("an error by the slot");
    assert!(said.contains("Choose a pickup time."), "{said}");
    assert!(!html.contains("RFC 3339"), "{html}");
    // Nothing chosen at all: by the menu.
    let (_, _, html) = post_form_page(
        &app,
        &page,
        &buyer,
        &[("key", "refused-pickup-key-00003"), ("pickup_at", "")],
    )
    .await;
    assert!(error_at(&html, "menu").is_some(), "{html}");
    assert_eq!(app.balance(&buyer).await, 1_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_refused_table_order_comes_back_with_the_items_chosen() {
    let app = spawn_app().await;
    let (shop, americano) = open_shop(&app, "Refused Table Cafe", 1200).await;
    let latte = latte(&app, &shop).await;
    let table = app
        .post(
            &format!("/v1/stores/{}/tables", shop.store),
            serde_json::json!({"label": "T1"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(table.status, StatusCode::CREATED, "{}", table.body);
    let code = app
        .post(
            "/v1/qr-codes",
            serde_json::json!({"kind": "table", "store_id": shop.store, "table_id": table.body["id"]}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
    let url = code.body["url"].as_str().unwrap();
    let short = url.rsplit('/').next().unwrap().to_owned();
    let guest = app.consumer_token("13700000093", None).await;
    let (q_americano, q_latte, o_latte) = (
        format!("q.{americano}"),
        format!("q.{latte}"),
        format!("o.{latte}.size"),
    );
    // A quantity that is not a number refuses the whole form.
    let (status, location) = post_form(
        &app,
        &format!("/q/{short}/items"),
        &guest,
        &[
            ("key", "refused-table-key-000001"),
            (q_americano.as_str(), "0"),
            (q_latte.as_str(), "2"),
            (o_latte.as_str(), "large"),
            (&format!("q.{}", "prd_typo"), "two"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.contains("error="), "{location}");
    let (status, _, html) = get_page(&app, &location, Some(&guest)).await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-test=\"error\""), "{html}");
    assert!(control(&html, &q_latte).contains("value=\"2\""), "{html}");
    assert!(
        select(&html, &o_latte).contains("value=\"large\" selected"),
        "{html}"
    );
    assert!(
        control(&html, &q_americano).contains("value=\"0\""),
        "{html}"
    );
}

/// The code an order's page shows (its `data-code`), if it shows one.
fn shown_code(html: &str) -> Option<String> {
    let start = html.find("data-code=\"")? + "data-code=\"".len();
    Some(html[start..].split('"').next().unwrap().to_owned())
}

#[tokio::test]
async fn a_pickup_code_is_the_same_on_every_view_until_it_is_used_or_expires() {
    let app = spawn_app().await;
    let (shop, americano) = open_shop(&app, "Stable Code Cafe", 1200).await;
    let buyer = app.funded_consumer("13700000094", 10_000).await;
    let place = || async {
        let r = app
            .post(
                "/v1/orders",
                serde_json::json!({"channel": "pickup", "store_id": shop.store,
                    "items": [{"product_id": americano}], "payment": {"source": "wallet"}}),
                Some(&buyer),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    };
    let order = place().await;
    let path = format!("/me/orders/{order}");
    let (_, _, first) = get_page(&app, &path, Some(&buyer)).await;
    let (_, _, second) = get_page(&app, &path, Some(&buyer)).await;
    let code = shown_code(&first).expect("a pickup code");
    assert!(code.starts_with("O2O:"), "{code}");
    assert_eq!(shown_code(&second).as_deref(), Some(code.as_str()));
    // The API gives the same code while it is usable.
    let r = app
        .post(
            &format!("/v1/orders/{order}/code"),
            serde_json::json!({}),
            Some(&buyer),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["code"], code.as_str());
    // It scans once: the order is handed over; a second scan is told it was used.
    let scan = || {
        app.post(
            "/v1/scan",
            serde_json::json!({"payload": code, "store_id": shop.store}),
            Some(&shop.cashier),
        )
    };
    let r = scan().await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["kind"], "pickup");
    assert_eq!(r.body["order"]["status"], "completed");
    let r = scan().await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "code_used");
    // At another store of another merchant it is not theirs to take.
    let other = app.shop("Other Code Cafe").await;
    let r = app
        .post(
            "/v1/scan",
            serde_json::json!({"payload": code, "store_id": other.store}),
            Some(&other.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "code_wrong_store");

    // A second order whose code was used without the order moving (the scan went through, the
    // handover did not): the page says it was used, with no QR, and offers a new one, which
    // scans and hands the order over.
    let second = place().await;
    let path = format!("/me/orders/{second}");
    let (_, _, html) = get_page(&app, &path, Some(&buyer)).await;
    assert!(shown_code(&html).is_some(), "{html}");
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE issued_tokens SET used_at = 1 WHERE subject = $1")
                .bind(second.clone()),
        )
        .await
        .unwrap();
    let (_, _, html) = get_page(&app, &path, Some(&buyer)).await;
    assert!(html.contains("data-test=\"order-code-used\""), "{html}");
    assert!(shown_code(&html).is_none(), "{html}");
    let (status, _) = post_form(&app, &format!("{path}/code"), &buyer, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, _, html) = get_page(&app, &path, Some(&buyer)).await;
    let replaced = shown_code(&html).expect("a new pickup code");
    let r = app
        .post(
            "/v1/scan",
            serde_json::json!({"payload": replaced, "store_id": shop.store}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["status"], "completed");
    let r = app
        .post(
            &format!("/v1/orders/{second}/code"),
            serde_json::json!({}),
            Some(&buyer),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "no_code");

    // A third whose code lapsed: the page says so and offers a new one, which then stays.
    let third = place().await;
    let path = format!("/me/orders/{third}");
    let (_, _, html) = get_page(&app, &path, Some(&buyer)).await;
    let old = shown_code(&html).expect("a pickup code");
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE issued_tokens SET expires_at = 1 WHERE subject = $1")
                .bind(third.clone()),
        )
        .await
        .unwrap();
    let (_, _, html) = get_page(&app, &path, Some(&buyer)).await;
    assert!(html.contains("data-test=\"order-code-expired\""), "{html}");
    assert!(shown_code(&html).is_none(), "{html}");
    let (status, location) = post_form(&app, &format!("{path}/code"), &buyer, &[]).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, path);
    let (_, _, html) = get_page(&app, &path, Some(&buyer)).await;
    let renewed = shown_code(&html).expect("a new pickup code");
    assert_ne!(renewed, old);
    let (_, _, html) = get_page(&app, &path, Some(&buyer)).await;
    assert_eq!(shown_code(&html).as_deref(), Some(renewed.as_str()));
    app.assert_ledger_verifies().await;
}

/// The order's issued codes: (all of them, those neither used nor expired).
async fn tokens_of(app: &TestApp, order: &str) -> (i64, i64) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_micros() as i64;
    app.state
        .db
        .fetch_one(
            o2o_server::db::query(
                "SELECT COUNT(*), CAST(COALESCE(SUM(CASE WHEN used_at IS NULL AND expires_at > $2 \
                 THEN 1 ELSE 0 END), 0) AS BIGINT) FROM issued_tokens WHERE subject = $1",
            )
            .bind(order.to_owned())
            .bind(now),
        )
        .await
        .unwrap()
}

/// Sixteen requests at once for the order's code: the codes they got.
async fn codes_at_once(app: &TestApp, buyer: &str, order: &str) -> Vec<String> {
    let path = format!("/v1/orders/{order}/code");
    let results = futures::future::join_all(
        (0..16).map(|_| app.post(&path, serde_json::json!({}), Some(buyer))),
    )
    .await;
    results
        .into_iter()
        .map(|r| {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            assert_eq!(r.body["kind"], "pickup");
            r.body["code"].as_str().unwrap().to_owned()
        })
        .collect()
}

#[tokio::test]
async fn concurrent_first_requests_for_an_orders_code_all_get_the_one_code() {
    let app = spawn_app().await;
    let (shop, americano) = open_shop(&app, "Race Code Cafe", 1200).await;
    let buyer = app.funded_consumer("13700000095", 10_000).await;
    let place = || async {
        let r = app
            .post(
                "/v1/orders",
                serde_json::json!({"channel": "pickup", "store_id": shop.store,
                    "items": [{"product_id": americano}], "payment": {"source": "wallet"}}),
                Some(&buyer),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert_eq!(r.body["payment_status"], "paid");
        r.body["id"].as_str().unwrap().to_owned()
    };
    // Sixteen first requests at once: one code, one token row.
    let order = place().await;
    let codes = codes_at_once(&app, &buyer, &order).await;
    assert!(codes.iter().all(|c| *c == codes[0]), "{codes:?}");
    assert_eq!(tokens_of(&app, &order).await, (1, 1));
    let (_, _, html) = get_page(&app, &format!("/me/orders/{order}"), Some(&buyer)).await;
    assert_eq!(shown_code(&html).as_deref(), Some(codes[0].as_str()));

    // First views of the page racing with the API: still one code.
    let second = place().await;
    let path = format!("/me/orders/{second}");
    let (pages, api) = tokio::join!(
        futures::future::join_all((0..8).map(|_| get_page(&app, &path, Some(&buyer)))),
        codes_at_once(&app, &buyer, &second),
    );
    for (status, _, html) in &pages {
        assert_eq!(*status, StatusCode::OK);
        assert_eq!(shown_code(html).as_deref(), Some(api[0].as_str()), "{html}");
    }
    assert!(api.iter().all(|c| *c == api[0]), "{api:?}");
    assert_eq!(tokens_of(&app, &second).await, (1, 1));

    // A used code still waiting for its handover is replaced by one new code, however many
    // ask at once; it scans and hands the order over.
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE issued_tokens SET used_at = 1 WHERE subject = $1")
                .bind(order.clone()),
        )
        .await
        .unwrap();
    let renewed = codes_at_once(&app, &buyer, &order).await;
    assert!(renewed.iter().all(|c| *c == renewed[0]), "{renewed:?}");
    assert_ne!(renewed[0], codes[0]);
    assert_eq!(tokens_of(&app, &order).await, (2, 1));
    let r = app
        .post(
            "/v1/scan",
            serde_json::json!({"payload": renewed[0], "store_id": shop.store}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["status"], "completed");

    // A live code that cannot be shown again (here: issued before keys were numbered) is
    // replaced, and the replaced one no longer scans: an order never has two codes that work.
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE issued_tokens SET key_id = NULL WHERE subject = $1")
                .bind(second.clone()),
        )
        .await
        .unwrap();
    let replacement = codes_at_once(&app, &buyer, &second).await;
    assert!(replacement.iter().all(|c| *c == replacement[0]));
    assert_ne!(replacement[0], api[0]);
    assert_eq!(tokens_of(&app, &second).await, (2, 1));
    let old = app
        .post(
            "/v1/scan",
            serde_json::json!({"payload": api[0], "store_id": shop.store}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(old.status, StatusCode::CONFLICT, "{}", old.body);
    assert_eq!(old.code(), "code_used");
    let r = app
        .post(
            "/v1/scan",
            serde_json::json!({"payload": replacement[0], "store_id": shop.store}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["status"], "completed");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_table_code_pays_and_places_only_that_tables_order() {
    let app = spawn_app().await;
    let c = crate::orders::cafe(&app, "Two Tables").await;
    let table2 = app
        .post(
            &format!("/v1/stores/{}/tables", c.shop.store),
            serde_json::json!({"label": "A2"}),
            Some(&c.shop.owner),
        )
        .await;
    let code2 = app
        .post(
            "/v1/qr-codes",
            serde_json::json!({"kind": "table", "store_id": c.shop.store, "table_id": table2.body["id"]}),
            Some(&c.shop.owner),
        )
        .await;
    assert_eq!(code2.status, StatusCode::CREATED, "{}", code2.body);
    let path_of = |url: &str| url[url.find("/q/").unwrap()..].to_owned();
    let (at1, at2) = (
        path_of(&c.table_qr),
        path_of(code2.body["url"].as_str().unwrap()),
    );
    let ann = app.funded_consumer("+8613800000191", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            serde_json::json!({"channel": "dine_in", "qr": c.table_qr,
                "items": [{"product_id": c.cake}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    // From the other table's code: no such order there, and nothing is placed or paid.
    for action in ["place", "order-pay"] {
        let (status, _) = post_form(
            &app,
            &format!("{at2}/{action}"),
            &ann,
            &[("order", &order), ("amount", "1.00")],
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND, "{action}");
    }
    let o = app.get(&format!("/v1/orders/{order}"), Some(&ann)).await;
    assert_eq!(o.body["amount_paid"], 0);
    assert_eq!(o.body["status"], "open");
    assert_eq!(app.balance(&ann).await, 10_000);
    // From its own table's code it is placed and paid.
    for action in ["place", "order-pay"] {
        let (status, location) = post_form(
            &app,
            &format!("{at1}/{action}"),
            &ann,
            &[("order", &order), ("amount", "")],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER, "{action}");
        assert!(!location.contains("error"), "{action}: {location}");
    }
    let o = app.get(&format!("/v1/orders/{order}"), Some(&ann)).await;
    assert_eq!(o.body["status"], "placed", "{}", o.body);
    assert_eq!(o.body["payment_status"], "paid", "{}", o.body);
    app.assert_ledger_verifies().await;
}
