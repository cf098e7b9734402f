use super::test_vectors::{core_vectors, corestore_keys};
use super::*;

#[test]
fn corestore_keys_vectors() {
    let v = corestore_keys();
    let cores = v.get("cores").arr();
    assert!(cores.len() >= 18);
    for c in cores {
        let primary = c.get("primaryKey").b32();
        let mut ns = CORESTORE_DEFAULT_NAMESPACE;
        for n in c.get("namespaces").arr() {
            ns = namespace(&ns, n.str().as_bytes());
        }
        assert_eq!(hex(&ns), c.get("namespace").str());
        let kp = create_key_pair(&primary, &ns, c.get("name").str().as_bytes());
        assert_eq!(hex(&kp.public_key), c.get("signerPublicKey").str());
        assert!(valid_secret_key(&kp.public_key, &kp.secret_key));
        let key = c.get("key").b32();
        assert_eq!(hex(&discovery_key(&key)), c.get("discoveryKey").str());
        assert_eq!(z32_encode(&key), c.get("z32Key").str());
        assert_eq!(z32_decode(c.get("z32Key").str()), Some(key.to_vec()));
        assert_eq!(id_decode(c.get("z32Key").str()), Some(key));
        assert_eq!(id_decode(&hex(&key)), Some(key));
        assert_eq!(
            id_decode(&format!("pear://{}/app", c.get("z32Key").str())),
            Some(key)
        );
    }
    assert_eq!(
        hex(&discovery_key(&[0; 32])),
        v.get("discoveryKeyOfZeroKey").str()
    );
}

#[test]
fn caps_namespaces() {
    let v = core_vectors();
    assert_eq!(
        hex(&caps().default_namespace),
        v.get("defaultNamespace").str()
    );
    assert_eq!(hex(&caps().manifest), v.get("manifestNamespace").str());
    assert_eq!(
        crypto_namespace(b"corestore", &[0])[0],
        *corestore_namespace()
    );
}

#[test]
fn z32_matches_js() {
    let v = core_vectors();
    let z = v.get("z32");
    for t in z.get("roundTrip").arr() {
        let bytes = t.get("bytes").bytes();
        let s = t.get("z32").str();
        if !t.get("decodeOnly").is_null() {
            assert_eq!(z32_decode(s), Some(bytes), "{s}");
        } else {
            assert_eq!(z32_encode(&bytes), s);
            assert_eq!(z32_decode(s), Some(bytes));
        }
    }
    let invalid = z.get("invalid").arr();
    assert!(!invalid.is_empty());
    for s in invalid {
        assert_eq!(z32_decode(s.str()), None);
    }
    assert_eq!(id_decode("short"), None);
    assert_eq!(id_decode(&"g".repeat(64)), None);
    assert_eq!(id_decode(&"é".repeat(26)), None);
}

#[test]
fn signatures_are_rfc8032_and_libsodium() {
    use ed25519_dalek::{Signer as _, SigningKey};
    // RFC 8032 test 2 (one-byte message); the unwraps are on this constant, in a test
    let seed = <[u8; 32]>::try_from(
        &from_hex("4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb").unwrap()[..],
    )
    .unwrap();
    let kp = key_pair_from_seed(&seed);
    assert_eq!(
        hex(&kp.public_key),
        "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c"
    );
    assert_eq!(
        hex(&sign(&kp.secret_key, &[0x72])),
        "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da\
         085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"
    );
    // the same bytes as ed25519-dalek's signer, for many keys and message lengths
    for i in 0..64u8 {
        let seed = [i.wrapping_mul(37).wrapping_add(1); 32];
        let kp = key_pair_from_seed(&seed);
        let message = vec![i; (i as usize) * 17];
        let ours = sign(&kp.secret_key, &message);
        assert_eq!(
            ours,
            SigningKey::from_bytes(&seed).sign(&message).to_bytes()
        );
        assert!(verify(&kp.public_key, &message, &ours));
    }
}

