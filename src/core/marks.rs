//! hypercore's mark-and-sweep (`startMarking`, `markBlock`, `sweep`): which blocks an
//! application still uses, as DATA/MARK pages of 32768 bits (4096 bytes, bit `i` in byte
//! `i / 8`, least significant bit first, as hypercore's quickbit writes them).

pub const BITS_PER_PAGE: u64 = 32768;
pub const BYTES_PER_PAGE: usize = 4096;

/// Sets bits `[start, end)` of page `page`, which covers blocks from
/// `page * BITS_PER_PAGE`. A page shorter than 4096 bytes (not written by hypercore) grows.
pub fn set(bytes: &mut Vec<u8>, page: u64, start: u64, end: u64) {
    bytes.resize(bytes.len().max(BYTES_PER_PAGE), 0);
    let first = page * BITS_PER_PAGE;
    let from = start.max(first) - first;
    let to = end.min(first + BITS_PER_PAGE) - first;
    for bit in from..to {
        bytes[(bit / 8) as usize] |= 1 << (bit % 8);
    }
}

fn is_set(bytes: &[u8], bit: u64) -> bool {
    bytes
        .get((bit / 8) as usize)
        .is_some_and(|b| b & (1 << (bit % 8)) != 0)
}

/// The ranges of blocks in `[0, length)` that no mark covers, in order (what `sweep`
/// clears). `pages`: (page, bytes), in page order.
pub fn unmarked(pages: &[(u64, Vec<u8>)], length: u64) -> Vec<(u64, u64)> {
    let mut out = Vec::new();
    let mut run: Option<u64> = None; // start of the unmarked run being read
    let mut next = 0u64; // first block not looked at yet
    for (page, bytes) in pages {
        let first = page.saturating_mul(BITS_PER_PAGE);
        if first >= length {
            break;
        }
        if next < first {
            run.get_or_insert(next); // pages without marks in between
        }
        let end = first + BITS_PER_PAGE.min(length - first);
        for index in first..end {
            if is_set(bytes, index - first) {
                if let Some(start) = run.take() {
                    out.push((start, index));
                }
            } else {
                run.get_or_insert(index);
            }
        }
        next = end;
    }
    if next < length {
        run.get_or_insert(next);
    }
    if let Some(start) = run {
        out.push((start, length));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_with(page: u64, marked: &[(u64, u64)]) -> (u64, Vec<u8>) {
        let mut bytes = Vec::new();
        for &(s, e) in marked {
            set(&mut bytes, page, s, e);
        }
        (page, bytes)
    }

    #[test]
    fn unmarked_ranges() {
        assert_eq!(unmarked(&[], 10), vec![(0, 10)]);
        assert_eq!(unmarked(&[page_with(0, &[(0, 10)])], 10), vec![]);
        assert_eq!(
            unmarked(&[page_with(0, &[(2, 4), (7, 8)])], 10),
            vec![(0, 2), (4, 7), (8, 10)]
        );
        // a page of marks far past the first: everything before it is unmarked
        let far = 2 * BITS_PER_PAGE;
        assert_eq!(
            unmarked(&[page_with(2, &[(far + 1, far + 2)])], far + 5),
            vec![(0, far + 1), (far + 2, far + 5)]
        );
        // marks past the length change nothing
        assert_eq!(unmarked(&[page_with(0, &[(20, 30)])], 10), vec![(0, 10)]);
        assert_eq!(unmarked(&[], 0), vec![]);
    }

    #[test]
    fn bits_are_lsb_first() {
        let (_, bytes) = page_with(0, &[(0, 1), (9, 10)]);
        assert_eq!(bytes.len(), BYTES_PER_PAGE);
        assert_eq!(&bytes[..2], &[0b0000_0001, 0b0000_0010]);
        let (_, second) = page_with(1, &[(BITS_PER_PAGE + 3, BITS_PER_PAGE + 4)]);
        assert_eq!(second[0], 0b0000_1000);
    }
}
