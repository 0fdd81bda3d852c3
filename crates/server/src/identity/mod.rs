//! Identity: consumers (by phone and one-time code, starting as guests), staff, riders and
//! operators (by email and password), sessions and their tokens, and the SMS sender.
//!
//! Glossary: a *principal* is whoever is calling; a *guest* is a consumer without a phone yet;
//! a *session* is a revocable login whose token the client holds (header or cookie).

pub mod api;
pub mod model;
pub mod pages;
pub mod passwords;
pub mod service;
pub mod store;

pub use model::{Email, NewPassword, Phone, Principal, PrincipalKind, Role};
pub use passwords::Passwords;
pub use service::{OutboxOnly, SmsSender};
