//! Running SQLite statements on the calling thread: writing many rows with one prepared
//! statement, binding each row's fields directly, and (on a [`RawConn`]) reading rows and
//! running a whole transaction.
//!
//! sqlx runs a SQLite connection on a thread of its own and every statement is a round trip to
//! it, so a batch of rows used to go out as one statement reading a JSON array
//! (`json_each` + `json_extract`): one round trip, but every row serialized to JSON text, parsed
//! back and picked apart field by field, and a statement journal for the multi-row statement.
//! [`Direct`] takes the connection's handle out of sqlx's thread for a moment (sqlx's
//! `lock_handle`) and steps a prepared statement once per row on the caller's thread instead,
//! binding each field of the row (any `Serialize` struct or JSON object) to the statement's
//! parameter of the same name (`:field`). Fields the statement does not name are skipped;
//! parameters no field fills are NULL, as `json_extract` of a missing key was. A field holding
//! an array or an object is bound as its JSON text, as `json_extract` gave it (bytes, which JSON
//! wrote as an array of numbers, bind as a BLOB; 128-bit integers are refused).
//!
//! The sequencer goes further: its batches run on a [`RawConn`], a connection of its own opened
//! outside sqlx, so that no statement of a batch (reads, rows, `BEGIN` and `COMMIT`) waits for
//! sqlx's thread to be scheduled. Reads deserialize each row from its columns
//! ([`super::rows`]); statements take positional arguments (`$1`…) or, for rows, named ones.
//!
//! The statements run on the caller's thread, which waits for the disk's writes: the sequencer's
//! own thread, not a shared runtime's.
//!
//! On sqlx's handle, statements are finalized before each call returns, so nothing outlives the
//! lock (sqlx closes its connections with `sqlite3_close`, which refuses while statements are
//! open). A [`RawConn`] keeps its statements prepared and finalizes them before it closes.

use super::fields::{Fields, each_field, impossible_all, refuse, refuse_compound, see_through};
use super::{DbError, DbResult, Value};
use libsqlite3_sys as ffi;
use serde::de::DeserializeOwned;
use serde::ser::{self, Serialize};
use std::ffi::{CStr, CString, c_int};
use std::ptr::NonNull;

/// A connection's handle for statements run on the calling thread: the writer's, held out of
/// sqlx's thread (see the module's docs), or a [`RawConn`] of the caller's own, whose prepared
/// statements are kept from one use to the next.
pub struct Direct<'c> {
    _lock: Option<sqlx::sqlite::LockedSqliteHandle<'c>>,
    db: NonNull<ffi::sqlite3>,
    /// A raw connection's kept statements; `None` prepares each statement for one call.
    cache: Option<&'c mut StmtCache>,
}

/// Statements kept prepared per raw connection, at most.
const MAX_KEPT: usize = 256;

/// Statements kept prepared on a [`RawConn`], by SQL text.
#[derive(Default)]
/// Keyed by the whole SQL text, hashed by a fast seeded hash (SipHash over a long statement took
/// more instructions than binding its row).
pub(super) struct StmtCache(foldhash::HashMap<String, Statement>);

/// A statement for one call: kept in the connection's cache, or prepared for this call only.
enum Held<'a> {
    Kept(&'a Statement),
    Once(Statement),
}

impl std::ops::Deref for Held<'_> {
    type Target = Statement;
    fn deref(&self) -> &Statement {
        match self {
            Held::Kept(s) => s,
            Held::Once(s) => s,
        }
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        // A kept statement goes back reset, holding no cursor and no bound values.
        if let Held::Kept(s) = self {
            s.reset();
        }
    }
}

