//! Attack round 5 on the LBFT node engine (`consensus = "lbft"`): four
//! in-process validators on fault-injecting disks, links in memory.
//!
//! - [1] (high): the proposal queue cuts a batch to the validator's gas
//!   share by skipping a transaction that does not fit and taking later
//!   ones that do — including the *next nonce of the same sender*. That
//!   later transaction is delivered ahead of its predecessor, skipped at
//!   execution (nonce gap), and leaves the proposal queue as delivered,
//!   while the mempool keeps it (its nonce is the account's next one once
//!   the predecessor commits, so nothing prunes it). Nothing ever proposes
//!   it again; re-sending it is refused as already known, and every later
//!   transaction of the sender enters the mempool behind it, is proposed,
//!   delivered, skipped at execution (nonce gap) and gone: the account is
//!   frozen at that validator, by its own honest client, with no fault
//!   anywhere. The same loss from one Byzantine validator: it copies an
//!   honest client's next nonce, alone, out of the honest validator's
//!   `Val` into its own batch of the same epoch (delivered first); nonce
//!   `k + 1` is delivered there and skipped, suppressed as a duplicate in
//!   the honest batch, and stranded in the honest validator's mempool
//!   (`a_copied_next_nonce_does_not_freeze_the_account`, with a passing
//!   control where the same puppet proposes an empty batch). And with no
//!   adversary and no gas cut: a transaction above the validator's gas
//!   share is admitted, dropped from the proposal queue and kept in the
//!   mempool; its sender cannot even replace it
//!   (`a_transaction_above_the_gas_share_does_not_freeze_its_sender`).
//!   And behind a flooder: the proposal queue (bounded by the mempool's
//!   capacity) still holds what the mempool evicted, so a transaction the
//!   mempool admitted by outbidding is refused by the queue (`QueueFull`,
//!   only logged) and stranded the same way
//!   (`an_admitted_transaction_is_proposed_even_behind_a_full_queue`).
//!
//! Fixed: the proposal queue is the mempool (every transaction the mempool
//! holds is in the queue or in flight; a batch keeps each sender's nonce
//! order; what was delivered but not executed is proposed again while the
//! mempool holds it), a transaction above the gas share is refused at
//! submission (`SubmitError::GasLimitAboveShare`), and execution runs a
//! transaction delivered ahead of its predecessor in the same epoch right
//! after it. Run them with `cargo test -p gridledger-node --test attack_lbft_r5`.

mod common;
use common::lbft::{admit, committed, copied_next_nonce, nonce_of, tx, within, CopiedNonce, Net, Validator, N};
use gridledger_core::{Amount, Hash32};
use gridledger_ledger::devnet::{dev_genesis, dev_key, dev_validator, TRANSFER_GAS};
use gridledger_ledger::fault::SimDisk;
use gridledger_ledger::{ChainConfig, SubmitError, Transaction, TxKind};
use gridledger_node::lbft::LbftSettings;
use gridledger_node::validator::Input;
use std::sync::Arc;

