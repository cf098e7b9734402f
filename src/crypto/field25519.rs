//! Arithmetic modulo p = 2^255 - 19 in five 51-bit limbs, for the parts of the eight-lane
//! base-point multiplication that run one element at a time: building its table, adding
//! up the lanes and the inversion that compresses the result. Every operation runs the
//! same instructions whatever the values (no branch or index depends on them), because
//! the values are secret-key material.

/// One limb's 51 bits.
pub const MASK: u64 = (1 << 51) - 1;

/// A field element. Limbs stay below 2^52 between operations, which every operation
/// here accepts and returns; the value is reduced mod p only by [`Fe::to_bytes`].
#[derive(Clone, Copy, Debug)]
pub struct Fe(pub [u64; 5]);

impl Fe {
    pub const ZERO: Fe = Fe([0; 5]);
    pub const ONE: Fe = Fe([1, 0, 0, 0, 0]);
    /// 2·d, d = -121665/121666 the curve constant of edwards25519.
    pub const D2: Fe = Fe([
        0x69b9426b2f159,
        0x35050762add7a,
        0x3cf44c0038052,
        0x6738cc7407977,
        0x2406d9dc56dff,
    ]);
    /// The affine coordinates of the Ed25519 base point B (RFC 8032).
    pub const BASE_X: Fe = Fe([
        0x62d608f25d51a,
        0x412a4b4f6592a,
        0x75b7171a4b31d,
        0x1ff60527118fe,
        0x216936d3cd6e5,
    ]);
    pub const BASE_Y: Fe = Fe([
        0x6666666666658,
        0x4cccccccccccc,
        0x1999999999999,
        0x3333333333333,
        0x6666666666666,
    ]);

    pub fn add(&self, b: &Fe) -> Fe {
        let a = &self.0;
        let b = &b.0;
        carry([
            a[0] + b[0],
            a[1] + b[1],
            a[2] + b[2],
            a[3] + b[3],
            a[4] + b[4],
        ])
    }

    /// a - b, as a + 4p - b so no limb goes below zero.
    pub fn sub(&self, b: &Fe) -> Fe {
        let a = &self.0;
        let b = &b.0;
        carry([
            a[0] + FOUR_P.0[0] - b[0],
            a[1] + FOUR_P.0[1] - b[1],
            a[2] + FOUR_P.0[2] - b[2],
            a[3] + FOUR_P.0[3] - b[3],
            a[4] + FOUR_P.0[4] - b[4],
        ])
    }

    pub fn mul(&self, b: &Fe) -> Fe {
        let m = |x: u64, y: u64| x as u128 * y as u128;
        let [a0, a1, a2, a3, a4] = self.0;
        let [b0, b1, b2, b3, b4] = b.0;
        // limbs at 2^255 and above come back down times 19
        let (b1_19, b2_19, b3_19, b4_19) = (b1 * 19, b2 * 19, b3 * 19, b4 * 19);
        reduce_wide([
            m(a0, b0) + m(a1, b4_19) + m(a2, b3_19) + m(a3, b2_19) + m(a4, b1_19),
            m(a0, b1) + m(a1, b0) + m(a2, b4_19) + m(a3, b3_19) + m(a4, b2_19),
            m(a0, b2) + m(a1, b1) + m(a2, b0) + m(a3, b4_19) + m(a4, b3_19),
            m(a0, b3) + m(a1, b2) + m(a2, b1) + m(a3, b0) + m(a4, b4_19),
            m(a0, b4) + m(a1, b3) + m(a2, b2) + m(a3, b1) + m(a4, b0),
        ])
    }

    pub fn square(&self) -> Fe {
        let m = |x: u64, y: u64| x as u128 * y as u128;
        let [a0, a1, a2, a3, a4] = self.0;
        let (d0, d1, d2) = (2 * a0, 2 * a1, 2 * a2);
        let (a3_19, a4_19) = (19 * a3, 19 * a4);
        reduce_wide([
            m(a0, a0) + m(d1, a4_19) + m(d2, a3_19),
            m(d0, a1) + m(d2, a4_19) + m(a3, a3_19),
            m(d0, a2) + m(a1, a1) + m(2 * a3, a4_19),
            m(d0, a3) + m(d1, a2) + m(a4, a4_19),
            m(d0, a4) + m(d1, a3) + m(a2, a2),
        ])
    }

