//! Stream reassembly.

/// Placeholder.
#[derive(Debug)]
pub struct Reassembler;
/// Placeholder.
#[derive(Debug)]
pub enum StreamItem {}
