//! The BoB's contracts (thesis Table 5-1): the header store, SC_D
//! (deposits of Token_B), SC_AMM (the weighted pool of Eq. 5.2, filled
//! through Π_CCTC), SC_T (cross-chain transactions and the instructions
//! IN_s / IN_r) and SC_MPV (Merkle-proof validation, Situations 1 and 2).
//!
//! Decision: the four contracts and the header store are one native
//! contract ([`BobContract`], id [`BOB_CONTRACT_ID`]) with one method group
//! each, because the ledger's native contracts read only their own storage
//! and SC_T / SC_MPV must read deposits, the pool and the headers in the
//! same transaction (the seed's inter-contract calls, lns 03 and 05). Each
//! group keeps its own key prefix, so the separation of Table 5-1 holds in
//! storage.
//!
//! Token_B is the BoB's native coin. `Token_i` of external chain `i`
//! circulates on the BoB as a balance in this contract, minted by a claim
//! (Π_CCTC) against a transfer to `TPK_Addr_i` on chain `i`; token ids are
//! chain ids (the BoB's own id stands for Token_B). A transfer to
//! `TPK_Addr_i` not claimed before the BoB dropped its header is refunded
//! to its sender instead (`refund_lock`, proved against [`crate::mmr`]).

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::codec::{hash_tagged, Tag};
use gridledger_core::merkle::MerkleProof;
use gridledger_core::{Address, Amount, ChainId, ContractId, Hash32, Height, PublicKey, Signature, Timestamp};
use gridledger_ledger::gas;
use gridledger_ledger::state::account_key;
use gridledger_ledger::{
    decode_args, revert, Account, BlockHeader, CallContext, ContractError, NativeContract, SignedTransaction,
    StateProof, ViewContext,
};
use serde::Serialize;
use serde_json::json;
use std::collections::BTreeMap;

use crate::amm;
use crate::error::XchainError;
use crate::headers::{ChainRegistration, SealedHeader};
use crate::mmr::Mmr;
use crate::threshold::tpk_address;

/// The BoB contract's id on the BoB chain.
pub const BOB_CONTRACT_ID: ContractId = 40;
/// Most headers one relay transaction may carry.
pub const MAX_RELAY_BATCH: usize = 64;

/// Most headers of one chain the BoB stores per BoB block:
/// `max(⌊(κ_i − k)/2⌋, MAX_RATE_RATIO)` for a chain that keeps κ_i headers
/// and needs k confirmations.
///
/// Decision (attack R2-1/R2-2): a header a relay stores is dropped once it
/// is [`kept_headers`] below the stored tip, and it can be proved against
/// only once it has k confirmations. If one block (or one relay) could
/// advance the tip by that much, a header — an honest payer's NT, a
/// Π_CCTC lock — could be stored and dropped again before any transaction
/// could prove against it. With at most `cap` per block and `2 · cap + k`
/// headers kept or more, every stored header is final and still kept
/// throughout at least one whole BoB block, whatever order the block's
/// transactions run in; relayers that fell behind catch up over several
/// blocks. (We cap the relay rather than pin headers an open CCT needs: a
/// Π_CCTC lock is unknown to the BoB until it is claimed, so only the cap
/// protects it.)
///
/// Decision (attack R15-3): the cap is never below [`MAX_RATE_RATIO`]. The
/// NT deadlines ([`nt_deadline_bound`]) and the parties' view check
/// (`BobMbs::check_view`, `MAX_VIEW_LAG`) promise chains up to
/// `MAX_RATE_RATIO` times the BoB's block rate; a cap below it (2 on
/// κ = 4, 1 with κ − k < 4) let such a chain outrun the stored tip for
/// good, and every exchange on it was refused with no party misbehaving.
/// A small-κ chain keeps more headers than κ_i instead ([`kept_headers`]),
/// so R2-1's guarantee holds with the larger cap.
pub fn relay_per_block(kappa: u32, confirmations: u32) -> u64 {
    (kappa.saturating_sub(confirmations) as u64 / 2).max(MAX_RATE_RATIO)
}

/// How many of a chain's latest headers the BoB keeps: `max(κ_i, 2 · cap +
/// k)` with `cap` = [`relay_per_block`] — κ_i itself whenever `κ_i − k ≥
/// 2 · MAX_RATE_RATIO` (the default deployment's κ = 16 among them), more
/// on a small κ_i (8 on κ = 4 with k = 0).
///
/// Decision (attack R15-3): one window for every rule that asks whether
/// the BoB still keeps a header — the relay's drop and SC_MPV's / SC_C's
/// stale-header refusal ([`crate::error::XchainError::StaleHeader`]),
/// Π_CCTC's refund and SC_C's late lock, which open exactly when the
/// header is no longer kept (`refundable_at = height + kept_headers`), and
/// the parties' choice between a proof against a kept header and one
/// against the accumulator ([`crate::mmr`]). κ_i keeps its role in the
/// deadlines (Algorithm 5.1's `e_i + κ̄ + κ_i`, SC_T's forwarding window,
/// the CCDI deadline `e_B + κ · max κ_i`): those count blocks to wait, not
/// headers to keep, and a header kept longer only leaves a proof more time.
pub fn kept_headers(kappa: u32, confirmations: u32) -> u64 {
    let cap = relay_per_block(kappa, confirmations);
    (kappa as u64).max(cap.saturating_mul(2).saturating_add(confirmations as u64))
}
/// Domain of the receiver's signature over a CCT's terms.
pub const CCT_TERMS: Tag = Tag("gridledger/xchain/cct-terms/v1");
/// Domain of a CCT's identifier.
pub const CCT_ID: Tag = Tag("gridledger/xchain/cct-id/v1");

/// The BoB contract's fixed configuration: part of the BoB's genesis.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize, Serialize)]
pub struct BobConfig {
    /// The BoB's chain id; as a token id it stands for Token_B.
    pub bob_chain: ChainId,
    /// The deployment: the hash of the BoB's genesis. Chain and contract ids
    /// are the same constants in every deployment; this is not, so terms a
    /// receiver signed for one BoB never execute on another.
    pub deployment: Hash32,
    /// The external chains the BoB follows.
    pub chains: Vec<ChainRegistration>,
    /// κ̄ of Algorithm 5.1 (≥ 2 in the seed).
    pub kappa_bar: u64,
    /// SC_AMM's weights LP_V (Eq. 5.3), by token id, summing to [`amm::WEIGHT_ONE`].
    pub weights: Vec<(ChainId, u64)>,
    /// Canonical bytes of the BoB validators' group public key (owns `TPK_Addr_i`).
    pub group_key: Vec<u8>,
    /// The least `x_B` a CCT may be priced at, per unit of `x_j`, for every
    /// registered chain `j` ([`PenaltyFloor`], attack R6-4): fixed in the
    /// genesis, whatever the pool's price does.
    pub penalty_floors: Vec<PenaltyFloor>,
    /// SC_AMM's price: a reference balance per token of the pool (Token_B
    /// included), fixed in the genesis (attack R7-1). Eq. 5.2 prices every
    /// CCT from these and the weights once the pool is open; no join —
    /// the opening one included — and no withdrawal moves them.
    pub reference_balances: Vec<(ChainId, u128)>,
    /// Chains whose `TPK_Addr_i` is the account of their SC_BG, which pays
    /// out only on the group's threshold signature (spending from
    /// `TPK_Addr_i`, [`crate::scbg`]); elsewhere it is the keyless address
    /// [`tpk_address`] derives.
    pub group_accounts: Vec<(ChainId, Address)>,
    /// The BoB's registered nodes (attack r16 [6]): their calls of
    /// [`DUTY_METHODS`] are duties of the protocol, which the BoB's blocks
    /// take in their bounded duty lane before the gas-price order
    /// ([`gridledger_ledger::NativeContract::duty`]).
    pub nodes: Vec<Address>,
}

/// The BoB contract's methods that are node duties when a registered node
/// ([`BobConfig::nodes`]) calls them: header relays, forwarding `prove`s,
/// closing CCT_Vs and CCDI late locks.
///
/// Decision (attack r16 [3], [6]): the nodes paid a fixed gas price
/// (`NODE_GAS_PRICE`) and blocks are filled by price, so any account
/// paying more — a flood of ordinary transfers, or block-sized ones —
/// went first, the stored tips froze and a payer who posted its NT in
/// time was penalised. Outbidding every sender is no defence (a fee race
/// the attacker chooses the stakes of), so these calls get a lane of the
/// BoB's blocks ([`gridledger_ledger::ChainConfig::duty_lane_percent`],
/// a quarter of each block's gas and transaction count by default) that
/// ordinary traffic cannot take, whatever it pays. Who is a node is fixed
/// in the BoB's genesis, never what a sender claims: a stranger's relay is
/// an ordinary call. The lane is bounded, so duties cannot starve users;
/// beyond it the nodes compete at their price. The lane serves the nodes
/// round-robin, one transaction each per round (attack r18 [1]: one
/// Byzantine node's junk duties no longer take the whole lane), and a
/// node's ordinary calls queued ahead of its duties (`fraud`,
/// `ccdi_open`, `ccdi_finish`, the CCDI calls) travel in its run (attack
/// r18 [2]: one of them at the head of its queue no longer shuts its
/// duties out; attack r19 [1]: nor do a lane's worth of them, the run
/// reaches toward the node's last pending duty however many are queued
/// ahead, within the node's round-robin share of each block's lane). The
/// lane's gas is shared out per node too, a node's carried calls counting
/// against its own share (attack r21 [1]), and filled progressively, so
/// a share one node cannot use goes to the others (attack r23 [1] [2]);
/// the lane goes before the senders served first, so no block-sized call
/// takes its gas (attack r21 [2]), except at every other height, where a
/// served-first transaction the lane would leave no room for goes first
/// (attack r23 [3]: the node's relays every block starved a block-sized
/// transfer).
pub const DUTY_METHODS: &[&str] = &["relay", "prove", "cct_v", "ccdi_late_lock"];

/// The `x_j` at which [`BobConfig::validate`] compares the genesis price
/// with each penalty floor (large, so rounding does not decide).
pub const PRICE_CHECK_AMOUNT: u128 = 1_000_000_000;

/// The deployment's minimum withholding penalty for CCTs whose receiver
/// pays on `chain`: `x_B ≥ ⌈x_j · num / den⌉` Token_B (attack R6-4).
///
/// Decision: `x_B` (the Token_B worth of `x_j`, what a withholding sender
/// pays the receiver) is priced by SC_AMM and the receiver signs a floor
/// (`min_x_b`) on the quote; a price that decays — a drained pool the
/// reference follows (R5-3, R6-4) — would take both down with it. Since
/// R6-5 liquidity no longer moves the price, but the penalty does not rest
/// on that alone: the genesis fixes, per chain, a least Token_B per unit of
/// `x_j` that no pool state goes below; a CCT priced below it is refused
/// (`PenaltyOutOfBounds`) and changes nothing. A deployment sets it well
/// below the market rate it opens its pool at (the development MBS: a
/// tenth of its 1:1 genesis price, [`crate::mbs::PENALTY_FLOOR`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct PenaltyFloor {
    pub chain: ChainId,
    #[serde(with = "amount_str")]
    pub num: u128,
    #[serde(with = "amount_str")]
    pub den: u128,
}

impl PenaltyFloor {
    /// `⌈x_j · num / den⌉`.
    pub fn min_x_b(&self, x_j: u128) -> Result<u128, XchainError> {
        if self.den == 0 {
            return Err(XchainError::Overflow);
        }
        Ok(x_j.checked_mul(self.num).ok_or(XchainError::Overflow)?.div_ceil(self.den))
    }
}

/// Sub-situation 2's forwarding deadline of a side's chain for a CCT_V
/// that runs when the BoB's stored tip of that chain is `tip`:
/// `t_* + κ̄ + κ_*` ([`CctRecord::forward_i`]).
pub fn forward_deadline_from(tip: Height, kappa_bar: u64, kappa: u32) -> Height {
    tip.saturating_add(kappa_bar).saturating_add(kappa as u64)
}

/// The last height of a chain with `k` confirmations at which a side's
/// NT can land and still be proved before the closing CCT_V of a CCT whose
/// forwarding deadline there is `forward`: it is final `k` blocks later,
/// and the closing CCT_V falls due once the BoB stores `forward`'s header.
/// One rule for the BoB nodes' forwarding cut-off
/// ([`crate::mbs::BobMbs::still_provable`]) and the NT's own deadline
/// ([`BobConfig::nt_valid_until`]).
pub fn last_provable_landing(forward: Height, k: u64) -> Height {
    forward.saturating_sub(k)
}

/// The most blocks one chain of a deployment (the BoB and every external
/// chain) seals while another seals one: the spread of block rates SC_T's
/// NT deadlines cover ([`nt_deadline_bound`]). Chains whose rates differ by
/// more get no promise for a posted NT the BoB nodes forward after the
/// first CCT_V (it may have expired by then, and its side is penalised
/// once it can no longer land). The BoB's relay takes at least this many
/// headers of every chain per BoB block ([`relay_per_block`], attack
/// R15-3), so its stored tips keep up with every chain within the ratio.
pub const MAX_RATE_RATIO: u64 = 4;

/// The deadline an NT paying on a chain with `k` confirmations, ln-08
/// deadline `deadline`, of a CCT whose chains' largest κ is `kappa_max`
/// carries: `deadline + MAX_RATE_RATIO · (κ̄ + κ_max) − k`.
///
/// Decision (attack R14-1/2): the NT's deadline was the last landing
/// provable for the *earliest* forwarding deadline the CCT can get
/// (`deadline + κ̄ + κ − k`), while SC_T counted the forwarding window from
/// the chain's stored tip when the first CCT_V ran — which waits for both
/// chains. On a faster chain the NT had expired before sub-situation 2
/// opened: the BoB nodes forwarded it, the chain refused it and the payer
/// who posted in time was penalised (R14-1); and a payment held behind the
/// payer's earlier nonce, named by terms stored at their expiry, could not
/// land before it (R14-2). Now the deadline covers the first CCT_V on the
/// slowest chain the deployment allows ([`MAX_RATE_RATIO`] times slower:
/// the side's chain is then at most `deadline + MAX_RATE_RATIO · (κ̄ +
/// κ_max)` less κ̄ + κ blocks) plus a forwarding window as long as ln 08's,
/// and SC_T's window for a side whose posted NT carries a deadline closes
/// exactly when that NT can no longer be proved, `min(valid_until,
/// bound) + k` ([`forward_deadline_for`]) — one rule for the NT, SC_T and
/// the BoB nodes ([`crate::mbs::BobMbs::still_provable`]).
pub fn nt_deadline_bound(deadline: Height, kappa_bar: u64, kappa_max: u32, k: u64) -> Height {
    let window = MAX_RATE_RATIO.saturating_mul(kappa_bar.saturating_add(kappa_max as u64));
    deadline.saturating_add(window).saturating_sub(k)
}

