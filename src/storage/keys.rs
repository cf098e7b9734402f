//! Key layout of hypercore-storage 3.x (column family `corestore`), built from the
//! index-encoder primitives. See storage-format.md §2.2:
//!
//! | table | key |
//! |---|---|
//! | HEAD | `00` |
//! | CORE_BY_DKEY | `01` dkey[32] |
//! | CORE_BY_ALIAS | `02` namespace[32] STRING(name) |
//! | CORE/{AUTH,SESSIONS,GROUP} | `03` P `00`/`01`/`02` |
//! | DATA/{HEAD,DEPENDENCY,HINTS} | `04` D `00`/`01`/`02` |
//! | DATA/BLOCK | `04` D `03` UINT(index) |
//! | DATA/TREE | `04` D `04` UINT(index) |
//! | DATA/BITFIELD | `04` D `05` UINT(page) UINT(type) |
//! | DATA/USER_DATA | `04` D `06` STRING(key) |
//! | DATA/LOCAL | `04` D `07` raw key |
//! | DATA/MARK | `04` D `08` UINT(page) |
//! | GROUP_BY_TOPIC | `05` topic[32] |
//! | GROUP | `06` UINT(group) u64BE(timestamp) P |

use crate::encoding::compact::DecodeError;
use crate::encoding::index_key::{
    read_fixed, read_string, read_uint, write_string, write_uint, write_uint_or_infinity, INFINITY,
};

pub const TL_HEAD: u64 = 0;
pub const TL_CORE_BY_DKEY: u64 = 1;
pub const TL_CORE_BY_ALIAS: u64 = 2;
pub const TL_CORE: u64 = 3;
pub const TL_DATA: u64 = 4;
pub const TL_GROUP_BY_TOPIC: u64 = 5;
pub const TL_GROUP: u64 = 6;
/// One past the last top-level table (the end of `store.clear()`).
pub const TL_END: u64 = TL_GROUP + 1;

pub const CORE_AUTH: u64 = 0;
pub const CORE_SESSIONS: u64 = 1;
pub const CORE_GROUP: u64 = 2;

pub const DATA_HEAD: u64 = 0;
pub const DATA_DEPENDENCY: u64 = 1;
pub const DATA_HINTS: u64 = 2;
pub const DATA_BLOCK: u64 = 3;
pub const DATA_TREE: u64 = 4;
pub const DATA_BITFIELD: u64 = 5;
pub const DATA_USER_DATA: u64 = 6;
pub const DATA_LOCAL: u64 = 7;
pub const DATA_MARK: u64 = 8;

/// Upper limit of a LOCAL key, as in JS.
pub const MAX_LOCAL_KEY: usize = 2048;

fn uints(parts: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(parts.len() * 3 + 8);
    for &p in parts {
        write_uint(&mut out, p);
    }
    out
}

// ---- corestore-level tables ----

pub fn head() -> Vec<u8> {
    uints(&[TL_HEAD])
}

pub fn core_by_dkey(discovery_key: &[u8; 32]) -> Vec<u8> {
    let mut k = uints(&[TL_CORE_BY_DKEY]);
    k.extend_from_slice(discovery_key);
    k
}

/// The CORE_BY_DKEY table as a `[start, end)` range.
pub fn core_by_dkey_range() -> (Vec<u8>, Vec<u8>) {
    (uints(&[TL_CORE_BY_DKEY]), uints(&[TL_CORE_BY_DKEY + 1]))
}

pub fn core_by_alias(namespace: &[u8; 32], name: &str) -> Vec<u8> {
    let mut k = uints(&[TL_CORE_BY_ALIAS]);
    k.extend_from_slice(namespace);
    write_string(&mut k, name);
    k
}

/// CORE_BY_ALIAS as a `[start, end)` range: one namespace, or all of them for `None`.
pub fn core_by_alias_range(namespace: Option<&[u8; 32]>) -> (Vec<u8>, Vec<u8>) {
    match namespace {
        Some(ns) => {
            let mut start = uints(&[TL_CORE_BY_ALIAS]);
            start.extend_from_slice(ns);
            let mut end = start.clone();
            end.push(INFINITY);
            (start, end)
        }
        None => (uints(&[TL_CORE_BY_ALIAS]), uints(&[TL_CORE_BY_ALIAS + 1])),
    }
}

