//! Ed25519's fixed-base multiplication a·B (a key pair's public key, a signature's R)
//! with AVX-512 IFMA, eight table points at a time. docs/DECISIONS.md §46.
//!
//! a is written in 64 signed radix-16 digits, a = Σ e_i·16^i with e_i in [-8, 8], so
//! a·B = Σ e_i·(16^i·B). The table holds k·16^i·B for k = 1..8 and every i, which leaves
//! no doublings: only 64 additions of looked-up points. Lane l of the eight-lane
//! accumulator adds the points of digits l, l+8, l+16, ..., so eight rounds of one
//! vector addition each do them all; the eight lane sums are then added one at a time
//! and the total compressed with one inversion ([`super::field25519`]).
//!
//! The scalar is secret: every round reads all eight entries of its table row and keeps
//! the wanted one with a mask, and no branch depends on the scalar.
//!
//! Field elements are five 51-bit limbs (below 2^52 between operations, the width the
//! IFMA multipliers read). `vpmadd52luq`/`vpmadd52huq` give the low and high 52 bits of
//! each 104-bit limb product; in radix 2^51 the high half counts twice one limb up.

use super::field25519::{Fe, FOUR_P, MASK, TWO_P};
use std::arch::x86_64::*;
use std::sync::OnceLock;

/// Whether this CPU runs the eight-lane multiplication.
pub fn available() -> bool {
    std::is_x86_feature_detected!("avx512f")
        && std::is_x86_feature_detected!("avx512dq")
        && std::is_x86_feature_detected!("avx512ifma")
}

/// The compressed point a·B for a scalar below 2^255 (a clamped Ed25519 secret scalar
/// or a nonce reduced mod the group order).
///
/// # Safety
/// The CPU must have AVX-512F, DQ and IFMA ([`available`]).
#[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
pub unsafe fn mul_base(scalar: &[u8; 32]) -> [u8; 32] {
    let digits = signed_digits(scalar);
    let table = table();
    let mut acc = Point8 {
        x: Fe8::splat(&Fe::ZERO),
        y: Fe8::splat(&Fe::ONE),
        z: Fe8::splat(&Fe::ONE),
        t: Fe8::splat(&Fe::ZERO),
    };
    for (round, row) in table.rounds.iter().enumerate() {
        let lane_digits: [i64; 8] = std::array::from_fn(|l| digits[8 * round + l] as i64);
        let point = select(row, _mm512_loadu_si512(lane_digits.as_ptr().cast()));
        acc = acc.add_niels(&point);
    }
    let lanes = acc.lanes();
    let mut sum = lanes[0];
    for lane in &lanes[1..] {
        sum = sum.add(lane);
    }
    sum.compress()
}

/// Radix-16 digits in [-8, 8] with a = Σ e_i·16^i; a below 2^255 keeps the top one in range.
fn signed_digits(a: &[u8; 32]) -> [i8; 64] {
    let mut e = [0i8; 64];
    for (i, byte) in a.iter().enumerate() {
        e[2 * i] = (byte & 15) as i8;
        e[2 * i + 1] = (byte >> 4) as i8;
    }
    // move each digit from [0, 16] to [-8, 8) by carrying 16 into the next
    let mut carry = 0i8;
    for d in &mut e[..63] {
        *d += carry;
        carry = (*d + 8) >> 4;
        *d -= carry << 4;
    }
    e[63] += carry;
    e
}

/// Eight values, lane l holding lane l's.
#[derive(Clone, Copy)]
#[repr(C, align(64))]
struct Lanes([u64; 8]);

/// One round: entry k-1 holds, in lane l, k·16^(8·round + l)·B as the limbs of
/// y+x, y-x and 2d·x·y (affine "Niels" form, which adds in seven multiplications).
type Row = [[Lanes; 15]; 8];

struct Table {
    rounds: [Row; 8],
}

fn table() -> &'static Table {
    static TABLE: OnceLock<Box<Table>> = OnceLock::new();
    TABLE.get_or_init(build_table)
}

