//! Making SQLite commits durable ourselves, so that waiting for the disk need not hold the
//! writer.
//!
//! The writer connections (sqlx's and the sequencer's own) run with `synchronous=NORMAL`: a
//! commit appends its frames to the WAL and returns without waiting for the disk. Durability
//! comes from one `fdatasync` of the WAL file after the commit ([`WalFile::sync`]), which is
//! what `synchronous=FULL` does inside the commit. Done outside, it can overlap with the next transaction:
//! - [`super::Tx::commit`] syncs before it returns, so every ordinary transaction is as durable
//!   as before when its caller answers.
//! - The sequencer commits a batch with [`super::Tx::commit_unsynced`], hands its answers to the
//!   [`Syncer`], and goes on to the next batch while the disk works. The syncer answers a batch
//!   only after a sync that began after the batch committed; one sync covers every batch
//!   committed before it, so under load several batches share one.
//!
//! What a reader may see early: a commit is visible to other connections before its sync
//! returns (for at most that sync's duration). Answers that repeat a stored outcome (idempotent
//! replays) wait for a sync first ([`super::Db::durable`]); replays the sequencer answers come
//! after a later batch's sync anyway.
//!
//! A failed sync means committed data may not be on the disk while readers have seen it: the
//! process aborts (as PostgreSQL does), and on restart SQLite recovers from what the disk holds.
//! A checkpoint still syncs the WAL before copying it and the database file after, so the WAL
//! only starts over once everything in it is safely in the database file.

use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};

/// The WAL file of a SQLite database.
#[derive(Debug)]
pub struct WalFile {
    path: PathBuf,
    /// The file as last opened, with its (device, inode): SQLite deletes the WAL when the last
    /// connection closes and makes a new one on the next open, so a sync checks it still has the
    /// file the path names.
    open: Mutex<Option<Opened>>,
    /// Syncs that returned (for tests and metrics).
    synced: AtomicU64,
    /// Syncs begun, and the number of the last one that returned: a caller is covered by any
    /// sync that began after it was called, so callers that meet share one (see [`WalFile::sync`]).
    begun: AtomicU64,
    done: AtomicU64,
    /// One sync at a time.
    turn: Mutex<()>,
}

/// An open WAL file and its (device, inode).
type Opened = (Arc<File>, (u64, u64));

impl WalFile {
    /// The WAL of the database file at `db_path`.
    pub fn of(db_path: &Path) -> WalFile {
        let mut path = db_path.as_os_str().to_owned();
        path.push("-wal");
        WalFile {
            path: PathBuf::from(path),
            open: Mutex::new(None),
            synced: AtomicU64::new(0),
            begun: AtomicU64::new(0),
            done: AtomicU64::new(0),
            turn: Mutex::new(()),
        }
    }

    /// Flushes everything written to the WAL so far to the disk. No WAL file means nothing is
    /// waiting in one (SQLite removes it only after copying all of it into the database).
    ///
    /// Callers that meet share a sync: one waiting for its turn returns as soon as a sync that
    /// began after it was called has returned (that sync flushed all it needs), so readers that
    /// check a recent change, the sequencer's syncer and committing transactions never queue
    /// more than one sync each behind another.
    pub fn sync(&self) -> io::Result<()> {
        let called_after = self.begun.load(Ordering::SeqCst);
        let _turn = self.turn.lock().unwrap_or_else(|e| e.into_inner());
        if self.done.load(Ordering::SeqCst) > called_after {
            return Ok(());
        }
        let n = self.begun.fetch_add(1, Ordering::SeqCst) + 1;
        self.sync_now()?;
        self.done.store(n, Ordering::SeqCst);
        Ok(())
    }

