//! z-base-32 as the `z32` npm package does it, and hypercore-id-encoding on top of it.

const ALPHABET: &[u8; 32] = b"ybndrfg8ejkmcpqxot1uwisza345h769";

fn quintet_value(c: u8) -> Option<u8> {
    ALPHABET.iter().position(|&a| a == c).map(|p| p as u8)
}

/// z32 `encode`: 5 bits per character, most significant first, the last character padded
/// with zero bits; no padding characters.
pub fn z32_encode(bytes: &[u8]) -> String {
    let bits = bytes.len() * 8;
    let mut out = String::with_capacity(bits.div_ceil(5));
    let mut p = 0;
    while p < bits {
        let i = p / 8;
        let j = p % 8;
        let v = if j <= 3 {
            (bytes[i] >> (3 - j)) & 0x1f
        } else {
            let of = j - 3;
            let high = (bytes[i] << of) & 0x1f;
            let low = bytes.get(i + 1).map_or(0, |b| b >> (8 - of));
            high | low
        };
        out.push(ALPHABET[v as usize] as char);
        p += 5;
    }
    out
}

/// z32 `decode`: None for any character outside the alphabet (the JS throws). Like the JS,
/// a trailing partial group yields `floor(5 * len / 8)`-ish bytes exactly as z32 does
/// (1 char -> 1 byte, 3 -> 2, 5 -> 3, 6 -> 4, ...), with missing bits read as zero, and
/// leftover bits are not checked.
pub fn z32_decode(s: &str) -> Option<Vec<u8>> {
    let mut q = Vec::with_capacity(s.len());
    for c in s.bytes() {
        q.push(quintet_value(c)?);
    }
    let n = q.len();
    let at = |i: usize| -> u8 { q.get(i).copied().unwrap_or(0) };
    let mut out = Vec::with_capacity((n * 5).div_ceil(8));
    let mut ps = 0;
    while ps + 8 <= n {
        push_group(&mut out, |k| at(ps + k), 5);
        ps += 8;
    }
    let r = n - ps;
    let produced = match r {
        0 => 0,
        1 | 2 => 1,
        3 | 4 => 2,
        5 => 3,
        6 | 7 => 4,
        _ => 0,
    };
    if produced > 0 {
        push_group(&mut out, |k| at(ps + k), produced);
    }
    Some(out)
}

/// Writes the first `count` bytes that the 8 quintets `q(0..8)` encode.
fn push_group(out: &mut Vec<u8>, q: impl Fn(usize) -> u8, count: usize) {
    let (a, b, c, d, e, f, g, h) = (q(0), q(1), q(2), q(3), q(4), q(5), q(6), q(7));
    let bytes = [
        (a << 3) | (b >> 2),
        ((b & 0b11) << 6) | (c << 1) | (d >> 4),
        ((d & 0b1111) << 4) | (e >> 1),
        ((e & 0b1) << 7) | (f << 2) | (g >> 3),
        ((g & 0b111) << 5) | h,
    ];
    out.extend_from_slice(&bytes[..count]);
}

/// hypercore-id-encoding `encode`: the z32 id of a 32-byte key (`core.id`).
pub fn id_encode(key: &[u8; 32]) -> String {
    z32_encode(key)
}

/// hypercore-id-encoding `decode` for strings: a 52-character z32 id or 64 hex digits,
/// optionally as `pear://<id>/...`. None for anything else.
pub fn id_decode(id: &str) -> Option<[u8; 32]> {
    let id = match id.strip_prefix("pear://") {
        Some(rest) => rest.split('/').next().unwrap_or(""),
        None => id,
    };
    match id.len() {
        52 => z32_decode(id).and_then(|v| <[u8; 32]>::try_from(v.as_slice()).ok()),
        64 => {
            let mut out = [0u8; 32];
            for (i, pair) in id.as_bytes().chunks(2).enumerate() {
                let hi = (pair[0] as char).to_digit(16)?;
                let lo = (pair[1] as char).to_digit(16)?;
                out[i] = (hi * 16 + lo) as u8;
            }
            Some(out)
        }
        _ => None,
    }
}
