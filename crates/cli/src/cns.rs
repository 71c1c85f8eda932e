//! `gridledger cns …`: the Credit-Note System's merchant service and the
//! participant's side of it (seed §3.3.6, §4 step 5, §5.1.3, §5.1.4).
//!
//! ```text
//! participant: gridledger cns apply   --key K --docs FILE... --credit N --out app.json
//! merchant:    gridledger cns approve --rpc URL --merchant-key M --desk-key D --application app.json --out approval.json
//! participant: gridledger cns init    --rpc URL --key K --approval approval.json
//! participant: gridledger cns pay     --rpc URL --key K --sid S [--amount A]
//! merchant:    gridledger cns bill    --rpc URL --merchant-key M --desk-key D
//! anyone:      gridledger cns status  --rpc URL [--sid S | --merchant ADDR]
//! ```
//!
//! The participant's MSC pseudonym key is derived from its account key and
//! the application's documents, so `init` needs only the account key.
//! `approve` writes the decision file in both cases; a refusal is
//! `{"outcome":"refused","kind":…,"reason":…}` and exits with an error.
//! `gridledger channel prepare` runs the same service code for its MSCs, or
//! uses the MSCs made here: `--approval0/--approval1 approval.json`.

use anyhow::Context;
use clap::{Args, Subcommand};
use gridledger_contracts::cns::credit::{CollateralRatio, MerchantDesk};
use gridledger_contracts::cns::SignedApproval;
use gridledger_core::{Address, Amount};
use gridledger_node::channel::chainlink::{read_msc, ChainLink};
use gridledger_node::channel::merchant::{self, derive_msc_key, document_hash, Application, Decision};
use gridledger_node::channel::spec::{ensure_merchant, merchant_desk};
use gridledger_node::RpcClient;
use serde_json::json;
use std::path::PathBuf;

use crate::endpoint::DEFAULT_RPC;
use crate::ops::emit;
use crate::units;

#[derive(Subcommand)]
pub enum CnsCmd {
    /// Write a credit application (hashes of the supporting documents).
    Apply(ApplyArgs),
    /// Merchant: assess an application (blacklist, disputes on chain, risk
    /// function) and write a signed approval or a typed refusal.
    Approve(ApproveArgs),
    /// Create this participant's MSC on chain with an approval, depositing
    /// the approved collateral under its time-lock.
    Init(InitArgs),
    /// Pay billed debt directly.
    Pay(PayArgs),
    /// Merchant: one billing run (sign closed channels' debits, settle what
    /// is due: nothing if paid, from collateral once its time-lock allows).
    Bill(BillArgs),
    /// MSC records (one, a merchant's, or all).
    Status(StatusArgs),
}

