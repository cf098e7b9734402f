//! What a core's writer signs (the tree signable) and the signature bytes as hypercore
//! stores them in the head and sends them in upgrades (lib/verifier.js, lib/multisig.js).
//!
//! Per manifest version:
//! - every version signs `tree_signable(ctx, tree_hash, length, fork)`: the signing context
//!   `ctx` is the signer's namespace for version 0 and the manifest hash for versions 1+;
//! - a single-signer manifest without patching stores the raw 64-byte signature in
//!   version 0, and a one-proof multisig (68 bytes) in versions 1+;
//! - multisigs have a v0 and a v1 layout (`MultiSignatureV0`, `MultiSignature`);
//! - versions 1+ with a prologue accept the prologue's tree at its length, unsigned.
//!
//! Compat cores (key == the signer's public key, hypercore 10 style) sign
//! `tree_signable_compat` instead (`sign_core_tree`, `verify_core_tree`): corestore makes them
//! for `get({ key: publicKey, keyPair })`.

use std::collections::HashMap;

use crate::core::manifest::Manifest;
use crate::core::{merkle, proof};
use crate::crypto::{self, KeyPair};
use crate::encoding::compact::{Reader, Result, Writer};
use crate::storage::TreeNode;

/// hypercore `caps.treeSignable`: 112 bytes, TREE || ctx || tree hash || length || fork.
pub fn tree_signable(
    manifest_hash: &[u8; 32],
    tree_hash: &[u8; 32],
    length: u64,
    fork: u64,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(112);
    out.extend_from_slice(&crypto::caps().tree);
    out.extend_from_slice(manifest_hash);
    out.extend_from_slice(tree_hash);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&fork.to_le_bytes());
    out
}

/// hypercore `caps.treeSignableCompat`: [TREE ||] tree hash || length || fork.
pub fn tree_signable_compat(
    tree_hash: &[u8; 32],
    length: u64,
    fork: u64,
    no_header: bool,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(80);
    if !no_header {
        out.extend_from_slice(&crypto::caps().tree);
    }
    out.extend_from_slice(tree_hash);
    out.extend_from_slice(&length.to_le_bytes());
    out.extend_from_slice(&fork.to_le_bytes());
    out
}

/// The context signer `signer` signs under: its namespace in version 0, the manifest
/// hash in versions 1+. None when there is no such signer.
pub fn signing_context(manifest: &Manifest, signer: usize) -> Option<[u8; 32]> {
    let s = manifest.signers.get(signer)?;
    Some(if manifest.version == 0 {
        s.namespace
    } else {
        manifest.hash()
    })
}

/// hypercore `Verifier.isCompat(key, manifest)`: one signer whose public key is the key.
pub fn is_compat(key: &[u8; 32], manifest: &Manifest) -> bool {
    manifest.signers.len() == 1 && manifest.signers[0].public_key == *key
}

/// A tree node inside a multisig patch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchNode {
    pub index: u64,
    pub size: u64,
    pub hash: [u8; 32],
}

/// One signer's proof in a v1 multisig; `patch` is how many blocks past the signed length
/// the signer's signature covers (0 = none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proof {
    pub signer: u64,
    pub signature: [u8; 64],
    pub patch: u64,
}

/// hypercore `multiSignature` (manifest versions 1+).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiSignature {
    pub proofs: Vec<Proof>,
    pub patch: Vec<PatchNode>,
}

/// A v0 proof's patch: the upgrade it covers, nodes as positions in the patch list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatchV0 {
    pub start: u64,
    pub length: u64,
    pub nodes: Vec<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofV0 {
    pub signer: u64,
    pub signature: [u8; 64],
    pub patch: Option<PatchV0>,
}

/// hypercore `multiSignaturev0` (manifest version 0).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MultiSignatureV0 {
    pub proofs: Vec<ProofV0>,
    pub patch: Vec<PatchNode>,
}

fn encode_nodes(w: &mut Writer, nodes: &[PatchNode]) {
    w.uint(nodes.len() as u64);
    for n in nodes {
        w.uint(n.index).uint(n.size).fixed(&n.hash);
    }
}

fn decode_nodes(r: &mut Reader<'_>) -> Result<Vec<PatchNode>> {
    let n = r.array_len()?;
    let mut out = Vec::with_capacity(n.min(r.remaining() / 34));
    for _ in 0..n {
        out.push(PatchNode {
            index: r.uint()?,
            size: r.uint()?,
            hash: r.array::<32>()?,
        });
    }
    Ok(out)
}

