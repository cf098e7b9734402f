//! A set of block indexes held as disjoint ranges. `download({ start, end })` wants every
//! block of its range: as one entry per block, a download of 100,000 blocks took 3.5 ms of
//! the JS thread to list and a download of 16 M blocks some 300 MB; as ranges it is one
//! entry until blocks are asked for one by one, and each request splits at most one range
//! (docs/DECISIONS.md §64).

use std::collections::BTreeMap;
use std::ops::Bound::{Excluded, Unbounded};

#[derive(Default, Debug, Clone, PartialEq, Eq)]
pub struct RangeSet {
    /// start -> end (exclusive). The ranges neither overlap nor touch: [1, 3) and [3, 5)
    /// are one range, [1, 5).
    ranges: BTreeMap<u64, u64>,
}

impl RangeSet {
    pub fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    pub fn first(&self) -> Option<u64> {
        self.ranges.first_key_value().map(|(&start, _)| start)
    }

    pub fn last(&self) -> Option<u64> {
        self.ranges.last_key_value().map(|(_, &end)| end - 1)
    }

    pub fn contains(&self, index: u64) -> bool {
        self.ranges
            .range(..=index)
            .next_back()
            .is_some_and(|(_, &end)| index < end)
    }

    pub fn insert(&mut self, index: u64) {
        self.insert_range(index, index.saturating_add(1));
    }

    /// Adds [start, end).
    pub fn insert_range(&mut self, mut start: u64, mut end: u64) {
        if start >= end {
            return;
        }
        // a range that starts before and reaches `start` grows instead
        if let Some((&s, &e)) = self.ranges.range(..start).next_back() {
            if e >= start {
                start = s;
                end = end.max(e);
            }
        }
        // the ranges that start inside or right after it join it (one at a time: a Vec of
        // them would be an allocation per call, and blocks are removed one by one)
        while let Some((&s, &e)) = self.ranges.range(start..=end).next() {
            self.ranges.remove(&s);
            end = end.max(e);
        }
        self.ranges.insert(start, end);
    }

    pub fn remove(&mut self, index: u64) {
        self.remove_range(index, index.saturating_add(1));
    }

    /// Takes [start, end) out.
    pub fn remove_range(&mut self, start: u64, end: u64) {
        if start >= end {
            return;
        }
        // a range that starts before `start` and reaches into it keeps its part before
        // (and, if it reaches past `end`, its part after)
        if let Some((&s, &e)) = self.ranges.range(..start).next_back() {
            if e > start {
                self.ranges.insert(s, start);
                if e > end {
                    self.ranges.insert(end, e);
                    return;
                }
            }
        }
        while let Some((&s, &e)) = self.ranges.range(start..end).next() {
            self.ranges.remove(&s);
            if e > end {
                self.ranges.insert(end, e);
                return; // ranges do not overlap: none starts before `end` after this one
            }
        }
    }

    /// The indexes in [from, to), ascending.
    pub fn iter_between(&self, from: u64, to: u64) -> impl Iterator<Item = u64> + '_ {
        let head = self
            .ranges
            .range(..=from)
            .next_back()
            .filter(|(_, &e)| e > from)
            .map(|(_, &e)| (from, e));
        let rest = self
            .ranges
            .range((Excluded(from), Unbounded))
            .take_while(move |(&s, _)| s < to)
            .map(|(&s, &e)| (s, e));
        head.into_iter()
            .chain(rest)
            .flat_map(move |(s, e)| s..e.min(to))
    }

    /// The indexes from `from` on, ascending.
    pub fn iter_from(&self, from: u64) -> impl Iterator<Item = u64> + '_ {
        self.iter_between(from, u64::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    fn ranges(set: &RangeSet) -> Vec<(u64, u64)> {
        set.ranges.iter().map(|(&s, &e)| (s, e)).collect()
    }

    #[test]
    fn ranges_join_and_split() {
        let mut set = RangeSet::default();
        assert!(set.is_empty() && set.first().is_none() && set.last().is_none());
        set.insert_range(10, 20);
        set.insert_range(20, 25); // touches: joins
        set.insert_range(30, 40);
        assert_eq!(ranges(&set), vec![(10, 25), (30, 40)]);
        set.insert_range(5, 31); // spans one and overlaps the next
        assert_eq!(ranges(&set), vec![(5, 40)]);
        set.remove(7);
        set.remove(5);
        set.remove(39);
        assert_eq!(ranges(&set), vec![(6, 7), (8, 39)]);
        set.remove_range(0, 100);
        assert!(set.is_empty());
        set.insert(3);
        set.insert(4);
        set.insert(2);
        assert_eq!(ranges(&set), vec![(2, 5)]);
        set.insert_range(7, 7); // empty: nothing
        set.remove_range(9, 3);
        assert_eq!(ranges(&set), vec![(2, 5)]);
        assert_eq!((set.first(), set.last()), (Some(2), Some(4)));
    }

    #[test]
    fn iterates_what_it_holds_between_bounds() {
        let mut set = RangeSet::default();
        set.insert_range(2, 6);
        set.insert_range(10, 12);
        set.insert(20);
        assert_eq!(
            set.iter_from(0).collect::<Vec<_>>(),
            vec![2, 3, 4, 5, 10, 11, 20]
        );
        assert_eq!(set.iter_from(4).collect::<Vec<_>>(), vec![4, 5, 10, 11, 20]);
        assert_eq!(set.iter_from(6).collect::<Vec<_>>(), vec![10, 11, 20]);
        assert_eq!(set.iter_from(10).collect::<Vec<_>>(), vec![10, 11, 20]);
        assert_eq!(
            set.iter_between(3, 11).collect::<Vec<_>>(),
            vec![3, 4, 5, 10]
        );
        assert_eq!(set.iter_between(0, 3).collect::<Vec<_>>(), vec![2]);
        assert_eq!(set.iter_between(12, 20).count(), 0);
        assert_eq!(set.iter_from(21).count(), 0);
        // a large range is walked lazily
        set.insert_range(100, 1 << 40);
        assert_eq!(
            set.iter_from(50).take(3).collect::<Vec<_>>(),
            vec![100, 101, 102]
        );
        assert!(set.contains((1 << 40) - 1) && !set.contains(1 << 40) && !set.contains(99));
    }

    /// Random inserts and removes (single and ranged) against a BTreeSet of the same
    /// indexes: the same members, and ranges that neither overlap nor touch.
    #[test]
    fn matches_a_set_of_indexes() {
        let mut set = RangeSet::default();
        let mut model = BTreeSet::new();
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        for _ in 0..20_000 {
            let (a, len) = (next(300), next(12));
            match next(4) {
                0 => {
                    set.insert(a);
                    model.insert(a);
                }
                1 => {
                    set.insert_range(a, a + len);
                    model.extend(a..a + len);
                }
                2 => {
                    set.remove(a);
                    model.remove(&a);
                }
                _ => {
                    set.remove_range(a, a + len);
                    for i in a..a + len {
                        model.remove(&i);
                    }
                }
            }
            let probe = next(310);
            assert_eq!(set.contains(probe), model.contains(&probe));
            assert_eq!(set.first(), model.first().copied());
            assert_eq!(set.last(), model.last().copied());
        }
        assert_eq!(
            set.iter_from(0).collect::<Vec<_>>(),
            model.iter().copied().collect::<Vec<_>>()
        );
        let spans = ranges(&set);
        assert!(spans.windows(2).all(|w| w[0].1 < w[1].0));
        assert!(spans.iter().all(|&(s, e)| s < e));
    }
}
