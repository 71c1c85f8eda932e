//! Fungible tokens (ERC-20 semantics), many per contract, keyed by symbol.

use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_core::Address;
use gridledger_ledger::{decode_args, revert, CallContext, ContractError, NativeContract, ViewContext};
use serde_json::json;

pub struct TokenContract;

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug, PartialEq, Eq)]
pub struct TokenMeta {
    pub issuer: Address,
    pub supply: u128,
}

#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Create {
    pub symbol: String,
    pub supply: u128,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Transfer {
    pub symbol: String,
    pub to: Address,
    pub amount: u128,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Approve {
    pub symbol: String,
    pub spender: Address,
    pub amount: u128,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct TransferFrom {
    pub symbol: String,
    pub from: Address,
    pub to: Address,
    pub amount: u128,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Mint {
    pub symbol: String,
    pub to: Address,
    pub amount: u128,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Burn {
    pub symbol: String,
    pub amount: u128,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct BalanceOf {
    pub symbol: String,
    pub owner: Address,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Allowance {
    pub symbol: String,
    pub owner: Address,
    pub spender: Address,
}
#[derive(BorshSerialize, BorshDeserialize, Clone, Debug)]
pub struct Symbol {
    pub symbol: String,
}

fn meta_key(sym: &str) -> Vec<u8> {
    [b"m/".as_slice(), sym.as_bytes()].concat()
}
fn bal_key(sym: &str, a: &Address) -> Vec<u8> {
    [b"b/".as_slice(), sym.as_bytes(), b"/", &a.0].concat()
}
fn allow_key(sym: &str, owner: &Address, spender: &Address) -> Vec<u8> {
    [b"a/".as_slice(), sym.as_bytes(), b"/", &owner.0, &spender.0].concat()
}

fn valid_symbol(s: &str) -> bool {
    (1..=12).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn balance(ctx: &mut CallContext<'_, '_>, sym: &str, a: &Address) -> Result<u128, ContractError> {
    Ok(ctx.read_typed::<u128>(&bal_key(sym, a))?.unwrap_or(0))
}

fn meta(ctx: &mut CallContext<'_, '_>, sym: &str) -> Result<TokenMeta, ContractError> {
    match ctx.read_typed::<TokenMeta>(&meta_key(sym))? {
        Some(m) => Ok(m),
        None => revert(format!("unknown token {sym}")),
    }
}

fn move_tokens(
    ctx: &mut CallContext<'_, '_>,
    sym: &str,
    from: &Address,
    to: &Address,
    amount: u128,
) -> Result<(), ContractError> {
    meta(ctx, sym)?;
    let fb = balance(ctx, sym, from)?;
    let Some(nf) = fb.checked_sub(amount) else {
        return revert(format!("insufficient {sym} balance: have {fb}, need {amount}"));
    };
    ctx.write_typed(&bal_key(sym, from), &nf)?;
    let tb = balance(ctx, sym, to)?;
    let Some(nt) = tb.checked_add(amount) else {
        return revert("balance overflow");
    };
    ctx.write_typed(&bal_key(sym, to), &nt)?;
    ctx.emit(
        "token_transfer",
        vec![
            ("symbol".into(), sym.into()),
            ("from".into(), from.to_string()),
            ("to".into(), to.to_string()),
            ("amount".into(), amount.to_string()),
        ],
    )
}

impl NativeContract for TokenContract {
    fn name(&self) -> &'static str {
        "token"
    }

    fn call(&self, ctx: &mut CallContext<'_, '_>, method: &str, args: &[u8]) -> Result<Vec<u8>, ContractError> {
        if !ctx.value().is_zero() {
            return revert("token calls take no native value");
        }
        let caller = ctx.caller();
        match method {
            "create" => {
                let a: Create = decode_args(args)?;
                if !valid_symbol(&a.symbol) {
                    return revert("symbol must be 1-12 characters A-Z or 0-9");
                }
                if ctx.read(&meta_key(&a.symbol))?.is_some() {
                    return revert(format!("token {} exists", a.symbol));
                }
                ctx.write_typed(&meta_key(&a.symbol), &TokenMeta { issuer: caller, supply: a.supply })?;
                ctx.write_typed(&bal_key(&a.symbol, &caller), &a.supply)?;
                ctx.emit("token_created", vec![("symbol".into(), a.symbol), ("supply".into(), a.supply.to_string())])?;
                Ok(vec![])
            }
            "transfer" => {
                let a: Transfer = decode_args(args)?;
                move_tokens(ctx, &a.symbol, &caller, &a.to, a.amount)?;
                Ok(vec![])
            }
            "approve" => {
                let a: Approve = decode_args(args)?;
                meta(ctx, &a.symbol)?;
                ctx.write_typed(&allow_key(&a.symbol, &caller, &a.spender), &a.amount)?;
                ctx.emit(
                    "token_approval",
                    vec![
                        ("symbol".into(), a.symbol),
                        ("spender".into(), a.spender.to_string()),
                        ("amount".into(), a.amount.to_string()),
                    ],
                )?;
                Ok(vec![])
            }
            "transfer_from" => {
                let a: TransferFrom = decode_args(args)?;
                let k = allow_key(&a.symbol, &a.from, &caller);
                let allowed = ctx.read_typed::<u128>(&k)?.unwrap_or(0);
                let Some(rest) = allowed.checked_sub(a.amount) else {
                    return revert(format!("allowance {allowed} below {}", a.amount));
                };
                ctx.write_typed(&k, &rest)?;
                move_tokens(ctx, &a.symbol, &a.from, &a.to, a.amount)?;
                Ok(vec![])
            }
            "mint" => {
                let a: Mint = decode_args(args)?;
                let mut m = meta(ctx, &a.symbol)?;
                if m.issuer != caller {
                    return revert("only the issuer may mint");
                }
                m.supply =
                    m.supply.checked_add(a.amount).ok_or_else(|| ContractError::Revert("supply overflow".into()))?;
                ctx.write_typed(&meta_key(&a.symbol), &m)?;
                let b = balance(ctx, &a.symbol, &a.to)?;
                ctx.write_typed(&bal_key(&a.symbol, &a.to), &(b + a.amount))?;
                ctx.emit(
                    "token_minted",
                    vec![
                        ("symbol".into(), a.symbol),
                        ("to".into(), a.to.to_string()),
                        ("amount".into(), a.amount.to_string()),
                    ],
                )?;
                Ok(vec![])
            }
            "burn" => {
                let a: Burn = decode_args(args)?;
                let mut m = meta(ctx, &a.symbol)?;
                let b = balance(ctx, &a.symbol, &caller)?;
                let Some(nb) = b.checked_sub(a.amount) else {
                    return revert(format!("insufficient {} balance: have {b}, need {}", a.symbol, a.amount));
                };
                ctx.write_typed(&bal_key(&a.symbol, &caller), &nb)?;
                m.supply -= a.amount;
                ctx.write_typed(&meta_key(&a.symbol), &m)?;
                ctx.emit("token_burned", vec![("symbol".into(), a.symbol), ("amount".into(), a.amount.to_string())])?;
                Ok(vec![])
            }
            other => revert(format!("token has no method {other}")),
        }
    }

    fn view(&self, ctx: &ViewContext<'_>, method: &str, args: &[u8]) -> Result<serde_json::Value, ContractError> {
        match method {
            "balance" => {
                let a: BalanceOf = decode_args(args)?;
                let b = ctx.read_typed::<u128>(&bal_key(&a.symbol, &a.owner))?.unwrap_or(0);
                Ok(json!({ "symbol": a.symbol, "owner": a.owner, "balance": b.to_string() }))
            }
            "allowance" => {
                let a: Allowance = decode_args(args)?;
                let v = ctx.read_typed::<u128>(&allow_key(&a.symbol, &a.owner, &a.spender))?.unwrap_or(0);
                Ok(json!({ "allowance": v.to_string() }))
            }
            "meta" => {
                let a: Symbol = decode_args(args)?;
                match ctx.read_typed::<TokenMeta>(&meta_key(&a.symbol))? {
                    Some(m) => Ok(json!({ "symbol": a.symbol, "issuer": m.issuer, "supply": m.supply.to_string() })),
                    None => revert(format!("unknown token {}", a.symbol)),
                }
            }
            other => revert(format!("token has no view {other}")),
        }
    }
}
