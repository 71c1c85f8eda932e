//! Merkle proofs under tampering: a proof verifies only for its own leaf,
//! index, leaf count and exact sibling list (thesis §5.2.5 `Val_proof`).

use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::{Hash32, MerkleTree};
use proptest::prelude::*;

fn leaves(n: usize) -> Vec<Hash32> {
    (0..n as u32).map(|i| hash_bytes(Tag::TX, &i.to_le_bytes())).collect()
}

/// The path of `index` in a tree of `count` leaves: for each level, whether
/// the node has a sibling and whether it is the right child.
fn shape(mut index: u64, mut count: u64) -> Vec<(bool, bool)> {
    let mut out = Vec::new();
    while count > 1 {
        out.push(((index ^ 1) < count, index % 2 == 1));
        index /= 2;
        count = count.div_ceil(2);
    }
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn proofs_verify_only_untampered(n in 1usize..80, idx in any::<prop::sample::Index>(), delta in 1u64..5,
                                     extra in any::<[u8; 32]>(), pos in any::<prop::sample::Index>()) {
        let l = leaves(n);
        let t = MerkleTree::new(&l);
        let root = t.root();
        let i = idx.index(n);
        let p = t.proof(i).unwrap();
        prop_assert!(p.verify(&l[i], &root));

        // A different leaf count (larger or smaller). The root does not
        // commit to the count (the header's `tx_count` does), so a tampered
        // count verifies exactly when it gives this index the same path
        // (same levels with a sibling, same sides): it can never move the
        // leaf to a different position or prove a different leaf.
        for count in [p.leaf_count + delta, p.leaf_count.saturating_sub(delta)] {
            let mut q = p.clone();
            q.leaf_count = count;
            if count != p.leaf_count {
                let same_path = count > i as u64 && shape(i as u64, count) == shape(i as u64, n as u64);
                prop_assert_eq!(q.verify(&l[i], &root), same_path, "leaf_count {} for {} leaves, index {}", count, n, i);
                let other = hash_bytes(Tag::TX, b"not a leaf");
                prop_assert!(!q.verify(&other, &root));
            }
        }
        // An extra sibling, anywhere in the list.
        let mut q = p.clone();
        q.siblings.insert(pos.index(q.siblings.len() + 1), Hash32(extra));
        prop_assert!(!q.verify(&l[i], &root));
        // A missing sibling.
        if !p.siblings.is_empty() {
            let mut q = p.clone();
            q.siblings.remove(pos.index(p.siblings.len()));
            prop_assert!(!q.verify(&l[i], &root));
            // Siblings in the wrong order.
            if p.siblings.len() > 1 && p.siblings[0] != p.siblings[1] {
                let mut q = p.clone();
                q.siblings.swap(0, 1);
                prop_assert!(!q.verify(&l[i], &root));
            }
        }
        // Another index with this proof, and an index past the end.
        if n > 1 {
            let mut q = p.clone();
            q.index = ((i + 1 + pos.index(n - 1)) % n) as u64;
            prop_assert!(!q.verify(&l[i], &root));
        }
        let mut q = p.clone();
        q.index = n as u64;
        prop_assert!(!q.verify(&l[i], &root));
        // The same proof against another tree's root.
        let mut other = l.clone();
        other.push(Hash32(extra));
        prop_assert!(!p.verify(&l[i], &MerkleTree::new(&other).root()));
    }
}
