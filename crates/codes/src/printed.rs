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

/// The globally unique identifier (object 00) of the merchant account template in which a
/// store's EMVCo pay code carries its o2o URL (object 01), for banks' apps.
pub const O2O_PAY_GUID: &str = "o2o.pay";

/// The o2o URL an EMVCo merchant-presented payload carries in its [`O2O_PAY_GUID`] template,
/// the payload decoded strictly (format indicator, CRC, objects); `None` for anything else,
/// a damaged payload included.
pub fn url_in_emv(text: &str) -> Option<String> {
    let payload = crate::emv::MerchantPresented::decode(text.trim()).ok()?;
    payload.merchant_accounts.iter().find_map(|account| {
        let inner = crate::emv::parse_objects(&account.value).ok()?;
        let ours = inner
            .iter()
            .any(|o| o.id == "00" && o.value == O2O_PAY_GUID);
        ours.then(|| inner.into_iter().find(|o| o.id == "01"))?
            .map(|o| o.value)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_url_in_an_emv_pay_code_is_found_only_in_a_sound_payload() {
        let mut qr = crate::emv::tests::sample();
        qr.merchant_accounts[0].value = crate::emv::encode_objects(&[
            crate::Tlv::new("00", O2O_PAY_GUID),
            crate::Tlv::new("01", "https://o2o.test/q/j0246696n3r1"),
        ])
        .unwrap();
        let payload = qr.encode().unwrap();
        assert_eq!(
            url_in_emv(&payload).as_deref(),
            Some("https://o2o.test/q/j0246696n3r1")
        );
        let damaged = payload.replace("LOTUS", "LOTOS");
        assert_eq!(url_in_emv(&damaged), None);
        assert_eq!(url_in_emv(&payload[..payload.len() - 8]), None);
        assert_eq!(url_in_emv("https://o2o.test/q/j0246696n3r1"), None);
        // Another scheme's template carries no o2o URL.
        let theirs = payload.replace(O2O_PAY_GUID, "cn.paid");
        let theirs = crate::emv::with_crc(&theirs[..theirs.len() - 8]);
        assert!(crate::MerchantPresented::decode(&theirs).is_ok());
        assert_eq!(url_in_emv(&theirs), None);
    }

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
