//! Storage: one pool type over SQLite (the embedded default) and PostgreSQL (for scale).
//!
//! Queries are written once, in SQL both dialects understand (`$1` placeholders work in both), and
//! run through [`Query`], which carries its arguments as portable [`Value`]s so that the same call
//! binds them natively on either backend. Column types stay portable: ids as text, money and
//! timestamps (UTC microseconds) as 64-bit integers, coordinates as doubles, JSON as text.
//!
//! SQLite runs as one writer connection plus a pool of readers (WAL mode, foreign keys on):
//! every write goes through [`Db::begin`], so writes are serialized by the pool itself and reads
//! never wait for them. The sequencer's batches are the exception: they run on a connection of
//! its own outside sqlx ([`Db::begin_batch`]), on its own thread, with no hand-off to a
//! connection thread per statement. The two writers take turns, first come first served, and
//! each begins with `BEGIN IMMEDIATE`. Commits are made durable by syncing the WAL after them
//! ([`durable`]).

pub mod columns;
mod direct;
pub mod durable;
mod fields;
mod hot;
mod pagecache;
mod rows;
mod scope;
mod walbuf;

pub use direct::Direct;
pub use hot::{Hot, Touched};
pub use scope::MerchantScope;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions, PgRow};
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{FromRow, PgPool, Postgres, Sqlite, SqlitePool, Transaction};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

/// Which database a [`Db`] talks to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn name(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A storage failure, classified the way callers need it: a conflict on a unique key is an
/// operating condition the caller maps to a 409; anything else is a bug or an outage.
#[derive(Debug, thiserror::Error)]
pub enum DbError {
    #[error("unique constraint violated ({constraint})")]
    Conflict { constraint: String },
    #[error("foreign key violated")]
    ForeignKey,
    #[error(transparent)]
    Other(#[from] sqlx::Error),
}

impl DbError {
    fn classify(err: sqlx::Error) -> DbError {
        if let sqlx::Error::Database(db) = &err {
            match db.kind() {
                sqlx::error::ErrorKind::UniqueViolation => {
                    let constraint = db
                        .constraint()
                        .map(str::to_owned)
                        .unwrap_or_else(|| db.message().to_owned());
                    return DbError::Conflict { constraint };
                }
                sqlx::error::ErrorKind::ForeignKeyViolation => return DbError::ForeignKey,
                _ => {}
            }
        }
        DbError::Other(err)
    }

    /// True when this is a unique violation whose constraint (or SQLite message) mentions `needle`.
    pub fn is_conflict_on(&self, needle: &str) -> bool {
        matches!(self, DbError::Conflict { constraint } if constraint.contains(needle))
    }
}

pub type DbResult<T> = Result<T, DbError>;

/// A bound argument, portable across both backends. NULLs keep their type, because PostgreSQL
/// checks a parameter's declared type against its column.
#[derive(Clone, Debug)]
pub enum Value {
    I64(Option<i64>),
    F64(Option<f64>),
    Text(Option<String>),
    Bool(Option<bool>),
    /// Binary data (BLOB in SQLite, BYTEA in PostgreSQL).
    Bytes(Option<Vec<u8>>),
    /// Arrays, for PostgreSQL's `unnest` (see [`columns`]); SQLite, which has none, is given
    /// their JSON text.
    TextArray(Vec<Option<String>>),
    I64Array(Vec<Option<i64>>),
    BoolArray(Vec<Option<bool>>),
}

impl Value {
    /// An array's JSON text, as SQLite is given it.
    pub(super) fn array_json(&self) -> Option<String> {
        match self {
            Value::TextArray(v) => serde_json::to_string(v).ok(),
            Value::I64Array(v) => serde_json::to_string(v).ok(),
            Value::BoolArray(v) => serde_json::to_string(v).ok(),
            _ => None,
        }
    }
}

impl From<Vec<u8>> for Value {
    fn from(v: Vec<u8>) -> Self {
        Value::Bytes(Some(v))
    }
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::I64(Some(v))
    }
}
impl From<Option<i64>> for Value {
    fn from(v: Option<i64>) -> Self {
        Value::I64(v)
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::I64(Some(i64::from(v)))
    }
}
impl From<Option<u32>> for Value {
    fn from(v: Option<u32>) -> Self {
        Value::I64(v.map(i64::from))
    }
}
impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::F64(Some(v))
    }
}
impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(Some(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Text(Some(v))
    }
}
impl From<&String> for Value {
    fn from(v: &String) -> Self {
        Value::Text(Some(v.clone()))
    }
}
impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Text(Some(v.to_owned()))
    }
}
impl From<Option<String>> for Value {
    fn from(v: Option<String>) -> Self {
        Value::Text(v)
    }
}
impl From<Option<&str>> for Value {
    fn from(v: Option<&str>) -> Self {
        Value::Text(v.map(str::to_owned))
    }
}

/// One SQL statement with its arguments. The text is `&'static str`: values are always bound,
/// never formatted into SQL.
#[derive(Debug)]
pub struct Query {
    sql: &'static str,
    args: Vec<Value>,
}

/// Starts a statement; chain [`Query::bind`] for each `$n` in order.
pub fn query(sql: &'static str) -> Query {
    Query {
        sql,
        args: Vec::new(),
    }
}

impl Query {
    pub fn bind(mut self, value: impl Into<Value>) -> Self {
        self.args.push(value.into());
        self
    }

    fn sqlite(&self) -> sqlx::query::Query<'_, Sqlite, sqlx::sqlite::SqliteArguments> {
        let mut q = sqlx::query(self.sql);
        for arg in &self.args {
            q = match arg.clone() {
                Value::I64(v) => q.bind(v),
                Value::F64(v) => q.bind(v),
                Value::Text(v) => q.bind(v),
                Value::Bool(v) => q.bind(v),
                Value::Bytes(v) => q.bind(v),
                a @ (Value::TextArray(_) | Value::I64Array(_) | Value::BoolArray(_)) => {
                    q.bind(a.array_json())
                }
            };
        }
        q
    }

    fn pg(self) -> sqlx::query::Query<'static, Postgres, sqlx::postgres::PgArguments> {
        let mut q = sqlx::query(self.sql);
        // Taken, not cloned: a batch's arrays may hold hundreds of kilobytes.
        for arg in self.args {
            q = match arg {
                Value::I64(v) => q.bind(v),
                Value::F64(v) => q.bind(v),
                Value::Text(v) => q.bind(v),
                Value::Bool(v) => q.bind(v),
                Value::Bytes(v) => q.bind(v),
                Value::TextArray(v) => q.bind(v),
                Value::I64Array(v) => q.bind(v),
                Value::BoolArray(v) => q.bind(v),
            };
        }
        q
    }
}