impl<'c> Direct<'c> {
    pub(super) fn new(mut lock: sqlx::sqlite::LockedSqliteHandle<'c>) -> Direct<'c> {
        let db = lock.as_raw_handle();
        Direct {
            _lock: Some(lock),
            db,
            cache: None,
        }
    }

    fn statement(&mut self, sql: &str) -> DbResult<Held<'_>> {
        match &mut self.cache {
            None => Ok(Held::Once(Statement::prepare(self.db, sql)?)),
            Some(cache) => {
                if !cache.0.contains_key(sql) {
                    let stmt = Statement::prepare(self.db, sql)?;
                    // The batches' statements are a fixed set; anything past it starts over.
                    if cache.0.len() >= MAX_KEPT {
                        cache.0.clear();
                    }
                    cache.0.insert(sql.to_owned(), stmt);
                }
                // Kept statements come back reset (see `Held`'s drop).
                Ok(Held::Kept(&cache.0[sql]))
            }
        }
    }

    /// Runs `sql` once per row of `rows`, each row's fields bound to the parameters of the same
    /// name (`:id` takes the field `id`), and answers how many rows the runs changed in all.
    /// Stops at the first failure (the caller's transaction then rolls back).
    pub fn each<T: Serialize>(&mut self, sql: &str, rows: &[T]) -> DbResult<u64> {
        if rows.is_empty() {
            return Ok(0);
        }
        let db = self.db;
        let stmt = self.statement(sql)?;
        let mut changed = 0u64;
        for row in rows {
            stmt.reset();
            each_field(row, &mut RowBinder { stmt: &stmt }).map_err(|e| e.into_db(db))?;
            // A parameter no field filled is NULL (a field the row leaves out); where every row
            // names every field, a gap is a misspelt name, caught by the tests.
            #[cfg(debug_assertions)]
            if let Some(name) = stmt.unbound() {
                return Err(protocol(&format!("no field `{name}` in a row for: {sql}")));
            }
            stmt.run()?;
            // SAFETY: the handle is valid while this is alive.
            changed += unsafe { ffi::sqlite3_changes64(db.as_ptr()) } as u64;
        }
        Ok(changed)
    }

    /// Runs one statement with positional arguments (`$1`, `$2`… or `?`) and answers the rows
    /// it changed.
    pub(super) fn execute(&mut self, sql: &str, args: &[Value]) -> DbResult<u64> {
        let db = self.db;
        let stmt = self.statement(sql)?;
        stmt.bind_args(args).map_err(|e| e.into_db(db))?;
        stmt.run()?;
        // SAFETY: the handle is valid while this is alive.
        Ok(unsafe { ffi::sqlite3_changes64(db.as_ptr()) } as u64)
    }

    /// Reads up to `max` rows of one statement with positional arguments, each row
    /// deserialized from its columns by name (a struct) or in order (a tuple), as sqlx's
    /// `FromRow` reads them.
    pub(super) fn rows<T: DeserializeOwned>(
        &mut self,
        sql: &str,
        args: &[Value],
        max: usize,
    ) -> DbResult<Vec<T>> {
        let db = self.db;
        let stmt = self.statement(sql)?;
        stmt.bind_args(args).map_err(|e| e.into_db(db))?;
        let mut out = Vec::new();
        while out.len() < max {
            // SAFETY: a valid statement with its parameters bound.
            match unsafe { ffi::sqlite3_step(stmt.raw.as_ptr()) } {
                ffi::SQLITE_ROW => out.push(
                    T::deserialize(super::rows::RowReader::new(stmt.raw))
                        .map_err(|e| DbError::Other(sqlx::Error::Decode(Box::new(e))))?,
                ),
                ffi::SQLITE_DONE => return Ok(out),
                _ => return Err(error_of(db)),
            }
        }
        // Stopped before the end: the statement lets go of what it was reading when `stmt` is
        // dropped (kept statements go back reset).
        Ok(out)
    }

    /// Runs SQL text that answers no rows (`BEGIN IMMEDIATE`, `COMMIT`, pragmas).
    pub(super) fn exec(&mut self, sql: &str) -> DbResult<()> {
        exec(self.db, sql)
    }

