//! SQLite's page cache, wrapped so that ending a write transaction no longer scans it whole.
//!
//! When a write transaction ends, SQLite drops from the cache every page numbered past the end
//! of the database (`xTruncate`). Its cache (`pcache1`) knows only the largest page number it
//! has held since the last such drop, and when that lies more than its hash table's length past
//! the end it visits every bucket and every page. It mostly does: when a B-tree split puts its
//! new pages in ascending order, SQLite swaps two page numbers through a spare one, the number
//! of the page that holds the file's lock bytes at 1 GiB (262,145 with 4 KiB pages). In a
//! database under 1 GiB that number lies far past the end, so after most batches the
//! sequencer's commit walked its 64 MiB cache (16,384 buckets, some 12,000 pages): about a
//! tenth of its time per payment in `o2o bench checkout`.
//!
//! This wrapper passes every call to SQLite's own cache and keeps, per cache, what the drop
//! needs: every page in the cache is numbered at most `floor` (the database's end at the last
//! drop) or is one of the numbers noted since (`above`). A drop that does not go below `floor`
//! then evicts just the noted pages past the new end, one by one, exactly as the full drop would
//! (pinned or not). Anything else (a drop below `floor`, as when another connection's commit
//! makes SQLite clear the cache, or more pages noted than [`MAX_NOTED`]) goes to SQLite's own
//! drop, which leaves no page at or past the new end, so the rule holds again from there.
//!
//! The wrapper must be installed before SQLite is first used in the process ([`install`], called
//! before any connection opens). If SQLite was already in use, it is not installed, and every
//! connection keeps SQLite's own cache, which is as correct, only slower.

use libsqlite3_sys as ffi;
use std::ffi::{c_int, c_uint, c_void};
use std::sync::OnceLock;

/// The most page numbers a cache notes past its floor before it stops noting and leaves the
/// next drop to SQLite (a transaction that appends this many pages is a bulk load, whose commit
/// costs far more than one scan).
const MAX_NOTED: usize = 256;

/// SQLite's own page cache, as it was before ours was installed.
struct Inner(ffi::sqlite3_pcache_methods2);

// SAFETY: the methods are plain C functions and `pArg` is SQLite's own, for SQLite's own cache,
// which is thread-safe; nothing here changes them after they are read.
unsafe impl Send for Inner {}
unsafe impl Sync for Inner {}

static INNER: OnceLock<Inner> = OnceLock::new();

#[cfg(test)]
thread_local! {
    /// On this thread: drops made from the notes, drops left to SQLite, pages the former evicted.
    static COUNTS: std::cell::Cell<[u64; 3]> = const { std::cell::Cell::new([0; 3]) };
}

#[cfg(test)]
fn count(i: usize, n: u64) {
    COUNTS.with(|c| {
        let mut v = c.get();
        v[i] += n;
        c.set(v);
    });
}

/// Installs the wrapper, once per process, if SQLite has not been used yet; answers whether
/// SQLite's caches are the wrapped ones.
pub fn install() -> bool {
    static INSTALLED: OnceLock<bool> = OnceLock::new();
    *INSTALLED.get_or_init(|| {
        let mut inner = ffi::sqlite3_pcache_methods2 {
            iVersion: 0,
            pArg: std::ptr::null_mut(),
            xInit: None,
            xShutdown: None,
            xCreate: None,
            xCachesize: None,
            xPagecount: None,
            xFetch: None,
            xUnpin: None,
            xRekey: None,
            xTruncate: None,
            xDestroy: None,
            xShrink: None,
        };
        // SAFETY: both options are accepted only before SQLite initializes (they answer
        // SQLITE_MISUSE after, changing nothing); the first copies SQLite's methods out, the
        // second copies ours in.
        unsafe {
            // SQLite's memory statistics take a process-wide mutex on every allocation and
            // free (about 6 % of the sequencer's time in `o2o bench checkout`); o2o reads none
            // of them (no soft heap limit, no `sqlite3_memory_used`).
            ffi::sqlite3_config(ffi::SQLITE_CONFIG_MEMSTATUS, 0 as std::ffi::c_int);
            if ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_GETPCACHE2,
                &mut inner as *mut ffi::sqlite3_pcache_methods2,
            ) != ffi::SQLITE_OK
            {
                return false;
            }
            let complete = inner.xCreate.is_some()
                && inner.xCachesize.is_some()
                && inner.xPagecount.is_some()
                && inner.xFetch.is_some()
                && inner.xUnpin.is_some()
                && inner.xRekey.is_some()
                && inner.xTruncate.is_some()
                && inner.xDestroy.is_some();
            if !complete || INNER.set(Inner(inner)).is_err() {
                return false;
            }
            let ours = ffi::sqlite3_pcache_methods2 {
                iVersion: 1,
                pArg: std::ptr::null_mut(),
                xInit: Some(init),
                xShutdown: Some(shutdown),
                xCreate: Some(create),
                xCachesize: Some(cachesize),
                xPagecount: Some(pagecount),
                xFetch: Some(fetch),
                xUnpin: Some(unpin),
                xRekey: Some(rekey),
                xTruncate: Some(truncate),
                xDestroy: Some(destroy),
                xShrink: Some(shrink),
            };
            ffi::sqlite3_config(
                ffi::SQLITE_CONFIG_PCACHE2,
                &ours as *const ffi::sqlite3_pcache_methods2,
            ) == ffi::SQLITE_OK
        }
    })
}

