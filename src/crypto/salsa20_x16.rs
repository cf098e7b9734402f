//! XSalsa20's keystream sixteen 64-byte blocks at once with AVX-512: lane k of every vector
//! holds block k's state word, so one 1 KiB stretch of keystream (a 1 KiB hypercore block
//! after its header) is one pass of twenty rounds, where the salsa20 crate computes its
//! sixteen blocks one after another without SIMD. docs/DECISIONS.md §49.

use salsa20::cipher::generic_array::GenericArray;
use salsa20::cipher::{KeyIvInit, StreamCipher, StreamCipherSeek};
use salsa20::{hsalsa, Salsa20, XSalsa20};
use std::arch::x86_64::*;

/// Keystream bytes of one pass: sixteen blocks of 64.
const STRIDE: usize = 16 * 64;

/// "expand 32-byte k"
const SIGMA: [u32; 4] = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574];

/// Whether this CPU runs the sixteen-lane kernel.
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
}

/// XORs `data` with the XSalsa20 keystream of `key` and `nonce` from its start: the
/// salsa20 crate's `XSalsa20::apply_keystream`, with whole 1 KiB stretches computed
/// sixteen blocks at a time when the CPU has AVX-512F.
pub fn apply_xsalsa20(key: &[u8; 32], nonce: &[u8; 24], data: &mut [u8]) {
    let whole = data.len() / STRIDE * STRIDE;
    if whole == 0 || !available() {
        XSalsa20::new(key.into(), nonce.into()).apply_keystream(data);
        return;
    }
    // XSalsa20 is Salsa20 under a subkey that HSalsa20 derives from the nonce's first 16
    // bytes, with the last 8 as the nonce
    let subkey =
        hsalsa::<salsa20::cipher::consts::U10>(key.into(), GenericArray::from_slice(&nonce[..16]));
    let mut words = [0u32; 8];
    for (w, chunk) in words.iter_mut().zip(subkey.chunks_exact(4)) {
        *w = u32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]]);
    }
    let n = [
        u32::from_le_bytes([nonce[16], nonce[17], nonce[18], nonce[19]]),
        u32::from_le_bytes([nonce[20], nonce[21], nonce[22], nonce[23]]),
    ];
    let (head, tail) = data.split_at_mut(whole);
    for (pass, stretch) in head.chunks_exact_mut(STRIDE).enumerate() {
        // SAFETY: available() saw AVX-512F on this CPU
        unsafe { xor_stretch(&words, n, 16 * pass as u64, stretch) };
    }
    if !tail.is_empty() {
        let mut rest = Salsa20::new(&subkey, GenericArray::from_slice(&nonce[16..]));
        rest.seek(whole as u64);
        rest.apply_keystream(tail);
    }
}

