//! EMVCo merchant-presented QR payloads ("EMV QR Code Specification for Payment Systems:
//! Merchant-Presented Mode"): a sequence of data objects, each an ID (2 digits), a length
//! (2 digits, counted in characters) and a value; `00` payload format indicator first (`01`),
//! `01` point of initiation (`11` static, `12` dynamic), `02`–`51` merchant account information
//! (26–51 are templates whose sub-ID `00` is a globally unique identifier), `52` merchant category
//! code, `53` transaction currency (ISO 4217 numeric), `54` amount, `58` country, `59` merchant
//! name, `60` city, `62` additional data template, and `63` last: a CRC-16/CCITT-FALSE (poly
//! 0x1021, init 0xFFFF) over the whole payload up to and including `6304`, as 4 uppercase hex.
//!
//! [`decode`] is strict: anything malformed is an error, never a guess.

/// One data object: a two-digit id and its value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tlv {
    pub id: String,
    pub value: String,
}

impl Tlv {
    pub fn new(id: &str, value: impl Into<String>) -> Tlv {
        Tlv {
            id: id.to_owned(),
            value: value.into(),
        }
    }
}

/// Why a payload is not a valid EMVCo merchant-presented payload.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum EmvError {
    #[error("payload is truncated at character {0}")]
    Truncated(usize),
    #[error("data object id at character {0} is not two digits")]
    BadId(usize),
    #[error("length at character {0} is not two digits from 01 to 99")]
    BadLength(usize),
    #[error("payload must start with the payload format indicator 000201")]
    BadFormatIndicator,
    #[error("the CRC must be the last data object, 63 with length 04")]
    MissingCrc,
    #[error("CRC mismatch: payload says {found}, computed {computed}")]
    CrcMismatch { found: String, computed: String },
    #[error("data object {0} appears twice")]
    Duplicate(String),
    #[error("required data object {0} is missing")]
    Missing(&'static str),
    #[error("data object {id} is invalid: {reason}")]
    Invalid { id: String, reason: &'static str },
    #[error("a value of {0} is longer than 99 characters")]
    TooLong(String),
}

/// CRC-16/CCITT-FALSE: poly 0x1021, init 0xFFFF, no reflection, no final xor (check value of
/// "123456789" is 0x29B1).
pub fn crc16_ccitt_false(bytes: &[u8]) -> u16 {
    let mut crc: u16 = 0xFFFF;
    for &b in bytes {
        crc ^= u16::from(b) << 8;
        for _ in 0..8 {
            crc = if crc & 0x8000 != 0 {
                (crc << 1) ^ 0x1021
            } else {
                crc << 1
            };
        }
    }
    crc
}

/// Writes data objects as TLV text (no CRC).
pub fn encode_objects(objects: &[Tlv]) -> Result<String, EmvError> {
    let mut out = String::new();
    for o in objects {
        let len = o.value.chars().count();
        if len == 0 || len > 99 {
            return Err(EmvError::TooLong(o.id.clone()));
        }
        if o.id.len() != 2 || !o.id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmvError::BadId(out.chars().count()));
        }
        out.push_str(&o.id);
        out.push_str(&format!("{len:02}"));
        out.push_str(&o.value);
    }
    Ok(out)
}

/// Appends the CRC object to a payload body.
pub fn with_crc(body: &str) -> String {
    let mut s = format!("{body}6304");
    let crc = crc16_ccitt_false(s.as_bytes());
    s.push_str(&format!("{crc:04X}"));
    s
}

/// Splits TLV text into data objects (lengths counted in characters).
pub fn parse_objects(text: &str) -> Result<Vec<Tlv>, EmvError> {
    let chars: Vec<char> = text.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        if i + 4 > chars.len() {
            return Err(EmvError::Truncated(i));
        }
        let id: String = chars[i..i + 2].iter().collect();
        if !id.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmvError::BadId(i));
        }
        let len_text: String = chars[i + 2..i + 4].iter().collect();
        if !len_text.bytes().all(|b| b.is_ascii_digit()) {
            return Err(EmvError::BadLength(i + 2));
        }
        let len: usize = len_text.parse().map_err(|_| EmvError::BadLength(i + 2))?;
        if len == 0 {
            return Err(EmvError::BadLength(i + 2));
        }
        if i + 4 + len > chars.len() {
            return Err(EmvError::Truncated(i));
        }
        out.push(Tlv {
            id,
            value: chars[i + 4..i + 4 + len].iter().collect(),
        });
        i += 4 + len;
    }
    Ok(out)
}

