//! Fuzzing of every decoder that takes bytes from outside (a peer or the disk): a seeded,
//! bounded mutator run over seeds that the real JS packages made, one target per decoder.
//! Any result but a panic is fine; a panic prints the input that caused it.
//!
//! Why not cargo-fuzz: it needs a nightly toolchain and libFuzzer, which a fresh machine of
//! this project's kind does not have; a deterministic mutator in `cargo test` runs
//! everywhere, every time. `cargo test` runs `FUZZ_ITERATIONS` (default 20,000) inputs per
//! target; the long run of the closing notes sets it higher:
//! `FUZZ_ITERATIONS=10000000 node scripts/cargo.js test --release --no-default-features fuzz_`.

use crate::core::manifest::Manifest;
use crate::core::merkle::{MerkleTree, NodeSource};
use crate::core::proof;
use crate::crypto::test_vectors::{core_vectors, load};
use crate::crypto::{self, KeyPair};
use crate::storage::{self, keys, TreeNode};
use crate::wire::messages::{Handshake as MuxHandshake, Message};
use crate::wire::noise::Handshake;
use crate::wire::protomux::Mux;
use crate::wire::secretstream::{SecretStream, StreamEvent};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// xorshift64*: the same inputs on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Bytes that decoders branch on: varint prefixes, flags, lengths at the edges.
const INTERESTING: [u8; 10] = [0x00, 0x01, 0x02, 0x7f, 0x80, 0xfc, 0xfd, 0xfe, 0xff, 0x40];

/// 1-4 of: flip a bit, set an interesting byte, insert, delete, duplicate a range, cut,
/// splice in part of another seed, or write a huge varint.
fn mutate(rng: &mut Rng, seed: &[u8], seeds: &[Vec<u8>]) -> Vec<u8> {
    let mut b = seed.to_vec();
    for _ in 0..1 + rng.below(4) {
        let len = b.len();
        match rng.below(8) {
            0 if len > 0 => {
                let i = rng.below(len);
                b[i] ^= 1 << rng.below(8);
            }
            1 if len > 0 => {
                let i = rng.below(len);
                b[i] = INTERESTING[rng.below(INTERESTING.len())];
            }
            2 => {
                let i = rng.below(len + 1);
                let n = 1 + rng.below(8);
                for _ in 0..n {
                    b.insert(i, rng.next() as u8);
                }
            }
            3 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(16));
                b.drain(i..i + n);
            }
            4 if len > 0 => {
                let i = rng.below(len);
                let n = 1 + rng.below((len - i).min(32));
                let part: Vec<u8> = b[i..i + n].to_vec();
                let at = rng.below(len + 1);
                b.splice(at..at, part);
            }
            5 if len > 0 => b.truncate(rng.below(len)),
            6 if !seeds.is_empty() => {
                let other = &seeds[rng.below(seeds.len())];
                if !other.is_empty() {
                    let i = rng.below(other.len());
                    let n = 1 + rng.below(other.len() - i);
                    let at = rng.below(len + 1);
                    b.splice(at..at, other[i..i + n].iter().copied());
                }
            }
            _ => {
                let i = rng.below(len + 1);
                b.splice(i..i, [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f]);
            }
        }
    }
    b
}

fn iterations() -> usize {
    std::env::var("FUZZ_ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000)
}

/// Runs `f` over `iterations()` mutated seeds; returns how many inputs it took.
fn run(name: &str, seeds: &[Vec<u8>], mut f: impl FnMut(&[u8])) -> usize {
    assert!(!seeds.is_empty(), "{name}: no seeds");
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15 ^ name.len() as u64);
    let n = iterations();
    for seed in seeds {
        check(name, seed, &mut f);
    }
    for _ in 0..n {
        let seed = &seeds[rng.below(seeds.len())];
        let input = mutate(&mut rng, seed, seeds);
        check(name, &input, &mut f);
    }
    eprintln!(
        "fuzz {name}: {} inputs ({} seeds), no panic",
        n + seeds.len(),
        seeds.len()
    );
    n + seeds.len()
}

fn check(name: &str, input: &[u8], f: &mut impl FnMut(&[u8])) {
    if catch_unwind(AssertUnwindSafe(|| f(input))).is_err() {
        panic!("fuzz {name}: panicked on input {}", crypto::hex(input));
    }
}

fn mux_vectors() -> crate::crypto::test_vectors::Json {
    load(&["__test__/fixtures/wire-mux-vectors.json"])
}