/// k·16^i·B for every digit position i and k = 1..8, computed once (about a millisecond)
/// rather than stored in the binary.
fn build_table() -> Box<Table> {
    let base = Ext::from_affine(Fe::BASE_X, Fe::BASE_Y);
    let mut points = Vec::with_capacity(64 * 8);
    let mut power = base; // 16^i·B
    for _ in 0..64 {
        let mut multiple = power;
        for k in 1..=8 {
            if k > 1 {
                multiple = multiple.add(&power);
            }
            points.push(multiple);
        }
        power = multiple.add(&multiple); // 2·8·16^i·B
    }
    let inverses = batch_invert(&points.iter().map(|p| p.z).collect::<Vec<_>>());
    let mut table = Box::new(Table {
        rounds: [[[Lanes([0; 8]); 15]; 8]; 8],
    });
    for (n, (p, zinv)) in points.iter().zip(inverses).enumerate() {
        let (i, k) = (n / 8, n % 8);
        let (x, y) = (p.x.mul(&zinv), p.y.mul(&zinv));
        let coords = [y.add(&x), y.sub(&x), x.mul(&y).mul(&Fe::D2)];
        // canonical limbs (below 2^51), which the negation in `select` relies on
        let coords = coords.map(|c| Fe::from_bytes(&c.to_bytes()));
        let entry = &mut table.rounds[i / 8][k];
        for (c, coord) in coords.iter().enumerate() {
            for (limb, value) in coord.0.iter().enumerate() {
                entry[5 * c + limb].0[i % 8] = *value;
            }
        }
    }
    table
}

/// Inverses of many elements with one inversion (Montgomery's trick).
fn batch_invert(xs: &[Fe]) -> Vec<Fe> {
    let mut prefix = Vec::with_capacity(xs.len());
    let mut acc = Fe::ONE;
    for x in xs {
        acc = acc.mul(x);
        prefix.push(acc);
    }
    let mut inv = acc.invert();
    let mut out = vec![Fe::ZERO; xs.len()];
    for i in (0..xs.len()).rev() {
        out[i] = if i == 0 { inv } else { inv.mul(&prefix[i - 1]) };
        inv = inv.mul(&xs[i]);
    }
    out
}

/// A point in extended coordinates (X:Y:Z:T), x = X/Z, y = Y/Z, x·y = T/Z.
#[derive(Clone, Copy)]
struct Ext {
    x: Fe,
    y: Fe,
    z: Fe,
    t: Fe,
}

impl Ext {
    fn from_affine(x: Fe, y: Fe) -> Ext {
        Ext {
            x,
            y,
            z: Fe::ONE,
            t: x.mul(&y),
        }
    }

    /// The unified addition of Hisil, Wong, Carter and Dawson for a = -1 (it doubles too).
    fn add(&self, q: &Ext) -> Ext {
        let a = self.y.sub(&self.x).mul(&q.y.sub(&q.x));
        let b = self.y.add(&self.x).mul(&q.y.add(&q.x));
        let c = self.t.mul(&Fe::D2).mul(&q.t);
        let zz = self.z.mul(&q.z);
        let d = zz.add(&zz);
        let (e, f, g, h) = (b.sub(&a), d.sub(&c), d.add(&c), b.add(&a));
        Ext {
            x: e.mul(&f),
            y: g.mul(&h),
            z: f.mul(&g),
            t: e.mul(&h),
        }
    }

    /// The 32-byte encoding: y, with x's parity in the top bit.
    fn compress(&self) -> [u8; 32] {
        let zinv = self.z.invert();
        let x = self.x.mul(&zinv);
        let mut out = self.y.mul(&zinv).to_bytes();
        out[31] |= x.is_odd() << 7;
        out
    }
}

/// Eight field elements, limb k of lane l in lane l of vector k.
#[derive(Clone, Copy)]
struct Fe8([__m512i; 5]);

/// Eight points in extended coordinates.
struct Point8 {
    x: Fe8,
    y: Fe8,
    z: Fe8,
    t: Fe8,
}

/// Eight points in affine Niels form (y+x, y-x, 2d·x·y).
struct Niels8 {
    y_plus_x: Fe8,
    y_minus_x: Fe8,
    xy2d: Fe8,
}

