//! Codes: printed codes at every touchpoint (store pay, table, product, campaign, WiFi) that any
//! phone camera opens and the server resolves (so they can be revoked and rotated, and a sticker
//! pasted over a shop's code is caught), the EMVCo payload of a store's pay code, A4 sheets of
//! table codes, and the codes consumers show: 18-digit pay codes and signed tokens, checked by
//! staff with `POST /v1/scan` and used once.
//!
//! Glossary: a *short id* is the random part of a printed code's URL (`/q/<short>`); *resolving*
//! is turning it into merchant, store and table; *scanning* is staff accepting a consumer's code.

pub mod api;
pub mod keys;
pub mod model;
pub mod pages;
pub mod service;
pub mod sheet;
pub mod store;
