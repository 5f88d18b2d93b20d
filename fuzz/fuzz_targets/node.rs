//! cargo-fuzz target `node`: see `cluster_fuzz::node`. The input is read as a
//! `cluster_fuzz::node::Script` exactly as `cluster_fuzz::node` reads it, so that
//! `cargo fuzz fmt node <input>` shows the script.
#![no_main]

use cluster_fuzz::node::{Script, run};

libfuzzer_sys::fuzz_target!(|script: Script| {
    run(&script);
});