    /// True while a transaction is open on the connection.
    pub(super) fn in_transaction(&self) -> bool {
        // SAFETY: a valid handle.
        unsafe { ffi::sqlite3_get_autocommit(self.db.as_ptr()) == 0 }
    }
}

fn exec(db: NonNull<ffi::sqlite3>, sql: &str) -> DbResult<()> {
    let c_sql = CString::new(sql).map_err(|_| protocol("SQL text holds a NUL byte"))?;
    // SAFETY: a valid handle and a NUL-terminated string; no callback, no error string.
    let rc = unsafe {
        ffi::sqlite3_exec(
            db.as_ptr(),
            c_sql.as_ptr(),
            None,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
        )
    };
    if rc == ffi::SQLITE_OK {
        Ok(())
    } else {
        Err(error_of(db))
    }
}

/// A SQLite connection of the caller's own, outside sqlx: its statements run on the calling
/// thread with no hand-off to a connection thread, and stay prepared between uses. The
/// sequencer makes its batches on one (see [`super::Db::begin_batch`]).
pub struct RawConn {
    db: NonNull<ffi::sqlite3>,
    cache: StmtCache,
}

// SAFETY: SQLite is built thread-safe (sqlx requires it); a connection and its statements are
// used by one thread at a time (`&mut self`), which may change between uses.
unsafe impl Send for RawConn {}

impl RawConn {
    /// Opens the database file at `path` (which must exist) and applies `pragmas`.
    pub(super) fn open(path: &std::path::Path, pragmas: &[(&str, &str)]) -> DbResult<RawConn> {
        use std::os::unix::ffi::OsStrExt;
        let c_path = CString::new(path.as_os_str().as_bytes())
            .map_err(|_| protocol("database path holds a NUL byte"))?;
        let mut raw = std::ptr::null_mut();
        // Commits' WAL frames written in one call (see `walbuf`); the default VFS otherwise.
        let vfs = if super::walbuf::register() {
            super::walbuf::NAME.as_ptr()
        } else {
            std::ptr::null()
        };
        // SAFETY: a NUL-terminated path; `raw` receives a handle even on failure (closed below).
        let rc = unsafe {
            ffi::sqlite3_open_v2(
                c_path.as_ptr(),
                &mut raw,
                ffi::SQLITE_OPEN_READWRITE | ffi::SQLITE_OPEN_NOMUTEX,
                vfs,
            )
        };
        let db = NonNull::new(raw).ok_or_else(|| protocol("out of memory opening the database"))?;
        // Owned from here: closed on every path out.
        let conn = RawConn {
            db,
            cache: StmtCache::default(),
        };
        if rc != ffi::SQLITE_OK {
            return Err(error_of(db));
        }
        // SAFETY: a valid handle.
        unsafe {
            ffi::sqlite3_extended_result_codes(db.as_ptr(), 1);
            ffi::sqlite3_busy_timeout(db.as_ptr(), BUSY_TIMEOUT_MS);
        }
        for (name, value) in pragmas {
            exec(db, &format!("PRAGMA {name} = {value}"))?;
        }
        Ok(conn)
    }

    /// The handle for running statements on this thread.
    pub fn direct(&mut self) -> Direct<'_> {
        Direct {
            _lock: None,
            db: self.db,
            cache: Some(&mut self.cache),
        }
    }
}

/// How long a raw connection waits for another writer to finish (as sqlx's are told).
pub(super) const BUSY_TIMEOUT_MS: c_int = 10_000;

impl Drop for RawConn {
    fn drop(&mut self) {
        // Statements first: a connection closes only once they are finalized.
        self.cache.0.clear();
        // SAFETY: the handle is valid and closed once, here.
        unsafe {
            ffi::sqlite3_close(self.db.as_ptr());
        }
    }
}

