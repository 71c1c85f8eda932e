//! Side 1 as a modified client runs it (`attack_party_r7`, `attack_party_r8`):
//! the ESC key and machine of side 1 (restored from its directory), its own
//! link to side 0, and a filter that keeps the proposals of side 0 it
//! selects from the machine while keeping a copy co-signed with side 1's key.

use super::party::Setup;
use gridledger_contracts::cns::{ChannelState, SignedState};
use gridledger_core::KeyPair;
use std::time::Duration;

/// Which of side 0's proposals to keep from the machine: the proposal and
/// the machine's newest co-signed state.
pub type Keep = Box<dyn Fn(&ChannelState, &ChannelState) -> bool + Send>;

pub struct Attacker {
    pub machine: gridledger_channels::ChannelMachine,
    pub key: KeyPair,
    pub net: gridledger_net::Network,
    pub inbound: gridledger_net::Inbound,
    pub events: tokio::sync::broadcast::Receiver<gridledger_net::NetEvent>,
    /// Side 0's last kept proposal, co-signed out of band.
    pub kept: Option<SignedState>,
    /// Counters of the payments of side 1 that were co-signed.
    pub sent: Vec<u64>,
    keep: Keep,
}

impl Attacker {
    pub async fn start(s: &Setup, keep: Keep) -> Attacker {
        use gridledger_net::{Network, NetworkConfig, PeerConfig};
        let spec = &s.specs[1];
        let keys = spec.keys().unwrap();
        let store = gridledger_channels::disk::load_store(&s.dirs[1]).unwrap().unwrap();
        let machine = gridledger_channels::ChannelMachine::restore(
            keys.esc.clone(),
            keys.nonce_seed,
            spec.params().unwrap(),
            store,
        )
        .unwrap();
        let set = vec![
            PeerConfig { index: 0, public_key: spec.peer_key, addr: spec.addrs[0] },
            PeerConfig { index: 1, public_key: keys.esc.public(), addr: spec.addrs[1] },
        ];
        let mut cfg = NetworkConfig::new(spec.cid, 1, set);
        cfg.max_frame = gridledger_channels::MAX_MESSAGE_BYTES;
        let l = s.ls[1].try_clone().unwrap();
        l.set_nonblocking(true).unwrap();
        let l = tokio::net::TcpListener::from_std(l).unwrap();
        let (net, inbound) = Network::start_with_listener(cfg, keys.esc.clone(), l).await.unwrap();
        let events = net.events();
        Attacker { machine, key: keys.esc, net, inbound, events, kept: None, sent: vec![], keep }
    }

    pub fn carry_out(&mut self, step: gridledger_channels::Step) {
        use gridledger_channels::{ChannelEvent, Input};
        for m in step.messages {
            let _ = self.net.send(0, m.to_bytes());
        }
        for e in step.events {
            if let ChannelEvent::PaymentSent { counter, .. } = e {
                self.sent.push(counter);
            }
        }
        if let Some(st) = step.persist {
            // No disk: "persisted" at once.
            let next = self.machine.handle(Input::Persisted(st.version)).unwrap();
            self.carry_out(next);
        }
    }

    /// Runs the client for `d`.
    pub async fn run(&mut self, d: Duration) {
        use gridledger_channels::{Input, Message};
        let end = tokio::time::Instant::now() + d;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        loop {
            tokio::select! {
                _ = tokio::time::sleep_until(end) => return,
                Some((_, b)) = self.inbound.recv() => {
                    if let Ok(Message::Propose { state, nonce, sig }) = Message::from_bytes(&b) {
                        if (self.keep)(&state, &self.machine.latest().unwrap().state) {
                            let theirs = state.sign(&self.key, nonce);
                            self.kept = Some(SignedState { state, nonce, sigs: [sig, theirs] });
                            continue;
                        }
                    }
                    if let Ok(step) = self.machine.handle_bytes(&b) {
                        self.carry_out(step);
                    }
                }
                Ok(ev) = self.events.recv() => {
                    if matches!(ev, gridledger_net::NetEvent::Connected { peer: 0, .. }) {
                        let step = self.machine.handle(Input::Connected).unwrap();
                        self.carry_out(step);
                    }
                }
                _ = tick.tick() => {
                    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
                    let step = self.machine.handle(Input::Tick(now)).unwrap();
                    self.carry_out(step);
                }
            }
        }
    }
}
