//! Round-3 attacks on the channel CLI by an independent reviewer. Tests
//! marked `#[ignore = "attack: ..."]` reproduce a finding and fail on the
//! code they were written against (expected vs observed in their comment).
//!
//! Run the findings: `cargo test -p gridledger-cli --test attack_r3 -- --ignored`

mod common;

use common::*;
use gridledger_contracts::cns::MIN_T_DELTA_MS;
use std::process::{Command, Stdio};

/// Finding (bypass of the control-port token): `channel serve --control
/// ADDR --token-file FILE` guards its manager port with a secret token, but
/// every party it runs also serves the spec's own control port
/// (`PartyOptions::control` defaults to true), which takes `pay`, `close`,
/// `withdraw`, `shutdown` from anyone, no token. So any local process pays
/// from, or shuts down, a channel of a token-guarded serve process:
/// `gridledger channel pay --dir P` needs only the (non-secret) party
/// directory's control address.
///
/// Expected: without the token nothing moves (the payment is refused, the
/// counter listed through the manager stays 0). Observed: the payment is
/// co-signed (counter 1).
#[test]
fn a_token_guarded_serve_cannot_be_paid_from_without_the_token() {
    let terms = ["--capacity", "100000", "50000", "--t-delta-ms", &MIN_T_DELTA_MS.to_string()];
    let (dir, node, _url, dirs) = prepared_channel(["p0", "p1"], &terms);
    let token_file = dir.path().join("control.token");
    let (serve, addr) = serve_with_control(&[&dirs[0]], &token_file, Stdio::null());
    let _procs = Procs(vec![serve, open_cmd(&dirs[1]).spawn().unwrap()]);
    wait_open(&dirs[0]);
    wait_open(&dirs[1]);
    // No token: straight to the party's own control port.
    let paid = gl(&["channel", "pay", "--dir", &d(&dirs[0]), "--energy", "2000", "--price", "100"]);
    let listed = gl(&["channel", "list", "--json", "--control", &addr, "--token-file", &d(&token_file)]);
    let v: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap_or_default();
    let counter = v["channels"][0]["status"]["counter"].as_u64();
    node.shutdown();
    assert_eq!(
        counter,
        Some(0),
        "a pay without the token moved the channel (pay exit {:?}, stdout {})",
        paid.status.code(),
        String::from_utf8_lossy(&paid.stdout)
    );
}

/// Finding (denial of the control port without the token): `channel serve`
/// caps its control port at 64 connections and a connection that has not
/// proved the token may hold its slot for the first-line deadline (5 s).
/// A local process that keeps 64 idle connections open (reopening each
/// when it is dropped) locks the user out of the port without knowing the
/// token: the user's own `channel list` with the right token is cut off.
///
/// Expected: an authenticated client is served while unauthenticated
/// idlers hold connections (e.g. the cap counts only authenticated
/// connections, or an idler is dropped for it). Observed: `channel list`
/// with the token fails while 64 idle connections are open.
#[test]
fn idle_connections_without_the_token_do_not_lock_the_user_out() {
    let terms = ["--capacity", "100000", "50000", "--t-delta-ms", &MIN_T_DELTA_MS.to_string()];
    let (dir, node, _url, dirs) = prepared_channel(["p0", "p1"], &terms);
    let token_file = dir.path().join("control.token");
    let (serve, addr) = serve_with_control(&[&dirs[0]], &token_file, Stdio::null());
    let _procs = Procs(vec![serve]);
    let ok_before = gl(&["channel", "list", "--json", "--control", &addr, "--token-file", &d(&token_file)]);
    assert!(ok_before.status.success(), "{}", String::from_utf8_lossy(&ok_before.stderr));
    // 64 connections that never send a line (the attacker needs no token).
    let idlers: Vec<std::net::TcpStream> = (0..64).map(|_| std::net::TcpStream::connect(&addr).unwrap()).collect();
    std::thread::sleep(std::time::Duration::from_millis(200));
    let during = gl(&["channel", "list", "--json", "--control", &addr, "--token-file", &d(&token_file)]);
    drop(idlers);
    node.shutdown();
    assert!(
        during.status.success(),
        "the token holder was locked out by 64 idle connections: {}",
        String::from_utf8_lossy(&during.stderr)
    );
}

