//! CCDI (thesis §5.5, Fig 5-2, Fig 5-3) over an embedded BoB-MBS: Case 1,
//! Case 2 with S_MUE, Case 2* under censorship, S_SDM, relay nodes, the
//! properties of Theorems 5.4–5.5 and the refusals of issue item 9.

use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, ChainId, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{Receipt, SignedTransaction, TxStatus};
use gridledger_xchain::ccdi::{self, CcdiApp, CcdiTerms, Slot};
use gridledger_xchain::ccdi_run::{CcdiAttack, CcdiUser, ItemFate, UserBehaviour};
use gridledger_xchain::mbs::{BobMbs, MbsSpec};
use gridledger_xchain::scbg::{Character, Lock, Settle, Settlement, SC_BG_ID};
use gridledger_xchain::XchainError;

/// The deployment's external chains A, B, C (its own ids). With two
/// chains, C is an id no chain of the deployment has.
fn chains3(m: &BobMbs) -> [ChainId; 3] {
    let c = m.chain_ids();
    [c[0], c[1], c.get(2).copied().unwrap_or(ChainId::MAX)]
}
const DEPOSIT: u128 = 10_000;

fn open(dir: &std::path::Path) -> BobMbs {
    BobMbs::open(dir, MbsSpec { chains: 3, ccdi: true, kappa: 4, ..MbsSpec::default() }).expect("open")
}

/// Six users, two per chain, each with a character of distinct attack.
fn users(m: &mut BobMbs, behaviours: &[UserBehaviour]) -> Vec<CcdiUser> {
    let [ca, cb, cc] = chains3(m);
    let chains = [ca, ca, cb, cb, cc, cc];
    behaviours
        .iter()
        .enumerate()
        .map(|(x, b)| {
            let key = dev_key(x);
            let chain = chains[x % 6];
            let item = m.create_item(chain, &key, &format!("hero-{x}"), 10 * (x as u64 + 1) % 47).expect("create");
            CcdiUser { key, chain, item, behaviour: *b }
        })
        .collect()
}

fn honest(n: usize) -> Vec<UserBehaviour> {
    vec![UserBehaviour::Honest; n]
}

fn bob_balance(m: &BobMbs, k: &KeyPair) -> u128 {
    m.bob.account(&k.address()).balance.0
}

#[test]
fn case_1_updates_every_item_in_three_phases_with_2x_plus_n_transactions() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let us = users(&mut m, &honest(6));
    let befores: Vec<Character> = us.iter().map(|u| m.item(u.chain, u.item).unwrap().data).collect();
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), DEPOSIT, 1, 1).unwrap();
    assert!(rep.case1 && rep.record.finished, "Case 1: all X stored before the deadline");
    assert_eq!(rep.phases, 3, "lock, CCT, in-place update");
    let c = &rep.counts;
    assert_eq!((c.lock_txs, c.cct_txs, c.relayed_cct_txs, c.settle_txs), (6, 6, 0, 3));
    assert_eq!(c.protocol_txs(), 2 * 6 + 3, "2X + N transactions");
    let expected = ccdi::run_app(CcdiApp::Battle, &befores);
    assert_ne!(expected, befores, "the battles change something");
    for ((u, o), want) in us.iter().zip(&rep.items).zip(&expected) {
        assert_eq!(o.fate, ItemFate::Updated);
        let now = m.item(u.chain, u.item).unwrap();
        assert_eq!(&now.data, want, "SC_F's output is in place on chain {}", u.chain);
        assert_eq!(now.owner, u.key.address(), "the item is back with its owner");
        assert!(now.lock.is_none());
    }
    assert_eq!(rep.eliminated, 0);
    // Deposits all paid back: the BoB contract holds none.
    let contract = gridledger_ledger::contract_address(gridledger_xchain::BOB_CONTRACT_ID);
    assert_eq!(m.bob.account(&contract).balance.0, 0);
}

#[test]
fn one_settlement_transaction_updates_all_of_a_chains_items() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let us = users(&mut m, &honest(6));
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), DEPOSIT, 1, 2).unwrap();
    let s = m.ccdi_settlements(&rep.process);
    assert_eq!(s.len(), 3, "one settlement per chain");
    for st in s {
        assert_eq!(st.entries.len(), 2, "both of chain {}'s items in one transaction", st.chain);
    }
}

#[test]
fn withholding_users_are_eliminated_and_the_rest_still_update() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let mut b = honest(6);
    b[2] = UserBehaviour::Withhold;
    let us = users(&mut m, &b);
    let befores: Vec<Character> = us.iter().map(|u| m.item(u.chain, u.item).unwrap().data).collect();
    let bal: Vec<u128> = us.iter().map(|u| bob_balance(&m, &u.key)).collect();
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), DEPOSIT, 1, 3).unwrap();
    assert!(!rep.case1, "Case 2");
    assert_eq!(rep.eliminated, 1, "S_MUE eliminates the withholding user");
    assert_eq!(rep.record.eliminated, vec![us[2].key.address()]);
    let y: Vec<Character> = befores.iter().enumerate().filter(|(x, _)| *x != 2).map(|(_, c)| c.clone()).collect();
    let expected = ccdi::run_app(CcdiApp::Battle, &y);
    let mut e = expected.iter();
    for (x, (u, o)) in us.iter().zip(&rep.items).enumerate() {
        let now = m.item(u.chain, u.item).unwrap();
        if x == 2 {
            assert_eq!(o.fate, ItemFate::NeverLocked);
            assert_eq!(now.data, befores[2]);
        } else {
            assert_eq!(o.fate, ItemFate::Updated);
            assert_eq!(&now.data, e.next().unwrap());
            assert!(now.lock.is_none() && now.owner == u.key.address());
        }
    }
    // The withholder's deposit is forfeited and shared by the five others.
    let share = DEPOSIT / 5;
    for (x, u) in us.iter().enumerate() {
        let now = bob_balance(&m, &u.key);
        if x == 2 {
            assert!(now < bal[x] - DEPOSIT + 1, "the withholder lost its deposit");
        } else {
            assert!(now > bal[x] + share - 1_000_000, "an honest user got its deposit back and a share");
        }
    }
}

