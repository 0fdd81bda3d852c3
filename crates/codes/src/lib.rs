//! o2o-codes: everything about the codes that join the street to the phone, with no HTTP and no
//! SQL. [`emv`] encodes and strictly decodes EMVCo merchant-presented payloads; [`token`] signs
//! and verifies the compact tokens consumers show (vouchers, pickup codes, exit passes, delivery
//! handovers); [`paycode`] makes and parses 18-digit pay codes; [`render`] draws QR codes as PNG
//! and SVG.
//!
//! Glossary: a *printed* (merchant-presented) code is a URL on a sticker, resolved by the server;
//! a *presented* (consumer-presented) code is shown on the consumer's phone and scanned by staff.

pub mod emv;
pub mod paycode;
pub mod printed;
pub mod render;
pub mod token;

pub use emv::{EmvError, MerchantPresented, PointOfInitiation, Tlv, crc16_ccitt_false};
pub use paycode::{PAY_CODE_PREFIX, PayCode, PayCodeError};
pub use render::{RenderError, png, svg};
pub use token::{Claims, Keyring, TokenError, TokenKind};
