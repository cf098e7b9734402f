//! Flat-tree math (the `flat-tree` npm package) on u64: a binary tree laid out in a flat
//! array, leaves at even indexes (`2 * block`), parents at odd ones.
//!
//! ```text
//!        3
//!    1       5
//!  0   2   4   6
//! ```
//!
//! No function here panics for any u64 input: arithmetic that would leave u64 (only
//! possible for indexes near 2^64, far past any real tree) wraps instead.

/// 2^depth - 1 (all ones for depth >= 64).
fn ones(depth: u64) -> u64 {
    if depth >= 64 {
        u64::MAX
    } else {
        (1u64 << depth) - 1
    }
}

fn shl(v: u64, n: u64) -> u64 {
    if n >= 64 {
        0
    } else {
        v << n
    }
}

fn shr(v: u64, n: u64) -> u64 {
    if n >= 64 {
        0
    } else {
        v >> n
    }
}

/// The index of the node at `depth`, `offset` (offset counts nodes of that depth from the left).
pub fn index(depth: u64, offset: u64) -> u64 {
    shl(offset.wrapping_mul(2) | 1, depth).wrapping_sub(1)
}

/// The depth of a node: 0 for leaves.
pub fn depth(i: u64) -> u64 {
    i.trailing_ones() as u64
}

/// The offset of a node among the nodes of its depth.
pub fn offset(i: u64) -> u64 {
    shr(i, depth(i) + 1)
}

pub fn parent(i: u64) -> u64 {
    index(depth(i) + 1, offset(i) >> 1)
}

pub fn sibling(i: u64) -> u64 {
    index(depth(i), offset(i) ^ 1)
}

/// The (left, right) children; None for a leaf.
pub fn children(i: u64) -> Option<(u64, u64)> {
    if i & 1 == 0 {
        return None;
    }
    let d = depth(i);
    let off = offset(i).wrapping_mul(2);
    Some((index(d - 1, off), index(d - 1, off.wrapping_add(1))))
}

pub fn left_child(i: u64) -> Option<u64> {
    children(i).map(|c| c.0)
}

pub fn right_child(i: u64) -> Option<u64> {
    children(i).map(|c| c.1)
}

/// The left-most leaf under a node (the node itself for a leaf).
pub fn left_span(i: u64) -> u64 {
    i - ones(depth(i))
}

/// The right-most leaf under a node (the node itself for a leaf).
pub fn right_span(i: u64) -> u64 {
    i.wrapping_add(ones(depth(i)))
}

/// flat-tree `spans`: (left_span, right_span).
pub fn span(i: u64) -> (u64, u64) {
    (left_span(i), right_span(i))
}

/// The number of nodes in the subtree of `i`, itself included.
pub fn count(i: u64) -> u64 {
    ones(depth(i)).wrapping_mul(2).wrapping_add(1)
}

/// The number of leaves under `i` (1 for a leaf).
pub fn count_leaves(i: u64) -> u64 {
    ones(depth(i)).wrapping_add(1)
}

/// The full roots of a tree of `index / 2` leaves (pass `2 * length`), left to right. An odd
/// `index` counts as `index - 1` (the JS throws).
pub fn full_roots(index: u64) -> Vec<u64> {
    let mut leaves = index / 2;
    let mut offset = 0u64;
    let mut roots = Vec::new();
    while leaves > 0 {
        let factor = 1u64 << (63 - leaves.leading_zeros());
        roots.push(offset + factor - 1);
        offset = offset.wrapping_add(factor.wrapping_mul(2));
        leaves -= factor;
    }
    roots
}

/// The full roots of a tree of `length` leaves (`full_roots(2 * length)` without the
/// doubling overflow).
pub fn full_roots_for_length(length: u64) -> Vec<u64> {
    let mut leaves = length;
    let mut offset = 0u64;
    let mut roots = Vec::new();
    while leaves > 0 {
        let factor = 1u64 << (63 - leaves.leading_zeros());
        roots.push(offset.wrapping_add(factor).wrapping_sub(1));
        offset = offset.wrapping_add(factor.wrapping_mul(2));
        leaves -= factor;
    }
    roots
}