#[test]
fn a_censored_lock_past_the_deadline_comes_back_unchanged_case_2_star() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [_, _, cc] = chains3(&m);
    let us = users(&mut m, &honest(6));
    let befores: Vec<Character> = us.iter().map(|u| m.item(u.chain, u.item).unwrap().data).collect();
    // Chain C holds every Trans_Ux back beyond the deadline (κ · max κ_i = 4 epochs).
    let attack = CcdiAttack { censor: [(cc, 12)].into_iter().collect(), ..CcdiAttack::default() };
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &attack, DEPOSIT, 1, 4).unwrap();
    assert!(!rep.case1);
    assert_eq!(rep.eliminated, 2, "the censored users could not store their items in time");
    for (u, o) in us.iter().zip(&rep.items) {
        let now = m.item(u.chain, u.item).unwrap();
        assert!(now.lock.is_none() && now.owner == u.key.address(), "nothing stays locked");
        if u.chain == cc {
            assert_eq!(o.fate, ItemFate::Unchanged, "Case 2*: unlocked unchanged");
            assert_eq!(now.data, o.before);
        } else {
            assert_eq!(o.fate, ItemFate::Updated);
        }
    }
    let y: Vec<Character> = befores[..4].to_vec();
    let expected = ccdi::run_app(CcdiApp::Battle, &y);
    for (u, want) in us[..4].iter().zip(expected) {
        assert_eq!(m.item(u.chain, u.item).unwrap().data, want);
    }
    assert!(rep.phases > 3, "the late CCT and its settlement come after");
}

#[test]
fn relay_nodes_send_the_cct_of_a_silent_user_even_with_f_byzantine_relayers() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let mut b = honest(4);
    b[1] = UserBehaviour::SilentCct;
    let us = users(&mut m, &b);
    let attack = CcdiAttack { byzantine_relayers: 1, byzantine_members: 1, ..CcdiAttack::default() };
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &attack, DEPOSIT, 2, 5).unwrap();
    assert!(rep.case1, "the relayed CCT arrived in time");
    assert_eq!(rep.counts.relayed_cct_txs, 1);
    assert!(rep.items.iter().all(|o| o.fate == ItemFate::Updated));
}

#[test]
fn a_user_without_deposit_is_cancelled_and_its_lock_returned() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let mut b = honest(4);
    b[3] = UserBehaviour::NoDeposit;
    let us = users(&mut m, &b);
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), DEPOSIT, 1, 6).unwrap();
    assert!(!rep.case1);
    assert_eq!(rep.items[3].fate, ItemFate::Unchanged);
    assert!(!rep.items[3].locked_now);
    assert!(rep.items[..3].iter().all(|o| o.fate == ItemFate::Updated));
    assert_eq!(rep.eliminated, 0, "a user that never paid has nothing to forfeit");
}

#[test]
fn sdm_migrates_an_item_to_another_chain_without_either_storing_the_other() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, cb, cc] = chains3(&m);
    let k = dev_key(0);
    let item = m.create_item(ca, &k, "wanderer", 33).unwrap();
    let old = m.item(ca, item).unwrap().data;
    let (fresh, rep) = m.migrate(&k, ca, item, cb, DEPOSIT, 7).unwrap();
    assert!(rep.case1);
    assert_eq!(rep.phases, 3);
    let moved = m.item(cb, fresh).unwrap();
    assert_eq!(moved.data, old, "the item now lives on chain B");
    assert_eq!(moved.owner, k.address());
    let left = m.item(ca, item).unwrap();
    assert_eq!(left.data, Character::initial("wanderer", 0), "chain A keeps the fresh initial version");
    // Independence: neither chain stores anything about the other.
    for c in [ca, cb, cc] {
        let prefix_acct = 0x01u8;
        let sc = gridledger_ledger::state::contract_key(SC_BG_ID, &[]);
        for (key, _) in m.external(c).unwrap().chain().state().iter() {
            assert!(
                key.first() == Some(&prefix_acct) || key.starts_with(&sc),
                "chain {c} stores only accounts and SC_BG"
            );
        }
    }
}

// ------------------------------------------------------------ bad input

/// Runs one block of `chain` holding `tx` (no other chain moves).
fn chain_only(m: &mut BobMbs, chain: ChainId, tx: &SignedTransaction) -> Receipt {
    let h = m.external_mut(chain).unwrap().submit(tx).expect("admitted");
    m.external_mut(chain).unwrap().tick().unwrap();
    m.external(chain).unwrap().receipt(&h).unwrap().expect("included")
}

fn assert_chain_refuses(m: &mut BobMbs, chain: ChainId, tx: &SignedTransaction, err: XchainError) {
    let before = m.sc_bg_state(chain);
    let r = chain_only(m, chain, tx);
    assert_eq!(r.status, TxStatus::Reverted(err.as_revert()), "expected refusal: {err}");
    assert_eq!(m.sc_bg_state(chain), before, "a refused transaction changed SC_BG's state");
}

