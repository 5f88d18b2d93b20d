//! cargo-fuzz target `decode`: see `cluster_fuzz::decode`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cluster_fuzz::decode(data));
