//! The compact-encoding value records of hypercore-storage 3.x (its hyperschema, version 2).
//!
//! Non-compact structs are: the required fields, one uint of flags (bit i = i-th optional
//! field), then the optional fields that are present. Decoders ignore unknown flag bits and
//! trailing bytes (that is how upstream adds fields) and never panic.
//!
//! Encoders follow the JS encoders byte for byte. JS skips an optional number that is 0
//! (it tests truthiness), so `Some(0)` is written like `None` for hints and the head
//! timestamp; JS reads both back as 0.

use crate::encoding::compact::{DecodeError, Reader, Writer};

type Result<T> = std::result::Result<T, DecodeError>;

/// The schema version this code writes (hypercore-storage >= 3.0).
pub const VERSION: u64 = 2;

/// `@corestore/head`. Reads v0/v1 (`head-v1`) and v2; always writes v2.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StoreHead {
    /// The version found on disk (0, 1 or 2). `encode` always writes 2.
    pub version: u64,
    pub cores: u64,
    pub datas: u64,
    pub groups: u64,
    pub seed: Option<[u8; 32]>,
    pub default_discovery_key: Option<[u8; 32]>,
}

/// `@corestore/alias`: a core's (name, namespace).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    pub name: String,
    pub namespace: [u8; 32],
}

/// `@corestore/core`: the CORE_BY_DKEY record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreRecord {
    /// Migration state of the core: 0 = pre-RocksDB import pending, 1 = hypercore-storage
    /// 1.x/2.x, 2 = current. New cores are written with [`VERSION`].
    pub version: u64,
    pub core_pointer: u64,
    pub data_pointer: u64,
    pub alias: Option<Alias>,
}

/// `@core/keyPair`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthKeyPair {
    pub public_key: Vec<u8>,
    /// Stored in the clear, as JS does. Empty reads as `None`.
    pub secret_key: Option<Vec<u8>>,
}

/// `@core/auth`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Auth {
    pub key: [u8; 32],
    pub discovery_key: [u8; 32],
    /// The encoded `@core/manifest`, without the frame length.
    pub manifest: Option<Vec<u8>>,
    pub key_pair: Option<AuthKeyPair>,
    pub encryption_key: Option<Vec<u8>>,
}

/// `@core/head`: the signed tree head of a core (or session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CoreHead {
    pub fork: u64,
    pub length: u64,
    pub root_hash: [u8; 32],
    /// hypercore's signature encoding; empty reads as `None`.
    pub signature: Option<Vec<u8>>,
    /// Milliseconds since the epoch (uint64 LE on disk). Absent in v1 records.
    pub timestamp: Option<u64>,
}

/// `@core/tree-node`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeNode {
    pub index: u64,
    pub size: u64,
    pub hash: [u8; 32],
}

/// `@core/hints`. JS reads a missing field as 0; here it is `None`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Hints {
    pub contiguous_length: Option<u64>,
    pub remote_contiguous_length: Option<u64>,
    /// Set (to a ms timestamp) by the RECOVERING procedure.
    pub recovering: Option<u64>,
}

/// `@core/dependency`: a session's parent data and the length it shares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dependency {
    pub data_pointer: u64,
    pub length: u64,
}

/// `@core/session`: one named session of a core (an entry of CORE/SESSIONS).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub name: String,
    pub data_pointer: u64,
}

/// `@core/sessions`: the CORE/SESSIONS record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Sessions(pub Vec<Session>);

/// `@core/group`: the CORE/GROUP record. JS reads a missing pointer as 0.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct CoreGroup {
    pub key: Option<[u8; 32]>,
    pub pointer: u64,
}

fn nonzero(v: Option<u64>) -> Option<u64> {
    v.filter(|&n| n != 0)
}

fn lossy_string(r: &mut Reader<'_>) -> Result<String> {
    let b = r.buffer()?;
    Ok(String::from_utf8_lossy(b).into_owned())
}

/// Reads the leading version uint of a `@corestore/head` without consuming anything.
pub fn peek_version(bytes: &[u8]) -> Result<u64> {
    Reader::new(bytes).uint()
}

