//! The `o2o` binary: `serve` runs the platform, `migrate` applies the database migrations,
//! `demo` seeds the demo data, `operator add` creates a platform operator login.

mod bench;
mod wire;

/// mimalloc instead of the system allocator: a server that builds and drops many small JSON
/// values per request spends far less time in allocation with it than with glibc's malloc,
/// whose free lists it otherwise keeps consolidating.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use clap::{Args, Parser, Subcommand};
use o2o_server::{AppState, Config, LogFormat, Settings};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Parser)]
#[command(
    name = "o2o",
    version,
    about = "Online-to-offline commerce in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (API, pages, docs).
    Serve(ServeArgs),
    /// Apply the database migrations and exit.
    Migrate(DbArgs),
    /// Seed the demo data (once per database) and exit.
    Demo(DbArgs),
    /// Platform operators.
    #[command(subcommand)]
    Operator(OperatorCommand),
    /// The keys that sign consumer-presented codes.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Measure a scenario over real HTTP; the last line printed is one JSON object.
    Bench(BenchArgs),
    /// Verify the ledger: every currency sums to zero, no flagged account below zero, every
    /// balance equals its transfers, every post or void matches its hold. The last line is the
    /// verdict as JSON; the exit status is non-zero when anything fails.
    VerifyLedger(DbArgs),
}

#[derive(Args)]
struct BenchArgs {
    /// The scenario: codes, menu, checkout, orders, claim.
    scenario: String,
    /// Target a running server instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// The database of the server the bench starts (default: a fresh SQLite file).
    #[arg(long, env = "O2O_BENCH_DATABASE_URL")]
    database_url: Option<String>,
    /// Seconds of load per phase.
    #[arg(long, default_value_t = 10)]
    duration_s: u64,
    /// Concurrent clients.
    #[arg(long, default_value_t = 64)]
    concurrency: usize,
    /// checkout: every payment carries an Idempotency-Key, as a merchant's own system that
    /// retries safely sends.
    #[arg(long)]
    keyed: bool,
    /// claim: consumers taking part.
    #[arg(long, default_value_t = 50_000)]
    consumers: usize,
    /// claim: coupons in stock.
    #[arg(long, default_value_t = 10_000)]
    stock: i64,
    /// claim: server nodes sharing the database (2 needs --database-url postgres://…); the
    /// clients are spread over them.
    #[arg(long, default_value_t = 1)]
    nodes: usize,
}

#[derive(Subcommand)]
enum KeysCommand {
    /// Add a new signing key; it signs from the servers' next start, while older keys keep
    /// verifying the codes they signed until those expire.
    Rotate(DbArgs),
    /// Print the public keys.
    Show(DbArgs),
}

#[derive(Subcommand)]
enum OperatorCommand {
    /// Create an operator login.
    Add {
        #[command(flatten)]
        db: DbArgs,
        #[arg(long)]
        email: String,
        /// The password (8 to 128 characters); or set O2O_OPERATOR_PASSWORD.
        #[arg(long, env = "O2O_OPERATOR_PASSWORD", hide_env_values = true)]
        password: String,
    },
}

#[derive(Args, Clone)]
struct DbArgs {
    /// Database URL: sqlite://PATH or postgres://… (default: sqlite://o2o-data/o2o.db).
    #[arg(long, env = "O2O_DATABASE_URL")]
    database_url: Option<String>,
    /// Directory of the embedded database and keys.
    #[arg(long, env = "O2O_DATA_DIR")]
    data_dir: Option<PathBuf>,
    /// A configuration file (default: ./o2o.toml when present).
    #[arg(long, env = "O2O_CONFIG")]
    config: Option<PathBuf>,
    /// The code-signing key file (default: <data-dir>/signing-keys.json).
    #[arg(long, env = "O2O_SIGNING_KEYS_FILE")]
    signing_keys_file: Option<PathBuf>,
    /// A font with CJK glyphs for PDF sheets (default: found among the system's fonts).
    #[arg(long, env = "O2O_CJK_FONT")]
    cjk_font: Option<PathBuf>,
}

#[derive(Args)]
struct ServeArgs {
    #[command(flatten)]
    db: DbArgs,
    /// Address to listen on (default 127.0.0.1:8080).
    #[arg(long, env = "O2O_LISTEN")]
    listen: Option<SocketAddr>,
    /// The base URL printed codes and links carry (default: from --listen).
    #[arg(long, env = "O2O_PUBLIC_URL")]
    public_url: Option<String>,
    /// Seed demo data (once) and turn on dev conveniences.
    #[arg(long, env = "O2O_DEMO")]
    demo: bool,
    /// Dev conveniences: the SMS dev outbox is readable at /v1/dev/outbox.
    #[arg(long, env = "O2O_DEV")]
    dev: bool,
    /// text (default) or json.
    #[arg(long, env = "O2O_LOG_FORMAT")]
    log_format: Option<LogFormat>,
    /// The most messages a merchant may send its followers in an hour (default 10).
    #[arg(long, env = "O2O_MESSAGES_PER_HOUR")]
    messages_per_hour: Option<u32>,
    /// How long a free-WiFi login grants access, in minutes (default 240).
    #[arg(long, env = "O2O_WIFI_GRANT_MINUTES")]
    wifi_grant_minutes: Option<u32>,
    /// The NATS server carrying events between nodes, e.g. nats://127.0.0.1:4222 (default: none).
    #[arg(long, env = "O2O_NATS_URL")]
    nats_url: Option<String>,
    /// Payments waiting for the sequencer at most; more are answered 503 (default 20000).
    #[arg(long, env = "O2O_SEQUENCER_QUEUE")]
    sequencer_queue: Option<usize>,
    /// Let webhook endpoints be on private, loopback or link-local addresses (on with --dev).
    #[arg(long, env = "O2O_WEBHOOKS_ALLOW_PRIVATE")]
    webhooks_allow_private: bool,
}

