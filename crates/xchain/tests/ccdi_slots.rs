//! The CCDI slot bound (issue 14, §5.5): the last CCT (Case 1) and
//! `ccdi_finish` (Case 2) fix the outcome of every slot in one BoB
//! transaction, so a process may have only as many slots as that
//! transaction's gas limit (`BOB_TX_GAS`) pays for at their worst
//! (`ccdi::outcome_gas`); at 512 slots with 32-byte names it needed ~33M
//! gas of 20M and every locked item stayed locked. The largest allowed
//! process, every slot its own participant and every name 32 bytes,
//! finishes in Case 1 and in Case 2; one slot more is refused at open.

use gridledger_core::{Address, Amount};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::TxStatus;
use gridledger_xchain::ccdi::{outcome_gas, register_gas, CcdiApp, CcdiTerms, Slot, MAX_SLOTS};
use gridledger_xchain::ccdi_run::{CcdiAttack, CcdiUser, ItemFate, UserBehaviour};
use gridledger_xchain::mbs::{BobMbs, MbsSpec, BOB_TX_GAS};
use gridledger_xchain::scbg::{Create, MAX_NAME};
use gridledger_xchain::XchainError;

const DEPOSIT: u128 = 10_000;

fn open(dir: &std::path::Path, users: usize) -> BobMbs {
    BobMbs::open(dir, MbsSpec { chains: 2, ccdi: true, kappa: 4, users, ..MbsSpec::default() }).expect("open")
}

/// `n` users (dev keys 0..n), alternating between the two chains, each
/// creating one character with a 32-byte name in one block per chain.
fn worst_case_users(m: &mut BobMbs, n: usize, behaviour: impl Fn(usize) -> UserBehaviour) -> Vec<CcdiUser> {
    let chains = m.chain_ids();
    let mut sent = Vec::new();
    for x in 0..n {
        let key = dev_key(x);
        let chain = chains[x % 2];
        let name = format!("{x:z>width$}", width = MAX_NAME);
        assert_eq!(name.len(), MAX_NAME);
        let tx = m.sc_bg_call(chain, &key, "create", &Create { name, attack: (x as u64 * 37) % 1_000 }).unwrap();
        sent.push((x, chain, m.external_mut(chain).unwrap().submit(&tx).unwrap()));
    }
    m.tick().unwrap();
    sent.into_iter()
        .map(|(x, chain, h)| {
            let r = m.external(chain).unwrap().receipt(&h).unwrap().expect("create included");
            assert_eq!(r.status, TxStatus::Success);
            let item = u64::from_le_bytes(r.output.try_into().unwrap());
            CcdiUser { key: dev_key(x), chain, item, behaviour: behaviour(x) }
        })
        .collect()
}

#[test]
fn the_bound_is_the_most_slots_whose_worst_case_outcome_fits_one_bob_transaction() {
    let fits = (1..=512).take_while(|n| outcome_gas(*n) <= BOB_TX_GAS).last();
    assert_eq!(fits, Some(MAX_SLOTS));
    assert!((64..512).contains(&MAX_SLOTS), "the bound leaves room for real processes: {MAX_SLOTS}");
    let slots: Vec<usize> = (1..=MAX_SLOTS).collect();
    assert!(slots.iter().all(|n| register_gas(*n) < BOB_TX_GAS), "every registration fits a BoB transaction");
}

