//! Builds the router and the shared state; nothing else.

use crate::config::Config;
use crate::db::{Db, DbOptions};
use crate::http;
use crate::identity::{OutboxOnly, Passwords, SmsSender};
use axum::Router;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use std::ops::Deref;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// What every request shares: the database, the configuration and the long-lived services.
pub struct Inner {
    pub db: Db,
    pub config: Config,
    pub sms: Arc<dyn SmsSender>,
    pub passwords: Passwords,
    pub metrics: PrometheusHandle,
    /// The keys that sign consumer-presented codes.
    pub keys: o2o_codes::Keyring,
    /// Committed events, fanned out in process (live pages, webhooks).
    pub bus: crate::events::Bus,
    /// Carries events between nodes when a NATS URL is configured.
    pub nats: Option<crate::events::nats::Bridge>,
    /// The sequencer that applies every movement of money.
    pub payments: crate::payments::Engine,
    /// Where wallet money comes from and goes to (the sandbox bank by default).
    pub provider: Arc<dyn crate::payments::provider::PaymentProvider>,
    /// The built-in sandbox bank, which `provider` is: its own statement of what it moved, where
    /// the tests check that a request was charged once.
    pub sandbox: Arc<crate::payments::provider::SandboxBank>,
    /// Keys of requests this node is asking the provider about, one request per key at a time.
    pub provider_keys: crate::http::idempotency::KeyLocks,
    /// Sends webhook deliveries.
    pub webhooks: crate::events::webhooks::Dispatcher,
    /// Built store menus, kept until a catalog change makes them stale.
    pub menus: Arc<crate::catalog::MenuCache>,
    /// Coupon templates this node knows are sold out: later claims are answered from memory.
    pub coupons_sold_out: Arc<crate::marketing::SoldOut>,
}

/// Cheap to clone; handlers take it with `State<AppState>`.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

impl Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

/// The process-wide metrics recorder (installed once, shared by every app in the process).
fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new().build_recorder();
            let handle = recorder.handle();
            // Another recorder may already be installed (several apps in one test process).
            let _ = metrics::set_global_recorder(recorder);
            handle
        })
        .clone()
}

impl AppState {
    /// Connects to the database and applies migrations.
    pub async fn open(config: Config) -> anyhow::Result<AppState> {
        let db = Db::connect(&DbOptions {
            url: config.database_url.clone(),
            pg_schema: config.pg_schema.clone(),
            max_connections: config.max_connections,
        })
        .await?;
        db.migrate().await?;
        let keys = crate::codes::keys::load_or_create(&config.signing_keys_file)?;
        let bus = crate::events::Bus::new();
        let menus = Arc::new(crate::catalog::MenuCache::default());
        let coupons_sold_out = Arc::new(crate::marketing::SoldOut::default());
        let payments = crate::payments::Engine::start(
            db.clone(),
            bus.clone(),
            menus.clone(),
            coupons_sold_out.clone(),
            config.sequencer_queue,
        )?;
        let nats = match &config.nats_url {
            Some(url) => Some(crate::events::nats::Bridge::start(url, bus.clone()).await?),
            None => None,
        };
        // The sandbox bank signs its notifications with a key derived from the platform's
        // signing key, so notifications survive restarts and no other party can forge them.
        let sandbox_secret = keys.derive_secret(b"o2o sandbox bank notifications");
        let sandbox = Arc::new(crate::payments::provider::SandboxBank::new(
            sandbox_secret,
            db.clone(),
        ));
        let webhooks = crate::events::webhooks::Dispatcher::new(config.webhooks_allow_private)?;
        let state = AppState(Arc::new(Inner {
            db,
            config,
            sms: Arc::new(OutboxOnly),
            passwords: Passwords::default(),
            metrics: metrics_handle(),
            keys,
            bus,
            nats,
            payments,
            provider: sandbox.clone(),
            sandbox,
            provider_keys: Default::default(),
            webhooks,
            menus,
            coupons_sold_out,
        }));
        state.start_background();
        Ok(state)
    }
}

