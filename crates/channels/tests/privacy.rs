//! Issue 10 item 8: what the CNS module docs ("Privacy", §3.3.9) claim is
//! and is not hidden on chain, asserted on a real channel's footprint. A
//! credit-backed and a deposit-backed party go through credit approval,
//! MSC creation, ESC, open, payments both ways and a cooperative close on a
//! dev chain; then every block's transactions (calldata, senders) and every
//! receipt (events, outputs) are scanned as bytes.
//!
//! Hidden: the identities and supporting documents the merchant assessed
//! (only the commitment to the documents goes on chain), and any link from
//! the pseudonym keys / UUTIDs to an identity. Not hidden, as documented:
//! the sending account of `msc_init` next to the MSC key it registers (so
//! a UUTID is linkable to an account), the payout addresses, the ESC→MSC
//! link, and the amounts of registered states.

use borsh::BorshSerialize;
use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::Request;
use gridledger_contracts::cns::credit::documents_commitment;
use gridledger_contracts::cns::{self, uutid, Trade};
use gridledger_contracts::default_registry;
use gridledger_core::{Amount, Energy, Hash32};
use gridledger_ledger::devnet::{dev_key, DevChain};
use gridledger_ledger::tx::TxKind;

const BAL: Amount = Amount(1_000_000_000_000);

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && hay.windows(needle.len()).any(|w| w == needle)
}

/// Every transaction of the chain with its receipt, as (method, sender
/// address, calldata, all bytes of transaction and receipt).
fn footprint(d: &Duo) -> Vec<(String, gridledger_core::Address, Vec<u8>, Vec<u8>)> {
    let chain = &d.chain.chain;
    let mut out = vec![];
    for h in 0..=chain.tip().height {
        let Some(b) = chain.block(h).unwrap() else { continue };
        for t in &b.txs {
            let mut all = borsh::to_vec(t).unwrap();
            let r = chain.receipt(&t.hash()).unwrap().expect("receipt of a committed transaction");
            r.serialize(&mut all).unwrap();
            let (method, args) = match &t.tx.kind {
                TxKind::Call { method, args, .. } => (method.clone(), args.clone()),
                TxKind::Transfer { .. } | TxKind::TransferUntil { .. } => ("transfer".into(), vec![]),
            };
            out.push((method, t.tx.sender.address(), args, all));
        }
    }
    out
}

#[test]
fn the_chain_shows_exactly_what_the_cns_docs_say_it_shows() {
    let dir = tempfile::tempdir().unwrap();
    let dc = DevChain::open(dir.path(), 6, BAL, default_registry()).unwrap();
    let cfg = DuoConfig { credit: [true, false], ..DuoConfig::default() };
    let mut d = Duo::setup(dc, &cfg);
    d.open();
    let pay = |wh: u64| {
        let (energy, price) = (Energy(wh), Amount(150));
        Request::Pay { amount: Trade::price_of(energy, price).unwrap(), energy, price_per_kwh: price }
    };
    for _ in 0..3 {
        d.request(0, pay(2_000)).unwrap();
    }
    d.request(1, pay(1_000)).unwrap();
    d.request(1, Request::Close).unwrap();
    d.assert_coins_conserved();
    let fp = footprint(&d);
    let everything: Vec<u8> = fp.iter().flat_map(|(_, _, _, all)| all.clone()).collect();
    let methods: Vec<&str> = fp.iter().map(|(m, ..)| m.as_str()).collect();
    for m in ["merchant_register", "msc_init", "esc_open", "channel_open", "channel_fund", "channel_close"] {
        assert!(methods.contains(&m), "the run went through {m}: {methods:?}");
    }

    // --- Hidden ---------------------------------------------------------
    // The identities the merchant assessed (Duo's applications name
    // "participant-0/1") and each supporting document's hash never appear,
    // in raw bytes or in hex (events carry hex).
    for i in 0..2u8 {
        let identity = format!("participant-{i}");
        assert!(!contains(&everything, identity.as_bytes()), "identity {identity} is on chain");
        let doc = Hash32([i + 1; 32]);
        assert!(!contains(&everything, &doc.0), "document hash {i} is on chain (raw)");
        assert!(!contains(&everything, doc.to_string().as_bytes()), "document hash {i} is on chain (hex)");
        // Only the commitment to the documents goes on chain, inside the
        // approval `msc_init` carries.
        let commitment = documents_commitment(&[doc]);
        let init = fp.iter().filter(|(m, ..)| m == "msc_init").nth(usize::from(i)).expect("msc_init");
        assert!(contains(&init.2, &commitment.0), "msc_init {i} carries the documents' commitment");
    }
    // Pseudonym keys are fresh: no ESC or MSC key is an account's key, and
    // no UUTID equals or embeds an account address.
    let accounts: Vec<_> = (0..6).map(dev_key).collect();
    for p in &d.parties {
        let esc = p.esc_key.public();
        assert!(accounts.iter().all(|a| a.public() != esc), "an ESC key is an account key");
        let u = uutid(&esc);
        assert!(accounts.iter().all(|a| !contains(&u.0, &a.address().0)), "UUTID derived from an account");
    }

    // --- Not hidden (the docs' list, each asserted) ----------------------
    // (1) The account that sends each transaction, and `msc_init` is sent
    // by the participant's account with the MSC key inside: the UUTID of
    // that key is linkable to the account.
    for i in 0..2usize {
        let account = dev_key(i + 1).address();
        let init = fp.iter().filter(|(m, ..)| m == "msc_init").nth(i).unwrap();
        assert_eq!(init.1, account, "msc_init {i} is sent by the participant's account");
        let msc = cns::client::msc(&d.chain, d.sids[i]).unwrap().expect("msc record");
        assert!(contains(&init.2, &msc.participant_key.0), "msc_init {i}'s calldata names the MSC key");
        assert_eq!(msc.participant, uutid(&msc.participant_key), "records name the participant by UUTID");
        assert!(contains(&everything, msc.participant.to_string().as_bytes()), "its UUTID is in an event");
        assert_eq!(msc.payout, account, "the MSC record names the payout account");
    }
    // (2) Payout addresses: in `esc_open`'s calldata.
    let esc_open = fp.iter().find(|(m, ..)| m == "esc_open").unwrap();
    for i in 0..2usize {
        assert!(contains(&esc_open.2, &dev_key(i + 1).address().0), "payout {i} is on chain");
    }
    // (3) The ESC→MSC link: both session ids in `esc_open`'s calldata.
    for sid in d.sids {
        assert!(contains(&esc_open.2, &sid.to_le_bytes()), "sid {sid} in esc_open");
    }
    // (4) Amounts of registered states: the closing state's balances and
    // energy are in `channel_close`'s calldata.
    let close = fp.iter().find(|(m, ..)| m == "channel_close").unwrap();
    let args: cns::ChannelStateArgs = borsh::from_slice(&close.2).unwrap();
    let last = d.parties[0].machine.as_ref().unwrap().latest().unwrap().state.clone();
    assert_eq!(args.state.state.balances, last.balances);
    assert_eq!(args.state.state.balances, [Amount(100_000 - 900 + 150), Amount(100_000 + 900 - 150)]);
    assert_eq!(args.state.state.energy, [Energy(1_000), Energy(6_000)]);
}
