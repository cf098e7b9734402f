//! The store: one RocksDB, its primary key, and the registry of open cores. A core is
//! opened once however many sessions use it; each `open_core` adds a reference under a
//! numeric handle and each `close_core` drops one, freeing the core at zero.

mod sessions;
mod state_storage;

pub use sessions::{Flushed, PrologueCopy, StateEntry, StateInfo};
pub use state_storage::StorageOp;
mod groups;
mod staticify;

use std::collections::HashMap;
use std::path::Path;

use crate::core::hypercore::{CoreState, Hypercore};
use crate::core::index_map::IntMap;
use crate::core::manifest::Manifest;
use crate::crypto::{self, KeyPair};
use crate::error::{Error, Result};
use crate::storage::{
    Alias, Auth, AuthKeyPair, Batch, CoreRecord, OpenOptions, Storage, StoreHead,
};

/// The version of core records hypercore-storage 3.x writes.
const CORE_RECORD_VERSION: u64 = 2;
/// The version of the store head hypercore-storage 3.x writes.
const HEAD_VERSION: u64 = 2;
pub const DEFAULT_NAMESPACE: [u8; 32] = [0u8; 32];

/// A key pair as a caller supplies it: the public key, and the secret key when known.
pub type SuppliedKeyPair = ([u8; 32], Option<[u8; 64]>);

/// How the caller identifies the core to open; mirrors corestore's `get()` options after
/// the facade has decoded strings into bytes.
#[derive(Default)]
pub struct OpenRequest {
    pub key: Option<[u8; 32]>,
    pub discovery_key: Option<[u8; 32]>,
    pub name: Option<String>,
    pub namespace: [u8; 32],
    pub key_pair: Option<SuppliedKeyPair>,
    pub manifest: Option<Manifest>,
    pub manifest_version: u64,
    pub create_if_missing: bool,
}

struct OpenCore {
    core: Hypercore,
    refs: u32,
}

pub struct Store {
    storage: Storage,
    primary_key: [u8; 32],
    head: StoreHead,
    /// Boxed: a Hypercore is ~700 bytes, and a map holds up to twice its length in slots.
    cores: IntMap<u32, Box<OpenCore>>,
    by_discovery_key: HashMap<[u8; 32], u32>,
    next_handle: u32,
    /// Named and atomic session states, by handle (src/store/sessions.rs).
    states: HashMap<u32, StateEntry>,
    atoms: HashMap<u32, sessions::AtomEntry>,
}

impl Store {
    pub fn open(dir: &Path, primary_key: Option<[u8; 32]>, read_only: bool) -> Result<Store> {
        Self::open_with(
            dir,
            primary_key,
            &OpenOptions {
                read_only,
                ..Default::default()
            },
        )
    }

    /// `open` with every storage option (`allowBackup`).
    pub fn open_with(
        dir: &Path,
        primary_key: Option<[u8; 32]>,
        opts: &OpenOptions,
    ) -> Result<Store> {
        let read_only = opts.read_only;
        let storage = Storage::open(dir, opts)?;
        let mut head = storage.head()?.unwrap_or(StoreHead {
            version: HEAD_VERSION,
            cores: 0,
            datas: 0,
            groups: 0,
            seed: None,
            default_discovery_key: None,
        });
        let seed = match (head.seed, primary_key) {
            (Some(seed), Some(given)) if seed != given => {
                return Err(Error::new("ASSERTION", "Another corestore is stored here"))
            }
            (Some(seed), _) => seed,
            (None, _) if read_only => {
                return Err(Error::storage_empty());
            }
            (None, given) => {
                let seed = given.unwrap_or_else(crypto::random_bytes32);
                head.seed = Some(seed);
                head.version = HEAD_VERSION;
                let mut batch = Batch::new();
                batch.put_head(&head);
                storage.write(batch)?;
                seed
            }
        };
        Ok(Store {
            storage,
            primary_key: seed,
            head,
            cores: IntMap::default(),
            by_discovery_key: HashMap::new(),
            next_handle: 1,
            states: HashMap::new(),
            atoms: HashMap::new(),
        })
    }

    pub fn primary_key(&self) -> &[u8; 32] {
        &self.primary_key
    }

    pub fn storage(&self) -> &Storage {
        &self.storage
    }

    pub fn create_key_pair(&self, name: &str, namespace: &[u8; 32]) -> KeyPair {
        crypto::key_pair_from_seed(&crypto::derive_seed(
            &self.primary_key,
            namespace,
            name.as_bytes(),
        ))
    }

    pub fn has_core(&self, discovery_key: &[u8; 32]) -> Result<bool> {
        Ok(self.by_discovery_key.contains_key(discovery_key)
            || self.storage.core_by_dkey(discovery_key)?.is_some())
    }