/// flat-tree `patch(from, to)` (indexes, i.e. `2 * length`): the nodes that upgrade a
/// tree of `from / 2` leaves to one of `to / 2` leaves.
pub fn patch(from: u64, to: u64) -> Vec<u64> {
    if from == 0 || from >= to {
        return Vec::new();
    }
    let roots = full_roots(from);
    let target = full_roots(to);

    let mut i = 0;
    while i < target.len() {
        if i >= roots.len() || roots[i] != target[i] {
            break;
        }
        i += 1;
    }

    let mut out = Vec::new();
    if i < roots.len() && i < target.len() {
        // grow the newest root until it reaches the first differing target root
        let mut prev = roots.len() as i64 - 1;
        let mut ite = TreeIterator::new(roots[prev as usize]);
        prev -= 1;
        let mut guard = 0;
        while ite.index != target[i] && guard < 128 {
            guard += 1;
            ite.sibling();
            if prev >= 0 && ite.index == roots[prev as usize] {
                prev -= 1;
            } else {
                out.push(ite.index);
            }
            out.push(ite.parent());
        }
        i += 1;
    }
    out.extend_from_slice(&target[i.min(target.len())..]);
    out
}

/// flat-tree's stateful iterator (`flat.iterator(index)`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TreeIterator {
    pub index: u64,
    pub offset: u64,
    /// 2^(depth + 1): the width in indexes of the node's subtree plus one.
    pub factor: u64,
}

impl TreeIterator {
    pub fn new(index: u64) -> TreeIterator {
        let mut ite = TreeIterator {
            index: 0,
            offset: 0,
            factor: 0,
        };
        ite.seek(index);
        ite
    }

    pub fn seek(&mut self, index: u64) {
        self.index = index;
        if index & 1 == 1 {
            self.offset = offset(index);
            self.factor = shl(2, depth(index));
        } else {
            self.offset = index / 2;
            self.factor = 2;
        }
    }

    pub fn is_left(&self) -> bool {
        self.offset & 1 == 0
    }

    pub fn is_right(&self) -> bool {
        self.offset & 1 == 1
    }

    fn half(&self) -> u64 {
        self.factor / 2
    }

    /// Whether the current node is a root of a tree of `length` leaves.
    pub fn is_root(&self, length: u64) -> bool {
        let current_length = 1 + self.index.wrapping_add(self.half()).wrapping_sub(1) / 2;
        if length < current_length {
            return false;
        }
        let factor = self.factor.wrapping_mul(2);
        let index = if self.offset & 1 == 1 {
            self.index.wrapping_sub(self.half())
        } else {
            self.index.wrapping_add(self.half())
        };
        let parent_length = 1 + index.wrapping_add(factor / 2).wrapping_sub(1) / 2;
        parent_length > length
    }

    /// Whether `index` is in the subtree of the current node.
    pub fn contains(&self, index: u64) -> bool {
        if index > self.index {
            index - self.index < self.half()
        } else if index < self.index {
            self.index - index < self.half()
        } else {
            true
        }
    }

    pub fn prev(&mut self) -> u64 {
        if self.offset == 0 {
            return self.index;
        }
        self.offset -= 1;
        self.index = self.index.wrapping_sub(self.factor);
        self.index
    }

    #[allow(clippy::should_implement_trait)] // flat-tree's name; not a std Iterator
    pub fn next(&mut self) -> u64 {
        self.offset = self.offset.wrapping_add(1);
        self.index = self.index.wrapping_add(self.factor);
        self.index
    }

    pub fn count(&self) -> u64 {
        if self.index & 1 == 0 {
            1
        } else {
            self.factor.wrapping_sub(1)
        }
    }

    pub fn count_leaves(&self) -> u64 {
        self.count().wrapping_add(1) / 2
    }

    pub fn sibling(&mut self) -> u64 {
        if self.is_left() {
            self.next()
        } else {
            self.prev()
        }
    }

