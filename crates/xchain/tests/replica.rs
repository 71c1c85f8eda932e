//! One replica per validator: blocks proposed by the scheduled leader,
//! voted by validators that each hold only their own key, committed by
//! every replica after the same seal check the BoB runs.

use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::devnet::{dev_key, transfer};
use gridledger_ledger::{Block, Seal};
use gridledger_xchain::mbs::{open_chain, MbsSpec, Role};
use gridledger_xchain::replica::{Replica, ReplicaError};
use gridledger_xchain::{Finality, SealedHeader, XchainError};

fn replicas(root: &std::path::Path, spec: &MbsSpec) -> Vec<Replica> {
    (0..spec.validators)
        .map(|v| {
            let (c, _) = open_chain(&root.join(format!("v{v}")), spec, Role::External(0)).expect("open");
            Replica::new(c, v).expect("validator")
        })
        .collect()
}

/// The next height's leader proposes; on a deterministic chain the first
/// `voters` replicas vote. Returns the sealed block, not yet committed.
fn propose_and_seal(rs: &mut [Replica], voters: usize) -> Block {
    let h = rs[0].height() + 1;
    let leader = rs[0].leader_of(h);
    let mut b = rs[leader].propose(0).expect("the leader proposes");
    if let Seal::Quorum { .. } = b.seal {
        let votes = rs.iter().take(voters).map(|r| r.vote(&b).expect("a valid proposal")).collect();
        b.seal = Seal::Quorum { view: 0, signatures: votes };
    }
    b
}

fn epoch(rs: &mut [Replica]) -> Block {
    let b = propose_and_seal(rs, 3);
    for r in rs.iter_mut() {
        r.commit(&b).expect("a sealed block commits");
    }
    b
}

/// Validator `i`'s key of external chain `chain` (a development key).
fn validator(chain: u32, i: usize) -> KeyPair {
    KeyPair::from_seed(&format!("gridledger-xchain-{chain}-validator-{i}"))
}

#[test]
fn validators_with_one_key_each_make_the_chain_the_bob_follows() {
    for finality in [Finality::Deterministic, Finality::Probabilistic { k: 2 }] {
        let dir = tempfile::tempdir().unwrap();
        let spec = MbsSpec { finality, ..MbsSpec::default() };
        let mut rs = replicas(dir.path(), &spec);
        // What the BoB registers for this chain (from a full copy of it).
        let (full, _) = open_chain(&dir.path().join("full"), &spec, Role::External(0)).unwrap();
        let reg = full.registration(spec.kappa).unwrap();
        let payer = dev_key(0);
        let tx = full
            .sign(&payer, transfer(&payer, spec.external_chain(0), 0, dev_key(1).address(), Amount(700), Amount(1)));
        for r in rs.iter_mut() {
            r.submit(&tx).unwrap();
        }
        let (mut tip, mut tip_hash) = (0, reg.anchor_hash);
        let mut leaders = Vec::new();
        for _ in 0..6 {
            let b = epoch(&mut rs);
            leaders.push(b.header.proposer);
            reg.check_next(tip, &tip_hash, &SealedHeader { header: b.header.clone(), seal: b.seal.clone() })
                .expect("the BoB accepts the header");
            tip = b.header.height;
            tip_hash = b.header.hash();
        }
        for r in &rs {
            assert_eq!(r.height(), 6);
            assert_eq!(r.chain().tip().hash(), tip_hash, "every replica holds the same chain");
            assert_eq!(
                r.chain().account(&dev_key(1).address()).balance,
                rs[0].chain().account(&dev_key(1).address()).balance
            );
            assert!(r.chain().receipt(&tx.hash()).unwrap().is_some(), "the transfer is in every replica");
        }
        let distinct: std::collections::BTreeSet<_> = leaders.iter().collect();
        assert_eq!(distinct.len(), 4, "the four validators took turns");
    }
}

