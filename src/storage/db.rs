//! [`Storage`]: a corestore directory (`CORESTORE` + RocksDB in `db/`) opened the way
//! hypercore-storage 3.x / rocksdb-native open it, and [`Batch`]: one atomic RocksDB
//! write batch.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rocksdb::{
    BlockBasedOptions, BlockBasedTablePinningTier, ChecksumType, ColumnFamily,
    ColumnFamilyDescriptor, DBCompactionStyle, DBCompressionType, DBRecoveryMode, Options,
    ReadOptions, Snapshot, WriteBatch, DB,
};

use super::device_file::{now_ms, DeviceFile, DeviceFileError};
use super::keys;
use super::readahead::{self, Plan, ReadAhead};
use super::schema::{
    peek_version, Auth, CoreGroup, CoreHead, CoreRecord, Dependency, Hints, Sessions, StoreHead,
    TreeNode, VERSION,
};
use super::{Result, StorageError};
use crate::encoding::compact::Reader;

/// The column family that holds everything.
pub const COLUMN_FAMILY: &str = "corestore";
/// The name of the device file in the store directory.
pub const DEVICE_FILE: &str = "CORESTORE";
/// The RocksDB directory inside the store directory.
pub const DB_DIR: &str = "db";
/// Marker left by a failed open whose WAL was dropped (hypercore-storage).
pub const RECOVERING_FILE: &str = "RECOVERING";
/// The opener's 20-byte RocksDB session id (rocksdb-native).
pub const SESSION_ID_FILE: &str = "SESSION_ID";

/// Top-level names JS leaves in place when it finds no `CORESTORE` (`tmpFixStorage`);
/// anything else it would move into `db/`.
const JS_TOP_LEVEL: [&str; 10] = [
    "CORESTORE",
    "primary-key",
    "cores",
    "app-preferences",
    "cache",
    "preferences.json",
    "db",
    "clone",
    "core",
    "notifications",
];

/// How many cores one RECOVERING batch touches (as JS).
const RECOVERING_CHUNK: usize = 16 * 1024;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenOptions {
    /// Open without the device file lock or validation, without writing anything; a
    /// missing store is an error. Writes fail with `INVALID_OPERATION`.
    pub read_only: bool,
    /// corestore's `allowBackup`: a copy of a store (a backup, a test fixture) opens for
    /// writing without the device file; hypercore-storage then neither checks nor locks
    /// `CORESTORE` (RocksDB's own `db/LOCK` still keeps a second process out).
    pub allow_backup: bool,
}

/// One write operation of a [`Batch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BatchOp {
    Put(Vec<u8>, Vec<u8>),
    Delete(Vec<u8>),
    /// RocksDB DeleteRange: `[start, end)`.
    DeleteRange(Vec<u8>, Vec<u8>),
}

/// RocksDB's WriteBatch: a 12-byte header (sequence number and count), and per operation
/// a tag, a column family id and two varint lengths (at most 5 bytes each) besides the
/// key and value.
const BATCH_HEADER: usize = 12;
const BATCH_OP_OVERHEAD: usize = 16;

/// One core's blocks and tree nodes for [`Storage::write_with`], each list ascending by
/// index.
#[derive(Default)]
pub struct CoreRecords<'a> {
    pub data_pointer: u64,
    pub blocks: &'a [(u64, &'a [u8])],
    pub nodes: &'a [&'a TreeNode],
}

/// A set of changes applied atomically by [`Storage::write`] as one RocksDB WriteBatch,
/// in insertion order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Batch {
    ops: Vec<BatchOp>,
}

impl Batch {
    pub fn new() -> Batch {
        Batch { ops: Vec::new() }
    }

    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// An upper bound of the bytes RocksDB's WriteBatch takes for these operations.
    fn encoded_len(&self) -> usize {
        BATCH_HEADER
            + self
                .ops
                .iter()
                .map(|op| {
                    BATCH_OP_OVERHEAD
                        + match op {
                            BatchOp::Put(k, v) | BatchOp::DeleteRange(k, v) => k.len() + v.len(),
                            BatchOp::Delete(k) => k.len(),
                        }
                })
                .sum::<usize>()
    }

    pub fn ops(&self) -> &[BatchOp] {
        &self.ops
    }

    pub fn into_ops(self) -> Vec<BatchOp> {
        self.ops
    }

    pub fn from_ops(ops: Vec<BatchOp>) -> Batch {
        Batch { ops }
    }

    /// Appends all operations of `other` after this batch's.
    pub fn extend(&mut self, other: Batch) {
        self.ops.extend(other.ops);
    }

    // ---- raw access (for tables without a typed helper) ----

    pub fn put_raw(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(BatchOp::Put(key, value));
    }

    pub fn delete_raw(&mut self, key: Vec<u8>) {
        self.ops.push(BatchOp::Delete(key));
    }

    /// Deletes `[start, end)`. An empty or inverted range is dropped (RocksDB would
    /// refuse the whole batch for an inverted one).
    pub fn delete_range_raw(&mut self, start: Vec<u8>, end: Vec<u8>) {
        if start < end {
            self.ops.push(BatchOp::DeleteRange(start, end));
        }
    }

    // ---- corestore-level tables ----

    /// Writes the head as v2, whatever `h.version` says.
    pub fn put_head(&mut self, h: &StoreHead) {
        self.put_raw(keys::head(), h.encode());
    }

    pub fn put_core(&mut self, dkey: &[u8; 32], r: &CoreRecord) {
        self.put_raw(keys::core_by_dkey(dkey), r.encode());
    }

    pub fn delete_core(&mut self, dkey: &[u8; 32]) {
        self.delete_raw(keys::core_by_dkey(dkey));
    }

    pub fn put_alias(&mut self, namespace: &[u8; 32], name: &str, dkey: &[u8; 32]) {
        self.put_raw(keys::core_by_alias(namespace, name), dkey.to_vec());
    }

    pub fn delete_alias(&mut self, namespace: &[u8; 32], name: &str) {
        self.delete_raw(keys::core_by_alias(namespace, name));
    }

    pub fn put_group_by_topic(&mut self, topic: &[u8; 32], group: u64) {
        let mut w = crate::encoding::compact::Writer::new();
        w.uint(group);
        self.put_raw(keys::group_by_topic(topic), w.into_vec());
    }

    pub fn put_group_entry(
        &mut self,
        group: u64,
        timestamp: u64,
        core_pointer: u64,
        key: &[u8; 32],
    ) {
        self.put_raw(
            keys::group_entry(group, timestamp, core_pointer),
            key.to_vec(),
        );
    }

    pub fn delete_group_entry(&mut self, group: u64, timestamp: u64, core_pointer: u64) {
        self.delete_raw(keys::group_entry(group, timestamp, core_pointer));
    }

    // ---- per core (corePointer) ----

    pub fn put_auth(&mut self, core_pointer: u64, a: &Auth) {
        self.put_raw(keys::core_auth(core_pointer), a.encode());
    }

    pub fn put_sessions(&mut self, core_pointer: u64, s: &Sessions) {
        self.put_raw(keys::core_sessions(core_pointer), s.encode());
    }

    pub fn put_core_group(&mut self, core_pointer: u64, g: &CoreGroup) {
        self.put_raw(keys::core_group(core_pointer), g.encode());
    }

    pub fn delete_core_group(&mut self, core_pointer: u64) {
        self.delete_raw(keys::core_group(core_pointer));
    }

    /// Deletes every record of a corePointer (auth, sessions, group).
    pub fn delete_core_range(&mut self, core_pointer: u64) {
        let (s, e) = keys::core_range(core_pointer);
        self.delete_range_raw(s, e);
    }

    // ---- per data (dataPointer) ----

    pub fn put_core_head(&mut self, data_pointer: u64, h: &CoreHead) {
        self.put_raw(keys::data_head(data_pointer), h.encode());
    }

    pub fn delete_core_head(&mut self, data_pointer: u64) {
        self.delete_raw(keys::data_head(data_pointer));
    }

    pub fn put_dependency(&mut self, data_pointer: u64, d: &Dependency) {
        self.put_raw(keys::data_dependency(data_pointer), d.encode());
    }