/// A prepared statement with the names of its parameters, finalized when dropped.
pub(super) struct Statement {
    db: NonNull<ffi::sqlite3>,
    raw: NonNull<ffi::sqlite3_stmt>,
    /// Parameter names without their `:` prefix, by index - 1.
    names: Vec<String>,
    /// Which parameters the current row bound (checked in debug builds).
    bound: std::cell::RefCell<Vec<bool>>,
    /// Where [`Statement::index_of`] looks first: after the parameter it found last, since a
    /// row's fields mostly come in the order of the statement's parameters.
    next: std::cell::Cell<usize>,
}

impl Statement {
    fn prepare(db: NonNull<ffi::sqlite3>, sql: &str) -> DbResult<Statement> {
        let c_sql = CString::new(sql).map_err(|_| protocol("SQL text holds a NUL byte"))?;
        let mut raw = std::ptr::null_mut();
        let mut tail = std::ptr::null();
        // SAFETY: a valid handle and a NUL-terminated string; `raw` receives the statement.
        let rc = unsafe {
            ffi::sqlite3_prepare_v2(db.as_ptr(), c_sql.as_ptr(), -1, &mut raw, &mut tail)
        };
        if rc != ffi::SQLITE_OK {
            return Err(error_of(db));
        }
        let raw = NonNull::new(raw).ok_or_else(|| protocol("empty statement"))?;
        // Owned from here: finalized on every path out.
        let mut stmt = Statement {
            db,
            raw,
            names: Vec::new(),
            bound: Default::default(),
            next: std::cell::Cell::new(0),
        };
        // SAFETY: `tail` points into `c_sql`, which is alive.
        if !unsafe { CStr::from_ptr(tail) }
            .to_bytes()
            .trim_ascii()
            .is_empty()
        {
            return Err(protocol("one statement at a time"));
        }
        // SAFETY: a prepared statement; names are NUL-terminated strings it owns.
        let count = unsafe { ffi::sqlite3_bind_parameter_count(raw.as_ptr()) };
        stmt.names = (1..=count)
            .map(|i| {
                let name = unsafe { ffi::sqlite3_bind_parameter_name(raw.as_ptr(), i) };
                if name.is_null() {
                    return String::new();
                }
                let name = unsafe { CStr::from_ptr(name) }.to_string_lossy();
                name.trim_start_matches([':', '@', '$', '?']).to_owned()
            })
            .collect();
        Ok(stmt)
    }

    /// The first parameter the current row left unbound.
    #[cfg(debug_assertions)]
    fn unbound(&self) -> Option<&str> {
        let bound = self.bound.borrow();
        self.names
            .iter()
            .zip(bound.iter())
            .find(|(_, b)| !**b)
            .map(|(n, _)| n.as_str())
    }

    /// Binds positional arguments: `$n` or `?n` takes the n-th, a bare `?` the next in order.
    fn bind_args(&self, args: &[Value]) -> Result<(), BindError> {
        for (i, name) in self.names.iter().enumerate() {
            let index = i as c_int + 1;
            let n = if name.is_empty() {
                i
            } else {
                match name.parse::<usize>() {
                    Ok(n) if n >= 1 => n - 1,
                    _ => {
                        return Err(BindError::Shape(format!(
                            "parameter `{name}` is not positional"
                        )));
                    }
                }
            };
            let arg = args
                .get(n)
                .ok_or_else(|| BindError::Shape(format!("no argument for parameter {}", n + 1)))?;
            match arg {
                Value::I64(Some(v)) => self.bind_i64(index, *v)?,
                Value::F64(Some(v)) => self.bind_f64(index, *v)?,
                Value::Text(Some(v)) => self.bind_text(index, v)?,
                Value::Bool(Some(v)) => self.bind_i64(index, i64::from(*v))?,
                Value::Bytes(Some(v)) => self.bind_blob(index, v)?,
                a @ (Value::TextArray(_) | Value::I64Array(_) | Value::BoolArray(_)) => {
                    match a.array_json() {
                        Some(json) => self.bind_text(index, &json)?,
                        None => self.bind_null(index)?,
                    }
                }
                Value::I64(None)
                | Value::F64(None)
                | Value::Text(None)
                | Value::Bool(None)
                | Value::Bytes(None) => self.bind_null(index)?,
            }
        }
        Ok(())
    }

