//! Shared by the channel party tests (`channel_party`, `attack_party_r*`):
//! the test channel's terms, the balance its dev node funds and a wait for a
//! party's phase.

use gridledger_core::Amount;
use gridledger_node::channel::party::{Command, PartyHandle, Reply};
use gridledger_node::channel::spec::ChannelTerms;
use std::net::{SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// What the dev node funds each account with.
pub const BAL: Amount = Amount(1_000_000_000_000);

/// The test channel: capacities 100,000 / 50,000, the contract's minimum
/// t_Δ, retries every 300 ms and a 1.5 s close timeout; parties on `addrs`,
/// control ports on `controls`.
pub fn channel_terms(credit: [bool; 2], addrs: [SocketAddr; 2], controls: [SocketAddr; 2]) -> ChannelTerms {
    ChannelTerms {
        capacity: [Amount(100_000), Amount(50_000)],
        credit,
        t_delta_ms: gridledger_contracts::cns::MIN_T_DELTA_MS,
        credit_limit: Amount(200_000),
        merchant_pool: Amount(1_000_000),
        collateral_lock_ms: 60_000,
        billing_period_ms: 30_000,
        retry_ms: 300,
        close_timeout_ms: 1_500,
        addrs,
        controls,
        accept: None,
    }
}

/// The addresses two bound listeners listen on.
pub fn addrs_of(ls: &[TcpListener; 2]) -> [SocketAddr; 2] {
    [ls[0].local_addr().unwrap(), ls[1].local_addr().unwrap()]
}

/// Waits (at most 20 s) until the party reports `phase`.
pub async fn wait_phase(h: &PartyHandle, phase: &str) {
    let t = Instant::now();
    loop {
        if let Reply::Status(s) = h.request(Command::Status).await {
            if s.phase == phase {
                return;
            }
        }
        assert!(t.elapsed() < Duration::from_secs(20), "phase {phase} not reached");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