impl StoreHead {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(72);
        let flags =
            (self.seed.is_some() as u64) | ((self.default_discovery_key.is_some() as u64) << 1);
        w.uint(VERSION)
            .uint(self.cores)
            .uint(self.datas)
            .uint(self.groups)
            .uint(flags);
        if let Some(s) = &self.seed {
            w.fixed(s);
        }
        if let Some(d) = &self.default_discovery_key {
            w.fixed(d);
        }
        w.into_vec()
    }

    /// Decodes v0/v1 and v2 heads. Versions above 2 are an error (JS: "Unsupported
    /// version"); check [`peek_version`] first to tell that apart from corruption.
    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let version = r.uint()?;
        match version {
            0 | 1 => {
                // head-v1: version, flags{1 allocated, 2 seed, 4 defaultDiscoveryKey}
                let flags = r.uint()?;
                let (cores, datas) = if flags & 1 != 0 {
                    (r.uint()?, r.uint()?)
                } else {
                    (0, 0)
                };
                let seed = r.flagged(flags, 2, |r| r.array())?;
                let dkey = r.flagged(flags, 4, |r| r.array())?;
                Ok(StoreHead {
                    version,
                    cores,
                    datas,
                    groups: 0,
                    seed,
                    default_discovery_key: dkey,
                })
            }
            2 => {
                let cores = r.uint()?;
                let datas = r.uint()?;
                let groups = r.uint()?;
                let flags = r.uint()?;
                let seed = r.flagged(flags, 1, |r| r.array())?;
                let dkey = r.flagged(flags, 2, |r| r.array())?;
                Ok(StoreHead {
                    version,
                    cores,
                    datas,
                    groups,
                    seed,
                    default_discovery_key: dkey,
                })
            }
            _ => Err(DecodeError("unsupported store head version")),
        }
    }
}

impl Alias {
    fn write(&self, w: &mut Writer) {
        w.string(&self.name).fixed(&self.namespace);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let name = lossy_string(r)?;
        let namespace = r.array()?;
        Ok(Alias { name, namespace })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::read(&mut Reader::new(bytes))
    }
}

impl CoreRecord {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(48);
        w.uint(self.version)
            .uint(self.core_pointer)
            .uint(self.data_pointer)
            .uint(self.alias.is_some() as u64);
        if let Some(a) = &self.alias {
            a.write(&mut w);
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let version = r.uint()?;
        let core_pointer = r.uint()?;
        let data_pointer = r.uint()?;
        let flags = r.uint()?;
        let alias = if flags & 1 != 0 {
            Some(Alias::read(&mut r)?)
        } else {
            None
        };
        Ok(CoreRecord {
            version,
            core_pointer,
            data_pointer,
            alias,
        })
    }
}

impl AuthKeyPair {
    fn write(&self, w: &mut Writer) {
        w.buffer(&self.public_key)
            .opt_buffer(self.secret_key.as_deref());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self> {
        let public_key = r.buffer()?.to_vec();
        let secret_key = r.opt_buffer()?.map(|b| b.to_vec());
        Ok(AuthKeyPair {
            public_key,
            secret_key,
        })
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        self.write(&mut w);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        Self::read(&mut Reader::new(bytes))
    }
}

impl Auth {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(256);
        let flags = (self.manifest.is_some() as u64)
            | ((self.key_pair.is_some() as u64) << 1)
            | ((self.encryption_key.is_some() as u64) << 2);
        w.fixed(&self.key).fixed(&self.discovery_key).uint(flags);
        if let Some(m) = &self.manifest {
            w.buffer(m); // frame(T) = uint byte length + T
        }
        if let Some(kp) = &self.key_pair {
            kp.write(&mut w);
        }
        if let Some(e) = &self.encryption_key {
            w.buffer(e);
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let key = r.array()?;
        let discovery_key = r.array()?;
        let flags = r.uint()?;
        let manifest = r.flagged(flags, 1, |r| Ok(r.buffer()?.to_vec()))?;
        let key_pair = if flags & 2 != 0 {
            Some(AuthKeyPair::read(&mut r)?)
        } else {
            None
        };
        let encryption_key = r.flagged(flags, 4, |r| Ok(r.buffer()?.to_vec()))?;
        Ok(Auth {
            key,
            discovery_key,
            manifest,
            key_pair,
            encryption_key,
        })
    }
}

impl CoreHead {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(128);
        let ts = nonzero(self.timestamp);
        w.uint(self.fork)
            .uint(self.length)
            .fixed(&self.root_hash)
            .opt_buffer(self.signature.as_deref().filter(|s| !s.is_empty()))
            .uint(ts.is_some() as u64);
        if let Some(t) = ts {
            w.uint64(t);
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let fork = r.uint()?;
        let length = r.uint()?;
        let root_hash = r.array()?;
        let signature = r.opt_buffer()?.map(|b| b.to_vec());
        // v1 records may end before the flags
        let flags = if r.is_empty() { 0 } else { r.uint()? };
        let timestamp = r.flagged(flags, 1, |r| r.uint64())?;
        Ok(CoreHead {
            fork,
            length,
            root_hash,
            signature,
            timestamp,
        })
    }
}

impl TreeNode {
    /// The longest encoding: two compact uints of at most 9 bytes and the hash.
    pub const ENCODED_MAX: usize = 9 + 9 + 32;

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(Self::ENCODED_MAX);
        self.encode_into(&mut out);
        out
    }

