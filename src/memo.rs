//! Per-thread, bounded memos of pure functions that are costly and see the same inputs again
//! and again.
//!
//! Phone numbers are the case in point: reading or writing one parses it against the numbering
//! plan's metadata (dozens of regular expressions), and the same numbers come back with every
//! echo, every write and every validation of the golden record. Only successes are kept (a
//! failure is rare and recomputed, so its message is always fresh). Each thread keeps its own
//! table, so there is no lock; a full table is emptied rather than managed, which keeps the
//! bound without bookkeeping on every hit.

use std::cell::RefCell;
use std::collections::HashMap;
use std::hash::Hash;
use std::thread::LocalKey;

/// Entries a table holds before it is emptied.
const CAPACITY: usize = 16_384;

pub(crate) type Table<K, V> = RefCell<HashMap<K, V>>;

/// `compute()`'s value for `key`, from `table` when this thread has seen the key before.
pub(crate) fn remember<K, V, E>(
    table: &'static LocalKey<Table<K, V>>,
    key: K,
    compute: impl FnOnce() -> Result<V, E>,
) -> Result<V, E>
where
    K: Hash + Eq,
    V: Clone,
{
    if let Some(hit) = table.with(|t| t.borrow().get(&key).cloned()) {
        return Ok(hit);
    }
    let value = compute()?;
    table.with(|t| {
        let mut t = t.borrow_mut();
        if t.len() >= CAPACITY {
            t.clear();
        }
        t.insert(key, value.clone());
    });
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    thread_local! {
        static SQUARES: Table<u32, u64> = RefCell::new(HashMap::new());
    }

    #[test]
    fn a_remembered_value_is_not_computed_again_and_failures_are_not_kept() {
        let calls = std::cell::Cell::new(0);
        let square = |n: u32| {
            remember(&SQUARES, n, || {
                calls.set(calls.get() + 1);
                if n == 0 {
                    Err("zero")
                } else {
                    Ok(u64::from(n) * u64::from(n))
                }
            })
        };
        assert_eq!(square(3), Ok(9));
        assert_eq!(square(3), Ok(9), "the same answer from the table");
        assert_eq!(square(0), Err("zero"));
        assert_eq!(square(0), Err("zero"), "a failure is computed again");
        assert_eq!(calls.get(), 3, "3 was computed once, 0 twice");
        for n in 1..=u32::try_from(CAPACITY).expect("fits") + 1 {
            let _ = remember(&SQUARES, n, || Ok::<_, ()>(u64::from(n)));
        }
        assert!(
            SQUARES.with(|t| t.borrow().len()) <= CAPACITY,
            "the table never holds more than its capacity"
        );
    }
}
