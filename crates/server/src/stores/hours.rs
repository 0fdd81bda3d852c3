//! Time zones and opening hours: parsing (IANA names, OpenStreetMap `opening_hours`) and "is it
//! open now" in the store's own time zone.

use crate::error::{Error, Result};
use opening_hours::OpeningHours;
use std::collections::HashMap;
use std::sync::{Arc, LazyLock, RwLock};

/// Opening hours parsed once per distinct text: every order asks whether its store is open,
/// and parsing the text costs more than the answer.
static PARSED: LazyLock<RwLock<HashMap<String, Arc<OpeningHours>>>> =
    LazyLock::new(Default::default);

/// The most distinct texts kept parsed; past that the memo starts again.
const PARSED_MAX: usize = 4_096;

fn parsed(text: &str) -> Option<Arc<OpeningHours>> {
    if let Some(oh) = PARSED.read().unwrap_or_else(|e| e.into_inner()).get(text) {
        return Some(oh.clone());
    }
    let oh = Arc::new(text.parse::<OpeningHours>().ok()?);
    let mut memo = PARSED.write().unwrap_or_else(|e| e.into_inner());
    if memo.len() >= PARSED_MAX {
        memo.clear();
    }
    memo.insert(text.to_owned(), oh.clone());
    Some(oh)
}

/// A checked IANA time zone name (`Asia/Shanghai`).
pub fn parse_timezone(raw: &str) -> Result<String> {
    let name = raw.trim();
    if name.is_empty() || name.len() > 64 || jiff::tz::TimeZone::get(name).is_err() {
        return Err(Error::invalid(
            "invalid_timezone",
            "Use an IANA time zone name such as Asia/Shanghai.",
        )
        .param("timezone"));
    }
    Ok(name.to_owned())
}

/// Checked opening hours in OpenStreetMap syntax (`Mo-Fr 07:00-22:00; Sa,Su 08:00-23:00`).
pub fn parse_opening_hours(raw: &str) -> Result<String> {
    let text = raw.trim();
    if text.is_empty() || text.len() > 255 || text.parse::<OpeningHours>().is_err() {
        return Err(Error::invalid(
            "invalid_opening_hours",
            "Use OpenStreetMap opening_hours syntax, e.g. \"Mo-Fr 07:00-22:00; Sa,Su 08:00-23:00\".",
        )
        .param("opening_hours"));
    }
    Ok(text.to_owned())
}

/// Whether a store with these (already checked) hours is open at `now` (UTC microseconds).
pub fn is_open_at(opening_hours: &str, timezone: &str, now_us: i64) -> bool {
    let Some(oh) = parsed(opening_hours) else {
        return false;
    };
    let Ok(tz) = jiff::tz::TimeZone::get(timezone) else {
        return false;
    };
    let Ok(ts) = jiff::Timestamp::from_microsecond(now_us) else {
        return false;
    };
    let local = ts.to_zoned(tz).datetime();
    let date = chrono::NaiveDate::from_ymd_opt(
        i32::from(local.year()),
        local.month() as u32,
        local.day() as u32,
    );
    let time = chrono::NaiveTime::from_hms_opt(
        local.hour() as u32,
        local.minute() as u32,
        local.second() as u32,
    );
    match (date, time) {
        (Some(d), Some(t)) => oh.is_open(chrono::NaiveDateTime::new(d, t)),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(rfc3339: &str) -> i64 {
        rfc3339.parse::<jiff::Timestamp>().unwrap().as_microsecond()
    }

    #[test]
    fn a_weekday_cafe_is_open_in_its_own_time_zone() {
        let hours = "Mo-Fr 07:00-22:00; Sa,Su 08:00-23:00";
        // 2026-11-23 is a Monday. 01:00Z is 09:00 in Shanghai: open.
        assert!(is_open_at(
            hours,
            "Asia/Shanghai",
            at("2026-11-23T01:00:00Z")
        ));
        // 15:00Z is 23:00 in Shanghai: closed on a Monday.
        assert!(!is_open_at(
            hours,
            "Asia/Shanghai",
            at("2026-11-23T15:00:00Z")
        ));
        // Saturday 2026-11-28, 14:30Z is 22:30 local: open until 23:00 at weekends.
        assert!(is_open_at(
            hours,
            "Asia/Shanghai",
            at("2026-11-28T14:30:00Z")
        ));
    }

    #[test]
    fn round_the_clock_stores_are_always_open() {
        assert!(is_open_at(
            "Mo-Su 00:00-24:00",
            "Asia/Shanghai",
            at("2026-11-23T19:00:00Z")
        ));
        assert!(is_open_at(
            "24/7",
            "Europe/London",
            at("2026-11-23T03:00:00Z")
        ));
    }

    #[test]
    fn bad_hours_and_zones_are_rejected_with_codes() {
        assert_eq!(
            parse_opening_hours("whenever").unwrap_err().code,
            "invalid_opening_hours"
        );
        assert_eq!(
            parse_timezone("Mars/Olympus").unwrap_err().code,
            "invalid_timezone"
        );
        assert_eq!(parse_timezone("Asia/Shanghai").unwrap(), "Asia/Shanghai");
    }
}