/// Sub-situation 2's forwarding deadline of a side, set by the first
/// CCT_V: for a posted NT with a deadline `valid_until`, the chain height
/// at which its last provable landing is final, `min(valid_until, bound)
/// + k` (`bound` = [`nt_deadline_bound`]; a later deadline only exposes
/// its payer: the side closes at the bound); otherwise (a plain NT, or
/// none posted) `t_* + κ̄ + κ_*` from the chain's stored tip `tip`
/// ([`forward_deadline_from`]).
pub fn forward_deadline_for(
    valid_until: Option<Height>,
    bound: Height,
    k: u64,
    tip: Height,
    kappa_bar: u64,
    kappa: u32,
) -> Height {
    match valid_until {
        Some(u) => u.min(bound).saturating_add(k),
        None => forward_deadline_from(tip, kappa_bar, kappa),
    }
}

impl BobConfig {
    /// The deadline (`valid_until`, [`gridledger_ledger::TxKind::TransferUntil`]) a side's NT
    /// carries: [`nt_deadline_bound`], the last landing SC_T's forwarding
    /// window for it proves ([`forward_deadline_for`]). `None` for a chain
    /// this deployment does not follow.
    ///
    /// Decision (attack R12-4): a penalised party's NT, posted on the BoB
    /// for anyone to read, could be sent by its payee once the party's
    /// account could pay it again, and landed before the void of its
    /// nonce (a race the void can only enter once the account can pay a
    /// fee): the party paid twice, the penalty and the payment. With this
    /// deadline an NT either lands while it can still be proved (and is
    /// proved, its side not penalised) or can never land at all; the void
    /// only fills the nonce afterwards. Sub-situation 3's balance evidence
    /// against such an NT counts only from its deadline on (before, the
    /// payer may still be funded and the NT land), see `fraud`.
    pub fn nt_valid_until(&self, rec: &CctRecord, side: Side) -> Option<Height> {
        let (chain, ..) = rec.instruction(side);
        let reg = self.chains.iter().find(|c| c.chain_id == chain)?;
        Some(nt_deadline_bound(
            rec.deadline(side),
            self.kappa_bar,
            self.kappa_max(rec),
            reg.finality.confirmations() as u64,
        ))
    }

    /// The larger κ of a CCT's two chains (0 for one not followed).
    pub fn kappa_max(&self, rec: &CctRecord) -> u32 {
        [rec.terms.chain_i, rec.terms.chain_j]
            .iter()
            .filter_map(|ch| self.chains.iter().find(|c| c.chain_id == *ch))
            .map(|c| c.kappa)
            .max()
            .unwrap_or(0)
    }

    /// This deployment's bound on the terms' expiry ([`terms_ahead`] for
    /// its κ̄ and the least κ of its chains).
    pub fn max_terms_ahead(&self) -> u64 {
        let kappa = self.chains.iter().map(|c| c.kappa).min().unwrap_or(u32::MAX);
        terms_ahead(self.kappa_bar, kappa)
    }

    /// Checks the configuration before a chain is built on it.
    pub fn validate(&self) -> Result<(), String> {
        if self.kappa_bar < 2 {
            return Err("κ̄ must be at least 2 (Algorithm 5.1)".into());
        }
        amm::check_weights(&self.weights)?;
        let mut seen = std::collections::BTreeSet::new();
        for c in &self.chains {
            if c.chain_id == self.bob_chain || !seen.insert(c.chain_id) {
                return Err(format!("chain {} registered twice or as the BoB", c.chain_id));
            }
            if c.kappa == 0 || (c.finality.confirmations() as u64) >= c.kappa as u64 {
                return Err(format!("chain {}: κ_i must exceed the confirmations k", c.chain_id));
            }
            match self.penalty_floors.iter().filter(|f| f.chain == c.chain_id).count() {
                1 => {}
                n => return Err(format!("chain {}: {n} penalty floors, need exactly one", c.chain_id)),
            }
        }
        for f in &self.penalty_floors {
            if !seen.contains(&f.chain) {
                return Err(format!("penalty floor for unregistered chain {}", f.chain));
            }
            if f.num == 0 || f.den == 0 {
                return Err(format!("chain {}: a penalty floor is positive (num and den > 0)", f.chain));
            }
        }
        for (t, _) in &self.weights {
            match self.reference_balances.iter().filter(|(c, _)| c == t).count() {
                1 if self.reference_balance(*t) > 0 => {}
                1 => return Err(format!("token {t}: a reference balance is positive")),
                n => return Err(format!("token {t}: {n} reference balances, need exactly one")),
            }
        }
        for (t, _) in &self.reference_balances {
            if !self.weights.iter().any(|(c, _)| c == t) {
                return Err(format!("reference balance for token {t}, which the pool does not hold"));
            }
        }
        // The genesis price itself keeps every chain's penalty floor: a
        // deployment whose own price sits below its floor could price no
        // CCT on that chain (every one `PenaltyOutOfBounds`).
        for f in &self.penalty_floors {
            let x_j = PRICE_CHECK_AMOUNT;
            let x_b = self.reference_price(x_j, self.bob_chain, f.chain).map_err(|e| e.to_string())?;
            if x_b < f.min_x_b(x_j).map_err(|e| e.to_string())? {
                return Err(format!(
                    "chain {}: the genesis price ({x_b} Token_B for {x_j}) is below its penalty floor",
                    f.chain
                ));
            }
        }
        Ok(())
    }

    /// The reference balance of `token` in the genesis (0 for a token the
    /// pool does not hold, which [`validate`](Self::validate) refuses).
    pub fn reference_balance(&self, token: ChainId) -> u128 {
        self.reference_balances.iter().find(|(c, _)| *c == token).map_or(0, |(_, b)| *b)
    }

    /// Eq. 5.2 at the genesis price: the `token_i` worth `x_j Token_j`.
    pub fn reference_price(&self, x_j: u128, token_i: ChainId, token_j: ChainId) -> Result<u128, XchainError> {
        let weight = |t: ChainId| self.weights.iter().find(|(c, _)| *c == t).map_or(0, |(_, w)| *w);
        amm::amount_in_for(
            x_j,
            (token_i, self.reference_balance(token_i), weight(token_i)),
            (token_j, self.reference_balance(token_j), weight(token_j)),
        )
    }

    /// The least `x_B` for `x_j` paid on `chain` (0 for a chain without a
    /// floor, which [`validate`](Self::validate) refuses).
    pub fn min_x_b(&self, chain: ChainId, x_j: u128) -> Result<u128, XchainError> {
        match self.penalty_floors.iter().find(|f| f.chain == chain) {
            Some(f) => f.min_x_b(x_j),
            None => Ok(0),
        }
    }

    /// `TPK_Addr_i` of chain `chain`.
    pub fn tpk_address(&self, chain: ChainId) -> Address {
        match self.group_accounts.iter().find(|(c, _)| *c == chain) {
            Some((_, a)) => *a,
            None => tpk_address(&self.group_key, &self.deployment, chain),
        }
    }
}

pub struct BobContract {
    cfg: BobConfig,
    chains: BTreeMap<ChainId, ChainRegistration>,
    weights: BTreeMap<ChainId, u64>,
    /// A planted bug (`mutants` feature only).
    #[cfg(feature = "mutants")]
    pub mutation: Option<crate::ccdi::Mutation>,
}

impl BobContract {
    pub fn new(cfg: BobConfig) -> Result<Self, String> {
        cfg.validate()?;
        let chains = cfg.chains.iter().map(|c| (c.chain_id, c.clone())).collect();
        let weights = cfg.weights.iter().copied().collect();
        Ok(Self {
            cfg,
            chains,
            weights,
            #[cfg(feature = "mutants")]
            mutation: None,
        })
    }

    pub fn config(&self) -> &BobConfig {
        &self.cfg
    }

    pub(crate) fn reg(&self, chain: ChainId) -> Result<&ChainRegistration, XchainError> {
        self.chains.get(&chain).ok_or(XchainError::UnknownChain(chain))
    }
}

/// `u128` amounts as decimal strings in JSON (no client rounds them
/// through a float; `serde_json` cannot hold them as numbers).
pub mod amount_str {
    pub fn serialize<S: serde::Serializer>(v: &u128, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&v.to_string())
    }
}

// ---------------------------------------------------------------- arguments

/// `relay`: consecutive headers of one external chain.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Relay {
    pub chain: ChainId,
    pub headers: Vec<SealedHeader>,
}

#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Withdraw {
    pub amount: Amount,
}

/// Π_CCTC step (iii): a Merkle proof that `nt` (a transfer to `TPK_Addr_i`)
/// is in block `height` of chain `chain`.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Claim {
    pub chain: ChainId,
    pub height: Height,
    pub nt: SignedTransaction,
    pub proof: MerkleProof,
}

/// `claim_relayed`: a Π_CCTC claim (as `claim`) of a lock whose block
/// header the BoB no longer keeps, with that header and its path in the
/// accumulator of relayed headers (attack R5-2: a relay catching up drops
/// a header two BoB blocks after it became final). The path is against the
/// accumulator as it stands when the claim executes.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct ClaimRelayed {
    pub claim: Claim,
    pub header: BlockHeader,
    pub header_proof: Vec<Hash32>,
}

/// `refund_lock`: Π_CCTC's way back for a lock nobody claimed in time —
/// `nt` (a transfer to `TPK_Addr_i`) is in block `header` of chain
/// `chain`, and `header` is leaf `header.height − anchor − 1` of the BoB's
/// accumulator of that chain's relayed headers ([`crate::mmr`]). The path
/// is against the accumulator as it stands when the refund executes: if a
/// relay in between merged the header's mountain into a larger one, the
/// refund is refused (`BadHeaderProof`, nothing changes) and the locker
/// builds the path again.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct RefundLock {
    pub chain: ChainId,
    pub header: BlockHeader,
    pub header_proof: Vec<Hash32>,
    pub nt: SignedTransaction,
    pub proof: MerkleProof,
}

/// `redeem`: burn claimed `Token_i` on the BoB for a payment from
/// `TPK_Addr_i` to `to` on chain `chain`.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Redeem {
    pub chain: ChainId,
    pub amount: u128,
    pub to: Address,
}

/// A release the committee signs: `amount` from `TPK_Addr_i` to `to`.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct ReleaseOrder {
    pub to: Address,
    #[serde(with = "amount_str")]
    pub amount: u128,
}

/// SC_AMM: burn `shares` of the caller's LP shares of the pool for their
/// part of *every* token's balance (pro rata, rounded down).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct WithdrawLiquidity {
    pub shares: u128,
}

/// Π_CCTC step (iv): join the pool with at most `amounts` of each of its
/// tokens (claimed `Token_i`; Token_B is the value attached to the call,
/// equal to its entry). Every token of the pool must be named: a join adds
/// all of them pro rata to the pool's balances (the opening join sets
/// those balances; the price is the genesis's, [`BobConfig::reference_balances`]),
/// whatever is not taken stays claimed or is paid back.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Provide {
    pub amounts: Vec<(ChainId, u128)>,
}

/// LP shares the opening join locks for ever (minted to nobody), so the
/// pool's share supply never returns to 0 and no later join can open it
/// again at a price of its choosing (Uniswap v2's `MINIMUM_LIQUIDITY`).
pub const LOCKED_SHARES: u128 = 1_000;

/// The terms of a cross-chain transaction (Algorithm 5.1 ln 02): the sender
/// gives `Token_i` on `chain_i` for `x_j Token_j` of the receiver on
/// `chain_j`. Both parties agree on every term: the sender by signing the
/// transaction that carries them, the receiver by signing their digest
/// (principle 7: nothing the sender chooses alone binds the receiver).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct CctTerms {
    /// The BoB deployment the terms are for (the hash of its genesis,
    /// [`BobConfig::deployment`]); the receiver's signature binds it.
    pub deployment: Hash32,
    pub chain_i: ChainId,
    pub chain_j: ChainId,
    /// PK_{s,i}, PK_{s,j}, PK_{s,B}: the sender's addresses.
    pub sender_i: Address,
    pub sender_j: Address,
    pub sender_b: Address,
    /// PK_{r,i}, PK_{r,j}: the receiver's addresses; its BoB identity is `receiver_pk`.
    pub receiver_i: Address,
    pub receiver_j: Address,
    pub receiver_pk: PublicKey,
    #[serde(with = "amount_str")]
    pub x_j: u128,
    /// Bounds on the `x_i` the pool prices (slippage both parties accept).
    #[serde(with = "amount_str")]
    pub min_x_i: u128,
    #[serde(with = "amount_str")]
    pub max_x_i: u128,
    /// The least `x_B` (the Token_B worth of `x_j`, what a withholding
    /// sender pays the receiver) the receiver accepts: its own valuation
    /// of what it pays (attack R5-3).
    #[serde(with = "amount_str")]
    pub min_x_b: u128,
    /// The last BoB height at which the CCT may execute.
    pub expires_at: Height,
    /// Distinguishes repeated exchanges between the same parties.
    pub salt: u64,
    /// The nonce of `sender_i` on `chain_i` that pays NT_s — exactly this
    /// one, not a floor (attack R8-5): the sender's next nonce there when
    /// the terms were agreed. A nonce is spent once per chain, so one
    /// transfer pays one set of terms; the receiver's wallet signs one set
    /// of terms per (payer, chain, nonce) across every deployment it trades
    /// on ([`crate::wallet::TermsRegistry`]).
    pub nonce_i: u64,
    /// The nonce of `receiver_j` on `chain_j` that pays NT_r — exactly this
    /// one as well (attack R10-1, the mirror of R8-5): one transfer of the
    /// receiver pays one set of terms. The sender keeps the same registry
    /// as the receiver ([`crate::wallet::TermsRegistry`]), so neither party
    /// agrees two sets of terms naming one (payer, chain, nonce).
    pub nonce_j: u64,
}

