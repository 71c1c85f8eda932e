//! An in-memory driver: two [`ChannelMachine`]s, a lossless in-order
//! message queue between them, "disks" holding their persisted
//! [`ChannelStore`] bytes, and a chain running the CNS contract, reached
//! only through [`ChainClient`] (a [`DevChain`] by default; any client that
//! serves raw contract state works).
//! Tests use it to run the channel protocol end to end, crash and restart
//! parties, silence them and inject adversarial transactions.

use crate::machine::*;
use gridledger_contracts::cns::credit::{
    esc_open_args, msc_init_args, ApplicantHistory, CollateralRatio, CreditApplication, MerchantDesk,
};
use gridledger_contracts::cns::{self, derive_cid, EscInit, Funding, RegisterMerchant};
use gridledger_contracts::{args, CNS_ID};
use gridledger_core::codec::{decode, encode};
use gridledger_core::{Address, Amount, Hash32, KeyPair};
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_ledger::{ChainClient, Receipt, StateRead, TxStatus};
use std::collections::VecDeque;

/// One party as the driver runs it.
pub struct Party {
    /// The account that sends transactions and receives payouts.
    pub account: KeyPair,
    pub esc_key: KeyPair,
    pub nonce_seed: [u8; 32],
    pub params: ChannelParams,
    /// `None` while crashed.
    pub machine: Option<ChannelMachine>,
    /// The last durably persisted snapshot.
    pub disk: Option<Vec<u8>>,
    pub inbox: VecDeque<Vec<u8>>,
    pub chain_inbox: VecDeque<ChainEvent>,
    /// A silent party neither receives nor sends.
    pub silent: bool,
    /// If set, the next persist request crashes the party instead.
    pub crash_before_persist: bool,
    /// If set, the persist request after this many more crashes the party
    /// (0: the next one), instead of being written.
    pub crash_after_persists: Option<u32>,
    /// The next this many transactions the party sends are lost (its node
    /// is down or drops them).
    pub drop_txs: u32,
    /// Every `(counter, hstate)` this party's signatures went out on.
    pub signed: Vec<(u64, Hash32)>,
    pub events: Vec<ChannelEvent>,
}

/// Gas of one submitted CNS call.
#[derive(Clone, Debug)]
pub struct GasEntry {
    pub method: String,
    pub gas: u64,
    pub success: bool,
    /// Who sent it and the fee it paid.
    pub sender: Address,
    pub fee: Amount,
}

/// Two parties, their merchant and the chain.
pub struct Duo<C: ChainClient = DevChain> {
    pub chain: C,
    pub merchant: MerchantDesk<CollateralRatio>,
    pub parties: [Party; 2],
    pub sids: [u64; 2],
    pub scid: Hash32,
    pub cid: Hash32,
    pub gas: Vec<GasEntry>,
    pub fees: Amount,
    /// Total coin at the start, and the validator's balance then.
    pub initial_total: u128,
    pub initial_validator: u128,
}

/// Options for [`Duo::setup`].
#[derive(Clone, Debug)]
pub struct DuoConfig {
    pub capacity: [Amount; 2],
    /// Fund this side with a merchant-signed credit note instead of a deposit.
    pub credit: [bool; 2],
    pub t_delta_ms: u64,
    pub credit_limit: Amount,
    pub merchant_pool: Amount,
    pub collateral_lock_ms: u64,
    pub billing_period_ms: u64,
    pub dispute_limit: u32,
    pub retry_ms: u64,
    pub close_timeout_ms: u64,
    /// Each party's proposal window ([`ChannelParams::window`]).
    pub window: usize,
}

impl Default for DuoConfig {
    fn default() -> Self {
        Self {
            capacity: [Amount(100_000), Amount(100_000)],
            credit: [false, false],
            t_delta_ms: 10_000,
            credit_limit: Amount(200_000),
            merchant_pool: Amount(1_000_000),
            collateral_lock_ms: 60_000,
            billing_period_ms: 30_000,
            dispute_limit: 3,
            retry_ms: 2_000,
            close_timeout_ms: 5_000,
            window: 1,
        }
    }
}

