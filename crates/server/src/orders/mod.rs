//! Orders: one model for four channels — dine-in at a table (several phones add to one shared
//! order, paid before the food or at the end, by one person or split), pickup (ordered ahead for
//! a time slot, handed over against a signed pickup code), delivery (within the store's radius,
//! with its fee, minimum and promised time; this capability takes it to "ready for delivery")
//! and scan-and-go (scanned in the store, paid on the phone, checked at the door with an exit
//! pass). Prices are computed here from the store's menu, never taken from the client.
//!
//! Every change of an order is a command for the node's sequencer ([`engine`]), applied in the
//! same batch transaction as the money it moves and the stock it reserves or releases. The
//! state machine is in [`model::Status`] and [`model::Step`]; an illegal move is a 409 with code
//! `order_transition_invalid` that names the order's status.

pub mod api;
pub mod engine;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
pub mod texts;
