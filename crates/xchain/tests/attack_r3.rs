//! Third attack round on the cross-chain protocols (issue 14): SC_MPV nonce
//! floors, Π_CCTC late-lock refunds and the header accumulator.
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against, so each is marked
//! `#[ignore = "attack: ..."]` until fixed. Run them with
//! `cargo test -p gridledger-xchain --test attack_r3 -- --ignored`.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::TxStatus;
use gridledger_ledger::{Block, Seal};
use gridledger_xchain::bob::PostNt;
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::mbs::{open_chain, Role, FIRST_EXTERNAL as FIRST_EXTERNAL_ID};
use gridledger_xchain::replica::Replica;
use gridledger_xchain::{SealedHeader, Side, XchainError};

/// Floor too HIGH, set by the counterparty. The sender draws up the terms
/// and so chooses `nonce_j`, the floor of the *receiver's* payment.
/// `BobMbs::check_floors` — documented as what each party checks before
/// agreeing (the receiver runs it before signing) — only refuses a floor
/// *below* the payer's next nonce. A sender who sets `nonce_j` one
/// above the receiver's next nonce passes that check; the receiver signs,
/// pays its NT honestly (`native_tx`: its next nonce) on chain j, and the
/// BoB refuses the NT as `BeforeCct`: the payee got x_j natively while the
/// honest payer's NT can never count (it will be penalised as withholding
/// at CCT_V).
///
/// Expected: terms whose floor for a payer lies above that payer's next
/// nonce are refused by `check_floors` (the payer's honest NT could never
/// satisfy them) — or the honest NT is accepted. Observed: `check_floors`
/// returns `Ok(())` and `post_nt` reverts with `BeforeCct { nonce: n,
/// floor: n + 1 }`.
#[test]
fn a_floor_above_the_payers_next_nonce_is_accepted_and_traps_the_honest_payer() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (s, r) = (sender(), receiver());
    let req = request(700, 3301);
    let mut terms = m.terms(&req).unwrap();
    let next_j = m.external(J).unwrap().next_nonce(&r.address());
    assert_eq!(terms.nonce_j, next_j);
    // The sender raises the receiver's floor by one.
    terms.nonce_j = next_j + 1;
    let agreed = m.check_floors(&terms);
    // The receiver signs (its check passed), the sender submits.
    let cct = m.cct_tx(&s, &r, terms.clone());
    assert_eq!(bob_only(&mut m, &cct).status, TxStatus::Success, "the CCT is stored");
    let id = terms.id();
    let rec = m.cct(&id).unwrap();
    m.wait_native_window(&rec).unwrap();
    // The receiver pays honestly on chain j and posts its NT.
    // (Its next nonce: `native_tx` now takes the terms' exact `nonce_j`.)
    let (_, _, to, amount) = rec.instruction(Side::Receiver);
    let nt_r = m.native_transfer(J, &r, to, amount).unwrap();
    assert_eq!(nt_r.tx.nonce, next_j, "the honest NT uses the payer's next nonce");
    m.external_mut(J).unwrap().submit(&nt_r).unwrap();
    let post = m.bob_call(&r, "post_nt", &PostNt { cct: id, side: Side::Receiver, nt: nt_r.clone() }, Amount::ZERO);
    let receipt = bob_only(&mut m, &post);
    let trapped = receipt.status
        == TxStatus::Reverted(XchainError::BeforeCct { chain: J, nonce: next_j, floor: next_j + 1 }.as_revert());
    assert!(
        agreed.is_err() || !trapped,
        "check_floors accepted terms ({agreed:?}) under which the receiver's honest NT is refused: {:?}",
        receipt.status
    );
}

fn replicas(root: &std::path::Path, spec: &MbsSpec) -> Vec<Replica> {
    (0..spec.validators)
        .map(|v| {
            let (c, _) = open_chain(&root.join(format!("v{v}")), spec, Role::External(0)).expect("open");
            Replica::new(c, v).expect("validator")
        })
        .collect()
}