/// A row type readable from either backend (derive `sqlx::FromRow` on a struct of portable
/// fields, or use a tuple).
pub trait Record:
    for<'r> FromRow<'r, SqliteRow>
    + for<'r> FromRow<'r, PgRow>
    + serde::de::DeserializeOwned
    + Send
    + Unpin
{
}
impl<T> Record for T where
    T: for<'r> FromRow<'r, SqliteRow>
        + for<'r> FromRow<'r, PgRow>
        + serde::de::DeserializeOwned
        + Send
        + Unpin
{
}

/// The database: cheap to clone, shared by every request. It also holds the node's [`Hot`]
/// copies of the reads every request makes, which its transactions invalidate on commit.
#[derive(Clone, Debug)]
pub struct Db {
    pools: Pools,
    hot: Arc<Hot>,
    /// SQLite: the WAL that commits are synced through (see [`durable`]).
    wal: Option<Arc<durable::WalFile>>,
    /// SQLite: the sequencer's own connections (see [`Db::begin_batch`]).
    raw: Option<Arc<RawPool>>,
}

/// Raw connections to one SQLite file, opened when first needed and kept between batches, and
/// the turn both SQLite writers wait for.
#[derive(Debug)]
struct RawPool {
    path: std::path::PathBuf,
    idle: std::sync::Mutex<Vec<direct::RawConn>>,
    /// One permit: the writer holding it may write. Waiters are served first come, first
    /// served, so neither the sequencer's batches nor other writes can starve the other (SQLite's
    /// own wait for its write lock polls, and a writer that retries at once would always win).
    /// Closed by [`Db::close`]: no connection is opened or kept after it.
    turn: Arc<tokio::sync::Semaphore>,
}

impl RawPool {
    /// Waits for the writers' turn.
    async fn turn(&self) -> DbResult<tokio::sync::OwnedSemaphorePermit> {
        // As long as the writer pool waits for its connection: a writer that waits longer is
        // stuck (say, beginning a second transaction while holding one), and gets an error.
        match tokio::time::timeout(WRITER_WAIT, self.turn.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) => Err(DbError::Other(sqlx::Error::PoolClosed)),
            Err(_) => Err(DbError::Other(sqlx::Error::PoolTimedOut)),
        }
    }

    fn is_closed(&self) -> bool {
        self.turn.is_closed()
    }
}

impl std::fmt::Debug for direct::RawConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RawConn")
    }
}

/// How long a SQLite writer waits for its turn before giving up.
const WRITER_WAIT: Duration = Duration::from_secs(30);

/// The settings of every SQLite connection that may write, beside journal mode and sync.
const SQLITE_PRAGMAS: [(&str, &str); 6] = [
    ("foreign_keys", "ON"),
    // A page cache big enough for the hot indexes (64 MiB per connection, allocated as used)
    // and memory-mapped reads: index pages are found without a system call.
    ("cache_size", "-65536"),
    ("mmap_size", "268435456"),
    ("temp_store", "memory"),
    ("wal_autocheckpoint", "65536"),
    ("journal_size_limit", "268435456"),
];

/// A PostgreSQL connection idle this long is pinged before it is used again.
const PING_WHEN_IDLE: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
enum Pools {
    Sqlite {
        writer: SqlitePool,
        readers: SqlitePool,
        checkpointer: SqlitePool,
    },
    Postgres(PgPool),
}

/// How to reach the database and how big its pools may grow.
#[derive(Clone, Debug)]
pub struct DbOptions {
    pub url: String,
    /// PostgreSQL only: the schema every connection works in (tests use one schema per test).
    pub pg_schema: Option<String>,
    pub max_connections: u32,
}

