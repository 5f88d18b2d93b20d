//! Removing the elements of a fixed-capacity list that a predicate rejects, in place and in
//! order: a smaller loop than `heapless`'s `retain` (which carries a drop guard and two
//! loops), for the node's lists of plain values.

/// Copies the elements `keep` accepts to the front of `items`, in their order, and returns how
/// many there are; the caller truncates its list to that length (the elements past it are left
/// as they happen to be). Each element is tested once. A copy, not a swap: one move of an
/// element instead of three, and less code for the node's larger records.
pub(crate) fn compact<T: Copy>(items: &mut [T], mut keep: impl FnMut(&T) -> bool) -> usize {
    let mut kept = 0;
    for at in 0..items.len() {
        if let Some(&item) = items.get(at).filter(|item| keep(item)) {
            if let Some(slot) = items.get_mut(kept) {
                *slot = item;
            }
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::compact;

    #[test]
    fn keeps_the_accepted_elements_in_order() {
        let mut items = [1, 2, 3, 4, 5, 6, 7];
        let kept = compact(&mut items, |&n| n % 3 != 0);
        assert_eq!(items.get(..kept), Some(&[1, 2, 4, 5, 7][..]));
        let mut none: [u8; 0] = [];
        assert_eq!(compact(&mut none, |_| true), 0);
        let mut all = [1, 2];
        assert_eq!(compact(&mut all, |_| false), 0);
        let mut every = [3, 1, 2];
        assert_eq!(compact(&mut every, |_| true), 3);
        assert_eq!(every, [3, 1, 2]);
    }

    #[test]
    fn tests_each_element_once() {
        let mut items = [5, 6, 7, 8];
        let mut seen = std::vec::Vec::new();
        let kept = compact(&mut items, |&n| {
            seen.push(n);
            n % 2 == 0
        });
        assert_eq!(seen, [5, 6, 7, 8]);
        assert_eq!(items.get(..kept), Some(&[6, 8][..]));
    }
}
