//! The chart of accounts. An account's id says what it is, so a command knows its accounts
//! without a lookup, and accounts are created when first used (member cards excepted: the
//! membership capability opens them).
//!
//! Sign convention (see `o2o_ledger::book`): balance = credits − debits. Money the platform
//! holds for someone is positive (wallets, cards, a merchant's pending and available balances,
//! platform fees); the sources of outside money carry the matching negative: the sandbox bank
//! (and any real provider) for money paid in, and each store's cash drawer for notes taken at
//! the counter (its balance is minus the cash in the drawer, matched by the merchant's cash
//! takings account).

use o2o_ledger::Currency;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Wallet,
    Card,
    CardBonus,
    MerchantPending,
    MerchantAvailable,
    MerchantPromotion,
    MerchantCash,
    PlatformFees,
    Bank,
    Drawer,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Wallet => "wallet",
            Kind::Card => "card",
            Kind::CardBonus => "card_bonus",
            Kind::MerchantPending => "merchant_pending",
            Kind::MerchantAvailable => "merchant_available",
            Kind::MerchantPromotion => "merchant_promotion",
            Kind::MerchantCash => "merchant_cash",
            Kind::PlatformFees => "platform_fees",
            Kind::Bank => "bank",
            Kind::Drawer => "drawer",
        }
    }
}

/// An account's identity and rules.
#[derive(Clone, Debug)]
pub struct AccountSpec {
    pub id: String,
    pub kind: Kind,
    pub owner: Option<String>,
    pub currency: Currency,
    pub no_overdraft: bool,
}

fn spec(kind: Kind, owner: Option<&str>, currency: Currency, no_overdraft: bool) -> AccountSpec {
    // `kind:owner:currency` (or `kind:currency`), the id built in one allocation: the sequencer
    // makes a few of these for every payment, and `format!` cost it more than the strings do.
    let (kind_name, code) = (kind.as_str(), currency.code());
    let mut id =
        String::with_capacity(kind_name.len() + owner.map_or(0, str::len) + code.len() + 2);
    id.push_str(kind_name);
    id.push(':');
    if let Some(o) = owner {
        id.push_str(o);
        id.push(':');
    }
    id.push_str(code);
    AccountSpec {
        id,
        kind,
        owner: owner.map(str::to_owned),
        currency,
        no_overdraft,
    }
}

/// A consumer's wallet: may not go negative.
pub fn wallet(user_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::Wallet, Some(user_id), currency, true)
}

/// A stored-value member card (`crd_…`): may not go negative.
pub fn card(card_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::Card, Some(card_id), currency, true)
}

/// The bonus part of a member card (what the merchant added on top-ups): may not go negative;
/// spent after the paid part, returned to the card (never to a wallet) by refunds, and forfeited
/// to the merchant's promotion budget when the card is closed.
pub fn card_bonus(card_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::CardBonus, Some(card_id), currency, true)
}

/// What the platform owes a merchant and has not settled yet.
pub fn merchant_pending(merchant_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::MerchantPending, Some(merchant_id), currency, false)
}

/// Settled, ready to pay out to the merchant's bank.
pub fn merchant_available(merchant_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::MerchantAvailable, Some(merchant_id), currency, false)
}

/// The merchant's promotion budget: one account for everything its promotions cost. The owner
/// may fund it in advance (from the bank or the available balance); member-card bonuses are paid
/// from it only while it holds the money (a top-up whose bonus it cannot pay is refused);
/// coupons are paid from it always, so it goes below zero once coupons cost more than was
/// funded, and settlement brings a negative budget back to zero from what the merchant
/// collected (the daily one leaves what coupons cost since the day began for the next day).
/// What each campaign cost is read from its transfers' references.
pub fn merchant_promotion(merchant_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::MerchantPromotion, Some(merchant_id), currency, false)
}

/// Cash the merchant took at its counters.
pub fn merchant_cash(merchant_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::MerchantCash, Some(merchant_id), currency, false)
}

/// The platform's fee income.
pub fn platform_fees(currency: Currency) -> AccountSpec {
    spec(Kind::PlatformFees, None, currency, false)
}

/// A payment provider's side of money in and out (the sandbox bank by default).
pub fn bank(provider: &str, currency: Currency) -> AccountSpec {
    spec(Kind::Bank, Some(provider), currency, false)
}

/// A store's cash drawer.
pub fn drawer(store_id: &str, currency: Currency) -> AccountSpec {
    spec(Kind::Drawer, Some(store_id), currency, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Account ids are stored with every balance and transfer: their shape never changes.
    #[test]
    fn an_account_id_names_its_kind_owner_and_currency() {
        let cny = Currency::CNY;
        assert_eq!(wallet("usr_1", cny).id, "wallet:usr_1:CNY");
        assert_eq!(
            merchant_pending("mer_9", cny).id,
            "merchant_pending:mer_9:CNY"
        );
        assert_eq!(platform_fees(cny).id, "platform_fees:CNY");
        assert_eq!(card_bonus("crd_x", cny).id, "card_bonus:crd_x:CNY");
    }
}
