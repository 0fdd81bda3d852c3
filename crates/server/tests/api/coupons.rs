use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A consumer logged in with a phone, the one-time code requested in process from its own
/// address (the per-address limit is for the public endpoint).
async fn phone_user(app: &TestApp, n: u32) -> String {
    let phone = format!("+86139{n:08}");
    let p = o2o_server::identity::model::Phone::parse(&phone).unwrap();
    o2o_server::identity::service::request_otp(
        &app.state.db,
        &p,
        &format!("10.{}.{}.{}", n / 65_536 % 256, n / 256 % 256, n % 256),
    )
    .await
    .unwrap();
    let code = app.latest_code(&phone).await;
    let r = app
        .post("/v1/sessions", json!({"phone": phone, "code": code}), None)
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["token"].as_str().unwrap().to_owned()
}

async fn template(app: &TestApp, shop: &Shop, extra: Value) -> Value {
    let mut body = json!({"merchant_id": shop.merchant, "name": "满50减10", "kind": "amount_off",
        "amount_off": 1000, "currency": "CNY", "total_stock": 100});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app
        .post("/v1/coupon-templates", body, Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body
}

async fn claim(app: &TestApp, template: &str, token: &str) -> Res {
    app.post(
        &format!("/v1/coupon-templates/{template}/claims"),
        json!({}),
        Some(token),
    )
    .await
}

async fn product(app: &TestApp, shop: &Shop, price: i64) -> String {
    let r = app
        .post(
            "/v1/products",
            json!({"name_zh": "蛋糕", "description": "", "price": price, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn templates_are_checked_before_they_are_stored() {
    let app = spawn_app().await;
    let shop = app.shop("Coupon Rules Cafe").await;
    let other = app.shop("Other Coupon Cafe").await;
    for (body, code) in [
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "currency": "CNY", "total_stock": 10}),
            "amount_off_required",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "percent_off", "percent_off": 100, "currency": "CNY", "total_stock": 10}),
            "percent_off_out_of_range",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "gift", "currency": "CNY", "total_stock": 10}),
            "kind_invalid",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "amount_off": 2000, "min_spend": 2000, "currency": "CNY", "total_stock": 10}),
            "amount_off_not_below_min_spend",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "amount_off": 100, "currency": "CNY", "total_stock": 0}),
            "total_stock_out_of_range",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "amount_off": 100, "currency": "CNY", "total_stock": 5, "channels": ["teleport"]}),
            "channel_invalid",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "amount_off": 100, "currency": "CNY", "total_stock": 5, "audience": "vips"}),
            "audience_invalid",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "amount_off": 100, "currency": "CNY", "total_stock": 5,
                "claim_starts_at": "2026-01-02T00:00:00Z", "claim_ends_at": "2026-01-01T00:00:00Z"}),
            "window_invalid",
        ),
        (
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "amount_off": 100, "currency": "CNY", "total_stock": 5,
                "store_ids": [other.store]}),
            "store_not_found",
        ),
    ] {
        let r = app
            .post("/v1/coupon-templates", body.clone(), Some(&shop.owner))
            .await;
        assert!(r.status.is_client_error(), "{body}: {}", r.body);
        assert_eq!(r.code(), code, "{body}: {}", r.body);
    }
    let r = app
        .post(
            "/v1/coupon-templates",
            json!({"merchant_id": other.merchant, "name": "x", "kind": "amount_off", "amount_off": 100, "currency": "CNY", "total_stock": 5}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .post(
            "/v1/coupon-templates",
            json!({"merchant_id": shop.merchant, "name": "x", "kind": "amount_off", "amount_off": 100, "currency": "CNY", "total_stock": 5}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let t = template(&app, &shop, json!({})).await;
    assert_eq!(t["per_consumer_limit"], 1);
    assert_eq!(t["audience"], "everyone");
    assert_eq!(t["remaining"], 100);
}

#[tokio::test]
async fn claims_respect_the_limit_the_window_the_stock_and_the_audience() {
    let app = spawn_app().await;
    let shop = app.shop("Claim Cafe").await;
    let ann = phone_user(&app, 1).await;
    let bo = phone_user(&app, 2).await;
    let t = template(
        &app,
        &shop,
        json!({"total_stock": 2, "per_consumer_limit": 1}),
    )
    .await;
    let id = t["id"].as_str().unwrap();
    let r = claim(&app, id, &ann).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "active");
    let r = claim(&app, id, &ann).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "coupon_limit_reached");
    assert_eq!(claim(&app, id, &bo).await.status, StatusCode::CREATED);
    let cy = phone_user(&app, 3).await;
    let r = claim(&app, id, &cy).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "coupon_sold_out");
    // Guests claim nothing.
    let guest = app.guest_token().await;
    let r = claim(&app, id, &guest).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);

    let later = template(
        &app,
        &shop,
        json!({"claim_starts_at": "2099-01-01T00:00:00Z"}),
    )
    .await;
    let r = claim(&app, later["id"].as_str().unwrap(), &cy).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert_eq!(r.code(), "coupon_not_claimable");

    let fans = template(&app, &shop, json!({"audience": "followers"})).await;
    let fans = fans["id"].as_str().unwrap();
    let r = claim(&app, fans, &cy).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    assert_eq!(r.code(), "coupon_not_eligible");
    let r = app
        .post(
            &format!("/v1/merchants/{}/followers", shop.merchant),
            json!({"channel": "page"}),
            Some(&cy),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    assert_eq!(claim(&app, fans, &cy).await.status, StatusCode::CREATED);

    let mine = app.get("/v1/me/coupons", Some(&ann)).await;
    assert_eq!(mine.body["data"].as_array().unwrap().len(), 1);
    let stats = app
        .get(&format!("/v1/coupon-templates/{id}"), Some(&shop.owner))
        .await;
    assert_eq!(stats.body["issued"], 2);
    assert_eq!(stats.body["template"]["remaining"], 0);
}

