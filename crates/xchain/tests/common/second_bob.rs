//! A second BoB deployment beside a `BobMbs` (attack rounds R8 and R10).

use gridledger_core::crypto::KeyPair;
use gridledger_core::Amount;
use gridledger_ledger::devnet::dev_key;
use gridledger_xchain::mbs::BobMbs;

use super::{provider, receiver, sender};

/// A second BoB deployment following the same external chains (the
/// setting of attack R4-7 and R8-5: a committee reusing its group key, or
/// simply two BoBs over one public chain), run beside a `BobMbs` on its
/// chains' registrations.
pub struct SecondBob {
    pub chain: gridledger_xchain::EmbeddedChain,
    pub config: gridledger_xchain::BobConfig,
}

impl SecondBob {
    pub fn open(dir: &std::path::Path, m: &BobMbs) -> Self {
        use gridledger_ledger::{Allocation, ContractRegistry, Genesis};
        let keys: Vec<KeyPair> = (0..4).map(|i| KeyPair::from_seed(&format!("second-bob-validator-{i}"))).collect();
        let funded = [dev_key(0), dev_key(1), dev_key(7), m.relayer.clone()];
        let genesis = Genesis {
            chain_id: m.bob.chain_id(),
            timestamp: m.bob.chain().genesis().timestamp + 1,
            state_buckets_log2: 10,
            allocations: funded
                .iter()
                .map(|k| Allocation { address: k.address(), balance: Amount(1_000_000_000_000) })
                .collect(),
            validators: keys.iter().map(|k| k.public()).collect(),
        };
        let config = gridledger_xchain::BobConfig { deployment: genesis.hash(), ..m.config.clone() };
        let mut registry = ContractRegistry::new();
        let contract = gridledger_xchain::BobContract::new(config.clone()).unwrap();
        registry.register(gridledger_xchain::BOB_CONTRACT_ID, std::sync::Arc::new(contract));
        let chain = gridledger_xchain::EmbeddedChain::open(
            dir,
            genesis,
            registry,
            keys,
            gridledger_xchain::Finality::Deterministic,
        )
        .unwrap();
        Self { chain, config }
    }

    pub fn record<T: borsh::BorshDeserialize>(&self, key: &[u8]) -> Option<T> {
        use gridledger_ledger::StateRead;
        let k = gridledger_ledger::state::contract_key(gridledger_xchain::BOB_CONTRACT_ID, key);
        self.chain.chain().state().get(&k).and_then(|v| borsh::from_slice(&v).ok())
    }

    /// One BoB block holding `key`'s call; its receipt.
    pub fn call<A: borsh::BorshSerialize>(
        &mut self,
        key: &KeyPair,
        method: &str,
        args: &A,
        value: u128,
    ) -> gridledger_ledger::Receipt {
        let nonce = self.chain.next_nonce(&key.address());
        let tx = gridledger_xchain::mbs::bob_call_signed(
            key,
            self.chain.chain_id(),
            &self.chain.domain(),
            nonce,
            method,
            args,
            Amount(value),
        );
        let h = self.chain.submit(&tx).unwrap();
        self.chain.tick().unwrap();
        self.chain.receipt(&h).unwrap().expect("included")
    }

    pub fn ok<A: borsh::BorshSerialize>(&mut self, key: &KeyPair, method: &str, args: &A, value: u128) {
        let r = self.call(key, method, args, value);
        assert_eq!(r.status, gridledger_ledger::TxStatus::Success, "second BoB refused {method}");
    }

    /// Relays every header of `m`'s external chains this BoB lacks.
    pub fn catch_up(&mut self, m: &BobMbs) {
        use gridledger_xchain::bob::{keys, Relay};
        for c in m.chain_ids() {
            loop {
                let tip = self.record::<(u64, gridledger_core::Hash32)>(&keys::tip(c)).map_or(0, |t| t.0);
                let top = m.external(c).unwrap().height().min(tip + 8);
                if top <= tip {
                    break;
                }
                let headers =
                    (tip + 1..=top).map(|h| m.external(c).unwrap().sealed_header(h).unwrap().unwrap()).collect();
                let relayer = m.relayer.clone();
                self.ok(&relayer, "relay", &Relay { chain: c, headers }, 0);
            }
        }
    }

    /// The second BoB's pool (Π_CCTC claims on its own TPK_Addr_i) and the
    /// two parties' deposits.
    pub fn fund(&mut self, m: &mut BobMbs) {
        use gridledger_xchain::bob::{Claim, Provide};
        let (s, r, p) = (sender(), receiver(), provider());
        let mut amounts = Vec::new();
        for c in m.chain_ids() {
            let tpk = self.config.tpk_address(c);
            let nt = m.native_transfer(c, &p, tpk, 10_000).unwrap();
            m.external_mut(c).unwrap().submit(&nt).unwrap();
            m.tick().unwrap();
            let (height, proof) = m.external(c).unwrap().tx_proof(&nt.hash()).unwrap().unwrap();
            self.catch_up(m);
            self.ok(&p, "claim", &Claim { chain: c, height, nt, proof }, 0);
            amounts.push((c, 10_000u128));
        }
        amounts.push((m.bob.chain_id(), 20_000));
        self.ok(&p, "provide", &Provide { amounts }, 20_000);
        self.ok(&s, "deposit", &(), 100_000);
        self.ok(&r, "deposit", &(), 100_000);
    }
}
