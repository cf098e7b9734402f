//! A hypercore's manifest: who signs it and how. Its hash is the core's key.
//!
//! Two byte layouts exist:
//! - hypercore's (`lib/messages.js` `manifest`): what the key is hashed from and what goes
//!   over the wire. Version 0 has a layout of its own; versions 1+ share one.
//! - hypercore-storage's (`@core/manifest`, framed inside the auth record): the versions 1+
//!   layout for every version, version 0 included. For versions 1+ the two are
//!   byte-identical; for version 0 they differ. See `encode_storage`/`decode_storage`.

use crate::crypto;
use crate::encoding::compact::{DecodeError, Reader, Result, Writer};

const MANIFEST_PATCH: u64 = 0b0001;
const MANIFEST_PROLOGUE: u64 = 0b0010;
const MANIFEST_LINKED: u64 = 0b0100;
const MANIFEST_USER_DATA: u64 = 0b1000;

/// The largest integer a JS number holds exactly; compact-encoding refuses to decode more.
const MAX_SAFE_INTEGER: u64 = (1 << 53) - 1;

/// The only signature scheme: ed25519.
pub const SIGNATURE_ED25519: u64 = 0;
/// The only hash: blake2b.
pub const HASH_BLAKE2B: u64 = 0;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signer {
    /// 0 = ed25519 (the only one).
    pub signature: u64,
    /// Version 0 manifests sign under this namespace; later versions under the manifest hash.
    pub namespace: [u8; 32],
    pub public_key: [u8; 32],
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Prologue {
    /// The tree hash the core must have at `length`.
    pub hash: [u8; 32],
    pub length: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    pub version: u64,
    /// 0 = blake2b (the only one).
    pub hash: u64,
    pub allow_patch: bool,
    pub quorum: u64,
    pub signers: Vec<Signer>,
    pub prologue: Option<Prologue>,
    /// Version 2+ only.
    pub linked: Option<Vec<[u8; 32]>>,
    /// Version 2+ only.
    pub user_data: Option<Vec<u8>>,
}

/// hypercore's `defaultQuorum` for a manifest that gives none: a majority of the signers.
pub fn default_quorum(signers: usize) -> u64 {
    if signers == 0 {
        0
    } else {
        (signers as u64 >> 1) + 1
    }
}

fn safe_uint(r: &mut Reader<'_>) -> Result<u64> {
    let v = r.uint()?;
    if v > MAX_SAFE_INTEGER {
        return Err(DecodeError("integer out of range"));
    }
    Ok(v)
}

fn encode_signer(w: &mut Writer, s: &Signer) {
    w.uint(s.signature).fixed(&s.namespace).fixed(&s.public_key);
}

fn encode_signers(w: &mut Writer, signers: &[Signer]) {
    w.uint(signers.len() as u64);
    for s in signers {
        encode_signer(w, s);
    }
}

/// `strict`: unknown signature ids are errors (hypercore); else kept as they are (storage).
fn decode_signer(r: &mut Reader<'_>, strict: bool) -> Result<Signer> {
    let signature = safe_uint(r)?;
    if strict && signature != SIGNATURE_ED25519 {
        return Err(DecodeError("unknown signature id"));
    }
    Ok(Signer {
        signature,
        namespace: r.array::<32>()?,
        public_key: r.array::<32>()?,
    })
}

fn decode_signers(r: &mut Reader<'_>, strict: bool) -> Result<Vec<Signer>> {
    let n = r.array_len()?;
    // never trust a length for the allocation: each signer is at least 65 bytes
    let mut out = Vec::with_capacity(n.min(r.remaining() / 65));
    for _ in 0..n {
        out.push(decode_signer(r, strict)?);
    }
    Ok(out)
}

fn decode_keys(r: &mut Reader<'_>) -> Result<Vec<[u8; 32]>> {
    let n = r.array_len()?;
    let mut out = Vec::with_capacity(n.min(r.remaining() / 32));
    for _ in 0..n {
        out.push(r.array::<32>()?);
    }
    Ok(out)
}

impl Manifest {
    /// What corestore and hypercore build for `{ version, signers: [{ publicKey }] }`
    /// (hypercore's `createManifest`): blake2b, no patching, quorum 1, the signer under
    /// hypercore's default namespace.
    pub fn single_signer(public_key: &[u8; 32], version: u64) -> Manifest {
        Manifest {
            version,
            hash: HASH_BLAKE2B,
            allow_patch: false,
            quorum: 1,
            signers: vec![Signer {
                signature: SIGNATURE_ED25519,
                namespace: crypto::caps().default_namespace,
                public_key: *public_key,
            }],
            prologue: None,
            linked: None,
            user_data: None,
        }
    }

    /// The checks hypercore's `createManifest` makes on a manifest given by a caller.
    pub fn validate(&self) -> std::result::Result<(), &'static str> {
        if self.hash != HASH_BLAKE2B {
            return Err("Only Blake2b hashes are supported");
        }
        if self
            .signers
            .iter()
            .any(|s| s.signature != SIGNATURE_ED25519)
        {
            return Err("Only Ed25519 signatures are supported");
        }
        if self.quorum > self.signers.len() as u64 {
            return Err("Quorum should not be higher than the number of signers");
        }
        if self.user_data.is_some() && self.version < 2 {
            return Err("Invalid field: userData");
        }
        if self.linked.as_ref().is_some_and(|l| !l.is_empty()) && self.version < 2 {
            return Err("Invalid field: linked");
        }
        Ok(())
    }

    /// As hypercore's `createManifest` leaves it: an empty `linked` list becomes none.
    pub fn normalized(&self) -> Manifest {
        let mut m = self.clone();
        if m.linked.as_ref().is_some_and(|l| l.is_empty()) {
            m.linked = None;
        }
        m
    }

    /// hypercore's manifest encoding (`c.encode(m.manifest, manifest)`).
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(80);
        self.encode_into(&mut w);
        w.into_vec()
    }

    pub fn encode_into(&self, w: &mut Writer) {
        w.uint(self.version);
        if self.version == 0 {
            self.encode_v0(w);
        } else {
            self.encode_body(w);
        }
    }

    /// Everything after the version, in the versions 1+ layout.
    fn encode_body(&self, w: &mut Writer) {
        let mut flags = 0;
        if self.allow_patch {
            flags |= MANIFEST_PATCH;
        }
        if self.prologue.is_some() {
            flags |= MANIFEST_PROLOGUE;
        }
        if self.linked.is_some() {
            flags |= MANIFEST_LINKED;
        }
        if self.user_data.is_some() {
            flags |= MANIFEST_USER_DATA;
        }
        w.uint(flags).uint(self.hash).uint(self.quorum);
        encode_signers(w, &self.signers);
        if let Some(p) = &self.prologue {
            w.fixed(&p.hash).uint(p.length);
        }
        if let Some(linked) = &self.linked {
            w.uint(linked.len() as u64);
            for key in linked {
                w.fixed(key);
            }
        }
        if let Some(data) = &self.user_data {
            w.buffer(data);
        }
    }

    /// Version 0: a type byte picks one of three shapes; linked and user data are dropped,
    /// and so is the prologue unless the manifest has no signers (then only its hash stays).
    fn encode_v0(&self, w: &mut Writer) {
        w.uint(self.hash);
        match &self.prologue {
            Some(p) if self.signers.is_empty() => {
                w.uint(0).fixed(&p.hash);
            }
            _ if self.quorum == 1 && self.signers.len() == 1 && !self.allow_patch => {
                w.uint(1);
                encode_signer(w, &self.signers[0]);
            }
            _ => {
                w.uint(2).uint(self.allow_patch as u64).uint(self.quorum);
                encode_signers(w, &self.signers);
            }
        }
    }

    /// Decodes hypercore's manifest encoding. Trailing bytes are ignored (as the JS does);
    /// unknown versions (> 3), hash or signature ids, and JS-unsafe integers are errors.
    pub fn decode(bytes: &[u8]) -> Result<Manifest> {
        Self::decode_from(&mut Reader::new(bytes))
    }

    /// Decodes one manifest from the reader's position (for manifests inside messages).
    pub fn decode_from(r: &mut Reader<'_>) -> Result<Manifest> {
        let version = safe_uint(r)?;
        if version == 0 {
            return Self::decode_v0(r);
        }
        if version > 3 {
            return Err(DecodeError("unknown manifest version"));
        }
        Self::decode_body(r, version, true)
    }

    fn decode_body(r: &mut Reader<'_>, version: u64, strict: bool) -> Result<Manifest> {
        let flags = safe_uint(r)?;
        let hash = safe_uint(r)?;
        if strict && hash != HASH_BLAKE2B {
            return Err(DecodeError("unknown hash id"));
        }
        let quorum = safe_uint(r)?;
        let signers = decode_signers(r, strict)?;
        let prologue = if flags & MANIFEST_PROLOGUE != 0 {
            Some(Prologue {
                hash: r.array::<32>()?,
                length: safe_uint(r)?,
            })
        } else {
            None
        };
        let linked = if flags & MANIFEST_LINKED != 0 {
            Some(decode_keys(r)?)
        } else {
            None
        };
        let user_data = if flags & MANIFEST_USER_DATA != 0 {
            Some(r.buffer()?.to_vec())
        } else {
            None
        };
        Ok(Manifest {
            version,
            hash,
            allow_patch: flags & MANIFEST_PATCH != 0,
            quorum,
            signers,
            prologue,
            linked,
            user_data,
        })
    }

    fn decode_v0(r: &mut Reader<'_>) -> Result<Manifest> {
        let hash = safe_uint(r)?;
        if hash != HASH_BLAKE2B {
            return Err(DecodeError("unknown hash id"));
        }
        let mut m = Manifest {
            version: 0,
            hash,
            allow_patch: false,
            quorum: 0,
            signers: Vec::new(),
            prologue: None,
            linked: None,
            user_data: None,
        };
        match safe_uint(r)? {
            0 => {
                m.prologue = Some(Prologue {
                    hash: r.array::<32>()?,
                    length: 0,
                });
            }
            1 => {
                m.quorum = 1;
                m.signers.push(decode_signer(r, true)?);
            }
            2 => {
                let flags = safe_uint(r)?;
                m.allow_patch = flags & 1 != 0;
                m.quorum = safe_uint(r)?;
                m.signers = decode_signers(r, true)?;
            }
            _ => return Err(DecodeError("unknown manifest type")),
        }
        Ok(m)
    }

    /// hypercore-storage's `@core/manifest` (the manifest inside the auth record, without
    /// the auth record's length frame): the versions 1+ layout for every version.
    pub fn encode_storage(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(80);
        w.uint(self.version);
        self.encode_body(&mut w);
        w.into_vec()
    }

    /// Decodes hypercore-storage's `@core/manifest`. Like the storage schema it takes any
    /// version and keeps unknown hash/signature ids as they are (run `validate` to refuse them).
    pub fn decode_storage(bytes: &[u8]) -> Result<Manifest> {
        let mut r = Reader::new(bytes);
        let version = safe_uint(&mut r)?;
        Self::decode_body(&mut r, version, false)
    }

    /// hypercore's `manifestHash`: BLAKE2b-256 of the manifest namespace and the encoding.
    /// For any manifest hypercore would build (or `normalized()`), this is the core's key.
    pub fn hash(&self) -> [u8; 32] {
        crypto::hash(&[&crypto::caps().manifest, &self.encode()])
    }

    /// `Hypercore.key(manifest)`: the hash of the normalized manifest.
    pub fn key(&self) -> [u8; 32] {
        self.normalized().hash()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::crypto::test_vectors::{core_vectors, corestore_keys, Json};
    use crate::crypto::{self, hex};

    pub(crate) fn manifest_from_json(j: &Json) -> Manifest {
        assert_eq!(j.get("hash").str(), "blake2b");
        Manifest {
            version: j.get("version").u64(),
            hash: 0,
            allow_patch: j.get("allowPatch").bool(),
            quorum: j.get("quorum").u64(),
            signers: j
                .get("signers")
                .arr()
                .iter()
                .map(|s| {
                    assert_eq!(s.get("signature").str(), "ed25519");
                    Signer {
                        signature: 0,
                        namespace: s.get("namespace").b32(),
                        public_key: s.get("publicKey").b32(),
                    }
                })
                .collect(),
            prologue: match j.get("prologue") {
                Json::Null => None,
                p => Some(Prologue {
                    hash: p.get("hash").b32(),
                    length: p.get("length").u64(),
                }),
            },
            linked: match j.get("linked") {
                Json::Null => None,
                l => Some(l.arr().iter().map(|k| k.b32()).collect()),
            },
            user_data: match j.get("userData") {
                Json::Null => None,
                u => Some(u.bytes()),
            },
        }
    }

    #[test]
    fn corestore_keys_vectors_manifests() {
        let v = corestore_keys();
        let cores = v.get("cores").arr();
        assert!(!cores.is_empty());
        for c in cores {
            let pk = c.get("signerPublicKey").b32();
            let expected = manifest_from_json(c.get("manifest"));
            let m = Manifest::single_signer(&pk, 1);
            assert_eq!(m, expected);
            assert_eq!(hex(&m.hash()), c.get("key").str());
            assert_eq!(hex(&m.key()), c.get("key").str());
            assert_eq!(Manifest::decode(&m.encode()).unwrap(), m);
            assert_eq!(m.encode(), m.encode_storage());
        }
    }

    #[test]
    fn fixture_manifests_encode_hash_and_decode() {
        let v = core_vectors();
        assert_eq!(
            hex(&crypto::caps().manifest),
            v.get("manifestNamespace").str()
        );
        for t in v.get("manifests").arr() {
            let m = manifest_from_json(t.get("input"));
            assert_eq!(hex(&m.encode()), t.get("encoded").str(), "{m:?}");
            assert_eq!(hex(&m.encode_storage()), t.get("storageEncoded").str());
            assert_eq!(hex(&m.hash()), t.get("hash").str());
            assert_eq!(hex(&m.key()), t.get("key").str());
            assert!(m.validate().is_ok());

            // decoding gives back the manifest, except what the v0 layout cannot carry
            let d = Manifest::decode(&t.get("encoded").bytes()).unwrap();
            assert_eq!(d.encode(), m.encode());
            assert_eq!(d.hash(), m.hash());
            if m.version > 0 {
                assert_eq!(d, m);
            }
            let s = Manifest::decode_storage(&t.get("storageEncoded").bytes()).unwrap();
            assert_eq!(s, m);
        }
        for c in v.get("cores").arr() {
            let m = manifest_from_json(c.get("manifest"));
            assert_eq!(hex(&m.encode()), c.get("manifestEncoded").str());
            assert_eq!(
                hex(&m.encode_storage()),
                c.get("storageManifestEncoded").str()
            );
            assert_eq!(hex(&m.hash()), c.get("key").str());
            let pk = c.get("signerPublicKey").b32();
            if m.user_data.is_none() {
                assert_eq!(Manifest::single_signer(&pk, m.version), m);
            }
        }
    }

    #[test]
    fn v0_storage_layout_differs_from_hypercore_layout() {
        let m = Manifest::single_signer(&[7; 32], 0);
        assert_ne!(m.encode(), m.encode_storage());
        // a storage-encoded v0 manifest decoded as hypercore's layout is garbage or an error
        let back = Manifest::decode_storage(&m.encode_storage()).unwrap();
        assert_eq!(back, m);
    }

    #[test]
    fn decode_refuses_bad_input_without_panicking() {
        let good = Manifest::single_signer(&[1; 32], 1).encode();
        // every truncation is an error
        for n in 0..good.len() {
            assert!(Manifest::decode(&good[..n]).is_err(), "len {n}");
        }
        // unknown version, hash id, signature id
        let mut bad = good.clone();
        bad[0] = 4;
        assert!(Manifest::decode(&bad).is_err());
        let mut bad = good.clone();
        bad[2] = 1;
        assert!(Manifest::decode(&bad).is_err());
        let mut bad = good.clone();
        bad[5] = 1;
        assert!(Manifest::decode(&bad).is_err());
        // huge array length
        assert!(Manifest::decode(&[1, 0, 0, 1, 0xfe, 0, 0, 0, 0x10]).is_err());
        // unsafe integer quorum
        let mut w = Writer::new();
        w.uint(1).uint(0).uint(0).uint(1 << 60).uint(0);
        assert!(Manifest::decode(&w.buf).is_err());
        // v0 unknown type
        assert!(Manifest::decode(&[0, 0, 3]).is_err());
        // arbitrary garbage never panics
        let mut x = 0x1234_5678u32;
        for len in 0..200 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    (x % 7) as u8
                })
                .collect();
            let _ = Manifest::decode(&bytes);
            let _ = Manifest::decode_storage(&bytes);
        }
    }

    #[test]
    fn validate_mirrors_create_manifest() {
        let mut m = Manifest::single_signer(&[1; 32], 1);
        assert!(m.validate().is_ok());
        m.quorum = 2;
        assert!(m.validate().is_err());
        m.quorum = 1;
        m.user_data = Some(vec![1]);
        assert!(m.validate().is_err());
        m.version = 2;
        assert!(m.validate().is_ok());
        assert_eq!(default_quorum(0), 0);
        assert_eq!(default_quorum(1), 1);
        assert_eq!(default_quorum(3), 2);
        assert_eq!(default_quorum(4), 3);
    }
}
