//! Free-WiFi login: a store's printed `wifi` code opens a login page; a consumer logs in with
//! their phone (the usual one-time code), may tick "follow this shop" (unticked unless they
//! tick it), and their device is granted the store's internet for a while.
//!
//! It follows captive-portal forwarding authentication (openNDS FAS): the store's router sends
//! an unauthenticated client to the code's URL with its own parameters (gateway name `gw`,
//! client `mac` and `ip`, its token `tok`, and the page first asked for `redir`); after the
//! login the page sends the client back to the router's auth address with `tok` (when the
//! merchant set that address), and the router can always ask `POST /v1/wifi/grants/verify`
//! with the store's WiFi key whether a device is allowed.
//!
//! Glossary: a *WiFi key* (`wk_…`) authenticates one store's router; a *grant* (`wfg_`) is
//! access for one device (by MAC) at one store until it expires.

pub mod api;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