/// [1] One batch is cut by gas: account 1's heavy transfer (over half of
/// the validator's share, `block_gas_limit / n`) fills it, account 0's
/// equally heavy nonce 0 does not fit and waits, and account 0's light
/// nonce 1 fits and goes first. Nonce 1 is delivered, skipped at execution
/// (nonce 0 is not committed yet) and dropped from the proposal queue;
/// nonce 0 commits an epoch or two later; nonce 1 stays in the mempool,
/// never proposed again — and so does every later transaction of account
/// 0 at this validator.
///
/// What should happen: every admitted transaction of account 0 commits
/// (a batch never takes a sender's transaction ahead of a predecessor it
/// leaves out, or a delivered transaction that did not execute is
/// proposed again while it is still pending).
#[test]
fn a_gas_cut_batch_never_strands_a_senders_next_nonce() {
    let share = ChainConfig::default().block_gas_limit / N as u64;
    let heavy = share / 2 + 1;
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let vs: Vec<Validator> = (0..N).map(|i| net.start(i, SimDisk::new())).collect();
    let filler = tx(1, 0, heavy);
    let first = tx(0, 0, heavy);
    let second = tx(0, 1, TRANSFER_GAS);
    let got = admit(&vs[0], &[filler, first, second.clone()]);
    assert!(got.iter().all(|r| r.is_ok()), "all three admitted: {got:?}");
    let hashes: Vec<Hash32> = got.into_iter().map(|r| r.unwrap()).collect();
    assert!(within(30, || committed(&vs[0], &hashes[0]) && committed(&vs[0], &hashes[1])), "the heavy ones commit");
    let second_done = within(15, || committed(&vs[0], &hashes[2]));
    // The account's next transaction, sent afterwards, at the same validator.
    let again = admit(&vs[0], std::slice::from_ref(&second));
    let third = admit(&vs[0], &[tx(0, 2, TRANSFER_GAS)]);
    let third_done = third[0].as_ref().ok().is_some_and(|h| within(15, || committed(&vs[0], h)));
    let nonce = nonce_of(&vs[0], 0);
    let pending = vs[0].node.shared.chain().mempool().len();
    for v in vs {
        v.node.shutdown();
    }
    assert!(
        second_done && third_done,
        "account 0's nonce 1 committed: {second_done}, its nonce 2 committed: {third_done}; account nonce {nonce}, \
         {pending} transactions stuck in the mempool; re-sending nonce 1: {again:?}"
    );
}

// ---- [1], Byzantine trigger: a copied next nonce ahead of its predecessor ---------
// (The puppet and the scenario: `common::lbft::copied_next_nonce`, shared with
// the LBFT scenarios of `mutants`.)

/// [1] with one Byzantine validator instead of a gas cut: an honest client
/// sends nonces 0 and 1 to validator 1, which proposes both. Validator 0
/// copies nonce 1 alone into its own batch of the same epoch (validator
/// 0's batch is delivered first): nonce 1 is delivered there, skipped at
/// execution (nonce gap), and in validator 1's batch suppressed as a
/// duplicate; nonce 0 commits. Validator 1's proposal queue counts nonce 1
/// as delivered, its mempool keeps it for ever: the account is frozen at
/// validator 1 — every later transaction of it is lost the same way.
///
/// What should happen: the client's nonce 1 (and its later ones) commit.
#[test]
fn a_copied_next_nonce_does_not_freeze_the_account() {
    let CopiedNonce { copied, second_done, third_done, nonce, .. } = copied_next_nonce(true, |_| {});
    assert!(copied, "the puppet saw validator 1's batch and copied nonce 1");
    assert!(
        second_done && third_done,
        "account 0's nonce 1 committed: {second_done}, its nonce 2 committed: {third_done}; account nonce {nonce}"
    );
}

/// Control for [1]'s Byzantine trigger: the same puppet proposing an empty
/// batch instead of the copy — every transaction of the account commits.
#[test]
fn control_the_puppet_without_the_copy_freezes_nothing() {
    let CopiedNonce { copied, second_done, third_done, nonce, .. } = copied_next_nonce(false, |_| {});
    assert!(!copied);
    assert!(second_done && third_done && nonce == 3, "{second_done} {third_done} nonce {nonce}");
}