/// Everything hypercore-storage owns (`store.clear()`): `[00, 07)`.
pub fn clear_range() -> (Vec<u8>, Vec<u8>) {
    (uints(&[TL_HEAD]), uints(&[TL_END]))
}

// ---- per-core identity (corePointer) ----

/// All records of one corePointer as a `[start, end)` range.
pub fn core_range(core_pointer: u64) -> (Vec<u8>, Vec<u8>) {
    (
        uints(&[TL_CORE, core_pointer]),
        uints(&[TL_CORE, core_pointer + 1]),
    )
}

pub fn core_auth(core_pointer: u64) -> Vec<u8> {
    uints(&[TL_CORE, core_pointer, CORE_AUTH])
}

pub fn core_sessions(core_pointer: u64) -> Vec<u8> {
    uints(&[TL_CORE, core_pointer, CORE_SESSIONS])
}

pub fn core_group(core_pointer: u64) -> Vec<u8> {
    uints(&[TL_CORE, core_pointer, CORE_GROUP])
}

// ---- per-data state (dataPointer) ----

/// All records of one dataPointer as a `[start, end)` range.
pub fn data_range(data_pointer: u64) -> (Vec<u8>, Vec<u8>) {
    (
        uints(&[TL_DATA, data_pointer]),
        uints(&[TL_DATA, data_pointer + 1]),
    )
}

pub fn data_head(data_pointer: u64) -> Vec<u8> {
    uints(&[TL_DATA, data_pointer, DATA_HEAD])
}

pub fn data_dependency(data_pointer: u64) -> Vec<u8> {
    uints(&[TL_DATA, data_pointer, DATA_DEPENDENCY])
}

pub fn data_hints(data_pointer: u64) -> Vec<u8> {
    uints(&[TL_DATA, data_pointer, DATA_HINTS])
}

pub fn block(data_pointer: u64, index: u64) -> Vec<u8> {
    indexed_record(DATA_BLOCK, data_pointer, index)
}

/// `block(data_pointer, index)` written into `out`, which is cleared first: a batch of
/// blocks reuses one buffer for all its keys (as one of tree nodes does).
pub fn block_into(out: &mut Vec<u8>, data_pointer: u64, index: u64) {
    indexed_record_into(out, DATA_BLOCK, data_pointer, index)
}

/// The longest key `block` or `tree_node` makes: four compact uints of at most 9 bytes.
pub const DATA_KEY_MAX: usize = 36;

/// A block key or, for `None`, the +infinity end of the block table (`… 03 ff`).
pub fn block_bound(data_pointer: u64, index: Option<u64>) -> Vec<u8> {
    let mut k = uints(&[TL_DATA, data_pointer, DATA_BLOCK]);
    write_uint_or_infinity(&mut k, index);
    k
}

pub fn tree_node(data_pointer: u64, index: u64) -> Vec<u8> {
    indexed_record(DATA_TREE, data_pointer, index)
}

/// `tree_node(data_pointer, index)` written into `out`, which is cleared first.
pub fn tree_node_into(out: &mut Vec<u8>, data_pointer: u64, index: u64) {
    indexed_record_into(out, DATA_TREE, data_pointer, index)
}

/// The key of record `index` in the per-data table `table` (blocks, tree nodes).
fn indexed_record(table: u64, data_pointer: u64, index: u64) -> Vec<u8> {
    let mut key = Vec::with_capacity(DATA_KEY_MAX);
    indexed_record_into(&mut key, table, data_pointer, index);
    key
}

fn indexed_record_into(out: &mut Vec<u8>, table: u64, data_pointer: u64, index: u64) {
    out.clear();
    for part in [TL_DATA, data_pointer, table, index] {
        write_uint(out, part);
    }
}

/// A tree-node key or, for `None`, the +infinity end of the tree table (`… 04 ff`).
pub fn tree_node_bound(data_pointer: u64, index: Option<u64>) -> Vec<u8> {
    let mut k = uints(&[TL_DATA, data_pointer, DATA_TREE]);
    write_uint_or_infinity(&mut k, index);
    k
}

