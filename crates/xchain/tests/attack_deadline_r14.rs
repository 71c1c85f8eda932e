//! Fourteenth attack round on the cross-chain protocols (issue 14): the
//! NTs' own deadline (`TxKind::TransferUntil`, `BobConfig::nt_valid_until`,
//! attack R12-4's fix) against sub-situation 2's forwarding window, which
//! SC_T still counts from the chains' stored tips when the first CCT_V
//! runs (`forward_*`).
//!
//! Every finding here asserts what a careful user would expect and fails
//! on the code it was written against; each is marked
//! `#[ignore = "attack r14 [k]: ..."]` until it is fixed. Tests without the
//! mark held up.

mod common;

use common::*;
use gridledger_core::Amount;
use gridledger_ledger::devnet::transfer;
use gridledger_xchain::bob::{CctV, PostNt};
use gridledger_xchain::mbs::MbsSpec;
use gridledger_xchain::{Side, SideState};

// ------------------------------------------------------------------- [1]

/// What [`offline_payer`] saw.
#[derive(Debug)]
struct Forwarded {
    /// The sender's side at the end.
    sender: SideState,
    /// Chain i's height when the first CCT_V ran, the NT's deadline (if
    /// it has one) and the sender's forwarding deadline `forward_i`.
    tip_i_at_cct_v: u64,
    valid_until: Option<u64>,
    forward_i: u64,
    /// Where NT_s landed on chain i, if it did.
    landed: Option<u64>,
    /// The sender's deposit (free + locked) before and after.
    deposit: (u128, u128),
}

/// Sub-situation 2 as attack R8-3's decision describes it: the sender S
/// posts its NT on the BoB in time and goes offline before it reaches
/// chain i (a driver killed between posting and sending, a validator that
/// crashed holding it), trusting the BoB nodes to forward it after CCT_V.
/// Chain i seals `i_per_epoch` blocks for each block of chain j and the
/// BoB (heterogeneous chains: chain i has the shorter block interval).
/// The receiver R pays and proves honestly on chain j. `plain`: S's NT is
/// an ordinary transfer (as NTs were before deadlines; SC_MPV still takes
/// them) instead of the driver's deadline NT.
fn offline_payer(i_per_epoch: u64, plain: bool) -> Forwarded {
    let dir = tempfile::tempdir().unwrap();
    let mut m = setup(dir.path(), MbsSpec::default());
    let [ci, cj] = chains2(&m);
    let s = sender();
    let (id, rec) = open_cct(&mut m, &request_between(ci, cj, 400, 1401));
    m.wait_native_window(&rec).unwrap();
    receiver_pays_and_proves(&mut m, id, &rec);
    let nt_s = if plain {
        let c = m.external(ci).unwrap();
        let (_, _, to, amount) = rec.instruction(Side::Sender);
        c.sign(&s, transfer(&s, ci, rec.agreed_nonce(Side::Sender), to, Amount(amount), Amount(1)))
    } else {
        m.native_tx(&rec, Side::Sender, &s).unwrap()
    };
    let valid_until = nt_s.tx.kind.valid_until();
    // Posted on the BoB; it never reached chain i (S is offline now).
    let post = m.bob_call(&s, "post_nt", &PostNt { cct: id, side: Side::Sender, nt: nt_s.clone() }, Amount::ZERO);
    m.bob_ok(&post).unwrap();
    let before = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let mut tip_i_at_cct_v = 0;
    for _ in 0..400 {
        let rec = m.cct(&id).unwrap();
        if rec.complete {
            break;
        }
        if !rec.verified && m.bob_tip(ci) >= rec.deadline_i && m.bob_tip(cj) >= rec.deadline_j {
            // An honest BoB node's first CCT_V, as soon as both deadlines passed.
            tip_i_at_cct_v = m.bob_tip(ci);
            let relayer = m.relayer.clone();
            let _ = m.bob_exec(&m.bob_call(&relayer, "cct_v", &CctV { cct: id }, Amount::ZERO)).unwrap();
            continue;
        }
        for _ in 1..i_per_epoch {
            m.external_mut(ci).unwrap().tick().unwrap();
        }
        m.tick().unwrap();
    }
    let end = m.cct(&id).unwrap();
    assert!(end.complete, "settled: {end:?}");
    let after = m.deposit(&s.address()).free + m.deposit(&s.address()).locked;
    let landed = m.external(ci).unwrap().tx_proof(&nt_s.hash()).unwrap().map(|(h, _)| h);
    Forwarded {
        sender: end.sender,
        tip_i_at_cct_v,
        valid_until,
        forward_i: end.forward_i,
        landed,
        deposit: (before, after),
    }
}