    fn index_of(&self, field: &str) -> Option<c_int> {
        let next = self.next.get();
        let i = if self.names.get(next).is_some_and(|n| n == field) {
            next
        } else {
            self.names.iter().position(|n| n == field)?
        };
        self.next.set(i + 1);
        Some(i as c_int + 1)
    }

    fn reset(&self) {
        self.next.set(0);
        let mut bound = self.bound.borrow_mut();
        bound.clear();
        bound.resize(self.names.len(), false);
        // SAFETY: a valid statement (reset answers the last step's error, already reported).
        unsafe {
            ffi::sqlite3_reset(self.raw.as_ptr());
            ffi::sqlite3_clear_bindings(self.raw.as_ptr());
        }
    }

    /// Steps the statement to its end (the writes here answer no rows worth reading).
    fn run(&self) -> DbResult<()> {
        loop {
            // SAFETY: a valid statement with its parameters bound.
            match unsafe { ffi::sqlite3_step(self.raw.as_ptr()) } {
                ffi::SQLITE_DONE => return Ok(()),
                ffi::SQLITE_ROW => continue,
                _ => return Err(error_of(self.db)),
            }
        }
    }

    fn check(&self, rc: c_int) -> Result<(), BindError> {
        if rc == ffi::SQLITE_OK {
            Ok(())
        } else {
            Err(BindError::Sqlite)
        }
    }

    fn bind_i64(&self, i: c_int, v: i64) -> Result<(), BindError> {
        self.check(unsafe { ffi::sqlite3_bind_int64(self.raw.as_ptr(), i, v) })
    }

    fn bind_f64(&self, i: c_int, v: f64) -> Result<(), BindError> {
        self.check(unsafe { ffi::sqlite3_bind_double(self.raw.as_ptr(), i, v) })
    }

    fn bind_null(&self, i: c_int) -> Result<(), BindError> {
        self.check(unsafe { ffi::sqlite3_bind_null(self.raw.as_ptr(), i) })
    }

    fn bind_text(&self, i: c_int, v: &str) -> Result<(), BindError> {
        // SQLITE_TRANSIENT: SQLite copies the text before this returns.
        self.check(unsafe {
            ffi::sqlite3_bind_text64(
                self.raw.as_ptr(),
                i,
                v.as_ptr().cast(),
                v.len() as u64,
                ffi::SQLITE_TRANSIENT(),
                ffi::SQLITE_UTF8 as u8,
            )
        })
    }

    fn bind_blob(&self, i: c_int, v: &[u8]) -> Result<(), BindError> {
        self.check(unsafe {
            ffi::sqlite3_bind_blob64(
                self.raw.as_ptr(),
                i,
                v.as_ptr().cast(),
                v.len() as u64,
                ffi::SQLITE_TRANSIENT(),
            )
        })
    }
}

impl Drop for Statement {
    fn drop(&mut self) {
        // SAFETY: finalized once, here; the connection is still open (sqlx's lock is held, or
        // the raw connection finalizes its statements before it closes).
        unsafe {
            ffi::sqlite3_finalize(self.raw.as_ptr());
        }
    }
}

fn protocol(message: &str) -> DbError {
    DbError::Other(sqlx::Error::Protocol(format!(
        "direct SQLite statement: {message}"
    )))
}

/// The connection's last error, classified like sqlx's errors (see [`DbError::classify`]).
fn error_of(db: NonNull<ffi::sqlite3>) -> DbError {
    // SAFETY: a valid handle; the message is a NUL-terminated string SQLite owns.
    let (code, message) = unsafe {
        (
            ffi::sqlite3_extended_errcode(db.as_ptr()),
            CStr::from_ptr(ffi::sqlite3_errmsg(db.as_ptr()))
                .to_string_lossy()
                .into_owned(),
        )
    };
    match code {
        ffi::SQLITE_CONSTRAINT_UNIQUE | ffi::SQLITE_CONSTRAINT_PRIMARYKEY => DbError::Conflict {
            constraint: message,
        },
        ffi::SQLITE_CONSTRAINT_FOREIGNKEY => DbError::ForeignKey,
        _ => protocol(&format!("{message} (code {code})")),
    }
}

