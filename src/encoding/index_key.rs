//! index-encoder key primitives (the JS package `index-encoder`): big-endian and
//! order-preserving, so that RocksDB's bytewise comparator sorts keys the way the values
//! sort. hypercore-storage builds every key of its tables from these.
//!
//! Writers append to a `Vec<u8>`. Readers take a cursor (`&mut &[u8]`), advance it past
//! what they consumed and return a `DecodeError` on short or malformed input; they never
//! panic.

use super::compact::DecodeError;

/// The byte that stands for +infinity. It only ever appears as an exclusive range end
/// (for example the end of `deleteRange(start, Infinity)`), never in a stored key.
pub const INFINITY: u8 = 0xff;

/// `UINT`: n <= 0xfb as one byte; <= 0xffff as `fc` + u16BE; <= 0xffffffff as `fd` +
/// u32BE; otherwise `fe` + u64BE.
pub fn write_uint(out: &mut Vec<u8>, n: u64) {
    if n <= 0xfb {
        out.push(n as u8);
    } else if n <= 0xffff {
        out.push(0xfc);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else if n <= 0xffff_ffff {
        out.push(0xfd);
        out.extend_from_slice(&(n as u32).to_be_bytes());
    } else {
        out.push(0xfe);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// `UINT` for an optional bound: `None` is +infinity (the single byte `ff`).
pub fn write_uint_or_infinity(out: &mut Vec<u8>, n: Option<u64>) {
    match n {
        Some(n) => write_uint(out, n),
        None => out.push(INFINITY),
    }
}

/// `BUFFER`: `00`, the bytes with every `00` written as `00 02`, then the terminator `00 01`.
pub fn write_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    out.reserve(bytes.len() + 3);
    out.push(0x00);
    for &b in bytes {
        out.push(b);
        if b == 0x00 {
            out.push(0x02);
        }
    }
    out.push(0x00);
    out.push(0x01);
}

/// `STRING`: the UTF-8 bytes written as `BUFFER`.
pub fn write_string(out: &mut Vec<u8>, s: &str) {
    write_bytes(out, s.as_bytes());
}

fn take<'a>(input: &mut &'a [u8], n: usize) -> Result<&'a [u8], DecodeError> {
    if input.len() < n {
        return Err(DecodeError("key out of bounds"));
    }
    let (head, tail) = input.split_at(n);
    *input = tail;
    Ok(head)
}

/// Reads a `UINT`. The infinity marker `ff` is refused: stored keys never contain it.
pub fn read_uint(input: &mut &[u8]) -> Result<u64, DecodeError> {
    let first = take(input, 1)?[0];
    match first {
        0..=0xfb => Ok(first as u64),
        0xfc => {
            let b = take(input, 2)?;
            Ok(u16::from_be_bytes([b[0], b[1]]) as u64)
        }
        0xfd => {
            let b = take(input, 4)?;
            Ok(u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as u64)
        }
        0xfe => {
            let b = take(input, 8)?;
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            Ok(u64::from_be_bytes(a))
        }
        _ => Err(DecodeError("infinity marker in key")),
    }
}

/// Reads a `BUFFER` (un-escaping `00 02`).
pub fn read_bytes(input: &mut &[u8]) -> Result<Vec<u8>, DecodeError> {
    if take(input, 1)?[0] != 0x00 {
        return Err(DecodeError("invalid start of key string"));
    }
    let buf = *input;
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let b = *buf
            .get(i)
            .ok_or(DecodeError("no terminator in key string"))?;
        if b != 0x00 {
            out.push(b);
            i += 1;
            continue;
        }
        match buf.get(i + 1) {
            Some(0x01) => {
                *input = &buf[i + 2..];
                return Ok(out);
            }
            Some(0x02) => {
                out.push(0x00);
                i += 2;
            }
            _ => return Err(DecodeError("unknown value in key string terminator")),
        }
    }
}

/// Reads a `STRING`. Invalid UTF-8 is replaced with U+FFFD, as the JS decoder does.
pub fn read_string(input: &mut &[u8]) -> Result<String, DecodeError> {
    let bytes = read_bytes(input)?;
    Ok(match String::from_utf8(bytes) {
        Ok(s) => s,
        Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
    })
}