#[tokio::test]
async fn a_flash_claim_issues_exactly_the_stock_and_no_one_holds_two() {
    let app = spawn_app().await;
    let shop = app.shop("Flash Cafe").await;
    let t = template(
        &app,
        &shop,
        json!({"total_stock": 100, "per_consumer_limit": 1}),
    )
    .await;
    let id = t["id"].as_str().unwrap().to_owned();
    let mut tokens = Vec::new();
    for chunk in (0..400u32).collect::<Vec<_>>().chunks(50) {
        let made =
            futures::future::join_all(chunk.iter().map(|n| phone_user(&app, 1000 + n))).await;
        tokens.extend(made);
    }
    // 2,000 claims: every consumer races with five requests at once; on PostgreSQL spread over
    // two nodes on one database (SQLite is one node's embedded store).
    let two_nodes = backend() == "postgres";
    let node2 = app.second_node().await;
    let attempts: Vec<&String> = tokens
        .iter()
        .flat_map(|t| std::iter::repeat_n(t, 5))
        .collect();
    let results = futures::future::join_all(attempts.iter().enumerate().map(|(i, t)| {
        let node = if two_nodes && i % 2 == 1 {
            &node2
        } else {
            &app
        };
        claim(node, &id, t)
    }))
    .await;
    let issued = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(issued, 100);
    for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert!(
            ["coupon_sold_out", "coupon_limit_reached"].contains(&r.code()),
            "{}",
            r.body
        );
    }
    let (stored, holders, most): (i64, i64, i64) = app
        .state
        .db
        .fetch_one(
            o2o_server::db::query(
                "SELECT CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT user_id) AS BIGINT), \
                 CAST(COALESCE(MAX(n), 0) AS BIGINT) FROM coupons \
                 LEFT JOIN (SELECT user_id AS u, COUNT(*) AS n FROM coupons WHERE template_id = $1 GROUP BY user_id) x ON x.u = coupons.user_id \
                 WHERE template_id = $1",
            )
            .bind(id.clone()),
        )
        .await
        .unwrap();
    assert_eq!(stored, 100);
    assert_eq!(holders, 100);
    assert_eq!(most, 1);
    let stats = app
        .get(&format!("/v1/coupon-templates/{id}"), Some(&shop.owner))
        .await;
    assert_eq!(stats.body["issued"], 100);
    node2.stop().await;
}