/// Static (the same code for every payment) or dynamic (one payment, usually with an amount).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PointOfInitiation {
    Static,
    Dynamic,
}

/// A decoded (or to-be-encoded) merchant-presented payload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MerchantPresented {
    pub point_of_initiation: PointOfInitiation,
    /// Merchant account information objects (IDs 02–51), in order.
    pub merchant_accounts: Vec<Tlv>,
    /// ISO 18245 merchant category code, 4 digits.
    pub merchant_category_code: String,
    /// ISO 4217 numeric currency, 3 digits (`156` for CNY).
    pub currency_numeric: String,
    /// Amount as the specification writes it (`23.72`), when the code fixes one.
    pub amount: Option<String>,
    /// ISO 3166-1 alpha-2.
    pub country_code: String,
    pub merchant_name: String,
    pub merchant_city: String,
    /// Every other object (tip indicator, postal code, 62 additional data, 64 language template,
    /// 80–99 unreserved templates), kept in order so a decode/encode round trip is exact.
    pub other: Vec<Tlv>,
}

fn check_digits(id: &str, value: &str, len: usize) -> Result<(), EmvError> {
    if value.len() == len && value.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(EmvError::Invalid {
            id: id.to_owned(),
            reason: "wrong number of digits",
        })
    }
}

impl MerchantPresented {
    /// The payload text, CRC included.
    pub fn encode(&self) -> Result<String, EmvError> {
        let mut objects = vec![
            Tlv::new("00", "01"),
            Tlv::new(
                "01",
                match self.point_of_initiation {
                    PointOfInitiation::Static => "11",
                    PointOfInitiation::Dynamic => "12",
                },
            ),
        ];
        objects.extend(self.merchant_accounts.iter().cloned());
        objects.push(Tlv::new("52", self.merchant_category_code.clone()));
        objects.push(Tlv::new("53", self.currency_numeric.clone()));
        if let Some(a) = &self.amount {
            objects.push(Tlv::new("54", a.clone()));
        }
        objects.push(Tlv::new("58", self.country_code.clone()));
        objects.push(Tlv::new("59", self.merchant_name.clone()));
        objects.push(Tlv::new("60", self.merchant_city.clone()));
        objects.extend(self.other.iter().cloned());
        let encoded = with_crc(&encode_objects(&objects)?);
        // What we write must read back as itself.
        Self::decode(&encoded)?;
        Ok(encoded)
    }

