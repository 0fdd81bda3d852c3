//! The catalog's API shapes and its parsed input types: names, prices, barcodes and option groups.

use crate::error::{Error, Result};
use o2o_ledger::{Currency, Money};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The longest product or category name, in characters.
pub const MAX_NAME_CHARS: usize = 80;
/// The longest description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 500;
/// The highest price (or price delta) a product may carry, in minor units (¥1,000,000.00).
pub const MAX_PRICE_MINOR: i64 = 100_000_000;
/// The most option groups per product, and options per group.
pub const MAX_OPTION_GROUPS: usize = 10;
pub const MAX_OPTIONS_PER_GROUP: usize = 20;
/// The highest stock count a store may set.
pub const MAX_STOCK: i64 = 1_000_000_000;

/// A category of a merchant's catalog; the menu lists categories by `position`, then by age.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Category {
    pub id: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub position: i64,
    pub created_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateCategory {
    /// Chinese name, up to 80 characters; at least one of `name_zh` and `name_en`.
    pub name_zh: Option<String>,
    /// English name, up to 80 characters.
    pub name_en: Option<String>,
    /// Order on the menu, lowest first (default 0).
    pub position: Option<i64>,
}

/// Single choice (pick exactly one when required, at most one otherwise) or multiple choice.
#[derive(Clone, Copy, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Choice {
    Single,
    Multi,
}

/// One option of a group: `大杯` for +300 fen.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ProductOption {
    /// Short key, unique in its group (`large`, `oat`): 1 to 32 of `a-z 0-9 _ -`.
    pub key: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    /// Added to the price, in minor units (0 or more).
    #[serde(default)]
    pub price_delta: i64,
}

/// A group of options such as size, sugar or spice.
#[derive(Clone, Debug, Serialize, Deserialize, ToSchema, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct OptionGroup {
    /// Short key, unique in the product (`size`, `sugar`).
    pub key: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub choice: Choice,
    /// A required group must have a choice when ordering.
    #[serde(default)]
    pub required: bool,
    pub options: Vec<ProductOption>,
}

/// A product as its merchant sees it.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Product {
    pub id: String,
    pub merchant_id: String,
    pub category_id: Option<String>,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub description: String,
    /// Base price in minor units (fen).
    pub price: i64,
    pub currency: String,
    pub option_groups: Vec<OptionGroup>,
    /// GTIN-13 (a UPC-A is stored with a leading 0).
    pub barcode: Option<String>,
    pub position: i64,
    /// Photo URLs by width, when a photo was uploaded.
    pub photo: Option<PhotoUrls>,
    pub created_at: String,
    pub updated_at: String,
}

/// Where a product's photo is served, at each stored width.
#[derive(Clone, Debug, Serialize, ToSchema, PartialEq, Eq)]
pub struct PhotoUrls {
    /// 160 px wide (lists).
    pub small: String,
    /// 480 px wide (detail).
    pub large: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateProduct {
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    /// Up to 500 characters.
    pub description: Option<String>,
    /// Minor units, 0 to 100,000,000.
    pub price: i64,
    /// ISO 4217; default CNY.
    pub currency: Option<String>,
    pub category_id: Option<String>,
    #[serde(default)]
    pub option_groups: Vec<OptionGroup>,
    /// EAN-13 or UPC-A digits, checksum checked.
    pub barcode: Option<String>,
    pub position: Option<i64>,
}

/// Changes some fields of a product; absent fields stay. `category_id` and `barcode` may be
/// set to `null` to clear them.
#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub struct UpdateProduct {
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name_zh: Option<Option<String>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub name_en: Option<Option<String>>,
    pub description: Option<String>,
    pub price: Option<i64>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub category_id: Option<Option<String>>,
    pub option_groups: Option<Vec<OptionGroup>>,
    #[serde(default, deserialize_with = "double_option")]
    #[schema(value_type = Option<String>)]
    pub barcode: Option<Option<String>>,
    pub position: Option<i64>,
}

/// Tells an absent field (`None`) from an explicit `null` (`Some(None)`).
pub(crate) fn double_option<'de, D, T>(d: D) -> std::result::Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A store's settings for one product. Absent: the product sells at its base price, available,
/// without a stock count.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct StoreProduct {
    pub store_id: String,
    pub product_id: String,
    /// The store's price in minor units, replacing the base price; `null`: the base price.
    pub price: Option<i64>,
    pub available: bool,
    /// Units left; `null`: not counted.
    pub stock: Option<i64>,
    /// Unavailable, or counted and none left.
    pub sold_out: bool,
    pub updated_at: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PutStoreProduct {
    /// Minor units; `null` or absent: the base price.
    pub price: Option<i64>,
    /// Default true.
    pub available: Option<bool>,
    /// 0 to 1,000,000,000; `null` or absent: not counted.
    pub stock: Option<i64>,
}

