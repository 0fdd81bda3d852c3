//! The double-entry book: accounts, immutable transfers, two-phase holds, and the rules that keep
//! every currency summing to zero.
//!
//! A [`Book`] is the working set of one batch: the accounts (and open holds) the batch touches,
//! loaded by the caller, changed here in memory, and written back by the caller in the batch's
//! one transaction. The rules follow TigerBeetle's model (PROTOCOLS.md): an account's balance
//! changes only by transfers; a pending transfer reserves money on both sides until it is posted
//! (fully or partly) or voided; a chain of linked transfers succeeds or fails as one; flagged
//! accounts may not go below zero. Nothing here knows about SQL or HTTP.
//!
//! Sign convention: an account's `balance` is credits minus debits, so a wallet holding ¥10 has
//! balance 1000 and the sandbox bank that paid it in has −1000. Per currency, balances sum to
//! zero after every transfer, because every transfer moves the same amount out of one account
//! and into another.

use crate::money::Currency;
use std::collections::BTreeMap;
// The book's keys are ids the server made (accounts, transfers, holds): a fast seeded hash, not
// SipHash, which took about a twentieth of a batch's instructions.
use foldhash::{HashMap, HashSet};

/// An account as the book sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Account {
    pub id: String,
    pub currency: Currency,
    /// Wallets, cards and budgets: `balance - pending_out` may never fall below zero.
    pub no_overdraft: bool,
    /// Credits minus debits, posted.
    pub balance: i64,
    /// Money held by pending transfers out of this account.
    pub pending_out: i64,
    /// Money held by pending transfers into this account.
    pub pending_in: i64,
}

impl Account {
    pub fn new(id: impl Into<String>, currency: Currency, no_overdraft: bool) -> Account {
        Account {
            id: id.into(),
            currency,
            no_overdraft,
            balance: 0,
            pending_out: 0,
            pending_in: 0,
        }
    }

    /// What can be spent now: the posted balance less what is held.
    pub fn available(&self) -> i64 {
        self.balance - self.pending_out
    }
}

/// An open hold (a pending transfer not yet posted or voided), as loaded for a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hold {
    pub id: String,
    pub debit: String,
    pub credit: String,
    pub amount: i64,
    pub currency: Currency,
    /// UTC microseconds; a hold past it can only be voided.
    pub expires_at: i64,
}

/// What a transfer does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Moves money now.
    Post,
    /// Holds money until `expires_at` (UTC microseconds).
    Pending { expires_at: i64 },
    /// Posts `amount` (≤ the hold) of hold `pending_id`; the rest is released.
    PostPending { pending_id: String },
    /// Releases hold `pending_id`.
    VoidPending { pending_id: String },
}

impl Action {
    /// The stored name of the action.
    pub fn as_str(&self) -> &'static str {
        match self {
            Action::Post => "post",
            Action::Pending { .. } => "pending",
            Action::PostPending { .. } => "post_pending",
            Action::VoidPending { .. } => "void_pending",
        }
    }
}

/// One transfer. For `PostPending` and `VoidPending` the accounts must be the hold's; for
/// `VoidPending` the amount is 0 (nothing moves but the release).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transfer {
    pub id: String,
    pub debit: String,
    pub credit: String,
    pub amount: i64,
    pub currency: Currency,
    pub action: Action,
    /// What kind of movement this is (`top_up`, `payment`, `fee`, `refund`…).
    pub code: &'static str,
    /// The business object it belongs to (`pay_…`, `rfd_…`).
    pub reference: String,
}

/// Why a transfer (and so its whole chain) was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    #[error("amount must be positive")]
    AmountNotPositive,
    #[error("debit and credit are the same account")]
    SameAccount,
    #[error("account {0} is not loaded")]
    AccountMissing(String),
    #[error("currency does not match the account's")]
    CurrencyMismatch,
    #[error("insufficient funds in {0}")]
    InsufficientFunds(String),
    #[error("amount overflows")]
    Overflow,
    #[error("transfer id {0} was already applied")]
    Exists(String),
    #[error("hold {0} is not open")]
    HoldNotOpen(String),
    #[error("hold {0} has expired")]
    HoldExpired(String),
    #[error("posting more than the hold")]
    ExceedsHold,
    #[error("accounts differ from the hold's")]
    HoldMismatch,
}