/// Reads `N` raw bytes (a `fixed32` inside a key, for example).
pub fn read_fixed<const N: usize>(input: &mut &[u8]) -> Result<[u8; N], DecodeError> {
    let b = take(input, N)?;
    let mut out = [0u8; N];
    out.copy_from_slice(b);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn uint(n: u64) -> Vec<u8> {
        let mut v = Vec::new();
        write_uint(&mut v, n);
        v
    }

    #[test]
    fn uint_golden_bytes() {
        assert_eq!(uint(0), [0x00]);
        assert_eq!(uint(5), [0x05]);
        assert_eq!(uint(0xfb), [0xfb]);
        assert_eq!(uint(0xfc), [0xfc, 0x00, 0xfc]);
        assert_eq!(uint(0x1234), [0xfc, 0x12, 0x34]);
        assert_eq!(uint(0x10000), [0xfd, 0x00, 0x01, 0x00, 0x00]);
        assert_eq!(uint(0xffff_ffff), [0xfd, 0xff, 0xff, 0xff, 0xff]);
        assert_eq!(uint(0x1_0000_0000), [0xfe, 0, 0, 0, 1, 0, 0, 0, 0]);
        let mut v = Vec::new();
        write_uint_or_infinity(&mut v, None);
        assert_eq!(v, [0xff]);
    }

    #[test]
    fn uint_round_trip_and_order() {
        let values = [
            0u64,
            1,
            0xfb,
            0xfc,
            0xfd,
            0xffff,
            0x10000,
            0xffff_ffff,
            0x1_0000_0000,
            (1 << 53) - 1,
            u64::MAX,
        ];
        let mut prev: Option<Vec<u8>> = None;
        for &n in &values {
            let enc = uint(n);
            let mut cur = enc.as_slice();
            assert_eq!(read_uint(&mut cur).unwrap(), n);
            assert!(cur.is_empty());
            if let Some(p) = prev {
                assert!(p < enc, "order broken at {n}");
            }
            prev = Some(enc);
        }
        // everything sorts below infinity
        assert!(uint(u64::MAX) < vec![0xff]);
    }

    #[test]
    fn string_golden_bytes() {
        let mut v = Vec::new();
        write_string(&mut v, "alpha");
        assert_eq!(v, b"\x00alpha\x00\x01");
        let mut v = Vec::new();
        write_bytes(&mut v, b"a\x00b");
        assert_eq!(v, b"\x00a\x00\x02b\x00\x01");
        let mut v = Vec::new();
        write_string(&mut v, "");
        assert_eq!(v, [0x00, 0x00, 0x01]);
    }

    #[test]
    fn string_round_trip_and_order() {
        let strings = [
            "",
            "\u{0}",
            "\u{0}\u{0}",
            "a",
            "a\u{0}",
            "a\u{1}",
            "ab",
            "b",
            "é",
        ];
        let mut prev: Option<Vec<u8>> = None;
        for s in strings {
            let mut enc = Vec::new();
            write_string(&mut enc, s);
            enc.push(0x07); // trailing data must be left in the cursor
            let mut cur = enc.as_slice();
            assert_eq!(read_string(&mut cur).unwrap(), s);
            assert_eq!(cur, [0x07]);
            enc.pop();
            if let Some(p) = prev {
                assert!(p < enc, "order broken at {s:?}");
            }
            prev = Some(enc);
        }
    }

    #[test]
    fn malformed_keys_are_errors() {
        assert!(read_uint(&mut &[][..]).is_err());
        assert!(read_uint(&mut &[0xfc, 0x01][..]).is_err());
        assert!(read_uint(&mut &[0xfd, 0, 0, 0][..]).is_err());
        assert!(read_uint(&mut &[0xfe, 0, 0, 0, 0, 0, 0, 0][..]).is_err());
        assert!(read_uint(&mut &[0xff][..]).is_err());
        assert!(read_string(&mut &[][..]).is_err());
        assert!(read_string(&mut &[0x01, 0x00, 0x01][..]).is_err());
        assert!(read_string(&mut &b"\x00abc"[..]).is_err());
        assert!(read_string(&mut &b"\x00abc\x00"[..]).is_err());
        assert!(read_string(&mut &b"\x00abc\x00\x03"[..]).is_err());
        assert!(read_fixed::<32>(&mut &[0u8; 31][..]).is_err());
        // invalid UTF-8 is tolerated
        assert_eq!(
            read_string(&mut &b"\x00\xff\x00\x01"[..]).unwrap(),
            "\u{fffd}"
        );
    }
}
