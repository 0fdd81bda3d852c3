//! The double-entry ledger engine of o2o, and the money type it keeps its
//! books in.
//!
//! For now the crate holds only [`Money`] and [`Currency`]: integer amounts
//! in a currency's minor unit, with checked arithmetic that reports overflow
//! and currency mismatches as typed errors instead of panicking. The posting
//! engine itself will be built on top of them.

pub mod money;

pub use money::{Currency, Money, MoneyError, Rounding};