/// Sum of every account's balance (participants, contracts, validator).
pub fn total_coins(state: &dyn StateRead, accounts: &[Address]) -> u128 {
    accounts.iter().map(|a| state.account(a).balance.0).sum()
}

/// [`total_coins`] through a chain client.
pub fn total_coins_of<C: ChainClient + ?Sized>(chain: &C, accounts: &[Address]) -> u128 {
    accounts.iter().map(|a| chain.account(a).balance.0).sum()
}

/// Signs a CNS call from `key` with its next nonce, submits it and seals.
pub fn cns_call<C: ChainClient + ?Sized>(
    chain: &mut C,
    key: &KeyPair,
    method: &str,
    a: Vec<u8>,
    value: Amount,
) -> Result<Receipt, gridledger_ledger::ClientError> {
    let nonce = chain.next_nonce(&key.address());
    let tx = gridledger_ledger::devnet::call(key, chain.chain_id(), nonce, CNS_ID, method, a, value, 1_000_000);
    chain.exec(&tx)
}

/// The chain's single validator (who collects the fees).
fn validator_of<C: ChainClient + ?Sized>(chain: &C) -> Address {
    chain.validators().first().map(|k| k.address()).unwrap_or(Address::ZERO)
}

fn expect_ok(r: &Receipt, what: &str) {
    assert_eq!(r.status, TxStatus::Success, "{what} failed");
}