fn bob_only(m: &mut BobMbs, tx: &SignedTransaction) -> Receipt {
    let h = m.bob.submit(tx).expect("admitted");
    m.bob.tick().unwrap();
    m.bob.receipt(&h).unwrap().expect("included")
}

fn assert_bob_refuses(m: &mut BobMbs, tx: &SignedTransaction, err: XchainError) {
    let before = m.bob_contract_state();
    let r = bob_only(m, tx);
    assert_eq!(r.status, TxStatus::Reverted(err.as_revert()), "expected refusal: {err}");
    assert_eq!(m.bob_contract_state(), before, "a refused transaction changed the BoB contract's state");
}

fn terms(m: &BobMbs, us: &[CcdiUser], salt: u64) -> CcdiTerms {
    m.ccdi_terms(CcdiApp::Battle, us, DEPOSIT, 1, salt)
}

#[test]
fn sc_bg_refuses_bad_locks() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, _, _] = chains3(&m);
    let us = users(&mut m, &honest(2));
    let data = m.item(ca, us[0].item).unwrap().data;
    let p = Hash32([9; 32]);
    // Not the owner.
    let tx = m.sc_bg_call(ca, &us[1].key, "lock", &Lock { process: p, item: us[0].item, data: data.clone() }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::NotOwner { item: us[0].item, owner: us[0].key.address() });
    // Stated metadata differs from the stored item.
    let mut wrong = data.clone();
    wrong.attack += 1;
    let tx = m.sc_bg_call(ca, &us[0].key, "lock", &Lock { process: p, item: us[0].item, data: wrong }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::ItemMismatch);
    // Unknown item.
    let tx = m.sc_bg_call(ca, &us[0].key, "lock", &Lock { process: p, item: 999, data: data.clone() }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::UnknownItem(999));
    // Locked twice.
    let tx = m.sc_bg_call(ca, &us[0].key, "lock", &Lock { process: p, item: us[0].item, data: data.clone() }).unwrap();
    assert_eq!(chain_only(&mut m, ca, &tx).status, TxStatus::Success);
    let tx = m.sc_bg_call(ca, &us[0].key, "lock", &Lock { process: p, item: us[0].item, data }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::ItemLocked(us[0].item));
}

#[test]
fn sc_bg_refuses_forged_replayed_and_misdirected_settlements() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, cb, _] = chains3(&m);
    let us = users(&mut m, &honest(2));
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), DEPOSIT, 1, 8).unwrap();
    let settled = m.ccdi_settlements(&rep.process).into_iter().find(|s| s.chain == ca).unwrap();
    let relayer = m.relayer.clone();
    // Replay of the settlement that already ran.
    let sig = m.sign_settlement(&settled, 0).unwrap();
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: settled.clone(), signature: sig }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::UnknownLock(settled.entries[0].0));
    // A fresh lock, and settlements for it that must fail.
    let u = &us[0];
    let data = m.item(ca, u.item).unwrap().data;
    let p = Hash32([7; 32]);
    let tx = m.sc_bg_call(ca, &u.key, "lock", &Lock { process: p, item: u.item, data: data.clone() }).unwrap();
    let r = chain_only(&mut m, ca, &tx);
    let lock = Hash32(r.output.try_into().unwrap());
    let mut boosted = data.clone();
    boosted.experience = 1_000_000;
    let s = ccdi::settlement(m.bob.chain_id(), ca, p, vec![(lock, boosted.clone())]);
    // Forged: signed over other bytes (f+1 bad shares cannot make a signature, so take one of another statement).
    let other = ccdi::settlement(m.bob.chain_id(), ca, p, vec![(lock, data.clone())]);
    let wrong_sig = m.sign_settlement(&other, 0).unwrap();
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: s.clone(), signature: wrong_sig }).unwrap();
    assert_chain_refuses(
        &mut m,
        ca,
        &tx,
        XchainError::BadThresholdSignature(gridledger_threshold::ThresholdError::InvalidSignature.to_string()),
    );
    // Garbage signature bytes.
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: s.clone(), signature: vec![0; 48] }).unwrap();
    let before = m.sc_bg_state(ca);
    assert!(matches!(chain_only(&mut m, ca, &tx).status, TxStatus::Reverted(_)));
    assert_eq!(m.sc_bg_state(ca), before);
    // Signed for chain A, sent to chain B.
    let sig = m.sign_settlement(&s, 0).unwrap();
    let tx = m.sc_bg_call(cb, &relayer, "settle", &Settle { settlement: s.clone(), signature: sig.clone() }).unwrap();
    assert_chain_refuses(&mut m, cb, &tx, XchainError::SettlementWrongChain { expected: cb, got: ca });
    // Unknown lock, duplicate lock.
    let ghost = Hash32([1; 32]);
    let g = ccdi::settlement(m.bob.chain_id(), ca, p, vec![(ghost, data.clone())]);
    let gs = m.sign_settlement(&g, 0).unwrap();
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: g, signature: gs }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::UnknownLock(ghost));
    let d = Settlement { entries: vec![(lock, data.clone()), (lock, data.clone())], ..s.clone() };
    let ds = m.sign_settlement(&d, 0).unwrap();
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: d, signature: ds }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::DuplicateLock(lock));
    // The genuine one goes through once, then is a replay.
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: s.clone(), signature: sig.clone() }).unwrap();
    assert_eq!(chain_only(&mut m, ca, &tx).status, TxStatus::Success);
    assert_eq!(m.item(ca, u.item).unwrap().data, boosted);
    let tx = m.sc_bg_call(ca, &relayer, "settle", &Settle { settlement: s, signature: sig }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::UnknownLock(lock));
}

