//! The commands for an external stream's JS Protomux (a channel to open, a message to
//! send), packed as the binding hands them to JS (lib/targets.js, lib/mux-frames.js):
//! `meta` holds 16 bytes per command, four little-endian u32s: the session, the channel,
//! the message type (`OPEN_COMMAND` for `open`: a hypercore channel whose payload is the
//! discovery key, then our handshake) and the payload's length; `data` the payloads, one
//! after another.
//!
//! A peer encodes its messages straight into `data`, on the thread that runs the engine
//! (the replication worker, mostly): no buffer per message, and the JS thread takes two
//! buffers per poll. It neither copies each payload nor frees buffers another thread
//! allocated, which waited on that thread's malloc arena (docs/DECISIONS.md §69).

use crate::encoding::compact::Writer;

/// The message type field of an `open` command.
pub const OPEN_COMMAND: u32 = u32::MAX;

#[derive(Default)]
pub struct PackedCommands {
    pub meta: Vec<u8>,
    pub data: Vec<u8>,
}

impl PackedCommands {
    pub fn is_empty(&self) -> bool {
        self.meta.is_empty()
    }

    /// How many commands.
    pub fn len(&self) -> usize {
        self.meta.len() / 16
    }

    fn row(&mut self, session: u32, channel: u64, message_type: u32, start: usize) {
        // channel ids and message types are small: the engine numbers its channels from
        // 1 and hypercore has ten message types
        let len = (self.data.len() - start) as u32;
        for field in [session, channel as u32, message_type, len] {
            self.meta.extend_from_slice(&field.to_le_bytes());
        }
    }

    /// Opens a hypercore channel. A peer packs with session 0; `append` sets it.
    pub fn open(&mut self, channel: u64, discovery_key: &[u8; 32], handshake: &[u8]) {
        let start = self.data.len();
        self.data.extend_from_slice(discovery_key);
        self.data.extend_from_slice(handshake);
        self.row(0, channel, OPEN_COMMAND, start);
    }

    /// Sends a message whose payload `encode` writes (`hint`: about its length). Its
    /// payload's length.
    pub fn send(
        &mut self,
        channel: u64,
        message_type: u64,
        hint: usize,
        encode: impl FnOnce(&mut Writer),
    ) -> usize {
        let start = self.data.len();
        let mut w = Writer {
            buf: std::mem::take(&mut self.data),
        };
        w.buf.reserve(hint);
        encode(&mut w);
        self.data = w.buf;
        self.row(0, channel, message_type as u32, start);
        self.data.len() - start
    }

    /// Moves `other`'s commands after ours, as `session`'s.
    pub fn append(&mut self, session: u32, other: &mut PackedCommands) {
        for row in other.meta.chunks_exact_mut(16) {
            row[..4].copy_from_slice(&session.to_le_bytes());
        }
        self.extend(other);
    }

    /// Moves `other`'s commands after ours, sessions as they are.
    pub fn extend(&mut self, other: &mut PackedCommands) {
        if self.is_empty() {
            std::mem::swap(self, other);
            return;
        }
        self.meta.append(&mut other.meta);
        self.data.append(&mut other.data);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(packed: &PackedCommands) -> Vec<[u32; 4]> {
        let field = |at: usize| {
            let b = &packed.meta[at..at + 4];
            u32::from_le_bytes([b[0], b[1], b[2], b[3]])
        };
        (0..packed.len())
            .map(|c| std::array::from_fn(|i| field(16 * c + 4 * i)))
            .collect()
    }

    #[test]
    fn two_sessions_commands_read_back_in_order() {
        let mut a = PackedCommands::default();
        a.open(1, &[9; 32], &[1, 2, 3]);
        let sent = a.send(1, 4, 2, |w| {
            w.buf.extend_from_slice(&[5; 10]);
        });
        assert_eq!(sent, 10);
        let mut b = PackedCommands::default();
        b.send(2, 0, 0, |_| {});

        let mut out = PackedCommands::default();
        assert!(out.is_empty());
        out.append(7, &mut a);
        out.append(8, &mut b);
        assert!(a.is_empty() && b.is_empty());
        assert_eq!(
            rows(&out),
            vec![[7, 1, OPEN_COMMAND, 35], [7, 1, 4, 10], [8, 2, 0, 0]]
        );
        let mut expected = vec![9; 32];
        expected.extend([1, 2, 3]);
        expected.extend([5; 10]);
        assert_eq!(out.data, expected);

        let mut more = PackedCommands::default();
        more.send(3, 1, 0, |w| w.buf.push(42));
        more.append(9, &mut PackedCommands::default());
        out.extend(&mut more);
        assert_eq!(rows(&out)[3], [0, 3, 1, 1]);
        assert_eq!(out.data.last(), Some(&42));
    }
}