impl Fe8 {
    #[target_feature(enable = "avx512f")]
    #[inline]
    fn splat(x: &Fe) -> Fe8 {
        Fe8(x.0.map(|limb| _mm512_set1_epi64(limb as i64)))
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    #[inline]
    fn add(&self, b: &Fe8) -> Fe8 {
        carry(std::array::from_fn(|k| _mm512_add_epi64(self.0[k], b.0[k])))
    }

    #[target_feature(enable = "avx512f,avx512dq")]
    #[inline]
    fn sub(&self, b: &Fe8) -> Fe8 {
        let four_p = Fe8::splat(&FOUR_P);
        carry(std::array::from_fn(|k| {
            _mm512_sub_epi64(_mm512_add_epi64(self.0[k], four_p.0[k]), b.0[k])
        }))
    }

    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    #[inline]
    fn mul(&self, b: &Fe8) -> Fe8 {
        let (a, b) = (&self.0, &b.0);
        let zero = _mm512_setzero_si512();
        // lo[k], hi[k]: sums of the low and high 52-bit halves of a_i·b_j with i + j = k
        let mut lo = [zero; 9];
        let mut hi = [zero; 9];
        for i in 0..5 {
            for j in 0..5 {
                lo[i + j] = _mm512_madd52lo_epu64(lo[i + j], a[i], b[j]);
                hi[i + j] = _mm512_madd52hi_epu64(hi[i + j], a[i], b[j]);
            }
        }
        // column k of radix 2^51 gets lo[k] and twice hi[k - 1] (each below 2^56)
        let col = |k: usize| match k {
            0 => lo[0],
            9 => _mm512_slli_epi64(hi[8], 1),
            _ => _mm512_add_epi64(lo[k], _mm512_slli_epi64(hi[k - 1], 1)),
        };
        // columns 5..9 are worth 2^255 = 19 times columns 0..4 (sums below 2^61)
        let nineteen = _mm512_set1_epi64(19);
        carry(std::array::from_fn(|k| {
            _mm512_add_epi64(col(k), _mm512_mullo_epi64(col(k + 5), nineteen))
        }))
    }
}

/// One parallel carry step: limbs below 2^63 in, below 2^52 out (the top limb's carry
/// re-enters the bottom one times 19).
#[target_feature(enable = "avx512f,avx512dq")]
#[inline]
fn carry(l: [__m512i; 5]) -> Fe8 {
    let mask = _mm512_set1_epi64(MASK as i64);
    let c: [__m512i; 5] = l.map(|x| _mm512_srli_epi64(x, 51));
    let top = _mm512_mullo_epi64(c[4], _mm512_set1_epi64(19));
    Fe8(std::array::from_fn(|k| {
        let carried_in = if k == 0 { top } else { c[k - 1] };
        _mm512_add_epi64(_mm512_and_si512(l[k], mask), carried_in)
    }))
}

impl Point8 {
    /// Adds eight affine points, one per lane: the mixed addition of Hisil et al. with
    /// Z2 = 1, seven multiplications.
    #[target_feature(enable = "avx512f,avx512dq,avx512ifma")]
    #[inline]
    fn add_niels(&self, q: &Niels8) -> Point8 {
        let a = self.y.sub(&self.x).mul(&q.y_minus_x);
        let b = self.y.add(&self.x).mul(&q.y_plus_x);
        let c = self.t.mul(&q.xy2d);
        let d = self.z.add(&self.z);
        let (e, f, g, h) = (b.sub(&a), d.sub(&c), d.add(&c), b.add(&a));
        Point8 {
            x: e.mul(&f),
            y: g.mul(&h),
            z: f.mul(&g),
            t: e.mul(&h),
        }
    }

