//! Seventh attack round on the cross-chain protocols (issue 14): the
//! round-6 fixes (price-neutral LP shares, the genesis penalty floor, fork
//! choice below finality, one `fw/<id>` slot per CCT in sub-situation 2)
//! and the seams between them.
//!
//! Every test here is a finding: it asserts what a careful user would
//! expect and fails on the code it was written against. Each was marked
//! `#[ignore = "attack r7 [k]: ..."]` until fixed; all four are fixed (each
//! test's "Fixed:" says how) and run with the suite.

mod common;

use common::*;
use gridledger_core::crypto::KeyPair;
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::dev_key;
use gridledger_ledger::{BlockHeader, Seal, TxStatus};
use gridledger_xchain::bob::{keys, Relay};
use gridledger_xchain::headers::{Finality, SealedHeader};
use gridledger_xchain::mbs::{BobMbs, MbsSpec};

// ------------------------------------------------------------------- [1]

/// Whoever makes SC_AMM's opening join sets the pool's price for the
/// deployment's life, and anyone may make it.
///
/// Since R6-5 the price is the opening join's balances (`PriceRef` set
/// once, never moved by a later join or withdrawal). `provide` takes the
/// opening join from any caller holding 1,001 Token_B and one claimed unit
/// of every `Token_i` (Π_CCTC: a 1-unit lock to `TPK_Addr_i`). A deployment
/// opens its pool after `up`, in ordinary transactions (`xchain up`,
/// `BobMbs::provide_token_b`), so a stranger who joins first — here with
/// 1 Token_i against 1,000 Token_j — fixes the rate at 1 Token_i for 1,000
/// Token_j. The deployment's own liquidity (1,000,000 of each token at
/// 1:1) then joins *pro rata at the stranger's ratio* and cannot correct
/// it; the library's terms bound `x_i` around the quote, so honest
/// receivers sign that rate and a CCT executes with `x_i = 1` for
/// `x_j = 1,000`. The stranger can withdraw its shares at once (the price
/// does not move) and is out 1,000 locked shares' worth of dust. The same
/// opening with 1,000,000 Token_B against 1 Token_j makes `x_B` a million
/// times `x_j`: every CCT is refused `InsufficientDeposit` for ever.
///
/// Expected: the price of a pool whose liquidity is 1,000,000:1,000,000 of
/// Token_i:Token_j (all but 1 and 1,000 units of it the deployment's) is
/// about 1:1: a CCT for 1,000 Token_j prices `x_i` within 10 % of 1,000.
/// Observed: `x_i = 1`.
///
/// Suggested fix: fix the opening price in the genesis (`BobConfig`,
/// e.g. reference balances per token, as the penalty floor already is), or
/// let only the deployment's operator key make the opening join; in any
/// case never let an open method's first caller set a price that nothing
/// can move afterwards.
///
/// Fixed: the price is the genesis's (`BobConfig::reference_balances`);
/// the opening join only brings liquidity (`amm`'s "The genesis price").
#[test]
fn a_strangers_opening_join_fixes_the_rate_every_later_cct_is_priced_at() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    let [ci, cj] = chains2(&m);
    let stranger = dev_key(5);
    // The stranger: 1 Token_i, 1,000 Token_j (and 1,000 of any other chain's), 1,001 Token_B.
    for c in m.chain_ids() {
        let amount = if c == ci { 1 } else { 1_000 };
        m.provide_liquidity(&stranger, c, amount).unwrap();
    }
    m.provide_token_b(&stranger, 1_001).unwrap();
    // The deployment's liquidity: 1,000,000 of every token, 1:1.
    for c in m.chain_ids() {
        m.provide_liquidity(&provider(), c, LIQUIDITY).unwrap();
    }
    m.provide_token_b(&provider(), LIQUIDITY).unwrap();
    m.deposit_token_b(&sender(), DEPOSIT).unwrap();
    m.deposit_token_b(&receiver(), DEPOSIT).unwrap();
    m.tick().unwrap();
    let pool = |m: &BobMbs, t| m.bob_record::<u128>(&keys::pool(t)).unwrap_or(0);
    let (b_i, b_j) = (pool(&m, ci), pool(&m, cj));
    // An honest CCT through the library's terms (bounds around the quote).
    let (_, rec) = open_cct(&mut m, &request_between(ci, cj, 1_000, 1));
    assert!(
        (900..=1_100).contains(&rec.x_i),
        "the deployment provided 1,000,000 Token_i and 1,000,000 Token_j (pool now {b_i} : {b_j}), yet a CCT for \
         1,000 Token_j executed at x_i = {} Token_i (the stranger's opening price)",
        rec.x_i
    );
}

