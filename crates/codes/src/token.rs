//! Signed tokens for the codes consumers show: vouchers, pickup codes, exit passes, delivery
//! handovers and coupons. A token is compact binary, signed with the platform's Ed25519 key, written as
//! base32 (QR alphanumeric mode holds it densely) after the prefix `O2O:`.
//!
//! Layout (big-endian): version `1` (1 byte), kind (1), key id (4), expiry in Unix seconds (8),
//! nonce (8), subject length (1) and subject (UTF-8, at most 64 bytes), then the 64-byte
//! signature over everything before it. A scanner holding only the public keys
//! (`GET /v1/codes/public-key`) can verify a token offline; the server additionally records each
//! use, so a token works once.

use data_encoding::BASE32_NOPAD;
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use rand::RngCore;

/// The text every token starts with.
pub const PREFIX: &str = "O2O:";
const VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 1 + 4 + 8 + 8 + 1;
/// The longest subject a token carries.
pub const MAX_SUBJECT_LEN: usize = 64;
const SIGNATURE_LEN: usize = 64;
/// The longest token text accepted (anything longer is refused before decoding).
pub const MAX_TEXT_LEN: usize =
    PREFIX.len() + ((HEADER_LEN + MAX_SUBJECT_LEN + SIGNATURE_LEN) * 8).div_ceil(5);

/// What a token stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TokenKind {
    Voucher,
    Pickup,
    ExitPass,
    DeliveryHandover,
    /// A claimed coupon the consumer shows at the counter.
    Coupon,
}

impl TokenKind {
    pub fn byte(self) -> u8 {
        match self {
            TokenKind::Voucher => 1,
            TokenKind::Pickup => 2,
            TokenKind::ExitPass => 3,
            TokenKind::DeliveryHandover => 4,
            TokenKind::Coupon => 5,
        }
    }

    pub fn from_byte(b: u8) -> Option<TokenKind> {
        match b {
            1 => Some(TokenKind::Voucher),
            2 => Some(TokenKind::Pickup),
            3 => Some(TokenKind::ExitPass),
            4 => Some(TokenKind::DeliveryHandover),
            5 => Some(TokenKind::Coupon),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            TokenKind::Voucher => "voucher",
            TokenKind::Pickup => "pickup",
            TokenKind::ExitPass => "exit_pass",
            TokenKind::DeliveryHandover => "delivery_handover",
            TokenKind::Coupon => "coupon",
        }
    }
}

/// What a valid token says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub kind: TokenKind,
    /// The id of what the token is for (an order, a voucher…).
    pub subject: String,
    /// Unix seconds after which the token is void.
    pub expires_at: i64,
    /// Random: makes every token unique, and identifies it for single use.
    pub nonce: [u8; 8],
    /// The key that signed it.
    pub key_id: u32,
}

/// Why a token is refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("not an o2o token")]
    Malformed,
    #[error("signed by an unknown key")]
    UnknownKey,
    #[error("the signature does not match")]
    BadSignature,
    #[error("the token has expired")]
    Expired,
    #[error("the subject is empty or longer than 64 bytes")]
    BadSubject,
}

/// The platform's signing keys: one active key signs; every key still held verifies, so codes
/// signed before a rotation stay valid until they expire.
#[derive(Clone)]
pub struct Keyring {
    keys: Vec<(u32, SigningKey)>,
    active: u32,
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Keyring(active {}, {} keys)",
            self.active,
            self.keys.len()
        )
    }
}

impl Keyring {
    /// A keyring from `(key id, 32-byte secret)` pairs; the highest id signs.
    pub fn from_secrets(secrets: &[(u32, [u8; 32])]) -> Option<Keyring> {
        let keys: Vec<(u32, SigningKey)> = secrets
            .iter()
            .map(|(id, s)| (*id, SigningKey::from_bytes(s)))
            .collect();
        let active = keys.iter().map(|(id, _)| *id).max()?;
        Some(Keyring { keys, active })
    }

    /// A fresh 32-byte secret for a new key.
    pub fn generate_secret() -> [u8; 32] {
        let mut s = [0u8; 32];
        rand::rng().fill_bytes(&mut s);
        s
    }

    /// A secret derived from the oldest key for `context` (for example the key of an in-process
    /// signer). Ed25519 signatures are deterministic, so the signature over the context is a
    /// stable value only the key's holder can compute; it must never be published.
    pub fn derive_secret(&self, context: &[u8]) -> Vec<u8> {
        let (_, key) = self
            .keys
            .iter()
            .min_by_key(|(id, _)| *id)
            .expect("a keyring holds at least one key");
        let mut message = b"o2o derived secret v1:".to_vec();
        message.extend_from_slice(context);
        key.sign(&message).to_bytes().to_vec()
    }

    pub fn active_id(&self) -> u32 {
        self.active
    }

    /// Every public key, by id (for offline scanners).
    pub fn public_keys(&self) -> Vec<(u32, [u8; 32])> {
        self.keys
            .iter()
            .map(|(id, k)| (*id, k.verifying_key().to_bytes()))
            .collect()
    }