impl Db {
    /// Connects, creating the SQLite file (and its directory) when missing.
    pub async fn connect(opts: &DbOptions) -> anyhow::Result<Db> {
        if opts.url.starts_with("postgres://") || opts.url.starts_with("postgresql://") {
            let mut connect = PgConnectOptions::from_str(&opts.url)?;
            if let Some(schema) = &opts.pg_schema {
                connect = connect.options([("search_path", schema.as_str())]);
            }
            let pool = PgPoolOptions::new()
                .max_connections(opts.max_connections)
                .acquire_timeout(Duration::from_secs(10))
                // sqlx pings every connection it hands out, a round trip before each
                // transaction or query (a sixth of a payment batch's). Only a connection idle
                // for a while is pinged (one that fails is closed and another taken): the server
                // or the network may have dropped it since. The cost: after a server restart, a
                // connection used in the last few seconds fails its next statement once (an
                // error answered to that request or batch, with no effect) and is replaced.
                .test_before_acquire(false)
                .before_acquire(|conn, meta| {
                    Box::pin(async move {
                        if meta.idle_for >= PING_WHEN_IDLE {
                            sqlx::Connection::ping(conn).await?;
                        }
                        Ok(true)
                    })
                })
                .connect_with(connect.clone())
                .await?;
            // The hot-read listener holds a connection of its own, outside the pool's limit.
            let listener = PgPoolOptions::new()
                .max_connections(1)
                .connect_lazy_with(connect);
            Ok(Db::new(Pools::Postgres(pool), Some(listener), None))
        } else if opts.url.starts_with("sqlite:") {
            // Before SQLite is first used in the process (see `pagecache`).
            pagecache::install();
            let mut connect = SqliteConnectOptions::from_str(&opts.url)?
                .create_if_missing(true)
                .journal_mode(SqliteJournalMode::Wal)
                .synchronous(SqliteSynchronous::Full)
                .foreign_keys(true)
                .busy_timeout(Duration::from_millis(direct::BUSY_TIMEOUT_MS as u64));
            for (name, value) in SQLITE_PRAGMAS {
                connect = connect.pragma(name, value);
            }
            if let Some(parent) = connect.get_filename().parent()
                && !parent.as_os_str().is_empty()
            {
                std::fs::create_dir_all(parent)?;
            }
            let wal = Arc::new(durable::WalFile::of(connect.get_filename()));
            let path = connect.get_filename().to_path_buf();
            // No ping before each acquire: an embedded file does not drop connections, and the
            // ping would cost a round trip to the connection's thread on every query. The writer
            // commits without waiting for the disk; `Tx` syncs the WAL after (see `durable`).
            let writer = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(1)
                .min_connections(1)
                .acquire_timeout(WRITER_WAIT)
                .connect_with(connect.clone().synchronous(SqliteSynchronous::Normal))
                .await?;
            let readers = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(opts.max_connections.clamp(1, 16))
                .acquire_timeout(Duration::from_secs(10))
                .connect_with(connect.clone().read_only(true))
                .await?;
            // Copying the WAL back into the database file is done by a connection of its own,
            // beside the writers, so that no commit pays for it (see `checkpoints`). A writer
            // still checkpoints itself once the WAL holds 256 MiB (65,536 pages). Under steady
            // writes the background checkpoint never quite catches up with the writer, so the
            // WAL starts over after the writer's own, which copies what is left and syncs the
            // database file while holding the writer: 25-64 ms here, about every 1.3 s under
            // `o2o bench checkout` (about 200 MB/s of WAL), which sets its p99 once batches
            // grow. SQLite cannot start a WAL over without that sync between the last page
            // copied and the first new frame: doing it from this connection while holding the
            // writers' turn took as long (the sync alone 27 ms), checkpointing more often cost
            // throughput, and a larger WAL made each pause longer.
            let checkpointer = SqlitePoolOptions::new()
                .test_before_acquire(false)
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(30))
                .connect_with(connect)
                .await?;
            let mut db = Db::new(
                Pools::Sqlite {
                    writer,
                    readers,
                    checkpointer: checkpointer.clone(),
                },
                None,
                Some(wal),
            );
            db.raw = Some(Arc::new(RawPool {
                path,
                idle: Default::default(),
                turn: Arc::new(tokio::sync::Semaphore::new(1)),
            }));
            tokio::spawn(checkpoints(checkpointer, Arc::downgrade(&db.hot)));
            Ok(db)
        } else {
            anyhow::bail!("unsupported database URL: expected sqlite:… or postgres://…")
        }
    }

    pub fn backend(&self) -> Backend {
        match &self.pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        }
    }

    /// Applies the migrations of this backend.
    pub async fn migrate(&self) -> anyhow::Result<()> {
        match &self.pools {
            Pools::Sqlite { writer, .. } => {
                sqlx::migrate!("./migrations/sqlite").run(writer).await?
            }
            Pools::Postgres(pool) => sqlx::migrate!("./migrations/postgres").run(pool).await?,
        }
        if let Some(wal) = &self.wal {
            wal.check_present()?;
        }
        Ok(())
    }

    /// Starts a write transaction.
    pub async fn begin(&self) -> DbResult<Tx> {
        self.begin_postgres_with(None).await
    }

    /// [`Db::begin`], with `postgres` as the statement that begins it on PostgreSQL.
    async fn begin_postgres_with(&self, postgres: Option<&'static str>) -> DbResult<Tx> {
        // SQLite: the writers' turn first (see `RawPool::turn`).
        let turn = match &self.raw {
            Some(pool) => Some(pool.turn().await?),
            None => None,
        };
        let inner = match &self.pools {
            // IMMEDIATE: the write lock is taken now (another process may hold it: SQLite then
            // waits), so a transaction that reads then writes never finds its snapshot stale.
            Pools::Sqlite { writer, .. } => TxInner::Sqlite(
                writer
                    .begin_with("BEGIN IMMEDIATE")
                    .await
                    .map_err(DbError::classify)?,
            ),
            Pools::Postgres(pool) => TxInner::Postgres(
                match postgres {
                    Some(sql) => pool.begin_with(sql).await,
                    None => pool.begin().await,
                }
                .map_err(DbError::classify)?,
            ),
        };
        Ok(self.tx(inner, turn))
    }

    /// A transaction of this database on `inner`, holding the writers' `turn` (SQLite).
    fn tx(&self, inner: TxInner, turn: Option<tokio::sync::OwnedSemaphorePermit>) -> Tx {
        Tx {
            inner,
            hot: self.hot.clone(),
            touched: Touched::empty(),
            new_sessions: Vec::new(),
            wal: self.wal.clone(),
            _turn: turn,
        }
    }

    fn new(pools: Pools, listener: Option<PgPool>, wal: Option<Arc<durable::WalFile>>) -> Db {
        let backend = match &pools {
            Pools::Sqlite { .. } => Backend::Sqlite,
            Pools::Postgres(_) => Backend::Postgres,
        };
        let hot = Arc::new(Hot::new(backend));
        if let Some(pool) = listener {
            let task = tokio::spawn(hot::listen(pool, Arc::downgrade(&hot)));
            hot.set_listener(task.abort_handle());
        }
        Db {
            pools,
            hot,
            wal,
            raw: None,
        }
    }

    /// Starts one of the sequencer's batches: on SQLite, on a connection of its own outside
    /// sqlx, whose statements (reads included) run on the calling thread, with no hand-off to a
    /// connection thread, and stay prepared between batches. Call it from a thread that may
    /// block: every statement and the commit run on it. It waits for the writers' turn like
    /// [`Db::begin`].
    ///
    /// On PostgreSQL the transaction begins with the batch's first statement, in the same round
    /// trip as setting its reads to be planned for the values they are sent
    /// (`plan_cache_mode = force_custom_plan`): PostgreSQL would otherwise keep, per
    /// connection, a plan made on a table's first few rows. [`Tx::batch_reads_done`] ends that
    /// before the writes, whose planning costs more than it saves. A batch that reads nothing
    /// and writes with one statement ([`Tx::execute_last`]) sends only that statement, which
    /// commits by itself: one round trip in all, where a batch that reads takes five.
    pub async fn begin_batch(&self) -> DbResult<Tx> {
        let pool = match (&self.raw, &self.pools) {
            (Some(pool), _) => pool,
            (None, Pools::Postgres(pg)) => {
                let inner = TxInner::PgLater {
                    pool: pg.clone(),
                    ran_last: false,
                };
                return Ok(self.tx(inner, None));
            }
            (None, Pools::Sqlite { .. }) => return self.begin().await,
        };
        let turn = pool.turn().await?;
        if pool.is_closed() {
            return Err(DbError::Other(sqlx::Error::PoolClosed));
        }
        let idle = pool.idle.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let conn = match idle {
            Some(c) => c,
            None => direct::RawConn::open(&pool.path, &raw_pragmas())?,
        };
        let mut raw = RawTx {
            conn: Some(conn),
            home: pool.clone(),
        };
        // On failure the connection goes back to the pool (dropping `raw`), statements kept.
        raw.direct()?.exec("BEGIN IMMEDIATE")?;
        Ok(self.tx(TxInner::Raw(raw), Some(turn)))
    }

    /// SQLite: the WAL whose sync makes commits durable (see [`durable`]).
    pub fn wal(&self) -> Option<Arc<durable::WalFile>> {
        self.wal.clone()
    }

    /// Waits until everything committed so far is on the disk: call before answering from
    /// what a read found committed (an idempotent replay), since on SQLite a commit is visible
    /// a moment before its sync returns (see [`durable`]). Nothing to wait for on PostgreSQL.
    pub async fn durable(&self) {
        if let Some(wal) = &self.wal {
            durable::sync_blocking(wal.clone()).await;
        }
    }

    /// [`Db::durable`] for a read that found a row changed at `changed_at` (µs since the epoch):
    /// only a recent change can still be waiting for its sync, so older rows answer at once.
    pub async fn durable_since(&self, changed_at: i64) {
        const RECENT_US: i64 = 10_000_000;
        if self.wal.is_some() && now_us().saturating_sub(changed_at) < RECENT_US {
            self.durable().await;
        }
    }

    /// [`Db::durable_since`] for a read of several rows: the most recent change decides.
    pub async fn durable_since_latest(&self, changed_at: impl IntoIterator<Item = i64>) {
        if let Some(latest) = changed_at.into_iter().max() {
            self.durable_since(latest).await;
        }
    }

    /// The node's copies of hot reads (sessions, code resolutions).
    pub fn hot(&self) -> &Hot {
        &self.hot
    }

    pub async fn fetch_optional<T: Record>(&self, q: Query) -> DbResult<Option<T>> {
        match &self.pools {
            Pools::Sqlite { readers, .. } => q
                .sqlite()
                .try_map(|row| T::from_row(&row))
                .fetch_optional(readers)
                .await
                .map_err(DbError::classify),
            Pools::Postgres(pool) => q
                .pg()
                .try_map(|row| T::from_row(&row))
                .fetch_optional(pool)
                .await
                .map_err(DbError::classify),
        }
    }

    pub async fn fetch_one<T: Record>(&self, q: Query) -> DbResult<T> {
        self.fetch_optional(q)
            .await?
            .ok_or(DbError::Other(sqlx::Error::RowNotFound))
    }

    pub async fn fetch_all<T: Record>(&self, q: Query) -> DbResult<Vec<T>> {
        match &self.pools {
            Pools::Sqlite { readers, .. } => q
                .sqlite()
                .try_map(|row| T::from_row(&row))
                .fetch_all(readers)
                .await
                .map_err(DbError::classify),
            Pools::Postgres(pool) => q
                .pg()
                .try_map(|row| T::from_row(&row))
                .fetch_all(pool)
                .await
                .map_err(DbError::classify),
        }
    }

    /// Reads rows with the statement written for this backend (for the rare dialect
    /// difference, such as expanding a JSON array parameter).
    pub async fn fetch_all_for<T: Record>(
        &self,
        sqlite: &'static str,
        postgres: &'static str,
        args: Vec<Value>,
    ) -> DbResult<Vec<T>> {
        let sql = match &self.pools {
            Pools::Sqlite { .. } => sqlite,
            Pools::Postgres(_) => postgres,
        };
        self.fetch_all(Query { sql, args }).await
    }

    /// Runs one statement in its own transaction.
    pub async fn execute(&self, q: Query) -> DbResult<u64> {
        let mut tx = self.begin().await?;
        let n = tx.execute(q).await?;
        tx.commit().await?;
        Ok(n)
    }

    /// Checks the database answers (for `/readyz`).
    pub async fn ping(&self) -> DbResult<()> {
        let _: (i64,) = self.fetch_one(query("SELECT CAST(1 AS BIGINT)")).await?;
        Ok(())
    }

    /// Whether [`Db::close`] has closed the pool that writes (on SQLite the last it closes):
    /// background work stops rather than fail against it.
    pub fn is_closed(&self) -> bool {
        match &self.pools {
            Pools::Sqlite { writer, .. } => writer.is_closed(),
            Pools::Postgres(pool) => pool.is_closed(),
        }
    }

    pub async fn close(&self) {
        self.hot.stop_listener();
        if let Some(raw) = &self.raw {
            raw.turn.close();
            raw.idle.lock().unwrap_or_else(|e| e.into_inner()).clear();
        }
        match &self.pools {
            Pools::Sqlite {
                writer,
                readers,
                checkpointer,
            } => {
                checkpointer.close().await;
                readers.close().await;
                writer.close().await;
            }
            Pools::Postgres(pool) => pool.close().await,
        }
    }
}