/// A bitfield page key; hypercore only uses `kind = 0`.
pub fn bitfield(data_pointer: u64, page: u64, kind: u64) -> Vec<u8> {
    uints(&[TL_DATA, data_pointer, DATA_BITFIELD, page, kind])
}

/// A type-0 bitfield key or, for `None`, the JS range end `… 05 ff 00`.
pub fn bitfield_bound(data_pointer: u64, page: Option<u64>) -> Vec<u8> {
    let mut k = uints(&[TL_DATA, data_pointer, DATA_BITFIELD]);
    write_uint_or_infinity(&mut k, page);
    write_uint(&mut k, 0);
    k
}

pub fn user_data(data_pointer: u64, key: &str) -> Vec<u8> {
    let mut k = uints(&[TL_DATA, data_pointer, DATA_USER_DATA]);
    write_string(&mut k, key);
    k
}

/// The USER_DATA table of one dataPointer as a `[start, end)` range.
pub fn user_data_range(data_pointer: u64) -> (Vec<u8>, Vec<u8>) {
    (
        uints(&[TL_DATA, data_pointer, DATA_USER_DATA]),
        uints(&[TL_DATA, data_pointer, DATA_USER_DATA + 1]),
    )
}

/// A LOCAL key: the raw caller bytes appended without escaping. `None` if the key is
/// longer than the 2048 bytes JS allows.
pub fn local(data_pointer: u64, key: &[u8]) -> Option<Vec<u8>> {
    if key.len() > MAX_LOCAL_KEY {
        return None;
    }
    let mut k = uints(&[TL_DATA, data_pointer, DATA_LOCAL]);
    k.extend_from_slice(key);
    Some(k)
}

/// The LOCAL table of one dataPointer as a `[start, end)` range.
pub fn local_range(data_pointer: u64) -> (Vec<u8>, Vec<u8>) {
    (
        uints(&[TL_DATA, data_pointer, DATA_LOCAL]),
        uints(&[TL_DATA, data_pointer, DATA_LOCAL + 1]),
    )
}

pub fn mark(data_pointer: u64, page: u64) -> Vec<u8> {
    uints(&[TL_DATA, data_pointer, DATA_MARK, page])
}

/// A mark key or, for `None`, the +infinity end of the mark table.
pub fn mark_bound(data_pointer: u64, page: Option<u64>) -> Vec<u8> {
    let mut k = uints(&[TL_DATA, data_pointer, DATA_MARK]);
    write_uint_or_infinity(&mut k, page);
    k
}

// ---- groups ----

pub fn group_by_topic(topic: &[u8; 32]) -> Vec<u8> {
    let mut k = uints(&[TL_GROUP_BY_TOPIC]);
    k.extend_from_slice(topic);
    k
}

pub fn group_entry(group: u64, timestamp: u64, core_pointer: u64) -> Vec<u8> {
    let mut k = uints(&[TL_GROUP, group]);
    k.extend_from_slice(&timestamp.to_be_bytes());
    write_uint(&mut k, core_pointer);
    k
}

// ---- parsing keys read back from an iterator ----

fn expect_uint(cur: &mut &[u8], want: u64) -> Result<(), DecodeError> {
    if read_uint(cur)? != want {
        return Err(DecodeError("key from an unexpected table"));
    }
    Ok(())
}

/// The discovery key of a CORE_BY_DKEY key.
pub fn parse_core_by_dkey(key: &[u8]) -> Result<[u8; 32], DecodeError> {
    let mut cur = key;
    expect_uint(&mut cur, TL_CORE_BY_DKEY)?;
    read_fixed::<32>(&mut cur)
}

/// The (namespace, name) of a CORE_BY_ALIAS key.
pub fn parse_core_by_alias(key: &[u8]) -> Result<([u8; 32], String), DecodeError> {
    let mut cur = key;
    expect_uint(&mut cur, TL_CORE_BY_ALIAS)?;
    let ns = read_fixed::<32>(&mut cur)?;
    let name = read_string(&mut cur)?;
    Ok((ns, name))
}