impl MultiSignature {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + 66 * self.proofs.len());
        w.uint(self.proofs.len() as u64);
        for p in &self.proofs {
            w.uint(p.signer).fixed(&p.signature).uint(p.patch);
        }
        encode_nodes(&mut w, &self.patch);
        w.into_vec()
    }

    /// Trailing bytes are ignored, as in the JS.
    pub fn decode(bytes: &[u8]) -> Result<MultiSignature> {
        let mut r = Reader::new(bytes);
        let n = r.array_len()?;
        let mut proofs = Vec::with_capacity(n.min(r.remaining() / 66));
        for _ in 0..n {
            proofs.push(Proof {
                signer: r.uint()?,
                signature: r.array::<64>()?,
                patch: r.uint()?,
            });
        }
        let patch = decode_nodes(&mut r)?;
        Ok(MultiSignature { proofs, patch })
    }
}

impl MultiSignatureV0 {
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::with_capacity(4 + 67 * self.proofs.len());
        w.uint(self.proofs.len() as u64);
        for p in &self.proofs {
            w.uint(p.patch.is_some() as u64)
                .uint(p.signer)
                .fixed(&p.signature);
            if let Some(patch) = &p.patch {
                w.uint(patch.start)
                    .uint(patch.length)
                    .uint(patch.nodes.len() as u64);
                for n in &patch.nodes {
                    w.uint(*n);
                }
            }
        }
        encode_nodes(&mut w, &self.patch);
        w.into_vec()
    }

    /// Trailing bytes are ignored, as in the JS.
    pub fn decode(bytes: &[u8]) -> Result<MultiSignatureV0> {
        let mut r = Reader::new(bytes);
        let n = r.array_len()?;
        let mut proofs = Vec::with_capacity(n.min(r.remaining() / 66));
        for _ in 0..n {
            let flags = r.uint()?;
            let signer = r.uint()?;
            let signature = r.array::<64>()?;
            let patch = if flags & 1 != 0 {
                let start = r.uint()?;
                let length = r.uint()?;
                let count = r.array_len()?;
                let mut nodes = Vec::with_capacity(count.min(r.remaining()));
                for _ in 0..count {
                    nodes.push(r.uint()?);
                }
                Some(PatchV0 {
                    start,
                    length,
                    nodes,
                })
            } else {
                None
            };
            proofs.push(ProofV0 {
                signer,
                signature,
                patch,
            });
        }
        let patch = decode_nodes(&mut r)?;
        Ok(MultiSignatureV0 { proofs, patch })
    }
}

/// hypercore `multisig.assemble` / `assemblev0` for proofs without patches:
/// `(signer index, signature)` pairs, in the order given.
pub fn assemble(manifest: &Manifest, proofs: &[(u64, [u8; 64])]) -> Vec<u8> {
    if manifest.version == 0 {
        MultiSignatureV0 {
            proofs: proofs
                .iter()
                .map(|(signer, signature)| ProofV0 {
                    signer: *signer,
                    signature: *signature,
                    patch: None,
                })
                .collect(),
            patch: Vec::new(),
        }
        .encode()
    } else {
        MultiSignature {
            proofs: proofs
                .iter()
                .map(|(signer, signature)| Proof {
                    signer: *signer,
                    signature: *signature,
                    patch: 0,
                })
                .collect(),
            patch: Vec::new(),
        }
        .encode()
    }
}

/// hypercore `Verifier.sign`: the signature of `key_pair` over the tree, as hypercore stores
/// it in the head. For a one-signer manifest of version 1+ that is a one-proof multisig
/// (68 bytes); for version 0, or a manifest with several signers, the raw 64-byte signature
/// (several signers' signatures are combined with `assemble`). None when `key_pair` is not
/// a signer of the manifest.
pub fn try_sign_tree(
    manifest: &Manifest,
    key_pair: &KeyPair,
    tree_hash: &[u8; 32],
    length: u64,
    fork: u64,
) -> Option<Vec<u8>> {
    let index = manifest
        .signers
        .iter()
        .position(|s| s.public_key == key_pair.public_key)?;
    let ctx = signing_context(manifest, index)?;
    let signature = crypto::sign(
        &key_pair.secret_key,
        &tree_signable(&ctx, tree_hash, length, fork),
    );
    if manifest.signers.len() != 1 || manifest.version == 0 {
        return Some(signature.to_vec());
    }
    Some(assemble(manifest, &[(0, signature)]))
}