    /// corestore `getAuth(discoveryKey)`: the stored identity of a core (key, manifest, key
    /// pair, encryption key), or None when it is not stored.
    pub fn auth(&self, discovery_key: &[u8; 32]) -> Result<Option<(Auth, Option<Manifest>)>> {
        let Some(record) = self.storage.core_by_dkey(discovery_key)? else {
            return Ok(None);
        };
        let Some(auth) = self.storage.auth(record.core_pointer)? else {
            return Ok(None);
        };
        let manifest = match &auth.manifest {
            Some(bytes) => Some(Manifest::decode_storage(bytes)?),
            None => None,
        };
        Ok(Some((auth, manifest)))
    }

    pub fn list(&self, namespace: Option<&[u8; 32]>) -> Result<Vec<[u8; 32]>> {
        Ok(match namespace {
            Some(ns) => self.storage.aliased_discovery_keys(ns)?,
            None => self.storage.discovery_keys()?,
        })
    }

    /// Opens (or creates) a core and adds a reference to it. Returns its handle.
    pub fn open_core(&mut self, req: OpenRequest) -> Result<u32> {
        let alias_dkey = match &req.name {
            Some(name) => self.storage.alias(&req.namespace, name)?,
            None => None,
        };
        // A key pair derived from a name is valid by construction; a supplied one is checked
        // once here (each check derives the public key: the bulk of an open's cost).
        let (key_pair, checked) = match (&req.name, req.key_pair) {
            (Some(name), _) => {
                let kp = self.create_key_pair(name, &req.namespace);
                (Some((kp.public_key, Some(kp.secret_key))), Some(kp))
            }
            (None, Some((public_key, Some(secret_key)))) => {
                let valid =
                    !self.storage.read_only() && crypto::valid_secret_key(&public_key, &secret_key);
                let checked = valid.then_some(KeyPair {
                    public_key,
                    secret_key,
                });
                (Some((public_key, Some(secret_key))), checked)
            }
            (None, kp) => (kp, None),
        };
        let manifest = match (&req.manifest, key_pair, alias_dkey) {
            (Some(m), _, _) => Some(m.clone()),
            (None, Some((public_key, _)), None) => {
                Some(Manifest::single_signer(&public_key, req.manifest_version))
            }
            _ => None,
        };
        let key = req.key.or_else(|| manifest.as_ref().map(|m| m.hash()));
        let discovery_key = alias_dkey
            .or(req.discovery_key)
            .or_else(|| key.map(|k| crypto::discovery_key(&k)))
            .ok_or_else(|| Error::bad_argument("Could not derive discovery from input"))?;

        if let Some(&handle) = self.by_discovery_key.get(&discovery_key) {
            if let Some(open) = self.cores.get_mut(&handle) {
                // as hypercore: a later get() with the manifest or key pair teaches them
                learn(&mut open.core, &self.storage, req.manifest, checked)?;
                open.refs += 1;
                return Ok(handle);
            }
        }

        let mut core = match self.storage.core_by_dkey(&discovery_key)? {
            Some(record) => {
                let mut core = Hypercore::load(&self.storage, &record, checked.as_ref())?;
                if core.discovery_key != discovery_key {
                    // the record's core pointer now holds another core (staticify)
                    return Err(Error::new(
                        "STORAGE_CONFLICT",
                        "Another Hypercore is stored here",
                    ));
                }
                learn(&mut core, &self.storage, req.manifest, None)?;
                core
            }
            None => {
                let Some(key) = key.filter(|_| req.create_if_missing && !self.storage.read_only())
                else {
                    return Err(Error::storage_empty());
                };
                if req.discovery_key.is_some_and(|d| d != discovery_key) {
                    return Err(Error::bad_argument(
                        "The discovery key does not belong to the key",
                    ));
                }
                let alias = req.name.as_ref().map(|name| Alias {
                    name: name.clone(),
                    namespace: req.namespace,
                });
                self.create_core(
                    key,
                    discovery_key,
                    manifest,
                    key_pair,
                    checked.as_ref(),
                    alias,
                )?
            }
        };
        if let Some(kp) = checked {
            core.adopt_key_pair(kp);
        }

        if self.storage.read_only() {
            core.secret_key = None;
        }

        let handle = self.next_handle;
        // Handles are never reused while the store is open (u32 outlasts any real session count).
        self.next_handle = self.next_handle.saturating_add(1);
        self.by_discovery_key.insert(discovery_key, handle);
        self.cores
            .insert(handle, Box::new(OpenCore { core, refs: 1 }));
        Ok(handle)
    }

