//! Byzantine node behaviours for runs of [`crate::round`] in the simulator
//! (§7.5.7): honest node code behind a [`gridledger_sim::Adversary`] that
//! drops, alters or withholds what the node sends. Used by the federated
//! training driver and its experiments; the tests keep their own
//! hand-written adversaries beside these.

use crate::consensus::Message;
use crate::round::Participant;
use blstrs::Scalar;
use ff::Field;
use gridledger_core::enclave::Attester;
use gridledger_sim::{Adversary, Dest, Time};
use rand_chacha::ChaCha8Rng;

/// What a Byzantine node does to its own sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NodeAttack {
    /// Sends nothing at all (a crashed or withholding node, a silent leader).
    Withhold,
    /// Takes part in consensus but sends no mini-fragment (withholds B2C).
    DropMinis,
    /// Alters every mini-fragment it sends (caught by the Merkle proofs).
    AlterMinis,
}

impl NodeAttack {
    /// The `i`-th attack of the rotation used for mixed Byzantine nodes.
    pub fn nth(i: usize) -> Self {
        [Self::Withhold, Self::AlterMinis, Self::DropMinis][i % 3]
    }
}

impl<A: Attester> Adversary<Participant<A>> for NodeAttack {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        match self {
            NodeAttack::Withhold => Vec::new(),
            NodeAttack::DropMinis => sends.into_iter().filter(|(_, m)| !matches!(m, Message::Mini { .. })).collect(),
            NodeAttack::AlterMinis => sends
                .into_iter()
                .map(|(d, m)| match m {
                    Message::Mini { from_node, mut mf } => {
                        if let Some(v) = mf.values.first_mut() {
                            *v += Scalar::ONE;
                        }
                        (d, Message::Mini { from_node, mf })
                    }
                    other => (d, other),
                })
                .collect(),
        }
    }
}
