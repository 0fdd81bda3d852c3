//! Payments on an exact ledger: wallets (top-up and withdrawal through a payment provider),
//! three ways to pay (the consumer scans a printed code, the cashier scans the consumer's pay
//! code, the cashier records cash), holds with capture and cancel, refunds, the platform fee,
//! merchant balances and statements, and ledger verification.
//!
//! Every movement of money is a command for the [`engine`], which applies commands in batches
//! through the sequencer; the ledger's rules live in the `o2o-ledger` engine.

pub mod accounts;
pub mod api;
pub mod engine;
pub mod model;
pub mod pages;
pub mod provider;
pub mod service;
pub mod store;

pub use engine::Engine;
