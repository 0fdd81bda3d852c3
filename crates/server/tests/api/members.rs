use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A shop running a program (top up ¥100 get ¥10, ¥500 get ¥80; 2 points per yuan; Silver
/// from ¥50 spent, Gold from ¥200) with a ¥1,000 bonus budget.
async fn member_shop(app: &TestApp, name: &str) -> Shop {
    let shop = app.shop(name).await;
    let r = app
        .client
        .put(app.url(&format!("/v1/member-programs/{}", shop.merchant)))
        .bearer_auth(&shop.owner)
        .json(&json!({
            "top_up_bonuses": [{"min_top_up": 50000, "bonus": 8000}, {"min_top_up": 10000, "bonus": 1000}],
            "points_per_yuan": 2,
            "tiers": [{"name": "Silver", "min_spend": 5000, "percent_off": 0},
                      {"name": "Gold", "min_spend": 20000, "percent_off": 5}]
        }));
    let r = app.send(r).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/member-programs/{}/budget-top-ups", shop.merchant),
            json!({"amount": 100_000, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["bonus_budget"], 100_000);
    shop
}

async fn join(app: &TestApp, me: &str, merchant: &str) -> Res {
    app.post("/v1/me/cards", json!({"merchant_id": merchant}), Some(me))
        .await
}

async fn card(app: &TestApp, me: &str, id: &str) -> Value {
    let r = app.get(&format!("/v1/me/cards/{id}"), Some(me)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn top_up(app: &TestApp, me: &str, id: &str, amount: i64) -> Res {
    app.post(
        &format!("/v1/me/cards/{id}/top-ups"),
        json!({"amount": amount, "currency": "CNY"}),
        Some(me),
    )
    .await
}

async fn pay(app: &TestApp, me: &str, shop: &Shop, source: &str, amount: i64) -> Res {
    app.post(
        "/v1/payments",
        json!({"qr": shop.qr, "amount": amount, "currency": "CNY", "source": source}),
        Some(me),
    )
    .await
}

async fn budget(app: &TestApp, shop: &Shop) -> i64 {
    let r = app
        .get(
            &format!("/v1/member-programs/{}", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["bonus_budget"].as_i64().unwrap()
}

/// A member with a card topped up with ¥100 (+¥10 bonus); the wallet keeps the rest.
async fn member_with_card(
    app: &TestApp,
    shop: &Shop,
    phone: &str,
    wallet: i64,
) -> (String, String) {
    let me = app.funded_consumer(phone, wallet).await;
    let r = join(app, &me, &shop.merchant).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let r = top_up(app, &me, &id, 10_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    (me, id)
}

#[tokio::test]
async fn joining_twice_returns_the_same_card_and_a_shop_without_a_program_is_not_found() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Members Cafe").await;
    let plain = app.shop("Plain Cafe").await;
    let me = app.funded_consumer("13700000101", 0).await;
    let first = join(&app, &me, &shop.merchant).await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let id = first.body["id"].as_str().unwrap();
    assert!(id.starts_with("crd_"));
    assert_eq!(first.body["balance"], 0);
    assert_eq!(first.body["bonus_balance"], 0);
    let again = join(&app, &me, &shop.merchant).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], id);
    let r = join(&app, &me, &plain.merchant).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    assert_eq!(r.code(), "program_not_found");
    let r = join(&app, &me, "mch_nope").await;
    assert_eq!(r.code(), "program_not_found");
    let list = app.get("/v1/me/cards", Some(&me)).await;
    assert_eq!(list.body["data"].as_array().unwrap().len(), 1);
    // Another consumer cannot read it; staff of another merchant cannot read the program.
    let other = app.funded_consumer("13700000102", 0).await;
    let r = app.get(&format!("/v1/me/cards/{id}"), Some(&other)).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(
            &format!("/v1/member-programs/{}", shop.merchant),
            Some(&plain.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = app
        .get(
            &format!("/v1/member-programs/{}", plain.merchant),
            Some(&plain.owner),
        )
        .await;
    assert_eq!(r.code(), "program_not_found");
    // Bad programs are refused whole.
    for body in [
        json!({"top_up_bonuses": [{"min_top_up": 100, "bonus": 500}]}),
        json!({"top_up_bonuses": [{"min_top_up": -1, "bonus": 1}]}),
        json!({"points_per_yuan": 1000}),
        json!({"tiers": [{"name": "", "min_spend": 0, "percent_off": 0}]}),
        json!({"tiers": [{"name": "A", "min_spend": 0, "percent_off": 90}]}),
        json!({"bogus": 1}),
    ] {
        let r = app
            .send(
                app.client
                    .put(app.url(&format!("/v1/member-programs/{}", shop.merchant)))
                    .bearer_auth(&shop.owner)
                    .json(&body),
            )
            .await;
        assert!(r.status.is_client_error(), "{body}: {}", r.status);
    }
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_top_up_moves_wallet_money_to_the_card_with_a_bonus_from_the_budget() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Bonus Cafe").await;
    let (me, id) = member_with_card(&app, &shop, "13700000111", 30_000).await;
    let c = card(&app, &me, &id).await;
    assert_eq!(c["balance"], 10_000);
    assert_eq!(c["bonus_balance"], 1_000);
    assert_eq!(app.balance(&me).await, 20_000);
    assert_eq!(budget(&app, &shop).await, 99_000);
    assert_eq!(c["movements"][0]["kind"], "top_up");
    // Below every rule: no bonus.
    let r = top_up(&app, &me, &id, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["card"]["bonus"], 0);
    // More than the wallet holds: 402 and nothing moves.
    let r = top_up(&app, &me, &id, 50_000).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    let c = card(&app, &me, &id).await;
    assert_eq!(c["balance"], 15_000);
    assert_eq!(c["bonus_balance"], 1_000);
    assert_eq!(app.balance(&me).await, 15_000);
    assert_eq!(budget(&app, &shop).await, 99_000);
    for body in [
        json!({"amount": 0, "currency": "CNY"}),
        json!({"amount": 100, "currency": "USD"}),
        json!({"amount": 100}),
    ] {
        let r = app
            .post(
                &format!("/v1/me/cards/{id}/top-ups"),
                body.clone(),
                Some(&me),
            )
            .await;
        assert!(
            r.status.is_client_error(),
            "{body}: {} {}",
            r.status,
            r.body
        );
    }
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_bonus_the_budget_cannot_pay_is_refused_and_nothing_moves() {
    let app = spawn_app().await;
    let shop = app.shop("Broke Cafe").await;
    let r = app
        .send(
            app.client
                .put(app.url(&format!("/v1/member-programs/{}", shop.merchant)))
                .bearer_auth(&shop.owner)
                .json(&json!({"top_up_bonuses": [{"min_top_up": 10000, "bonus": 1000}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let me = app.funded_consumer("13700000121", 20_000).await;
    let id = join(&app, &me, &shop.merchant).await.body["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = top_up(&app, &me, &id, 10_000).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "bonus_budget_insufficient");
    assert_eq!(app.balance(&me).await, 20_000);
    assert_eq!(card(&app, &me, &id).await["balance"], 0);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn paying_with_the_card_spends_the_paid_part_first_then_the_bonus() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Spend Cafe").await;
    let (me, id) = member_with_card(&app, &shop, "13700000131", 10_000).await;
    let r = pay(&app, &me, &shop, &id, 6_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["source"], id);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["balance"], 4_000);
    assert_eq!(c["bonus_balance"], 1_000);
    assert_eq!(c["points"], 120);
    assert_eq!(c["tier"], "Silver");
    // 4,500 takes the last 4,000 of the paid part and 500 of the bonus; points on 4,000 only.
    let r = pay(&app, &me, &shop, &id, 4_500).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["balance"], 0);
    assert_eq!(c["bonus_balance"], 500);
    assert_eq!(c["points"], 200);
    assert_eq!(c["spend_12m"], 10_500);
    // More than the card holds: 402, and nothing moves.
    let payments = app.count("payments").await;
    let r = pay(&app, &me, &shop, &id, 501).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    assert_eq!(app.count("payments").await, payments);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["bonus_balance"], 500);
    assert_eq!(c["points"], 200);
    // The wallet was never touched by card payments.
    assert_eq!(app.balance(&me).await, 0);
    // Manual capture is not offered for cards.
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 100, "currency": "CNY", "source": id, "capture": "manual"}),
            Some(&me),
        )
        .await;
    assert_eq!(r.code(), "card_capture_manual_unsupported");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_tier_change_is_recorded_as_an_event() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Tier Cafe").await;
    let (me, id) = member_with_card(&app, &shop, "13700000141", 10_000).await;
    let r = pay(&app, &me, &shop, &id, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (n,): (i64,) = app
        .state
        .db
        .fetch_one(o2o_server::db::query(
            "SELECT COUNT(*) FROM events WHERE type = 'member.tier_changed'",
        ))
        .await
        .unwrap();
    assert_eq!(n, 1);
    assert_eq!(card(&app, &me, &id).await["tier"], "Silver");
}

#[tokio::test]
async fn a_refund_goes_back_to_the_paid_and_bonus_parts_in_proportion() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Refund Cafe").await;
    let (me, id) = member_with_card(&app, &shop, "13700000151", 10_000).await;
    // 11,000 = 10,000 paid + 1,000 bonus.
    let p = pay(&app, &me, &shop, &id, 11_000).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.body["id"].as_str().unwrap();
    let r = app
        .post(
            "/v1/refunds",
            json!({"payment": pid, "amount": 5_500}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["balance"], 5_000);
    assert_eq!(c["bonus_balance"], 500);
    assert_eq!(c["points"], 100);
    let r = app
        .post("/v1/refunds", json!({"payment": pid}), Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["balance"], 10_000);
    assert_eq!(c["bonus_balance"], 1_000);
    assert_eq!(c["points"], 0);
    // Bonus is never paid out as cash: the wallet got nothing from the refunds.
    assert_eq!(app.balance(&me).await, 0);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_pay_code_names_only_the_consumers_own_card() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Code Cafe").await;
    let (me, id) = member_with_card(&app, &shop, "13700000171", 10_000).await;
    let other = app.consumer_token("13700000172", None).await;
    let r = app
        .post("/v1/me/pay-codes", json!({"source": id}), Some(&me))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["source"], id.as_str());
    // Another consumer's card, and a card that does not exist, alike: no code, nothing told.
    for (who, source) in [(&other, id.as_str()), (&me, "crd_doesnotexist")] {
        let r = app
            .post("/v1/me/pay-codes", json!({"source": source}), Some(who))
            .await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{source}: {}", r.body);
        assert_eq!(r.code(), "card_not_found");
        assert_eq!(r.body["error"]["param"], "source");
    }
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn closing_returns_only_the_paid_part_and_the_bonus_goes_back_to_the_budget() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Leave Cafe").await;
    let (me, id) = member_with_card(&app, &shop, "13700000161", 10_000).await;
    let p = pay(&app, &me, &shop, &id, 3_000).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let r = app
        .post(&format!("/v1/me/cards/{id}/close"), json!({}), Some(&me))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(app.balance(&me).await, 7_000);
    assert_eq!(budget(&app, &shop).await, 100_000);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["status"], "closed");
    assert_eq!(c["balance"], 0);
    assert_eq!(c["bonus_balance"], 0);
    // A closed card cannot pay or be topped up.
    let r = pay(&app, &me, &shop, &id, 100).await;
    assert_eq!(r.code(), "card_closed");
    let r = top_up(&app, &me, &id, 100).await;
    assert_eq!(r.code(), "card_closed");
    // Nor is a pay code made for it.
    let r = app
        .post("/v1/me/pay-codes", json!({"source": id}), Some(&me))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "card_closed");
    // A refund of an earlier card payment now goes to the wallet, never as bonus.
    let r = app
        .post(
            "/v1/refunds",
            json!({"payment": p.body["id"]}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.balance(&me).await, 10_000);
    // Joining again reopens the same card.
    let again = join(&app, &me, &shop.merchant).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body["id"], id.as_str());
    assert_eq!(again.body["status"], "active");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn another_merchants_card_or_another_consumers_card_is_refused() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Own Cafe").await;
    let other_shop = member_shop(&app, "Other Cafe").await;
    let (me, id) = member_with_card(&app, &shop, "13700000171", 10_000).await;
    let r = pay(&app, &me, &other_shop, &id, 1_000).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.code(), "card_wrong_merchant");
    let stranger = app.funded_consumer("13700000172", 0).await;
    let r = pay(&app, &stranger, &shop, &id, 1_000).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.code(), "card_not_found");
    let r = top_up(&app, &stranger, &id, 1_000).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    let r = pay(&app, &me, &shop, "crd_nosuchcard", 1_000).await;
    assert_eq!(r.code(), "card_not_found");
    assert_eq!(card(&app, &me, &id).await["balance"], 10_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn concurrent_joins_open_one_card() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Race Cafe").await;
    let me = app.funded_consumer("13700000181", 0).await;
    let mut tasks = Vec::new();
    for _ in 0..6 {
        tasks.push(join(&app, &me, &shop.merchant));
    }
    let results = futures::future::join_all(tasks).await;
    let ids: std::collections::HashSet<String> = results
        .iter()
        .map(|r| {
            assert!(r.status.is_success(), "{} {}", r.status, r.body);
            r.body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(ids.len(), 1);
    app.assert_ledger_verifies().await;
}

/// An open card makes a member; its tier makes a member of that tier. A closed card is neither.
#[tokio::test]
async fn members_and_a_tier_are_audiences_for_coupons_and_messages() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Audience Cafe").await;
    // Ann reaches Silver; Bo holds a card without a tier; Cy only follows; Dee closed her card;
    // Eve is Silver but muted the merchant.
    let (ann, ann_card) = member_with_card(&app, &shop, "13700000161", 10_000).await;
    let r = pay(&app, &ann, &shop, &ann_card, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (bo, _) = member_with_card(&app, &shop, "13700000162", 10_000).await;
    let cy = app.funded_consumer("13700000163", 0).await;
    let r = app
        .post(
            &format!("/v1/merchants/{}/followers", shop.merchant),
            json!({"channel": "page"}),
            Some(&cy),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let (dee, dee_card) = member_with_card(&app, &shop, "13700000164", 10_000).await;
    let r = app
        .post(
            &format!("/v1/me/cards/{dee_card}/close"),
            json!({}),
            Some(&dee),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (eve, eve_card) = member_with_card(&app, &shop, "13700000165", 10_000).await;
    let r = pay(&app, &eve, &shop, &eve_card, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/merchants/{}/mute", shop.merchant),
            json!({}),
            Some(&eve),
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);

    // Coupons for members, and for Silver only.
    let mut ids = Vec::new();
    for audience in ["members", "tier:Silver"] {
        let r = app
            .post(
                "/v1/coupon-templates",
                json!({"merchant_id": shop.merchant, "name": audience, "kind": "amount_off",
                    "amount_off": 500, "currency": "CNY", "total_stock": 100, "audience": audience}),
                Some(&shop.owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        ids.push(r.body["id"].as_str().unwrap().to_owned());
    }
    let claim = |t: String, who: String| {
        let app = &app;
        async move {
            app.post(
                &format!("/v1/coupon-templates/{t}/claims"),
                json!({}),
                Some(&who),
            )
            .await
        }
    };
    for (template, who, ok) in [
        (&ids[0], &ann, true),
        (&ids[0], &bo, true),
        (&ids[0], &cy, false),
        (&ids[0], &dee, false),
        (&ids[1], &ann, true),
        (&ids[1], &bo, false),
        (&ids[1], &cy, false),
    ] {
        let r = claim(template.clone(), who.clone()).await;
        if ok {
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        } else {
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
            assert_eq!(r.code(), "coupon_not_eligible");
        }
    }
    // The coupon center lists a tier's coupon to that tier only.
    let listed = |body: &Value, id: &str| {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|o| o["template"]["id"] == id)
    };
    let r = app
        .get("/v1/coupon-center?near=31.2304,121.4737", Some(&eve))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(
        listed(&r.body, &ids[0]) && listed(&r.body, &ids[1]),
        "{}",
        r.body
    );
    let r = app
        .get("/v1/coupon-center?near=31.2304,121.4737", Some(&bo))
        .await;
    assert!(
        listed(&r.body, &ids[0]) && !listed(&r.body, &ids[1]),
        "{}",
        r.body
    );
    let r = app
        .get("/v1/coupon-center?near=31.2304,121.4737", Some(&cy))
        .await;
    assert!(
        !listed(&r.body, &ids[0]) && !listed(&r.body, &ids[1]),
        "{}",
        r.body
    );

    // Messages to members and to Silver reach exactly those who did not mute.
    let mut sent = Vec::new();
    for audience in ["members", "tier:Silver", "tier:Gold"] {
        let r = app
            .post(
                &format!("/v1/merchants/{}/messages", shop.merchant),
                json!({"title": audience, "body": "For our members.", "audience": audience}),
                Some(&shop.owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
        assert_eq!(r.body["audience"], audience);
        let id = r.body["id"].as_str().unwrap().to_owned();
        sent.push(crate::followers::until_sent(&app, &shop.merchant, &shop.owner, &id).await);
    }
    assert_eq!(sent[0]["recipients"], 2, "{}", sent[0]);
    assert_eq!(sent[0]["delivered"], 2);
    assert_eq!(sent[1]["recipients"], 1, "{}", sent[1]);
    assert_eq!(sent[1]["delivered"], 1);
    assert_eq!(sent[2]["delivered"], 0);
    let titles = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["title"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut got = titles(crate::followers::inbox(&app, &ann).await);
    got.sort();
    assert_eq!(got, ["members", "tier:Silver"]);
    assert_eq!(
        titles(crate::followers::inbox(&app, &bo).await),
        ["members"]
    );
    for who in [&cy, &dee, &eve] {
        assert!(titles(crate::followers::inbox(&app, who).await).is_empty());
    }
    app.assert_ledger_verifies().await;
}

/// Puts the shop's program with a coupon on reaching Silver.
async fn program_with_tier_coupon(app: &TestApp, shop: &Shop, template: &str) -> Res {
    let r = app
        .client
        .put(app.url(&format!("/v1/member-programs/{}", shop.merchant)))
        .bearer_auth(&shop.owner)
        .json(&json!({
            "top_up_bonuses": [{"min_top_up": 10000, "bonus": 1000}],
            "tiers": [{"name": "Silver", "min_spend": 5000, "percent_off": 0, "coupon_template_id": template},
                      {"name": "Gold", "min_spend": 20000, "percent_off": 5}]
        }));
    app.send(r).await
}

async fn coupons_of(app: &TestApp, me: &str) -> Vec<Value> {
    let r = app.get("/v1/me/coupons", Some(me)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["data"].as_array().unwrap().clone()
}

#[tokio::test]
async fn a_tier_upgrade_gives_its_coupon_within_stock_and_limit() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Upgrade Cafe").await;
    let other = app.shop("Other Cafe").await;
    let make = |owner: String, merchant: String, stock: i64| {
        let app = &app;
        async move {
            let r = app
                .post(
                    "/v1/coupon-templates",
                    json!({"merchant_id": merchant, "name": "Silver welcome", "kind": "amount_off",
                        "amount_off": 800, "currency": "CNY", "total_stock": stock}),
                    Some(&owner),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let welcome = make(shop.owner.clone(), shop.merchant.clone(), 2).await;
    let foreign = make(other.owner.clone(), other.merchant.clone(), 2).await;
    // Only the merchant's own templates can be given.
    for (template, code) in [
        (&foreign, "template_not_found"),
        (&"cpt_nope".to_owned(), "template_not_found"),
    ] {
        let r = program_with_tier_coupon(&app, &shop, template).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
        assert_eq!(r.code(), code);
    }
    let r = program_with_tier_coupon(&app, &shop, &welcome).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["tiers"][0]["coupon_template_id"], welcome.as_str());

    // Ann reaches Silver: the payment succeeds and she holds the tier's coupon.
    let (ann, ann_card) = member_with_card(&app, &shop, "13700000171", 20_000).await;
    let r = pay(&app, &ann, &shop, &ann_card, 3_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(coupons_of(&app, &ann).await.is_empty());
    let paid = pay(&app, &ann, &shop, &ann_card, 2_000).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(card(&app, &ann, &ann_card).await["tier"], "Silver");
    let mine = coupons_of(&app, &ann).await;
    assert_eq!(mine.len(), 1, "{mine:?}");
    assert_eq!(mine[0]["template"]["id"], welcome.as_str());
    assert_eq!(mine[0]["status"], "active");
    let (data,): (String,) = app
        .state
        .db
        .fetch_one(o2o_server::db::query(
            "SELECT data FROM events WHERE type = 'member.tier_changed' ORDER BY created_at, id LIMIT 1",
        ))
        .await
        .unwrap();
    let data: Value = serde_json::from_str(&data).unwrap();
    assert_eq!(data["to"], "Silver");
    assert_eq!(data["coupon_id"], mine[0]["id"]);

    // Falling back below Silver and climbing again gives no second coupon (limit 1).
    let r = app
        .post(
            "/v1/refunds",
            json!({"payment": paid.body["id"]}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(card(&app, &ann, &ann_card).await["tier"], Value::Null);
    let r = pay(&app, &ann, &shop, &ann_card, 2_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(card(&app, &ann, &ann_card).await["tier"], "Silver");
    assert_eq!(coupons_of(&app, &ann).await.len(), 1);

    // Bo takes the last one; Cy's upgrade finds the stock out and still pays.
    let (bo, bo_card) = member_with_card(&app, &shop, "13700000172", 20_000).await;
    let r = pay(&app, &bo, &shop, &bo_card, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(coupons_of(&app, &bo).await.len(), 1);
    let (cy, cy_card) = member_with_card(&app, &shop, "13700000173", 20_000).await;
    let r = pay(&app, &cy, &shop, &cy_card, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(card(&app, &cy, &cy_card).await["tier"], "Silver");
    assert!(coupons_of(&app, &cy).await.is_empty());
    let stats = app
        .get(
            &format!("/v1/coupon-templates/{welcome}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(stats.body["issued"], 2);
    app.assert_ledger_verifies().await;
}

async fn pending(app: &TestApp, shop: &Shop) -> i64 {
    let r = app
        .get(
            &format!("/v1/merchants/{}/balance", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["pending"].as_i64().unwrap()
}

#[tokio::test]
async fn a_tier_percent_off_charges_the_member_less_and_the_merchant_keeps_what_was_charged() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Percent Cafe").await;
    let r = app
        .client
        .put(app.url(&format!("/v1/member-programs/{}", shop.merchant)))
        .bearer_auth(&shop.owner)
        .json(&json!({
            "top_up_bonuses": [{"min_top_up": 10000, "bonus": 1000}],
            "tiers": [{"name": "Silver", "min_spend": 5000, "percent_off": 10}]
        }));
    let r = app.send(r).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (me, id) = member_with_card(&app, &shop, "13700000181", 20_000).await;
    // The payment that reaches Silver is not yet discounted.
    let r = pay(&app, &me, &shop, &id, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["member_discount"], 0);
    assert_eq!(r.body["member_tier"], Value::Null);
    assert_eq!(card(&app, &me, &id).await["tier"], "Silver");

    // 10% of ¥33.33 is ¥3.333: ¥3.33 off (rounded down), ¥30.00 charged to the card.
    let before = pending(&app, &shop).await;
    let r = pay(&app, &me, &shop, &id, 3_333).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["amount"], 3_000);
    assert_eq!(r.body["member_discount"], 333);
    assert_eq!(r.body["member_tier"], "Silver");
    assert_eq!(r.body["discount"], 0);
    let fee = r.body["fee"].as_i64().unwrap();
    assert_eq!(pending(&app, &shop).await - before, 3_000 - fee);
    assert_eq!(
        card(&app, &me, &id).await["spendable"],
        11_000 - 5_000 - 3_000
    );
    let receipt = format!("/me/payments/{}", r.body["id"].as_str().unwrap());
    let page = app
        .client
        .get(app.url(&receipt))
        .header("cookie", format!("o2o_session={me}"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("receipt-member-discount"), "{page}");
    assert!(page.contains("Member discount · Silver"), "{page}");
    assert!(page.contains("3.33"), "{page}");

    // With a coupon: the coupon comes off the bill (paid by the promotion budget), the tier
    // off what is left: ¥20 − ¥10 = ¥10, less 10% = ¥9 charged.
    let t = app
        .post(
            "/v1/coupon-templates",
            json!({"merchant_id": shop.merchant, "name": "减10", "kind": "amount_off",
                "amount_off": 1000, "currency": "CNY", "total_stock": 10}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
    let c = app
        .post(
            &format!(
                "/v1/coupon-templates/{}/claims",
                t.body["id"].as_str().unwrap()
            ),
            json!({}),
            Some(&me),
        )
        .await;
    assert_eq!(c.status, StatusCode::CREATED, "{}", c.body);
    let before = pending(&app, &shop).await;
    let budget_before = budget(&app, &shop).await;
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 2_000, "currency": "CNY", "source": id,
                "coupon": c.body["id"]}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["amount"], 900);
    assert_eq!(r.body["discount"], 1_000);
    assert_eq!(r.body["member_discount"], 100);
    let fee = r.body["fee"].as_i64().unwrap();
    assert_eq!(pending(&app, &shop).await - before, 900 + 1_000 - fee);
    assert_eq!(budget(&app, &shop).await, budget_before - 1_000);
    assert_eq!(card(&app, &me, &id).await["spendable"], 3_000 - 900);

    // Paying from the wallet gives no member discount; nor does a refund change the cut.
    let r = pay(&app, &me, &shop, "wallet", 1_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["amount"], 1_000);
    assert_eq!(r.body["member_discount"], 0);
    app.assert_ledger_verifies().await;
}

async fn set_birthday(app: &TestApp, me: &str, day: &str) -> Res {
    app.patch("/v1/me", json!({"birthday": day}), Some(me))
        .await
}

async fn sweep(app: &TestApp, at: &str) -> usize {
    o2o_server::members::service::birthday_sweep(&app.state, at.parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn a_birthday_coupon_is_given_once_a_year_on_the_day_in_the_shops_time_zone() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Birthday Cafe").await;
    let other = app.shop("Other Bakery").await;
    let make = |owner: String, merchant: String| {
        let app = &app;
        async move {
            let r = app
                .post(
                    "/v1/coupon-templates",
                    json!({"merchant_id": merchant, "name": "生日快乐", "kind": "amount_off",
                        "amount_off": 2000, "currency": "CNY", "total_stock": 10, "per_consumer_limit": 5}),
                    Some(&owner),
                )
                .await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["id"].as_str().unwrap().to_owned()
        }
    };
    let gift = make(shop.owner.clone(), shop.merchant.clone()).await;
    let foreign = make(other.owner.clone(), other.merchant.clone()).await;
    let put = |template: String| {
        let app = &app;
        let shop = &shop;
        async move {
            let r = app
                .client
                .put(app.url(&format!("/v1/member-programs/{}", shop.merchant)))
                .bearer_auth(&shop.owner)
                .json(&json!({"tiers": [], "birthday_coupon_template_id": template}));
            app.send(r).await
        }
    };
    let r = put(foreign).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.code(), "template_not_found");
    let r = put(gift.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["birthday_coupon_template_id"], gift.as_str());

    // Birthdays on the profile: set once, checked, never by a guest.
    let (ann, _) = member_with_card(&app, &shop, "13700000191", 10_000).await;
    let r = set_birthday(&app, &ann, "05-17").await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["birthday"], "05-17");
    assert_eq!(
        app.get("/v1/me", Some(&ann)).await.body["birthday"],
        "05-17"
    );
    assert_eq!(
        set_birthday(&app, &ann, "05-17").await.status,
        StatusCode::OK
    );
    let r = set_birthday(&app, &ann, "05-18").await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "birthday_already_set");
    for bad in ["13-01", "02-30", "5-17", ""] {
        let r = set_birthday(&app, &ann, bad).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
        assert_eq!(r.code(), "birthday_invalid");
    }
    let guest = app.guest_token().await;
    let r = set_birthday(&app, &guest, "05-17").await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Bo's birthday is the next day; Cy shares Ann's but holds no card.
    let (bo, _) = member_with_card(&app, &shop, "13700000192", 10_000).await;
    assert_eq!(
        set_birthday(&app, &bo, "05-18").await.status,
        StatusCode::OK
    );
    let cy = app.funded_consumer("13700000193", 0).await;
    assert_eq!(
        set_birthday(&app, &cy, "05-17").await.status,
        StatusCode::OK
    );

    // 23:00 on 16 May in Shanghai is not yet the day; 00:30 on the 17th is.
    assert_eq!(sweep(&app, "2027-05-16T15:00:00Z").await, 0);
    assert!(coupons_of(&app, &ann).await.is_empty());
    assert_eq!(sweep(&app, "2027-05-16T16:30:00Z").await, 1);
    let mine = coupons_of(&app, &ann).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["template"]["id"], gift.as_str());
    // Later that day, again: still one.
    sweep(&app, "2027-05-17T10:00:00Z").await;
    assert_eq!(coupons_of(&app, &ann).await.len(), 1);
    assert!(coupons_of(&app, &bo).await.is_empty());
    assert!(coupons_of(&app, &cy).await.is_empty());
    // The next day is Bo's.
    assert_eq!(sweep(&app, "2027-05-17T16:30:00Z").await, 1);
    assert_eq!(coupons_of(&app, &bo).await.len(), 1);
    // The next year, Ann's birthday brings another.
    sweep(&app, "2028-05-17T01:00:00Z").await;
    assert_eq!(coupons_of(&app, &ann).await.len(), 2);
    let stats = app
        .get(&format!("/v1/coupon-templates/{gift}"), Some(&shop.owner))
        .await;
    assert_eq!(stats.body["issued"], 3);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_profile_page_takes_the_birthday_once_and_shows_a_bad_one_refused() {
    let app = spawn_app().await;
    let me = app.funded_consumer("13700000195", 0).await;
    let csrf = "members-test-csrf-token-0123456789";
    let post = |day: &'static str| {
        let app = &app;
        let me = &me;
        async move {
            let r = app
                .client
                .post(app.url("/me/birthday"))
                .header("cookie", format!("o2o_session={me}; o2o_csrf={csrf}"))
                .header("accept-language", "en")
                .form(&[("csrf", csrf), ("birthday", day)])
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), StatusCode::SEE_OTHER);
            r.headers()["location"].to_str().unwrap().to_owned()
        }
    };
    let page = |path: String| {
        let app = &app;
        let me = &me;
        async move {
            app.client
                .get(app.url(&path))
                .header("cookie", format!("o2o_session={me}; o2o_csrf={csrf}"))
                .header("accept-language", "en")
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap()
        }
    };
    assert!(page("/me".into()).await.contains("birthday-form"));
    let location = post("02-30").await;
    assert!(location.starts_with("/me?error="), "{location}");
    let html = page(location).await;
    assert!(html.contains("data-test=\"error\""), "{html}");
    assert_eq!(post("11-09").await, "/me");
    let html = page("/me".into()).await;
    assert!(html.contains("Birthday (month-day) 11-09"), "{html}");
    assert!(!html.contains("birthday-form"), "{html}");
    assert_eq!(app.get("/v1/me", Some(&me)).await.body["birthday"], "11-09");
}

/// A coupon template of the shop's (`extra` adds to or overrides a ¥5-off template of stock 10).
async fn points_template(app: &TestApp, shop: &Shop, extra: Value) -> String {
    let mut body = json!({"merchant_id": shop.merchant, "name": "积分换5元", "kind": "amount_off",
        "amount_off": 500, "currency": "CNY", "total_stock": 10});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    let r = app
        .post("/v1/coupon-templates", body, Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

async fn exchange(app: &TestApp, me: &str, card_id: &str, template: &str) -> Res {
    app.post(
        &format!("/v1/me/cards/{card_id}/exchanges"),
        json!({"coupon_template_id": template}),
        Some(me),
    )
    .await
}

async fn issued(app: &TestApp, shop: &Shop, template: &str) -> i64 {
    let r = app
        .get(
            &format!("/v1/coupon-templates/{template}"),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body["issued"].as_i64().unwrap()
}

/// A member whose card earned 120 points (¥60 paid at 2 points per yuan).
async fn member_with_points(app: &TestApp, shop: &Shop, phone: &str) -> (String, String) {
    let (me, id) = member_with_card(app, shop, phone, 20_000).await;
    let r = pay(app, &me, shop, &id, 6_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(card(app, &me, &id).await["points"], 120);
    (me, id)
}

#[tokio::test]
async fn points_are_exchanged_for_a_coupon_of_the_merchant_with_a_card_history_row() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Points Cafe").await;
    // The points price is checked, stored and read back.
    for bad in [json!(0), json!(-5), json!(10_000_001), json!("100")] {
        let r = app
            .post(
                "/v1/coupon-templates",
                json!({"merchant_id": shop.merchant, "name": "bad", "kind": "amount_off",
                    "amount_off": 500, "currency": "CNY", "total_stock": 10, "points_price": bad}),
                Some(&shop.owner),
            )
            .await;
        assert!(r.status.is_client_error(), "{bad}: {}", r.body);
    }
    let t = points_template(&app, &shop, json!({"points_price": 100})).await;
    let free = points_template(&app, &shop, json!({"name": "free"})).await;
    let r = app
        .get(&format!("/v1/coupon-templates/{t}"), Some(&shop.owner))
        .await;
    assert_eq!(r.body["template"]["points_price"], 100, "{}", r.body);
    let r = app
        .get(&format!("/v1/coupon-templates/{free}"), Some(&shop.owner))
        .await;
    assert_eq!(
        r.body["template"]["points_price"],
        Value::Null,
        "{}",
        r.body
    );
    let list = app.get("/v1/coupon-templates", Some(&shop.owner)).await;
    assert!(
        list.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|x| x["id"] == t.as_str() && x["points_price"] == 100),
        "{}",
        list.body
    );

    let (me, id) = member_with_points(&app, &shop, "13700000201").await;
    let before = card(&app, &me, &id).await;
    // A coupon priced in points is not claimed free, nor listed in the coupon center.
    let r = app
        .post(
            &format!("/v1/coupon-templates/{t}/claims"),
            json!({}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_exchange_only");
    let center = app
        .get("/v1/coupon-center?near=31.2304,121.4737", Some(&me))
        .await;
    let listed: Vec<&Value> = center.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["template"]["id"])
        .collect();
    assert!(
        listed.contains(&&json!(free)) && !listed.contains(&&json!(t)),
        "{}",
        center.body
    );
    // The card lists it with its price; the free one is not exchangeable.
    let offers = app
        .get(&format!("/v1/me/cards/{id}/exchange-offers"), Some(&me))
        .await;
    assert_eq!(offers.status, StatusCode::OK, "{}", offers.body);
    let data = offers.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", offers.body);
    assert_eq!(data[0]["template"]["id"], t.as_str());
    assert_eq!(data[0]["points_price"], 100);
    assert_eq!(data[0]["exchangeable"], true);
    assert_eq!(data[0]["sold_out"], false);

    let r = exchange(&app, &me, &id, &t).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert!(r.body["id"].as_str().unwrap().starts_with("cmv_"));
    assert_eq!(r.body["points_spent"], 100);
    assert_eq!(r.body["card"]["id"], id.as_str());
    assert_eq!(r.body["card"]["points"], 20);
    let coupon = r.body["coupon"]["id"].as_str().unwrap().to_owned();
    assert!(coupon.starts_with("cpn_"));
    assert_eq!(r.body["coupon"]["template"]["id"], t.as_str());
    assert_eq!(r.body["coupon"]["status"], "active");

    // The card lost the points (and only the points) with a history row naming the coupon.
    let after = card(&app, &me, &id).await;
    assert_eq!(after["points"], 20);
    assert_eq!(after["balance"], before["balance"]);
    assert_eq!(after["bonus_balance"], before["bonus_balance"]);
    assert_eq!(after["spend_12m"], before["spend_12m"]);
    assert_eq!(after["tier"], before["tier"]);
    let m = &after["movements"][0];
    assert_eq!(m["kind"], "exchange", "{after}");
    assert_eq!(m["points"], -100);
    assert_eq!(m["paid"], 0);
    assert_eq!(m["bonus"], 0);
    assert_eq!(m["reference"], coupon.as_str());
    // The coupon is the member's, ready to use, and counts as issued.
    let mine = coupons_of(&app, &me).await;
    assert_eq!(mine.len(), 1);
    assert_eq!(mine[0]["id"], coupon.as_str());
    assert_eq!(mine[0]["status"], "active");
    assert_eq!(issued(&app, &shop, &t).await, 1);
    // It pays like any coupon: ¥5 off a ¥20 bill paid from the card.
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": 2_000, "currency": "CNY", "source": id, "coupon": coupon}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["discount"], 500);
    // A retried request with the same key answers the first exchange and spends nothing more.
    let t2 = points_template(
        &app,
        &shop,
        json!({"points_price": 10, "per_consumer_limit": 5}),
    )
    .await;
    let points = card(&app, &me, &id).await["points"].as_i64().unwrap();
    let body = json!({"coupon_template_id": t2});
    let path = format!("/v1/me/cards/{id}/exchanges");
    let first = app
        .post_idem(&path, body.clone(), Some(&me), "exchange-key-1")
        .await;
    let again = app
        .post_idem(&path, body, Some(&me), "exchange-key-1")
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    assert_eq!(card(&app, &me, &id).await["points"], points - 10);
    assert_eq!(issued(&app, &shop, &t2).await, 1);
    // The OpenAPI document describes the exchange and the new fields.
    let doc = app.get("/openapi.json", None).await;
    assert!(doc.body["paths"]["/v1/me/cards/{id}/exchanges"]["post"].is_object());
    assert!(doc.body["paths"]["/v1/me/cards/{id}/exchange-offers"]["get"].is_object());
    let schemas = &doc.body["components"]["schemas"];
    assert!(schemas["PointsExchanged"].is_object(), "{schemas}");
    assert!(schemas["ExchangeInput"]["properties"]["coupon_template_id"].is_object());
    assert!(schemas["Template"]["properties"]["points_price"].is_object());
    assert!(schemas["CreateTemplate"]["properties"]["points_price"].is_object());
    assert!(schemas["Offer"]["properties"]["sold_out"].is_object());
    assert!(schemas["Card"]["properties"]["tier_benefits"].is_object());
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_refused_exchange_changes_neither_points_nor_stock_nor_coupons() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Refusing Cafe").await;
    let other = member_shop(&app, "Elsewhere Cafe").await;
    let last_one =
        points_template(&app, &shop, json!({"points_price": 50, "total_stock": 1})).await;
    let dear = points_template(&app, &shop, json!({"points_price": 500})).await;
    let once = points_template(&app, &shop, json!({"points_price": 10})).await;
    let free = points_template(&app, &shop, json!({})).await;
    let gold = points_template(
        &app,
        &shop,
        json!({"points_price": 10, "audience": "tier:Gold"}),
    )
    .await;
    let foreign = points_template(&app, &other, json!({"points_price": 10})).await;
    let (me, id) = member_with_points(&app, &shop, "13700000211").await;
    let (bo, bo_card) = member_with_points(&app, &shop, "13700000212").await;
    // Bo takes the last coupon of one; Ann holds one of another (limit 1).
    assert_eq!(
        exchange(&app, &bo, &bo_card, &last_one).await.status,
        StatusCode::CREATED
    );
    let r = exchange(&app, &me, &id, &once).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let points = card(&app, &me, &id).await["points"].as_i64().unwrap();
    assert_eq!(points, 110);
    let templates = [&last_one, &dear, &once, &free, &gold];
    let snapshot = || {
        let app = &app;
        let me = &me;
        let id = &id;
        let shop = &shop;
        async move {
            let mut issued_now = Vec::new();
            for t in templates {
                issued_now.push(issued(app, shop, t).await);
            }
            let c = card(app, me, id).await;
            (
                c["points"].as_i64().unwrap(),
                c["movements"].as_array().unwrap().len(),
                coupons_of(app, me).await.len(),
                issued_now,
            )
        }
    };
    let before = snapshot().await;
    let stranger = app.funded_consumer("13700000213", 0).await;
    let unknown = o2o_server::ids::CouponTemplateId::generate()
        .as_str()
        .to_owned();
    for (who, card_id, template, status, code) in [
        (&me, &id, &dear, StatusCode::CONFLICT, "points_insufficient"),
        (&me, &id, &last_one, StatusCode::CONFLICT, "coupon_sold_out"),
        (
            &me,
            &id,
            &once,
            StatusCode::CONFLICT,
            "coupon_limit_reached",
        ),
        (
            &me,
            &id,
            &free,
            StatusCode::CONFLICT,
            "coupon_not_exchangeable",
        ),
        (
            &me,
            &id,
            &foreign,
            StatusCode::CONFLICT,
            "coupon_not_exchangeable",
        ),
        (
            &me,
            &id,
            &gold,
            StatusCode::FORBIDDEN,
            "coupon_not_eligible",
        ),
        (
            &me,
            &id,
            &unknown,
            StatusCode::NOT_FOUND,
            "template_not_found",
        ),
        (
            &me,
            &id,
            &"nope".to_owned(),
            StatusCode::BAD_REQUEST,
            "coupon_template_id_invalid",
        ),
        (
            &stranger,
            &id,
            &once,
            StatusCode::NOT_FOUND,
            "card_not_found",
        ),
        (
            &me,
            &bo_card,
            &once,
            StatusCode::NOT_FOUND,
            "card_not_found",
        ),
        (
            &me,
            &"crd_nosuchcard".to_owned(),
            &once,
            StatusCode::NOT_FOUND,
            "card_not_found",
        ),
    ] {
        let r = exchange(&app, who, card_id, template).await;
        assert_eq!(r.status, status, "{code}: {}", r.body);
        assert_eq!(r.code(), code, "{}", r.body);
    }
    // The stock is also held in the batch when the node does not yet know it is sold out.
    let sold = points_template(&app, &shop, json!({"points_price": 10, "total_stock": 1})).await;
    app.state
        .db
        .execute(
            o2o_server::db::query("UPDATE coupon_templates SET issued = total_stock WHERE id = $1")
                .bind(sold.clone()),
        )
        .await
        .unwrap();
    let r = exchange(&app, &me, &id, &sold).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_sold_out");
    // Unknown fields and a missing template are refused before anything happens.
    for body in [json!({}), json!({"coupon_template_id": once, "points": 1})] {
        let r = app
            .post(
                &format!("/v1/me/cards/{id}/exchanges"),
                body.clone(),
                Some(&me),
            )
            .await;
        assert!(r.status.is_client_error(), "{body}: {}", r.body);
    }
    assert_eq!(snapshot().await, before);
    // A closed card exchanges nothing.
    let r = app
        .post(&format!("/v1/me/cards/{id}/close"), json!({}), Some(&me))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let cheap = points_template(&app, &shop, json!({"points_price": 1})).await;
    let r = exchange(&app, &me, &id, &cheap).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "card_closed");
    assert_eq!(issued(&app, &shop, &cheap).await, 0);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn concurrent_exchanges_with_points_for_one_give_exactly_one_coupon() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Racing Points Cafe").await;
    let t = points_template(
        &app,
        &shop,
        json!({"points_price": 100, "per_consumer_limit": 10}),
    )
    .await;
    let (me, id) = member_with_points(&app, &shop, "13700000221").await;
    // Six at once; on PostgreSQL spread over two nodes on one database.
    let two_nodes = backend() == "postgres";
    let node2 = app.second_node().await;
    let results = futures::future::join_all((0..6).map(|i| {
        let node = if two_nodes && i % 2 == 1 {
            &node2
        } else {
            &app
        };
        exchange(node, &me, &id, &t)
    }))
    .await;
    let created = results
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        created,
        1,
        "{:?}",
        results.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in results.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
        assert_eq!(r.code(), "points_insufficient");
    }
    let c = card(&app, &me, &id).await;
    assert_eq!(c["points"], 20);
    assert_eq!(
        c["movements"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|m| m["kind"] == "exchange")
            .count(),
        1
    );
    assert_eq!(coupons_of(&app, &me).await.len(), 1);
    assert_eq!(issued(&app, &shop, &t).await, 1);
    app.assert_ledger_verifies().await;
    node2.stop().await;
}

async fn card_page(app: &TestApp, me: &str, path: &str) -> (StatusCode, String) {
    let r = app
        .client
        .get(app.url(path))
        .header("cookie", format!("o2o_session={me}"))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

#[tokio::test]
async fn the_card_shows_its_tier_benefits_and_what_the_next_tier_takes_and_gives() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Tiered Cafe").await;
    let welcome = points_template(&app, &shop, json!({"name": "Silver welcome"})).await;
    let r = program_with_tier_coupon(&app, &shop, &welcome).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (me, id) = member_with_card(&app, &shop, "13700000231", 30_000).await;
    // No tier yet: Silver is next, ¥50 away, with its welcome coupon.
    let b = &card(&app, &me, &id).await["tier_benefits"];
    assert_eq!(b["percent_off"], 0, "{b}");
    assert_eq!(b["next_tier"]["name"], "Silver");
    assert_eq!(b["next_tier"]["spend_needed"], 5_000);
    assert_eq!(b["next_tier"]["upgrade_coupon"]["name"], "Silver welcome");
    assert_eq!(
        b["next_tier"]["upgrade_coupon"]["template_id"],
        welcome.as_str()
    );
    let (status, html) = card_page(&app, &me, &format!("/me/cards/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("Spend ¥50.00 more to reach Silver"), "{html}");
    assert!(
        html.contains("data-test=\"upgrade-coupon\">Silver welcome<"),
        "{html}"
    );
    assert!(!html.contains("data-test=\"tier-percent-off\""), "{html}");

    // Silver: Gold is next, ¥140 away, 5% off, no coupon.
    let r = pay(&app, &me, &shop, &id, 6_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let b = &card(&app, &me, &id).await["tier_benefits"];
    assert_eq!(b["next_tier"]["name"], "Gold", "{b}");
    assert_eq!(b["next_tier"]["spend_needed"], 14_000);
    assert_eq!(b["next_tier"]["percent_off"], 5);
    assert_eq!(b["next_tier"]["upgrade_coupon"], Value::Null);
    let (_, html) = card_page(&app, &me, &format!("/me/cards/{id}")).await;
    assert!(
        html.contains("Spend ¥140.00 more to reach Gold (5% off payments with the card)"),
        "{html}"
    );
    assert!(!html.contains("data-test=\"upgrade-coupon\""), "{html}");

    // Gold, the top tier: its percent off, nothing further.
    let r = top_up(&app, &me, &id, 10_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = pay(&app, &me, &shop, &id, 14_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["tier"], "Gold");
    assert_eq!(c["tier_benefits"]["percent_off"], 5);
    assert_eq!(c["tier_benefits"]["next_tier"], Value::Null);
    let (_, html) = card_page(&app, &me, &format!("/me/cards/{id}")).await;
    assert!(
        html.contains("data-test=\"tier-percent-off\">5% off payments with the card<"),
        "{html}"
    );
    assert!(html.contains("data-test=\"top-tier\""), "{html}");
    // The list of cards carries the same benefits as the card.
    let list = app.get("/v1/me/cards", Some(&me)).await;
    assert_eq!(list.body["data"][0]["tier_benefits"], c["tier_benefits"]);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_list_of_cards_tells_each_cards_tier_benefits() {
    let app = spawn_app().await;
    // A shop whose Silver gives a coupon, a shop where the member reaches Gold, and a shop
    // whose program has no tiers.
    let coupon_shop = member_shop(&app, "Welcome Cafe").await;
    let welcome = points_template(&app, &coupon_shop, json!({"name": "Silver welcome"})).await;
    let r = program_with_tier_coupon(&app, &coupon_shop, &welcome).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let gold_shop = member_shop(&app, "Gold Cafe").await;
    let plain_shop = app.shop("Plain Cafe").await;
    let r = app
        .client
        .put(app.url(&format!("/v1/member-programs/{}", plain_shop.merchant)))
        .bearer_auth(&plain_shop.owner)
        .json(&json!({"top_up_bonuses": [], "points_per_yuan": 1, "tiers": []}));
    let r = app.send(r).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let (me, welcome_card) = member_with_card(&app, &coupon_shop, "13700000261", 60_000).await;
    let r = join(&app, &me, &gold_shop.merchant).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let gold_card = r.body["id"].as_str().unwrap().to_owned();
    for amount in [10_000, 10_000] {
        let r = top_up(&app, &me, &gold_card, amount).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let r = pay(&app, &me, &gold_shop, &gold_card, 20_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = join(&app, &me, &plain_shop.merchant).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let plain_card = r.body["id"].as_str().unwrap().to_owned();

    let list = app.get("/v1/me/cards", Some(&me)).await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 3, "{}", list.body);
    let listed = |id: &str| {
        data.iter()
            .find(|c| c["id"] == id)
            .unwrap_or_else(|| panic!("{id} is not listed: {}", list.body))
            .clone()
    };
    let b = &listed(&welcome_card)["tier_benefits"];
    assert_eq!(b["percent_off"], 0, "{b}");
    assert_eq!(b["next_tier"]["name"], "Silver");
    assert_eq!(b["next_tier"]["spend_needed"], 5_000);
    assert_eq!(b["next_tier"]["upgrade_coupon"]["name"], "Silver welcome");
    assert_eq!(
        b["next_tier"]["upgrade_coupon"]["template_id"],
        welcome.as_str()
    );
    let g = listed(&gold_card);
    assert_eq!(g["tier"], "Gold", "{g}");
    assert_eq!(g["tier_benefits"]["percent_off"], 5, "{g}");
    assert_eq!(g["tier_benefits"]["next_tier"], Value::Null);
    let p = &listed(&plain_card)["tier_benefits"];
    assert_eq!(*p, json!({"percent_off": 0, "next_tier": null}));
    // Each listed card tells what the card itself tells.
    for id in [&welcome_card, &gold_card, &plain_card] {
        assert_eq!(
            listed(id)["tier_benefits"],
            card(&app, &me, id).await["tier_benefits"],
            "{id}"
        );
    }
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_card_page_exchanges_points_for_a_coupon_and_says_why_when_it_cannot() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Page Points Cafe").await;
    let cheap = points_template(
        &app,
        &shop,
        json!({"name": "Five for 100", "points_price": 100}),
    )
    .await;
    let dear = points_template(
        &app,
        &shop,
        json!({"name": "Ten for 500", "amount_off": 1000, "points_price": 500}),
    )
    .await;
    let (me, id) = member_with_points(&app, &shop, "13700000241").await;
    let csrf = "members-test-csrf-token-0123456789";
    let post_in = |template: String, lang: &'static str| {
        let app = &app;
        let me = &me;
        let id = &id;
        async move {
            let r = app
                .client
                .post(app.url(&format!("/me/cards/{id}/exchanges")))
                .header("cookie", format!("o2o_session={me}; o2o_csrf={csrf}"))
                .header("accept-language", lang)
                .form(&[
                    ("csrf", csrf),
                    ("coupon_template_id", template.as_str()),
                    ("key", &format!("exchange-form-key-{lang}-{template}")),
                ])
                .send()
                .await
                .unwrap();
            page_reply(r).await
        }
    };
    let post = |template: String| post_in(template, "en");
    let (_, html) = card_page(&app, &me, &format!("/me/cards/{id}")).await;
    assert_eq!(
        html.matches("data-test=\"exchange-offer\"").count(),
        2,
        "{html}"
    );
    assert!(
        html.contains("Five for 100") && html.contains("Ten for 500"),
        "{html}"
    );
    assert!(
        html.contains("data-test=\"exchange-offer-price\">100<"),
        "{html}"
    );
    assert!(
        html.contains("data-test=\"exchange-points-short\""),
        "{html}"
    );

    // Too few points: the page says so with 409 and nothing changes.
    let (status, _, html) = post(dear.clone()).await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(html.contains("data-test=\"exchange-error\""), "{html}");
    assert!(
        html.contains("This coupon costs 500 points; the card has 120."),
        "{html}"
    );
    // In Chinese too, with the figures.
    let (status, _, html) = post_in(dear.clone(), "zh-CN").await;
    assert_eq!(status, StatusCode::CONFLICT, "{html}");
    assert!(
        html.contains("兑换此券需要 500 积分，会员卡现有 120 积分。"),
        "{html}"
    );
    assert_eq!(card(&app, &me, &id).await["points"], 120);
    assert!(coupons_of(&app, &me).await.is_empty());

    // Exchanged: back to the card with 20 points, a notice and the coupon in my coupons.
    let (status, location, _) = post(cheap.clone()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(
        location.starts_with(&format!("/me/cards/{id}?exchanged=cpn_")),
        "{location}"
    );
    let (_, html) = card_page(&app, &me, &location).await;
    assert!(html.contains("data-test=\"exchange-notice\""), "{html}");
    assert!(html.contains("data-test=\"card-points\">20<"), "{html}");
    assert!(html.contains("data-kind=\"exchange\""), "{html}");
    assert!(html.contains("data-test=\"exchange-limit\""), "{html}");
    let (_, html) = card_page(&app, &me, "/me/coupons").await;
    assert!(html.contains("Five for 100"), "{html}");
    // The same form sent again (a double tap) exchanges once.
    let (status, _, _) = post(cheap.clone()).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(coupons_of(&app, &me).await.len(), 1);
    assert_eq!(card(&app, &me, &id).await["points"], 20);
    // Another consumer's card is not found.
    let other = app.funded_consumer("13700000242", 0).await;
    let (status, _) = card_page(&app, &other, &format!("/me/cards/{id}")).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.assert_ledger_verifies().await;
}

/// The sum of the points of a card's movements (its whole history here).
fn movement_points(card: &Value) -> i64 {
    card["movements"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["points"].as_i64().unwrap())
        .sum()
}

#[tokio::test]
async fn a_refund_takes_back_points_already_spent_as_a_points_debt_later_earnings_pay_off() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Debt Cafe").await;
    let t = points_template(&app, &shop, json!({"points_price": 100})).await;
    let t2 = points_template(
        &app,
        &shop,
        json!({"name": "Cheap", "points_price": 10, "per_consumer_limit": 5}),
    )
    .await;
    let (me, id) = member_with_card(&app, &shop, "13700000301", 20_000).await;
    // ¥60 paid by card earns 120 points; 100 of them buy a coupon.
    let p = pay(&app, &me, &shop, &id, 6_000).await;
    assert_eq!(p.status, StatusCode::CREATED, "{}", p.body);
    let pid = p.body["id"].as_str().unwrap().to_owned();
    let r = exchange(&app, &me, &id, &t).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["card"]["points"], 20);
    // The full refund takes back all 120 points earned: the card owes the 100 spent.
    let r = app
        .post("/v1/refunds", json!({"payment": pid}), Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["points"], -100, "{c}");
    assert_eq!(c["movements"][0]["kind"], "refund", "{c}");
    assert_eq!(c["movements"][0]["points"], -120, "{c}");
    assert_eq!(movement_points(&c), -100, "{c}");
    // No further exchange while the card owes points; nothing changes.
    let r = exchange(&app, &me, &id, &t2).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "points_insufficient");
    assert_eq!(card(&app, &me, &id).await["points"], -100);
    assert_eq!(issued(&app, &shop, &t2).await, 0);
    let offers = app
        .get(&format!("/v1/me/cards/{id}/exchange-offers"), Some(&me))
        .await;
    assert_eq!(offers.status, StatusCode::OK, "{}", offers.body);
    assert!(
        offers.body["data"]
            .as_array()
            .unwrap()
            .iter()
            .all(|o| o["exchangeable"] == false),
        "{}",
        offers.body
    );
    // The card page shows the debt.
    let (status, html) = card_page(&app, &me, &format!("/me/cards/{id}")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"card-points\">-100<"), "{html}");
    assert!(html.contains("data-test=\"points-owed\""), "{html}");
    assert!(html.contains("Points owed <strong>100</strong>"), "{html}");
    // Later earnings pay the debt off first.
    let r = pay(&app, &me, &shop, &id, 6_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let c = card(&app, &me, &id).await;
    assert_eq!(c["points"], 20, "{c}");
    assert_eq!(movement_points(&c), 20, "{c}");
    let (_, html) = card_page(&app, &me, &format!("/me/cards/{id}")).await;
    assert!(!html.contains("data-test=\"points-owed\""), "{html}");
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_retried_exchange_of_the_last_coupon_gets_the_first_answer() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Last One Cafe").await;
    let t = points_template(&app, &shop, json!({"points_price": 50, "total_stock": 1})).await;
    let (me, id) = member_with_points(&app, &shop, "13700000311").await;
    let body = json!({"coupon_template_id": t});
    let path = format!("/v1/me/cards/{id}/exchanges");
    let first = app
        .post_idem(&path, body.clone(), Some(&me), "last-coupon-key-1")
        .await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = app
        .post_idem(&path, body.clone(), Some(&me), "last-coupon-key-1")
        .await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body, first.body);
    assert_eq!(card(&app, &me, &id).await["points"], 70);
    assert_eq!(issued(&app, &shop, &t).await, 1);
    assert_eq!(coupons_of(&app, &me).await.len(), 1);
    // A new request (another key, or none) is refused as sold out.
    let other = app
        .post_idem(&path, body.clone(), Some(&me), "last-coupon-key-2")
        .await;
    assert_eq!(other.status, StatusCode::CONFLICT, "{}", other.body);
    assert_eq!(other.code(), "coupon_sold_out");
    let r = exchange(&app, &me, &id, &t).await;
    assert_eq!(r.code(), "coupon_sold_out");
    // The page form's double tap: the second post with the form's key lands on the same coupon.
    let t2 = points_template(
        &app,
        &shop,
        json!({"name": "Page last", "points_price": 10, "total_stock": 1}),
    )
    .await;
    let csrf = "members-test-csrf-token-0123456789";
    let mut locations = Vec::new();
    for _ in 0..2 {
        let r = app
            .client
            .post(app.url(&format!("/me/cards/{id}/exchanges")))
            .header("cookie", format!("o2o_session={me}; o2o_csrf={csrf}"))
            .header("accept-language", "en")
            .form(&[
                ("csrf", csrf),
                ("coupon_template_id", t2.as_str()),
                ("key", "double-tap-form-key-0123"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        locations.push(
            r.headers()
                .get("location")
                .map(|v| v.to_str().unwrap().to_owned())
                .unwrap_or_default(),
        );
    }
    assert!(locations[0].contains("exchanged=cpn_"), "{locations:?}");
    assert_eq!(locations[0], locations[1]);
    assert_eq!(card(&app, &me, &id).await["points"], 60);
    assert_eq!(issued(&app, &shop, &t2).await, 1);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_coupon_whose_use_window_has_ended_is_not_offered_nor_exchanged() {
    let app = spawn_app().await;
    let shop = member_shop(&app, "Stale Cafe").await;
    let stale = points_template(
        &app,
        &shop,
        json!({"name": "Stale", "points_price": 100,
            "use_starts_at": "2020-01-01T00:00:00Z", "use_ends_at": "2020-02-01T00:00:00Z"}),
    )
    .await;
    let fresh = points_template(&app, &shop, json!({"name": "Fresh", "points_price": 100})).await;
    let (me, id) = member_with_points(&app, &shop, "13700000321").await;
    let offers = app
        .get(&format!("/v1/me/cards/{id}/exchange-offers"), Some(&me))
        .await;
    assert_eq!(offers.status, StatusCode::OK, "{}", offers.body);
    let listed: Vec<&Value> = offers.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["template"]["id"])
        .collect();
    assert_eq!(listed, vec![&json!(fresh)], "{}", offers.body);
    let r = exchange(&app, &me, &id, &stale).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "coupon_not_claimable");
    let c = card(&app, &me, &id).await;
    assert_eq!(c["points"], 120);
    assert_eq!(c["movements"][0]["kind"], "payment", "{c}");
    assert_eq!(issued(&app, &shop, &stale).await, 0);
    assert!(coupons_of(&app, &me).await.is_empty());
    let (_, html) = card_page(&app, &me, &format!("/me/cards/{id}")).await;
    assert!(
        html.contains(&format!("data-template=\"{fresh}\"")),
        "{html}"
    );
    assert!(
        !html.contains(&format!("data-template=\"{stale}\"")),
        "{html}"
    );
    app.assert_ledger_verifies().await;
}