#[test]
fn f_plus_1_bad_shares_or_non_members_cannot_make_a_threshold_signature() {
    let dir = tempfile::tempdir().unwrap();
    let m = open(dir.path());
    let [ca, _, _] = chains3(&m);
    let s =
        ccdi::settlement(m.bob.chain_id(), ca, Hash32([3; 32]), vec![(Hash32([4; 32]), Character::initial("x", 1))]);
    let f = (m.committee.set.members() - 1) / 3;
    assert!(m.sign_settlement(&s, f).is_ok(), "f bad shares are tolerated");
    assert!(m.sign_settlement(&s, f + 1).is_err(), "2f+1 honest shares are needed");
    let msg = s.message(&m.instance(ca).unwrap());
    let share = m.committee.sign_share_raw(0, gridledger_xchain::scbg::SETTLE_DOMAIN, &msg).unwrap();
    let n = m.committee.set.members();
    let shares: Vec<_> = (0..2 * f + 1).map(|i| (n + i, share)).collect();
    assert!(m.committee.combine_raw(gridledger_xchain::scbg::SETTLE_DOMAIN, &msg, &shares).is_err());
}

/// Opens and registers a process for `us` without running it.
fn prepared(m: &mut BobMbs, us: &[CcdiUser], salt: u64) -> (Hash32, CcdiTerms) {
    let t = terms(m, us, salt);
    let mut c = Default::default();
    let id = m.ccdi_prepare(&t, us, &mut c).unwrap();
    (id, t)
}

#[test]
fn sc_c_refuses_forged_stale_reverted_foreign_and_double_ccts() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, _, cc] = chains3(&m);
    let us = users(&mut m, &honest(3));
    let (id, _) = prepared(&mut m, &us, 9);
    let u = &us[0];
    let data = m.item(ca, u.item).unwrap().data;
    let lock = m.sc_bg_call(ca, &u.key, "lock", &Lock { process: id, item: u.item, data: data.clone() }).unwrap();
    m.external_mut(ca).unwrap().submit(&lock).unwrap();
    m.tick().unwrap();
    m.tick().unwrap();
    let cct = m.ccdi_cct_for(id, &lock).unwrap().unwrap();
    // Forged proof.
    let mut forged = cct.clone();
    forged.proof.siblings.push(Hash32([5; 32]));
    forged.proof.siblings.reverse();
    let tx = m.bob_call(&u.key, "ccdi_cct", &forged, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::BadReceiptProof { chain: ca, height: cct.height });
    // Receipt that is not this transaction's success.
    let mut rev = cct.clone();
    rev.receipt.status = TxStatus::Reverted("x".into());
    let tx = m.bob_call(&u.key, "ccdi_cct", &rev, Amount::ZERO);
    assert_bob_refuses(
        &mut m,
        &tx,
        XchainError::NotALock("the receipt is not a successful execution of this transaction".into()),
    );
    // A lock for another process.
    let mut other = cct.clone();
    other.process = Hash32([6; 32]);
    let tx = m.bob_call(&u.key, "ccdi_cct", &other, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::UnknownProcess(Hash32([6; 32])));
    // A header the BoB does not have yet.
    let mut future = cct.clone();
    future.height += 1_000;
    let tip = m.bob_tip(ca);
    let tx = m.bob_call(&u.key, "ccdi_cct", &future, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::UnknownHeader { chain: ca, height: cct.height + 1_000, tip });
    // The genuine CCT, then a double claim.
    let tx = m.bob_call(&u.key, "ccdi_cct", &cct, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    let tx = m.bob_call(&us[1].key, "ccdi_cct", &cct, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::AlreadyStored { chain: ca, item: u.item });
    // A lock by someone who is not a slot owner (dev key 5 has an item on C).
    let stranger = dev_key(5);
    let sitem = m.create_item(cc, &stranger, "stranger", 3).unwrap();
    let sdata = m.item(cc, sitem).unwrap().data;
    let slock = m.sc_bg_call(cc, &stranger, "lock", &Lock { process: id, item: sitem, data: sdata }).unwrap();
    m.external_mut(cc).unwrap().submit(&slock).unwrap();
    m.ticks(2).unwrap();
    let scct = m.ccdi_cct_for(id, &slock).unwrap().unwrap();
    let tx = m.bob_call(&stranger, "ccdi_cct", &scct, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::NotParticipant(stranger.address()));
    // Stale: after `kept_headers` more headers (8 on κ_i = 4, attack
    // R15-3) the lock's block is no longer kept.
    let kept = m.spec.kept_headers();
    let data1 = m.item(ca, us[1].item).unwrap().data;
    let lock1 = m.sc_bg_call(ca, &us[1].key, "lock", &Lock { process: id, item: us[1].item, data: data1 }).unwrap();
    m.external_mut(ca).unwrap().submit(&lock1).unwrap();
    m.tick().unwrap();
    let c1 = m.ccdi_cct_for(id, &lock1).unwrap().unwrap();
    // Right as the header leaves the window (one epoch later a BoB node
    // would send the lock's CCT against the accumulator itself).
    while m.bob_tip(ca) < c1.height + kept {
        m.tick().unwrap();
    }
    let tip = m.bob_tip(ca);
    let tx = m.bob_call(&us[1].key, "ccdi_cct", &c1, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::StaleHeader { chain: ca, height: c1.height, oldest_kept: tip - kept });
}

