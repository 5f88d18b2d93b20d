//! cargo-fuzz target `stream`: see `cluster_fuzz::stream`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cluster_fuzz::stream(data));
