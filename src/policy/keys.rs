//! Bounded per-key state: the memory of the keyed policies (threshold,
//! cooldown) must not grow with the number of distinct keys an attacker can
//! make up (an IP per line), so each alarm holds at most `cap` keys and evicts
//! the one least recently touched, counting it.
//!
//! Built on [`hashlink::LinkedHashMap`] (an insertion-ordered hashbrown map
//! whose entries move to the back when touched): the front is the least
//! recently touched key, so eviction is O(1), and a key is looked up by `&str`
//! without allocating.
//!
//! ```
//! use logalarm::policy::keys::Keyed;
//! let mut k: Keyed<u32> = Keyed::new(2);
//! *k.entry("a", || 0) += 1;
//! *k.entry("b", || 0) += 1;
//! *k.entry("a", || 0) += 1; // touches "a": "b" is now the oldest
//! *k.entry("c", || 0) += 1; // evicts "b"
//! assert_eq!(k.get_mut("a"), Some(&mut 2));
//! assert!(k.get_mut("b").is_none());
//! assert_eq!(k.evicted(), 1);
//! ```

use hashlink::LinkedHashMap;
use hashlink::linked_hash_map::RawEntryMut;

/// A map from key to state, holding at most `cap` keys; inserting beyond it evicts the
/// key least recently touched and counts the eviction.
///
/// "Touched" means made or looked up by [`Keyed::entry`] or [`Keyed::get_mut`];
/// [`Keyed::iter_mut`] and [`Keyed::retain`] do not touch.
pub struct Keyed<S> {
    /// Front = least recently touched.
    map: LinkedHashMap<String, S>,
    cap: usize,
    evicted: u64,
}

impl<S> std::fmt::Debug for Keyed<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyed")
            .field("len", &self.map.len())
            .field("cap", &self.cap)
            .field("evicted", &self.evicted)
            .finish()
    }
}

impl<S> Keyed<S> {
    /// An empty map holding at most `cap` keys (a `cap` of 0 is taken as 1: a
    /// keyed policy needs room for the key of the event at hand).
    pub fn new(cap: usize) -> Self {
        Keyed {
            map: LinkedHashMap::new(),
            cap: cap.max(1),
            evicted: 0,
        }
    }

    /// The most keys held at once.
    pub fn cap(&self) -> usize {
        self.cap
    }

    /// The state of `key`, made with `make` when absent (maybe evicting the oldest).
    ///
    /// Touches `key`. Allocates only when `key` is new (its owned copy and,
    /// inside the map, room for it), never for an existing key.
    pub fn entry(&mut self, key: &str, make: impl FnOnce() -> S) -> &mut S {
        // The extra lookup is paid only when full: a new key must make room
        // first, since the vacant entry below borrows the map.
        if self.map.len() >= self.cap
            && !self.map.contains_key(key)
            && self.map.pop_front().is_some()
        {
            self.evicted += 1;
        }
        match self.map.raw_entry_mut().from_key(key) {
            RawEntryMut::Occupied(mut o) => {
                o.to_back();
                o.into_mut()
            }
            RawEntryMut::Vacant(v) => v.insert(key.to_owned(), make()).1,
        }
    }

    /// The state of `key` if it is held; touches it.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut S> {
        self.map.to_back(key)
    }

    /// Drops the state of `key` (not counted as an eviction) and returns it.
    pub fn remove(&mut self, key: &str) -> Option<S> {
        self.map.remove(key)
    }

    /// How many keys are held.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is held.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Keys evicted to make room so far (not those dropped by
    /// [`Keyed::remove`] or [`Keyed::retain`]).
    pub fn evicted(&self) -> u64 {
        self.evicted
    }

    /// Keeps only the keys for which `f` returns true (drop expired state);
    /// `f` may also update the state it keeps. Order is kept.
    pub fn retain(&mut self, mut f: impl FnMut(&str, &mut S) -> bool) {
        self.map.retain(|k, v| f(k, v));
    }

    /// Every key and its state, least recently touched first.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&str, &mut S)> {
        self.map.iter_mut().map(|(k, v)| (k.as_str(), v))
    }
}

/// Counts the allocations made on the current thread, so that the policy
/// tests can assert the hot path allocates nothing (tests run on many
/// threads; a thread-local count keeps them apart).
#[cfg(test)]
pub(crate) mod alloc_count {
    use std::alloc::{GlobalAlloc, Layout, System};
    use std::cell::Cell;

    thread_local! {
        static COUNT: Cell<u64> = const { Cell::new(0) };
    }

    struct Counting;