    /// Decodes and checks a payload: format indicator first, CRC last and correct, no duplicate
    /// objects, the mandatory objects present and well formed.
    pub fn decode(payload: &str) -> Result<MerchantPresented, EmvError> {
        if !payload.starts_with("000201") {
            return Err(EmvError::BadFormatIndicator);
        }
        let objects = parse_objects(payload)?;
        let last = objects.last().ok_or(EmvError::MissingCrc)?;
        if last.id != "63"
            || last.value.len() != 4
            || !last.value.bytes().all(|b| b.is_ascii_hexdigit())
        {
            return Err(EmvError::MissingCrc);
        }
        let covered = &payload[..payload.len() - 4];
        let computed = format!("{:04X}", crc16_ccitt_false(covered.as_bytes()));
        if last.value != computed {
            return Err(EmvError::CrcMismatch {
                found: last.value.clone(),
                computed,
            });
        }
        let mut seen = std::collections::HashSet::new();
        for o in &objects {
            if !seen.insert(o.id.clone()) {
                return Err(EmvError::Duplicate(o.id.clone()));
            }
        }
        let find = |id: &'static str| objects.iter().find(|o| o.id == id).map(|o| o.value.clone());
        let point_of_initiation = match find("01").as_deref() {
            Some("11") => PointOfInitiation::Static,
            Some("12") => PointOfInitiation::Dynamic,
            Some(_) => {
                return Err(EmvError::Invalid {
                    id: "01".into(),
                    reason: "must be 11 or 12",
                });
            }
            None => PointOfInitiation::Static,
        };
        let merchant_accounts: Vec<Tlv> = objects
            .iter()
            .filter(|o| matches!(o.id.parse::<u8>(), Ok(2..=51)))
            .cloned()
            .collect();
        if merchant_accounts.is_empty() {
            return Err(EmvError::Missing("merchant account information (02-51)"));
        }
        for t in merchant_accounts.iter().filter(|o| o.id.as_str() >= "26") {
            let inner = parse_objects(&t.value).map_err(|_| EmvError::Invalid {
                id: t.id.clone(),
                reason: "template is not a sequence of data objects",
            })?;
            if inner.first().map(|o| o.id.as_str()) != Some("00") {
                return Err(EmvError::Invalid {
                    id: t.id.clone(),
                    reason: "template must start with its globally unique identifier (00)",
                });
            }
        }
        let mcc = find("52").ok_or(EmvError::Missing("52 merchant category code"))?;
        check_digits("52", &mcc, 4)?;
        let currency = find("53").ok_or(EmvError::Missing("53 transaction currency"))?;
        check_digits("53", &currency, 3)?;
        let amount = find("54");
        if let Some(a) = &amount {
            let ok = a.len() <= 13
                && a.bytes().all(|b| b.is_ascii_digit() || b == b'.')
                && a.bytes().filter(|&b| b == b'.').count() <= 1
                && a.bytes().any(|b| b.is_ascii_digit());
            if !ok {
                return Err(EmvError::Invalid {
                    id: "54".into(),
                    reason: "amount must be digits with an optional decimal point",
                });
            }
        }
        let country = find("58").ok_or(EmvError::Missing("58 country code"))?;
        if country.len() != 2 || !country.bytes().all(|b| b.is_ascii_uppercase()) {
            return Err(EmvError::Invalid {
                id: "58".into(),
                reason: "country must be two capital letters",
            });
        }
        let name = find("59").ok_or(EmvError::Missing("59 merchant name"))?;
        let city = find("60").ok_or(EmvError::Missing("60 merchant city"))?;
        if name.chars().count() > 25 || city.chars().count() > 15 {
            return Err(EmvError::Invalid {
                id: "59/60".into(),
                reason: "name is at most 25 and city at most 15 characters",
            });
        }
        let known = ["00", "01", "52", "53", "54", "58", "59", "60", "63"];
        let other = objects
            .iter()
            .filter(|o| {
                !known.contains(&o.id.as_str()) && !matches!(o.id.parse::<u8>(), Ok(2..=51))
            })
            .cloned()
            .collect();
        Ok(MerchantPresented {
            point_of_initiation,
            merchant_accounts,
            merchant_category_code: mcc,
            currency_numeric: currency,
            amount,
            country_code: country,
            merchant_name: name,
            merchant_city: city,
            other,
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The worked example published in the EMVCo merchant-presented mode specification.
    const SPEC_EXAMPLE: &str = "00020101021229300012D156000000000510A93FO3230Q31280012D15600000001030812345678520441115802CN5914BEST TRANSPORT6007BEIJING64200002ZH0104最佳运输0202北京540523.7253031565502016233030412340603***0708A60086670902ME91320016A0112233449988770708123456786304A13A";

    #[test]
    fn the_crc_matches_the_published_check_value() {
        assert_eq!(crc16_ccitt_false(b"123456789"), 0x29B1);
    }

    #[test]
    fn the_specifications_example_decodes_and_its_crc_checks() {
        let qr = MerchantPresented::decode(SPEC_EXAMPLE).unwrap();
        assert_eq!(qr.point_of_initiation, PointOfInitiation::Dynamic);
        assert_eq!(qr.merchant_category_code, "4111");
        assert_eq!(qr.currency_numeric, "156");
        assert_eq!(qr.amount.as_deref(), Some("23.72"));
        assert_eq!(qr.country_code, "CN");
        assert_eq!(qr.merchant_name, "BEST TRANSPORT");
        assert_eq!(qr.merchant_city, "BEIJING");
        assert_eq!(qr.merchant_accounts.len(), 2);
        assert_eq!(
            qr.merchant_accounts[0],
            Tlv::new("29", "0012D156000000000510A93FO3230Q")
        );
        let lang = qr.other.iter().find(|o| o.id == "64").unwrap();
        assert_eq!(lang.value, "0002ZH0104最佳运输0202北京");
    }

    #[test]
    fn the_specifications_objects_reencode_byte_for_byte() {
        let objects = parse_objects(&SPEC_EXAMPLE[..SPEC_EXAMPLE.len() - 8]).unwrap();
        assert_eq!(with_crc(&encode_objects(&objects).unwrap()), SPEC_EXAMPLE);
    }

    /// A store's static payload, as o2o prints one (also for other modules' tests).
    pub(crate) fn sample() -> MerchantPresented {
        MerchantPresented {
            point_of_initiation: PointOfInitiation::Static,
            merchant_accounts: vec![Tlv::new(
                "26",
                encode_objects(&[
                    Tlv::new("00", "net.o2o"),
                    Tlv::new("01", "https://o2o.example/q/abc"),
                ])
                .unwrap(),
            )],
            merchant_category_code: "5814".into(),
            currency_numeric: "156".into(),
            amount: None,
            country_code: "CN".into(),
            merchant_name: "LOTUS COFFEE".into(),
            merchant_city: "SHANGHAI".into(),
            other: vec![],
        }
    }

    #[test]
    fn an_encoded_payload_decodes_to_itself() {
        let p = sample().encode().unwrap();
        assert!(p.starts_with("000201010211"));
        assert_eq!(MerchantPresented::decode(&p).unwrap(), sample());
    }

    #[test]
    fn malformed_payloads_are_rejected() {
        assert_eq!(
            MerchantPresented::decode("").unwrap_err(),
            EmvError::BadFormatIndicator
        );
        assert_eq!(
            MerchantPresented::decode("000201").unwrap_err(),
            EmvError::MissingCrc
        );
        let p = sample().encode().unwrap();
        assert!(MerchantPresented::decode(&p[..p.len() - 1]).is_err());
        let no_crc = p.replace("6304", "6305");
        assert!(MerchantPresented::decode(&no_crc).is_err());
    }

    proptest! {
        #[test]
        fn any_name_city_and_amount_round_trip(
            name in "[A-Z][A-Z ]{0,24}",
            city in "[A-Z]{1,15}",
            amount in proptest::option::of("[1-9][0-9]{0,6}\\.[0-9]{2}"),
            dynamic in any::<bool>(),
        ) {
            let mut qr = sample();
            qr.merchant_name = name.trim_end().to_owned();
            prop_assume!(!qr.merchant_name.is_empty());
            qr.merchant_city = city;
            qr.amount = amount;
            qr.point_of_initiation = if dynamic { PointOfInitiation::Dynamic } else { PointOfInitiation::Static };
            let p = qr.encode().unwrap();
            prop_assert_eq!(MerchantPresented::decode(&p).unwrap(), qr);
        }

        #[test]
        fn any_single_flipped_bit_is_rejected(pos in 0usize..200, bit in 0u8..7) {
            let p = sample().encode().unwrap();
            let mut bytes = p.into_bytes();
            let i = pos % bytes.len();
            bytes[i] ^= 1 << bit;
            if let Ok(text) = String::from_utf8(bytes) {
                prop_assert!(MerchantPresented::decode(&text).is_err(), "accepted {}", text);
            }
        }

        #[test]
        fn decoding_arbitrary_text_never_panics(s in "\\PC{0,300}") {
            let _ = MerchantPresented::decode(&s);
            let _ = MerchantPresented::decode(&format!("000201{s}"));
        }
    }
}
