//! `spawn_app()`: a real server on port 0 with a fresh database per test: a temporary SQLite
//! file, or, when `O2O_TEST_POSTGRES_URL` is set, a fresh schema in that PostgreSQL database.

use o2o_server::{AppState, Config, Settings};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU32, Ordering};
use tokio::sync::oneshot;

pub struct Shop {
    pub merchant: String,
    pub owner: String,
    pub store: String,
    /// The store-pay code's URL and id.
    pub qr: String,
    pub qr_id: String,
    pub cashier: String,
    pub operator: String,
}

pub struct TestApp {
    pub base: String,
    pub client: reqwest::Client,
    pub state: AppState,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

/// Which backend this test run uses.
pub fn backend() -> &'static str {
    if std::env::var("O2O_TEST_POSTGRES_URL").is_ok_and(|v| !v.is_empty()) {
        "postgres"
    } else {
        "sqlite"
    }
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(adjust: impl FnOnce(&mut Config)) -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        listen: Some("127.0.0.1:0".parse().unwrap()),
        dev: Some(true),
        data_dir: Some(dir.path().to_path_buf()),
        max_connections: Some(4),
        ..Settings::default()
    };
    let mut pg_schema = None;
    if let Ok(url) = std::env::var("O2O_TEST_POSTGRES_URL")
        && !url.is_empty()
    {
        static N: AtomicU32 = AtomicU32::new(0);
        let schema = format!(
            "t_{}_{}_{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst),
            rand_suffix()
        );
        let pool = sqlx::PgPool::connect(&url)
            .await
            .expect("connect to O2O_TEST_POSTGRES_URL");
        sqlx::query(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}")))
            .execute(&pool)
            .await
            .expect("create schema");
        pool.close().await;
        settings.database_url = Some(url);
        pg_schema = Some(schema);
    }
    let mut config = Config::resolve(settings).expect("config");
    config.pg_schema = pg_schema;
    adjust(&mut config);
    serve_config(config, dir).await
}

/// Opens the app for `config` and serves it on its listen address (port 0: any free port).
async fn serve_config(mut config: Config, dir: tempfile::TempDir) -> TestApp {
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .expect("bind");
    let addr = listener.local_addr().unwrap();
    config.public_url = format!("http://{addr}");
    let state = AppState::open(config).await.expect("open app");
    let (stop, stopped) = oneshot::channel::<()>();
    let server_state = state.clone();
    let server = tokio::spawn(async move {
        o2o_server::serve::serve(listener, server_state, async {
            let _ = stopped.await;
        })
        .await
        .expect("serve");
    });
    TestApp {
        base: format!("http://{addr}"),
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap(),
        state,
        stop: Some(stop),
        server: Some(server),
        _dir: dir,
    }
}

pub fn rand_suffix() -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    format!(
        "{:x}",
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .subsec_nanos()
    )
}

/// A node stopped by [`TestApp::stop_keeping_data`], its database kept.
pub struct StoppedApp {
    config: Config,
    dir: tempfile::TempDir,
}

impl StoppedApp {
    /// The stopped node's database, opened alone: no sequencer and no background work.
    pub async fn db(&self) -> o2o_server::db::Db {
        o2o_server::db::Db::connect(&o2o_server::db::DbOptions {
            url: self.config.database_url.clone(),
            pg_schema: self.config.pg_schema.clone(),
            max_connections: 2,
        })
        .await
        .expect("open the stopped node's database")
    }

    /// Starts the node again on its database.
    pub async fn start(self) -> TestApp {
        serve_config(self.config, self.dir).await
    }
}

/// A response: status and JSON body (`Value::Null` when the body is not JSON).
pub struct Res {
    pub status: StatusCode,
    pub body: Value,
    pub headers: reqwest::header::HeaderMap,
}

