//! Merchants: sign-up (trading or listing), staff with roles, API keys for the merchant's own
//! servers, and verification by the platform.
//!
//! Glossary: a *trading* merchant takes payments; a *listing* merchant only publishes stores and
//! offers. A *verified* merchant has been checked by the platform; pages name it before any money
//! moves.

pub mod api;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
