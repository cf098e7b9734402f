//! compact-encoding (the JS package of that name): the value encoding of hypercore-storage
//! and of hypercore's wire messages. Decoding never panics: every read is bounds-checked and
//! a short or malformed input is a `DecodeError`.

use std::fmt;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "decode error: {}", self.0)
    }
}

impl std::error::Error for DecodeError {}

pub type Result<T> = std::result::Result<T, DecodeError>;

/// Largest array length the JS decoder accepts (compact-encoding refuses more).
pub const MAX_ARRAY: u64 = 1 << 20;

#[derive(Default, Debug, Clone)]
pub struct Writer {
    pub buf: Vec<u8>,
}

impl Writer {
    pub fn new() -> Self {
        Self { buf: Vec::new() }
    }

    pub fn with_capacity(n: usize) -> Self {
        Self {
            buf: Vec::with_capacity(n),
        }
    }

    pub fn into_vec(self) -> Vec<u8> {
        self.buf
    }

    pub fn u8(&mut self, v: u8) -> &mut Self {
        self.buf.push(v);
        self
    }

    /// compact-encoding `uint`: <= 0xfc in one byte, then fd+u16LE, fe+u32LE, ff+u64LE.
    pub fn uint(&mut self, v: u64) -> &mut Self {
        if v <= 0xfc {
            self.buf.push(v as u8);
        } else if v <= 0xffff {
            self.buf.push(0xfd);
            self.buf.extend_from_slice(&(v as u16).to_le_bytes());
        } else if v <= 0xffff_ffff {
            self.buf.push(0xfe);
            self.buf.extend_from_slice(&(v as u32).to_le_bytes());
        } else {
            self.buf.push(0xff);
            self.buf.extend_from_slice(&v.to_le_bytes());
        }
        self
    }

    pub fn uint64(&mut self, v: u64) -> &mut Self {
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    pub fn fixed(&mut self, bytes: &[u8]) -> &mut Self {
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `buffer` / `string`: uint length, then the bytes.
    pub fn buffer(&mut self, bytes: &[u8]) -> &mut Self {
        self.uint(bytes.len() as u64);
        self.buf.extend_from_slice(bytes);
        self
    }

    /// `optionalBuffer`/`buffer` with null: length 0 stands for null.
    pub fn opt_buffer(&mut self, bytes: Option<&[u8]>) -> &mut Self {
        match bytes {
            Some(b) => self.buffer(b),
            None => self.uint(0),
        }
    }

    pub fn string(&mut self, s: &str) -> &mut Self {
        self.buffer(s.as_bytes())
    }
}

#[derive(Debug, Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    pub fn new(buf: &'a [u8]) -> Self {
        Self { buf, pos: 0 }
    }

    pub fn remaining(&self) -> usize {
        self.buf.len() - self.pos
    }

    pub fn is_empty(&self) -> bool {
        self.remaining() == 0
    }

    pub fn rest(&self) -> &'a [u8] {
        &self.buf[self.pos..]
    }

    pub fn u8(&mut self) -> Result<u8> {
        let b = *self.buf.get(self.pos).ok_or(DecodeError("out of bounds"))?;
        self.pos += 1;
        Ok(b)
    }

    pub fn take(&mut self, n: usize) -> Result<&'a [u8]> {
        if self.remaining() < n {
            return Err(DecodeError("out of bounds"));
        }
        let s = &self.buf[self.pos..self.pos + n];
        self.pos += n;
        Ok(s)
    }

    pub fn uint(&mut self) -> Result<u64> {
        let first = self.u8()?;
        Ok(match first {
            0xfd => u16::from_le_bytes(self.array::<2>()?) as u64,
            0xfe => u32::from_le_bytes(self.array::<4>()?) as u64,
            0xff => u64::from_le_bytes(self.array::<8>()?),
            n => n as u64,
        })
    }

    pub fn uint64(&mut self) -> Result<u64> {
        Ok(u64::from_le_bytes(self.array::<8>()?))
    }

    pub fn array<const N: usize>(&mut self) -> Result<[u8; N]> {
        let s = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(s);
        Ok(out)
    }

    pub fn buffer(&mut self) -> Result<&'a [u8]> {
        let len = self.uint()?;
        let len = usize::try_from(len).map_err(|_| DecodeError("length too large"))?;
        self.take(len)
    }

    /// `buffer` where length 0 decodes as null.
    pub fn opt_buffer(&mut self) -> Result<Option<&'a [u8]>> {
        let b = self.buffer()?;
        Ok(if b.is_empty() { None } else { Some(b) })
    }

    pub fn string(&mut self) -> Result<String> {
        let b = self.buffer()?;
        std::str::from_utf8(b)
            .map(|s| s.to_string())
            .map_err(|_| DecodeError("invalid utf-8"))
    }

    /// An optional field of a hyperschema struct: present when `bit` is set in `flags`.
    pub fn flagged<T>(
        &mut self,
        flags: u64,
        bit: u64,
        read: impl FnOnce(&mut Self) -> Result<T>,
    ) -> Result<Option<T>> {
        if flags & bit != 0 {
            read(self).map(Some)
        } else {
            Ok(None)
        }
    }

    /// An array length, refusing what the JS decoder refuses.
    pub fn array_len(&mut self) -> Result<usize> {
        let n = self.uint()?;
        if n > MAX_ARRAY {
            return Err(DecodeError("array too large"));
        }
        Ok(n as usize)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uint_round_trips_at_every_width() {
        for v in [
            0u64,
            0xfc,
            0xfd,
            0xffff,
            0x10000,
            0xffff_ffff,
            0x1_0000_0000,
            u64::MAX,
        ] {
            let mut w = Writer::new();
            w.uint(v);
            let mut r = Reader::new(&w.buf);
            assert_eq!(r.uint().unwrap(), v);
            assert!(r.is_empty());
        }
        let mut w = Writer::new();
        w.uint(0xfd);
        assert_eq!(w.buf, vec![0xfd, 0xfd, 0x00]);
    }

    #[test]
    fn short_input_is_an_error_not_a_panic() {
        assert!(Reader::new(&[0xfe, 1]).uint().is_err());
        assert!(Reader::new(&[5, 1, 2]).buffer().is_err());
        assert!(Reader::new(&[]).u8().is_err());
    }
}