#[test]
fn refused_proposals_votes_and_seals_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::default();
    let mut rs = replicas(dir.path(), &spec);
    epoch(&mut rs);
    let h = rs[0].height() + 1;
    let leader = rs[0].leader_of(h);
    let other = (leader + 1) % 4;
    assert!(
        matches!(rs[other].propose(0), Err(ReplicaError::NotLeader { height, leader: l, me }) if height == h && l == leader && me == other)
    );
    let good = rs[leader].propose(0).unwrap();
    // A block claiming another proposer: no vote, no commit.
    let mut forged = good.clone();
    forged.header.proposer = validator(spec.external_chain(0), other).public();
    assert!(matches!(rs[0].vote(&forged), Err(ReplicaError::WrongProposer { leader: l, .. }) if l == leader));
    // Too few votes: the seal is refused as the BoB refuses it.
    let votes: Vec<_> = rs.iter().take(2).map(|r| r.vote(&good).unwrap()).collect();
    let mut thin = good.clone();
    thin.seal = Seal::Quorum { view: 0, signatures: votes.clone() };
    for r in rs.iter_mut() {
        assert!(matches!(r.commit(&thin), Err(ReplicaError::Seal(XchainError::BadSeal { .. }))));
        assert_eq!(r.height(), h - 1, "nothing committed");
    }
    // A quorum for the proposal does not seal a block with other contents.
    let mut votes = votes;
    votes.push(rs[2].vote(&good).unwrap());
    let mut swapped = good.clone();
    swapped.header.timestamp += 1;
    swapped.seal = Seal::Quorum { view: 0, signatures: votes.clone() };
    assert!(matches!(rs[0].commit(&swapped), Err(ReplicaError::Seal(XchainError::BadSeal { .. }))));
    assert_eq!(rs[0].height(), h - 1);
    // The genuine block with its quorum commits everywhere.
    let mut sealed = good;
    sealed.seal = Seal::Quorum { view: 0, signatures: votes };
    for r in rs.iter_mut() {
        r.commit(&sealed).unwrap();
        assert_eq!(r.height(), h);
    }
}

#[test]
fn a_probabilistic_chain_has_no_votes() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { finality: Finality::Probabilistic { k: 2 }, ..MbsSpec::default() };
    let mut rs = replicas(dir.path(), &spec);
    let b = propose_and_seal(&mut rs, 0);
    assert!(matches!(rs[0].vote(&b), Err(ReplicaError::NoVotes)));
    // Signed by the leader; a copy re-signed by another validator is refused.
    let mut resigned = b.clone();
    resigned.seal =
        Seal::Single { signature: validator(spec.external_chain(0), (rs[0].leader_of(1) + 1) % 4).sign(&b.hash()) };
    assert!(matches!(rs[1].commit(&resigned), Err(ReplicaError::Seal(_))));
    assert_eq!(rs[1].height(), 0);
    for r in rs.iter_mut() {
        r.commit(&b).unwrap();
    }
}

/// One vote per height survives a restart: a validator whose votes persist
/// in a log, reopened after voting for one block, refuses a second block
/// at that height with a typed error, and still hands out its vote for the
/// first one.
#[test]
fn a_restarted_validator_does_not_vote_twice_at_one_height() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::default();
    let mut rs = replicas(dir.path(), &spec);
    let leader = rs[0].leader_of(1);
    let a = rs[leader].propose(0).unwrap();
    let b = rs[leader].propose(a.header.timestamp + 1_000).unwrap();
    assert_ne!(a.hash(), b.hash());
    let voter = (leader + 1) % rs.len();
    let log = dir.path().join("votes.log");
    let open = |v: usize| {
        let (c, _) = open_chain(&dir.path().join(format!("v{v}")), &spec, Role::External(0)).unwrap();
        Replica::new(c, v).unwrap().with_vote_log(&log).unwrap()
    };
    drop(rs.remove(voter));
    let first = open(voter).vote(&a).expect("first vote at height 1");
    let again = open(voter);
    assert!(
        matches!(again.vote(&b), Err(ReplicaError::AlreadyVoted { height: 1, voted }) if voted == a.hash()),
        "a second block at height 1 after a restart"
    );
    assert_eq!(again.vote(&a).unwrap().0, first.0, "the same block still gets this validator's vote");
}

