//! The catalog: what a merchant sells. Categories (ordered), products with names in Chinese
//! and/or English, a price in minor units, option groups (size, sugar, spice: single or multiple
//! choice, required or not, each option with a price delta), an EAN-13 / UPC-A barcode and a
//! photo; and per store, a price override, availability and an optional stock count.
//!
//! Glossary: a *menu* is one store's view of its merchant's catalog (store prices, sold-out
//! marks); *sold out* means not available at that store, or a stock count of 0; the *catalog
//! version* is a per-merchant number raised by every change, which is how cached menus on every
//! node learn they are stale (see [`cache`]).

pub mod api;
pub mod cache;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;

pub use cache::MenuCache;
