//! The commands for external streams' JS Protomux (peer.rs `Command`), packed as the
//! binding hands them to JS (lib/targets.js, lib/mux-frames.js): `meta` holds 16 bytes per
//! command, four little-endian u32s: the session, the channel, the message type
//! (`OPEN_COMMAND` for `open`: a hypercore channel whose payload is the discovery key, then
//! our handshake) and the payload's length; `data` the payloads, one after another.
//!
//! Packed as they leave the engine, on the thread that made them (the replication worker,
//! mostly), so the JS thread takes two buffers per poll: it neither copies each payload nor
//! frees buffers another thread allocated, which waited on that thread's malloc arena
//! (docs/DECISIONS.md §69).

use super::Command;

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

    /// Appends commands, in order.
    pub fn push(&mut self, commands: Vec<(u32, Command)>) {
        if commands.is_empty() {
            return;
        }
        self.meta.reserve(16 * commands.len());
        let size: usize = commands
            .iter()
            .map(|(_, c)| match c {
                Command::Open { handshake, .. } => 32 + handshake.len(),
                Command::Send { payload, .. } => payload.len(),
            })
            .sum();
        self.data.reserve(size);
        for (session, c) in commands {
            let start = self.data.len();
            // channel ids and message types are small: the engine numbers its channels from
            // 1 and hypercore has ten message types
            let (channel, message_type) = match c {
                Command::Open {
                    channel,
                    discovery_key,
                    handshake,
                } => {
                    self.data.extend_from_slice(&discovery_key);
                    self.data.extend_from_slice(&handshake);
                    (channel as u32, OPEN_COMMAND)
                }
                Command::Send {
                    channel,
                    message_type,
                    payload,
                } => {
                    self.data.extend_from_slice(&payload);
                    (channel as u32, message_type as u32)
                }
            };
            for field in [session, channel, message_type, (self.data.len() - start) as u32] {
                self.meta.extend_from_slice(&field.to_le_bytes());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn field(meta: &[u8], command: usize, i: usize) -> u32 {
        let at = 16 * command + 4 * i;
        u32::from_le_bytes([meta[at], meta[at + 1], meta[at + 2], meta[at + 3]])
    }

    #[test]
    fn commands_pushed_in_two_calls_read_back_in_order() {
        let mut packed = PackedCommands::default();
        assert!(packed.is_empty());
        packed.push(vec![(
            7,
            Command::Open {
                channel: 1,
                discovery_key: [9; 32],
                handshake: vec![1, 2, 3],
            },
        )]);
        packed.push(vec![
            (
                7,
                Command::Send {
                    channel: 1,
                    message_type: 4,
                    payload: vec![5; 10],
                },
            ),
            (
                8,
                Command::Send {
                    channel: 2,
                    message_type: 0,
                    payload: Vec::new(),
                },
            ),
        ]);
        assert_eq!(packed.meta.len(), 48);
        let rows: Vec<[u32; 4]> = (0..3)
            .map(|c| std::array::from_fn(|i| field(&packed.meta, c, i)))
            .collect();
        assert_eq!(
            rows,
            vec![[7, 1, OPEN_COMMAND, 35], [7, 1, 4, 10], [8, 2, 0, 0]]
        );
        let mut expected = vec![9; 32];
        expected.extend([1, 2, 3]);
        expected.extend([5; 10]);
        assert_eq!(packed.data, expected);
    }
}
