//! The coupon pages: the coupon center and its claim button, my coupons, the store-pay confirm
//! step with the best coupon preselected, the console's templates and results, and a merchant's
//! message carrying a coupon that followers claim from the inbox.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn template(app: &TestApp, shop: &Shop, body: Value) -> String {
    let mut full = json!({"merchant_id": shop.merchant, "currency": "CNY", "total_stock": 10});
    for (k, v) in body.as_object().unwrap() {
        full[k] = v.clone();
    }
    let r = app
        .post("/v1/coupon-templates", full, Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn the_coupon_center_claims_once_and_my_coupons_shows_it_ready_then_used_after_a_store_payment()
 {
    let app = spawn_app().await;
    let shop = app.shop("Coupon Cafe").await;
    let five = template(
        &app,
        &shop,
        json!({"name": "Five off", "kind": "amount_off", "amount_off": 500, "min_spend": 3000}),
    )
    .await;
    let pct = template(
        &app,
        &shop,
        json!({"name": "Twenty percent", "kind": "percent_off", "percent_off": 20, "max_discount": 800}),
    )
    .await;
    let me = app.funded_consumer("13700000051", 10_000).await;
    let near = "/coupons?near=31.2304,121.4737";

    // Guests see the offers and are sent to log in to claim.
    let r = app
        .client
        .get(app.url(near))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    let html = r.text().await.unwrap();
    assert!(
        html.contains("Five off") && html.contains("login-to-claim"),
        "{html}"
    );
    let (status, location, _) = post_page(
        &app,
        &format!("/coupons/{five}/claim"),
        "",
        &[("csrf", PAGE_CSRF)],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/login?next="), "{location}");

    // A claim without the PAGE_CSRF token is refused and claims nothing.
    let (status, _, _) = post_page(
        &app,
        &format!("/coupons/{five}/claim"),
        &me,
        &[("csrf", "")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Claim both; a second claim of one is over the limit and says so.
    for id in [&five, &pct] {
        let (status, location, _) = post_page(
            &app,
            &format!("/coupons/{id}/claim"),
            &me,
            &[
                ("csrf", PAGE_CSRF),
                ("next", "/coupons?near=31.2304,121.4737"),
            ],
        )
        .await;
        assert_eq!(status, StatusCode::SEE_OTHER);
        assert_eq!(location, format!("{near}&claimed={id}"));
    }
    let (_, location, _) = post_page(
        &app,
        &format!("/coupons/{five}/claim"),
        &me,
        &[("csrf", PAGE_CSRF)],
    )
    .await;
    assert!(location.starts_with("/coupons?error="), "{location}");
    let (_, html) = get_page(&app, &location, &me).await;
    assert!(html.contains("You hold as many as allowed"), "{html}");
    assert!(html.contains("data-test=\"offer-limit\""), "{html}");
    assert!(html.contains("data-test=\"error\""), "{html}");
    // Only the server's own refusal shows: a link made elsewhere, or this one opened by another
    // browser (another CSRF token), puts no words on the page.
    let sealed = location.trim_start_matches("/coupons?error=");
    let elsewhere = format!("o2o_session={me}; o2o_csrf=another-browsers-token-0123456789");
    for (path, cookie) in [
        (
            "/coupons?error=Your+account+is+locked".to_owned(),
            page_cookies(&me),
        ),
        (
            "/coupons?error=00.Your+account+is+locked".to_owned(),
            page_cookies(&me),
        ),
        (location.clone(), elsewhere),
        (
            format!("/coupons?error={}", sealed.replacen('.', "x.", 1)),
            page_cookies(&me),
        ),
    ] {
        let (_, html) = get_page_with(&app, &path, &cookie, "en").await;
        assert!(!html.contains("account is locked"), "{path}: {html}");
        assert!(!html.contains("data-test=\"error\""), "{path}: {html}");
    }

    let (status, html) = get_page(&app, "/me/coupons", &me).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(html.matches("data-status=\"active\"").count(), 2, "{html}");
    assert!(
        html.contains("¥5.00 off a spend of ¥30.00 or more"),
        "{html}"
    );
    assert!(html.contains("20% off, up to ¥8.00"), "{html}");

    // Paying ¥50 at the store: the confirm step preselects the best (20% capped at ¥8).
    let short = shop.qr.rsplit('/').next().unwrap().to_owned();
    let pay = format!("/q/{short}/pay");
    let key = "confirm-key-0123456789abcdef";
    // An amount over the most one payment may be is refused at once: no coupon is offered on
    // a bill that could never be paid.
    let (status, _, html) = post_page(
        &app,
        &pay,
        &me,
        &[
            ("csrf", PAGE_CSRF),
            ("amount", "99999999999999"),
            ("key", key),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{html}");
    assert!(html.contains("data-test=\"error\""), "{html}");
    assert!(!html.contains("data-test=\"coupon-picker\""), "{html}");
    let (status, _, html) = post_page(
        &app,
        &pay,
        &me,
        &[("csrf", PAGE_CSRF), ("amount", "50"), ("key", key)],
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{html}");
    assert!(html.contains("data-test=\"coupon-picker\""), "{html}");
    assert!(
        html.split("data-test=\"coupon-choice\"")
            .skip(1)
            .any(|part| part.contains(" checked")),
        "a coupon is preselected: {html}"
    );
    assert!(html.contains(&format!("value=\"{}\"", coupon_of(&app, &me, &pct).await)));
    assert!(
        html.contains("¥42.00"),
        "the best leaves ¥42.00 to pay: {html}"
    );
    assert_eq!(
        app.balance(&me).await,
        10_000,
        "nothing moves before the confirm"
    );

    // Confirmed with the preselected coupon: ¥42 leaves the wallet and the coupon is used.
    let coupon = coupon_of(&app, &me, &pct).await;
    let (status, location, body) = post_page(
        &app,
        &pay,
        &me,
        &[
            ("csrf", PAGE_CSRF),
            ("amount", "50"),
            ("key", "confirm-key-2-0123456789ab"),
            ("coupon_step", "1"),
            ("coupon", &coupon),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(location.starts_with("/me/payments/pay_"), "{location}");
    assert_eq!(app.balance(&me).await, 10_000 - 4_200);
    let (_, html) = get_page(&app, "/me/coupons", &me).await;
    assert_eq!(html.matches("data-status=\"used\"").count(), 1, "{html}");
    assert!(html.contains("¥8.00"), "{html}");

    // Choosing no coupon pays the whole bill.
    let (status, _, _) = post_page(
        &app,
        &pay,
        &me,
        &[
            ("csrf", PAGE_CSRF),
            ("amount", "40"),
            ("key", "confirm-key-3-0123456789ab"),
            ("coupon_step", "1"),
            ("coupon", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(app.balance(&me).await, 10_000 - 4_200 - 4_000);
    // A coupon that is not the consumer's is refused with a message, nothing moves.
    let (status, _, html) = post_page(
        &app,
        &pay,
        &me,
        &[
            ("csrf", PAGE_CSRF),
            ("amount", "40"),
            ("key", "confirm-key-4-0123456789ab"),
            ("coupon_step", "1"),
            ("coupon", "cpn_nonesuch"),
        ],
    )
    .await;
    assert!(status.is_client_error(), "{status}: {html}");
    assert_eq!(app.balance(&me).await, 10_000 - 4_200 - 4_000);
    app.assert_ledger_verifies().await;
}

async fn coupon_of(app: &TestApp, token: &str, template: &str) -> String {
    let r = app.get("/v1/me/coupons", Some(token)).await;
    r.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["template"]["id"] == template)
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn the_console_creates_templates_from_the_form_and_shows_their_results() {
    let app = spawn_app().await;
    let shop = app.shop("Console Coupons").await;
    let (status, location, body) = post_page(
        &app,
        "/console/coupons",
        &shop.owner,
        &[
            ("csrf", PAGE_CSRF),
            ("name", "满30减5"),
            ("kind", "amount_off"),
            ("amount_off", "5"),
            ("min_spend", "30"),
            ("total_stock", "100"),
            ("per_consumer_limit", "2"),
            ("claim_starts_at", "2026-01-01T09:00"),
            ("audience", "followers"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(
        location.starts_with("/console/coupons?created=cpt_"),
        "{location}"
    );
    let list = app.get("/v1/coupon-templates", Some(&shop.owner)).await;
    let t = &list.body["data"][0];
    assert_eq!(t["amount_off"], 500);
    assert_eq!(t["min_spend"], 3000);
    assert_eq!(t["per_consumer_limit"], 2);
    assert_eq!(t["audience"], "followers");
    assert_eq!(t["claim_starts_at"], "2026-01-01T01:00:00Z");

    // Bad input: a clear 4xx with the form kept, nothing stored.
    for (field, value) in [
        ("amount_off", "five"),
        ("total_stock", "0"),
        ("claim_starts_at", "soon"),
        ("kind", "bogus"),
        ("kind", ""),
        // 满 3 减 5: the coupon would pay for its own threshold.
        ("min_spend", "3"),
    ] {
        let mut form = vec![
            ("csrf", PAGE_CSRF),
            ("name", "Bad"),
            ("kind", "amount_off"),
            ("amount_off", "5"),
            ("total_stock", "10"),
        ];
        form.retain(|(k, _)| *k != field);
        form.push((field, value));
        let (status, _, html) = post_page(&app, "/console/coupons", &shop.owner, &form).await;
        assert!(status.is_client_error(), "{field}: {status}");
        assert!(html.contains("data-test=\"error\""), "{html}");
    }
    let (status, _, _) = post_page(
        &app,
        "/console/coupons",
        &shop.cashier,
        &[
            ("csrf", PAGE_CSRF),
            ("name", "x"),
            ("amount_off", "1"),
            ("total_stock", "1"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get("/v1/coupon-templates", Some(&shop.owner))
            .await
            .body["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let (status, html) = get_page(&app, "/console/coupons", &shop.owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"stat-issued\">0<"), "{html}");
    assert!(
        html.contains("Total stock 0 / 100 · Per consumer 2 · 2026-01-01 09:00"),
        "{html}"
    );
}

#[tokio::test]
async fn a_message_carries_the_merchants_own_coupon_and_followers_claim_it_from_the_inbox() {
    let app = spawn_app().await;
    let shop = app.shop("Message Coupons").await;
    let other = app.shop("Other Coupons").await;
    let mine = template(
        &app,
        &shop,
        json!({"name": "Ten off", "kind": "amount_off", "amount_off": 1000}),
    )
    .await;
    let theirs = template(
        &app,
        &other,
        json!({"name": "Not yours", "kind": "amount_off", "amount_off": 100}),
    )
    .await;
    let fan = app.consumer_token("+8613900000071", None).await;
    let r = app
        .post(
            &format!("/v1/merchants/{}/followers", shop.merchant),
            json!({}),
            Some(&fan),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);

    let send = |tpl: String| {
        let app = &app;
        let shop = &shop;
        async move {
            app.post(
                &format!("/v1/merchants/{}/messages", shop.merchant),
                json!({"title": "A gift", "body": "For you", "audience": "followers", "coupon_template_id": tpl}),
                Some(&shop.owner),
            )
            .await
        }
    };
    for bad in [
        theirs.clone(),
        "cpt_nonesuch".to_owned(),
        "nonsense".to_owned(),
    ] {
        let r = send(bad).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert_eq!(r.body["error"]["code"], "template_not_found");
        assert_eq!(r.body["error"]["param"], "coupon_template_id");
    }
    let r = send(mine.clone()).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["coupon_template_id"], mine.as_str());
    let id = r.body["id"].as_str().unwrap().to_owned();
    for _ in 0..200 {
        let m = app
            .get(
                &format!("/v1/merchants/{}/messages/{id}", shop.merchant),
                Some(&shop.owner),
            )
            .await;
        if m.body["status"] == "sent" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let inbox = app.get("/v1/me/inbox", Some(&fan)).await;
    assert_eq!(
        inbox.body["data"][0]["coupon_template_id"],
        mine.as_str(),
        "{}",
        inbox.body
    );

    let (_, html) = get_page(&app, "/me/inbox", &fan).await;
    assert!(
        html.contains("data-test=\"inbox-coupon\"") && html.contains("Ten off"),
        "{html}"
    );
    assert!(html.contains("data-test=\"inbox-claim\""), "{html}");
    let key = html
        .split("name=\"key\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap()
        .to_owned();
    assert!(key.ends_with(&format!("-{mine}")), "{key}");
    let (status, location, _) = post_page(
        &app,
        &format!("/coupons/{mine}/claim"),
        &fan,
        &[
            ("csrf", PAGE_CSRF),
            ("via", "campaign"),
            ("next", "/me/inbox"),
            ("key", &key),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/me/inbox?claimed={mine}"));
    // The same form sent again (a double tap) answers the same and claims nothing more.
    let again = post_page(
        &app,
        &format!("/coupons/{mine}/claim"),
        &fan,
        &[
            ("csrf", PAGE_CSRF),
            ("via", "campaign"),
            ("next", "/me/inbox"),
            ("key", &key),
        ],
    )
    .await;
    assert_eq!(again.1, format!("/me/inbox?claimed={mine}"));
    let (n,): (i64,) = app
        .state
        .db
        .fetch_one(
            o2o_server::db::query("SELECT CAST(COUNT(*) AS BIGINT) FROM coupons WHERE template_id = $1 AND claimed_via = 'campaign'")
                .bind(mine.clone()),
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (_, html) = get_page(&app, "/me/inbox", &fan).await;
    assert!(!html.contains("data-test=\"inbox-claim\""), "{html}");
    assert!(
        html.contains("data-test=\"inbox-coupon-state\">Claimed<"),
        "{html}"
    );
}

#[tokio::test]
async fn pickup_ordering_uses_the_best_coupon_for_what_was_chosen_unless_told_otherwise() {
    let app = spawn_app().await;
    let shop = app.shop("Pickup Coupons").await;
    let r = app
        .patch(
            &format!("/v1/stores/{}", shop.store),
            json!({"opening_hours": "Mo-Su 00:00-24:00"}),
            Some(&shop.owner),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let product = app
        .post(
            "/v1/products",
            json!({"name_zh": "美式", "description": "", "price": 2200, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(product.status, StatusCode::CREATED, "{}", product.body);
    let product = product.body["id"].as_str().unwrap().to_owned();
    let small = template(
        &app,
        &shop,
        json!({"name": "Three off", "kind": "amount_off", "amount_off": 300, "min_spend": 2000, "per_consumer_limit": 2}),
    )
    .await;
    let big = template(
        &app,
        &shop,
        json!({"name": "Five off fifty", "kind": "amount_off", "amount_off": 500, "min_spend": 5000}),
    )
    .await;
    let me = app.funded_consumer("13700000081", 20_000).await;
    for id in [&small, &big, &small] {
        let r = app
            .post(
                &format!("/v1/coupon-templates/{id}/claims"),
                json!({}),
                Some(&me),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let page = format!("/stores/{}/pickup", shop.store);
    let (status, html) = get_page(&app, &page, &me).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("data-test=\"pickup-coupon\"") && html.contains("Five off fifty"),
        "{html}"
    );

    let qty = format!("q.{product}");
    let order = |n: &'static str, coupon: &'static str, key: &'static str| {
        let (app, page, me, qty) = (&app, &page, &me, &qty);
        async move {
            let (status, location, body) = post_page(
                app,
                page,
                me,
                &[
                    ("csrf", PAGE_CSRF),
                    ("key", key),
                    (qty.as_str(), n),
                    ("pickup_at", ""),
                    ("coupon", coupon),
                ],
            )
            .await;
            assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
            assert!(location.starts_with("/me/orders/ord_"), "{location}");
        }
    };
    // Two coffees (¥44): only the ¥3 coupon applies.
    order("2", "best", "pickup-key-1-0123456789ab").await;
    assert_eq!(app.balance(&me).await, 20_000 - 4_100);
    // Three (¥66): the ¥5 coupon is the best.
    order("3", "best", "pickup-key-2-0123456789ab").await;
    assert_eq!(app.balance(&me).await, 20_000 - 4_100 - 6_100);
    // No coupon: the whole bill.
    order("1", "", "pickup-key-3-0123456789ab").await;
    assert_eq!(app.balance(&me).await, 20_000 - 4_100 - 6_100 - 2_200);
    let mine = app.get("/v1/me/coupons", Some(&me)).await;
    let used: Vec<&Value> = mine.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "used")
        .collect();
    assert_eq!(used.len(), 2, "{}", mine.body);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_coupon_center_page_marks_a_sold_out_coupon_and_offers_no_claim_for_it() {
    let app = spawn_app().await;
    let shop = app.shop("Poster Cafe").await;
    let poster = template(
        &app,
        &shop,
        json!({"name": "Poster deal", "kind": "amount_off", "amount_off": 5000, "total_stock": 1}),
    )
    .await;
    let plain = template(
        &app,
        &shop,
        json!({"name": "Plain deal", "kind": "amount_off", "amount_off": 100}),
    )
    .await;
    let first = app.funded_consumer("13700000061", 0).await;
    let me = app.funded_consumer("13700000062", 0).await;
    let r = app
        .post(
            &format!("/v1/coupon-templates/{poster}/claims"),
            json!({}),
            Some(&first),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (status, html) = get_page(&app, "/coupons?near=31.2304,121.4737", &me).await;
    assert_eq!(status, StatusCode::OK);
    let offer = |id: &str| {
        let start = html
            .find(&format!("data-template=\"{id}\""))
            .unwrap_or_else(|| panic!("{id} not on the page: {html}"));
        let end = html[start..].find("</li>").unwrap() + start;
        (start, html[start..end].to_owned())
    };
    let (at_poster, sold) = offer(&poster);
    let (at_plain, open) = offer(&plain);
    assert!(at_plain < at_poster, "sold out comes last: {html}");
    assert!(sold.contains("data-sold-out=\"true\""), "{sold}");
    assert!(sold.contains("data-test=\"offer-sold-out\""), "{sold}");
    assert!(sold.contains("All claimed"), "{sold}");
    assert!(!sold.contains("data-test=\"claim\""), "{sold}");
    assert!(open.contains("data-sold-out=\"false\""), "{open}");
    assert!(open.contains("data-test=\"claim\""), "{open}");
}

/// How many messages the shop has sent.
async fn messages_of(app: &TestApp, shop: &Shop) -> usize {
    let r = app
        .get(
            &format!("/v1/merchants/{}/messages", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().len()
}

#[tokio::test]
async fn a_message_cannot_carry_a_coupon_priced_in_points_and_nothing_is_sent() {
    let app = spawn_app().await;
    let shop = app.shop("Points Message Cafe").await;
    let free = template(
        &app,
        &shop,
        json!({"name": "Free five", "kind": "amount_off", "amount_off": 500}),
    )
    .await;
    let priced = template(
        &app,
        &shop,
        json!({"name": "Points five", "kind": "amount_off", "amount_off": 500, "points_price": 100}),
    )
    .await;
    let fan = app.consumer_token("+8613900000072", None).await;
    let r = app
        .post(
            &format!("/v1/merchants/{}/followers", shop.merchant),
            json!({}),
            Some(&fan),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The API refuses it, stores nothing and sends nothing, even with a key retried.
    for key in ["points-message-1", "points-message-1"] {
        let r = app
            .post_idem(
                &format!("/v1/merchants/{}/messages", shop.merchant),
                json!({"title": "A gift", "body": "For you", "audience": "followers",
                    "coupon_template_id": priced}),
                Some(&shop.owner),
                key,
            )
            .await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.code(), "coupon_exchange_only");
        assert_eq!(r.body["error"]["param"], "coupon_template_id");
        let message = r.body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("Points five") && message.contains("100 member points"),
            "{message}"
        );
    }
    assert_eq!(messages_of(&app, &shop).await, 0);
    let (stored, events): (i64, i64) = app
        .state
        .db
        .fetch_one(o2o_server::db::query(
            "SELECT (SELECT COUNT(*) FROM messages), \
             (SELECT COUNT(*) FROM events WHERE type LIKE 'message.%')",
        ))
        .await
        .unwrap();
    assert_eq!((stored, events), (0, 0));
    let inbox = app.get("/v1/me/inbox", Some(&fan)).await;
    assert_eq!(inbox.body["data"], json!([]), "{}", inbox.body);

    // The console form offers only coupons claimed free.
    let (status, html) = get_page(&app, "/console/messages", &shop.owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains(&format!("value=\"{free}\"")), "{html}");
    assert!(!html.contains(&format!("value=\"{priced}\"")), "{html}");
    // Posted anyway, it comes back refused with the message as typed, and nothing is sent.
    let (status, _, html) = post_page(
        &app,
        "/console/messages",
        &shop.owner,
        &[
            ("csrf", PAGE_CSRF),
            ("key", "points-form-1"),
            ("title", "Weekend gift"),
            ("body", "Come by <soon>"),
            ("audience", "members"),
            ("coupon_template_id", priced.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("data-test=\"error\""), "{html}");
    assert!(html.contains("100 member points"), "{html}");
    assert!(html.contains("value=\"Weekend gift\""), "{html}");
    assert!(html.contains("Come by &#60;soon&#62;</textarea>"), "{html}");
    assert!(
        html.contains("<option value=\"members\" selected>"),
        "{html}"
    );
    assert_eq!(messages_of(&app, &shop).await, 0);
    // The same form with the free coupon goes out.
    let (status, location, _) = post_page(
        &app,
        "/console/messages",
        &shop.owner,
        &[
            ("csrf", PAGE_CSRF),
            ("key", "points-form-2"),
            ("title", "Weekend gift"),
            ("body", "Come by"),
            ("audience", "followers"),
            ("coupon_template_id", free.as_str()),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, "/console/messages");
    assert_eq!(messages_of(&app, &shop).await, 1);
}

#[tokio::test]
async fn the_message_form_offers_free_coupons_behind_many_priced_ones() {
    let app = spawn_app().await;
    let shop = app.shop("Many Priced Cafe").await;
    let mut free = Vec::new();
    for n in 0..3 {
        free.push(
            template(
                &app,
                &shop,
                json!({"name": format!("Free {n}"), "kind": "amount_off", "amount_off": 100}),
            )
            .await,
        );
    }
    // Newer than the free ones, and more than one page (100) of what the form reads at a time.
    let mut priced = Vec::new();
    for n in 0..110 {
        priced.push(
            template(
                &app,
                &shop,
                json!({"name": format!("Priced {n}"), "kind": "amount_off", "amount_off": 100,
                    "points_price": 10}),
            )
            .await,
        );
    }
    let (status, html) = get_page(&app, "/console/messages", &shop.owner).await;
    assert_eq!(status, StatusCode::OK);
    for id in &free {
        assert!(html.contains(&format!("value=\"{id}\"")), "{id} is offered");
    }
    for id in &priced {
        assert!(
            !html.contains(&format!("value=\"{id}\"")),
            "{id} is not offered"
        );
    }
}