/// hypercore/alpha messages as JS hypercore 11.37.1 encodes them, with their type byte in
/// front (the target decodes the rest as that type).
#[test]
fn fuzz_hypercore_messages() {
    let v = mux_vectors();
    let mut seeds = Vec::new();
    let messages = v.get("messages").arr();
    for m in messages.iter().chain(v.get("tolerant").arr()) {
        // a tolerant variant has the type of the message it is made `of`
        let kind = match m.get("of") {
            crate::crypto::test_vectors::Json::Str(of) => messages
                .iter()
                .find(|x| x.get("name").str() == of)
                .map_or(m.get("type"), |x| x.get("type")),
            _ => m.get("type"),
        };
        let t = if kind.is_null() {
            0xff
        } else {
            kind.u64() as u8
        };
        let mut s = vec![t];
        s.extend(m.get("hex").bytes());
        seeds.push(s);
    }
    run("hypercore messages", &seeds, |b| {
        let Some((&t, payload)) = b.split_first() else {
            return;
        };
        if t == 0xff {
            let _ = MuxHandshake::decode(payload);
        } else {
            let _ = Message::decode(u64::from(t % 12), payload);
        }
    });
}

/// Protomux frames (open, batch, message, close, reject) into a mux that has a channel open.
#[test]
fn fuzz_protomux_frames() {
    let v = mux_vectors();
    let dk = v.get("mux").get("discoveryKeys").arr()[0].b32();
    let mut peer = Mux::new();
    let (id, open) = peer.open("hypercore/alpha", Some(&dk), &[1, 2, 3]);
    let mut seeds = vec![open];
    for m in v.get("messages").arr() {
        if !m.get("type").is_null() {
            seeds.push(peer.send(id, m.get("type").u64(), &m.get("hex").bytes()));
        }
    }
    let batch = peer.batch(&seeds[..4]);
    seeds.push(batch);
    seeds.push(peer.close(id));
    seeds.push(peer.reject(7));
    run("protomux frames", &seeds, |b| {
        let mut mux = Mux::new();
        let _ = mux.open("hypercore/alpha", Some(&dk), &[]);
        let _ = mux.recv(b);
        let _ = mux.recv(b);
    });
}

fn key_pair(seed: u8) -> KeyPair {
    crypto::key_pair_from_seed(&[seed; 32])
}

/// Noise XX handshake messages 1, 2 and 3, each into the side that receives it.
#[test]
fn fuzz_noise_handshake() {
    let (a, b) = (key_pair(1), key_pair(2));
    let mut init = Handshake::new(true, &a, &[]);
    let mut resp = Handshake::new(false, &b, &[]);
    let m1 = init.send().expect("msg 1");
    resp.recv(&m1).expect("recv 1");
    let init_after_1 = init.clone();
    let m2 = resp.send().expect("msg 2");
    let resp_after_2 = resp.clone();
    init.recv(&m2).expect("recv 2");
    let m3 = init.send().expect("msg 3");
    let mut done = resp_after_2.clone();
    done.recv(&m3)
        .expect("the seed messages complete the handshake");
    assert!(done.is_complete());
    let seeds = vec![m1, m2, m3];
    run("noise handshake", &seeds, |msg| {
        let mut r = Handshake::new(false, &b, &[]);
        let _ = r.recv(msg);
        let mut i = init_after_1.clone();
        let _ = i.recv(msg);
        let mut r2 = resp_after_2.clone();
        let _ = r2.recv(msg);
    });
}

/// secretstream frames (the header, then encrypted messages) into an open stream.
#[test]
fn fuzz_secretstream_frames() {
    let (a, b) = (key_pair(3), key_pair(4));
    let mut x = SecretStream::new(true, a);
    let mut y = SecretStream::new(false, b);
    let mut to_y: Vec<u8> = Vec::new();
    let sends = |evs: Vec<StreamEvent>| -> Vec<u8> {
        evs.into_iter()
            .filter_map(|e| match e {
                StreamEvent::Send(b) => Some(b),
                _ => None,
            })
            .flatten()
            .collect()
    };
    let mut to_x = Vec::new();
    let mut pending = sends(x.start());
    for _ in 0..6 {
        let back = sends(y.recv(&pending).expect("handshake"));
        to_y.extend_from_slice(&pending);
        pending = sends(x.recv(&back).expect("handshake"));
        to_x.extend_from_slice(&back);
        if x.is_open() && y.is_open() && pending.is_empty() {
            break;
        }
    }
    assert!(x.is_open(), "the in-process handshake must complete");
    let receiver = y.clone();
    let mut seeds = vec![x.send(b"").expect("send")];
    for m in [&b"hello"[..], &[0u8; 300], &[7u8; 70_000]] {
        seeds.push(x.send(m).expect("send"));
    }
    let frames: Vec<u8> = seeds.concat();
    // the seeds are real traffic: unmutated, they decrypt to the four messages (empty included)
    let events = receiver
        .clone()
        .recv(&frames)
        .expect("the seed frames decrypt");
    let messages = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Message(_)))
        .count();
    assert_eq!(messages, 4, "the four messages arrive");
    seeds.push(frames);
    run("secretstream frames", &seeds, |bytes| {
        let mut s = receiver.clone();
        let _ = s.recv(bytes);
    });
    let _ = (to_x, to_y);
}

