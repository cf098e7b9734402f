//! The one error type the engine hands to the N-API layer: a hypercore-errors style code
//! (`BAD_ARGUMENT`, `STORAGE_EMPTY`, ...) and a message that says what to do.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub code: &'static str,
    pub message: String,
}

impl Error {
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
        }
    }

    pub fn bad_argument(message: impl Into<String>) -> Self {
        Self::new("BAD_ARGUMENT", message)
    }

    pub fn storage_empty() -> Self {
        Self::new("STORAGE_EMPTY", "No Hypercore is stored here")
    }

    pub fn corruption(message: impl Into<String>) -> Self {
        Self::new("STORAGE_CORRUPTION", message)
    }

    pub fn invalid_operation(message: impl Into<String>) -> Self {
        Self::new("INVALID_OPERATION", message)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for Error {}

impl From<crate::storage::StorageError> for Error {
    fn from(e: crate::storage::StorageError) -> Self {
        Self::new(e.code(), e.to_string())
    }
}

impl From<crate::encoding::compact::DecodeError> for Error {
    fn from(e: crate::encoding::compact::DecodeError) -> Self {
        Self::corruption(format!("a stored record could not be decoded ({})", e.0))
    }
}

pub type Result<T> = std::result::Result<T, Error>;
