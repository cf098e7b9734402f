//! Byte encodings shared by storage and the wire: compact-encoding values (little-endian,
//! varints) and index-encoder keys (big-endian, order-preserving).

pub mod compact;
pub mod index_key;

/// The pieces of `bytes` that end at each of `ends` (ascending, each within `bytes`): byte
/// strings laid end to end in one buffer, as a batch of blocks is for hashing or for the
/// thread pool.
pub fn split_at_ends<'a>(bytes: &'a [u8], ends: &[usize]) -> Vec<&'a [u8]> {
    let mut start = 0;
    ends.iter()
        .map(|&end| {
            let piece = &bytes[start..end];
            start = end;
            piece
        })
        .collect()
}
