//! cargo-fuzz target `sealed`: see `cluster_fuzz::sealed`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| {
    cluster_fuzz::sealed(data);
});