    /// `encode` into `out`, which is cleared first: a batch of nodes reuses one buffer.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        out.clear();
        let mut w = Writer {
            buf: std::mem::take(out),
        };
        w.uint(self.index).uint(self.size).fixed(&self.hash);
        *out = w.buf;
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        Ok(TreeNode {
            index: r.uint()?,
            size: r.uint()?,
            hash: r.array()?,
        })
    }
}

impl Hints {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(16);
        let c = nonzero(self.contiguous_length);
        let rc = nonzero(self.remote_contiguous_length);
        let rec = nonzero(self.recovering);
        let flags =
            (c.is_some() as u64) | ((rc.is_some() as u64) << 1) | ((rec.is_some() as u64) << 2);
        w.uint(flags);
        for v in [c, rc, rec].into_iter().flatten() {
            w.uint(v);
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let flags = r.uint()?;
        let mut field = |bit: u64| -> Result<Option<u64>> {
            if flags & bit != 0 {
                Ok(Some(r.uint()?))
            } else {
                Ok(None)
            }
        };
        let contiguous_length = field(1)?;
        let remote_contiguous_length = field(2)?;
        let recovering = field(4)?;
        Ok(Hints {
            contiguous_length,
            remote_contiguous_length,
            recovering,
        })
    }
}

impl Dependency {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(8);
        w.uint(self.data_pointer).uint(self.length);
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        Ok(Dependency {
            data_pointer: r.uint()?,
            length: r.uint()?,
        })
    }
}

impl Sessions {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::new();
        w.uint(self.0.len() as u64);
        for s in &self.0 {
            w.string(&s.name).uint(s.data_pointer);
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let n = r.array_len()?;
        let mut out = Vec::with_capacity(n.min(1024));
        for _ in 0..n {
            let name = lossy_string(&mut r)?;
            let data_pointer = r.uint()?;
            out.push(Session { name, data_pointer });
        }
        Ok(Sessions(out))
    }
}