/// One connection's cache: SQLite's, and the page numbers it may hold past `floor`.
struct Cache {
    inner: *mut ffi::sqlite3_pcache,
    /// Every page the inner cache holds is numbered at most this, or is in `above` (unless
    /// `overflowed`).
    floor: c_uint,
    above: Vec<c_uint>,
    /// More than [`MAX_NOTED`] were noted: the next drop is SQLite's own.
    overflowed: bool,
}

impl Cache {
    fn note(&mut self, key: c_uint) {
        if key <= self.floor || self.overflowed || self.above.iter().rev().any(|&k| k == key) {
            return;
        }
        if self.above.len() == MAX_NOTED {
            self.overflowed = true;
            self.above = Vec::new();
        } else {
            self.above.push(key);
        }
    }
}

fn methods() -> &'static ffi::sqlite3_pcache_methods2 {
    // Only reachable once installed, which sets INNER first.
    &INNER
        .get()
        .expect("SQLite's page cache is read before ours is installed")
        .0
}

/// SAFETY (every function below): SQLite calls them as its page-cache interface specifies, with
/// caches made by `create`, and one call at a time per cache.
unsafe fn cache<'a>(p: *mut ffi::sqlite3_pcache) -> &'a mut Cache {
    // SAFETY: `p` was made by `create` from a `Box<Cache>` and is not yet destroyed.
    unsafe { &mut *p.cast::<Cache>() }
}

unsafe extern "C" fn init(_: *mut c_void) -> c_int {
    let m = methods();
    match m.xInit {
        // SAFETY: SQLite's own initialization, with its own argument.
        Some(f) => unsafe { f(m.pArg) },
        None => ffi::SQLITE_OK,
    }
}

unsafe extern "C" fn shutdown(_: *mut c_void) {
    let m = methods();
    if let Some(f) = m.xShutdown {
        // SAFETY: as `init`.
        unsafe { f(m.pArg) }
    }
}

unsafe extern "C" fn create(
    size: c_int,
    extra: c_int,
    purgeable: c_int,
) -> *mut ffi::sqlite3_pcache {
    let m = methods();
    // SAFETY: checked present at install; SQLite's own arguments.
    let inner = unsafe { (m.xCreate.unwrap_unchecked())(size, extra, purgeable) };
    if inner.is_null() {
        return inner;
    }
    Box::into_raw(Box::new(Cache {
        inner,
        floor: 0,
        above: Vec::new(),
        overflowed: false,
    }))
    .cast()
}

unsafe extern "C" fn cachesize(p: *mut ffi::sqlite3_pcache, n: c_int) {
    // SAFETY: see `cache`; the method was checked present at install.
    unsafe { (methods().xCachesize.unwrap_unchecked())(cache(p).inner, n) }
}

unsafe extern "C" fn pagecount(p: *mut ffi::sqlite3_pcache) -> c_int {
    // SAFETY: as `cachesize`.
    unsafe { (methods().xPagecount.unwrap_unchecked())(cache(p).inner) }
}

