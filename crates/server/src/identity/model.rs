//! Identity's domain types: phone numbers, emails, passwords, roles and principals.

use crate::error::Error;
use serde::{Deserialize, Serialize};
use std::fmt;
use utoipa::ToSchema;

/// A phone number in E.164 form (`+8613800000001`). Mainland numbers may be given without the
/// country code (`13800000001`). `Debug` hides all but the last four digits: phone numbers never
/// reach the logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Phone(String);

impl Phone {
    pub fn parse(raw: &str) -> Result<Phone, Error> {
        let compact: String = raw.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        let invalid = || {
            Error::invalid(
                "invalid_phone",
                "Enter a mobile number such as 13800000001 or +8613800000001.",
            )
            .param("phone")
        };
        let e164 = if let Some(rest) = compact.strip_prefix('+') {
            if !(8..=15).contains(&rest.len())
                || !rest.bytes().all(|b| b.is_ascii_digit())
                || rest.starts_with('0')
            {
                return Err(invalid());
            }
            if let Some(national) = rest.strip_prefix("86")
                && !is_mainland_mobile(national)
            {
                return Err(invalid());
            }
            compact
        } else if is_mainland_mobile(&compact) {
            format!("+86{compact}")
        } else {
            return Err(invalid());
        };
        Ok(Phone(e164))
    }

    pub(crate) fn from_db(s: String) -> Phone {
        Phone(s)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits, for display ("尾号 0001").
    pub fn last4(&self) -> &str {
        &self.0[self.0.len().saturating_sub(4)..]
    }
}

fn is_mainland_mobile(s: &str) -> bool {
    s.len() == 11
        && s.starts_with('1')
        && matches!(s.as_bytes()[1], b'3'..=b'9')
        && s.bytes().all(|b| b.is_ascii_digit())
}

impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone(***{})", self.last4())
    }
}

/// A login email, lower-cased.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub fn parse(raw: &str) -> Result<Email, Error> {
        let e = raw.trim().to_lowercase();
        let ok = e.len() <= 254
            && e.split_once('@').is_some_and(|(local, domain)| {
                !local.is_empty()
                    && domain.contains('.')
                    && !domain.starts_with('.')
                    && !domain.ends_with('.')
            })
            && !e.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(Email(e))
        } else {
            Err(Error::invalid("invalid_email", "Enter a valid email address.").param("email"))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A new password: 8 to 128 characters. `Debug` never shows it.
#[derive(Clone)]
pub struct NewPassword(String);

impl NewPassword {
    pub fn parse(raw: &str) -> Result<NewPassword, Error> {
        let n = raw.chars().count();
        if !(8..=128).contains(&n) {
            return Err(
                Error::invalid("weak_password", "A password needs 8 to 128 characters.")
                    .param("password"),
            );
        }
        Ok(NewPassword(raw.to_owned()))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for NewPassword {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("NewPassword(***)")
    }
}

/// A staff member's role within a merchant, from most to least powerful.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Cashier,
    Manager,
    Owner,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Owner => "owner",
            Role::Manager => "manager",
            Role::Cashier => "cashier",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "owner" => Some(Role::Owner),
            "manager" => Some(Role::Manager),
            "cashier" => Some(Role::Cashier),
            _ => None,
        }
    }
}

/// Who is calling.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum PrincipalKind {
    Consumer,
    Staff,
    Rider,
    Operator,
    /// A merchant's own server, with an `sk_` key.
    ApiKey,
}

impl PrincipalKind {
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::Consumer => "consumer",
            PrincipalKind::Staff => "staff",
            PrincipalKind::Rider => "rider",
            PrincipalKind::Operator => "operator",
            PrincipalKind::ApiKey => "api_key",
        }
    }

    pub fn parse(s: &str) -> Option<PrincipalKind> {
        match s {
            "consumer" => Some(PrincipalKind::Consumer),
            "staff" => Some(PrincipalKind::Staff),
            "rider" => Some(PrincipalKind::Rider),
            "operator" => Some(PrincipalKind::Operator),
            "api_key" => Some(PrincipalKind::ApiKey),
            _ => None,
        }
    }
}