/// One product on a store's menu.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MenuItem {
    pub id: String,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub description: String,
    /// This store's price (its override, else the base price), in minor units.
    pub price: i64,
    pub currency: String,
    /// The price as major units text (`28.00`).
    pub price_major: String,
    pub available: bool,
    pub stock: Option<i64>,
    pub sold_out: bool,
    pub option_groups: Vec<OptionGroup>,
    pub barcode: Option<String>,
    pub photo: Option<PhotoUrls>,
}

/// A section of the menu; products without a category come last in a section with no id.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct MenuSection {
    pub id: Option<String>,
    pub name_zh: Option<String>,
    pub name_en: Option<String>,
    pub products: Vec<MenuItem>,
}

/// A store's menu: its merchant's catalog with this store's prices and availability.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Menu {
    pub store_id: String,
    pub merchant_id: String,
    /// The merchant's catalog version this menu was built from (it grows with every change).
    pub version: i64,
    pub sections: Vec<MenuSection>,
}

/// What a chosen set of options costs (for ordering).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct QuoteRequest {
    pub product_id: String,
    /// Option keys chosen, by group key: `{"size": ["large"], "milk": ["oat"]}`.
    #[serde(default)]
    pub options: std::collections::BTreeMap<String, Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub struct Quote {
    pub product_id: String,
    /// Unit price with the chosen options, in minor units.
    pub unit_price: i64,
    pub currency: String,
}

// ----- parsing -----

/// A name in either language: trimmed, 1 to 80 characters, no control characters.
pub fn parse_optional_name(raw: Option<&str>, param: &'static str) -> Result<Option<String>> {
    match raw {
        None => Ok(None),
        Some(s) if s.trim().is_empty() => Ok(None),
        Some(s) => {
            let name = s.trim();
            let n = name.chars().count();
            if n > MAX_NAME_CHARS {
                return Err(Error::invalid(
                    "name_too_long",
                    format!("{param} must be at most {MAX_NAME_CHARS} characters."),
                )
                .param(param));
            }
            if name.chars().any(char::is_control) {
                return Err(Error::invalid(
                    "invalid_name",
                    format!("{param} must not contain control characters."),
                )
                .param(param));
            }
            Ok(Some(name.to_owned()))
        }
    }
}

/// A pair of names of which at least one is given.
pub fn parse_names(zh: Option<&str>, en: Option<&str>) -> Result<(Option<String>, Option<String>)> {
    let zh = parse_optional_name(zh, "name_zh")?;
    let en = parse_optional_name(en, "name_en")?;
    if zh.is_none() && en.is_none() {
        return Err(Error::invalid(
            "name_required",
            "Give a name in Chinese (name_zh), English (name_en) or both.",
        )
        .param("name_zh"));
    }
    Ok((zh, en))
}

pub fn parse_description(raw: Option<&str>) -> Result<String> {
    let d = raw.unwrap_or("").trim();
    if d.chars().count() > MAX_DESCRIPTION_CHARS {
        return Err(Error::invalid(
            "description_too_long",
            format!("description must be at most {MAX_DESCRIPTION_CHARS} characters."),
        )
        .param("description"));
    }
    if d.chars().any(|c| c.is_control() && c != '\n') {
        return Err(Error::invalid(
            "invalid_description",
            "description must not contain control characters.",
        )
        .param("description"));
    }
    Ok(d.to_owned())
}

/// A price in minor units: 0 to [`MAX_PRICE_MINOR`].
pub fn parse_price(amount: i64, param: &'static str) -> Result<i64> {
    if amount < 0 {
        return Err(
            Error::invalid("price_negative", format!("{param} must not be negative.")).param(param),
        );
    }
    if amount > MAX_PRICE_MINOR {
        return Err(Error::invalid(
            "price_too_high",
            format!("{param} must be at most {MAX_PRICE_MINOR} minor units."),
        )
        .param(param));
    }
    Ok(amount)
}

pub fn parse_currency(raw: Option<&str>) -> Result<Currency> {
    match raw {
        None => Ok(Currency::CNY),
        Some(c) => Currency::parse(c).map_err(|e| {
            Error::invalid(e.code(), format!("Unknown currency {c:?}.")).param("currency")
        }),
    }
}

pub fn parse_position(raw: Option<i64>) -> Result<i64> {
    let p = raw.unwrap_or(0);
    if !(-1_000_000..=1_000_000).contains(&p) {
        return Err(Error::invalid(
            "position_out_of_range",
            "position must be between -1000000 and 1000000.",
        )
        .param("position"));
    }
    Ok(p)
}

/// A product barcode: EAN-13, or UPC-A (12 digits, stored as EAN-13 with a leading 0), with a
/// valid check digit. Spaces and hyphens are ignored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Barcode(String);

