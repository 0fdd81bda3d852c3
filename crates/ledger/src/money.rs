//! Money as an integer count of a currency's minor unit.
//!
//! [`Money`] never touches floating point: an amount is an `i64` number of
//! minor units (fen, cents, yen) tagged with its [`Currency`]. Every
//! arithmetic operation is checked and returns a [`MoneyError`] on overflow or
//! when two currencies are mixed, and percentages are taken in basis points
//! with an explicit [`Rounding`] rule, so no amount is ever silently wrong.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a money value or operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not one of the supported upper-case ISO 4217 codes.
    #[error(
        "unknown currency code `{code}`; expected one of {}",
        Currency::code_list()
    )]
    UnknownCurrency {
        /// The text that was offered as a currency code.
        code: String,
    },
    /// Two amounts in different currencies were combined.
    #[error("currency mismatch: cannot combine {left} with {right}")]
    CurrencyMismatch {
        /// Currency of the left-hand operand.
        left: Currency,
        /// Currency of the right-hand operand.
        right: Currency,
    },
    /// The result does not fit in an `i64` count of minor units.
    #[error("amount overflow: the result does not fit in 64 bits of minor units")]
    Overflow,
    /// An amount that must be strictly positive was zero or negative.
    #[error("amount must be positive")]
    NotPositive,
}

impl MoneyError {
    /// A stable snake_case code for this error, suitable for API responses.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::UnknownCurrency { .. } => "currency_unknown",
            MoneyError::CurrencyMismatch { .. } => "currency_mismatch",
            MoneyError::Overflow => "amount_overflow",
            MoneyError::NotPositive => "amount_not_positive",
        }
    }
}

/// The supported currencies; private so that a [`Currency`] can only be one
/// of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Iso {
    Cny,
    Hkd,
    Usd,
    Eur,
    Jpy,
    Gbp,
    Sgd,
}

/// An ISO 4217 currency supported by o2o, with its minor-unit exponent and
/// numeric code.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency(Iso);

impl Currency {
    /// Chinese yuan renminbi (CNY, 156), minor unit fen, exponent 2.
    pub const CNY: Currency = Currency(Iso::Cny);
    /// Hong Kong dollar (HKD, 344), exponent 2.
    pub const HKD: Currency = Currency(Iso::Hkd);
    /// United States dollar (USD, 840), exponent 2.
    pub const USD: Currency = Currency(Iso::Usd);
    /// Euro (EUR, 978), exponent 2.
    pub const EUR: Currency = Currency(Iso::Eur);
    /// Japanese yen (JPY, 392), exponent 0: amounts are whole yen.
    pub const JPY: Currency = Currency(Iso::Jpy);
    /// Pound sterling (GBP, 826), exponent 2.
    pub const GBP: Currency = Currency(Iso::Gbp);
    /// Singapore dollar (SGD, 702), exponent 2.
    pub const SGD: Currency = Currency(Iso::Sgd);

    /// Every supported currency, in a fixed order.
    pub const ALL: [Currency; 7] = [
        Currency::CNY,
        Currency::HKD,
        Currency::USD,
        Currency::EUR,
        Currency::JPY,
        Currency::GBP,
        Currency::SGD,
    ];

    /// Parses an upper-case three-letter ISO 4217 code such as `"CNY"`.
    ///
    /// Only the supported codes are accepted; lower case, surrounding
    /// whitespace and unknown codes are rejected with
    /// [`MoneyError::UnknownCurrency`].
    pub fn parse(code: &str) -> Result<Currency, MoneyError> {
        Currency::ALL
            .into_iter()
            .find(|c| c.code() == code)
            .ok_or_else(|| MoneyError::UnknownCurrency {
                // Bound the echoed input so a hostile value cannot bloat errors.
                code: code.chars().take(16).collect(),
            })
    }