    pub fn delete_dependency(&mut self, data_pointer: u64) {
        self.delete_raw(keys::data_dependency(data_pointer));
    }

    pub fn put_hints(&mut self, data_pointer: u64, h: &Hints) {
        self.put_raw(keys::data_hints(data_pointer), h.encode());
    }

    pub fn put_block(&mut self, data_pointer: u64, index: u64, block: &[u8]) {
        self.put_raw(keys::block(data_pointer, index), block.to_vec());
    }

    pub fn delete_block(&mut self, data_pointer: u64, index: u64) {
        self.delete_raw(keys::block(data_pointer, index));
    }

    /// Deletes blocks `[start, end)`; `end = None` means to the end of the table.
    pub fn delete_blocks(&mut self, data_pointer: u64, start: u64, end: Option<u64>) {
        self.delete_range_raw(
            keys::block(data_pointer, start),
            keys::block_bound(data_pointer, end),
        );
    }

    pub fn put_tree_node(&mut self, data_pointer: u64, n: &TreeNode) {
        self.put_raw(keys::tree_node(data_pointer, n.index), n.encode());
    }

    pub fn delete_tree_node(&mut self, data_pointer: u64, index: u64) {
        self.delete_raw(keys::tree_node(data_pointer, index));
    }

    /// Deletes tree nodes with flat-tree index in `[start, end)`; `None` = to the end.
    pub fn delete_tree_nodes(&mut self, data_pointer: u64, start: u64, end: Option<u64>) {
        self.delete_range_raw(
            keys::tree_node(data_pointer, start),
            keys::tree_node_bound(data_pointer, end),
        );
    }

    pub fn put_bitfield_page(&mut self, data_pointer: u64, page: u64, bytes: &[u8]) {
        self.put_raw(keys::bitfield(data_pointer, page, 0), bytes.to_vec());
    }

    pub fn delete_bitfield_page(&mut self, data_pointer: u64, page: u64) {
        self.delete_raw(keys::bitfield(data_pointer, page, 0));
    }

    /// Deletes bitfield pages `[start, end)`; `None` = to the end (JS end key `… 05 ff 00`).
    pub fn delete_bitfield_pages(&mut self, data_pointer: u64, start: u64, end: Option<u64>) {
        self.delete_range_raw(
            keys::bitfield(data_pointer, start, 0),
            keys::bitfield_bound(data_pointer, end),
        );
    }

    pub fn put_user_data(&mut self, data_pointer: u64, key: &str, value: &[u8]) {
        self.put_raw(keys::user_data(data_pointer, key), value.to_vec());
    }

    pub fn delete_user_data(&mut self, data_pointer: u64, key: &str) {
        self.delete_raw(keys::user_data(data_pointer, key));
    }

    pub fn put_mark(&mut self, data_pointer: u64, page: u64, bytes: &[u8]) {
        self.put_raw(keys::mark(data_pointer, page), bytes.to_vec());
    }

    pub fn delete_marks(&mut self, data_pointer: u64, start: u64, end: Option<u64>) {
        self.delete_range_raw(
            keys::mark(data_pointer, start),
            keys::mark_bound(data_pointer, end),
        );
    }

    /// Deletes every record of a dataPointer (head, hints, dependency, blocks, tree,
    /// bitfield, user data, local, marks).
    pub fn delete_data_range(&mut self, data_pointer: u64) {
        let (s, e) = keys::data_range(data_pointer);
        self.delete_range_raw(s, e);
    }
}

/// One CORE_BY_ALIAS entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AliasEntry {
    pub namespace: [u8; 32],
    pub name: String,
    pub discovery_key: [u8; 32],
}

/// Open RocksDB snapshots by id (`Storage::snapshot`).
#[derive(Default)]
struct Snapshots {
    next: u64,
    open: HashMap<u64, Snapshot<'static>>,
}

/// An open corestore directory. `Send + Sync`: every method takes `&self`.
///
/// Dropping it closes RocksDB, then releases the `CORESTORE` lock (field order).
pub struct Storage {
    // NOTE: field order matters for Drop: the snapshots are released before RocksDB
    // closes, and RocksDB closes before the lock is released.
    snapshots: Mutex<Snapshots>,
    // Boxed so that the snapshots' reference to it stays valid when the Storage moves.
    db: Box<DB>,
    device: Mutex<Option<DeviceFile>>,
    readahead: Mutex<ReadAhead>,
    dir: PathBuf,
    db_dir: PathBuf,
    read_only: bool,
    session_id: [u8; 20],
}

impl std::fmt::Debug for Storage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Storage")
            .field("dir", &self.dir)
            .field("read_only", &self.read_only)
            .finish()
    }
}

fn block_options() -> BlockBasedOptions {
    let mut b = BlockBasedOptions::default();
    b.set_block_size(8192);
    b.set_cache_index_and_filter_blocks(true);
    b.set_format_version(6);
    b.set_checksum_type(ChecksumType::XXH3);
    b.set_bloom_filter(10.0, false);
    b.set_optimize_filters_for_memory(false);
    b.set_top_level_index_pinning_tier(BlockBasedTablePinningTier::All);
    b.set_partition_pinning_tier(BlockBasedTablePinningTier::All);
    b.set_unpartitioned_pinning_tier(BlockBasedTablePinningTier::All);
    b
}

/// Column family options as rocksdb-native's `ColumnFamily` defaults (the `default`
/// family) — never any compression: JS's RocksDB has no compression library.
fn base_cf_options() -> Options {
    let mut o = Options::default();
    o.set_block_based_table_factory(&block_options());
    o.set_compression_type(DBCompressionType::None);
    o.set_bottommost_compression_type(DBCompressionType::None);
    o.set_blob_compression_type(DBCompressionType::None);
    o.set_compaction_style(DBCompactionStyle::Level);
    o.set_level_compaction_dynamic_level_bytes(true);
    o.set_num_levels(7);
    o.set_max_write_buffer_number(2);
    o.set_write_buffer_size(64 * 1024 * 1024);
    // eight blocks a memtable (RocksDB's default caps them at 1 MiB): big enough for
    // memtable_memory to keep resident from one memtable to the next
    o.set_arena_block_size(8 * 1024 * 1024);
    o.set_blob_gc_age_cutoff(0.25);
    o.set_blob_gc_force_threshold(1.0);
    o.set_enable_blob_gc(true);
    o
}

/// The `corestore` family: hypercore-storage's `createColumnFamily` (blob files on).
fn corestore_cf_options() -> Options {
    let mut o = base_cf_options();
    o.set_enable_blob_files(true);
    o.set_min_blob_size(4096);
    o.set_blob_file_size(256 * 1024 * 1024);
    // No bloom filter over the memtable's keys (RocksDB's default, and rocksdb-native's):
    // each key written set a bit in a 3.2 MB filter, a cache miss per key, which cost
    // appends a fifth of their time; the reads it saved a skip-list walk for are now
    // scans and the node cache. docs/DECISIONS.md §47.
    o
}

fn db_options(read_only: bool) -> Options {
    let mut o = base_cf_options();
    o.create_if_missing(!read_only);
    o.create_missing_column_families(!read_only);
    o.set_max_background_jobs(6);
    o.set_bytes_per_sync(1024 * 1024);
    o.set_max_open_files(-1);
    // rocksdb-native passes its 16 through a bool, so JS really runs with 1
    o.set_max_file_opening_threads(1);
    o.set_wal_recovery_mode(DBRecoveryMode::PointInTime);
    o.set_wal_compression_type(DBCompressionType::None);
    o
}

fn random_session_id() -> [u8; 20] {
    // RocksDB's DbSessionId is 20 characters of [0-9A-Z]; ours looks the same.
    const ALPHABET: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut raw = [0u8; 20];
    if getrandom::getrandom(&mut raw).is_err() {
        // fall back to time + pid entropy; uniqueness is all that matters here
        let seed = (now_ms() as u128) << 32 | std::process::id() as u128;
        for (i, b) in raw.iter_mut().enumerate() {
            *b = (seed >> ((i % 16) * 8)) as u8 ^ (i as u8).wrapping_mul(97);
        }
    }
    let mut id = [0u8; 20];
    for (o, r) in id.iter_mut().zip(raw) {
        *o = ALPHABET[(r as usize) % 36];
    }
    id
}