/// An authenticated caller, as the API shows it (`GET /v1/me`, session responses).
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Principal {
    pub kind: PrincipalKind,
    /// `usr_`, `stf_`, `rdr_`, `opr_` or `key_` id.
    pub id: String,
    pub merchant_id: Option<String>,
    pub role: Option<Role>,
    /// A consumer who has not logged in with a phone yet.
    pub guest: bool,
    #[serde(skip)]
    pub session_id: Option<String>,
    #[serde(skip)]
    pub csrf: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mainland_numbers_are_normalised_to_e164() {
        assert_eq!(
            Phone::parse("138 0000 0001").unwrap().as_str(),
            "+8613800000001"
        );
        assert_eq!(
            Phone::parse("+8613800000001").unwrap().as_str(),
            "+8613800000001"
        );
        assert_eq!(
            Phone::parse("+85291234567").unwrap().as_str(),
            "+85291234567"
        );
    }

    #[test]
    fn malformed_numbers_are_rejected_with_a_code() {
        for bad in [
            "",
            "12345",
            "23800000001",
            "+86123",
            "1380000000a",
            "+0123456789",
            "+8612800000001",
        ] {
            let e = Phone::parse(bad).unwrap_err();
            assert_eq!(e.code, "invalid_phone", "{bad}");
        }
    }

    #[test]
    fn debug_output_hides_the_number() {
        let p = Phone::parse("13812345678").unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("1381234"), "{shown}");
        assert!(shown.contains("5678"));
    }

    #[test]
    fn roles_order_from_cashier_to_owner() {
        assert!(Role::Owner > Role::Manager && Role::Manager > Role::Cashier);
    }

    #[test]
    fn emails_are_lowercased_and_checked() {
        assert_eq!(
            Email::parse(" Boss@Shop.CN ").unwrap().as_str(),
            "boss@shop.cn"
        );
        assert!(Email::parse("no-at-sign").is_err());
        assert!(Email::parse("a@b").is_err());
    }
}

/// A consumer's birthday as month and day (`MM-DD`, no year: only the day is celebrated).
/// `02-29` is a birthday; in other years it is kept on 28 February.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Birthday(String);

impl Birthday {
    pub fn parse(raw: &str) -> Result<Birthday, Error> {
        let bad = || {
            Error::invalid(
                "birthday_invalid",
                "birthday is a month and day, MM-DD (for example 05-17).",
            )
            .param("birthday")
        };
        let raw = raw.trim();
        let (m, d) = raw.split_once('-').ok_or_else(bad)?;
        if m.len() != 2 || d.len() != 2 {
            return Err(bad());
        }
        let month: u8 = m.parse().map_err(|_| bad())?;
        let day: u8 = d.parse().map_err(|_| bad())?;
        let days_in_month = match month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 => 29,
            _ => return Err(bad()),
        };
        if day == 0 || day > days_in_month {
            return Err(bad());
        }
        Ok(Birthday(format!("{month:02}-{day:02}")))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The birthdays celebrated on a date: its own `MM-DD`, and `02-29` on 28 February of a
    /// year without a 29th.
    pub fn celebrated_on(date: jiff::civil::Date) -> Vec<String> {
        let mut out = vec![format!("{:02}-{:02}", date.month(), date.day())];
        if date.month() == 2 && date.day() == 28 && !date.in_leap_year() {
            out.push("02-29".into());
        }
        out
    }
}

#[cfg(test)]
mod birthday_tests {
    use super::Birthday;

    #[test]
    fn a_birthday_is_a_real_month_and_day() {
        assert_eq!(Birthday::parse("05-17").unwrap().as_str(), "05-17");
        assert_eq!(Birthday::parse("02-29").unwrap().as_str(), "02-29");
        for bad in [
            "", "5-17", "13-01", "04-31", "02-30", "00-10", "05-00", "0517", "ab-cd",
        ] {
            assert!(Birthday::parse(bad).is_err(), "{bad}");
        }
        let feb28 = jiff::civil::date(2027, 2, 28);
        assert_eq!(Birthday::celebrated_on(feb28), ["02-28", "02-29"]);
        let leap = jiff::civil::date(2028, 2, 28);
        assert_eq!(Birthday::celebrated_on(leap), ["02-28"]);
    }
}