#[test]
fn key_pairs_sign_and_verify() {
    let kp = key_pair_from_seed(&[1; 32]);
    assert_eq!(kp.secret_key[..32], [1; 32]);
    assert_eq!(kp.secret_key[32..], kp.public_key);
    let sig = sign(&kp.secret_key, b"hello");
    assert!(verify(&kp.public_key, b"hello", &sig));
    assert!(!verify(&kp.public_key, b"hellO", &sig));
    assert!(!verify(&kp.public_key, b"hello", &sig[..63]));
    assert!(!verify(&kp.public_key, b"hello", &[0; 64]));
    assert!(!verify(&[0; 32], b"hello", &sig)); // small-order key
    assert!(!verify(&[0xff; 32], b"hello", &sig)); // not a point / non-canonical
    let mut identity = [0u8; 32];
    identity[0] = 1; // the identity point: small order
    assert!(!verify(&identity, b"hello", &sig));
    // non-canonical S (S + L) is refused
    let l: [u8; 32] = [
        0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde,
        0x14, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10,
    ];
    let mut big = sig;
    let mut carry = 0u16;
    for i in 0..32 {
        let s = big[32 + i] as u16 + l[i] as u16 + carry;
        big[32 + i] = s as u8;
        carry = s >> 8;
    }
    assert!(!verify(&kp.public_key, b"hello", &big));

    assert!(!valid_secret_key(&kp.public_key, &kp.secret_key[..63]));
    let other = key_pair_from_seed(&[2; 32]);
    assert!(!valid_secret_key(&other.public_key, &kp.secret_key));
    let r1 = random_key_pair();
    let r2 = random_key_pair();
    assert_ne!(r1.public_key, r2.public_key);
    assert!(valid_secret_key(&r1.public_key, &r1.secret_key));
    assert_ne!(random_bytes32(), random_bytes32());
    assert!(!format!("{r1:?}").contains(&hex(&r1.secret_key[..32])));
}

#[test]
fn key_pairs_and_signatures_equal_ed25519_dalek() {
    use ed25519_dalek::{Signer, SigningKey};
    for n in 0..300u32 {
        let seed = hash(&[&n.to_le_bytes()]);
        let kp = key_pair_from_seed(&seed);
        let dalek = SigningKey::from_bytes(&seed);
        assert_eq!(kp.public_key, dalek.verifying_key().to_bytes());
        let message = seed.repeat(n as usize % 5);
        assert_eq!(
            sign(&kp.secret_key, &message),
            dalek.sign(&message).to_bytes()
        );
    }
}

#[test]
fn hashes_order_and_layout() {
    let a = [1u8; 32];
    let b = [2u8; 32];
    assert_eq!(
        parent_hash((0, 1, &a), (2, 3, &b)),
        parent_hash((2, 3, &b), (0, 1, &a))
    );
    assert_ne!(
        parent_hash((0, 1, &a), (2, 3, &b)),
        parent_hash((0, 1, &b), (2, 3, &a))
    );
    let mut manual = vec![0u8];
    manual.extend_from_slice(&3u64.to_le_bytes());
    manual.extend_from_slice(b"abc");
    assert_eq!(leaf_hash(b"abc"), hash(&[&manual]));
}

#[test]
fn leaf_hashes_of_a_batch_are_each_blocks_leaf_hash() {
    // lengths around BLAKE2b's 128-byte block and the 9-byte prefix, and batches that do
    // and do not fill the four lanes; then batches where whole groups of eight share a
    // block count, mixed with odd ones
    let cases: [(&[usize], [usize; 8]); 2] = [
        (&[0, 1, 3, 4, 5, 9], [0, 1, 118, 119, 120, 1024, 1500, 4096]),
        (
            &[8, 16, 17, 100],
            [1024, 1024, 1024, 119, 1024, 5000, 1024, 120],
        ),
    ];
    for (counts, sizes) in cases {
        for &count in counts {
            let blocks: Vec<Vec<u8>> = (0..count).map(|i| vec![i as u8; sizes[i % 8]]).collect();
            let refs: Vec<&[u8]> = blocks.iter().map(|b| b.as_slice()).collect();
            let one_by_one: Vec<[u8; 32]> = refs.iter().map(|b| leaf_hash(b)).collect();
            assert_eq!(leaf_hashes(&refs), one_by_one, "{count} blocks");
        }
    }
    assert_eq!(tree_hash(&[]), hash(&[&[2u8]]));
    assert_eq!(from_hex("0aFf"), Some(vec![10, 255]));
    assert_eq!(from_hex("0"), None);
    assert_eq!(from_hex("zz"), None);
}

#[test]
fn parent_hashes_of_a_level_are_each_pairs_parent_hash() {
    for count in [0usize, 1, 7, 8, 9, 24] {
        let hashes: Vec<[u8; 32]> = (0..2 * count).map(|i| hash(&[&[i as u8]])).collect();
        let pairs: Vec<_> = (0..count)
            .map(|i| {
                let a = (4 * i as u64, 3 + i as u64, &hashes[2 * i]);
                let b = (4 * i as u64 + 2, 5, &hashes[2 * i + 1]);
                // either order: the lower index goes first
                if i % 2 == 0 {
                    (a, b)
                } else {
                    (b, a)
                }
            })
            .collect();
        let one_by_one: Vec<[u8; 32]> = pairs.iter().map(|&(a, b)| parent_hash(a, b)).collect();
        assert_eq!(
            parent_hashes(pairs.into_iter()),
            one_by_one,
            "{count} pairs"
        );
    }
}