/// [1]'s other face: the opening join that prices Token_B a million times
/// above Token_j, withdrawn at once, leaves every CCT on the deployment
/// refused for good.
///
/// The stranger opens the pool with 1,000,000 Token_B against one unit of
/// every `Token_i` and withdraws all its shares in the next block: it gets
/// 999,000 Token_B back (the 1,000 locked shares' part stays), and the
/// price — set once by the opening join, moved by nothing — stays at
/// 1,000,000 Token_B per Token_j. `x_B` of a CCT for 1,000 Token_j is then
/// 10^9 Token_B and both deposits must exceed κ̄ · x_B: every CCT is
/// `InsufficientDeposit`, and the deployment's own 1:1 liquidity joining
/// afterwards changes nothing. CCTE is out of service for the price of
/// 1,000 Token_B.
///
/// Expected: after the deployment provides 1,000,000 of every token at
/// 1:1, a CCT for 1,000 Token_j between parties with 1,000,000 Token_B
/// deposits executes. Observed: it is refused (`InsufficientDeposit`).
///
/// Fixed: as above, the opening join's amounts do not set the price.
#[test]
fn a_strangers_withdrawn_opening_join_refuses_every_cct_for_good() {
    use gridledger_xchain::bob::WithdrawLiquidity;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    let [ci, cj] = chains2(&m);
    let stranger = dev_key(5);
    for c in m.chain_ids() {
        m.provide_liquidity(&stranger, c, 1).unwrap();
    }
    m.provide_token_b(&stranger, LIQUIDITY).unwrap();
    let shares: u128 = m.bob_record(&keys::lp(&stranger.address())).unwrap();
    let w = m.bob_call(&stranger, "withdraw_liquidity", &WithdrawLiquidity { shares }, Amount::ZERO);
    m.bob_ok(&w).unwrap();
    // All but the locked shares' 1,000 Token_B went back to the stranger.
    let left: u128 = m.bob_record(&keys::pool(m.bob.chain_id())).unwrap();
    assert_eq!(left, 1_000, "Token_B left in the pool by the stranger");
    for c in m.chain_ids() {
        m.provide_liquidity(&provider(), c, LIQUIDITY).unwrap();
    }
    m.provide_token_b(&provider(), LIQUIDITY).unwrap();
    m.deposit_token_b(&sender(), DEPOSIT).unwrap();
    m.deposit_token_b(&receiver(), DEPOSIT).unwrap();
    m.tick().unwrap();
    let req = request_between(ci, cj, 1_000, 1);
    let terms = m.terms(&req).unwrap();
    let tx = m.cct_tx(&req.sender, &req.receiver, terms);
    let r = m.bob_exec(&tx).unwrap();
    assert_eq!(
        r.status,
        TxStatus::Success,
        "a CCT for 1,000 Token_j after the deployment's 1:1 liquidity joined (quote x_B = {:?})",
        m.quote(1_000, m.bob.chain_id(), cj)
    );
}

// ------------------------------------------------------------------- [2]

