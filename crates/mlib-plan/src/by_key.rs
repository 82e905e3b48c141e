//! Records looked up by a path they hold (a link record by its target, an index entry by its
//! file), each stored once.
//!
//! A plan of 20,000 links looks every wanted link up among the records. A
//! `HashMap<OsString, Recorded>` held a second copy of every target (an allocation each) and a
//! table of ~300-byte values with room to spare, which at its last growth was ~10 MB twice
//! over: the largest single item of a plan's memory (docs/PERFORMANCE.md). Here the records
//! stay in one `Vec` and the table holds 4-byte indices into it, hashed by the key's bytes
//! (`Path`'s own `Hash` walks components, which is slow at this count) with foldhash, which
//! hashes a path several times faster than std's SipHash (SipHash was 5% of a no-op plan's
//! instructions); the keys are paths of this machine, not input an attacker chooses.

use std::ffi::OsStr;
use std::hash::BuildHasher;

use hashbrown::{DefaultHashBuilder, HashTable};
use mlib_registry::LinkRecord;

use crate::desired::DesiredModel;
use crate::observed::Recorded;

/// What an entry is found by: a path's bytes.
pub(crate) trait Keyed {
    fn key(&self) -> &[u8];
}

impl Keyed for LinkRecord {
    fn key(&self) -> &[u8] {
        self.target.as_os_str().as_encoded_bytes()
    }
}

impl Keyed for Recorded {
    fn key(&self) -> &[u8] {
        self.record.key()
    }
}

impl Keyed for DesiredModel {
    fn key(&self) -> &[u8] {
        self.name.as_bytes()
    }
}

/// What entries are looked up with: a path, or a path relative to the store (`str`).
pub(crate) trait Key {
    fn bytes(&self) -> &[u8];
}

impl Key for OsStr {
    fn bytes(&self) -> &[u8] {
        self.as_encoded_bytes()
    }
}