/// Checks that `dir` is (or may become) a corestore. Returns whether `db/` holds a
/// RocksDB database already.
fn check_layout(dir: &Path, read_only: bool) -> Result<bool> {
    let meta = match std::fs::metadata(dir) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            if read_only {
                return Err(StorageError::NotFound {
                    path: dir.to_path_buf(),
                });
            }
            return Ok(false);
        }
        Err(e) => {
            return Err(StorageError::io(
                format!("cannot stat {}", dir.display()),
                e,
            ))
        }
    };
    if !meta.is_dir() {
        return Err(StorageError::NotACorestore {
            path: dir.to_path_buf(),
            reason: "it is a file, not a directory".into(),
        });
    }
    let has_db = dir.join(DB_DIR).join("CURRENT").exists();
    if dir.join("primary-key").exists() || (dir.join("cores").is_dir() && !has_db) {
        return Err(StorageError::LegacyLayout {
            path: dir.to_path_buf(),
        });
    }
    if !dir.join(DEVICE_FILE).exists() {
        // JS would move every other top-level entry into db/ (an early layout kept the
        // RocksDB files at the top). We refuse instead of moving files around.
        let known: HashSet<&str> = JS_TOP_LEVEL.iter().copied().collect();
        let entries = std::fs::read_dir(dir)
            .map_err(|e| StorageError::io(format!("cannot list {}", dir.display()), e))?;
        let mut foreign = Vec::new();
        for entry in entries {
            let entry =
                entry.map_err(|e| StorageError::io(format!("cannot list {}", dir.display()), e))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !known.contains(name.as_str()) && !name.starts_with('.') {
                foreign.push(name);
            }
        }
        if !foreign.is_empty() {
            foreign.sort();
            foreign.truncate(5);
            let rocks_at_top = dir.join("CURRENT").exists();
            return Err(StorageError::NotACorestore {
                path: dir.to_path_buf(),
                reason: if rocks_at_top {
                    "it has RocksDB files at the top level and no CORESTORE file (an early \
                     hypercore-storage layout); open it once with JS corestore 7, which moves \
                     them into db/"
                        .into()
                } else {
                    format!(
                        "it has no CORESTORE file and contains other files ({})",
                        foreign.join(", ")
                    )
                },
            });
        }
    }
    if read_only && !has_db {
        return Err(StorageError::NotFound {
            path: dir.to_path_buf(),
        });
    }
    Ok(has_db)
}

impl Storage {
    /// Opens (creating it unless `read_only`) the corestore in `dir`.
    pub fn open(dir: &Path, opts: &OpenOptions) -> Result<Storage> {
        let read_only = opts.read_only;
        let has_db = check_layout(dir, read_only)?;
        let db_dir = dir.join(DB_DIR);

        if !read_only {
            std::fs::create_dir_all(dir).map_err(|e| {
                StorageError::io(
                    format!("cannot create the store directory {}", dir.display()),
                    e,
                )
            })?;
        }
        let device = if read_only || opts.allow_backup {
            None
        } else {
            let path = dir.join(DEVICE_FILE);
            let res = match DeviceFile::open_existing(&path) {
                Ok(Some(df)) => Ok(df),
                Ok(None) => DeviceFile::create(&path, &[]),
                Err(e) => Err(e),
            };
            Some(res.map_err(|e| match e {
                DeviceFileError::Locked => StorageError::Conflict {
                    path: dir.to_path_buf(),
                },
                DeviceFileError::Invalid(reason) => StorageError::DeviceFile { path, reason },
                DeviceFileError::Io(e) => {
                    StorageError::io(format!("cannot open the device file {}", path.display()), e)
                }
            })?)
        };

        let db = Self::open_rocks(&db_dir, read_only, has_db)?;

        let mut storage = Storage {
            snapshots: Mutex::new(Snapshots::default()),
            db: Box::new(db),
            device: Mutex::new(device),
            readahead: Mutex::new(ReadAhead::default()),
            dir: dir.to_path_buf(),
            db_dir,
            read_only,
            session_id: [0; 20],
        };

        if !read_only {
            storage.session_id = random_session_id();
            storage.write_session_id()?;
        }

        // refuse stores from the future before anything else touches them
        storage.head()?;

        if !read_only {
            storage.maybe_recover()?;
        }
        Ok(storage)
    }

    fn open_rocks(db_dir: &Path, read_only: bool, has_db: bool) -> Result<DB> {
        let opts = db_options(read_only);
        // open every family the database has (a newer writer may have added one)
        let mut names = vec!["default".to_string(), COLUMN_FAMILY.to_string()];
        if has_db {
            if let Ok(existing) = DB::list_cf(&opts, db_dir) {
                for n in existing {
                    if !names.contains(&n) {
                        names.push(n);
                    }
                }
            }
        }
        let cfs = names.iter().map(|n| {
            let o = if n == COLUMN_FAMILY {
                corestore_cf_options()
            } else {
                base_cf_options()
            };
            ColumnFamilyDescriptor::new(n.as_str(), o)
        });
        let res = if read_only {
            DB::open_cf_descriptors_read_only(&opts, db_dir, cfs, false)
        } else {
            DB::open_cf_descriptors(&opts, db_dir, cfs)
        };
        match res {
            Ok(db) => Ok(db),
            Err(e) => {
                let msg = e.to_string().to_lowercase();
                if !read_only && msg.contains("sequence number is being set backwards") {
                    Self::prepare_recovery(db_dir)?;
                    return Err(StorageError::Recovering {
                        path: db_dir.to_path_buf(),
                        source: e,
                    });
                }
                Err(StorageError::rocks(
                    format!("cannot open the RocksDB database in {}", db_dir.display()),
                    e,
                ))
            }
        }
    }

    /// hypercore-storage `_maybeRecoverLater`: drop the WAL and leave db/RECOVERING.
    fn prepare_recovery(db_dir: &Path) -> Result<()> {
        let marker = db_dir.join(RECOVERING_FILE);
        std::fs::write(&marker, b"")
            .map_err(|e| StorageError::io(format!("cannot write {}", marker.display()), e))?;
        let entries = std::fs::read_dir(db_dir)
            .map_err(|e| StorageError::io(format!("cannot list {}", db_dir.display()), e))?;
        for entry in entries.flatten() {
            let p = entry.path();
            if p.extension().is_some_and(|x| x == "log") {
                std::fs::remove_file(&p)
                    .map_err(|e| StorageError::io(format!("cannot remove {}", p.display()), e))?;
            }
        }
        Ok(())
    }

    fn write_session_id(&self) -> Result<()> {
        let p = self.db_dir.join(SESSION_ID_FILE);
        std::fs::write(&p, self.session_id)
            .map_err(|e| StorageError::io(format!("cannot write {}", p.display()), e))
    }

    /// hypercore-storage `_maybeRecover`: if db/RECOVERING exists, set
    /// `hints.recovering = now` on every core, then remove the marker.
    fn maybe_recover(&self) -> Result<()> {
        let marker = self.db_dir.join(RECOVERING_FILE);
        if !marker.exists() {
            return Ok(());
        }
        let now = now_ms();
        let cores = self.cores()?;
        for chunk in cores.chunks(RECOVERING_CHUNK) {
            let mut batch = Batch::new();
            for (_, rec) in chunk {
                let mut hints = self.hints(rec.data_pointer)?.unwrap_or_default();
                hints.recovering = Some(now);
                batch.put_hints(rec.data_pointer, &hints);
            }
            self.write(batch)?;
        }
        std::fs::remove_file(&marker)
            .map_err(|e| StorageError::io(format!("cannot remove {}", marker.display()), e))
    }

    pub fn read_only(&self) -> bool {
        self.read_only
    }

    /// The store directory (holding `CORESTORE` and `db/`).
    pub fn path(&self) -> &Path {
        &self.dir
    }

    fn cf(&self) -> Result<&ColumnFamily> {
        self.db
            .cf_handle(COLUMN_FAMILY)
            .ok_or_else(|| StorageError::NotACorestore {
                path: self.dir.clone(),
                reason: "the RocksDB database has no 'corestore' column family".into(),
            })
    }