impl CctTerms {
    /// The CCT's identifier.
    pub fn id(&self) -> Hash32 {
        hash_tagged(CCT_ID, self)
    }

    /// What the receiver signs: the terms (which name the deployment, the
    /// BoB's genesis) bound to the BoB chain and contract.
    pub fn digest(&self, bob_chain: ChainId) -> Hash32 {
        hash_tagged(CCT_TERMS, &(bob_chain, BOB_CONTRACT_ID, self))
    }
}

/// `cct`: Phase 1.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct CctArgs {
    pub terms: CctTerms,
    pub receiver_sig: Signature,
}

/// Which native transaction of a CCTE.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum Side {
    /// NT_s: the sender pays `x_i Token_i` to the receiver on chain `i`.
    Sender,
    /// NT_r: the receiver pays `x_j Token_j` to the sender on chain `j`.
    Receiver,
}

impl Side {
    pub fn name(self) -> &'static str {
        match self {
            Side::Sender => "sender",
            Side::Receiver => "receiver",
        }
    }
}

/// `post_nt`: Phase 2's copy of a native transaction sent to the BoB.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct PostNt {
    pub cct: Hash32,
    pub side: Side,
    pub nt: SignedTransaction,
}

/// `prove`: a proof transaction PT (Phase 3, lns 14–15).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct ProofTx {
    pub cct: Hash32,
    pub side: Side,
    pub nt: SignedTransaction,
    pub height: Height,
    pub proof: MerkleProof,
}

/// `prove_relayed`: a proof transaction (as `prove`) for an NT whose block
/// header the BoB no longer keeps, with that header and its path in the
/// BoB's accumulator of relayed headers ([`crate::mmr`]) — attack R5-2: a
/// relay catching up can drop a header two BoB blocks after it became
/// final, so a payer (or a BoB node in sub-situation 2) that needs longer
/// to get its proof included proves against the accumulator instead. The
/// path is against the accumulator as it stands when the transaction
/// executes (a relay in between that merges the header's mountain makes it
/// `BadHeaderProof`, nothing changes, and the prover builds it again).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct ProveRelayed {
    pub pt: ProofTx,
    pub header: BlockHeader,
    pub header_proof: Vec<Hash32>,
}

/// Sub-situation 3's evidence that a posted native transaction can never
/// land on its chain (lns 28–29).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub enum FraudEvidence {
    /// The payer's account record at the header (`None`: no account) and
    /// its state proof: the nonce has not passed NT's, and the balance
    /// cannot pay NT's value plus its maximum fee.
    Balance { account: Option<Account>, proof: StateProof },
    /// Another transaction of the payer with NT's nonce, included in the
    /// header's block: NT's nonce is spent.
    NonceTaken { other: SignedTransaction, proof: MerkleProof },
}

/// `fraud`: a fraud-proof transaction T_FP.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct Fraud {
    pub cct: Hash32,
    pub side: Side,
    pub height: Height,
    pub evidence: FraudEvidence,
}

/// `cct_v`: Situation 2's verification transaction (ln 22).
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct CctV {
    pub cct: Hash32,
}

// ------------------------------------------------------------------ records

/// SC_D: a party's Token_B deposit.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct DepositAccount {
    #[serde(with = "amount_str")]
    pub free: u128,
    /// Backing open CCTs.
    #[serde(with = "amount_str")]
    pub locked: u128,
}

/// How one side of a CCTE ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub enum SideState {
    Pending,
    /// Its native transaction was proved in block `height` (ln 17).
    Proved {
        nt: Hash32,
        height: Height,
    },
    /// Withheld: `x_B` of its deposit went to the counterparty (lns 24–25).
    Penalised,
}

/// SC_T's record of a CCT.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize)]
pub struct CctRecord {
    pub terms: CctTerms,
    #[serde(with = "amount_str")]
    pub x_i: u128,
    #[serde(with = "amount_str")]
    pub x_b: u128,
    /// Locked from each party's deposit: κ̄ · x_B.
    #[serde(with = "amount_str")]
    pub lock: u128,
    /// e_i, e_j: the external chains' epochs (stored tips) when the CCT executed.
    pub e_i: Height,
    pub e_j: Height,
    /// e_* + κ̄ + κ_*: the per-chain deadlines of ln 08.
    pub deadline_i: Height,
    pub deadline_j: Height,
    /// The BoB block time at which the CCT executed (informational: SC_MPV
    /// judges freshness by the terms' nonce floors, never by block times).
    pub stored_at: Timestamp,
    pub sender: SideState,
    pub receiver: SideState,
    /// CCT_V has run (Situation 2).
    pub verified: bool,
    /// Set by CCT_V: sub-situation 2's forwarding deadlines
    /// ([`forward_deadline_for`]): a posted deadline NT's `valid_until +
    /// k`, else `t_* + κ̄ + κ_*` from the chains' stored tips `t_*` when
    /// CCT_V ran. A side still
    /// pending once its chain reaches it is resolved by a second CCT_V as
    /// withheld (see [`BobContract`]'s `cct_v`).
    pub forward_i: Height,
    pub forward_j: Height,
    pub complete: bool,
}

impl CctRecord {
    /// IN_s / IN_r (lns 06–07): chain, payer, payee and amount of a side's
    /// native transfer.
    /// Whether `tx` pays `side`'s instruction: the instruction's chain,
    /// payer, payee and amount, with exactly the terms' nonce of the side
    /// (`nonce_i` / `nonce_j`). Fee and gas limit are the payer's wallet's business (a
    /// fee-bumped re-send of the payment pays it as well).
    pub fn pays_instruction(&self, side: Side, tx: &SignedTransaction) -> bool {
        BobContract::check_instruction(self, side, tx).is_ok() && BobContract::check_floor(self, side, tx).is_ok()
    }

    pub fn instruction(&self, side: Side) -> (ChainId, Address, Address, u128) {
        let t = &self.terms;
        match side {
            Side::Sender => (t.chain_i, t.sender_i, t.receiver_i, self.x_i),
            Side::Receiver => (t.chain_j, t.receiver_j, t.sender_j, t.x_j),
        }
    }

    /// The ln-08 deadline `e_* + κ̄ + κ_*` of the side's chain.
    pub fn deadline(&self, side: Side) -> Height {
        match side {
            Side::Sender => self.deadline_i,
            Side::Receiver => self.deadline_j,
        }
    }

    /// The forwarding deadline of the side's chain (0 before CCT_V).
    pub fn forward_deadline(&self, side: Side) -> Height {
        match side {
            Side::Sender => self.forward_i,
            Side::Receiver => self.forward_j,
        }
    }

    /// The nonce the side's payer pays its NT with: the terms' exact
    /// `nonce_i` (sender) or `nonce_j` (receiver).
    pub fn agreed_nonce(&self, side: Side) -> u64 {
        match side {
            Side::Sender => self.terms.nonce_i,
            Side::Receiver => self.terms.nonce_j,
        }
    }

    /// `e_*` of the side's chain.
    pub fn epoch(&self, side: Side) -> Height {
        match side {
            Side::Sender => self.e_i,
            Side::Receiver => self.e_j,
        }
    }

    pub fn state(&self, side: Side) -> SideState {
        match side {
            Side::Sender => self.sender,
            Side::Receiver => self.receiver,
        }
    }

    fn set_state(&mut self, side: Side, s: SideState) {
        match side {
            Side::Sender => self.sender = s,
            Side::Receiver => self.receiver = s,
        }
    }
}

// ------------------------------------------------------------- storage keys

fn tip_key(chain: ChainId) -> Vec<u8> {
    [b"h/tip/".as_slice(), &chain.to_be_bytes()].concat()
}
/// `(BoB height, headers of `chain` relayed in that block)`.
fn relayed_key(chain: ChainId) -> Vec<u8> {
    [b"h/r/".as_slice(), &chain.to_be_bytes()].concat()
}
/// `(BoB height, headers relayed in that block)` of the block with relays
/// of `chain` before the one [`relayed_key`] names (attack R13-1: with
/// both, SC_T knows the stored tip as of the end of the block before the
/// current one, [`settled_tip`]).
fn relayed_prev_key(chain: ChainId) -> Vec<u8> {
    [b"h/rp/".as_slice(), &chain.to_be_bytes()].concat()
}
/// The stored tip of a chain as of the end of BoB block `now − 2` (the
/// start of block `now − 1`): `tip`, the stored tip now, less the headers
/// relayed in blocks `now − 1` and `now`, from the chain's last two blocks
/// with relays `last` and `prev` (`(BoB height, headers)`, as
/// [`relayed_key`] and [`relayed_prev_key`] hold them). SC_T's closing
/// CCT_V and the BoB nodes ([`crate::mbs::BobMbs`]) both judge the
/// forwarding deadline by it (attack R13-1).
pub fn settled_tip(tip: Height, last: Option<(Height, u64)>, prev: Option<(Height, u64)>, now: Height) -> Height {
    let mut t = tip;
    for (at, used) in [last, prev].into_iter().flatten() {
        if at.saturating_add(1) < now {
            break;
        }
        t = t.saturating_sub(used);
    }
    t
}
/// The accumulator of every header of `chain` relayed since its anchor.
pub(crate) fn mmr_key(chain: ChainId) -> Vec<u8> {
    [b"h/m/".as_slice(), &chain.to_be_bytes()].concat()
}
fn header_key(chain: ChainId, h: Height) -> Vec<u8> {
    [b"h/b/".as_slice(), &chain.to_be_bytes(), &h.to_be_bytes()].concat()
}
fn deposit_key(a: &Address) -> Vec<u8> {
    [b"d/".as_slice(), &a.0].concat()
}
fn wrapped_key(token: ChainId, a: &Address) -> Vec<u8> {
    [b"w/".as_slice(), &token.to_be_bytes(), &a.0].concat()
}
/// Most BoB blocks between the quote a receiver signs bounds around and
/// the CCT it prices: terms built by [`crate::mbs::BobMbs::terms`] expire
/// this many blocks later.
///
/// Decision (attack R4-2, revised for R5-8 / R5-3): `x_B` (the Token_B
/// worth of `x_j`, the withholding penalty) was first priced at the spot
/// pools, so a sender holding Token_B's liquidity could withdraw it around
/// its CCT in the same block and owe a penalty of 1; then at the largest
/// value over every pool state of this window, which let one block of
/// borrowed Token_B liquidity inflate it for the whole window (every CCT
/// refused `InsufficientDeposit`, R5-8) and still followed a pool drained
/// for longer than the window (R5-3). Now `x_B` is priced like `x_i` at
/// the pools' reference balances ([`amm::PriceRef`]: at most 2 % a block,
/// nothing inside a block), and the receiver signs its own floor
/// [`CctTerms::min_x_b`] on it; a CCT priced below is refused
/// (`PenaltyOutOfBounds`) and changes nothing.
pub const PRICE_WINDOW: u64 = 16;

/// The furthest ahead of the BoB's height terms may expire (attack
/// R11-5): SC_T refuses a CCT whose `expires_at` lies more than this many
/// blocks after the block it executes in (`ExpiryTooFar`), and a party's
/// wallet refuses to agree such terms
/// ([`crate::wallet::TermsRegistry::observe`]).
///
/// Decision: terms the counterparty draws up and never submits hold the
/// payers' nonces in their wallets until `expires_at` passes; unbounded,
/// that was for ever. The terms builder gives [`PRICE_WINDOW`] blocks, and
/// so does the bound. While the held nonce is out, a later exchange of
/// the payer on that chain names the nonce above it, and the payer's
/// driver fills the nonce given back with a void transfer once the terms
/// expired ([`crate::mbs::BobMbs::wallet_duties`]); that later exchange's
/// payment lands in time as long as its window — κ̄ + κ_j blocks to the
/// deadline, as many again for the BoB nodes' forwarding — is longer than
/// this bound (the default deployment: 2 · (2 + 16) = 36 > 16).
///
/// Decision (attack R12-2): one constant did not fit every deployment:
/// with κ = 4 (`xchain up --kappa 4`, this crate's CCDI deployments) the
/// later exchange's window is 2 · (2 + 4) = 12 < 16, withheld terms still
/// held the nonce when it closed, and the honest payer was penalised. A
/// deployment's bound is [`terms_ahead`] — this constant or κ̄ + κ of its
/// shortest-windowed chain, whichever is less
/// ([`BobConfig::max_terms_ahead`]); SC_T, the terms builders and the
/// wallet ([`crate::wallet::TermsRegistry::observe_limit`]) use it.
pub const MAX_TERMS_AHEAD: u64 = PRICE_WINDOW;

/// The furthest ahead of the BoB's height terms may expire on a
/// deployment with `kappa_bar` and whose chains keep at least `kappa`
/// headers: [`MAX_TERMS_AHEAD`] or the ln-08 window κ̄ + κ, whichever is
/// less. Withheld terms then expire (and their nonce is filled) within the
/// first half of a later exchange's window `2 · (κ̄ + κ_j)`, leaving its
/// payment the other half (k < κ_j confirmations and the fill's blocks
/// included) to land and be proved (attack R12-2).
pub fn terms_ahead(kappa_bar: u64, kappa: u32) -> u64 {
    MAX_TERMS_AHEAD.min(kappa_bar.saturating_add(kappa as u64)).max(1)
}