#[tokio::test]
async fn a_coupon_on_a_store_pay_payment_is_paid_by_the_promotion_account_and_comes_back_on_refund()
{
    let app = spawn_app().await;
    let shop = app.shop("Coupon Pay Cafe").await;
    let ann = phone_user(&app, 11).await;
    app.top_up(&ann, 10_000).await;
    let t = template(&app, &shop, json!({"min_spend": 3000})).await;
    let coupon = claim(&app, t["id"].as_str().unwrap(), &ann).await;
    let coupon = coupon.body["id"].as_str().unwrap().to_owned();
    // Below the minimum spend: refused, nothing moves.
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 2000, "currency": "CNY", "coupon": coupon}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "coupon_not_applicable");
    assert_eq!(app.balance(&ann).await, 10_000);
    // The best usable coupon for a ¥50 bill is this one.
    let usable = app
        .get(
            &format!("/v1/me/coupons/usable?store_id={}&amount=5000", shop.store),
            Some(&ann),
        )
        .await;
    assert_eq!(
        usable.body["data"][0]["coupon"]["id"],
        coupon.as_str(),
        "{}",
        usable.body
    );
    assert_eq!(usable.body["data"][0]["discount"], 1000);
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 5000, "currency": "CNY", "coupon": coupon}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["amount"], 4000);
    assert_eq!(r.body["discount"], 1000);
    let payment = r.body["id"].as_str().unwrap().to_owned();
    assert_eq!(app.balance(&ann).await, 6000);
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 5000, "currency": "CNY", "coupon": coupon}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_used");
    let stats = app
        .get(
            &format!("/v1/coupon-templates/{}", t["id"].as_str().unwrap()),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(stats.body["used"], 1);
    assert_eq!(stats.body["discount_given"], 1000);
    assert_eq!(stats.body["sales"], 4000);
    app.assert_ledger_verifies().await;
    // Refunded in full: the money goes back and so does the coupon.
    let r = app
        .post(
            "/v1/refunds",
            json!({"payment": payment}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.balance(&ann).await, 10_000);
    let mine = app.get("/v1/me/coupons", Some(&ann)).await;
    assert_eq!(mine.body["data"][0]["status"], "active", "{}", mine.body);
    app.assert_ledger_verifies().await;
    // Settling nets what coupons cost against what was collected.
    let op = app.operator().await;
    let r = app
        .post(
            &format!("/v1/admin/merchants/{}/settlements", shop.merchant),
            json!({}),
            Some(&op),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn coupons_on_orders_follow_store_channel_stacking_and_percent_rules() {
    let app = spawn_app().await;
    let shop = app.shop("Coupon Order Cafe").await;
    let ann = phone_user(&app, 21).await;
    app.post(
        "/v1/wallet/top-ups",
        json!({"amount": 50_000, "currency": "CNY"}),
        Some(&ann),
    )
    .await;
    let cake = product(&app, &shop, 3000).await;
    let pct = template(
        &app,
        &shop,
        json!({"name": "八折", "kind": "percent_off", "percent_off": 20, "max_discount": 1000,
               "channels": ["pickup"], "store_ids": [shop.store]}),
    )
    .await;
    let delivery_only = template(&app, &shop, json!({"channels": ["delivery"]})).await;
    let pct_coupon = claim(&app, pct["id"].as_str().unwrap(), &ann).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let delivery_coupon = claim(&app, delivery_only["id"].as_str().unwrap(), &ann)
        .await
        .body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let order = |coupon: &str, qty: i64| {
        json!({"channel": "pickup", "store_id": shop.store, "items": [{"product_id": cake, "quantity": qty}],
               "payment": {"source": "wallet", "coupon": coupon}})
    };
    let r = app
        .post("/v1/orders", order(&delivery_coupon, 1), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "coupon_not_applicable");
    assert_eq!(app.balance(&ann).await, 50_000, "nothing moved");
    // 20 % of 3,000 is 600.
    let r = app
        .post("/v1/orders", order(&pct_coupon, 1), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["discount_total"], 600);
    assert_eq!(r.body["total"], 2400);
    assert_eq!(r.body["discounts"][0]["code"], pct_coupon.as_str());
    assert_eq!(r.body["payment_status"], "paid");
    assert_eq!(app.balance(&ann).await, 50_000 - 2400);
    // Capped at 1,000 on a larger order.
    let second = claim(
        &app,
        pct["id"].as_str().unwrap(),
        &phone_user(&app, 22).await,
    )
    .await;
    assert_eq!(second.status, StatusCode::CREATED);

    // Stacking: a dine-in order takes one non-stackable coupon, not two.
    let table = app
        .post(
            &format!("/v1/stores/{}/tables", shop.store),
            json!({"label": "C1"}),
            Some(&shop.owner),
        )
        .await;
    let qr = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "table", "store_id": shop.store, "table_id": table.body["id"]}),
            Some(&shop.owner),
        )
        .await;
    let a = template(&app, &shop, json!({"name": "A", "amount_off": 500})).await;
    let b = template(&app, &shop, json!({"name": "B", "amount_off": 300})).await;
    let ca = claim(&app, a["id"].as_str().unwrap(), &ann).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let cb = claim(&app, b["id"].as_str().unwrap(), &ann).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = app
        .post(
            "/v1/orders",
            json!({"channel": "dine_in", "qr": qr.body["url"], "items": [{"product_id": cake, "quantity": 2}], "place": true}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/orders/{id}/pay"),
            json!({"amount": 1000, "coupon": ca}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/orders/{id}/pay"),
            json!({"coupon": cb}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_not_stackable");
    let r = app
        .post(&format!("/v1/orders/{id}/pay"), json!({}), Some(&ann))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let o = app.get(&format!("/v1/orders/{id}"), Some(&ann)).await;
    assert_eq!(o.body["total"], 6000 - 500);
    assert_eq!(o.body["payment_status"], "paid");
    assert_eq!(o.body["amount_paid"], 5500);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn an_expired_coupon_is_refused_and_the_center_lists_what_is_near() {
    let app = spawn_app().await;
    let shop = app.shop("Center Cafe").await;
    let ann = phone_user(&app, 31).await;
    app.post(
        "/v1/wallet/top-ups",
        json!({"amount": 10_000, "currency": "CNY"}),
        Some(&ann),
    )
    .await;
    let t = template(&app, &shop, json!({"valid_days_after_claim": 7})).await;
    let near = app
        .get("/v1/coupon-center?near=31.2304,121.4737", Some(&ann))
        .await;
    assert_eq!(near.status, StatusCode::OK, "{}", near.body);
    let offers = near.body["data"].as_array().unwrap();
    assert!(
        offers.iter().any(|o| o["template"]["id"] == t["id"]),
        "{}",
        near.body
    );
    let far = app.get("/v1/coupon-center?near=39.9,116.4", None).await;
    assert!(
        !far.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["template"]["id"] == t["id"]),
        "{}",
        far.body
    );
    let bad = app.get("/v1/coupon-center?near=north", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);

    let c = claim(&app, t["id"].as_str().unwrap(), &ann).await;
    assert!(c.body["valid_until"].is_string());
    let coupon = c.body["id"].as_str().unwrap().to_owned();
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE coupons SET valid_until = $1 WHERE id = $2")
                .bind(1_i64)
                .bind(coupon.clone()),
        )
        .await
        .unwrap();
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 5000, "currency": "CNY", "coupon": coupon}),
            Some(&ann),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_expired");
    let mine = app.get("/v1/me/coupons", Some(&ann)).await;
    assert_eq!(mine.body["data"][0]["status"], "expired");
    assert_eq!(app.balance(&ann).await, 10_000);
    // Another consumer cannot use it.
    let bo = phone_user(&app, 32).await;
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 5000, "currency": "CNY", "coupon": coupon}),
            Some(&bo),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_campaign_code_offers_its_merchants_coupon_and_nobody_elses() {
    let app = spawn_app().await;
    let shop = app.shop("Campaign Cafe").await;
    let other = app.shop("Other Campaign Cafe").await;
    let t = template(&app, &shop, json!({"name": "开业满30减5"})).await;
    let foreign = template(&app, &other, json!({"name": "别家的券"})).await;
    let mut urls = Vec::new();
    for target in [&t["id"], &foreign["id"]] {
        let code = app
            .post(
                "/v1/qr-codes",
                json!({"kind": "campaign", "store_id": shop.store, "target": target}),
                Some(&shop.owner),
            )
            .await;
        assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
        urls.push(code.body["url"].as_str().unwrap().to_owned());
    }
    let page = |url: String| {
        let client = app.client.clone();
        async move {
            client
                .get(url)
                .header("accept-language", "zh-CN")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    let html = page(urls[0].clone()).await;
    assert!(html.contains("开业满30减5"), "{html}");
    assert!(html.contains("campaign-claim"), "{html}");
    let html = page(urls[1].clone()).await;
    assert!(
        !html.contains("别家的券"),
        "another merchant's coupon is not offered"
    );
    assert!(!html.contains("campaign-claim"));
}

async fn coupon_code(app: &TestApp, coupon: &str, token: &str) -> Res {
    app.post(
        &format!("/v1/me/coupons/{coupon}/codes"),
        json!({}),
        Some(token),
    )
    .await
}

async fn pay_code(app: &TestApp, token: &str) -> String {
    let r = app
        .post("/v1/me/pay-codes", json!({"count": 1}), Some(token))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_cashier_scans_a_coupons_code_and_applies_it_to_a_cash_or_pay_code_payment() {
    let app = spawn_app().await;
    let shop = app.shop("Counter Cafe").await;
    let other = app.shop("Across the Street").await;
    let ann = phone_user(&app, 41).await;
    let bo = phone_user(&app, 42).await;
    for who in [&ann, &bo] {
        app.post(
            "/v1/wallet/top-ups",
            json!({"amount": 10_000, "currency": "CNY"}),
            Some(who),
        )
        .await;
    }
    let t = template(&app, &shop, json!({"per_consumer_limit": 2})).await;
    let t = t["id"].as_str().unwrap();
    let first = claim(&app, t, &ann).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let second = claim(&app, t, &ann).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();

    // The consumer's code for a coupon; the cashier's scan tells what it is and uses nothing.
    let r = coupon_code(&app, &first, &ann).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let code = r.body["code"].as_str().unwrap().to_owned();
    assert!(code.starts_with("O2O:"), "{code}");
    assert_eq!(
        coupon_code(&app, &first, &bo).await.status,
        StatusCode::NOT_FOUND
    );
    let scan = |payload: String, who: String| {
        let app = &app;
        async move {
            app.post("/v1/scan", json!({"payload": payload}), Some(&who))
                .await
        }
    };
    for _ in 0..2 {
        let r = scan(code.clone(), shop.cashier.clone()).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        assert_eq!(r.body["kind"], "coupon");
        assert_eq!(r.body["used"], false);
        assert_eq!(r.body["subject"], first.as_str());
        assert_eq!(r.body["coupon"]["status"], "active");
        assert_eq!(r.body["coupon"]["template"]["amount_off"], 1000);
    }
    let r = scan(code.clone(), other.cashier.clone()).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "code_wrong_store");

    // Cash with the coupon: ¥50 bill, ¥40 in the drawer, ¥10 from the promotion account.
    let cash = |coupon: Value| {
        let app = &app;
        let shop = &shop;
        async move {
            app.post(
                "/v1/payments",
                json!({"store_id": shop.store, "source": "cash", "amount": 5_000,
                    "currency": "CNY", "coupon": coupon}),
                Some(&shop.cashier),
            )
            .await
        }
    };
    let r = cash(json!(first)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "coupon_code_required");
    let r = cash(json!("O2O:NOTACODE")).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let paid = cash(json!(code)).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(paid.body["amount"], 4_000);
    assert_eq!(paid.body["discount"], 1_000);
    assert_eq!(paid.body["coupon_id"], first.as_str());
    let r = cash(json!(code)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_used");
    let r = coupon_code(&app, &first, &ann).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_used");
    // Refunded in full, the coupon comes back.
    let r = app
        .post(
            "/v1/refunds",
            json!({"payment": paid.body["id"]}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let mine = app.get("/v1/me/coupons", Some(&ann)).await;
    assert!(
        mine.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["id"] == first.as_str() && c["status"] == "active"),
        "{}",
        mine.body
    );

    // A pay code with the coupon: it must be the pay code owner's coupon.
    let code = coupon_code(&app, &second, &ann).await.body["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let with_pay_code = |pay_code: String, coupon: String| {
        let app = &app;
        let shop = &shop;
        async move {
            app.post(
                "/v1/payments",
                json!({"store_id": shop.store, "pay_code": pay_code, "amount": 5_000,
                    "currency": "CNY", "coupon": coupon}),
                Some(&shop.cashier),
            )
            .await
        }
    };
    let r = with_pay_code(pay_code(&app, &bo).await, code.clone()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "coupon_not_payers");
    assert_eq!(app.balance(&bo).await, 10_000);
    let r = with_pay_code(pay_code(&app, &ann).await, code).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["amount"], 4_000);
    assert_eq!(r.body["coupon_id"], second.as_str());
    assert_eq!(app.balance(&ann).await, 6_000);

    // The consumer's page shows the code as a QR.
    let page = app
        .client
        .get(app.url(&format!("/me/coupons/{first}/code")))
        .header("cookie", format!("o2o_session={ann}"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::OK);
    let html = page.text().await.unwrap();
    assert!(html.contains("<svg"), "{html}");
    assert!(html.contains("data-code=\"O2O:"), "{html}");
    let list = app
        .client
        .get(app.url("/me/coupons"))
        .header("cookie", format!("o2o_session={ann}"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        list.contains(&format!("/me/coupons/{first}/code")),
        "{list}"
    );
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_center_shows_a_sold_out_coupon_marked_after_the_claimable_ones() {
    let app = spawn_app().await;
    let shop = app.shop("Sold Out Cafe").await;
    let big = template(
        &app,
        &shop,
        json!({"name": "Big", "amount_off": 5000, "total_stock": 1}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let small = template(&app, &shop, json!({"name": "Small", "amount_off": 100})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ann = phone_user(&app, 51).await;
    let bo = phone_user(&app, 52).await;
    let offers = |token: Option<String>| {
        let app = &app;
        async move {
            let r = app
                .get("/v1/coupon-center?near=31.2304,121.4737", token.as_deref())
                .await;
            assert_eq!(r.status, StatusCode::OK, "{}", r.body);
            r.body["data"].as_array().unwrap().clone()
        }
    };
    let position = |list: &[Value], id: &str| {
        list.iter()
            .position(|o| o["template"]["id"] == id)
            .unwrap_or_else(|| panic!("{id} not listed: {list:?}"))
    };
    // In stock, the bigger one comes first.
    let list = offers(Some(ann.clone())).await;
    assert!(position(&list, &big) < position(&list, &small), "{list:?}");
    for o in &list {
        assert_eq!(o["sold_out"], false, "{o}");
        assert_eq!(o["claimable"], true, "{o}");
    }
    // Bo takes the only one: it stays listed, sold out, not claimable, after the small one.
    let r = claim(&app, &big, &bo).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    for who in [Some(ann.clone()), Some(bo.clone()), None] {
        let list = offers(who).await;
        let b = &list[position(&list, &big)];
        assert_eq!(b["sold_out"], true, "{b}");
        assert_eq!(b["claimable"], false, "{b}");
        assert_eq!(b["template"]["remaining"], 0);
        let s = &list[position(&list, &small)];
        assert_eq!(s["sold_out"], false, "{s}");
        assert!(position(&list, &small) < position(&list, &big), "{list:?}");
    }
    let r = claim(&app, &big, &ann).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_sold_out");
    // Also when it sold out on another node (this one never saw it go): from the stored stock.
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE coupon_templates SET issued = total_stock WHERE id = $1")
                .bind(small.clone()),
        )
        .await
        .unwrap();
    let list = offers(Some(ann.clone())).await;
    assert_eq!(list[position(&list, &small)]["sold_out"], true);
    assert_eq!(list[position(&list, &small)]["claimable"], false);
}

/// How many coupons the consumer holds.
async fn held(app: &TestApp, token: &str) -> usize {
    let mine = app.get("/v1/me/coupons", Some(token)).await;
    assert_eq!(mine.status, StatusCode::OK, "{}", mine.body);
    mine.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_retried_claim_of_the_last_coupon_gets_the_first_answer() {
    let app = spawn_app().await;
    let shop = app.shop("Last Claim Cafe").await;
    let t = template(&app, &shop, json!({"total_stock": 1})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ann = phone_user(&app, 61).await;
    let path = format!("/v1/coupon-templates/{t}/claims");
    let first = app
        .post_idem(&path, json!({}), Some(&ann), "last-claim-key-1")
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = app
        .post_idem(&path, json!({}), Some(&ann), "last-claim-key-1")
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(held(&app, &ann).await, 1);
    // Another key is a new claim: sold out.
    let other = app
        .post_idem(&path, json!({}), Some(&ann), "last-claim-key-2")
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(other.code(), "coupon_sold_out");
    let r = claim(&app, &t, &ann).await;
    assert_eq!(r.code(), "coupon_sold_out");
}

#[tokio::test]
async fn a_coupon_whose_use_window_has_ended_is_not_claimable_nor_in_the_center() {
    let app = spawn_app().await;
    let shop = app.shop("Stale Claim Cafe").await;
    let stale = template(
        &app,
        &shop,
        json!({"name": "Stale", "use_starts_at": "2020-01-01T00:00:00Z",
            "use_ends_at": "2020-02-01T00:00:00Z"}),
    )
    .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let fresh = template(&app, &shop, json!({"name": "Fresh"})).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let ann = phone_user(&app, 62).await;
    let center = app
        .get("/v1/coupon-center?near=31.2304,121.4737", Some(&ann))
        .await;
    assert_eq!(center.status, StatusCode::OK, "{}", center.body);
    let listed: Vec<&Value> = center.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["template"]["id"])
        .collect();
    assert!(
        listed.contains(&&json!(fresh)) && !listed.contains(&&json!(stale)),
        "{}",
        center.body
    );
    let r = claim(&app, &stale, &ann).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_not_claimable");
    assert_eq!(held(&app, &ann).await, 0);
    let r = app
        .get(&format!("/v1/coupon-templates/{stale}"), Some(&shop.owner))
        .await;
    assert_eq!(r.body["issued"], 0, "{}", r.body);
}

#[tokio::test]
async fn settlement_takes_what_coupons_cost_from_collected_money_and_the_daily_sweep_counts_it() {
    let app = spawn_app().await;
    let shop = app.shop("Coupon Settle Cafe").await;
    let ann = app.funded_consumer("+8613900009101", 20_000).await;
    let (app_ref, shop_ref, ann_ref) = (&app, &shop, &ann);
    let balances = move || app_ref.merchant_balances(shop_ref);
    let pay = move |coupon: Option<String>| {
        let (app, ann, qr) = (app_ref, ann_ref, &shop_ref.qr);
        async move {
            let mut body = json!({"qr": qr, "amount": 5000, "currency": "CNY"});
            if let Some(c) = coupon {
                body["coupon"] = json!(c);
            }
            let r = app.post("/v1/payments", body, Some(ann)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    // A ¥10 coupon paid part of a ¥50 bill, and only the coupon's transfer is from before today
    // (moved back two days, so before today's start whatever the hour).
    let t = template(&app, &shop, json!({"per_consumer_limit": 2})).await;
    let template_id = t["id"].as_str().unwrap().to_owned();
    let c = claim(&app, &template_id, &ann).await;
    let paid = pay(Some(c.body["id"].as_str().unwrap().to_owned())).await;
    let moved = app
        .state
        .db
        .execute(
            o2o_server::db::query(
                "UPDATE ledger_transfers SET created_at = created_at - 172800000000 \
                 WHERE reference = $1 AND code = 'coupon'",
            )
            .bind(paid),
        )
        .await
        .unwrap();
    assert_eq!(moved, 1, "the coupon's transfer");
    let (collected, _) = balances().await;
    assert_eq!(
        collected,
        5_000 - 24,
        "the whole bill (¥40 paid, ¥10 by the coupon), less the 0.6 % fee on what was paid"
    );
    // Today's sweep takes the earlier coupon cost from what was collected, and keeps today's
    // takings for tomorrow: a settlement that moved money, though none became available.
    let now = jiff::Timestamp::now();
    assert_eq!(app.settlement_sweep(now).await, 1);
    assert_eq!(balances().await, (collected - 1_000, 0));
    assert_eq!(
        app.settlement_sweep(now).await,
        1,
        "found made earlier that day"
    );
    assert_eq!(balances().await, (collected - 1_000, 0));
    app.assert_ledger_verifies().await;
    // An operator's settlement moves everything at once and says what coupons cost.
    let c = claim(&app, &template_id, &ann).await;
    pay(Some(c.body["id"].as_str().unwrap().to_owned())).await;
    let (pending, available) = balances().await;
    let op = app.operator().await;
    let r = app
        .post(
            &format!("/v1/admin/merchants/{}/settlements", shop.merchant),
            json!({}),
            Some(&op),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["promotion_cost"], 1_000, "{}", r.body);
    assert_eq!(r.body["amount"], pending - 1_000, "{}", r.body);
    assert_eq!(balances().await, (0, available + pending - 1_000));
    app.assert_ledger_verifies().await;
}