    /// Signs a token for `subject`, valid until `expires_at` (Unix seconds).
    pub fn sign(
        &self,
        kind: TokenKind,
        subject: &str,
        expires_at: i64,
    ) -> Result<String, TokenError> {
        let mut nonce = [0u8; 8];
        rand::rng().fill_bytes(&mut nonce);
        self.sign_again(&Claims {
            kind,
            subject: subject.to_owned(),
            expires_at,
            nonce,
            key_id: self.active,
        })
    }

    /// The text of a token signed before, rebuilt from its claims: Ed25519 signatures are
    /// deterministic (RFC 8032), so the same claims and key give the same bytes, and a code can be
    /// shown again without keeping its text. `UnknownKey` when the key is no longer held.
    pub fn sign_again(&self, claims: &Claims) -> Result<String, TokenError> {
        let subject = claims.subject.as_str();
        if subject.is_empty() || subject.len() > MAX_SUBJECT_LEN {
            return Err(TokenError::BadSubject);
        }
        let key = self
            .keys
            .iter()
            .find(|(id, _)| *id == claims.key_id)
            .map(|(_, k)| k)
            .ok_or(TokenError::UnknownKey)?;
        let mut bytes = Vec::with_capacity(HEADER_LEN + subject.len() + SIGNATURE_LEN);
        bytes.push(VERSION);
        bytes.push(claims.kind.byte());
        bytes.extend_from_slice(&claims.key_id.to_be_bytes());
        bytes.extend_from_slice(&claims.expires_at.to_be_bytes());
        bytes.extend_from_slice(&claims.nonce);
        bytes.push(subject.len() as u8);
        bytes.extend_from_slice(subject.as_bytes());
        let signature = key.sign(&bytes);
        bytes.extend_from_slice(&signature.to_bytes());
        Ok(format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes)))
    }

    /// Checks a token's form, key, signature and expiry at `now` (Unix seconds).
    pub fn verify(&self, text: &str, now: i64) -> Result<Claims, TokenError> {
        let (unsigned, claims, signature) = parse(text)?;
        let key = self
            .keys
            .iter()
            .find(|(id, _)| *id == claims.key_id)
            .map(|(_, k)| k.verifying_key())
            .ok_or(TokenError::UnknownKey)?;
        verify_with(&key, unsigned, &signature)?;
        if claims.expires_at <= now {
            return Err(TokenError::Expired);
        }
        Ok(claims)
    }
}

/// Verifies with one public key (what an offline scanner does).
pub fn verify_offline(public_key: &[u8; 32], text: &str, now: i64) -> Result<Claims, TokenError> {
    let key = VerifyingKey::from_bytes(public_key).map_err(|_| TokenError::UnknownKey)?;
    if key.is_weak() {
        return Err(TokenError::UnknownKey);
    }
    let (unsigned, claims, signature) = parse(text)?;
    verify_with(&key, unsigned, &signature)?;
    if claims.expires_at <= now {
        return Err(TokenError::Expired);
    }
    Ok(claims)
}

/// RFC 8032 verification. The library refuses a non-canonical `S` and compares the recomputed
/// `R` by its canonical encoding, so each signature has exactly one accepted text; the extra
/// checks of `verify_strict` (a small-order key or `R`) guard against keys an attacker chose,
/// and ours never are (a weak offline key is refused above). Skipping them saves one point
/// decompression, about a tenth of the verification's cost.
fn verify_with(
    key: &VerifyingKey,
    unsigned: Vec<u8>,
    signature: &Signature,
) -> Result<(), TokenError> {
    key.verify(&unsigned, signature)
        .map_err(|_| TokenError::BadSignature)
}