/// The pool's [`amm::PriceRef`]: what SC_AMM prices from (attack R5-5).
fn price_ref_key(token: ChainId) -> Vec<u8> {
    [b"pr/".as_slice(), &token.to_be_bytes()].concat()
}
fn pool_key(token: ChainId) -> Vec<u8> {
    [b"p/".as_slice(), &token.to_be_bytes()].concat()
}
/// An LP's shares of the whole pool (every token; attack R6-5).
fn lp_key(a: &Address) -> Vec<u8> {
    [b"lq/".as_slice(), &a.0].concat()
}
/// Total LP shares of the pool, [`LOCKED_SHARES`] included.
const LP_TOTAL: &[u8] = b"lqt";
/// What a used transfer hash maps to: proved / claimed, or refunded.
const USED: u8 = 1;
const REFUNDED: u8 = 2;
fn used_key(nt: &Hash32) -> Vec<u8> {
    [b"u/".as_slice(), &nt.0].concat()
}
fn cct_key(id: &Hash32) -> Vec<u8> {
    [b"c/".as_slice(), &id.0].concat()
}
fn release_seq_key(chain: ChainId) -> Vec<u8> {
    [b"r/n/".as_slice(), &chain.to_be_bytes()].concat()
}
fn release_key(chain: ChainId, seq: u64) -> Vec<u8> {
    [b"r/o/".as_slice(), &chain.to_be_bytes(), &seq.to_be_bytes()].concat()
}
fn posted_key(id: &Hash32, side: Side) -> Vec<u8> {
    [b"n/".as_slice(), &id.0, &[side as u8]].concat()
}
/// The CCT its payer first posted a native transaction with this chain,
/// payer and nonce for (attack R5-4): a payment with that nonce — the
/// posted NT or a fee-bumped re-send of it — proves that CCT's side only.
fn posted_for_key(chain: ChainId, payer: &Address, nonce: u64) -> Vec<u8> {
    [b"nc/".as_slice(), &chain.to_be_bytes(), &payer.0, &nonce.to_be_bytes()].concat()
}
fn posted_for_tx(nt: &SignedTransaction) -> Vec<u8> {
    posted_for_key(nt.tx.chain_id, &nt.sender(), nt.tx.nonce)
}
/// A CCT in sub-situation 2 (CCT_V ran, a posted NT still unproved): one
/// slot per CCT, set by CCT_V and deleted when the CCT completes; BoB nodes
/// find the CCTs to close by a scan of [`FORWARDING`].
///
/// Decision (attack R6-1): this was one stored list every CCT_V entering
/// sub-situation 2 and every completion read and rewrote whole, so anyone
/// could grow it (CCTs between two of its own keys, NTs that never land)
/// until no CCT_V, `prove` or closing CCT_V of sub-situation 2 fitted in a
/// transaction's gas. Now each costs one slot whatever the number of
/// others: no on-chain list is ever read whole.
const FORWARDING: &[u8] = b"fw/";
fn forwarding_key(id: &Hash32) -> Vec<u8> {
    [FORWARDING, &id.0].concat()
}

/// `Val_proof(P, NT, R(BH))` (§5.2.5) as SC_MPV runs it: the leaf is the
/// transaction's hash and the leaf count is the header's, never the prover's.
pub fn verify_inclusion(header: &BlockHeader, nt: &SignedTransaction, proof: &MerkleProof) -> bool {
    proof.leaf_count == header.tx_count as u64 && proof.verify(&nt.hash(), &header.tx_root)
}

pub(crate) fn fail<T>(e: XchainError) -> Result<T, ContractError> {
    Err(e.into())
}

pub(crate) fn read_or<T: BorshDeserialize + Default>(
    ctx: &mut CallContext<'_, '_>,
    key: &[u8],
) -> Result<T, ContractError> {
    Ok(ctx.read_typed::<T>(key)?.unwrap_or_default())
}

impl BobContract {
    /// How many of `reg`'s latest headers the BoB keeps: [`kept_headers`]
    /// ([`ChainRegistration::kept`]); κ_i alone under the planted
    /// `KeepKappa` (`mutants` feature).
    pub(crate) fn kept(&self, reg: &ChainRegistration) -> u64 {
        #[cfg(feature = "mutants")]
        if self.mutation == Some(crate::ccdi::Mutation::KeepKappa) {
            return reg.kappa as u64;
        }
        reg.kept()
    }

    /// The stored tip of a chain: the anchor until a header is relayed.
    pub(crate) fn tip(&self, ctx: &mut CallContext<'_, '_>, chain: ChainId) -> Result<(Height, Hash32), ContractError> {
        let reg = self.reg(chain)?;
        Ok(ctx.read_typed::<(Height, Hash32)>(&tip_key(chain))?.unwrap_or((reg.anchor_height, reg.anchor_hash)))
    }

    /// A stored, final header of `chain` at `height`.
    pub(crate) fn final_header(
        &self,
        ctx: &mut CallContext<'_, '_>,
        chain: ChainId,
        height: Height,
    ) -> Result<BlockHeader, ContractError> {
        let reg = self.reg(chain)?.clone();
        let (tip, _) = self.tip(ctx, chain)?;
        if height > tip {
            return fail(XchainError::UnknownHeader { chain, height, tip });
        }
        let oldest_kept = tip.saturating_sub(self.kept(&reg));
        if height <= oldest_kept || height <= reg.anchor_height {
            return fail(XchainError::StaleHeader { chain, height, oldest_kept });
        }
        let k = reg.finality.confirmations();
        if tip - height < k as u64 {
            return fail(XchainError::NotFinal { chain, height, needed: k, have: tip - height });
        }
        match ctx.read_typed::<BlockHeader>(&header_key(chain, height))? {
            Some(h) => Ok(h),
            None => fail(XchainError::StaleHeader { chain, height, oldest_kept }),
        }
    }

