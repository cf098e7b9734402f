//! The tree nodes that the block requests in flight on one channel will bring.
//!
//! A request for block `i` says how many nodes of its proof we lack (`nodes`): hypercore
//! counts them up from the block's leaf until a node we hold. With hundreds of requests in
//! flight, nothing near the block is held yet when it is asked for, so every request asked
//! for about ten nodes: 40% more bytes on the wire, and ten node reads for the sender and
//! ten hashes for us per block. But the answer to the request before it, from the same
//! peer, brings the nodes around that block's path, and one stream's answers come in the
//! order of the requests. So the count stops at a node an earlier request on this
//! channel brings, as it stops at one we hold (docs/DECISIONS.md §40). A JS peer answers
//! a request that asked for fewer nodes sooner, so the later answer often comes first:
//! its proof ends in a node we do not hold yet. That answer waits here (parked) until the
//! node comes; if the request that brings it is refused or given up, the block is asked
//! for again, and the peer is not blamed.

use crate::core::flat_tree::{parent, sibling};
use crate::core::index_map::{IndexMap, IntMap};
use crate::wire::messages::Data;

/// Answers parked on one channel at most: they hold blocks, as requests in flight do.
const MAX_PARKED: usize = super::peer::MAX_INFLIGHT;

/// An answer whose proof ends in a node still coming. What it brings stays coming while
/// it waits: a later answer may end in one of its nodes.
pub struct Parked {
    /// the request it answers
    pub id: u64,
    pub index: u64,
    /// the node its proof ends in
    pub end: u64,
    pub data: Data,
}

/// One block request in flight.
struct Ask {
    /// the block's leaf (2 * block index)
    leaf: u64,
    /// the nodes asked for with it
    nodes: u64,
    /// its count stopped at a node another request brings
    relies: bool,
}

#[derive(Default)]
pub struct Coming {
    /// node index -> how many requests in flight bring it
    nodes: IndexMap<u32>,
    /// request id -> what it asked for
    asks: IntMap<u64, Ask>,
    parked: Vec<Parked>,
}

impl Coming {
    /// An answer in flight brings `node`.
    pub fn brings(&self, node: u64) -> bool {
        self.nodes.contains_key(&node)
    }

    /// Request `id` asked for block `index` with `nodes` nodes; `relies`: that count
    /// stopped at a node another request brings.
    pub fn add(&mut self, id: u64, index: u64, nodes: u64, relies: bool) {
        let leaf = index.saturating_mul(2);
        for node in brought(leaf, nodes) {
            *self.nodes.entry(node).or_default() += 1;
        }
        self.asks.insert(
            id,
            Ask {
                leaf,
                nodes,
                relies,
            },
        );
    }

    /// Request `id` is answered, refused or given up: what it would bring is no longer
    /// coming. Whether its count relied on another request (None: not a block request
    /// we track).
    pub fn remove(&mut self, id: u64) -> Option<bool> {
        let ask = self.asks.remove(&id)?;
        for node in brought(ask.leaf, ask.nodes) {
            if let Some(n) = self.nodes.get_mut(&node) {
                *n -= 1;
                if *n == 0 {
                    self.nodes.remove(&node);
                }
            }
        }
        Some(ask.relies)
    }

    /// Keeps the answer to request `parked.id` (asked for `nodes` nodes) until the node its
    /// proof ends in comes: false (and dropped) when nothing in flight brings that node, or
    /// too many wait already.
    pub fn park(&mut self, parked: Parked, nodes: u64) -> bool {
        if self.parked.len() >= MAX_PARKED || !self.brings(parked.end) {
            return false;
        }
        self.add(parked.id, parked.index, nodes, true);
        self.parked.push(parked);
        true
    }

    /// Puts back an answer `take_parked` gave that still waits.
    pub fn repark(&mut self, parked: Parked) {
        self.parked.push(parked);
    }

    pub fn has_parked(&self) -> bool {
        !self.parked.is_empty()
    }

    /// How many answers are parked.
    pub fn parked(&self) -> usize {
        self.parked.len()
    }

    /// The parked answers, lowest block first (an earlier block's proof brings the nodes a
    /// later one ends in).
    pub fn take_parked(&mut self) -> Vec<Parked> {
        let mut parked = std::mem::take(&mut self.parked);
        parked.sort_unstable_by_key(|p| p.index);
        parked
    }

