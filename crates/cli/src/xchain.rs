//! `gridledger xchain`: the blockchain of blockchains (thesis Ch.5) run
//! embedded — one BoB and N external chains, each with its own validators,
//! in this process, their data in a temporary directory unless `--dir`.

use anyhow::Context;
use clap::{Args, Subcommand, ValueEnum};
use gridledger_ledger::devnet::dev_key;
use gridledger_xchain::ccdi::CcdiApp;
use gridledger_xchain::ccdi_run::{CcdiAttack, CcdiReport, CcdiUser, UserBehaviour};
use gridledger_xchain::mbs::{Behaviour, BobMbs, MbsSpec, SwapReport, SwapRequest};

/// External chain `n`'s id in `m`'s deployment (ids are per deployment).
fn ext_chain(m: &BobMbs, n: u32) -> anyhow::Result<gridledger_core::types::ChainId> {
    m.chain_ids().get(n as usize).copied().ok_or_else(|| anyhow::anyhow!("no external chain {n}"))
}
use gridledger_xchain::scbg::Character;
use gridledger_xchain::{Finality, Side};
use serde_json::json;
use std::path::PathBuf;
use std::time::Instant;

mod procs;

#[derive(Subcommand)]
pub enum XchainCmd {
    /// Start a BoB-MBS (one BoB and N external chains, embedded, or each
    /// chain in its own process with `--processes`), run some epochs with
    /// the relayer feeding headers to the BoB, and print its state. A
    /// development deployment: every validator key is derived from a public
    /// seed (anyone can sign its headers) — never for a real setup.
    Up(UpArgs),
    /// Run one cross-chain token exchange (CCTE, Algorithm 5.1) through the BoB.
    Swap(SwapArgs),
    /// Migrate a state data item to another chain through the BoB (CCDI's
    /// S_SDM, thesis §5.5.5): lock it and a fresh item, swap them in place
    /// with one threshold-signed transaction per chain.
    Migrate(MigrateArgs),
    /// Run one CCDI process (thesis §5.5): battle games between game items
    /// on the external chains, played by SC_F on the BoB and written back
    /// in place; optionally with withholding users and a censoring chain.
    Ccdi(CcdiArgs),
    /// Close the CCTs an interrupted swap left open in a deployment's
    /// `--dir`: run epochs as a BoB node does, prove each posted native
    /// transfer that is on its chain while its header is provable, and send
    /// CCT_V (both stages) once the deadlines pass, so every open CCT ends
    /// complete (proved, or its deposits penalised as Algorithm 5.1 says).
    /// A CCT neither of whose parties is a dev account here is skipped and
    /// reported; the exit status is 0 only if all the others closed.
    Resume(ResumeArgs),
    /// Run one chain of a BoB-MBS in this process, serving the relaying
    /// driver of `xchain up --processes` over loopback (internal).
    #[command(hide = true)]
    ServeChain(ServeChainArgs),
}

#[derive(Args)]
pub struct ServeChainArgs {
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Which chain: `bob`, or an external chain's index (0-based).
    #[arg(long)]
    pub role: String,
    /// Serve one validator of the chain (0-based), holding only its key:
    /// it proposes when it leads, votes, and commits sealed blocks.
    #[arg(long)]
    pub validator: Option<u32>,
    /// Seconds to wait for the driver's connection after `listening`; the
    /// process also exits at once when the process that started it dies
    /// before connecting.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub chain_timeout: u64,
    /// The BoB node's address (40 hex digits), which the chains' genesis
    /// funds: the driver keeps the node's key in the deployment's directory
    /// and passes its address. Without it the chain's directory stores a
    /// node key of its own (a chain served alone).
    #[arg(long)]
    pub node: Option<String>,
}

#[derive(Args)]
pub struct ResumeArgs {
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Most epochs to run while closing the open CCTs (1 to 10,000).
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=10_000))]
    pub max_epochs: u64,
}

#[derive(Args)]
pub struct CcdiArgs {
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Users X, each bringing one item, spread over the chains (2 to 64).
    #[arg(long, default_value_t = 6, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub users: u32,
    /// How many of the users withhold their lock (S_MUE eliminates them).
    #[arg(long, default_value_t = 0)]
    pub withhold: u32,
    /// Index (0-based) of a chain that delays every lock (censorship).
    #[arg(long, value_name = "CHAIN")]
    pub censor: Option<u32>,
    /// Epochs the censoring chain holds each lock back (1 to 1,000).
    #[arg(long, default_value_t = 12, value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub delay: u64,
    /// Byzantine relay nodes per chain's group of f+1 (at most f).
    #[arg(long, default_value_t = 0)]
    pub byzantine_relayers: u32,
    /// κ of the process: SC_F's deadline is `e_B + κ·max κ_i` BoB epochs.
    /// Default: the least κ whose deadline leaves room for a lock's block,
    /// its K confirmations, the relay and the CCT (K + 6 epochs); a
    /// smaller one is refused.
    #[arg(long, value_name = "KAPPA", value_parser = clap::value_parser!(u64).range(1..=1_000))]
    pub process_kappa: Option<u64>,
}

#[derive(Args)]
pub struct MigrateArgs {
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Index (0-based) of the chain the item leaves (a censorship-prone chain).
    #[arg(long, default_value_t = 0)]
    pub from: u32,
    /// Index (0-based) of the chain the item moves to.
    #[arg(long, default_value_t = 1)]
    pub to: u32,
    /// The character's name (1 to 32 bytes).
    #[arg(long, default_value = "wanderer")]
    pub name: String,
    /// The character's attack value (0 to 1,000).
    #[arg(long = "attack-value", default_value_t = 42, value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub attack: u64,
    /// Experience the character gains in one battle before it migrates
    /// (0: none), so the migrated item differs from a fresh one.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1))]
    pub battles: u32,
}

#[derive(Args)]
pub struct ShapeArgs {
    /// External chains N (2 to 64).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(2..=64))]
    pub chains: u32,
    /// Validators of each external chain and of the BoB (1 to 64).
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=64))]
    pub validators: u32,
    /// Run the external chains with probabilistic finality: a header is
    /// final after K confirmations (default: deterministic, PBFT-style).
    #[arg(long, value_name = "K", value_parser = clap::value_parser!(u32).range(1..=64))]
    pub probabilistic: Option<u32>,
    /// κ_i: headers of each external chain the BoB keeps (must exceed K).
    #[arg(long, default_value_t = 16, value_parser = clap::value_parser!(u32).range(2..=4096))]
    pub kappa: u32,
    /// Keep the chains' data here instead of a temporary directory (must
    /// be empty or hold a BoB-MBS of the same shape).
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Genesis time (ms) of every chain (default: a random instant, so each
    /// deployment's genesis, which threshold-signed statements bind, is its
    /// own; a `--dir` keeps the one it was created with).
    #[arg(long, hide = true)]
    pub genesis_time: Option<u64>,
    /// Print JSON.
    #[arg(long)]
    pub json: bool,
}