    /// The alphabetic ISO 4217 code, e.g. `"CNY"`.
    pub fn code(self) -> &'static str {
        match self.0 {
            Iso::Cny => "CNY",
            Iso::Hkd => "HKD",
            Iso::Usd => "USD",
            Iso::Eur => "EUR",
            Iso::Jpy => "JPY",
            Iso::Gbp => "GBP",
            Iso::Sgd => "SGD",
        }
    }

    /// The numeric ISO 4217 code, e.g. `156` for CNY.
    pub fn numeric(self) -> u16 {
        match self.0 {
            Iso::Cny => 156,
            Iso::Hkd => 344,
            Iso::Usd => 840,
            Iso::Eur => 978,
            Iso::Jpy => 392,
            Iso::Gbp => 826,
            Iso::Sgd => 702,
        }
    }

    /// The minor-unit exponent: how many decimal places a major unit has
    /// (2 for CNY's fen, 0 for JPY).
    pub fn exponent(self) -> u8 {
        match self.0 {
            Iso::Jpy => 0,
            Iso::Cny | Iso::Hkd | Iso::Usd | Iso::Eur | Iso::Gbp | Iso::Sgd => 2,
        }
    }

    /// How many minor units make one major unit (`10^exponent`).
    pub fn minor_per_major(self) -> u64 {
        10u64.pow(u32::from(self.exponent()))
    }

    fn code_list() -> String {
        Currency::ALL.map(Currency::code).join(", ")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Currency {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Currency::parse(s)
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.code())
    }
}

impl<'de> Deserialize<'de> for Currency {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct CodeVisitor;

        impl serde::de::Visitor<'_> for CodeVisitor {
            type Value = Currency;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(
                    f,
                    "an ISO 4217 currency code, one of {}",
                    Currency::code_list()
                )
            }

            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Currency, E> {
                Currency::parse(v).map_err(E::custom)
            }
        }

        deserializer.deserialize_str(CodeVisitor)
    }
}

/// How [`Money::percent_bps`] rounds a result that falls between two minor
/// units.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Rounding {
    /// Round to the nearest minor unit; exact halves go away from zero
    /// (0.5 → 1, −0.5 → −1).
    HalfUp,
    /// Drop the fraction, rounding toward zero (0.9 → 0, −0.9 → 0).
    Down,
}

/// An amount of money: a signed count of minor units in one currency.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Money {
    amount_minor: i64,
    currency: Currency,
}

impl Money {
    /// Money of `amount_minor` minor units (e.g. fen) of `currency`; any
    /// `i64`, including negatives, is a valid amount.
    pub fn new(amount_minor: i64, currency: Currency) -> Money {
        Money {
            amount_minor,
            currency,
        }
    }

    /// Money that must be strictly positive, such as a price or a payment;
    /// zero and negative amounts are rejected with [`MoneyError::NotPositive`].
    pub fn parse_positive(amount_minor: i64, currency: Currency) -> Result<Money, MoneyError> {
        if amount_minor > 0 {
            Ok(Money::new(amount_minor, currency))
        } else {
            Err(MoneyError::NotPositive)
        }
    }

    /// Zero in `currency`.
    pub fn zero(currency: Currency) -> Money {
        Money::new(0, currency)
    }

    /// The amount as a count of minor units.
    pub fn amount_minor(self) -> i64 {
        self.amount_minor
    }

    /// The currency of the amount.
    pub fn currency(self) -> Currency {
        self.currency
    }

    /// Whether the amount is below zero.
    pub fn is_negative(self) -> bool {
        self.amount_minor < 0
    }

    /// Whether the amount is exactly zero.
    pub fn is_zero(self) -> bool {
        self.amount_minor == 0
    }

    /// Whether the amount is above zero.
    pub fn is_positive(self) -> bool {
        self.amount_minor > 0
    }

