//! A SQLite VFS for the sequencer's connection that writes a commit's WAL frames in a few large
//! system calls instead of two per page.
//!
//! SQLite appends each frame of a commit to the WAL with two `pwrite`s (its 24-byte header, then
//! the page), so a batch of table orders made about 500 calls, and the kernel's per-call and
//! per-page work was a quarter of the sequencer's time. This VFS wraps the default one (`unix`)
//! and, for WAL files only, gathers contiguous appends in memory and writes them (in calls of up
//! to 124 KiB) before anything can depend on them:
//! - before any other operation on that file (read, sync, truncate, size, locks, control), so
//!   the connection itself and SQLite's checkpoints see every byte;
//! - before SQLite publishes a commit to other connections: it writes the new WAL-index header
//!   in shared memory around a memory barrier (`xShmBarrier`), and readers take only a header
//!   written whole, so the frames are in the file before any reader can ask for them. Every
//!   shared-memory call (map, lock, barrier) flushes.
//!
//! Nothing changes on the disk: the bytes and their order are SQLite's, and durability still
//! comes from the sync after the commit ([`super::durable`]), which finds them in the file.
//!
//! `xShmBarrier` cannot return an error. If that write fails, readers could be shown frames that
//! are not in the file, so the process aborts, as it does when a WAL sync fails: nothing the
//! write held was synced, hence nothing was answered, and SQLite recovers on restart from what
//! the file holds. Main database files and journals pass straight through to `unix`.

use libsqlite3_sys as ffi;
use std::ffi::{CStr, c_char, c_int, c_void};
#[cfg(test)]
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock};

/// The VFS's registered name.
pub const NAME: &CStr = c"o2o-walbuf";

/// Buffered bytes that trigger a write even before SQLite needs them (bounds the memory a large
/// transaction can hold here).
const MAX_BUFFERED: usize = 8 << 20;

/// The most one write hands the wrapped VFS: `unix` writes at most 128 KiB − 1 per call.
const MAX_WRITE: usize = 0x1f000;

/// Registers the VFS once per process; false if SQLite has no `unix` VFS to wrap.
pub fn register() -> bool {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    *REGISTERED.get_or_init(|| {
        // Finding a VFS initializes SQLite: the page cache is set first (see `pagecache`).
        super::pagecache::install();
        // SAFETY: sqlite3_vfs_find is thread-safe; the VFS it returns lives for the process.
        let under = unsafe { ffi::sqlite3_vfs_find(c"unix".as_ptr()) };
        if under.is_null() {
            return false;
        }
        // SAFETY: `under` is a valid, registered VFS, never unregistered.
        let u = unsafe { &*under };
        let vfs = Box::leak(Box::new(ffi::sqlite3_vfs {
            iVersion: 2,
            szOsFile: (HEADER + u.szOsFile as usize) as c_int,
            mxPathname: u.mxPathname,
            pNext: std::ptr::null_mut(),
            zName: NAME.as_ptr(),
            pAppData: under.cast(),
            xOpen: Some(open),
            xDelete: Some(delete),
            xAccess: Some(access),
            xFullPathname: Some(full_pathname),
            // Loading extensions is never asked of this connection; the unix functions ignore
            // the VFS they are given.
            xDlOpen: u.xDlOpen,
            xDlError: u.xDlError,
            xDlSym: u.xDlSym,
            xDlClose: u.xDlClose,
            xRandomness: Some(randomness),
            xSleep: Some(sleep),
            xCurrentTime: Some(current_time),
            xGetLastError: Some(last_error),
            xCurrentTimeInt64: Some(current_time_64),
            xSetSystemCall: None,
            xGetSystemCall: None,
            xNextSystemCall: None,
        }));
        // SAFETY: a complete VFS that lives for the process; not made the default.
        unsafe { ffi::sqlite3_vfs_register(vfs, 0) == ffi::SQLITE_OK }
    })
}

/// What a connection's database file and its WAL share: the WAL as opened by the wrapped VFS
/// (null while it is closed), and the bytes appended to it but not yet written, from offset
/// `at`. SQLite reaches shared memory through the database file, so its barrier must find the
/// WAL's bytes there.
struct Shared {
    wal: *mut ffi::sqlite3_file,
    at: i64,
    bytes: Vec<u8>,
    /// The last write took a commit frame's header: its page completes the commit.
    commit_next: bool,
    /// A write of buffered bytes failed: they are lost, so no later commit may be shown to
    /// readers (the barrier aborts).
    failed: bool,
}