/// `data` messages carrying proofs that JS hypercore made, decoded and verified against a
/// core that has nothing yet.
#[test]
fn fuzz_proofs() {
    let v = load(&["__test__/fixtures/proof-vectors.json"]);
    let mut seeds = Vec::new();
    let mut manifests = Vec::new();
    for c in v.get("cores").arr() {
        manifests.push(Manifest::decode(&c.get("manifest").bytes()).expect("manifest"));
        for case in c.get("cases").arr() {
            if !case.get("wire").is_null() {
                seeds.push(case.get("wire").bytes());
            }
        }
    }
    let decoded = seeds
        .iter()
        .filter(|b| {
            matches!(
                Message::decode(crate::wire::messages::message_type::DATA, b),
                Ok(Some(Message::Data(_)))
            )
        })
        .count();
    assert_eq!(decoded, seeds.len(), "every JS-made data message decodes");
    struct Empty;
    impl NodeSource for Empty {
        fn node(&self, _: u64) -> crate::error::Result<Option<TreeNode>> {
            Ok(None)
        }
    }
    let empty = MerkleTree::default();
    let mut which = 0usize;
    run("proofs (data messages)", &seeds, |b| {
        which = which.wrapping_add(1);
        let Ok(Some(Message::Data(m))) =
            Message::decode(crate::wire::messages::message_type::DATA, b)
        else {
            return;
        };
        let p = crate::replication::proof_from_data(&m);
        let _ = proof::verify_proof(&empty, &Empty, &manifests[which % manifests.len()], &p);
    });
}

/// Manifests as JS encodes them, on the wire and in the auth record.
#[test]
fn fuzz_manifests() {
    let v = core_vectors();
    let mut seeds = Vec::new();
    for m in v.get("manifests").arr() {
        for field in ["encoded", "storageEncoded"] {
            if let crate::crypto::test_vectors::Json::Str(_) = m.get(field) {
                seeds.push(m.get(field).bytes());
            }
        }
    }
    run("manifests", &seeds, |b| {
        let _ = Manifest::decode(b);
        let _ = Manifest::decode_storage(b);
    });
}

/// Every record read from RocksDB, seeded with the bytes of a store JS corestore wrote
/// (/work/shared/storage-format.md §2.2) and with records of each kind.
#[test]
fn fuzz_storage_records() {
    let hex = |s: &str| crypto::from_hex(s).expect("hex");
    let mut seeds = vec![
        hex("0204050003").into_iter().chain([7u8; 64]).collect(), // store head
        hex("0200000105616c706861")
            .into_iter()
            .chain([0u8; 32])
            .collect(), // core record
        hex("0002").into_iter().chain([9u8; 32]).collect(),       // tree node
        hex("0103"),                                              // hints
        hex("0003"),                                              // dependency
        hex("0105647261667403"),                                  // sessions
        hex("0003")
            .into_iter()
            .chain([1u8; 32])
            .chain(hex("44"))
            .chain([2u8; 68])
            .chain(hex("01"))
            .chain([3u8; 8])
            .collect(),
    ];
    let auth = storage::Auth {
        key: [1; 32],
        discovery_key: [2; 32],
        manifest: Some(Manifest::single_signer(&[3; 32], 1).encode_storage()),
        key_pair: Some(storage::AuthKeyPair {
            public_key: vec![3; 32],
            secret_key: Some(vec![4; 64]),
        }),
        encryption_key: Some(vec![5; 32]),
    };
    seeds.push(auth.encode());
    seeds.push(storage::CoreGroup::default().encode());
    run("storage records", &seeds, |b| {
        let _ = storage::StoreHead::decode(b);
        let _ = storage::CoreRecord::decode(b);
        let _ = storage::Auth::decode(b);
        let _ = storage::CoreHead::decode(b);
        let _ = TreeNode::decode(b);
        let _ = storage::Hints::decode(b);
        let _ = storage::Dependency::decode(b);
        let _ = storage::Sessions::decode(b);
        let _ = storage::CoreGroup::decode(b);
    });
}

/// Keys read back from RocksDB scans.
#[test]
fn fuzz_storage_keys() {
    let seeds = vec![
        keys::core_by_dkey(&[1; 32]),
        keys::core_by_alias(&[0; 32], "alpha\u{0}beta"),
        keys::block(3, 1 << 40),
        keys::tree_node(300, 70_000),
        keys::bitfield(2, 5, 0),
        keys::user_data(1, "k\u{0}ey"),
        keys::mark(9, 1),
        keys::local(4, b"\x00raw").expect("local key"),
    ];
    run("storage keys", &seeds, |b| {
        let _ = keys::parse_core_by_dkey(b);
        let _ = keys::parse_core_by_alias(b);
        let _ = keys::parse_block(b);
        let _ = keys::parse_tree_node(b);
        let _ = keys::parse_bitfield(b);
        let _ = keys::parse_user_data(b);
        let _ = keys::parse_mark(b);
        let _ = keys::parse_local(b);
    });
}