    // SAFETY: every call is forwarded to the system allocator unchanged.
    unsafe impl GlobalAlloc for Counting {
        unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.alloc(layout) }
        }
        unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
            // SAFETY: same contract as ours.
            unsafe { System.dealloc(ptr, layout) }
        }
        unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
            let _ = COUNT.try_with(|c| c.set(c.get() + 1));
            // SAFETY: same contract as ours.
            unsafe { System.realloc(ptr, layout, new_size) }
        }
    }

    #[global_allocator]
    static ALLOC: Counting = Counting;

    /// The allocations `f` made on this thread.
    pub(crate) fn allocations(f: impl FnOnce()) -> u64 {
        let before = COUNT.with(Cell::get);
        f();
        COUNT.with(Cell::get) - before
    }
}

#[cfg(test)]
mod tests {
    use super::alloc_count::allocations;
    use super::*;

    #[test]
    fn an_existing_key_costs_no_allocation() {
        let mut k: Keyed<u64> = Keyed::new(4);
        for key in ["a", "b", "c", "d"] {
            k.entry(key, || 0);
        }
        let n = allocations(|| {
            for i in 0..10_000u64 {
                *k.entry(["a", "b", "c", "d"][(i % 4) as usize], || 0) += 1;
                *k.get_mut("a").unwrap() += 1;
            }
        });
        assert_eq!(n, 0);
        // A new key allocates (its name), and evicts.
        assert!(allocations(|| *k.entry("e", || 0) += 1) > 0);
        assert_eq!(k.evicted(), 1);
    }

    #[test]
    fn evicts_the_least_recently_touched_key_and_counts_it() {
        let mut k: Keyed<u32> = Keyed::new(3);
        for key in ["a", "b", "c"] {
            *k.entry(key, || 0) += 1;
        }
        assert_eq!((k.len(), k.evicted()), (3, 0));
        // Touch "a" twice (entry and get_mut): "b" becomes the oldest.
        *k.entry("a", || 100) += 1;
        *k.get_mut("a").unwrap() += 1;
        *k.entry("d", || 0) += 1;
        assert_eq!((k.len(), k.evicted()), (3, 1));
        assert!(k.get_mut("b").is_none());
        // Order now c, a, d: two more new keys evict c then a.
        k.entry("e", || 0);
        k.entry("f", || 0);
        assert_eq!(k.evicted(), 3);
        let keys: Vec<&str> = k.iter_mut().map(|(key, _)| key).collect();
        assert_eq!(keys, ["d", "e", "f"]);
    }

    #[test]
    fn existing_key_keeps_its_state_and_make_is_not_called() {
        let mut k: Keyed<Vec<u8>> = Keyed::new(1);
        k.entry("x", Vec::new).push(1);
        k.entry("x", || panic!("made twice")).push(2);
        assert_eq!(k.get_mut("x").unwrap(), &vec![1, 2]);
        assert_eq!(k.evicted(), 0);
        k.entry("y", Vec::new);
        assert_eq!((k.len(), k.evicted()), (1, 1));
    }

    #[test]
    fn remove_and_retain_are_not_evictions() {
        let mut k: Keyed<u32> = Keyed::new(10);
        for (i, key) in ["a", "b", "c", "d"].into_iter().enumerate() {
            *k.entry(key, || 0) = i as u32;
        }
        assert_eq!(k.remove("b"), Some(1));
        assert_eq!(k.remove("b"), None);
        k.retain(|_, v| {
            *v += 10;
            *v % 2 == 0
        });
        let left: Vec<(String, u32)> = k.iter_mut().map(|(a, b)| (a.to_owned(), *b)).collect();
        assert_eq!(left, [("a".to_owned(), 10), ("c".to_owned(), 12)]);
        assert_eq!(k.evicted(), 0);
    }

    #[test]
    fn cap_zero_holds_one_key() {
        let mut k: Keyed<()> = Keyed::new(0);
        k.entry("a", || ());
        k.entry("b", || ());
        assert_eq!((k.len(), k.cap(), k.evicted()), (1, 1, 1));
    }

    #[test]
    fn many_keys_stay_within_the_cap() {
        let mut k: Keyed<u64> = Keyed::new(1000);
        for i in 0..100_000u64 {
            *k.entry(&i.to_string(), || 0) += 1;
        }
        assert_eq!(k.len(), 1000);
        assert_eq!(k.evicted(), 99_000);
        // The newest 1000 survive.
        assert!(k.get_mut("99000").is_some());
        assert!(k.get_mut("98999").is_none());
    }
}
