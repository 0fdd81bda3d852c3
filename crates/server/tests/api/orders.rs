use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A café with a latte (options), a cake with a stock count, and a table with its code.
pub(crate) struct Cafe {
    pub(crate) shop: Shop,
    pub(crate) latte: String,
    pub(crate) cake: String,
    pub(crate) table: String,
    pub(crate) table_qr: String,
}

pub(crate) async fn cafe(app: &TestApp, name: &str) -> Cafe {
    let shop = app.shop(name).await;
    let latte = app
        .post(
            "/v1/products",
            json!({
                "name_zh": "拿铁", "name_en": "Latte", "description": "", "price": 2800, "currency": "CNY",
                "barcode": "6901234567892",
                "option_groups": [{"key": "size", "name_zh": "杯型", "choice": "single", "required": true,
                    "options": [{"key": "medium", "name_zh": "中杯", "price_delta": 0},
                                {"key": "large", "name_zh": "大杯", "price_delta": 300}]}]
            }),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(latte.status, StatusCode::CREATED, "{}", latte.body);
    let cake = app
        .post(
            "/v1/products",
            json!({"name_zh": "芝士蛋糕", "description": "", "price": 3200, "currency": "CNY",
                   "barcode": "4006381333931"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(cake.status, StatusCode::CREATED, "{}", cake.body);
    let cake = cake.body["id"].as_str().unwrap().to_owned();
    set_stock(app, &shop, &cake, Some(5)).await;
    let table = app
        .post(
            &format!("/v1/stores/{}/tables", shop.store),
            json!({"label": "A1"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(table.status, StatusCode::CREATED, "{}", table.body);
    let table = table.body["id"].as_str().unwrap().to_owned();
    let code = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "table", "store_id": shop.store, "table_id": table}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
    Cafe {
        latte: latte.body["id"].as_str().unwrap().to_owned(),
        cake,
        table,
        table_qr: code.body["url"].as_str().unwrap().to_owned(),
        shop,
    }
}

async fn set_stock(app: &TestApp, shop: &Shop, product: &str, stock: Option<i64>) {
    let r = app
        .send(
            app.client
                .put(app.url(&format!("/v1/stores/{}/products/{product}", shop.store)))
                .bearer_auth(&shop.owner)
                .json(&json!({"stock": stock})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

pub(crate) async fn stock_of(app: &TestApp, shop: &Shop, product: &str) -> Value {
    let r = app
        .get(
            &format!("/v1/stores/{}/products/{product}", shop.store),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["stock"].clone()
}

pub(crate) async fn step(app: &TestApp, token: &str, order: &str, what: &str) -> Res {
    app.post(
        &format!("/v1/orders/{order}/{what}"),
        json!({}),
        Some(token),
    )
    .await
}

#[tokio::test]
async fn two_phones_share_one_table_order_that_is_placed_split_paid_and_completed() {
    let app = spawn_app().await;
    let c = cafe(&app, "Table Cafe").await;
    let ann = app.funded_consumer("+8613800000101", 10_000).await;
    let bo = app.funded_consumer("+8613800000102", 10_000).await;

    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "qr": c.table_qr,
                   "items": [{"product_id": c.latte, "options": {"size": ["large"]}}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["status"], "open");
    assert_eq!(r.body["items"][0]["unit_price"], 3100);
    assert_eq!(r.body["table_id"], c.table.as_str());

    // The second phone at the table adds to the same order.
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "qr": c.table_qr,
                   "items": [{"product_id": c.cake, "quantity": 2}], "place": true}),
            Some(&bo),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["id"], order.as_str(), "one order per table");
    assert_eq!(r.body["status"], "placed");
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert_eq!(r.body["subtotal"], 3100 + 6400);
    assert_eq!(r.body["total"], 9500);
    assert!(
        r.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["sent"] == true)
    );

    // The kitchen sees it and moves it along.
    let board = app
        .get(
            &format!("/v1/stores/{}/orders", c.shop.store),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(board.status, StatusCode::OK, "{}", board.body);
    assert!(
        board.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["id"] == order.as_str())
    );
    for s in ["accept", "start", "ready"] {
        let r = step(&app, &c.shop.cashier, &order, s).await;
        assert_eq!(r.status, StatusCode::OK, "{s}: {}", r.body);
    }
    // Completing before it is paid is refused.
    let r = step(&app, &c.shop.cashier, &order, "complete").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "order_unpaid");
    // Money in a message is money, not minor units.
    assert!(r.message().contains("¥95.00"), "{}", r.body);

    // Split: Ann pays 5,000, Bo pays the rest.
    let r = app
        .post(
            &format!("/v1/orders/{order}/pay"),
            json!({"amount": 5000}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["order_id"], order.as_str());
    let r = app
        .post(
            &format!("/v1/orders/{order}/pay"),
            json!({"amount": 9000}),
            Some(&bo),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "amount_exceeds_due");
    assert!(r.message().contains("¥45.00"), "{}", r.body);
    let r = app
        .post(&format!("/v1/orders/{order}/pay"), json!({}), Some(&bo))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["amount"], 4500);
    assert_eq!(app.balance(&ann).await, 5000);
    assert_eq!(app.balance(&bo).await, 5500);
    // Paying twice is refused and moves nothing.
    let r = app
        .post(&format!("/v1/orders/{order}/pay"), json!({}), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "order_already_paid");
    assert_eq!(app.balance(&ann).await, 5000);

    let r = app.get(&format!("/v1/orders/{order}"), Some(&ann)).await;
    assert_eq!(r.body["payment_status"], "paid");
    assert_eq!(r.body["amount_due"], 0);
    assert_eq!(r.body["payments"].as_array().unwrap().len(), 2);
    // A paid order takes no more items; the table is free for the next guests.
    let r = app
        .post(
            &format!("/v1/orders/{order}/items"),
            json!({"items": [{"product_id": c.cake}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "order_not_open");

    let r = step(&app, &c.shop.cashier, &order, "complete").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "completed");
    // Illegal moves say which.
    let r = step(&app, &c.shop.cashier, &order, "accept").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "order_transition_invalid");
    assert!(
        r.body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("completed")
    );

    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "qr": c.table_qr, "items": [{"product_id": c.cake}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(
        r.status,
        StatusCode::CREATED,
        "a new order for the next guests: {}",
        r.body
    );
    assert_ne!(r.body["id"], order.as_str());
    // Two cakes were sold and one more is in the new cart.
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 2);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn prices_come_from_the_menu_and_bad_items_change_nothing() {
    let app = spawn_app().await;
    let c = cafe(&app, "Price Cafe").await;
    let ann = app.funded_consumer("+8613800000111", 10_000).await;
    for (body, status, code) in [
        (
            json!({"channel": "pickup", "store_id": c.shop.store,
                   "items": [{"product_id": c.latte, "options": {"size": ["medium"]}, "unit_price": 1}]}),
            StatusCode::BAD_REQUEST,
            "unknown_field",
        ),
        (
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.latte}]}),
            StatusCode::BAD_REQUEST,
            "option_required",
        ),
        (
            json!({"channel": "pickup", "store_id": c.shop.store,
                   "items": [{"product_id": c.cake, "quantity": 0}]}),
            StatusCode::BAD_REQUEST,
            "quantity_out_of_range",
        ),
        (
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": "prd_nope"}]}),
            StatusCode::NOT_FOUND,
            "product_not_found",
        ),
        (
            json!({"channel": "takeaway", "store_id": c.shop.store, "items": [{"product_id": c.cake}]}),
            StatusCode::BAD_REQUEST,
            "channel_invalid",
        ),
        (
            json!({"channel": "pickup", "store_id": c.shop.store, "items": []}),
            StatusCode::BAD_REQUEST,
            "items_required",
        ),
        (
            json!({"channel": "dine_in", "store_id": c.shop.store, "items": [{"product_id": c.cake}]}),
            StatusCode::BAD_REQUEST,
            "table_required",
        ),
        (
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake, "quantity": 6}],
                   "payment": {"source": "wallet"}}),
            StatusCode::CONFLICT,
            "product_sold_out",
        ),
    ] {
        let r = app.post("/v1/orders", body.clone(), Some(&ann)).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(
            r.code() == code || (code == "unknown_field" && r.status == StatusCode::BAD_REQUEST),
            "{body}: {}",
            r.body
        );
    }
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store,
                   "items": [{"product_id": c.latte, "options": {"size": ["large"]}, "quantity": 2}],
                   "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["total"], 6200);
    assert_eq!(app.balance(&ann).await, 10_000 - 6200);
    assert_eq!(
        stock_of(&app, &c.shop, &c.cake).await,
        5,
        "nothing reserved by refused orders"
    );
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_pickup_order_is_paid_when_ordering_and_handed_over_against_its_code_once() {
    let app = spawn_app().await;
    let c = cafe(&app, "Pickup Cafe").await;
    let ann = app.funded_consumer("+8613800000121", 10_000).await;
    let r = app
        .post_idem(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "payment": {"source": "wallet"}, "note": "少糖"}),
            Some(&ann),
            "pickup-1",
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(r.body["status"], "placed");
    assert_eq!(r.body["payment_status"], "paid");
    assert!(r.body["pickup_at"].is_string());
    let number = r.body["pickup_number"].as_str().unwrap().to_owned();
    assert_eq!(number.len(), 6);
    // A retry with the same key places nothing more.
    let again = app
        .post_idem(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "payment": {"source": "wallet"}, "note": "少糖"}),
            Some(&ann),
            "pickup-1",
        )
        .await;
    assert_eq!(again.body["id"], order.as_str());
    assert_eq!(app.balance(&ann).await, 10_000 - 3200);
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 4);

    // Someone else cannot see it.
    let eve = app.consumer_token("+8613800000129", None).await;
    let r = app.get(&format!("/v1/orders/{order}"), Some(&eve)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);

    for s in ["accept", "start", "ready"] {
        assert_eq!(
            step(&app, &c.shop.cashier, &order, s).await.status,
            StatusCode::OK
        );
    }
    let code = app
        .post(&format!("/v1/orders/{order}/code"), json!({}), Some(&ann))
        .await;
    assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
    assert_eq!(code.body["kind"], "pickup");
    let text = code.body["code"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/stores/{}/handover", c.shop.store),
            json!({"code": text}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["status"], "completed");
    let r = app
        .post(
            &format!("/v1/stores/{}/handover", c.shop.store),
            json!({"code": text}),
            Some(&c.shop.cashier),
        )
        .await;
    // The code was used: a second scan says so.
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "code_used");

    // A second order handed over by its typed pickup number.
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    let second = r.body["id"].as_str().unwrap().to_owned();
    let number = r.body["pickup_number"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/stores/{}/handover", c.shop.store),
            json!({"code": number}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["order"]["id"], second.as_str());
    let r = app
        .post(
            &format!("/v1/stores/{}/handover", c.shop.store),
            json!({"code": "not a code"}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST);
    assert_eq!(r.code(), "qr_invalid");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_pickup_outside_opening_hours_or_at_a_closed_store_is_refused() {
    let app = spawn_app().await;
    let c = cafe(&app, "Hours Cafe").await;
    // Open only on a weekday that is not today (in Shanghai), so the store is closed now.
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .weekday();
    let other = if today == jiff::civil::Weekday::Monday {
        "Tu"
    } else {
        "Mo"
    };
    let r = app
        .patch(
            &format!("/v1/stores/{}", c.shop.store),
            json!({"opening_hours": format!("{other} 10:00-11:00")}),
            Some(&c.shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let ann = app.funded_consumer("+8613800000131", 10_000).await;
    for body in [
        json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}]}),
        json!({"channel": "delivery", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
               "delivery": {"address": "2 Test Road", "lat": 31.2310, "lng": 121.4740}}),
        json!({"channel": "dine_in", "qr": c.table_qr, "items": [{"product_id": c.cake}]}),
    ] {
        let r = app.post("/v1/orders", body.clone(), Some(&ann)).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{body}: {}", r.body);
        assert_eq!(r.code(), "store_closed");
    }
    // A pickup time within the opening hours is fine; one outside is not.
    let tz = jiff::tz::TimeZone::get("Asia/Shanghai").unwrap();
    let now = jiff::Timestamp::now().to_zoned(tz.clone());
    let mut day = now.date();
    loop {
        day = day.tomorrow().unwrap();
        let wd = day.weekday();
        if (other == "Mo" && wd == jiff::civil::Weekday::Monday)
            || (other == "Tu" && wd == jiff::civil::Weekday::Tuesday)
        {
            break;
        }
    }
    let at = |h: i8| {
        day.at(h, 30, 0, 0)
            .to_zoned(tz.clone())
            .unwrap()
            .timestamp()
            .to_string()
    };
    // A time that is no time, or beyond any calendar o2o keeps, says which.
    for (bad, says) in [
        ("tomorrow", "RFC 3339"),
        ("9999-12-31T23:59:59+08:00", "range"),
    ] {
        let r = app
            .post(
                "/v1/orders",
                json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                       "pickup_at": bad, "payment": {"source": "wallet"}}),
                Some(&ann),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.code(), "pickup_at_invalid");
        let message = r.body["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(says), "{message}");
    }
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "pickup_at": at(12), "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "store_closed");
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "pickup_at": at(10), "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "placed");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn delivery_checks_the_radius_and_minimum_and_adds_the_fee_and_a_promise() {
    let app = spawn_app().await;
    let c = cafe(&app, "Delivery Cafe").await;
    let ann = app.funded_consumer("+8613800000141", 20_000).await;
    let r = app
        .send(
            app.client
                .put(app.url(&format!("/v1/stores/{}/order-settings", c.shop.store)))
                .bearer_auth(&c.shop.owner)
                .json(&json!({"delivery_fee": 600, "min_order": 5000, "promise_minutes": 30, "prep_minutes": 10})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // ~11 km away: outside the 3 km radius.
    let far = json!({"channel": "delivery", "store_id": c.shop.store, "items": [{"product_id": c.cake, "quantity": 2}],
                     "delivery": {"address": "Far Road", "lat": 31.33, "lng": 121.4737}, "payment": {}});
    let r = app.post("/v1/orders", far, Some(&ann)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "outside_delivery_area");
    let small = json!({"channel": "delivery", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                       "delivery": {"address": "Near Road 1", "lat": 31.2330, "lng": 121.4737}, "payment": {}});
    let r = app.post("/v1/orders", small, Some(&ann)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "below_minimum_order");
    assert!(
        r.message()
            .starts_with("Delivery needs at least ¥50.00 of items; this order has ¥"),
        "{}",
        r.body
    );
    // A contact number a rider could not call, or an address too long to keep whole.
    for (delivery, code) in [
        (
            json!({"address": "Near Road 1", "lat": 31.2330, "lng": 121.4737, "contact_phone": "abc"}),
            "contact_phone_invalid",
        ),
        (
            json!({"address": "Near Road 1", "lat": 31.2330, "lng": 121.4737, "contact_phone": "12"}),
            "contact_phone_invalid",
        ),
        (
            json!({"address": "路".repeat(201), "lat": 31.2330, "lng": 121.4737}),
            "text_invalid",
        ),
    ] {
        let body = json!({"channel": "delivery", "store_id": c.shop.store, "items": [{"product_id": c.cake, "quantity": 2}],
                          "delivery": delivery, "payment": {"source": "wallet"}});
        let r = app.post("/v1/orders", body, Some(&ann)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.code(), code, "{}", r.body);
    }
    assert_eq!(app.balance(&ann).await, 20_000);
    let ok = json!({"channel": "delivery", "store_id": c.shop.store, "items": [{"product_id": c.cake, "quantity": 2}],
                    "delivery": {"address": "Near Road 1", "lat": 31.2330, "lng": 121.4737, "contact_phone": "13800000141"},
                    "payment": {"source": "wallet"}});
    let r = app.post("/v1/orders", ok, Some(&ann)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["delivery_fee"], 600);
    assert_eq!(r.body["total"], 6400 + 600);
    assert_eq!(r.body["status"], "placed");
    let d = r.body["delivery"]["distance_m"].as_u64().unwrap();
    assert!((250..=320).contains(&d), "{d}");
    let created: jiff::Timestamp = r.body["created_at"].as_str().unwrap().parse().unwrap();
    let promised: jiff::Timestamp = r.body["promised_at"].as_str().unwrap().parse().unwrap();
    let minutes = (promised.as_second() - created.as_second()) / 60;
    assert!((29..=30).contains(&minutes), "{minutes}");
    assert_eq!(app.balance(&ann).await, 20_000 - 7000);
    let order = r.body["id"].as_str().unwrap().to_owned();
    for s in ["accept", "start", "ready"] {
        assert_eq!(
            step(&app, &c.shop.cashier, &order, s).await.status,
            StatusCode::OK
        );
    }
    // Ready for delivery is as far as the store takes it.
    let r = step(&app, &c.shop.cashier, &order, "complete").await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "order_transition_invalid");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn scan_and_go_pays_on_the_phone_and_the_exit_pass_opens_the_door_once() {
    let app = spawn_app().await;
    let c = cafe(&app, "Scan Shop").await;
    let ann = app.funded_consumer("+8613800000151", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "scan_and_go", "store_id": c.shop.store, "items": [{"barcode": "4006381333931"}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "open");
    let order = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{order}/items"),
            json!({"items": [{"barcode": "6 901234 567892", "options": {"size": ["medium"]}}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["total"], 3200 + 2800);
    let r = app
        .post(
            &format!("/v1/orders/{order}/items"),
            json!({"items": [{"barcode": "1234567890123"}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // No exit pass before paying.
    let r = app
        .post(&format!("/v1/orders/{order}/code"), json!({}), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    let r = app
        .post(&format!("/v1/orders/{order}/pay"), json!({}), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let pass = app
        .post(&format!("/v1/orders/{order}/code"), json!({}), Some(&ann))
        .await;
    assert_eq!(pass.status, StatusCode::CREATED, "{}", pass.body);
    assert_eq!(pass.body["kind"], "exit_pass");
    let text = pass.body["code"].as_str().unwrap();
    let r = app
        .post(
            "/v1/scan",
            json!({"payload": text, "store_id": c.shop.store}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["kind"], "exit_pass");
    assert_eq!(r.body["order"]["status"], "completed");
    let r = app
        .post(
            "/v1/scan",
            json!({"payload": text, "store_id": c.shop.store}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "code_used");
    assert_eq!(app.balance(&ann).await, 10_000 - 6000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn two_consumers_racing_for_the_last_item_exactly_one_gets_it_and_cancel_releases_it() {
    let app = spawn_app().await;
    let c = cafe(&app, "Race Cafe").await;
    set_stock(&app, &c.shop, &c.cake, Some(1)).await;
    let mut tokens = Vec::new();
    for i in 0..8 {
        tokens.push(
            app.funded_consumer(&format!("+86138000002{i:02}"), 10_000)
                .await,
        );
    }
    let body = json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                      "payment": {"source": "wallet"}});
    let results = futures::future::join_all(
        tokens
            .iter()
            .map(|t| app.post("/v1/orders", body.clone(), Some(t))),
    )
    .await;
    let won: Vec<&Res> = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .collect();
    assert_eq!(
        won.len(),
        1,
        "{:?}",
        results.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.code(), "product_sold_out");
    }
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 0);
    let menu = app
        .get(&format!("/v1/stores/{}/menu", c.shop.store), None)
        .await;
    let sold_out = menu.body["sections"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|s| s["products"].as_array().unwrap())
        .find(|p| p["id"] == c.cake.as_str())
        .unwrap()["sold_out"]
        .clone();
    assert_eq!(sold_out, true);
    let total: i64 = {
        let mut t = 0;
        for tok in &tokens {
            t += app.balance(tok).await;
        }
        t
    };
    assert_eq!(total, 8 * 10_000 - 3200, "only the winner paid");

    // The winner cancels before the kitchen accepts: refunded, and the cake is back on sale.
    let order = won[0].body["id"].as_str().unwrap().to_owned();
    let owner_token = {
        let mut found = None;
        for t in &tokens {
            if app
                .get(&format!("/v1/orders/{order}"), Some(t))
                .await
                .status
                == StatusCode::OK
            {
                found = Some(t.clone());
            }
        }
        found.unwrap()
    };
    let r = app
        .post(
            &format!("/v1/orders/{order}/cancel"),
            json!({"reason": "changed my mind"}),
            Some(&owner_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "canceled");
    assert_eq!(r.body["amount_refunded"], 3200);
    assert_eq!(app.balance(&owner_token).await, 10_000);
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 1);
    let r = app
        .post(
            &format!("/v1/orders/{order}/cancel"),
            json!({}),
            Some(&owner_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "order_transition_invalid");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn an_unpaid_order_lapses_and_its_stock_goes_back_on_sale() {
    let app = spawn_app().await;
    let c = cafe(&app, "Lapse Cafe").await;
    let ann = app.funded_consumer("+8613800000161", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake, "quantity": 2}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "pending_payment");
    assert!(r.body["pay_before"].is_string());
    let order = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 3);
    // Time passes beyond the reservation.
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE orders SET reserve_until = $1 WHERE id = $2")
                .bind(1_i64)
                .bind(order.clone()),
        )
        .await
        .unwrap();
    let n = o2o_server::orders::service::sweep_lapsed(&app.state)
        .await
        .unwrap();
    assert_eq!(n, 1);
    let r = app.get(&format!("/v1/orders/{order}"), Some(&ann)).await;
    assert_eq!(r.body["status"], "canceled");
    assert_eq!(r.body["cancel_reason"], "payment_timeout");
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 5);
    let r = app
        .post(&format!("/v1/orders/{order}/pay"), json!({}), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "order_not_payable");
    assert_eq!(app.balance(&ann).await, 10_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn an_order_of_free_items_alone_has_nothing_to_pay_and_says_so() {
    let app = spawn_app().await;
    let c = cafe(&app, "Free Cafe").await;
    let water = app.product(&c.shop.owner, "柠檬水", 0).await;
    let ann = app.funded_consumer("+8613800000181", 10_000).await;
    // Pickup is paid when ordered: with or without the payment, an order of nothing to pay
    // is refused rather than left waiting for a payment that cannot be made.
    for payment in [json!({"source": "wallet"}), Value::Null] {
        let mut body = json!({"channel": "pickup", "store_id": c.shop.store,
                              "items": [{"product_id": water, "quantity": 2}]});
        if !payment.is_null() {
            body["payment"] = payment;
        }
        let r = app.post("/v1/orders", body, Some(&ann)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
        assert_eq!(r.code(), "order_empty");
    }
    // With a paid item it goes through, the free one riding along.
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "payment": {"source": "wallet"},
                   "items": [{"product_id": water}, {"product_id": c.cake}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["total"], 3200);
    assert_eq!(r.body["payment_status"], "paid");
    // A table order of free water: paying it is "nothing to pay", not "paid already".
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "qr": c.table_qr, "place": true,
                   "items": [{"product_id": water}]}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(&format!("/v1/orders/{order}/pay"), json!({}), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "order_empty");
    assert_eq!(app.balance(&ann).await, 10_000 - 3200);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn refunding_an_order_refunds_its_payments_and_never_more() {
    let app = spawn_app().await;
    let c = cafe(&app, "Refund Cafe").await;
    let ann = app.funded_consumer("+8613800000171", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake, "quantity": 2}],
                   "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    let order = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{order}/refund"),
            json!({"amount": 1000, "reason": "cold"}),
            Some(&c.shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["amount_refunded"], 1000);
    assert_eq!(app.balance(&ann).await, 10_000 - 6400 + 1000);
    let r = app
        .post(
            &format!("/v1/orders/{order}/refund"),
            json!({"amount": 6000}),
            Some(&c.shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "refund_exceeds_payment");
    // Cashiers cannot refund orders.
    let r = app
        .post(
            &format!("/v1/orders/{order}/refund"),
            json!({}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/v1/orders/{order}/refund"),
            json!({}),
            Some(&c.shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["amount_refunded"], 6400);
    assert_eq!(r.body["payment_status"], "refunded");
    assert_eq!(app.balance(&ann).await, 10_000);
    // A malformed amount is a 400 even when nothing is left to refund.
    for amount in [0, -1] {
        let r = app
            .post(
                &format!("/v1/orders/{order}/refund"),
                json!({"amount": amount}),
                Some(&c.shop.owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{amount}: {}", r.body);
        assert_eq!(r.code(), "amount_invalid");
    }
    // Another merchant cannot see or touch it.
    let other = app.shop("Other Cafe").await;
    let r = app
        .post(
            &format!("/v1/orders/{order}/accept"),
            json!({}),
            Some(&other.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_discount_hook_lowers_the_total_and_the_payment() {
    let app = spawn_app_with(|c| c.order_test_discount = Some(500)).await;
    let c = cafe(&app, "Discount Cafe").await;
    let ann = app.funded_consumer("+8613800000181", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["discounts"][0]["amount"], 500);
    assert_eq!(r.body["discount_total"], 500);
    assert_eq!(r.body["total"], 2700);
    assert_eq!(app.balance(&ann).await, 10_000 - 2700);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn staff_open_a_table_order_for_a_guest_and_take_cash() {
    let app = spawn_app().await;
    let c = cafe(&app, "Cash Cafe").await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "store_id": c.shop.store, "table_id": c.table,
                   "items": [{"product_id": c.cake}], "place": true}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    let pay = |source: &'static str| {
        let (app, cashier, order) = (&app, &c.shop.cashier, &order);
        async move {
            app.post(
                &format!("/v1/orders/{order}/pay"),
                json!({ "source": source }),
                Some(cashier),
            )
            .await
        }
    };
    let r = pay("wallet").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // While the merchant's verification is withdrawn, the order takes no money, cash included.
    app.set_verified(&c.shop.merchant, false).await;
    let r = pay("cash").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "merchant_not_trading");
    assert_eq!(app.count("payments").await, 0);
    app.set_verified(&c.shop.merchant, true).await;
    let r = pay("cash").await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["source"], "cash");
    let r = step(&app, &c.shop.cashier, &order, "complete").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_bill_beyond_one_payments_ceiling_is_refused_whole_and_paid_in_parts() {
    let app = spawn_app().await;
    let c = cafe(&app, "Banquet Cafe").await;
    // ¥60,000 a head, two heads: ¥120,000, above the ¥100,000 one payment may take.
    let banquet = app
        .post(
            "/v1/products",
            json!({"name_zh": "满汉全席", "description": "", "price": 6_000_000, "currency": "CNY"}),
            Some(&c.shop.owner),
        )
        .await;
    assert_eq!(banquet.status, StatusCode::CREATED, "{}", banquet.body);
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "store_id": c.shop.store, "table_id": c.table,
                   "items": [{"product_id": banquet.body["id"], "quantity": 2}], "place": true}),
            Some(&c.shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["total"], 12_000_000);
    let order = r.body["id"].as_str().unwrap().to_owned();
    let pay = |body: serde_json::Value| {
        let (app, cashier, order) = (&app, &c.shop.cashier, &order);
        async move {
            app.post(&format!("/v1/orders/{order}/pay"), body, Some(cashier))
                .await
        }
    };
    let r = pay(json!({"source": "cash"})).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "amount_too_large");
    assert_eq!(r.body["error"]["param"], "amount");
    assert_eq!(
        r.message(),
        "One payment takes at most ¥100000.00: pay this bill in parts (amount)."
    );
    let o = app
        .get(&format!("/v1/orders/{order}"), Some(&c.shop.cashier))
        .await;
    assert_eq!(o.body["amount_paid"], 0, "{}", o.body);
    // In two parts it is paid.
    for _ in 0..2 {
        let r = pay(json!({"source": "cash", "amount": 6_000_000})).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let o = app
        .get(&format!("/v1/orders/{order}"), Some(&c.shop.cashier))
        .await;
    assert_eq!(o.body["amount_paid"], 12_000_000, "{}", o.body);

    // An order paid at once (here scan-and-go) never grows past what one payment takes.
    let guest = app.funded_consumer("+8613800000931", 100).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "scan_and_go", "store_id": c.shop.store,
                   "items": [{"product_id": banquet.body["id"], "quantity": 2}]}),
            Some(&guest),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "amount_too_large");
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "scan_and_go", "store_id": c.shop.store,
                   "items": [{"product_id": banquet.body["id"]}]}),
            Some(&guest),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let cart = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{cart}/items"),
            json!({"items": [{"product_id": banquet.body["id"]}]}),
            Some(&guest),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "amount_too_large");
    let o = app.get(&format!("/v1/orders/{cart}"), Some(&guest)).await;
    assert_eq!(o.body["total"], 6_000_000, "{}", o.body);
    assert_eq!(o.body["items"].as_array().unwrap().len(), 1, "{}", o.body);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_guests_order_joins_the_account_it_logs_into() {
    let app = spawn_app().await;
    let c = cafe(&app, "Guest Order Cafe").await;
    let existing = app.consumer_token("+8613800000191", None).await;
    let guest_token = app.guest_token().await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "scan_and_go", "store_id": c.shop.store, "items": [{"product_id": c.cake}]}),
            Some(&guest_token),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    app.age_codes().await;
    let token = app
        .consumer_token("+8613800000191", Some(&guest_token))
        .await;
    assert_eq!(
        app.get("/v1/me", Some(&token)).await.body["id"],
        app.get("/v1/me", Some(&existing)).await.body["id"]
    );
    let mine = app.get("/v1/me/orders", Some(&token)).await;
    assert_eq!(mine.body["data"][0]["id"], order.as_str(), "{}", mine.body);
    let r = app
        .post(
            &format!("/v1/orders/{order}/items"),
            json!({"items": [{"product_id": c.cake}]}),
            Some(&token),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test]
async fn a_table_can_pay_with_its_items_and_a_refused_payment_leaves_no_trace() {
    let app = spawn_app().await;
    let c = cafe(&app, "Pay Now Cafe").await;
    let poor = app.funded_consumer("+8613800000201", 1000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "qr": c.table_qr, "place": true,
                   "items": [{"product_id": c.cake}], "payment": {"source": "wallet"}}),
            Some(&poor),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 5, "no stock held");
    let table = o2o_server::orders::service::at_table(&app.state, &c.table)
        .await
        .unwrap();
    assert!(table.is_none(), "no order left open at the table");
    assert_eq!(app.balance(&poor).await, 1000);

    let rich = app.funded_consumer("+8613800000202", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "qr": c.table_qr, "place": true,
                   "items": [{"product_id": c.cake}], "payment": {"source": "wallet"}}),
            Some(&rich),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "placed");
    assert_eq!(r.body["payment_status"], "paid");
    assert_eq!(app.balance(&rich).await, 10_000 - 3200);
    assert_eq!(stock_of(&app, &c.shop, &c.cake).await, 4);
    app.assert_ledger_verifies().await;
}

/// A PNG photo of an EAN-13 barcode, with a margin around it as a label would have.
fn barcode_png(digits: &str) -> Vec<u8> {
    use rxing::Writer;
    let m = rxing::MultiFormatWriter
        .encode(digits, &rxing::BarcodeFormat::EAN_13, 380, 120)
        .unwrap();
    let (w, h) = (m.getWidth(), m.getHeight());
    let img = image::GrayImage::from_fn(w + 40, h + 40, |x, y| {
        let inside = (20..w + 20).contains(&x) && (20..h + 20).contains(&y);
        if inside && m.get(x - 20, y - 20) {
            image::Luma([0])
        } else {
            image::Luma([255])
        }
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

#[tokio::test]
async fn scan_and_go_reads_a_barcode_from_a_photo() {
    let app = spawn_app().await;
    let c = cafe(&app, "Photo Scan Shop").await;
    let ann = app.funded_consumer("+8613800000211", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "scan_and_go", "store_id": c.shop.store}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    let send = |body: Vec<u8>, content_type: &'static str| {
        let app = &app;
        let url = app.url(&format!("/v1/orders/{order}/items/photo"));
        let token = ann.clone();
        async move {
            app.send(
                app.client
                    .post(url)
                    .bearer_auth(token)
                    .header("content-type", content_type)
                    .body(body),
            )
            .await
        }
    };
    let r = send(barcode_png("4006381333931"), "image/png").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["items"][0]["product_id"], c.cake.as_str());
    assert_eq!(r.body["total"], 3200);
    let blank = {
        let img = image::GrayImage::from_pixel(200, 100, image::Luma([255]));
        let mut out = std::io::Cursor::new(Vec::new());
        img.write_to(&mut out, image::ImageFormat::Png).unwrap();
        out.into_inner()
    };
    let r = send(blank, "image/png").await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "barcode_not_found");
    let r = send(b"not a picture".to_vec(), "image/png").await;
    assert!(r.status.is_client_error(), "{}", r.body);
    let r = app.get(&format!("/v1/orders/{order}"), Some(&ann)).await;
    assert_eq!(
        r.body["items"].as_array().unwrap().len(),
        1,
        "nothing else was added"
    );
}

#[tokio::test]
async fn a_delivery_quote_gives_the_fee_minimum_and_promise_and_refuses_what_ordering_would() {
    let app = spawn_app().await;
    let c = cafe(&app, "Quote Cafe").await;
    let r = app
        .send(
            app.client
                .put(app.url(&format!("/v1/stores/{}/order-settings", c.shop.store)))
                .bearer_auth(&c.shop.owner)
                .json(&json!({"delivery_fee": 600, "min_order": 5000, "promise_minutes": null, "prep_minutes": 10})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let near = json!({"address": "Near Road 1", "lat": 31.2330, "lng": 121.4737});
    // No login needed; one cake is below the minimum: quoted, with what is missing.
    let r = app
        .post(
            "/v1/orders/quote",
            json!({"channel": "delivery", "store_id": c.shop.store,
                   "items": [{"product_id": c.cake}], "delivery": near}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["subtotal"], 3200);
    assert_eq!(r.body["delivery_fee"], 600);
    assert_eq!(r.body["total"], 3800);
    assert_eq!(r.body["min_order"], 5000);
    assert_eq!(r.body["below_minimum_by"], 1800);
    assert_eq!(r.body["delivery_radius_m"], 3000);
    let d = r.body["distance_m"].as_i64().unwrap();
    assert!((250..=320).contains(&d), "{d}");
    // Computed from the distance: 10 minutes to prepare + 2 minutes' ride.
    assert_eq!(r.body["promise_minutes"], 12);
    let promised: jiff::Timestamp = r.body["promised_at"].as_str().unwrap().parse().unwrap();
    let ahead = promised.as_second() - jiff::Timestamp::now().as_second();
    assert!((11 * 60..=12 * 60 + 5).contains(&ahead), "{ahead}");
    // Two cakes and a large latte: enough, and the options are priced.
    let r = app
        .post(
            "/v1/orders/quote",
            json!({"channel": "delivery", "store_id": c.shop.store,
                   "items": [{"product_id": c.cake, "quantity": 2},
                             {"product_id": c.latte, "options": {"size": ["large"]}}],
                   "delivery": near}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["subtotal"], 6400 + 3100);
    assert_eq!(r.body["below_minimum_by"], 0);
    assert_eq!(r.body["total"], 9500 + 600);
    // What ordering refuses, the quote refuses with the same codes.
    let far = json!({"address": "Far Road", "lat": 31.33, "lng": 121.4737});
    let r = app
        .post(
            "/v1/orders/quote",
            json!({"channel": "delivery", "store_id": c.shop.store, "delivery": far}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "outside_delivery_area");
    for (body, status, code) in [
        (
            json!({"channel": "pickup", "store_id": c.shop.store, "delivery": near}),
            StatusCode::BAD_REQUEST,
            "channel_invalid",
        ),
        (
            json!({"channel": "delivery", "delivery": near}),
            StatusCode::BAD_REQUEST,
            "store_id_required",
        ),
        (
            json!({"channel": "delivery", "store_id": "sto_nothing", "delivery": near}),
            StatusCode::NOT_FOUND,
            "store_not_found",
        ),
        (
            json!({"channel": "delivery", "store_id": c.shop.store,
                   "delivery": {"address": "x", "lat": 91.0, "lng": 0.0}}),
            StatusCode::BAD_REQUEST,
            "coordinates_invalid",
        ),
        (
            json!({"channel": "delivery", "store_id": c.shop.store,
                   "items": [{"product_id": "prd_nothing"}], "delivery": near}),
            StatusCode::NOT_FOUND,
            "product_not_found",
        ),
        (
            json!({"channel": "delivery", "store_id": c.shop.store, "delivery": near,
                   "items": [{"product_id": c.cake, "unit_price": 1}]}),
            StatusCode::BAD_REQUEST,
            "",
        ),
    ] {
        let r = app.post("/v1/orders/quote", body.clone(), None).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{body}");
        }
    }
    // A store that stopped delivering says so.
    let r = app
        .patch(
            &format!("/v1/stores/{}", c.shop.store),
            json!({"delivery_radius_m": 0}),
            Some(&c.shop.owner),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = app
        .post(
            "/v1/orders/quote",
            json!({"channel": "delivery", "store_id": c.shop.store, "delivery": near}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "delivery_unavailable");
    // A closed store quotes nothing (open only on a weekday that is not today in Shanghai).
    let today = jiff::Timestamp::now()
        .to_zoned(jiff::tz::TimeZone::get("Asia/Shanghai").unwrap())
        .weekday();
    let other = if today == jiff::civil::Weekday::Monday {
        "Tu"
    } else {
        "Mo"
    };
    let r = app
        .patch(
            &format!("/v1/stores/{}", c.shop.store),
            json!({"delivery_radius_m": 3000, "opening_hours": format!("{other} 10:00-11:00")}),
            Some(&c.shop.owner),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = app
        .post(
            "/v1/orders/quote",
            json!({"channel": "delivery", "store_id": c.shop.store, "delivery": near}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "store_closed");
    // Quoting wrote nothing.
    assert_eq!(app.count("orders").await, 0);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn order_reads_answer_only_once_a_recent_change_is_on_the_disk() {
    let app = spawn_app().await;
    let Some(wal) = app.wal() else {
        return;
    };
    let c = cafe(&app, "Durable Orders Cafe").await;
    let ann = app.funded_consumer("+8613800000151", 10_000).await;
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "pickup", "store_id": c.shop.store, "items": [{"product_id": c.cake}],
                   "payment": {"source": "wallet"}}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let order = r.body["id"].as_str().unwrap().to_owned();
    // Each read finds the order changed a moment ago: it waits for a WAL sync before answering
    // (another connection sees a commit a moment before its sync returns).
    for (path, token) in [
        (format!("/v1/orders/{order}"), &ann),
        ("/v1/me/orders".to_owned(), &ann),
        (
            format!("/v1/stores/{}/orders", c.shop.store),
            &c.shop.cashier,
        ),
    ] {
        let before = wal.syncs();
        let r = app.get(&path, Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(r.body.to_string().contains(&order), "{path}: {}", r.body);
        assert!(wal.syncs() > before, "{path}: synced before the answer");
    }
    app.assert_ledger_verifies().await;
}