/// How often the checkpointer looks at the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_millis(200);

/// Copies committed pages from the WAL into the database file, `PASSIVE`ly: never waiting for
/// the writer or the readers, nor making them wait, so commits stay one WAL append and one
/// fsync each. When everything is copied, the writer's next transaction starts the WAL over.
/// Ends when the database is closed or dropped.
async fn checkpoints(pool: SqlitePool, alive: std::sync::Weak<Hot>) {
    // Failures in a row: each doubles the wait (up to 2^6 times, about 13 s), and only the 1st,
    // 2nd, 4th, 8th… is logged, so a lasting fault neither spins nor floods the log.
    let mut failures: u32 = 0;
    loop {
        tokio::time::sleep(CHECKPOINT_EVERY * (1 << failures.min(6))).await;
        if pool.is_closed() || alive.strong_count() == 0 {
            return;
        }
        match sqlx::query("PRAGMA wal_checkpoint(PASSIVE)")
            .execute(&pool)
            .await
        {
            Ok(_) => failures = 0,
            Err(_) if pool.is_closed() => return,
            Err(e) => {
                failures = failures.saturating_add(1);
                if failures.is_power_of_two() {
                    tracing::warn!(error = %e, failures, "WAL checkpoint failed; retrying later");
                }
            }
        }
    }
}