impl ShapeArgs {
    fn spec(&self) -> MbsSpec {
        MbsSpec {
            chains: self.chains as usize,
            validators: self.validators as usize,
            bob_validators: self.validators as usize,
            finality: self.probabilistic.map_or(Finality::Deterministic, |k| Finality::Probabilistic { k }),
            kappa: self.kappa,
            genesis_time: self.genesis_time.unwrap_or_else(gridledger_xchain::mbs::random_genesis_time),
            ..MbsSpec::default()
        }
    }
}

#[derive(Args)]
pub struct UpArgs {
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// Epochs to run (0 to 10,000).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(0..=10_000))]
    pub epochs: u64,
    /// Run every validator of the BoB and of each external chain in its own
    /// process with only its own key, the driver moving proposals, votes
    /// and sealed blocks between a chain's validators and relaying headers
    /// to the BoB's over loopback TCP; the processes stop when the epochs
    /// are done.
    #[arg(long)]
    pub processes: bool,
    /// With `--processes`: seconds the driver waits for a chain process
    /// (its readiness line, an answer, taking a request, exiting when
    /// stopped) before it gives up on that chain, stops the others and fails.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub chain_timeout: u64,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Attack {
    None,
    /// The sender never sends its native transaction (sub-situation 1).
    WithholdSender,
    /// The receiver never sends its native transaction (sub-situation 1).
    WithholdReceiver,
    /// The sender's chain delays its native transaction past the deadline (sub-situation 2).
    CensorSender,
    /// The sender posts its native transaction but empties its account (sub-situation 3).
    UnderfundSender,
    /// The sender posts a native transaction that can never execute (a
    /// nonce gap, no fraud evidence): closed as withheld at the forwarding
    /// deadline (sub-situation 2).
    UnlandableSender,
}

#[derive(Args)]
pub struct SwapArgs {
    #[command(flatten)]
    pub shape: ShapeArgs,
    /// x_j: Token_j (minor units) the sender receives on the second chain.
    #[arg(long, default_value_t = 1_000, value_parser = clap::value_parser!(u64).range(1..=1_000_000))]
    pub amount: u64,
    /// Index (0-based) of the chain the sender pays on (Token_i).
    #[arg(long, default_value_t = 0)]
    pub from: u32,
    /// Index (0-based) of the chain the sender is paid on (Token_j).
    #[arg(long, default_value_t = 1)]
    pub to: u32,
    /// A misbehaving participant or chain (thesis §5.3.2).
    #[arg(long, value_enum, default_value_t = Attack::None)]
    pub attack: Attack,
    /// Run the honest exchange with every validator of the BoB and of each
    /// external chain in its own process (as `xchain up --processes`).
    #[arg(long)]
    pub processes: bool,
    /// With `--processes`: seconds the driver waits for a validator process.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3_600))]
    pub chain_timeout: u64,
    /// Slippage (basis points, 0 to 10,000) the receiver accepts around
    /// SC_AMM's quote of x_i: the CCT it signs is refused
    /// (`RateOutOfBounds`) if the pool prices it outside.
    #[arg(long, default_value_t = gridledger_xchain::mbs::DEFAULT_SLIPPAGE_BPS,
          value_parser = clap::value_parser!(u32).range(0..=10_000))]
    pub slippage_bps: u32,
}

/// Liquidity each chain's token (and Token_B) gets in SC_AMM's pool, and
/// each party's Token_B deposit in SC_D, for a swap of `amount` Token_j:
/// at least 1,000,000, and ten times the amount (attack R4-15: fixed
/// 1,000,000 deposits could not cover SC_T's κ̄ · x_B ≈ 2 · amount above
/// ~500,000, and a pool of 1,000,000 cannot pay out 1,000,000). With ten
/// times the amount in the pool the price moves by about 11 % and κ̄ · x_B
/// stays near a quarter of the deposit, so every `--amount` the option
/// accepts (1 to 1,000,000) runs.
pub(crate) fn setup_funds(amount: u64) -> u128 {
    (amount as u128).saturating_mul(10).max(1_000_000)
}

/// Epochs a CCDI lock needs from the process's start until its CCT is
/// stored, besides the K confirmations: the lock's block, the relay of its
/// final header, the CCT's block and the registration epochs before the
/// locks are sent (measured with `xchain ccdi --probabilistic K --kappa
/// K+1`, K = 1 to 8; kept with a margin).
pub(crate) const CCDI_SLACK: u64 = 6;

/// Why a CCDI process cannot give honest users time to lock (refused
/// before anything is sent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CcdiShapeError {
    /// `κ · max κ_i` epochs are fewer than a lock needs (K + [`CCDI_SLACK`]).
    DeadlineTooShort { kappa: u64, deadline: u64, needed: u64, confirmations: u64, least: u64 },
    /// The least κ that would do is above what SC_F accepts (1 to 1,000).
    KappaTooLarge { least: u64 },
}

impl std::fmt::Display for CcdiShapeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CcdiShapeError::DeadlineTooShort { kappa, deadline, needed, confirmations, least } => write!(
                f,
                "κ = {kappa} gives SC_F's deadline e_B + {deadline} epochs, fewer than the {needed} a lock needs \
                 ({confirmations} confirmations + {CCDI_SLACK}): every honest user would be eliminated; use \
                 --process-kappa {least} or more"
            ),
            CcdiShapeError::KappaTooLarge { least } => {
                write!(f, "these chains need κ = {least}, above the 1,000 SC_F accepts")
            }
        }
    }
}

impl std::error::Error for CcdiShapeError {}

