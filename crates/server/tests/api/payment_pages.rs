//! The payment pages: the consumer's pay form behind a store's printed code, the wallet, the
//! cashier's counter and its live announcements, the console's balance and CSV statement.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::Value;
use std::time::Duration;

/// The short id at the end of a printed code's URL.
fn short_of(url: &str) -> &str {
    url.rsplit('/').next().unwrap()
}

async fn post_form(
    app: &TestApp,
    path: &str,
    session: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    let r = app
        .client
        .post(app.url(path))
        .header("cookie", page_cookies(session))
        .form(form)
        .send()
        .await
        .unwrap();
    page_reply(r).await
}

#[tokio::test]
async fn a_bad_amount_on_the_pay_form_is_refused_with_a_message_and_moves_nothing() {
    let app = spawn_app().await;
    let shop = app.shop("Form Cafe").await;
    let me = app.funded_consumer("13700000011", 10_000).await;
    let path = format!("/q/{}/pay", short_of(&shop.qr));
    for bad in [
        "",
        "abc",
        "0",
        "0.00",
        "25.001",
        "-1",
        "1e3",
        "25,00",
        "99999999999999",
    ] {
        let (status, _, html) =
            post_form(&app, &path, &me, &[("csrf", PAGE_CSRF), ("amount", bad)]).await;
        assert!(status.is_client_error(), "{bad:?}: {status}");
        assert!(html.contains("data-test=\"error\""), "{bad:?}: {html}");
        assert!(html.contains("data-test=\"pay-form\""), "{bad:?}");
    }
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.balance(&me).await, 10_000);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_pay_form_without_its_csrf_token_is_refused_and_moves_nothing() {
    let app = spawn_app().await;
    let shop = app.shop("Csrf Cafe").await;
    let me = app.funded_consumer("13700000012", 10_000).await;
    let path = format!("/q/{}/pay", short_of(&shop.qr));
    for csrf in ["", "forged-token-forged-token-0000"] {
        let (status, _, _) =
            post_form(&app, &path, &me, &[("csrf", csrf), ("amount", "25.00")]).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
    }
    // No PAGE_CSRF cookie at all: refused too.
    let r = app
        .client
        .post(app.url(&path))
        .header("cookie", format!("o2o_session={me}"))
        .form(&[("csrf", PAGE_CSRF), ("amount", "25.00")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.balance(&me).await, 10_000);
}

#[tokio::test]
async fn the_pay_form_pays_exactly_and_shows_the_receipt() {
    let app = spawn_app().await;
    let shop = app.shop("Receipt Cafe").await;
    let me = app.funded_consumer("13700000013", 10_000).await;
    let path = format!("/q/{}/pay", short_of(&shop.qr));
    let (status, location, _) = post_form(
        &app,
        &path,
        &me,
        &[("csrf", PAGE_CSRF), ("amount", "25.10")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert!(location.starts_with("/me/payments/pay_"), "{location}");
    assert_eq!(app.balance(&me).await, 10_000 - 2_510);
    let (status, html) = get_page(&app, &location, &me).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("¥25.10"), "{html}");
    assert!(html.contains("Receipt Cafe"), "{html}");
    // Someone else's receipt is not found.
    let other = app.funded_consumer("13700000014", 0).await;
    let (status, _) = get_page(&app, &location, &other).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn a_short_wallet_is_refused_with_a_top_up_link_and_a_guest_logs_in_first() {
    let app = spawn_app().await;
    let shop = app.shop("Short Cafe").await;
    let me = app.funded_consumer("13700000015", 1_000).await;
    let short = short_of(&shop.qr);
    let path = format!("/q/{short}/pay");
    let (status, _, html) = post_form(
        &app,
        &path,
        &me,
        &[("csrf", PAGE_CSRF), ("amount", "25.00")],
    )
    .await;
    assert_eq!(status, StatusCode::PAYMENT_REQUIRED);
    assert!(html.contains("data-test=\"top-up-link\""), "{html}");
    assert_eq!(app.count("payments").await, 0);
    assert_eq!(app.balance(&me).await, 1_000);
    // No session: log in first, then back to the code.
    let r = app
        .client
        .post(app.url(&path))
        .header("cookie", format!("o2o_csrf={PAGE_CSRF}"))
        .form(&[("csrf", PAGE_CSRF), ("amount", "25.00")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(r.headers()["location"], format!("/login?next=/q/{short}"));
    // The wallet page tops up from the sandbox bank.
    let (status, location, _) = post_form(
        &app,
        "/me/wallet/top-ups",
        &me,
        &[
            ("csrf", PAGE_CSRF),
            ("amount", "30"),
            ("next", &format!("/q/{short}")),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(location, format!("/q/{short}"));
    assert_eq!(app.balance(&me).await, 4_000);
    let (status, html) = get_page(&app, "/me/wallet", &me).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        html.contains("¥40.00") && html.contains("+¥30.00"),
        "{html}"
    );
}

#[tokio::test]
async fn the_counter_takes_cash_announces_payments_live_and_refunds() {
    let app = spawn_app().await;
    let shop = app.shop("Counter Cafe").await;
    let (status, html) = get_page(&app, "/console/counter", &shop.cashier).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"counter-form\""), "{html}");

    // The live stream of the store: a consumer's payment arrives as an announcement.
    let mut stream = app
        .client
        .get(app.url(&format!("/console/counter/events?store_id={}", shop.store)))
        .header("cookie", page_cookies(&shop.cashier))
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(
        stream.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/event-stream")
    );
    let me = app.funded_consumer("13700000016", 10_000).await;
    let (status, _, _) = post_form(
        &app,
        &format!("/q/{}/pay", short_of(&shop.qr)),
        &me,
        &[("csrf", PAGE_CSRF), ("amount", "25.00")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let mut received = String::new();
    while !received.contains("Payment received ¥25.00") {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("an announcement within 5 s")
            .unwrap()
            .expect("the stream is open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(received.contains("event: payment"), "{received}");

    // Cash, then a refund of part of it from the counter.
    let store_id = shop.store.clone();
    let (status, location, body) = post_form(
        &app,
        "/console/counter/payments",
        &shop.cashier,
        &[
            ("csrf", PAGE_CSRF),
            ("store_id", &store_id),
            ("amount", "8.80"),
            ("pay_code", ""),
            ("method", "cash"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(location, format!("/console/counter?store_id={store_id}"));
    assert_eq!(app.count("payments").await, 2);
    let (_, html) = get_page(&app, &location, &shop.cashier).await;
    assert!(html.contains("¥8.80") && html.contains("¥25.00"), "{html}");

    // A made-up pay code is refused with a message.
    let (status, _, html) = post_form(
        &app,
        "/console/counter/payments",
        &shop.cashier,
        &[
            ("csrf", PAGE_CSRF),
            ("store_id", &store_id),
            ("amount", "1.00"),
            ("pay_code", "12345"),
            ("method", "pay_code"),
        ],
    )
    .await;
    assert!(status.is_client_error(), "{status}");
    assert!(html.contains("data-test=\"error\""), "{html}");
    assert_eq!(app.count("payments").await, 2);

    let list = app.get("/v1/payments", Some(&shop.cashier)).await;
    let paid = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["source"] == "wallet")
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (status, _, body) = post_form(
        &app,
        "/console/counter/refunds",
        &shop.cashier,
        &[
            ("csrf", PAGE_CSRF),
            ("store_id", &store_id),
            ("payment", &paid),
            ("amount", "5.00"),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(app.balance(&me).await, 10_000 - 2_500 + 500);
    // The rest.
    let (status, _, body) = post_form(
        &app,
        "/console/counter/refunds",
        &shop.cashier,
        &[
            ("csrf", PAGE_CSRF),
            ("store_id", &store_id),
            ("payment", &paid),
            ("amount", ""),
        ],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(app.balance(&me).await, 10_000);
    drop(stream);
    app.assert_ledger_verifies().await;
}

#[tokio::test]
async fn the_balance_page_and_csv_are_for_managers() {
    let app = spawn_app().await;
    let shop = app.shop("Ledger Cafe").await;
    let (status, html) = get_page(&app, "/console/balance", &shop.owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"statement\""), "{html}");
    let (status, _) = get_page(&app, "/console/balance?date=not-a-date", &shop.owner).await;
    assert_eq!(status, StatusCode::OK);
    let (status, csv) = get_page(
        &app,
        "/console/balance/statements/2026-01-02.csv",
        &shop.owner,
    )
    .await;
    assert_eq!(status, StatusCode::OK);
    assert!(csv.starts_with("merchant_id,date,currency,gross"), "{csv}");
    let (status, _) = get_page(&app, "/console/balance", &shop.cashier).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
}

#[tokio::test]
async fn the_owner_sets_the_settlement_time_zone_on_the_balance_page() {
    let app = spawn_app().await;
    let shop = app.shop("Zone Cafe").await;
    let path = format!("/v1/merchants/{}", shop.merchant);
    let (status, html) = get_page(&app, "/console/balance", &shop.owner).await;
    assert_eq!(status, StatusCode::OK);
    assert!(html.contains("data-test=\"timezone-input\""), "{html}");
    // A zone that does not exist: back with the reason, nothing set.
    let (status, location, body) = post_form(
        &app,
        "/console/balance/timezone",
        &shop.owner,
        &[("csrf", PAGE_CSRF), ("timezone", "Mars/Olympus")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert!(
        location.starts_with("/console/balance?timezone_error="),
        "{location}"
    );
    let (_, html) = get_page(&app, &location, &shop.owner).await;
    assert!(html.contains("data-test=\"timezone-error\""), "{html}");
    assert_eq!(
        app.get(&path, Some(&shop.owner)).await.body["timezone"],
        Value::Null
    );
    // Without the form's token, or from a cashier: refused, nothing set.
    let (status, _, _) = post_form(
        &app,
        "/console/balance/timezone",
        &shop.owner,
        &[("csrf", "wrong"), ("timezone", "Asia/Tokyo")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _, _) = post_form(
        &app,
        "/console/balance/timezone",
        &shop.cashier,
        &[("csrf", PAGE_CSRF), ("timezone", "Asia/Tokyo")],
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(
        app.get(&path, Some(&shop.owner)).await.body["timezone"],
        Value::Null
    );
    // Set, shown, then cleared (empty: the first store's zone again).
    let (status, location, body) = post_form(
        &app,
        "/console/balance/timezone",
        &shop.owner,
        &[("csrf", PAGE_CSRF), ("timezone", " Asia/Tokyo ")],
    )
    .await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/console/balance"),
        "{body}"
    );
    assert_eq!(
        app.get(&path, Some(&shop.owner)).await.body["timezone"],
        "Asia/Tokyo"
    );
    let (_, html) = get_page(&app, "/console/balance", &shop.owner).await;
    assert!(html.contains("value=\"Asia/Tokyo\""), "{html}");
    let (status, _, _) = post_form(
        &app,
        "/console/balance/timezone",
        &shop.owner,
        &[("csrf", PAGE_CSRF), ("timezone", "")],
    )
    .await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    assert_eq!(
        app.get(&path, Some(&shop.owner)).await.body["timezone"],
        Value::Null
    );
}

#[tokio::test]
async fn a_live_stream_ends_when_the_server_shuts_down() {
    let app = spawn_app().await;
    let shop = app.shop("Quiet Cafe").await;
    let mut stream = app
        .client
        .get(app.url(&format!("/console/counter/events?store_id={}", shop.store)))
        .header("cookie", page_cookies(&shop.cashier))
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    tokio::time::timeout(Duration::from_secs(10), app.stop())
        .await
        .expect("the server stops with a live stream open");
    let end = tokio::time::timeout(Duration::from_secs(5), async {
        while let Ok(Some(_)) = stream.chunk().await {}
    })
    .await;
    assert!(end.is_ok(), "the stream did not end");
}

#[tokio::test]
async fn a_pay_form_sent_twice_pays_once() {
    let app = spawn_app().await;
    let shop = app.shop("Twice Cafe").await;
    let me = app.funded_consumer("13700000017", 10_000).await;
    let path = format!("/q/{}/pay", short_of(&shop.qr));
    let form = [
        ("csrf", PAGE_CSRF),
        ("amount", "25.00"),
        ("key", "double-tap-key-0123456789"),
    ];
    let (first_status, first, _) = post_form(&app, &path, &me, &form).await;
    let (second_status, second, _) = post_form(&app, &path, &me, &form).await;
    assert_eq!(first_status, StatusCode::SEE_OTHER);
    assert_eq!(second_status, StatusCode::SEE_OTHER);
    assert_eq!(first, second, "the second send shows the same receipt");
    assert_eq!(app.count("payments").await, 1);
    assert_eq!(app.balance(&me).await, 7_500);
    app.assert_ledger_verifies().await;
}
