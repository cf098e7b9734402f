//! The replication wire, sans-IO: bytes in, bytes and events out; no sockets here.
//! noise: the Noise XX handshake of @hyperswarm/secret-stream (noise-handshake, Ed25519 DH).
//! secretstream: libsodium's crypto_secretstream_xchacha20poly1305 framing after it.
//! protomux: channels and message framing (the protomux package).
//! messages: the hypercore/alpha protocol messages (hypercore lib/messages.js).
//! channel_events: a JS Protomux's channel events as they cross the binding, packed.

pub mod channel_events;
pub mod messages;
pub mod noise;
pub mod protomux;
pub mod secretstream;