/// [1], third trigger, no adversary at all: a transaction whose gas limit
/// is above the validator's share (`block_gas_limit / n`) but within the
/// block gas limit is admitted (the client gets its hash), can never be
/// proposed under LBFT and is dropped from the proposal queue — but the
/// mempool keeps it, as the account's next nonce, for ever. The client's
/// corrected transaction with the same nonce is refused (`NonceTooLow`:
/// the pool counts the stranded one as pending), and every later nonce
/// queues behind a transaction that will never commit.
///
/// What should happen: the heavy transaction is refused at submission
/// with its reason, or leaves the mempool with the queue, so the client's
/// corrected transaction commits.
#[test]
fn a_transaction_above_the_gas_share_does_not_freeze_its_sender() {
    let share = ChainConfig::default().block_gas_limit / N as u64;
    let dir = tempfile::tempdir().unwrap();
    let net = Net::new(dir.path());
    let vs: Vec<Validator> = (0..N).map(|i| net.start(i, SimDisk::new())).collect();
    let heavy = admit(&vs[0], &[tx(0, 0, share + 1)]);
    // Another account's transfer runs an epoch (the heavy one is dropped then).
    let other = admit(&vs[0], &[tx(1, 0, TRANSFER_GAS)]);
    let other_done = other[0].as_ref().ok().is_some_and(|h| within(30, || committed(&vs[0], h)));
    let fixed = admit(&vs[0], &[tx(0, 0, TRANSFER_GAS)]);
    let fixed_done = fixed[0].as_ref().ok().is_some_and(|h| within(15, || committed(&vs[0], h)));
    let nonce = nonce_of(&vs[0], 0);
    for v in vs {
        v.node.shutdown();
    }
    assert!(other_done, "the chain runs");
    assert!(
        matches!(heavy[0], Err(SubmitError::GasLimitAboveShare { share: s, .. }) if s == share),
        "the heavy transaction is refused at submission with its reason: {heavy:?}"
    );
    assert!(
        fixed_done,
        "heavy nonce 0: {heavy:?}; the corrected nonce 0: {fixed:?}, committed: {fixed_done}; account nonce {nonce}"
    );
}

// ---- [1], fourth trigger: a full proposal queue behind a full mempool ---------------

mod small_pool {
    //! Four LBFT validators as `common::lbft::Net` starts them, on a chain
    //! whose mempool (and so the LBFT proposal queue, bounded by the
    //! mempool's capacity) holds 8 transactions: what 200,000 would show,
    //! in a test that signs a dozen.
    use super::*;
    use gridledger_node::config::{write_key, ConsensusKind};
    use gridledger_node::lbft::deal_keys;
    use gridledger_node::validator::Transport;
    use gridledger_node::{Node, NodeConfig, NodeHandle};
    use rand::SeedableRng;
    use std::sync::mpsc::{channel, Sender};
    use std::sync::Mutex;

    pub const CAPACITY: usize = 8;

    struct Links {
        me: u32,
        inboxes: Arc<Vec<Mutex<Sender<Input>>>>,
    }

    impl Transport for Links {
        fn send(&self, to: u32, bytes: Vec<u8>) {
            if let Some(tx) = self.inboxes.get(to as usize) {
                let _ = tx.lock().unwrap().send(Input::Peer { from: self.me, bytes });
            }
        }
        fn broadcast(&self, bytes: Vec<u8>) {
            for to in (0..N as u32).filter(|&i| i != self.me) {
                self.send(to, bytes.clone());
            }
        }
    }

