//! What hypercore's `Verifier` (`core.core.verifier`) and `lib/multisig.js` compute, for
//! lib/verifier.js: tree hashes of roots, ed25519 over a signable, checking a signature
//! against a tree with the engine's rules (src/core/signature.rs, patches included) and
//! assembling signers' partial signatures into the bytes a multisig core stores.
//! Pure functions: nothing here touches a store.

use std::collections::HashMap;

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use super::convert::{bad, bytes32, manifest_in, uint_in, Code, ManifestIn};
use crate::core::flat_tree;
use crate::core::merkle;
use crate::core::signature::{self, MultiSignature, MultiSignatureV0, PatchNode, PatchV0};
use crate::crypto;
use crate::storage::TreeNode;

type Result<T> = std::result::Result<T, napi::Error<Code>>;

/// A tree node as hypercore's JS holds it.
#[napi(object)]
pub struct TreeNodeIn {
    pub index: i64,
    pub size: i64,
    pub hash: Buffer,
}

/// One signer's part of a multisig, as `multisig.partialSignature` makes it: the signer's
/// index in the manifest, its 64-byte signature, and (when it signed a longer tree) how
/// many blocks longer and the nodes that grow the shorter tree into it.
#[napi(object)]
pub struct PartialSignatureIn {
    pub signer: i64,
    pub signature: Buffer,
    pub patch: i64,
    pub nodes: Option<Vec<TreeNodeIn>>,
}

fn node_in(n: &TreeNodeIn) -> Result<TreeNode> {
    Ok(TreeNode {
        index: uint_in(n.index, "node index")?,
        size: uint_in(n.size, "node size")?,
        hash: bytes32(&n.hash, "node hash")?,
    })
}

fn nodes_in(nodes: &[TreeNodeIn]) -> Result<Vec<TreeNode>> {
    nodes.iter().map(node_in).collect()
}

fn signature64(b: &[u8]) -> Result<[u8; 64]> {
    <[u8; 64]>::try_from(b).map_err(|_| bad(format!("signature must be 64 bytes, got {}", b.len())))
}

/// hypercore-crypto `tree(roots)`: the hash a core's head signs.
#[napi]
pub fn tree_hash_of_roots(roots: Vec<TreeNodeIn>) -> Result<Buffer> {
    Ok(merkle::hash_roots(&nodes_in(&roots)?).to_vec().into())
}

/// hypercore-crypto `sign`: the detached ed25519 signature of `message`.
#[napi]
pub fn sign_message(message: Buffer, secret_key: Buffer) -> Result<Buffer> {
    let sk = <[u8; 64]>::try_from(secret_key.as_ref()).map_err(|_| {
        bad(format!(
            "secret key must be 64 bytes, got {}",
            secret_key.len()
        ))
    })?;
    Ok(crypto::sign(&sk, &message).to_vec().into())
}

/// hypercore-crypto `verify`: false for a bad signature or key, never an error.
#[napi]
pub fn verify_message(message: Buffer, signature: Buffer, public_key: Buffer) -> bool {
    match <[u8; 32]>::try_from(public_key.as_ref()) {
        Ok(pk) => crypto::verify(&pk, &message, &signature),
        Err(_) => false,
    }
}

/// hypercore `Verifier.verify(batch, signature)`: whether `signature` signs the tree of
/// `length` blocks at `fork` whose hash is `hash` for a core with `manifest` (`compat`:
/// the core's key is its one signer's public key, which signs the compat signable).
/// Patched proofs are checked over the tree their nodes grow `roots` into (refused
/// without the roots).
#[napi]
pub fn verify_tree_signature(
    manifest: ManifestIn,
    compat: bool,
    hash: Buffer,
    roots: Option<Vec<TreeNodeIn>>,
    length: i64,
    fork: i64,
    signature: Buffer,
) -> Result<bool> {
    let manifest = manifest_in(&manifest, None)?;
    let hash = bytes32(&hash, "tree hash")?;
    let roots = roots.as_deref().map(nodes_in).transpose()?;
    let (length, fork) = (uint_in(length, "length")?, uint_in(fork, "fork")?);
    if compat {
        let Some(signer) = manifest.signers.first() else {
            return Ok(false);
        };
        let pk = signer.public_key;
        return Ok(signature::verify_tree_compat(
            &pk, &signature, &hash, length, fork, false,
        ));
    }
    let mut tree = signature::Tree::new(&hash, length, fork);
    if let Some(roots) = &roots {
        tree = tree.with_roots(roots);
    }
    Ok(signature::verify_tree(&manifest, &signature, tree))
}

/// hypercore `multisig.assemble` (manifest version 1+) and `assemblev0` (version 0): the
/// signers' partial signatures as one signature. Version 1 lists each patch node once;
/// version 0 gives each patched proof its upgrade (start, length) and positions in a shared
/// node list.
#[napi]
pub fn assemble_signature(version: i64, inputs: Vec<PartialSignatureIn>) -> Result<Buffer> {
    let version = uint_in(version, "version")?;
    let mut patch: Vec<PatchNode> = Vec::new();
    if version >= 1 {
        let mut seen = HashMap::new();
        let mut proofs = Vec::with_capacity(inputs.len());
        for u in &inputs {
            for n in nodes_in(u.nodes.as_deref().unwrap_or(&[]))? {
                if seen.insert(n.index, ()).is_none() {
                    patch.push(patch_node(n));
                }
            }
            proofs.push(signature::Proof {
                signer: uint_in(u.signer, "signer")?,
                signature: signature64(&u.signature)?,
                patch: uint_in(u.patch, "patch")?,
            });
        }
        return Ok(MultiSignature { proofs, patch }.encode().into());
    }
    let mut proofs = Vec::with_capacity(inputs.len());
    for u in &inputs {
        let length = uint_in(u.patch, "patch")?;
        let nodes = nodes_in(u.nodes.as_deref().unwrap_or(&[]))?;
        let upgrade = match nodes.last() {
            Some(last) if length > 0 => {
                let mut positions = Vec::with_capacity(nodes.len());
                for n in nodes.iter().cloned().map(patch_node) {
                    let at = match patch.iter().position(|p| *p == n) {
                        Some(at) => at,
                        None => {
                            patch.push(n);
                            patch.len() - 1
                        }
                    };
                    positions.push(at as u64);
                }
                Some(PatchV0 {
                    start: flat_tree::right_span(last.index) / 2 + 1,
                    length,
                    nodes: positions,
                })
            }
            _ => None,
        };
        proofs.push(signature::ProofV0 {
            signer: uint_in(u.signer, "signer")?,
            signature: signature64(&u.signature)?,
            patch: upgrade,
        });
    }
    Ok(MultiSignatureV0 { proofs, patch }.encode().into())
}

fn patch_node(n: TreeNode) -> PatchNode {
    PatchNode {
        index: n.index,
        size: n.size,
        hash: n.hash,
    }
}

/// hypercore `caps.treeSignableCompat`: what a compat core's signer signs (`no_header`:
/// hypercore's legacy option, without the TREE header).
#[napi]
pub fn tree_signable_compat(
    tree_hash: Buffer,
    length: i64,
    fork: i64,
    no_header: bool,
) -> Result<Buffer> {
    let hash = bytes32(&tree_hash, "tree hash")?;
    let (length, fork) = (uint_in(length, "length")?, uint_in(fork, "fork")?);
    Ok(signature::tree_signable_compat(&hash, length, fork, no_header).into())
}
