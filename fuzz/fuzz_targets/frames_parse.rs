//! src/broker/frames.rs `parse`, frame after frame, and each frame back through the broker's
//! encoder: see `warren::broker::fuzzing::check_frames`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| warren::broker::fuzzing::check_frames(data));
