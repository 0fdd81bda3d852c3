//! `o2o bench <scenario>`: measures what users feel. It starts a server on a fresh database (or
//! targets `--url`), prepares data over the API, drives real HTTP traffic from many concurrent
//! clients for `--duration-s`, and measures `/healthz` with the same client in the same run as the
//! ceiling to compare against. It prints a readable table and, last, one JSON line.

use hdrhistogram::Histogram;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use crate::wire::{Call, Conn};

/// What one load phase measured.
pub struct Stats {
    pub ops: u64,
    pub errors: u64,
    pub seconds: f64,
    /// Every success's latency, in microseconds.
    latencies: Histogram<u64>,
}

impl Stats {
    pub fn per_s(&self) -> f64 {
        self.ops as f64 / self.seconds
    }

    pub fn p50_ms(&self) -> f64 {
        self.latencies.value_at_quantile(0.5) as f64 / 1000.0
    }

    pub fn p99_ms(&self) -> f64 {
        self.latencies.value_at_quantile(0.99) as f64 / 1000.0
    }

    /// Prints the phase as one row of a bench's table.
    fn print(&self, label: &str) {
        println!(
            "  {:<34} {:>12.0} /s   p50 {:>6.2} ms   p99 {:>6.2} ms   errors {}",
            label,
            self.per_s(),
            self.p50_ms(),
            self.p99_ms(),
            self.errors
        );
    }

    /// Two phases as one: operations, errors and time summed, latencies pooled.
    fn merged(mut self, other: Stats) -> Stats {
        let _ = self.latencies.add(&other.latencies);
        self.ops += other.ops;
        self.errors += other.errors;
        self.seconds += other.seconds;
        self
    }
}

/// The ceiling every bench compares against.
fn ping(_: usize, _: u64) -> Call {
    Call::get("/healthz")
}

/// Warms up for a second, then measures `/healthz` for `duration`: the ceiling a bench compares
/// against.
async fn healthz(base: &str, concurrency: usize, duration: Duration) -> Stats {
    load(base, concurrency, Duration::from_secs(1), ping).await;
    load(base, concurrency, duration, ping).await
}

/// `/healthz` and the requests `make` makes (as [`load`] takes them), each warmed up for a
/// second, then measured in turns of one second until each has had `duration`. A virtual
/// machine's speed drifts by a third within minutes here: taken one after the other, the two
/// rates (and their ratio) would compare different moments; taken in turns, they share them.
async fn in_turns<F>(base: &str, concurrency: usize, duration: Duration, make: F) -> (Stats, Stats)
where
    F: Fn(usize, u64) -> Call + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let op = |slice| {
        let make = make.clone();
        load(base, concurrency, slice, move |c, n| make(c, n))
    };
    let health_turn = |slice| load(base, concurrency, slice, ping);
    health_turn(Duration::from_secs(1)).await;
    op(Duration::from_secs(1)).await;
    let turns = duration.as_secs().max(1) as u32;
    let slice = duration / turns;
    let (mut health, mut ops) = (health_turn(slice).await, op(slice).await);
    for _ in 1..turns {
        health = health.merged(health_turn(slice).await);
        ops = ops.merged(op(slice).await);
    }
    (health, ops)
}

/// Drives `concurrency` clients, each on its own keep-alive connection to `base`, issuing
/// requests made by `make(client, n)` (`n` counts requests across clients) for `duration`; a
/// response is an error unless its status is 2xx.
pub async fn load<F>(base: &str, concurrency: usize, duration: Duration, make: F) -> Stats
where
    F: Fn(usize, u64) -> Call + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for client in 0..concurrency {
        let (make, stop, counter) = (make.clone(), stop.clone(), counter.clone());
        let conn = Conn::new(base);
        tasks.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut ops, mut errors) = (0u64, 0u64);
            let Ok(mut conn) = conn else {
                return (hist, ops, 1);
            };
            while !stop.load(Ordering::Relaxed) {
                let call = make(client, counter.fetch_add(1, Ordering::Relaxed));
                let t = Instant::now();
                match conn.send(&call).await {
                    Ok(status) if (200..300).contains(&status) => {
                        ops += 1;
                        let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
                    }
                    _ => errors += 1,
                }
            }
            (hist, ops, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let (mut ops, mut errors) = (0, 0);
    for t in tasks {
        if let Ok((h, o, e)) = t.await {
            let _ = hist.add(h);
            ops += o;
            errors += e;
        }
    }
    Stats {
        ops,
        errors,
        seconds: started.elapsed().as_secs_f64(),
        latencies: hist,
    }
}

/// The path (and query) of a URL on the server under test.
fn path_of(url: &str) -> String {
    match url.split_once("://") {
        Some((_, rest)) => rest
            .find('/')
            .map(|i| rest[i..].to_owned())
            .unwrap_or("/".into()),
        None => url.to_owned(),
    }
}

/// Times `f` repeatedly on this thread for about `duration`; returns operations per second.
pub fn per_second(duration: Duration, mut f: impl FnMut(u64)) -> f64 {
    let started = Instant::now();
    let mut n = 0u64;
    while started.elapsed() < duration {
        for _ in 0..64 {
            f(n);
            n += 1;
        }
    }
    n as f64 / started.elapsed().as_secs_f64()
}

/// A server under test: started here on a fresh SQLite (or PostgreSQL) database, or given by URL.
pub struct Target {
    pub base: String,
    pub backend: String,
    /// The server's state when the bench started it (for setup and verification in process).
    pub state: Option<o2o_server::AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    handle: Option<tokio::task::JoinHandle<()>>,
    _dir: Option<tempfile::TempDir>,
}

