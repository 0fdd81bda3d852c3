//! o2o-server: the platform. One folder per capability (`identity`, `merchants`, `stores`, …),
//! each with its model, service (rules), store (SQL), JSON API and pages, plus the shared plumbing:
//! `db` (pools, migrations, tenant scope), `http` (errors, extractors, idempotency, OpenAPI) and
//! `web` (page layout, i18n, assets). `app` builds the router; `serve` runs it until shutdown.

pub mod app;
pub mod catalog;
pub mod codes;
pub mod config;
pub mod db;
pub mod demo;
mod demo_menu;
pub mod error;
pub mod events;
pub mod followers;
pub mod http;
pub mod identity;
pub mod ids;
pub mod marketing;
pub mod members;
pub mod merchants;
pub mod orders;
pub mod payments;
pub mod serve;
pub mod stores;
pub mod system;
pub mod web;
pub mod wifi;

pub use app::{AppState, router};
pub use config::{Config, LogFormat, Settings};
