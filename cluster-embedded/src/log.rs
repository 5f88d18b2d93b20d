//! Internal log macros: they forward to `defmt` when the `defmt` feature is on, and otherwise
//! expand to nothing, without evaluating their arguments. Format strings use `defmt` syntax;
//! wrap `cluster_core` types in `defmt::Debug2Format` (the core has no `defmt` support).
//! They are in textual scope (`#[macro_use]`) for the modules declared after this one.

macro_rules! trace {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::trace!($($arg)*);
    }};
}

macro_rules! debug {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::debug!($($arg)*);
    }};
}

macro_rules! warn {
    ($($arg:tt)*) => {{
        #[cfg(feature = "defmt")]
        defmt::warn!($($arg)*);
    }};
}