impl Target {
    pub async fn start(
        url: Option<String>,
        database_url: Option<String>,
    ) -> anyhow::Result<Target> {
        if let Some(base) = url {
            // The load client speaks plain http:// to host:port; say so now, not as errors.
            crate::wire::authority(&base)?;
            let client = reqwest::Client::new();
            let ready: Value = client
                .get(format!("{base}/readyz"))
                .send()
                .await?
                .json()
                .await?;
            return Ok(Target {
                base,
                backend: ready["database"].as_str().unwrap_or("unknown").to_owned(),
                state: None,
                stop: None,
                handle: None,
                _dir: None,
            });
        }
        let dir = tempfile::tempdir()?;
        let settings = o2o_server::Settings {
            listen: Some("127.0.0.1:0".parse()?),
            data_dir: Some(dir.path().to_path_buf()),
            database_url,
            max_connections: Some(16),
            ..o2o_server::Settings::default()
        };
        let mut config = o2o_server::Config::resolve(settings)?;
        let listener = tokio::net::TcpListener::bind(config.listen).await?;
        let addr = listener.local_addr()?;
        config.public_url = format!("http://{addr}");
        let state = o2o_server::AppState::open(config).await?;
        let backend = state.db.backend().name().to_owned();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let kept = state.clone();
        let handle = tokio::spawn(async move {
            let _ = o2o_server::serve::serve(listener, state, async {
                let _ = stopped.await;
            })
            .await;
        });
        Ok(Target {
            base: format!("http://{addr}"),
            backend,
            state: Some(kept),
            stop: Some(stop),
            handle: Some(handle),
            _dir: Some(dir),
        })
    }

    pub async fn shutdown(mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.handle.take() {
            let _ = h.await;
        }
    }
}

pub async fn post(
    client: &reqwest::Client,
    url: String,
    body: Value,
    token: Option<&str>,
) -> anyhow::Result<Value> {
    let mut req = client.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let r = req.send().await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        anyhow::bail!("setup request failed ({status}): {v}");
    }
    Ok(v)
}

/// A guest session whose wallet got `top_ups` top-ups of ¥50,000 (the most one moves).
async fn funded_guest(
    client: &reqwest::Client,
    base: &str,
    top_ups: i64,
) -> anyhow::Result<String> {
    let s = post(client, format!("{base}/v1/sessions/guest"), json!({}), None).await?;
    let token = s["token"].as_str().unwrap_or_default().to_owned();
    for _ in 0..top_ups {
        post(
            client,
            format!("{base}/v1/wallet/top-ups"),
            json!({"amount": 5_000_000, "currency": "CNY"}),
            Some(&token),
        )
        .await?;
    }
    Ok(token)
}

