//! The hypercore engine: one core's tree, blocks, bitfield, head and signatures.

pub mod bitfield;
pub mod flat_tree;
pub mod hypercore;
pub mod index_map;
pub mod manifest;
pub mod marks;
pub mod merkle;
pub mod node_cache;
pub mod proof;
pub mod session_state;
pub mod signature;