    #[target_feature(enable = "avx512f")]
    #[inline]
    fn lanes(&self) -> [Ext; 8] {
        let unpack = |v: &Fe8| -> [Fe; 8] {
            let mut limbs = [Lanes([0; 8]); 5];
            for (out, vector) in limbs.iter_mut().zip(v.0) {
                // SAFETY: Lanes is 64 bytes, aligned to 64
                unsafe { _mm512_store_si512(out.0.as_mut_ptr().cast(), vector) };
            }
            std::array::from_fn(|l| Fe(limbs.map(|limb| limb.0[l])))
        };
        let (x, y, z, t) = (
            unpack(&self.x),
            unpack(&self.y),
            unpack(&self.z),
            unpack(&self.t),
        );
        std::array::from_fn(|l| Ext {
            x: x[l],
            y: y[l],
            z: z[l],
            t: t[l],
        })
    }
}

/// The table point each lane's digit names, in constant time: every entry of the row is
/// read, the lanes whose |digit| is k keep entry k, lanes with digit 0 keep the identity
/// (1, 1, 0), and negative digits swap y+x with y-x and negate 2dxy.
#[target_feature(enable = "avx512f,avx512dq")]
#[inline]
fn select(row: &Row, digits: __m512i) -> Niels8 {
    let magnitude = _mm512_abs_epi64(digits);
    let one = Fe8::splat(&Fe::ONE);
    let mut limbs: [__m512i; 15] = std::array::from_fn(|n| {
        if n < 10 {
            one.0[n % 5]
        } else {
            _mm512_setzero_si512()
        }
    });
    for (k, entry) in row.iter().enumerate() {
        let keep = _mm512_cmpeq_epi64_mask(magnitude, _mm512_set1_epi64(k as i64 + 1));
        for (limb, lanes) in limbs.iter_mut().zip(entry) {
            // SAFETY: Lanes is 64 bytes, aligned to 64
            let candidate = unsafe { _mm512_load_si512(lanes.0.as_ptr().cast()) };
            *limb = _mm512_mask_blend_epi64(keep, *limb, candidate);
        }
    }
    let negative = _mm512_cmplt_epi64_mask(digits, _mm512_setzero_si512());
    let part = |c: usize| Fe8(std::array::from_fn(|k| limbs[5 * c + k]));
    let (y_plus_x, y_minus_x, xy2d) = (part(0), part(1), part(2));
    let two_p = Fe8::splat(&TWO_P);
    Niels8 {
        y_plus_x: Fe8(std::array::from_fn(|k| {
            _mm512_mask_blend_epi64(negative, y_plus_x.0[k], y_minus_x.0[k])
        })),
        y_minus_x: Fe8(std::array::from_fn(|k| {
            _mm512_mask_blend_epi64(negative, y_minus_x.0[k], y_plus_x.0[k])
        })),
        xy2d: Fe8(std::array::from_fn(|k| {
            let negated = _mm512_sub_epi64(two_p.0[k], xy2d.0[k]);
            _mm512_mask_blend_epi64(negative, xy2d.0[k], negated)
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use curve25519_dalek::{EdwardsPoint, Scalar};

    fn dalek(scalar: &[u8; 32]) -> [u8; 32] {
        EdwardsPoint::mul_base(&Scalar::from_bytes_mod_order(*scalar))
            .compress()
            .to_bytes()
    }

    fn ours(scalar: &[u8; 32]) -> Option<[u8; 32]> {
        // SAFETY: available() checked the CPU
        available().then(|| unsafe { mul_base(scalar) })
    }

    #[test]
    fn digits_add_back_up_to_the_scalar() {
        for mut a in [[0u8; 32], [0xff; 32], [0x88; 32], [0x77; 32]] {
            a[31] &= 0x7f;
            let e = signed_digits(&a);
            assert!(e.iter().all(|d| (-8..=8).contains(d)));
            // Σ e_i·16^i, byte by byte with a signed carry
            let mut bytes = [0u8; 32];
            let mut carry = 0i32;
            for i in 0..32 {
                let v = e[2 * i] as i32 + 16 * e[2 * i + 1] as i32 + carry;
                bytes[i] = v.rem_euclid(256) as u8;
                carry = v.div_euclid(256);
            }
            assert_eq!((bytes, carry), (a, 0));
        }
    }

    #[test]
    fn the_table_holds_multiples_of_the_base_point() {
        let table = table();
        for i in [0usize, 1, 7, 8, 33, 63] {
            for k in 1..=8u64 {
                let entry = &table.rounds[i / 8][k as usize - 1];
                let limbs = |c: usize| Fe(std::array::from_fn(|m| entry[5 * c + m].0[i % 8]));
                let (yp, ym) = (limbs(0), limbs(1));
                // y = (yp + ym)/2, x = (yp - ym)/2
                let half = Fe([2, 0, 0, 0, 0]).invert();
                let (x, y) = (yp.sub(&ym).mul(&half), yp.add(&ym).mul(&half));
                let mut compressed = y.to_bytes();
                compressed[31] |= x.is_odd() << 7;
                let mut scalar = Scalar::from(k);
                for _ in 0..i {
                    scalar *= Scalar::from(16u64);
                }
                assert_eq!(
                    compressed,
                    EdwardsPoint::mul_base(&scalar).compress().to_bytes(),
                    "{k}·16^{i}·B"
                );
                assert_eq!(
                    limbs(2).to_bytes(),
                    x.mul(&y).mul(&Fe::D2).to_bytes(),
                    "2dxy of {k}·16^{i}·B"
                );
            }
        }
    }

    #[test]
    fn equals_dalek_on_edge_and_random_scalars() {
        if !available() {
            eprintln!("no AVX-512 IFMA on this CPU: nothing to compare");
            return;
        }
        let mut cases = vec![[0u8; 32], [0x88; 32], [0x77; 32], [0x7f; 32]];
        let mut one = [0u8; 32];
        one[0] = 1;
        cases.push(one);
        // the group order l and l - 1, l + 1 (all below 2^255)
        let l = Scalar::ZERO - Scalar::ONE;
        cases.push(l.to_bytes());
        let mut x: u64 = 0x2545_f491_4f6c_dd1d;
        for n in 0..2000 {
            let mut s = [0u8; 32];
            for chunk in s.chunks_exact_mut(8) {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                chunk.copy_from_slice(&x.to_le_bytes());
            }
            if n % 2 == 0 {
                // an Ed25519 secret scalar: clamped
                s[0] &= 248;
                s[31] &= 127;
                s[31] |= 64;
            } else {
                s[31] &= 127;
            }
            cases.push(s);
        }
        for s in &mut cases {
            s[31] &= 0x7f;
            assert_eq!(ours(s), Some(dalek(s)), "scalar {}", crate::crypto::hex(s));
        }
    }
}