/// `try_sign_tree`, with an empty signature (which never verifies) when `key_pair` is not
/// a signer. Check `key_pair` against the manifest first.
pub fn sign_tree(
    manifest: &Manifest,
    key_pair: &KeyPair,
    tree_hash: &[u8; 32],
    length: u64,
    fork: u64,
) -> Vec<u8> {
    try_sign_tree(manifest, key_pair, tree_hash, length, fork).unwrap_or_default()
}

/// What `key_pair` signs for a tree of the core `key` with `manifest`, as hypercore's
/// `Verifier.sign`: a compat core (key = the signer's public key) signs the compat signable
/// with a raw signature; None when `key_pair` is not a signer.
pub fn sign_core_tree(
    key: &[u8; 32],
    manifest: &Manifest,
    key_pair: &KeyPair,
    tree_hash: &[u8; 32],
    length: u64,
    fork: u64,
) -> Option<Vec<u8>> {
    if is_compat(key, manifest) {
        if manifest.signers[0].public_key != key_pair.public_key {
            return None;
        }
        let msg = tree_signable_compat(tree_hash, length, fork, false);
        return Some(crypto::sign(&key_pair.secret_key, &msg).to_vec());
    }
    try_sign_tree(manifest, key_pair, tree_hash, length, fork)
}

/// `verify_tree` for the core `key`: compat cores check the compat signable.
pub fn verify_core_tree(
    key: &[u8; 32],
    manifest: &Manifest,
    signature: &[u8],
    tree: Tree<'_>,
) -> bool {
    if is_compat(key, manifest) {
        let pk = &manifest.signers[0].public_key;
        return verify_tree_compat(pk, signature, tree.hash, tree.length, tree.fork, false);
    }
    verify_tree(manifest, signature, tree)
}

/// The tree a signature is checked against: its hash, length and fork, and its full roots
/// where the caller has them (a multisig proof with a patch is checked over a longer tree
/// grown from them; without the roots such a proof is refused).
#[derive(Debug, Clone, Copy)]
pub struct Tree<'a> {
    pub hash: &'a [u8; 32],
    pub roots: Option<&'a [TreeNode]>,
    pub length: u64,
    pub fork: u64,
}