/// Why binding a row failed.
#[derive(Debug)]
enum BindError {
    /// SQLite refused a bind (its message is on the connection).
    Sqlite,
    /// The row is not a struct or a map of fields, or a value cannot be bound.
    Shape(String),
    /// A field holds an array or object: bound as JSON text instead (never leaves this module).
    Nested,
}

impl BindError {
    fn into_db(self, db: NonNull<ffi::sqlite3>) -> DbError {
        match self {
            BindError::Sqlite => error_of(db),
            BindError::Shape(m) => protocol(&m),
            BindError::Nested => protocol("nested value"),
        }
    }
}

impl std::fmt::Display for BindError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BindError::Sqlite => f.write_str("SQLite refused a bind"),
            BindError::Shape(m) => f.write_str(m),
            BindError::Nested => f.write_str("nested value"),
        }
    }
}

impl std::error::Error for BindError {}

impl ser::Error for BindError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        BindError::Shape(msg.to_string())
    }
}

/// Binds one field's value to the parameter `index`, or its JSON text when it is nested.
fn bind_field<T: Serialize + ?Sized>(
    stmt: &Statement,
    field: &str,
    value: &T,
) -> Result<(), BindError> {
    let Some(index) = stmt.index_of(field) else {
        return Ok(());
    };
    if let Some(b) = stmt.bound.borrow_mut().get_mut(index as usize - 1) {
        *b = true;
    }
    match value.serialize(ValueBinder { stmt, index }) {
        Err(BindError::Nested) => {
            let json = serde_json::to_string(value).map_err(|e| BindError::Shape(e.to_string()))?;
            stmt.bind_text(index, &json)
        }
        other => other,
    }
}

/// Binds each field of a row to the parameter of its name.
struct RowBinder<'s> {
    stmt: &'s Statement,
}

impl Fields for RowBinder<'_> {
    type Error = BindError;
    fn field<T: Serialize + ?Sized>(&mut self, name: &str, value: &T) -> Result<(), BindError> {
        bind_field(self.stmt, name, value)
    }
}

/// Numbers that fit a wider type serialize as it.
macro_rules! widen {
    ($($method:ident($from:ty) -> $to:ident;)*) => {
        $(fn $method(self, v: $from) -> Result<(), BindError> {
            self.$to(v.into())
        })*
    };
}

/// Binds one value to one parameter; arrays and objects answer [`BindError::Nested`].
struct ValueBinder<'s> {
    stmt: &'s Statement,
    index: c_int,
}

fn nested<T>(_: &str) -> Result<T, BindError> {
    Err(BindError::Nested)
}