    /// `self + other`, refusing mixed currencies and overflow.
    pub fn checked_add(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        self.amount_minor
            .checked_add(other.amount_minor)
            .map(|amount| Money::new(amount, currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `self - other`, refusing mixed currencies and overflow.
    pub fn checked_sub(self, other: Money) -> Result<Money, MoneyError> {
        let currency = self.same_currency(other)?;
        self.amount_minor
            .checked_sub(other.amount_minor)
            .map(|amount| Money::new(amount, currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `-self`, refusing the one amount (`i64::MIN`) whose negation overflows.
    pub fn checked_neg(self) -> Result<Money, MoneyError> {
        self.amount_minor
            .checked_neg()
            .map(|amount| Money::new(amount, self.currency))
            .ok_or(MoneyError::Overflow)
    }

    /// `bps` basis points of this amount (1 bp = 0.01 %, so 60 bps = 0.6 %),
    /// i.e. `amount_minor * bps / 10_000`, rounded to a whole minor unit by
    /// `rounding`.
    ///
    /// The product is computed exactly in `i128`; only a final result that
    /// does not fit in `i64` is an error ([`MoneyError::Overflow`]). With
    /// [`Rounding::HalfUp`] exact halves round away from zero, so the rule is
    /// symmetric for refunds; with [`Rounding::Down`] the fraction is
    /// dropped toward zero.
    pub fn percent_bps(self, bps: u32, rounding: Rounding) -> Result<Money, MoneyError> {
        const DENOMINATOR: i128 = 10_000;
        let product = i128::from(self.amount_minor) * i128::from(bps);
        let quotient = product / DENOMINATOR;
        let remainder = product % DENOMINATOR;
        let rounded = match rounding {
            Rounding::Down => quotient,
            Rounding::HalfUp if remainder.abs() * 2 >= DENOMINATOR => quotient + product.signum(),
            Rounding::HalfUp => quotient,
        };
        i64::try_from(rounded)
            .map(|amount| Money::new(amount, self.currency))
            .map_err(|_| MoneyError::Overflow)
    }

    /// The amount in major units as plain decimal text, with exactly
    /// `exponent` decimal places and a leading `-` when negative:
    /// `2500` fen is `"25.00"`, `-5` fen is `"-0.05"`, `1200` yen is `"1200"`.
    pub fn format_major(self) -> String {
        let sign = if self.is_negative() { "-" } else { "" };
        let magnitude = self.amount_minor.unsigned_abs();
        let exponent = usize::from(self.currency.exponent());
        if exponent == 0 {
            return format!("{sign}{magnitude}");
        }
        let per_major = self.currency.minor_per_major();
        let major = magnitude / per_major;
        let minor = magnitude % per_major;
        format!("{sign}{major}.{minor:0exponent$}")
    }

    /// The amount as people read it: `¥28.00` for yuan, `28.00 USD` for other currencies.
    pub fn shown(self) -> String {
        match self.currency {
            Currency::CNY => format!("¥{}", self.format_major()),
            c => format!("{} {}", self.format_major(), c.code()),
        }
    }

    fn same_currency(self, other: Money) -> Result<Currency, MoneyError> {
        if self.currency == other.currency {
            Ok(self.currency)
        } else {
            Err(MoneyError::CurrencyMismatch {
                left: self.currency,
                right: other.currency,
            })
        }
    }
}

/// Minor units in a currency named by its code, as people read them ([`Money::shown`]); a code
/// that names no currency is shown after the bare number.
pub fn shown_price(amount_minor: i64, currency: &str) -> String {
    match Currency::parse(currency) {
        Ok(c) => Money::new(amount_minor, c).shown(),
        Err(_) => format!("{amount_minor} {currency}"),
    }
}

impl fmt::Display for Money {
    /// Formats as the major amount then the code, e.g. `"25.00 CNY"`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.format_major(), self.currency)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Money({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn an_amount_is_shown_with_the_yuan_sign_or_its_currency_code() {
        assert_eq!(shown_price(2800, "CNY"), "¥28.00");
        assert_eq!(shown_price(-5, "CNY"), "¥-0.05");
        assert_eq!(shown_price(2800, "USD"), "28.00 USD");
        assert_eq!(shown_price(1200, "JPY"), "1200 JPY");
        assert_eq!(shown_price(7, "XXQ"), "7 XXQ");
    }

    fn cny(amount_minor: i64) -> Money {
        Money::new(amount_minor, Currency::CNY)
    }

    fn any_currency() -> impl Strategy<Value = Currency> {
        proptest::sample::select(Currency::ALL.to_vec())
    }

    #[test]
    fn every_supported_currency_parses_from_its_own_code() {
        for currency in Currency::ALL {
            assert_eq!(Currency::parse(currency.code()), Ok(currency));
        }
    }

    #[test]
    fn currencies_carry_their_iso_numeric_codes_and_exponents() {
        let expected = [
            ("CNY", 156, 2),
            ("HKD", 344, 2),
            ("USD", 840, 2),
            ("EUR", 978, 2),
            ("JPY", 392, 0),
            ("GBP", 826, 2),
            ("SGD", 702, 2),
        ];
        for (code, numeric, exponent) in expected {
            let currency = Currency::parse(code).unwrap();
            assert_eq!(currency.numeric(), numeric, "{code}");
            assert_eq!(currency.exponent(), exponent, "{code}");
            assert_eq!(currency.to_string(), code);
        }
    }

    #[test]
    fn lower_case_padded_and_unknown_codes_are_rejected() {
        for bad in ["cny", " CNY", "CNY ", "CN", "CNYY", "XXX", "", "元"] {
            let err = Currency::parse(bad).unwrap_err();
            assert_eq!(err.code(), "currency_unknown", "{bad:?}");
        }
    }

    #[test]
    fn an_unknown_currency_error_names_the_code_and_the_alternatives() {
        let message = Currency::parse("XYZ").unwrap_err().to_string();
        assert!(message.contains("XYZ"), "{message}");
        assert!(message.contains("CNY, HKD, USD"), "{message}");
    }

    #[test]
    fn error_codes_are_stable_snake_case() {
        let mismatch = cny(1)
            .checked_add(Money::new(1, Currency::USD))
            .unwrap_err();
        assert_eq!(mismatch.code(), "currency_mismatch");
        assert_eq!(MoneyError::Overflow.code(), "amount_overflow");
        assert_eq!(MoneyError::NotPositive.code(), "amount_not_positive");
    }

    #[test]
    fn a_positive_amount_is_accepted_where_positive_is_required() {
        let price = Money::parse_positive(2500, Currency::CNY).unwrap();
        assert_eq!(price.amount_minor(), 2500);
        assert_eq!(price.currency(), Currency::CNY);
    }

    #[test]
    fn zero_and_negative_amounts_are_rejected_where_positive_is_required() {
        for amount in [0, -1, i64::MIN] {
            assert_eq!(
                Money::parse_positive(amount, Currency::CNY),
                Err(MoneyError::NotPositive)
            );
        }
    }

    #[test]
    fn zero_is_zero_and_neither_negative_nor_positive() {
        let zero = Money::zero(Currency::JPY);
        assert!(zero.is_zero());
        assert!(!zero.is_negative());
        assert!(!zero.is_positive());
        assert_eq!(zero.currency(), Currency::JPY);
        assert!(cny(-1).is_negative());
    }

    #[test]
    fn adding_and_subtracting_in_one_currency_gives_the_exact_sum() {
        assert_eq!(cny(2500).checked_add(cny(150)), Ok(cny(2650)));
        assert_eq!(cny(2500).checked_sub(cny(3000)), Ok(cny(-500)));
    }

    #[test]
    fn a_transfer_that_overflows_is_rejected() {
        assert_eq!(cny(i64::MAX).checked_add(cny(1)), Err(MoneyError::Overflow));
        assert_eq!(cny(i64::MIN).checked_sub(cny(1)), Err(MoneyError::Overflow));
        assert_eq!(cny(i64::MIN).checked_neg(), Err(MoneyError::Overflow));
        assert_eq!(cny(i64::MAX).checked_neg(), Ok(cny(-i64::MAX)));
    }

    #[test]
    fn amounts_in_different_currencies_cannot_be_combined() {
        let usd = Money::new(100, Currency::USD);
        assert_eq!(
            cny(100).checked_add(usd),
            Err(MoneyError::CurrencyMismatch {
                left: Currency::CNY,
                right: Currency::USD,
            })
        );
        assert!(matches!(
            usd.checked_sub(cny(100)),
            Err(MoneyError::CurrencyMismatch { .. })
        ));
    }

    #[test]
    fn a_currency_mismatch_is_reported_even_when_the_sum_would_overflow() {
        let err = cny(i64::MAX)
            .checked_add(Money::new(i64::MAX, Currency::HKD))
            .unwrap_err();
        assert_eq!(err.code(), "currency_mismatch");
    }

    #[test]
    fn six_tenths_of_a_percent_of_one_fen_rounds_to_nothing() {
        // 0.6 % of 1 fen is 0.006 fen.
        assert_eq!(cny(1).percent_bps(60, Rounding::HalfUp), Ok(cny(0)));
        assert_eq!(cny(1).percent_bps(60, Rounding::Down), Ok(cny(0)));
    }

    #[test]
    fn six_tenths_of_a_fen_rounds_up_half_up_and_to_zero_down() {
        // 0.6 % of 1 yuan (100 fen) is 0.6 fen.
        assert_eq!(cny(100).percent_bps(60, Rounding::HalfUp), Ok(cny(1)));
        assert_eq!(cny(100).percent_bps(60, Rounding::Down), Ok(cny(0)));
    }

    #[test]
    fn an_exact_half_fen_rounds_away_from_zero_half_up() {
        // 50 % of 1 fen is 0.5 fen; of -1 fen, -0.5 fen.
        assert_eq!(cny(1).percent_bps(5_000, Rounding::HalfUp), Ok(cny(1)));
        assert_eq!(cny(-1).percent_bps(5_000, Rounding::HalfUp), Ok(cny(-1)));
        assert_eq!(cny(1).percent_bps(5_000, Rounding::Down), Ok(cny(0)));
        assert_eq!(cny(-1).percent_bps(5_000, Rounding::Down), Ok(cny(0)));
    }

    #[test]
    fn just_under_half_a_fen_rounds_down_even_half_up() {
        // 0.6 % of 83 fen is 0.498 fen; of 84 fen, 0.504 fen.
        assert_eq!(cny(83).percent_bps(60, Rounding::HalfUp), Ok(cny(0)));
        assert_eq!(cny(84).percent_bps(60, Rounding::HalfUp), Ok(cny(1)));
    }

    #[test]
    fn a_negative_amount_rounds_toward_zero_when_rounding_down() {
        // 0.6 % of -25 yuan is -15 fen exactly; of -2599 fen, -15.594 fen.
        assert_eq!(cny(-2500).percent_bps(60, Rounding::Down), Ok(cny(-15)));
        assert_eq!(cny(-2599).percent_bps(60, Rounding::Down), Ok(cny(-15)));
        assert_eq!(cny(-2599).percent_bps(60, Rounding::HalfUp), Ok(cny(-16)));
    }

    #[test]
    fn a_whole_percentage_keeps_the_currency() {
        let yen = Money::new(1_000, Currency::JPY);
        assert_eq!(
            yen.percent_bps(10_000, Rounding::Down),
            Ok(Money::new(1_000, Currency::JPY))
        );
    }

    #[test]
    fn a_percentage_too_large_for_64_bits_is_an_overflow_not_a_panic() {
        assert_eq!(
            cny(i64::MAX).percent_bps(20_000, Rounding::HalfUp),
            Err(MoneyError::Overflow)
        );
        assert_eq!(
            cny(i64::MIN).percent_bps(u32::MAX, Rounding::Down),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn yuan_are_formatted_with_two_decimals() {
        assert_eq!(cny(2500).format_major(), "25.00");
        assert_eq!(cny(5).format_major(), "0.05");
        assert_eq!(cny(123_456).format_major(), "1234.56");
        assert_eq!(cny(0).format_major(), "0.00");
        assert_eq!(cny(2500).to_string(), "25.00 CNY");
    }

    #[test]
    fn negative_amounts_are_formatted_with_a_leading_minus() {
        assert_eq!(cny(-5).format_major(), "-0.05");
        assert_eq!(cny(-2500).format_major(), "-25.00");
        assert_eq!(cny(i64::MIN).format_major(), "-92233720368547758.08");
        assert_eq!(Money::new(-7, Currency::JPY).to_string(), "-7 JPY");
    }

    #[test]
    fn yen_are_formatted_without_decimals() {
        let yen = Money::new(1200, Currency::JPY);
        assert_eq!(yen.format_major(), "1200");
        assert_eq!(yen.to_string(), "1200 JPY");
    }

    #[test]
    fn a_currency_serializes_as_its_code() {
        assert_eq!(serde_json::to_string(&Currency::HKD).unwrap(), "\"HKD\"");
        let back: Currency = serde_json::from_str("\"HKD\"").unwrap();
        assert_eq!(back, Currency::HKD);
    }

    #[test]
    fn deserializing_an_unknown_currency_fails_with_a_clear_message() {
        let err = serde_json::from_str::<Currency>("\"ABC\"").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("unknown currency code `ABC`"), "{message}");
        assert!(serde_json::from_str::<Currency>("156").is_err());
    }

    #[test]
    fn money_serializes_as_minor_amount_and_code() {
        let json = serde_json::to_value(cny(2500)).unwrap();
        assert_eq!(
            json,
            serde_json::json!({ "amount_minor": 2500, "currency": "CNY" })
        );
        let back: Money = serde_json::from_value(json).unwrap();
        assert_eq!(back, cny(2500));
    }

    #[test]
    fn money_with_an_unknown_currency_or_extra_fields_does_not_deserialize() {
        let unknown = r#"{"amount_minor": 1, "currency": "XXX"}"#;
        assert!(serde_json::from_str::<Money>(unknown).is_err());
        let extra = r#"{"amount_minor": 1, "currency": "CNY", "scale": 3}"#;
        assert!(serde_json::from_str::<Money>(extra).is_err());
    }

    proptest! {
        #[test]
        fn adding_then_subtracting_returns_the_original(
            a in any::<i64>(),
            b in any::<i64>(),
            currency in any_currency(),
        ) {
            let a = Money::new(a, currency);
            let b = Money::new(b, currency);
            if let Ok(sum) = a.checked_add(b) {
                prop_assert_eq!(sum.checked_sub(b), Ok(a));
                prop_assert_eq!(sum.currency(), currency);
            }
        }

        #[test]
        fn addition_overflow_is_detected_exactly_and_never_panics(
            a in any::<i64>(),
            b in any::<i64>(),
        ) {
            let exact = i128::from(a) + i128::from(b);
            match cny(a).checked_add(cny(b)) {
                Ok(sum) => prop_assert_eq!(i128::from(sum.amount_minor()), exact),
                Err(err) => {
                    prop_assert_eq!(err, MoneyError::Overflow);
                    prop_assert!(i64::try_from(exact).is_err());
                }
            }
        }

        #[test]
        fn subtraction_overflow_is_detected_exactly_and_never_panics(
            a in any::<i64>(),
            b in any::<i64>(),
        ) {
            let exact = i128::from(a) - i128::from(b);
            match cny(a).checked_sub(cny(b)) {
                Ok(difference) => {
                    prop_assert_eq!(i128::from(difference.amount_minor()), exact);
                }
                Err(err) => {
                    prop_assert_eq!(err, MoneyError::Overflow);
                    prop_assert!(i64::try_from(exact).is_err());
                }
            }
        }

        #[test]
        fn mixed_currencies_are_always_rejected(
            a in any::<i64>(),
            b in any::<i64>(),
            left in any_currency(),
            right in any_currency(),
        ) {
            prop_assume!(left != right);
            let mismatch = Err(MoneyError::CurrencyMismatch { left, right });
            prop_assert_eq!(
                Money::new(a, left).checked_add(Money::new(b, right)),
                mismatch.clone()
            );
            prop_assert_eq!(
                Money::new(a, left).checked_sub(Money::new(b, right)),
                mismatch
            );
        }

        #[test]
        fn rounding_down_never_exceeds_the_exact_magnitude_and_half_up_is_within_half(
            amount in any::<i64>(),
            bps in any::<u32>(),
        ) {
            let exact = i128::from(amount) * i128::from(bps);
            if let Ok(down) = cny(amount).percent_bps(bps, Rounding::Down) {
                let scaled = i128::from(down.amount_minor()) * 10_000;
                prop_assert!(scaled.abs() <= exact.abs());
                prop_assert!((exact - scaled).abs() < 10_000);
            }
            if let Ok(half_up) = cny(amount).percent_bps(bps, Rounding::HalfUp) {
                let scaled = i128::from(half_up.amount_minor()) * 10_000;
                prop_assert!((exact - scaled).abs() * 2 <= 10_000);
            }
        }

        #[test]
        fn format_major_parses_back_to_the_same_minor_amount(
            amount in any::<i64>(),
            currency in any_currency(),
        ) {
            let text = Money::new(amount, currency).format_major();
            let digits: String = text.chars().filter(|c| *c != '.').collect();
            prop_assert_eq!(digits.parse::<i128>().unwrap(), i128::from(amount));
            let decimals = text.split_once('.').map_or(0, |(_, frac)| frac.len());
            prop_assert_eq!(decimals, usize::from(currency.exponent()));
        }

        #[test]
        fn money_survives_a_json_round_trip(
            amount in any::<i64>(),
            currency in any_currency(),
        ) {
            let money = Money::new(amount, currency);
            let json = serde_json::to_string(&money).unwrap();
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), money);
        }
    }
}
