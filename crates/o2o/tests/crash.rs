//! Crash test: run the real `o2o serve`, drive payments, refunds and wallet withdrawals from many
//! clients, kill the server with SIGKILL at random moments, restart it, ten times over.
//! Afterwards every payment a client saw succeed exists exactly once, nothing a client saw
//! declined moved money, the wallets hold exactly what the clients' records say (a withdrawal cut
//! off by a kill holds its money until its retry settles it), and the ledger verifies.
//!
//! Runs on SQLite; with `O2O_TEST_POSTGRES_URL` set, once more on PostgreSQL (in its own schema).

use serde_json::{Value, json};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 10;
const CONSUMERS: usize = 16;
const CLIENTS: usize = 12;
const FUNDS: i64 = 100_000;

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    /// A failing test must not leave its server running.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

async fn start(dir: &std::path::Path, database_url: &str, port: u16) -> Server {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("server.log"))
        .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_o2o"))
        .args(["serve", "--demo", "--listen", &format!("127.0.0.1:{port}")])
        .arg("--data-dir")
        .arg(dir)
        .args(["--database-url", database_url])
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("start o2o serve");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    for _ in 0..300 {
        if let Ok(r) = client.get(format!("{base}/readyz")).send().await
            && r.status().is_success()
        {
            return Server { child, base };
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!(
        "the server did not become ready; log:\n{}",
        std::fs::read_to_string(dir.join("server.log")).unwrap_or_default()
    );
}

async fn post(
    client: &reqwest::Client,
    url: String,
    body: &Value,
    token: &str,
    key: Option<&str>,
) -> reqwest::Result<(u16, Value)> {
    let mut req = client.post(url).json(body).timeout(Duration::from_secs(20));
    if !token.is_empty() {
        req = req.bearer_auth(token);
    }
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await?;
    let status = r.status().as_u16();
    let v = r.json().await.unwrap_or(Value::Null);
    Ok((status, v))
}

#[derive(Clone, Debug, PartialEq)]
enum Seen {
    Succeeded(String),
    Declined,
    Unknown,
}

#[derive(Clone, Debug)]
struct Attempt {
    key: String,
    consumer: usize,
    body: Value,
    kind: Kind,
    seen: Seen,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Payment,
    Refund,
    Withdrawal,
}

struct Fixture {
    qr: String,
    cashier: String,
    consumers: Vec<String>,
}

async fn setup(base: &str) -> Fixture {
    let client = reqwest::Client::new();
    let login = |email: &'static str| {
        let client = client.clone();
        let base = base.to_owned();
        async move {
            let (s, v) = post(
                &client,
                format!("{base}/v1/sessions"),
                &json!({"email": email, "password": "o2o-demo-2026"}),
                "",
                None,
            )
            .await
            .unwrap();
            assert_eq!(s, 201, "{v}");
            v["token"].as_str().unwrap().to_owned()
        }
    };
    let owner = login("owner@lotus.demo").await;
    let cashier = login("cashier@lotus.demo").await;
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let merchant = me["merchant_id"].as_str().unwrap().to_owned();
    let stores: Value = client
        .get(format!("{base}/v1/merchants/{merchant}/stores?limit=1"))
        .bearer_auth(&owner)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let store = stores["data"][0]["id"].as_str().unwrap().to_owned();
    let (s, code) = post(
        &client,
        format!("{base}/v1/qr-codes"),
        &json!({"kind": "store_pay", "store_id": store}),
        &owner,
        None,
    )
    .await
    .unwrap();
    assert_eq!(s, 201, "{code}");
    let mut consumers = Vec::new();
    for _ in 0..CONSUMERS {
        let (s, g) = post(
            &client,
            format!("{base}/v1/sessions/guest"),
            &json!({}),
            "",
            None,
        )
        .await
        .unwrap();
        assert_eq!(s, 201, "{g}");
        let token = g["token"].as_str().unwrap().to_owned();
        let (s, t) = post(
            &client,
            format!("{base}/v1/wallet/top-ups"),
            &json!({"amount": FUNDS, "currency": "CNY"}),
            &token,
            None,
        )
        .await
        .unwrap();
        assert_eq!(s, 201, "{t}");
        consumers.push(token);
    }
    Fixture {
        qr: code["url"].as_str().unwrap().to_owned(),
        cashier,
        consumers,
    }
}

