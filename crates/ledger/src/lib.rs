//! The double-entry ledger engine of o2o, and the money type it keeps its books in.
//!
//! - [`money`]: integer amounts in a currency's minor unit, with checked arithmetic that reports
//!   overflow and currency mismatches as typed errors instead of panicking.
//! - [`book`]: accounts, immutable transfers, two-phase holds and linked chains, applied in
//!   memory to the working set of one batch, plus the verdict of a full verification.
//! - [`sequencer`]: the one task per node that applies writes in batches, one commit each.

pub mod book;
pub mod money;
pub mod sequencer;

pub use book::{Account, Action, Book, Hold, LedgerError, Transfer, Verification};
pub use money::{Currency, Money, MoneyError, Rounding, shown_price};
pub use sequencer::{Applier, Sequencer, SubmitError};