/// An equivocating leader (one validator process that lies). `Replica::vote`
/// keeps no record of what it voted for: an honest replica signs a commit
/// vote for *every* valid proposal of the scheduled leader at a height, so a
/// Byzantine leader that proposes two different blocks for height 1 collects
/// 2f+1 commit votes on each — two conflicting sealed blocks at one height,
/// both accepted by the seal check the BoB runs (`check_next`) and by every
/// replica's `commit`. Replicas that commit different ones have forked, and
/// a relayer can feed either fork to the BoB: deterministic finality is gone
/// with one Byzantine validator of four.
///
/// Expected: an honest replica refuses a second commit vote at a height it
/// already voted for a different block (PBFT's one vote per view and
/// sequence), so at most one of the two blocks gets a quorum. Observed:
/// both get 3 of 4 votes and both seal.
#[test]
fn an_equivocating_leader_gets_two_conflicting_sealed_blocks() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::fixed_ids();
    assert_eq!(spec.finality, gridledger_xchain::Finality::Deterministic);
    let mut rs = replicas(dir.path(), &spec);
    let (full, _) = open_chain(&dir.path().join("full"), &spec, Role::External(0)).unwrap();
    let reg = full.registration(spec.kappa).unwrap();
    let leader = rs[0].leader_of(1);
    // Two proposals for height 1 from the scheduled leader: same parent,
    // different timestamps, so different blocks.
    let a = rs[leader].propose(0).unwrap();
    let b = rs[leader].propose(a.header.timestamp + 1_000).unwrap();
    assert_ne!(a.hash(), b.hash());
    assert_eq!(a.header.height, b.header.height);
    let quorum = rs[0].quorum();
    let mut sealed: Vec<Block> = Vec::new();
    for mut blk in [a, b] {
        let votes: Vec<_> = rs.iter().filter_map(|r| r.vote(&blk).ok()).take(quorum).collect();
        if votes.len() == quorum {
            blk.seal = Seal::Quorum { view: 0, signatures: votes };
            sealed.push(blk);
        }
    }
    let accepted: Vec<&Block> = sealed
        .iter()
        .filter(|blk| {
            reg.check_next(0, &reg.anchor_hash, &SealedHeader { header: blk.header.clone(), seal: blk.seal.clone() })
                .is_ok()
        })
        .collect();
    // Show the fork on the replicas themselves.
    if accepted.len() == 2 {
        rs[0].commit(accepted[0]).unwrap();
        rs[2].commit(accepted[1]).unwrap();
        assert_ne!(rs[0].chain().tip().hash(), rs[2].chain().tip().hash(), "two honest replicas forked at height 1");
    }
    assert!(
        accepted.len() <= 1,
        "{} conflicting blocks at height 1 carry a valid 2f+1 seal: honest replicas voted twice",
        accepted.len()
    );
}

/// Replay across deployments at the `StatementVerifier` ("a verifier of
/// group statements that refuses replays ... as an external chain's
/// contract checking the group's orders would"). The module promises that
/// a threshold signature for one deployment never verifies for another,
/// "even where a committee reuses its key for a second BoB or a chain id is
/// reused", and that a verifier "is configured with its `Instance`" — but
/// `StatementVerifier` has no instance: it checks only the chain id, the
/// sequence number and the signature, so a release order the committee
/// signed for deployment A (another BoB, or another chain reusing chain id
/// 101) is accepted by the verifier of deployment B at the same sequence.
///
/// Expected: the statement of another deployment is refused (a typed
/// error, e.g. wrong instance) and the verifier's sequence is unchanged.
/// Observed: `accept` returns `Ok(())` and consumes sequence 0.
#[test]
fn a_statement_of_another_deployment_is_accepted_by_the_verifier() {
    use gridledger_core::Hash32;
    use gridledger_xchain::threshold::{BobCommittee, Instance, Statement, StatementVerifier};
    let c = BobCommittee::dev(4, 3).unwrap();
    let group = c.set.group_key();
    // The deployment this verifier guards, and another one with the same
    // committee key and chain id.
    let ours = Instance { bob: Hash32([1; 32]), bob_contract: 1, target: Hash32([2; 32]) };
    let theirs = Instance { bob: Hash32([9; 32]), bob_contract: 1, target: Hash32([8; 32]) };
    let st = Statement { instance: theirs, purpose: "release".into(), chain: 101, sequence: 0, payload: vec![7; 8] };
    let sig = c.set.combine(&c.shares_from(&[0, 1, 2], &st)).unwrap();
    let mut v = StatementVerifier::default();
    let got = v.accept(&group, 101, &st, &sig);
    assert_ne!(st.instance, ours);
    assert!(got.is_err(), "a statement signed for another deployment was accepted: {got:?}");
}

