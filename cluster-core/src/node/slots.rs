//! [`Slots`]: a fixed-capacity list that keeps its items in insertion order and removes any
//! of them without changing the order of the others.
//!
//! With the feature `large-registry` the items live in a ring buffer and a removal moves the
//! items on the shorter side of the removed one (those before it one place back, or those
//! after it one place forward): a full registry of 1,024 services that evicts its oldest
//! newcomers moves a few records instead of a thousand. Without it the items live in a plain
//! array and a removal moves every item after the removed one: less code, for the small
//! registries of a firmware. Both keep exactly the same order, so the node behaves the same.

/// Items in insertion order, at most `N`.
#[derive(Debug)]
pub(crate) struct Slots<T, const N: usize> {
    #[cfg(feature = "large-registry")]
    items: heapless::Deque<T, N>,
    #[cfg(not(feature = "large-registry"))]
    items: heapless::Vec<T, N>,
}

impl<T, const N: usize> Slots<T, N> {
    pub(crate) const fn new() -> Self {
        Self {
            #[cfg(feature = "large-registry")]
            items: heapless::Deque::new(),
            #[cfg(not(feature = "large-registry"))]
            items: heapless::Vec::new(),
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.items.len()
    }

    pub(crate) fn is_full(&self) -> bool {
        self.items.is_full()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    pub(crate) fn clear(&mut self) {
        self.items.clear();
    }

    /// The item at position `index` (0 is the earliest inserted).
    pub(crate) fn get(&self, index: usize) -> Option<&T> {
        self.items.get(index)
    }

    pub(crate) fn get_mut(&mut self, index: usize) -> Option<&mut T> {
        self.items.get_mut(index)
    }

    /// Appends `item`; gives it back when full.
    pub(crate) fn push(&mut self, item: T) -> Result<(), T> {
        #[cfg(feature = "large-registry")]
        return self.items.push_back(item);
        #[cfg(not(feature = "large-registry"))]
        return self.items.push(item);
    }

    /// Removes the earliest inserted item (the others move one position down).
    pub(crate) fn pop_front(&mut self) -> Option<T> {
        #[cfg(feature = "large-registry")]
        return self.items.pop_front();
        #[cfg(not(feature = "large-registry"))]
        return self.remove(0);
    }

    /// Every item in order, as two runs (the second empty without `large-registry`).
    pub(crate) fn as_slices(&self) -> (&[T], &[T]) {
        #[cfg(feature = "large-registry")]
        return self.items.as_slices();
        #[cfg(not(feature = "large-registry"))]
        return (&self.items, &[]);
    }

    pub(crate) fn iter(&self) -> impl DoubleEndedIterator<Item = &T> + ExactSizeIterator {
        self.items.iter()
    }

    pub(crate) fn iter_mut(
        &mut self,
    ) -> impl DoubleEndedIterator<Item = &mut T> + ExactSizeIterator {
        self.items.iter_mut()
    }

    /// Removes the item at `index`; the others keep their order (those after it move one
    /// position down).
    #[cfg(not(feature = "large-registry"))]
    pub(crate) fn remove(&mut self, index: usize) -> Option<T> {
        (index < self.items.len()).then(|| self.items.remove(index))
    }

    /// Removes the item at `index`; the others keep their order (those after it move one
    /// position down). Moves the items on the shorter side of it.
    #[cfg(feature = "large-registry")]
    pub(crate) fn remove(&mut self, index: usize) -> Option<T> {
        let len = self.items.len();
        if index >= len {
            return None;
        }
        let (front, back) = self.items.as_mut_slices();
        if index < len - 1 - index {
            // Bring it to the front: the items before it each move one place back.
            if let Some(at) = index.checked_sub(front.len()) {
                back.get_mut(..=at)?.rotate_right(1);
                if let (Some(last), Some(first)) = (front.last_mut(), back.first_mut()) {
                    core::mem::swap(last, first);
                }
                front.rotate_right(1);
            } else {
                front.get_mut(..=index)?.rotate_right(1);
            }
            self.items.pop_front()
        } else {
            // Bring it to the back: the items after it each move one place forward.
            if let Some(at) = index.checked_sub(front.len()) {
                back.get_mut(at..)?.rotate_left(1);
            } else {
                front.get_mut(index..)?.rotate_left(1);
                if let (Some(last), Some(first)) = (front.last_mut(), back.first_mut()) {
                    core::mem::swap(last, first);
                    back.rotate_left(1);
                }
            }
            self.items.pop_back()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Slots;

    proptest::proptest! {
        /// Pushes, removals anywhere and wrap-arounds keep the order of a plain list.
        #[test]
        fn removals_keep_the_order_of_a_list(
            ops in proptest::collection::vec((proptest::bool::weighted(0.6), 0usize..12), 0..300)
        ) {
            let mut slots = Slots::<u32, 8>::new();
            let mut model: std::vec::Vec<u32> = std::vec::Vec::new();
            for (next, (push, at)) in (0u32..).zip(ops) {
                if push {
                    let pushed = slots.push(next);
                    proptest::prop_assert_eq!(pushed.is_ok(), model.len() < 8);
                    if pushed.is_ok() {
                        model.push(next);
                    }
                } else {
                    let removed = slots.remove(at);
                    proptest::prop_assert_eq!(removed, (at < model.len()).then(|| model.remove(at)));
                }
                let order: std::vec::Vec<u32> = slots.iter().copied().collect();
                proptest::prop_assert_eq!(&order, &model);
                let (first, second) = slots.as_slices();
                let joined: std::vec::Vec<u32> = first.iter().chain(second).copied().collect();
                proptest::prop_assert_eq!(&joined, &model);
                for (i, item) in model.iter().enumerate() {
                    proptest::prop_assert_eq!(slots.get(i), Some(item));
                }
                proptest::prop_assert_eq!(slots.get(model.len()), None);
            }
        }
    }
}