    pub fn network(dir: &std::path::Path) -> Vec<NodeHandle> {
        let keys: Vec<_> = (0..N).map(dev_validator).collect();
        let genesis = dev_genesis(1, 4, Amount(1_000_000_000), &keys);
        std::fs::write(dir.join("genesis.toml"), toml::to_string(&genesis).unwrap()).unwrap();
        let dealt = deal_keys(N, &mut rand_chacha::ChaCha20Rng::seed_from_u64(55)).unwrap();
        std::fs::write(dir.join("lbft-public.hex"), &dealt.public).unwrap();
        let (senders, receivers): (Vec<_>, Vec<_>) = (0..N).map(|_| channel::<Input>()).unzip();
        let inboxes = Arc::new(senders.into_iter().map(Mutex::new).collect::<Vec<_>>());
        let mut nodes = Vec::new();
        for (i, (key, inbox)) in keys.iter().zip(receivers).enumerate() {
            let home = dir.join(format!("validator-{i}"));
            std::fs::create_dir_all(&home).unwrap();
            write_key(&home.join("validator.key"), key).unwrap();
            std::fs::write(home.join("lbft.key"), &dealt.shares[i]).unwrap();
            let cfg = NodeConfig {
                data_dir: home.join("data"),
                genesis: dir.join("genesis.toml"),
                validator_key: home.join("validator.key"),
                rpc_listen: "127.0.0.1:0".into(),
                block_interval_ms: 20,
                chain: ChainConfig { mempool_capacity: CAPACITY, ..ChainConfig::default() },
                network: None,
                pbft: Default::default(),
                consensus: ConsensusKind::Lbft,
                lbft: LbftSettings {
                    key_shares: home.join("lbft.key"),
                    public_keys: dir.join("lbft-public.hex"),
                    tick_ms: 100,
                    ..LbftSettings::default()
                },
            };
            let disk = SimDisk::new();
            let store = gridledger_ledger::store::Store::open_backend(move || disk.backend()).unwrap();
            let tx = inboxes[i].lock().unwrap().clone();
            let links = Links { me: i as u32, inboxes: inboxes.clone() };
            let node = Node::open_with_store(&cfg, gridledger_contracts::default_registry(), Some(store))
                .unwrap()
                .spawn_lbft(Box::new(links), inbox, tx)
                .unwrap();
            nodes.push(node);
        }
        nodes
    }
}

/// [1], fourth trigger: the proposal queue is bounded by the mempool's
/// capacity, but it also holds transactions the mempool has evicted. A
/// flooder (account 1) fills the pool at the minimum gas price; an honest
/// client (account 0) outbids it: the pool evicts the flooder's last
/// transaction and admits the honest one (the client gets its hash) — but
/// the queue still holds all of the flooder's and refuses the honest one
/// (`QueueFull`, logged). The flooder's transactions all commit, the
/// honest one stays in the mempool, never proposed; its resubmission is
/// refused as already known, and its sender is frozen at that validator.
///
/// What should happen: a transaction the mempool admitted is proposed
/// (the queue and the pool agree on what is pending), or is refused at
/// submission; the honest transfer commits.
#[test]
fn an_admitted_transaction_is_proposed_even_behind_a_full_queue() {
    let dir = tempfile::tempdir().unwrap();
    let vs = small_pool::network(dir.path());
    let price = |from: usize, nonce: u64, p: u128| {
        Transaction {
            chain_id: 1,
            sender: dev_key(from).public(),
            nonce,
            gas_limit: TRANSFER_GAS,
            gas_price: Amount(p),
            kind: TxKind::Transfer { to: dev_key(3).address(), amount: Amount(1) },
        }
        .sign(&dev_key(from))
        .to_bytes()
    };
    let mut txs: Vec<Vec<u8>> = (0..small_pool::CAPACITY as u64).map(|k| price(1, k, 1)).collect();
    txs.push(price(0, 0, 2));
    let s = &vs[0].shared;
    let got = s.admit(txs.iter().map(|t| s.rules.check(t)).collect());
    assert!(got.iter().all(|r| r.is_ok()), "the pool admits all (the last one by eviction): {got:?}");
    let honest = got.last().unwrap().clone().unwrap();
    let flooder_last = got[small_pool::CAPACITY - 2].clone().unwrap();
    let at = |h: &Hash32| vs[0].shared.store.tx_location(h).ok().flatten().is_some();
    let flood_done = within(30, || at(&flooder_last));
    let honest_done = within(15, || at(&honest));
    let again = s.admit(vec![s.rules.check(txs.last().unwrap())]);
    for v in vs {
        v.shutdown();
    }
    assert!(flood_done, "the flooder's transactions commit");
    assert!(honest_done, "the honest, higher-paying transfer committed: {honest_done}; resubmitting it: {again:?}");
}