#[test]
fn sc_f_refuses_late_or_wrong_registrations_and_early_or_repeated_finishes() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, _, _] = chains3(&m);
    let us = users(&mut m, &honest(2));
    let t = terms(&m, &us, 10);
    let relayer = m.relayer.clone();
    // Bad terms.
    let mut dup = t.clone();
    dup.slots.push(dup.slots[0].clone());
    dup.start = m.bob.height() + 3;
    let tx = m.bob_call(&relayer, "ccdi_open", &dup, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::BadProcess("two slots with the same owner on the same chain".into()));
    let mut unknown = t.clone();
    unknown.slots[0].chain = 999;
    unknown.start = m.bob.height() + 3;
    let tx = m.bob_call(&relayer, "ccdi_open", &unknown, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::UnknownChain(999));
    let mut mig = t.clone();
    mig.app = CcdiApp::Migrate;
    mig.start = m.bob.height() + 3;
    let tx = m.bob_call(&relayer, "ccdi_open", &mig, Amount::ZERO);
    assert_bob_refuses(
        &mut m,
        &tx,
        XchainError::BadProcess("a migration has two slots of one participant on two chains".into()),
    );
    let mut started = t.clone();
    started.start = m.bob.height();
    let tx = m.bob_call(&relayer, "ccdi_open", &started, Amount::ZERO);
    let now = m.bob.height() + 1;
    assert_bob_refuses(&mut m, &tx, XchainError::RegistrationClosed { start: started.start, now });
    // Open it, then a second time.
    let t = CcdiTerms { start: m.bob.height() + 10, ..t };
    let tx = m.bob_call(&relayer, "ccdi_open", &t, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    let id = t.id();
    let tx = m.bob_call(&relayer, "ccdi_open", &t, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::DuplicateProcess(id));
    // Registrations: a stranger, a wrong deposit, twice.
    let tx = m.bob_call(&dev_key(6), "ccdi_register", &id, Amount(DEPOSIT));
    assert_bob_refuses(&mut m, &tx, XchainError::NotParticipant(dev_key(6).address()));
    let tx = m.bob_call(&us[0].key, "ccdi_register", &id, Amount(DEPOSIT - 1));
    assert_bob_refuses(&mut m, &tx, XchainError::WrongDeposit { need: DEPOSIT, got: DEPOSIT - 1 });
    let tx = m.bob_call(&us[0].key, "ccdi_register", &id, Amount(DEPOSIT));
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    let tx = m.bob_call(&us[0].key, "ccdi_register", &id, Amount(DEPOSIT));
    assert_bob_refuses(&mut m, &tx, XchainError::AlreadyRegistered(us[0].key.address()));
    // Finish before the deadline.
    let rec = m.process(&id).unwrap();
    let tx = m.bob_call(&relayer, "ccdi_finish", &id, Amount::ZERO);
    let now = m.bob.height() + 1;
    assert_bob_refuses(&mut m, &tx, XchainError::CcdiDeadlineNotReached { deadline: rec.deadline, now });
    // Registration after the start.
    while m.bob.height() + 1 < t.start {
        m.tick().unwrap();
    }
    m.tick().unwrap();
    let tx = m.bob_call(&us[1].key, "ccdi_register", &id, Amount(DEPOSIT));
    let now = m.bob.height() + 1;
    assert_bob_refuses(&mut m, &tx, XchainError::RegistrationClosed { start: t.start, now });
    // After the deadline: finish once, then never again.
    while m.bob.height() < rec.deadline {
        m.tick().unwrap();
    }
    let tx = m.bob_call(&relayer, "ccdi_finish", &id, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
    let tx = m.bob_call(&relayer, "ccdi_finish", &id, Amount::ZERO);
    assert_bob_refuses(&mut m, &tx, XchainError::ProcessFinished);
    // The one registered participant withheld: eliminated.
    assert_eq!(m.process(&id).unwrap().eliminated, vec![us[0].key.address()]);
    let _ = Slot { chain: ca, owner: us[0].key.address(), participant: us[0].key.address() };
}

// ------------------------------------------------- spending from TPK_Addr_i

/// `who` locks `amount` on `chain` by an ordinary transfer to `TPK_Addr_i`
/// and claims it on the BoB (Π_CCTC).
fn lock_and_claim(m: &mut BobMbs, who: &KeyPair, chain: ChainId, amount: u128) {
    let tpk = m.config.tpk_address(chain);
    let nt = m.native_transfer(chain, who, tpk, amount).unwrap();
    m.external_mut(chain).unwrap().submit(&nt).unwrap();
    m.tick().unwrap();
    let (height, proof) = m.external(chain).unwrap().tx_proof(&nt.hash()).unwrap().unwrap();
    m.wait_final(chain, height).unwrap();
    let claim = m.bob_call(who, "claim", &gridledger_xchain::bob::Claim { chain, height, nt, proof }, Amount::ZERO);
    m.bob_ok(&claim).unwrap();
}

#[test]
fn claimed_tokens_burned_on_the_bob_are_paid_out_of_tpk_addr_i() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, _, _] = chains3(&m);
    let (u, payee) = (dev_key(2), dev_key(3));
    let tpk = m.config.tpk_address(ca);
    assert_eq!(tpk, gridledger_ledger::contract_address(SC_BG_ID), "TPK_Addr_i is SC_BG's account");
    lock_and_claim(&mut m, &u, ca, 5_000);
    assert_eq!(m.external(ca).unwrap().account(&tpk).balance.0, 5_000);
    let before = m.external(ca).unwrap().account(&payee.address()).balance.0;
    m.redeem(&u, ca, 2_000, payee.address()).unwrap();
    assert_eq!(m.external(ca).unwrap().account(&payee.address()).balance.0, before + 2_000);
    assert_eq!(m.external(ca).unwrap().account(&tpk).balance.0, 3_000);
    let wrapped: u128 = m.bob_record(&gridledger_xchain::bob::keys::wrapped(ca, &u.address())).unwrap();
    assert_eq!(wrapped, 3_000, "the redeemed tokens are burned on the BoB");
}

