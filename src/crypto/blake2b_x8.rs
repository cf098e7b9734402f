//! BLAKE2b-256 (RFC 7693, unkeyed, 32-byte digest) of eight inputs at once with AVX-512:
//! lane k of every vector holds input k's state word, so one instruction advances all
//! eight hashes, and a 64-bit rotation is one instruction where AVX2 needs a shuffle or
//! two shifts. Hypercore's leaf and parent hashes come many at a time; blake2b_simd, which
//! hashes the rest, goes four at a time with AVX2. docs/DECISIONS.md §43.

use std::arch::x86_64::*;

const IV: [u64; 8] = [
    0x6a09_e667_f3bc_c908,
    0xbb67_ae85_84ca_a73b,
    0x3c6e_f372_fe94_f82b,
    0xa54f_f53a_5f1d_36f1,
    0x510e_527f_ade6_82d1,
    0x9b05_688c_2b3e_6c1f,
    0x1f83_d9ab_fb41_bd6b,
    0x5be0_cd19_137e_2179,
];

/// The message schedule of RFC 7693: round r uses row r mod 10.
const SIGMA: [[usize; 16]; 10] = [
    [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15],
    [14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3],
    [11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4],
    [7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8],
    [9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13],
    [2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9],
    [12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11],
    [13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10],
    [6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5],
    [10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0],
];

/// BLAKE2b's rounds per compression.
const ROUNDS: usize = 12;

const BLOCK: usize = 128;

/// The 128-byte blocks BLAKE2b compresses for an input of `len` bytes (an empty input is
/// one block of zeros).
pub fn blocks(len: usize) -> usize {
    len.div_ceil(BLOCK).max(1)
}

/// Whether this CPU runs the eight-way kernel.
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// Unkeyed BLAKE2b-256 of eight inputs that span the same number of 128-byte blocks.
///
/// # Safety
/// The CPU must have AVX-512F ([`available`]).
#[target_feature(enable = "avx512f")]
pub unsafe fn hash8(inputs: [&[u8]; 8]) -> [[u8; 32]; 8] {
    let count = blocks(inputs[0].len());
    debug_assert!(inputs.iter().all(|i| blocks(i.len()) == count));
    let mut h = [_mm512_setzero_si512(); 8];
    for (i, word) in h.iter_mut().enumerate() {
        *word = _mm512_set1_epi64(IV[i] as i64);
    }
    // digest length 32, no key, fanout and depth 1
    h[0] = _mm512_set1_epi64((IV[0] ^ 0x0101_0020) as i64);
    let mut tail = [[0u8; BLOCK]; 8];
    for b in 0..count {
        let last = b + 1 == count;
        let mut counts = [0u64; 8];
        // where each input's block starts: in the input, or for the last, zero-padded in
        // `tail`
        let mut rows = [std::ptr::null::<u8>(); 8];
        for (k, input) in inputs.iter().enumerate() {
            let start = b * BLOCK;
            if last {
                let rest = &input[start.min(input.len())..];
                tail[k] = [0; BLOCK];
                tail[k][..rest.len()].copy_from_slice(rest);
                counts[k] = input.len() as u64;
                rows[k] = tail[k].as_ptr();
            } else {
                counts[k] = (start + BLOCK) as u64;
                let Some(block) = input.get(start..start + BLOCK) else {
                    unreachable!("every block but the last is whole")
                };
                rows[k] = block.as_ptr();
            }
        }
        // SAFETY: each row points at BLOCK bytes of its input or of `tail`
        let m = transpose(&rows);
        let t = _mm512_loadu_si512(counts.as_ptr() as *const _);
        compress(&mut h, &m, t, last);
    }
    let mut out = [[0u8; 32]; 8];
    // the digest is the first four state words of each lane
    let mut lanes = [[0u64; 8]; 4];
    for (i, lane) in lanes.iter_mut().enumerate() {
        _mm512_storeu_si512(lane.as_mut_ptr() as *mut _, h[i]);
    }
    for (k, o) in out.iter_mut().enumerate() {
        for (i, lane) in lanes.iter().enumerate() {
            o[i * 8..i * 8 + 8].copy_from_slice(&lane[k].to_le_bytes());
        }
    }
    out
}

