//! Conversions between JS values and engine types, with the argument checks that keep
//! bad input from reaching the engine.

use napi::bindgen_prelude::Buffer;
use napi_derive::napi;

use crate::core::hypercore::{CoreState, Hypercore};
use crate::core::manifest::{Manifest, Prologue};
use crate::error::Error as EngineError;
use crate::store::SuppliedKeyPair;

/// A hypercore-errors code, used as the `code` of the JS error.
pub struct Code(pub &'static str);

impl AsRef<str> for Code {
    fn as_ref(&self) -> &str {
        self.0
    }
}

/// Errors reach JS as `Error { code, message: "CODE: message" }`, like hypercore-errors.
/// corestore's plain errors (code ASSERTION with corestore's exact text) keep their text.
pub fn js_error(e: EngineError) -> napi::Error<Code> {
    let reason = if e.code == "ASSERTION" {
        e.message
    } else {
        format!("{}: {}", e.code, e.message)
    };
    napi::Error::new(Code(e.code), reason)
}

pub fn bad(message: String) -> napi::Error<Code> {
    js_error(EngineError::bad_argument(message))
}

pub fn bytes32(b: &[u8], what: &str) -> Result<[u8; 32], napi::Error<Code>> {
    <[u8; 32]>::try_from(b).map_err(|_| bad(format!("{what} must be 32 bytes, got {}", b.len())))
}

pub fn opt_bytes32(b: &Option<Buffer>, what: &str) -> Result<Option<[u8; 32]>, napi::Error<Code>> {
    b.as_ref().map(|b| bytes32(b, what)).transpose()
}

/// JS numbers arrive as i64; negative values and values past 2^53 are refused.
pub fn uint_in(n: i64, what: &str) -> Result<u64, napi::Error<Code>> {
    if !(0..=(1i64 << 53)).contains(&n) {
        return Err(bad(format!(
            "{what} must be a non-negative integer, got {n}"
        )));
    }
    Ok(n as u64)
}

pub fn version_in(v: Option<i64>) -> Result<u64, napi::Error<Code>> {
    match v {
        None => Ok(1),
        Some(v @ 0..=2) => Ok(v as u64),
        Some(v) => Err(bad(format!("manifestVersion must be 0, 1 or 2, got {v}"))),
    }
}

#[napi(object)]
pub struct KeyPairIn {
    pub public_key: Buffer,
    pub secret_key: Option<Buffer>,
}

#[napi(object, use_nullable = true)]
pub struct KeyPairOut {
    pub public_key: Buffer,
    pub secret_key: Option<Buffer>,
}

pub fn key_pair_in(kp: &KeyPairIn) -> Result<SuppliedKeyPair, napi::Error<Code>> {
    let public_key = bytes32(&kp.public_key, "keyPair.publicKey")?;
    let secret_key = match &kp.secret_key {
        Some(sk) => Some(<[u8; 64]>::try_from(sk.as_ref()).map_err(|_| {
            bad(format!(
                "keyPair.secretKey must be 64 bytes, got {}",
                sk.len()
            ))
        })?),
        None => None,
    };
    Ok((public_key, secret_key))
}

#[napi(object)]
pub struct SignerIn {
    pub signature: Option<String>,
    pub namespace: Option<Buffer>,
    pub public_key: Buffer,
}

#[napi(object)]
pub struct PrologueJs {
    pub hash: Buffer,
    pub length: i64,
}

#[napi(object)]
pub struct ManifestIn {
    pub version: Option<i64>,
    pub hash: Option<String>,
    pub allow_patch: Option<bool>,
    pub quorum: Option<i64>,
    pub signers: Vec<SignerIn>,
    pub prologue: Option<PrologueJs>,
    pub linked: Option<Vec<Buffer>>,
    pub user_data: Option<Buffer>,
}

#[napi(object)]
pub struct SignerOut {
    pub signature: String,
    pub namespace: Buffer,
    pub public_key: Buffer,
}

// Output objects carry `null` for absent fields, as hypercore's objects do.
#[napi(object, use_nullable = true)]
pub struct ManifestOut {
    pub version: i64,
    pub hash: String,
    pub allow_patch: bool,
    pub quorum: i64,
    pub signers: Vec<SignerOut>,
    pub prologue: Option<PrologueJs>,
    pub linked: Option<Vec<Buffer>>,
    pub user_data: Option<Buffer>,
}

/// A user's manifest, with hypercore's defaults for what it leaves out.
pub fn manifest_in(
    m: &ManifestIn,
    default_version: Option<i64>,
) -> Result<Manifest, napi::Error<Code>> {
    if m.hash.as_deref().is_some_and(|h| h != "blake2b") {
        return Err(bad("manifest.hash must be 'blake2b'".into()));
    }
    let version = version_in(m.version.or(default_version))?;
    let mut signers = Vec::with_capacity(m.signers.len());
    for s in &m.signers {
        if s.signature.as_deref().is_some_and(|h| h != "ed25519") {
            return Err(bad("manifest signer signature must be 'ed25519'".into()));
        }
        let public_key = bytes32(&s.public_key, "manifest signer publicKey")?;
        let mut signer = Manifest::single_signer(&public_key, version)
            .signers
            .remove(0);
        if let Some(ns) = &s.namespace {
            signer.namespace = bytes32(ns, "manifest signer namespace")?;
        }
        signers.push(signer);
    }
    // hypercore's createManifest: a majority of the signers unless told
    let quorum = match m.quorum {
        Some(q) => uint_in(q, "manifest.quorum")?,
        None => crate::core::manifest::default_quorum(signers.len()),
    };
    let prologue = match &m.prologue {
        Some(p) => Some(Prologue {
            hash: bytes32(&p.hash, "manifest.prologue.hash")?,
            length: uint_in(p.length, "manifest.prologue.length")?,
        }),
        None => None,
    };
    let linked = match &m.linked {
        Some(list) => Some(
            list.iter()
                .map(|b| bytes32(b, "manifest.linked"))
                .collect::<Result<Vec<_>, _>>()?,
        ),
        None => None,
    };
    let manifest = Manifest {
        version,
        hash: 0,
        allow_patch: m.allow_patch.unwrap_or(false),
        quorum,
        signers,
        prologue,
        linked,
        user_data: m.user_data.as_ref().map(|b| b.to_vec()),
    };
    manifest
        .validate()
        .map_err(|e| bad(format!("invalid manifest: {e}")))?;
    // as createManifest: an empty linked list is none (it would change the key)
    Ok(manifest.normalized())
}

pub fn manifest_out(m: &Manifest) -> ManifestOut {
    ManifestOut {
        version: m.version as i64,
        hash: "blake2b".into(),
        allow_patch: m.allow_patch,
        quorum: m.quorum as i64,
        signers: m
            .signers
            .iter()
            .map(|s| SignerOut {
                signature: "ed25519".into(),
                namespace: s.namespace.to_vec().into(),
                public_key: s.public_key.to_vec().into(),
            })
            .collect(),
        prologue: m.prologue.as_ref().map(|p| PrologueJs {
            hash: p.hash.to_vec().into(),
            length: p.length as i64,
        }),
        linked: m
            .linked
            .as_ref()
            .map(|l| l.iter().map(|k| k.to_vec().into()).collect()),
        user_data: m.user_data.as_ref().map(|u| u.clone().into()),
    }
}

#[napi(object)]
pub struct OpenOptions {
    pub key: Option<Buffer>,
    pub discovery_key: Option<Buffer>,
    pub name: Option<String>,
    pub namespace: Option<Buffer>,
    pub key_pair: Option<KeyPairIn>,
    pub manifest: Option<ManifestIn>,
    pub manifest_version: Option<i64>,
    pub create_if_missing: Option<bool>,
}

#[napi(object)]
pub struct CoreStateOut {
    pub length: i64,
    pub contiguous_length: i64,
    pub byte_length: i64,
    pub fork: i64,
    pub signed_length: i64,
    pub remote_contiguous_length: i64,
}

pub fn state_out(s: CoreState) -> CoreStateOut {
    CoreStateOut {
        length: s.length as i64,
        contiguous_length: s.contiguous_length as i64,
        byte_length: s.byte_length as i64,
        fork: s.fork as i64,
        signed_length: s.signed_length as i64,
        remote_contiguous_length: s.remote_contiguous_length as i64,
    }
}

/// corestore's `getAuth` result (hypercore-storage's `@core/auth`).
#[napi(object, use_nullable = true)]
pub struct AuthOut {
    pub key: Buffer,
    pub discovery_key: Buffer,
    pub manifest: Option<ManifestOut>,
    pub key_pair: Option<KeyPairOut>,
    pub encryption_key: Option<Buffer>,
}

pub fn auth_out(auth: &crate::storage::Auth, manifest: Option<&Manifest>) -> AuthOut {
    AuthOut {
        key: auth.key.to_vec().into(),
        discovery_key: auth.discovery_key.to_vec().into(),
        manifest: manifest.map(manifest_out),
        key_pair: auth.key_pair.as_ref().map(|kp| KeyPairOut {
            public_key: kp.public_key.clone().into(),
            secret_key: kp.secret_key.clone().map(Into::into),
        }),
        encryption_key: auth.encryption_key.clone().map(Into::into),
    }
}

/// A core's identity and state as `openCore` and `coreInfo` return them. The keys travel
/// in one buffer the facade slices (`ids`): an open core holds one allocation for them
/// instead of one per key, which is most of what a core costs the JS heap.
#[napi(object)]
pub struct CoreInfo {
    pub handle: u32,
    /// key, discovery key; then the key pair's public key and its secret key when known;
    /// then each manifest signer's namespace and public key
    pub ids: Buffer,
    pub has_public_key: bool,
    pub has_secret_key: bool,
    pub manifest: Option<ManifestInfo>,
    pub writable: bool,
    pub length: i64,
    pub contiguous_length: i64,
    pub byte_length: i64,
    pub fork: i64,
    pub signed_length: i64,
    pub remote_contiguous_length: i64,
}

/// A manifest whose signers' keys are in `CoreInfo.ids` (`signers` of them).
#[napi(object, use_nullable = true)]
pub struct ManifestInfo {
    pub version: i64,
    pub allow_patch: bool,
    pub quorum: i64,
    pub signers: u32,
    pub prologue: Option<PrologueJs>,
    pub linked: Option<Vec<Buffer>>,
    pub user_data: Option<Buffer>,
}

pub fn core_info(handle: u32, core: &Hypercore) -> CoreInfo {
    let s = core.state();
    let secret = core
        .secret_key
        .as_ref()
        .filter(|_| core.public_key.is_some());
    let signers = core.manifest.as_ref().map_or(&[][..], |m| &m.signers[..]);
    let mut ids = Vec::with_capacity(64 + 96 + signers.len() * 64);
    ids.extend_from_slice(&core.key);
    ids.extend_from_slice(&core.discovery_key);
    if let Some(pk) = &core.public_key {
        ids.extend_from_slice(pk);
    }
    if let Some(kp) = secret {
        ids.extend_from_slice(&kp.secret_key);
    }
    for signer in signers {
        ids.extend_from_slice(&signer.namespace);
        ids.extend_from_slice(&signer.public_key);
    }
    CoreInfo {
        handle,
        ids: ids.into(),
        has_public_key: core.public_key.is_some(),
        has_secret_key: secret.is_some(),
        manifest: core.manifest.as_ref().map(|m| ManifestInfo {
            version: m.version as i64,
            allow_patch: m.allow_patch,
            quorum: m.quorum as i64,
            signers: m.signers.len() as u32,
            prologue: m.prologue.as_ref().map(|p| PrologueJs {
                hash: p.hash.to_vec().into(),
                length: p.length as i64,
            }),
            linked: m
                .linked
                .as_ref()
                .map(|l| l.iter().map(|k| k.to_vec().into()).collect()),
            user_data: m.user_data.as_ref().map(|u| u.clone().into()),
        }),
        writable: core.writable(),
        length: s.length as i64,
        contiguous_length: s.contiguous_length as i64,
        byte_length: s.byte_length as i64,
        fork: s.fork as i64,
        signed_length: s.signed_length as i64,
        remote_contiguous_length: s.remote_contiguous_length as i64,
    }
}