#[test]
fn replayed_forged_and_overdrawn_releases_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, _, _] = chains3(&m);
    let u = dev_key(2);
    lock_and_claim(&mut m, &u, ca, 5_000);
    // More than was claimed: refused on the BoB.
    let tx = m.bob_call(
        &u,
        "redeem",
        &gridledger_xchain::bob::Redeem { chain: ca, amount: 5_001, to: u.address() },
        Amount::ZERO,
    );
    assert_bob_refuses(&mut m, &tx, XchainError::Insufficient { what: "claimed tokens", have: 5_000, need: 5_001 });
    m.redeem(&u, ca, 1_000, u.address()).unwrap();
    // The same release again: a replay.
    let replay = m.release_tx(ca, 0).unwrap();
    assert_chain_refuses(&mut m, ca, &replay, XchainError::ReplayedStatement { expected: 1, got: 0 });
    // The next order with its amount changed after signing.
    let tx = m.bob_call(
        &u,
        "redeem",
        &gridledger_xchain::bob::Redeem { chain: ca, amount: 10, to: u.address() },
        Amount::ZERO,
    );
    m.bob_ok(&tx).unwrap();
    let genuine = m.release_tx(ca, 1).unwrap();
    let gridledger_ledger::TxKind::Call { args, .. } = &genuine.tx.kind else { panic!("a call") };
    let mut rel: gridledger_xchain::scbg::Release = borsh::from_slice(args).unwrap();
    rel.order.amount = 4_000;
    let relayer = m.relayer.clone();
    let forged = m.sc_bg_call(ca, &relayer, "release", &rel).unwrap();
    assert_chain_refuses(
        &mut m,
        ca,
        &forged,
        XchainError::BadThresholdSignature(gridledger_threshold::ThresholdError::InvalidSignature.to_string()),
    );
    // A sequence from the future.
    rel.order.amount = 10;
    rel.sequence = 5;
    let ahead = m.sc_bg_call(ca, &relayer, "release", &rel).unwrap();
    assert_chain_refuses(&mut m, ca, &ahead, XchainError::ReplayedStatement { expected: 1, got: 5 });
    // The genuine one still goes through.
    let genuine = m.release_tx(ca, 1).unwrap();
    assert_eq!(chain_only(&mut m, ca, &genuine).status, TxStatus::Success);
}

#[test]
fn sc_bg_refuses_malformed_characters() {
    use gridledger_xchain::scbg::{Create, MAX_ATTACK, MAX_NAME};
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, _, _] = chains3(&m);
    let k = dev_key(0);
    let tx = m.sc_bg_call(ca, &k, "create", &Create { name: String::new(), attack: 1 }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::BadItem(format!("a name has 1 to {MAX_NAME} bytes")));
    let tx = m.sc_bg_call(ca, &k, "create", &Create { name: "x".repeat(MAX_NAME + 1), attack: 1 }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::BadItem(format!("a name has 1 to {MAX_NAME} bytes")));
    let tx = m.sc_bg_call(ca, &k, "create", &Create { name: "ok".into(), attack: MAX_ATTACK + 1 }).unwrap();
    assert_chain_refuses(&mut m, ca, &tx, XchainError::BadItem(format!("attack above {MAX_ATTACK}")));
}

// ------------------------------------------------------------- isolation