/// The message words of eight 128-byte blocks, lane k of vector j holding word j of block
/// k: each half of the blocks (eight words) is an 8x8 transpose of 64-bit words in
/// registers, three rounds of shuffles. (Gathered through memory instead, a word at a
/// time, hashing 1000 1 KiB leaves took 0.26 ms rather than 0.21.)
///
/// # Safety
/// Each row must point at 128 readable bytes.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn transpose(rows: &[*const u8; 8]) -> [__m512i; 16] {
    let mut m = [_mm512_setzero_si512(); 16];
    for half in 0..2 {
        let mut r = [_mm512_setzero_si512(); 8];
        for (k, row) in r.iter_mut().enumerate() {
            *row = _mm512_loadu_si512(rows[k].add(64 * half) as *const _);
        }
        // pairs of rows: lo holds their even words, hi their odd ones, a 128-bit lane per
        // word pair (lane l of lo: word 2l of both rows)
        let lo = |a: usize| _mm512_unpacklo_epi64(r[a], r[a + 1]);
        let hi = |a: usize| _mm512_unpackhi_epi64(r[a], r[a + 1]);
        let (l01, h01, l23, h23) = (lo(0), hi(0), lo(2), hi(2));
        let (l45, h45, l67, h67) = (lo(4), hi(4), lo(6), hi(6));
        // lanes 0 and 2 (0x88) or 1 and 3 (0xdd) of each: words w and w + 4 of four rows
        let u = [
            _mm512_shuffle_i64x2::<0x88>(l01, l23),
            _mm512_shuffle_i64x2::<0xdd>(l01, l23),
            _mm512_shuffle_i64x2::<0x88>(h01, h23),
            _mm512_shuffle_i64x2::<0xdd>(h01, h23),
        ];
        let v = [
            _mm512_shuffle_i64x2::<0x88>(l45, l67),
            _mm512_shuffle_i64x2::<0xdd>(l45, l67),
            _mm512_shuffle_i64x2::<0x88>(h45, h67),
            _mm512_shuffle_i64x2::<0xdd>(h45, h67),
        ];
        // u[i] and v[i] hold words (0, 4), (2, 6), (1, 5), (3, 7) for i = 0..4
        for (i, word) in [0, 2, 1, 3].into_iter().enumerate() {
            m[8 * half + word] = _mm512_shuffle_i64x2::<0x88>(u[i], v[i]);
            m[8 * half + word + 4] = _mm512_shuffle_i64x2::<0xdd>(u[i], v[i]);
        }
    }
    m
}

// Same target feature as `hash8`, so that both inline into it with the intrinsics.
#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn g(v: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize, x: __m512i, y: __m512i) {
    v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), x);
    v[d] = _mm512_ror_epi64::<32>(_mm512_xor_si512(v[d], v[a]));
    v[c] = _mm512_add_epi64(v[c], v[d]);
    v[b] = _mm512_ror_epi64::<24>(_mm512_xor_si512(v[b], v[c]));
    v[a] = _mm512_add_epi64(_mm512_add_epi64(v[a], v[b]), y);
    v[d] = _mm512_ror_epi64::<16>(_mm512_xor_si512(v[d], v[a]));
    v[c] = _mm512_add_epi64(v[c], v[d]);
    v[b] = _mm512_ror_epi64::<63>(_mm512_xor_si512(v[b], v[c]));
}

#[target_feature(enable = "avx512f")]
#[inline]
unsafe fn compress(h: &mut [__m512i; 8], m: &[__m512i; 16], t: __m512i, last: bool) {
    let mut v = [_mm512_setzero_si512(); 16];
    v[..8].copy_from_slice(h);
    for i in 0..8 {
        v[8 + i] = _mm512_set1_epi64(IV[i] as i64);
    }
    // counts stay below 2^64: the high counter word stays IV[5]
    v[12] = _mm512_xor_si512(v[12], t);
    if last {
        v[14] = _mm512_xor_si512(v[14], _mm512_set1_epi64(-1));
    }
    for round in 0..ROUNDS {
        let s = &SIGMA[round % SIGMA.len()];
        g(&mut v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
        g(&mut v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
        g(&mut v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
        g(&mut v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
        g(&mut v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
        g(&mut v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
        g(&mut v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
        g(&mut v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for i in 0..8 {
        h[i] = _mm512_xor_si512(h[i], _mm512_xor_si512(v[i], v[i + 8]));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::hash;

    /// Every length where the block count or the padding changes, eight inputs at once,
    /// against blake2b_simd one by one.
    #[test]
    fn eight_at_once_equal_one_by_one() {
        if !available() {
            eprintln!("no AVX-512F on this CPU: the eight-way kernel is not used here");
            return;
        }
        for len in [0, 1, 9, 73, 127, 128, 129, 255, 256, 257, 1033, 4096, 5000] {
            let inputs: Vec<Vec<u8>> = (0..8)
                .map(|k| (0..len).map(|j| (j * 7 + k * 13 + len) as u8).collect())
                .collect();
            let refs: [&[u8]; 8] = std::array::from_fn(|k| inputs[k].as_slice());
            // SAFETY: available() above
            let got = unsafe { hash8(refs) };
            for (k, input) in inputs.iter().enumerate() {
                assert_eq!(got[k], hash(&[input]), "length {len}, lane {k}");
            }
        }
    }

    /// Lanes of one call may differ in length within the same block count.
    #[test]
    fn lanes_of_different_lengths() {
        if !available() {
            return;
        }
        let inputs: Vec<Vec<u8>> = (0..8).map(|k| vec![k as u8; 129 + 15 * k]).collect();
        let refs: [&[u8]; 8] = std::array::from_fn(|k| inputs[k].as_slice());
        // SAFETY: available() above
        let got = unsafe { hash8(refs) };
        for (k, input) in inputs.iter().enumerate() {
            assert_eq!(got[k], hash(&[input]), "lane {k}");
        }
    }
}
