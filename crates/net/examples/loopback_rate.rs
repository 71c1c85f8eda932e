//! Measures two nodes' link over loopback: one-way throughput for a few
//! message sizes and round-trip latency, printed as JSON lines (DESIGN:
//! performance is measured by programs, not asserted in tests).
//!
//! Run: `cargo run --release -p gridledger-net --example loopback_rate`

use gridledger_core::{Hash32, KeyPair};
use gridledger_net::{Network, NetworkConfig, PeerConfig};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let keys = [KeyPair::from_seed("rate-0"), KeyPair::from_seed("rate-1")];
    let ls = [TcpListener::bind("127.0.0.1:0").await?, TcpListener::bind("127.0.0.1:0").await?];
    let set: Vec<PeerConfig> = (0..2)
        .map(|i| -> std::io::Result<PeerConfig> {
            Ok(PeerConfig { index: i as u32, public_key: keys[i].public(), addr: ls[i].local_addr()? })
        })
        .collect::<Result<_, _>>()?;
    let [l0, l1] = ls;
    let mk = |me: u32| {
        let mut c = NetworkConfig::new(Hash32([1; 32]), me, set.clone());
        // Large enough that the sender, not the queue bound, limits the rate.
        c.outbound_queue = 1 << 16;
        c.inbound_queue = 4096;
        c
    };
    let (a, mut ia) = Network::start_with_listener(mk(0), keys[0].clone(), l0).await?;
    let (b, mut ib) = Network::start_with_listener(mk(1), keys[1].clone(), l1).await?;
    if !a.wait_connected(&[1], Duration::from_secs(5)).await {
        return Err("no link".into());
    }

    for (size, count) in [(64usize, 200_000usize), (1024, 100_000), (65_536, 4_000), (1 << 20, 200)] {
        let msg = bytes::Bytes::from(vec![0x5a; size]);
        let start = Instant::now();
        let sender = async {
            for _ in 0..count {
                a.send(1, msg.clone())?;
                // Stay under the queue bound so nothing is dropped.
                while a.peer_stats(1).map_or(0, |s| s.queued) > 30_000 {
                    tokio::task::yield_now().await;
                }
            }
            Ok::<_, gridledger_net::SendError>(())
        };
        let receiver = async {
            for _ in 0..count {
                ib.recv().await.ok_or("closed")?;
            }
            Ok::<_, &str>(())
        };
        let (s, r) = tokio::join!(sender, receiver);
        s?;
        r?;
        let secs = start.elapsed().as_secs_f64();
        println!(
            "{{\"bench\":\"net_throughput\",\"size\":{size},\"messages\":{count},\"msgs_per_s\":{:.0},\"mib_per_s\":{:.1}}}",
            count as f64 / secs,
            (count * size) as f64 / secs / (1 << 20) as f64
        );
    }

    let rounds = 2_000;
    let mut rtts = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let t = Instant::now();
        a.send(1, b"ping".to_vec())?;
        ib.recv().await.ok_or("closed")?;
        b.send(0, b"pong".to_vec())?;
        ia.recv().await.ok_or("closed")?;
        rtts.push(t.elapsed());
    }
    rtts.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{{\"bench\":\"net_rtt\",\"rounds\":{rounds},\"p50_us\":{:.1},\"p99_us\":{:.1}}}",
        us(rtts[rounds / 2]),
        us(rtts[rounds * 99 / 100])
    );
    a.shutdown().await;
    b.shutdown().await;
    Ok(())
}
