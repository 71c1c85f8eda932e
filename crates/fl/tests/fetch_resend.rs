//! A fetch request lost before GST is sent again on a later PBFT view
//! (issue 16, attack round 10 finding 1: one-shot messages lost before
//! GST must not halt the round).

mod common;

use common::*;

/// K = 7: Byzantine leaders 0 and 1 skip nodes 5 and 6 and withhold their
/// commit votes, so the prepared block of view 0 commits only once nodes 5
/// and 6 have fetched its proposal; every request they send before tick
/// 600 is lost. Each fetch still unfinished asks again, on each new PBFT
/// view, the peers whose relay it has not received, so after tick 600 the
/// skipped nodes verify the block and the round commits with them.
/// (Sending each request once only, the round halted with nodes 0 and 1
/// alone committed.)
#[test]
fn fetch_requests_lost_before_gst_are_sent_again_and_the_round_commits() {
    let r = skipped_nodes_losing_fetches(3, 600);
    assert_round_succeeded(&r, &[0, 1, 2, 3], |c| model(c as usize), 1);
    let committers: Vec<u32> = r.committed().iter().map(|(n, ..)| *n).collect();
    for node in [5, 6] {
        assert!(committers.contains(&node), "node {node} did not commit: {committers:?}");
    }
}