impl Barcode {
    pub fn parse(raw: &str) -> Result<Barcode> {
        let digits: String = raw.chars().filter(|c| *c != ' ' && *c != '-').collect();
        let bad = |msg: &str| Error::invalid("invalid_barcode", msg.to_owned()).param("barcode");
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(bad("A barcode has digits only (EAN-13 or UPC-A)."));
        }
        let gtin13 = match digits.len() {
            13 => digits,
            12 => format!("0{digits}"),
            _ => return Err(bad("A barcode has 13 (EAN-13) or 12 (UPC-A) digits.")),
        };
        let bytes = gtin13.as_bytes();
        let sum: u32 = bytes[..12]
            .iter()
            .enumerate()
            .map(|(i, b)| u32::from(b - b'0') * if i % 2 == 0 { 1 } else { 3 })
            .sum();
        let check = (10 - sum % 10) % 10;
        if u32::from(bytes[12] - b'0') != check {
            return Err(bad("The barcode's check digit is wrong."));
        }
        Ok(Barcode(gtin13))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

fn parse_key(raw: &str, param: String) -> Result<String> {
    let ok = !raw.is_empty()
        && raw.len() <= 32
        && raw
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-');
    if ok {
        Ok(raw.to_owned())
    } else {
        Err(Error::invalid(
            "invalid_option_key",
            "Option and group keys are 1 to 32 of a-z, 0-9, _ and -.",
        )
        .param(param))
    }
}

/// Checks option groups: keys unique, names given and short, deltas in range, and a single
/// required group has at least one option.
pub fn parse_option_groups(groups: Vec<OptionGroup>) -> Result<Vec<OptionGroup>> {
    if groups.len() > MAX_OPTION_GROUPS {
        return Err(Error::invalid(
            "too_many_option_groups",
            format!("A product has at most {MAX_OPTION_GROUPS} option groups."),
        )
        .param("option_groups"));
    }
    let mut out = Vec::with_capacity(groups.len());
    let mut keys = std::collections::HashSet::new();
    for (gi, g) in groups.into_iter().enumerate() {
        let key = parse_key(&g.key, format!("option_groups[{gi}].key"))?;
        if !keys.insert(key.clone()) {
            return Err(Error::invalid(
                "duplicate_option_key",
                format!("Two option groups have the key {key:?}."),
            )
            .param(format!("option_groups[{gi}].key")));
        }
        let (name_zh, name_en) = parse_names(g.name_zh.as_deref(), g.name_en.as_deref())
            .map_err(|e| e.param(format!("option_groups[{gi}].name_zh")))?;
        if g.options.is_empty() || g.options.len() > MAX_OPTIONS_PER_GROUP {
            return Err(Error::invalid(
                "invalid_options",
                format!("An option group has 1 to {MAX_OPTIONS_PER_GROUP} options."),
            )
            .param(format!("option_groups[{gi}].options")));
        }
        let mut option_keys = std::collections::HashSet::new();
        let mut options = Vec::with_capacity(g.options.len());
        for (oi, o) in g.options.into_iter().enumerate() {
            let at = format!("option_groups[{gi}].options[{oi}]");
            let okey = parse_key(&o.key, format!("{at}.key"))?;
            if !option_keys.insert(okey.clone()) {
                return Err(Error::invalid(
                    "duplicate_option_key",
                    format!("Two options of group {key:?} have the key {okey:?}."),
                )
                .param(format!("{at}.key")));
            }
            let (oz, oe) = parse_names(o.name_zh.as_deref(), o.name_en.as_deref())
                .map_err(|e| e.param(format!("{at}.name_zh")))?;
            let delta = parse_price(o.price_delta, "price_delta")
                .map_err(|e| e.param(format!("{at}.price_delta")))?;
            options.push(ProductOption {
                key: okey,
                name_zh: oz,
                name_en: oe,
                price_delta: delta,
            });
        }
        out.push(OptionGroup {
            key,
            name_zh,
            name_en,
            choice: g.choice,
            required: g.required,
            options,
        });
    }
    Ok(out)
}

/// The unit price of a product with the chosen options: the base (or store) price plus the
/// chosen options' deltas. Unknown groups or options, two choices in a single-choice group and a
/// missing required choice are errors that name the group.
pub fn price_with_options(
    base: Money,
    groups: &[OptionGroup],
    chosen: &std::collections::BTreeMap<String, Vec<String>>,
) -> Result<Money> {
    for key in chosen.keys() {
        if !groups.iter().any(|g| &g.key == key) {
            return Err(Error::invalid(
                "unknown_option_group",
                format!("This product has no option group {key:?}."),
            )
            .param(format!("options.{key}")));
        }
    }
    let mut total = base;
    for g in groups {
        let picks = chosen.get(&g.key).map(Vec::as_slice).unwrap_or(&[]);
        if g.required && picks.is_empty() {
            return Err(Error::invalid(
                "option_required",
                format!("Choose an option for {:?}.", g.key),
            )
            .param(format!("options.{}", g.key)));
        }
        if g.choice == Choice::Single && picks.len() > 1 {
            return Err(Error::invalid(
                "too_many_options",
                format!("Choose one option for {:?}.", g.key),
            )
            .param(format!("options.{}", g.key)));
        }
        let mut seen = std::collections::HashSet::new();
        for p in picks {
            let Some(o) = g.options.iter().find(|o| &o.key == p) else {
                return Err(Error::invalid(
                    "unknown_option",
                    format!("Group {:?} has no option {p:?}.", g.key),
                )
                .param(format!("options.{}", g.key)));
            };
            if !seen.insert(p) {
                return Err(Error::invalid(
                    "duplicate_option",
                    format!("Option {p:?} is chosen twice."),
                )
                .param(format!("options.{}", g.key)));
            }
            total = total
                .checked_add(Money::new(o.price_delta, base.currency()))
                .map_err(|e| Error::invalid(e.code(), "The price overflows."))?;
        }
    }
    Ok(total)
}

/// A stock count: 0 to [`MAX_STOCK`], or none.
pub fn parse_stock(raw: Option<i64>) -> Result<Option<i64>> {
    match raw {
        Some(s) if !(0..=MAX_STOCK).contains(&s) => Err(Error::invalid(
            "stock_out_of_range",
            format!("stock must be between 0 and {MAX_STOCK}."),
        )
        .param("stock")),
        other => Ok(other),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn barcodes_with_a_good_check_digit_parse_and_upc_a_becomes_ean_13() {
        assert_eq!(
            Barcode::parse("4006381333931").unwrap().as_str(),
            "4006381333931"
        );
        assert_eq!(
            Barcode::parse("036000291452").unwrap().as_str(),
            "0036000291452"
        );
        assert_eq!(
            Barcode::parse("6 901234 567892").unwrap().as_str(),
            "6901234567892"
        );
        for bad in ["4006381333932", "12345", "abcdefghijklm", "03600029145"] {
            assert_eq!(
                Barcode::parse(bad).unwrap_err().code,
                "invalid_barcode",
                "{bad}"
            );
        }
    }

    fn groups() -> Vec<OptionGroup> {
        parse_option_groups(
            serde_json::from_value(serde_json::json!([
                {"key": "size", "name_zh": "杯型", "choice": "single", "required": true,
                 "options": [{"key": "medium", "name_zh": "中杯"}, {"key": "large", "name_zh": "大杯", "price_delta": 300}]},
                {"key": "extra", "name_en": "Extras", "choice": "multi",
                 "options": [{"key": "shot", "name_en": "Shot", "price_delta": 400}, {"key": "syrup", "name_en": "Syrup", "price_delta": 200}]}
            ]))
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn options_add_their_deltas_and_bad_choices_name_the_group() {
        let g = groups();
        let base = Money::new(2_800, Currency::CNY);
        let pick = |v: serde_json::Value| -> std::collections::BTreeMap<String, Vec<String>> {
            serde_json::from_value(v).unwrap()
        };
        let p = price_with_options(
            base,
            &g,
            &pick(serde_json::json!({"size": ["large"], "extra": ["shot", "syrup"]})),
        )
        .unwrap();
        assert_eq!(p.amount_minor(), 3_700);
        let code = |v| price_with_options(base, &g, &pick(v)).unwrap_err().code;
        assert_eq!(
            code(serde_json::json!({"size": ["large"], "spice": ["hot"]})),
            "unknown_option_group"
        );
        assert_eq!(code(serde_json::json!({})), "option_required");
        assert_eq!(
            code(serde_json::json!({"size": ["large", "medium"]})),
            "too_many_options"
        );
        assert_eq!(
            code(serde_json::json!({"size": ["huge"]})),
            "unknown_option"
        );
    }

    #[test]
    fn negative_deltas_and_long_names_are_refused() {
        let bad: Vec<OptionGroup> = serde_json::from_value(serde_json::json!([
            {"key": "size", "name_zh": "杯型", "choice": "single",
             "options": [{"key": "small", "name_zh": "小杯", "price_delta": -100}]}
        ]))
        .unwrap();
        assert_eq!(parse_option_groups(bad).unwrap_err().code, "price_negative");
        let long = "咖".repeat(81);
        assert_eq!(
            parse_names(Some(&long), None).unwrap_err().code,
            "name_too_long"
        );
        assert_eq!(
            parse_names(None, Some("  ")).unwrap_err().code,
            "name_required"
        );
    }
}