/// A merchant with a store and one table, over the API: (owner token, store id, table id).
pub async fn seed_merchant(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<(String, String, String)> {
    let n = std::process::id();
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .subsec_nanos();
    let email = format!("bench-{n}-{nanos}@bench.o2o");
    let m = post(
        client,
        format!("{base}/v1/merchants"),
        json!({"name": "Bench Cafe", "mode": "trading", "owner": {"email": email, "password": "bench-password"}}),
        None,
    )
    .await?;
    let s = post(
        client,
        format!("{base}/v1/sessions"),
        json!({"email": email, "password": "bench-password"}),
        None,
    )
    .await?;
    let token = s["token"].as_str().unwrap_or_default().to_owned();
    let store = post(
        client,
        format!("{base}/v1/stores"),
        json!({"merchant_id": m["id"], "name": "Bench Store", "address": "上海市黄浦区", "lat": 31.23, "lng": 121.47,
               "timezone": "Asia/Shanghai", "opening_hours": "24/7"}),
        Some(&token),
    )
    .await?;
    let store_id = store["id"].as_str().unwrap_or_default().to_owned();
    let table = post(
        client,
        format!("{base}/v1/stores/{store_id}/tables"),
        json!({"label": "B1"}),
        Some(&token),
    )
    .await?;
    Ok((
        token,
        store_id,
        table["id"].as_str().unwrap_or_default().to_owned(),
    ))
}

/// `o2o bench codes`: tokens signed and verified per second (one core), PNG renders per second,
/// and `/q/{id}` resolutions over HTTP against `/healthz` on the same server.
pub async fn codes(
    url: Option<String>,
    database_url: Option<String>,
    duration: Duration,
    concurrency: usize,
) -> anyhow::Result<Value> {
    println!(
        "o2o bench codes: engine figures on one core, then HTTP with {concurrency} clients for {} s each, in turns with /healthz",
        duration.as_secs()
    );
    let ring = o2o_codes::Keyring::from_secrets(&[(1, o2o_codes::Keyring::generate_secret())])
        .expect("one key");
    let sign_s = per_second(Duration::from_secs(2), |_| {
        let _ = ring.sign(
            o2o_codes::TokenKind::Pickup,
            "ord_01jq3v7h0000000000000000ab",
            i64::MAX,
        );
    });
    let tokens: Vec<String> = (0..1024)
        .map(|_| {
            ring.sign(
                o2o_codes::TokenKind::Pickup,
                "ord_01jq3v7h0000000000000000ab",
                i64::MAX,
            )
            .expect("sign")
        })
        .collect();
    let verify_s = per_second(Duration::from_secs(2), |n| {
        let ok = ring.verify(&tokens[(n % 1024) as usize], 0).is_ok();
        assert!(ok, "a token failed to verify");
    });
    let png_s = per_second(Duration::from_secs(2), |_| {
        let _ = o2o_codes::png("https://o2o.example/q/abcdefghjk12", 256);
    });
    println!("  {:<34} {:>12.0} /s", "tokens signed (1 core)", sign_s);
    println!("  {:<34} {:>12.0} /s", "tokens verified (1 core)", verify_s);
    println!(
        "  {:<34} {:>12.0} /s",
        "PNG renders, 256 px (1 core)", png_s
    );

    let target = Target::start(url, database_url).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let (token, store, table) = seed_merchant(&client, &target.base).await?;
    let mut shorts = Vec::new();
    for kind in ["table", "store_pay"] {
        let mut body = json!({"kind": kind, "store_id": store});
        if kind == "table" {
            body["table_id"] = json!(table);
        }
        let code = post(
            &client,
            format!("{}/v1/qr-codes", target.base),
            body,
            Some(&token),
        )
        .await?;
        shorts.push(code["url"].as_str().unwrap_or_default().to_owned());
    }
    let shorts = Arc::new(shorts);
    let base = target.base.clone();
    let urls = shorts.clone();
    let (health, q) = in_turns(&base, concurrency, duration, move |_, n| {
        Call::get(path_of(&urls[(n % urls.len() as u64) as usize])).accept_json()
    })
    .await;
    let ratio = q.per_s() / health.per_s();
    health.print("GET /healthz");
    q.print("GET /q/{id} (resolve)");
    println!("  {:<34} {:>12.2}", "/q/ resolution ÷ /healthz", ratio);
    let backend = target.backend.clone();
    target.shutdown().await;
    Ok(json!({
        "scenario": "codes",
        "backend": backend,
        "ops_per_s": q.per_s().round(),
        "p50_ms": q.p50_ms(),
        "p99_ms": q.p99_ms(),
        "healthz_per_s": health.per_s().round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "verified": q.errors == 0 && health.errors == 0,
        "errors": q.errors,
        "tokens_signed_per_s": sign_s.round(),
        "tokens_verified_per_s_per_core": verify_s.round(),
        "png_renders_per_s": png_s.round(),
        "concurrency": concurrency,
        "duration_s": duration.as_secs(),
    }))
}

/// `o2o bench menu`: a store's public menu (`GET /v1/stores/{id}/menu`, a café-sized catalog
/// with options, per-store prices and sold-out items) against `/healthz` on the same server.
/// Afterwards a price is changed and the very next menu read must show it (the cache is
/// invalidated), and the menu must list every product created.
pub async fn menu(
    url: Option<String>,
    database_url: Option<String>,
    duration: Duration,
    concurrency: usize,
) -> anyhow::Result<Value> {
    println!(
        "o2o bench menu: GET /v1/stores/{{id}}/menu and /healthz in turns, {concurrency} clients, {} s each",
        duration.as_secs()
    );
    let target = Target::start(url, database_url).await?;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = target.base.clone();
    let (token, store, _table) = seed_merchant(&client, &base).await?;
    let size = json!({"key": "size", "name_zh": "杯型", "choice": "single", "required": true,
        "options": [{"key": "medium", "name_zh": "中杯"}, {"key": "large", "name_zh": "大杯", "price_delta": 300}]});
    let milk = json!({"key": "milk", "name_zh": "奶", "choice": "single",
        "options": [{"key": "whole", "name_zh": "全脂牛奶"}, {"key": "oat", "name_zh": "燕麦奶", "price_delta": 400}]});
    let mut products = Vec::new();
    for (c, category) in ["咖啡", "茶饮", "烘焙"].iter().enumerate() {
        let cat = post(
            &client,
            format!("{base}/v1/categories"),
            json!({"name_zh": category, "position": c}),
            Some(&token),
        )
        .await?;
        for i in 0..8 {
            let p = post(
                &client,
                format!("{base}/v1/products"),
                json!({"name_zh": format!("{category} {i}"), "name_en": format!("Item {c}-{i}"),
                       "description": "一杯好咖啡", "price": 1500 + 100 * i, "category_id": cat["id"],
                       "option_groups": [size, milk]}),
                Some(&token),
            )
            .await?;
            products.push(p["id"].as_str().unwrap_or_default().to_owned());
        }
    }
    // A store price and a sold-out item, as real menus have.
    for (product, body) in [
        (&products[0], json!({"price": 1200})),
        (&products[1], json!({"stock": 0})),
    ] {
        let r = client
            .put(format!("{base}/v1/stores/{store}/products/{product}"))
            .bearer_auth(&token)
            .json(&body)
            .send()
            .await?;
        anyhow::ensure!(r.status().is_success(), "store setting: {}", r.status());
    }
    let menu_url = format!("{base}/v1/stores/{store}/menu");
    let u = format!("/v1/stores/{store}/menu");
    // As phones and browsers ask for it: compressed.
    let (health, m) = in_turns(&base, concurrency, duration, move |_, _| {
        Call::get(u.clone()).header("accept-encoding", "gzip, deflate, br")
    })
    .await;
    let ratio = m.per_s() / health.per_s();

    // Verification: every product is listed, and a price change shows on the next read.
    let before: Value = client.get(&menu_url).send().await?.json().await?;
    let listed: Vec<String> = before["sections"]
        .as_array()
        .map(|s| {
            s.iter()
                .flat_map(|sec| sec["products"].as_array().cloned().unwrap_or_default())
                .filter_map(|p| p["id"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    let all_listed = products.iter().all(|p| listed.contains(p));
    let changed = products[5].clone();
    let r = client
        .patch(format!("{base}/v1/products/{changed}"))
        .bearer_auth(&token)
        .json(&json!({"price": 4321}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "price change: {}", r.status());
    let after: Value = client.get(&menu_url).send().await?.json().await?;
    let fresh = after["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|sec| sec["products"].as_array().cloned().unwrap_or_default())
        .any(|p| p["id"] == changed.as_str() && p["price"] == 4321);
    let menu_bytes = serde_json::to_vec(&before)?.len();

    health.print("GET /healthz");
    m.print("GET /v1/stores/{id}/menu");
    println!("  {:<34} {:>12.2}", "menu ÷ /healthz", ratio);
    println!(
        "  {:<34} {:>12}",
        "products listed / fresh after edit",
        format!("{all_listed} / {fresh}")
    );
    let backend = target.backend.clone();
    target.shutdown().await;
    Ok(json!({
        "scenario": "menu",
        "backend": backend,
        "ops_per_s": m.per_s().round(),
        "p50_ms": m.p50_ms(),
        "p99_ms": m.p99_ms(),
        "healthz_per_s": health.per_s().round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "verified": m.errors == 0 && health.errors == 0 && all_listed && fresh,
        "errors": m.errors,
        "products": products.len(),
        "menu_bytes": menu_bytes,
        "fresh_after_edit": fresh,
        "concurrency": concurrency,
        "duration_s": duration.as_secs(),
    }))
}

/// `o2o bench checkout`: consumers with funded wallets scan a store's pay code and pay, over
/// HTTP, with durable commits; then the ledger is verified and every payment a client saw
/// succeed is counted in the database exactly once.
pub async fn checkout(
    url: Option<String>,
    database_url: Option<String>,
    duration: Duration,
    concurrency: usize,
    keyed: bool,
) -> anyhow::Result<Value> {
    let target = Target::start(url, database_url).await?;
    let Some(state) = target.state.clone() else {
        anyhow::bail!(
            "bench checkout verifies the merchant and the ledger in process: let it start the server (no --url)"
        );
    };
    println!(
        "o2o bench checkout ({} backend): {concurrency} clients, {} s per phase{}",
        target.backend,
        duration.as_secs(),
        if keyed { ", every payment keyed" } else { "" }
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = target.base.clone();
    let (owner, store, _table) = seed_merchant(&client, &base).await?;
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    let merchant_id = me["merchant_id"].as_str().unwrap_or_default().to_owned();
    let mut tx = state.db.begin().await?;
    o2o_server::merchants::service::set_verified(&mut tx, &merchant_id, true)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    tx.commit().await?;
    let code = post(
        &client,
        format!("{base}/v1/qr-codes"),
        json!({"kind": "store_pay", "store_id": store}),
        Some(&owner),
    )
    .await?;
    let qr = code["url"].as_str().unwrap_or_default().to_owned();
    // Consumers (guest sessions) with funded wallets.
    let consumers = (concurrency * 4).clamp(64, 2_000);
    let mut tokens = Vec::with_capacity(consumers);
    let mut setup = tokio::task::JoinSet::new();
    for _ in 0..consumers {
        let (client, base) = (client.clone(), base.clone());
        setup.spawn(async move { funded_guest(&client, &base, 1).await });
    }
    while let Some(r) = setup.join_next().await {
        tokens.push(r??);
    }
    println!("  {consumers} consumers with ¥50,000 each; measuring");
    let tokens = Arc::new(tokens);
    let health = healthz(&base, concurrency, duration).await;
    let before = payments_count(&state).await?;
    let before_metrics = scrape(&client, &base).await?;
    let (t, q) = (tokens.clone(), qr.clone());
    let (cpu, threads) = (CpuClock::now(), ThreadClock::now());
    let pay = load(&base, concurrency, duration, move |_, n| {
        let token = &t[(n % t.len() as u64) as usize];
        let call = Call::post("/v1/payments")
            .bearer(token)
            .json(&json!({"qr": q, "amount": 1 + (n % 100) as i64, "currency": "CNY"}));
        if keyed {
            call.header("idempotency-key", format!("bench-{n}"))
        } else {
            call
        }
    })
    .await;
    let (idle, busy) = (cpu.idle_since(), threads.shares_since());
    // Let the last batch commit, then check.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let after = scrape(&client, &base).await?;
    let mut limits = Limits::of(&before_metrics, &after);
    limits.machine_idle(idle);
    limits.threads(busy);
    let stored = payments_count(&state).await? - before;
    let verification = o2o_server::payments::service::verify(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let ratio = pay.per_s() / health.per_s();
    health.print("GET /healthz");
    pay.print("POST /v1/payments (scan → pay)");
    println!("  {:<34} {:>12.2}", "payments ÷ /healthz", ratio);
    println!(
        "  {:<34} {:>12}",
        "payments stored / seen succeed",
        format!("{stored} / {}", pay.ops)
    );
    println!("  {:<34} {:>12}", "ledger verifies", verification.balanced);
    limits.print();
    let backend = target.backend.clone();
    target.shutdown().await;
    state.db.close().await;
    let mut out = json!({
        "scenario": "checkout",
        "backend": backend,
        "ops_per_s": pay.per_s().round(),
        "p50_ms": pay.p50_ms(),
        "p99_ms": pay.p99_ms(),
        "healthz_per_s": health.per_s().round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "verified": verification.balanced && stored == pay.ops as i64,
        "payments_seen": pay.ops,
        "payments_stored": stored,
        "errors": pay.errors,
        "transfers": verification.transfers,
        "consumers": consumers,
        "concurrency": concurrency,
        "keyed": keyed,
        "duration_s": duration.as_secs(),
    });
    limits.add_to(&mut out);
    Ok(out)
}

async fn payments_count(state: &o2o_server::AppState) -> anyhow::Result<i64> {
    let (n,): (i64,) = state
        .db
        .fetch_one(o2o_server::db::query(
            "SELECT CAST(COUNT(*) AS BIGINT) FROM payments",
        ))
        .await?;
    Ok(n)
}

/// The server's metrics as `series → value` (series = name with its labels).
async fn scrape(
    client: &reqwest::Client,
    base: &str,
) -> anyhow::Result<std::collections::HashMap<String, f64>> {
    let text = client
        .get(format!("{base}/metrics"))
        .send()
        .await?
        .text()
        .await?;
    Ok(text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_owned(), value.parse().ok()?))
        })
        .collect())
}

/// What limits a run, from the server's metrics before and after it: the sequencer's mean
/// batch (size, time, and time per phase) and the WAL syncs answers wait for (SQLite).
struct Limits {
    json: serde_json::Map<String, Value>,
}

impl Limits {
    fn of(
        before: &std::collections::HashMap<String, f64>,
        after: &std::collections::HashMap<String, f64>,
    ) -> Limits {
        let mean = |series: &str, labels: &str| -> f64 {
            let get = |m: &std::collections::HashMap<String, f64>, suffix: &str| {
                m.get(&format!("{series}{suffix}{labels}"))
                    .copied()
                    .unwrap_or(0.0)
            };
            let count = get(after, "_count") - get(before, "_count");
            if count > 0.0 {
                (get(after, "_sum") - get(before, "_sum")) / count
            } else {
                0.0
            }
        };
        let round = |v: f64, places: i32| {
            let f = 10f64.powi(places);
            (v * f).round() / f
        };
        let phases: serde_json::Map<String, Value> = ["load", "apply", "write", "commit"]
            .into_iter()
            .map(|p| {
                let labels = format!("{{phase=\"{p}\"}}");
                let ms = mean("sequencer_phase_seconds", &labels) * 1000.0;
                (p.to_owned(), json!(round(ms, 2)))
            })
            .collect();
        let mut json = serde_json::Map::new();
        json.insert(
            "batch_size".into(),
            json!(round(mean("sequencer_batch_size", ""), 1)),
        );
        json.insert(
            "batch_ms".into(),
            json!(round(mean("sequencer_batch_seconds", "") * 1000.0, 2)),
        );
        json.insert("batch_phases_ms".into(), Value::Object(phases));
        let counted = |series: &str| {
            after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0)
        };
        json.insert(
            "batches_rerun".into(),
            json!(counted("sequencer_batches_rerun")),
        );
        json.insert(
            "wal_sync_ms".into(),
            json!(round(mean("wal_sync_seconds", "") * 1000.0, 2)),
        );
        json.insert(
            "wal_sync_group".into(),
            json!(round(mean("wal_sync_group_size", ""), 1)),
        );
        Limits { json }
    }

    /// The share of the machine's CPU time left idle while the load ran (`None` where
    /// `/proc/stat` cannot be read): near zero, the machine is the limit; well above it, the
    /// work waits on something else (round trips, a lock, the sequencer's one thread).
    fn machine_idle(&mut self, idle: Option<f64>) {
        if let Some(idle) = idle {
            self.json.insert(
                "machine_idle".into(),
                json!((idle * 1000.0).round() / 1000.0),
            );
        }
    }

    /// How busy the server's serial threads were while the load ran (see [`ThreadClock`]).
    fn threads(&mut self, shares: serde_json::Map<String, Value>) {
        if !shares.is_empty() {
            self.json.insert("threads".into(), Value::Object(shares));
        }
    }

    /// Adds the figures to a bench's JSON line.
    fn add_to(self, out: &mut Value) {
        if let Some(o) = out.as_object_mut() {
            o.extend(self.json);
        }
    }

    fn print(&self) {
        let v = |k: &str| self.json.get(k).cloned().unwrap_or(Value::Null);
        println!(
            "  {:<34} {:>12}",
            "batch: commands / ms",
            format!("{} / {}", v("batch_size"), v("batch_ms"))
        );
        println!("  {:<34} {:>12}", "batch phases (ms)", v("batch_phases_ms"));
        if let Some(idle) = v("machine_idle").as_f64() {
            println!(
                "  {:<34} {:>11.0}%",
                "machine CPU idle during the load",
                idle * 100.0
            );
        }
        if let Some(threads) = v("threads").as_object() {
            for (name, share) in threads {
                let pct = |k: &str| share[k].as_f64().unwrap_or(0.0) * 100.0;
                println!(
                    "  {:<34} {:>12}",
                    format!("{name} ran / waited to run"),
                    format!("{:.0}% / {:.0}%", pct("running"), pct("waiting_for_cpu"))
                );
            }
        }
        // Only SQLite syncs the WAL itself (PostgreSQL commits durably).
        if v("wal_sync_group").as_f64().is_some_and(|g| g > 0.0) {
            println!(
                "  {:<34} {:>12}",
                "WAL sync: ms / batches per sync",
                format!("{} / {}", v("wal_sync_ms"), v("wal_sync_group"))
            );
        }
    }
}

/// The time the server's serial threads (the SQLite sequencer and its WAL sync) spent running,
/// and runnable but waiting for a CPU, from the kernel's `/proc/self/task/*/schedstat` (in
/// nanoseconds, summed per thread name; none where the kernel keeps no such counts). A
/// sequencer running nearly all the time is the limit; one that waits for a CPU while the
/// machine has idle time waits for the scheduler to wake it.
struct ThreadClock {
    at: Instant,
    times: std::collections::HashMap<String, (u64, u64)>,
}

impl ThreadClock {
    const NAMES: [&str; 2] = ["o2o-sequencer", "o2o-wal-sync"];

    fn now() -> ThreadClock {
        ThreadClock {
            at: Instant::now(),
            times: Self::read(),
        }
    }

    fn read() -> std::collections::HashMap<String, (u64, u64)> {
        let mut out = std::collections::HashMap::new();
        let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
            return out;
        };
        for task in tasks.flatten() {
            let path = task.path();
            let Ok(comm) = std::fs::read_to_string(path.join("comm")) else {
                continue;
            };
            let name = comm.trim();
            if !Self::NAMES.contains(&name) {
                continue;
            }
            let Ok(stat) = std::fs::read_to_string(path.join("schedstat")) else {
                continue;
            };
            if let Some((running, waiting)) = schedstat_times(&stat) {
                let t = out.entry(name.to_owned()).or_insert((0, 0));
                t.0 += running;
                t.1 += waiting;
            }
        }
        out
    }

    /// Per thread name, the shares of the time since `now` spent running and waiting for a CPU.
    fn shares_since(&self) -> serde_json::Map<String, Value> {
        let wall = self.at.elapsed().as_nanos() as f64;
        let share = |ns: u64| (ns as f64 / wall * 1000.0).round() / 1000.0;
        Self::read()
            .into_iter()
            .map(|(name, (running, waiting))| {
                let (r0, w0) = self.times.get(&name).copied().unwrap_or((0, 0));
                let v = json!({
                    "running": share(running.saturating_sub(r0)),
                    "waiting_for_cpu": share(waiting.saturating_sub(w0)),
                });
                (name, v)
            })
            .collect()
    }
}

/// (time running, time waiting to run) in nanoseconds from a thread's `schedstat` line.
fn schedstat_times(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace().map(str::parse::<u64>);
    Some((fields.next()?.ok()?, fields.next()?.ok()?))
}

/// The machine's CPU time as the kernel counts it (all cores, in clock ticks).
struct CpuClock(Option<(u64, u64)>);

impl CpuClock {
    fn now() -> CpuClock {
        CpuClock(Self::read())
    }

    /// (idle, total) from the first line of `/proc/stat` (idle counts I/O wait too).
    fn read() -> Option<(u64, u64)> {
        let stat = std::fs::read_to_string("/proc/stat").ok()?;
        cpu_times(stat.lines().next()?)
    }

    /// The share of CPU time spent idle since `now`.
    fn idle_since(&self) -> Option<f64> {
        let (idle0, total0) = self.0?;
        let (idle1, total1) = Self::read()?;
        let total = total1.checked_sub(total0).filter(|t| *t > 0)?;
        Some(idle1.saturating_sub(idle0) as f64 / total as f64)
    }
}

/// (idle, total) ticks of a `cpu` line of `/proc/stat`: user nice system idle iowait irq
/// softirq steal (guest time is already inside user and nice).
fn cpu_times(line: &str) -> Option<(u64, u64)> {
    let mut fields = line.split_whitespace();
    if fields.next()? != "cpu" {
        return None;
    }
    let v: Vec<u64> = fields
        .take(8)
        .map(str::parse)
        .collect::<Result<_, _>>()
        .ok()?;
    if v.len() < 5 {
        return None;
    }
    Some((v[3] + v[4], v.iter().sum()))
}

/// How many times each guest of `bench orders` tops up its wallet.
const GUEST_TOP_UPS: i64 = 8;

/// `o2o bench orders`: guests at many tables each order two items (one with counted stock),
/// send them to the kitchen and pay from the wallet in one request (pay before the food), over
/// HTTP with durable commits. Afterwards the ledger is verified, every order a
/// client saw paid is stored paid, and the counted stock went down by exactly what was ordered.
pub async fn orders(
    url: Option<String>,
    database_url: Option<String>,
    duration: Duration,
    concurrency: usize,
) -> anyhow::Result<Value> {
    let target = Target::start(url, database_url).await?;
    let Some(state) = target.state.clone() else {
        anyhow::bail!(
            "bench orders verifies stock and the ledger in process: let it start the server (no --url)"
        );
    };
    println!(
        "o2o bench orders ({} backend): {concurrency} tables, {} s per phase",
        target.backend,
        duration.as_secs()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency * 2)
        .build()?;
    let base = target.base.clone();
    let (owner, store, _table) = seed_merchant(&client, &base).await?;
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    let merchant_id = me["merchant_id"].as_str().unwrap_or_default().to_owned();
    let mut tx = state.db.begin().await?;
    o2o_server::merchants::service::set_verified(&mut tx, &merchant_id, true)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    tx.commit().await?;
    let size = json!({"key": "size", "name_zh": "杯型", "choice": "single", "required": true,
        "options": [{"key": "medium", "name_zh": "中杯"}, {"key": "large", "name_zh": "大杯", "price_delta": 300}]});
    let latte = post(
        &client,
        format!("{base}/v1/products"),
        json!({"name_zh": "拿铁", "description": "", "price": 2800, "currency": "CNY", "option_groups": [size]}),
        Some(&owner),
    )
    .await?;
    let cake = post(
        &client,
        format!("{base}/v1/products"),
        json!({"name_zh": "芝士蛋糕", "description": "", "price": 3200, "currency": "CNY"}),
        Some(&owner),
    )
    .await?;
    let (latte, cake) = (
        latte["id"].as_str().unwrap_or_default().to_owned(),
        cake["id"].as_str().unwrap_or_default().to_owned(),
    );
    const STOCK: i64 = 100_000_000;
    let r = client
        .put(format!("{base}/v1/stores/{store}/products/{cake}"))
        .bearer_auth(&owner)
        .json(&json!({"stock": STOCK}))
        .send()
        .await?;
    anyhow::ensure!(r.status().is_success(), "stock: {}", r.status());
    // One table (with its code) and one funded guest per client.
    let mut seats = Vec::with_capacity(concurrency);
    let mut setup = tokio::task::JoinSet::new();
    for i in 0..concurrency {
        let (client, base, owner, store) =
            (client.clone(), base.clone(), owner.clone(), store.clone());
        setup.spawn(async move {
            let table = post(
                &client,
                format!("{base}/v1/stores/{store}/tables"),
                json!({"label": format!("T{i}")}),
                Some(&owner),
            )
            .await?;
            let code = post(
                &client,
                format!("{base}/v1/qr-codes"),
                json!({"kind": "table", "store_id": store, "table_id": table["id"]}),
                Some(&owner),
            )
            .await?;
            // Enough for every order a guest could place in a long run at the target rate.
            let token = funded_guest(&client, &base, GUEST_TOP_UPS).await?;
            anyhow::Ok((code["url"].as_str().unwrap_or_default().to_owned(), token))
        });
    }
    while let Some(r) = setup.join_next().await {
        seats.push(r??);
    }
    println!(
        "  {concurrency} tables with a guest holding ¥{} each; measuring",
        GUEST_TOP_UPS * 50_000
    );
    let health = healthz(&base, concurrency, duration).await;

    let before_metrics = scrape(&client, &base).await?;
    // One table per client, ordering again and again.
    let calls: Vec<Call> = seats
        .into_iter()
        .map(|(qr, token)| {
            Call::post("/v1/orders").bearer(&token).json(&json!({
                "channel": "dine_in", "qr": qr, "place": true, "payment": {"source": "wallet"},
                "items": [{"product_id": latte, "options": {"size": ["large"]}}, {"product_id": cake}]}))
        })
        .collect();
    let (cpu, threads) = (CpuClock::now(), ThreadClock::now());
    let placed = load(&base, calls.len(), duration, move |client, _| {
        calls[client].clone()
    })
    .await;
    let busy = threads.shares_since();
    let (ops, errors, per_s) = (placed.ops, placed.errors, placed.per_s());
    let (p50, p99) = (placed.p50_ms(), placed.p99_ms());
    tokio::time::sleep(Duration::from_millis(200)).await;
    let idle = cpu.idle_since();
    let mut limits = Limits::of(&before_metrics, &scrape(&client, &base).await?);
    limits.machine_idle(idle);
    limits.threads(busy);

    // Verification.
    let (paid,): (i64,) = state
        .db
        .fetch_one(
            o2o_server::db::query(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM orders WHERE merchant_id = $1 AND amount_paid = total AND total > 0",
            )
            .bind(merchant_id.clone()),
        )
        .await?;
    let (holding,): (i64,) = state
        .db
        .fetch_one(
            o2o_server::db::query(
                "SELECT CAST(COUNT(*) AS BIGINT) FROM orders WHERE merchant_id = $1 AND status <> 'canceled'",
            )
            .bind(merchant_id.clone()),
        )
        .await?;
    let (stock,): (Option<i64>,) = state
        .db
        .fetch_one(
            o2o_server::db::query(
                "SELECT stock FROM catalog_store_products WHERE store_id = $1 AND product_id = $2",
            )
            .bind(store.clone())
            .bind(cake.clone()),
        )
        .await?;
    let stock_ok = stock == Some(STOCK - holding);
    let verification = o2o_server::payments::service::verify(&state.db)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let ratio = per_s / health.per_s();
    health.print("GET /healthz");
    placed.print("table order placed + paid");
    println!("  {:<34} {:>12.2}", "orders ÷ /healthz", ratio);
    println!(
        "  {:<34} {:>12}",
        "orders stored paid / seen paid",
        format!("{paid} / {ops}")
    );
    println!(
        "  {:<34} {:>12}",
        "stock taken / orders holding it",
        format!("{} / {holding}", STOCK - stock.unwrap_or(0))
    );
    println!("  {:<34} {:>12}", "ledger verifies", verification.balanced);
    limits.print();
    let backend = target.backend.clone();
    target.shutdown().await;
    state.db.close().await;
    let mut out = json!({
        "scenario": "orders",
        "backend": backend,
        "ops_per_s": per_s.round(),
        "p50_ms": p50,
        "p99_ms": p99,
        "healthz_per_s": health.per_s().round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "verified": verification.balanced && paid == ops as i64 && stock_ok,
        "orders_seen_paid": ops,
        "orders_stored_paid": paid,
        "stock_verified": stock_ok,
        "errors": errors,
        "requests_per_order": 1,
        "concurrency": concurrency,
        "duration_s": duration.as_secs(),
    });
    limits.add_to(&mut out);
    Ok(out)
}

/// A consumer logged in with a phone, made in process (a bench needs tens of thousands; the
/// public endpoint limits codes per address).
async fn phone_consumer(state: &o2o_server::AppState, n: u32) -> anyhow::Result<String> {
    use o2o_server::identity::{model::Phone, service};
    let phone = Phone::parse(&format!("+86137{n:08}")).map_err(|e| anyhow::anyhow!(e.message))?;
    let ip = format!("10.{}.{}.{}", n / 65_536 % 256, n / 256 % 256, n % 256);
    let sms = service::request_otp(&state.db, &phone, &ip)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    let code: String = sms
        .body
        .split(|c: char| !c.is_ascii_digit())
        .find(|w| w.len() == 6)
        .unwrap_or_default()
        .to_owned();
    let session = service::login_with_code(&state.db, &phone, &code, None)
        .await
        .map_err(|e| anyhow::anyhow!(e.message))?;
    Ok(session.token)
}

/// `o2o bench claim`: a flash claim. A template of `stock` coupons (one per consumer) opens and
/// `consumers` consumers claim from `concurrency` clients over HTTP for the run's duration, many
/// of them again and again; every claim is durable. Prints claim attempts answered per second
/// (issued, sold out or limit reached), p99, what was issued, and the oversell (must be 0).
pub async fn claim(
    database_url: Option<String>,
    duration: Duration,
    concurrency: usize,
    consumers: usize,
    stock: i64,
    nodes: usize,
) -> anyhow::Result<Value> {
    let postgres = database_url
        .as_deref()
        .is_some_and(|u| u.starts_with("postgres"));
    if !(1..=2).contains(&nodes) || (nodes == 2 && !postgres) {
        anyhow::bail!(
            "bench claim runs on 1 node, or on 2 nodes sharing a PostgreSQL database (--database-url)"
        );
    }
    let target = Target::start(None, database_url.clone()).await?;
    // The second node shares the first's database (the migrations are already there).
    let second = if nodes == 2 {
        Some(Target::start(None, database_url).await?)
    } else {
        None
    };
    let state = target
        .state
        .clone()
        .ok_or_else(|| anyhow::anyhow!("bench claim starts its own server"))?;
    println!(
        "o2o bench claim ({} backend, {nodes} node{}): {stock} coupons, {consumers} consumers, {concurrency} clients, {} s",
        target.backend,
        if nodes == 1 { "" } else { "s" },
        duration.as_secs()
    );
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let base = target.base.clone();
    let (owner, _store, _table) = seed_merchant(&client, &base).await?;
    let me: Value = client
        .get(format!("{base}/v1/me"))
        .bearer_auth(&owner)
        .send()
        .await?
        .json()
        .await?;
    let merchant_id = me["merchant_id"].as_str().unwrap_or_default().to_owned();
    let t = post(
        &client,
        format!("{base}/v1/coupon-templates"),
        json!({"merchant_id": merchant_id, "name": "限时抢 满30减10", "kind": "amount_off", "amount_off": 1000,
               "min_spend": 3000, "currency": "CNY", "total_stock": stock, "per_consumer_limit": 1}),
        Some(&owner),
    )
    .await?;
    let template = t["id"].as_str().unwrap_or_default().to_owned();
    let started = Instant::now();
    let mut tokens = Vec::with_capacity(consumers);
    let mut set = tokio::task::JoinSet::new();
    let mut next = 0u32;
    while tokens.len() < consumers {
        while set.len() < 16 && (next as usize) < consumers {
            let s = state.clone();
            let n = next;
            set.spawn(async move { phone_consumer(&s, n).await });
            next += 1;
        }
        match set.join_next().await {
            Some(r) => tokens.push(r??),
            None => break,
        }
        if tokens.len() % 10_000 == 0 {
            println!("  {} consumers logged in", tokens.len());
        }
    }
    println!(
        "  {consumers} consumers logged in ({:.0} s); measuring",
        started.elapsed().as_secs_f64()
    );
    let health = healthz(&base, concurrency, duration).await;
    let tokens = Arc::new(tokens);
    let stop = Arc::new(AtomicBool::new(false));
    let counter = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    let bases: Vec<String> = std::iter::once(base.clone())
        .chain(second.as_ref().map(|t| t.base.clone()))
        .collect();
    for i in 0..concurrency {
        let (stop, counter, tokens) = (stop.clone(), counter.clone(), tokens.clone());
        let conn = Conn::new(&bases[i % bases.len()]);
        let path = format!("/v1/coupon-templates/{template}/claims");
        tasks.push(tokio::spawn(async move {
            let mut hist =
                Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
            let (mut answered, mut won, mut errors) = (0u64, 0u64, 0u64);
            let Ok(mut conn) = conn else {
                return (hist, answered, won, 1);
            };
            while !stop.load(Ordering::Relaxed) {
                let n = counter.fetch_add(1, Ordering::Relaxed);
                // Spread over the consumers, so early on most claims are first claims.
                let token = &tokens[(n.wrapping_mul(7_919) % tokens.len() as u64) as usize];
                let call = Call::post(path.as_str()).bearer(token);
                let t = Instant::now();
                match conn.send(&call).await {
                    Ok(201) => {
                        won += 1;
                        answered += 1;
                    }
                    Ok(409) => answered += 1,
                    _ => {
                        errors += 1;
                        continue;
                    }
                }
                let _ = hist.record(t.elapsed().as_micros().max(1) as u64);
            }
            (hist, answered, won, errors)
        }));
    }
    tokio::time::sleep(duration).await;
    stop.store(true, Ordering::Relaxed);
    let mut hist = Histogram::<u64>::new_with_bounds(1, 60_000_000, 3).expect("histogram bounds");
    let (mut answered, mut won, mut errors) = (0u64, 0u64, 0u64);
    for t in tasks {
        if let Ok((h, a, w, e)) = t.await {
            let _ = hist.add(h);
            answered += a;
            won += w;
            errors += e;
        }
    }
    let claims = Stats {
        ops: answered,
        errors,
        seconds: started.elapsed().as_secs_f64(),
        latencies: hist,
    };
    let per_s = claims.per_s();
    let (p50, p99) = (claims.p50_ms(), claims.p99_ms());
    let (stored, holders, issued): (i64, i64, i64) = state
        .db
        .fetch_one(
            o2o_server::db::query(
                "SELECT CAST(COUNT(*) AS BIGINT), CAST(COUNT(DISTINCT c.user_id) AS BIGINT), \
                 CAST(MAX(t.issued) AS BIGINT) FROM coupons c JOIN coupon_templates t ON t.id = c.template_id \
                 WHERE c.template_id = $1",
            )
            .bind(template.clone()),
        )
        .await?;
    let oversell = (stored - stock).max(0);
    let doubles = stored - holders;
    let ratio = per_s / health.per_s();
    health.print("GET /healthz");
    claims.print("claim attempts answered");
    println!("  {:<34} {:>12.2}", "claims ÷ /healthz", ratio);
    println!(
        "  {:<34} {:>12}",
        "issued (seen / stored / stock)",
        format!("{won} / {stored} / {stock}")
    );
    println!(
        "  {:<34} {:>12}",
        "oversell / consumers holding two",
        format!("{oversell} / {doubles}")
    );
    let backend = target.backend.clone();
    if let Some(second) = second {
        second.shutdown().await;
    }
    target.shutdown().await;
    state.db.close().await;
    Ok(json!({
        "scenario": "claim",
        "backend": backend,
        "nodes": nodes,
        "ops_per_s": per_s.round(),
        "p50_ms": p50,
        "p99_ms": p99,
        "healthz_per_s": health.per_s().round(),
        "ratio": (ratio * 1000.0).round() / 1000.0,
        "verified": oversell == 0 && doubles == 0 && won as i64 == stored && issued == stored,
        "oversell": oversell,
        "issued": stored,
        "issued_seen": won,
        "stock": stock,
        "consumers": consumers,
        "errors": errors,
        "concurrency": concurrency,
        "duration_s": duration.as_secs(),
    }))
}

#[cfg(test)]
mod tests {
    use super::{ThreadClock, cpu_times, schedstat_times};

    #[test]
    fn the_machine_line_of_proc_stat_gives_idle_and_total_ticks() {
        // user nice system idle iowait irq softirq steal guest guest_nice
        let line = "cpu  4705 356 584 3699 23 0 27 5 7 0";
        assert_eq!(
            cpu_times(line),
            Some((3699 + 23, 4705 + 356 + 584 + 3699 + 23 + 27 + 5))
        );
        // A core's own line, or a short or broken one, is not the machine's.
        assert_eq!(cpu_times("cpu0 1 2 3 4 5 6 7 8"), None);
        assert_eq!(cpu_times("cpu 1 2 3"), None);
        assert_eq!(cpu_times("cpu 1 2 x 4 5"), None);
    }

    #[test]
    fn a_threads_schedstat_gives_time_running_and_waiting() {
        assert_eq!(
            schedstat_times("1234567 89012 345\n"),
            Some((1234567, 89012))
        );
        assert_eq!(schedstat_times("12"), None);
        assert_eq!(schedstat_times("x 1 2"), None);
    }

    /// A thread named as the sequencer, busy while the clock runs, is counted as running; other
    /// threads are not counted at all.
    #[test]
    fn the_serial_threads_are_found_by_name() {
        if !std::path::Path::new("/proc/self/schedstat").exists() {
            // A kernel without scheduler statistics: the bench reports no thread shares.
            assert!(ThreadClock::now().shares_since().is_empty());
            return;
        }
        let clock = ThreadClock::now();
        let busy = std::thread::Builder::new()
            .name("o2o-sequencer".into())
            .spawn(|| {
                let started = std::time::Instant::now();
                let mut n = 0u64;
                while started.elapsed() < std::time::Duration::from_millis(200) {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
                n
            })
            .unwrap();
        let shares = {
            // Read while the thread is alive (a finished thread leaves /proc/self/task).
            std::thread::sleep(std::time::Duration::from_millis(150));
            clock.shares_since()
        };
        busy.join().unwrap();
        let running = shares["o2o-sequencer"]["running"].as_f64().unwrap();
        assert!(running > 0.0, "{shares:?}");
        assert_eq!(shares.len(), 1, "only the named threads: {shares:?}");
    }
}