/// A complete vote-log line that cannot be read back (a corrupted hash)
/// makes the validator refuse every vote at that height — it cannot know
/// which block it voted for — while other heights are unaffected; a line
/// whose height is unreadable too makes loading fail.
#[test]
fn an_unreadable_logged_vote_blocks_its_height() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::default();
    let mut rs = replicas(dir.path(), &spec);
    let leader = rs[0].leader_of(1);
    let a = rs[leader].propose(0).unwrap();
    let voter = (leader + 1) % rs.len();
    drop(rs.remove(voter));
    let log = dir.path().join("votes.log");
    std::fs::write(&log, "1 not-a-hash\n").unwrap();
    let open = || {
        let (c, _) = open_chain(&dir.path().join(format!("v{voter}")), &spec, Role::External(0)).unwrap();
        Replica::new(c, voter).unwrap().with_vote_log(&log)
    };
    let r = open().unwrap();
    assert!(matches!(r.vote(&a), Err(ReplicaError::UnreadableVote { height: 1 })));
    assert_eq!(std::fs::read_to_string(&log).unwrap(), "1 not-a-hash\n", "nothing appended");
    drop(r);
    std::fs::write(&log, "garbage\n").unwrap();
    assert!(matches!(open(), Err(ReplicaError::VoteLog(_))));
}

/// A Byzantine leader's block stamped at the end of time (attack R4-3),
/// signed by it and even carrying 2f+1 commit votes, is refused with a
/// typed error by every honest replica's `vote` and `commit` and by the
/// BoB's header check; nothing is committed and the honest leader's
/// proposal, stamped within the bound, goes on. An honest leader asked
/// for a time beyond the bound clamps it.
#[test]
fn a_block_stamped_far_past_its_parent_is_refused_everywhere() {
    use gridledger_consensus::pbft::{vote_digest, VoteKind};
    use gridledger_xchain::headers::MAX_BLOCK_GAP_MS;
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::default();
    let mut rs = replicas(dir.path(), &spec);
    let (full, _) = open_chain(&dir.path().join("full"), &spec, Role::External(0)).unwrap();
    let reg = full.registration(spec.kappa).unwrap();
    let leader = rs[0].leader_of(1);
    let parent = rs[0].chain().tip().timestamp;
    for stamp in [u64::MAX - 1, parent + MAX_BLOCK_GAP_MS + 1, parent] {
        let mut b = rs[leader].propose(0).unwrap();
        b.header.timestamp = stamp;
        let prepare = vote_digest(VoteKind::Prepare, &reg.instance, 0, 1, &b.hash());
        b.seal = Seal::Quorum {
            view: 0,
            signatures: vec![(leader as u32, validator(spec.external_chain(0), leader).sign(&prepare))],
        };
        for r in &rs {
            assert!(
                matches!(r.vote(&b), Err(ReplicaError::BadTimestamp { height: 1, timestamp, .. }) if timestamp == stamp),
                "a vote for a block stamped {stamp} (parent {parent})"
            );
        }
        let commit = vote_digest(VoteKind::Commit, &reg.instance, 0, 1, &b.hash());
        b.seal = Seal::Quorum {
            view: 0,
            signatures: (0..3).map(|i| (i as u32, validator(spec.external_chain(0), i).sign(&commit))).collect(),
        };
        let sh = SealedHeader { header: b.header.clone(), seal: b.seal.clone() };
        assert!(matches!(
            reg.check_next(0, &reg.anchor_hash, &sh),
            Err(XchainError::BadTimestamp { height: 1, timestamp, .. }) if timestamp == stamp
        ));
        for r in rs.iter_mut() {
            assert!(matches!(r.commit(&b), Err(ReplicaError::BadTimestamp { .. })));
            assert_eq!(r.height(), 0, "nothing committed");
        }
    }
    // The honest leader clamps a far-off `not_before`; the chain goes on.
    let b = rs[leader].propose(u64::MAX - 1).unwrap();
    assert_eq!(b.header.timestamp, parent + MAX_BLOCK_GAP_MS);
    epoch(&mut rs);
    epoch(&mut rs);
    assert_eq!(rs[0].height(), 2);
}