    /// `Val_proof(P, NT, R(BH))` against a stored final header; the leaf
    /// count comes from the header, never from the prover.
    fn check_inclusion(
        &self,
        ctx: &mut CallContext<'_, '_>,
        chain: ChainId,
        height: Height,
        nt: &SignedTransaction,
        proof: &MerkleProof,
    ) -> Result<BlockHeader, ContractError> {
        let header = self.final_header(ctx, chain, height)?;
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (proof.siblings.len() as u64 + 2))?;
        if !verify_inclusion(&header, nt, proof) && !self.skips_proof() {
            return fail(XchainError::BadMerkleProof { chain, height });
        }
        Ok(header)
    }

    /// A final header of `chain` at `height` shown by its path in the
    /// accumulator of relayed headers, kept or not (attack R5-2).
    pub(crate) fn relayed_header(
        &self,
        ctx: &mut CallContext<'_, '_>,
        chain: ChainId,
        height: Height,
        header: &BlockHeader,
        path: &[Hash32],
    ) -> Result<(), ContractError> {
        let reg = self.reg(chain)?.clone();
        let (tip, _) = self.tip(ctx, chain)?;
        if height > tip {
            return fail(XchainError::UnknownHeader { chain, height, tip });
        }
        let k = reg.finality.confirmations();
        if tip - height < k as u64 {
            return fail(XchainError::NotFinal { chain, height, needed: k, have: tip - height });
        }
        let mmr: Mmr = read_or(ctx, &mmr_key(chain))?;
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (path.len() as u64 + 2))?;
        let in_mmr = header.chain_id == chain
            && header.height == height
            && height > reg.anchor_height
            && mmr.verify(height - reg.anchor_height - 1, &header.hash(), path);
        if !in_mmr {
            return fail(XchainError::BadHeaderProof { chain, height });
        }
        Ok(())
    }

    /// `Val_proof` of `nt` against a kept final header (`relayed: None`,
    /// [`Self::check_inclusion`]) or one shown in the accumulator of relayed
    /// headers ([`Self::check_relayed_inclusion`]); shared by `claim(_relayed)`
    /// and `prove(_relayed)`.
    fn check_kept_or_relayed_inclusion(
        &self,
        ctx: &mut CallContext<'_, '_>,
        chain: ChainId,
        height: Height,
        nt: &SignedTransaction,
        proof: &MerkleProof,
        relayed: Option<(&BlockHeader, &Vec<Hash32>)>,
    ) -> Result<(), ContractError> {
        match relayed {
            None => self.check_inclusion(ctx, chain, height, nt, proof).map(|_| ()),
            Some((header, path)) => self.check_relayed_inclusion(ctx, chain, height, header, path, nt, proof),
        }
    }

    /// `Val_proof` against a header shown by its accumulator path
    /// ([`Self::relayed_header`]).
    #[allow(clippy::too_many_arguments)]
    fn check_relayed_inclusion(
        &self,
        ctx: &mut CallContext<'_, '_>,
        chain: ChainId,
        height: Height,
        header: &BlockHeader,
        path: &[Hash32],
        nt: &SignedTransaction,
        proof: &MerkleProof,
    ) -> Result<(), ContractError> {
        self.relayed_header(ctx, chain, height, header, path)?;
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (proof.siblings.len() as u64 + 2))?;
        if !verify_inclusion(header, nt, proof) && !self.skips_proof() {
            return fail(XchainError::BadMerkleProof { chain, height });
        }
        Ok(())
    }

    fn relay(&self, ctx: &mut CallContext<'_, '_>, a: Relay) -> Result<Vec<u8>, ContractError> {
        let reg = self.reg(a.chain)?.clone();
        if a.headers.is_empty() || a.headers.len() > MAX_RELAY_BATCH {
            return revert(format!("a relay carries 1 to {MAX_RELAY_BATCH} headers"));
        }
        // At most `relay_per_block` headers of this chain per BoB block.
        let cap = relay_per_block(reg.kappa, reg.finality.confirmations());
        let k = reg.finality.confirmations() as u64;
        let (old_tip, old_hash) = self.tip(ctx, a.chain)?;
        // Fork choice (attack R6-5, see `crate::headers`): a batch whose
        // first header is at or below the stored tip is a competing branch
        // from its parent; it must leave every final header in place and
        // end above the stored tip (longest branch wins, the first of
        // equally long ones stays).
        let first = a.headers[0].header.height;
        let final_height = old_tip.saturating_sub(k).max(reg.anchor_height);
        let branch_tip = first.saturating_add(a.headers.len() as u64 - 1);
        let (mut tip, mut tip_hash) = if first <= old_tip {
            if first <= final_height {
                return fail(XchainError::ForkBelowFinality { chain: a.chain, height: first, final_height });
            }
            if branch_tip <= old_tip {
                return fail(XchainError::ForkNotLonger { chain: a.chain, branch_tip, tip: old_tip });
            }
            let base = first - 1;
            let base_hash = if base == reg.anchor_height {
                reg.anchor_hash
            } else {
                match ctx.read_typed::<BlockHeader>(&header_key(a.chain, base))? {
                    Some(h) => h.hash(),
                    None => {
                        return fail(XchainError::ForkBelowFinality { chain: a.chain, height: first, final_height })
                    }
                }
            };
            (base, base_hash)
        } else {
            (old_tip, old_hash)
        };
        // At most `relay_per_block` headers of this chain per BoB block,
        // counted as how far the stored tip advances.
        let advance = branch_tip.saturating_sub(old_tip);
        let height = ctx.height();
        let (at, used): (Height, u64) = ctx.read_typed(&relayed_key(a.chain))?.unwrap_or((height, 0));
        if at != height && used > 0 {
            // The first relay of this block: the last block with relays
            // becomes the one before it ([`settled_tip`]).
            ctx.write_typed(&relayed_prev_key(a.chain), &(at, used))?;
        }
        let used = if at == height { used } else { 0 };
        if used + advance > cap {
            return fail(XchainError::RelayTooFast { chain: a.chain, max: cap, already: used });
        }
        ctx.write_typed(&relayed_key(a.chain), &(height, used + advance))?;
        let mut mmr: Mmr = read_or(ctx, &mmr_key(a.chain))?;
        // The stored tip's time bounds the next header's (attack R4-3).
        let mut parent_time = if tip == reg.anchor_height {
            Some(reg.anchor_timestamp)
        } else {
            ctx.read_typed::<BlockHeader>(&header_key(a.chain, tip))?.map(|h| h.timestamp)
        };
        for sh in &a.headers {
            ctx.charge(gas::ECRECOVER * reg.seal_checks(&sh.seal))?;
            reg.check_next_after(tip, &tip_hash, parent_time, sh)?;
            parent_time = Some(sh.header.timestamp);
            tip = sh.header.height;
            tip_hash = sh.header.hash();
            ctx.write_typed(&header_key(a.chain, tip), &sh.header)?;
            // The accumulator holds final headers only (a non-final suffix
            // may still be replaced): the header `k` below the new tip, once.
            let fin = tip.saturating_sub(k);
            if fin > reg.anchor_height && fin == reg.anchor_height + mmr.leaves + 1 {
                let h = if fin == tip {
                    sh.header.clone()
                } else {
                    match ctx.read_typed::<BlockHeader>(&header_key(a.chain, fin))? {
                        Some(h) => h,
                        None => return fail(XchainError::UnknownHeader { chain: a.chain, height: fin, tip }),
                    }
                };
                // At most one merge per set bit of the leaf count: ≤ 64 hashes.
                ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (mmr.leaves.trailing_ones() as u64 + 1))?;
                mmr.push(&h.hash());
            }
            let drop = tip.saturating_sub(self.kept(&reg));
            if drop > reg.anchor_height {
                ctx.delete(&header_key(a.chain, drop))?;
            }
        }
        ctx.write_typed(&tip_key(a.chain), &(tip, tip_hash))?;
        ctx.write_typed(&mmr_key(a.chain), &mmr)?;
        ctx.emit("headers_relayed", vec![("chain".into(), a.chain.to_string()), ("tip".into(), tip.to_string())])?;
        Ok(Vec::new())
    }

    // ----------------------------------------------------------------- SC_D

    fn deposit(&self, ctx: &mut CallContext<'_, '_>) -> Result<Vec<u8>, ContractError> {
        let v = ctx.value().0;
        if v == 0 {
            return fail(XchainError::ZeroAmount);
        }
        let who = ctx.caller();
        let mut d: DepositAccount = read_or(ctx, &deposit_key(&who))?;
        d.free = d.free.checked_add(v).ok_or(XchainError::Overflow)?;
        ctx.write_typed(&deposit_key(&who), &d)?;
        ctx.emit("deposit", vec![("who".into(), who.to_string()), ("amount".into(), v.to_string())])?;
        Ok(Vec::new())
    }

    fn withdraw(&self, ctx: &mut CallContext<'_, '_>, a: Withdraw) -> Result<Vec<u8>, ContractError> {
        if a.amount.is_zero() {
            return fail(XchainError::ZeroAmount);
        }
        let who = ctx.caller();
        let mut d: DepositAccount = read_or(ctx, &deposit_key(&who))?;
        if d.free < a.amount.0 {
            return fail(XchainError::Insufficient { what: "free deposit", have: d.free, need: a.amount.0 });
        }
        d.free -= a.amount.0;
        ctx.write_typed(&deposit_key(&who), &d)?;
        ctx.pay(&who, a.amount)?;
        Ok(Vec::new())
    }

    // ------------------------------------------------------- Π_CCTC, SC_AMM

    fn claim(&self, ctx: &mut CallContext<'_, '_>, a: Claim) -> Result<Vec<u8>, ContractError> {
        self.claim_against(ctx, a, None)
    }

    /// A claim against a header the BoB may no longer keep (attack R5-2).
    /// A lock ends once: claimed (by either way) or refunded, whichever
    /// comes first; both pay its locker.
    fn claim_relayed(&self, ctx: &mut CallContext<'_, '_>, a: ClaimRelayed) -> Result<Vec<u8>, ContractError> {
        self.claim_against(ctx, a.claim, Some((&a.header, &a.header_proof)))
    }

    fn claim_against(
        &self,
        ctx: &mut CallContext<'_, '_>,
        a: Claim,
        relayed: Option<(&BlockHeader, &Vec<Hash32>)>,
    ) -> Result<Vec<u8>, ContractError> {
        let tpk = self.cfg.tpk_address(a.chain);
        // A transfer, with a deadline or without (it landed either way).
        let Some((to, amount)) = a.nt.tx.kind.transfer_parts() else {
            return fail(XchainError::InstructionMismatch("not a transfer".into()));
        };
        if a.nt.tx.chain_id != a.chain || to != tpk {
            return fail(XchainError::InstructionMismatch(format!("not a transfer to TPK_Addr_{}", a.chain)));
        }
        if a.nt.sender() != ctx.caller() {
            return fail(XchainError::NotClaimant);
        }
        let h = a.nt.hash();
        Self::check_unused_lock(ctx, &h)?;
        self.check_kept_or_relayed_inclusion(ctx, a.chain, a.height, &a.nt, &a.proof, relayed)?;
        ctx.write(&used_key(&h), vec![USED])?;
        let who = ctx.caller();
        let bal: u128 = read_or(ctx, &wrapped_key(a.chain, &who))?;
        ctx.write_typed(&wrapped_key(a.chain, &who), &bal.checked_add(amount.0).ok_or(XchainError::Overflow)?)?;
        ctx.emit(
            "cctc_mint",
            vec![
                ("chain".into(), a.chain.to_string()),
                ("to".into(), who.to_string()),
                ("amount".into(), amount.to_string()),
            ],
        )?;
        Ok(Vec::new())
    }

    /// A lock transfer not yet claimed nor refunded.
    fn check_unused_lock(ctx: &mut CallContext<'_, '_>, h: &Hash32) -> Result<(), ContractError> {
        match ctx.read(&used_key(h))?.as_deref() {
            None => Ok(()),
            Some([REFUNDED]) => fail(XchainError::AlreadyRefunded(*h)),
            Some(_) => fail(XchainError::AlreadyClaimed(*h)),
        }
    }

    /// Π_CCTC's refund of a lock claimed too late: pays the lock back to
    /// its sender out of `TPK_Addr_i` by a release order (as `redeem`
    /// does), once the BoB no longer keeps the lock's header, so the lock
    /// can no longer be claimed. Returns the order's sequence number.
    ///
    /// Decision (attack R2-2's "claimed more than κ_i epochs late"): a lock
    /// is claimable while its header is stored and final, i.e. until the
    /// stored tip reaches `height + kept` ([`kept_headers`]: κ_i, or more
    /// on a small κ_i, attack R15-3); from then on — that is the
    /// refund deadline — the refund is open as well as `claim_relayed`
    /// (the claim against the accumulator, attack R5-2), so a lock ends
    /// either minted on the BoB or paid back on its chain, never both (the
    /// transfer's hash is marked used by whichever happens first; both pay
    /// the locker, who chooses). The BoB
    /// proves the old header by an accumulator of every relayed header
    /// ([`crate::mmr`], at most 64 hashes a chain) instead of keeping the
    /// headers themselves. A refund is paid from SC_BG's account, so it
    /// exists on chains with a group account only (as `redeem` does);
    /// elsewhere `TPK_Addr_i` is keyless and nothing can leave it.
    fn refund_lock(&self, ctx: &mut CallContext<'_, '_>, a: RefundLock) -> Result<Vec<u8>, ContractError> {
        let reg = self.reg(a.chain)?.clone();
        let tpk = self.cfg.tpk_address(a.chain);
        // A transfer, with a deadline or without (it landed either way).
        let Some((to, amount)) = a.nt.tx.kind.transfer_parts() else {
            return fail(XchainError::InstructionMismatch("not a transfer".into()));
        };
        if a.nt.tx.chain_id != a.chain || to != tpk {
            return fail(XchainError::InstructionMismatch(format!("not a transfer to TPK_Addr_{}", a.chain)));
        }
        let locker = a.nt.sender();
        if locker != ctx.caller() {
            return fail(XchainError::NotClaimant);
        }
        if !self.cfg.group_accounts.iter().any(|(c, _)| *c == a.chain) {
            return fail(XchainError::BadTerms(format!("chain {} has no group account to pay from", a.chain)));
        }
        let h = a.nt.hash();
        Self::check_unused_lock(ctx, &h)?;
        let height = a.header.height;
        let (tip, _) = self.tip(ctx, a.chain)?;
        let refundable_at = height.saturating_add(self.kept(&reg));
        if tip < refundable_at {
            return fail(XchainError::RefundTooEarly { chain: a.chain, height, tip, refundable_at });
        }
        let mmr: Mmr = read_or(ctx, &mmr_key(a.chain))?;
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (a.header_proof.len() as u64 + 2))?;
        let in_mmr = a.header.chain_id == a.chain
            && height > reg.anchor_height
            && mmr.verify(height - reg.anchor_height - 1, &a.header.hash(), &a.header_proof);
        if !in_mmr {
            return fail(XchainError::BadHeaderProof { chain: a.chain, height });
        }
        ctx.charge((gas::HASH_BASE + 2 * gas::HASH_WORD) * (a.proof.siblings.len() as u64 + 2))?;
        if !verify_inclusion(&a.header, &a.nt, &a.proof) {
            return fail(XchainError::BadMerkleProof { chain: a.chain, height });
        }
        ctx.write(&used_key(&h), vec![REFUNDED])?;
        let seq: u64 = read_or(ctx, &release_seq_key(a.chain))?;
        ctx.write_typed(&release_seq_key(a.chain), &(seq + 1))?;
        ctx.write_typed(&release_key(a.chain, seq), &ReleaseOrder { to: locker, amount: amount.0 })?;
        ctx.emit(
            "lock_refunded",
            vec![
                ("chain".into(), a.chain.to_string()),
                ("to".into(), locker.to_string()),
                ("amount".into(), amount.to_string()),
                ("sequence".into(), seq.to_string()),
            ],
        )?;
        Ok(seq.to_le_bytes().to_vec())
    }

    /// Burns claimed `Token_i` on the BoB and records a release order: the
    /// committee signs it and SC_BG on chain `i` pays it out of `TPK_Addr_i`.
    /// Returns the order's sequence number on that chain.
    fn redeem(&self, ctx: &mut CallContext<'_, '_>, a: Redeem) -> Result<Vec<u8>, ContractError> {
        if a.amount == 0 {
            return fail(XchainError::ZeroAmount);
        }
        self.reg(a.chain)?;
        if !self.cfg.group_accounts.iter().any(|(c, _)| *c == a.chain) {
            return fail(XchainError::BadTerms(format!("chain {} has no group account to pay from", a.chain)));
        }
        let who = ctx.caller();
        let bal: u128 = read_or(ctx, &wrapped_key(a.chain, &who))?;
        if bal < a.amount {
            return fail(XchainError::Insufficient { what: "claimed tokens", have: bal, need: a.amount });
        }
        ctx.write_typed(&wrapped_key(a.chain, &who), &(bal - a.amount))?;
        let seq: u64 = read_or(ctx, &release_seq_key(a.chain))?;
        ctx.write_typed(&release_seq_key(a.chain), &(seq + 1))?;
        ctx.write_typed(&release_key(a.chain, seq), &ReleaseOrder { to: a.to, amount: a.amount })?;
        ctx.emit("release_order", vec![("chain".into(), a.chain.to_string()), ("sequence".into(), seq.to_string())])?;
        Ok(seq.to_le_bytes().to_vec())
    }

    /// SC_AMM, Π_CCTC step (iv): joins the pool (see [`Provide`]).
    ///
    /// Decision (attack R6-5/R6-4): liquidity is price-neutral. The pool
    /// never trades (swaps settle by native transfers), so a single-token
    /// provision or withdrawal was a free move of the price every receiver
    /// signs (and of the withholding penalty), which the reference only
    /// delayed. Now one share is a part of the whole pool: the opening join
    /// (share supply 0) brings every token and sets the balances, and so
    /// the price, minting as many shares as it brings Token_B
    /// ([`LOCKED_SHARES`] of them locked for ever); a later join of `s`
    /// shares — the most its `amounts` pay for, `min_t ⌊a_t · S / B_t⌋` —
    /// pays `⌈s · B_t / S⌉` of every token `t` (rounded up: the pool never
    /// loses to rounding), a withdrawal of `s` shares receives
    /// `⌊s · B_t / S⌋` of every token. The price (the reference balances,
    /// [`amm::PriceRef`]) is set by the opening join — to the genesis's
    /// [`BobConfig::reference_balances`], never to its own amounts (attack
    /// R7-1: anyone may make the opening join) — and not moved by later
    /// joins or withdrawals at all, so neither their rounding dust nor
    /// any sequence of them moves it. Traded: the price is the genesis's
    /// until SC_AMM trades (it does not; see `docs/`).
    fn provide(&self, ctx: &mut CallContext<'_, '_>, a: Provide) -> Result<Vec<u8>, ContractError> {
        let who = ctx.caller();
        let mut offered: BTreeMap<ChainId, u128> = BTreeMap::new();
        for (t, x) in &a.amounts {
            if !self.weights.contains_key(t) {
                return fail(XchainError::UnknownToken(*t));
            }
            if *x == 0 {
                return fail(XchainError::ZeroAmount);
            }
            if offered.insert(*t, *x).is_some() {
                return fail(XchainError::BadTerms(format!("token {t} named twice in a join")));
            }
        }
        for t in self.weights.keys() {
            if !offered.contains_key(t) {
                return fail(XchainError::JoinMissingToken(*t));
            }
        }
        let bob = self.cfg.bob_chain;
        let value = ctx.value().0;
        if value != offered[&bob] {
            return revert("Token_B liquidity is the value attached to the call");
        }
        for (t, x) in &offered {
            if *t != bob {
                let bal: u128 = read_or(ctx, &wrapped_key(*t, &who))?;
                if bal < *x {
                    return fail(XchainError::Insufficient { what: "claimed tokens", have: bal, need: *x });
                }
            }
        }
        let total: u128 = read_or(ctx, LP_TOTAL)?;
        let mut take: BTreeMap<ChainId, u128> = BTreeMap::new();
        let (minted, new_total) = if total == 0 {
            // The opening join: its amounts are the pool's balances and price.
            let shares = offered[&bob];
            if shares <= LOCKED_SHARES {
                return fail(XchainError::Insufficient {
                    what: "Token_B in the opening join",
                    have: shares,
                    need: LOCKED_SHARES + 1,
                });
            }
            take = offered.clone();
            (shares - LOCKED_SHARES, shares)
        } else {
            let mut s = u128::MAX;
            let mut balances = BTreeMap::new();
            for (t, x) in &offered {
                let b: u128 = read_or(ctx, &pool_key(*t))?;
                // An open pool keeps at least one unit of every token.
                if b == 0 {
                    return fail(XchainError::NoLiquidity(*t));
                }
                s = s.min(x.checked_mul(total).ok_or(XchainError::Overflow)? / b);
                balances.insert(*t, b);
            }
            if s == 0 {
                return fail(XchainError::ZeroAmount);
            }
            for (t, b) in balances {
                take.insert(t, s.checked_mul(b).ok_or(XchainError::Overflow)?.div_ceil(total));
            }
            (s, total.checked_add(s).ok_or(XchainError::Overflow)?)
        };
        let now = ctx.height();
        for (t, x) in &take {
            if *t != bob {
                let bal: u128 = read_or(ctx, &wrapped_key(*t, &who))?;
                ctx.write_typed(&wrapped_key(*t, &who), &(bal - x))?;
            }
            let b: u128 = read_or(ctx, &pool_key(*t))?;
            ctx.write_typed(&pool_key(*t), &b.checked_add(*x).ok_or(XchainError::Overflow)?)?;
            if total == 0 {
                // The price: the genesis's reference balances, from the
                // next block on (never the opening join's amounts, R7-1).
                let r = ctx.read_typed::<amm::PriceRef>(&price_ref_key(*t))?.unwrap_or_default();
                ctx.write_typed(&price_ref_key(*t), &r.changed(now, self.cfg.reference_balance(*t)))?;
            }
        }
        // Token_B the join did not take goes back.
        ctx.pay(&who, Amount(value - take[&bob]))?;
        ctx.write_typed(LP_TOTAL, &new_total)?;
        let lp: u128 = read_or(ctx, &lp_key(&who))?;
        ctx.write_typed(&lp_key(&who), &lp.checked_add(minted).ok_or(XchainError::Overflow)?)?;
        ctx.emit("liquidity_provided", vec![("who".into(), who.to_string()), ("shares".into(), minted.to_string())])?;
        Ok(minted.to_le_bytes().to_vec())
    }

    /// SC_AMM: burns `shares` of the caller's LP shares and pays their part
    /// of every token's balance, `⌊shares · B_t / S⌋` (pro rata, rounded
    /// down): Token_B to the caller's account, `Token_i` as claimed tokens
    /// the caller can redeem or provide again. The price does not move
    /// (see [`Self::provide`]). Returns the amounts paid, by token.
    ///
    /// Decision: the pool only prices CCTs (swaps settle by native
    /// transfers), so withdrawing needs no lock-up; a CCT already priced
    /// keeps its terms.
    fn withdraw_liquidity(
        &self,
        ctx: &mut CallContext<'_, '_>,
        a: WithdrawLiquidity,
    ) -> Result<Vec<u8>, ContractError> {
        if a.shares == 0 {
            return fail(XchainError::ZeroAmount);
        }
        if !ctx.value().is_zero() {
            return revert("a withdrawal carries no value");
        }
        let who = ctx.caller();
        let lp: u128 = read_or(ctx, &lp_key(&who))?;
        if lp < a.shares {
            return fail(XchainError::Insufficient { what: "LP shares", have: lp, need: a.shares });
        }
        let total: u128 = read_or(ctx, LP_TOTAL)?;
        // The locked shares are never anyone's: an LP's shares are below the supply.
        if total < a.shares.saturating_add(LOCKED_SHARES) {
            return fail(XchainError::Insufficient { what: "LP shares in the pool", have: total, need: a.shares });
        }
        let mut outs: Vec<(ChainId, u128)> = Vec::new();
        for t in self.weights.keys() {
            let b: u128 = read_or(ctx, &pool_key(*t))?;
            let out = a.shares.checked_mul(b).ok_or(XchainError::Overflow)? / total;
            ctx.write_typed(&pool_key(*t), &(b - out))?;
            if *t == self.cfg.bob_chain {
                ctx.pay(&who, Amount(out))?;
            } else {
                let bal: u128 = read_or(ctx, &wrapped_key(*t, &who))?;
                ctx.write_typed(&wrapped_key(*t, &who), &bal.checked_add(out).ok_or(XchainError::Overflow)?)?;
            }
            outs.push((*t, out));
        }
        ctx.write_typed(&lp_key(&who), &(lp - a.shares))?;
        ctx.write_typed(LP_TOTAL, &(total - a.shares))?;
        ctx.emit(
            "liquidity_withdrawn",
            vec![
                ("who".into(), who.to_string()),
                ("shares".into(), a.shares.to_string()),
                ("amounts".into(), outs.iter().map(|(t, x)| format!("{t}:{x}")).collect::<Vec<_>>().join(",")),
            ],
        )?;
        borsh::to_vec(&outs).map_err(|e| ContractError::Revert(e.to_string()))
    }

    /// The reference balance of `token`'s pool in this block (attack R5-5).
    fn reference(ctx: &mut CallContext<'_, '_>, token: ChainId) -> Result<u128, ContractError> {
        match ctx.read_typed::<amm::PriceRef>(&price_ref_key(token))? {
            Some(r) => Ok(r.value_at(ctx.height())),
            // Unchanged since before references existed: its balance.
            None => read_or(ctx, &pool_key(token)),
        }
    }

    /// `x_i` of ln 04 for `x_j Token_j` paid in `token_i`, at the pools'
    /// reference balances ([`amm::PriceRef`], attack R5-5).
    fn price(
        &self,
        ctx: &mut CallContext<'_, '_>,
        x_j: u128,
        token_i: ChainId,
        token_j: ChainId,
    ) -> Result<u128, ContractError> {
        let w_i = *self.weights.get(&token_i).ok_or(XchainError::UnknownToken(token_i))?;
        let w_j = *self.weights.get(&token_j).ok_or(XchainError::UnknownToken(token_j))?;
        let b_i = Self::reference(ctx, token_i)?;
        let b_j = Self::reference(ctx, token_j)?;
        Ok(amm::amount_in_for(x_j, (token_i, b_i, w_i), (token_j, b_j, w_j))?)
    }

    // ------------------------------------------------------------------ SC_T

    fn cct(&self, ctx: &mut CallContext<'_, '_>, a: CctArgs) -> Result<Vec<u8>, ContractError> {
        let t = &a.terms;
        // Decision (attack R3-1): every payer named in the terms authorised
        // them. Addresses derive from the key alike on every chain, so the
        // sender's accounts on chains i and j are the caller's (who signs
        // the CCT transaction), and the receiver's payer account on chain j
        // is the account of the key that signs the terms. Otherwise anyone
        // could name a stranger's payment (or Π_CCTC lock) as its NT, and
        // that payment, marked used, could no longer count where it was
        // meant to. A payment into `TPK_Addr_*` is a Π_CCTC lock, never an
        // NT. Traded: a party pays from the one address of its key.
        if ctx.caller() != t.sender_b || t.sender_i != t.sender_b || t.sender_j != t.sender_b {
            return fail(XchainError::NotSender);
        }
        if t.receiver_j != t.receiver_pk.address() {
            return fail(XchainError::BadTerms("the receiver pays NT_r from the address of the key that signs".into()));
        }
        if t.receiver_i == self.cfg.tpk_address(t.chain_i) || t.sender_j == self.cfg.tpk_address(t.chain_j) {
            return fail(XchainError::BadTerms("a payment to TPK_Addr is a Pi_CCTC lock, not an NT".into()));
        }
        if ctx.height() > t.expires_at {
            return fail(XchainError::CctExpired { expires_at: t.expires_at, now: ctx.height() });
        }
        let max = self.cfg.max_terms_ahead();
        if t.expires_at > ctx.height().saturating_add(max) {
            return fail(XchainError::ExpiryTooFar { expires_at: t.expires_at, now: ctx.height(), max });
        }
        if t.chain_i == t.chain_j {
            return fail(XchainError::BadTerms("the two chains must differ".into()));
        }
        let reg_i = self.reg(t.chain_i)?.clone();
        let reg_j = self.reg(t.chain_j)?.clone();
        if t.min_x_i > t.max_x_i {
            return fail(XchainError::BadTerms("min_x_i exceeds max_x_i".into()));
        }
        // Decision (attack R7-4): bounds that bound nothing — the
        // `[1, u128::MAX]` a client left when it had no quote — are
        // refused: terms a receiver signed without seeing a price never
        // execute at whatever price the pool has later.
        if t.min_x_i == 0 || t.max_x_i == u128::MAX {
            return fail(XchainError::OpenRateBounds { min: t.min_x_i, max: t.max_x_i });
        }
        let receiver_b = t.receiver_pk.address();
        if receiver_b == t.sender_b {
            return fail(XchainError::BadTerms("sender and receiver are the same BoB account".into()));
        }
        let id = t.id();
        if ctx.read(&cct_key(&id))?.is_some() {
            return fail(XchainError::DuplicateCct(id));
        }
        let digest = t.digest(ctx.chain_id());
        // Terms of another deployment: the receiver's signature is not for this BoB.
        if t.deployment != self.cfg.deployment || !ctx.verify_signature(&t.receiver_pk, &digest, &a.receiver_sig)? {
            return fail(XchainError::BadReceiverSignature);
        }
        // ln 03–04: prices from SC_AMM.
        let x_i = self.price(ctx, t.x_j, t.chain_i, t.chain_j)?;
        let x_b = self.price(ctx, t.x_j, self.cfg.bob_chain, t.chain_j)?;
        if x_i < t.min_x_i || x_i > t.max_x_i {
            return fail(XchainError::RateOutOfBounds { x_i, min: t.min_x_i, max: t.max_x_i });
        }
        if x_b < t.min_x_b {
            return fail(XchainError::PenaltyOutOfBounds { x_b, min: t.min_x_b });
        }
        // The deployment's floor, whatever the pool's price (attack R6-4).
        let floor = self.cfg.min_x_b(t.chain_j, t.x_j)?;
        if x_b < floor {
            return fail(XchainError::PenaltyOutOfBounds { x_b, min: floor });
        }
        // ln 05: both deposits must exceed κ̄ · x_B; that much is locked.
        let lock = x_b.checked_mul(self.cfg.kappa_bar as u128).ok_or(XchainError::Overflow)?;
        let mut ds: DepositAccount = read_or(ctx, &deposit_key(&t.sender_b))?;
        let mut dr: DepositAccount = read_or(ctx, &deposit_key(&receiver_b))?;
        if ds.free <= lock {
            return fail(XchainError::InsufficientDeposit { who: "sender", needed: lock, free: ds.free });
        }
        if dr.free <= lock {
            return fail(XchainError::InsufficientDeposit { who: "receiver", needed: lock, free: dr.free });
        }
        ds.free -= lock;
        ds.locked += lock;
        dr.free -= lock;
        dr.locked += lock;
        ctx.write_typed(&deposit_key(&t.sender_b), &ds)?;
        ctx.write_typed(&deposit_key(&receiver_b), &dr)?;
        // ln 08: deadlines from the epochs the BoB knows now.
        let (e_i, _) = self.tip(ctx, t.chain_i)?;
        let (e_j, _) = self.tip(ctx, t.chain_j)?;
        let rec = CctRecord {
            terms: t.clone(),
            x_i,
            x_b,
            lock,
            e_i,
            e_j,
            deadline_i: e_i + self.cfg.kappa_bar + reg_i.kappa as u64,
            deadline_j: e_j + self.cfg.kappa_bar + reg_j.kappa as u64,
            stored_at: ctx.timestamp(),
            sender: SideState::Pending,
            receiver: SideState::Pending,
            verified: false,
            forward_i: 0,
            forward_j: 0,
            complete: false,
        };
        ctx.write_typed(&cct_key(&id), &rec)?;
        ctx.emit(
            "cct",
            vec![
                ("id".into(), id.to_string()),
                ("x_i".into(), x_i.to_string()),
                ("x_b".into(), x_b.to_string()),
                ("deadline_i".into(), rec.deadline_i.to_string()),
                ("deadline_j".into(), rec.deadline_j.to_string()),
            ],
        )?;
        Ok(id.0.to_vec())
    }

    fn load_cct(&self, ctx: &mut CallContext<'_, '_>, id: &Hash32) -> Result<CctRecord, ContractError> {
        match ctx.read_typed::<CctRecord>(&cct_key(id))? {
            Some(r) => Ok(r),
            None => fail(XchainError::UnknownCct(*id)),
        }
    }

    /// The NT carries exactly the side's instruction (IN_s or IN_r); its
    /// nonce is checked against the terms by [`Self::check_floor`].
    fn check_instruction(rec: &CctRecord, side: Side, nt: &SignedTransaction) -> Result<(), XchainError> {
        let (chain, from, to, amount) = rec.instruction(side);
        // An ordinary transfer, or one with a deadline
        // ([`BobConfig::nt_valid_until`]; NTs of terms agreed before
        // deadlines existed have none). The deadline is the payer's own
        // protection and is not checked here: a later one only exposes the
        // payer (R12-4), an earlier one only keeps its NT from landing.
        let Some((got_to, got_amount)) = nt.tx.kind.transfer_parts() else {
            return Err(XchainError::InstructionMismatch("not a native transfer".into()));
        };
        if nt.tx.chain_id != chain {
            return Err(XchainError::InstructionMismatch(format!("chain {} instead of {chain}", nt.tx.chain_id)));
        }
        if nt.sender() != from || got_to != to || got_amount.0 != amount {
            return Err(XchainError::InstructionMismatch(format!(
                "expected {amount} from {from} to {to}, got {got_amount} from {} to {got_to}",
                nt.sender()
            )));
        }
        Ok(())
    }

    /// ln 16 (ii) "the NT came after the CCT": its nonce is at or above the
    /// side's nonce in the terms, else `BeforeCct`; and exactly that nonce
    /// (`nonce_i` / `nonce_j`), else `NonceNotAgreed`.
    ///
    /// Decision (attack R2-4, replacing a block-time check): "after the
    /// CCT" is judged by the payer's nonce, never by block times, which one
    /// proposer of a probabilistic chain may stamp as it likes (parent + 1
    /// ms). The terms bind each payer's next nonce on its chain when the
    /// exchange was agreed ([`CctTerms::nonce_i`] / `nonce_j`). Every
    /// transaction the payer had already made then has a lower nonce, so an
    /// old payment never counts (attack round 1, findings 4 and 5: refused
    /// at `post_nt` as well, so a withholder cannot shelter behind it),
    /// while a fresh NT counts in whatever block its chain puts it. The
    /// floor protects the payee, who agrees to it: the receiver signs the
    /// terms (floor_i), the sender submits them (floor_j); each checks the
    /// other's floor against the chain before agreeing
    /// ([`crate::mbs::BobMbs::check_floors`]). A payment the payer signs
    /// after agreeing and that matches the instruction byte for byte is the
    /// NT (fungibility: nothing else marks it).
    ///
    /// Decision (attack R8-5): the sender's side takes exactly the terms'
    /// `nonce_i`, not every nonce above it. Two BoB deployments following
    /// the same chain do not share SC_MPV's used-transfer marks, so with a
    /// floor one transfer of the sender proved its side of a CCT on each
    /// (both floors at or below its nonce) and the receiver was paid once
    /// for two exchanges. A nonce is spent once on its chain, so one
    /// transfer now pays one set of terms, and the receiver's wallet signs
    /// one set of terms per (sender, chain, nonce) whatever the deployment
    /// ([`crate::wallet::TermsRegistry`]). The NT is still an ordinary
    /// transfer (nothing is added to it). The sender must pay with exactly
    /// that nonce: if it sends anything else first, its NT can no longer
    /// count and its side ends withheld at the deadline (Situation 2, the
    /// sender at fault: it chose the nonce).
    ///
    /// Decision (attack R10-1): the receiver's side takes exactly the
    /// terms' `nonce_j` as well. With a floor, one NT_r proved the
    /// receiver's side of a CCT on each of two deployments and the sender
    /// paid twice for one payment; the sender's wallet now keeps the same
    /// registry as the receiver's and agrees one set of terms per
    /// (payer, chain, nonce).
    fn check_floor(rec: &CctRecord, side: Side, nt: &SignedTransaction) -> Result<(), XchainError> {
        Self::check_nonce(rec, side, nt, false)
    }

    /// [`Self::check_floor`]; `floor_only` takes the side's nonce as a floor
    /// (the planted bugs `NonceFloor` and `ReceiverNonceFloor`, never in a
    /// release build).
    fn check_nonce(rec: &CctRecord, side: Side, nt: &SignedTransaction, floor_only: bool) -> Result<(), XchainError> {
        let floor = rec.agreed_nonce(side);
        if nt.tx.nonce < floor {
            return Err(XchainError::BeforeCct { chain: nt.tx.chain_id, nonce: nt.tx.nonce, floor });
        }
        if nt.tx.nonce != floor && !floor_only {
            return Err(XchainError::NonceNotAgreed { chain: nt.tx.chain_id, nonce: nt.tx.nonce, agreed: floor });
        }
        Ok(())
    }

    /// SC_MPV's and `post_nt`'s nonce check ([`Self::check_floor`]).
    fn check_nt_nonce(&self, rec: &CctRecord, side: Side, nt: &SignedTransaction) -> Result<(), XchainError> {
        #[cfg(feature = "mutants")]
        let floor_only = match side {
            Side::Sender => self.mutation == Some(crate::ccdi::Mutation::NonceFloor),
            Side::Receiver => self.mutation == Some(crate::ccdi::Mutation::ReceiverNonceFloor),
        };
        #[cfg(not(feature = "mutants"))]
        let floor_only = false;
        Self::check_nonce(rec, side, nt, floor_only)
    }

    /// Whether both chains have reached their deadlines (ln 21, per chain);
    /// `Err` names the first that has not.
    fn deadline_reached(&self, ctx: &mut CallContext<'_, '_>, rec: &CctRecord) -> Result<(), XchainError> {
        for (chain, deadline) in [(rec.terms.chain_i, rec.deadline_i), (rec.terms.chain_j, rec.deadline_j)] {
            let (tip, _) = self.tip(ctx, chain).map_err(|_| XchainError::UnknownChain(chain))?;
            if tip < deadline {
                return Err(XchainError::DeadlineNotReached { chain, tip, deadline });
            }
        }
        Ok(())
    }

    /// An NT whose payer posted a payment with its nonce for another CCT
    /// proves that CCT only (attack R5-4).
    fn check_not_posted_elsewhere(
        ctx: &mut CallContext<'_, '_>,
        nt: &SignedTransaction,
        cct: &Hash32,
    ) -> Result<(), ContractError> {
        match ctx.read_typed::<Hash32>(&posted_for_tx(nt))? {
            Some(other) if other != *cct => fail(XchainError::NtPostedForOtherCct { nt: nt.hash(), cct: other }),
            _ => Ok(()),
        }
    }

    fn post_nt(&self, ctx: &mut CallContext<'_, '_>, a: PostNt) -> Result<Vec<u8>, ContractError> {
        let rec = self.load_cct(ctx, &a.cct)?;
        if rec.complete {
            return fail(XchainError::AlreadyComplete);
        }
        if rec.state(a.side) != SideState::Pending {
            return fail(XchainError::AlreadySettled(a.side.name()));
        }
        let (chain, ..) = rec.instruction(a.side);
        // Sub-situation 1 counts an NT missing from the BoB by the deadline
        // as withheld, so a copy arriving after it is refused.
        match self.deadline_reached(ctx, &rec) {
            Err(XchainError::DeadlineNotReached { .. }) => {}
            Err(e) => return fail(e),
            Ok(()) => {
                let deadline = if a.side == Side::Sender { rec.deadline_i } else { rec.deadline_j };
                let (tip, _) = self.tip(ctx, chain)?;
                return fail(XchainError::DeadlineExpired { chain, tip, deadline });
            }
        }
        Self::check_instruction(&rec, a.side, &a.nt)?;
        self.check_nt_nonce(&rec, a.side, &a.nt)?;
        // The NT is signed in its chain's signing domain (its genesis hash).
        let domain = self.reg(chain)?.instance;
        if !ctx.verify_signature(&a.nt.tx.sender, &a.nt.tx.signing_digest(Some(&domain)), &a.nt.signature)? {
            return fail(XchainError::BadNativeSignature);
        }
        // Decision (attack R5-4): only the payer says which CCT its payment
        // is for; the first CCT it posts an NT for is the only one a
        // payment with that NT's nonce (the NT, or a fee-bumped re-send of
        // it) can prove (`prove` refuses it elsewhere), so nobody can move a
        // payment posted for one CCT onto another with the same instruction.
        if a.nt.sender() != ctx.caller() {
            return fail(XchainError::NotPayer);
        }
        if ctx.read(&posted_key(&a.cct, a.side))?.is_some() {
            return fail(XchainError::AlreadyPosted(a.side.name()));
        }
        ctx.write_typed(&posted_key(&a.cct, a.side), &a.nt)?;
        if ctx.read(&posted_for_tx(&a.nt))?.is_none() {
            ctx.write_typed(&posted_for_tx(&a.nt), &a.cct)?;
        }
        ctx.emit("nt_posted", vec![("cct".into(), a.cct.to_string()), ("side".into(), a.side.name().into())])?;
        Ok(Vec::new())
    }

    // ---------------------------------------------------------------- SC_MPV

    fn prove(&self, ctx: &mut CallContext<'_, '_>, a: ProofTx) -> Result<Vec<u8>, ContractError> {
        self.prove_against(ctx, a, None)
    }

    /// `prove` against a header the BoB may no longer keep (attack R5-2).
    fn prove_relayed(&self, ctx: &mut CallContext<'_, '_>, a: ProveRelayed) -> Result<Vec<u8>, ContractError> {
        self.prove_against(ctx, a.pt, Some((&a.header, &a.header_proof)))
    }

    /// ln 16's checks with the NT's header either among the kept ones
    /// (`relayed: None`) or shown in the accumulator of relayed headers.
    fn prove_against(
        &self,
        ctx: &mut CallContext<'_, '_>,
        a: ProofTx,
        relayed: Option<(&BlockHeader, &Vec<Hash32>)>,
    ) -> Result<Vec<u8>, ContractError> {
        // ln 16 (i): CCT ∈ SC_T.
        let mut rec = self.load_cct(ctx, &a.cct)?;
        if rec.complete {
            return fail(XchainError::AlreadyComplete);
        }
        if rec.state(a.side) != SideState::Pending {
            return fail(XchainError::AlreadySettled(a.side.name()));
        }
        Self::check_instruction(&rec, a.side, &a.nt)?;
        let nt_hash = a.nt.hash();
        if ctx.read(&used_key(&nt_hash))?.is_some() {
            return fail(XchainError::NtAlreadyUsed(nt_hash));
        }
        Self::check_not_posted_elsewhere(ctx, &a.nt, &a.cct)?;
        self.check_nt_nonce(&rec, a.side, &a.nt)?;
        // ln 16 (ii): e' > e_* + κ̄ (the NT came after the CCT was stored).
        let after = rec.epoch(a.side) + self.cfg.kappa_bar;
        if a.height <= after {
            return fail(XchainError::TooEarly { height: a.height, after });
        }
        // ln 16 (iii): Val_proof against a stored, final header.
        let (chain, ..) = rec.instruction(a.side);
        self.check_kept_or_relayed_inclusion(ctx, chain, a.height, &a.nt, &a.proof, relayed)?;
        ctx.write(&used_key(&nt_hash), vec![USED])?;
        rec.set_state(a.side, SideState::Proved { nt: nt_hash, height: a.height });
        ctx.emit("proof_recorded", vec![("cct".into(), a.cct.to_string()), ("side".into(), a.side.name().into())])?;
        self.finish_if_settled(ctx, &a.cct, rec)?;
        Ok(Vec::new())
    }

    /// CCT_V (lns 21–30), in two stages.
    ///
    /// The first, once both chains reached the ln-08 deadline, penalises
    /// every pending side whose NT never reached the BoB (sub-situation 1)
    /// and opens sub-situation 2 for the posted ones: BoB nodes forward
    /// them and prove them, or prove fraud (sub-situation 3), until the
    /// side's forwarding deadline ([`forward_deadline_for`]): for a posted
    /// NT with a deadline, that deadline plus `k` (attack R14-1: the NT
    /// and the window follow one rule), else `t_* + κ̄ + κ_*` of the side's
    /// chain (`t_*` its stored tip now).
    ///
    /// Decision (the thesis gives sub-situation 2 no end): a posted NT that
    /// is still unproved once its chain's stored tip reaches that deadline
    /// is treated as withheld, and a second CCT_V penalises its payer as
    /// in sub-situation 1 (ln 24/25: x_B of its deposit to the honest side)
    /// and confirms the CCT. This covers every NT that can be posted but
    /// never proved without fraud evidence: one NT posted for two CCTs, a
    /// nonce gap, a gas price the chain never accepts, an old payment
    /// that executed before the CCT. For a plain NT the window is as long
    /// as the ln-08 one (κ̄ + κ_i epochs from CCT_V); a deadline NT's
    /// deadline leaves at least that much after the first CCT_V on chains
    /// within [`MAX_RATE_RATIO`] of each other ([`nt_deadline_bound`]), so
    /// an NT the BoB nodes forward lands, becomes final (k < κ_i) and is
    /// proved within it.
    fn cct_v(&self, ctx: &mut CallContext<'_, '_>, a: CctV) -> Result<Vec<u8>, ContractError> {
        let mut rec = self.load_cct(ctx, &a.cct)?;
        if rec.complete {
            return fail(XchainError::AlreadyComplete);
        }
        if rec.verified {
            return self.cct_v_forwarding_closed(ctx, &a.cct, rec);
        }
        // ln 21/23: only after the deadline; otherwise discarded (ln 30).
        self.deadline_reached(ctx, &rec)?;
        rec.verified = true;
        let (tip_i, _) = self.tip(ctx, rec.terms.chain_i)?;
        let (tip_j, _) = self.tip(ctx, rec.terms.chain_j)?;
        rec.forward_i = self.forward_deadline_at_cct_v(ctx, &a.cct, &rec, Side::Sender, tip_i)?;
        rec.forward_j = self.forward_deadline_at_cct_v(ctx, &a.cct, &rec, Side::Receiver, tip_j)?;
        for side in [Side::Sender, Side::Receiver] {
            if rec.state(side) != SideState::Pending {
                continue;
            }
            if ctx.read(&posted_key(&a.cct, side))?.is_some() {
                // Sub-situation 2: the NT is on the BoB; f+1 BoB nodes
                // forward it to its chain and prove it (ln 26–27).
                continue;
            }
            // Sub-situation 1 (lns 24–25).
            Self::penalise(ctx, &a.cct, &mut rec, side, "withholding_penalty")?;
        }
        if rec.sender == SideState::Pending || rec.receiver == SideState::Pending {
            ctx.write_typed(&forwarding_key(&a.cct), &true)?;
        }
        self.finish_if_settled(ctx, &a.cct, rec)?;
        Ok(Vec::new())
    }

    /// [`forward_deadline_for`] of a side at the first CCT_V, its chain's
    /// stored tip being `tip` (attack R14-1/2: a posted NT's deadline and
    /// the window are one rule).
    fn forward_deadline_at_cct_v(
        &self,
        ctx: &mut CallContext<'_, '_>,
        id: &Hash32,
        rec: &CctRecord,
        side: Side,
        tip: Height,
    ) -> Result<Height, ContractError> {
        let (chain, ..) = rec.instruction(side);
        let reg = self.reg(chain)?.clone();
        let k = reg.finality.confirmations() as u64;
        let posted = ctx.read_typed::<SignedTransaction>(&posted_key(id, side))?;
        #[allow(unused_mut)]
        let mut valid_until = posted.and_then(|nt| nt.tx.kind.valid_until());
        #[cfg(feature = "mutants")]
        if self.mutation == Some(crate::ccdi::Mutation::WindowFromTip) {
            valid_until = None;
        }
        let bound = nt_deadline_bound(rec.deadline(side), self.cfg.kappa_bar, self.cfg.kappa_max(rec), k);
        Ok(forward_deadline_for(valid_until, bound, k, tip, self.cfg.kappa_bar, reg.kappa))
    }

    /// CCT_V's second stage: once every pending side's chain reached its
    /// forwarding deadline a whole BoB block ago ([`settled_tip`]), each
    /// posted NT still unproved counts as withheld (lns 24–25).
    ///
    /// Decision (attack R13-1): the stage ran as soon as the stored tip
    /// reached the deadline. The header that makes an NT landed at
    /// `forward − k` final (the last one the BoB nodes forward,
    /// [`crate::mbs::BobMbs::still_provable`]) is the one that makes the
    /// stage due, and anyone may relay it: the payee relayed it and sent
    /// this CCT_V right behind it in one block, before any `prove` could
    /// use the header, and the payer — whose payment landed inside the
    /// window — was penalised as well (paid twice). Now the deadline's
    /// header must have been stored before the previous BoB block began,
    /// so every NT final at it has that whole block for its `prove`,
    /// whatever order a block runs its transactions in and however many
    /// headers one block relays (`ForwardingGrace` until then).
    fn cct_v_forwarding_closed(
        &self,
        ctx: &mut CallContext<'_, '_>,
        id: &Hash32,
        mut rec: CctRecord,
    ) -> Result<Vec<u8>, ContractError> {
        for side in [Side::Sender, Side::Receiver] {
            if rec.state(side) != SideState::Pending {
                continue;
            }
            let (chain, ..) = rec.instruction(side);
            let deadline = rec.forward_deadline(side);
            let (tip, _) = self.tip(ctx, chain)?;
            if tip < deadline {
                return fail(XchainError::ForwardingOpen { chain, tip, deadline });
            }
            #[cfg(feature = "mutants")]
            if self.mutation == Some(crate::ccdi::Mutation::CloseAtTip) {
                continue;
            }
            let last = ctx.read_typed::<(Height, u64)>(&relayed_key(chain))?;
            let prev = ctx.read_typed::<(Height, u64)>(&relayed_prev_key(chain))?;
            let settled = settled_tip(tip, last, prev, ctx.height());
            if settled < deadline {
                return fail(XchainError::ForwardingGrace { chain, settled, deadline });
            }
        }
        for side in [Side::Sender, Side::Receiver] {
            if rec.state(side) == SideState::Pending {
                Self::penalise(ctx, id, &mut rec, side, "unproved_penalty")?;
            }
        }
        self.finish_if_settled(ctx, id, rec)?;
        Ok(Vec::new())
    }

    /// x_B of the defaulting side's locked deposit goes to the counterparty's
    /// free deposit (lns 24–25).
    fn penalise(
        ctx: &mut CallContext<'_, '_>,
        id: &Hash32,
        rec: &mut CctRecord,
        side: Side,
        event: &str,
    ) -> Result<(), ContractError> {
        let receiver_b = rec.terms.receiver_pk.address();
        let (from, to) = match side {
            Side::Sender => (rec.terms.sender_b, receiver_b),
            Side::Receiver => (receiver_b, rec.terms.sender_b),
        };
        let mut df: DepositAccount = read_or(ctx, &deposit_key(&from))?;
        df.locked = df.locked.checked_sub(rec.x_b).ok_or(XchainError::Overflow)?;
        ctx.write_typed(&deposit_key(&from), &df)?;
        let mut dt: DepositAccount = read_or(ctx, &deposit_key(&to))?;
        dt.free = dt.free.checked_add(rec.x_b).ok_or(XchainError::Overflow)?;
        ctx.write_typed(&deposit_key(&to), &dt)?;
        rec.set_state(side, SideState::Penalised);
        ctx.emit(event, vec![("cct".into(), id.to_string()), ("side".into(), side.name().into())])
    }

    /// Sub-situation 3 (lns 28–29): a BoB node proves that a posted native
    /// transaction can never land, and its payer's deposit pays as in
    /// sub-situation 1.
    ///
    /// Decision: the evidence is either the payer's account at a final
    /// header at or after the side's deadline, whose nonce has not passed NT's and whose
    /// balance cannot cover NT's maximum cost (so NT was not executed and
    /// cannot be at that state), or another included transaction of the
    /// payer with NT's nonce. Balance evidence only after CCT_V and only
    /// from a header at or after the side's ln-08 deadline (until then the
    /// payer may still fund its account, attack R5-7); a spent nonce is
    /// conclusive at any time, while its block is among the κ_i kept
    /// headers — BoB nodes watch posted NTs' nonces as blocks arrive.
    fn fraud(&self, ctx: &mut CallContext<'_, '_>, a: Fraud) -> Result<Vec<u8>, ContractError> {
        let mut rec = self.load_cct(ctx, &a.cct)?;
        if rec.complete {
            return fail(XchainError::AlreadyComplete);
        }
        if rec.state(a.side) != SideState::Pending {
            return fail(XchainError::AlreadySettled(a.side.name()));
        }
        let Some(nt) = ctx.read_typed::<SignedTransaction>(&posted_key(&a.cct, a.side))? else {
            return fail(XchainError::NotPosted(a.side.name()));
        };
        let (chain, payer, ..) = rec.instruction(a.side);
        match &a.evidence {
            FraudEvidence::Balance { account, proof } => {
                if !rec.verified {
                    return fail(XchainError::NotVerified);
                }
                // Decision (attack R5-7): the payer may fund its account
                // until the deadline, so only a state at or after it shows
                // that NT can never be paid; an earlier header (before a
                // top-up) proves nothing.
                let deadline = rec.deadline(a.side);
                if a.height < deadline {
                    return fail(XchainError::EvidenceBeforeDeadline { chain, height: a.height, deadline });
                }
                let reg = self.reg(chain)?.clone();
                let header = self.final_header(ctx, chain, a.height)?;
                let entries: usize = proof.entries.iter().map(|(k, _)| k.len() + 32).sum();
                ctx.charge(
                    (gas::HASH_BASE + 2 * gas::HASH_WORD) * (proof.siblings.len() as u64 + 1)
                        + gas::HASH_BASE
                        + gas::HASH_WORD * gas::words(entries),
                )?;
                let value = account.map(|acc| borsh::to_vec(&acc).unwrap_or_default());
                if !proof.verify(&header.state_root, reg.state_buckets_log2, &account_key(&payer), value.as_deref()) {
                    return fail(XchainError::BadStateProof { chain, height: a.height });
                }
                let acc = account.unwrap_or_default();
                let need = nt.tx.max_cost().ok_or(XchainError::Overflow)?;
                if acc.nonce > nt.tx.nonce {
                    return fail(XchainError::NotFraud(format!(
                        "the payer's nonce {} is past NT's {}",
                        acc.nonce, nt.tx.nonce
                    )));
                }
                if acc.balance >= need {
                    return fail(XchainError::NotFraud(format!(
                        "the payer's balance {} covers NT's {need}",
                        acc.balance
                    )));
                }
                // Decision (attack R12-4): against an NT with a deadline
                // (`TransferUntil`) the evidence counts only from that
                // deadline on: before it the payer may still be funded and
                // the NT land — after the penalty, so the payer paid twice.
                // From it on the NT can never land.
                if let Some(valid_until) = nt.tx.kind.valid_until().filter(|u| a.height < *u) {
                    return fail(XchainError::EvidenceBeforeNtDeadline { chain, height: a.height, valid_until });
                }
            }
            FraudEvidence::NonceTaken { other, proof } => {
                if other.tx.sender != nt.tx.sender || other.tx.nonce != nt.tx.nonce || other.hash() == nt.hash() {
                    return fail(XchainError::NotFraud("not another transaction of the payer with NT's nonce".into()));
                }
                // Decision (attack R4-1): a transaction that itself pays the
                // side's instruction (a fee-bumped re-send of NT, say) is the
                // payment, not fraud — unless it already proved another CCT.
                // (Nor is one whose nonce its payer posted for another CCT:
                // it cannot prove this one, attack R5-4.)
                let oh = other.hash();
                let elsewhere = ctx.read_typed::<Hash32>(&posted_for_tx(other))?.is_some_and(|c| c != a.cct);
                if rec.pays_instruction(a.side, other) && ctx.read(&used_key(&oh))?.is_none() && !elsewhere {
                    return fail(XchainError::NotFraud(
                        "the transaction with NT's nonce pays the instruction; prove it instead".into(),
                    ));
                }
                self.check_inclusion(ctx, chain, a.height, other, proof)?;
            }
        }
        Self::penalise(ctx, &a.cct, &mut rec, a.side, "fraud_penalty")?;
        self.finish_if_settled(ctx, &a.cct, rec)?;
        Ok(Vec::new())
    }

    /// Stores the record; once neither side is pending the CCT is confirmed
    /// (ln 20) and what is left of both locks returns to the free deposits.
    fn finish_if_settled(
        &self,
        ctx: &mut CallContext<'_, '_>,
        id: &Hash32,
        mut rec: CctRecord,
    ) -> Result<(), ContractError> {
        if rec.sender != SideState::Pending && rec.receiver != SideState::Pending {
            rec.complete = true;
            let receiver_b = rec.terms.receiver_pk.address();
            for (who, side) in [(rec.terms.sender_b, Side::Sender), (receiver_b, Side::Receiver)] {
                let back = if rec.state(side) == SideState::Penalised { rec.lock - rec.x_b } else { rec.lock };
                let mut d: DepositAccount = read_or(ctx, &deposit_key(&who))?;
                d.locked = d.locked.checked_sub(back).ok_or(XchainError::Overflow)?;
                d.free = d.free.checked_add(back).ok_or(XchainError::Overflow)?;
                ctx.write_typed(&deposit_key(&who), &d)?;
            }
            ctx.emit("cct_confirmed", vec![("cct".into(), id.to_string())])?;
            if rec.verified && ctx.read(&forwarding_key(id))?.is_some() {
                ctx.delete(&forwarding_key(id))?;
            }
            // Decision (attack r16 [4]): the posted slots of a complete CCT
            // are deleted (no call reads them once it is complete: `post_nt`,
            // `prove` and `fraud` refuse a complete CCT), so the BoB nodes'
            // per-epoch scan of posted NTs visits the open CCTs only, not
            // every CCT ever settled. The payment binding of its NTs'
            // nonces (`nc/`) stays: it is what keeps them off other CCTs.
            #[cfg(feature = "mutants")]
            let keep = self.mutation == Some(crate::ccdi::Mutation::PostedKept);
            #[cfg(not(feature = "mutants"))]
            let keep = false;
            for side in [Side::Sender, Side::Receiver] {
                if !keep && ctx.read(&posted_key(id, side))?.is_some() {
                    ctx.delete(&posted_key(id, side))?;
                }
            }
        }
        ctx.write_typed(&cct_key(id), &rec)
    }
}

