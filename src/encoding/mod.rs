//! Byte encodings shared by storage and the wire: compact-encoding values (little-endian,
//! varints) and index-encoder keys (big-endian, order-preserving).

pub mod compact;
pub mod index_key;