    pub fn parent(&mut self) -> u64 {
        if self.offset & 1 == 1 {
            self.index = self.index.wrapping_sub(self.half());
            self.offset = (self.offset - 1) / 2;
        } else {
            self.index = self.index.wrapping_add(self.half());
            self.offset /= 2;
        }
        self.factor = self.factor.wrapping_mul(2);
        self.index
    }

    pub fn left_span(&mut self) -> u64 {
        self.index = self.peek_left_span();
        self.offset = self.index / 2;
        self.factor = 2;
        self.index
    }

    pub fn peek_left_span(&self) -> u64 {
        self.index.wrapping_sub(self.half()).wrapping_add(1)
    }

    pub fn right_span(&mut self) -> u64 {
        self.index = self.peek_right_span();
        self.offset = self.index / 2;
        self.factor = 2;
        self.index
    }

    pub fn peek_right_span(&self) -> u64 {
        self.index.wrapping_add(self.half()).wrapping_sub(1)
    }

    pub fn left_child(&mut self) -> u64 {
        if self.factor <= 2 {
            return self.index;
        }
        self.factor /= 2;
        self.index = self.index.wrapping_sub(self.half());
        self.offset = self.offset.wrapping_mul(2);
        self.index
    }

    pub fn right_child(&mut self) -> u64 {
        if self.factor <= 2 {
            return self.index;
        }
        self.factor /= 2;
        self.index = self.index.wrapping_add(self.half());
        self.offset = self.offset.wrapping_mul(2).wrapping_add(1);
        self.index
    }

    /// Moves to the first leaf right of the current subtree.
    pub fn next_tree(&mut self) -> u64 {
        self.index = self.index.wrapping_add(self.half()).wrapping_add(1);
        self.offset = self.index / 2;
        self.factor = 2;
        self.index
    }

    /// Moves to the last leaf left of the current subtree (or leaf 0).
    pub fn prev_tree(&mut self) -> u64 {
        if self.offset == 0 {
            self.index = 0;
            self.factor = 2;
        } else {
            self.index = self.index.wrapping_sub(self.half()).wrapping_sub(1);
            self.offset = self.index / 2;
            self.factor = 2;
        }
        self.index
    }