/// A header of chain `J` at `parent.height + 1`, signed by the validator
/// the round-robin schedule names for that height (the development
/// deployment's validator keys come from public seeds).
fn forged_on(m: &BobMbs, parent: &BlockHeader, tag: u8) -> SealedHeader {
    let n = m.spec.validators as u64;
    let height = parent.height + 1;
    let leader = KeyPair::from_seed(&format!("gridledger-xchain-{J}-validator-{}", height % n));
    let header = BlockHeader {
        chain_id: J,
        height,
        parent: parent.hash(),
        timestamp: parent.timestamp + 1,
        proposer: leader.public(),
        tx_root: Hash32([tag; 32]),
        receipt_root: Hash32([tag; 32]),
        state_root: parent.state_root,
        gas_used: 0,
        tx_count: 0,
    };
    let seal = Seal::Single { signature: leader.sign(&header.hash()) };
    SealedHeader { header, seal }
}

/// One equivocating proposer freezes the BoB's view of a probabilistic
/// chain for good again, once the relayer is 64 headers behind and the
/// chain keeps κ_i − k ≥ 128 (e.g. `xchain up --probabilistic 2 --kappa
/// 160`, both within the CLI's ranges).
///
/// R6-5's fix makes the relayers send "the chain's branch from the fork
/// point, in one relay once longer". Both relayers (`BobMbs::relay_txs`,
/// the CLI's `procs` epoch) build that branch up to `min(chain height,
/// stored tip + relay_per_block)` and *skip the chain* when it would be 64
/// headers or more (`MAX_RELAY_BATCH`) — instead of sending the first 64,
/// which already end above the stored tip and so win the fork. With
/// `relay_per_block = (κ_i − k)/2 ≥ 64` and the chain ≥ 64 headers ahead of
/// the BoB (the BoB or the relayer down for a few minutes, or the chain
/// simply catching up), the branch is always ≥ 64 long, so the relayer
/// skips the chain every epoch while the chain grows one header an epoch:
/// the BoB's stored tip stays on the forged header for ever, and every CCT,
/// lock and CCDI item on that chain is frozen as in R6-2.
///
/// Expected: the BoB follows chain J again within a few epochs.
/// Observed: the stored tip stays at the forged height.
///
/// Suggested fix: send the branch from the fork point truncated to
/// `MAX_RELAY_BATCH` headers (it only needs to end above the stored tip),
/// then continue from its end in later relays as usual.
///
/// Fixed: both relayers send the branch's first `MAX_RELAY_BATCH` headers
/// and go on from their end.
#[test]
fn a_fork_met_while_catching_up_freezes_the_bobs_view_for_good() {
    let dir = tempfile::tempdir().unwrap();
    let spec = MbsSpec { finality: Finality::Probabilistic { k: 2 }, kappa: 160, ..MbsSpec::fixed_ids() };
    let mut m = setup(dir.path(), spec);
    m.wait_caught_up(&[J]).unwrap();
    let tip = m.bob_tip(J);
    let parent = m.external(J).unwrap().sealed_header(tip).unwrap().unwrap().header;
    // The proposer scheduled for tip + 1 relays a block of its own there.
    let forged = forged_on(&m, &parent, 9);
    let attacker = dev_key(5);
    let tx = m.bob_call(&attacker, "relay", &Relay { chain: J, headers: vec![forged] }, Amount::ZERO);
    assert_eq!(bob_only(&mut m, &tx).status, TxStatus::Success, "the forged header extends the stored tip");
    // The chain goes on along its own block; the BoB falls 70 headers behind.
    for _ in 0..70 {
        m.external_mut(J).unwrap().tick().unwrap();
    }
    // Then every party behaves: 40 epochs of relays.
    m.ticks(40).unwrap();
    let (now, now_hash): (u64, Hash32) = m.bob_record(&keys::tip(J)).unwrap();
    let chain_height = m.external(J).unwrap().height();
    let ours = m.external(J).unwrap().sealed_header(now).unwrap().map(|s| s.header.hash());
    assert!(
        now > tip + 10 && ours == Some(now_hash),
        "chain J is at height {chain_height}; the BoB's stored tip is {now} (forged header at {}), on chain J's own \
         branch: {}",
        tip + 1,
        ours == Some(now_hash)
    );
}

