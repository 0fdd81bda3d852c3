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
