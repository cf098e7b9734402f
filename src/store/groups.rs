//! Core groups (hypercore-storage 3.x): a topic names a group (GROUP_BY_TOPIC, pointers
//! counted by HEAD.groups), a core joins one group at most (CORE/GROUP), and the group's
//! index lists its cores by the timestamp of their last head change (GROUP), which the
//! core keeps up to date as it writes its head (`Hypercore::put_head`).

use super::Store;
use crate::error::{Error, Result};
use crate::storage::{keys, Batch, CoreGroup};

impl Store {
    /// hypercore `setGroup(topic)`: the core joins the group of `topic`, which is created
    /// when no core joined it before. A core in another group is `STORAGE_CONFLICT`.
    /// The group record, a new group's topic entry and the store head are one batch.
    pub fn set_group(&mut self, handle: u32, topic: &[u8; 32]) -> Result<()> {
        let open = self.cores.get(&handle).ok_or_else(super::closed_handle)?;
        if let Some(key) = open.core.group.as_ref().and_then(|g| g.key) {
            if &key == topic {
                return Ok(());
            }
            return Err(Error::new(
                "STORAGE_CONFLICT",
                format!("Core is already register to group: {}", hex(&key)),
            ));
        }
        let core_pointer = open.core.core_pointer;
        let mut batch = Batch::new();
        let mut head = self.head.clone();
        let pointer = match self.storage.group_by_topic(topic)? {
            Some(pointer) => pointer,
            None => {
                let pointer = head.groups;
                head.groups += 1;
                batch.put_head(&head);
                batch.put_group_by_topic(topic, pointer);
                pointer
            }
        };
        let group = CoreGroup {
            key: Some(*topic),
            pointer,
        };
        batch.put_core_group(core_pointer, &group);
        self.storage.write(batch)?;
        self.head = head;
        if let Some(open) = self.cores.get_mut(&handle) {
            open.core.group = Some(group);
        }
        Ok(())
    }

    /// The topic of the group an open core is in.
    pub fn group_of(&self, handle: u32) -> Result<Option<[u8; 32]>> {
        Ok(self.core(handle)?.group.as_ref().and_then(|g| g.key))
    }

    /// corestore's group update stream: the keys of the cores of `topic`'s group whose head
    /// changed at or after `since` (ms), newest first unless `reverse` is false. None when
    /// no core ever joined the group.
    pub fn group_updates(
        &self,
        topic: &[u8; 32],
        since: u64,
        reverse: bool,
    ) -> Result<Option<Vec<Vec<u8>>>> {
        let Some(group) = self.storage.group_by_topic(topic)? else {
            return Ok(None);
        };
        let start = keys::group_entry(group, since, 0);
        let end = match group.checked_add(1) {
            Some(next) => keys::group_entry(next, 0, 0),
            None => vec![keys::TL_END as u8], // the table after GROUP
        };
        let mut out = Vec::new();
        self.storage.scan_raw(&start, &end, |_, value| {
            out.push(value.to_vec());
            Ok(true)
        })?;
        if reverse {
            out.reverse();
        }
        Ok(Some(out))
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use crate::store::{OpenRequest, Store};

    fn open(store: &mut Store, name: &str) -> u32 {
        store
            .open_core(OpenRequest {
                name: Some(name.into()),
                create_if_missing: true,
                ..Default::default()
            })
            .expect("open core")
    }

    /// Each head change moves the core's one entry in the group index (as hypercore's
    /// updateGroupIndex), and the group and its pointer survive a reopen.
    #[test]
    fn group_index_follows_head_changes() {
        let dir = std::env::temp_dir().join(format!("cs-groups-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let (topic, other) = ([1u8; 32], [2u8; 32]);
        let keys = {
            let mut store = Store::open(&dir, None, false).expect("open store");
            let (a, b) = (open(&mut store, "a"), open(&mut store, "b"));
            assert_eq!(store.group_updates(&topic, 0, true).expect("read"), None);
            store.set_group(a, &topic).expect("join");
            store.set_group(b, &topic).expect("join");
            assert_eq!(
                store.group_updates(&topic, 0, true).expect("read"),
                Some(vec![])
            );
            let err = store.set_group(a, &other).expect_err("conflict");
            assert_eq!(err.code, "STORAGE_CONFLICT");
            // apart in time: entries of one millisecond order by core pointer
            for handle in [a, b, a, a] {
                std::thread::sleep(std::time::Duration::from_millis(3));
                let (core, storage) = store.core_mut(handle).expect("core");
                core.append(storage, &[b"x"]).expect("append");
            }
            let key = |h| store.core(h).expect("core").key.to_vec();
            let keys = vec![key(a), key(b)];
            let listed = store.group_updates(&topic, 0, true).expect("read");
            assert_eq!(listed, Some(keys.clone()));
            keys
        };
        let mut store = Store::open(&dir, None, false).expect("reopen");
        let a = open(&mut store, "a");
        assert_eq!(store.group_of(a).expect("group"), Some(topic));
        assert_eq!(store.head.groups, 1);
        let mut oldest_first = keys.clone();
        oldest_first.reverse();
        assert_eq!(
            store.group_updates(&topic, 0, false).expect("read"),
            Some(oldest_first)
        );
        drop(store);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