/// Terms signed for one deployment, replayed on another. The receiver's
/// signature on the CCT terms (`CctTerms::digest`) binds the BoB's chain id
/// and the contract id — both the same constants (`BOB_CHAIN`,
/// `BOB_CONTRACT_ID`) in every deployment — but not the BoB's genesis. The
/// sender of a CCT agreed on deployment A submits the same terms and the
/// same receiver signature on deployment B, where the receiver also holds a
/// deposit: B stores a CCT the receiver never agreed to there and locks
/// κ̄·x_B of its deposit; if the receiver does not pay on chain j, CCT_V
/// penalises it. (Group statements were bound to the deployment in round 2;
/// the receiver's signature was not.)
///
/// Expected: B refuses the CCT with `BadReceiverSignature` and nothing
/// changes. Observed: the CCT executes (`Success`) on B.
#[test]
fn cct_terms_signed_for_one_deployment_replay_on_another() {
    use gridledger_xchain::bob::CctArgs;
    use gridledger_xchain::mbs::BOB_CHAIN;
    let (da, db) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = setup(da.path(), MbsSpec::fixed_ids());
    let mut b = setup(db.path(), MbsSpec::fixed_ids());
    assert_ne!(
        a.bob.chain().genesis().hash(),
        b.bob.chain().genesis().hash(),
        "two deployments (different BoB genesis)"
    );
    let (s, r) = (sender(), receiver());
    let terms = a.terms(&request(700, 3304)).unwrap();
    // The receiver agrees on deployment A only.
    let receiver_sig = r.sign(&terms.digest(BOB_CHAIN));
    let on_a = a.bob_call(&s, "cct", &CctArgs { terms: terms.clone(), receiver_sig }, Amount::ZERO);
    assert_eq!(bob_only(&mut a, &on_a).status, TxStatus::Success, "the CCT the receiver agreed to");
    // The sender replays the terms and the signature on deployment B.
    let before = b.bob_contract_state();
    let deposit_before = b.deposit(&r.address());
    let on_b = b.bob_call(&s, "cct", &CctArgs { terms: terms.clone(), receiver_sig }, Amount::ZERO);
    let status = bob_only(&mut b, &on_b).status;
    let locked = b.deposit(&r.address()).locked - deposit_before.locked;
    assert_eq!(
        status,
        TxStatus::Reverted(XchainError::BadReceiverSignature.as_revert()),
        "deployment B stored a CCT the receiver signed for deployment A (receiver deposit locked: {locked})"
    );
    assert_eq!(b.bob_contract_state(), before);
}

