//! Shared by the channel machine attack tests: a dev chain with a channel
//! opened between the two sides of [`Duo::setup`], payment requests, and a
//! peer that co-signs side 0's proposal out of band.
#![allow(dead_code)]

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::{ChainEvent, Input, Message, Request};
use gridledger_contracts::cns::{ChannelState, SignedState};
use gridledger_contracts::default_registry;
use gridledger_core::{Amount, Energy, KeyPair};
use gridledger_ledger::client::ChainClient;
use gridledger_ledger::devnet::DevChain;

/// What the dev chain funds each account with.
pub const BAL: Amount = Amount(1_000_000_000_000);

/// A dev chain in `dir` (6 accounts of [`BAL`]) with the two sides of
/// [`Duo::setup`], the channel not yet opened.
pub fn duo_unopened(dir: &std::path::Path, cfg: &DuoConfig) -> Duo {
    let dc = DevChain::open(dir, 6, BAL, default_registry()).unwrap();
    Duo::setup(dc, cfg)
}

/// A dev chain in `dir` with the channel of [`Duo::setup`] opened.
pub fn duo(dir: &std::path::Path, cfg: &DuoConfig) -> Duo {
    let mut d = duo_unopened(dir, cfg);
    d.open();
    d
}

/// A payment of `wh` Wh at `price` per kWh.
pub fn pay_at(wh: u64, price: u128) -> Request {
    let (energy, price) = (Energy(wh), Amount(price));
    Request::Pay {
        amount: gridledger_contracts::cns::Trade::price_of(energy, price).unwrap(),
        energy,
        price_per_kwh: price,
    }
}

/// A payment of `wh` Wh at 100 per kWh.
pub fn pay_req(wh: u64) -> Request {
    pay_at(wh, 100)
}

/// Side `side`'s newest co-signed state.
pub fn latest(d: &Duo, side: usize) -> SignedState {
    d.parties[side].machine.as_ref().unwrap().latest().unwrap().clone()
}

/// The ESC key of side 1 in [`Duo::setup`] (the attacker signs with it out
/// of band, as a modified client would).
pub fn side1_esc_key() -> KeyPair {
    KeyPair::from_seed("cns-esc-1")
}

/// Takes side 0's proposal out of side 1's inbox (side 1's machine never
/// sees it) and co-signs it with side 1's key: what a peer that signs a
/// proposal and withholds its acceptance holds.
pub fn co_sign_out_of_band(d: &mut Duo) -> SignedState {
    let bytes = d.parties[1].inbox.pop_front().expect("side 0's proposal is queued for side 1");
    let Message::Propose { state, nonce, sig } = Message::from_bytes(&bytes).unwrap() else {
        panic!("expected a proposal");
    };
    let theirs = state.sign(&side1_esc_key(), nonce);
    SignedState { state, nonce, sigs: [sig, theirs] }
}

/// The cooperative close built directly on `s`: the next counter,
/// `prev_counter` = `s`'s, final, no trade or fold.
pub fn final_after(s: &ChannelState) -> ChannelState {
    let mut fin = s.clone();
    fin.counter = s.counter + 1;
    fin.prev_counter = s.counter;
    fin.is_final = true;
    fin.last_trade = None;
    fin.fold = None;
    fin
}

/// Side 1 is gone: everything sent to it is dropped, it gets no ticks.
/// Side 0 runs on; the chain's events reach side 0 only.
pub fn advance_alone(d: &mut Duo, ms: u64) {
    advance_alone_reading(d, ms, true);
}

/// [`advance_alone`]; without `reads`, every read of the channel the poller
/// adds to an event fails (no `OnChain`, `Updated` without its state).
pub fn advance_alone_reading(d: &mut Duo, ms: u64, reads: bool) {
    let now = d.chain.now().saturating_add(ms);
    d.chain.set_now(now);
    let _ = d.input(0, Input::Tick(now));
    for _ in 0..10_000 {
        d.parties[1].inbox.clear();
        d.parties[1].chain_inbox.clear();
        let queued = d.parties[0].inbox.len() + d.parties[0].chain_inbox.len();
        if queued == 0 {
            return;
        }
        if let Some(mut e) = d.parties[0].chain_inbox.pop_front() {
            if !reads {
                if let ChainEvent::Updated { state, .. } = &mut e {
                    *state = None;
                }
            }
            if reads || !matches!(e, ChainEvent::OnChain(_)) {
                let _ = d.input(0, Input::Chain(e));
            }
        }
        d.deliver_one(0);
    }
}