impl<C: ChainClient> Duo<C> {
    /// Registers a merchant (dev key 0), MSCs for dev keys 1 and 2 through the
    /// merchant's credit desk, and an ESC between them; the channel is not
    /// opened yet (see [`Duo::open`]).
    pub fn setup(chain: C, cfg: &DuoConfig) -> Self {
        let mut chain = chain;
        let mkey = dev_key(0);
        let desk_key = KeyPair::from_seed("cns-merchant-desk");
        let domain = cns::Domain::cns(chain.chain_id());
        let merchant = MerchantDesk {
            domain,
            account: mkey.address(),
            key: desk_key.clone(),
            risk: CollateralRatio {
                base_bps: 2_000,
                per_dispute_bps: 500,
                max_credit: cfg.credit_limit,
                lock_ms: cfg.collateral_lock_ms,
            },
            blacklist: vec![],
            max_disputes: 5,
            approval_ttl_ms: 3_600_000,
        };
        let validator = validator_of(&chain);
        let accounts = Self::accounts_of(validator);
        let initial_total = total_coins_of(&chain, &accounts);
        let initial_validator = chain.account(&validator).balance.0;
        let mut fees = Amount::ZERO;
        let r = cns_call(
            &mut chain,
            &mkey,
            "merchant_register",
            args(&RegisterMerchant {
                key: desk_key.public(),
                billing_period_ms: cfg.billing_period_ms,
                grey_after: 2,
                black_after: 4,
            }),
            cfg.merchant_pool,
        )
        .expect("submit");
        expect_ok(&r, "merchant_register");
        fees.0 += r.fee.0;
        let mut sids = [0u64; 2];
        let msc_keys = [KeyPair::from_seed("cns-msc-0"), KeyPair::from_seed("cns-msc-1")];
        for i in 0..2 {
            let acct = dev_key(i + 1);
            let app = CreditApplication {
                participant: msc_keys[i].public(),
                documents: vec![Hash32([i as u8 + 1; 32])],
                requested_credit: cfg.credit_limit,
                identity: format!("participant-{i}"),
            };
            let approval =
                merchant.assess(&app, &ApplicantHistory::default(), chain.now(), 11 + i as u64).expect("approved");
            let collateral = approval.approval.collateral;
            let a = msc_init_args(&domain, &msc_keys[i], approval, acct.address(), 21 + i as u64);
            let r = cns_call(&mut chain, &acct, "msc_init", args(&a), collateral).expect("submit");
            expect_ok(&r, "msc_init");
            fees.0 += r.fee.0;
            sids[i] = borsh::from_slice(&r.output).expect("sid");
        }
        let esc_keys = [KeyPair::from_seed("cns-esc-0"), KeyPair::from_seed("cns-esc-1")];
        let init = EscInit {
            sids,
            keys: [esc_keys[0].public(), esc_keys[1].public()],
            payouts: [dev_key(1).address(), dev_key(2).address()],
            n: cns::client::esc_counter(&chain, sids).expect("pair counter"),
            dispute_limit: cfg.dispute_limit,
        };
        let a = esc_open_args(&domain, init, [&msc_keys[0], &msc_keys[1]], 31);
        let r = cns_call(&mut chain, &dev_key(1), "esc_open", args(&a), Amount::ZERO).expect("submit");
        expect_ok(&r, "esc_open");
        fees.0 += r.fee.0;
        let scid: Hash32 = borsh::from_slice(&r.output).expect("scid");
        let cid = derive_cid(&scid, 0);
        let parties = [0usize, 1].map(|i| {
            let funding = if cfg.credit[i] {
                merchant.sign_note(sids[i], cid, cfg.capacity[i], 41 + i as u64)
            } else {
                Funding::Deposit
            };
            let params = ChannelParams {
                domain,
                min_t_delta_ms: cns::MIN_T_DELTA_MS,
                policy: None,
                auto_pay: None,
                window: cfg.window,
                side: i as u8,
                peer_key: esc_keys[1 - i].public(),
                scid,
                cid,
                t_delta_ms: cfg.t_delta_ms,
                capacity: cfg.capacity,
                funding,
                retry_ms: cfg.retry_ms,
                close_timeout_ms: cfg.close_timeout_ms,
            };
            let nonce_seed = [i as u8 + 7; 32];
            Party {
                account: dev_key(i + 1),
                esc_key: esc_keys[i].clone(),
                nonce_seed,
                machine: Some(ChannelMachine::new(esc_keys[i].clone(), nonce_seed, params.clone())),
                params,
                disk: None,
                inbox: VecDeque::new(),
                chain_inbox: VecDeque::new(),
                silent: false,
                crash_before_persist: false,
                crash_after_persists: None,
                drop_txs: 0,
                signed: vec![],
                events: vec![],
            }
        });
        Self { chain, merchant, parties, sids, scid, cid, gas: vec![], fees, initial_total, initial_validator }
    }

    /// Every account that can hold coin in these scenarios.
    pub fn accounts_of(validator: Address) -> Vec<Address> {
        let mut v: Vec<Address> = (0..6).map(|i| dev_key(i).address()).collect();
        v.push(validator);
        v.push(gridledger_ledger::contract_address(CNS_ID));
        v
    }

    pub fn accounts(&self) -> Vec<Address> {
        Self::accounts_of(validator_of(&self.chain))
    }

    /// Coin conservation (DESIGN principle 4): the total over all accounts is
    /// unchanged, and what left the non-validator accounts is exactly the
    /// fees of every transaction submitted.
    pub fn assert_coins_conserved(&self) {
        let chain = &self.chain;
        let total = total_coins_of(chain, &self.accounts());
        assert_eq!(total, self.initial_total, "coins created or destroyed");
        let validator = chain.account(&validator_of(chain)).balance.0;
        assert_eq!(validator - self.initial_validator, self.fees.0, "validator gained exactly the fees");
        // The contract holds exactly the merchant pool, collateral and the
        // deposits of channels not yet closed.
        let held = chain.account(&gridledger_ledger::contract_address(CNS_ID)).balance.0;
        let m = cns::client::merchant(chain, &self.merchant.account).ok().flatten().expect("merchant");
        let mut expect = m.free.0 + m.reserved.0;
        for sid in self.sids {
            let msc = cns::client::msc(chain, sid).ok().flatten().expect("msc");
            expect += msc.collateral.0;
        }
        if let Some(ch) = cns::client::channel(chain, &self.cid).ok().flatten() {
            if ch.status != cns::ChannelStatus::Closed {
                for i in 0..2 {
                    if ch.funded[i] == Some(cns::FundKind::Deposit) {
                        expect += ch.capacity[i].0 + ch.topped_up[i].0 - ch.withdrawn_paid[i].0;
                    }
                }
            }
        }
        assert_eq!(held, expect, "contract balance matches its records");
    }