fn data_prefix(cur: &mut &[u8], table: u64) -> Result<u64, DecodeError> {
    expect_uint(cur, TL_DATA)?;
    let ptr = read_uint(cur)?;
    expect_uint(cur, table)?;
    Ok(ptr)
}

/// (dataPointer, index) of a DATA/BLOCK key.
pub fn parse_block(key: &[u8]) -> Result<(u64, u64), DecodeError> {
    let mut cur = key;
    let ptr = data_prefix(&mut cur, DATA_BLOCK)?;
    Ok((ptr, read_uint(&mut cur)?))
}

/// (dataPointer, index) of a DATA/TREE key.
pub fn parse_tree_node(key: &[u8]) -> Result<(u64, u64), DecodeError> {
    let mut cur = key;
    let ptr = data_prefix(&mut cur, DATA_TREE)?;
    Ok((ptr, read_uint(&mut cur)?))
}

/// (dataPointer, page, type) of a DATA/BITFIELD key. A missing type reads as 0, as
/// index-encoder does.
pub fn parse_bitfield(key: &[u8]) -> Result<(u64, u64, u64), DecodeError> {
    let mut cur = key;
    let ptr = data_prefix(&mut cur, DATA_BITFIELD)?;
    let page = read_uint(&mut cur)?;
    let kind = if cur.is_empty() {
        0
    } else {
        read_uint(&mut cur)?
    };
    Ok((ptr, page, kind))
}

/// (dataPointer, key) of a DATA/USER_DATA key.
pub fn parse_user_data(key: &[u8]) -> Result<(u64, String), DecodeError> {
    let mut cur = key;
    let ptr = data_prefix(&mut cur, DATA_USER_DATA)?;
    Ok((ptr, read_string(&mut cur)?))
}

/// (dataPointer, page) of a DATA/MARK key.
pub fn parse_mark(key: &[u8]) -> Result<(u64, u64), DecodeError> {
    let mut cur = key;
    let ptr = data_prefix(&mut cur, DATA_MARK)?;
    Ok((ptr, read_uint(&mut cur)?))
}

