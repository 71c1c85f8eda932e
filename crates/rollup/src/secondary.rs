//! The secondary chain's IOR contract (thesis §3.3.3, §3.4 Steps 2 and 4):
//! executors copy a batch's data here and run `SC_EXE_AT`/`SC_EXE_ST`
//! (`sc_exe`), validators run `SC_VERIFY` (`sc_verify`) on the same data and
//! record their verdict. The primary chain's settled state the batch reads
//! travels with the call as a witness ([`PreState`]); each node reads it
//! from the primary chain itself, so a forged witness shows up as a TCR
//! mismatch there.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::{Address, PublicKey, Signature};
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde_json::json;

use crate::exec::{execute_batch, OnChain, PreState};
use crate::store::bytes;
use crate::types::{node_cert_digest, Entry, IorParams, NodeRole, Tcr};

/// `init` arguments of the secondary contract: the IOR parameters and the
/// authority whose certificates admit executors.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct SecondaryConfig {
    pub params: IorParams,
    pub authority: PublicKey,
}

/// `register_executor` arguments: the authority's certificate over
/// [`node_cert_digest`]`(domain, caller, Executor)`, the same one the
/// primary chain's `register_node` checks.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct RegisterExecutor {
    pub cert: Signature,
}

/// `sc_exe` arguments: a copy of a primary batch.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct ExecRequest {
    pub batch: u64,
    pub entries: Vec<Entry>,
    pub prestate: PreState,
}

/// `sc_verify` arguments: the batch and the TCRs recorded on the primary chain.
#[derive(Clone, Debug, BorshSerialize, BorshDeserialize)]
pub struct VerifyRequest {
    pub batch: u64,
    pub entries: Vec<Entry>,
    pub prestate: PreState,
    pub tcrs: Vec<Tcr>,
}

/// What `sc_exe` stores: who executed the batch and commitments to the
/// data and results, not copies of them. The copy of the batch and the
/// TCRs are the block data of the `sc_exe` call (as on the primary chain,
/// thesis Fig 3-7): storing them again cost every secondary node about
/// 200,000 gas per entry.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ExecRecord {
    pub executor: Address,
    /// How many TCRs the execution produced.
    pub tcrs: u32,
    /// Hash of the entries executed ([`crate::types::commit_entries`]).
    pub entries: gridledger_core::Hash32,
    /// Hash of the TCRs produced.
    pub results: gridledger_core::Hash32,
}

/// Indices where recorded TCRs differ from the validator's (empty: agreed).
pub fn mismatches(recorded: &[Tcr], own: &[Tcr]) -> Vec<u32> {
    let mut out: Vec<u32> = own.iter().zip(recorded).filter(|(a, b)| a != b).map(|(a, _)| a.index).collect();
    if recorded.len() != own.len() {
        out.push(u32::MAX);
    }
    out
}

pub struct IorSecondaryContract;

/// Domain of the hash of a batch's TCRs in an [`ExecRecord`].
pub const TAG_EXEC_RESULTS: gridledger_core::codec::Tag = gridledger_core::codec::Tag("gridledger/ior/exec-results/v1");

fn xkey(b: u64) -> Vec<u8> {
    [b"x/".as_slice(), &b.to_be_bytes()].concat()
}
/// `r/ADDR`: a certified executor.
fn rkey(a: &Address) -> Vec<u8> {
    [b"r/".as_slice(), a.as_bytes()].concat()
}
const AUTHORITY: &[u8] = b"auth";
fn vkey(b: u64, v: &Address) -> Vec<u8> {
    [b"v/".as_slice(), &b.to_be_bytes(), v.as_bytes()].concat()
}

fn params(ctx: &mut CallContext<'_, '_>) -> Result<IorParams, ContractError> {
    crate::store::stored_params(ctx, "secondary")
}

impl NativeContract for IorSecondaryContract {
    fn name(&self) -> &'static str {
        "ior-secondary"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        if !ctx.value().is_zero() {
            return revert(format!("{method} takes no native value"));
        }
        match method {
            "init" => {
                let c: SecondaryConfig = decode_args(args)?;
                if ctx.read(crate::store::PARAMS)?.is_some() {
                    return revert("already initialised");
                }
                ctx.write_typed(crate::store::PARAMS, &c.params)?;
                ctx.write_typed(AUTHORITY, &c.authority)?;
                Ok(vec![])
            }
            "register_executor" => {
                let a: RegisterExecutor = decode_args(args)?;
                let p = params(ctx)?;
                let Some(authority) = ctx.read_typed::<PublicKey>(AUTHORITY)? else {
                    return revert("secondary IOR contract not initialised");
                };
                let who = ctx.caller();
                if !ctx.verify_signature(&authority, &node_cert_digest(&p.domain, &who, NodeRole::Executor), &a.cert)? {
                    return revert("executor certificate not signed by the authority");
                }
                ctx.write_typed(&rkey(&who), &true)?;
                Ok(vec![])
            }
            "sc_exe" => {
                let a: ExecRequest = decode_args(args)?;
                let p = params(ctx)?;
                let executor = ctx.caller();
                // Anyone may run the computation (it is public), but only a
                // certified executor's run is the batch's record: nobody
                // can squat the record of a batch it was never admitted to
                // execute. First certified run wins.
                let certified = ctx.read(&rkey(&executor))?.is_some();
                if certified && ctx.read(&xkey(a.batch))?.is_some() {
                    return revert(format!("batch {} already executed", a.batch));
                }
                let tcrs = execute_batch(&mut OnChain(ctx), &p, &a.prestate, &a.entries)?;
                if !certified {
                    return Ok(bytes(&tcrs));
                }
                let mut entries = gridledger_core::Hash32::ZERO;
                for e in &a.entries {
                    let eh = ctx.hash(crate::types::TAG_ENTRY, &bytes(e))?;
                    entries =
                        ctx.hash(crate::types::TAG_BATCH_DATA, &crate::types::commitment_preimage(&entries, &eh))?;
                }
                let results = ctx.hash(TAG_EXEC_RESULTS, &bytes(&tcrs))?;
                let rec = ExecRecord { executor, tcrs: tcrs.len() as u32, entries, results };
                ctx.write_typed(&xkey(a.batch), &rec)?;
                ctx.emit(
                    "ior_executed",
                    vec![("batch".into(), a.batch.to_string()), ("tcrs".into(), tcrs.len().to_string())],
                )?;
                Ok(bytes(&tcrs))
            }
            "sc_verify" => {
                let a: VerifyRequest = decode_args(args)?;
                let p = params(ctx)?;
                let own = execute_batch(&mut OnChain(ctx), &p, &a.prestate, &a.entries)?;
                let bad = mismatches(&a.tcrs, &own);
                let me = ctx.caller();
                ctx.write_typed(&vkey(a.batch, &me), &bad)?;
                ctx.emit(
                    "ior_verified",
                    vec![("batch".into(), a.batch.to_string()), ("agrees".into(), bad.is_empty().to_string())],
                )?;
                Ok(bytes(&bad))
            }
            other => revert(format!("ior-secondary has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "executed" => {
                let b: u64 = decode_args(args)?;
                Ok(json!(ctx.read_typed::<ExecRecord>(&xkey(b))?.map(|r| (r.executor, r.tcrs))))
            }
            other => revert(format!("ior-secondary has no view {other}")),
        }
    }
}