/// An old payment accepted as the NT. `CctTerms::nonce_i` is the
/// payer's next nonce *as the payee's node sees it* (state + mempool) when
/// the terms are drawn up; a payment the payer had already made but that a
/// censoring chain is holding back (issue item 6: a chain that delays a
/// transaction by D epochs) is invisible there, so its nonce equals the
/// floor. The sender pays the receiver 700 on chain i for something else
/// (an earlier debt); chain i delays it; the parties then agree a CCTE in
/// which the sender owes 700 on chain i; when the delayed payment lands it
/// matches IN_s byte for byte and SC_MPV accepts it as NT_s — the receiver
/// is paid 700 once for two obligations. The module documents the opposite
/// ("every transaction the payer had already made then has a lower nonce,
/// so an old payment never counts").
///
/// Expected: the payment made before the terms is refused as NT_s
/// (`BeforeCct`), or the terms cannot be agreed while it is in flight.
/// Observed: `check_floors` passes and `prove` succeeds with it.
#[test]
fn a_censored_old_payment_counts_as_the_nt() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (s, r) = (sender(), receiver());
    // The earlier, unrelated payment, made now and held back by chain i.
    let old = m.native_transfer(I, &s, r.address(), 700).unwrap();
    m.external_mut(I).unwrap().censor(old.clone(), 6);
    // The exchange is agreed afterwards.
    let req = request(700, 3305);
    let terms = m.terms(&req).unwrap();
    m.check_floors(&terms).unwrap();
    let cct = m.cct_tx(&s, &r, terms.clone());
    assert_eq!(bob_only(&mut m, &cct).status, TxStatus::Success);
    let id = terms.id();
    let rec = m.cct(&id).unwrap();
    assert_eq!(rec.instruction(Side::Sender).3, 700, "equal pools: x_i = x_j");
    // The old payment lands late; the sender offers it as NT_s.
    let pt = loop {
        if let Some(pt) = m.proof_for(id, Side::Sender, &old).unwrap() {
            break pt;
        }
        m.tick().unwrap();
    };
    m.wait_final(I, pt.height).unwrap();
    let prove = m.bob_call(&s, "prove", &pt, Amount::ZERO);
    let status = bob_only(&mut m, &prove).status;
    assert_ne!(
        status,
        TxStatus::Success,
        "a payment made before the exchange was agreed counted as NT_s (floor {}, its nonce {})",
        terms.nonce_i,
        old.tx.nonce
    );
}

/// A proposal nobody signed. On a deterministic chain the leader's proposal
/// carries an empty quorum and no signature of the leader; `Replica::vote`
/// checks only that the header's `proposer` *field* names the scheduled
/// leader. Whoever can reach the validators — here a party with a copy of
/// the chain and none of its keys — builds its own block for the next
/// height (choosing which transactions go in: here a transfer the leader's
/// mempool never held), writes the leader's public key into `proposer`, and
/// the honest validators vote for it and commit it. The schedule of leaders
/// constrains nothing.
///
/// Expected: a replica votes only for a proposal the scheduled leader
/// signed. Observed: 3 of 4 votes, a valid seal, and every replica commits
/// a block the leader never proposed.
#[test]
fn honest_replicas_vote_for_a_block_the_leader_never_proposed() {
    use gridledger_ledger::devnet::{dev_key, transfer};
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec::fixed_ids();
    let mut rs = replicas(dir.path(), &spec);
    // The outsider's copy of the chain; it keeps no validator key.
    let (copy, _) = open_chain(&dir.path().join("outsider"), &spec, Role::External(0)).unwrap();
    let (mut chain, _key_dropped) = copy.into_parts(0).unwrap();
    let leader = rs[0].leader_of(1);
    let leader_pk = rs[leader].chain().genesis().validators[leader];
    // A transfer only the outsider's mempool holds.
    let domain = chain.config().signing_domain;
    let tx = transfer(&dev_key(3), FIRST_EXTERNAL_ID, 0, dev_key(4).address(), Amount(5), Amount(1));
    let tx = tx.tx.sign_in(&dev_key(3), domain.as_ref());
    chain.submit(&tx.to_bytes()).unwrap();
    let (ex, _) = chain.build_block(&leader_pk, rs[0].chain().tip().timestamp + 1_000);
    let mut block = ex.block;
    block.seal = Seal::Quorum { view: 0, signatures: Vec::new() };
    let quorum = rs[0].quorum();
    let votes: Vec<_> = rs.iter().filter_map(|r| r.vote(&block).ok()).take(quorum).collect();
    let voted = votes.len();
    if voted == quorum {
        block.seal = Seal::Quorum { view: 0, signatures: votes };
        for r in rs.iter_mut() {
            r.commit(&block).unwrap();
        }
        assert!(rs[leader].chain().receipt(&tx.hash()).unwrap().is_some(), "the leader committed the outsider's block");
    }
    assert!(voted < quorum, "{voted} honest votes for a proposal the scheduled leader never signed");
}