/// Finding (outsider, local): the party's own control port has no
/// connection cap, so a local process can open connections until the
/// party runs out of file descriptors (here the party runs with `ulimit -n
/// 256` so that a few hundred connections suffice; the attacker needs as
/// many as the party's limit). The accept loop (`while let Ok(..) =
/// accept().await`) ends at the first accept error (EMFILE): the control
/// port is gone for good, also after the attacker lets go — the user can
/// no longer pay, withdraw, close or even ask the status of the party
/// process, which keeps running.
///
/// Held up in the same run: the peer's stale close during the flood is
/// still answered (the chain holds counter 3 again).
///
/// Expected: once the flood ends, `channel status --dir` answers again.
/// Observed: "Connection refused" while the party process still runs.
#[cfg(unix)]
#[test]
fn a_party_flooded_with_control_connections_recovers_its_control_port() {
    use gridledger_node::channel::chainlink::read_channel;
    use gridledger_node::channel::spec::PartySpec;
    use gridledger_node::RpcClient;
    use std::time::{Duration, Instant};
    let terms =
        ["--capacity", "100000", "50000", "--t-delta-ms", &MIN_T_DELTA_MS.to_string(), "--close-timeout-ms", "1000"];
    let (dir, node, url, dirs) = prepared_channel(["p0", "p1"], &terms);
    let c = RpcClient::new(&url);
    let p0 = open_cmd(&dirs[0]).spawn().unwrap();
    let p1 = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -n 256 && exec '{BIN}' channel open --dir '{}'", d(&dirs[1])))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut procs = Procs(vec![p1, p0]);
    wait_open(&dirs[0]);
    wait_open(&dirs[1]);
    let pay = |dir: &std::path::Path, e: &str, p: &str| {
        gl_ok(&["channel", "pay", "--dir", &d(dir), "--energy", e, "--price", p]);
    };
    pay(&dirs[0], "10000", "100");
    let stale = dir.path().join("stale");
    std::fs::create_dir_all(&stale).unwrap();
    for f in ["party.json", "store.bin", "store.log"] {
        if dirs[0].join(f).exists() {
            std::fs::copy(dirs[0].join(f), stale.join(f)).unwrap();
        }
    }
    pay(&dirs[1], "5000", "200");
    pay(&dirs[1], "5000", "200");
    // The flood: connections to side 1's control socket until refused.
    let control = dirs[1].join(gridledger_node::channel::control::CONTROL_SOCKET_FILE);
    let mut flood = vec![];
    let mut misses = 0;
    while flood.len() < 400 && misses < 5 {
        match std::os::unix::net::UnixStream::connect(&control) {
            Ok(s) => {
                flood.push(s);
                misses = 0;
            }
            Err(_) => {
                misses += 1;
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
    std::thread::sleep(Duration::from_millis(500));
    // Side 0 dies and its stale copy closes unilaterally at counter 1.
    let _ = procs.0[1].kill();
    let _ = procs.0[1].wait();
    gl_ok(&["channel", "dispute", "--dir", &d(&stale), "--no-settle"]);
    let cid = PartySpec::load(&dirs[1]).unwrap().cid;
    let t = Instant::now();
    let mut answered = false;
    while t.elapsed() < Duration::from_secs(25) {
        if read_channel(&c, &cid).unwrap().unwrap().latest.state.counter == 3 {
            answered = true;
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let ch = read_channel(&c, &cid).unwrap().unwrap();
    let n = flood.len();
    drop(flood);
    std::thread::sleep(Duration::from_millis(1_000));
    let status = gl(&["channel", "status", "--json", "--dir", &d(&dirs[1])]);
    let alive = matches!(procs.0[0].try_wait(), Ok(None));
    node.shutdown();
    assert!(
        answered,
        "after {n} control connections the party left the stale close (counter {}) unanswered: {:?}",
        ch.latest.state.counter, ch.status
    );
    assert!(alive, "side 1's party process ended");
    assert!(
        status.status.success(),
        "after a flood of {n} connections ended, the running party's control port is gone: {}",
        String::from_utf8_lossy(&status.stderr)
    );
}
