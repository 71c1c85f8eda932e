//! Genesis: the chain's identity, initial balances and validator set.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::{Address, Amount, ChainId, Hash32, PublicKey, Timestamp};
use serde::{Deserialize, Serialize};

/// An initial balance.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Allocation {
    pub address: Address,
    pub balance: Amount,
}

/// The genesis file (TOML or JSON).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct Genesis {
    pub chain_id: ChainId,
    /// Genesis block timestamp, ms since the Unix epoch.
    #[serde(default)]
    pub timestamp: Timestamp,
    /// The state tree has `2^state_buckets_log2` buckets (see `state`).
    #[serde(default = "default_buckets")]
    pub state_buckets_log2: u32,
    #[serde(default)]
    pub allocations: Vec<Allocation>,
    /// Validator identities, in index order.
    pub validators: Vec<PublicKey>,
}

fn default_buckets() -> u32 {
    14
}

impl Genesis {
    pub fn hash(&self) -> Hash32 {
        hash_tagged(Tag("gridledger/genesis/v1"), self)
    }

    pub fn total_supply(&self) -> Option<Amount> {
        self.allocations.iter().try_fold(Amount::ZERO, |a, x| a.checked_add(x.balance))
    }
}