/// Two processes whose locks and CCTs share blocks on every chain and on
/// the BoB: each ends with SC_F's output on its own items only (isolation,
/// Theorem 5.5), and one settlement per chain and process.
#[test]
fn concurrent_processes_do_not_interfere() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let us = users(&mut m, &honest(4));
    let (p1, p2) = (vec![us[0].clone(), us[2].clone()], vec![us[1].clone(), us[3].clone()]);
    let befores: Vec<Character> = us.iter().map(|u| m.item(u.chain, u.item).unwrap().data).collect();
    let t1 = m.ccdi_terms(CcdiApp::Battle, &p1, DEPOSIT, 3, 11);
    let t2 = CcdiTerms { slots: m.ccdi_terms(CcdiApp::Battle, &p2, DEPOSIT, 3, 12).slots, salt: 12, ..t1.clone() };
    // Both opened and registered before the common start.
    let relayer = m.relayer.clone();
    for t in [&t1, &t2] {
        let tx = m.bob_call(&relayer, "ccdi_open", t, Amount::ZERO);
        m.bob.submit(&tx).unwrap();
    }
    m.tick().unwrap();
    for (t, p) in [(&t1, &p1), (&t2, &p2)] {
        for u in p.iter() {
            let tx = m.bob_call(&u.key, "ccdi_register", &t.id(), Amount(DEPOSIT));
            m.bob.submit(&tx).unwrap();
        }
    }
    m.tick().unwrap();
    for (t, p) in [(&t1, &p1), (&t2, &p2)] {
        let rec = m.process(&t.id()).unwrap();
        assert!(rec.registered.iter().all(|r| *r), "process {} registered: {:?}", t.salt, rec.registered);
        assert_eq!(p.len(), 2);
    }
    // Every lock in the same epoch, every CCT in the same BoB block.
    let mut locks = Vec::new();
    for (t, p) in [(&t1, &p1), (&t2, &p2)] {
        for u in p.iter() {
            let data = m.item(u.chain, u.item).unwrap().data;
            let tx = m.sc_bg_call(u.chain, &u.key, "lock", &Lock { process: t.id(), item: u.item, data }).unwrap();
            m.external_mut(u.chain).unwrap().submit(&tx).unwrap();
            locks.push((t.id(), u.clone(), tx));
        }
    }
    m.ticks(2).unwrap();
    for (id, u, tx) in &locks {
        let cct = m.ccdi_cct_for(*id, tx).unwrap().unwrap();
        let tx = m.bob_call(&u.key, "ccdi_cct", &cct, Amount::ZERO);
        m.bob.submit(&tx).unwrap();
    }
    m.tick().unwrap();
    for t in [&t1, &t2] {
        let rec = m.process(&t.id()).unwrap();
        assert!(rec.finished && rec.all_in_time, "Case 1 for process {}", t.salt);
        for s in m.ccdi_settlements(&t.id()) {
            let sig = m.sign_settlement(&s, 0).unwrap();
            let chain = s.chain;
            let tx = m.sc_bg_call(chain, &relayer, "settle", &Settle { settlement: s, signature: sig }).unwrap();
            m.external_mut(chain).unwrap().submit(&tx).unwrap();
        }
    }
    m.tick().unwrap();
    let own =
        |idx: &[usize]| ccdi::run_app(CcdiApp::Battle, &idx.iter().map(|i| befores[*i].clone()).collect::<Vec<_>>());
    for (idx, want) in [([0usize, 2], own(&[0, 2])), ([1, 3], own(&[1, 3]))] {
        for (i, w) in idx.iter().zip(want) {
            let now = m.item(us[*i].chain, us[*i].item).unwrap();
            assert_eq!(now.data, w, "user {i} got its own process's outcome");
            assert!(now.lock.is_none() && now.owner == us[*i].key.address());
        }
    }
}

/// Durability: the BoB's SC_F record is all a relay node needs. After the
/// process is fixed on the BoB, every node stops; reopened from disk, the
/// settlements are derived again and the items update.
#[test]
fn a_restart_after_the_outcome_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (id, us, befores) = {
        let mut m = open(dir.path());
        let us = users(&mut m, &honest(2));
        let befores: Vec<Character> = us.iter().map(|u| m.item(u.chain, u.item).unwrap().data).collect();
        let t = m.ccdi_terms(CcdiApp::Battle, &us, DEPOSIT, 1, 21);
        let id = m.ccdi_prepare(&t, &us, &mut Default::default()).unwrap();
        let mut locks = Vec::new();
        for u in &us {
            let data = m.item(u.chain, u.item).unwrap().data;
            let tx = m.sc_bg_call(u.chain, &u.key, "lock", &Lock { process: id, item: u.item, data }).unwrap();
            m.external_mut(u.chain).unwrap().submit(&tx).unwrap();
            locks.push((u.clone(), tx));
        }
        m.ticks(2).unwrap();
        for (u, tx) in &locks {
            let cct = m.ccdi_cct_for(id, tx).unwrap().unwrap();
            let tx = m.bob_call(&u.key, "ccdi_cct", &cct, Amount::ZERO);
            m.bob.submit(&tx).unwrap();
        }
        m.tick().unwrap();
        assert!(m.process(&id).unwrap().finished);
        (id, us, befores)
        // Every chain and the relay node stop here.
    };
    let mut m = open(dir.path());
    assert!(m.process(&id).unwrap().finished, "the outcome survived the restart");
    for u in &us {
        assert!(m.item(u.chain, u.item).unwrap().lock.is_some(), "still locked before Phase 3");
    }
    let relayer = m.relayer.clone();
    for s in m.ccdi_settlements(&id) {
        let sig = m.sign_settlement(&s, 0).unwrap();
        let chain = s.chain;
        let tx = m.sc_bg_call(chain, &relayer, "settle", &Settle { settlement: s, signature: sig }).unwrap();
        assert_eq!(m.chain_run(chain, &tx).unwrap().status, TxStatus::Success);
    }
    let want = ccdi::run_app(CcdiApp::Battle, &befores);
    for (u, w) in us.iter().zip(want) {
        let now = m.item(u.chain, u.item).unwrap();
        assert_eq!(now.data, w);
        assert!(now.lock.is_none());
    }
}