    fn sync_now(&self) -> io::Result<()> {
        let id = match std::fs::metadata(&self.path) {
            Ok(m) => (m.dev(), m.ino()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e),
        };
        let file = {
            let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
            match open.as_ref() {
                Some((file, at)) if *at == id => file.clone(),
                _ => {
                    let file = match File::open(&self.path) {
                        Ok(f) => Arc::new(f),
                        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
                        Err(e) => return Err(e),
                    };
                    // A new WAL file: its directory entry must be on the disk too (what SQLite
                    // does in FULL mode when it creates the file).
                    if let Some(dir) = self.path.parent().filter(|d| !d.as_os_str().is_empty()) {
                        File::open(dir)?.sync_all()?;
                    }
                    *open = Some((file.clone(), id));
                    file
                }
            }
        };
        file.sync_data()?;
        self.synced.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Fails unless the WAL is where syncs look for it (checked once the database is open, so
    /// that a path mismatch cannot silently turn the syncs into no-ops).
    pub fn check_present(&self) -> io::Result<()> {
        if self.path.exists() {
            Ok(())
        } else {
            Err(io::Error::new(
                io::ErrorKind::NotFound,
                format!(
                    "the database's WAL is not at {}; commits could not be made durable",
                    self.path.display()
                ),
            ))
        }
    }

    /// How many syncs of an existing WAL have returned.
    pub fn syncs(&self) -> u64 {
        self.synced.load(Ordering::Relaxed)
    }

    /// [`WalFile::sync`], aborting the process if the disk fails (see the module's notes).
    pub fn sync_or_abort(&self) {
        if let Err(e) = self.sync() {
            tracing::error!(error = %e, path = %self.path.display(),
                "the WAL could not be flushed to disk; committed data may be lost: stopping");
            eprintln!(
                "o2o: fdatasync of {} failed ({e}); stopping so that nothing is answered from data the disk may not hold",
                self.path.display()
            );
            std::process::abort();
        }
    }
}

/// Syncs on a blocking thread (a failed sync ends the process); if that thread cannot run (the
/// runtime is shutting down), syncs here.
pub async fn sync_blocking(wal: Arc<WalFile>) {
    let kept = wal.clone();
    if tokio::task::spawn_blocking(move || wal.sync_or_abort())
        .await
        .is_err()
    {
        kept.sync_or_abort();
    }
}

type Job = Box<dyn FnOnce() + Send>;

/// A thread that runs jobs once the WAL is on the disk (see the module's notes). Jobs run in
/// the order given; each group waiting when a sync begins shares that sync.
#[derive(Clone)]
pub struct Syncer {
    jobs: mpsc::Sender<Job>,
    wal: Arc<WalFile>,
}

impl Syncer {
    /// Starts the thread; it ends when every clone of the syncer is dropped and its last jobs
    /// have run.
    pub fn spawn(wal: Arc<WalFile>) -> io::Result<Syncer> {
        let (jobs, queue) = mpsc::channel::<Job>();
        let thread_wal = wal.clone();
        std::thread::Builder::new()
            .name("o2o-wal-sync".into())
            .spawn(move || {
                while let Ok(first) = queue.recv() {
                    let mut group = vec![first];
                    group.extend(queue.try_iter());
                    let started = std::time::Instant::now();
                    thread_wal.sync_or_abort();
                    metrics::histogram!("wal_sync_seconds").record(started.elapsed().as_secs_f64());
                    metrics::histogram!("wal_sync_group_size").record(group.len() as f64);
                    for job in group {
                        // One job's panic must not lose the answers of the others.
                        if std::panic::catch_unwind(std::panic::AssertUnwindSafe(job)).is_err() {
                            tracing::error!("a job after a WAL sync panicked");
                        }
                    }
                }
            })?;
        Ok(Syncer { jobs, wal })
    }

    /// Waits (blocking the calling thread) until a sync that begins after this call has
    /// returned and the jobs before it have run: everything committed so far is durable and
    /// answered.
    pub fn finish(&self) {
        let (done, wait) = mpsc::channel();
        self.after_sync(move || {
            let _ = done.send(());
        });
        let _ = wait.recv();
    }

    /// Runs `job` after a sync that begins after this call.
    pub fn after_sync(&self, job: impl FnOnce() + Send + 'static) {
        if let Err(mpsc::SendError(job)) = self.jobs.send(Box::new(job)) {
            // The thread is gone (only if a job panicked): sync here instead.
            tracing::error!("the WAL sync thread stopped; syncing in place");
            self.wal.sync_or_abort();
            job();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_wal_is_nothing_to_sync_and_a_replaced_one_is_reopened() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("o2o.db");
        let wal = WalFile::of(&db);
        assert_eq!(wal.path, dir.path().join("o2o.db-wal"));
        wal.sync().unwrap();
        std::fs::write(&wal.path, b"frames").unwrap();
        wal.sync().unwrap();
        let first = wal.open.lock().unwrap().as_ref().unwrap().1;
        std::fs::remove_file(&wal.path).unwrap();
        wal.sync().unwrap();
        std::fs::write(&wal.path, b"new frames").unwrap();
        wal.sync().unwrap();
        let second = wal.open.lock().unwrap().as_ref().unwrap().1;
        assert_ne!(first, second, "the new file is the one synced");
    }

    #[test]
    fn callers_that_meet_share_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(WalFile::of(&dir.path().join("o2o.db")));
        std::fs::write(&wal.path, b"frames").unwrap();
        // While one sync holds the turn, eight callers arrive; each is covered by the first
        // sync that begins after it was called, so they need not sync one after another.
        let turn = wal.turn.lock().unwrap();
        let (ready, arrived) = mpsc::channel();
        let callers: Vec<_> = (0..8)
            .map(|_| {
                let (wal, ready) = (wal.clone(), ready.clone());
                std::thread::spawn(move || {
                    ready.send(()).unwrap();
                    wal.sync().unwrap();
                })
            })
            .collect();
        for _ in 0..8 {
            arrived.recv().unwrap();
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
        drop(turn);
        for c in callers {
            c.join().unwrap();
        }
        assert!(
            wal.syncs() < 8,
            "callers waiting together shared syncs ({} for 8)",
            wal.syncs()
        );
    }

    #[test]
    fn jobs_run_in_order_after_a_sync() {
        let dir = tempfile::tempdir().unwrap();
        let wal = Arc::new(WalFile::of(&dir.path().join("o2o.db")));
        std::fs::write(&wal.path, b"frames").unwrap();
        let syncer = Syncer::spawn(wal.clone()).unwrap();
        let (done, got) = mpsc::channel();
        for n in 0..100 {
            let done = done.clone();
            syncer.after_sync(move || done.send(n).unwrap());
        }
        let order: Vec<i32> = (0..100).map(|_| got.recv().unwrap()).collect();
        assert_eq!(order, (0..100).collect::<Vec<_>>());
        assert!(
            wal.open.lock().unwrap().is_some(),
            "the WAL was opened and synced"
        );
    }
}
