//! Stores: where a merchant meets consumers. Location, time zone, opening hours (OpenStreetMap's
//! `opening_hours` syntax), delivery and fence radii, tables, and public discovery by distance.
//!
//! Glossary: *open now* is evaluated in the store's own time zone; the *fence* is the radius in
//! which a passing consumer counts as "at the store"; the *delivery radius* bounds delivery orders.

pub mod api;
pub mod hours;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
