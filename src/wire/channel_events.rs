//! Channel events of a stream whose Protomux runs in JS, as they cross the binding packed
//! (lib/targets.js packChannelEvents): `meta` holds 10 bytes per event (kind: 0
//! `remote-open` (data = the discovery key the peer opened), 1 `opened` (data = the peer's
//! handshake), 2 `message`, 3 `close`, 4 `skip` (data that is no event: the framing between
//! the messages of a received Protomux frame handed over whole, lib/mux-receive.js); the
//! message type; the channel and the length of the event's data, little-endian u32s),
//! `data` the events' data one after another.
//!
//! Input for the replication worker is checked here on the JS thread and decoded by the
//! worker: the JS thread copies `data` once instead of allocating a buffer per message
//! (docs/DECISIONS.md §65).

use crate::wire::protomux::MuxEvent;

/// The kind of a row whose data is no event.
const SKIP: u8 = 4;

/// One event, its data still in the packed buffer.
struct Raw<'a> {
    kind: u8,
    message_type: u8,
    local_id: u64,
    data: &'a [u8],
}

/// The packed events in order; Err says what is wrong with them.
fn each<'a>(
    meta: &'a [u8],
    data: &'a [u8],
) -> Result<impl Iterator<Item = Result<Raw<'a>, String>> + 'a, String> {
    if !meta.len().is_multiple_of(10) {
        return Err("meta must hold 10 bytes per event".into());
    }
    let mut rest = data;
    let mut rows = meta.chunks_exact(10);
    let mut done = false;
    Ok(std::iter::from_fn(move || loop {
        if done {
            return None;
        }
        let Some(m) = rows.next() else {
            done = true;
            return (!rest.is_empty()).then(|| Err("data left over after the events".into()));
        };
        let local_id = u64::from(u32::from_le_bytes([m[2], m[3], m[4], m[5]]));
        let len = u32::from_le_bytes([m[6], m[7], m[8], m[9]]) as usize;
        if len > rest.len() {
            done = true;
            return Some(Err("an event's data runs past the data given".into()));
        }
        if m[0] > SKIP {
            done = true;
            return Some(Err(format!("unknown channel event kind {}", m[0])));
        }
        let (data, after) = rest.split_at(len);
        rest = after;
        if m[0] == SKIP {
            continue;
        }
        return Some(Ok(Raw {
            kind: m[0],
            message_type: m[1],
            local_id,
            data,
        }));
    }))
}

/// Err if the packed events are malformed (what `decode` would refuse), without decoding.
pub fn check(meta: &[u8], data: &[u8]) -> Result<(), String> {
    each(meta, data)?.try_for_each(|e| e.map(|_| ()))
}

pub fn decode(meta: &[u8], data: &[u8]) -> Result<Vec<MuxEvent>, String> {
    let mut events = Vec::with_capacity(meta.len() / 10);
    for e in each(meta, data)? {
        let Raw {
            kind,
            message_type,
            local_id,
            data,
        } = e?;
        events.push(match kind {
            0 => MuxEvent::Open {
                remote_id: 0,
                protocol: crate::wire::messages::PROTOCOL.to_string(),
                id: Some(data.to_vec()),
                handshake: Vec::new(),
            },
            1 => MuxEvent::Opened {
                local_id,
                remote_id: 0,
                handshake: data.to_vec(),
            },
            2 => MuxEvent::Message {
                local_id,
                message_type: u64::from(message_type),
                payload: data.to_vec(),
            },
            _ => MuxEvent::Close { local_id },
        });
    }
    Ok(events)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(kind: u8, message_type: u8, local_id: u32, len: u32) -> Vec<u8> {
        let mut m = vec![kind, message_type];
        m.extend_from_slice(&local_id.to_le_bytes());
        m.extend_from_slice(&len.to_le_bytes());
        m
    }

    #[test]
    fn decodes_each_kind_in_order() {
        let meta = [
            row(0, 0, 0, 2),
            row(1, 0, 7, 1),
            row(2, 5, 7, 3),
            row(3, 0, 7, 0),
        ]
        .concat();
        let data = b"dkhabc";
        assert!(check(&meta, data).is_ok());
        // test input built above, well formed by construction (checked on the line before)
        let events = decode(&meta, data).expect("well formed");
        assert!(matches!(&events[0], MuxEvent::Open { id: Some(id), .. } if id == b"dk"));
        assert!(
            matches!(&events[1], MuxEvent::Opened { local_id: 7, handshake, .. } if handshake == b"h")
        );
        assert!(
            matches!(&events[2], MuxEvent::Message { local_id: 7, message_type: 5, payload } if payload == b"abc")
        );
        assert!(matches!(events[3], MuxEvent::Close { local_id: 7 }));
    }

    #[test]
    fn skips_the_framing_between_messages() {
        // a received frame's bytes: [len type] "ab" [len type] "cde", the headers skipped
        let meta = [row(2, 1, 3, 2), row(SKIP, 0, 0, 2), row(2, 4, 3, 3)].concat();
        let data = b"ab\x04\x04cde";
        assert!(check(&meta, data).is_ok());
        // test input built above, well formed by construction (checked on the line before)
        let events = decode(&meta, data).expect("well formed");
        assert_eq!(events.len(), 2);
        assert!(
            matches!(&events[0], MuxEvent::Message { local_id: 3, message_type: 1, payload } if payload == b"ab")
        );
        assert!(
            matches!(&events[1], MuxEvent::Message { local_id: 3, message_type: 4, payload } if payload == b"cde")
        );
        // a skip counts against the data like any row
        let short = [row(2, 1, 3, 2), row(SKIP, 0, 0, 9)].concat();
        assert!(check(&short, b"abcd")
            .expect_err("past")
            .contains("runs past"));
    }

    #[test]
    fn refuses_what_does_not_add_up() {
        let one = row(2, 1, 1, 3);
        for (meta, data, what) in [
            (one[..9].to_vec(), &b"abc"[..], "10 bytes"),
            (one.clone(), &b"ab"[..], "runs past"),
            (one.clone(), &b"abcd"[..], "left over"),
            (row(9, 0, 1, 0), &b""[..], "unknown"),
        ] {
            let err = check(&meta, data).expect_err(what);
            assert!(err.contains(what), "{err}");
            assert_eq!(decode(&meta, data).expect_err(what), err);
        }
    }
}