/// WAL files opened wrapped, SQLite's writes to them, and the writes of buffered bytes that
/// carried those (for tests).
#[cfg(test)]
pub static WRAPPED_WALS: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
pub static WAL_WRITES: AtomicU64 = AtomicU64::new(0);
#[cfg(test)]
pub static FLUSHES: AtomicU64 = AtomicU64::new(0);

/// Our part of a database or WAL file's `sqlite3_file`: the methods pointer SQLite calls
/// through, then what the two share; the wrapped file follows at [`HEADER`].
#[repr(C)]
struct Wrapped {
    base: ffi::sqlite3_file,
    shared: *mut Shared,
}

const HEADER: usize = std::mem::size_of::<Wrapped>();

/// Open database files by the address of their name (which SQLite also hands the WAL's open,
/// through `sqlite3_filename_database`), each with its [`Shared`] (addresses as integers).
static DATABASES: Mutex<Vec<(usize, usize)>> = Mutex::new(Vec::new());

fn databases() -> std::sync::MutexGuard<'static, Vec<(usize, usize)>> {
    DATABASES.lock().unwrap_or_else(|e| e.into_inner())
}

fn under_vfs(vfs: *mut ffi::sqlite3_vfs) -> *mut ffi::sqlite3_vfs {
    // SAFETY: our VFS keeps the wrapped one in pAppData.
    unsafe { (*vfs).pAppData.cast() }
}

/// The wrapped file inside one of ours.
fn inner(file: *mut ffi::sqlite3_file) -> *mut ffi::sqlite3_file {
    // SAFETY: our files are szOsFile = HEADER + the wrapped VFS's size, the wrapped file last.
    unsafe { file.cast::<u8>().add(HEADER).cast() }
}

/// The wrapped file's methods.
fn methods(file: *mut ffi::sqlite3_file) -> &'static ffi::sqlite3_io_methods {
    // SAFETY: a file of ours is open only while its wrapped file is (set by our xOpen).
    unsafe { &*(*inner(file)).pMethods }
}

fn shared(file: *mut ffi::sqlite3_file) -> *mut Shared {
    // SAFETY: set by our xOpen before SQLite can call any method.
    unsafe { (*file.cast::<Wrapped>()).shared }
}

/// True for a WAL file (the one its [`Shared`] writes to).
fn is_wal(file: *mut ffi::sqlite3_file) -> bool {
    // SAFETY: the shared part lives while either file of the pair is open.
    unsafe { (*shared(file)).wal == inner(file) }
}

unsafe extern "C" fn open(
    vfs: *mut ffi::sqlite3_vfs,
    name: ffi::sqlite3_filename,
    file: *mut ffi::sqlite3_file,
    flags: c_int,
    out_flags: *mut c_int,
) -> c_int {
    let under = under_vfs(vfs);
    // SAFETY: SQLite gives szOsFile bytes at `file`; the wrapped VFS's open is called with its
    // own VFS, as it expects; `name` is SQLite's, valid while the file is open.
    unsafe {
        let Some(x_open) = (*under).xOpen else {
            return ffi::SQLITE_ERROR;
        };
        let main = flags & ffi::SQLITE_OPEN_MAIN_DB != 0 && !name.is_null();
        let db_shared = if flags & ffi::SQLITE_OPEN_WAL != 0 && !name.is_null() {
            let db = ffi::sqlite3_filename_database(name) as usize;
            databases()
                .iter()
                .find(|(n, _)| *n == db)
                .map(|(_, s)| *s as *mut Shared)
        } else {
            None
        };
        if !main && db_shared.is_none() {
            // Journals, temporary files (and a WAL whose database is not ours): the wrapped
            // file takes the whole struct and SQLite calls it directly.
            return x_open(under, name, file, flags, out_flags);
        }
        let wrapped = file.cast::<Wrapped>();
        (*wrapped).base.pMethods = std::ptr::null();
        (*wrapped).shared = std::ptr::null_mut();
        let rc = x_open(under, name, inner(file), flags, out_flags);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
        let version = (*(*inner(file)).pMethods).iVersion;
        let shared = match db_shared {
            Some(s) => {
                (*s).wal = inner(file);
                #[cfg(test)]
                WRAPPED_WALS.fetch_add(1, Ordering::Relaxed);
                s
            }
            None => {
                let s = Box::into_raw(Box::new(Shared {
                    wal: std::ptr::null_mut(),
                    at: 0,
                    bytes: Vec::new(),
                    commit_next: false,
                    failed: false,
                }));
                databases().push((name as usize, s as usize));
                s
            }
        };
        (*wrapped).shared = shared;
        (*wrapped).base.pMethods = io_methods(version);
        ffi::SQLITE_OK
    }
}