fn settings(db: &DbArgs) -> anyhow::Result<Settings> {
    let flags = Settings {
        database_url: db.database_url.clone(),
        data_dir: db.data_dir.clone(),
        signing_keys_file: db.signing_keys_file.clone(),
        cjk_font: db.cjk_font.clone(),
        ..Settings::default()
    };
    Ok(flags.or(Settings::from_file(db.config.as_deref())?))
}

async fn open(db: &DbArgs) -> anyhow::Result<AppState> {
    let config = Config::resolve(settings(db)?)?;
    AppState::open(config).await
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = Instant::now();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let flags = Settings {
                listen: args.listen,
                public_url: args.public_url.clone(),
                demo: args.demo.then_some(true),
                dev: args.dev.then_some(true),
                log_format: args.log_format,
                messages_per_hour: args.messages_per_hour,
                wifi_grant_minutes: args.wifi_grant_minutes,
                nats_url: args.nats_url.clone(),
                sequencer_queue: args.sequencer_queue,
                webhooks_allow_private: args.webhooks_allow_private.then_some(true),
                ..Settings::default()
            };
            let config = Config::resolve(flags.or(settings(&args.db)?))?;
            o2o_server::serve::init_logging(config.log_format);
            let listener = tokio::net::TcpListener::bind(config.listen).await?;
            let public_url = config.public_url.clone();
            let demo = config.demo;
            let state = AppState::open(config).await?;
            tracing::info!(backend = state.db.backend().name(), "database ready");
            if demo {
                let report = o2o_server::demo::seed(&state).await?;
                println!(
                    "o2o demo data {}:",
                    if report.created {
                        "created"
                    } else {
                        "already present, reused"
                    }
                );
                for line in report.lines {
                    println!("  {line}");
                }
                println!("  consumer pages    {public_url}/");
                println!("  merchant console  {public_url}/console");
                println!("  API docs          {public_url}/docs");
            }
            println!(
                "o2o listening on {public_url} ({} backend), ready in {} ms",
                state.db.backend().name(),
                started.elapsed().as_millis()
            );
            o2o_server::serve::serve(listener, state, o2o_server::serve::shutdown_signal()).await
        }
        Command::Migrate(db) => {
            let state = open(&db).await?;
            println!("migrations applied ({} backend)", state.db.backend().name());
            state.db.close().await;
            Ok(())
        }
        Command::Demo(db) => {
            let state = open(&db).await?;
            let report = o2o_server::demo::seed(&state).await?;
            println!(
                "demo data {}",
                if report.created {
                    "created"
                } else {
                    "already present"
                }
            );
            for line in report.lines {
                println!("  {line}");
            }
            state.db.close().await;
            Ok(())
        }
        Command::Bench(args) => {
            let duration = std::time::Duration::from_secs(args.duration_s.clamp(1, 600));
            let concurrency = args.concurrency.clamp(1, 4096);
            let result = match args.scenario.as_str() {
                "codes" => bench::codes(args.url, args.database_url, duration, concurrency).await?,
                "menu" => bench::menu(args.url, args.database_url, duration, concurrency).await?,
                "claim" => {
                    if args.url.is_some() {
                        anyhow::bail!("bench claim starts its own server (no --url)");
                    }
                    bench::claim(
                        args.database_url,
                        duration,
                        concurrency,
                        args.consumers.clamp(1, 1_000_000),
                        args.stock.clamp(1, 10_000_000),
                        args.nodes,
                    )
                    .await?
                }
                "orders" => {
                    bench::orders(args.url, args.database_url, duration, concurrency).await?
                }
                "checkout" => {
                    bench::checkout(
                        args.url,
                        args.database_url,
                        duration,
                        concurrency,
                        args.keyed,
                    )
                    .await?
                }
                other => {
                    anyhow::bail!(
                        "unknown bench scenario {other:?} (scenarios: codes, menu, checkout, orders, claim)"
                    )
                }
            };
            println!("{result}");
            Ok(())
        }
        Command::VerifyLedger(db) => {
            let state = open(&db).await?;
            let v = o2o_server::payments::service::verify(&state.db)
                .await
                .map_err(|e| anyhow::anyhow!(e.message))?;
            state.db.close().await;
            println!("{}", serde_json::to_string(&v)?);
            if !v.balanced {
                std::process::exit(1);
            }
            Ok(())
        }
        Command::Keys(KeysCommand::Rotate(db)) => {
            let config = Config::resolve(settings(&db)?)?;
            let id = o2o_server::codes::keys::rotate(&config.signing_keys_file)?;
            println!(
                "signing key {id} added to {}; restart the servers to sign with it",
                config.signing_keys_file.display()
            );
            Ok(())
        }
        Command::Keys(KeysCommand::Show(db)) => {
            let config = Config::resolve(settings(&db)?)?;
            let keys = o2o_server::codes::keys::load_or_create(&config.signing_keys_file)?;
            for (id, key) in keys.public_keys() {
                let marker = if id == keys.active_id() {
                    " (signs)"
                } else {
                    ""
                };
                let hex: String = key.iter().map(|b| format!("{b:02x}")).collect();
                println!("key {id}{marker}: ed25519 {hex}");
            }
            Ok(())
        }
        Command::Operator(OperatorCommand::Add {
            db,
            email,
            password,
        }) => {
            let state = open(&db).await?;
            let id = o2o_server::identity::service::add_operator(&state, &email, &password).await?;
            println!("operator {id} created");
            state.db.close().await;
            Ok(())
        }
    }
}
