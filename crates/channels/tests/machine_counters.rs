//! Defence in depth of the channel state machine's counter checks: a
//! machine restored from a snapshot that lacks `signed_upto` (an older or
//! damaged store; `restore` accepts any store of this key, channel and
//! side) still refuses a second open and an update that does not advance
//! past the co-signed state — each answered by a reject naming the reason,
//! with nothing signed or persisted.

use gridledger_channels::driver::{Duo, DuoConfig};
use gridledger_channels::{ChannelMachine, Input, Message, Request};
use gridledger_contracts::cns::{ChannelState, Trade};
use gridledger_contracts::default_registry;
use gridledger_core::{Amount, Energy};
use gridledger_ledger::devnet::DevChain;

#[test]
fn a_restored_machine_without_signed_upto_still_refuses_stale_counters() {
    let dir = tempfile::tempdir().unwrap();
    let dc = DevChain::open(dir.path(), 6, Amount(1_000_000_000_000), default_registry()).unwrap();
    let mut d = Duo::setup(dc, &DuoConfig::default());
    d.open();
    let (energy, price) = (Energy(1_000), Amount(100));
    let amount = Trade::price_of(energy, price).unwrap();
    d.request(0, Request::Pay { amount, energy, price_per_kwh: price }).unwrap();

    let p = &d.parties[1];
    let mut store = p.machine.as_ref().unwrap().store().clone();
    let latest = store.latest.clone().unwrap().state;
    assert_eq!(latest.counter, 1);
    assert_eq!(store.signed_upto, Some(1), "the live store records what it signed");
    store.signed_upto = None;
    let mut m = ChannelMachine::restore(p.esc_key.clone(), p.nonce_seed, p.params.clone(), store).unwrap();
    let k0 = d.parties[0].esc_key.clone();

    let open_again = ChannelState {
        counter: 0,
        balances: m.store().capacity,
        energy: [Energy::ZERO; 2],
        last_trade: None,
        is_final: false,
        prev_counter: 0,
        ..latest.clone()
    };
    let mut replay = latest.clone();
    replay.balances = [Amount(replay.balances[0].0 - 1), Amount(replay.balances[1].0 + 1)];
    let rows: Vec<(&str, ChannelState, String)> = vec![
        ("second open", open_again, "open proposed twice".into()),
        ("update at the co-signed counter", replay, "counter 1 not above co-signed 1".into()),
    ];
    for (name, st, want) in rows {
        let before = m.store().clone();
        let nonce = 777;
        let sig = st.sign(&k0, nonce);
        let step = m.handle(Input::Peer(Message::Propose { state: st.clone(), nonce, sig })).unwrap();
        assert!(step.persist.is_none(), "{name}: nothing persisted");
        assert!(step.txs.is_empty(), "{name}: nothing sent to the chain");
        match step.messages.as_slice() {
            [Message::Reject { counter, reason }]
            | [Message::Reject { counter, reason }, Message::Reestablish { .. }] => {
                assert_eq!(*counter, st.counter, "{name}");
                assert_eq!(reason, &want, "{name}");
            }
            other => panic!("{name}: expected one reject (and our co-signed state), got {other:?}"),
        }
        assert_eq!(m.store(), &before, "{name}: store unchanged");
    }
}