impl Res {
    /// The error code of an error response.
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }

    /// The message of an error response.
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder) -> Res {
        let r = req.send().await.expect("request");
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.unwrap_or_default();
        Res {
            status,
            body: serde_json::from_str(&text).unwrap_or(Value::Null),
            headers,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Res {
        let mut req = self.client.get(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post(&self, path: &str, body: Value, token: Option<&str>) -> Res {
        let mut req = self.client.post(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn post_idem(&self, path: &str, body: Value, token: Option<&str>, key: &str) -> Res {
        let mut req = self
            .client
            .post(self.url(path))
            .json(&body)
            .header("Idempotency-Key", key);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn patch(&self, path: &str, body: Value, token: Option<&str>) -> Res {
        let mut req = self.client.patch(self.url(path)).json(&body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Res {
        let mut req = self.client.delete(self.url(path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        self.send(req).await
    }

    /// The newest code the dev outbox holds for `phone`.
    pub async fn latest_code(&self, phone: &str) -> String {
        let res = self
            .get(&format!("/v1/dev/outbox?to={}", urlencode(phone)), None)
            .await;
        assert_eq!(res.status, StatusCode::OK, "{}", res.body);
        res.body["data"][0]["code"]
            .as_str()
            .expect("a code in the outbox")
            .to_owned()
    }

    /// Starts a guest session; returns its token.
    pub async fn guest_token(&self) -> String {
        let res = self.post("/v1/sessions/guest", json!({}), None).await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["token"].as_str().unwrap().to_owned()
    }

    /// Logs a consumer in by phone (asking for a code first); returns the token.
    pub async fn consumer_token(&self, phone: &str, guest_token: Option<&str>) -> String {
        let res = self
            .post("/v1/auth/otp", json!({ "phone": phone }), None)
            .await;
        assert_eq!(res.status, StatusCode::ACCEPTED, "{}", res.body);
        let code = self.latest_code(phone).await;
        let res = self
            .post(
                "/v1/sessions",
                json!({ "phone": phone, "code": code }),
                guest_token,
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["token"].as_str().unwrap().to_owned()
    }

    /// Signs a merchant up and logs its owner in: (merchant id, owner token).
    pub async fn merchant(&self, name: &str) -> (String, String) {
        let email = format!(
            "owner-{}@{}.test",
            rand_suffix(),
            name.to_lowercase().replace(' ', "-")
        );
        let res = self
            .post(
                "/v1/merchants",
                json!({ "name": name, "mode": "trading", "owner": { "email": email, "password": "secret-pass-1" } }),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        let id = res.body["id"].as_str().unwrap().to_owned();
        let token = self.password_token(&email, "secret-pass-1").await;
        (id, token)
    }

    pub async fn password_token(&self, email: &str, password: &str) -> String {
        let res = self
            .post(
                "/v1/sessions",
                json!({ "email": email, "password": password }),
                None,
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["token"].as_str().unwrap().to_owned()
    }

    /// Opens a store for the merchant at the given point; returns its id.
    pub async fn store(
        &self,
        merchant_id: &str,
        token: &str,
        name: &str,
        lat: f64,
        lng: f64,
    ) -> String {
        let res = self
            .post(
                "/v1/stores",
                json!({
                    "merchant_id": merchant_id, "name": name, "address": "1 Test Road", "lat": lat, "lng": lng,
                    "timezone": "Asia/Shanghai", "opening_hours": "Mo-Su 00:00-24:00",
                    "delivery_radius_m": 3000, "fence_radius_m": 200
                }),
                Some(token),
            )
            .await;
        assert_eq!(res.status, StatusCode::CREATED, "{}", res.body);
        res.body["id"].as_str().unwrap().to_owned()
    }

    /// Counts rows of a table (for "nothing was written" checks).
    pub async fn count(&self, table: &'static str) -> i64 {
        let sql: &'static str = match table {
            "merchants" => "SELECT COUNT(*) FROM merchants",
            "stores" => "SELECT COUNT(*) FROM stores",
            "accounts" => "SELECT COUNT(*) FROM accounts",
            "store_tables" => "SELECT COUNT(*) FROM store_tables",
            "users" => "SELECT COUNT(*) FROM users",
            "api_keys" => "SELECT COUNT(*) FROM api_keys",
            "qr_codes" => "SELECT COUNT(*) FROM qr_codes",
            "payments" => "SELECT COUNT(*) FROM payments",
            "refunds" => "SELECT COUNT(*) FROM refunds",
            "ledger_transfers" => "SELECT COUNT(*) FROM ledger_transfers",
            "events" => "SELECT COUNT(*) FROM events",
            // PostgreSQL's fan-out queue (SQLite follows the events from a cursor).
            "events_to_fan_out" => "SELECT COUNT(*) FROM events_to_fan_out",
            "webhook_endpoints" => "SELECT COUNT(*) FROM webhook_endpoints",
            "catalog_products" => "SELECT COUNT(*) FROM catalog_products",
            "catalog_categories" => "SELECT COUNT(*) FROM catalog_categories",
            "catalog_photos" => "SELECT COUNT(*) FROM catalog_photos",
            "catalog_store_products" => "SELECT COUNT(*) FROM catalog_store_products",
            "orders" => "SELECT COUNT(*) FROM orders",
            "sessions" => "SELECT COUNT(*) FROM sessions",
            "live_sessions" => "SELECT COUNT(*) FROM sessions WHERE revoked_at IS NULL",
            other => panic!("no count for {other}"),
        };
        let (n,): (i64,) = self
            .state
            .db
            .fetch_one(o2o_server::db::query(sql))
            .await
            .unwrap();
        n
    }

    /// Moves every one-time code an hour into the past, as if the per-phone wait had passed.
    pub async fn age_codes(&self) {
        self.state
            .db
            .execute(o2o_server::db::query(
                "UPDATE otp_codes SET created_at = created_at - 3600000000",
            ))
            .await
            .unwrap();
    }

    /// Another node on the same database (its own pools and its own sequencer), as a second
    /// server behind a load balancer would be.
    pub async fn second_node(&self) -> TestApp {
        let dir = tempfile::tempdir().expect("temp dir");
        let mut config = self.state.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        serve_config(config, dir).await
    }

    /// A platform operator's token (created on first use).
    pub async fn operator(&self) -> String {
        let email = format!("op-{}@o2o.test", rand_suffix());
        o2o_server::identity::service::add_operator(&self.state, &email, "operator-pass")
            .await
            .unwrap();
        self.password_token(&email, "operator-pass").await
    }

    /// Verifies a merchant, or withdraws its verification, as a platform operator.
    pub async fn set_verified(&self, merchant: &str, verified: bool) {
        let op = self.operator().await;
        let r = self
            .post(
                &format!("/v1/admin/merchants/{merchant}/verification"),
                json!({ "verified": verified }),
                Some(&op),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    }

    /// A verified trading merchant with one store, its store-pay code and a cashier.
    pub async fn shop(&self, name: &str) -> Shop {
        let (merchant, owner) = self.merchant(name).await;
        let store = self.store(&merchant, &owner, name, 31.2304, 121.4737).await;
        self.set_verified(&merchant, true).await;
        let op = self.operator().await;
        let code = self
            .post(
                "/v1/qr-codes",
                json!({"kind": "store_pay", "store_id": store}),
                Some(&owner),
            )
            .await;
        assert_eq!(code.status, StatusCode::CREATED, "{}", code.body);
        let email = format!("cashier-{}@shop.test", rand_suffix());
        let r = self
            .post(
                &format!("/v1/merchants/{merchant}/staff"),
                json!({"email": email, "password": "cashier-pass", "role": "cashier"}),
                Some(&owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        let cashier = self.password_token(&email, "cashier-pass").await;
        Shop {
            merchant,
            owner,
            store,
            qr: code.body["url"].as_str().unwrap().to_owned(),
            qr_id: code.body["id"].as_str().unwrap().to_owned(),
            cashier,
            operator: op,
        }
    }

    /// A plain product (no options, no barcode) of the merchant `owner` works for, priced
    /// `price` fen; its id.
    pub async fn product(&self, owner: &str, name_zh: &str, price: i64) -> String {
        let r = self
            .post(
                "/v1/products",
                json!({"name_zh": name_zh, "description": "", "price": price, "currency": "CNY"}),
                Some(owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// A consumer logged in with `phone` whose wallet holds `amount` fen.
    pub async fn funded_consumer(&self, phone: &str, amount: i64) -> String {
        let token = self.consumer_token(phone, None).await;
        if amount > 0 {
            self.top_up(&token, amount).await;
        }
        token
    }

    /// Tops the consumer's CNY wallet up from the sandbox bank (through this node); answers the
    /// top-up's id.
    pub async fn top_up(&self, token: &str, amount: i64) -> String {
        let r = self
            .post(
                "/v1/wallet/top-ups",
                json!({"amount": amount, "currency": "CNY"}),
                Some(token),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
        r.body["id"].as_str().unwrap_or_default().to_owned()
    }

    /// The Prometheus text of `/metrics` (the recorder is process-wide: every app in the test
    /// process adds to the same series).
    pub async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Runs the daily settlement sweep as if it were `at`; answers how many settled.
    pub async fn settlement_sweep(&self, at: jiff::Timestamp) -> usize {
        o2o_server::payments::service::settlement_sweep(&self.state, at)
            .await
            .unwrap()
    }

    /// The WAL commits are synced through (SQLite); `None` on PostgreSQL, which commits durably
    /// by itself.
    pub fn wal(&self) -> Option<std::sync::Arc<o2o_server::db::durable::WalFile>> {
        let wal = self.state.db.wal();
        if wal.is_none() {
            assert_eq!(
                backend(),
                "postgres",
                "only PostgreSQL commits durably by itself"
            );
        }
        wal
    }

    /// A merchant's balance, as its owner sees it.
    pub async fn merchant_balance(&self, shop: &Shop) -> Value {
        let r = self
            .get(
                &format!("/v1/merchants/{}/balance", shop.merchant),
                Some(&shop.owner),
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body
    }

    /// A merchant's (pending, available) balances.
    pub async fn merchant_balances(&self, shop: &Shop) -> (i64, i64) {
        let b = self.merchant_balance(shop).await;
        (
            b["pending"].as_i64().unwrap(),
            b["available"].as_i64().unwrap(),
        )
    }

    /// The id of the user a token is for.
    pub async fn user_id(&self, token: &str) -> String {
        let r = self.get("/v1/me", Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["id"].as_str().unwrap().to_owned()
    }

    /// The wallet balance of a consumer.
    pub async fn balance(&self, token: &str) -> i64 {
        let r = self.get("/v1/wallet", Some(token)).await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        r.body["balance"].as_i64().unwrap()
    }

    /// Makes a held payment's time run out now: the next capture is declined and the sweeper
    /// releases it.
    pub async fn lapse_hold(&self, payment_id: &str) {
        self.state
            .db
            .execute(
                o2o_server::db::query("UPDATE payments SET hold_expires_at = $1 WHERE id = $2")
                    .bind(o2o_server::db::now_us() - 1)
                    .bind(payment_id),
            )
            .await
            .unwrap();
    }

    /// Asserts the whole ledger verifies (run at the end of every money test).
    pub async fn assert_ledger_verifies(&self) {
        let v = o2o_server::payments::service::verify(&self.state.db)
            .await
            .unwrap();
        assert!(v.balanced, "ledger does not verify: {v:?}");
    }

    /// Stops this node and closes its database, keeping the database for [`StoppedApp::start`].
    pub async fn stop_keeping_data(mut self) -> StoppedApp {
        self.halt().await;
        self.state.db.close().await;
        let mut config = self.state.config.clone();
        config.listen = "127.0.0.1:0".parse().unwrap();
        let TestApp { state, _dir, .. } = self;
        drop(state);
        StoppedApp { config, dir: _dir }
    }

    /// Stops the server and waits for it to drain.
    pub async fn stop(mut self) {
        self.halt().await;
    }

    /// Tells the server to stop and waits for it to drain.
    async fn halt(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(h) = self.server.take() {
            let _ = h.await;
        }
    }
}

/// A page's answer as page tests look at it: status, where it redirects (empty if nowhere), body.
pub async fn page_reply(r: reqwest::Response) -> (StatusCode, String, String) {
    let status = r.status();
    let location = r
        .headers()
        .get("location")
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    (status, location, r.text().await.unwrap())
}

pub fn urlencode(s: &str) -> String {
    s.replace('+', "%2B")
}

/// The CSRF token page tests send, as its cookie and as the form's `csrf` field.
pub const PAGE_CSRF: &str = "page-test-csrf-token-0123456789";

/// A browser's cookies: a session token plus the CSRF cookie.
pub fn page_cookies(session: &str) -> String {
    format!("o2o_session={session}; o2o_csrf={PAGE_CSRF}")
}

/// GETs a page as a browser holding `session` would, in English: (status, body).
pub async fn get_page(app: &TestApp, path: &str, session: &str) -> (StatusCode, String) {
    get_page_with(app, path, &page_cookies(session), "en").await
}

/// GETs a page as a browser sending these cookies and asking for `lang`: (status, body).
pub async fn get_page_with(
    app: &TestApp,
    path: &str,
    cookies: &str,
    lang: &str,
) -> (StatusCode, String) {
    let r = app
        .client
        .get(app.url(path))
        .header("cookie", cookies)
        .header("accept-language", lang)
        .send()
        .await
        .unwrap();
    (r.status(), r.text().await.unwrap())
}

/// POSTs a page form as a browser holding `session` would, in English (the form carries its
/// own `csrf` field): (status, Location, body).
pub async fn post_page(
    app: &TestApp,
    path: &str,
    session: &str,
    form: &[(&str, &str)],
) -> (StatusCode, String, String) {
    post_page_in(app, path, session, form, "en").await
}

/// [`post_page`] asking for the page language `lang`.
pub async fn post_page_in(
    app: &TestApp,
    path: &str,
    session: &str,
    form: &[(&str, &str)],
    lang: &str,
) -> (StatusCode, String, String) {
    let r = app
        .client
        .post(app.url(path))
        .header("cookie", page_cookies(session))
        .header("accept-language", lang)
        .form(form)
        .send()
        .await
        .unwrap();
    page_reply(r).await
}
