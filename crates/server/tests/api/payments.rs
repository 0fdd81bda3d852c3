use crate::helpers::*;
use o2o_server::payments::provider::{ChargeStatus, Direction};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn pay(app: &TestApp, consumer: &str, qr: &str, amount: i64) -> Res {
    app.post(
        "/v1/payments",
        json!({"qr": qr, "amount": amount, "currency": "CNY"}),
        Some(consumer),
    )
    .await
}

/// A held payment (`capture: manual`) of `amount` by `consumer` at the store code `qr`.
async fn hold(app: &TestApp, consumer: &str, qr: &str, amount: i64) -> Res {
    app.post(
        "/v1/payments",
        json!({"qr": qr, "amount": amount, "currency": "CNY", "capture": "manual"}),
        Some(consumer),
    )
    .await
}

/// [`pay`] with an `Idempotency-Key`.
async fn pay_keyed(app: &TestApp, consumer: &str, qr: &str, amount: i64, key: &str) -> Res {
    app.post_idem(
        "/v1/payments",
        json!({"qr": qr, "amount": amount, "currency": "CNY"}),
        Some(consumer),
        key,
    )
    .await
}

#[tokio::test]
async fn a_top_up_fills_the_wallet_and_bad_amounts_move_nothing() {
    let app = spawn_app().await;
    let me = app.funded_consumer("13700000001", 10_000).await;
    let w = app.get("/v1/wallet", Some(&me)).await;
    assert_eq!(w.body["balance"], 10_000);
    assert_eq!(w.body["held"], 0);
    assert_eq!(w.body["currency"], "CNY");
    assert_eq!(w.body["entries"][0]["kind"], "top_up");
    assert_eq!(w.body["entries"][0]["amount"], 10_000);
    for (body, code) in [
        (json!({"amount": 0, "currency": "CNY"}), "amount_invalid"),
        (json!({"amount": -5, "currency": "CNY"}), "amount_invalid"),
        (
            json!({"amount": 9_223_372_036_854_775_807i64, "currency": "CNY"}),
            "amount_too_large",
        ),
        (
            json!({"amount": 100, "currency": "XYZ"}),
            "currency_invalid",
        ),
        (json!({"amount": 1.5, "currency": "CNY"}), ""),
        (json!({"amount": 100, "currency": "CNY", "bonus": 1}), ""),
        (json!({"amount": "100", "currency": "CNY"}), ""),
    ] {
        let r = app
            .post("/v1/wallet/top-ups", body.clone(), Some(&me))
            .await;
        assert!(
            r.status.is_client_error(),
            "{body}: {} {}",
            r.status,
            r.body
        );
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{body}");
        }
    }
    assert_eq!(app.balance(&me).await, 10_000);
    // Withdrawal: not more than the balance.
    let r = app
        .post(
            "/v1/wallet/withdrawals",
            json!({"amount": 10_001, "currency": "CNY"}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    assert_eq!(r.message(), "The wallet holds less than this withdrawal.");
    let r = app
        .post(
            "/v1/wallet/withdrawals",
            json!({"amount": 4_000, "currency": "CNY"}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["wallet"]["balance"], 6_000);
    // One key sent to a top-up and then to a withdrawal (the same body): the withdrawal is
    // refused as a reused key, not answered with the top-up's reply, and so the other way.
    let body = json!({"amount": 700, "currency": "CNY"});
    for (first, second, key, balance) in [
        (
            "/v1/wallet/top-ups",
            "/v1/wallet/withdrawals",
            "wallet-key-1",
            6_700,
        ),
        (
            "/v1/wallet/withdrawals",
            "/v1/wallet/top-ups",
            "wallet-key-2",
            6_000,
        ),
    ] {
        let r = app.post_idem(first, body.clone(), Some(&me), key).await;
        assert_eq!(r.status, StatusCode::CREATED, "{first}: {}", r.body);
        assert_eq!(r.body["wallet"]["balance"], balance);
        let r = app.post_idem(second, body.clone(), Some(&me), key).await;
        assert_eq!(r.status, StatusCode::CONFLICT, "{second}: {}", r.body);
        assert_eq!(r.code(), "idempotency_key_reused");
    }
    assert_eq!(app.balance(&me).await, 6_000);
    app.assert_ledger_verifies().await;
}

/// Delivers a provider's signed notification as the provider would, over HTTP.
async fn notify(
    app: &TestApp,
    n: &o2o_server::payments::provider::SignedNotification,
) -> StatusCode {
    app.client
        .post(app.url("/v1/providers/sandbox/notifications"))
        .header("webhook-id", &n.id)
        .header("webhook-timestamp", &n.timestamp)
        .header("webhook-signature", &n.signature)
        .body(n.body.clone())
        .send()
        .await
        .unwrap()
        .status()
}

/// Sends keyed POSTs of `bodies` at once; answers their statuses and bodies.
async fn racing(
    app: &TestApp,
    path: &str,
    bodies: Vec<Value>,
    token: &str,
    key: &str,
) -> Vec<(StatusCode, Value)> {
    let burst = bodies
        .into_iter()
        .map(|body| app.post_idem(path, body, Some(token), key));
    futures::future::join_all(burst)
        .await
        .into_iter()
        .map(|r| (r.status, r.body))
        .collect()
}

#[tokio::test]
async fn racing_retries_of_a_keyed_top_up_or_withdrawal_charge_the_bank_once() {
    let app = spawn_app().await;
    let me = app.funded_consumer("13700000071", 10_000).await;
    let user = app.user_id(&me).await;
    let sandbox = app.state.sandbox.clone();
    let charges = || sandbox.charges_of(&user);
    assert_eq!(charges().await.len(), 1);
    let body = json!({"amount": 2_000, "currency": "CNY"});
    for (path, balance) in [
        ("/v1/wallet/top-ups", 12_000),
        ("/v1/wallet/withdrawals", 10_000),
    ] {
        let key = format!("race-{path}");
        let replies = racing(&app, path, vec![body.clone(); 16], &me, &key).await;
        for (status, reply) in &replies {
            assert_eq!(*status, StatusCode::CREATED, "{path}: {reply}");
            assert_eq!(reply, &replies[0].1, "{path}");
        }
        assert_eq!(app.balance(&me).await, balance, "{path}");
    }
    // One charge at the bank per request, however many copies raced.
    let made = charges().await;
    assert_eq!(made.len(), 3, "{made:?}");
    assert_eq!(made[1].direction, Direction::In);
    assert_eq!(made[2].direction, Direction::Out);
    // One key racing for two amounts: one wins, the rest are refused, and the bank is asked once.
    let bodies = (0..16)
        .map(|i| json!({"amount": 100 + i % 2, "currency": "CNY"}))
        .collect();
    let replies = racing(&app, "/v1/wallet/top-ups", bodies, &me, "race-two").await;
    let won: Vec<_> = replies
        .iter()
        .filter(|(s, _)| *s == StatusCode::CREATED)
        .collect();
    assert!(!won.is_empty());
    let amount = app.balance(&me).await - 10_000;
    assert!(amount == 100 || amount == 101, "{amount}");
    for (status, reply) in &replies {
        if *status != StatusCode::CREATED {
            assert_eq!(*status, StatusCode::CONFLICT, "{reply}");
            assert_eq!(reply["error"]["code"], "idempotency_key_reused", "{reply}");
        }
    }
    let made = charges().await;
    assert_eq!(made.len(), 4, "{made:?}");
    assert_eq!(made[3].amount, amount);
    // A merchant funding its bonus budget from the bank: the same.
    let shop = app.shop("Budget Race Cafe").await;
    let path = format!("/v1/member-programs/{}/budget-top-ups", shop.merchant);
    let body = json!({"amount": 30_000, "currency": "CNY"});
    let replies = racing(&app, &path, vec![body; 8], &shop.owner, "budget-race").await;
    for (status, reply) in &replies {
        assert_eq!(*status, StatusCode::CREATED, "{reply}");
        assert_eq!(reply["bonus_budget"], 30_000, "{reply}");
    }
    assert_eq!(app.state.sandbox.charges_of(&shop.merchant).await.len(), 1);
    // One key for two different fundings at once, one from the bank and one from the merchant's
    // available balance: one is made and the other refused as a reused key, and the bank is
    // charged only if the funding it was charged for is the one made.
    let me2 = app.funded_consumer("13700000074", 5_000).await;
    pay(&app, &me2, &shop.qr, 5_000).await;
    let settle = format!("/v1/admin/merchants/{}/settlements", shop.merchant);
    let s = app.post(&settle, json!({}), Some(&shop.operator)).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    let bodies = vec![
        json!({"amount": 1_000, "currency": "CNY", "source": "available"}),
        json!({"amount": 1_000, "currency": "CNY", "source": "bank"}),
    ];
    let replies = racing(&app, &path, bodies, &shop.owner, "budget-two").await;
    let statuses: Vec<StatusCode> = replies.iter().map(|r| r.0).collect();
    let bank_won = statuses == [StatusCode::CONFLICT, StatusCode::CREATED];
    assert!(
        bank_won || statuses == [StatusCode::CREATED, StatusCode::CONFLICT],
        "{replies:?}"
    );
    assert_eq!(
        app.state.sandbox.charges_of(&shop.merchant).await.len(),
        1 + usize::from(bank_won),
        "{replies:?}"
    );
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_withdrawal_holds_the_money_before_the_bank_pays_out_and_a_keyed_retry_pays_out_once() {
    let app = spawn_app().await;
    let me = app.funded_consumer("13700000072", 10_000).await;
    let user = app.user_id(&me).await;
    let payouts = async |app: &TestApp| -> Vec<_> {
        app.state
            .sandbox
            .charges_of(&user)
            .await
            .into_iter()
            .filter(|c| c.direction == Direction::Out)
            .collect()
    };
    let out = json!({"amount": 15_000, "currency": "CNY"});
    // More than the wallet holds: refused before the bank is asked, so nothing is paid out.
    let r = app
        .post_idem("/v1/wallet/withdrawals", out.clone(), Some(&me), "out-1")
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    assert_eq!(app.balance(&me).await, 10_000);
    assert!(payouts(&app).await.is_empty());
    // A refusal is not stored under the key: once the wallet holds enough, the retry pays out.
    app.top_up(&me, 5_000).await;
    let r = app
        .post_idem("/v1/wallet/withdrawals", out.clone(), Some(&me), "out-1")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["wallet"]["balance"], 0);
    assert_eq!(r.body["wallet"]["held"], 0);
    let made = payouts(&app).await;
    assert_eq!(made.len(), 1, "{made:?}");
    assert_eq!(made[0].amount, 15_000);
    assert_eq!(r.body["id"], made[0].reference.as_str());
    // The wallet shows the hold and then the withdrawal that took it.
    let w = app.get("/v1/wallet", Some(&me)).await;
    let kinds: Vec<&str> = w.body["entries"]
        .as_array()
        .unwrap()
        .iter()
        .take(2)
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["withdrawal", "hold"], "{}", w.body);
    // Again under the key: the stored reply, and no second payout.
    let again = app
        .post_idem("/v1/wallet/withdrawals", out.clone(), Some(&me), "out-1")
        .await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, r.body);
    // The key for another amount: refused before the bank is asked.
    let r = app
        .post_idem(
            "/v1/wallet/withdrawals",
            json!({"amount": 100, "currency": "CNY"}),
            Some(&me),
            "out-1",
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "idempotency_key_reused");
    assert_eq!(app.state.sandbox.charges_of(&user).await.len(), 3);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_top_up_is_refunded_to_where_it_came_from_never_more_than_it_brought_in() {
    let app = spawn_app().await;
    let shop = app.shop("Refund Cafe").await;
    let me = app.consumer_token("13700000091", None).await;
    let user = app.user_id(&me).await;
    let refund = |id: String, body: Option<Value>, key: Option<&'static str>| {
        let (app, me) = (&app, &me);
        async move {
            let path = format!("/v1/wallet/top-ups/{id}/refund");
            match (body, key) {
                (Some(b), Some(k)) => app.post_idem(&path, b, Some(me), k).await,
                (Some(b), None) => app.post(&path, b, Some(me)).await,
                (None, _) => {
                    app.send(app.client.post(app.url(&path)).bearer_auth(me))
                        .await
                }
            }
        }
    };
    let first = app.top_up(&me, 10_000).await;
    let second = app.top_up(&me, 5_000).await;
    let charge_of = |reference: &str, charges: &[o2o_server::payments::provider::Charge]| {
        charges
            .iter()
            .find(|c| c.reference == reference)
            .unwrap()
            .provider_ref
            .clone()
    };
    // Part of the first top-up, under a key: the bank refunds that charge, once.
    let r = refund(first.clone(), Some(json!({"amount": 3_000})), Some("rf-1")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["wallet"]["balance"], 12_000);
    assert_eq!(r.body["wallet"]["held"], 0);
    let again = refund(first.clone(), Some(json!({"amount": 3_000})), Some("rf-1")).await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, r.body);
    let charges = app.state.sandbox.charges_of(&user).await;
    let refunds: Vec<_> = charges.iter().filter(|c| c.refund_of.is_some()).collect();
    assert_eq!(refunds.len(), 1, "{charges:?}");
    assert_eq!(refunds[0].amount, 3_000);
    assert_eq!(refunds[0].direction, Direction::Out);
    assert_eq!(refunds[0].status, ChargeStatus::Succeeded);
    assert_eq!(refunds[0].reference, r.body["id"].as_str().unwrap());
    assert_eq!(
        refunds[0].refund_of.as_deref(),
        Some(charge_of(&first, &charges).as_str())
    );
    // The wallet shows it as a top-up refunded, after its hold.
    let w = app.get("/v1/wallet", Some(&me)).await;
    assert_eq!(w.body["entries"][0]["kind"], "top_up_refund", "{}", w.body);
    assert_eq!(w.body["entries"][0]["amount"], -3_000);
    assert_eq!(w.body["entries"][1]["kind"], "hold");
    // More than is left of the top-up (7,000), though the wallet holds 12,000: refused before
    // the bank is asked, and nothing is held.
    let r = refund(first.clone(), Some(json!({"amount": 7_001})), None).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "refund_exceeds_top_up");
    assert_eq!(app.balance(&me).await, 12_000);
    // Bad amounts, another consumer's top-up, a withdrawal or a made-up id: refused, nothing
    // moves.
    for (body, status, code) in [
        (
            json!({"amount": 0}),
            StatusCode::BAD_REQUEST,
            "amount_invalid",
        ),
        (
            json!({"amount": -1}),
            StatusCode::BAD_REQUEST,
            "amount_invalid",
        ),
        (
            json!({"amount": 1, "currency": "CNY"}),
            StatusCode::BAD_REQUEST,
            "",
        ),
    ] {
        let r = refund(first.clone(), Some(body.clone()), None).await;
        assert_eq!(r.status, status, "{body}: {}", r.body);
        if !code.is_empty() {
            assert_eq!(r.code(), code, "{body}");
        }
    }
    let other = app.funded_consumer("13700000092", 1_000).await;
    let r = app
        .post(
            &format!("/v1/wallet/top-ups/{first}/refund"),
            json!({"amount": 100}),
            Some(&other),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.code(), "top_up_not_found");
    let w = app
        .post(
            "/v1/wallet/withdrawals",
            json!({"amount": 100, "currency": "CNY"}),
            Some(&me),
        )
        .await;
    assert_eq!(w.status, StatusCode::CREATED, "{}", w.body);
    for id in [w.body["id"].as_str().unwrap(), "wmv_nothing", "pay_1"] {
        let r = refund(id.to_owned(), Some(json!({"amount": 100})), None).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{id}: {}", r.body);
        assert_eq!(r.code(), "top_up_not_found");
    }
    assert_eq!(app.balance(&me).await, 11_900);
    // Spent down below what is left of the second top-up: the wallet must hold the refund.
    let r = pay(&app, &me, &shop.qr, 8_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = refund(second.clone(), None, None).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    assert_eq!(app.balance(&me).await, 3_900);
    // What the wallet holds can go back; a refund refused leaves the top-up's rest as it was.
    let r = refund(second.clone(), Some(json!({"amount": 3_900})), None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["wallet"]["balance"], 0);
    app.top_up(&me, 2_000).await;
    // Without a body: all that is left of the top-up (1,100).
    let r = refund(second.clone(), None, None).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["wallet"]["balance"], 900);
    let r = refund(second.clone(), None, None).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "refund_exceeds_top_up");
    // All that is left, keyed: its retry is answered as the first time, though nothing is left
    // by then.
    let third = app.top_up(&me, 4_000).await;
    let path = format!("/v1/wallet/top-ups/{third}/refund");
    let keyed = || {
        app.send(
            app.client
                .post(app.url(&path))
                .bearer_auth(&me)
                .header("Idempotency-Key", "rf-all"),
        )
    };
    let r = keyed().await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["wallet"]["balance"], 900);
    let again = keyed().await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body, r.body);
    // Refunds of one top-up racing each other: no more than it brought in goes back.
    let fourth = app.top_up(&me, 6_000).await;
    let racing: Vec<Res> = futures::future::join_all(
        (0..4).map(|_| refund(fourth.clone(), Some(json!({"amount": 2_500})), None)),
    )
    .await;
    let made = racing
        .iter()
        .filter(|r| r.status == StatusCode::CREATED)
        .count();
    assert_eq!(
        made,
        2,
        "{:?}",
        racing.iter().map(|r| &r.body).collect::<Vec<_>>()
    );
    for r in racing.iter().filter(|r| r.status != StatusCode::CREATED) {
        assert_eq!(r.code(), "refund_exceeds_top_up", "{}", r.body);
    }
    assert_eq!(app.balance(&me).await, 900 + 1_000);
    // The bank's statement: refunds of each charge within it.
    let charges = app.state.sandbox.charges_of(&user).await;
    let refunded = |top_up: &str| -> i64 {
        let charge = charge_of(top_up, &charges);
        charges
            .iter()
            .filter(|c| c.refund_of.as_deref() == Some(charge.as_str()))
            .map(|c| c.amount)
            .sum()
    };
    assert_eq!(refunded(&first), 3_000);
    assert_eq!(refunded(&second), 5_000);
    assert_eq!(refunded(&third), 4_000);
    assert_eq!(refunded(&fourth), 5_000);
    app.assert_ledger_verifies().await;
}