/// κ of a CCDI process on `spec`'s chains: `explicit` if its deadline
/// `κ · max κ_i` leaves the K confirmations plus [`CCDI_SLACK`] epochs,
/// else refused; without one, the least such κ, at least `floor` (attack
/// R4-14: a fixed κ = 1 with κ_i = K + 1 put every lock's CCT after the
/// deadline).
pub(crate) fn ccdi_kappa(spec: &MbsSpec, explicit: Option<u64>, floor: u64) -> Result<u64, CcdiShapeError> {
    let confirmations = spec.finality.confirmations() as u64;
    let needed = confirmations + CCDI_SLACK;
    let kappa_i = (spec.kappa as u64).max(1);
    let least = needed.div_ceil(kappa_i).max(floor).max(1);
    if least > 1_000 {
        return Err(CcdiShapeError::KappaTooLarge { least });
    }
    match explicit {
        Some(kappa) if kappa.saturating_mul(kappa_i) < needed => Err(CcdiShapeError::DeadlineTooShort {
            kappa,
            deadline: kappa.saturating_mul(kappa_i),
            needed,
            confirmations,
            least,
        }),
        Some(kappa) => Ok(kappa),
        None => Ok(least),
    }
}

fn open(shape: &ShapeArgs) -> anyhow::Result<(BobMbs, Option<tempfile::TempDir>)> {
    open_spec(shape, shape.spec())
}

fn open_spec(shape: &ShapeArgs, spec: MbsSpec) -> anyhow::Result<(BobMbs, Option<tempfile::TempDir>)> {
    let (dir, tmp) = match &shape.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let m = BobMbs::open(&dir, spec).with_context(|| format!("opening the BoB-MBS in {}", dir.display()))?;
    Ok((m, tmp))
}

fn status(m: &BobMbs) -> serde_json::Value {
    let chains: Vec<_> = m
        .externals
        .iter()
        .map(|(id, c)| {
            json!({
                "chain": id,
                "height": c.height(),
                "bob_stored_tip": m.bob_tip(*id),
                "validators": c.chain().genesis().validators.len(),
                "finality": c.finality(),
                "tpk_address": m.config.tpk_address(*id),
                "contracts": c.chain().registry().list().count(),
            })
        })
        .collect();
    json!({
        "bob": { "chain": m.bob.chain_id(), "height": m.bob.height(), "validators": m.bob.chain().genesis().validators.len(),
                 "threshold": format!("{} of {}", m.committee.set.threshold(), m.committee.set.members()) },
        "kappa_bar": m.config.kappa_bar,
        "kappa": m.spec.kappa,
        "external": chains,
    })
}

pub fn run(c: XchainCmd) -> anyhow::Result<()> {
    match c {
        XchainCmd::Up(a) => up(a),
        XchainCmd::Swap(a) => swap(a),
        XchainCmd::Migrate(a) => migrate(a),
        XchainCmd::Ccdi(a) => ccdi(a),
        XchainCmd::Resume(a) => resume(a),
        XchainCmd::ServeChain(a) => procs::serve(a),
    }
}

fn up(a: UpArgs) -> anyhow::Result<()> {
    // Decision (attack R6-5): a flag refusing public-seed keys would break
    // every existing `xchain up` invocation; the deployment warns instead.
    eprintln!(
        "warning: a development deployment: every validator key and the BoB committee's threshold key \
         are derived from public seeds, so anyone can sign its chains' headers; never use it for a real \
         setup (the BoB node's key is the deployment's own, kept in node-key in its directory)"
    );
    let s = if a.processes {
        procs::up(&a)?
    } else {
        let (mut m, _tmp) = open(&a.shape)?;
        m.ticks(a.epochs)?;
        status(&m)
    };
    if a.shape.json {
        println!("{s}");
    } else {
        println!(
            "BoB-MBS up: BoB chain {} at height {}, {} validators (threshold key {})",
            s["bob"]["chain"],
            s["bob"]["height"],
            s["bob"]["validators"],
            s["bob"]["threshold"].as_str().unwrap_or("")
        );
        for c in s["external"].as_array().into_iter().flatten() {
            println!(
                "  chain {}  height {:>4}  BoB holds up to {:>4}  {} validators  contracts {}  TPK_Addr {}",
                c["chain"],
                c["height"],
                c["bob_stored_tip"],
                c["validators"],
                c["contracts"],
                c["tpk_address"].as_str().unwrap_or("")
            );
        }
        if let Some(ps) = s["processes"].as_array() {
            let each: Vec<String> = ps
                .iter()
                .map(|p| format!("{} v{} pid {}", p["role"].as_str().unwrap_or(""), p["validator"], p["pid"]))
                .collect();
            println!("  one process per validator (stopped now): {}", each.join(", "));
        }
    }
    Ok(())
}

