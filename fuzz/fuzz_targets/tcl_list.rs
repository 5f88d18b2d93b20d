//! cargo-fuzz target `tcl_list`: see `cluster_fuzz::tcl_list`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| cluster_fuzz::tcl_list(data));