    /// The credit ledger of both MSCs balances to zero.
    pub fn assert_credit_balanced(&self) {
        for sid in self.sids {
            let msc = self.msc(sid);
            assert_eq!(msc.ledger.imbalance(), 0, "MSC {sid} ledger {:?}", msc.ledger);
        }
    }

    pub fn msc(&self, sid: u64) -> cns::Msc {
        cns::client::msc(&self.chain, sid).ok().flatten().expect("msc")
    }
    pub fn channel(&self) -> Option<cns::Channel> {
        cns::client::channel(&self.chain, &self.cid).ok().flatten()
    }
    pub fn esc(&self) -> cns::Esc {
        cns::client::esc(&self.chain, &self.scid).ok().flatten().expect("esc")
    }
    pub fn balance(&self, side: usize) -> u128 {
        self.chain.account(&self.parties[side].account.address()).balance.0
    }

    /// Submits a CNS call from `key`, counting its fee and gas.
    pub fn submit(&mut self, key: &KeyPair, method: &str, a: Vec<u8>, value: Amount) -> Receipt {
        let r = cns_call(&mut self.chain, key, method, a, value).expect("admitted");
        self.fees.0 += r.fee.0;
        self.gas.push(GasEntry {
            method: method.to_string(),
            gas: r.gas_used,
            success: r.status == TxStatus::Success,
            sender: key.address(),
            fee: r.fee,
        });
        self.route_events(&r);
        r
    }