impl ser::Serializer for ValueBinder<'_> {
    refuse_compound! { nested }
    see_through! { () }
    refuse! { nested;
        serialize_map(Option<usize>) -> Self::SerializeMap;
        serialize_struct(&'static str, usize) -> Self::SerializeStruct;
    }
    type Ok = ();
    type Error = BindError;
    impossible_all! { (), BindError }

    fn serialize_bool(self, v: bool) -> Result<(), BindError> {
        self.stmt.bind_i64(self.index, i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), BindError> {
        self.stmt.bind_i64(self.index, v)
    }
    widen! {
        serialize_i8(i8) -> serialize_i64;
        serialize_i16(i16) -> serialize_i64;
        serialize_i32(i32) -> serialize_i64;
        serialize_u8(u8) -> serialize_i64;
        serialize_u16(u16) -> serialize_i64;
        serialize_u32(u32) -> serialize_i64;
    }
    fn serialize_u64(self, v: u64) -> Result<(), BindError> {
        match i64::try_from(v) {
            Ok(v) => self.serialize_i64(v),
            // As json_extract read it: a real.
            Err(_) => self.serialize_f64(v as f64),
        }
    }
    fn serialize_f64(self, v: f64) -> Result<(), BindError> {
        if v.is_finite() {
            self.stmt.bind_f64(self.index, v)
        } else {
            // As JSON wrote it: null.
            self.stmt.bind_null(self.index)
        }
    }
    fn serialize_f32(self, v: f32) -> Result<(), BindError> {
        // The value JSON's shortest decimal form reads back as (0.1, not 0.100000001).
        self.serialize_f64(v.to_string().parse().unwrap_or(f64::NAN))
    }
    fn serialize_char(self, v: char) -> Result<(), BindError> {
        self.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), BindError> {
        self.stmt.bind_text(self.index, v)
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), BindError> {
        self.stmt.bind_blob(self.index, v)
    }
    fn serialize_none(self) -> Result<(), BindError> {
        self.stmt.bind_null(self.index)
    }
    fn serialize_unit(self) -> Result<(), BindError> {
        self.stmt.bind_null(self.index)
    }
    fn serialize_unit_struct(self, _: &'static str) -> Result<(), BindError> {
        self.stmt.bind_null(self.index)
    }
    fn serialize_unit_variant(
        self,
        _: &'static str,
        _: u32,
        variant: &'static str,
    ) -> Result<(), BindError> {
        self.serialize_str(variant)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _: &'static str,
        _: u32,
        _: &'static str,
        _: &T,
    ) -> Result<(), BindError> {
        Err(BindError::Nested)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use sqlx::{Connection, Row, SqliteConnection};

    #[derive(serde::Serialize)]
    struct Item {
        id: String,
        qty: i64,
        note: Option<String>,
        hot: bool,
        #[serde(rename = "type")]
        kind: &'static str,
        tags: Vec<&'static str>,
        /// Not a parameter of the statement: skipped.
        extra: i64,
    }

    async fn table() -> SqliteConnection {
        // Before this test's SQLite is the process's first (see `pagecache`).
        crate::db::pagecache::install();
        let mut c = SqliteConnection::connect("sqlite::memory:").await.unwrap();
        sqlx::query(
            "CREATE TABLE t (id TEXT PRIMARY KEY, qty INTEGER NOT NULL, note TEXT, hot INTEGER, \
             type TEXT, tags TEXT, price REAL)",
        )
        .execute(&mut c)
        .await
        .unwrap();
        c
    }

    /// A row of `t` as read back: id, qty, note, hot, type, tags, price.
    type Stored = (
        String,
        i64,
        Option<String>,
        Option<i64>,
        Option<String>,
        Option<String>,
        Option<f64>,
    );

    const INSERT: &str = "INSERT INTO t (id, qty, note, hot, type, tags, price) \
                          VALUES (:id, :qty, :note, :hot, :type, :tags, :price)";
    /// `Item` has no price: its rows go in without one.
    const INSERT_ITEM: &str = "INSERT INTO t (id, qty, note, hot, type, tags) \
                               VALUES (:id, :qty, :note, :hot, :type, :tags)";

    /// Each row's fields land in the columns of the same name: options as NULL, booleans as
    /// 1/0, arrays and objects as their JSON text, fields the statement lacks skipped; a map
    /// binds like a struct.
    #[tokio::test]
    async fn rows_bind_by_field_name() {
        let mut c = table().await;
        let rows = [
            Item {
                id: "a".into(),
                qty: 2,
                note: None,
                hot: true,
                kind: "tea",
                tags: vec!["x", "y"],
                extra: 9,
            },
            Item {
                id: "b".into(),
                qty: -3,
                note: Some("少冰".into()),
                hot: false,
                kind: "coffee",
                tags: vec![],
                extra: 9,
            },
        ];
        let maps = [
            serde_json::json!({"id": "c", "qty": 1, "note": null, "hot": null,
            "type": null, "price": 2.5, "tags": {"k": 1}}),
        ];
        {
            let mut d = Direct::new(c.lock_handle().await.unwrap());
            assert_eq!(d.each(INSERT_ITEM, &rows).unwrap(), 2);
            assert_eq!(d.each(INSERT, &maps).unwrap(), 1);
            let none: [Item; 0] = [];
            assert_eq!(d.each(INSERT_ITEM, &none).unwrap(), 0);
        }
        let got: Vec<Stored> =
            sqlx::query("SELECT id, qty, note, hot, type, tags, price FROM t ORDER BY id")
                .fetch_all(&mut c)
                .await
                .unwrap()
                .into_iter()
                .map(|r| {
                    (
                        r.get(0),
                        r.get(1),
                        r.get(2),
                        r.get(3),
                        r.get(4),
                        r.get(5),
                        r.get(6),
                    )
                })
                .collect();
        assert_eq!(
            got,
            vec![
                (
                    "a".into(),
                    2,
                    None,
                    Some(1),
                    Some("tea".into()),
                    Some(r#"["x","y"]"#.into()),
                    None
                ),
                (
                    "b".into(),
                    -3,
                    Some("少冰".into()),
                    Some(0),
                    Some("coffee".into()),
                    Some("[]".into()),
                    None
                ),
                (
                    "c".into(),
                    1,
                    None,
                    None,
                    None,
                    Some(r#"{"k":1}"#.into()),
                    Some(2.5)
                ),
            ]
        );
    }

    /// A duplicate key is a conflict (which the sequencer retries), a missing NOT NULL value a
    /// plain failure; the rows counted are the ones a statement changed; the connection stays
    /// usable (nothing left open on it) after a failure.
    #[tokio::test]
    async fn failures_are_classified_and_leave_the_connection_usable() {
        let mut c = table().await;
        let row = |id: &str, qty: serde_json::Value| {
            serde_json::json!({"id": id, "qty": qty, "note": null, "hot": null, "type": null,
                "tags": null, "price": null})
        };
        let one = [row("a", 1.into())];
        {
            let mut d = Direct::new(c.lock_handle().await.unwrap());
            d.each(INSERT, &one).unwrap();
            let err = d.each(INSERT, &one).unwrap_err();
            assert!(
                matches!(err, DbError::Conflict { ref constraint } if constraint.contains("t.id")),
                "{err:?}"
            );
            let no_qty = [row("b", serde_json::Value::Null)];
            let err = d.each(INSERT, &no_qty).unwrap_err();
            assert!(matches!(err, DbError::Other(_)), "{err:?}");
            let update = "UPDATE t SET qty = :qty WHERE id = :id";
            let rows = [
                serde_json::json!({"id": "a", "qty": 5}),
                serde_json::json!({"id": "zz", "qty": 5}),
            ];
            assert_eq!(d.each(update, &rows).unwrap(), 1);
            let err = d.each("SELECT 1; SELECT 2", &one).unwrap_err();
            assert!(matches!(err, DbError::Other(_)), "{err:?}");
            let not_a_row = [1, 2];
            assert!(d.each(INSERT, &not_a_row).is_err());
            // A row without a field the statement names (a misspelt name) is refused in debug
            // builds, where the tests run, instead of writing NULL.
            if cfg!(debug_assertions) {
                let misspelt = [serde_json::json!({"id": "m", "qtty": 1, "note": null,
                    "hot": null, "type": null, "tags": null, "price": null})];
                let err = d.each(INSERT, &misspelt).unwrap_err();
                assert!(err.to_string().contains("no field `qty`"), "{err}");
            }
        }
        let qty: i64 = sqlx::query_scalar("SELECT qty FROM t WHERE id = 'a'")
            .fetch_one(&mut c)
            .await
            .unwrap();
        assert_eq!(qty, 5);
        c.close().await.unwrap();
    }
}