impl AppState {
    /// Background work of a node: voiding lapsed holds, canceling unpaid orders whose stock
    /// reservation lapsed, dispatching webhooks, and delivering messages into inboxes. The tasks
    /// hold only a weak reference, so they end with the app.
    fn start_background(&self) {
        let weak = Arc::downgrade(&self.0);
        let mut events = self.bus.subscribe();
        let dispatcher = weak.clone();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::{RecvError, TryRecvError};
            loop {
                // Wake on a committed event, or each second for retries that came due (and
                // events committed by other nodes).
                tokio::select! {
                    received = events.recv() => if let Err(RecvError::Closed) = received { return },
                    _ = tokio::time::sleep(std::time::Duration::from_secs(1)) => {}
                }
                // One round serves every event that arrived meanwhile.
                while !matches!(
                    events.try_recv(),
                    Err(TryRecvError::Empty | TryRecvError::Closed)
                ) {}
                let Some(inner) = dispatcher.upgrade() else {
                    return;
                };
                let app = AppState(inner);
                if app.webhooks.is_drained() || app.db.is_closed() {
                    // The node is stopping (see `serve`): the rounds end with it.
                    return;
                }
                if let Err(e) = crate::events::webhooks::dispatch_round(&app).await {
                    tracing::warn!(error = %e.message, "dispatching webhooks failed");
                }
                drop(app);
                // Coalesce: under a stream of payments, fan out a few times a second in big
                // rounds rather than once per batch (each round takes the writer briefly).
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
        });
        // Delivering messages into inboxes: at once when one is sent on this node, and each
        // second for messages of other nodes or interrupted by a restart.
        let deliverer = weak.clone();
        let mut message_events = self.bus.subscribe();
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tokio::select! {
                    received = message_events.recv() => match received {
                        Err(RecvError::Closed) => return,
                        Ok(e) if e.kind != crate::followers::service::MESSAGE_CREATED => continue,
                        _ => {}
                    },
                    _ = tick.tick() => {}
                }
                let Some(inner) = deliverer.upgrade() else {
                    return;
                };
                let app = AppState(inner);
                if app.db.is_closed() {
                    return;
                }
                if let Err(e) = crate::followers::delivery::deliver_round(&app).await {
                    tracing::warn!(error = %e.message, "delivering messages failed");
                }
            }
        });
        // Birthday coupons: each hour (and at start), so every time zone's day is met; the
        // sweep is idempotent per card and year.
        every(
            weak.clone(),
            Duration::ZERO,
            HOUR,
            "giving birthday coupons failed",
            |app| async move {
                crate::members::service::birthday_sweep(&app, jiff::Timestamp::now())
                    .await
                    .map(drop)
            },
        );
        // Daily settlement: each hour, first five minutes after start (a node started for a
        // moment, such as a test's second node, settles nothing), settling each merchant once
        // per business day in its own time zone (see `settlement_sweep`).
        every(
            weak.clone(),
            Duration::from_secs(300),
            HOUR,
            "daily settlement failed",
            |app| async move {
                crate::payments::service::settlement_sweep(&app, jiff::Timestamp::now())
                    .await
                    .map(drop)
            },
        );
        // Wallet movements and payouts left pending: every ten seconds, in rounds of their own
        // (they wait on the provider), each at most half a minute.
        every(
            weak.clone(),
            Duration::from_secs(5),
            Duration::from_secs(10),
            "settling unanswered movements failed",
            |app| async move {
                let round = crate::payments::service::sweep_movements(
                    &app,
                    crate::payments::service::MOVEMENT_SETTLES_US,
                );
                match tokio::time::timeout(Duration::from_secs(30), round).await {
                    Ok(settled) => settled.map(drop),
                    // What the round did not reach waits for the next.
                    Err(_) => Ok(()),
                }
            },
        );
        // Lapsed holds and reservations: every two seconds, one after the other.
        every(
            weak,
            Duration::ZERO,
            Duration::from_secs(2),
            "canceling lapsed orders failed",
            |app| async move {
                if let Err(e) = crate::payments::service::sweep_holds(&app).await {
                    tracing::warn!(error = %e.message, "sweeping lapsed holds failed");
                }
                crate::orders::service::sweep_lapsed(&app).await.map(drop)
            },
        );
    }
}

const HOUR: Duration = Duration::from_secs(3_600);

/// Runs `job` every `period`, the first time `first` after now, for as long as the application
/// lives; a failure is logged (`failed` says what failed) and the next round tries again. A
/// round that overruns delays the next rather than bunching them.
fn every<F, Fut>(
    app: std::sync::Weak<Inner>,
    first: Duration,
    period: Duration,
    failed: &'static str,
    job: F,
) where
    F: Fn(AppState) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = crate::error::Result<()>> + Send,
{
    tokio::spawn(async move {
        let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + first, period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            let Some(inner) = app.upgrade() else { return };
            if inner.db.is_closed() {
                return;
            }
            if let Err(e) = job(AppState(inner)).await {
                tracing::warn!(error = %e.message, "{failed}");
            }
        }
    });
}

/// The whole application: API, OpenAPI document and docs page, pages and static assets.
pub fn router(state: AppState) -> Router {
    let (api, openapi) = http::openapi::api_router().split_for_parts();
    let api = api.with_state(state.clone());
    let pages = crate::web::router().with_state(state.clone());
    let docs: Router = utoipa_swagger_ui::SwaggerUi::new("/docs")
        .url("/openapi.json", openapi)
        .into();
    http::layers(api.merge(pages).merge(docs), state.config.body_idle_timeout)
}
