//! Hex frames to JSON and back, for `cluster decode` and `cluster encode`.
