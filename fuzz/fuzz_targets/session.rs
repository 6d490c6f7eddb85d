//! A connection past its handshake handling whatever frames the input holds, with the real Core
//! behind it and a writer that only encodes: see `warren::broker::fuzzing::check_session`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    warren::broker::fuzzing::check_session(data);
});