// ------------------------------------------------------------------- [4]

/// Terms a receiver signs while SC_AMM has no price carry open bounds
/// (`[1, u128::MAX]` on `x_i`); the sender opens the pool at a price of its
/// own and executes them within their 16-block window.
///
/// `BobMbs::x_i_bounds` (attack R4-6) leaves the bounds open "without a
/// quote (an empty pool): the CCT cannot be priced either". Since R6-5 the
/// pool's price is set by whoever makes the opening join, at once (from
/// the next block on) and for good — so between the receiver's signature
/// and the CCT the sender itself can open the pool: 1,001 Token_B, 1 claimed
/// Token_i, 1,000 claimed Token_j. The CCT then executes at `x_i = 1`
/// Token_i for the receiver's 1,000 Token_j, within bounds the receiver
/// signed (the penalty floor bounds only `x_B`).
///
/// Expected: terms built or signed without a price never execute at a
/// price the receiver did not see (the library refuses to build them, or
/// SC_T refuses open bounds). Observed: the CCT executes with `x_i = 1`.
///
/// Suggested fix: `terms` fails without a quote (no open bounds at all),
/// and/or fix the opening price in the genesis (finding [1]).
///
/// Fixed: both. SC_T refuses open bounds (`OpenRateBounds`) and the
/// library builds none: `BobMbs::try_terms` and (since round 8)
/// `BobMbs::terms` refuse without a quote (`NoQuote`), so the receiver
/// here signs terms its own client drew up with open bounds.
#[test]
fn terms_signed_before_the_pool_opens_execute_at_the_senders_opening_price() {
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    let [ci, cj] = chains2(&m);
    m.deposit_token_b(&sender(), DEPOSIT).unwrap();
    m.deposit_token_b(&receiver(), DEPOSIT).unwrap();
    // The sender holds claimed Token_i and Token_j (no join yet: no price).
    let s = sender();
    for c in m.chain_ids() {
        let amount = if c == ci { 1 } else { 1_000 };
        m.provide_liquidity(&s, c, amount).unwrap();
    }
    // The receiver agrees while the pool is empty.
    let req = request_between(ci, cj, 1_000, 1);
    assert!(m.quote(1_000, ci, cj).is_err(), "no price yet");
    let terms = match m.terms(&req) {
        Err(gridledger_xchain::mbs::MbsError::NoQuote(_)) => gridledger_xchain::CctTerms {
            deployment: m.config.deployment,
            chain_i: ci,
            chain_j: cj,
            sender_i: s.address(),
            sender_j: s.address(),
            sender_b: s.address(),
            receiver_i: receiver().address(),
            receiver_j: receiver().address(),
            receiver_pk: receiver().public(),
            x_j: 1_000,
            min_x_i: 1,
            max_x_i: u128::MAX,
            min_x_b: m.x_b_floor(&req),
            expires_at: m.bob.height() + gridledger_xchain::bob::PRICE_WINDOW,
            salt: 1,
            nonce_i: m.external(ci).unwrap().wallet_next_nonce(&s.address()),
            nonce_j: m.external(cj).unwrap().wallet_next_nonce(&receiver().address()),
        },
        got => panic!("terms without a quote: {got:?}"),
    };
    // The sender opens the pool at its own price, then sends the CCT.
    m.provide_token_b(&s, 1_001).unwrap();
    m.tick().unwrap();
    assert!(m.bob.height() <= terms.expires_at, "still within the terms' window");
    let tx = m.cct_tx(&req.sender, &req.receiver, terms.clone());
    let r = m.bob_exec(&tx).unwrap();
    let x_i = m.cct(&terms.id()).map(|rec| rec.x_i);
    assert!(
        r.status != TxStatus::Success,
        "terms signed with x_i bounds [{}, {}] while the pool had no price executed at x_i = {x_i:?} Token_i for \
         1,000 Token_j",
        terms.min_x_i,
        terms.max_x_i
    );
}

