//! The in-process menu cache. A store's menu is built once and kept as ready-to-send JSON with
//! the merchant's catalog version it was built from.
//!
//! Freshness: every catalog change raises the merchant's version in the same transaction
//! (`catalog_versions`). The node making the change raises its floor for that merchant right
//! after the commit, so its next read rebuilds: the change shows at once. Other nodes look the
//! version up at most once per [`RECHECK_MS`] per store (one indexed single-row read), so they
//! notice within that window without any message between nodes. Reads between checks touch no
//! database at all.

use super::model::Menu;
use axum::body::Bytes;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Instant;

/// How long a cached menu is trusted before its version is checked again (other nodes' changes).
pub const RECHECK_MS: u64 = 1_000;
/// How many stores' build locks are kept before those no one holds are dropped.
const BUILDING_PRUNE_AT: usize = 64;

/// The most menus kept; past that the cache is emptied (menus rebuild on demand).
pub const MAX_ENTRIES: usize = 10_000;

/// An entity tag: its text (for `If-None-Match`) and the same, ready to send as a header.
pub struct Tag {
    pub text: String,
    pub header: Option<axum::http::HeaderValue>,
}

impl Tag {
    fn new(text: String) -> Tag {
        Tag {
            header: axum::http::HeaderValue::from_str(&text).ok(),
            text,
        }
    }
}

/// A built menu.
pub struct CachedMenu {
    pub menu: Arc<Menu>,
    /// The menu serialized once.
    pub json: Bytes,
    /// `"<store>-<version>"`, quoted.
    pub etag: Tag,
    /// The gzip-compressed JSON (made on first request for it) and its own tag, for clients
    /// that accept gzip: browsers and phones always do, and a café's menu shrinks about 6×.
    gzip: OnceLock<Option<Bytes>>,
    pub etag_gzip: Tag,
    checked_at_ms: AtomicU64,
}

impl CachedMenu {
    /// The menu's JSON compressed with gzip, made once (`None` if compressing failed, when the
    /// plain JSON is sent instead).
    pub fn gzipped(&self) -> Option<&Bytes> {
        self.gzip
            .get_or_init(|| {
                use std::io::Write;
                let mut e = flate2::write::GzEncoder::new(
                    Vec::with_capacity(self.json.len() / 4),
                    flate2::Compression::default(),
                );
                e.write_all(&self.json).ok()?;
                e.finish().ok().map(Bytes::from)
            })
            .as_ref()
    }

    pub fn new(menu: Menu, json: Bytes, now_ms: u64) -> CachedMenu {
        CachedMenu {
            etag: Tag::new(format!("\"{}-{}\"", menu.store_id, menu.version)),
            etag_gzip: Tag::new(format!("\"{}-{}-gzip\"", menu.store_id, menu.version)),
            gzip: OnceLock::new(),
            menu: Arc::new(menu),
            json,
            checked_at_ms: AtomicU64::new(now_ms),
        }
    }
}

#[derive(Default)]
struct Inner {
    menus: HashMap<String, Arc<CachedMenu>>,
    /// The lowest version a cached menu of each merchant may have (raised by local changes).
    floors: HashMap<String, i64>,
}

/// Menus by store id.
pub struct MenuCache {
    started: Instant,
    inner: RwLock<Inner>,
    /// One build at a time per store: when a change makes a busy store's menu stale, the
    /// requests that find it so wait for one build instead of each building it again.
    building: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Default for MenuCache {
    fn default() -> Self {
        MenuCache {
            started: Instant::now(),
            inner: RwLock::new(Inner::default()),
            building: Default::default(),
        }
    }
}

/// What a lookup found.
pub enum Lookup {
    /// Fresh enough to serve as is.
    Fresh(Arc<CachedMenu>),
    /// Cached, but its version must be checked (the recheck window passed).
    Check(Arc<CachedMenu>),
    Missing,
}

impl MenuCache {
    /// The turn to build a store's menu; look it up again once the turn is yours (another
    /// request may have built it meanwhile).
    pub async fn build_turn(&self, store_id: &str) -> tokio::sync::OwnedMutexGuard<()> {
        let lock = {
            let mut building = self.building.lock().unwrap_or_else(|e| e.into_inner());
            // Stores' locks stay after their builds; those held by no one are dropped now and
            // then.
            if building.len() >= BUILDING_PRUNE_AT {
                building.retain(|_, lock| Arc::strong_count(lock) > 1);
            }
            building.entry(store_id.to_owned()).or_default().clone()
        };
        lock.lock_owned().await
    }

    pub fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    pub fn lookup(&self, store_id: &str) -> Lookup {
        let Ok(inner) = self.inner.read() else {
            return Lookup::Missing;
        };
        let Some(entry) = inner.menus.get(store_id) else {
            return Lookup::Missing;
        };
        let floor = inner
            .floors
            .get(&entry.menu.merchant_id)
            .copied()
            .unwrap_or(0);
        if entry.menu.version < floor {
            return Lookup::Missing;
        }
        let age = self
            .now_ms()
            .saturating_sub(entry.checked_at_ms.load(Ordering::Relaxed));
        if age < RECHECK_MS {
            Lookup::Fresh(entry.clone())
        } else {
            Lookup::Check(entry.clone())
        }
    }

    /// The cached menu's version is still current: trust it for another window.
    pub fn confirm(&self, entry: &CachedMenu) {
        entry.checked_at_ms.store(self.now_ms(), Ordering::Relaxed);
    }

    /// Keeps a freshly built menu, unless a local change already made it stale.
    pub fn insert(&self, entry: Arc<CachedMenu>) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        let floor = inner
            .floors
            .get(&entry.menu.merchant_id)
            .copied()
            .unwrap_or(0);
        if entry.menu.version < floor {
            return;
        }
        if inner.menus.len() >= MAX_ENTRIES {
            inner.menus.clear();
        }
        inner.menus.insert(entry.menu.store_id.clone(), entry);
    }

    /// A change to the merchant's catalog committed with `version`: older menus are stale.
    pub fn changed(&self, merchant_id: &str, version: i64) {
        let Ok(mut inner) = self.inner.write() else {
            return;
        };
        let floor = inner.floors.entry(merchant_id.to_owned()).or_insert(0);
        if version > *floor {
            *floor = version;
        }
        inner
            .menus
            .retain(|_, m| m.menu.merchant_id != merchant_id || m.menu.version >= version);
    }
}