/// A write transaction on either backend. Dropping it without [`Tx::commit`] rolls it back.
pub struct Tx {
    inner: TxInner,
    hot: Arc<Hot>,
    /// What this transaction changed of the hot reads (see [`Hot`]), forgotten on commit.
    touched: Touched,
    /// Sessions this transaction creates, kept hot once it commits (see [`Tx::keeps_session`]).
    new_sessions: Vec<(hot::Ticket, String, hot::SessionEntry)>,
    wal: Option<Arc<durable::WalFile>>,
    /// SQLite: the writers' turn, given back when this ends (see `RawPool::turn`).
    _turn: Option<tokio::sync::OwnedSemaphorePermit>,
}

enum TxInner {
    Sqlite(Transaction<'static, Sqlite>),
    Postgres(Transaction<'static, Postgres>),
    /// A batch on a raw SQLite connection (see [`Db::begin_batch`]).
    Raw(RawTx),
    /// A batch on PostgreSQL before its first statement (see [`Db::begin_batch`]); after
    /// [`Tx::execute_last`] ran its statement alone (`ran_last`), a batch with nothing left to
    /// send.
    PgLater {
        pool: PgPool,
        ran_last: bool,
    },
}

/// A statement on a PostgreSQL batch that [`Tx::begun`] did not begin: one after its last.
fn unbegun() -> DbError {
    DbError::Other(sqlx::Error::Protocol(
        "a statement after a batch's last one".into(),
    ))
}

/// How a PostgreSQL batch begins: its reads are planned for the values they are sent (see
/// [`Db::begin_batch`]).
const PG_BATCH_BEGIN: &str = "BEGIN; SET LOCAL plan_cache_mode = force_custom_plan";

/// A transaction open on a raw connection; rolled back if dropped before its commit. The
/// connection goes back to its pool either way.
struct RawTx {
    conn: Option<direct::RawConn>,
    home: Arc<RawPool>,
}

impl RawTx {
    fn direct(&mut self) -> DbResult<Direct<'_>> {
        self.conn
            .as_mut()
            .map(direct::RawConn::direct)
            .ok_or(DbError::Other(sqlx::Error::PoolClosed))
    }

    fn commit(mut self) -> DbResult<()> {
        let done = self.direct()?.exec("COMMIT");
        // Dropped: a failed commit is rolled back there, and the connection goes home.
        done
    }
}

impl Drop for RawTx {
    fn drop(&mut self) {
        if let Some(mut conn) = self.conn.take() {
            // Ends whatever is still open (nothing after a commit). A connection that cannot end
            // its transaction is closed rather than kept.
            let mut d = conn.direct();
            if d.in_transaction() {
                let _ = d.exec("ROLLBACK");
            }
            let clean = !d.in_transaction();
            drop(d);
            if clean && !self.home.is_closed() {
                self.home
                    .idle
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(conn);
            }
        }
    }
}

/// The pragmas of a raw connection: those of every writer, and commits that leave the sync to
/// [`durable`] (as the sqlx writer's do).
fn raw_pragmas() -> Vec<(&'static str, &'static str)> {
    let mut p = SQLITE_PRAGMAS.to_vec();
    p.push(("synchronous", "NORMAL"));
    p
}

impl Tx {
    pub fn backend(&self) -> Backend {
        match &self.inner {
            TxInner::Sqlite(_) | TxInner::Raw(_) => Backend::Sqlite,
            TxInner::Postgres(_) | TxInner::PgLater { .. } => Backend::Postgres,
        }
    }

    /// Whether this transaction has sent a statement: always on SQLite; on PostgreSQL, once a
    /// batch's first statement has begun it (see [`Db::begin_batch`]). Rows read since hold
    /// their locks until the commit.
    pub fn has_begun(&self) -> bool {
        !matches!(
            self.inner,
            TxInner::PgLater {
                ran_last: false,
                ..
            }
        )
    }

    /// Begins a PostgreSQL batch's transaction before its first statement (see
    /// [`Db::begin_batch`]).
    async fn begun(&mut self) -> DbResult<()> {
        if let TxInner::PgLater { pool, ran_last } = &self.inner {
            if *ran_last {
                return Err(unbegun());
            }
            let tx = pool
                .begin_with(PG_BATCH_BEGIN)
                .await
                .map_err(DbError::classify)?;
            self.inner = TxInner::Postgres(tx);
        }
        Ok(())
    }

    /// Runs a batch's last statement, as [`Tx::execute`] does; but on PostgreSQL, when the
    /// batch has sent nothing before it, alone: the statement is then its own transaction, and
    /// has committed when this returns (what follows must not fail, and the commit sends
    /// nothing).
    pub async fn execute_last(&mut self, q: Query) -> DbResult<u64> {
        // A transaction that changes what nodes keep hot tells them in its commit: not alone.
        if let TxInner::PgLater {
            pool,
            ran_last: ran_last @ false,
        } = &mut self.inner
            && self.touched.is_empty()
        {
            let done = q
                .pg()
                .execute(&*pool)
                .await
                .map(|r| r.rows_affected())
                .map_err(DbError::classify)?;
            *ran_last = true;
            return Ok(done);
        }
        self.execute(q).await
    }

    /// Runs the statement written for this transaction's backend (for the rare set-based
    /// statements whose SQL differs between the dialects, e.g. reading a JSON array of rows).
    pub async fn execute_for(
        &mut self,
        sqlite: &'static str,
        postgres: &'static str,
        args: Vec<Value>,
    ) -> DbResult<u64> {
        let q = Query {
            sql: self.pick(sqlite, postgres),
            args,
        };
        self.execute(q).await
    }

    /// Ends the reads of a batch begun by [`Db::begin_batch`]: on PostgreSQL the statements that
    /// follow keep their cached plans again (`plan_cache_mode = auto`); nothing on SQLite.
    pub async fn batch_reads_done(&mut self) -> DbResult<()> {
        // A batch that has read nothing has set nothing (see `Db::begin_batch`).
        if let TxInner::Postgres(_) = self.inner {
            self.execute(query("SET LOCAL plan_cache_mode = auto"))
                .await?;
        }
        Ok(())
    }

