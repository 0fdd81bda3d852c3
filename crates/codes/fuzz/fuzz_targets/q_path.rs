//! The `/q/` path parser (and the scanned-text extractor) must refuse, never panic on, any input,
//! and accept only well-formed short ids.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(id) = o2o_codes::printed::parse_short_id(text) {
            assert_eq!(id.len(), o2o_codes::printed::SHORT_ID_LEN);
        }
        let _ = o2o_codes::printed::short_id_from_text(text);
        let _ = o2o_codes::PayCode::parse(text);
    }
});
