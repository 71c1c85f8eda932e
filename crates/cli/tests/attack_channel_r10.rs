//! Round-10 attacks on the channel party processes (`gridledger channel
//! open`), by a reviewer who did not write them: SIGKILL of a party at
//! random instants during the close. Tests marked `#[ignore = "attack:
//! ..."]` reproduce a finding; the others record what held.
//!
//! Run: `cargo test -p gridledger-cli --test attack_channel_r10`
//! (more rounds: `ATTACK_R10_ROUNDS=10`).

mod common;

use common::*;
use gridledger_channels::disk::load_store;
use gridledger_contracts::cns::ChannelStatus;
use gridledger_contracts::cns::MIN_T_DELTA_MS;
use gridledger_core::Amount;
use gridledger_node::channel::chainlink::{read_channel, read_msc};
use gridledger_node::channel::spec::PartySpec;
use gridledger_node::{NodeHandle, RpcClient};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn pay(dir: &Path, energy: u64, price: u64) {
    gl_ok(&["channel", "pay", "--dir", &d(dir), "--energy", &energy.to_string(), "--price", &price.to_string()]);
}

/// A prepared channel of 100,000 / 50,000 with the contract's shortest
/// dispute window and a 1 s close timeout (closes time out into disputes
/// quickly), as every round of this file uses.
fn short_dispute_channel() -> (tempfile::TempDir, NodeHandle, String, [std::path::PathBuf; 2]) {
    let t_delta = MIN_T_DELTA_MS.to_string();
    let terms = ["--capacity", "100000", "50000", "--t-delta-ms", &t_delta, "--close-timeout-ms", "1000"];
    prepared_channel(["p0", "p1"], &terms)
}

