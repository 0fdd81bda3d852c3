//! The strict EMVCo decoder must refuse, never panic on, any input; what it accepts must
//! re-encode to a payload that decodes to the same thing.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = o2o_codes::emv::parse_objects(text);
        if let Ok(qr) = o2o_codes::MerchantPresented::decode(text)
            && let Ok(again) = qr.encode()
        {
            assert_eq!(o2o_codes::MerchantPresented::decode(&again).expect("re-encoded payload decodes"), qr);
        }
    }
});