impl Key for str {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

impl Key for String {
    fn bytes(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// Entries by key: at most one per key (a later one with the same key replaces the earlier,
/// as a map's insert would).
pub(crate) struct ByKey<T> {
    /// Indices into it stay valid when entries go.
    slots: Vec<Slot<T>>,
    table: HashTable<u32>,
    hasher: DefaultHashBuilder,
}

enum Slot<T> {
    Live(T),
    /// Gone for every lookup, but dropped with the table ([`ByKey::retire`]).
    Retired(T),
    Empty,
}

impl<T> Slot<T> {
    fn live(&self) -> Option<&T> {
        match self {
            Slot::Live(entry) => Some(entry),
            _ => None,
        }
    }

    fn live_mut(&mut self) -> Option<&mut T> {
        match self {
            Slot::Live(entry) => Some(entry),
            _ => None,
        }
    }
}

impl<T: Keyed> Default for ByKey<T> {
    fn default() -> Self {
        ByKey {
            slots: Vec::new(),
            table: HashTable::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }
}

impl<T: Keyed> ByKey<T> {
    pub fn with_capacity(capacity: usize) -> Self {
        ByKey {
            slots: Vec::with_capacity(capacity),
            table: HashTable::with_capacity(capacity),
            hasher: DefaultHashBuilder::default(),
        }
    }

    fn hash(&self, key: &[u8]) -> u64 {
        self.hasher.hash_one(key)
    }

    pub fn insert(&mut self, entry: T) {
        let hash = self.hash(entry.key());
        let found = self.find(hash, entry.key());
        if let Some(&i) = found {
            self.slots[i as usize] = Slot::Live(entry);
            return;
        }
        let index = u32::try_from(self.slots.len()).expect("fewer than 2^32 link records");
        self.slots.push(Slot::Live(entry));
        let (slots, hasher) = (&self.slots, &self.hasher);
        self.table
            .insert_unique(hash, index, |&i| match &slots[i as usize] {
                Slot::Live(entry) | Slot::Retired(entry) => hasher.hash_one(entry.key()),
                // Its index left the table when it was emptied; were one left behind, no lookup
                // could match it anyway.
                Slot::Empty => 0,
            });
    }

    fn find(&self, hash: u64, key: &[u8]) -> Option<&u32> {
        let slots = &self.slots;
        self.table.find(hash, |&i| {
            slots[i as usize].live().is_some_and(|e| e.key() == key)
        })
    }

    pub fn get<K: Key + ?Sized>(&self, key: &K) -> Option<&T> {
        let key = key.bytes();
        let &i = self.find(self.hash(key), key)?;
        self.slots[i as usize].live()
    }

    pub fn get_mut<K: Key + ?Sized>(&mut self, key: &K) -> Option<&mut T> {
        let key = key.bytes();
        let &i = self.find(self.hash(key), key)?;
        self.slots[i as usize].live_mut()
    }

    pub fn remove<K: Key + ?Sized>(&mut self, key: &K) -> Option<T> {
        let key = key.bytes();
        let hash = self.hash(key);
        let slots = &self.slots;
        let entry = self
            .table
            .find_entry(hash, |&i| {
                slots[i as usize].live().is_some_and(|e| e.key() == key)
            })
            .ok()?;
        let (i, _) = entry.remove();
        self.empty(i)
    }

    /// Empties the live slot `i`, whose index just left the table.
    fn empty(&mut self, i: u32) -> Option<T> {
        match std::mem::replace(&mut self.slots[i as usize], Slot::Empty) {
            Slot::Live(entry) => Some(entry),
            _ => unreachable!("only a live slot is emptied"),
        }
    }

    /// Where the entry with `key` is, for [`ByKey::at`] and [`ByKey::take`].
    pub fn position<K: Key + ?Sized>(&self, key: &K) -> Option<u32> {
        let key = key.bytes();
        self.find(self.hash(key), key).copied()
    }

    /// The entry at `position`, unless it was removed.
    pub fn at(&self, position: u32) -> Option<&T> {
        self.slots.get(position as usize)?.live()
    }

    /// Removes the entry at `position`.
    pub fn take(&mut self, position: u32) -> Option<T> {
        let hash = self.hash(self.at(position)?.key());
        if let Ok(entry) = self.table.find_entry(hash, |&i| i == position) {
            entry.remove();
        }
        self.empty(position)
    }

    /// Removes the entry at `position` for every lookup without hashing its key again or
    /// dropping it now: a no-op plan retires 20,000 link records, and dropping them one by
    /// one (strings another thread allocated) was a serial millisecond and a half. It is
    /// dropped with the table.
    pub fn retire(&mut self, position: u32) {
        let slot = &mut self.slots[position as usize];
        if let Slot::Live(_) = slot
            && let Slot::Live(entry) = std::mem::replace(slot, Slot::Empty)
        {
            *slot = Slot::Retired(entry);
        }
    }

    /// The entries left, each with its position.
    pub fn entries(&self) -> impl Iterator<Item = (u32, &T)> {
        (0u32..)
            .zip(&self.slots)
            .filter_map(|(i, slot)| Some((i, slot.live()?)))
    }

    pub fn values(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter_map(Slot::live)
    }

    pub fn values_mut(&mut self) -> impl Iterator<Item = &mut T> {
        self.slots.iter_mut().filter_map(Slot::live_mut)
    }

    /// `f` on every entry, in place, spread over the cores. `f` must not change an entry's
    /// key (the table would no longer find it).
    pub fn update_all(&mut self, f: impl Fn(&mut T) + Sync)
    where
        T: Send,
    {
        mlib_fs::par::parallel_update(&mut self.slots, |slot| {
            if let Some(entry) = slot.live_mut() {
                f(entry);
            }
        });
    }

    /// Takes the entries left out, in the order they were inserted; what was retired stays
    /// (to be dropped with the table, wherever that is).
    pub fn take_all(&mut self) -> Vec<T> {
        self.table.clear();
        let mut taken = Vec::new();
        for slot in &mut self.slots {
            if let Slot::Live(_) = slot
                && let Slot::Live(entry) = std::mem::replace(slot, Slot::Empty)
            {
                taken.push(entry);
            }
        }
        taken
    }
}

impl<T: Keyed, K: Key + ?Sized> std::ops::Index<&K> for ByKey<T> {
    type Output = T;

    /// The entry with `key`, which the caller knows is there.
    fn index(&self, key: &K) -> &T {
        self.get(key).expect("an entry the caller put in")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    use mlib_registry::{FileStat, LinkKind};

    fn record(id: i64, target: &str) -> LinkRecord {
        LinkRecord {
            id,
            env: 1,
            model: format!("m{id}"),
            app: "comfyui".into(),
            target: PathBuf::from(target),
            source: PathBuf::from("/store/x"),
            kind: LinkKind::Symlink,
            external: false,
            stat: FileStat::default(),
            source_ino: None,
            text: None,
        }
    }

    #[test]
    fn found_by_target_replaced_removed_and_left_in_order() {
        let mut table = ByKey::default();
        for i in 0..1000 {
            table.insert(record(i, &format!("/apps/c/models/loras/m{i}.safetensors")));
        }
        let key = |i: i64| PathBuf::from(format!("/apps/c/models/loras/m{i}.safetensors"));
        assert_eq!(table.get(key(417).as_os_str()).map(|r| r.id), Some(417));
        assert!(
            table
                .get(OsStr::new("/apps/c/models/loras/m1000.safetensors"))
                .is_none()
        );

        // The same target again replaces the record, as a map would.
        table.insert(record(5000, "/apps/c/models/loras/m4.safetensors"));
        assert_eq!(table.get(key(4).as_os_str()).map(|r| r.id), Some(5000));
        assert_eq!(table.values().count(), 1000);

        table.get_mut(key(8).as_os_str()).unwrap().model = "changed".into();
        assert_eq!(table.get(key(8).as_os_str()).unwrap().model, "changed");

        for i in (0..1000).filter(|i| i % 2 == 1) {
            assert_eq!(table.remove(key(i).as_os_str()).map(|r| r.id), Some(i));
        }
        assert!(table.remove(key(1).as_os_str()).is_none(), "removed once");
        assert!(table.get(key(1).as_os_str()).is_none());
        assert_eq!(table.get(key(998).as_os_str()).map(|r| r.id), Some(998));

        // By position: found, taken once, then gone from the table too.
        let at = table.position(key(10).as_os_str()).unwrap();
        assert_eq!(table.at(at).map(|r| r.id), Some(10));
        assert_eq!(table.take(at).map(|r| r.id), Some(10));
        assert!(table.take(at).is_none());
        assert!(table.position(key(10).as_os_str()).is_none());
        assert!(table.get(key(10).as_os_str()).is_none());
        assert!(
            table
                .entries()
                .all(|(at, r)| table.at(at).unwrap().id == r.id)
        );
        assert_eq!(table.entries().count(), table.values().count());

        // Retired: gone for every lookup, and a new entry with its key is found instead.
        let at = table.position(key(12).as_os_str()).unwrap();
        table.retire(at);
        table.retire(at);
        assert!(table.at(at).is_none());
        assert!(table.get(key(12).as_os_str()).is_none());
        assert!(table.take(at).is_none());
        assert!(table.values().all(|r| r.id != 12));
        table.insert(record(6000, "/apps/c/models/loras/m12.safetensors"));
        assert_eq!(table.get(key(12).as_os_str()).map(|r| r.id), Some(6000));
        assert_eq!(table.remove(key(12).as_os_str()).map(|r| r.id), Some(6000));
        assert!(table.get(key(12).as_os_str()).is_none());

        let mut taken = ByKey::default();
        for i in 0..3 {
            taken.insert(record(i, &format!("/t/{i}")));
        }
        let at = taken.position(OsStr::new("/t/1")).unwrap();
        taken.retire(at);
        let all: Vec<i64> = taken.take_all().into_iter().map(|r| r.id).collect();
        assert_eq!(all, [0, 2]);
        assert!(taken.get(OsStr::new("/t/0")).is_none());
        assert_eq!(taken.values().count(), 0);

        let left: Vec<i64> = table.take_all().into_iter().map(|r| r.id).collect();
        let expected: Vec<i64> = (0..1000)
            .filter(|i| i % 2 == 0 && *i != 10 && *i != 12)
            .map(|i| if i == 4 { 5000 } else { i })
            .collect();
        assert_eq!(left, expected);
    }
}
