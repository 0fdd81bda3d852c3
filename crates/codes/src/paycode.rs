//! Pay codes: 18 digits, as WeChat Pay's and Alipay's are, so the counter scanners shops already
//! own read them. Those two use leading digits 10–15 and 25–30; o2o's start with
//! [`PAY_CODE_PREFIX`] so a scanner (and the server) can tell them apart. The other 16 digits are
//! uniformly random (about 53 bits): seeing one code tells nothing about the next. The server
//! binds each code to its consumer and funding source, with an expiry and single use.

use rand::Rng;

/// The two leading digits of every o2o pay code (outside 10–15 and 25–30).
pub const PAY_CODE_PREFIX: &str = "19";
const LEN: usize = 18;

/// A well-formed pay code. `Debug` hides the middle digits.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PayCode(String);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PayCodeError {
    #[error("a pay code is 18 digits starting with {PAY_CODE_PREFIX}")]
    Malformed,
}

impl PayCode {
    /// A fresh random code.
    pub fn generate() -> PayCode {
        let n: u64 = rand::rng().random_range(0..10_000_000_000_000_000u64);
        PayCode(format!("{PAY_CODE_PREFIX}{n:016}"))
    }

    /// Parses scanned or typed text (spaces allowed between digit groups).
    pub fn parse(text: &str) -> Result<PayCode, PayCodeError> {
        if text.len() > 40 {
            return Err(PayCodeError::Malformed);
        }
        let digits: String = text.chars().filter(|c| *c != ' ').collect();
        if digits.len() != LEN
            || !digits.bytes().all(|b| b.is_ascii_digit())
            || !digits.starts_with(PAY_CODE_PREFIX)
        {
            return Err(PayCodeError::Malformed);
        }
        Ok(PayCode(digits))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for PayCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "PayCode({}…{})", &self.0[..2], &self.0[LEN - 2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_codes_are_18_digits_with_our_prefix_and_parse_back() {
        for _ in 0..1_000 {
            let c = PayCode::generate();
            assert_eq!(c.as_str().len(), 18);
            assert!(c.as_str().starts_with("19"));
            assert_eq!(PayCode::parse(c.as_str()).unwrap(), c);
        }
    }

    #[test]
    fn codes_of_other_wallets_and_junk_are_refused() {
        for bad in [
            "134567890123456789",
            "281234567890123456",
            "19123",
            "19123456789012345a",
            "",
            "1912345678901234567",
        ] {
            assert_eq!(PayCode::parse(bad), Err(PayCodeError::Malformed), "{bad}");
        }
        assert!(PayCode::parse("1912 3456 7890 1234 56").is_ok());
    }

    #[test]
    fn debug_does_not_show_the_code() {
        let c = PayCode::parse("191234567890123456").unwrap();
        assert!(!format!("{c:?}").contains("1234567890"));
    }
}