/// GETs `url` as `token`'s holder; answers the JSON body.
async fn get_json(client: &reqwest::Client, url: String, token: &str) -> Value {
    client
        .get(url)
        .bearer_auth(token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// Sends one attempt; classifies what the client saw.
async fn send(client: &reqwest::Client, base: &str, f: &Fixture, a: &Attempt) -> Seen {
    let (path, token) = match a.kind {
        Kind::Refund => ("/v1/refunds", f.cashier.as_str()),
        Kind::Payment => ("/v1/payments", f.consumers[a.consumer].as_str()),
        Kind::Withdrawal => ("/v1/wallet/withdrawals", f.consumers[a.consumer].as_str()),
    };
    match post(
        client,
        format!("{base}{path}"),
        &a.body,
        token,
        Some(&a.key),
    )
    .await
    {
        Ok((201, v)) => Seen::Succeeded(v["id"].as_str().unwrap_or_default().to_owned()),
        Ok((402 | 409, v)) if v["error"]["code"] != "idempotency_key_in_use" => Seen::Declined,
        _ => Seen::Unknown,
    }
}

async fn crash_run(database_url: &str) {
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut server = start(dir.path(), database_url, port).await;
    let fixture = Arc::new(setup(&server.base).await);
    let attempts: Arc<Mutex<Vec<Attempt>>> = Arc::default();
    let counter = Arc::new(AtomicU64::new(0));
    let mut seed: u64 = 0x2545_f491_4f6c_dd1d;
    let mut rand = move |n: u64| {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed % n
    };
    for round in 0..ROUNDS {
        let stop = Arc::new(AtomicBool::new(false));
        let mut tasks = Vec::new();
        for c in 0..CLIENTS {
            let (fixture, attempts, counter, stop) = (
                fixture.clone(),
                attempts.clone(),
                counter.clone(),
                stop.clone(),
            );
            let base = server.base.clone();
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut last_paid: Option<String> = None;
                while !stop.load(Ordering::Relaxed) {
                    let n = counter.fetch_add(1, Ordering::Relaxed);
                    let consumer = (n as usize + c) % CONSUMERS;
                    let attempt = match (&last_paid, n % 5) {
                        (Some(pay), 0) => Attempt {
                            key: format!("crash-{n}"),
                            consumer,
                            body: json!({"payment": pay, "amount": 1}),
                            kind: Kind::Refund,
                            seen: Seen::Unknown,
                        },
                        _ if n % 11 == 4 => Attempt {
                            key: format!("crash-{n}"),
                            consumer,
                            body: json!({"amount": 1 + (n % 50) as i64, "currency": "CNY"}),
                            kind: Kind::Withdrawal,
                            seen: Seen::Unknown,
                        },
                        _ => {
                            // One in seven asks for more than the wallet holds: declined.
                            let amount = if n % 7 == 3 { FUNDS * 10 } else { 1 + (n % 300) as i64 };
                            Attempt {
                                key: format!("crash-{n}"),
                                consumer,
                                body: json!({"qr": fixture.qr, "amount": amount, "currency": "CNY"}),
                                kind: Kind::Payment,
                                seen: Seen::Unknown,
                            }
                        }
                    };
                    let seen = send(&client, &base, &fixture, &attempt).await;
                    if let (Seen::Succeeded(id), Kind::Payment) = (&seen, attempt.kind) {
                        last_paid = Some(id.clone());
                    }
                    let unknown = seen == Seen::Unknown;
                    attempts.lock().unwrap().push(Attempt { seen, ..attempt });
                    if unknown {
                        // The server is down: wait for the next round.
                        break;
                    }
                }
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + rand(900))).await;
        server.child.kill().expect("SIGKILL the server");
        server.child.wait().unwrap();
        stop.store(true, Ordering::Relaxed);
        for t in tasks {
            t.await.unwrap();
        }
        let n = attempts.lock().unwrap().len();
        eprintln!("round {round}: killed after {n} attempts in all");
        server = start(dir.path(), database_url, port).await;
    }
    // Resolve what clients could not see: retry with the same key, as a client would.
    let client = reqwest::Client::new();
    let mut all = attempts.lock().unwrap().clone();
    for a in all.iter_mut().filter(|a| a.seen == Seen::Unknown) {
        a.seen = send(&client, &server.base, &fixture, a).await;
        assert_ne!(
            a.seen,
            Seen::Unknown,
            "a retry after restart must get an answer"
        );
    }
    let paid: Vec<&Attempt> = all
        .iter()
        .filter(|a| a.kind == Kind::Payment && matches!(a.seen, Seen::Succeeded(_)))
        .collect();
    let refunded: Vec<&Attempt> = all
        .iter()
        .filter(|a| a.kind == Kind::Refund && matches!(a.seen, Seen::Succeeded(_)))
        .collect();
    let withdrawn: Vec<&Attempt> = all
        .iter()
        .filter(|a| a.kind == Kind::Withdrawal && matches!(a.seen, Seen::Succeeded(_)))
        .collect();
    assert!(!withdrawn.is_empty(), "some withdrawals went through");
    let declined = all.iter().filter(|a| a.seen == Seen::Declined).count();
    assert!(
        paid.len() > 50,
        "enough payments went through: {}",
        paid.len()
    );
    assert!(declined > 5, "some were declined: {declined}");
    // Every payment seen to succeed exists once, with its amount, paid by its consumer.
    let mut ids = std::collections::HashSet::new();
    for a in &paid {
        let Seen::Succeeded(id) = &a.seen else {
            unreachable!()
        };
        assert!(ids.insert(id.clone()), "payment {id} seen twice");
        let url = format!("{}/v1/payments/{id}", server.base);
        let p = get_json(&client, url, &fixture.consumers[a.consumer]).await;
        assert_eq!(p["amount"], a.body["amount"], "{p}");
    }
    // Each consumer's wallet is exactly top-up − paid + refunded − withdrawn.
    let mut expected = [FUNDS; CONSUMERS];
    let mut owner_of = std::collections::HashMap::new();
    for a in &paid {
        let Seen::Succeeded(id) = &a.seen else {
            unreachable!()
        };
        expected[a.consumer] -= a.body["amount"].as_i64().unwrap();
        owner_of.insert(id.clone(), a.consumer);
    }
    for r in &refunded {
        let who = owner_of[r.body["payment"].as_str().unwrap()];
        expected[who] += 1;
    }
    for w in &withdrawn {
        expected[w.consumer] -= w.body["amount"].as_i64().unwrap();
    }
    let mut listed = 0;
    let mut user_ids = Vec::new();
    for (i, token) in fixture.consumers.iter().enumerate() {
        let me = get_json(&client, format!("{}/v1/me", server.base), token).await;
        user_ids.push(me["id"].as_str().unwrap().to_owned());
        let w = get_json(&client, format!("{}/v1/wallet", server.base), token).await;
        // Every withdrawal cut off was retried to an answer, which settled its hold.
        assert_eq!(w["held"], 0, "wallet of consumer {i}: {w}");
        assert_eq!(w["balance"], expected[i], "wallet of consumer {i}: {w}");
        let mut after: Option<String> = None;
        loop {
            let url = match &after {
                Some(a) => format!("{}/v1/payments?limit=100&starting_after={a}", server.base),
                None => format!("{}/v1/payments?limit=100", server.base),
            };
            let page = get_json(&client, url, token).await;
            let data = page["data"].as_array().unwrap();
            listed += data.len();
            if page["has_more"] != true || data.is_empty() {
                break;
            }
            after = data.last().unwrap()["id"].as_str().map(str::to_owned);
        }
    }
    assert_eq!(
        listed,
        paid.len(),
        "no payment exists that a client did not see succeed"
    );
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_o2o"))
        .arg("verify-ledger")
        .arg("--data-dir")
        .arg(dir.path())
        .args(["--database-url", database_url])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let last: Value = serde_json::from_str(stdout.lines().last().unwrap_or("{}")).unwrap();
    assert!(out.status.success(), "verify-ledger failed: {stdout}");
    assert_eq!(last["balanced"], true, "{stdout}");
    // The bank paid out to each consumer exactly what the clients saw withdrawn: no withdrawal
    // cut off by a kill was paid out twice, or without leaving the wallet.
    let db = o2o_server::db::Db::connect(&o2o_server::db::DbOptions {
        url: database_url.to_owned(),
        pg_schema: None,
        max_connections: 1,
    })
    .await
    .unwrap();
    let paid_out: Vec<(String, i64)> = db
        .fetch_all(o2o_server::db::query(
            "SELECT account, CAST(SUM(amount) AS BIGINT) FROM sandbox_charges \
             WHERE direction = 'out' AND status = 'succeeded' GROUP BY account",
        ))
        .await
        .unwrap();
    db.close().await;
    let paid_out: std::collections::HashMap<String, i64> = paid_out.into_iter().collect();
    for (i, user) in user_ids.iter().enumerate() {
        let seen: i64 = withdrawn
            .iter()
            .filter(|w| w.consumer == i)
            .map(|w| w.body["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(
            paid_out.get(user).copied().unwrap_or(0),
            seen,
            "the bank's payouts to consumer {i}"
        );
    }
    eprintln!(
        "crash test: {} attempts, {} payments, {} refunds, {} withdrawals, {declined} declined, ledger verifies",
        all.len(),
        paid.len(),
        refunded.len(),
        withdrawn.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_kill_9_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/crash.db?mode=rwc", dir.path().display());
    crash_run(&url).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn payments_survive_kill_9_on_postgres() {
    let Ok(url) = std::env::var("O2O_TEST_POSTGRES_URL") else {
        eprintln!("O2O_TEST_POSTGRES_URL is not set: the PostgreSQL crash run is skipped here");
        return;
    };
    if url.is_empty() {
        return;
    }
    // A schema of its own, chosen by search_path in the URL.
    let schema = format!("crash_{}", std::process::id());
    let opts = o2o_server::db::DbOptions {
        url: url.clone(),
        pg_schema: None,
        max_connections: 1,
    };
    let db = o2o_server::db::Db::connect(&opts).await.unwrap();
    db.execute(o2o_server::db::query(Box::leak(
        format!("CREATE SCHEMA {schema}").into_boxed_str(),
    )))
    .await
    .unwrap();
    db.close().await;
    let sep = if url.contains('?') { '&' } else { '?' };
    crash_run(&format!("{url}{sep}options=-c%20search_path%3D{schema}")).await;
}