unsafe extern "C" fn fetch(
    p: *mut ffi::sqlite3_pcache,
    key: c_uint,
    create: c_int,
) -> *mut ffi::sqlite3_pcache_page {
    // SAFETY: as `cachesize`.
    let c = unsafe { cache(p) };
    let page = unsafe { (methods().xFetch.unwrap_unchecked())(c.inner, key, create) };
    if !page.is_null() {
        c.note(key);
    }
    page
}

unsafe extern "C" fn unpin(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    discard: c_int,
) {
    // SAFETY: as `cachesize`.
    unsafe { (methods().xUnpin.unwrap_unchecked())(cache(p).inner, page, discard) }
}

unsafe extern "C" fn rekey(
    p: *mut ffi::sqlite3_pcache,
    page: *mut ffi::sqlite3_pcache_page,
    old: c_uint,
    new: c_uint,
) {
    // SAFETY: as `cachesize`.
    let c = unsafe { cache(p) };
    unsafe { (methods().xRekey.unwrap_unchecked())(c.inner, page, old, new) };
    c.note(new);
}

/// Drops every page numbered `limit` or more.
unsafe extern "C" fn truncate(p: *mut ffi::sqlite3_pcache, limit: c_uint) {
    let m = methods();
    // SAFETY: as `cachesize`.
    let c = unsafe { cache(p) };
    let end = limit.saturating_sub(1);
    if !c.overflowed && end >= c.floor {
        for &key in c.above.iter().filter(|&&k| k >= limit) {
            // SAFETY: a lookup that creates nothing; the page it finds (now pinned) is evicted
            // at once, as SQLite's own drop evicts pinned and unpinned pages alike.
            unsafe {
                let page = (m.xFetch.unwrap_unchecked())(c.inner, key, 0);
                if !page.is_null() {
                    (m.xUnpin.unwrap_unchecked())(c.inner, page, 1);
                    #[cfg(test)]
                    count(2, 1);
                }
            }
        }
        #[cfg(test)]
        count(0, 1);
    } else {
        // SAFETY: SQLite's own drop.
        unsafe { (m.xTruncate.unwrap_unchecked())(c.inner, limit) };
        #[cfg(test)]
        count(1, 1);
    }
    c.floor = end;
    c.above.clear();
    c.overflowed = false;
}

unsafe extern "C" fn destroy(p: *mut ffi::sqlite3_pcache) {
    // SAFETY: `p` came from `create` and is destroyed once, by SQLite, after its last use.
    let c = unsafe { Box::from_raw(p.cast::<Cache>()) };
    unsafe { (methods().xDestroy.unwrap_unchecked())(c.inner) }
}

unsafe extern "C" fn shrink(p: *mut ffi::sqlite3_pcache) {
    if let Some(f) = methods().xShrink {
        // SAFETY: as `cachesize`.
        unsafe { f(cache(p).inner) }
    }
}

#[cfg(test)]
mod tests {
    use super::super::direct::RawConn;
    use super::COUNTS;

    /// What a connection on this thread reads back: every row, and whether the file is whole.
    fn read_back(raw: &mut RawConn) -> (Vec<(String, String)>, String) {
        let mut d = raw.direct();
        let rows = d
            .rows::<(String, String)>("SELECT k, v FROM t ORDER BY k", &[], usize::MAX)
            .unwrap();
        let check: Vec<(String,)> = d.rows("PRAGMA integrity_check", &[], 1).unwrap();
        (rows, check[0].0.clone())
    }

    const INSERT: &str = "INSERT INTO t (k, v) VALUES (:k, :v)";

    /// The bundled SQLite is built as `.cargo/config.toml` asks: each connection's page cache on
    /// its own, with no process-wide mutex (not so when `LIBSQLITE3_FLAGS` is overridden).
    #[test]
    fn sqlite_is_built_without_the_shared_page_cache_group() {
        use libsqlite3_sys as ffi;
        let used = |option: &std::ffi::CStr| {
            // SAFETY: a NUL-terminated option name; the call reads SQLite's static build options.
            unsafe { ffi::sqlite3_compileoption_used(option.as_ptr()) }
        };
        assert_eq!(used(c"ENABLE_MEMORY_MANAGEMENT"), 0);
        assert_eq!(used(c"DEFAULT_MEMSTATUS=0"), 1);
        assert_eq!(used(c"THREADSAFE=1"), 1);
    }

    /// Commits `rows` into `t` in one transaction on `raw`.
    fn commit(raw: &mut RawConn, rows: &[serde_json::Value]) {
        let mut d = raw.direct();
        d.exec("BEGIN IMMEDIATE").unwrap();
        d.each(INSERT, rows).unwrap();
        d.exec("COMMIT").unwrap();
    }