#[derive(Args)]
pub struct ApplyArgs {
    /// The participant's account key file.
    #[arg(long)]
    pub key: PathBuf,
    /// Supporting documents; only their hashes go into the application.
    #[arg(long, num_args = 1..)]
    pub docs: Vec<PathBuf>,
    /// Credit asked for, in minor units (1 coin = 1,000,000).
    #[arg(long, value_parser = crate::units::parse_amount)]
    pub credit: u128,
    /// Real identity for the merchant's KYC (default: the account address).
    #[arg(long)]
    pub identity: Option<String>,
    /// File to write the application to (JSON).
    #[arg(long)]
    pub out: PathBuf,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct ApproveArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = crate::endpoint::parse_rpc, help = crate::endpoint::RPC_HELP)]
    pub rpc: String,
    /// The merchant's account key file.
    #[arg(long)]
    pub merchant_key: PathBuf,
    /// The merchant's desk (signing) key file; created if absent.
    #[arg(long)]
    pub desk_key: PathBuf,
    /// The application file written by `cns apply`.
    #[arg(long)]
    pub application: PathBuf,
    /// File to write the decision to (approval or refusal, JSON).
    #[arg(long)]
    pub out: PathBuf,
    /// Refused identities, one per line.
    #[arg(long)]
    pub blacklist: Option<PathBuf>,
    /// Risk function: collateral share of the credit (basis points) ...
    #[arg(long, default_value_t = 2_000)]
    pub base_bps: u32,
    /// ... plus this per dispute on record.
    #[arg(long, default_value_t = 500)]
    pub per_dispute_bps: u32,
    /// Credit cap per participant, in minor units (1 coin = 1,000,000).
    #[arg(long, default_value_t = 1_000_000, value_parser = crate::units::parse_amount)]
    pub max_credit: u128,
    /// Collateral time-lock (ms from msc-init).
    #[arg(long, default_value_t = 60_000)]
    pub lock_ms: u64,
    /// Most disputes on record tolerated.
    #[arg(long, default_value_t = 5)]
    pub max_disputes: u32,
    /// Validity of the approval (ms).
    #[arg(long, default_value_t = 3_600_000)]
    pub ttl_ms: u64,
    /// Billing period (ms), used when the merchant is registered now.
    #[arg(long, default_value_t = 30_000)]
    pub billing_period_ms: u64,
    /// Pool deposited when the merchant is registered now, in minor units.
    #[arg(long, default_value_t = 1_000_000, value_parser = crate::units::parse_amount)]
    pub pool: u128,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct InitArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = crate::endpoint::parse_rpc, help = crate::endpoint::RPC_HELP)]
    pub rpc: String,
    /// The participant's account key file (the one that signed the application).
    #[arg(long)]
    pub key: PathBuf,
    /// The approval file written by `cns approve`.
    #[arg(long)]
    pub approval: PathBuf,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct PayArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = crate::endpoint::parse_rpc, help = crate::endpoint::RPC_HELP)]
    pub rpc: String,
    /// The participant's account key file.
    #[arg(long)]
    pub key: PathBuf,
    /// The MSC id (as `cns init` printed it).
    #[arg(long)]
    pub sid: u64,
    /// Amount to pay, in minor units (default: everything outstanding).
    #[arg(long, value_parser = crate::units::parse_amount)]
    pub amount: Option<u128>,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct BillArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = crate::endpoint::parse_rpc, help = crate::endpoint::RPC_HELP)]
    pub rpc: String,
    /// The merchant's account key file.
    #[arg(long)]
    pub merchant_key: PathBuf,
    /// The desk key that signs the debits.
    #[arg(long)]
    pub desk_key: PathBuf,
    #[command(flatten)]
    pub password: crate::ops::PasswordArgs,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args)]
pub struct StatusArgs {
    #[arg(long, default_value = DEFAULT_RPC, env = "GRIDLEDGER_RPC", value_parser = crate::endpoint::parse_rpc, help = crate::endpoint::RPC_HELP)]
    pub rpc: String,
    /// Only this MSC id.
    #[arg(long)]
    pub sid: Option<u64>,
    /// Only this merchant's MSCs.
    #[arg(long)]
    pub merchant: Option<String>,
    /// Print one JSON document instead of the summary.
    #[arg(long)]
    pub json: bool,
}

fn msc_json(m: &gridledger_contracts::cns::Msc) -> serde_json::Value {
    json!({
        "sid": m.sid, "merchant": m.merchant, "participant": m.participant, "payout": m.payout,
        "collateral": m.collateral, "collateral_unlock_at": m.collateral_unlock_at, "credit_limit": m.credit_limit,
        "standing": m.standing, "disputes_at_fault": m.disputes_at_fault, "closed": m.closed,
        "pending_settlements": m.pending.len(), "outstanding": m.ledger.outstanding_net().to_string(),
        "ledger": m.ledger, "ledger_imbalance": m.ledger.imbalance().to_string(),
        "billing_period_start": m.billing_period_start,
    })
}

/// A signed amount of minor units, as [`units::show`] (negative: owed to
/// the participant).
fn show_signed(v: i128) -> String {
    let shown = units::show(v.unsigned_abs());
    if v < 0 {
        format!("-{shown}")
    } else {
        shown
    }
}

/// The signed approval in a decision file written by `cns approve`; `flag`
/// names the option that gave the file.
pub(crate) fn read_approval(path: &std::path::Path, flag: &str) -> anyhow::Result<SignedApproval> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {} ({flag})", path.display()))?;
    let decision: Decision = serde_json::from_str(&text)
        .with_context(|| format!("{} ({flag}) is not a decision file written by `cns approve`", path.display()))?;
    decision.approval().with_context(|| format!("{} ({flag})", path.display()))
}