    /// self^(2^k)
    fn square_times(&self, k: u32) -> Fe {
        let mut x = *self;
        for _ in 0..k {
            x = x.square();
        }
        x
    }

    /// self^(p-2), the inverse (0 for 0): 254 squarings and 11 multiplications.
    pub fn invert(&self) -> Fe {
        let z = self;
        let z2 = z.square();
        let z9 = z.mul(&z2.square_times(2));
        let z11 = z2.mul(&z9);
        let e5 = z9.mul(&z11.square()); // z^(2^5 - 1)
        let e10 = e5.square_times(5).mul(&e5);
        let e20 = e10.square_times(10).mul(&e10);
        let e40 = e20.square_times(20).mul(&e20);
        let e50 = e40.square_times(10).mul(&e10);
        let e100 = e50.square_times(50).mul(&e50);
        let e200 = e100.square_times(100).mul(&e100);
        let e250 = e200.square_times(50).mul(&e50);
        // 2^255 - 32 + 11 = p - 2
        e250.square_times(5).mul(&z11)
    }

    /// The canonical 32-byte little-endian encoding (value reduced below p).
    pub fn to_bytes(self) -> [u8; 32] {
        let mut l = carry(self.0).0;
        // q = 1 exactly when the value is at least p, i.e. value + 19 reaches 2^255
        let mut q = (l[0] + 19) >> 51;
        for limb in &l[1..] {
            q = (limb + q) >> 51;
        }
        l[0] += 19 * q;
        for i in 0..4 {
            l[i + 1] += l[i] >> 51;
            l[i] &= MASK;
        }
        // what carries out of the top limb is the 2^255 that subtracting p removes
        l[4] &= MASK;
        let words = [
            l[0] | (l[1] << 51),
            (l[1] >> 13) | (l[2] << 38),
            (l[2] >> 26) | (l[3] << 25),
            (l[3] >> 39) | (l[4] << 12),
        ];
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// The element a 32-byte little-endian encoding names (its top bit ignored, as
    /// RFC 7748 decoding does); limbs below 2^51. `Fe::from_bytes(&x.to_bytes())` is `x`
    /// in canonical limbs.
    pub fn from_bytes(bytes: &[u8; 32]) -> Fe {
        let w = |i: usize| {
            let mut word = [0u8; 8];
            word.copy_from_slice(&bytes[8 * i..8 * i + 8]);
            u64::from_le_bytes(word)
        };
        Fe([
            w(0) & MASK,
            ((w(0) >> 51) | (w(1) << 13)) & MASK,
            ((w(1) >> 38) | (w(2) << 26)) & MASK,
            ((w(2) >> 25) | (w(3) << 39)) & MASK,
            (w(3) >> 12) & MASK,
        ])
    }

    /// Whether the canonical value is odd: the sign bit of a compressed x coordinate.
    pub fn is_odd(self) -> u8 {
        self.to_bytes()[0] & 1
    }
}

/// 2p in limbs, each at least any canonical limb (below 2^51): subtracting a canonical
/// element from it never goes below zero, and the result stays below 2^52.
pub const TWO_P: Fe = Fe([2 * (MASK - 18), 2 * MASK, 2 * MASK, 2 * MASK, 2 * MASK]);

/// 4p in limbs, each above any limb an operand can have (below 2^52).
pub const FOUR_P: Fe = Fe([4 * (MASK - 18), 4 * MASK, 4 * MASK, 4 * MASK, 4 * MASK]);

/// Carries limbs below 2^63 down to below 2^52 (the top carry re-enters times 19).
fn carry(mut l: [u64; 5]) -> Fe {
    for i in 0..4 {
        l[i + 1] += l[i] >> 51;
        l[i] &= MASK;
    }
    let top = l[4] >> 51;
    l[4] &= MASK;
    l[0] += top * 19;
    Fe(l)
}

/// Carries the five 128-bit column sums of a product (each below 2^115) into limbs.
fn reduce_wide(c: [u128; 5]) -> Fe {
    let mask = MASK as u128;
    let c1 = c[1] + (c[0] >> 51);
    let c2 = c[2] + (c1 >> 51);
    let c3 = c[3] + (c2 >> 51);
    let c4 = c[4] + (c3 >> 51);
    let r0 = (c[0] & mask) + (c4 >> 51) * 19;
    Fe([
        (r0 & mask) as u64,
        (c1 & mask) as u64 + (r0 >> 51) as u64,
        (c2 & mask) as u64,
        (c3 & mask) as u64,
        (c4 & mask) as u64,
    ])
}

#[cfg(test)]
mod tests {
    use super::*;