/// XORs the 1 KiB `stretch` with Salsa20 blocks `counter .. counter + 16`.
///
/// # Safety
/// The CPU must have AVX-512F.
#[target_feature(enable = "avx512f")]
unsafe fn xor_stretch(key: &[u32; 8], nonce: [u32; 2], counter: u64, stretch: &mut [u8]) {
    let splat = |w: u32| _mm512_set1_epi32(w as i32);
    // the block counter of each lane, low and high words (a carry out of the low word
    // reaches the high one)
    let lanes = _mm512_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    let low = _mm512_add_epi32(splat(counter as u32), lanes);
    let carried = _mm512_cmplt_epu32_mask(low, splat(counter as u32));
    let high = _mm512_mask_add_epi32(
        splat((counter >> 32) as u32),
        carried,
        splat((counter >> 32) as u32),
        splat(1),
    );
    let input: [__m512i; 16] = [
        splat(SIGMA[0]),
        splat(key[0]),
        splat(key[1]),
        splat(key[2]),
        splat(key[3]),
        splat(SIGMA[1]),
        splat(nonce[0]),
        splat(nonce[1]),
        low,
        high,
        splat(SIGMA[2]),
        splat(key[4]),
        splat(key[5]),
        splat(key[6]),
        splat(key[7]),
        splat(SIGMA[3]),
    ];
    let mut x = input;
    for _ in 0..10 {
        // columns, then rows
        quarter(&mut x, 0, 4, 8, 12);
        quarter(&mut x, 5, 9, 13, 1);
        quarter(&mut x, 10, 14, 2, 6);
        quarter(&mut x, 15, 3, 7, 11);
        quarter(&mut x, 0, 1, 2, 3);
        quarter(&mut x, 5, 6, 7, 4);
        quarter(&mut x, 10, 11, 8, 9);
        quarter(&mut x, 15, 12, 13, 14);
    }
    // word w of block k is lane k of vector w; the keystream wants block k's words in a row
    let mut words = [[0u32; 16]; 16];
    for (w, row) in words.iter_mut().enumerate() {
        let v = _mm512_add_epi32(x[w], input[w]);
        // SAFETY: a row is 64 bytes; an unaligned store
        unsafe { _mm512_storeu_si512(row.as_mut_ptr().cast(), v) };
    }
    for (block, bytes) in stretch.chunks_exact_mut(64).enumerate() {
        for (w, out) in bytes.chunks_exact_mut(4).enumerate() {
            let k = words[w][block].to_le_bytes();
            for (o, k) in out.iter_mut().zip(k) {
                *o ^= k;
            }
        }
    }
}

#[target_feature(enable = "avx512f")]
#[inline]
fn quarter(x: &mut [__m512i; 16], a: usize, b: usize, c: usize, d: usize) {
    x[b] = _mm512_xor_si512(x[b], _mm512_rol_epi32::<7>(_mm512_add_epi32(x[a], x[d])));
    x[c] = _mm512_xor_si512(x[c], _mm512_rol_epi32::<9>(_mm512_add_epi32(x[b], x[a])));
    x[d] = _mm512_xor_si512(x[d], _mm512_rol_epi32::<13>(_mm512_add_epi32(x[c], x[b])));
    x[a] = _mm512_xor_si512(x[a], _mm512_rol_epi32::<18>(_mm512_add_epi32(x[d], x[c])));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equals_the_salsa20_crate() {
        let mut seed: u64 = 0x1234_5678_9abc_def1;
        let mut next = || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed as u8
        };
        for len in [
            0,
            1,
            63,
            64,
            1023,
            1024,
            1025,
            2048,
            2100,
            5000,
            16 * 1024 + 17,
        ] {
            let key: [u8; 32] = std::array::from_fn(|_| next());
            let nonce: [u8; 24] = std::array::from_fn(|_| next());
            let data: Vec<u8> = (0..len).map(|_| next()).collect();
            let mut ours = data.clone();
            apply_xsalsa20(&key, &nonce, &mut ours);
            let mut theirs = data.clone();
            XSalsa20::new((&key).into(), (&nonce).into()).apply_keystream(&mut theirs);
            assert_eq!(ours, theirs, "{len} bytes");
        }
    }

    #[test]
    fn the_block_counter_carries_into_its_high_word() {
        if !available() {
            return;
        }
        let key = [7u32; 8];
        let nonce = [1, 2];
        for counter in [u32::MAX as u64 - 5, u32::MAX as u64 - 15, 1 << 40] {
            let mut ours = vec![0u8; STRIDE];
            // SAFETY: available() saw AVX-512F
            unsafe { xor_stretch(&key, nonce, counter, &mut ours) };
            let key_bytes: Vec<u8> = key.iter().flat_map(|w| w.to_le_bytes()).collect();
            let nonce_bytes: Vec<u8> = nonce.iter().flat_map(|w| w.to_le_bytes()).collect();
            let mut theirs = vec![0u8; STRIDE];
            let mut c = Salsa20::new(
                GenericArray::from_slice(&key_bytes),
                GenericArray::from_slice(&nonce_bytes),
            );
            c.seek(counter * 64);
            c.apply_keystream(&mut theirs);
            assert_eq!(ours, theirs, "counter {counter}");
        }
    }
}