    fn create_core(
        &mut self,
        key: [u8; 32],
        discovery_key: [u8; 32],
        manifest: Option<Manifest>,
        key_pair: Option<SuppliedKeyPair>,
        checked: Option<&KeyPair>,
        alias: Option<Alias>,
    ) -> Result<Hypercore> {
        if let Some(m) = &manifest {
            // hypercore's compat core: the key is the single signer's public key
            if m.hash() != key && !crate::core::signature::is_compat(&key, m) {
                return Err(Error::bad_argument("The manifest does not hash to the key"));
            }
        }
        let mut head = self.head.clone();
        let record = CoreRecord {
            version: CORE_RECORD_VERSION,
            core_pointer: head.cores,
            data_pointer: head.datas,
            alias,
        };
        head.cores += 1;
        head.datas += 1;
        head.version = HEAD_VERSION;
        if head.default_discovery_key.is_none() {
            head.default_discovery_key = Some(discovery_key);
        }
        let auth = Auth {
            key,
            discovery_key,
            manifest: manifest.as_ref().map(|m| m.encode_storage()),
            key_pair: key_pair.map(|(public_key, secret_key)| AuthKeyPair {
                public_key: public_key.to_vec(),
                secret_key: secret_key.map(|s| s.to_vec()),
            }),
            encryption_key: None,
        };
        let mut batch = Batch::new();
        batch.put_head(&head);
        batch.put_core(&discovery_key, &record);
        if let Some(alias) = &record.alias {
            batch.put_alias(&alias.namespace, &alias.name, &discovery_key);
        }
        batch.put_auth(record.core_pointer, &auth);
        self.storage.write(batch)?;
        self.head = head;
        Ok(Hypercore::new_empty(&record, &auth, manifest, checked))
    }

    /// Adds a reference to an open core (a replication channel holds one).
    pub fn retain(&mut self, handle: u32) -> Result<()> {
        let open = self.cores.get_mut(&handle).ok_or_else(closed_handle)?;
        open.refs += 1;
        Ok(())
    }

    /// The handle of a core that is open, by discovery key.
    pub fn open_handle(&self, discovery_key: &[u8; 32]) -> Option<u32> {
        self.by_discovery_key.get(discovery_key).copied()
    }

    /// Handles of every open core.
    pub fn open_handles(&self) -> Vec<u32> {
        self.cores.keys().copied().collect()
    }

    pub fn close_core(&mut self, handle: u32) {
        let Some(open) = self.cores.get_mut(&handle) else {
            return;
        };
        open.refs -= 1;
        if open.refs == 0 {
            if let Some(open) = self.cores.remove(&handle) {
                self.by_discovery_key.remove(&open.core.discovery_key);
            }
        }
    }

    pub fn core(&self, handle: u32) -> Result<&Hypercore> {
        self.cores
            .get(&handle)
            .map(|o| &o.core)
            .ok_or_else(closed_handle)
    }

    /// The core and the storage together, for operations that write.
    pub fn core_mut(&mut self, handle: u32) -> Result<(&mut Hypercore, &Storage)> {
        let open = self.cores.get_mut(&handle).ok_or_else(closed_handle)?;
        Ok((&mut open.core, &self.storage))
    }

    /// Writes what replication verified in this call, core by core. A core whose write
    /// fails is reloaded from disk, so memory never claims what the disk does not hold.
    pub fn flush_pending(&mut self) -> Result<()> {
        let mut first_error = None;
        for open in self.cores.values_mut() {
            if !open.core.has_pending() {
                continue;
            }
            if let Err(e) = open.core.flush_pending(&self.storage) {
                if let Ok(Some(record)) = self.storage.core_by_dkey(&open.core.discovery_key) {
                    let checked = open.core.secret_key.as_ref();
                    if let Ok(fresh) = Hypercore::load(&self.storage, &record, checked) {
                        let keys = (open.core.public_key, open.core.secret_key.take());
                        open.core = fresh;
                        if let (Some(pk), Some(kp)) = keys {
                            if pk == kp.public_key {
                                open.core.adopt_key_pair(kp);
                            }
                        }
                    }
                }
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    pub fn state(&self, handle: u32) -> Result<CoreState> {
        Ok(self.core(handle)?.state())
    }
}

/// A stored core without a manifest adopts the one given (it must hash to the key), and
/// a key pair given with its secret key (the signer's) makes it writable.
fn learn(
    core: &mut Hypercore,
    storage: &Storage,
    manifest: Option<Manifest>,
    checked: Option<KeyPair>,
) -> Result<()> {
    // as hypercore: a core stored without its manifest keeps one it is opened with
    let fits = |m: &Manifest| core.manifest.is_none() && m.hash() == core.key;
    if let Some(m) = manifest.filter(|m| fits(m) && !storage.read_only()) {
        core.adopt_manifest(storage, m)?;
    }
    if let Some(kp) = checked.filter(|_| !storage.read_only()) {
        core.adopt_key_pair(kp);
    }
    Ok(())
}

fn closed_handle() -> Error {
    Error::new("SESSION_CLOSED", "The core is closed")
}