    /// Takes a point-in-time view of the database (what hypercore's snapshot sessions
    /// read through); its id until `release_snapshot`.
    pub fn snapshot(&self) -> u64 {
        // SAFETY: the snapshot borrows the boxed DB, which does not move with the Storage,
        // and `snapshots` is declared before `db`, so every snapshot is released (dropped)
        // before the DB closes. Nothing else can drop the DB while `self` lives.
        let db: &'static DB = unsafe { &*(self.db.as_ref() as *const DB) };
        let mut snaps = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        snaps.next += 1;
        let id = snaps.next;
        snaps.open.insert(id, db.snapshot());
        id
    }

    pub fn release_snapshot(&self, id: u64) {
        let mut snaps = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        snaps.open.remove(&id);
    }

    /// Block `index` of a core's data as snapshot `id` saw it (None once released).
    pub fn snapshot_block(
        &self,
        id: u64,
        data_pointer: u64,
        index: u64,
    ) -> Result<Option<Vec<u8>>> {
        self.snapshot_get_raw(id, &keys::block(data_pointer, index))
    }

    /// A raw read from the `corestore` column family as snapshot `id` saw it (None once
    /// released).
    pub fn snapshot_get_raw(&self, id: u64, key: &[u8]) -> Result<Option<Vec<u8>>> {
        let snaps = self.snapshots.lock().unwrap_or_else(|e| e.into_inner());
        // a released snapshot has nothing to give
        let Some(snap) = snaps.open.get(&id) else {
            return Ok(None);
        };
        snap.get_cf(self.cf()?, key)
            .map_err(|e| StorageError::rocks("RocksDB read failed", e))
    }

    /// A raw read from the `corestore` column family.
    pub fn get_raw(&self, key: &[u8]) -> Result<Option<Vec<u8>>> {
        self.db
            .get_cf(self.cf()?, key)
            .map_err(|e| StorageError::rocks("RocksDB read failed", e))
    }

    /// Calls `f(key, value)` for every entry in `[start, end)` until it returns `false`.
    pub fn scan_raw(
        &self,
        start: &[u8],
        end: &[u8],
        mut f: impl FnMut(&[u8], &[u8]) -> Result<bool>,
    ) -> Result<()> {
        let mut ro = ReadOptions::default();
        ro.set_iterate_upper_bound(end.to_vec());
        let mut it = self.db.raw_iterator_cf_opt(self.cf()?, ro);
        it.seek(start);
        while it.valid() {
            let (Some(k), Some(v)) = (it.key(), it.value()) else {
                break;
            };
            if !f(k, v)? {
                return Ok(());
            }
            it.next();
        }
        it.status()
            .map_err(|e| StorageError::rocks("RocksDB iteration failed", e))
    }

    fn get_decoded<T>(
        &self,
        key: &[u8],
        what: impl FnOnce() -> String,
        decode: impl FnOnce(&[u8]) -> std::result::Result<T, crate::encoding::compact::DecodeError>,
    ) -> Result<Option<T>> {
        match self.get_raw(key)? {
            None => Ok(None),
            Some(v) => decode(&v)
                .map(Some)
                .map_err(|e| StorageError::corrupt(what(), e)),
        }
    }

    // ---- corestore-level reads ----

    /// The store head. A head newer than v2 is `INVALID_OPERATION`.
    pub fn head(&self) -> Result<Option<StoreHead>> {
        let Some(raw) = self.get_raw(&keys::head())? else {
            return Ok(None);
        };
        let version =
            peek_version(&raw).map_err(|e| StorageError::corrupt("store head (HEAD)", e))?;
        if version > VERSION {
            return Err(StorageError::UnsupportedVersion {
                what: "the store head".into(),
                version,
            });
        }
        StoreHead::decode(&raw)
            .map(Some)
            .map_err(|e| StorageError::corrupt("store head (HEAD)", e))
    }

    /// The core record of a discovery key. A record newer than v2 is
    /// `INVALID_OPERATION`; version 0 (an unmigrated Corestore 6 core) is returned as is.
    pub fn core_by_dkey(&self, dkey: &[u8; 32]) -> Result<Option<CoreRecord>> {
        let rec = self.get_decoded(
            &keys::core_by_dkey(dkey),
            || format!("core record of {}", hex(dkey)),
            CoreRecord::decode,
        )?;
        if let Some(r) = &rec {
            if r.version > VERSION {
                return Err(StorageError::UnsupportedVersion {
                    what: format!("the core record of {}", hex(dkey)),
                    version: r.version,
                });
            }
        }
        Ok(rec)
    }

    /// The discovery key a (namespace, name) alias points to.
    pub fn alias(&self, namespace: &[u8; 32], name: &str) -> Result<Option<[u8; 32]>> {
        self.get_decoded(
            &keys::core_by_alias(namespace, name),
            || format!("alias {name:?} in namespace {}", hex(namespace)),
            |v| Reader::new(v).array::<32>(),
        )
    }

    /// The group pointer of a topic (GROUP_BY_TOPIC).
    pub fn group_by_topic(&self, topic: &[u8; 32]) -> Result<Option<u64>> {
        self.get_decoded(
            &keys::group_by_topic(topic),
            || format!("group of topic {}", hex(topic)),
            |v| Reader::new(v).uint(),
        )
    }

    /// Every discovery key with a core record (CORE_BY_DKEY), in key order.
    pub fn discovery_keys(&self) -> Result<Vec<[u8; 32]>> {
        let (s, e) = keys::core_by_dkey_range();
        let mut out = Vec::new();
        self.scan_raw(&s, &e, |k, _| {
            out.push(
                keys::parse_core_by_dkey(k)
                    .map_err(|e| StorageError::corrupt("CORE_BY_DKEY key", e))?,
            );
            Ok(true)
        })?;
        Ok(out)
    }

    /// Every (discovery key, core record), in key order.
    pub fn cores(&self) -> Result<Vec<([u8; 32], CoreRecord)>> {
        let (s, e) = keys::core_by_dkey_range();
        let mut out = Vec::new();
        self.scan_raw(&s, &e, |k, v| {
            let dkey = keys::parse_core_by_dkey(k)
                .map_err(|e| StorageError::corrupt("CORE_BY_DKEY key", e))?;
            let rec = CoreRecord::decode(v)
                .map_err(|e| StorageError::corrupt(format!("core record of {}", hex(&dkey)), e))?;
            out.push((dkey, rec));
            Ok(true)
        })?;
        Ok(out)
    }

    /// The discovery keys aliased in one namespace (CORE_BY_ALIAS values), in name order.
    pub fn aliased_discovery_keys(&self, namespace: &[u8; 32]) -> Result<Vec<[u8; 32]>> {
        Ok(self
            .aliases(Some(namespace))?
            .into_iter()
            .map(|a| a.discovery_key)
            .collect())
    }

    /// Every alias (CORE_BY_ALIAS) in one namespace, or in all for `None`, in key order.
    pub fn aliases(&self, namespace: Option<&[u8; 32]>) -> Result<Vec<AliasEntry>> {
        let (s, e) = keys::core_by_alias_range(namespace);
        let mut out = Vec::new();
        self.scan_raw(&s, &e, |k, v| {
            let (namespace, name) = keys::parse_core_by_alias(k)
                .map_err(|e| StorageError::corrupt("CORE_BY_ALIAS key", e))?;
            let discovery_key = Reader::new(v)
                .array::<32>()
                .map_err(|e| StorageError::corrupt(format!("alias {name:?}"), e))?;
            out.push(AliasEntry {
                namespace,
                name,
                discovery_key,
            });
            Ok(true)
        })?;
        Ok(out)
    }

    // ---- per core (corePointer) ----

    pub fn auth(&self, core_pointer: u64) -> Result<Option<Auth>> {
        self.get_decoded(
            &keys::core_auth(core_pointer),
            || format!("auth record of core pointer {core_pointer}"),
            Auth::decode,
        )
    }

