//! The order in which an upload's changes are applied: creations first, each after the created
//! objects it references, then updates, then deletions, referring objects before what they
//! refer to (so a deletion's delete behaviour sees which referrers the upload really deleted).
//! The walk along references keeps its own stack, so an upload's shape (a chain of tens of
//! thousands of new objects of a self-referencing entity) can never exhaust the thread's stack.

use std::collections::BTreeMap;

use ferry_model::{ObjectId, Value};
use ferry_protocol::ChangeKind;

use super::CheckedChange;

/// Indexes into `changes`, in the order they are applied.
pub(crate) fn apply_order(model: &ferry_model::Model, changes: &[CheckedChange<'_>]) -> Vec<usize> {
    // An entity's place when deleting: owners of associations before their targets.
    let reference_order = model.entities_in_reference_order();
    let delete_rank = |change: &CheckedChange<'_>| {
        let place = reference_order.iter().position(|e| e.name == change.entity.name);
        reference_order.len() - place.unwrap_or(0)
    };
    let ranks: Vec<usize> = changes.iter().map(delete_rank).collect();
    let references: Vec<Vec<ObjectId>> = changes
        .iter()
        .map(|change| {
            change
                .values
                .iter()
                .filter_map(|(_, value)| match value {
                    Value::Reference(target) => Some(*target),
                    _ => None,
                })
                .collect()
        })
        .collect();
    let kinds: Vec<ChangeKind> = changes.iter().map(|change| change.kind).collect();
    let ids: Vec<ObjectId> = changes.iter().map(|change| change.id).collect();
    order_of(&ids, &kinds, &references, &ranks)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Visit {
    New,
    /// On the walk's stack: a reference back to it closes a cycle, whose members keep the
    /// order in which the walk met them.
    Visiting,
    Placed,
}

/// The ordering itself, over plain ids, kinds, referenced ids and each change's rank among
/// deletions (lower first), so it is tested alone.
fn order_of(
    ids: &[ObjectId],
    kinds: &[ChangeKind],
    references: &[Vec<ObjectId>],
    delete_ranks: &[usize],
) -> Vec<usize> {
    let created: BTreeMap<ObjectId, usize> =
        (0..ids.len()).filter(|&i| kinds[i] == ChangeKind::Create).map(|i| (ids[i], i)).collect();
    let mut order = Vec::with_capacity(ids.len());
    let mut visit = vec![Visit::New; ids.len()];
    // Each frame: a creation being placed, and how many of its references were followed.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    for &root in created.values() {
        if visit[root] != Visit::New {
            continue;
        }
        visit[root] = Visit::Visiting;
        stack.push((root, 0));
        while let Some(&(index, next)) = stack.last() {
            match references[index].get(next) {
                Some(target) => {
                    stack.last_mut().expect("the frame just read").1 += 1;
                    if let Some(&target_index) = created.get(target)
                        && visit[target_index] == Visit::New
                    {
                        visit[target_index] = Visit::Visiting;
                        stack.push((target_index, 0));
                    }
                }
                None => {
                    visit[index] = Visit::Placed;
                    order.push(index);
                    stack.pop();
                }
            }
        }
    }
    order.extend((0..ids.len()).filter(|&i| kinds[i] == ChangeKind::Update));
    let mut deletions: Vec<usize> =
        (0..ids.len()).filter(|&i| kinds[i] == ChangeKind::Delete).collect();
    deletions.sort_by_key(|&i| delete_ranks[i]);
    order.extend(deletions);
    order
}

#[cfg(test)]
mod tests {
    use super::*;

    fn id(n: u128) -> ObjectId {
        ObjectId::from_u128(n)
    }

    #[track_caller]
    fn check(changes: &[(u128, ChangeKind, &[u128])], expected: &[u128]) {
        let ids: Vec<ObjectId> = changes.iter().map(|c| id(c.0)).collect();
        let kinds: Vec<ChangeKind> = changes.iter().map(|c| c.1).collect();
        let references: Vec<Vec<ObjectId>> =
            changes.iter().map(|c| c.2.iter().map(|&n| id(n)).collect()).collect();
        let ranks = vec![0; changes.len()];
        let order: Vec<u128> =
            order_of(&ids, &kinds, &references, &ranks).into_iter().map(|i| changes[i].0).collect();
        assert_eq!(order, expected);
    }

    use ChangeKind::{Create, Delete, Update};

    #[test]
    fn a_creation_follows_the_creations_it_references() {
        check(&[(3, Create, &[1, 2]), (1, Create, &[]), (2, Create, &[1])], &[1, 2, 3]);
    }

    #[test]
    fn deletions_go_by_rank_and_keep_request_order_within_one() {
        let ids: Vec<ObjectId> = (1..=4).map(id).collect();
        let kinds = vec![Delete; 4];
        let order = order_of(&ids, &kinds, &vec![vec![]; 4], &[2, 1, 2, 0]);
        assert_eq!(order, [3, 1, 0, 2]);
    }

    #[test]
    fn updates_then_deletions_follow_the_creations() {
        check(&[(5, Delete, &[]), (4, Update, &[1]), (1, Create, &[])], &[1, 4, 5]);
    }

    #[test]
    fn a_cycle_is_placed_whole_in_the_order_the_walk_met_it() {
        check(&[(1, Create, &[2]), (2, Create, &[3]), (3, Create, &[1])], &[3, 2, 1]);
    }

    #[test]
    fn references_to_objects_outside_the_upload_are_ignored() {
        check(&[(2, Create, &[99]), (1, Create, &[2, 98])], &[2, 1]);
    }

    #[test]
    fn a_chain_longer_than_any_stack_is_ordered() {
        // Object n references n + 1: a recursive walk would go a million frames deep.
        let n = 1_000_000u128;
        let ids: Vec<ObjectId> = (0..n).map(|i| id(i + 1)).collect();
        let kinds = vec![Create; n as usize];
        let references: Vec<Vec<ObjectId>> = (0..n).map(|i| vec![id(i + 2)]).collect();
        let order = order_of(&ids, &kinds, &references, &vec![0; n as usize]);
        assert_eq!(order.len(), n as usize);
        assert!(order.iter().copied().eq((0..n as usize).rev()), "the last link comes first");
    }
}