    fn route_events(&mut self, r: &Receipt) {
        let cid = self.cid.to_string();
        for e in &r.events {
            if e.emitter != CNS_ID {
                continue;
            }
            let attr = |k: &str| e.attributes.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).unwrap_or_default();
            if attr("cid") != cid {
                continue;
            }
            let num = |k: &str| attr(k).parse::<u64>().unwrap_or(0);
            let ev = match e.name.as_str() {
                "cns_channel_opening" => ChainEvent::Registered {
                    t_delta_ms: num("t_delta"),
                    hstate: attr("hstate").parse().unwrap_or(Hash32::ZERO),
                },
                "cns_channel_open" => ChainEvent::Active,
                "cns_channel_funded" => {
                    ChainEvent::Funded { side: num("side") as u8, credit: attr("kind") == "credit" }
                }
                "cns_channel_topped_up" => {
                    ChainEvent::ToppedUp { side: num("side") as u8, total: Amount(attr("total").parse().unwrap_or(0)) }
                }
                "cns_dispute_raised" => {
                    ChainEvent::DisputeRaised { counter: num("counter"), by: num("by") as u8, t_end: num("t_end") }
                }
                "cns_dispute_resolved" => ChainEvent::DisputeResolved { counter: num("counter") },
                "cns_channel_updated" => ChainEvent::Updated { counter: num("counter"), state: None },
                "cns_channel_closed" => ChainEvent::Closed { counter: num("counter") },
                "cns_channel_withdrawn" => {
                    let amt = |k: &str| Amount(attr(k).parse().unwrap_or(0));
                    ChainEvent::WithdrawalPaid { paid: [amt("withdrawn0"), amt("withdrawn1")] }
                }
                // An aborted open ends the channel before any update.
                "cns_channel_aborted" => ChainEvent::Closed { counter: 0 },
                _ => continue,
            };
            // With the state the chain holds now where the event registered
            // one (as the node's event poller does).
            let read = || cns::client::channel(&self.chain, &self.cid).ok().flatten().map(|ch| Box::new(ch.latest));
            let evs = ev.with_chain_record(read);
            for p in &mut self.parties {
                p.chain_inbox.extend(evs.iter().cloned());
            }
        }
    }

    /// Feeds one input to a party and carries out the resulting step.
    pub fn input(&mut self, side: usize, input: Input) -> Result<(), ChannelError> {
        let Some(m) = self.parties[side].machine.as_mut() else {
            return Ok(());
        };
        let step = m.handle(input)?;
        self.carry_out(side, step);
        Ok(())
    }

    fn carry_out(&mut self, side: usize, step: Step) {
        let p = &mut self.parties[side];
        p.events.extend(step.events.iter().cloned());
        // A step's own messages need nothing durable (what does is held in
        // the machine until `Persisted`): they go first, so a crash at the
        // persist below cannot hide a machine that lets a signature out
        // early.
        self.send_messages(side, step.messages);
        let p = &mut self.parties[side];
        if let Some(store) = step.persist {
            let countdown = match p.crash_after_persists {
                Some(0) => {
                    p.crash_after_persists = None;
                    true
                }
                Some(n) => {
                    p.crash_after_persists = Some(n - 1);
                    false
                }
                None => false,
            };
            if p.crash_before_persist || countdown {
                p.crash_before_persist = false;
                self.crash(side);
                return;
            }
            p.disk = Some(store.to_bytes());
            let v = store.version;
            // Persisted: now the held outputs may go.
            let _ = self.input(side, Input::Persisted(v));
        }
        // The machine asks for the channel's registered state (the read at
        // an event failed): answered like the node's poller, through the
        // party's chain inbox.
        if step.read_channel {
            let st = cns::client::channel(&self.chain, &self.cid).ok().flatten().map(|ch| Box::new(ch.latest));
            let counter = st.as_ref().map_or(0, |s| s.state.counter);
            self.parties[side].chain_inbox.push_back(ChainEvent::Updated { counter, state: st });
        }
        for tx in step.txs {
            if self.parties[side].silent {
                continue;
            }
            if self.parties[side].drop_txs > 0 {
                self.parties[side].drop_txs -= 1;
                continue;
            }
            let key = self.parties[side].account.clone();
            self.submit(&key, tx.method, tx.args, tx.value);
        }
    }

    fn send_messages(&mut self, side: usize, messages: Vec<Message>) {
        for m in messages {
            let p = &mut self.parties[side];
            match &m {
                Message::Propose { state, nonce, .. } | Message::ProposeFolded { state, nonce, .. } => {
                    let h = state.hstate(*nonce);
                    p.signed.push((state.counter, h));
                }
                Message::Accept { counter, hstate, .. } => p.signed.push((*counter, *hstate)),
                Message::Reject { .. }
                | Message::Fallback { .. }
                | Message::PayRequest { .. }
                | Message::Collision { .. }
                | Message::Reestablish { .. } => {}
            }
            if p.silent {
                continue;
            }
            let bytes = m.to_bytes();
            let peer = &mut self.parties[1 - side];
            if peer.machine.is_some() && !peer.silent {
                peer.inbox.push_back(bytes);
            }
        }
    }

    /// Delivers queued messages and chain events until quiet.
    pub fn pump(&mut self) {
        for _ in 0..10_000 {
            let mut progressed = false;
            for side in 0..2 {
                if let Some(e) = self.parties[side].chain_inbox.pop_front() {
                    progressed = true;
                    if !self.parties[side].silent {
                        let _ = self.input(side, Input::Chain(e));
                    }
                }
                if let Some(bytes) = self.parties[side].inbox.pop_front() {
                    progressed = true;
                    if let Some(m) = self.parties[side].machine.as_mut() {
                        if let Ok(step) = m.handle_bytes(&bytes) {
                            self.carry_out(side, step);
                        }
                    }
                }
            }
            if !progressed {
                return;
            }
        }
    }

    /// Delivers the oldest message queued for `side` (none: false), without
    /// delivering what that makes the party send.
    pub fn deliver_one(&mut self, side: usize) -> bool {
        let Some(bytes) = self.parties[side].inbox.pop_front() else { return false };
        if let Some(m) = self.parties[side].machine.as_mut() {
            if let Ok(step) = m.handle_bytes(&bytes) {
                self.carry_out(side, step);
            }
        }
        true
    }

    /// A user request, then pump.
    pub fn request(&mut self, side: usize, r: Request) -> Result<(), ChannelError> {
        self.input(side, Input::User(r))?;
        self.pump();
        Ok(())
    }

    /// Advances the clock by `ms` and ticks both parties with the time the
    /// next block will carry.
    pub fn advance(&mut self, ms: u64) {
        let now = self.chain.now().saturating_add(ms);
        self.chain.set_now(now);
        for side in 0..2 {
            if !self.parties[side].silent {
                let _ = self.input(side, Input::Tick(now));
            }
        }
        self.pump();
    }

    /// The link between the parties came (back) up: both start the
    /// reconnect handshake, then pump.
    pub fn reconnect(&mut self) {
        for side in 0..2 {
            let _ = self.input(side, Input::Connected);
        }
        self.pump();
    }

    /// Opens the channel: co-signed open, registration and both fundings.
    pub fn open(&mut self) {
        self.request(0, Request::Open).expect("open");
    }

    /// Crashes a party: its machine and in-flight input are lost; its disk
    /// survives.
    pub fn crash(&mut self, side: usize) {
        let p = &mut self.parties[side];
        p.machine = None;
        p.inbox.clear();
    }

    /// Restarts a crashed party from its disk.
    pub fn restart(&mut self, side: usize) {
        let p = &mut self.parties[side];
        let store = match &p.disk {
            Some(b) => ChannelStore::from_bytes(b).expect("own snapshot decodes"),
            None => {
                p.machine = Some(ChannelMachine::new(p.esc_key.clone(), p.nonce_seed, p.params.clone()));
                return;
            }
        };
        p.machine =
            Some(ChannelMachine::restore(p.esc_key.clone(), p.nonce_seed, p.params.clone(), store).expect("restore"));
        // What a real driver learns by replaying the chain's events from the
        // channel's start: what `channel_withdraw` has paid so far.
        if let Some(ch) = cns::client::channel(&self.chain, &self.cid).ok().flatten() {
            if ch.withdrawn_paid.iter().any(|a| !a.is_zero()) {
                self.parties[side].chain_inbox.push_back(ChainEvent::WithdrawalPaid { paid: ch.withdrawn_paid });
            }
        }
    }

    /// No party ever released signatures on two different states with the
    /// same counter.
    pub fn assert_no_divergent_signatures(&self) {
        for p in &self.parties {
            let mut seen: std::collections::BTreeMap<u64, Hash32> = Default::default();
            for (c, h) in &p.signed {
                if let Some(prev) = seen.insert(*c, *h) {
                    assert_eq!(prev, *h, "two different states signed at counter {c}");
                }
            }
        }
    }

    /// Fees paid by side `side`'s account for the calls since entry `from`
    /// of [`Self::gas`].
    pub fn fees_of(&self, side: usize, from: usize) -> u128 {
        let a = self.parties[side].account.address();
        self.gas.iter().skip(from).filter(|g| g.sender == a).map(|g| g.fee.0).sum()
    }

    /// Gas of each successful call of `method`.
    pub fn gas_of(&self, method: &str) -> Vec<u64> {
        self.gas.iter().filter(|g| g.method == method && g.success).map(|g| g.gas).collect()
    }
}

/// Encodes and decodes a store, as a driver's disk would.
pub fn roundtrip_store(s: &ChannelStore) -> ChannelStore {
    decode(&encode(s), MAX_STORE_BYTES).expect("store round trip")
}