    pub fn sessions(&self, core_pointer: u64) -> Result<Option<Sessions>> {
        self.get_decoded(
            &keys::core_sessions(core_pointer),
            || format!("sessions record of core pointer {core_pointer}"),
            Sessions::decode,
        )
    }

    pub fn core_group(&self, core_pointer: u64) -> Result<Option<CoreGroup>> {
        self.get_decoded(
            &keys::core_group(core_pointer),
            || format!("group record of core pointer {core_pointer}"),
            CoreGroup::decode,
        )
    }

    // ---- per data (dataPointer) ----

    pub fn core_head(&self, data_pointer: u64) -> Result<Option<CoreHead>> {
        self.get_decoded(
            &keys::data_head(data_pointer),
            || format!("head of data pointer {data_pointer}"),
            CoreHead::decode,
        )
    }

    pub fn hints(&self, data_pointer: u64) -> Result<Option<Hints>> {
        self.get_decoded(
            &keys::data_hints(data_pointer),
            || format!("hints of data pointer {data_pointer}"),
            Hints::decode,
        )
    }

    pub fn dependency(&self, data_pointer: u64) -> Result<Option<Dependency>> {
        self.get_decoded(
            &keys::data_dependency(data_pointer),
            || format!("dependency of data pointer {data_pointer}"),
            Dependency::decode,
        )
    }

    /// One block of this dataPointer (no dependency lookup: that is the engine's job).
    /// Reads in index order are answered from a scan of the blocks after them
    /// (`readahead`).
    pub fn block(&self, data_pointer: u64, index: u64) -> Result<Option<Vec<u8>>> {
        let mut ahead = self.readahead.lock().unwrap_or_else(|e| e.into_inner());
        match ahead.plan(data_pointer, index) {
            Plan::Known(block) => Ok(block),
            Plan::Point => {
                drop(ahead);
                self.get_raw(&keys::block(data_pointer, index))
            }
            Plan::Scan => {
                let (found, end) = self.blocks_ahead(data_pointer, index)?;
                Ok(ahead.fill(data_pointer, index, end, found))
            }
        }
    }

    /// The blocks from `start` on, up to `readahead::SPAN` of them and about
    /// `readahead::MAX_BYTES`, and the index where the scan stopped looking.
    fn blocks_ahead(&self, data_pointer: u64, start: u64) -> Result<(readahead::Found, u64)> {
        let mut end = start.saturating_add(readahead::SPAN);
        let mut found = Vec::new();
        let mut bytes = 0;
        self.scan_blocks(data_pointer, start, Some(end), |i, block| {
            bytes += block.len();
            found.push((i, block.to_vec()));
            if bytes >= readahead::MAX_BYTES {
                end = i + 1;
                return false;
            }
            true
        })?;
        Ok((found, end))
    }

