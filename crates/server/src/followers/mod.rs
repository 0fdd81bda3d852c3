//! Followers: a merchant's "service window". A consumer follows a merchant only by saying so
//! (a button on the store page, a ticked box at the WiFi login, a campaign, an app calling the
//! API), and the channel and time of that consent are kept; paying never makes anyone a
//! follower. The merchant writes messages to its followers; each lands in the consumer's
//! inbox, unless the consumer muted the merchant.
//!
//! Glossary: a *follow* is a consumer's standing consent to hear from one merchant (`fol_`);
//! the *consent log* records every follow and unfollow; a *mute* silences a merchant without
//! unfollowing; a *message* (`msg_`) is one broadcast with its *audience* (`followers`,
//! `members`: holders of an open card of the merchant's program, or `tier:<name>`: holders whose
//! card is in that tier) and its delivery *progress* (`recipients`
//! fixed when sending starts, `delivered` so far); an *inbox item* (`inb_`) is one message in
//! one consumer's inbox, read or unread. Delivery runs in the background ([`delivery`]).

pub mod api;
pub mod delivery;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