/// Our methods, at the wrapped file's version (shared memory from 2, fetch from 3).
fn io_methods(version: c_int) -> *const ffi::sqlite3_io_methods {
    static METHODS: OnceLock<[ffi::sqlite3_io_methods; 4]> = OnceLock::new();
    let all = METHODS.get_or_init(|| {
        std::array::from_fn(|v| ffi::sqlite3_io_methods {
            iVersion: v as c_int,
            xClose: Some(close),
            xRead: Some(read),
            xWrite: Some(write),
            xTruncate: Some(truncate),
            xSync: Some(sync),
            xFileSize: Some(file_size),
            xLock: Some(lock),
            xUnlock: Some(unlock),
            xCheckReservedLock: Some(check_reserved_lock),
            xFileControl: Some(file_control),
            xSectorSize: Some(sector_size),
            xDeviceCharacteristics: Some(device_characteristics),
            xShmMap: (v >= 2).then_some(shm_map as _),
            xShmLock: (v >= 2).then_some(shm_lock as _),
            xShmBarrier: (v >= 2).then_some(shm_barrier as _),
            xShmUnmap: (v >= 2).then_some(shm_unmap as _),
            xFetch: (v >= 3).then_some(fetch as _),
            xUnfetch: (v >= 3).then_some(unfetch as _),
        })
    });
    &all[version.clamp(1, 3) as usize]
}

/// Writes the WAL's buffered bytes; SQLite's result code.
fn flush(file: *mut ffi::sqlite3_file) -> c_int {
    // SAFETY: the shared part and the WAL it names are valid while open; one thread at a time
    // uses a connection's files (SQLite's connection mutex, or the caller owns it).
    unsafe {
        let s = &mut *shared(file);
        if s.bytes.is_empty() {
            return ffi::SQLITE_OK;
        }
        let x_write = if s.wal.is_null() {
            None
        } else {
            (*(*s.wal).pMethods).xWrite
        };
        let Some(x_write) = x_write else {
            s.bytes.clear();
            s.failed = true;
            return ffi::SQLITE_IOERR_WRITE;
        };
        #[cfg(test)]
        FLUSHES.fetch_add(1, Ordering::Relaxed);
        let mut rc = ffi::SQLITE_OK;
        for (i, chunk) in s.bytes.chunks(MAX_WRITE).enumerate() {
            let at = s.at + (i * MAX_WRITE) as i64;
            rc = x_write(s.wal, chunk.as_ptr().cast(), chunk.len() as c_int, at);
            if rc != ffi::SQLITE_OK {
                break;
            }
        }
        s.bytes.clear();
        if rc != ffi::SQLITE_OK {
            s.failed = true;
        }
        rc
    }
}