    /// flat-tree `fullRoot(index)`: from a leaf, climbs to the largest full subtree that
    /// starts here and ends before `index` (a `2 * length`); false when there is none.
    pub fn full_root(&mut self, index: u64) -> bool {
        if index <= self.index || self.index & 1 == 1 {
            return false;
        }
        loop {
            let bound = self
                .index
                .checked_add(self.factor)
                .and_then(|b| b.checked_add(self.half()));
            let Some(bound) = bound else { break };
            if index <= bound {
                break;
            }
            let Some(factor) = self.factor.checked_mul(2) else {
                break;
            };
            self.index += self.half();
            self.factor = factor;
            self.offset /= 2;
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::test_vectors::{core_vectors, Json};

    fn nums(j: &Json) -> Vec<u64> {
        j.arr().iter().map(|x| x.u64()).collect()
    }

    #[test]
    fn nodes_match_js() {
        let v = core_vectors();
        let ft = v.get("flatTree");
        for n in ft.get("nodes").arr() {
            let i = n.get("index").u64();
            assert_eq!(depth(i), n.get("depth").u64(), "depth {i}");
            assert_eq!(offset(i), n.get("offset").u64(), "offset {i}");
            assert_eq!(index(depth(i), offset(i)), i);
            assert_eq!(parent(i), n.get("parent").u64(), "parent {i}");
            assert_eq!(sibling(i), n.get("sibling").u64(), "sibling {i}");
            let c = match n.get("children") {
                Json::Null => None,
                c => Some((c.arr()[0].u64(), c.arr()[1].u64())),
            };
            assert_eq!(children(i), c, "children {i}");
            let s = nums(n.get("spans"));
            assert_eq!(span(i), (s[0], s[1]));
            assert_eq!(left_span(i), n.get("leftSpan").u64());
            assert_eq!(right_span(i), n.get("rightSpan").u64());
            assert_eq!(count(i), n.get("count").u64());
            assert_eq!(count_leaves(i), n.get("countLeaves").u64());
        }
        for (n, roots) in ft.get("fullRoots").arr().iter().enumerate() {
            assert_eq!(full_roots(2 * n as u64), nums(roots));
            assert_eq!(full_roots_for_length(n as u64), nums(roots));
        }
        for p in ft.get("patches").arr() {
            let (from, to) = (p.get("from").u64(), p.get("to").u64());
            assert_eq!(
                patch(2 * from, 2 * to),
                nums(p.get("patch")),
                "patch {from} {to}"
            );
        }
    }

    #[test]
    fn iterator_matches_js() {
        let v = core_vectors();
        let ft = v.get("flatTree");
        for w in ft.get("walks").arr() {
            let start = w.get("start").u64();
            let mut ite = TreeIterator::new(start);
            for t in w.get("trace").arr() {
                match w.get("op").str() {
                    "parent" => ite.parent(),
                    "sibling" => ite.sibling(),
                    "leftChild" => ite.left_child(),
                    "rightChild" => ite.right_child(),
                    "next" => ite.next(),
                    "prev" => ite.prev(),
                    "leftSpan" => ite.left_span(),
                    "rightSpan" => ite.right_span(),
                    "nextTree" => ite.next_tree(),
                    "prevTree" => ite.prev_tree(),
                    op => panic!("unknown op {op}"),
                };
                let t = nums(t);
                assert_eq!(
                    (ite.index, ite.offset, ite.factor),
                    (t[0], t[1], t[2]),
                    "{} from {start}",
                    w.get("op").str()
                );
            }
            let c = TreeIterator::new(start);
            let contains: Vec<bool> = [0, 1, 2, 5, 8, 13, 30]
                .iter()
                .map(|&x| c.contains(x))
                .collect();
            let expected: Vec<bool> = w.get("contains").arr().iter().map(|x| x.bool()).collect();
            assert_eq!(contains, expected, "contains from {start}");
            let is_root: Vec<bool> = [1, 2, 4, 5, 8, 16].iter().map(|&x| c.is_root(x)).collect();
            let expected: Vec<bool> = w.get("isRoot").arr().iter().map(|x| x.bool()).collect();
            assert_eq!(is_root, expected, "isRoot from {start}");
            assert_eq!(c.count(), w.get("count").u64());
            assert_eq!(c.count_leaves(), w.get("countLeaves").u64());
        }
        for w in ft.get("fullRootWalks").arr() {
            let len = w.get("length").u64();
            let mut seen = Vec::new();
            let mut ite = TreeIterator::new(0);
            while ite.full_root(2 * len) {
                seen.push(ite.index);
                ite.next_tree();
            }
            assert_eq!(seen, nums(w.get("roots")), "fullRoot walk {len}");
        }
    }

    #[test]
    fn extreme_inputs_do_not_panic() {
        let edge = [
            0,
            1,
            2,
            3,
            u64::MAX,
            u64::MAX - 1,
            u64::MAX - 2,
            1 << 63,
            (1 << 63) - 1,
            (1 << 62) + 5,
        ];
        for &i in &edge {
            let _ = (
                depth(i),
                offset(i),
                parent(i),
                sibling(i),
                children(i),
                span(i),
            );
            let _ = (count(i), count_leaves(i), left_child(i), right_child(i));
            let _ = full_roots(i);
            let _ = full_roots_for_length(i);
            let _ = patch(i / 2, i);
            let _ = index(i, i);
            let _ = index(64, i);
            let mut ite = TreeIterator::new(i);
            for _ in 0..70 {
                ite.parent();
                ite.sibling();
                let _ = ite.is_root(i);
                let _ = ite.contains(i);
            }
            for _ in 0..70 {
                ite.left_child();
                ite.right_child();
                ite.prev_tree();
                ite.next_tree();
                ite.left_span();
                ite.right_span();
                ite.prev();
                ite.next();
            }
            let mut ite = TreeIterator::new(0);
            let mut n = 0;
            while ite.full_root(i) && n < 200 {
                ite.next_tree();
                n += 1;
            }
        }
        assert_eq!(full_roots(u64::MAX).len(), 63);
        assert_eq!(full_roots_for_length(u64::MAX).len(), 64);
    }
}
