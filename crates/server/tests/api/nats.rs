//! Events between nodes over NATS JetStream: a payment committed on one node is announced on a
//! cashier's counter connected to another, each node hears every event once, and a NATS server
//! that is away stops no payment. The tests that need a NATS server use `O2O_TEST_NATS_URL`
//! (scripts/test's pg leg sets it when one answers) and say so when it is unset.

use crate::helpers::*;
use reqwest::StatusCode;
use serde_json::json;
use std::time::Duration;

const CSRF: &str = "page-test-csrf-token-0123456789";

/// The NATS server for these tests, if one is configured.
fn nats_url() -> Option<String> {
    let url = std::env::var("O2O_TEST_NATS_URL")
        .ok()
        .filter(|u| !u.is_empty());
    if url.is_none() {
        eprintln!("skipped: O2O_TEST_NATS_URL is unset (no NATS server to test against)");
    }
    url
}

async fn wait_bridged(app: &TestApp) {
    let bridge = app.state.nats.as_ref().expect("the NATS bridge is on");
    assert!(
        bridge.wait_ready(Duration::from_secs(10)).await,
        "the NATS bridge of {} did not start reading",
        app.base
    );
}

async fn pay(app: &TestApp, consumer: &str, shop: &Shop, amount: i64) -> String {
    let r = app
        .post(
            "/v1/payments",
            json!({"qr": shop.qr, "amount": amount, "currency": "CNY"}),
            Some(consumer),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    r.body["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_payment_through_one_node_is_announced_on_a_counter_connected_to_another() {
    let Some(url) = nats_url() else { return };
    if backend() != "postgres" {
        // Two nodes share one database only on PostgreSQL (SQLite is one node's embedded
        // store); the bridge itself is tested on SQLite by the next test.
        eprintln!("runs on PostgreSQL only: two nodes need a shared database");
        return;
    }
    let node_a = spawn_app_with(|c| c.nats_url = Some(url.clone())).await;
    let node_b = node_a.second_node().await;
    wait_bridged(&node_a).await;
    wait_bridged(&node_b).await;
    assert_ne!(
        node_a.state.nats.as_ref().unwrap().node_id(),
        node_b.state.nats.as_ref().unwrap().node_id()
    );
    let shop = node_a.shop("Bridge Cafe").await;

    // The cashier's counter is open on node A.
    let mut stream = node_a
        .client
        .get(node_a.url(&format!("/console/counter/events?store_id={}", shop.store)))
        .header(
            "cookie",
            format!("o2o_session={}; o2o_csrf={CSRF}", shop.cashier),
        )
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    assert_eq!(stream.status(), StatusCode::OK);

    // The consumer's phone reached node B.
    let me = node_b.funded_consumer("13700000301", 10_000).await;
    let payment = pay(&node_b, &me, &shop, 2500).await;
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
    assert!(received.contains(&payment), "{received}");
    // Announced once: node A did not also hear node B's event some other way.
    tokio::time::sleep(Duration::from_millis(700)).await;
    if let Ok(Ok(Some(more))) =
        tokio::time::timeout(Duration::from_millis(300), stream.chunk()).await
    {
        received.push_str(&String::from_utf8_lossy(&more));
    }
    assert_eq!(received.matches(&payment).count(), 1, "{received}");
    assert_eq!(node_a.balance(&me).await, 7_500);
    drop(stream);
    node_b.stop().await;
    node_a.assert_ledger_verifies().await;
}

#[tokio::test]
async fn each_node_hears_its_own_events_once_and_the_other_nodes_events_once() {
    let Some(url) = nats_url() else { return };
    // Two platforms with their own databases on one NATS server: the bridge alone carries
    // events between them.
    let node_a = spawn_app_with(|c| c.nats_url = Some(url.clone())).await;
    let node_b = spawn_app_with(|c| c.nats_url = Some(url.clone())).await;
    wait_bridged(&node_a).await;
    wait_bridged(&node_b).await;
    let mut heard = node_a.state.bus.subscribe();
    let shop_a = node_a.shop("Near Cafe").await;
    let shop_b = node_b.shop("Far Cafe").await;
    let payer_a = node_a.funded_consumer("13700000302", 5_000).await;
    let payer_b = node_b.funded_consumer("13700000303", 5_000).await;
    let local = pay(&node_a, &payer_a, &shop_a, 1_200).await;
    let remote = pay(&node_b, &payer_b, &shop_b, 3_400).await;

    let mut seen: Vec<(String, bool, String)> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut quiet_until = None;
    loop {
        let until = quiet_until.unwrap_or(deadline);
        match tokio::time::timeout_at(until, heard.recv()).await {
            Ok(Ok(e)) if e.kind == "payment.succeeded" => {
                let id = e.field_str("id").unwrap_or_default().to_owned();
                if id == local || id == remote {
                    seen.push((id, e.remote, e.merchant_id.clone()));
                }
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the bus failed: {e}"),
            Err(_) => break,
        }
        let both = seen.iter().any(|s| s.0 == local) && seen.iter().any(|s| s.0 == remote);
        if both && quiet_until.is_none() {
            // Listen a little longer for repeats.
            quiet_until = Some(tokio::time::Instant::now() + Duration::from_millis(800));
        }
    }
    assert_eq!(
        seen,
        vec![
            (local.clone(), false, shop_a.merchant.clone()),
            (remote.clone(), true, shop_b.merchant.clone()),
        ],
        "node A hears its own payment once from itself and node B's once over NATS"
    );
    node_b.stop().await;
    node_a.assert_ledger_verifies().await;
}

#[tokio::test]
async fn payments_go_on_when_the_nats_server_is_away() {
    // Nothing listens on this port: the bridge keeps trying in the background.
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let app = spawn_app_with(|c| c.nats_url = Some(format!("nats://127.0.0.1:{port}"))).await;
    let shop = app.shop("Offline Cafe").await;
    let me = app.funded_consumer("13700000304", 10_000).await;
    let mut stream = app
        .client
        .get(app.url(&format!("/console/counter/events?store_id={}", shop.store)))
        .header(
            "cookie",
            format!("o2o_session={}; o2o_csrf={CSRF}", shop.cashier),
        )
        .header("accept-language", "en")
        .send()
        .await
        .unwrap();
    for _ in 0..3 {
        pay(&app, &me, &shop, 1_000).await;
    }
    assert_eq!(app.balance(&me).await, 7_000);
    // The node's own counter still hears its payments.
    let mut received = String::new();
    while received.matches("Payment received ¥10.00").count() < 3 {
        let chunk = tokio::time::timeout(Duration::from_secs(5), stream.chunk())
            .await
            .expect("announcements within 5 s")
            .unwrap()
            .expect("the stream is open");
        received.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!app.state.nats.as_ref().unwrap().is_ready());
    drop(stream);
    app.assert_ledger_verifies().await;
}

/// A `nats-server -js` this test runs itself (on `port`, keeping its stream in `dir`), stopped
/// when dropped.
struct OwnNats(std::process::Child);

impl OwnNats {
    fn start(port: u16, dir: &std::path::Path) -> Option<OwnNats> {
        let bin = [
            "nats-server",
            "/usr/sbin/nats-server",
            "/usr/bin/nats-server",
        ]
        .into_iter()
        .find(|b| {
            std::process::Command::new(b)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })?;
        let child = std::process::Command::new(bin)
            .args(["-js", "-a", "127.0.0.1", "-p", &port.to_string(), "-sd"])
            .arg(dir)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .ok()?;
        let own = OwnNats(child);
        // Ready once it takes connections.
        for _ in 0..100 {
            if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
                return Some(own);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for OwnNats {
    /// Stops the server as an operator would (SIGTERM, so it writes out its stream), then makes
    /// sure it is gone.
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..100 {
            if matches!(self.0.try_wait(), Ok(Some(_))) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn what_a_node_commits_while_nats_is_down_reaches_the_other_node_when_it_returns() {
    // NATS comes back with its stream: the client may also have kept the messages it could not
    // send and sent them on reconnecting.
    outage(false, "13700000305").await;
}

#[tokio::test]
async fn what_a_node_commits_while_nats_is_down_reaches_the_other_node_after_the_stream_is_lost() {
    // NATS comes back empty (its store lost): whatever the client kept and sent on reconnecting
    // found no stream and was lost, so only the bridge's own publishing again, after it has
    // made the stream anew, can deliver these payments.
    outage(true, "13700000306").await;
}

/// Node A takes three payments while NATS is down; once NATS is back (with the stream it had,
/// or with none when `lose_store`), node B hears each of them once.
async fn outage(lose_store: bool, phone: &str) {
    // Runs with the other NATS tests, on a server of its own that it stops and starts again.
    if nats_url().is_none() {
        return;
    }
    let port = {
        let probe = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        probe.local_addr().unwrap().port()
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(nats) = OwnNats::start(port, dir.path()) else {
        eprintln!("skipped: no nats-server to start and stop");
        return;
    };
    let url = format!("nats://127.0.0.1:{port}");
    let node_a = spawn_app_with(|c| c.nats_url = Some(url.clone())).await;
    let node_b = spawn_app_with(|c| c.nats_url = Some(url.clone())).await;
    wait_bridged(&node_a).await;
    wait_bridged(&node_b).await;
    let shop = node_a.shop("Outage Cafe").await;
    let me = node_a.funded_consumer(phone, 10_000).await;
    let mut heard = node_b.state.bus.subscribe();

    // NATS goes away; node A takes payments meanwhile.
    drop(nats);
    let mut paid = Vec::new();
    for _ in 0..3 {
        paid.push(pay(&node_a, &me, &shop, 1_000).await);
    }
    assert_eq!(node_a.balance(&me).await, 7_000);

    // It comes back on the same port: node B hears each of those payments, once.
    let fresh = tempfile::tempdir().unwrap();
    let store = if lose_store { fresh.path() } else { dir.path() };
    let nats = OwnNats::start(port, store).expect("nats-server starts again");
    let mut seen: Vec<String> = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let mut quiet_until = None;
    loop {
        match tokio::time::timeout_at(quiet_until.unwrap_or(deadline), heard.recv()).await {
            Ok(Ok(e)) if e.kind == "payment.succeeded" => {
                assert!(e.remote, "node B took no payment itself");
                seen.push(e.field_str("id").unwrap_or_default().to_owned());
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => panic!("the bus failed: {e}"),
            Err(_) => break,
        }
        if seen.len() >= paid.len() && quiet_until.is_none() {
            // Listen a little longer for repeats.
            quiet_until = Some(tokio::time::Instant::now() + Duration::from_millis(1_500));
        }
    }
    seen.sort();
    paid.sort();
    assert_eq!(seen, paid, "each payment made during the outage, once");
    drop(nats);
    node_b.stop().await;
    node_a.assert_ledger_verifies().await;
}