/// The CCTs stored on the BoB and not complete: every successful `cct`
/// call in the BoB's blocks whose record is still open.
fn open_ccts(m: &BobMbs) -> anyhow::Result<Vec<gridledger_core::Hash32>> {
    let mut ids = Vec::new();
    for h in 1..=m.bob.height() {
        let Some(b) = m.bob.chain().block(h)? else { continue };
        for tx in &b.txs {
            let gridledger_ledger::TxKind::Call { method, args, .. } = &tx.tx.kind else { continue };
            if method != "cct" {
                continue;
            }
            let Ok(a) = borsh::from_slice::<gridledger_xchain::bob::CctArgs>(args) else { continue };
            let id = a.terms.id();
            if m.cct(&id).is_some_and(|r| !r.complete) && !ids.contains(&id) {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Most epochs `resume` runs after closing its CCTs for the voids of
/// unspent nonces to land ([`BobMbs::settle_wallet`]).
const WALLET_SETTLE_EPOCHS: u64 = 4;

/// Reverted `prove` calls of one side after which `resume` stops sending
/// it and leaves the side to CCT_V (a `prove` that reverted did not act).
const MAX_PROVE_REVERTS: u32 = 2;

/// `gridledger xchain resume --dir D`: closes the CCTs left open (see
/// [`XchainCmd::Resume`]). Decisions: the driver is the relayer and plays
/// the parties, whose keys are this deployment's dev accounts (as for
/// every `xchain swap`); a side's payment that is on its chain — its
/// posted native transfer (sub-situation 2), the one its driver journaled
/// before sending it ([`gridledger_xchain::journal`]), or else any transfer
/// in the window that pays the instruction with the terms' nonce (the
/// sender's exact `nonce_i`, the receiver's floor or above)
/// ([`BobMbs::find_payment`], attack R6-3: a driver killed
/// between paying and posting) — is proved by its payer while the BoB still keeps its
/// block's header (κ_i headers: `prove`), or against the accumulator of
/// relayed headers once it does not (`prove_relayed`, [`BobMbs::prove_call`]);
/// one that is not on its chain, or whose proof cannot be built or
/// reverted [`MAX_PROVE_REVERTS`] times, is left to CCT_V (its second stage
/// forwards the posted transfer or closes the side as Algorithm 5.1 says);
/// a journaled transfer that never left is sent to its chain once, and
/// posted, while a post still gets in before the deadline (never later:
/// attack R8-2), a payment found on its chain but not posted is posted
/// then as well, and a posted transfer missing from its chain is sent
/// again (after CCT_V the BoB node's duties forward it, attack R8-3);
/// a side that neither posted nor proved
/// is penalised by the first-stage CCT_V after the deadline, and a side
/// whose payment was found yet ends penalised makes the exit status
/// non-zero (`penalised_paid`). CCT_V is sent by the sender if its key is
/// here, else by the receiver. A CCT neither of whose parties' keys is
/// here is not this deployment's driver's to close: it is skipped and
/// reported (`skipped`), and does not stop the others. All open CCTs are
/// driven side by side, one epoch at a time; the exit status is 0 only if
/// every CCT of ours ended complete within `--max-epochs` (those still open
/// are reported under `open`, with what was tried). Run it on a deployment
/// no other process is running (`up --processes --dir D` afterwards brings
/// the other validators' replicas up to date from validator 0's).
fn resume(a: ResumeArgs) -> anyhow::Result<()> {
    use gridledger_core::Hash32;
    use gridledger_xchain::bob::{keys, CctV, PostNt};
    use gridledger_xchain::SideState;
    use std::collections::BTreeMap;
    anyhow::ensure!(a.shape.dir.is_some(), "xchain resume needs --dir (the deployment whose CCTs to close)");
    let (mut m, _tmp) = open(&a.shape)?;
    // Terms agreed by a driver that never got their CCT stored, and that
    // can never be stored now (expired, or refused): their nonces are
    // given back in the wallet registry (attack R10-3).
    let released_terms = m.release_unstored_terms()?;
    let ids = open_ccts(&m)?;
    // The parties' keys: the dev account with the address the terms name.
    let users = m.spec.users;
    let key_of = |a: &gridledger_core::Address| (0..users).map(dev_key).find(|k| k.address() == *a);
    let side_index = |s: Side| match s {
        Side::Sender => 0,
        Side::Receiver => 1,
    };
    let mut ours = Vec::new();
    let mut skipped = Vec::new();
    for id in &ids {
        let rec = m.cct(id).context("the CCT record")?;
        if key_of(&rec.terms.sender_b).is_some() || key_of(&rec.terms.receiver_pk.address()).is_some() {
            ours.push(*id);
        } else {
            skipped.push(json!({
                "cct": id,
                "reason": "neither party's key is a dev account of this deployment",
            }));
        }
    }
    // Per CCT: reverted proves per side, and notes on what was given up.
    let mut reverts: BTreeMap<Hash32, [u32; 2]> = BTreeMap::new();
    let mut notes: BTreeMap<Hash32, Vec<String>> = BTreeMap::new();
    // Sides whose payment `resume` found on its chain, and journaled NTs it sent.
    let mut paid: std::collections::BTreeSet<(Hash32, usize)> = Default::default();
    let mut resent: std::collections::BTreeSet<(Hash32, usize)> = Default::default();
    // Sides whose payment `resume` posted to the BoB (once each).
    let mut posting: std::collections::BTreeSet<(Hash32, usize)> = Default::default();
    // Sides whose NT journal entry did not read (noted once).
    let mut unreadable: std::collections::BTreeSet<(Hash32, usize)> = Default::default();
    let mut epochs = 0;
    loop {
        let open: Vec<Hash32> = ours.iter().copied().filter(|id| m.cct(id).is_some_and(|r| !r.complete)).collect();
        if open.is_empty() || epochs >= a.max_epochs {
            break;
        }
        let mut proves: Vec<(Hash32, Side, Hash32)> = Vec::new();
        for id in &open {
            let rec = m.cct(id).context("the CCT record")?;
            // Each side's payment on its chain, once final at the BoB: prove it.
            let mut acted = false;
            for side in [Side::Sender, Side::Receiver] {
                if rec.state(side) != SideState::Pending {
                    continue;
                }
                let payer = match side {
                    Side::Sender => rec.terms.sender_b,
                    Side::Receiver => rec.terms.receiver_pk.address(),
                };
                let Some(key) = key_of(&payer) else { continue };
                // The side's payment: its posted or journaled NT if it is on
                // its chain, else any transfer there that pays the
                // instruction in the window (attack R6-3: a driver killed
                // between paying and posting).
                let posted = m.bob_record::<gridledger_ledger::SignedTransaction>(&keys::posted(id, side));
                // An entry that does not read (a torn or truncated file) is
                // a note on this CCT and counts as no journaled NT: the
                // payment is still looked for on its chain, and the other
                // CCTs go on (attack R7-3).
                let journaled = match gridledger_xchain::journal::read(&m.dir, id, side) {
                    Ok(nt) => nt,
                    Err(e) => {
                        if unreadable.insert((*id, side_index(side))) {
                            notes
                                .entry(*id)
                                .or_default()
                                .push(format!("{side:?}'s NT journal entry is unreadable, treated as none: {e}"));
                        }
                        None
                    }
                };
                let mut found = None;
                for nt in posted.iter().chain(journaled.iter()) {
                    if let Some(p) = m.proof_for(*id, side, nt)? {
                        found = Some(p);
                        break;
                    }
                }
                if found.is_none() {
                    if let Some(nt) = m.find_payment(&rec, side)? {
                        found = m.proof_for(*id, side, &nt)?;
                    }
                }
                // Whether a `post_nt` sent now still gets in before the
                // deadline: the next BoB block stores each chain's next
                // header at most.
                let (chain, ..) = rec.instruction(side);
                let before_deadline = m.external(chain)?.height() + 1 < rec.deadline(side);
                let Some(pt) = found else {
                    // Journaled but never sent (killed before it left): send
                    // it while its chain is still before the deadline, and
                    // post it to the BoB as the driver would have (attack
                    // R8-2: with K ≥ 2 confirmations a transfer landing just
                    // before the deadline is not final by then, and an
                    // unposted side is penalised by the first CCT_V); it is
                    // proved once it lands. Sent once; never sent once too
                    // late to be posted. A posted transfer that is not on
                    // its chain is sent again (attack R8-3; after CCT_V the
                    // BoB node's duties forward it).
                    if let (Some(nt), None) = (&journaled, &posted) {
                        if resent.insert((*id, side_index(side))) && before_deadline {
                            if let Err(e) = m.external_mut(chain)?.submit(nt) {
                                notes.entry(*id).or_default().push(format!(
                                    "{side:?}'s journaled transfer could not be sent to chain {chain}: {e}"
                                ));
                            } else {
                                let post = m.bob_call(
                                    &key,
                                    "post_nt",
                                    &PostNt { cct: *id, side, nt: nt.clone() },
                                    gridledger_core::Amount::ZERO,
                                );
                                m.bob.submit(&post)?;
                                posting.insert((*id, side_index(side)));
                                notes.entry(*id).or_default().push(format!(
                                    "{side:?}'s journaled transfer had not left; sent to chain {chain} and posted"
                                ));
                            }
                        }
                    } else if let Some(nt) = &posted {
                        if before_deadline
                            && resent.insert((*id, side_index(side)))
                            && m.external_mut(chain)?.submit(nt).is_ok()
                        {
                            notes
                                .entry(*id)
                                .or_default()
                                .push(format!("{side:?}'s posted transfer was not on chain {chain}; sent again"));
                        }
                    }
                    continue;
                };
                // A payment on its chain but not posted yet (a journaled one
                // resume sent, one found): posted while that gets in before
                // the deadline, so that one not final by then is forwarded
                // and proved in sub-situation 2 (attack R8-2).
                if posted.is_none() && before_deadline && posting.insert((*id, side_index(side))) {
                    let post = m.bob_call(
                        &key,
                        "post_nt",
                        &PostNt { cct: *id, side, nt: pt.nt.clone() },
                        gridledger_core::Amount::ZERO,
                    );
                    m.bob.submit(&post)?;
                }
                paid.insert((*id, side_index(side)));
                let n = &mut reverts.entry(*id).or_default()[side_index(side)];
                if *n >= MAX_PROVE_REVERTS {
                    continue;
                }
                let chain = pt.nt.tx.chain_id;
                let tip = m.bob_tip(chain);
                if tip >= pt.height + m.spec.finality.confirmations() as u64 {
                    // `prove` while the BoB keeps the header, else
                    // `prove_relayed` with its accumulator path.
                    let tx = match m.prove_call(&key, &pt) {
                        Ok(tx) => tx,
                        Err(e) => {
                            *n = MAX_PROVE_REVERTS;
                            notes.entry(*id).or_default().push(format!(
                                "{side:?}'s transfer (block {} of chain {chain}) cannot be proved: {e}; left to CCT_V",
                                pt.height
                            ));
                            continue;
                        }
                    };
                    m.bob.submit(&tx)?;
                    proves.push((*id, side, tx.hash()));
                    acted = true;
                }
            }
            // CCT_V's first stage once both deadlines passed (the second
            // stage is sent by every epoch's BoB-node duties).
            let due = [(rec.terms.chain_i, rec.deadline_i), (rec.terms.chain_j, rec.deadline_j)]
                .into_iter()
                .all(|(c, d)| m.bob_tip(c) >= d);
            if !acted && !rec.verified && due {
                // Anyone may send it; a party's account pays its gas (the
                // relayer's nonces are taken by the epoch's relays).
                let key = key_of(&rec.terms.sender_b)
                    .or_else(|| key_of(&rec.terms.receiver_pk.address()))
                    .context("a party's key (checked above)")?;
                let tx = m.bob_call(&key, "cct_v", &CctV { cct: *id }, gridledger_core::Amount::ZERO);
                m.bob.submit(&tx)?;
            }
        }
        m.tick()?;
        epochs += 1;
        // A `prove` that reverted did not act; after a few, stop sending it.
        for (id, side, h) in proves {
            let status = m.bob.chain().receipt(&h)?.map(|r| r.status);
            if status.as_ref().is_some_and(|s| *s != gridledger_ledger::TxStatus::Success) {
                let n = &mut reverts.entry(id).or_default()[side_index(side)];
                *n += 1;
                if *n == MAX_PROVE_REVERTS {
                    notes
                        .entry(id)
                        .or_default()
                        .push(format!("{side:?}'s prove reverted {n} times ({status:?}): left to CCT_V",));
                }
            }
        }
    }
    // The wallet triples of the CCTs closed here are given back under the
    // wallet's rule (attack R11-4): a nonce its payment spent at once; one
    // left unspent (a side penalised without paying) is voided by its
    // payer first, and given back once the void is on its chain — epochs
    // run for that (a void left in a mempool this process drops would be
    // lost; the next driver sends it again otherwise).
    let released_terms = released_terms + m.settle_wallet(WALLET_SETTLE_EPOCHS)?;
    let mut closed = Vec::new();
    let mut still_open = Vec::new();
    for id in &ours {
        let Some(r) = m.cct(id) else { continue };
        let v = json!({ "cct": id, "record": r, "notes": notes.get(id).cloned().unwrap_or_default() });
        if r.complete {
            closed.push(v);
        } else {
            still_open.push(v);
        }
    }
    // A side whose payment `resume` found on its chain yet ended penalised:
    // its payer lost the deposit for a payment it made (attack R6-3).
    let mut robbed = Vec::new();
    for (id, i) in &paid {
        let side = if *i == 0 { Side::Sender } else { Side::Receiver };
        if m.cct(id).is_some_and(|r| r.state(side) == SideState::Penalised) {
            robbed.push(json!({ "cct": id, "side": format!("{side:?}") }));
        }
    }
    if a.shape.json {
        println!(
            "{}",
            json!({ "closed": closed, "open": still_open, "skipped": skipped, "penalised_paid": robbed, "epochs": epochs, "released_wallet_entries": released_terms })
        );
    } else if closed.is_empty() && still_open.is_empty() && skipped.is_empty() {
        println!("no open CCT in this deployment");
    } else {
        for r in closed.iter().chain(&still_open) {
            println!(
                "CCT {}: complete {}, sender {}, receiver {}",
                r["cct"], r["record"]["complete"], r["record"]["sender"], r["record"]["receiver"]
            );
            for n in r["notes"].as_array().into_iter().flatten() {
                println!("  {}", n.as_str().unwrap_or_default());
            }
        }
        for s in &skipped {
            println!("CCT {}: skipped ({})", s["cct"], s["reason"].as_str().unwrap_or_default());
        }
        println!("  {epochs} epochs");
    }
    anyhow::ensure!(
        robbed.is_empty(),
        "penalised although their payment is on its chain: {}",
        robbed.iter().map(|r| format!("CCT {} {}", r["cct"], r["side"])).collect::<Vec<_>>().join(", ")
    );
    anyhow::ensure!(
        still_open.is_empty(),
        "{} of this deployment's CCTs still open after {epochs} epochs (--max-epochs {})",
        still_open.len(),
        a.max_epochs
    );
    Ok(())
}

/// Fills the pool through Π_CCTC and makes both parties' deposits.
/// Pools and deposits are sized for a swap of `amount` ([`setup_funds`]).
fn prepare(m: &mut BobMbs, amount: u64) -> anyhow::Result<()> {
    let provider = dev_key(7);
    let funds = setup_funds(amount);
    for c in m.chain_ids() {
        m.provide_liquidity(&provider, c, funds)?;
    }
    m.provide_token_b(&provider, funds)?;
    m.deposit_token_b(&dev_key(0), funds)?;
    m.deposit_token_b(&dev_key(1), funds)?;
    Ok(())
}

fn behaviour(a: Attack) -> Behaviour {
    match a {
        Attack::None => Behaviour::Honest,
        Attack::WithholdSender => Behaviour::Withhold(Side::Sender),
        Attack::WithholdReceiver => Behaviour::Withhold(Side::Receiver),
        Attack::CensorSender => Behaviour::Censor { side: Side::Sender, delay: 40 },
        Attack::UnderfundSender => Behaviour::Underfund(Side::Sender),
        Attack::UnlandableSender => Behaviour::PostUnlandable(Side::Sender),
    }
}

fn swap(a: SwapArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.from != a.to, "--from and --to must be different chains");
    anyhow::ensure!(a.from < a.shape.chains && a.to < a.shape.chains, "--from and --to must be below --chains");
    if a.processes {
        anyhow::ensure!(a.attack == Attack::None, "--processes runs the honest exchange only (no --attack)");
        let v = procs::swap(&a, a.chain_timeout)?;
        if a.shape.json {
            println!("{v}");
        } else {
            let r = &v["record"];
            println!(
                "CCTE over {} validator processes: complete {}, sender {}, receiver {}, x_i {}, {:.2} s",
                v["processes"].as_array().map_or(0, |p| p.len()),
                r["complete"],
                r["sender"],
                r["receiver"],
                v["x_i"].as_str().unwrap_or(""),
                v["wall_s"].as_f64().unwrap_or(0.0)
            );
        }
        return Ok(());
    }
    let (mut m, _tmp) = open(&a.shape)?;
    m.slippage_bps = a.slippage_bps;
    prepare(&mut m, a.amount)?;
    let req = SwapRequest {
        sender: dev_key(0),
        receiver: dev_key(1),
        chain_i: ext_chain(&m, a.from)?,
        chain_j: ext_chain(&m, a.to)?,
        x_j: a.amount as u128,
        salt: 1,
    };
    let t = Instant::now();
    let rep = m.swap(&req, behaviour(a.attack))?;
    let wall = t.elapsed().as_secs_f64();
    if a.shape.json {
        println!("{}", json!({ "report": rep, "wall_s": wall }));
    } else {
        print_swap(&req, &rep, wall);
    }
    Ok(())
}

fn print_swap(req: &SwapRequest, rep: &SwapReport, wall: f64) {
    println!("CCTE {}: {} Token_{} for {} Token_{}", rep.cct, rep.x_i, req.chain_i, req.x_j, req.chain_j);
    println!("  exchange rate (SC_AMM)     x_i = {}, deposit unit x_B = {}", rep.x_i, rep.x_b);
    println!("  sender side                {:?}", rep.record.sender);
    println!("  receiver side              {:?}", rep.record.receiver);
    println!(
        "  phases                     {} to exchange, {} to settle on the BoB",
        rep.exchange_phases, rep.settlement_phases
    );
    println!("  epochs                     {} to exchange, {} to settle", rep.exchange_epochs, rep.settlement_epochs);
    println!(
        "  bytes                      {} total (CCT {}, native {}, copies to BoB {}, proofs {}, CCT_V {}, fraud {})",
        rep.bytes.total(),
        rep.bytes.cct,
        rep.bytes.native,
        rep.bytes.posted,
        rep.bytes.proofs,
        rep.bytes.cct_v,
        rep.bytes.fraud
    );
    println!("  BoB gas                    {:?}", rep.gas);
    println!("  wall time                  {wall:.3} s");
}

/// Deposit each CCDI participant pays into S_MUE.
const CCDI_DEPOSIT: u128 = 10_000;

/// What a migration did, for the CLI and the demo.
struct Migration {
    from: u32,
    to: u32,
    old_item: u64,
    new_item: u64,
    before: Character,
    moved: Character,
    left: Character,
    report: CcdiReport,
}

/// Creates a character for dev key 0 on `from`, lets it fight one battle
/// (so it is no longer a fresh item), then migrates it to `to` (S_SDM).
fn run_migration(
    m: &mut BobMbs,
    from: u32,
    to: u32,
    name: &str,
    attack: u64,
    battles: u32,
) -> anyhow::Result<Migration> {
    let key = dev_key(0);
    let item = m.create_item(from, &key, name, attack)?;
    if battles > 0 {
        let rival = dev_key(1);
        let r = m.create_item(from, &rival, "rival", 0)?;
        let users = [
            CcdiUser { key: key.clone(), chain: from, item, behaviour: UserBehaviour::Honest },
            CcdiUser { key: rival, chain: from, item: r, behaviour: UserBehaviour::Honest },
        ];
        let kappa = ccdi_kappa(&m.spec, None, 1)?;
        m.run_ccdi(CcdiApp::Battle, &users, &CcdiAttack::default(), CCDI_DEPOSIT, kappa, 1)?;
    }
    let before = m.item(from, item).context("the item")?.data;
    let (fresh, report) = m.migrate(&key, from, item, to, CCDI_DEPOSIT, ccdi_kappa(&m.spec, None, 2)?)?;
    let moved = m.item(to, fresh).context("the migrated item")?.data;
    let left = m.item(from, item).context("the old item")?.data;
    anyhow::ensure!(moved == before, "the item did not arrive unchanged");
    Ok(Migration { from, to, old_item: item, new_item: fresh, before, moved, left, report })
}

fn migration_json(mg: &Migration) -> serde_json::Value {
    json!({
        "from_chain": mg.from, "to_chain": mg.to, "item_on_from": mg.old_item, "item_on_to": mg.new_item,
        "before": mg.before, "migrated": mg.moved, "left_on_from": mg.left,
        "phases": mg.report.phases, "transactions": mg.report.counts.protocol_txs(),
        "bytes": mg.report.counts.protocol_bytes(), "case1": mg.report.case1,
    })
}

fn migrate(a: MigrateArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.from != a.to, "--from and --to must be different chains");
    anyhow::ensure!(a.from < a.shape.chains && a.to < a.shape.chains, "--from and --to must be below --chains");
    anyhow::ensure!(!a.name.is_empty() && a.name.len() <= 32, "--name must have 1 to 32 bytes");
    let (mut m, _tmp) = open_spec(&a.shape, MbsSpec { ccdi: true, ..a.shape.spec() })?;
    let t = Instant::now();
    let (from, to) = (ext_chain(&m, a.from)?, ext_chain(&m, a.to)?);
    let mg = run_migration(&mut m, from, to, &a.name, a.attack, a.battles)?;
    let wall = t.elapsed().as_secs_f64();
    if a.shape.json {
        println!("{}", json!({ "migration": migration_json(&mg), "report": mg.report, "wall_s": wall }));
    } else {
        println!(
            "S_SDM: item {} ({}) moved from chain {} to chain {} as item {}",
            mg.old_item, mg.before.name, mg.from, mg.to, mg.new_item
        );
        println!(
            "  on chain {}: attack {}, experience {}   (was on chain {})",
            mg.to, mg.moved.attack, mg.moved.experience, mg.from
        );
        println!("  left on chain {}: a fresh initial version (experience {})", mg.from, mg.left.experience);
        println!(
            "  phases {}, transactions {} (2 locks, 2 CCTs, 2 settlements), bytes {}",
            mg.report.phases,
            mg.report.counts.protocol_txs(),
            mg.report.counts.protocol_bytes()
        );
        println!("  wall time {wall:.3} s");
    }
    Ok(())
}

fn ccdi(a: CcdiArgs) -> anyhow::Result<()> {
    anyhow::ensure!(a.withhold < a.users, "--withhold must leave at least one user");
    if let Some(c) = a.censor {
        anyhow::ensure!(c < a.shape.chains, "--censor must be below --chains");
    }
    let f = (a.shape.validators.saturating_sub(1) / 3) as usize;
    anyhow::ensure!(a.byzantine_relayers as usize <= f, "--byzantine-relayers must be at most f = {f}");
    let spec = MbsSpec { ccdi: true, users: a.users as usize, ..a.shape.spec() };
    let kappa = ccdi_kappa(&spec, a.process_kappa, 1)?;
    let (mut m, _tmp) = open_spec(&a.shape, spec)?;
    let mut users = Vec::new();
    for i in 0..a.users as usize {
        let key = dev_key(i);
        let chain = ext_chain(&m, i as u32 % a.shape.chains)?;
        let item = m.create_item(chain, &key, &format!("hero-{i}"), (17 * i as u64 + 5) % 97)?;
        let behaviour =
            if i + a.withhold as usize >= a.users as usize { UserBehaviour::Withhold } else { UserBehaviour::Honest };
        users.push(CcdiUser { key, chain, item, behaviour });
    }
    let attack = CcdiAttack {
        censor: a.censor.map(|c| ext_chain(&m, c).map(|id| (id, a.delay))).transpose()?.into_iter().collect(),
        byzantine_relayers: a.byzantine_relayers as usize,
        byzantine_members: 0,
    };
    let t = Instant::now();
    let rep = m.run_ccdi(CcdiApp::Battle, &users, &attack, CCDI_DEPOSIT, kappa, 1)?;
    let wall = t.elapsed().as_secs_f64();
    if a.shape.json {
        println!("{}", json!({ "report": rep, "wall_s": wall }));
        return Ok(());
    }
    println!(
        "CCDI process {}: {} (X = {}, N = {})",
        rep.process,
        if rep.case1 { "Case 1, every item stored before the deadline" } else { "Case 2, deadline passed" },
        a.users,
        a.shape.chains
    );
    for (i, o) in rep.items.iter().enumerate() {
        println!(
            "  user {i:>2} chain {}  item {:>2}  {:<11} {:?}: attack {} experience {} -> {}",
            o.chain,
            o.item,
            format!("{:?}", o.behaviour),
            o.fate,
            o.after.attack,
            o.before.experience,
            o.after.experience
        );
    }
    let c = &rep.counts;
    println!(
        "  transactions {} (locks {}, CCTs {} + {} by relay nodes, settlements {}), bytes {}",
        c.protocol_txs(),
        c.lock_txs,
        c.cct_txs,
        c.relayed_cct_txs,
        c.settle_txs,
        c.protocol_bytes()
    );
    println!("  phases {}, epochs {}, eliminated {}", rep.phases, rep.epochs, rep.eliminated);
    println!("  gas {:?}", rep.gas);
    println!("  wall time {wall:.3} s");
    Ok(())
}

/// The demo's cross-chain section: two communities on different chains
/// exchange tokens through the BoB. Returns its JSON summary.
pub fn demo(json_only: bool) -> anyhow::Result<serde_json::Value> {
    let tmp = tempfile::tempdir()?;
    let spec = MbsSpec { chains: 2, ccdi: true, ..MbsSpec::default() };
    let mut m = BobMbs::open(tmp.path(), spec)?;
    prepare(&mut m, 1_000)?;
    let req = SwapRequest {
        sender: dev_key(0),
        receiver: dev_key(1),
        chain_i: ext_chain(&m, 0)?,
        chain_j: ext_chain(&m, 1)?,
        x_j: 1_000,
        salt: 1,
    };
    let (s, r) = (req.sender.address(), req.receiver.address());
    let before = [
        m.external(req.chain_i)?.account(&s).balance.0,
        m.external(req.chain_j)?.account(&s).balance.0,
        m.external(req.chain_i)?.account(&r).balance.0,
        m.external(req.chain_j)?.account(&r).balance.0,
    ];
    let t = Instant::now();
    let rep = m.swap(&req, Behaviour::Honest)?;
    let wall = t.elapsed().as_secs_f64();
    let after = [
        m.external(req.chain_i)?.account(&s).balance.0,
        m.external(req.chain_j)?.account(&s).balance.0,
        m.external(req.chain_i)?.account(&r).balance.0,
        m.external(req.chain_j)?.account(&r).balance.0,
    ];
    // Independence: external chains hold their accounts and their own SC_BG items, nothing else.
    let sc_bg = gridledger_ledger::state::contract_key(gridledger_xchain::scbg::SC_BG_ID, &[]);
    let independent = |m: &BobMbs| {
        m.externals
            .values()
            .all(|c| c.chain().state().iter().all(|(k, _)| k.first() == Some(&0x01) || k.starts_with(&sc_bg)))
    };
    let independent_after_swap = independent(&m);
    anyhow::ensure!(rep.record.complete, "the cross-chain exchange did not settle");
    anyhow::ensure!(
        after[2] == before[2] + rep.x_i && after[1] == before[1] + req.x_j,
        "the exchange did not move the tokens"
    );
    // One item migrated from community A's chain to community B's (S_SDM).
    let mg = run_migration(&mut m, req.chain_i, req.chain_j, "community-a-hero", 42, 1)?;
    // Spending from TPK_Addr_i: tokens locked there by an ordinary transfer,
    // claimed on the BoB, burned there and paid out again by the group.
    let spender = dev_key(2);
    let tpk = m.config.tpk_address(req.chain_i);
    let nt = m.native_transfer(req.chain_i, &spender, tpk, 5_000)?;
    m.external_mut(req.chain_i)?.submit(&nt)?;
    m.tick()?;
    let (height, proof) = m.external(req.chain_i)?.tx_proof(&nt.hash())?.context("the lock is included")?;
    m.wait_final(req.chain_i, height)?;
    let claim = m.bob_call(
        &spender,
        "claim",
        &gridledger_xchain::bob::Claim { chain: req.chain_i, height, nt, proof },
        gridledger_core::Amount::ZERO,
    );
    m.bob_ok(&claim)?;
    let tpk_before = m.external(req.chain_i)?.account(&tpk).balance.0;
    m.redeem(&spender, req.chain_i, 2_000, spender.address())?;
    let released = tpk_before - m.external(req.chain_i)?.account(&tpk).balance.0;
    anyhow::ensure!(released == 2_000, "TPK_Addr_i did not pay the release");
    let independent = independent_after_swap && independent(&m);
    let summary = json!({
        "chains": [req.chain_i, req.chain_j],
        "bob_chain": m.bob.chain_id(),
        "x_i": rep.x_i.to_string(),
        "x_j": req.x_j.to_string(),
        "exchange_phases": rep.exchange_phases,
        "settled": rep.record.complete,
        "bytes": rep.bytes.total(),
        "independent_external_chains": independent,
        "wall_s": wall,
        "migration": migration_json(&mg),
        "released_from_tpk": released.to_string(),
    });
    if !json_only {
        println!("gridledger demo: cross-chain token exchange through the BoB (thesis Ch.5)");
        println!(
            "  community A on chain {} pays {} Token_{}; community B on chain {} pays {} Token_{}",
            req.chain_i, rep.x_i, req.chain_i, req.chain_j, req.x_j, req.chain_j
        );
        println!(
            "  exchange phases        {} (CCT on the BoB, then both native transfers at once)",
            rep.exchange_phases
        );
        println!("  settled on the BoB     {} (proofs checked by SC_MPV, deposits released)", rep.record.complete);
        println!("  bytes on the wire      {}", rep.bytes.total());
        println!(
            "  item migrated          {} (attack {}, experience {}) from chain {} to chain {} in {} phases, {} transactions",
            mg.before.name,
            mg.moved.attack,
            mg.moved.experience,
            mg.from,
            mg.to,
            mg.report.phases,
            mg.report.counts.protocol_txs()
        );
        println!(
            "  spent from TPK_Addr    {released} Token_{} paid out by one threshold signature (after burning on the BoB)",
            req.chain_i
        );
        println!("  external chains store  only their own accounts and items: {independent}");
        println!("  wall time              {wall:.3} s");
    }
    Ok(summary)
}

/// The demo report's cross-chain rows, from the demo's JSON summary.
pub fn report_section(x: &serde_json::Value) -> gridledger_experiments::html::XchainSection {
    let s = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    let mg = &x["migration"];
    let rows = vec![
        ("chains (external)".into(), s(&x["chains"])),
        ("BoB chain".into(), s(&x["bob_chain"])),
        ("tokens exchanged (x_i / x_j)".into(), format!("{} / {}", s(&x["x_i"]), s(&x["x_j"]))),
        ("exchange phases".into(), s(&x["exchange_phases"])),
        ("settled on the BoB".into(), s(&x["settled"])),
        ("bytes on the wire (exchange)".into(), s(&x["bytes"])),
        (
            "item migrated".into(),
            format!(
                "{} from chain {} to chain {} (attack {}, experience {})",
                s(&mg["migrated"]["name"]),
                s(&mg["from_chain"]),
                s(&mg["to_chain"]),
                s(&mg["migrated"]["attack"]),
                s(&mg["migrated"]["experience"])
            ),
        ),
        ("migration phases / transactions".into(), format!("{} / {}", s(&mg["phases"]), s(&mg["transactions"]))),
        ("paid out of TPK_Addr_i".into(), s(&x["released_from_tpk"])),
        ("external chains independent".into(), s(&x["independent_external_chains"])),
    ];
    gridledger_experiments::html::XchainSection { rows }
}

#[derive(Args)]
pub struct BenchArgs {
    /// Merkle proofs SC_MPV checks (1 to 100,000,000).
    #[arg(long, default_value_t = 300_000, value_parser = clap::value_parser!(u64).range(1..=100_000_000))]
    pub proofs: u64,
    /// CCTEs to time, each on fresh embedded chains (1 to 100).
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..=100))]
    pub swaps: u64,
    /// Threshold committee size N; 2f+1 shares are combined (4 to 1024).
    #[arg(long, default_value_t = 31, value_parser = clap::value_parser!(u64).range(4..=1024))]
    pub members: u64,
}

pub fn bench(a: BenchArgs) -> anyhow::Result<()> {
    let cfg = gridledger_xchain::bench::BenchConfig {
        proofs: a.proofs as usize,
        swaps: a.swaps as usize,
        members: a.members as usize,
    };
    println!("{}", gridledger_xchain::bench::run(&cfg)?);
    Ok(())
}
