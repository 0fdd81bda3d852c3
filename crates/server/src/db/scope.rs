//! The tenant scope: proof that the caller acts for one merchant.
//!
//! Every store function that reads or writes merchant-owned rows takes a [`MerchantScope`] and puts
//! its id in the `WHERE` clause, so a row of another merchant is simply not found (the API answers
//! 404, never 403, so ids of other merchants leak nothing). A scope is made only by the auth
//! extractors from an authenticated staff session or `sk_` key, and by merchant creation for the
//! merchant it just created.

use std::fmt;

/// The merchant an authenticated principal acts for.
#[derive(Clone, PartialEq, Eq)]
pub struct MerchantScope {
    merchant_id: String,
}

impl MerchantScope {
    /// Only for the auth extractors and for the creator of a new merchant.
    pub(crate) fn authenticated(merchant_id: String) -> MerchantScope {
        MerchantScope { merchant_id }
    }

    pub fn merchant_id(&self) -> &str {
        &self.merchant_id
    }

    /// True when `merchant_id` is this scope's merchant.
    pub fn owns(&self, merchant_id: &str) -> bool {
        self.merchant_id == merchant_id
    }
}

impl fmt::Debug for MerchantScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "MerchantScope({})", self.merchant_id)
    }
}
