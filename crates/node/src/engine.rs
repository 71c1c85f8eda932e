//! The one interface through which the node drives a consensus engine
//! (DESIGN principle 3): PBFT ([`crate::validator::Driver`]) today, the
//! leaderless BFT next. An engine owns its protocol's state machine, its
//! persistence (one store transaction per step, before it speaks) and its
//! wire format; the node only moves bytes, time and the stop signal.

use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::Duration;

use crate::validator::Input;

/// A consensus engine as the node's driver thread runs it.
pub trait ConsensusEngine: Send {
    /// Arms the first deadlines and starts proposing if it should.
    fn start(&mut self);
    /// Bytes from validator `from` (the engine decodes, bounded).
    fn on_bytes(&mut self, from: u32, bytes: &[u8]);
    /// Periodic work: gossip, proposals, recovery after a store fault.
    fn poll(&mut self);
    /// Fires every deadline that is due.
    fn fire_timers(&mut self);
    /// The engine's clock (ms) and its next deadline on it.
    fn now(&self) -> u64;
    fn next_deadline(&self) -> Option<u64>;
    /// Why it stopped voting, while it is halted.
    fn halted(&self) -> Option<&str>;
}

/// Runs `engine` until [`Input::Stop`]. Blocking: give it its own thread.
pub fn run_engine(engine: &mut dyn ConsensusEngine, inbox: Receiver<Input>) {
    engine.start();
    loop {
        engine.poll();
        let wait = engine
            .next_deadline()
            .map_or(Duration::from_millis(50), |t| Duration::from_millis(t.saturating_sub(engine.now())))
            .min(Duration::from_millis(50));
        match inbox.recv_timeout(wait) {
            Ok(Input::Peer { from, bytes }) => engine.on_bytes(from, &bytes),
            Ok(Input::Wake) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Input::Stop) | Err(RecvTimeoutError::Disconnected) => break,
        }
        engine.fire_timers();
    }
}
