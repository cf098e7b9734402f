//! corestore's `staticify(core)`: the core's data under a new, signer-less key. The new
//! core's manifest has no signers and a prologue of the core's signed head (length and
//! tree hash), so its key says exactly which blocks it has and it can never grow.
//! hypercore-storage records it as corestore does: a core record for the new discovery
//! key that points at the same core and data pointers, and the auth record of that core
//! pointer rewritten for the new key (the original key's record now reads as the static
//! core: the original is not meant to be used after it). One batch.

use super::{Store, CORE_RECORD_VERSION};
use crate::core::manifest::{Manifest, Prologue, HASH_BLAKE2B};
use crate::crypto;
use crate::error::{Error, Result};
use crate::storage::{Auth, Batch, CoreRecord};

impl Store {
    /// Returns the static core's key (open it with `open_core`). An existing record for
    /// that key is kept as it is (hypercore-storage resumes it).
    pub fn staticify(&mut self, handle: u32) -> Result<[u8; 32]> {
        let open = self.cores.get(&handle).ok_or_else(super::closed_handle)?;
        let core = &open.core;
        let head = self
            .storage
            .core_head(core.data_pointer)?
            .filter(|h| h.length > 0)
            .ok_or_else(|| Error::new("BAD_ARGUMENT", "Core must have data"))?;
        let manifest = Manifest {
            version: 1,
            hash: HASH_BLAKE2B,
            allow_patch: false,
            quorum: 0,
            signers: Vec::new(),
            prologue: Some(Prologue {
                hash: head.root_hash,
                length: head.length,
            }),
            linked: None,
            user_data: None,
        };
        let key = manifest.hash();
        let discovery_key = crypto::discovery_key(&key);
        if self.storage.core_by_dkey(&discovery_key)?.is_some() {
            return Ok(key);
        }
        let (core_pointer, data_pointer) = (core.core_pointer, core.data_pointer);
        let mut batch = Batch::new();
        let mut store_head = self.head.clone();
        if store_head.default_discovery_key.is_none() {
            store_head.default_discovery_key = Some(discovery_key);
            batch.put_head(&store_head);
        }
        batch.put_core(
            &discovery_key,
            &CoreRecord {
                version: CORE_RECORD_VERSION,
                core_pointer,
                data_pointer,
                alias: None,
            },
        );
        batch.put_auth(
            core_pointer,
            &Auth {
                key,
                discovery_key,
                manifest: Some(manifest.encode_storage()),
                key_pair: None,
                encryption_key: None,
            },
        );
        self.storage.write(batch)?;
        self.head = store_head;
        Ok(key)
    }
}