    /// Like [`Tx::execute_for`], reading rows.
    pub async fn fetch_all_for<T: Record>(
        &mut self,
        sqlite: &'static str,
        postgres: &'static str,
        args: Vec<Value>,
    ) -> DbResult<Vec<T>> {
        let q = Query {
            sql: self.pick(sqlite, postgres),
            args,
        };
        self.fetch_all(q).await
    }

    /// On SQLite, the connection's handle for writing many rows through one prepared statement
    /// each (see [`direct`]); `None` on PostgreSQL. Other calls on this transaction wait until
    /// the answer is dropped.
    pub async fn direct(&mut self) -> DbResult<Option<direct::Direct<'_>>> {
        match &mut self.inner {
            TxInner::Sqlite(tx) => {
                let lock = tx.lock_handle().await.map_err(DbError::classify)?;
                Ok(Some(direct::Direct::new(lock)))
            }
            TxInner::Raw(raw) => Ok(Some(raw.direct()?)),
            TxInner::Postgres(_) | TxInner::PgLater { .. } => Ok(None),
        }
    }

    /// Writes many rows with one statement text per backend, and answers the rows changed: on
    /// SQLite, `sqlite` runs once per row with the row's fields bound to its `:name` parameters
    /// (see [`Direct`]); on PostgreSQL, `postgres` is written to read the rows with
    /// `json_to_recordset($1::json)` and is sent reading them from one array per column instead
    /// (see [`columns`]).
    /// On SQLite the writes run on the calling thread: for the sequencer's own thread.
    pub async fn write_rows<T: serde::Serialize>(
        &mut self,
        rows: &[T],
        sqlite: &'static str,
        postgres: &'static str,
    ) -> DbResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        match &mut self.inner {
            TxInner::Sqlite(tx) => {
                let lock = tx.lock_handle().await.map_err(DbError::classify)?;
                direct::Direct::new(lock).each(sqlite, rows)
            }
            TxInner::Raw(raw) => raw.direct()?.each(sqlite, rows),
            TxInner::Postgres(_) | TxInner::PgLater { .. } => {
                let statement = columns::statement(postgres)
                    .map_err(|e| DbError::Other(sqlx::Error::Protocol(e)))?;
                let mut cols = columns::Columns::new(&statement.columns);
                for row in rows {
                    cols.push(row)
                        .map_err(|e| DbError::Other(sqlx::Error::Encode(Box::new(e))))?;
                }
                let mut q = query(&statement.sql);
                q.args = cols.into_values();
                self.execute(q).await
            }
        }
    }

    fn pick(&self, sqlite: &'static str, postgres: &'static str) -> &'static str {
        match &self.inner {
            TxInner::Sqlite(_) | TxInner::Raw(_) => sqlite,
            TxInner::Postgres(_) | TxInner::PgLater { .. } => postgres,
        }
    }

    pub async fn execute(&mut self, q: Query) -> DbResult<u64> {
        self.begun().await?;
        match &mut self.inner {
            TxInner::Sqlite(tx) => q
                .sqlite()
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(DbError::classify),
            TxInner::Postgres(tx) => q
                .pg()
                .execute(&mut **tx)
                .await
                .map(|r| r.rows_affected())
                .map_err(DbError::classify),
            TxInner::Raw(raw) => raw.direct()?.execute(q.sql, &q.args),
            TxInner::PgLater { .. } => Err(unbegun()),
        }
    }

    pub async fn fetch_optional<T: Record>(&mut self, q: Query) -> DbResult<Option<T>> {
        self.begun().await?;
        match &mut self.inner {
            TxInner::Sqlite(tx) => q
                .sqlite()
                .try_map(|row| T::from_row(&row))
                .fetch_optional(&mut **tx)
                .await
                .map_err(DbError::classify),
            TxInner::Postgres(tx) => q
                .pg()
                .try_map(|row| T::from_row(&row))
                .fetch_optional(&mut **tx)
                .await
                .map_err(DbError::classify),
            TxInner::Raw(raw) => Ok(raw.direct()?.rows(q.sql, &q.args, 1)?.pop()),
            TxInner::PgLater { .. } => Err(unbegun()),
        }
    }

    pub async fn fetch_one<T: Record>(&mut self, q: Query) -> DbResult<T> {
        self.fetch_optional(q)
            .await?
            .ok_or(DbError::Other(sqlx::Error::RowNotFound))
    }

    pub async fn fetch_all<T: Record>(&mut self, q: Query) -> DbResult<Vec<T>> {
        self.begun().await?;
        match &mut self.inner {
            TxInner::Sqlite(tx) => q
                .sqlite()
                .try_map(|row| T::from_row(&row))
                .fetch_all(&mut **tx)
                .await
                .map_err(DbError::classify),
            TxInner::Postgres(tx) => q
                .pg()
                .try_map(|row| T::from_row(&row))
                .fetch_all(&mut **tx)
                .await
                .map_err(DbError::classify),
            TxInner::Raw(raw) => raw.direct()?.rows(q.sql, &q.args, usize::MAX),
            TxInner::PgLater { .. } => Err(unbegun()),
        }
    }

    /// Commits durably (on SQLite, the WAL is synced before this returns); then the node forgets
    /// the hot reads this transaction changed.
    pub async fn commit(self) -> DbResult<()> {
        if let Some(wal) = self.commit_unsynced().await? {
            durable::sync_blocking(wal).await;
        }
        Ok(())
    }

    /// Commits; on SQLite, answers the WAL whose sync makes the commit durable, and the caller
    /// must not report the commit as done before that sync (see [`durable::Syncer`]). Nothing on
    /// PostgreSQL, whose commit is durable when it returns.
    pub async fn commit_unsynced(self) -> DbResult<Option<Arc<durable::WalFile>>> {
        let Tx {
            inner,
            hot,
            touched,
            new_sessions,
            wal,
            _turn,
        } = self;
        let unsynced = match inner {
            TxInner::Sqlite(tx) => {
                tx.commit().await.map_err(DbError::classify)?;
                wal
            }
            TxInner::Raw(raw) => {
                raw.commit()?;
                wal
            }
            TxInner::Postgres(mut tx) => {
                if !touched.is_empty() {
                    // Delivered to every node's listener when (and only if) this commits.
                    sqlx::query("SELECT pg_notify($1, $2)")
                        .bind(hot::CHANNEL)
                        .bind(touched.bits().to_string())
                        .execute(&mut *tx)
                        .await
                        .map_err(DbError::classify)?;
                }
                tx.commit().await.map_err(DbError::classify)?;
                None
            }
            // Nothing sent, or one statement that has committed by itself (never one that
            // touches what nodes keep hot, see `execute_last`).
            TxInner::PgLater { .. } => None,
        };
        hot.forget(touched);
        for (ticket, token_hash, entry) in new_sessions {
            hot.sessions.put(ticket, &token_hash, entry);
        }
        Ok(unsynced)
    }

    /// Keeps a session this transaction creates hot from the moment it commits, so that the
    /// first requests made with its token do not each read it back (a forget of sessions before
    /// the commit, this one's included, keeps it out; it is then read on first use).
    pub fn keeps_session(&mut self, token_hash: &str, entry: hot::SessionEntry) {
        let ticket = self.hot.sessions.ticket();
        self.new_sessions
            .push((ticket, token_hash.to_owned(), entry));
    }

    /// Records that this transaction changes what [`Hot`] keeps (`what`): on commit the node
    /// forgets it (and, on PostgreSQL, every other node too, see [`Hot`]).
    pub fn touches(&mut self, what: Touched) {
        self.touched |= what;
    }
}