    /// Batches of inserts in scattered order into a table and an index (splits that renumber
    /// pages, a file that grows), a transaction whose growth after a savepoint is rolled back,
    /// and a commit by another connection: the drops are made from the notes (the pages past
    /// the end after the savepoint's rollback evicted by them), or by SQLite once its cache was
    /// cleared, and every committed row reads back from a file that checks whole, on both
    /// connections and on a fresh one.
    #[test]
    fn pages_past_the_end_are_dropped_and_every_row_reads_back() {
        assert!(super::install(), "installed before SQLite's first use here");
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.db");
        std::fs::File::create(&path).unwrap();
        let mut pragmas = super::super::raw_pragmas();
        pragmas.push(("journal_mode", "WAL"));
        let mut raw = RawConn::open(&path, &pragmas).unwrap();
        raw.direct()
            .exec(
                "CREATE TABLE t (k TEXT PRIMARY KEY, v TEXT NOT NULL) WITHOUT ROWID; \
                 CREATE INDEX t_v ON t (v)",
            )
            .unwrap();
        let row = |n: u64| {
            // Keys in a scattered order, so that inserts land all over both B-trees.
            let k = format!("{:016x}", n.wrapping_mul(0x9E37_79B9_7F4A_7C15));
            let v = format!("{}-{}", &k[8..], "x".repeat(40 + (n % 60) as usize));
            serde_json::json!({"k": k, "v": v})
        };
        let before = COUNTS.with(|c| c.get());
        let mut expected = Vec::new();
        for batch in 0..200u64 {
            let rows: Vec<_> = (0..50).map(|i| row(batch * 50 + i)).collect();
            commit(&mut raw, &rows);
            expected.extend(rows);
        }
        let committed = COUNTS.with(|c| c.get());
        assert!(
            committed[0] - before[0] >= 150,
            "most commits dropped from the notes: {committed:?} after {before:?}"
        );
        // A transaction that grows the file past where it ends: what it added after a savepoint
        // is rolled back, the rest committed. The pages past the new end are evicted.
        {
            let kept: Vec<_> = (0..100).map(|i| row(1_000_000 + i)).collect();
            let undone: Vec<_> = (0..2000).map(|i| row(1_500_000 + i)).collect();
            let mut d = raw.direct();
            d.exec("BEGIN IMMEDIATE").unwrap();
            d.each(INSERT, &kept).unwrap();
            d.exec("SAVEPOINT s").unwrap();
            d.each(INSERT, &undone).unwrap();
            d.exec("ROLLBACK TO s; RELEASE s; COMMIT").unwrap();
            expected.extend(kept);
        }
        let rolled_back = COUNTS.with(|c| c.get());
        assert!(
            rolled_back[2] > committed[2],
            "the rolled-back pages were evicted: {rolled_back:?} after {committed:?}"
        );
        // Another connection commits: this one's cache is cleared by SQLite, then goes on.
        let mut other = RawConn::open(&path, &pragmas).unwrap();
        let rows: Vec<_> = (0..300).map(|i| row(2_000_000 + i)).collect();
        commit(&mut other, &rows);
        expected.extend(rows);
        for batch in 0..20u64 {
            let rows: Vec<_> = (0..50).map(|i| row(3_000_000 + batch * 50 + i)).collect();
            commit(&mut raw, &rows);
            expected.extend(rows);
        }
        let after = COUNTS.with(|c| c.get());
        assert!(
            after[1] > rolled_back[1],
            "SQLite dropped the cleared cache: {after:?}"
        );
        assert!(
            after[0] > rolled_back[0] + 10,
            "and notes served again: {after:?}"
        );
        let mut want: Vec<(String, String)> = expected
            .iter()
            .map(|r| {
                (
                    r["k"].as_str().unwrap().to_owned(),
                    r["v"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        want.sort();
        for conn in [
            &mut raw,
            &mut other,
            &mut RawConn::open(&path, &pragmas).unwrap(),
        ] {
            let (rows, check) = read_back(conn);
            assert_eq!(check, "ok");
            assert_eq!(rows.len(), want.len());
            assert!(
                rows == want,
                "every committed row reads back, and only those"
            );
        }
    }
}