/// The late-lock path for SC_BG items (attack R4-12): a CCT before the
/// process starts is refused as `ProcessNotStarted` (no longer the
/// misleading `RegistrationClosed`), `ccdi_late_lock` while the lock's
/// header is still kept as `RefundTooEarly`; once the header is gone a BoB
/// node sends it, the committee's settlement returns the item unchanged,
/// and a second `ccdi_late_lock` of the same lock is `AlreadyStored`. Each
/// refusal changes nothing.
#[test]
fn an_item_locked_too_early_comes_back_through_the_late_lock_path() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec { ccdi: true, kappa: 4, ..MbsSpec::default() }).unwrap();
    let [ca, cb, _] = chains3(&m);
    let (u, w) = (dev_key(0), dev_key(1));
    let item = m.create_item(ca, &u, "early", 5).unwrap();
    m.create_item(cb, &w, "rival", 7).unwrap();
    let t = CcdiTerms {
        app: CcdiApp::Battle,
        slots: vec![
            Slot { chain: ca, owner: u.address(), participant: u.address() },
            Slot { chain: cb, owner: w.address(), participant: w.address() },
        ],
        deposit: DEPOSIT,
        kappa: 1,
        start: m.bob.height() + 30,
        salt: 1412,
    };
    let id = t.id();
    let relayer = m.relayer.clone();
    m.bob_ok(&m.bob_call(&relayer, "ccdi_open", &t, Amount::ZERO)).unwrap();
    let data = m.item(ca, item).unwrap().data;
    let lock = m.sc_bg_call(ca, &u, "lock", &Lock { process: id, item, data: data.clone() }).unwrap();
    assert_eq!(m.chain_run(ca, &lock).unwrap().status, TxStatus::Success);
    let cct = m.ccdi_cct_for(id, &lock).unwrap().unwrap();
    let tx = m.bob_call(&u, "ccdi_cct", &cct, Amount::ZERO);
    let now = m.bob.height() + 1;
    assert_bob_refuses(&mut m, &tx, XchainError::ProcessNotStarted { start: t.start, now });
    let tx = m.ccdi_late_lock_tx(&u, id, &lock).unwrap();
    let (tip, kept) = (m.bob_tip(ca), m.spec.kept_headers());
    assert_bob_refuses(
        &mut m,
        &tx,
        XchainError::RefundTooEarly { chain: ca, height: cct.height, tip, refundable_at: cct.height + kept },
    );
    // The header leaves the BoB's window; a BoB node takes the late path.
    m.ticks(12).unwrap();
    let back = m.item(ca, item).unwrap();
    assert_eq!((back.owner, back.lock, back.data), (u.address(), None, data), "the item is back, unchanged");
    let tx = m.ccdi_late_lock_tx(&u, id, &lock).unwrap();
    assert_bob_refuses(&mut m, &tx, XchainError::AlreadyStored { chain: ca, item });
}

/// A relay catching up (attack R5-2) drops a lock's header two BoB blocks
/// after it became final; the participant's CCT, not sent in that window,
/// is sent by a BoB node against the accumulator of relayed headers
/// (`ccdi_cct_relayed`) and stored in its slot while the process runs, so
/// the participant is not eliminated for the relay's delay. A forged
/// header for it is refused and changes nothing.
#[test]
fn a_lock_whose_header_a_catching_up_relay_dropped_is_still_stored_in_its_slot() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path());
    let [ca, cb, _] = chains3(&m);
    let us = users(&mut m, &honest(3));
    let t = m.ccdi_terms(CcdiApp::Battle, &us, DEPOSIT, 20, 1502);
    let id = m.ccdi_prepare(&t, &us, &mut Default::default()).unwrap();
    let mut locks = Vec::new();
    for u in &us {
        let data = m.item(u.chain, u.item).unwrap().data;
        let lock = m.sc_bg_call(u.chain, &u.key, "lock", &Lock { process: id, item: u.item, data }).unwrap();
        m.external_mut(u.chain).unwrap().submit(&lock).unwrap();
        locks.push(lock);
    }
    // Chain A's relay is down for 12 epochs; chain A goes on.
    for _ in 0..12 {
        m.external_mut(ca).unwrap().tick().unwrap();
    }
    let a_height = m.ccdi_cct_for(id, &locks[0]).unwrap().unwrap().height;
    assert!(m.bob_tip(ca) < a_height);
    // The relay resumes; chain B's participant sends its CCT as usual,
    // chain A's two send nothing in time.
    let mut b_sent = false;
    let mut forged_checked = false;
    for _ in 0..100 {
        if m.process(&id).unwrap().finished {
            break;
        }
        if !forged_checked && m.bob_tip(ca) >= a_height + 4 {
            // The header is gone from the kept ones: a forged one with a
            // path does not get the lock stored.
            let cct = m.ccdi_cct_for(id, &locks[0]).unwrap().unwrap();
            let (mut header, header_proof) = m.header_path(ca, a_height).unwrap();
            header.receipt_root = Hash32([1; 32]);
            let args = ccdi::CcdiCctRelayed { cct: cct.clone(), header, header_proof };
            let tx = m.bob_call(&us[0].key, "ccdi_cct_relayed", &args, Amount::ZERO);
            assert_bob_refuses(&mut m, &tx, XchainError::BadHeaderProof { chain: ca, height: a_height });
            forged_checked = true;
            // The first participant's client sends it against the
            // accumulator itself; the second's is left to a BoB node.
            let filled = m.process(&id).unwrap().filled;
            let tx = m.ccdi_cct_call(&us[0].key, &cct).unwrap();
            assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success);
            assert_eq!(m.process(&id).unwrap().filled, filled + 1);
            continue;
        }
        if !b_sent {
            if let Some(cct) = m.ccdi_cct_for(id, &locks[2]).unwrap() {
                if m.bob_tip(cb) >= cct.height && m.bob.height() + 1 >= t.start {
                    m.bob_ok(&m.bob_call(&us[2].key, "ccdi_cct", &cct, Amount::ZERO)).unwrap();
                    b_sent = true;
                    continue;
                }
            }
        }
        m.tick().unwrap();
    }
    assert!(forged_checked);
    let rec = m.process(&id).unwrap();
    assert!(rec.finished && rec.all_in_time, "every slot stored in time: {rec:?}");
    assert!(rec.eliminated.is_empty(), "eliminated for the relay's delay: {:?}", rec.eliminated);
}