fn rounds() -> u64 {
    std::env::var("ATTACK_R10_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(3)
}

/// Held (round 10): a party SIGKILLed at a random instant of a cooperative
/// close (side 0 closing, side 0, side 1 or both killed, 0–40 ms after
/// the close was asked), then restarted, closes the channel with the
/// balances of the last answered payment, books no fault on either side
/// and conserves coins.
#[test]
fn kill_nine_during_close_loses_nothing_and_faults_no_one() {
    use rand::Rng;
    let mut rng = rand::rng();
    for round in 0..rounds() {
        let (_dir, node, url, dirs) = short_dispute_channel();
        let c = RpcClient::new(&url);
        let initial = total(&c);
        let mut procs = open_both([&dirs[0], &dirs[1]], &[]);
        for _ in 0..3 {
            pay(&dirs[0], 1_000, 100);
        }
        pay(&dirs[1], 2_000, 100);
        let want = [Amount(100_000 - 300 + 200), Amount(50_000 + 300 - 200)];
        let answered = load_store(&dirs[0]).unwrap().unwrap().latest.unwrap();
        assert_eq!(answered.state.balances, want);
        // Close from side 0, kill at a random instant. procs.0 = [side 1, side 0].
        let mut closer = Command::new(BIN)
            .args(["channel", "close", "--dir", &d(&dirs[0])])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let delay = rng.random_range(0..40);
        let who = rng.random_range(0..3usize); // 0: side 0, 1: side 1, 2: both
        std::thread::sleep(Duration::from_millis(delay));
        let killed: Vec<usize> = match who {
            0 => vec![0],
            1 => vec![1],
            _ => vec![0, 1],
        };
        for &s in &killed {
            let p = &mut procs.0[1 - s];
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = closer.kill();
        let _ = closer.wait();
        let cid = PartySpec::load(&dirs[0]).unwrap().cid;
        let closed_already = read_channel(&c, &cid).unwrap().unwrap().status == ChannelStatus::Closed;
        eprintln!("round {round}: killed {killed:?} {delay} ms into the close (closed already: {closed_already})");
        let mut more = Procs(vec![]);
        if !closed_already {
            for &s in &killed {
                more.0.push(open_cmd(&dirs[s]).spawn().unwrap());
            }
        }
        let t = Instant::now();
        let mut asked = false;
        loop {
            let ch = read_channel(&c, &cid).unwrap().unwrap();
            if ch.status == ChannelStatus::Closed {
                break;
            }
            if !asked && t.elapsed() > Duration::from_secs(2) {
                // The close again, from side 0 (its party may already be
                // closing by itself after the restart).
                let _ = gl(&["channel", "close", "--dir", &d(&dirs[0])]);
                asked = true;
            }
            assert!(
                t.elapsed() < Duration::from_secs(60),
                "round {round} (killed {killed:?} at {delay} ms): channel {:?} at counter {}",
                ch.status,
                ch.latest.state.counter
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let ch = read_channel(&c, &cid).unwrap().unwrap();
        let faults =
            [0, 1].map(|i| read_msc(&c, PartySpec::load(&dirs[i]).unwrap().sid).unwrap().unwrap().disputes_at_fault);
        assert_eq!(
            (ch.latest.state.balances, faults),
            (want, [0, 0]),
            "round {round} (killed {killed:?} at {delay} ms): the close paid the last answered balances, no fault"
        );
        // Coins conserved once the parties are gone.
        drop(more);
        drop(procs);
        assert_eq!(total(&c), initial, "round {round}: coins conserved");
        node.shutdown();
    }
}

/// Held (round 10, 6 rounds run): side 1 is SIGKILLed at a random instant while side 0
/// pays (a payment may fall back with side 1 holding it co-signed); side 0
/// closes (the close times out into side 0's dispute); side 1 comes back
/// at a random instant of the dispute and side 0's user asks to close
/// again. Both are honest: the channel must close with every payment side
/// 0 was told is done, and neither side may be booked a fault.
#[test]
fn kill_nine_of_the_payee_then_a_dispute_and_its_return_faults_no_one() {
    use gridledger_node::channel::party::{control_request_dir, Command as Ctl, Reply};
    use rand::Rng;
    let mut rng = rand::rng();
    // About 8 s a round (a t_delta of 10 s is running): two by default.
    for round in 0..rounds().min(2).max(rounds().saturating_sub(1)) {
        let (_dir, node, url, dirs) = short_dispute_channel();
        let c = RpcClient::new(&url);
        let initial = total(&c);
        let mut procs = open_both([&dirs[0], &dirs[1]], &[]);
        let cid = PartySpec::load(&dirs[0]).unwrap().cid;
        // Side 0 pays in the background; side 1 dies at a random instant.
        let dir0 = dirs[0].clone();
        let payer = std::thread::spawn(move || {
            let mut done = 0u64;
            for _ in 0..40 {
                match control_request_dir(&dir0, &Ctl::Pay { energy: 100, price: 100 }, Duration::from_secs(3)) {
                    Ok(Reply::Done { counter }) => done = done.max(counter),
                    _ => return done,
                }
            }
            done
        });
        std::thread::sleep(Duration::from_millis(rng.random_range(20..200)));
        let _ = procs.0[0].kill();
        let _ = procs.0[0].wait();
        let done = payer.join().unwrap();
        let mut closer = Command::new(BIN)
            .args(["channel", "close", "--dir", &d(&dirs[0])])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        // Side 0's dispute.
        let t = Instant::now();
        while read_channel(&c, &cid).unwrap().unwrap().status != ChannelStatus::Disputed {
            assert!(t.elapsed() < Duration::from_secs(20), "round {round}: side 0 never disputed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let back = rng.random_range(0..4_000);
        std::thread::sleep(Duration::from_millis(back));
        let mut more = Procs(vec![open_cmd(&dirs[1]).spawn().unwrap()]);
        std::thread::sleep(Duration::from_millis(1_500));
        let _ = closer.kill();
        let _ = closer.wait();
        more.0.push(
            Command::new(BIN)
                .args(["channel", "close", "--dir", &d(&dirs[0])])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        );
        let t = Instant::now();
        loop {
            let ch = read_channel(&c, &cid).unwrap().unwrap();
            if ch.status == ChannelStatus::Closed {
                break;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "round {round}: channel {:?}", ch.status);
            std::thread::sleep(Duration::from_millis(100));
        }
        let ch = read_channel(&c, &cid).unwrap().unwrap();
        let faults =
            [0, 1].map(|i| read_msc(&c, PartySpec::load(&dirs[i]).unwrap().sid).unwrap().unwrap().disputes_at_fault);
        let paid = 100_000 - ch.latest.state.balances[0].0;
        eprintln!(
            "round {round}: {done} done, side 1 back {back} ms into the dispute; closed at {} paying {paid}, faults {faults:?}",
            ch.latest.state.counter
        );
        assert!(paid >= u128::from(done) * 10, "round {round}: {done} payments done, the close paid {paid}");
        assert_eq!(faults, [0, 0], "round {round}: an honest party was booked a fault");
        drop(more);
        drop(procs);
        assert_eq!(total(&c), initial, "round {round}: coins conserved");
        node.shutdown();
    }
}

/// Held (round 10, 6 rounds run): side 1 is SIGKILLed, side 0's close
/// times out into its dispute, side 1 comes back, and side 0 (the raiser)
/// is SIGKILLed 0–120 ms after side 1's restart (the cooperative close of
/// the disputed state mostly lands in that window) and restarted (it must
/// learn from the chain's events that its dispute stands, settle or close
/// it): the channel closes with every payment side 0 was told is done, no
/// fault on either side, coins conserved.
#[test]
fn kill_nine_of_the_raiser_during_its_dispute_loses_nothing() {
    use rand::Rng;
    let mut rng = rand::rng();
    for round in 0..rounds().min(2).max(rounds().saturating_sub(1)) {
        let (_dir, node, url, dirs) = short_dispute_channel();
        let c = RpcClient::new(&url);
        let initial = total(&c);
        let mut procs = open_both([&dirs[0], &dirs[1]], &[]);
        let cid = PartySpec::load(&dirs[0]).unwrap().cid;
        for _ in 0..4 {
            pay(&dirs[0], 1_000, 100);
        }
        let _ = procs.0[0].kill();
        let _ = procs.0[0].wait();
        let mut closer = Command::new(BIN)
            .args(["channel", "close", "--dir", &d(&dirs[0])])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let t = Instant::now();
        while read_channel(&c, &cid).unwrap().unwrap().status != ChannelStatus::Disputed {
            assert!(t.elapsed() < Duration::from_secs(20), "round {round}: side 0 never disputed");
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut more = Procs(vec![open_cmd(&dirs[1]).spawn().unwrap()]);
        let at = rng.random_range(0..120);
        std::thread::sleep(Duration::from_millis(at));
        let _ = procs.0[1].kill();
        let _ = procs.0[1].wait();
        let _ = closer.kill();
        let _ = closer.wait();
        let closed_already = read_channel(&c, &cid).unwrap().unwrap().status == ChannelStatus::Closed;
        if !closed_already {
            more.0.push(open_cmd(&dirs[0]).spawn().unwrap());
        }
        let t = Instant::now();
        let mut asked = false;
        loop {
            let ch = read_channel(&c, &cid).unwrap().unwrap();
            if ch.status == ChannelStatus::Closed {
                break;
            }
            if !asked && t.elapsed() > Duration::from_secs(2) {
                let _ = gl(&["channel", "close", "--dir", &d(&dirs[0])]);
                asked = true;
            }
            assert!(t.elapsed() < Duration::from_secs(60), "round {round}: channel {:?}", ch.status);
            std::thread::sleep(Duration::from_millis(100));
        }
        let ch = read_channel(&c, &cid).unwrap().unwrap();
        let faults =
            [0, 1].map(|i| read_msc(&c, PartySpec::load(&dirs[i]).unwrap().sid).unwrap().unwrap().disputes_at_fault);
        eprintln!(
            "round {round}: raiser killed {at} ms into its dispute (closed already: {closed_already}); closed at {} {:?}, faults {faults:?}",
            ch.latest.state.counter, ch.latest.state.balances
        );
        assert_eq!(
            (ch.latest.state.balances, faults),
            ([Amount(100_000 - 400), Amount(50_000 + 400)], [0, 0]),
            "round {round}: the close paid the done payments, no fault"
        );
        drop(more);
        drop(procs);
        assert_eq!(total(&c), initial, "round {round}: coins conserved");
        node.shutdown();
    }
}