/// Flushes when `$flush` holds (for a WAL file, or for any shared-memory call), then calls the
/// wrapped method.
macro_rules! pass_on {
    ($flush:expr, $file:expr, $method:ident ( $($arg:expr),* )) => {{
        if $flush {
            let rc = flush($file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        match methods($file).$method {
            Some(f) => f(inner($file) $(, $arg)*),
            None => ffi::SQLITE_IOERR,
        }
    }};
}

/// Methods that only pass SQLite's call on (after a WAL's flush).
macro_rules! delegated {
    ($($name:ident => $method:ident ( $($arg:ident : $ty:ty),* );)*) => {$(
        unsafe extern "C" fn $name(file: *mut ffi::sqlite3_file $(, $arg: $ty)*) -> c_int {
            // SAFETY: as SQLite passed them.
            unsafe { pass_on!(is_wal(file), file, $method($($arg),*)) }
        }
    )*};
}

delegated! {
    read => xRead(buf: *mut c_void, amount: c_int, offset: i64);
    truncate => xTruncate(size: i64);
    sync => xSync(flags: c_int);
    file_size => xFileSize(size: *mut i64);
    lock => xLock(level: c_int);
    unlock => xUnlock(level: c_int);
    check_reserved_lock => xCheckReservedLock(out: *mut c_int);
    fetch => xFetch(offset: i64, amount: c_int, out: *mut *mut c_void);
    unfetch => xUnfetch(offset: i64, page: *mut c_void);
}

unsafe extern "C" fn close(file: *mut ffi::sqlite3_file) -> c_int {
    let wal = is_wal(file);
    let rc = if wal { flush(file) } else { ffi::SQLITE_OK };
    // SAFETY: the wrapped file closes even if the last write failed. The shared part is freed
    // with the database file, which SQLite closes after its WAL; were the WAL still open, it
    // is left allocated rather than freed under it.
    unsafe {
        let closed = match methods(file).xClose {
            Some(f) => f(inner(file)),
            None => ffi::SQLITE_OK,
        };
        let s = shared(file);
        if wal {
            (*s).wal = std::ptr::null_mut();
        } else {
            databases().retain(|(_, p)| *p != s as usize);
            if (*s).wal.is_null() {
                drop(Box::from_raw(s));
            }
        }
        let wrapped = file.cast::<Wrapped>();
        (*wrapped).base.pMethods = std::ptr::null();
        (*wrapped).shared = std::ptr::null_mut();
        if rc != ffi::SQLITE_OK { rc } else { closed }
    }
}

unsafe extern "C" fn write(
    file: *mut ffi::sqlite3_file,
    buf: *const c_void,
    amount: c_int,
    offset: i64,
) -> c_int {
    if !is_wal(file) {
        return match methods(file).xWrite {
            // SAFETY: arguments as SQLite passed them.
            Some(f) => unsafe { f(inner(file), buf, amount, offset) },
            None => ffi::SQLITE_IOERR_WRITE,
        };
    }
    // SAFETY: `buf` holds `amount` bytes (SQLite's contract); the shared part is valid while
    // the WAL is open, and no reference to it outlives a call that makes another.
    unsafe {
        #[cfg(test)]
        WAL_WRITES.fetch_add(1, Ordering::Relaxed);
        let contiguous = {
            let s = &*shared(file);
            s.bytes.is_empty() || s.at + s.bytes.len() as i64 == offset
        };
        if !contiguous {
            let rc = flush(file);
            if rc != ffi::SQLITE_OK {
                return rc;
            }
        }
        let bytes = std::slice::from_raw_parts(buf.cast::<u8>(), amount.max(0) as usize);
        let complete = {
            let s = &mut *shared(file);
            if s.failed {
                return ffi::SQLITE_IOERR_WRITE;
            }
            if s.bytes.is_empty() {
                s.at = offset;
            }
            s.bytes.extend_from_slice(bytes);
            // A frame's 24-byte header holds the database size after a commit in bytes 4..8,
            // zero for other frames: the page written after a commit's header ends the commit,
            // which is written at once so that SQLite hears of any failure from this call.
            let complete = s.commit_next || s.bytes.len() >= MAX_BUFFERED;
            s.commit_next = bytes.len() == 24 && bytes[4..8] != [0, 0, 0, 0];
            complete
        };
        if complete {
            return flush(file);
        }
        ffi::SQLITE_OK
    }
}

unsafe extern "C" fn file_control(
    file: *mut ffi::sqlite3_file,
    op: c_int,
    arg: *mut c_void,
) -> c_int {
    // Every commit tells the database file (also in exclusive locking mode, where shared
    // memory is not used): its frames must be in the WAL before the sync that follows.
    if op == ffi::SQLITE_FCNTL_COMMIT_PHASETWO {
        let rc = flush(file);
        if rc != ffi::SQLITE_OK {
            return rc;
        }
    }
    // SAFETY: as SQLite passed them.
    unsafe { pass_on!(is_wal(file), file, xFileControl(op, arg)) }
}

unsafe extern "C" fn sector_size(file: *mut ffi::sqlite3_file) -> c_int {
    match methods(file).xSectorSize {
        // SAFETY: the wrapped file is open.
        Some(f) => unsafe { f(inner(file)) },
        None => 4096,
    }
}

unsafe extern "C" fn device_characteristics(file: *mut ffi::sqlite3_file) -> c_int {
    match methods(file).xDeviceCharacteristics {
        // SAFETY: the wrapped file is open.
        Some(f) => unsafe { f(inner(file)) },
        None => 0,
    }
}

unsafe extern "C" fn shm_map(
    file: *mut ffi::sqlite3_file,
    page: c_int,
    size: c_int,
    extend: c_int,
    out: *mut *mut c_void,
) -> c_int {
    // SAFETY: as SQLite passed them.
    unsafe { pass_on!(true, file, xShmMap(page, size, extend, out)) }
}

unsafe extern "C" fn shm_lock(
    file: *mut ffi::sqlite3_file,
    offset: c_int,
    n: c_int,
    flags: c_int,
) -> c_int {
    if flags & ffi::SQLITE_SHM_UNLOCK != 0 {
        // SQLite does not look at an unlock's result: the lock goes whatever the write did (a
        // failure is remembered, and the next barrier stops the process).
        let rc = flush(file);
        let unlocked = match methods(file).xShmLock {
            // SAFETY: as SQLite passed them.
            Some(f) => unsafe { f(inner(file), offset, n, flags) },
            None => ffi::SQLITE_IOERR,
        };
        return if rc != ffi::SQLITE_OK { rc } else { unlocked };
    }
    // SAFETY: as SQLite passed them.
    unsafe { pass_on!(true, file, xShmLock(offset, n, flags)) }
}

unsafe extern "C" fn shm_barrier(file: *mut ffi::sqlite3_file) {
    // SAFETY: the shared part lives while the database file is open.
    if flush(file) != ffi::SQLITE_OK || unsafe { (*shared(file)).failed } {
        // A commit is about to be shown to readers without its frames in the file (see the
        // module's documentation): stop before it is.
        tracing::error!("writing WAL frames failed; stopping before readers can see them");
        std::process::abort();
    }
    if let Some(f) = methods(file).xShmBarrier {
        // SAFETY: the wrapped file is open.
        unsafe { f(inner(file)) }
    }
}

unsafe extern "C" fn shm_unmap(file: *mut ffi::sqlite3_file, delete: c_int) -> c_int {
    let rc = flush(file);
    let unmapped = match methods(file).xShmUnmap {
        // SAFETY: as SQLite passed them.
        Some(f) => unsafe { f(inner(file), delete) },
        None => ffi::SQLITE_IOERR,
    };
    if rc != ffi::SQLITE_OK { rc } else { unmapped }
}

/// The VFS's own functions: the wrapped VFS's, called with it (`fallback` if it has none).
macro_rules! vfs_delegated {
    ($($name:ident => $method:ident ( $($arg:ident : $ty:ty),* ) or $fallback:expr;)*) => {$(
        unsafe extern "C" fn $name(vfs: *mut ffi::sqlite3_vfs $(, $arg: $ty)*) -> c_int {
            let u = under_vfs(vfs);
            // SAFETY: the wrapped VFS with SQLite's arguments.
            unsafe { (*u).$method.map_or($fallback, |f| f(u $(, $arg)*)) }
        }
    )*};
}

vfs_delegated! {
    randomness => xRandomness(n: c_int, out: *mut c_char) or 0;
    sleep => xSleep(micros: c_int) or 0;
    current_time => xCurrentTime(out: *mut f64) or ffi::SQLITE_ERROR;
    last_error => xGetLastError(n: c_int, out: *mut c_char) or 0;
    delete => xDelete(name: *const c_char, sync_dir: c_int) or ffi::SQLITE_IOERR_DELETE;
    access => xAccess(name: *const c_char, flags: c_int, out: *mut c_int) or ffi::SQLITE_IOERR_ACCESS;
    full_pathname => xFullPathname(name: *const c_char, n: c_int, out: *mut c_char) or ffi::SQLITE_ERROR;
    current_time_64 => xCurrentTimeInt64(out: *mut i64) or ffi::SQLITE_ERROR;
}

#[cfg(test)]
mod tests {
    use super::super::direct::RawConn;
    use super::{FLUSHES, WAL_WRITES, WRAPPED_WALS};
    use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
    use sqlx::{ConnectOptions, Connection};
    use std::sync::atomic::Ordering;

    async fn count(c: &mut sqlx::SqliteConnection) -> i64 {
        sqlx::query_scalar("SELECT COUNT(*) FROM t")
            .fetch_one(c)
            .await
            .unwrap()
    }

    /// Rows committed through the buffered VFS: another connection (on the default VFS) sees
    /// each commit at once, a transaction larger than the buffer and a checkpoint go through,
    /// and after everything closes the database reopens whole with every row.
    #[tokio::test]
    async fn commits_are_seen_at_once_and_survive_reopening() {
        assert!(super::register(), "the unix VFS is there to wrap");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("w.db");
        let options = SqliteConnectOptions::new()
            .filename(&path)
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal);
        let mut other = options.clone().connect().await.unwrap();
        sqlx::query("CREATE TABLE t (id INTEGER PRIMARY KEY, body TEXT NOT NULL)")
            .execute(&mut other)
            .await
            .unwrap();
        let counted = || [&WRAPPED_WALS, &WAL_WRITES, &FLUSHES].map(|c| c.load(Ordering::Relaxed));
        let before = counted();
        // As the sequencer opens it, but checkpoints only when asked.
        let mut pragmas = super::super::raw_pragmas();
        pragmas.retain(|(name, _)| *name != "wal_autocheckpoint");
        pragmas.push(("wal_autocheckpoint", "0"));
        let mut raw = RawConn::open(&path, &pragmas).unwrap();
        let row = |id: i64, len: usize| serde_json::json!({"id": id, "body": "页".repeat(len)});
        const INSERT: &str = "INSERT INTO t (id, body) VALUES (:id, :body)";
        for batch in 0..20i64 {
            let rows: Vec<_> = (0..10).map(|i| row(batch * 10 + i, 1000)).collect();
            let mut d = raw.direct();
            d.exec("BEGIN IMMEDIATE").unwrap();
            d.each(INSERT, &rows).unwrap();
            d.exec("COMMIT").unwrap();
            assert_eq!(count(&mut other).await, (batch + 1) * 10, "seen at once");
        }
        let after = counted();
        assert!(after[0] > before[0], "the WAL was opened wrapped");
        let (writes, flushes) = (after[1] - before[1], after[2] - before[2]);
        assert!(flushes >= 20, "each commit was written: {flushes}");
        assert!(
            writes >= 8 * flushes,
            "frames were gathered: {writes} writes in {flushes}"
        );
        // Over 8 MiB in one transaction: the buffer writes before the commit, too.
        let big: Vec<_> = (0..4000).map(|i| row(1000 + i, 1000)).collect();
        {
            let mut d = raw.direct();
            d.exec("BEGIN IMMEDIATE").unwrap();
            d.each(INSERT, &big).unwrap();
            d.exec("COMMIT").unwrap();
            d.exec("PRAGMA wal_checkpoint(TRUNCATE)").unwrap();
            // The WAL starts over after the checkpoint: later frames go to its start.
            d.exec("BEGIN IMMEDIATE").unwrap();
            d.each(INSERT, &[row(9999, 10)]).unwrap();
            d.exec("COMMIT").unwrap();
        }
        assert_eq!(count(&mut other).await, 4201);
        drop(raw);
        other.close().await.unwrap();
        let mut again = options.connect().await.unwrap();
        assert_eq!(count(&mut again).await, 4201);
        let check: String = sqlx::query_scalar("PRAGMA integrity_check")
            .fetch_one(&mut again)
            .await
            .unwrap();
        assert_eq!(check, "ok");
        let body: String = sqlx::query_scalar("SELECT body FROM t WHERE id = 4999")
            .fetch_one(&mut again)
            .await
            .unwrap();
        assert_eq!(body, "页".repeat(1000));
    }
}