/// A top-up refund the bank does not make gives back what it held, and leaves that much of the
/// top-up to refund: whether the bank declines it at once, or the request is cut off before the
/// bank heard of it and the sweep closes it there.
#[tokio::test]
async fn a_top_up_refund_the_bank_does_not_make_leaves_the_top_up_to_refund_again() {
    use o2o_server::payments::engine::Op;
    use o2o_server::payments::provider::ChargeRequest;
    use o2o_server::payments::service::sweep_movements;
    let app = spawn_app().await;
    let me = app.consumer_token("13700000093", None).await;
    let user = app.user_id(&me).await;
    let top_up = app.top_up(&me, 10_000).await;
    let charge = app.state.sandbox.find(&top_up).await.unwrap().provider_ref;
    let path = format!("/v1/wallet/top-ups/{top_up}/refund");
    // The bank refunded 9,000 of the charge by itself (its own console, say): o2o's refund of
    // 2,000 is more than the bank has left of the charge, so the bank declines it.
    app.state
        .provider
        .refund(ChargeRequest {
            reference: "bank-console-1".into(),
            account: user.clone(),
            amount: 9_000,
            currency: "CNY".into(),
            direction: Direction::Out,
            idempotency_key: None,
            refund_of: Some(charge.clone()),
        })
        .await
        .unwrap();
    let r = app.post(&path, json!({"amount": 2_000}), Some(&me)).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "provider_declined");
    let w = app.get("/v1/wallet", Some(&me)).await;
    assert_eq!(
        (w.body["balance"].as_i64(), w.body["held"].as_i64()),
        (Some(10_000), Some(0))
    );
    assert_eq!(w.body["entries"][0]["kind"], "release", "{}", w.body);
    // A refund begun as a request begins it, cut off before the bank heard of it: its money is
    // held, and counts against the top-up, until the sweep closes it at the bank.
    let cut = o2o_server::ids::WalletMovementId::generate()
        .as_str()
        .to_owned();
    app.state
        .payments
        .run(
            Op::MoveStart {
                direction: Direction::Out,
                movement_id: cut.clone(),
                user_id: user.clone(),
                amount: 1_000,
                currency: o2o_ledger::Currency::CNY,
                provider: app.state.provider.name(),
                request_key: None,
                refund_of: Some(top_up.clone()),
            },
            None,
        )
        .await
        .unwrap();
    let r = app.post(&path, json!({"amount": 9_001}), Some(&me)).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "refund_exceeds_top_up");
    assert_eq!(sweep_movements(&app.state, 0).await.unwrap(), 1);
    let closed = app.state.sandbox.find(&cut).await.unwrap();
    assert_eq!(closed.status, ChargeStatus::Failed);
    assert_eq!(closed.refund_of.as_deref(), Some(charge.as_str()));
    assert_eq!(app.balance(&me).await, 10_000);
    // Closed, it counts against the top-up no more: 9,500 passes o2o's count and reaches the
    // bank, which has only 1,000 left of the charge.
    let r = app.post(&path, json!({"amount": 9_500}), Some(&me)).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "provider_declined");
    // So does all that is left of it by o2o's count (10,000); the bank's 1,000 then goes back.
    let r = app.post(&path, json!({}), Some(&me)).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "provider_declined");
    let r = app.post(&path, json!({"amount": 1_000}), Some(&me)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["wallet"]["balance"], 9_000);
    app.assert_ledger_verifies().await;
    // The bank's own bound, asked directly by refunds racing on one charge of 3,000: no more
    // than the charge goes back, whatever o2o asks.
    let last = app.top_up(&me, 3_000).await;
    let charge = app.state.sandbox.find(&last).await.unwrap().provider_ref;
    let racing = futures::future::join_all((0..6).map(|i| {
        app.state.provider.refund(ChargeRequest {
            reference: format!("bank-console-race-{i}"),
            account: user.clone(),
            amount: 1_000,
            currency: "CNY".into(),
            direction: Direction::Out,
            idempotency_key: None,
            refund_of: Some(charge.clone()),
        })
    }))
    .await;
    let made = racing.iter().filter(|r| r.is_ok()).count();
    assert_eq!(made, 3, "{racing:?}");
    assert!(
        racing
            .iter()
            .filter_map(|r| r.as_ref().err())
            .all(|e| matches!(
                e,
                o2o_server::payments::provider::ProviderError::Declined(_)
            )),
        "{racing:?}"
    );
}

