//! corestore-native: the Rust engine behind a drop-in replacement for JS corestore 7.
//! Layers, top down: napi (the JS surface) → store → core → storage → crypto/encoding.

pub mod core;
pub mod crypto;
pub mod encoding;
pub mod error;
#[cfg(feature = "node")]
pub mod napi;
pub mod replication;
pub mod storage;
pub mod store;
pub mod wire;

#[cfg(test)]
mod fuzz_tests;