#[test]
fn a_process_one_slot_above_the_bound_is_refused_at_open() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path(), 4);
    let chain = m.chain_ids()[0];
    let terms = |m: &BobMbs, n: usize| CcdiTerms {
        app: CcdiApp::Battle,
        slots: (0..n)
            .map(|k| {
                let mut a = [0x11u8; 20];
                a[..8].copy_from_slice(&(k as u64).to_le_bytes());
                Slot { chain, owner: Address(a), participant: Address(a) }
            })
            .collect(),
        deposit: DEPOSIT,
        kappa: 1,
        start: m.bob.height() + 5,
        salt: n as u64,
    };
    let relayer = m.relayer.clone();
    let over = terms(&m, MAX_SLOTS + 1);
    let before = m.bob_contract_state();
    // The BoB alone runs the open (no relays in the same block).
    let tx = m.bob_call(&relayer, "ccdi_open", &over, Amount::ZERO);
    let h = m.bob.submit(&tx).expect("admitted");
    m.bob.tick().unwrap();
    let r = m.bob.receipt(&h).unwrap().expect("included");
    let err = XchainError::TooManySlots { slots: MAX_SLOTS + 1, max: MAX_SLOTS };
    assert_eq!(r.status, TxStatus::Reverted(err.as_revert()), "expected the refusal {err}");
    assert_eq!(m.bob_contract_state(), before, "the refused open changed nothing");
    assert!(m.process(&over.id()).is_none());
    // The bound itself opens.
    let at = terms(&m, MAX_SLOTS);
    m.bob_ok(&m.bob_call(&relayer, "ccdi_open", &at, Amount::ZERO)).expect("the largest process opens");
    assert_eq!(m.process(&at.id()).unwrap().terms.slots.len(), MAX_SLOTS);
}

/// Case 1 at the bound: every slot a participant of its own (one deposit
/// paid back each), every name 32 bytes; the registrations take more than
/// one BoB block, and the last CCT fixes all `MAX_SLOTS` outcomes.
#[test]
fn the_largest_process_with_worst_case_names_finishes_in_case_1() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path(), MAX_SLOTS);
    let us = worst_case_users(&mut m, MAX_SLOTS, |_| UserBehaviour::Honest);
    assert!(m.registration_blocks(MAX_SLOTS as u64, MAX_SLOTS) > 1, "registrations span blocks at the bound");
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), DEPOSIT, 4, 1).expect("the process finishes");
    assert!(rep.case1 && rep.record.finished, "Case 1");
    assert_eq!(rep.record.filled as usize, MAX_SLOTS);
    assert!(rep.record.registered.iter().all(|r| *r), "every registration landed before the start");
    for (u, o) in us.iter().zip(&rep.items) {
        assert_eq!(o.fate, ItemFate::Updated);
        let now = m.item(u.chain, u.item).unwrap();
        assert!(now.lock.is_none() && now.owner == u.key.address(), "item {} back with its owner", u.item);
    }
    let contract = gridledger_ledger::contract_address(gridledger_xchain::BOB_CONTRACT_ID);
    assert_eq!(m.bob.account(&contract).balance.0, 0, "every deposit paid back");
}

/// Case 2 at the bound: one participant withholds; after the deadline
/// `ccdi_finish` fixes the others' outcomes and eliminates it, within the
/// gas bound the open checked.
#[test]
fn the_largest_process_with_worst_case_names_finishes_in_case_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = open(dir.path(), MAX_SLOTS);
    let last = MAX_SLOTS - 1;
    let us =
        worst_case_users(
            &mut m,
            MAX_SLOTS,
            |x| if x == last { UserBehaviour::Withhold } else { UserBehaviour::Honest },
        );
    let rep = m.run_ccdi(CcdiApp::Battle, &us, &CcdiAttack::default(), DEPOSIT, 1, 2).expect("the process finishes");
    assert!(!rep.case1 && rep.record.finished, "Case 2");
    assert_eq!(rep.eliminated, 1);
    let finish = rep.gas["finish"];
    assert!(finish <= outcome_gas(MAX_SLOTS), "ccdi_finish used {finish}");
    assert!(finish > BOB_TX_GAS / 2, "the outcome at the bound is the heavy case it guards: {finish}");
    for (u, o) in us.iter().zip(&rep.items).take(last) {
        assert_eq!(o.fate, ItemFate::Updated);
        assert!(m.item(u.chain, u.item).unwrap().lock.is_none());
    }
}
