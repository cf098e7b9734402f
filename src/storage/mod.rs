//! The storage layer: the on-disk format of JS Corestore 7 (hypercore-storage 3.x on
//! RocksDB), so that a directory can be opened by either implementation.
//!
//! * [`keys`]: the key layout (index-encoder).
//! * [`schema`]: the value records (compact-encoding / hyperschema v2).
//! * [`device_file`]: the `CORESTORE` device file and its lock.
//! * [`db`]: [`Storage`] (open/validate/read) and [`Batch`] (atomic writes).
//! * [`readahead`]: blocks scanned ahead of in-order reads.
//! * [`memtable_memory`]: RocksDB's memtable blocks, kept resident between memtables.
//!
//! See /work/shared/storage-format.md for the measured format.

pub mod db;
pub mod device_file;
pub mod keys;
#[cfg(target_os = "linux")]
pub mod memtable_memory;
pub mod overlay;
mod readahead;
pub mod schema;

#[cfg(test)]
mod interop_tests;

pub use db::{AliasEntry, Batch, BatchOp, CoreRecords, OpenOptions, Storage};
pub use overlay::{Overlaid, Overlay, Pending, Reader, SnapshotRead};
pub use schema::*;

use crate::encoding::compact::DecodeError;
use std::fmt;
use std::path::PathBuf;

/// Everything that can go wrong in the storage layer. [`StorageError::code`] gives the
/// hypercore-style error code to surface to JS.
#[derive(Debug)]
pub enum StorageError {
    /// The `CORESTORE` lock is held by another process, or by another open of the same
    /// directory in this process.
    Conflict { path: PathBuf },
    /// The `CORESTORE` device file does not belong to this directory (copied, restored,
    /// moved, or made on another platform). JS throws the same condition with code
    /// `DEVICE_FILE`.
    DeviceFile { path: PathBuf, reason: String },
    /// The directory exists but is not a corestore.
    NotACorestore { path: PathBuf, reason: String },
    /// A Corestore 6 (pre-RocksDB, "version 0") directory.
    LegacyLayout { path: PathBuf },
    /// A read-only open of a directory that holds no store.
    NotFound { path: PathBuf },
    /// A record or key that does not decode.
    Corrupt { what: String, source: DecodeError },
    /// A record written by a newer hypercore-storage than this build understands.
    UnsupportedVersion { what: String, version: u64 },
    /// A write on a store opened read-only.
    ReadOnly { path: PathBuf },
    /// On resume: another process opened the store while it was suspended.
    SessionMismatch { path: PathBuf },
    /// RocksDB refused the WAL ("sequence number is being set backwards"); the WAL files
    /// were removed and `db/RECOVERING` written, as JS does. Reopening recovers.
    Recovering {
        path: PathBuf,
        source: rocksdb::Error,
    },
    Io {
        context: String,
        source: std::io::Error,
    },
    RocksDb {
        context: String,
        source: rocksdb::Error,
    },
}

impl StorageError {
    /// The hypercore-style error code.
    pub fn code(&self) -> &'static str {
        match self {
            StorageError::Conflict { .. } | StorageError::SessionMismatch { .. } => {
                "STORAGE_CONFLICT"
            }
            StorageError::DeviceFile { .. } => "DEVICE_FILE",
            StorageError::NotACorestore { .. } | StorageError::Corrupt { .. } => {
                "STORAGE_CORRUPTION"
            }
            StorageError::LegacyLayout { .. }
            | StorageError::UnsupportedVersion { .. }
            | StorageError::ReadOnly { .. } => "INVALID_OPERATION",
            StorageError::NotFound { .. } => "STORAGE_EMPTY",
            StorageError::RocksDb { source, .. } => rocks_code(source),
            StorageError::Recovering { .. } | StorageError::Io { .. } => "STORAGE_ERROR",
        }
    }

    pub(crate) fn corrupt(what: impl Into<String>, source: DecodeError) -> Self {
        StorageError::Corrupt {
            what: what.into(),
            source,
        }
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        StorageError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn rocks(context: impl Into<String>, source: rocksdb::Error) -> Self {
        StorageError::RocksDb {
            context: context.into(),
            source,
        }
    }
}

/// The code JS corestore's RocksDB binding gives the same failure (a damaged or missing
/// database file): a corruption is `EIO`, a file that is not there `ENOENT`, other I/O errors
/// `EIO`; anything else keeps our `STORAGE_ERROR`.
fn rocks_code(e: &rocksdb::Error) -> &'static str {
    use rocksdb::ErrorKind;
    match e.kind() {
        ErrorKind::Corruption => "EIO",
        ErrorKind::IOError if e.as_ref().contains("No such file or directory") => "ENOENT",
        ErrorKind::IOError if e.as_ref().contains("No space left on device") => "ENOSPC",
        ErrorKind::IOError => "EIO",
        _ => "STORAGE_ERROR",
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StorageError::Conflict { path } => write!(
                f,
                "the corestore at {} is locked by another process (or is already open in this one): \
                 close the other Corestore using this directory first, or open it read-only",
                path.display()
            ),
            StorageError::DeviceFile { path, reason } => write!(
                f,
                "invalid device file {}: {reason}. The store was copied, restored from a backup or \
                 moved, and JS corestore refuses it too; open it read-only, or if this copy is now the \
                 only live one, delete CORESTORE so a new one is written",
                path.display()
            ),
            StorageError::NotACorestore { path, reason } => write!(
                f,
                "{} is not a corestore directory: {reason}. Use an empty directory or an existing \
                 corestore",
                path.display()
            ),
            StorageError::LegacyLayout { path } => write!(
                f,
                "{} holds a Corestore 6 store (the pre-RocksDB 'primary-key'/'cores' layout), which \
                 this build cannot read: open it once with JS corestore 7 to migrate it, then reopen",
                path.display()
            ),
            StorageError::NotFound { path } => write!(
                f,
                "no corestore at {} (no db/ directory); a read-only open does not create one",
                path.display()
            ),
            StorageError::Corrupt { what, source } => write!(
                f,
                "corrupt {what} ({source}): the store is damaged or was written by an incompatible \
                 program; restore it from a backup"
            ),
            StorageError::UnsupportedVersion { what, version } => write!(
                f,
                "{what} has version {version}, newer than this build understands (max {}): upgrade \
                 corestore-native to open this store",
                schema::VERSION
            ),
            StorageError::ReadOnly { path } => write!(
                f,
                "the corestore at {} was opened read-only; reopen it writable to change it",
                path.display()
            ),
            StorageError::SessionMismatch { path } => write!(
                f,
                "the corestore at {} was opened by another process while this one was suspended \
                 (db/SESSION_ID changed): close and reopen this Corestore",
                path.display()
            ),
            StorageError::Recovering { path, source } => write!(
                f,
                "RocksDB could not replay the write-ahead log of {} ({source}); as JS corestore does, \
                 the log was dropped and db/RECOVERING written: reopen the store to recover (cores \
                 will be marked as recovering)",
                path.display()
            ),
            StorageError::Io { context, source } => write!(f, "{context}: {source}"),
            StorageError::RocksDb { context, source } => write!(f, "{context}: {source}"),
        }
    }
}

impl std::error::Error for StorageError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            StorageError::Corrupt { source, .. } => Some(source),
            StorageError::Io { source, .. } => Some(source),
            StorageError::RocksDb { source, .. } | StorageError::Recovering { source, .. } => {
                Some(source)
            }
            _ => None,
        }
    }
}

pub type Result<T> = std::result::Result<T, StorageError>;