/// The working set of one batch.
#[derive(Debug, Default)]
pub struct Book {
    accounts: HashMap<String, Account>,
    holds: HashMap<String, Hold>,
    applied: HashSet<String>,
    changed: HashSet<String>,
    /// The changed accounts as they were loaded, before the first change.
    before: HashMap<String, Account>,
    opened_holds: Vec<String>,
}

impl Book {
    pub fn new() -> Book {
        Book::default()
    }

    /// Adds a loaded account (ignored when already present: the book's copy is newer).
    pub fn load_account(&mut self, account: Account) {
        self.accounts.entry(account.id.clone()).or_insert(account);
    }

    /// Adds a loaded open hold.
    pub fn load_hold(&mut self, hold: Hold) {
        self.holds.entry(hold.id.clone()).or_insert(hold);
    }

    /// Marks a transfer id as already applied (from storage), so applying it again is refused.
    pub fn load_applied(&mut self, id: impl Into<String>) {
        self.applied.insert(id.into());
    }

    pub fn account(&self, id: &str) -> Option<&Account> {
        self.accounts.get(id)
    }

    pub fn hold(&self, id: &str) -> Option<&Hold> {
        self.holds.get(id)
    }

    pub fn has_account(&self, id: &str) -> bool {
        self.accounts.contains_key(id)
    }

    /// Applies a chain of linked transfers, all or nothing, at time `now` (UTC microseconds).
    /// On error nothing in the book has changed, and the index of the failing transfer is given.
    pub fn apply(&mut self, chain: &[Transfer], now: i64) -> Result<(), (usize, LedgerError)> {
        // Work on copies of the touched accounts and holds; swap them in only when all succeed.
        let mut accounts: BTreeMap<&str, Account> = BTreeMap::new();
        let mut holds_closed: Vec<&str> = Vec::new();
        let mut holds_opened: Vec<Hold> = Vec::new();
        // A chain is a few transfers long: its ids are checked against each other in a list.
        let mut ids: Vec<&str> = Vec::with_capacity(chain.len());
        for (i, t) in chain.iter().enumerate() {
            let fail = |e| (i, e);
            if self.applied.contains(&t.id) || ids.contains(&t.id.as_str()) {
                return Err(fail(LedgerError::Exists(t.id.clone())));
            }
            ids.push(&t.id);
            if t.debit == t.credit {
                return Err(fail(LedgerError::SameAccount));
            }
            for id in [&t.debit, &t.credit] {
                if !accounts.contains_key(id.as_str()) {
                    let acc = self
                        .accounts
                        .get(id)
                        .ok_or_else(|| fail(LedgerError::AccountMissing(id.clone())))?;
                    accounts.insert(id.as_str(), acc.clone());
                }
                if accounts[id.as_str()].currency != t.currency {
                    return Err(fail(LedgerError::CurrencyMismatch));
                }
            }
            match &t.action {
                Action::Post | Action::Pending { .. } => {
                    if t.amount <= 0 {
                        return Err(fail(LedgerError::AmountNotPositive));
                    }
                    let pending = matches!(t.action, Action::Pending { .. });
                    let debit = accounts.get_mut(t.debit.as_str()).expect("loaded above");
                    if debit.no_overdraft && debit.available() < t.amount {
                        return Err(fail(LedgerError::InsufficientFunds(t.debit.clone())));
                    }
                    if pending {
                        debit.pending_out = add(debit.pending_out, t.amount).map_err(fail)?;
                    } else {
                        debit.balance = sub(debit.balance, t.amount).map_err(fail)?;
                    }
                    let credit = accounts.get_mut(t.credit.as_str()).expect("loaded above");
                    if pending {
                        credit.pending_in = add(credit.pending_in, t.amount).map_err(fail)?;
                    } else {
                        credit.balance = add(credit.balance, t.amount).map_err(fail)?;
                    }
                    if let Action::Pending { expires_at } = t.action {
                        holds_opened.push(Hold {
                            id: t.id.clone(),
                            debit: t.debit.clone(),
                            credit: t.credit.clone(),
                            amount: t.amount,
                            currency: t.currency,
                            expires_at,
                        });
                    }
                }
                Action::PostPending { pending_id } | Action::VoidPending { pending_id } => {
                    let posting = matches!(t.action, Action::PostPending { .. });
                    if holds_closed.contains(&pending_id.as_str()) {
                        return Err(fail(LedgerError::HoldNotOpen(pending_id.clone())));
                    }
                    let hold = self
                        .holds
                        .get(pending_id)
                        .ok_or_else(|| fail(LedgerError::HoldNotOpen(pending_id.clone())))?;
                    if hold.debit != t.debit
                        || hold.credit != t.credit
                        || hold.currency != t.currency
                    {
                        return Err(fail(LedgerError::HoldMismatch));
                    }
                    if posting {
                        if hold.expires_at <= now {
                            return Err(fail(LedgerError::HoldExpired(pending_id.clone())));
                        }
                        if t.amount <= 0 {
                            return Err(fail(LedgerError::AmountNotPositive));
                        }
                        if t.amount > hold.amount {
                            return Err(fail(LedgerError::ExceedsHold));
                        }
                    } else if t.amount != 0 {
                        return Err(fail(LedgerError::ExceedsHold));
                    }
                    let debit = accounts.get_mut(t.debit.as_str()).expect("loaded above");
                    debit.pending_out = sub(debit.pending_out, hold.amount).map_err(fail)?;
                    debit.balance = sub(debit.balance, t.amount).map_err(fail)?;
                    let credit = accounts.get_mut(t.credit.as_str()).expect("loaded above");
                    credit.pending_in = sub(credit.pending_in, hold.amount).map_err(fail)?;
                    credit.balance = add(credit.balance, t.amount).map_err(fail)?;
                    holds_closed.push(pending_id.as_str());
                }
            }
        }
        // Every flagged account must still be covered at the end of the chain (a chain may pass
        // through zero, never below).
        for acc in accounts.values() {
            if acc.no_overdraft && acc.available() < 0 {
                let i = chain
                    .iter()
                    .rposition(|t| t.debit == acc.id)
                    .unwrap_or_default();
                return Err((i, LedgerError::InsufficientFunds(acc.id.clone())));
            }
        }
        let closed: Vec<String> = holds_closed.iter().map(|s| (*s).to_owned()).collect();
        for (id, acc) in accounts {
            let first = self.changed.insert(id.to_owned());
            if let Some(loaded) = self.accounts.insert(id.to_owned(), acc)
                && first
            {
                self.before.insert(id.to_owned(), loaded);
            }
        }
        for id in closed {
            self.holds.remove(&id);
        }
        for hold in holds_opened {
            self.opened_holds.push(hold.id.clone());
            self.holds.insert(hold.id.clone(), hold);
        }
        for t in chain {
            self.applied.insert(t.id.clone());
        }
        Ok(())
    }