/// Now, in UTC microseconds since the Unix epoch: the one timestamp unit stored anywhere.
pub fn now_us() -> i64 {
    jiff::Timestamp::now().as_microsecond()
}

/// Formats a stored timestamp as RFC 3339 UTC in whole seconds (the API's time format), as
/// `strftime("%Y-%m-%dT%H:%M:%SZ")` would. Every time in every answer and event passes through
/// here (an order carries up to eight), so the digits are written straight into the text rather
/// than through a format string parsed on each call.
pub fn rfc3339(us: i64) -> String {
    let Ok(t) = jiff::Timestamp::from_microsecond(us) else {
        return String::new();
    };
    let at = jiff::tz::Offset::UTC.to_datetime(t);
    let Ok(year) = u16::try_from(at.year()) else {
        // Years before 0 are written with a sign; leave those to the general formatter.
        return t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
    };
    let mut text = String::with_capacity(20);
    for (n, then) in [
        (year / 100, None),
        (year % 100, Some('-')),
        (at.month() as u16, Some('-')),
        (at.day() as u16, Some('T')),
        (at.hour() as u16, Some(':')),
        (at.minute() as u16, Some(':')),
        (at.second() as u16, Some('Z')),
    ] {
        // Each part is below 100 here.
        text.push(char::from(b'0' + (n / 10) as u8));
        text.push(char::from(b'0' + (n % 10) as u8));
        text.extend(then);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_times_are_written_as_the_general_formatter_writes_them() {
        let general = |us: i64| {
            jiff::Timestamp::from_microsecond(us)
                .map(|t| t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string())
                .unwrap_or_default()
        };
        let (min, max) = (
            jiff::Timestamp::MIN.as_microsecond(),
            jiff::Timestamp::MAX.as_microsecond(),
        );
        let mut samples = vec![
            0,
            -1,
            1,
            999_999,
            1_000_000,
            min,
            max,
            min - 1,
            max + 1,
            i64::MIN,
            i64::MAX,
            // 2026-12-07T03:13:39.5Z, 1999-12-31T23:59:59.999999Z, 2000-02-29T12:00:00Z.
            1_796_613_219_500_000,
            946_684_799_999_999,
            951_825_600_000_000,
            // Years 0, 1, 9 and 10, 99 and 100, 999 and 1000.
            -62_167_219_200_000_000,
            -62_135_596_800_000_000,
            -61_883_136_000_000_000,
            -61_851_600_000_000_000,
            -59_042_995_200_000_000,
            -59_011_459_200_000_000,
            -30_641_760_000_000_000,
            -30_610_224_000_000_000,
        ];
        // A spread over the whole range, and odd microseconds near now.
        let step = (max / 997) - (min / 997);
        samples.extend((0..997).map(|i| min + i * step + i * 7_919));
        samples.extend((0..1000).map(|i| 1_796_613_219_000_000 + i * 86_400_123_457));
        for us in samples {
            assert_eq!(rfc3339(us), general(us), "at {us} µs");
        }
        assert_eq!(rfc3339(1_796_613_219_500_000), "2026-12-07T03:13:39Z");
        assert_eq!(rfc3339(i64::MAX), "");
    }

    async fn file_db(dir: &tempfile::TempDir) -> Db {
        let url = format!("sqlite:{}", dir.path().join("o2o.db").display());
        let db = Db::connect(&DbOptions {
            url,
            pg_schema: None,
            max_connections: 4,
        })
        .await
        .unwrap();
        let mut tx = db.begin().await.unwrap();
        tx.execute(query(
            "CREATE TABLE t (id TEXT PRIMARY KEY, n INTEGER NOT NULL, flag INTEGER, \
             price REAL, note TEXT, raw BLOB)",
        ))
        .await
        .unwrap();
        tx.commit().await.unwrap();
        db
    }

    #[derive(Debug, PartialEq, sqlx::FromRow, serde::Deserialize)]
    struct Row {
        id: String,
        n: i64,
        flag: bool,
        price: Option<f64>,
        note: Option<String>,
        raw: Option<Vec<u8>>,
    }

    /// Runs `work` on a thread of its own, as the sequencer runs its batches (they block).
    fn on_own_thread<T: Send + 'static>(
        work: impl std::future::Future<Output = T> + Send + 'static,
    ) -> std::thread::JoinHandle<T> {
        std::thread::spawn(move || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(work)
        })
    }

    async fn count(db: &Db) -> i64 {
        let (n,): (i64,) = db.fetch_one(query("SELECT COUNT(*) FROM t")).await.unwrap();
        n
    }

    /// A batch reads what sqlx reads, the same way: structs by column name (NULL as `None`,
    /// 1 as `true`, blobs as bytes), tuples in column order, numbered arguments by number.
    #[tokio::test]
    async fn a_batch_reads_and_writes_like_a_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir).await;
        let mut tx = db.begin_batch().await.unwrap();
        // `$2` before `$1`: bound by number, not by order of appearance.
        tx.execute(
            query("INSERT INTO t (n, id, flag, price, note, raw) VALUES ($2, $1, $3, $4, $5, $6)")
                .bind("a")
                .bind(7i64)
                .bind(true)
                .bind(2.5f64)
                .bind(Value::Text(None))
                .bind(vec![1u8, 2, 255]),
        )
        .await
        .unwrap();
        let got: Vec<Row> = tx.fetch_all(query("SELECT * FROM t")).await.unwrap();
        assert_eq!(
            got,
            [Row {
                id: "a".into(),
                n: 7,
                flag: true,
                price: Some(2.5),
                note: None,
                raw: Some(vec![1, 2, 255]),
            }]
        );
        let (id, n, price): (String, i64, f64) = tx
            .fetch_one(query("SELECT id, n, price FROM t WHERE id = $1").bind("a"))
            .await
            .unwrap();
        assert_eq!((id.as_str(), n, price), ("a", 7, 2.5));
        let none: Option<(String,)> = tx
            .fetch_optional(query("SELECT id FROM t WHERE id = $1").bind("zz"))
            .await
            .unwrap();
        assert!(none.is_none());
        // A NULL where the type has no room for one is an error, not a made-up value.
        let bad: DbResult<Vec<(String,)>> = tx.fetch_all(query("SELECT note FROM t")).await;
        assert!(bad.is_err());
        assert!(tx.commit_unsynced().await.unwrap().is_some());
        // Committed: the readers see it, read back by sqlx the same way.
        let seen: Vec<Row> = db.fetch_all(query("SELECT * FROM t")).await.unwrap();
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0].raw.as_deref(), Some(&[1u8, 2, 255][..]));
        db.close().await;
    }

    /// A batch dropped without its commit changes nothing, and its connection is used again.
    #[tokio::test]
    async fn a_dropped_batch_rolls_back() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir).await;
        {
            let mut tx = db.begin_batch().await.unwrap();
            tx.execute(query("INSERT INTO t (id, n) VALUES ('x', 1)"))
                .await
                .unwrap();
        }
        assert_eq!(count(&db).await, 0);
        let idle = || db.raw.as_ref().unwrap().idle.lock().unwrap().len();
        assert_eq!(idle(), 1, "the connection went back to its pool");
        let mut tx = db.begin_batch().await.unwrap();
        assert_eq!(idle(), 0, "and was taken again");
        tx.execute(query("INSERT INTO t (id, n) VALUES ('x', 1)"))
            .await
            .unwrap();
        tx.commit().await.unwrap();
        assert_eq!(count(&db).await, 1);
        db.close().await;
        assert_eq!(idle(), 0, "closing the database closes its raw connections");
    }

    /// The batch writer and sqlx's writer take turns at the write lock: one that begins while
    /// the other holds it waits, then goes on (never a "database is locked" error, never a
    /// write based on a stale read).
    #[tokio::test]
    async fn batches_and_transactions_take_turns() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir).await;
        let mut batch = db.begin_batch().await.unwrap();
        batch
            .execute(query("INSERT INTO t (id, n) VALUES ('c', 1)"))
            .await
            .unwrap();
        let other = db.clone();
        let waiting = tokio::spawn(async move {
            let mut tx = other.begin().await.unwrap();
            // Read, then write what was read: safe only if no one wrote in between.
            let (n,): (i64,) = tx
                .fetch_one(query("SELECT n FROM t WHERE id = 'c'"))
                .await
                .unwrap();
            tx.execute(query("UPDATE t SET n = $1 WHERE id = 'c'").bind(n + 10))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(
            !waiting.is_finished(),
            "the transaction waits for the batch"
        );
        batch
            .execute(query("UPDATE t SET n = n + 1 WHERE id = 'c'"))
            .await
            .unwrap();
        batch.commit().await.unwrap();
        waiting.await.unwrap();
        let (n,): (i64,) = db
            .fetch_one(query("SELECT n FROM t WHERE id = 'c'"))
            .await
            .unwrap();
        assert_eq!(n, 12, "both writes count, in turn");
        // And the other way round: a batch waits for an open transaction.
        let tx = db.begin().await.unwrap();
        let other = db.clone();
        let batch = on_own_thread(async move {
            let mut b = other.begin_batch().await.unwrap();
            b.execute(query("UPDATE t SET n = n * 2 WHERE id = 'c'"))
                .await
                .unwrap();
            b.commit().await.unwrap();
        });
        std::thread::sleep(Duration::from_millis(100));
        assert!(!batch.is_finished(), "the batch waits for the transaction");
        tx.commit().await.unwrap();
        batch.join().unwrap();
        let (n,): (i64,) = db
            .fetch_one(query("SELECT n FROM t WHERE id = 'c'"))
            .await
            .unwrap();
        assert_eq!(n, 24);
        db.close().await;
    }

    /// Batches back to back do not starve other writers: a writer waiting when a batch commits
    /// goes before the next batch (SQLite's own wait polls, and would lose to a batch that begins
    /// again at once).
    #[tokio::test]
    async fn a_waiting_writer_goes_before_the_next_batch() {
        let dir = tempfile::tempdir().unwrap();
        let db = file_db(&dir).await;
        let (go, gone) = std::sync::mpsc::channel::<()>();
        let other = db.clone();
        let batches = on_own_thread(async move {
            let first = other.begin_batch().await.unwrap();
            gone.recv().unwrap();
            first.commit_unsynced().await.unwrap();
            // At once: the writer that was waiting must have had its turn before this.
            let mut next = other.begin_batch().await.unwrap();
            let (n,): (i64,) = next
                .fetch_one(query("SELECT COUNT(*) FROM t WHERE id = 'w'"))
                .await
                .unwrap();
            next.commit_unsynced().await.unwrap();
            n
        });
        // The first batch is open before the writer begins waiting.
        while db.raw.as_ref().unwrap().turn.available_permits() > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let writer = db.clone();
        let waiting = tokio::spawn(async move {
            let mut tx = writer.begin().await.unwrap();
            tx.execute(query("INSERT INTO t (id, n) VALUES ('w', 1)"))
                .await
                .unwrap();
            tx.commit().await.unwrap();
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        go.send(()).unwrap();
        waiting.await.unwrap();
        assert_eq!(
            batches.join().unwrap(),
            1,
            "the next batch began after the waiting writer"
        );
        db.close().await;
        assert!(db.begin_batch().await.is_err(), "no batch after close");
    }
}
