//! The CNS test fixture shared by the ⊥-case tests (`cns.rs`) and the
//! attack reproductions (`attack_cns.rs`): a dev chain with a merchant, two
//! participants with MSCs, one ESC, and helpers to sign and submit states.
#![allow(dead_code, unused_imports)]

pub use gridledger_contracts::cns::credit::{
    esc_open_args, msc_init_args, ApplicantHistory, CollateralRatio, CreditApplication, MerchantDesk,
};
pub use gridledger_contracts::cns::{
    self, derive_cid, ChannelDisputeArgs, ChannelFundArgs, ChannelOpenArgs, ChannelState, ChannelStateArgs, CidArgs,
    Domain, EscInit, Funding, PoolWithdraw, RegisterMerchant, SidArgs, SignedState,
};
pub use gridledger_contracts::{args, default_registry, CNS_ID};
pub use gridledger_core::{Amount, Energy, Hash32, KeyPair, Signature};
pub use gridledger_ledger::devnet::{dev_key, DevChain};
pub use gridledger_ledger::{contract_address, Receipt, StateRead, SubmitError, TxStatus};

pub const BAL: Amount = Amount(1_000_000_000);
/// The channels' agreed dispute window (the contract's minimum).
pub const T_DELTA: u64 = cns::MIN_T_DELTA_MS;

pub struct Fx {
    pub dc: DevChain,
    pub desk: MerchantDesk<CollateralRatio>,
    pub sids: [u64; 2],
    pub scid: Hash32,
    pub esc_keys: [KeyPair; 2],
    pub accts: [KeyPair; 2],
}

pub fn fixture(dir: &std::path::Path, dispute_limit: u32) -> Fx {
    fixture_on(dir, DevChain::CHAIN_ID, dispute_limit)
}

/// The fixture on a chain with id `chain_id` (same keys, same ids).
pub fn fixture_on(dir: &std::path::Path, chain_id: u32, dispute_limit: u32) -> Fx {
    let mut dc = DevChain::open_with_id(dir, chain_id, 4, BAL, default_registry()).unwrap();
    let domain = Domain::cns(chain_id);
    let mkey = dev_key(0);
    let desk_key = KeyPair::from_seed("desk");
    let desk = MerchantDesk {
        domain,
        account: mkey.address(),
        key: desk_key.clone(),
        risk: CollateralRatio { base_bps: 1_000, per_dispute_bps: 0, max_credit: Amount(10_000), lock_ms: 50_000 },
        blacklist: vec![],
        max_disputes: 3,
        approval_ttl_ms: 1_000_000,
    };
    let r = dc
        .call(
            &mkey,
            CNS_ID,
            "merchant_register",
            args(&RegisterMerchant {
                key: desk_key.public(),
                billing_period_ms: 10_000,
                grey_after: 1,
                black_after: 3,
            }),
            Amount(100_000),
        )
        .unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let accts = [dev_key(1), dev_key(2)];
    let msc_keys = [KeyPair::from_seed("m0"), KeyPair::from_seed("m1")];
    let mut sids = [0; 2];
    for i in 0..2 {
        let app = CreditApplication {
            participant: msc_keys[i].public(),
            documents: vec![Hash32([9; 32])],
            requested_credit: Amount(10_000),
            identity: format!("p{i}"),
        };
        let ap = desk.assess(&app, &ApplicantHistory::default(), dc.now, i as u64).unwrap();
        let c = ap.approval.collateral;
        let a = msc_init_args(&domain, &msc_keys[i], ap, accts[i].address(), 5);
        let r = dc.call(&accts[i], CNS_ID, "msc_init", args(&a), c).unwrap();
        assert_eq!(r.status, TxStatus::Success, "{:?}", r.status);
        sids[i] = borsh::from_slice(&r.output).unwrap();
    }
    let esc_keys = [KeyPair::from_seed("e0"), KeyPair::from_seed("e1")];
    let init = EscInit {
        sids,
        keys: [esc_keys[0].public(), esc_keys[1].public()],
        payouts: [accts[0].address(), accts[1].address()],
        n: 0,
        dispute_limit,
    };
    let a = esc_open_args(&domain, init, [&msc_keys[0], &msc_keys[1]], 3);
    let r = dc.call(&accts[0], CNS_ID, "esc_open", args(&a), Amount::ZERO).unwrap();
    assert_eq!(r.status, TxStatus::Success);
    let scid = borsh::from_slice(&r.output).unwrap();
    Fx { dc, desk, sids, scid, esc_keys, accts }
}