/// Parses a token's text without checking its signature: (signed bytes, claims, signature).
pub fn parse(text: &str) -> Result<(Vec<u8>, Claims, Signature), TokenError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(TokenError::Malformed);
    }
    let body = text.strip_prefix(PREFIX).ok_or(TokenError::Malformed)?;
    let bytes = BASE32_NOPAD
        .decode(body.as_bytes())
        .map_err(|_| TokenError::Malformed)?;
    if bytes.len() < HEADER_LEN + 1 + SIGNATURE_LEN || bytes[0] != VERSION {
        return Err(TokenError::Malformed);
    }
    let kind = TokenKind::from_byte(bytes[1]).ok_or(TokenError::Malformed)?;
    let key_id = u32::from_be_bytes(bytes[2..6].try_into().map_err(|_| TokenError::Malformed)?);
    let expires_at =
        i64::from_be_bytes(bytes[6..14].try_into().map_err(|_| TokenError::Malformed)?);
    let nonce: [u8; 8] = bytes[14..22]
        .try_into()
        .map_err(|_| TokenError::Malformed)?;
    let subject_len = usize::from(bytes[22]);
    if subject_len == 0
        || subject_len > MAX_SUBJECT_LEN
        || bytes.len() != HEADER_LEN + subject_len + SIGNATURE_LEN
    {
        return Err(TokenError::Malformed);
    }
    let subject = std::str::from_utf8(&bytes[HEADER_LEN..HEADER_LEN + subject_len])
        .map_err(|_| TokenError::Malformed)?
        .to_owned();
    let split = HEADER_LEN + subject_len;
    let signature = Signature::from_slice(&bytes[split..]).map_err(|_| TokenError::Malformed)?;
    let mut unsigned = bytes;
    unsigned.truncate(split);
    Ok((
        unsigned,
        Claims {
            kind,
            subject,
            expires_at,
            nonce,
            key_id,
        },
        signature,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ring() -> Keyring {
        Keyring::from_secrets(&[(1, [7u8; 32])]).unwrap()
    }

    #[test]
    fn a_signed_token_verifies_with_its_claims() {
        let r = ring();
        let t = r.sign(TokenKind::Pickup, "ord_123", 2_000).unwrap();
        assert!(t.starts_with("O2O:"));
        let c = r.verify(&t, 1_000).unwrap();
        assert_eq!(
            (c.kind, c.subject.as_str(), c.expires_at, c.key_id),
            (TokenKind::Pickup, "ord_123", 2_000, 1)
        );
        let pk = r.public_keys()[0].1;
        assert_eq!(verify_offline(&pk, &t, 1_000).unwrap(), c);
    }

    #[test]
    fn a_token_signed_again_from_its_claims_is_the_same_text_even_after_a_rotation() {
        let r = ring();
        let t = r.sign(TokenKind::Pickup, "ord_123", 2_000).unwrap();
        let claims = r.verify(&t, 1_000).unwrap();
        assert_eq!(r.sign_again(&claims).unwrap(), t);
        let rotated = Keyring::from_secrets(&[(1, [7u8; 32]), (2, [9u8; 32])]).unwrap();
        assert_eq!(rotated.sign_again(&claims).unwrap(), t);
        let stranger = Keyring::from_secrets(&[(2, [9u8; 32])]).unwrap();
        assert_eq!(stranger.sign_again(&claims), Err(TokenError::UnknownKey));
    }

    #[test]
    fn an_expired_token_is_refused() {
        let r = ring();
        let t = r.sign(TokenKind::ExitPass, "ord_1", 1_000).unwrap();
        assert_eq!(r.verify(&t, 1_000), Err(TokenError::Expired));
    }

    #[test]
    fn tokens_of_a_rotated_out_key_still_verify_and_unknown_keys_do_not() {
        let old = ring();
        let t = old.sign(TokenKind::Voucher, "vch_1", 5_000).unwrap();
        let rotated = Keyring::from_secrets(&[(1, [7u8; 32]), (2, [9u8; 32])]).unwrap();
        assert_eq!(rotated.active_id(), 2);
        assert!(rotated.verify(&t, 1).is_ok());
        let stranger = Keyring::from_secrets(&[(2, [9u8; 32])]).unwrap();
        assert_eq!(stranger.verify(&t, 1), Err(TokenError::UnknownKey));
        let forged = Keyring::from_secrets(&[(1, [8u8; 32])]).unwrap();
        assert_eq!(forged.verify(&t, 1), Err(TokenError::BadSignature));
    }

    #[test]
    fn every_token_is_unique() {
        let r = ring();
        assert_ne!(
            r.sign(TokenKind::Pickup, "ord_1", 9).unwrap(),
            r.sign(TokenKind::Pickup, "ord_1", 9).unwrap()
        );
    }

    proptest! {
        #[test]
        fn sign_then_verify_round_trips(subject in "[a-z_0-9]{1,64}", kind in 1u8..=4, exp in 1i64..i64::MAX) {
            let r = ring();
            let kind = TokenKind::from_byte(kind).unwrap();
            let t = r.sign(kind, &subject, exp).unwrap();
            let c = r.verify(&t, 0).unwrap();
            prop_assert_eq!(c.subject, subject);
            prop_assert_eq!(c.kind, kind);
            prop_assert_eq!(c.expires_at, exp);
        }

        #[test]
        fn any_single_flipped_bit_in_the_token_is_refused(bit in 0usize..(8 * (HEADER_LEN + 7 + SIGNATURE_LEN))) {
            let r = ring();
            let t = r.sign(TokenKind::Voucher, "vch_abc", 10_000).unwrap();
            let mut bytes = BASE32_NOPAD.decode(&t.as_bytes()[PREFIX.len()..]).unwrap();
            let i = bit / 8;
            prop_assume!(i < bytes.len());
            bytes[i] ^= 1 << (bit % 8);
            let tampered = format!("{PREFIX}{}", BASE32_NOPAD.encode(&bytes));
            prop_assert!(r.verify(&tampered, 0).is_err());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(s in "\\PC{0,200}") {
            let _ = ring().verify(&s, 0);
            let _ = ring().verify(&format!("O2O:{s}"), 0);
        }
    }
}