    const P_WORDS: [u64; 4] = [
        0xffff_ffff_ffff_ffed,
        0xffff_ffff_ffff_ffff,
        0xffff_ffff_ffff_ffff,
        0x7fff_ffff_ffff_ffff,
    ];

    fn from_words(w: [u64; 4]) -> Fe {
        Fe::from_bytes(&bytes_of(w))
    }

    fn bytes_of(w: [u64; 4]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, word) in out.chunks_exact_mut(8).zip(w) {
            chunk.copy_from_slice(&word.to_le_bytes());
        }
        out
    }

    /// A reproducible stream of field elements, some near p and 2^255.
    fn samples() -> Vec<Fe> {
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let mut out = vec![Fe::ZERO, Fe::ONE, from_words(P_WORDS)];
        let mut p_minus_1 = P_WORDS;
        p_minus_1[0] -= 1;
        out.push(from_words(p_minus_1));
        out.push(Fe([MASK; 5]));
        for _ in 0..200 {
            out.push(from_words([next(), next(), next(), next() >> 1]));
        }
        out
    }

    #[test]
    fn to_bytes_reduces_mod_p() {
        assert_eq!(from_words(P_WORDS).to_bytes(), [0; 32]);
        let mut p_plus_5 = P_WORDS;
        p_plus_5[0] += 5;
        assert_eq!(from_words(p_plus_5).to_bytes(), bytes_of([5, 0, 0, 0]));
        // 2^255 - 1 = p + 18
        assert_eq!(Fe([MASK; 5]).to_bytes(), bytes_of([18, 0, 0, 0]));
        let words = [1, 2, 3, 4];
        assert_eq!(from_words(words).to_bytes(), bytes_of(words));
    }

    #[test]
    fn field_laws_hold() {
        let s = samples();
        for w in s.windows(3) {
            let (a, b, c) = (w[0], w[1], w[2]);
            let eq = |x: Fe, y: Fe| assert_eq!(x.to_bytes(), y.to_bytes());
            eq(a.mul(&b), b.mul(&a));
            eq(a.mul(&b.add(&c)), a.mul(&b).add(&a.mul(&c)));
            eq(a.sub(&b).add(&b), a);
            eq(a.square(), a.mul(&a));
            eq(a.add(&Fe::ZERO.sub(&a)), Fe::ZERO);
            if a.to_bytes() != [0; 32] {
                eq(a.mul(&a.invert()), Fe::ONE);
            }
        }
        assert_eq!(Fe::ZERO.invert().to_bytes(), [0; 32]);
    }

    #[test]
    fn the_base_point_is_on_the_curve() {
        // -x^2 + y^2 = 1 + d x^2 y^2, with d = D2 / 2
        let (x2, y2) = (Fe::BASE_X.square(), Fe::BASE_Y.square());
        let two_inv = Fe([2, 0, 0, 0, 0]).invert();
        let d = Fe::D2.mul(&two_inv);
        let lhs = y2.sub(&x2);
        let rhs = Fe::ONE.add(&d.mul(&x2).mul(&y2));
        assert_eq!(lhs.to_bytes(), rhs.to_bytes());
        // d = -121665 / 121666
        let d_direct = Fe::ZERO
            .sub(&Fe([121665, 0, 0, 0, 0]))
            .mul(&Fe([121666, 0, 0, 0, 0]).invert());
        assert_eq!(d.to_bytes(), d_direct.to_bytes());
    }
}