impl NativeContract for BobContract {
    fn name(&self) -> &'static str {
        "bob"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        let value_free = matches!(method, "deposit" | "provide" | "ccdi_register");
        if !value_free && !ctx.value().is_zero() {
            return revert(format!("{method} takes no value"));
        }
        match method {
            "relay" => self.relay(ctx, decode_args(args)?),
            "deposit" => self.deposit(ctx),
            "withdraw" => self.withdraw(ctx, decode_args(args)?),
            "claim" => self.claim(ctx, decode_args(args)?),
            "claim_relayed" => self.claim_relayed(ctx, decode_args(args)?),
            "provide" => self.provide(ctx, decode_args(args)?),
            "withdraw_liquidity" => self.withdraw_liquidity(ctx, decode_args(args)?),
            "cct" => self.cct(ctx, decode_args(args)?),
            "post_nt" => self.post_nt(ctx, decode_args(args)?),
            "prove" => self.prove(ctx, decode_args(args)?),
            "prove_relayed" => self.prove_relayed(ctx, decode_args(args)?),
            "cct_v" => self.cct_v(ctx, decode_args(args)?),
            "fraud" => self.fraud(ctx, decode_args(args)?),
            "ccdi_open" => self.ccdi_open(ctx, decode_args(args)?),
            "ccdi_register" => self.ccdi_register(ctx, decode_args(args)?),
            "ccdi_cct" => self.ccdi_cct(ctx, decode_args(args)?),
            "ccdi_cct_relayed" => self.ccdi_cct_relayed(ctx, decode_args(args)?),
            "ccdi_late_lock" => self.ccdi_late_lock(ctx, decode_args(args)?),
            "ccdi_finish" => self.ccdi_finish(ctx, decode_args(args)?),
            "redeem" => self.redeem(ctx, decode_args(args)?),
            "refund_lock" => self.refund_lock(ctx, decode_args(args)?),
            "lmc_mint" => self.lmc_mint(ctx, decode_args(args)?),
            "lmc_run" => self.lmc_run(ctx, decode_args(args)?),
            other => revert(format!("bob has no method {other}")),
        }
    }

    /// A registered node's call of one of [`DUTY_METHODS`].
    fn duty(&self, sender: &Address, method: &str) -> bool {
        #[cfg(feature = "mutants")]
        if self.mutation == Some(crate::ccdi::Mutation::NoDuties) {
            return false;
        }
        DUTY_METHODS.contains(&method) && self.cfg.nodes.contains(sender)
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "tip" => {
                let chain: ChainId = decode_args(args)?;
                let reg = self.reg(chain)?;
                let (h, hash) = ctx
                    .read_typed::<(Height, Hash32)>(&tip_key(chain))?
                    .unwrap_or((reg.anchor_height, reg.anchor_hash));
                Ok(json!({ "chain": chain, "height": h, "hash": hash }))
            }
            "cct" => {
                let id: Hash32 = decode_args(args)?;
                match ctx.read_typed::<CctRecord>(&cct_key(&id))? {
                    Some(r) => Ok(serde_json::to_value(r).unwrap_or_default()),
                    None => fail(XchainError::UnknownCct(id)),
                }
            }
            "deposit" => {
                let a: Address = decode_args(args)?;
                let d = ctx.read_typed::<DepositAccount>(&deposit_key(&a))?.unwrap_or_default();
                Ok(json!({ "free": d.free.to_string(), "locked": d.locked.to_string() }))
            }
            "wrapped" => {
                let (token, a): (ChainId, Address) = decode_args(args)?;
                let b = ctx.read_typed::<u128>(&wrapped_key(token, &a))?.unwrap_or(0);
                Ok(json!({ "token": token, "owner": a, "balance": b.to_string() }))
            }
            "pool" => {
                let mut out = serde_json::Map::new();
                for (t, w) in &self.weights {
                    let b = ctx.read_typed::<u128>(&pool_key(*t))?.unwrap_or(0);
                    out.insert(t.to_string(), json!({ "weight": w, "balance": b.to_string() }));
                }
                let total = ctx.read_typed::<u128>(LP_TOTAL)?.unwrap_or(0);
                out.insert("shares".into(), json!(total.to_string()));
                Ok(serde_json::Value::Object(out))
            }
            other => revert(format!("bob has no view {other}")),
        }
    }
}