impl CoreGroup {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(40);
        let flags = (self.key.is_some() as u64) | (((self.pointer != 0) as u64) << 1);
        w.uint(flags);
        if let Some(k) = &self.key {
            w.fixed(k);
        }
        if self.pointer != 0 {
            w.uint(self.pointer);
        }
        w.into_vec()
    }

    pub fn decode(bytes: &[u8]) -> Result<Self> {
        let mut r = Reader::new(bytes);
        let flags = r.uint()?;
        let key = r.flagged(flags, 1, |r| r.array())?;
        let pointer = if flags & 2 != 0 { r.uint()? } else { 0 };
        Ok(CoreGroup { key, pointer })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    #[test]
    fn store_head_golden_v2() {
        let seed = [0x95; 32];
        let dkey = [0x3d; 32];
        let h = StoreHead {
            version: 2,
            cores: 4,
            datas: 5,
            groups: 0,
            seed: Some(seed),
            default_discovery_key: Some(dkey),
        };
        let want = cat(&[&[0x02, 0x04, 0x05, 0x00, 0x03], &seed, &dkey]);
        assert_eq!(h.encode(), want);
        assert_eq!(StoreHead::decode(&want).unwrap(), h);
        // a fresh JS store's head, and one with only a seed
        let fresh = StoreHead {
            version: 2,
            ..Default::default()
        };
        assert_eq!(fresh.encode(), [2, 0, 0, 0, 0]);
        let seeded = StoreHead {
            version: 2,
            seed: Some(seed),
            ..Default::default()
        };
        assert_eq!(seeded.encode(), cat(&[&[2, 0, 0, 0, 1], &seed]));
        // trailing bytes and unknown flag bits are ignored
        let mut odd = want.clone();
        odd[4] |= 0x80;
        odd.extend_from_slice(b"future");
        assert_eq!(StoreHead::decode(&odd).unwrap(), h);
    }

    #[test]
    fn store_head_reads_v1_and_writes_v2() {
        let seed = [7; 32];
        let dkey = [8; 32];
        let v1 = cat(&[&[0x01, 0x07, 0x03, 0x04], &seed, &dkey]);
        let h = StoreHead::decode(&v1).unwrap();
        assert_eq!(
            h,
            StoreHead {
                version: 1,
                cores: 3,
                datas: 4,
                groups: 0,
                seed: Some(seed),
                default_discovery_key: Some(dkey)
            }
        );
        assert_eq!(h.encode(), cat(&[&[2, 3, 4, 0, 3], &seed, &dkey]));
        // v1 without `allocated`
        let h = StoreHead::decode(&cat(&[&[0x01, 0x02], &seed])).unwrap();
        assert_eq!((h.cores, h.datas, h.seed), (0, 0, Some(seed)));
        assert!(StoreHead::decode(&[3, 0, 0, 0, 0]).is_err());
        assert_eq!(peek_version(&[3, 0, 0, 0, 0]).unwrap(), 3);
    }

    #[test]
    fn core_record_golden() {
        let ns = [0u8; 32];
        let want = cat(&[&[0x02, 0x00, 0x00, 0x01, 0x05], b"alpha", &ns]);
        let r = CoreRecord {
            version: 2,
            core_pointer: 0,
            data_pointer: 0,
            alias: Some(Alias {
                name: "alpha".into(),
                namespace: ns,
            }),
        };
        assert_eq!(r.encode(), want);
        assert_eq!(CoreRecord::decode(&want).unwrap(), r);
        let plain = CoreRecord {
            version: 1,
            core_pointer: 300,
            data_pointer: 2,
            alias: None,
        };
        assert_eq!(plain.encode(), [1, 0xfd, 0x2c, 0x01, 2, 0]);
        assert_eq!(CoreRecord::decode(&plain.encode()).unwrap(), plain);
    }

    #[test]
    fn auth_round_trip_and_layout() {
        let a = Auth {
            key: [1; 32],
            discovery_key: [2; 32],
            manifest: Some(vec![1, 0, 0, 1, 1, 0]),
            key_pair: Some(AuthKeyPair {
                public_key: vec![3; 32],
                secret_key: Some(vec![4; 64]),
            }),
            encryption_key: None,
        };
        let enc = a.encode();
        let want = cat(&[
            &[1; 32],
            &[2; 32],
            &[0x03, 0x06, 1, 0, 0, 1, 1, 0, 0x20],
            &[3; 32],
            &[0x40],
            &[4; 64],
        ]);
        assert_eq!(enc, want);
        assert_eq!(Auth::decode(&enc).unwrap(), a);
        let b = Auth {
            key: [1; 32],
            discovery_key: [2; 32],
            manifest: None,
            key_pair: Some(AuthKeyPair {
                public_key: vec![3; 32],
                secret_key: None,
            }),
            encryption_key: Some(vec![9; 32]),
        };
        let enc = b.encode();
        assert_eq!(enc[64], 0x06);
        assert_eq!(Auth::decode(&enc).unwrap(), b);
    }

    #[test]
    fn core_head_golden() {
        let root = [0x94; 32];
        let sig = [0x01; 68];
        let ts: u64 = 1795560629136;
        let want = cat(&[
            &[0x00, 0x03],
            &root,
            &[0x44],
            &sig,
            &[0x01],
            &ts.to_le_bytes(),
        ]);
        let h = CoreHead {
            fork: 0,
            length: 3,
            root_hash: root,
            signature: Some(sig.to_vec()),
            timestamp: Some(ts),
        };
        assert_eq!(h.encode(), want);
        assert_eq!(CoreHead::decode(&want).unwrap(), h);
        // v1 record: no flags byte at all
        let v1 = cat(&[&[0x01, 0x02], &root, &[0x00]]);
        let h1 = CoreHead::decode(&v1).unwrap();
        assert_eq!(
            (h1.fork, h1.length, h1.signature.clone(), h1.timestamp),
            (1, 2, None, None)
        );
        assert_eq!(h1.encode(), cat(&[&v1, &[0x00]]));
        // timestamp 0 is written as absent, like JS
        let h0 = CoreHead {
            timestamp: Some(0),
            ..h1.clone()
        };
        assert_eq!(h0.encode(), h1.encode());
        // flag set but timestamp truncated
        assert!(CoreHead::decode(&cat(&[&v1, &[0x01, 0x00]])).is_err());
    }

    #[test]
    fn small_records_golden() {
        let hash = [0xee; 32];
        let n = TreeNode {
            index: 0,
            size: 2,
            hash,
        };
        assert_eq!(n.encode(), cat(&[&[0x00, 0x02], &hash]));
        assert_eq!(TreeNode::decode(&n.encode()).unwrap(), n);

        let h = Hints {
            contiguous_length: Some(3),
            ..Default::default()
        };
        assert_eq!(h.encode(), [0x01, 0x03]);
        assert_eq!(Hints::decode(&[0x01, 0x03]).unwrap(), h);
        let all = Hints {
            contiguous_length: Some(1),
            remote_contiguous_length: Some(2),
            recovering: Some(1795560629136),
        };
        assert_eq!(Hints::decode(&all.encode()).unwrap(), all);
        assert_eq!(all.encode()[..3], [0x07, 0x01, 0x02]);
        let zero = Hints {
            contiguous_length: Some(0),
            remote_contiguous_length: Some(0),
            recovering: None,
        };
        assert_eq!(zero.encode(), [0x00]);
        assert_eq!(Hints::decode(&[0x00]).unwrap(), Hints::default());

        let d = Dependency {
            data_pointer: 0,
            length: 3,
        };
        assert_eq!(d.encode(), [0x00, 0x03]);
        assert_eq!(Dependency::decode(&[0x00, 0x03]).unwrap(), d);

        let s = Sessions(vec![Session {
            name: "draft".into(),
            data_pointer: 3,
        }]);
        assert_eq!(s.encode(), b"\x01\x05draft\x03");
        assert_eq!(Sessions::decode(b"\x01\x05draft\x03").unwrap(), s);

        let g = CoreGroup {
            key: Some([5; 32]),
            pointer: 0,
        };
        assert_eq!(g.encode(), cat(&[&[0x01], &[5; 32]]));
        assert_eq!(CoreGroup::decode(&g.encode()).unwrap(), g);
        let g2 = CoreGroup {
            key: None,
            pointer: 7,
        };
        assert_eq!(g2.encode(), [0x02, 0x07]);
        assert_eq!(CoreGroup::decode(&[0x02, 0x07]).unwrap(), g2);
    }

    #[test]
    fn malformed_records_are_errors_not_panics() {
        assert!(StoreHead::decode(&[]).is_err());
        assert!(StoreHead::decode(&[2, 1, 1, 0, 1, 0xaa]).is_err());
        assert!(CoreRecord::decode(&[2, 0, 0, 1, 5, b'a']).is_err());
        assert!(Auth::decode(&[0; 64]).is_err());
        assert!(Auth::decode(&cat(&[&[0; 64], &[0x01, 0x10, 0]])).is_err());
        assert!(CoreHead::decode(&[0, 1, 2]).is_err());
        assert!(TreeNode::decode(&[0, 2, 1]).is_err());
        assert!(Hints::decode(&[0x01]).is_err());
        assert!(Dependency::decode(&[0x00]).is_err());
        assert!(Sessions::decode(&[0xfe, 0xff, 0xff, 0xff, 0xff]).is_err());
        assert!(Sessions::decode(&[0x02, 0x01, b'a', 0x00]).is_err());
        assert!(CoreGroup::decode(&[0x01, 1, 2]).is_err());
        // a huge length prefix must not allocate or panic
        assert!(Auth::decode(&cat(&[
            &[0; 64],
            &[0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]
        ]))
        .is_err());
        // every truncation of valid records fails cleanly
        let rec = CoreRecord {
            version: 2,
            core_pointer: 1,
            data_pointer: 1,
            alias: Some(Alias {
                name: "x".into(),
                namespace: [1; 32],
            }),
        }
        .encode();
        for i in 0..rec.len() {
            assert!(CoreRecord::decode(&rec[..i]).is_err());
        }
    }

    #[test]
    fn decoders_never_panic_on_noise() {
        // a cheap deterministic fuzz over all decoders
        let mut x: u64 = 0x9e3779b97f4a7c15;
        for len in 0..200usize {
            for _ in 0..20 {
                let mut buf = Vec::with_capacity(len);
                for _ in 0..len {
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    buf.push(x as u8);
                }
                let _ = StoreHead::decode(&buf);
                let _ = CoreRecord::decode(&buf);
                let _ = Auth::decode(&buf);
                let _ = CoreHead::decode(&buf);
                let _ = TreeNode::decode(&buf);
                let _ = Hints::decode(&buf);
                let _ = Dependency::decode(&buf);
                let _ = Sessions::decode(&buf);
                let _ = CoreGroup::decode(&buf);
            }
        }
    }
}