pub fn run(cmd: CnsCmd) -> anyhow::Result<()> {
    match cmd {
        CnsCmd::Apply(a) => {
            let key = crate::ops::read_key_with(&a.key, &a.password)?;
            anyhow::ensure!(!a.docs.is_empty(), "at least one --docs file");
            let mut docs = Vec::with_capacity(a.docs.len());
            for d in &a.docs {
                let bytes = std::fs::read(d).with_context(|| format!("reading {}", d.display()))?;
                docs.push(document_hash(&bytes));
            }
            let identity = a.identity.unwrap_or_else(|| key.address().to_string());
            let app = Application::new(&key, identity, docs, Amount(a.credit))?;
            std::fs::write(&a.out, serde_json::to_string_pretty(&app)?)
                .with_context(|| format!("writing the application to {} (--out)", a.out.display()))?;
            let v = json!({ "participant": app.participant, "payout": app.payout, "documents": app.documents.len() });
            emit(a.json, &v, || {
                println!(
                    "application of account {} for {} ({} document(s)) written to {}",
                    app.payout,
                    units::show(a.credit),
                    app.documents.len(),
                    a.out.display()
                );
                println!("  MSC pseudonym key  {}", app.participant);
                println!("next: the merchant runs `gridledger cns approve --application {}`", a.out.display());
            })
        }
        CnsCmd::Approve(a) => {
            let merchant = crate::ops::read_key_with(&a.merchant_key, &a.password)?;
            let desk_key = crate::channel::desk_key(&a.desk_key)?;
            let text = std::fs::read_to_string(&a.application)
                .with_context(|| format!("reading {}", a.application.display()))?;
            let app: Application = serde_json::from_str(&text).context("application file")?;
            let blacklist = match &a.blacklist {
                Some(p) => std::fs::read_to_string(p)
                    .with_context(|| format!("reading the blacklist {} (--blacklist)", p.display()))?
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(String::from)
                    .collect(),
                None => vec![],
            };
            let link = ChainLink::connect(&a.rpc, merchant.clone())?;
            let desk = MerchantDesk {
                domain: link.domain(),
                account: merchant.address(),
                key: desk_key,
                risk: CollateralRatio {
                    base_bps: a.base_bps,
                    per_dispute_bps: a.per_dispute_bps,
                    max_credit: Amount(a.max_credit),
                    lock_ms: a.lock_ms,
                },
                blacklist,
                max_disputes: a.max_disputes,
                approval_ttl_ms: a.ttl_ms,
            };
            ensure_merchant(&link, &desk, a.billing_period_ms, Amount(a.pool))?;
            let decision = Decision::of(merchant::approve(&link.client, &desk, &app, rand::random())?);
            std::fs::write(&a.out, serde_json::to_string_pretty(&decision)?)
                .with_context(|| format!("writing the decision to {} (--out)", a.out.display()))?;
            emit(a.json, &serde_json::to_value(&decision)?, || match &decision {
                Decision::Approved { collateral, credit_limit, lock_ms, .. } => {
                    println!("approved; approval written to {}", a.out.display());
                    println!("  credit limit  {}", units::show(credit_limit.0));
                    println!("  collateral    {} (time-locked for {} s)", units::show(collateral.0), lock_ms / 1000);
                    println!(
                        "next: the participant runs `gridledger cns init --key ITS.key --approval {}`",
                        a.out.display()
                    );
                }
                Decision::Refused { .. } => println!("refused; decision written to {}", a.out.display()),
            })?;
            match decision {
                Decision::Approved { .. } => Ok(()),
                Decision::Refused { reason, .. } => anyhow::bail!("credit refused: {reason}"),
            }
        }
        CnsCmd::Init(a) => {
            let key = crate::ops::read_key_with(&a.key, &a.password)?;
            let approval = read_approval(&a.approval, "--approval")?;
            let msc_key = derive_msc_key(&key, &approval.approval.documents)?;
            let link = ChainLink::connect(&a.rpc, key)
                .with_context(|| format!("connecting to the node at {} (--rpc)", a.rpc))?;
            // A second init with the same approval would lock collateral again.
            if let Some(m) = merchant::all_mscs(&link.client)?
                .into_iter()
                .find(|m| m.participant_key == msc_key.public() && !m.closed)
            {
                anyhow::bail!(
                    "this participant already has MSC {} with merchant {} (collateral {} locked); \
                     use --sid {} in `cns pay`/`cns status`, or apply again with other --docs for another MSC",
                    m.sid,
                    m.merchant,
                    m.collateral.0,
                    m.sid
                );
            }
            let sid = merchant::init_msc(&link, &msc_key, approval, rand::random())?;
            let m = read_msc(&link.client, sid)?.context("the new MSC")?;
            let v = json!({ "sid": sid, "collateral": m.collateral, "collateral_unlock_at": m.collateral_unlock_at,
                            "credit_limit": m.credit_limit });
            let locked_s = m.collateral_unlock_at.saturating_sub(m.billing_period_start) / 1000;
            emit(a.json, &v, || {
                println!("MSC {sid} created");
                println!(
                    "  collateral    {} (time-locked for {locked_s} s, until chain time {} ms)",
                    units::show(m.collateral.0),
                    m.collateral_unlock_at
                );
                println!("  credit limit  {}", units::show(m.credit_limit.0));
                println!(
                    "next: channels on this MSC: `gridledger channel prepare --keys {} PEER.key --approval0 {} …`",
                    a.key.display(),
                    a.approval.display()
                );
            })
        }
        CnsCmd::Pay(a) => {
            crate::endpoint::probe(&a.rpc)?;
            let link = ChainLink::connect(&a.rpc, crate::ops::read_key_with(&a.key, &a.password)?)?;
            read_msc(&link.client, a.sid)?.with_context(|| {
                format!("no MSC {} on the chain at {} (`gridledger cns status` lists them)", a.sid, a.rpc)
            })?;
            let paid = merchant::pay(&link, a.sid, a.amount.map(Amount))?;
            let m = read_msc(&link.client, a.sid)?.context("MSC")?;
            let v = json!({ "sid": a.sid, "paid": paid, "outstanding": m.ledger.outstanding_net().to_string() });
            emit(a.json, &v, || {
                println!("MSC {}: paid {}", a.sid, v["paid"]);
                println!("  outstanding  {} minor units", m.ledger.outstanding_net());
            })
        }
        CnsCmd::Bill(a) => {
            crate::endpoint::probe(&a.rpc)?;
            let merchant = crate::ops::read_key_with(&a.merchant_key, &a.password)?;
            let link = ChainLink::connect(&a.rpc, merchant.clone())?;
            let desk = merchant_desk(
                link.domain(),
                &merchant,
                crate::ops::read_key_with(&a.desk_key, &a.password)?,
                Amount::ZERO,
                0,
            );
            let lines = merchant::bill(&link, &desk)?;
            let v = json!({ "mscs": lines });
            emit(a.json, &v, || {
                println!("billing run: {} MSC(s)", lines.len());
                let mut rows =
                    vec![["sid", "action", "debits signed", "outstanding", "collateral", "standing"].map(String::from)];
                for l in &lines {
                    rows.push([
                        l.sid.to_string(),
                        l.action.clone(),
                        l.debits_signed.to_string(),
                        l.outstanding.parse::<i128>().map_or_else(|_| l.outstanding.clone(), show_signed),
                        units::show(l.collateral.0),
                        format!("{:?}", l.standing),
                    ]);
                }
                crate::ops::print_table(&rows);
            })
        }
        CnsCmd::Status(a) => {
            crate::endpoint::probe(&a.rpc)?;
            let client = RpcClient::new(&a.rpc);
            let merchant = a.merchant.as_deref().map(Address::from_hex).transpose().context("--merchant")?;
            let mscs = match a.sid {
                Some(sid) => vec![read_msc(&client, sid)?
                    .with_context(|| format!("no MSC {sid} on the chain at {} (without --sid: all of them)", a.rpc))?],
                None => merchant::all_mscs(&client)?,
            };
            let v: Vec<_> = mscs.iter().filter(|m| merchant.is_none_or(|x| m.merchant == x)).map(msc_json).collect();
            emit(a.json, &json!({ "mscs": v }), || {
                let s = |m: &serde_json::Value, k: &str| {
                    m[k].as_str().map(String::from).unwrap_or_else(|| m[k].to_string())
                };
                let amount =
                    |m: &serde_json::Value, k: &str| s(m, k).parse::<u128>().map_or_else(|_| s(m, k), units::show);
                let mut rows =
                    vec![["sid", "payout", "standing", "collateral", "outstanding", "closed"].map(String::from)];
                for m in &v {
                    rows.push([
                        s(m, "sid"),
                        s(m, "payout"),
                        s(m, "standing"),
                        amount(m, "collateral"),
                        s(m, "outstanding").parse::<i128>().map_or_else(|_| s(m, "outstanding"), show_signed),
                        s(m, "closed"),
                    ]);
                }
                crate::ops::print_table(&rows);
                if v.is_empty() {
                    println!("(no MSC)");
                }
            })
        }
    }
}