#[tokio::test]
async fn a_wallet_movement_the_server_did_not_see_through_is_settled_from_the_banks_record() {
    use o2o_server::payments::engine::Op;
    use o2o_server::payments::provider::ChargeRequest;
    use o2o_server::payments::service::{MOVEMENT_SETTLES_US, sweep_movements};
    let app = spawn_app().await;
    let me = app.funded_consumer("13700000073", 10_000).await;
    let user = app.user_id(&me).await;
    // Three movements begun as a request would begin them, whose requests then stopped (the
    // server went down): a withdrawal the bank paid out, one it never heard of, and a top-up
    // it took.
    let mut ids = Vec::new();
    for (direction, amount, bank_made_it) in [
        (Direction::Out, 3_000, true),
        (Direction::Out, 2_000, false),
        (Direction::In, 500, true),
    ] {
        let id = o2o_server::ids::WalletMovementId::generate()
            .as_str()
            .to_owned();
        let start = Op::MoveStart {
            direction,
            movement_id: id.clone(),
            user_id: user.clone(),
            amount,
            currency: o2o_ledger::Currency::CNY,
            provider: app.state.provider.name(),
            request_key: None,
            refund_of: None,
        };
        app.state.payments.run(start, None).await.unwrap();
        if bank_made_it {
            app.state
                .provider
                .create(ChargeRequest {
                    reference: id.clone(),
                    account: user.clone(),
                    amount,
                    currency: "CNY".into(),
                    direction,
                    idempotency_key: None,
                    refund_of: None,
                })
                .await
                .unwrap();
        }
        ids.push(id);
    }
    // The withdrawals' money is held meanwhile: it can be neither spent nor withdrawn again.
    let w = app.get("/v1/wallet", Some(&me)).await;
    assert_eq!(w.body["balance"], 5_000, "{}", w.body);
    assert_eq!(w.body["held"], 5_000, "{}", w.body);
    let r = app
        .post(
            "/v1/wallet/withdrawals",
            json!({"amount": 5_001, "currency": "CNY"}),
            Some(&me),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    // Young movements are left to the requests that may still be seeing them through.
    assert_eq!(
        sweep_movements(&app.state, MOVEMENT_SETTLES_US)
            .await
            .unwrap(),
        0
    );
    // Past that, each is settled from the bank's record: the payout is posted, the hold the bank
    // never paid out is released, and the top-up is credited.
    assert_eq!(sweep_movements(&app.state, 0).await.unwrap(), 3);
    let w = app.get("/v1/wallet", Some(&me)).await;
    assert_eq!(w.body["balance"], 10_000 - 3_000 + 500, "{}", w.body);
    assert_eq!(w.body["held"], 0, "{}", w.body);
    assert_eq!(sweep_movements(&app.state, 0).await.unwrap(), 0);
    // The released one was closed at the bank first: the request that began it, reaching the
    // bank late, is answered that it failed, and nothing is paid out.
    let late = app
        .state
        .provider
        .create(ChargeRequest {
            reference: ids[1].clone(),
            account: user.clone(),
            amount: 2_000,
            currency: "CNY".into(),
            direction: Direction::Out,
            idempotency_key: None,
            refund_of: None,
        })
        .await
        .unwrap();
    assert_eq!(late.status, ChargeStatus::Failed);
    // The bank's notification of the payout, arriving late (or the request that began it,
    // seeing it through after all), is answered as settled and moves nothing again.
    let charge = app.state.sandbox.find(&ids[0]).await.unwrap();
    let n = app.state.provider.notification_for(&charge);
    assert_eq!(notify(&app, &n).await, StatusCode::CREATED);
    // A report contrary to what was settled is refused: the bank never heard of the second.
    let mut made_up = charge.clone();
    made_up.reference = ids[1].clone();
    made_up.amount = 2_000;
    let n = app.state.provider.notification_for(&made_up);
    assert_eq!(notify(&app, &n).await, StatusCode::CONFLICT);
    assert_eq!(app.balance(&me).await, 7_500);
    app.assert_ledger_verifies().await;
}

/// One sweep gets through more unanswered movements than it reads at a time (100), oldest
/// first, so none waits behind others for a later round.
#[tokio::test]
async fn the_sweep_settles_every_unanswered_movement_not_only_the_oldest_hundred() {
    use o2o_server::payments::engine::Op;
    use o2o_server::payments::service::sweep_movements;
    let app = spawn_app().await;
    let me = app.funded_consumer("13700000094", 10_000).await;
    let user = app.user_id(&me).await;
    let started = futures::future::join_all((0..130).map(|_| {
        app.state.payments.run(
            Op::MoveStart {
                direction: Direction::In,
                movement_id: o2o_server::ids::WalletMovementId::generate()
                    .as_str()
                    .to_owned(),
                user_id: user.clone(),
                amount: 100,
                currency: o2o_ledger::Currency::CNY,
                provider: app.state.provider.name(),
                request_key: None,
                refund_of: None,
            },
            None,
        )
    }))
    .await;
    assert!(started.iter().all(Result::is_ok));
    // The bank never heard of them: each is closed there, and fails.
    assert_eq!(sweep_movements(&app.state, 0).await.unwrap(), 130);
    assert_eq!(sweep_movements(&app.state, 0).await.unwrap(), 0);
    let failed: Vec<_> = app
        .state
        .sandbox
        .charges_of(&user)
        .await
        .into_iter()
        .filter(|c| c.status == ChargeStatus::Failed)
        .collect();
    assert_eq!(failed.len(), 130);
    assert_eq!(app.balance(&me).await, 10_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_retry_of_a_withdrawal_cut_off_midway_is_answered_with_what_the_bank_did() {
    use o2o_server::payments::engine::Op;
    use o2o_server::payments::provider::ChargeRequest;
    use o2o_server::payments::service::provider_key;
    let app = spawn_app().await;
    let me = app.funded_consumer("13700000075", 10_000).await;
    let user = app.user_id(&me).await;
    // An attempt cut off as the server went down: held, asked of the bank under its key, and
    // the bank paid it out (`bank_made_it`), or never heard of it.
    let cut_off = |id: &str, amount: i64, key: &str| Op::MoveStart {
        direction: Direction::Out,
        movement_id: id.to_owned(),
        user_id: user.clone(),
        amount,
        currency: o2o_ledger::Currency::CNY,
        provider: app.state.provider.name(),
        request_key: Some(provider_key(&user, key)),
        refund_of: None,
    };
    let paid_out = "wmv_01jq3v7h0000000000000000c1";
    app.state
        .payments
        .run(cut_off(paid_out, 6_000, "cut-1"), None)
        .await
        .unwrap();
    app.state
        .provider
        .create(ChargeRequest {
            reference: paid_out.into(),
            account: user.clone(),
            amount: 6_000,
            currency: "CNY".into(),
            direction: Direction::Out,
            idempotency_key: Some(provider_key(&user, "cut-1")),
            refund_of: None,
        })
        .await
        .unwrap();
    // The retry is that payout: no second hold (the wallet could not cover one), no second
    // payout.
    let body = json!({"amount": 6_000, "currency": "CNY"});
    let r = app
        .post_idem("/v1/wallet/withdrawals", body.clone(), Some(&me), "cut-1")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], paid_out);
    assert_eq!(r.body["wallet"]["balance"], 4_000);
    assert_eq!(r.body["wallet"]["held"], 0);
    let again = app
        .post_idem("/v1/wallet/withdrawals", body, Some(&me), "cut-1")
        .await;
    assert_eq!(again.body, r.body);
    // One the bank never heard of is asked again, under its own reference and key: made now,
    // once.
    let unheard = "wmv_01jq3v7h0000000000000000c2";
    app.state
        .payments
        .run(cut_off(unheard, 1_000, "cut-2"), None)
        .await
        .unwrap();
    let body = json!({"amount": 1_000, "currency": "CNY"});
    // (The same key for another amount is still another request.)
    let r = app
        .post_idem(
            "/v1/wallet/withdrawals",
            json!({"amount": 999, "currency": "CNY"}),
            Some(&me),
            "cut-2",
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    let r = app
        .post_idem("/v1/wallet/withdrawals", body, Some(&me), "cut-2")
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["id"], unheard);
    assert_eq!(r.body["wallet"]["balance"], 3_000);
    assert_eq!(r.body["wallet"]["held"], 0);
    let payouts: Vec<i64> = app
        .state
        .sandbox
        .charges_of(&user)
        .await
        .into_iter()
        .filter(|c| c.direction == Direction::Out)
        .map(|c| c.amount)
        .collect();
    assert_eq!(payouts, [6_000, 1_000]);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_consumer_scans_a_store_code_and_pays_from_the_wallet() {
    let app = spawn_app().await;
    let shop = app.shop("Pay Cafe").await;
    let me = app.funded_consumer("13700000002", 10_000).await;
    let r = pay(&app, &me, &shop.qr, 2_500).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(r.body["amount"], 2_500);
    assert_eq!(r.body["amount_captured"], 2_500);
    assert_eq!(r.body["merchant_id"], shop.merchant.as_str());
    assert_eq!(r.body["store_id"], shop.store.as_str());
    assert_eq!(r.body["source"], "wallet");
    // 0.6 % of ¥25.00 is 15 fen.
    assert_eq!(r.body["fee"], 15);
    assert!(r.body["id"].as_str().unwrap().starts_with("pay_"));
    assert_eq!(app.balance(&me).await, 7_500);
    let b = app.merchant_balance(&shop).await;
    assert_eq!(b["pending"], 2_485);
    // Paying by the code's id works too.
    let r = pay(&app, &me, &shop.qr_id, 100).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // The consumer sees the payment; the merchant sees it; another consumer does not.
    let id = r.body["id"].as_str().unwrap();
    assert_eq!(
        app.get(&format!("/v1/payments/{id}"), Some(&me))
            .await
            .status,
        StatusCode::OK
    );
    assert_eq!(
        app.get(&format!("/v1/payments/{id}"), Some(&shop.cashier))
            .await
            .status,
        StatusCode::OK
    );
    let other = app.consumer_token("13700000003", None).await;
    assert_eq!(
        app.get(&format!("/v1/payments/{id}"), Some(&other))
            .await
            .status,
        StatusCode::NOT_FOUND
    );
    let mine = app.get("/v1/payments", Some(&me)).await;
    assert_eq!(mine.body["data"].as_array().unwrap().len(), 2);
    // An event went to the outbox with each payment.
    assert_eq!(app.count("events").await, 2);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn insufficient_funds_is_a_402_and_nothing_moves() {
    let app = spawn_app().await;
    let shop = app.shop("Broke Cafe").await;
    let me = app.funded_consumer("13700000004", 1_000).await;
    let transfers = app.count("ledger_transfers").await;
    let r = pay(&app, &me, &shop.qr, 1_001).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    assert_eq!(r.body["error"]["type"], "payment");
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.count("ledger_transfers").await, transfers);
    assert_eq!(app.count("events").await, 0);
    assert_eq!(app.balance(&me).await, 1_000);
    // Bad requests: clear 4xx, nothing moves.
    for body in [
        json!({"qr": shop.qr, "amount": -1, "currency": "CNY"}),
        json!({"qr": shop.qr, "amount": 0, "currency": "CNY"}),
        json!({"qr": shop.qr, "amount": 100, "currency": "CNY", "source": "cash"}),
        json!({"qr": shop.qr, "amount": 100, "currency": "CNY", "capture": "later"}),
        json!({"qr": "https://evil.example/q/AAAAAAAAAAAA", "amount": 100, "currency": "CNY"}),
        json!({"qr": shop.qr, "amount": 100, "currency": "CNY", "pay_code": "190000000000000000"}),
        json!({"amount": 100, "currency": "CNY"}),
        json!({"qr": shop.qr, "amount": 100, "currency": "CNY", "source": "crd_nope"}),
    ] {
        let r = app.post("/v1/payments", body.clone(), Some(&me)).await;
        assert!(
            r.status.is_client_error(),
            "{body}: {} {}",
            r.status,
            r.body
        );
    }
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.balance(&me).await, 1_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_revoked_code_or_an_unverified_merchant_takes_no_money() {
    let app = spawn_app().await;
    let shop = app.shop("Revoked Cafe").await;
    let me = app.funded_consumer("13700000005", 1_000).await;
    app.post(
        &format!("/v1/qr-codes/{}/revoke", shop.qr_id),
        json!({}),
        Some(&shop.owner),
    )
    .await;
    let r = pay(&app, &me, &shop.qr, 100).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    assert_eq!(r.code(), "qr_revoked");
    // An unverified merchant's code.
    let (mid, owner) = app.merchant("Unverified").await;
    let store = app.store(&mid, &owner, "U1", 31.0, 121.0).await;
    let code = app
        .post(
            "/v1/qr-codes",
            json!({"kind": "store_pay", "store_id": store}),
            Some(&owner),
        )
        .await;
    let r = pay(&app, &me, code.body["url"].as_str().unwrap(), 100).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    assert_eq!(r.code(), "merchant_not_verified");
    assert_eq!(app.balance(&me).await, 1_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_store_pay_code_printed_for_bank_apps_pays_and_a_tampered_one_is_refused() {
    let app = spawn_app().await;
    let shop = app.shop("Emv Cafe").await;
    let me = app.funded_consumer("13700000031", 10_000).await;
    let r = app
        .get(
            &format!("/v1/stores/{}/pay-qr?format=emv", shop.store),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let payload = r.body["payload"].as_str().unwrap().to_owned();
    assert!(payload.starts_with("000201"), "{payload}");
    // The scanned text is the whole EMVCo payload: the o2o code inside it is paid.
    let paid = pay(&app, &me, &payload, 1_200).await;
    assert_eq!(paid.status, StatusCode::CREATED, "{}", paid.body);
    assert_eq!(paid.body["store_id"], shop.store.as_str());
    assert_eq!(app.balance(&me).await, 8_800);
    // One character changed (the checksum no longer holds), or the checksum cut off: a
    // damaged or misread code, refused as no o2o code, and nothing moves.
    let at = payload.find("5802CN").expect("the country object");
    let tampered = format!("{}5802HK{}", &payload[..at], &payload[at + 6..]);
    let cut = &payload[..payload.len() - 8];
    for fake in [tampered.as_str(), cut] {
        let r = pay(&app, &me, fake, 1_200).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{fake}: {}", r.body);
        assert_eq!(r.code(), "qr_unknown", "{fake}");
    }
    assert_eq!(app.balance(&me).await, 8_800);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_retried_payment_moves_money_once_even_with_32_concurrent_retries() {
    let app = spawn_app().await;
    let shop = app.shop("Retry Cafe").await;
    let me = app.funded_consumer("13700000006", 100_000).await;
    let first = pay_keyed(&app, &me, &shop.qr, 700, "pay-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let again = pay_keyed(&app, &me, &shop.qr, 700, "pay-1").await;
    assert_eq!(again.status, StatusCode::CREATED);
    assert_eq!(again.body, first.body);
    let reused = pay_keyed(&app, &me, &shop.qr, 701, "pay-1").await;
    assert_eq!(reused.status, StatusCode::CONFLICT);
    assert_eq!(reused.code(), "idempotency_key_reused");
    assert_eq!(app.balance(&me).await, 100_000 - 700);
    // 32 concurrent retries of a new key: one payment.
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let client = app.client.clone();
        let url = app.url("/v1/payments");
        let me = me.clone();
        let body = json!({"qr": shop.qr, "amount": 900, "currency": "CNY"});
        tasks.push(tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(me)
                .header("Idempotency-Key", "pay-2")
                .json(&body)
                .send()
                .await
                .unwrap();
            let status = r.status();
            (status, r.json::<Value>().await.unwrap())
        }));
    }
    let mut ids = std::collections::HashSet::new();
    for t in tasks {
        let (status, body) = t.await.unwrap();
        if status == StatusCode::CREATED {
            ids.insert(body["id"].as_str().unwrap().to_owned());
        } else {
            assert_eq!(status, StatusCode::CONFLICT, "{body}");
        }
    }
    assert_eq!(
        ids.len(),
        1,
        "every successful retry names the same payment"
    );
    assert_eq!(app.count("payments").await, 2);
    assert_eq!(app.balance(&me).await, 100_000 - 700 - 900);
    app.assert_ledger_verifies().await;
}

/// Batches made again because a key they had left unread was stored.
const STORED_KEY_RERUNS: &str = "sequencer_batches_rerun_for_stored_keys";

#[tokio::test]
async fn a_keyed_payment_goes_out_from_kept_balances_and_its_retry_is_answered_as_before() {
    if backend() != "postgres" {
        // Only PostgreSQL leaves a batch's keys unread (SQLite's sequencer reads them at no
        // cost, being the only writer).
        return;
    }
    let app = spawn_app().await;
    let shop = app.shop("Keyed Cafe").await;
    let me = app.funded_consumer("13700000041", 10_000).await;
    // Afterwards the node keeps the wallet's and the merchant's balances.
    let r = pay(&app, &me, &shop.qr, 100).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let first = pay_keyed(&app, &me, &shop.qr, 700, "keyed-1").await;
    assert_eq!(first.status, StatusCode::CREATED, "{}", first.body);
    let reruns_before = counter(&app, STORED_KEY_RERUNS).await;
    let again = pay_keyed(&app, &me, &shop.qr, 700, "keyed-1").await;
    assert_eq!(again.status, StatusCode::CREATED, "{}", again.body);
    assert_eq!(again.body, first.body);
    // The retry was made from the kept balances without reading its key, found the key stored
    // when it wrote, and was made again from stored rows. (Other tests in this process may add
    // to the count only by doing the same: a batch that reads its keys first never finds one
    // stored when it writes, on one node.)
    assert!(counter(&app, STORED_KEY_RERUNS).await >= reruns_before + 1.0);
    let reused = pay_keyed(&app, &me, &shop.qr, 701, "keyed-1").await;
    assert_eq!(reused.status, StatusCode::CONFLICT, "{}", reused.body);
    assert_eq!(reused.code(), "idempotency_key_reused");
    assert_eq!(app.count("payments").await, 2);
    assert_eq!(app.balance(&me).await, 10_000 - 100 - 700);
    app.assert_ledger_verifies().await;
}

async fn pay_code(app: &TestApp, consumer: &str) -> String {
    let r = app
        .post("/v1/me/pay-codes", json!({"count": 1}), Some(consumer))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["code"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_cashier_takes_a_pay_code_once_and_declines_used_expired_and_foreign_ones() {
    let app = spawn_app().await;
    let shop = app.shop("Counter Cafe").await;
    let me = app.funded_consumer("13700000007", 5_000).await;
    let code = pay_code(&app, &me).await;
    let take = |code: String| {
        let app = &app;
        let shop = &shop;
        async move {
            app.post(
                "/v1/payments",
                json!({"store_id": shop.store, "pay_code": code, "amount": 1_200, "currency": "CNY"}),
                Some(&shop.cashier),
            )
            .await
        }
    };
    let r = take(code.clone()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["method"], "pay_code");
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(app.balance(&me).await, 3_800);
    let again = take(code).await;
    assert_eq!(again.status, StatusCode::PAYMENT_REQUIRED, "{}", again.body);
    assert_eq!(again.code(), "code_used");
    // Expired.
    let code = pay_code(&app, &me).await;
    app.state
        .db
        .execute(o2o_server::db::query(
            "UPDATE pay_codes SET expires_at = 1 WHERE used_at IS NULL",
        ))
        .await
        .unwrap();
    let r = take(code).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "code_expired");
    // Not a code at all; a code nobody issued.
    let r = take("12345".into()).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = take("190000000000000000".into()).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    // A consumer cannot take someone's pay code.
    let other = app.funded_consumer("13700000008", 0).await;
    let code = pay_code(&app, &me).await;
    let r = app
        .post(
            "/v1/payments",
            json!({"store_id": shop.store, "pay_code": code, "amount": 100, "currency": "CNY"}),
            Some(&other),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // Another merchant's store is not the cashier's.
    let elsewhere = app.shop("Elsewhere").await;
    let r = app
        .post(
            "/v1/payments",
            json!({"store_id": elsewhere.store, "pay_code": code, "amount": 100, "currency": "CNY"}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
    // Insufficient funds with a pay code: declined, and the code stays unused.
    let r = app
        .post(
            "/v1/payments",
            json!({"store_id": shop.store, "pay_code": code, "amount": 999_999, "currency": "CNY"}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "insufficient_funds");
    let r = take(code).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.balance(&me).await, 2_600);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn cash_is_recorded_and_refunded_through_the_drawer() {
    let app = spawn_app().await;
    let shop = app.shop("Cash Cafe").await;
    let r = app
        .post(
            "/v1/payments",
            json!({"store_id": shop.store, "source": "cash", "amount": 3_000, "currency": "CNY"}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["source"], "cash");
    assert_eq!(r.body["fee"], 0);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let b = app.merchant_balance(&shop).await;
    assert_eq!(b["cash"], 3_000);
    assert_eq!(b["pending"], 0);
    let refund = app
        .post(
            "/v1/refunds",
            json!({"payment": id, "amount": 1_000}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(refund.status, StatusCode::CREATED, "{}", refund.body);
    assert_eq!(app.merchant_balance(&shop).await["cash"], 2_000);
    // Cash cannot be held.
    let r = app
        .post(
            "/v1/payments",
            json!({"store_id": shop.store, "source": "cash", "amount": 100, "currency": "CNY", "capture": "manual"}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    // A merchant not yet verified records no cash either, as it takes no other payment; nor
    // does a listing merchant, verified or not: it takes no payments at all.
    let (unverified, unverified_owner) = app.merchant("Unverified Cash").await;
    let r = app
        .post(
            "/v1/merchants",
            json!({"name": "Listing Only", "mode": "listing",
                   "owner": {"email": "owner@listing-only.test", "password": "secret-pass-1"}}),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let listing = r.body["id"].as_str().unwrap().to_owned();
    let listing_owner = app
        .password_token("owner@listing-only.test", "secret-pass-1")
        .await;
    app.set_verified(&listing, true).await;
    for (mid, owner) in [(&unverified, &unverified_owner), (&listing, &listing_owner)] {
        let store = app.store(mid, owner, "U1", 31.0, 121.0).await;
        let r = app
            .post(
                "/v1/payments",
                json!({"store_id": store, "source": "cash", "amount": 3_000, "currency": "CNY"}),
                Some(owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::FORBIDDEN, "{mid}: {}", r.body);
        assert_eq!(r.code(), "merchant_not_verified");
        let b = app
            .get(&format!("/v1/merchants/{mid}/balance"), Some(owner))
            .await;
        assert_eq!(b.status, StatusCode::OK, "{}", b.body);
        assert_eq!(b.body["cash"], 0, "{}", b.body);
    }
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn an_empty_body_is_no_body_and_cancel_refuses_fields() {
    let app = spawn_app().await;
    let shop = app.shop("Guesthouse").await;
    let me = app.funded_consumer("13700000019", 10_000).await;
    let hold = || async {
        let h = hold(&app, &me, &shop.qr, 3_000).await;
        assert_eq!(h.status, StatusCode::CREATED, "{}", h.body);
        h.body["id"].as_str().unwrap().to_owned()
    };
    // A client library that always sends Content-Type: application/json, with no bytes: the
    // whole hold is captured, as with no body at all. Sent again with its key, the reply is
    // replayed; the same key sent to another payment's path is a reused key.
    let id = hold().await;
    let empty_json = |path: String| {
        app.client
            .post(app.url(&path))
            .bearer_auth(&shop.cashier)
            .header("content-type", "application/json")
            .header("idempotency-key", "capture-once")
            .body("")
    };
    let capture = format!("/v1/payments/{id}/capture");
    let r = app.send(empty_json(capture.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["amount_captured"], 3_000, "{}", r.body);
    let again = app.send(empty_json(capture)).await;
    assert_eq!(again.status, StatusCode::OK, "{}", again.body);
    assert_eq!(again.body, r.body);
    assert_eq!(app.balance(&me).await, 7_000);
    // Cancel has no fields: one sent (as if part of a hold could be cancelled) is refused, and
    // so are bytes that are not declared JSON; the hold stays.
    let id = hold().await;
    let r = app
        .send(empty_json(format!("/v1/payments/{id}/cancel")))
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    assert_eq!(r.code(), "idempotency_key_reused", "{}", r.body);
    let r = app
        .post(
            &format!("/v1/payments/{id}/cancel"),
            json!({"amount": 1_000}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert_eq!(r.body["error"]["param"], "amount", "{}", r.body);
    let r = app
        .send(
            app.client
                .post(app.url(&format!("/v1/payments/{id}/cancel")))
                .bearer_auth(&shop.cashier)
                .body("{\"amount\": 1000}"),
        )
        .await;
    assert_eq!(r.status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{}", r.body);
    let p = app.get(&format!("/v1/payments/{id}"), Some(&me)).await;
    assert_eq!(p.body["status"], "requires_capture", "{}", p.body);
    assert_eq!(app.balance(&me).await, 4_000);
    // No bytes under a form's Content-Type (as `curl -d ''` sends) is no body: it cancels.
    let r = app
        .send(
            app.client
                .post(app.url(&format!("/v1/payments/{id}/cancel")))
                .bearer_auth(&shop.cashier)
                .header("content-type", "application/x-www-form-urlencoded")
                .body(""),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "canceled", "{}", r.body);
    assert_eq!(app.balance(&me).await, 7_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_hold_is_captured_in_part_or_canceled_and_lapses_by_itself() {
    let app = spawn_app().await;
    let shop = app.shop("Hotel").await;
    let me = app.funded_consumer("13700000009", 50_000).await;
    let hold = |amount: i64| hold(&app, &me, &shop.qr, amount);
    let h = hold(30_000).await;
    assert_eq!(h.status, StatusCode::CREATED, "{}", h.body);
    assert_eq!(h.body["status"], "requires_capture");
    assert!(h.body["capture_before"].is_string());
    let w = app.get("/v1/wallet", Some(&me)).await;
    assert_eq!(
        (w.body["balance"].as_i64(), w.body["held"].as_i64()),
        (Some(20_000), Some(30_000))
    );
    // Held money cannot be spent twice.
    let r = pay(&app, &me, &shop.qr, 20_001).await;
    assert_eq!(r.code(), "insufficient_funds");
    let id = h.body["id"].as_str().unwrap().to_owned();
    // A consumer cannot capture; more than held is refused.
    let r = app
        .post(&format!("/v1/payments/{id}/capture"), json!({}), Some(&me))
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = app
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 30_001}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = app
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({"amount": 25_000}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "succeeded");
    assert_eq!(r.body["amount_captured"], 25_000);
    assert_eq!(r.body["fee"], 150);
    let w = app.get("/v1/wallet", Some(&me)).await;
    assert_eq!(
        (w.body["balance"].as_i64(), w.body["held"].as_i64()),
        (Some(25_000), Some(0))
    );
    let r = app
        .post(
            &format!("/v1/payments/{id}/capture"),
            json!({}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{}", r.body);
    // Cancel releases everything.
    let h = hold(5_000).await;
    let id2 = h.body["id"].as_str().unwrap().to_owned();
    let r = app
        .post(
            &format!("/v1/payments/{id2}/cancel"),
            json!({}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["status"], "canceled");
    assert_eq!(app.balance(&me).await, 25_000);
    // Capture after expiry is declined; the sweeper releases the hold.
    let h = hold(4_000).await;
    let id3 = h.body["id"].as_str().unwrap().to_owned();
    app.lapse_hold(&id3).await;
    let r = app
        .post(
            &format!("/v1/payments/{id3}/capture"),
            json!({}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(r.code(), "hold_expired");
    let mut status = String::new();
    for _ in 0..50 {
        let p = app.get(&format!("/v1/payments/{id3}"), Some(&me)).await;
        status = p.body["status"].as_str().unwrap().to_owned();
        if status == "canceled" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert_eq!(status, "canceled");
    assert_eq!(app.balance(&me).await, 25_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn refunds_go_back_to_the_wallet_never_more_than_paid_and_return_the_fee() {
    let app = spawn_app().await;
    let shop = app.shop("Refund Cafe").await;
    let me = app.funded_consumer("13700000010", 10_000).await;
    let p = pay(&app, &me, &shop.qr, 10_000).await;
    assert_eq!(p.body["fee"], 60);
    let id = p.body["id"].as_str().unwrap().to_owned();
    let r1 = app
        .post(
            "/v1/refunds",
            json!({"payment": id, "amount": 2_500, "reason": "cold coffee"}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r1.status, StatusCode::CREATED, "{}", r1.body);
    assert!(r1.body["id"].as_str().unwrap().starts_with("rfd_"));
    assert_eq!(r1.body["fee_returned"], 15);
    assert_eq!(app.balance(&me).await, 2_500);
    let over = app
        .post(
            "/v1/refunds",
            json!({"payment": id, "amount": 7_501}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(over.status, StatusCode::PAYMENT_REQUIRED, "{}", over.body);
    assert_eq!(over.code(), "refund_exceeds_payment");
    // The rest, by default.
    let r2 = app
        .post("/v1/refunds", json!({"payment": id}), Some(&shop.cashier))
        .await;
    assert_eq!(r2.status, StatusCode::CREATED, "{}", r2.body);
    assert_eq!(r2.body["amount"], 7_500);
    assert_eq!(r2.body["fee_returned"], 45);
    let done = app.get(&format!("/v1/payments/{id}"), Some(&me)).await;
    assert_eq!(done.body["amount_refunded"], 10_000);
    assert_eq!(done.body["fee"], 0);
    assert_eq!(app.balance(&me).await, 10_000);
    assert_eq!(app.merchant_balance(&shop).await["pending"], 0);
    let again = app
        .post(
            "/v1/refunds",
            json!({"payment": id, "amount": 1}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(again.code(), "refund_exceeds_payment");
    // Another merchant cannot refund it.
    let other = app.shop("Other Cafe").await;
    let r = app
        .post("/v1/refunds", json!({"payment": id}), Some(&other.cashier))
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
    // Statement of today: gross, refunds, fees, net.
    let day = o2o_server::payments::service::business_day(
        Some("Asia/Shanghai"),
        o2o_server::db::now_us(),
    );
    let s = app
        .get(
            &format!("/v1/merchants/{}/statements/{day}", shop.merchant),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(s.status, StatusCode::OK, "{}", s.body);
    assert_eq!(s.body["gross"], 10_000);
    assert_eq!(s.body["refunds"], 10_000);
    assert_eq!(s.body["fees"], 0);
    assert_eq!(s.body["net"], 0);
    assert_eq!(s.body["count"], 1);
    assert_eq!(s.body["refund_count"], 2);
    let csv = app
        .client
        .get(app.url(&format!(
            "/v1/merchants/{}/statements/{day}.csv",
            shop.merchant
        )))
        .bearer_auth(&shop.owner)
        .send()
        .await
        .unwrap();
    assert_eq!(csv.status(), StatusCode::OK);
    let text = csv.text().await.unwrap();
    assert!(text.starts_with("merchant_id,date,currency,gross,refunds,fees,net"));
    assert!(
        text.contains(&format!(",{day},CNY,10000,10000,0,0,1,2,0")),
        "{text}"
    );
    // Not a business day: words, a signed or zero year, a day the calendar lacks, other shapes.
    for day in [
        "yesterday",
        "-001-01-01",
        "0000-01-01",
        "2026-02-30",
        "2026-1-05",
        "+202-01-05",
        "2026-01-0５",
    ] {
        let bad = app
            .get(
                &format!("/v1/merchants/{}/statements/{day}", shop.merchant),
                Some(&shop.owner),
            )
            .await;
        assert_eq!(bad.status, StatusCode::BAD_REQUEST, "{day}: {}", bad.body);
        assert_eq!(bad.code(), "date_invalid", "{day}");
    }
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_operator_verifies_the_ledger_and_others_cannot() {
    let app = spawn_app().await;
    let shop = app.shop("Verify Cafe").await;
    let me = app.funded_consumer("13700000011", 1_000).await;
    pay(&app, &me, &shop.qr, 999).await;
    let r = app
        .get("/v1/admin/ledger/verify", Some(&shop.operator))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["balanced"], true);
    assert_eq!(r.body["totals"]["CNY"], 0);
    assert_eq!(r.body["negative_accounts"], json!([]));
    assert!(r.body["transfers"].as_i64().unwrap() >= 3);
    assert_eq!(
        app.get("/v1/admin/ledger/verify", Some(&shop.owner))
            .await
            .status,
        StatusCode::FORBIDDEN
    );
    // Tampering with a balance is caught.
    app.state
        .db
        .execute(o2o_server::db::query(
            "UPDATE ledger_accounts SET balance = balance + 1 WHERE kind = 'wallet'",
        ))
        .await
        .unwrap();
    let r = app
        .get("/v1/admin/ledger/verify", Some(&shop.operator))
        .await;
    assert_eq!(r.body["balanced"], false);
    assert_eq!(r.body["totals"]["CNY"], 1);
    assert_eq!(r.body["mismatched_accounts"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_forged_provider_notification_credits_nothing() {
    let app = spawn_app().await;
    let me = app.consumer_token("13700000012", None).await;
    let user = app.user_id(&me).await;
    let body =
        json!({"provider_ref": "sbx_x", "reference": "wmv_x", "account": user, "amount": 100000,
        "currency": "CNY", "direction": "in", "status": "succeeded"})
        .to_string();
    let r = app
        .client
        .post(app.url("/v1/providers/sandbox/notifications"))
        .header("webhook-id", "ntf_1")
        .header(
            "webhook-timestamp",
            (o2o_server::db::now_us() / 1_000_000).to_string(),
        )
        .header("webhook-signature", "00".repeat(32))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::BAD_REQUEST);
    assert_eq!(app.balance(&me).await, 0);
    // A genuine notification delivered twice credits once.
    use o2o_server::payments::provider::ChargeRequest;
    let charge = app
        .state
        .provider
        .create(ChargeRequest {
            reference: "wmv_01jq3v7h0000000000000000ab".into(),
            account: user.clone(),
            amount: 500,
            currency: "CNY".into(),
            direction: Direction::In,
            idempotency_key: None,
            refund_of: None,
        })
        .await
        .unwrap();
    let n = app.state.provider.notification_for(&charge);
    // (The second is answered as the first, so the provider stops sending it.)
    for _ in 0..2 {
        assert_eq!(notify(&app, &n).await, StatusCode::CREATED);
    }
    // A genuine notification naming nothing o2o asked for (here a budget funding's id) is
    // refused, crediting nothing.
    let mut other = charge.clone();
    other.reference = "pfd_01jq3v7h0000000000000000ab".into();
    let n = app.state.provider.notification_for(&other);
    assert_eq!(notify(&app, &n).await, StatusCode::BAD_REQUEST);
    assert_eq!(app.balance(&me).await, 500);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn two_nodes_paying_into_one_merchant_keep_the_ledger_exact() {
    if backend() != "postgres" {
        // Several nodes share one database only on PostgreSQL.
        return;
    }
    let a = spawn_app().await;
    let b = a.second_node().await;
    let shop = a.shop("Two Nodes Cafe").await;
    let mut consumers = Vec::new();
    for i in 0..8 {
        consumers.push(a.funded_consumer(&format!("1370000010{i}"), 100_000).await);
    }
    let mut tasks = Vec::new();
    for (i, token) in consumers.iter().enumerate() {
        for (node, base) in [(0, a.base.clone()), (1, b.base.clone())] {
            let (client, token, qr) = (a.client.clone(), token.clone(), shop.qr.clone());
            tasks.push(tokio::spawn(async move {
                let mut ok = 0i64;
                for n in 0..25 {
                    let amount = 1 + (i * 7 + n + node) as i64;
                    let r = client
                        .post(format!("{base}/v1/payments"))
                        .bearer_auth(&token)
                        .json(&json!({"qr": qr, "amount": amount, "currency": "CNY"}))
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(r.status(), StatusCode::CREATED);
                    ok += amount;
                }
                ok
            }));
        }
    }
    let mut total = 0;
    for t in tasks {
        total += t.await.unwrap();
    }
    assert_eq!(a.count("payments").await, 8 * 2 * 25);
    let mut wallets = 0;
    for token in &consumers {
        wallets += a.balance(token).await;
    }
    assert_eq!(wallets, 8 * 100_000 - total);
    a.assert_ledger_verifies().await;
    b.stop().await;
}

/// The batches made again from locked reads so far, in this test process (the metrics are
/// process-wide).
async fn batches_rerun(app: &TestApp) -> f64 {
    counter(app, "sequencer_batches_rerun").await
}

/// A counter's value so far, in this test process.
async fn counter(app: &TestApp, name: &str) -> f64 {
    app.metrics()
        .await
        .lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn a_node_never_pays_or_declines_on_balances_another_node_has_moved_since() {
    if backend() != "postgres" {
        // Several nodes share one database only on PostgreSQL.
        return;
    }
    let a = spawn_app().await;
    let b = a.second_node().await;
    let reruns_before = batches_rerun(&a).await;
    let shop = a.shop("Kept Balances Cafe").await;
    let me = a.funded_consumer("13700000031", 1_000).await;
    // Node a pays twice: afterwards it keeps the wallet's and the merchant's balances, and
    // its next batch starts from them without reading them.
    for amount in [500, 500] {
        let r = pay(&a, &me, &shop.qr, amount).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    // b tops the wallet up: a, which kept it empty, must take a payment only that covers.
    b.top_up(&me, 10_000).await;
    let r = pay(&a, &me, &shop.qr, 1_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(a.balance(&me).await, 9_000);
    // b empties most of the wallet: a, which keeps 9,000, must decline, 500 being left.
    let r = pay(&b, &me, &shop.qr, 8_500).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = pay(&a, &me, &shop.qr, 4_000).await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    assert_eq!(a.balance(&me).await, 500);
    // And a payment that fits goes through on a, from the stored balances.
    let r = pay(&a, &me, &shop.qr, 500).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(a.balance(&me).await, 0);
    assert_eq!(a.count("payments").await, 5);
    // Both wrong turns were taken and made again: the decline on the kept empty wallet and the
    // payment from the kept 9,000 (other tests in this process may add to the count).
    assert!(batches_rerun(&a).await >= reruns_before + 2.0);
    // Both nodes pay into one merchant; a settlement on a moves what both collected.
    let (pending, available) = a.merchant_balances(&shop).await;
    assert_eq!(available, 0);
    let path = format!("/v1/admin/merchants/{}/settlements", shop.merchant);
    let s = a.post(&path, json!({}), Some(&shop.operator)).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    assert_eq!(s.body["amount"], pending);
    let other = b.funded_consumer("13700000032", 2_000).await;
    let r = pay(&b, &other, &shop.qr, 2_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let (pending, _) = a.merchant_balances(&shop).await;
    assert!(pending > 0);
    let s = a.post(&path, json!({}), Some(&shop.operator)).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    assert_eq!(s.body["amount"], pending, "{}", s.body);
    assert_eq!(a.merchant_balances(&shop).await.0, 0);
    a.assert_ledger_verifies().await;
    b.stop().await;
}

#[tokio::test]
async fn settlement_makes_collected_money_available_and_the_owner_pays_it_out() {
    let app = spawn_app().await;
    let shop = app.shop("Settle Cafe").await;
    let me = app.funded_consumer("13700000020", 10_000).await;
    pay(&app, &me, &shop.qr, 10_000).await;
    let path = format!("/v1/admin/merchants/{}/settlements", shop.merchant);
    assert_eq!(
        app.post(&path, json!({}), Some(&shop.owner)).await.status,
        StatusCode::FORBIDDEN
    );
    let s = app.post(&path, json!({}), Some(&shop.operator)).await;
    assert_eq!(s.status, StatusCode::CREATED, "{}", s.body);
    assert_eq!(s.body["amount"], 9_940);
    let b = app.merchant_balance(&shop).await;
    assert_eq!(
        (b["pending"].as_i64(), b["available"].as_i64()),
        (Some(0), Some(9_940))
    );
    // Nothing left: a second settlement moves nothing.
    let s = app.post(&path, json!({}), Some(&shop.operator)).await;
    assert_eq!(s.body["amount"], 0);
    let payouts = format!("/v1/merchants/{}/payouts", shop.merchant);
    let r = app
        .post(
            &payouts,
            json!({"amount": 9_941, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    let r = app
        .post(
            &payouts,
            json!({"amount": 9_000, "currency": "CNY"}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app
        .post(
            &payouts,
            json!({"amount": 9_000, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["available"], 940, "{}", r.body);
    // The bank's notification of the payout settles nothing again (and is not taken for a
    // wallet's).
    let charge = app
        .state
        .sandbox
        .find(r.body["id"].as_str().unwrap())
        .await
        .unwrap();
    let n = app.state.provider.notification_for(&charge);
    assert_eq!(notify(&app, &n).await, StatusCode::CREATED);
    assert_eq!(app.merchant_balance(&shop).await["available"], 940);
    // The bank was asked to pay it out, once.
    let paid = app.state.sandbox.charges_of(&shop.merchant).await;
    assert_eq!(paid.len(), 1, "{paid:?}");
    assert_eq!(
        (
            paid[0].amount,
            paid[0].direction,
            paid[0].reference.as_str()
        ),
        (9_000, Direction::Out, r.body["id"].as_str().unwrap())
    );
    // A payout begun as a request would begin it, whose request then stopped (the server went
    // down) before the bank heard of it: its money is held meanwhile, then released once the
    // bank's record shows no such payout.
    let held = o2o_server::payments::engine::Op::Payout {
        payout_id: "po_unanswered".into(),
        merchant_id: shop.merchant.clone(),
        amount: 500,
        currency: o2o_ledger::Currency::CNY,
        provider: app.state.provider.name(),
        request_key: None,
    };
    app.state.payments.run(held, None).await.unwrap();
    assert_eq!(app.merchant_balance(&shop).await["available"], 440);
    let r = app
        .post(
            &payouts,
            json!({"amount": 441, "currency": "CNY"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::PAYMENT_REQUIRED, "{}", r.body);
    use o2o_server::payments::service::sweep_movements;
    assert_eq!(sweep_movements(&app.state, 0).await.unwrap(), 1);
    assert_eq!(app.merchant_balance(&shop).await["available"], 940);
    // The bank closed the order before the hold was released: it paid out only the first.
    let statuses: Vec<ChargeStatus> = app
        .state
        .sandbox
        .charges_of(&shop.merchant)
        .await
        .into_iter()
        .map(|c| c.status)
        .collect();
    assert_eq!(statuses, [ChargeStatus::Succeeded, ChargeStatus::Failed]);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn each_business_day_settles_what_was_collected_before_it_once() {
    let app = spawn_app().await;
    let shop = app.shop("Daily Settle Cafe").await;
    let idle = app.shop("Idle Cafe").await;
    let me = app.funded_consumer("13700000021", 20_000).await;
    let r = pay(&app, &me, &shop.qr, 10_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // This payment was taken yesterday (its transfers are moved back two days)...
    let yesterday = r.body["id"].as_str().unwrap().to_owned();
    let moved = app
        .state
        .db
        .execute(
            o2o_server::db::query(
                "UPDATE ledger_transfers SET created_at = created_at - 172800000000 WHERE reference = $1",
            )
            .bind(yesterday),
        )
        .await
        .unwrap();
    assert_eq!(moved, 2, "the payment and its fee");
    // ...and this one today (after the moment the sweeps below take as now).
    let today = jiff::Timestamp::now();
    let r = pay(&app, &me, &shop.qr, 5_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(app.merchant_balances(&shop).await, (14_910, 0));
    // Today's sweep settles yesterday's takings (T+1) and keeps today's, however often it runs.
    for _ in 0..3 {
        assert_eq!(
            app.settlement_sweep(today).await,
            1,
            "one merchant had something to settle"
        );
        assert_eq!(app.merchant_balances(&shop).await, (4_970, 9_940));
    }
    assert_eq!(app.merchant_balances(&idle).await, (0, 0));
    // Tomorrow's settles today's.
    let tomorrow = today + jiff::SignedDuration::from_hours(24);
    assert_eq!(app.settlement_sweep(tomorrow).await, 1);
    assert_eq!(app.merchant_balances(&shop).await, (0, 14_910));
    let after = tomorrow + jiff::SignedDuration::from_hours(24);
    assert_eq!(
        app.settlement_sweep(after).await,
        0,
        "nothing left to settle"
    );
    assert_eq!(app.merchant_balances(&shop).await, (0, 14_910));
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_merchant_settles_by_the_days_of_the_time_zone_its_owner_sets() {
    let app = spawn_app().await;
    let shop = app.shop("Island Cafe").await;
    let me = app.funded_consumer("13700000022", 20_000).await;
    let r = pay(&app, &me, &shop.qr, 10_000).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Taken at 23:00 in Shanghai (its store's zone), 05:00 the same day in Honolulu.
    let taken: jiff::Timestamp = "2026-06-01T15:00:00Z".parse().unwrap();
    let moved = app
        .state
        .db
        .execute(
            o2o_server::db::query(
                "UPDATE ledger_transfers SET created_at = $1 WHERE reference = $2",
            )
            .bind(taken.as_microsecond())
            .bind(r.body["id"].as_str().unwrap()),
        )
        .await
        .unwrap();
    assert_eq!(moved, 2, "the payment and its fee");
    // Two hours later it is the next day in Shanghai, still the same one in Honolulu.
    let sweep_at = taken + jiff::SignedDuration::from_hours(2);
    let path = format!("/v1/merchants/{}", shop.merchant);

    // Bad input changes nothing; only the owner may set it.
    for bad in [
        json!({"timezone": "Mars/Olympus"}),
        json!({"timezone": ""}),
        json!({"timezone": 8}),
        json!({"tz": "Asia/Shanghai"}),
    ] {
        let r = app.patch(&path, bad.clone(), Some(&shop.owner)).await;
        assert_eq!(r.status, StatusCode::BAD_REQUEST, "{bad}: {}", r.body);
    }
    let r = app
        .patch(
            &path,
            json!({"timezone": "Pacific/Honolulu"}),
            Some(&shop.cashier),
        )
        .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = app.get(&path, Some(&shop.owner)).await;
    assert_eq!(r.body["timezone"], Value::Null, "{}", r.body);

    // Counted in Honolulu, the payment was taken today: nothing settles yet.
    let r = app
        .patch(
            &path,
            json!({"timezone": "Pacific/Honolulu"}),
            Some(&shop.owner),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["timezone"], "Pacific/Honolulu");
    assert_eq!(
        app.get(&path, Some(&shop.owner)).await.body["timezone"],
        "Pacific/Honolulu"
    );
    assert_eq!(app.settlement_sweep(sweep_at).await, 0);
    assert_eq!(app.merchant_balances(&shop).await, (9_940, 0));

    // Cleared, the days are the store's again: in Shanghai it was yesterday's, so it settles.
    let r = app
        .patch(&path, json!({"timezone": null}), Some(&shop.owner))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["timezone"], Value::Null);
    assert_eq!(app.settlement_sweep(sweep_at).await, 1);
    assert_eq!(app.merchant_balances(&shop).await, (0, 9_940));
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_full_sequencer_queue_answers_503_with_retry_after_and_refused_payments_move_nothing() {
    // A queue of one command: a burst of payments finds it full while a batch commits.
    let app = spawn_app_with(|c| c.sequencer_queue = 1).await;
    let shop = app.shop("Busy Cafe").await;
    let start = 1_000_000;
    let me = app.funded_consumer("13700000310", start).await;
    let body = json!({"qr": shop.qr, "amount": 100, "currency": "CNY"});
    let mut accepted = 0;
    let mut refused: Vec<String> = Vec::new();
    // Rounds of concurrent payments until some are refused (the first round nearly always).
    for round in 0..20 {
        let burst = (0..48).map(|i| {
            let key = format!("flood-{round}-{i}");
            let body = body.clone();
            let (app, me) = (&app, &me);
            async move {
                let r = app.post_idem("/v1/payments", body, Some(me), &key).await;
                (key, r)
            }
        });
        for (key, r) in futures::future::join_all(burst).await {
            match r.status {
                StatusCode::CREATED => {
                    assert_eq!(r.body["status"], "succeeded", "{}", r.body);
                    accepted += 1;
                }
                StatusCode::SERVICE_UNAVAILABLE => {
                    assert_eq!(r.code(), "overloaded", "{}", r.body);
                    assert_eq!(r.body["error"]["type"], "unavailable", "{}", r.body);
                    let retry_after: u64 = r.headers["retry-after"]
                        .to_str()
                        .unwrap()
                        .parse()
                        .expect("Retry-After in seconds");
                    assert!(retry_after >= 1);
                    refused.push(key);
                }
                other => panic!("a flooded payment answered {other}: {}", r.body),
            }
        }
        if !refused.is_empty() {
            break;
        }
    }
    assert!(
        !refused.is_empty(),
        "a queue of one command refused nothing"
    );
    assert!(accepted > 0, "a queue of one command accepted nothing");
    // Every accepted payment moved money once; the refused ones moved nothing.
    assert_eq!(app.balance(&me).await, start - 100 * accepted);
    assert_eq!(app.count("payments").await, accepted);
    app.assert_ledger_verifies().await;

    // A refused payment left nothing under its key: retried one at a time, each pays once.
    for key in &refused {
        let r = app
            .post_idem("/v1/payments", body.clone(), Some(&me), key)
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    }
    let total = accepted + refused.len() as i64;
    assert_eq!(app.balance(&me).await, start - 100 * total);
    assert_eq!(app.count("payments").await, total);
    app.assert_ledger_verifies().await;
}

/// On SQLite, a payment is answered only after the WAL holding it was flushed to the disk (the
/// writer commits without waiting; the sequencer's syncer flushes, then answers).
#[tokio::test]
async fn a_payment_is_answered_after_its_commit_is_flushed_to_disk() {
    let app = spawn_app().await;
    let Some(wal) = app.wal() else {
        return;
    };
    let shop = app.shop("Durable Cafe").await;
    let me = app.funded_consumer("13700000420", 10_000).await;
    for amount in [100, 250, 375] {
        let before = wal.syncs();
        let r = pay(&app, &me, &shop.qr, amount).await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        assert!(wal.syncs() > before, "the WAL was synced before the answer");
    }
    // Ordinary transactions sync before they return too.
    let before = wal.syncs();
    app.store(&shop.merchant, &shop.owner, "Second store", 31.23, 121.47)
        .await;
    assert!(wal.syncs() > before);
    // A read that finds a recent change answers only once it is on the disk too (another
    // connection sees a commit a moment before its sync returns).
    let r = pay(&app, &me, &shop.qr, 120).await;
    let id = r.body["id"].as_str().unwrap().to_owned();
    for path in [
        format!("/v1/payments/{id}"),
        "/v1/payments".to_owned(),
        "/v1/wallet".to_owned(),
    ] {
        let before = wal.syncs();
        let r = app.get(&path, Some(&me)).await;
        assert_eq!(r.status, StatusCode::OK, "{path}: {}", r.body);
        assert!(wal.syncs() > before, "{path}: synced before the answer");
    }
    app.assert_ledger_verifies().await;
}