    /// The parked answers whose end node nothing in flight brings any more (dropping one
    /// can orphan those that waited on it): their blocks, to be asked for again.
    pub fn orphans(&mut self) -> Vec<u64> {
        let mut orphans = Vec::new();
        loop {
            let (gone, kept): (Vec<Parked>, Vec<Parked>) = std::mem::take(&mut self.parked)
                .into_iter()
                .partition(|p| !self.nodes.contains_key(&p.end));
            self.parked = kept;
            if gone.is_empty() {
                return orphans;
            }
            for p in gone {
                self.remove(p.id);
                orphans.push(p.index);
            }
        }
    }
}

/// The nodes a verified proof of `leaf` with `nodes` uncles adds to what we hold: each
/// uncle, and the parents they make with the path below the node the proof ends in (that
/// one was held or coming before; the leaf itself no other block's path passes through).
/// All lie below the end node, so answers cannot wait on each other in a circle.
fn brought(leaf: u64, nodes: u64) -> impl Iterator<Item = u64> {
    let mut path = leaf;
    (0..nodes).flat_map(move |k| {
        let uncle = sibling(path);
        path = parent(path);
        let below_end = k + 1 < nodes;
        std::iter::once(uncle).chain(below_end.then_some(path))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_answer_brings_its_uncles_and_the_parents_they_make() {
        // block 1 (leaf 2) with three nodes: uncles 0, 5, 11 and parents 1, 3 (it ends in 7)
        let mut all: Vec<u64> = brought(2, 3).collect();
        all.sort_unstable();
        assert_eq!(all, vec![0, 1, 3, 5, 11]);
        assert_eq!(brought(2, 0).count(), 0);
    }

    #[test]
    fn what_is_coming_goes_when_its_last_request_does() {
        let mut c = Coming::default();
        c.add(1, 1, 3, false); // brings 0, 1, 5, 3, 11
        c.add(2, 0, 2, true); // block 0: brings 2, 1, 5 (and ends in 3)
        assert!(c.brings(2) && c.brings(11) && c.brings(3));
        assert_eq!(c.remove(1), Some(false));
        assert!(
            c.brings(2) && c.brings(1) && c.brings(5),
            "still brought by request 2"
        );
        assert!(!c.brings(11) && !c.brings(3) && !c.brings(0));
        assert_eq!(c.remove(2), Some(true));
        assert!(!c.brings(1) && !c.brings(2) && !c.brings(5));
        assert_eq!(c.remove(2), None);
        assert!(c.nodes.is_empty() && c.asks.is_empty());
    }

    fn parked(id: u64, index: u64, end: u64) -> Parked {
        Parked {
            id,
            index,
            end,
            data: Data::default(),
        }
    }

    #[test]
    fn an_answer_parks_only_while_its_end_node_is_coming() {
        let mut c = Coming::default();
        c.add(1, 1, 3, false); // brings 0, 1, 5, 3, 11
        assert!(!c.park(parked(9, 4, 9), 1), "9 is not coming");
        assert!(c.park(parked(2, 2, 5), 1)); // block 2 ends in 5
        for i in 1..MAX_PARKED as u64 {
            assert!(c.park(parked(100 + i, 2, 5), 0));
        }
        assert!(!c.park(parked(99, 2, 5), 0), "full");
        assert_eq!(c.take_parked().len(), MAX_PARKED);
    }

    #[test]
    fn orphans_go_in_a_chain_when_the_answer_they_wait_for_is_refused() {
        let mut c = Coming::default();
        c.add(1, 1, 3, false); // in flight; brings 0, 1, 5, 3, 11
        assert!(c.park(parked(2, 2, 5), 1)); // block 2 ends in 5 and brings 6
        assert!(c.park(parked(4, 3, 6), 0)); // block 3 ends in 6: waits on block 2
        assert!(c.orphans().is_empty(), "request 1 still brings 5");
        c.remove(1);
        let mut orphans = c.orphans();
        orphans.sort_unstable();
        assert_eq!(orphans, vec![2, 3], "5 does not come, so neither does 6");
        assert!(!c.has_parked());
        assert!(c.nodes.is_empty() && c.asks.is_empty());
    }
}
