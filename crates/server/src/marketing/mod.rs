//! Marketing: card coupons. A merchant creates templates (amount off, percent off with a cap,
//! a free item; minimum spend; stores and channels; claim and use windows; total stock and a
//! per-consumer limit; an audience; a stacking rule); consumers claim them (the coupon center,
//! a campaign, or pushed by the merchant) and use them at checkout, on an order or a store-pay
//! payment. Claims go through the node's sequencer, so a flash claim issues exactly the stock and
//! no consumer exceeds their limit; once a template is sold out, later claims are answered from
//! memory (the coupon center still lists a sold-out template, marked, after the claimable ones).
//! A template may carry a price in member points: it is then not claimed free but exchanged for
//! points from a member card (see `members`), through the same claim path. A coupon's discount
//! is paid by the merchant's promotion account in the ledger, linked to the payment, so the
//! merchant sees what each campaign cost; a payment refunded in full gives its coupon back.

pub mod api;
pub mod engine;
pub mod model;
pub mod pages;
pub mod service;
pub mod store;
pub mod texts;

/// Coupon templates a node knows are sold out (stock never grows back, so this only fills).
#[derive(Default)]
pub struct SoldOut(std::sync::RwLock<std::collections::HashSet<String>>);

impl SoldOut {
    pub fn contains(&self, template_id: &str) -> bool {
        self.0
            .read()
            .map(|s| s.contains(template_id))
            .unwrap_or(false)
    }

    pub fn insert(&self, template_id: String) {
        if let Ok(mut s) = self.0.write() {
            s.insert(template_id);
        }
    }
}
