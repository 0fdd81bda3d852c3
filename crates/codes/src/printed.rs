//! Short ids of printed codes: the random part of `<public_url>/q/<short id>`. Twelve characters
//! of lowercase Crockford base32 (60 random bits): short enough for a small, robust QR symbol,
//! far too many to guess, and no letters that read alike (no i, l, o, u).

use rand::RngCore;

const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";
/// Characters in a short id.
pub const SHORT_ID_LEN: usize = 12;

/// A fresh random short id.
pub fn new_short_id() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    let mut v = u64::from_be_bytes(bytes);
    (0..SHORT_ID_LEN)
        .map(|_| {
            let c = ALPHABET[(v & 31) as usize] as char;
            v >>= 5;
            c
        })
        .collect()
}

/// Why a path is not a printed code.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("not an o2o code")]
pub struct NotACode;

/// Checks the last path segment of `/q/<short id>`: exactly twelve characters of the alphabet.
/// Anything else (a foreign or tampered code) is refused before the database is asked.
pub fn parse_short_id(segment: &str) -> Result<&str, NotACode> {
    if segment.len() == SHORT_ID_LEN && segment.bytes().all(|b| ALPHABET.contains(&b)) {
        Ok(segment)
    } else {
        Err(NotACode)
    }
}

/// Extracts the short id from a scanned code's full text (`https://host/q/<id>`, or the id alone).
pub fn short_id_from_text(text: &str) -> Result<&str, NotACode> {
    let text = text.trim();
    let last = match text.rfind("/q/") {
        Some(i) => &text[i + 3..],
        None => text,
    };
    let last = last
        .split(['?', '#'])
        .next()
        .unwrap_or("")
        .trim_end_matches('/');
    parse_short_id(last)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn new_ids_parse_and_differ() {
        let a = new_short_id();
        assert_eq!(parse_short_id(&a), Ok(a.as_str()));
        assert_ne!(a, new_short_id());
    }

    #[test]
    fn urls_and_bare_ids_yield_the_id() {
        assert_eq!(
            short_id_from_text("https://shop.example/q/abcdefghjk12"),
            Ok("abcdefghjk12")
        );
        assert_eq!(
            short_id_from_text("http://x/q/abcdefghjk12?utm=1"),
            Ok("abcdefghjk12")
        );
        assert_eq!(short_id_from_text("abcdefghjk12"), Ok("abcdefghjk12"));
        assert!(short_id_from_text("https://evil.example/pay?to=me").is_err());
        assert!(parse_short_id("ABCDEFGHJK12").is_err());
        assert!(
            parse_short_id("abcdefghjkl2").is_err(),
            "l is not in the alphabet"
        );
    }

    proptest! {
        #[test]
        fn arbitrary_text_never_panics(s in "\\PC{0,100}") {
            let _ = short_id_from_text(&s);
            let _ = parse_short_id(&s);
        }
    }
}