/// Typed reads of the BoB contract's records, for drivers and tests.
pub mod keys {
    use super::*;
    pub fn cct(id: &Hash32) -> Vec<u8> {
        cct_key(id)
    }
    pub fn deposit(a: &Address) -> Vec<u8> {
        deposit_key(a)
    }
    pub fn wrapped(token: ChainId, a: &Address) -> Vec<u8> {
        wrapped_key(token, a)
    }
    pub fn pool(token: ChainId) -> Vec<u8> {
        pool_key(token)
    }
    /// The pool's reference balance ([`amm::PriceRef`]) SC_AMM prices from.
    pub fn price_ref(token: ChainId) -> Vec<u8> {
        price_ref_key(token)
    }
    /// An LP's shares of the whole pool (`u128`).
    pub fn lp(who: &Address) -> Vec<u8> {
        lp_key(who)
    }
    /// The pool's share supply (`u128`), [`LOCKED_SHARES`] included.
    pub fn lp_total() -> Vec<u8> {
        LP_TOTAL.to_vec()
    }
    pub fn tip(chain: ChainId) -> Vec<u8> {
        tip_key(chain)
    }
    /// `(BoB height, headers)` of the chain's last BoB block with relays.
    pub fn relayed(chain: ChainId) -> Vec<u8> {
        relayed_key(chain)
    }
    /// `(BoB height, headers)` of the chain's block with relays before it.
    pub fn relayed_prev(chain: ChainId) -> Vec<u8> {
        relayed_prev_key(chain)
    }
    pub fn header(chain: ChainId, h: Height) -> Vec<u8> {
        header_key(chain, h)
    }
    /// The chain's [`Mmr`] of relayed headers.
    pub fn mmr(chain: ChainId) -> Vec<u8> {
        mmr_key(chain)
    }
    pub fn posted(id: &Hash32, side: Side) -> Vec<u8> {
        posted_key(id, side)
    }
    /// The prefix of every [`posted`] slot: the key's rest is the CCT id
    /// and the side's byte.
    pub fn posted_prefix() -> Vec<u8> {
        b"n/".to_vec()
    }
    /// Set once a transfer proved (or was claimed / refunded): it never counts again.
    pub fn used(nt: &Hash32) -> Vec<u8> {
        used_key(nt)
    }
    /// The CCT (`Hash32`) a payer first posted a native transaction with
    /// this chain, payer and nonce for.
    pub fn posted_for(chain: ChainId, payer: &Address, nonce: u64) -> Vec<u8> {
        posted_for_key(chain, payer, nonce)
    }
    pub fn release(chain: ChainId, seq: u64) -> Vec<u8> {
        release_key(chain, seq)
    }
    /// Present (`bool`) while the CCT is in sub-situation 2.
    pub fn forwarding(id: &Hash32) -> Vec<u8> {
        forwarding_key(id)
    }
    /// The prefix of every [`forwarding`] slot: the key's rest is the CCT id.
    pub fn forwarding_prefix() -> Vec<u8> {
        FORWARDING.to_vec()
    }
}