/// A stranger's Π_CCTC lock consumed as someone else's NT. `cct` checks
/// only that the caller is `sender_b`; `sender_i` — the account whose
/// payment on chain i counts as NT_s — is a free field the sender fills
/// in, and the receiver (here the sender's accomplice) signs it. The
/// attacker sees a victim's lock of 700 into `TPK_Addr_i` land (the BoB's
/// relayers lag a few blocks, as in `ccte.rs`'s nonce-floor test), opens a
/// CCT with `sender_i` = the victim, `receiver_i` = `TPK_Addr_i`, `x_i` =
/// 700 and a floor at or below the lock's nonce, and proves the victim's
/// lock as NT_s. The lock's hash is now "used": the victim's own claim is
/// refused (`AlreadyClaimed`), and so will its refund be — 700 of the
/// victim's coin sit in `TPK_Addr_i` with nothing minted for it, and the
/// attacker's CCT side counts as paid though the attacker paid nothing.
/// Same root cause, for profit: a malicious receiver W of an honest
/// sender V signs a second CCT for an accomplice with `sender_i` = V,
/// `receiver_i` = W and the same x_i; V's NT_s proved there first is
/// "used", V can no longer prove it in its own CCT, and CCT_V penalises V
/// (x_B of its deposit to W) although V paid (reasoned, not exercised here).
///
/// Expected: the victim's claim mints 700 (an account that agreed to no
/// CCT cannot have its transfer consumed by one), e.g. `cct` refuses terms
/// whose `sender_i` is not the caller's (or did not sign). Observed: the
/// proof succeeds and the victim's claim reverts with `AlreadyClaimed`.
#[test]
fn a_strangers_lock_is_consumed_as_the_attackers_nt() {
    use gridledger_ledger::devnet::dev_key;
    use gridledger_xchain::bob::{keys, Claim};
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::fixed_ids());
    let (attacker, accomplice, victim) = (sender(), receiver(), dev_key(2));
    let tpk = m.config.tpk_address(I);
    // The victim locks 700 for Π_CCTC; chain i runs ahead of the relayers.
    let floor = m.external(I).unwrap().next_nonce(&victim.address());
    for _ in 0..(m.config.kappa_bar + 2) {
        m.external_mut(I).unwrap().tick().unwrap();
    }
    let lock = m.native_transfer(I, &victim, tpk, 700).unwrap();
    m.external_mut(I).unwrap().submit(&lock).unwrap();
    m.external_mut(I).unwrap().tick().unwrap();
    // The attacker's CCT names the victim as the payer on chain i.
    let mut terms = m.terms(&request(700, 3307)).unwrap();
    terms.sender_i = victim.address();
    terms.receiver_i = tpk;
    terms.nonce_i = floor;
    terms.min_x_i = 700;
    terms.max_x_i = 700;
    let cct = m.cct_tx(&attacker, &accomplice, terms.clone());
    let opened = bob_only(&mut m, &cct).status;
    // Fixed: terms naming someone else than the caller as payer on chain i
    // are refused with a typed error (the rest shows the lock stays the victim's).
    assert_eq!(
        opened,
        TxStatus::Reverted(XchainError::NotSender.as_revert()),
        "terms naming a stranger as the payer on chain i"
    );
    let id = terms.id();
    let pt = m.proof_for(id, Side::Sender, &lock).unwrap().expect("the victim's lock is in a block");
    m.wait_final(I, pt.height).unwrap();
    let prove = m.bob_call(&attacker, "prove", &pt, Amount::ZERO);
    let proved = bob_only(&mut m, &prove).status;
    // The victim now claims its lock.
    let claim = m.bob_call(
        &victim,
        "claim",
        &Claim { chain: I, height: pt.height, nt: lock.clone(), proof: pt.proof.clone() },
        Amount::ZERO,
    );
    let claimed = bob_only(&mut m, &claim).status;
    let minted: u128 = m.bob_record(&keys::wrapped(I, &victim.address())).unwrap_or(0);
    assert_eq!(
        (claimed.clone(), minted),
        (TxStatus::Success, 700),
        "the victim's lock was consumed by the attacker's CCT (prove: {proved:?}); the victim's claim: {claimed:?}"
    );
}
