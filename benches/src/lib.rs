//! Benchmarks of the `cluster` workspace live in `benches/`; this library is empty.