impl Fx {
    pub fn state(&self, index: u64, counter: u64, b: [u128; 2], is_final: bool) -> ChannelState {
        ChannelState {
            domain: self.desk.domain,
            t_delta_ms: T_DELTA,
            cid: derive_cid(&self.scid, index),
            counter,
            balances: [Amount(b[0]), Amount(b[1])],
            energy: [Energy::ZERO; 2],
            last_trade: None,
            fold: None,
            is_final,
            resize: Default::default(),
            prev_counter: counter.saturating_sub(1),
        }
    }
    pub fn cosign(&self, st: ChannelState) -> SignedState {
        let nonce = 77 + st.counter;
        SignedState { sigs: [st.sign(&self.esc_keys[0], nonce), st.sign(&self.esc_keys[1], nonce)], state: st, nonce }
    }
    pub fn ok(&mut self, side: usize, method: &str, a: Vec<u8>, v: Amount) -> Receipt {
        let k = self.accts[side].clone();
        let r = self.dc.call(&k, CNS_ID, method, a, v).unwrap();
        assert_eq!(r.status, TxStatus::Success, "{method}: {:?}", r.status);
        r
    }

    /// The refused call changes nothing but nonce and fee: every storage
    /// entry of the contract and its balance are as before.
    pub fn refused(&mut self, side: usize, method: &str, a: Vec<u8>, value: Amount, reason: &str) {
        let key = self.accts[side].clone();
        self.refused_by(&key, method, a, value, reason)
    }

    /// [`Self::refused`] for a call sent by any key.
    pub fn refused_by(&mut self, key: &KeyPair, method: &str, a: Vec<u8>, value: Amount, reason: &str) {
        let snapshot = |dc: &DevChain| -> Vec<(Vec<u8>, Vec<u8>)> {
            let mut v: Vec<_> = dc
                .chain
                .state()
                .iter()
                .filter(|(k, _)| k.first() == Some(&0x02))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
            v.sort();
            v
        };
        let before = snapshot(&self.dc);
        let acct = self.dc.chain.state().account(&key.address());
        let held = self.dc.chain.state().account(&contract_address(CNS_ID)).balance;
        let r = self.dc.call(key, CNS_ID, method, a, value).unwrap();
        match &r.status {
            TxStatus::Reverted(why) => {
                assert!(why.contains(reason), "reason {why:?} lacks {reason:?}")
            }
            s => panic!("{method}: expected a revert, got {s:?}"),
        }
        assert!(r.events.is_empty());
        assert_eq!(snapshot(&self.dc), before, "contract storage changed");
        let after = self.dc.chain.state().account(&key.address());
        assert_eq!(after.nonce, acct.nonce + 1);
        assert_eq!(after.balance.0, acct.balance.0 - r.fee.0);
        assert_eq!(self.dc.chain.state().account(&contract_address(CNS_ID)).balance, held);
    }
    pub fn open_args(&self, index: u64) -> Vec<u8> {
        args(&ChannelOpenArgs { scid: self.scid, open: self.cosign(self.state(index, 0, [1_000, 1_000], false)) })
    }
    /// Opens channel `index` with deposits of 1000 each.
    pub fn open(&mut self, index: u64) -> Hash32 {
        let a = self.open_args(index);
        self.ok(0, "channel_open", a, Amount::ZERO);
        let cid = derive_cid(&self.scid, index);
        for side in 0..2u8 {
            let a = args(&ChannelFundArgs { cid, side, funding: Funding::Deposit });
            self.ok(side as usize, "channel_fund", a, Amount(1_000));
        }
        cid
    }
    /// Registers channel `index` with side 0 on a 1_000 credit note and side
    /// 1 on a 1_000 deposit, funds both.
    pub fn open_on_credit(&mut self, index: u64) -> Hash32 {
        let open = self.cosign(self.state(index, 0, [1_000, 1_000], false));
        self.ok(0, "channel_open", args(&ChannelOpenArgs { scid: self.scid, open }), Amount::ZERO);
        let cid = derive_cid(&self.scid, index);
        let note = self.desk.sign_note(self.sids[0], cid, Amount(1_000), 100 + index);
        self.ok(0, "channel_fund", args(&ChannelFundArgs { cid, side: 0, funding: note }), Amount::ZERO);
        self.ok(1, "channel_fund", args(&ChannelFundArgs { cid, side: 1, funding: Funding::Deposit }), Amount(1_000));
        cid
    }
}

/// Disputes booked at fault to side `side`'s MSC.
pub fn faults(f: &Fx, side: usize) -> u32 {
    cns::read::msc(f.dc.chain.state(), f.sids[side]).unwrap().unwrap().disputes_at_fault
}

/// Side `side`'s account balance on the chain.
pub fn acct_balance(f: &Fx, side: usize) -> u128 {
    f.dc.chain.state().account(&f.accts[side].address()).balance.0
}

/// The merchant's pool: free plus reserved.
pub fn merchant_pool(f: &Fx) -> u128 {
    let m = cns::read::merchant(f.dc.chain.state(), &dev_key(0).address()).unwrap().unwrap();
    m.free.0 + m.reserved.0
}

/// The number of runs of a sweep: env var `var`, else `default`.
pub fn runs_from_env(var: &str, default: u64) -> u64 {
    std::env::var(var).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The sweeps' deterministic xorshift generator.
pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u128) -> u128 {
        if n == 0 {
            0
        } else {
            u128::from(self.next()) % n
        }
    }
}