/// R12-4's fix gives each NT the deadline `nt_valid_until`: the last
/// provable landing for "the earliest forwarding deadline the CCT can
/// get", `deadline_i + κ̄ + κ − k`. But SC_T sets the forwarding deadline
/// from chain i's stored tip *when the first CCT_V runs*, and that CCT_V
/// waits for both chains' deadlines: when chain i is the faster chain
/// (here 3 blocks per block of chain j), chain i is far past `deadline_i`
/// when it runs. The BoB nodes forward S's posted NT for sub-situation 2
/// (their `still_provable` still counts to `forward_i − k`), but chain i
/// refuses it (`Expired`): its deadline passed even before CCT_V opened
/// sub-situation 2. S — who posted in time and relied on the forwarding
/// the protocol promises (R8-3) — is penalised x_B at the closing CCT_V.
/// With an ordinary transfer as NT (the rule before R12-4's fix, still
/// taken by SC_MPV, see the control below) the same payment is forwarded,
/// lands and is proved.
///
/// Expected: a posted NT the BoB nodes forward inside SC_T's forwarding
/// window can land (its deadline is at least `forward_i − k`, e.g. the
/// window counted from the NT's deadline, or CCT_V refused / forwarding
/// closed once the NT's deadline passed) and S's side ends `Proved`.
/// Observed: S `Penalised`, NT_s never on chain i, `valid_until` below
/// chain i's height at CCT_V.
#[test]
#[ignore = "attack r14 [1]: on a faster chain the NT's deadline passes before the first CCT_V; forwarded NT refused, honest payer penalised"]
fn a_posted_payment_on_the_faster_chain_is_still_landable_when_sub_situation_2_opens() {
    let f = offline_payer(3, false);
    eprintln!("{f:?}");
    assert!(f.valid_until.is_some(), "the driver's NT carries a deadline");
    assert!(matches!(f.sender, SideState::Proved { .. }), "S posted in time and the BoB nodes forwarded its NT: {f:?}");
    assert_eq!(f.deposit.0, f.deposit.1, "S's deposit: {f:?}");
}

/// Held up (control of [1]): with chains of one speed, the posted NT the
/// BoB nodes forward after CCT_V lands and is proved.
#[test]
fn a_posted_payment_forwarded_on_chains_of_one_speed_is_proved() {
    let f = offline_payer(1, false);
    eprintln!("{f:?}");
    assert!(matches!(f.sender, SideState::Proved { .. }), "{f:?}");
    assert!(f.landed.is_some_and(|h| f.valid_until.is_some_and(|u| h <= u)), "{f:?}");
    assert_eq!(f.deposit.0, f.deposit.1);
}

/// Held up (control of [1]): the same scenario on the faster chain with an
/// ordinary transfer as NT (no deadline): forwarded after CCT_V, it lands
/// inside `forward_i − k` and is proved — the deadline alone makes [1]
/// penalise.
#[test]
fn a_plain_posted_payment_on_the_faster_chain_is_proved() {
    let f = offline_payer(3, true);
    eprintln!("{f:?}");
    assert!(f.valid_until.is_none());
    assert!(matches!(f.sender, SideState::Proved { .. }), "{f:?}");
    assert!(f.landed.is_some_and(|h| h <= f.forward_i), "{f:?}");
    assert_eq!(f.deposit.0, f.deposit.1);
}