    /// Blocks with index in `[start, end)` (`None` = to the end), in index order.
    pub fn blocks(
        &self,
        data_pointer: u64,
        start: u64,
        end: Option<u64>,
    ) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        self.scan_blocks(data_pointer, start, end, |i, block| {
            out.push((i, block.to_vec()));
            true
        })?;
        Ok(out)
    }

    /// Calls `f(index, block)` for the blocks in `[start, end)` (`None` = to the end), in
    /// index order, until it returns false.
    fn scan_blocks(
        &self,
        data_pointer: u64,
        start: u64,
        end: Option<u64>,
        mut f: impl FnMut(u64, &[u8]) -> bool,
    ) -> Result<()> {
        self.scan_raw(
            &keys::block(data_pointer, start),
            &keys::block_bound(data_pointer, end),
            |k, v| {
                let (_, i) =
                    keys::parse_block(k).map_err(|e| StorageError::corrupt("block key", e))?;
                Ok(f(i, v))
            },
        )
    }

    pub fn tree_node(&self, data_pointer: u64, index: u64) -> Result<Option<TreeNode>> {
        self.get_decoded(
            &keys::tree_node(data_pointer, index),
            || format!("tree node {index} of data pointer {data_pointer}"),
            TreeNode::decode,
        )
    }

    /// Tree nodes with flat index in `[start, end)` (`None` = to the end), in index order.
    pub fn tree_nodes(
        &self,
        data_pointer: u64,
        start: u64,
        end: Option<u64>,
    ) -> Result<Vec<TreeNode>> {
        let mut out = Vec::new();
        self.scan_raw(
            &keys::tree_node(data_pointer, start),
            &keys::tree_node_bound(data_pointer, end),
            |k, v| {
                let n = TreeNode::decode(v).map_err(|e| {
                    StorageError::corrupt(format!("tree node of data pointer {data_pointer}"), e)
                })?;
                if let Ok((_, i)) = keys::parse_tree_node(k) {
                    if i != n.index {
                        return Err(StorageError::corrupt(
                            format!("tree node {i} of data pointer {data_pointer}"),
                            crate::encoding::compact::DecodeError("index differs from its key"),
                        ));
                    }
                }
                out.push(n);
                Ok(true)
            },
        )?;
        Ok(out)
    }

    pub fn bitfield_page(&self, data_pointer: u64, page: u64) -> Result<Option<Vec<u8>>> {
        self.get_raw(&keys::bitfield(data_pointer, page, 0))
    }

    /// Every type-0 bitfield page of a dataPointer, in page order.
    pub fn bitfield_pages(&self, data_pointer: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        self.scan_raw(
            &keys::bitfield(data_pointer, 0, 0),
            &keys::bitfield_bound(data_pointer, None),
            |k, v| {
                let (_, page, kind) = keys::parse_bitfield(k)
                    .map_err(|e| StorageError::corrupt("bitfield key", e))?;
                if kind == 0 {
                    out.push((page, v.to_vec()));
                }
                Ok(true)
            },
        )?;
        Ok(out)
    }

    pub fn user_data(&self, data_pointer: u64, key: &str) -> Result<Option<Vec<u8>>> {
        self.get_raw(&keys::user_data(data_pointer, key))
    }

    /// Every user data entry of a dataPointer, in key order.
    pub fn user_data_entries(&self, data_pointer: u64) -> Result<Vec<(String, Vec<u8>)>> {
        let (s, e) = keys::user_data_range(data_pointer);
        let mut out = Vec::new();
        self.scan_raw(&s, &e, |k, v| {
            let (_, key) =
                keys::parse_user_data(k).map_err(|e| StorageError::corrupt("user data key", e))?;
            out.push((key, v.to_vec()));
            Ok(true)
        })?;
        Ok(out)
    }

    pub fn mark(&self, data_pointer: u64, page: u64) -> Result<Option<Vec<u8>>> {
        self.get_raw(&keys::mark(data_pointer, page))
    }

    /// Every mark page of a dataPointer, in page order.
    pub fn marks(&self, data_pointer: u64) -> Result<Vec<(u64, Vec<u8>)>> {
        let mut out = Vec::new();
        self.scan_raw(
            &keys::mark(data_pointer, 0),
            &keys::mark_bound(data_pointer, None),
            |k, v| {
                let (_, page) =
                    keys::parse_mark(k).map_err(|e| StorageError::corrupt("mark key", e))?;
                out.push((page, v.to_vec()));
                Ok(true)
            },
        )?;
        Ok(out)
    }

    // ---- writing ----

    /// Applies the batch atomically (one RocksDB WriteBatch, default WriteOptions: WAL on,
    /// no fsync — as JS).
    pub fn write(&self, batch: Batch) -> Result<()> {
        self.write_with(batch, &CoreRecords::default())
    }

    /// `write` of `batch` and of one core's blocks and tree nodes, in one RocksDB
    /// WriteBatch. The records go into it straight from where the caller holds them, each
    /// key and node encoded into one reused buffer: no `Vec`s per record in a `Batch`
    /// first (an allocation and a copy each, for the thousands of an append or a
    /// replication batch). The batch's own operations come after them, so they must not
    /// delete what `records` put.
    pub fn write_with(&self, batch: Batch, records: &CoreRecords<'_>) -> Result<()> {
        if self.read_only {
            return Err(StorageError::ReadOnly {
                path: self.dir.clone(),
            });
        }
        if batch.is_empty() && records.blocks.is_empty() && records.nodes.is_empty() {
            return Ok(());
        }
        // blocks read ahead may be what this write replaces or deletes; a store that only
        // uploads writes seldom, and one that writes also reads ahead again after
        self.readahead
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clear();
        let cf = self.cf()?;
        // sized up front: a batch of 1000 1 KiB blocks otherwise grows its buffer by
        // doubling, copying what it holds each time
        let record = BATCH_OP_OVERHEAD + keys::DATA_KEY_MAX;
        let block_bytes: usize = records.blocks.iter().map(|(_, b)| record + b.len()).sum();
        let node_bytes = records.nodes.len() * (record + TreeNode::ENCODED_MAX);
        let mut wb =
            WriteBatch::with_capacity_bytes(batch.encoded_len() + block_bytes + node_bytes);
        // blocks, then nodes, then the rest: the keys in that order ascend (block keys sort
        // before the tree's, the tree's before the bitfield's), and the memtable takes a
        // run of ascending keys fastest
        let mut key = Vec::with_capacity(keys::DATA_KEY_MAX);
        for (index, block) in records.blocks {
            keys::block_into(&mut key, records.data_pointer, *index);
            wb.put_cf(cf, &key, block);
        }
        let mut value = Vec::with_capacity(TreeNode::ENCODED_MAX);
        for node in records.nodes {
            keys::tree_node_into(&mut key, records.data_pointer, node.index);
            node.encode_into(&mut value);
            wb.put_cf(cf, &key, &value);
        }
        for op in batch.ops {
            match op {
                BatchOp::Put(k, v) => wb.put_cf(cf, k, v),
                BatchOp::Delete(k) => wb.delete_cf(cf, k),
                BatchOp::DeleteRange(s, e) => wb.delete_range_cf(cf, s, e),
            }
        }
        self.db
            .write(wb)
            .map_err(|e| StorageError::rocks("RocksDB write failed", e))
    }

    /// Compacts the records of one core (its CORE and DATA ranges), as hypercore's
    /// `compact()`.
    pub fn compact(&self, core_pointer: u64, data_pointer: u64) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let cf = self.cf()?;
        let (cs, ce) = keys::core_range(core_pointer);
        let (ds, de) = keys::data_range(data_pointer);
        self.db.compact_range_cf(cf, Some(cs), Some(ce));
        self.db.compact_range_cf(cf, Some(ds), Some(de));
        Ok(())
    }

    /// Flushes the memtables to SST/blob files and syncs the WAL.
    pub fn flush(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.db
            .flush_cf(self.cf()?)
            .map_err(|e| StorageError::rocks("RocksDB flush failed", e))?;
        self.db
            .flush_wal(true)
            .map_err(|e| StorageError::rocks("RocksDB WAL sync failed", e))
    }

    /// Prepares for the process being suspended (mobile): flushes, then releases the
    /// `CORESTORE` lock so another process may take it. Stock RocksDB cannot pause its
    /// file IO the way rocksdb-native's file system wrapper does, so the database stays
    /// open (and keeps RocksDB's own `db/LOCK`); do not write while suspended.
    pub fn suspend(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        self.flush()?;
        let mut guard = self.device.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(df) = guard.as_mut() {
            df.unlock()
                .map_err(|e| StorageError::io("cannot release the CORESTORE lock", e))?;
        }
        Ok(())
    }

    /// Takes the `CORESTORE` lock again (waiting for it, as JS does) and checks that no
    /// other process opened the database meanwhile (db/SESSION_ID unchanged), else
    /// `STORAGE_CONFLICT`.
    pub fn resume(&self) -> Result<()> {
        if self.read_only {
            return Ok(());
        }
        let mut guard = self.device.lock().unwrap_or_else(|p| p.into_inner());
        let Some(df) = guard.as_mut() else {
            return Ok(());
        };
        if df.is_locked() {
            return Ok(());
        }
        df.relock_wait()
            .map_err(|e| StorageError::io("cannot take the CORESTORE lock again", e))?;
        let current = std::fs::read(self.db_dir.join(SESSION_ID_FILE)).unwrap_or_default();
        if current.as_slice() != self.session_id.as_slice() {
            let _ = df.unlock();
            return Err(StorageError::SessionMismatch {
                path: self.dir.clone(),
            });
        }
        Ok(())
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

/// A read-only `Storage::open`, for the tests.
#[cfg(test)]
pub(crate) fn open_read_only(dir: &Path) -> Result<Storage> {
    Storage::open(
        dir,
        &OpenOptions {
            read_only: true,
            ..Default::default()
        },
    )
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::schema::{Alias, AuthKeyPair};

    pub(crate) fn tmp(name: &str) -> PathBuf {
        static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = N.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let d = std::env::temp_dir().join(format!(
            "cs-storage-{name}-{}-{}-{n}",
            std::process::id(),
            now_ms()
        ));
        let _ = std::fs::remove_dir_all(&d);
        d
    }

    fn assert_send_sync<T: Send + Sync>() {}

    #[test]
    fn storage_is_send_sync() {
        assert_send_sync::<Storage>();
        assert_send_sync::<Batch>();
    }

    /// RocksDB is built with `ROCKSDB_FALLOCATE_PRESENT` (.cargo/config.toml): the WAL a
    /// write goes to has space allocated ahead of what it holds.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_wal_is_preallocated_ahead_of_its_writes() {
        use std::os::unix::fs::MetadataExt;
        use std::os::unix::io::AsRawFd;
        // the unwraps are on this test's own files and store: one failing fails the test
        let dir = tmp("wal-prealloc");
        // a file system without fallocate (RocksDB then writes as without the flag) has
        // nothing to show; the probe sits beside the store, which wants an empty directory
        let probe_path = dir.with_extension("probe");
        let probe = std::fs::File::create(&probe_path).unwrap();
        // SAFETY: fallocate on a file this test owns, 4 KiB past its end.
        let ok = unsafe { libc::fallocate(probe.as_raw_fd(), libc::FALLOC_FL_KEEP_SIZE, 0, 4096) };
        drop(probe);
        let _ = std::fs::remove_file(&probe_path);
        if ok != 0 {
            eprintln!("no fallocate beside {}: skipped", dir.display());
            return;
        }
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        let mut b = Batch::new();
        b.put_user_data(1, "k", b"v");
        st.write(b).unwrap();
        let wal = std::fs::read_dir(dir.join(DB_DIR))
            .unwrap()
            .filter_map(|e| e.ok())
            .find(|e| e.path().extension().is_some_and(|x| x == "log"))
            .expect("a WAL file");
        let meta = wal.metadata().unwrap();
        assert!(
            meta.blocks() * 512 >= meta.len() + (1 << 20),
            "{} bytes allocated for {} written",
            meta.blocks() * 512,
            meta.len()
        );
        drop(st);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn sample(st: &Storage) {
        let dkey = [0xd1; 32];
        let mut b = Batch::new();
        assert!(b.is_empty());
        b.put_head(&StoreHead {
            version: 2,
            cores: 1,
            datas: 1,
            groups: 0,
            seed: Some([0x5e; 32]),
            default_discovery_key: Some(dkey),
        });
        b.put_core(
            &dkey,
            &CoreRecord {
                version: 2,
                core_pointer: 0,
                data_pointer: 0,
                alias: Some(Alias {
                    name: "alpha".into(),
                    namespace: [0; 32],
                }),
            },
        );
        b.put_alias(&[0; 32], "alpha", &dkey);
        b.put_auth(
            0,
            &Auth {
                key: [0x4b; 32],
                discovery_key: dkey,
                manifest: None,
                key_pair: Some(AuthKeyPair {
                    public_key: vec![1; 32],
                    secret_key: None,
                }),
                encryption_key: None,
            },
        );
        for i in 0..10u64 {
            b.put_block(0, i, format!("block{i}").as_bytes());
            b.put_tree_node(
                0,
                &TreeNode {
                    index: 2 * i,
                    size: 6,
                    hash: [i as u8; 32],
                },
            );
        }
        b.put_bitfield_page(0, 0, &[0xff; 4096]);
        b.put_bitfield_page(0, 2, &[0x01; 4096]);
        b.put_user_data(0, "hello", b"world");
        b.put_user_data(0, "a\u{0}b", b"zero");
        b.put_hints(
            0,
            &Hints {
                contiguous_length: Some(10),
                ..Default::default()
            },
        );
        st.write(b).unwrap();
    }

    /// Blocks read in order come from scans ahead of the reader; a write after a scan
    /// (a block deleted, one replaced, one added where the scan found none) shows at once.
    #[test]
    fn reads_in_order_see_each_write() {
        let dir = tmp("readahead");
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        let mut b = Batch::new();
        for i in (0..60).filter(|i| i % 10 != 9) {
            b.put_block(4, i, format!("block{i}").as_bytes());
        }
        // a neighbour's blocks must not show in this core's scans
        b.put_block(5, 0, b"other");
        st.write(b).unwrap();
        let expected = |i: u64| (i < 60 && i % 10 != 9).then(|| format!("block{i}").into_bytes());
        for i in 0..62 {
            assert_eq!(st.block(4, i).unwrap(), expected(i), "block {i}");
        }
        for i in 0..3 {
            assert_eq!(st.block(4, i).unwrap(), expected(i));
        }
        let mut b = Batch::new();
        b.delete_block(4, 4);
        b.put_block(4, 5, b"new5");
        b.put_block(4, 9, b"new9");
        st.write(b).unwrap();
        assert_eq!(st.block(4, 3).unwrap(), expected(3));
        assert_eq!(st.block(4, 4).unwrap(), None);
        assert_eq!(st.block(4, 5).unwrap(), Some(b"new5".to_vec()));
        assert_eq!(st.block(4, 6).unwrap(), expected(6));
        let mut b = Batch::new();
        b.delete_blocks(4, 7, Some(8));
        st.write(b).unwrap();
        assert_eq!(st.block(4, 7).unwrap(), None);
        assert_eq!(st.block(4, 8).unwrap(), expected(8));
        assert_eq!(st.block(4, 9).unwrap(), Some(b"new9".to_vec()));
        assert_eq!(st.block(5, 0).unwrap(), Some(b"other".to_vec()));
        assert_eq!(st.block(5, 1).unwrap(), None);
        // large blocks: a scan stops after the bytes it may keep
        let mut b = Batch::new();
        for i in 0..8 {
            b.put_block(6, i, &vec![i as u8; 40_000]);
        }
        st.write(b).unwrap();
        for i in 0..9 {
            let want = (i < 8).then(|| vec![i as u8; 40_000]);
            assert_eq!(st.block(6, i).unwrap(), want, "large block {i}");
        }
        drop(st);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_cores_records_go_in_with_the_batch() {
        let dir = tmp("records");
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        let node = |index: u64| TreeNode {
            index,
            size: 300 + index,
            hash: [index as u8; 32],
        };
        let nodes = [node(0), node(1), node(2), node(70_000)];
        let node_refs: Vec<&TreeNode> = nodes.iter().collect();
        let big = vec![7u8; 5000];
        let blocks: [(u64, &[u8]); 3] = [(0, b"zero"), (1, b""), (300, &big)];
        let mut batch = Batch::new();
        batch.put_user_data(9, "k", b"v");
        let records = CoreRecords {
            data_pointer: 9,
            blocks: &blocks,
            nodes: &node_refs,
        };
        st.write_with(batch, &records).unwrap();
        for (index, bytes) in blocks {
            assert_eq!(st.block(9, index).unwrap(), Some(bytes.to_vec()));
        }
        assert_eq!(st.block(9, 2).unwrap(), None);
        for n in &nodes {
            assert_eq!(st.tree_node(9, n.index).unwrap(), Some(n.clone()));
            assert!(n.encode().len() <= TreeNode::ENCODED_MAX);
        }
        assert_eq!(st.tree_node(9, 3).unwrap(), None);
        assert_eq!(st.user_data(9, "k").unwrap(), Some(b"v".to_vec()));
        // nothing to write is no write, and a read-only store refuses records too
        st.write_with(Batch::new(), &CoreRecords::default())
            .unwrap();
        drop(st);
        let ro = open_read_only(&dir).unwrap();
        let err = ro.write_with(Batch::new(), &records).unwrap_err();
        assert_eq!(err.code(), "INVALID_OPERATION");
        drop(ro);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn write_read_reopen() {
        let dir = tmp("rw");
        {
            let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
            assert!(!st.read_only());
            assert_eq!(st.head().unwrap(), None);
            sample(&st);
            assert!(dir.join("CORESTORE").exists());
            assert_eq!(std::fs::read(dir.join("db/SESSION_ID")).unwrap().len(), 20);
        }
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        let head = st.head().unwrap().unwrap();
        assert_eq!(
            (head.cores, head.datas, head.seed),
            (1, 1, Some([0x5e; 32]))
        );
        assert_eq!(st.discovery_keys().unwrap(), vec![[0xd1; 32]]);
        assert_eq!(
            st.aliased_discovery_keys(&[0; 32]).unwrap(),
            vec![[0xd1; 32]]
        );
        assert!(st.aliased_discovery_keys(&[1; 32]).unwrap().is_empty());
        assert_eq!(st.alias(&[0; 32], "alpha").unwrap(), Some([0xd1; 32]));
        assert_eq!(st.alias(&[0; 32], "beta").unwrap(), None);
        let rec = st.core_by_dkey(&[0xd1; 32]).unwrap().unwrap();
        assert_eq!(rec.alias.unwrap().name, "alpha");
        assert_eq!(st.auth(0).unwrap().unwrap().key, [0x4b; 32]);
        assert_eq!(st.block(0, 3).unwrap(), Some(b"block3".to_vec()));
        assert_eq!(st.blocks(0, 2, Some(4)).unwrap().len(), 2);
        assert_eq!(st.tree_node(0, 4).unwrap().unwrap().hash, [2; 32]);
        assert_eq!(st.tree_nodes(0, 0, None).unwrap().len(), 10);
        let pages = st.bitfield_pages(0).unwrap();
        assert_eq!(pages.iter().map(|p| p.0).collect::<Vec<_>>(), vec![0, 2]);
        assert_eq!(st.user_data(0, "hello").unwrap(), Some(b"world".to_vec()));
        assert_eq!(
            st.user_data_entries(0).unwrap(),
            vec![
                ("a\u{0}b".to_string(), b"zero".to_vec()),
                ("hello".to_string(), b"world".to_vec())
            ]
        );
        assert_eq!(st.hints(0).unwrap().unwrap().contiguous_length, Some(10));
        assert_eq!(st.core_head(0).unwrap(), None);
        assert_eq!(st.dependency(0).unwrap(), None);

        // range deletes
        let mut b = Batch::new();
        b.delete_blocks(0, 5, None);
        b.delete_tree_nodes(0, 4, Some(10));
        b.delete_bitfield_page(0, 2);
        b.delete_user_data(0, "hello");
        st.write(b).unwrap();
        assert_eq!(st.blocks(0, 0, None).unwrap().len(), 5);
        assert_eq!(st.block(0, 5).unwrap(), None);
        let idx: Vec<u64> = st
            .tree_nodes(0, 0, None)
            .unwrap()
            .iter()
            .map(|n| n.index)
            .collect();
        assert_eq!(idx, vec![0, 2, 10, 12, 14, 16, 18]);
        assert_eq!(st.bitfield_pages(0).unwrap().len(), 1);
        assert_eq!(st.user_data(0, "hello").unwrap(), None);
        let mut b = Batch::new();
        b.delete_blocks(0, 3, Some(3));
        b.delete_blocks(0, 4, Some(2));
        assert!(b.is_empty());
        b.delete_data_range(0);
        st.write(b).unwrap();
        assert!(st.blocks(0, 0, None).unwrap().is_empty());
        assert_eq!(st.hints(0).unwrap(), None);
        st.flush().unwrap();
        st.suspend().unwrap();
        st.resume().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn snapshots_keep_deleted_blocks_until_released() {
        let dir = tmp("snapshot");
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        let mut b = Batch::new();
        b.put_block(7, 0, b"zero");
        b.put_block(7, 1, b"one");
        st.write(b).unwrap();
        let id = st.snapshot();
        let mut b = Batch::new();
        b.delete_blocks(7, 1, None);
        b.put_block(7, 2, b"two");
        st.write(b).unwrap();
        assert_eq!(st.block(7, 1).unwrap(), None);
        assert_eq!(st.snapshot_block(id, 7, 1).unwrap(), Some(b"one".to_vec()));
        assert_eq!(
            st.snapshot_block(id, 7, 2).unwrap(),
            None,
            "written after it"
        );
        // the Storage moves (as it does into a Store): the snapshot still reads
        let moved = st;
        assert_eq!(
            moved.snapshot_block(id, 7, 0).unwrap(),
            Some(b"zero".to_vec())
        );
        moved.release_snapshot(id);
        assert_eq!(moved.snapshot_block(id, 7, 0).unwrap(), None);
        let kept = moved.snapshot();
        drop(moved); // released before RocksDB closes
        let _ = kept;
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn second_open_conflicts_and_read_only_works() {
        let dir = tmp("conflict");
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        sample(&st);
        let err = Storage::open(&dir, &OpenOptions::default()).unwrap_err();
        assert_eq!(err.code(), "STORAGE_CONFLICT", "{err}");
        assert!(err.to_string().contains("locked"));
        // read-only needs no lock and sees the WAL
        let ro = open_read_only(&dir).unwrap();
        assert!(ro.read_only());
        assert_eq!(ro.user_data(0, "hello").unwrap(), Some(b"world".to_vec()));
        let err = ro.write({
            let mut b = Batch::new();
            b.put_user_data(0, "x", b"y");
            b
        });
        assert_eq!(err.unwrap_err().code(), "INVALID_OPERATION");
        drop(ro);
        drop(st);
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        drop(st);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn suspend_lets_another_opener_take_the_lock_and_resume_detects_it() {
        let dir = tmp("suspend");
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        st.suspend().unwrap();
        // another "process" takes the device file lock and writes its own session id
        let df = DeviceFile::open_existing(&dir.join("CORESTORE"))
            .unwrap()
            .unwrap();
        std::fs::write(dir.join("db/SESSION_ID"), b"XXXXXXXXXXXXXXXXXXXX").unwrap();
        drop(df);
        let err = st.resume().unwrap_err();
        assert_eq!(err.code(), "STORAGE_CONFLICT");
        drop(st);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn refuses_foreign_and_legacy_directories() {
        let dir = tmp("foreign");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("notes.txt"), b"hi").unwrap();
        let err = Storage::open(&dir, &OpenOptions::default()).unwrap_err();
        assert_eq!(err.code(), "STORAGE_CORRUPTION", "{err}");
        assert!(err.to_string().contains("notes.txt"), "{err}");
        assert!(!dir.join("CORESTORE").exists());
        assert!(!dir.join("db").exists());

        let dir2 = tmp("legacy");
        std::fs::create_dir_all(dir2.join("cores/ab/cd")).unwrap();
        std::fs::write(dir2.join("primary-key"), [0u8; 32]).unwrap();
        let err = Storage::open(&dir2, &OpenOptions::default()).unwrap_err();
        assert_eq!(err.code(), "INVALID_OPERATION", "{err}");
        assert!(err.to_string().contains("Corestore 6"), "{err}");

        let dir3 = tmp("missing");
        let err = open_read_only(&dir3).unwrap_err();
        assert_eq!(err.code(), "STORAGE_EMPTY", "{err}");
        assert!(!dir3.exists());

        let file = tmp("file");
        std::fs::write(&file, b"x").unwrap();
        assert_eq!(
            Storage::open(&file, &OpenOptions::default())
                .unwrap_err()
                .code(),
            "STORAGE_CORRUPTION"
        );
        for d in [dir, dir2, file] {
            let _ = std::fs::remove_dir_all(&d);
            let _ = std::fs::remove_file(&d);
        }
    }

    #[test]
    fn copied_store_is_refused_like_js() {
        let dir = tmp("orig");
        drop(Storage::open(&dir, &OpenOptions::default()).unwrap());
        let copy = tmp("copy");
        std::fs::create_dir_all(copy.join("db")).unwrap();
        std::fs::copy(dir.join("CORESTORE"), copy.join("CORESTORE")).unwrap();
        for e in std::fs::read_dir(dir.join("db")).unwrap().flatten() {
            std::fs::copy(e.path(), copy.join("db").join(e.file_name())).unwrap();
        }
        let err = Storage::open(&copy, &OpenOptions::default()).unwrap_err();
        assert_eq!(err.code(), "DEVICE_FILE", "{err}");
        // but a read-only open of the copy works
        drop(open_read_only(&copy).unwrap());
        // and with allowBackup it opens for writing, leaving the device file as it was
        let device = std::fs::read(copy.join("CORESTORE")).unwrap();
        let backup = OpenOptions {
            allow_backup: true,
            ..Default::default()
        };
        {
            let st = Storage::open(&copy, &backup).unwrap();
            let mut b = Batch::new();
            b.put_user_data(0, "k", b"v");
            st.write(b).unwrap();
        }
        let st = Storage::open(&copy, &backup).unwrap();
        assert_eq!(st.user_data(0, "k").unwrap(), Some(b"v".to_vec()));
        drop(st);
        assert_eq!(std::fs::read(copy.join("CORESTORE")).unwrap(), device);
        assert_eq!(
            Storage::open(&copy, &OpenOptions::default())
                .unwrap_err()
                .code(),
            "DEVICE_FILE"
        );
        let _ = std::fs::remove_dir_all(&dir);
        let _ = std::fs::remove_dir_all(&copy);
    }

    #[test]
    fn bad_records_are_errors() {
        let dir = tmp("bad");
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        let mut b = Batch::new();
        b.put_raw(keys::core_auth(0), vec![1, 2, 3]);
        b.put_raw(keys::data_head(0), vec![0]);
        b.put_raw(keys::core_by_alias(&[0; 32], "x"), vec![1; 31]);
        b.put_raw(
            keys::core_by_dkey(&[9; 32]),
            CoreRecord {
                version: 3,
                core_pointer: 0,
                data_pointer: 0,
                alias: None,
            }
            .encode(),
        );
        st.write(b).unwrap();
        assert_eq!(st.auth(0).unwrap_err().code(), "STORAGE_CORRUPTION");
        assert_eq!(st.core_head(0).unwrap_err().code(), "STORAGE_CORRUPTION");
        assert_eq!(
            st.alias(&[0; 32], "x").unwrap_err().code(),
            "STORAGE_CORRUPTION"
        );
        assert_eq!(
            st.core_by_dkey(&[9; 32]).unwrap_err().code(),
            "INVALID_OPERATION"
        );
        // a head from the future makes the store refuse to open
        let mut b = Batch::new();
        b.put_raw(keys::head(), vec![3, 0, 0, 0, 0]);
        st.write(b).unwrap();
        assert_eq!(st.head().unwrap_err().code(), "INVALID_OPERATION");
        drop(st);
        let err = Storage::open(&dir, &OpenOptions::default()).unwrap_err();
        assert_eq!(err.code(), "INVALID_OPERATION");
        assert!(err.to_string().contains("upgrade"), "{err}");
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn recovering_marker_sets_hints() {
        let dir = tmp("recover");
        {
            let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
            sample(&st);
        }
        std::fs::write(dir.join("db/RECOVERING"), b"").unwrap();
        let before = now_ms();
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        assert!(!dir.join("db/RECOVERING").exists());
        let h = st.hints(0).unwrap().unwrap();
        assert_eq!(h.contiguous_length, Some(10));
        assert!(h.recovering.unwrap() >= before);
        drop(st);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn adopts_a_db_without_device_file() {
        // a store written by JS with allowBackup/readOnly has db/ but no CORESTORE
        let dir = tmp("nodevice");
        {
            let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
            sample(&st);
        }
        std::fs::remove_file(dir.join("CORESTORE")).unwrap();
        let st = Storage::open(&dir, &OpenOptions::default()).unwrap();
        assert!(dir.join("CORESTORE").exists());
        assert_eq!(st.user_data(0, "hello").unwrap(), Some(b"world".to_vec()));
        drop(st);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