    /// A changed account as it was loaded, before this book changed it: what the storage
    /// should still hold when the change is written back.
    pub fn before_changes(&self, id: &str) -> Option<&Account> {
        self.before.get(id)
    }

    /// The accounts changed by applied chains, to be written back.
    pub fn changed_accounts(&self) -> impl Iterator<Item = &Account> {
        self.changed.iter().filter_map(|id| self.accounts.get(id))
    }

    /// Sum of balances per currency over the accounts in the book (zero for a complete book).
    pub fn totals(&self) -> BTreeMap<&'static str, i128> {
        let mut totals = BTreeMap::new();
        for acc in self.accounts.values() {
            *totals.entry(acc.currency.code()).or_insert(0) += i128::from(acc.balance);
        }
        totals
    }
}

fn add(a: i64, b: i64) -> Result<i64, LedgerError> {
    a.checked_add(b).ok_or(LedgerError::Overflow)
}

fn sub(a: i64, b: i64) -> Result<i64, LedgerError> {
    a.checked_sub(b).ok_or(LedgerError::Overflow)
}

/// What verification found; the JSON of `GET /v1/admin/ledger/verify` and `o2o verify-ledger`.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Verification {
    pub balanced: bool,
    pub transfers: u64,
    pub accounts: u64,
    /// Sum of all balances per currency: zero when the books balance.
    pub totals: BTreeMap<String, i64>,
    /// Flagged accounts whose available balance is below zero.
    pub negative_accounts: Vec<String>,
    /// Accounts whose stored balance or held amounts differ from the sum of their transfers.
    pub mismatched_accounts: Vec<String>,
    /// Posts or voids that do not match their hold (unknown hold, other accounts, more than held,
    /// or resolved twice).
    pub bad_resolutions: Vec<String>,
    /// Money moved twice for one business object (a payment charged twice…).
    pub duplicate_transfers: Vec<String>,
    /// Transfers naming an account that does not exist.
    pub orphan_transfers: Vec<String>,
}