impl<'a> Tree<'a> {
    pub fn new(hash: &'a [u8; 32], length: u64, fork: u64) -> Tree<'a> {
        Tree {
            hash,
            roots: None,
            length,
            fork,
        }
    }

    pub fn with_roots(mut self, roots: &'a [TreeNode]) -> Tree<'a> {
        self.roots = Some(roots);
        self
    }
}

/// hypercore `Verifier.verify` for a tree of `length` blocks with `tree_hash` at `fork`:
/// a quorum of distinct signers must have signed it (a prologue's tree needs none).
/// False for anything malformed, never a panic. A proof with a patch (a signature over a
/// longer tree, `allow_patch` manifests) is checked over that tree, grown from the tree's
/// roots by the patch nodes (`proof::patched_roots`).
pub fn verify_tree(manifest: &Manifest, signature: &[u8], tree: Tree<'_>) -> bool {
    if manifest.version == 0 {
        if !manifest.allow_patch && manifest.signers.len() == 1 {
            return verify_signer(manifest, 0, signature, tree.hash, tree.length, tree.fork);
        }
        return verify_multi(manifest, signature, tree);
    }
    if let Some(p) = &manifest.prologue {
        if tree.length <= p.length {
            return tree.length == p.length && *tree.hash == p.hash;
        }
    }
    verify_multi(manifest, signature, tree)
}

fn verify_signer(
    manifest: &Manifest,
    index: usize,
    signature: &[u8],
    tree_hash: &[u8; 32],
    length: u64,
    fork: u64,
) -> bool {
    let (Some(signer), Some(ctx)) = (
        manifest.signers.get(index),
        signing_context(manifest, index),
    ) else {
        return false;
    };
    crypto::verify(
        &signer.public_key,
        &tree_signable(&ctx, tree_hash, length, fork),
        signature,
    )
}

/// (signer, signature, patch length) of each proof of a multisig.
type Proofs = Vec<(u64, [u8; 64], u64)>;

fn verify_multi(manifest: &Manifest, signature: &[u8], tree: Tree<'_>) -> bool {
    if manifest.quorum == 0 {
        return false;
    }
    // the proofs, and the patch's nodes
    let (proofs, nodes): (Proofs, Vec<PatchNode>) = if manifest.version == 0 {
        match MultiSignatureV0::decode(signature) {
            Ok(m) => (
                m.proofs
                    .into_iter()
                    .map(|p| (p.signer, p.signature, p.patch.map_or(0, |x| x.length)))
                    .collect(),
                m.patch,
            ),
            Err(_) => return false,
        }
    } else {
        match MultiSignature::decode(signature) {
            Ok(m) => (
                m.proofs
                    .into_iter()
                    .map(|p| (p.signer, p.signature, p.patch))
                    .collect(),
                m.patch,
            ),
            Err(_) => return false,
        }
    };
    if (proofs.len() as u64) < manifest.quorum {
        return false;
    }
    // as hypercore: the patch nodes by index (a later node of the same index wins)
    let patch_nodes: HashMap<u64, TreeNode> = if manifest.allow_patch {
        nodes
            .into_iter()
            .map(|n| {
                let node = TreeNode {
                    index: n.index,
                    size: n.size,
                    hash: n.hash,
                };
                (n.index, node)
            })
            .collect()
    } else {
        HashMap::new()
    };
    let mut tried = vec![false; manifest.signers.len()];
    for (signer, sig, patch) in proofs.iter().take(manifest.quorum as usize) {
        let Ok(i) = usize::try_from(*signer) else {
            return false;
        };
        // a patched proof signs the longer tree the patch grows this one into
        let patched;
        let (hash, length) = if *patch != 0 && manifest.allow_patch {
            let Some(roots) = tree.roots else {
                return false;
            };
            let prologue = manifest.prologue.as_ref();
            let Some(grown) =
                proof::patched_roots(roots, tree.length, *patch, &patch_nodes, prologue)
            else {
                return false;
            };
            patched = merkle::hash_roots(&grown);
            (&patched, tree.length + *patch)
        } else {
            (tree.hash, tree.length)
        };
        if i >= tried.len() || tried[i] {
            return false;
        }
        tried[i] = true;
        if !verify_signer(manifest, i, sig, hash, length, tree.fork) {
            return false;
        }
    }
    true
}

/// `verify_tree` for a compat core (`is_compat`): the raw signature over
/// `tree_signable_compat` (`legacy` = hypercore's legacy option: no TREE header).
pub fn verify_tree_compat(
    public_key: &[u8; 32],
    signature: &[u8],
    tree_hash: &[u8; 32],
    length: u64,
    fork: u64,
    legacy: bool,
) -> bool {
    crypto::verify(
        public_key,
        &tree_signable_compat(tree_hash, length, fork, legacy),
        signature,
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::flat_tree;
    use crate::core::manifest::tests::manifest_from_json;
    use crate::crypto::test_vectors::{core_vectors, corestore_keys, fixture_block, Json};
    use crate::crypto::{hex, CORESTORE_DEFAULT_NAMESPACE};

    type Root = (u64, u64, [u8; 32]);

    fn vt(m: &Manifest, sig: &[u8], th: &[u8; 32], length: u64, fork: u64) -> bool {
        verify_tree(m, sig, Tree::new(th, length, fork))
    }

    fn vct(
        key: &[u8; 32],
        m: &Manifest,
        sig: &[u8],
        th: &[u8; 32],
        length: u64,
        fork: u64,
    ) -> bool {
        verify_core_tree(key, m, sig, Tree::new(th, length, fork))
    }

    /// The hash and size of node `index` over the given leaves (index / 2 < leaves.len()).
    fn node(leaves: &[(u64, [u8; 32])], index: u64) -> (u64, [u8; 32]) {
        match flat_tree::children(index) {
            None => leaves[(index / 2) as usize],
            Some((l, r)) => {
                let (ls, lh) = node(leaves, l);
                let (rs, rh) = node(leaves, r);
                (ls + rs, crypto::parent_hash((r, rs, &rh), (l, ls, &lh)))
            }
        }
    }

    fn roots(leaves: &[(u64, [u8; 32])]) -> Vec<Root> {
        flat_tree::full_roots(2 * leaves.len() as u64)
            .into_iter()
            .map(|i| {
                let (size, hash) = node(leaves, i);
                (i, size, hash)
            })
            .collect()
    }

    fn key_pair_of(primary: &[u8; 32], namespaces: &[Json], name: &str) -> KeyPair {
        let mut ns = CORESTORE_DEFAULT_NAMESPACE;
        for n in namespaces {
            ns = crypto::namespace(&ns, n.str().as_bytes());
        }
        crypto::create_key_pair(primary, &ns, name.as_bytes())
    }

    /// The byte ranges of the ed25519 signatures inside `sig` (raw or multisig).
    fn signature_ranges(m: &Manifest, sig: &[u8]) -> Vec<std::ops::Range<usize>> {
        if sig.len() == 64 {
            return std::iter::once(0..64).collect();
        }
        let sigs: Vec<[u8; 64]> = if m.version == 0 {
            MultiSignatureV0::decode(sig)
                .unwrap()
                .proofs
                .iter()
                .map(|p| p.signature)
                .collect()
        } else {
            MultiSignature::decode(sig)
                .unwrap()
                .proofs
                .iter()
                .map(|p| p.signature)
                .collect()
        };
        sigs.iter()
            .take(m.quorum as usize)
            .map(|s| {
                let at = sig.windows(64).position(|w| w == s).unwrap();
                at..at + 64
            })
            .collect()
    }

    fn check_tampering(m: &Manifest, sig: &[u8], th: &[u8; 32], length: u64, fork: u64) {
        assert!(vt(m, sig, th, length, fork));
        assert!(!vt(m, sig, th, length + 1, fork));
        assert!(!vt(m, sig, th, length, fork + 1));
        let mut other = *th;
        other[0] ^= 1;
        assert!(!vt(m, sig, &other, length, fork));
        for range in signature_ranges(m, sig) {
            for i in range {
                let mut bad = sig.to_vec();
                bad[i] ^= 0x20;
                assert!(!vt(m, &bad, th, length, fork), "flipped byte {i}");
            }
        }
        // another signer index, or a repeated signer
        if sig.len() != 64 {
            if m.version == 0 {
                let mut ms = MultiSignatureV0::decode(sig).unwrap();
                ms.proofs[0].signer = (ms.proofs[0].signer + 1) % 4;
                assert!(!vt(m, &ms.encode(), th, length, fork));
            } else {
                let mut ms = MultiSignature::decode(sig).unwrap();
                ms.proofs[0].signer = (ms.proofs[0].signer + 1) % 4;
                assert!(!vt(m, &ms.encode(), th, length, fork));
                // a patch proof on a manifest without allow_patch is checked as if unpatched
                let mut ms = MultiSignature::decode(sig).unwrap();
                ms.proofs[0].patch = 3;
                assert_eq!(vt(m, &ms.encode(), th, length, fork), !m.allow_patch);
            }
        }
        for n in 0..sig.len() {
            assert!(!vt(m, &sig[..n], th, length, fork), "truncated to {n}");
        }
    }

    #[test]
    fn fixture_cores_reproduce_trees_and_signatures() {
        let v = core_vectors();
        let primary = v.get("primaryKey").b32();
        let cores = v.get("cores").arr();
        assert_eq!(cores.len(), 5);
        let mut checked = 0;
        for c in cores {
            let kp = key_pair_of(&primary, c.get("namespaces").arr(), c.get("name").str());
            assert_eq!(hex(&kp.public_key), c.get("signerPublicKey").str());
            assert_eq!(hex(&kp.secret_key), c.get("signerSecretKey").str());
            let m = manifest_from_json(c.get("manifest"));
            let key = m.hash();
            assert_eq!(hex(&key), c.get("key").str());
            assert_eq!(
                hex(&crypto::discovery_key(&key)),
                c.get("discoveryKey").str()
            );
            assert_eq!(crypto::id_encode(&key), c.get("id").str());
            assert_eq!(crypto::id_decode(c.get("id").str()), Some(key));

            let mut leaves: Vec<(u64, [u8; 32])> = Vec::new();
            for step in c.get("steps").arr() {
                let from = match step.get("op").str() {
                    "append" => {
                        let from = leaves.len();
                        for b in step.get("blocks").arr() {
                            let block =
                                fixture_block(b.get("seed").str(), b.get("size").u64() as usize);
                            leaves.push((block.len() as u64, crypto::leaf_hash(&block)));
                        }
                        from
                    }
                    "truncate" => {
                        leaves.truncate(step.get("to").u64() as usize);
                        leaves.len()
                    }
                    op => panic!("unknown op {op}"),
                };
                let new_leaves: Vec<String> = leaves[from..].iter().map(|l| hex(&l.1)).collect();
                let expected: Vec<String> = step
                    .get("newLeafHashes")
                    .arr()
                    .iter()
                    .map(|h| h.str().to_string())
                    .collect();
                assert_eq!(new_leaves, expected);

                let length = step.get("length").u64();
                let fork = step.get("fork").u64();
                assert_eq!(leaves.len() as u64, length);
                let r = roots(&leaves);
                let expected_roots: Vec<Root> = step
                    .get("roots")
                    .arr()
                    .iter()
                    .map(|x| {
                        (
                            x.get("index").u64(),
                            x.get("size").u64(),
                            x.get("hash").b32(),
                        )
                    })
                    .collect();
                assert_eq!(r, expected_roots);
                let byte_length: u64 = r.iter().map(|x| x.1).sum();
                assert_eq!(byte_length, step.get("byteLength").u64());
                let th = crypto::tree_hash(&r);
                assert_eq!(hex(&th), step.get("treeHash").str());

                let sig = sign_tree(&m, &kp, &th, length, fork);
                assert_eq!(
                    hex(&sig),
                    step.get("signature").str(),
                    "{} step",
                    c.get("label").str()
                );
                assert_eq!(sig.len(), if m.version == 0 { 64 } else { 68 });
                check_tampering(&m, &sig, &th, length, fork);
                checked += 1;
            }
        }
        assert!(checked >= 40);
    }

    #[test]
    fn corestore_keys_trees_reproduce() {
        let v = corestore_keys();
        for t in v.get("trees").arr() {
            let primary = t.get("primaryKey").b32();
            let kp = key_pair_of(&primary, &[], t.get("name").str());
            let m = Manifest::single_signer(&kp.public_key, 1);
            assert_eq!(hex(&m.hash()), t.get("key").str());
            let mut leaves = Vec::new();
            for step in t.get("steps").arr() {
                let block = step.get("appended").bytes();
                leaves.push((block.len() as u64, crypto::leaf_hash(&block)));
                let length = step.get("length").u64();
                assert_eq!(leaves.len() as u64, length);
                let r = roots(&leaves);
                assert_eq!(
                    r.iter().map(|x| x.1).sum::<u64>(),
                    step.get("byteLength").u64()
                );
                let th = crypto::tree_hash(&r);
                assert_eq!(hex(&th), step.get("treeHash").str());
                let sig = sign_tree(&m, &kp, &th, length, 0);
                assert_eq!(hex(&sig), step.get("signature").str());
                check_tampering(&m, &sig, &th, length, 0);
            }
        }
    }

    #[test]
    fn fixture_manifests_sign_and_verify_like_js() {
        let v = core_vectors();
        let kps: Vec<KeyPair> = (1u8..=3)
            .map(|i| crypto::key_pair_from_seed(&[i; 32]))
            .collect();
        let mut assembled = 0;
        for t in v.get("manifests").arr() {
            let m = manifest_from_json(t.get("input"));
            let th = t.get("treeHash").b32();
            let length = t.get("length").u64();
            let fork = t.get("fork").u64();
            let ctx = if m.version == 0 {
                m.signers
                    .first()
                    .map_or(crypto::caps().default_namespace, |s| s.namespace)
            } else {
                m.hash()
            };
            assert_eq!(
                hex(&tree_signable(&ctx, &th, length, fork)),
                t.get("signable").str()
            );

            for s in t.get("signatures").arr() {
                let sig = s.get("signature").bytes();
                let valid = s.get("valid").bool();
                assert_eq!(vt(&m, &sig, &th, length, fork), valid, "{m:?} {s:?}");
                match s.get("kind").str() {
                    "sign" => {
                        let pk = s.get("signerPublicKey").b32();
                        let kp = kps.iter().find(|k| k.public_key == pk).unwrap();
                        let mine = try_sign_tree(&m, kp, &th, length, fork).unwrap();
                        assert_eq!(mine, sig);
                    }
                    "assemble" => {
                        let picks: Vec<(u64, [u8; 64])> = s
                            .get("picks")
                            .arr()
                            .iter()
                            .map(|p| {
                                let i = p.u64() as usize;
                                let ctx = signing_context(&m, i).unwrap();
                                let msg = tree_signable(&ctx, &th, length, fork);
                                (i as u64, crypto::sign(&kps[i].secret_key, &msg))
                            })
                            .collect();
                        assert_eq!(assemble(&m, &picks), sig);
                        if valid {
                            check_tampering(&m, &sig, &th, length, fork);
                        }
                        assembled += 1;
                    }
                    k => panic!("unknown kind {k}"),
                }
            }
            if let Json::Arr(pv) = t.get("prologueVerify") {
                let p = m.prologue.clone().unwrap();
                assert_eq!(vt(&m, &[], &p.hash, p.length, 0), pv[0].bool());
                assert_eq!(vt(&m, &[], &th, p.length, 0), pv[1].bool());
            }
        }
        assert!(assembled >= 12);
    }

    #[test]
    fn signing_needs_a_declared_signer() {
        let kp = crypto::key_pair_from_seed(&[9; 32]);
        let other = crypto::key_pair_from_seed(&[8; 32]);
        let m = Manifest::single_signer(&kp.public_key, 1);
        assert!(try_sign_tree(&m, &other, &[0; 32], 1, 0).is_none());
        assert!(sign_tree(&m, &other, &[0; 32], 1, 0).is_empty());
        let sig = sign_tree(&m, &kp, &[0; 32], 1, 0);
        assert_eq!(sig.len(), 68);
        assert!(vt(&m, &sig, &[0; 32], 1, 0));
    }

    #[test]
    fn core_signing_dispatches_on_compat() {
        let kp = crypto::key_pair_from_seed(&[5; 32]);
        let other = crypto::key_pair_from_seed(&[6; 32]);
        let th = [3u8; 32];
        let m = Manifest::single_signer(&kp.public_key, 1);
        // key = public key: the compat signable, a raw signature
        let sig = sign_core_tree(&kp.public_key, &m, &kp, &th, 4, 0).unwrap();
        assert!(verify_tree_compat(&kp.public_key, &sig, &th, 4, 0, false));
        assert!(vct(&kp.public_key, &m, &sig, &th, 4, 0));
        assert!(!vt(&m, &sig, &th, 4, 0));
        assert!(!vct(&kp.public_key, &m, &sig, &th, 5, 0));
        // key = manifest hash: the manifest's own scheme
        let key = m.hash();
        let sig = sign_core_tree(&key, &m, &kp, &th, 4, 0).unwrap();
        assert!(vct(&key, &m, &sig, &th, 4, 0));
        assert!(!vct(&kp.public_key, &m, &sig, &th, 4, 0));
        // not a signer
        assert!(sign_core_tree(&kp.public_key, &m, &other, &th, 4, 0).is_none());
        assert!(sign_core_tree(&key, &m, &other, &th, 4, 0).is_none());
    }

    #[test]
    fn compat_signables() {
        let kp = crypto::key_pair_from_seed(&[5; 32]);
        let th = [3u8; 32];
        for legacy in [false, true] {
            let msg = tree_signable_compat(&th, 7, 1, legacy);
            assert_eq!(msg.len(), if legacy { 48 } else { 80 });
            let sig = crypto::sign(&kp.secret_key, &msg);
            assert!(verify_tree_compat(&kp.public_key, &sig, &th, 7, 1, legacy));
            assert!(!verify_tree_compat(
                &kp.public_key,
                &sig,
                &th,
                7,
                1,
                !legacy
            ));
        }
        assert!(is_compat(
            &kp.public_key,
            &Manifest::single_signer(&kp.public_key, 1)
        ));
    }

    #[test]
    fn garbage_signatures_never_panic() {
        let kps: Vec<KeyPair> = (1u8..=3)
            .map(|i| crypto::key_pair_from_seed(&[i; 32]))
            .collect();
        let mut manifests = Vec::new();
        for version in [0, 1] {
            let mut m = Manifest::single_signer(&kps[0].public_key, version);
            manifests.push(m.clone());
            m.signers = kps
                .iter()
                .map(|k| Manifest::single_signer(&k.public_key, version).signers[0].clone())
                .collect();
            m.quorum = 2;
            manifests.push(m.clone());
            m.allow_patch = true;
            manifests.push(m);
        }
        let mut x = 0x9e37_79b9u32;
        for len in 0..300 {
            let bytes: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    if x.is_multiple_of(3) {
                        (x >> 8) as u8
                    } else {
                        (x % 4) as u8
                    }
                })
                .collect();
            for m in &manifests {
                assert!(!vt(m, &bytes, &[0; 32], 3, 0));
            }
        }
    }

    /// Multisig proofs with patches (hypercore `multisig.partialSignature` over a signer's
    /// longer tree): checked over the tree the patch grows, and only with the right nodes.
    #[test]
    fn patched_multisig_proofs() {
        let leaves: Vec<(u64, [u8; 32])> = (0..6u8)
            .map(|i| (1, crypto::leaf_hash(&[b'0' + i])))
            .collect();
        let tree_at = |n: usize| -> Vec<TreeNode> {
            roots(&leaves[..n])
                .into_iter()
                .map(|(index, size, hash)| TreeNode { index, size, hash })
                .collect()
        };
        let node_at = |index: u64| {
            let (size, hash) = node(&leaves, index);
            PatchNode { index, size, hash }
        };
        let kps: Vec<KeyPair> = (1..=3u8)
            .map(|i| crypto::key_pair_from_seed(&[i; 32]))
            .collect();
        let mut m = Manifest::single_signer(&kps[0].public_key, 1);
        m.signers = kps
            .iter()
            .map(|k| Manifest::single_signer(&k.public_key, 1).signers.remove(0))
            .collect();
        m.quorum = 2;
        m.allow_patch = true;
        let ctx = m.hash();
        let sign = |kp: &KeyPair, n: usize| {
            let t = tree_at(n);
            let h = merkle::hash_roots(&t);
            crypto::sign(&kp.secret_key, &tree_signable(&ctx, &h, n as u64, 0))
        };

        // (target length, signer 0's longer length, the patch nodes hypercore sends, nodes
        // that would make the longer tree's hash without joining the shorter tree)
        let cases: [(usize, usize, Vec<u64>, Vec<u64>); 3] = [
            (4, 6, vec![9], vec![]),
            (3, 4, vec![6], vec![3]),
            (2, 6, vec![5, 9], vec![3, 9]),
        ];
        for (len, longer, nodes, shortcut) in cases {
            let roots = tree_at(len);
            let hash = merkle::hash_roots(&roots);
            let tree = Tree::new(&hash, len as u64, 0).with_roots(&roots);
            let sig = |patch: Vec<PatchNode>, p: u64| {
                MultiSignature {
                    proofs: vec![
                        Proof {
                            signer: 0,
                            signature: sign(&kps[0], longer),
                            patch: p,
                        },
                        Proof {
                            signer: 1,
                            signature: sign(&kps[1], len),
                            patch: 0,
                        },
                    ],
                    patch,
                }
                .encode()
            };
            let good: Vec<PatchNode> = nodes.iter().map(|&i| node_at(i)).collect();
            let p = (longer - len) as u64;
            assert!(
                verify_tree(&m, &sig(good.clone(), p), tree),
                "{len} -> {longer}"
            );
            // without the roots, or without patching allowed, it cannot be checked
            assert!(!verify_tree(
                &m,
                &sig(good.clone(), p),
                Tree::new(&hash, len as u64, 0)
            ));
            let mut strict = m.clone();
            strict.allow_patch = false;
            assert!(!verify_tree(&strict, &sig(good.clone(), p), tree));
            // a wrong node, a missing node, a wrong patch length
            let mut bad = good.clone();
            bad[0].hash[0] ^= 1;
            assert!(!verify_tree(&m, &sig(bad, p), tree));
            assert!(!verify_tree(&m, &sig(good[1..].to_vec(), p), tree));
            assert!(!verify_tree(&m, &sig(good.clone(), p + 1), tree));
            // a patch node that spans blocks of the shorter tree is never taken as given
            if !shortcut.is_empty() {
                let over = shortcut.iter().map(|&i| node_at(i)).collect();
                assert!(!verify_tree(&m, &sig(over, p), tree));
            }
        }
    }
}
