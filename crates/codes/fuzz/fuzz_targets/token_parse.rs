//! The signed-token parser and verifier must refuse, never panic on, any input.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let ring = o2o_codes::Keyring::from_secrets(&[(1, [7u8; 32])]).expect("a key");
        let _ = ring.verify(text, 0);
        let _ = o2o_codes::token::parse(text);
        let _ = ring.verify(&format!("{}{text}", o2o_codes::token::PREFIX), 0);
    }
});