/// An account's stored state next to the sums recomputed from its transfers.
#[derive(Clone, Debug)]
pub struct AccountCheck {
    pub id: String,
    pub currency: String,
    pub no_overdraft: bool,
    pub balance: i64,
    pub pending_out: i64,
    pub pending_in: i64,
    /// Credits minus debits over posted transfers (posts and posted holds).
    pub computed_balance: i64,
    /// Sum of open holds out of / into the account.
    pub computed_pending_out: i64,
    pub computed_pending_in: i64,
}

impl Verification {
    /// Builds the verdict from per-account checks, the transfer count, and the ids of any bad
    /// resolutions and duplicate transfers found by the caller's queries.
    pub fn from_checks(
        checks: &[AccountCheck],
        transfers: u64,
        bad_resolutions: Vec<String>,
        duplicate_transfers: Vec<String>,
        orphan_transfers: Vec<String>,
    ) -> Verification {
        let mut totals: BTreeMap<String, i128> = BTreeMap::new();
        let mut negative_accounts = Vec::new();
        let mut mismatched_accounts = Vec::new();
        for c in checks {
            *totals.entry(c.currency.clone()).or_insert(0) += i128::from(c.balance);
            if c.no_overdraft && c.balance - c.pending_out < 0 {
                negative_accounts.push(c.id.clone());
            }
            if c.balance != c.computed_balance
                || c.pending_out != c.computed_pending_out
                || c.pending_in != c.computed_pending_in
            {
                mismatched_accounts.push(c.id.clone());
            }
        }
        let zero = totals.values().all(|t| *t == 0);
        let totals: BTreeMap<String, i64> = totals
            .into_iter()
            .map(|(k, v)| (k, i64::try_from(v).unwrap_or(i64::MAX)))
            .collect();
        Verification {
            balanced: zero
                && negative_accounts.is_empty()
                && mismatched_accounts.is_empty()
                && bad_resolutions.is_empty()
                && duplicate_transfers.is_empty()
                && orphan_transfers.is_empty(),
            transfers,
            accounts: checks.len() as u64,
            totals,
            negative_accounts,
            mismatched_accounts,
            bad_resolutions,
            duplicate_transfers,
            orphan_transfers,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn cny() -> Currency {
        Currency::parse("CNY").unwrap()
    }

    fn t(id: &str, debit: &str, credit: &str, amount: i64, action: Action) -> Transfer {
        Transfer {
            id: id.into(),
            debit: debit.into(),
            credit: credit.into(),
            amount,
            currency: cny(),
            action,
            code: "test",
            reference: "ref".into(),
        }
    }

    fn book() -> Book {
        let mut b = Book::new();
        b.load_account(Account::new("bank", cny(), false));
        b.load_account(Account::new("wallet", cny(), true));
        b.load_account(Account::new("merchant", cny(), false));
        b.load_account(Account::new("fees", cny(), false));
        b
    }

    #[test]
    fn a_transfer_moves_money_and_keeps_the_sum_zero() {
        let mut b = book();
        b.apply(&[t("1", "bank", "wallet", 1000, Action::Post)], 0)
            .unwrap();
        assert_eq!(b.account("wallet").unwrap().balance, 1000);
        assert_eq!(b.account("bank").unwrap().balance, -1000);
        assert_eq!(b.totals()["CNY"], 0);
    }

    #[test]
    fn a_changed_account_remembers_how_it_was_loaded() {
        let mut b = Book::new();
        let mut wallet = Account::new("wallet", cny(), true);
        wallet.balance = 700;
        b.load_account(wallet);
        b.load_account(Account::new("bank", cny(), false));
        b.load_account(Account::new("fees", cny(), false));
        b.apply(&[t("1", "bank", "wallet", 300, Action::Post)], 0)
            .unwrap();
        b.apply(&[t("2", "wallet", "bank", 100, Action::Post)], 0)
            .unwrap();
        assert_eq!(b.account("wallet").unwrap().balance, 900);
        assert_eq!(b.before_changes("wallet").unwrap().balance, 700);
        assert_eq!(b.before_changes("bank").unwrap().balance, 0);
        assert!(b.before_changes("fees").is_none(), "unchanged");
    }

    #[test]
    fn a_flagged_account_cannot_go_negative_and_nothing_moves() {
        let mut b = book();
        let err = b
            .apply(&[t("1", "wallet", "merchant", 1, Action::Post)], 0)
            .unwrap_err();
        assert_eq!(err, (0, LedgerError::InsufficientFunds("wallet".into())));
        assert_eq!(b.account("merchant").unwrap().balance, 0);
        assert_eq!(b.changed_accounts().count(), 0);
    }

    #[test]
    fn linked_transfers_fail_together() {
        let mut b = book();
        b.apply(&[t("1", "bank", "wallet", 500, Action::Post)], 0)
            .unwrap();
        let err = b
            .apply(
                &[
                    t("2", "wallet", "merchant", 500, Action::Post),
                    t("3", "wallet", "fees", 1, Action::Post),
                ],
                0,
            )
            .unwrap_err();
        assert_eq!(err.0, 1);
        assert_eq!(b.account("wallet").unwrap().balance, 500);
        assert_eq!(b.account("merchant").unwrap().balance, 0);
        // The failed chain's ids were not consumed.
        b.apply(&[t("2", "wallet", "merchant", 500, Action::Post)], 0)
            .unwrap();
    }

    #[test]
    fn a_transfer_id_applies_once() {
        let mut b = book();
        b.apply(&[t("1", "bank", "wallet", 5, Action::Post)], 0)
            .unwrap();
        let err = b
            .apply(&[t("1", "bank", "wallet", 5, Action::Post)], 0)
            .unwrap_err();
        assert_eq!(err.1, LedgerError::Exists("1".into()));
        assert_eq!(b.account("wallet").unwrap().balance, 5);
    }

    #[test]
    fn holds_post_partly_and_release_the_rest() {
        let mut b = book();
        b.apply(&[t("1", "bank", "wallet", 1000, Action::Post)], 0)
            .unwrap();
        b.apply(
            &[t(
                "h",
                "wallet",
                "merchant",
                800,
                Action::Pending { expires_at: 100 },
            )],
            0,
        )
        .unwrap();
        let w = b.account("wallet").unwrap();
        assert_eq!((w.balance, w.pending_out, w.available()), (1000, 800, 200));
        // Cannot spend the held money.
        assert!(
            b.apply(&[t("x", "wallet", "fees", 201, Action::Post)], 0)
                .is_err()
        );
        let post = t(
            "p",
            "wallet",
            "merchant",
            600,
            Action::PostPending {
                pending_id: "h".into(),
            },
        );
        assert_eq!(
            b.apply(std::slice::from_ref(&post), 100).unwrap_err().1,
            LedgerError::HoldExpired("h".into())
        );
        b.apply(&[post], 99).unwrap();
        let w = b.account("wallet").unwrap();
        assert_eq!((w.balance, w.pending_out), (400, 0));
        let m = b.account("merchant").unwrap();
        assert_eq!((m.balance, m.pending_in), (600, 0));
        // A hold resolves once.
        let void = t(
            "v",
            "wallet",
            "merchant",
            0,
            Action::VoidPending {
                pending_id: "h".into(),
            },
        );
        assert_eq!(
            b.apply(&[void], 0).unwrap_err().1,
            LedgerError::HoldNotOpen("h".into())
        );
    }

    #[test]
    fn posting_more_than_held_is_refused() {
        let mut b = book();
        b.apply(&[t("1", "bank", "wallet", 1000, Action::Post)], 0)
            .unwrap();
        b.apply(
            &[t(
                "h",
                "wallet",
                "merchant",
                300,
                Action::Pending { expires_at: 10 },
            )],
            0,
        )
        .unwrap();
        let over = t(
            "p",
            "wallet",
            "merchant",
            301,
            Action::PostPending {
                pending_id: "h".into(),
            },
        );
        assert_eq!(b.apply(&[over], 0).unwrap_err().1, LedgerError::ExceedsHold);
        let other = t(
            "p",
            "wallet",
            "fees",
            100,
            Action::PostPending {
                pending_id: "h".into(),
            },
        );
        assert_eq!(
            b.apply(&[other], 0).unwrap_err().1,
            LedgerError::HoldMismatch
        );
    }

    #[test]
    fn currencies_do_not_mix() {
        let mut b = book();
        b.load_account(Account::new("usd", Currency::parse("USD").unwrap(), false));
        let err = b
            .apply(&[t("1", "bank", "usd", 5, Action::Post)], 0)
            .unwrap_err();
        assert_eq!(err.1, LedgerError::CurrencyMismatch);
    }

    #[test]
    fn verification_flags_mismatch_negative_and_imbalance() {
        let ok = AccountCheck {
            id: "a".into(),
            currency: "CNY".into(),
            no_overdraft: true,
            balance: 10,
            pending_out: 0,
            pending_in: 0,
            computed_balance: 10,
            computed_pending_out: 0,
            computed_pending_in: 0,
        };
        let bank = AccountCheck {
            id: "bank".into(),
            no_overdraft: false,
            balance: -10,
            computed_balance: -10,
            ..ok.clone()
        };
        let v = Verification::from_checks(&[ok.clone(), bank.clone()], 1, vec![], vec![], vec![]);
        assert!(v.balanced);
        assert_eq!(v.totals["CNY"], 0);
        let drift = AccountCheck {
            balance: 11,
            ..ok.clone()
        };
        let v = Verification::from_checks(&[drift, bank.clone()], 1, vec![], vec![], vec![]);
        assert!(!v.balanced);
        assert_eq!(v.mismatched_accounts, vec!["a".to_owned()]);
        assert_eq!(v.totals["CNY"], 1);
        let neg = AccountCheck {
            balance: 5,
            pending_out: 6,
            computed_balance: 5,
            computed_pending_out: 6,
            ..ok
        };
        let v = Verification::from_checks(&[neg], 1, vec![], vec![], vec![]);
        assert_eq!(v.negative_accounts, vec!["a".to_owned()]);
    }

    proptest! {
        /// Random chains of posts, holds, captures and voids: the book always sums to zero, no
        /// flagged account goes below zero, and a refused chain changes nothing.
        #[test]
        fn random_chains_keep_the_invariants(ops in proptest::collection::vec((0u8..5, 0usize..4, 0usize..4, 0i64..2_000, 0u8..3), 1..80)) {
            let names = ["bank", "wallet", "merchant", "fees"];
            let mut b = book();
            let mut holds: Vec<(String, usize, usize, i64)> = Vec::new();
            for (n, (op, d, c, amount, extra)) in ops.into_iter().enumerate() {
                let id = format!("t{n}");
                let before: Vec<Account> = names.iter().map(|a| b.account(a).unwrap().clone()).collect();
                let chain = match op {
                    0 => vec![t(&id, names[d], names[c], amount, Action::Post)],
                    1 => vec![t(&id, names[d], names[c], amount, Action::Pending { expires_at: 50 })],
                    2 | 3 if !holds.is_empty() => {
                        let (hid, hd, hc, _) = holds[usize::from(extra) % holds.len()].clone();
                        let action = if op == 2 { Action::PostPending { pending_id: hid } } else { Action::VoidPending { pending_id: hid } };
                        let amt = if op == 2 { amount } else { 0 };
                        vec![t(&id, names[hd], names[hc], amt, action)]
                    }
                    _ => vec![
                        t(&id, names[d], names[c], amount, Action::Post),
                        t(&format!("{id}b"), names[c], names[(c + 1) % 4], amount / 2 + 1, Action::Post),
                    ],
                };
                let result = b.apply(&chain, i64::from(extra) * 30);
                if result.is_ok() {
                    if op == 1 { holds.push((id.clone(), d, c, amount)); }
                } else {
                    let after: Vec<Account> = names.iter().map(|a| b.account(a).unwrap().clone()).collect();
                    prop_assert_eq!(before, after);
                }
                prop_assert_eq!(b.totals()["CNY"], 0);
                let pending_out: i64 = names.iter().map(|a| b.account(a).unwrap().pending_out).sum();
                let pending_in: i64 = names.iter().map(|a| b.account(a).unwrap().pending_in).sum();
                prop_assert_eq!(pending_out, pending_in);
                prop_assert!(b.account("wallet").unwrap().available() >= 0);
            }
        }
    }
}