/// (dataPointer, raw key) of a DATA/LOCAL key.
pub fn parse_local(key: &[u8]) -> Result<(u64, Vec<u8>), DecodeError> {
    let mut cur = key;
    let ptr = data_prefix(&mut cur, DATA_LOCAL)?;
    Ok((ptr, cur.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn golden_keys() {
        assert_eq!(head(), [0x00]);
        let dkey = [0xab; 32];
        let mut want = vec![0x01];
        want.extend_from_slice(&dkey);
        assert_eq!(core_by_dkey(&dkey), want);
        assert_eq!(parse_core_by_dkey(&want).unwrap(), dkey);

        // alias key = 02 00…00 00 'alpha' 00 01 (storage-format.md §2.2)
        let mut want = vec![0x02];
        want.extend_from_slice(&[0u8; 32]);
        want.extend_from_slice(b"\x00alpha\x00\x01");
        assert_eq!(core_by_alias(&[0; 32], "alpha"), want);
        assert_eq!(
            parse_core_by_alias(&want).unwrap(),
            ([0u8; 32], "alpha".to_string())
        );

        // bitfield key = 04 00 05 00 00
        assert_eq!(bitfield(0, 0, 0), [0x04, 0x00, 0x05, 0x00, 0x00]);
        assert_eq!(bitfield_bound(0, None), [0x04, 0x00, 0x05, 0xff, 0x00]);
        assert_eq!(
            parse_bitfield(&[0x04, 0x00, 0x05, 0x03, 0x00]).unwrap(),
            (0, 3, 0)
        );

        assert_eq!(core_auth(0), [0x03, 0x00, 0x00]);
        assert_eq!(core_sessions(2), [0x03, 0x02, 0x01]);
        assert_eq!(core_group(300), [0x03, 0xfc, 0x01, 0x2c, 0x02]);
        assert_eq!(data_head(1), [0x04, 0x01, 0x00]);
        assert_eq!(data_dependency(3), [0x04, 0x03, 0x01]);
        assert_eq!(data_hints(0), [0x04, 0x00, 0x02]);
        assert_eq!(block(0, 2), [0x04, 0x00, 0x03, 0x02]);
        assert_eq!(block_bound(0, None), [0x04, 0x00, 0x03, 0xff]);
        assert_eq!(
            block(7, 70000),
            [0x04, 0x07, 0x03, 0xfd, 0x00, 0x01, 0x11, 0x70]
        );
        assert_eq!(parse_block(&block(7, 70000)).unwrap(), (7, 70000));
        assert_eq!(tree_node(0, 4), [0x04, 0x00, 0x04, 0x04]);
        assert_eq!(tree_node_bound(0, Some(6)), [0x04, 0x00, 0x04, 0x06]);
        assert_eq!(
            parse_tree_node(&tree_node(9, 1 << 40)).unwrap(),
            (9, 1 << 40)
        );
        assert_eq!(user_data(0, "hello"), b"\x04\x00\x06\x00hello\x00\x01");
        assert_eq!(
            parse_user_data(b"\x04\x00\x06\x00hello\x00\x01").unwrap(),
            (0, "hello".to_string())
        );
        assert_eq!(user_data_range(0), (vec![4, 0, 6], vec![4, 0, 7]));
        assert_eq!(
            local(1, b"\x00\x01").unwrap(),
            [0x04, 0x01, 0x07, 0x00, 0x01]
        );
        assert!(local(1, &[0u8; 2049]).is_none());
        assert_eq!(mark(0, 1), [0x04, 0x00, 0x08, 0x01]);
        assert_eq!(core_range(1), (vec![3, 1], vec![3, 2]));
        assert_eq!(data_range(0xfb), (vec![4, 0xfb], vec![4, 0xfc, 0x00, 0xfc]));
        assert_eq!(clear_range(), (vec![0], vec![7]));
        assert_eq!(core_by_dkey_range(), (vec![1], vec![2]));
        let (s, e) = core_by_alias_range(Some(&[0; 32]));
        assert_eq!(s.len(), 33);
        assert_eq!(e.last(), Some(&0xff));
        let mut g = vec![0x06, 0x02];
        g.extend_from_slice(&1795560629136u64.to_be_bytes());
        g.push(0x05);
        assert_eq!(group_entry(2, 1795560629136, 5), g);
        let mut t = vec![0x05];
        t.extend_from_slice(&[1; 32]);
        assert_eq!(group_by_topic(&[1; 32]), t);
    }

    #[test]
    fn ranges_contain_their_keys() {
        let (s, e) = data_range(3);
        for k in [
            data_head(3),
            block(3, u64::MAX),
            tree_node(3, 0),
            bitfield(3, 1 << 33, 0),
            user_data(3, "\u{ffff}"),
            mark(3, 1),
        ] {
            assert!(s <= k && k < e);
        }
        assert!(block(3, u64::MAX) < block_bound(3, None));
        assert!(bitfield(3, u64::MAX, 5) < bitfield_bound(3, None));
        assert!(tree_node(3, u64::MAX) < tree_node_bound(3, None));
        let (s, e) = core_by_alias_range(Some(&[7; 32]));
        let k = core_by_alias(&[7; 32], "\u{10ffff}");
        assert!(s <= k && k < e);
    }

    #[test]
    fn parsers_refuse_other_tables_and_short_keys() {
        assert!(parse_block(&tree_node(0, 1)).is_err());
        assert!(parse_block(&[0x04, 0x00]).is_err());
        assert!(parse_core_by_dkey(&[0x01, 0x02]).is_err());
        assert!(parse_core_by_alias(&core_by_dkey(&[0; 32])).is_err());
        assert!(parse_user_data(&[0x04, 0x00, 0x06, 0x00, b'a']).is_err());
        assert!(parse_bitfield(&[]).is_err());
        assert_eq!(
            parse_local(&local(2, b"xy").unwrap()).unwrap(),
            (2, b"xy".to_vec())
        );
        assert_eq!(parse_mark(&mark(2, 9)).unwrap(), (2, 9));
    }
}