/// [4]'s fix, each layer alone: without a quote `try_terms` and `terms`
/// build no terms (`NoQuote`) and `x_i_bounds` has none; SC_T refuses bounds that
/// bound nothing — `[1, u128::MAX]` and `[0, x]` — with `OpenRateBounds`,
/// even once the pool is open and the price inside them, and changes
/// nothing; the same terms with the library's bounds execute.
#[test]
fn terms_without_a_quote_are_not_built_and_open_bounds_are_refused() {
    use gridledger_xchain::mbs::MbsError;
    use gridledger_xchain::XchainError;
    let dir = tempfile::tempdir().unwrap();
    let mut m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    let [ci, cj] = chains2(&m);
    m.deposit_token_b(&sender(), DEPOSIT).unwrap();
    m.deposit_token_b(&receiver(), DEPOSIT).unwrap();
    let req = request_between(ci, cj, 1_000, 1);
    assert!(matches!(m.try_terms(&req), Err(MbsError::NoQuote(_))), "terms without a quote");
    assert!(matches!(m.terms(&req), Err(MbsError::NoQuote(_))), "`terms` builds no open bounds either");
    assert!(m.x_i_bounds(&req).is_err(), "bounds without a quote");
    for c in m.chain_ids() {
        m.provide_liquidity(&provider(), c, LIQUIDITY).unwrap();
    }
    m.provide_token_b(&provider(), LIQUIDITY).unwrap();
    m.tick().unwrap();
    let terms = m.try_terms(&req).unwrap();
    assert!(terms.min_x_i <= 1_000 && 1_000 <= terms.max_x_i && terms.max_x_i < 2_000);
    let mut open = terms.clone();
    (open.min_x_i, open.max_x_i) = (1, u128::MAX);
    let tx = m.cct_tx(&req.sender, &req.receiver, open);
    assert_refused(&mut m, &tx, XchainError::OpenRateBounds { min: 1, max: u128::MAX });
    let mut zero = terms.clone();
    zero.min_x_i = 0;
    let tx = m.cct_tx(&req.sender, &req.receiver, zero);
    assert_refused(&mut m, &tx, XchainError::OpenRateBounds { min: 0, max: terms.max_x_i });
    let tx = m.cct_tx(&req.sender, &req.receiver, terms.clone());
    assert_eq!(m.bob_exec(&tx).unwrap().status, TxStatus::Success);
    assert_eq!(m.cct(&terms.id()).map(|r| r.x_i), Some(1_000));
}

/// [1]'s fix at the configuration: a genesis without exactly one positive
/// reference balance per token of the pool, with one for a token the pool
/// does not hold, or whose price of `x_B` lies below a chain's penalty
/// floor is refused.
#[test]
fn a_genesis_price_that_is_missing_or_below_the_floor_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let m = BobMbs::open(dir.path(), MbsSpec::default()).unwrap();
    let token_b = m.bob.chain_id();
    let [_, cj] = chains2(&m);
    assert!(m.config.validate().is_ok());
    let mut missing = m.config.clone();
    missing.reference_balances.retain(|(t, _)| *t != cj);
    assert!(missing.validate().unwrap_err().contains("0 reference balances"));
    let mut twice = m.config.clone();
    twice.reference_balances.push((cj, 5));
    assert!(twice.validate().unwrap_err().contains("2 reference balances"));
    let mut zero = m.config.clone();
    zero.reference_balances.iter_mut().filter(|(t, _)| *t == cj).for_each(|(_, b)| *b = 0);
    assert!(zero.validate().unwrap_err().contains("positive"));
    let mut stray = m.config.clone();
    stray.reference_balances.push((999, 5));
    assert!(stray.validate().unwrap_err().contains("does not hold"));
    // Token_B at 100 times the others' price: x_B = x_j / 100, below the floor x_j / 10.
    let mut dear = m.config.clone();
    dear.reference_balances.iter_mut().filter(|(t, _)| *t == token_b).for_each(|(_, b)| *b /= 100);
    assert!(dear.validate().unwrap_err().contains("below its penalty floor"));
}
