//! `gridledger xchain up --processes`: every validator of the BoB and of
//! every external chain in its own process, holding only its own key,
//! talking to the driver over loopback TCP (as `testnet` runs one process
//! per PBFT validator).
//!
//! Each process (`gridledger xchain serve-chain --validator V`, hidden)
//! opens its replica of its chain with [`open_chain`] and keeps only its
//! key ([`Replica`]) — validator 0 in `<dir>/<chain>`, where the embedded
//! MBS keeps the chain, the others in `<dir>/<chain>-v<V>` — binds
//! `127.0.0.1:0`, prints `listening <port>` on its stdout (the driver's
//! readiness signal) and answers one JSON request per line (a line that is
//! not UTF-8 or longer than 4 MiB gets an error answer, like one that is
//! not JSON, and the process serves on): `status`, `header`, `submit`,
//! `record` (a BoB contract record), `nonce`, `propose` (when it leads),
//! `vote` and `commit`; it exits on `stop` or when the driver's connection
//! closes — or, before the driver connected, when the driver is gone or
//! `--chain-timeout` passed — so a driver that dies leaves no process
//! behind. Without
//! `--validator` it serves the whole chain (every key, `tick`).
//!
//! The driver is the network and the relayer, a BoB node: each epoch, on
//! every external chain, the scheduled leader proposes, the first 2f+1
//! validators re-execute the block and sign their commit votes, and every
//! validator checks the seal and commits; the driver reads the headers the
//! BoB has not stored from validator 0 of each chain and sends the `relay`
//! transactions to every BoB validator's mempool; then the BoB's
//! validators make their block the same way — the epoch of
//! [`BobMbs::tick`], across processes, with no process signing for another.
//!
//! Decisions: the driver moves messages in lockstep and stops at the first
//! validator that fails or does not answer within `--chain-timeout` (it
//! plays no view change: tolerating f faulty validators is the PBFT
//! node's business, not this demonstration's). `up` and the honest `swap`
//! run split (`swap --processes` plays the participants over the same
//! requests); the attacked swaps, `migrate` and `ccdi` drive the
//! protocols' participants through [`BobMbs`], which holds its chains in
//! one process (the embedded default of the issue). Lines are written in
//! one piece on sockets without Nagle's delay: request/answer pairs were
//! waiting ~40 ms each for a delayed ACK.
//!
//! [`BobMbs`]: gridledger_xchain::BobMbs
//! [`BobMbs::tick`]: gridledger_xchain::BobMbs::tick
//! [`Replica`]: gridledger_xchain::replica::Replica

use anyhow::{anyhow, bail, Context};
use gridledger_core::crypto::KeyPair;
use gridledger_core::merkle::MerkleProof;
use gridledger_core::{Address, Amount, ChainId, Hash32, Height};
use gridledger_ledger::devnet::{dev_key, transfer, transfer_until};
use gridledger_ledger::state::{contract_key, StateRead};
use gridledger_ledger::{Block, ChainError, Receipt, Seal, SignedTransaction, StoreError, TxStatus};
use gridledger_xchain::bob::{self, CctArgs, CctTerms, Claim, PostNt, ProofTx, Provide, Relay, BOB_CONTRACT_ID};
use gridledger_xchain::mbs::{
    bob_call_signed, chain_domain, deployment, open_chain, pin_genesis_time, relay_plan, relay_tx, MbsError, MbsSpec,
    NodeKey, Role,
};
use gridledger_xchain::replica::Replica;
use gridledger_xchain::threshold::BobCommittee;
use gridledger_xchain::{BobConfig, CctRecord, EmbeddedChain, SealedHeader, Side};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ServeChainArgs, ShapeArgs, SwapArgs, UpArgs};

/// Most bytes of one request or answer line (a relay batch of headers is far smaller).
const MAX_LINE: usize = 4 << 20;

fn role_of(s: &str, chains: usize) -> anyhow::Result<Role> {
    if s == "bob" {
        return Ok(Role::Bob);
    }
    let n: usize = s.parse().map_err(|_| anyhow!("--role must be `bob` or an external chain's index, got {s:?}"))?;
    anyhow::ensure!(n < chains, "--role {n}: there are only {chains} external chains (0 to {})", chains - 1);
    Ok(Role::External(n))
}

/// A line a chain process or the driver cannot take as a request or
/// answer: refused with this error, the stream goes on at the next line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LineError {
    TooLong,
    NotUtf8,
}

impl std::fmt::Display for LineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LineError::TooLong => write!(f, "a line of more than {MAX_LINE} bytes"),
            LineError::NotUtf8 => write!(f, "a line that is not UTF-8"),
        }
    }
}

impl std::error::Error for LineError {}

/// The next line without its newline, holding at most [`MAX_LINE`] bytes
/// in memory: `Ok(None)` at the end of the stream; a line that is too long
/// (skipped to its end) or not UTF-8 is `Ok(Some(Err(_)))`, so the caller
/// answers it and reads on. Only the stream's own failures are `Err`.
fn read_line<R: BufRead>(r: &mut R) -> std::io::Result<Option<Result<String, LineError>>> {
    let mut buf = Vec::new();
    let n = std::io::Read::take(&mut *r, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    if buf.last() == Some(&b'\n') {
        buf.pop();
    } else if buf.len() > MAX_LINE {
        skip_line(r)?;
        return Ok(Some(Err(LineError::TooLong)));
    }
    Ok(Some(String::from_utf8(buf).map_err(|_| LineError::NotUtf8)))
}

/// Consumes the rest of the current line (up to and including its newline).
fn skip_line<R: BufRead>(r: &mut R) -> std::io::Result<()> {
    loop {
        let (used, done) = {
            let b = r.fill_buf()?;
            if b.is_empty() {
                return Ok(());
            }
            match b.iter().position(|&c| c == b'\n') {
                Some(i) => (i + 1, true),
                None => (b.len(), false),
            }
        };
        r.consume(used);
        if done {
            return Ok(());
        }
    }
}

/// The driver's connection on `listener`, within `wait` and while the
/// process that started this one (`parent`) lives.
fn accept_driver(listener: &TcpListener, parent: u32, wait: Duration) -> anyhow::Result<TcpStream> {
    listener.set_nonblocking(true)?;
    let until = Instant::now() + wait;
    loop {
        match listener.accept() {
            Ok((stream, _)) => return Ok(stream),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => return Err(e).context("waiting for the driver"),
        }
        if std::os::unix::process::parent_id() != parent {
            bail!("the driver exited before connecting");
        }
        if Instant::now() >= until {
            bail!("no driver connected within {} s", wait.as_secs());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn hex_arg(req: &Value, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = req[name].as_str().ok_or_else(|| anyhow!("missing {name}"))?;
    hex::decode(s).with_context(|| format!("{name} is not hex"))
}

/// Opens the chain, waiting up to `wait` while its database is held by
/// another process: a validator process left by a killed driver (`kill -9`
/// of `xchain up --processes` while it started its validators) exits as
/// soon as it sees its driver gone, but may still hold the chain's
/// database for a moment when the next run starts. Any other error, or a
/// lock still held after `wait`, is returned as it is.
fn open_waiting(
    dir: &Path,
    spec: &MbsSpec,
    role: Role,
    parent: u32,
    wait: Duration,
) -> anyhow::Result<(EmbeddedChain, BobConfig)> {
    let start = Instant::now();
    let mut said = false;
    // Each try opens the chain again (for the BoB, its external chains'
    // genesis too), so the pause between tries grows to a second.
    let mut pause = Duration::from_millis(100);
    loop {
        match open_chain(dir, spec, role) {
            Err(MbsError::Chain(ChainError::Store(StoreError::Locked(m)))) if start.elapsed() < wait => {
                if !said {
                    eprintln!("{}: {m}; waiting for the previous run's process to exit", dir.display());
                    said = true;
                }
                // A validator whose driver died while it waited is itself
                // a leftover: it gives up at once, as `accept_driver` does,
                // instead of taking the database from the next run.
                if std::os::unix::process::parent_id() != parent {
                    bail!("the driver exited while this process waited for its database");
                }
                std::thread::sleep(pause);
                pause = (pause * 2).min(Duration::from_secs(1));
            }
            other => return Ok(other?),
        }
    }
}

/// `gridledger xchain serve-chain`: one chain of a BoB-MBS in this process
/// — the whole chain with every validator's key, or with `--validator V`
/// one validator's replica holding only that key.
pub fn serve(a: ServeChainArgs) -> anyhow::Result<()> {
    // Taken before anything else: a driver that died early has no pid to compare.
    let parent = std::os::unix::process::parent_id();
    let wait = Duration::from_secs(a.chain_timeout);
    let mut spec = a.shape.spec();
    if let Some(node) = &a.node {
        // The driver holds the node's key; this process needs its address only.
        let bytes: [u8; 20] = hex::decode(node)
            .ok()
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| anyhow!("--node {node}: not an address (40 hex digits)"))?;
        spec.node_key = NodeKey::Address(Address(bytes));
    }
    let role = role_of(&a.role, spec.chains)?;
    let dir = a.shape.dir.clone().ok_or_else(|| anyhow!("serve-chain needs --dir"))?;
    let (chain, config) = open_waiting(&dir, &spec, role, parent, wait)
        .with_context(|| format!("opening {} in {}", role.dir_name(), dir.display()))?;
    match a.validator {
        None => {
            let mut chain = chain;
            serve_lines(parent, wait, |op, req| chain_op(&mut chain, &config, op, req))
        }
        Some(v) => {
            anyhow::ensure!(
                (v as usize) < chain.chain().genesis().validators.len(),
                "--validator {v}: {} has {} validators",
                role.dir_name(),
                chain.chain().genesis().validators.len()
            );
            // Votes persist beside the chain, so a restarted validator never
            // votes twice at one height.
            let mut r = Replica::new(chain, v as usize)?.with_vote_log(&dir.join("votes.log"))?;
            serve_lines(parent, wait, |op, req| validator_op(&mut r, &config, op, req))
        }
    }
}

/// Binds a loopback port, prints `listening <port>`, takes the driver's
/// connection and answers its requests with `handle` until `stop` or the
/// end of the connection.
///
/// Decision (attack R8-6): the connection is awaited at most `wait`, and
/// the process gives up at once when its parent (`parent`, the driver)
/// is gone: a driver killed between starting it and connecting left it
/// blocked in `accept` for ever, its replica's database locked.
fn serve_lines(
    parent: u32,
    wait: Duration,
    mut handle: impl FnMut(&str, &Value) -> anyhow::Result<Value>,
) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    let port = listener.local_addr()?.port();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {port}")?;
        out.flush()?;
    }
    let stream = accept_driver(&listener, parent, wait)?;
    stream.set_nonblocking(false)?;
    // One request, one answer: no Nagle delay waiting for an ACK.
    stream.set_nodelay(true)?;
    drop(listener);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(line) = read_line(&mut reader)? {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                writer.write_all(format!("{}\n", json!({ "error": e.to_string() })).as_bytes())?;
                writer.flush()?;
                continue;
            }
        };
        let req: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                writer.write_all(format!("{}\n", json!({ "error": format!("not JSON: {e}") })).as_bytes())?;
                continue;
            }
        };
        let op = req["op"].as_str().unwrap_or("").to_string();
        let answer = if op == "stop" { Ok(json!({ "stopped": true })) } else { handle(&op, &req) };
        let reply = match answer {
            Ok(v) => json!({ "ok": v }),
            Err(e) => json!({ "error": format!("{e:#}") }),
        };
        // The whole line in one write.
        writer.write_all(format!("{reply}\n").as_bytes())?;
        writer.flush()?;
        if op == "stop" {
            break;
        }
    }
    Ok(())
}

/// The requests every chain process answers from its copy of the chain.
fn common_op(chain: &gridledger_ledger::Chain, op: &str, req: &Value) -> anyhow::Result<Option<Value>> {
    Ok(Some(match op {
        "header" => {
            let h: Height = req["height"].as_u64().ok_or_else(|| anyhow!("missing height"))?;
            let b = chain.block(h)?.ok_or_else(|| anyhow!("no header {h}"))?;
            json!({ "header": hex::encode(borsh::to_vec(&SealedHeader { header: b.header, seal: b.seal })?) })
        }
        // A committed block with its seal: what a lagging replica catches
        // up from (it checks the seal and re-executes the block).
        "block" => {
            let h: Height = req["height"].as_u64().ok_or_else(|| anyhow!("missing height"))?;
            let b = chain.block(h)?.ok_or_else(|| anyhow!("no block {h}"))?;
            json!({ "block": hex::encode(borsh::to_vec(&b)?) })
        }
        "record" => {
            let key = hex_arg(req, "key")?;
            let v = chain.state().get(&contract_key(BOB_CONTRACT_ID, &key));
            json!({ "value": v.map(hex::encode) })
        }
        "nonce" => {
            let a: Address = borsh::from_slice(&hex_arg(req, "address")?)?;
            json!({ "nonce": chain.next_nonce(&a) })
        }
        "balance" => {
            let a: Address = borsh::from_slice(&hex_arg(req, "address")?)?;
            json!({ "balance": chain.account(&a).balance.0.to_string() })
        }
        "receipt" => {
            let h: Hash32 = borsh::from_slice(&hex_arg(req, "hash")?)?;
            json!({ "receipt": chain.receipt(&h)?.map(|r| borsh::to_vec(&r)).transpose()?.map(hex::encode) })
        }
        // `Gen_proof(Tx, BH)`: the block holding a transaction and its
        // Merkle proof against the header's `tx_root`.
        "tx_proof" => {
            let h: Hash32 = borsh::from_slice(&hex_arg(req, "hash")?)?;
            let found = match chain.store().tx_location(&h)? {
                None => None,
                Some((height, index)) => chain
                    .block(height)?
                    .and_then(|b| b.tx_proof(index as usize))
                    .map(|p| borsh::to_vec(&(height, p)))
                    .transpose()?,
            };
            json!({ "proof": found.map(hex::encode) })
        }
        _ => return Ok(None),
    }))
}

fn chain_op(chain: &mut EmbeddedChain, config: &BobConfig, op: &str, req: &Value) -> anyhow::Result<Value> {
    if let Some(v) = common_op(chain.chain(), op, req)? {
        return Ok(v);
    }
    Ok(match op {
        "tick" => json!({ "height": chain.tick()?.header.height }),
        "status" => json!({
            "chain": chain.chain_id(),
            "height": chain.height(),
            "validators": chain.chain().genesis().validators.len(),
            "finality": chain.finality(),
            "contracts": chain.chain().registry().list().count(),
            "pid": std::process::id(),
            "tpk_address": config.tpk_address(chain.chain_id()),
        }),
        "submit" => {
            let tx: SignedTransaction = borsh::from_slice(&hex_arg(req, "tx")?)?;
            json!({ "hash": chain.submit(&tx)? })
        }
        other => bail!("unknown op {other:?}"),
    })
}

/// A validator's process: proposes when it leads, votes on the leader's
/// proposal, commits sealed blocks; it never signs for another validator.
fn validator_op(r: &mut Replica, config: &BobConfig, op: &str, req: &Value) -> anyhow::Result<Value> {
    if let Some(v) = common_op(r.chain(), op, req)? {
        return Ok(v);
    }
    let block_arg = |req: &Value| -> anyhow::Result<Block> { Ok(borsh::from_slice(&hex_arg(req, "block")?)?) };
    Ok(match op {
        "status" => {
            let c = r.chain();
            json!({
                "chain": c.genesis().chain_id,
                "validator": r.index(),
                "height": r.height(),
                "validators": c.genesis().validators.len(),
                "quorum": r.quorum(),
                "contracts": c.registry().list().count(),
                "pid": std::process::id(),
                "tpk_address": config.tpk_address(c.genesis().chain_id),
            })
        }
        "submit" => {
            let tx: SignedTransaction = borsh::from_slice(&hex_arg(req, "tx")?)?;
            json!({ "hash": r.submit(&tx)? })
        }
        // The BoB contract's configuration this process was opened with
        // (`TPK_Addr_i`, the deployment, the registrations).
        "config" => json!({ "config": hex::encode(borsh::to_vec(config)?) }),
        "propose" => {
            let not_before = req["not_before"].as_u64().unwrap_or(0);
            json!({ "block": hex::encode(borsh::to_vec(&r.propose(not_before)?)?) })
        }
        "vote" => {
            let (index, signature) = r.vote(&block_arg(req)?)?;
            json!({ "index": index, "signature": hex::encode(borsh::to_vec(&signature)?) })
        }
        "commit" => {
            r.commit(&block_arg(req)?)?;
            json!({ "height": r.height() })
        }
        other => bail!("unknown op {other:?}"),
    })
}

/// A chain process and the driver's connection to it. Every wait on it
/// (readiness, each read and write, exit) is bounded by `timeout`, so a
/// process that stalls fails `up` with an error naming its chain.
struct ChainProc {
    role: Role,
    /// The validator this process is (`None`: the whole chain).
    validator: Option<usize>,
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
    timeout: Duration,
    /// A call failed: the connection is out of step, so cleanup kills it.
    failed: bool,
}

impl ChainProc {
    /// Starts validator `validator`'s process of `role`'s chain. Validator
    /// 0 keeps its replica where the embedded MBS keeps the chain
    /// (`<dir>/<chain>`, so `up` without `--processes` resumes it), the
    /// others in `<dir>/<chain>-v<V>`.
    fn spawn(
        shape: &ShapeArgs,
        genesis_time: u64,
        node: &Address,
        root: &Path,
        role: Role,
        validator: usize,
        timeout: Duration,
    ) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let name = format!("{} validator {validator}", role.dir_name());
        let mut cmd = Command::new(exe);
        let dir = match validator {
            0 => root.join(role.dir_name()),
            v => root.join(format!("{}-v{v}", role.dir_name())),
        };
        cmd.args(["xchain", "serve-chain", "--role"])
            .arg(match role {
                Role::Bob => "bob".to_string(),
                Role::External(n) => n.to_string(),
            })
            .args(["--validator", &validator.to_string()])
            .args(["--chains", &shape.chains.to_string(), "--validators", &shape.validators.to_string()])
            .args(["--kappa", &shape.kappa.to_string(), "--genesis-time", &genesis_time.to_string()])
            .args(["--node", &hex::encode(node.0)])
            .args(["--chain-timeout", &timeout.as_secs().max(1).to_string(), "--dir"])
            .arg(dir);
        if let Some(k) = shape.probabilistic {
            cmd.args(["--probabilistic", &k.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the process of {name}"))?;
        // Readiness: the child's first line names its port (EOF: it failed),
        // read on a helper thread so a child that never speaks cannot hang us.
        let out = child.stdout.take();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let port = out.and_then(|out| {
                let mut first = String::new();
                BufReader::new(out).read_line(&mut first).ok()?;
                first.trim().strip_prefix("listening ")?.parse::<u16>().ok()
            });
            let _ = tx.send(port);
        });
        let port = match rx.recv_timeout(timeout) {
            Ok(Some(p)) => Ok(p),
            Ok(None) => Err(anyhow!("the process of {name} exited before listening")),
            Err(_) => Err(anyhow!("the process of {name} did not listen within {} s", timeout.as_secs())),
        };
        let port = match port {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let connected = (|| -> anyhow::Result<TcpStream> {
            let addr = std::net::SocketAddr::from(([127, 0, 0, 1], port));
            let stream = TcpStream::connect_timeout(&addr, timeout)?;
            stream.set_read_timeout(Some(timeout))?;
            stream.set_nodelay(true)?;
            stream.set_write_timeout(Some(timeout))?;
            Ok(stream)
        })()
        .with_context(|| format!("connecting to {name} on port {port}"));
        let stream = match connected.and_then(|s| Ok((s.try_clone()?, s))) {
            Ok(s) => s,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(Self {
            role,
            validator: Some(validator),
            child,
            reader: BufReader::new(stream.0),
            writer: stream.1,
            timeout,
            failed: false,
        })
    }

    /// The process's name in errors: its chain, and its validator.
    fn name(&self) -> String {
        match self.validator {
            Some(v) => format!("{} validator {v}", self.role.dir_name()),
            None => self.role.dir_name(),
        }
    }

    fn io_error(&self, e: std::io::Error) -> anyhow::Error {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        if matches!(e.kind(), WouldBlock | TimedOut) {
            anyhow!("the process of {} did not answer within {} s", self.name(), self.timeout.as_secs())
        } else {
            anyhow!("the process of {}: {e}", self.name())
        }
    }

    fn call(&mut self, req: Value) -> anyhow::Result<Value> {
        match self.try_call(req)? {
            Ok(v) => Ok(v),
            Err(why) => {
                self.failed = true;
                bail!("{}: {why}", self.name())
            }
        }
    }

    /// Like [`call`](Self::call), but a refusal the process answered (an
    /// `error` line: the connection is still in step) is `Ok(Err(why))`;
    /// only a failed exchange is `Err` (and marks the process failed).
    fn try_call(&mut self, req: Value) -> anyhow::Result<Result<Value, String>> {
        let r = self.exchange(req);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn exchange(&mut self, req: Value) -> anyhow::Result<Result<Value, String>> {
        let line = format!("{req}\n");
        self.writer.write_all(line.as_bytes()).and_then(|_| self.writer.flush()).map_err(|e| self.io_error(e))?;
        let line = read_line(&mut self.reader)
            .map_err(|e| self.io_error(e))?
            .ok_or_else(|| anyhow!("the process of {} closed its connection", self.name()))?
            .map_err(|e| anyhow!("the process of {} answered {e}", self.name()))?;
        let v: Value = serde_json::from_str(&line)?;
        Ok(match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => Err(v["error"].as_str().unwrap_or("malformed answer").to_string()),
        })
    }

    fn u64_of(&mut self, req: Value, field: &str) -> anyhow::Result<u64> {
        let v = self.call(req)?;
        v[field].as_u64().ok_or_else(|| anyhow!("{}: no {field} in {v}", self.name()))
    }
}

/// Every chain process; stops them (and waits) however the driver ends.
struct Procs(Vec<ChainProc>);

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            if !p.failed {
                let _ = p.call(json!({ "op": "stop" }));
            }
        }
        for p in &mut self.0 {
            // A stopped child exits at once; one that failed, or does not
            // exit within the timeout, is killed (SIGKILL ends a stalled one too).
            let _ = p.writer.shutdown(std::net::Shutdown::Both);
            let deadline = Instant::now() + if p.failed { Duration::ZERO } else { p.timeout };
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
                    _ => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                }
            }
        }
    }
}

/// One chain's validator processes, validator `i` at index `i`, and the
/// deployment's directory (where the driver keeps a proposal it collects
/// votes for).
struct Group(Vec<ChainProc>, std::path::PathBuf);

impl Group {
    fn role(&self) -> Role {
        self.0[0].role
    }

    /// Sends `req` to every validator (a transaction reaches every mempool,
    /// as gossip would carry it).
    fn send_all(&mut self, req: Value) -> anyhow::Result<()> {
        for p in &mut self.0 {
            p.call(req.clone())?;
        }
        Ok(())
    }

    /// Brings every validator to the height of the most advanced one: a
    /// validator that missed blocks (its process was killed between its
    /// peers' commits and its own) gets each committed block it lacks from
    /// that peer, sealed, and commits it after checking the seal and
    /// re-executing it as for any block ([`Replica::commit`]), so a
    /// deployment resumes after a crash of any one process.
    ///
    /// [`Replica::commit`]: gridledger_xchain::replica::Replica::commit
    fn catch_up(&mut self) -> anyhow::Result<()> {
        let mut heights = Vec::with_capacity(self.0.len());
        for p in &mut self.0 {
            heights.push(p.u64_of(json!({ "op": "status" }), "height")?);
        }
        let Some((best, &top)) = heights.iter().enumerate().max_by_key(|(_, h)| **h) else { return Ok(()) };
        for (i, &h) in heights.iter().enumerate() {
            for x in h + 1..=top {
                let b = self.0[best].call(json!({ "op": "block", "height": x }))?["block"].clone();
                self.0[i].call(json!({ "op": "commit", "block": b }))?;
            }
        }
        Ok(())
    }

    /// One block: the scheduled leader of the next height proposes; on a
    /// deterministic chain the driver keeps the proposal (written
    /// atomically in the deployment's directory before any vote is asked
    /// for) and asks the validators in index order for their commit votes
    /// until it holds 2f+1, passing over a validator that refuses (it voted
    /// for another block at that height before a crash: `AlreadyVoted`);
    /// every validator checks the seal and commits. No process signs for
    /// another.
    ///
    /// Resuming after a crash (attack R4-13): a proposal kept for the next
    /// height is proposed again as it is (its leader's signature is in it;
    /// a validator asked again for the same block hands out the same vote),
    /// so votes cast before the crash still count and the transactions in
    /// it are not lost with the leader's mempool. A validator that voted
    /// for a block that was never kept (the crash fell between the leader's
    /// answer and the write) is passed over: the other 2f+1 seal a new
    /// proposal. Only if fewer than 2f+1 validators can vote for the block
    /// does the epoch fail, naming each refusal (PBFT would need a view
    /// change there; see the module's decisions).
    fn epoch(&mut self) -> anyhow::Result<Height> {
        let st = self.0[0].call(json!({ "op": "status" }))?;
        let next = st["height"].as_u64().ok_or_else(|| anyhow!("{}: no height", self.0[0].name()))? + 1;
        let quorum = st["quorum"].as_u64().unwrap_or(1) as usize;
        let kept = self.kept_proposal(next)?;
        let proposal = match kept {
            Some(p) => p,
            None => {
                let leader = (next % self.0.len() as u64) as usize;
                self.0[leader].call(json!({ "op": "propose" }))?["block"].as_str().unwrap_or_default().to_string()
            }
        };
        let mut block: Block = borsh::from_slice(&hex::decode(&proposal)?)?;
        if let Seal::Quorum { view, .. } = block.seal {
            self.keep_proposal(next, &proposal)?;
            let mut signatures = Vec::with_capacity(quorum);
            let mut refused = Vec::new();
            for p in self.0.iter_mut() {
                if signatures.len() == quorum {
                    break;
                }
                let v = match p.try_call(json!({ "op": "vote", "block": proposal }))? {
                    Ok(v) => v,
                    Err(why) => {
                        refused.push(format!("{}: {why}", p.name()));
                        continue;
                    }
                };
                let index = v["index"].as_u64().ok_or_else(|| anyhow!("{}: no vote index", p.name()))? as u32;
                let sig = borsh::from_slice(&hex::decode(v["signature"].as_str().unwrap_or_default())?)?;
                signatures.push((index, sig));
            }
            if signatures.len() < quorum {
                bail!(
                    "{} height {next}: {} of the {quorum} commit votes needed; refused by {}",
                    self.role().dir_name(),
                    signatures.len(),
                    refused.join("; ")
                );
            }
            block.seal = Seal::Quorum { view, signatures };
        }
        let sealed = hex::encode(borsh::to_vec(&block)?);
        self.send_all(json!({ "op": "commit", "block": sealed }))?;
        Ok(next)
    }

    /// Where the driver keeps this chain's proposal while it collects votes.
    fn proposal_file(&self) -> std::path::PathBuf {
        self.1.join(format!("{}.proposal", self.role().dir_name()))
    }

    /// The proposal kept for `height` (hex of the block), if any.
    fn kept_proposal(&self, height: Height) -> anyhow::Result<Option<String>> {
        let file = self.proposal_file();
        let text = match std::fs::read_to_string(&file) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(anyhow!("{}: {e}", file.display())),
        };
        // `height hex`; a file that does not parse was never completely
        // written (it is renamed into place), so it is not a proposal.
        let mut parts = text.split_whitespace();
        match (parts.next().and_then(|h| h.parse::<Height>().ok()), parts.next()) {
            (Some(h), Some(b)) if h == height => Ok(Some(b.to_string())),
            _ => Ok(None),
        }
    }

    /// Keeps `proposal` for `height` durably (write, sync, rename, sync the
    /// directory) before any validator is asked to vote for it.
    fn keep_proposal(&self, height: Height, proposal: &str) -> anyhow::Result<()> {
        let file = self.proposal_file();
        let tmp = file.with_extension("proposal.tmp");
        let io = |e: std::io::Error| anyhow!("keeping the proposal in {}: {e}", file.display());
        {
            let mut f = std::fs::File::create(&tmp).map_err(io)?;
            f.write_all(format!("{height} {proposal}\n").as_bytes()).map_err(io)?;
            f.sync_all().map_err(io)?;
        }
        std::fs::rename(&tmp, &file).map_err(io)?;
        if let Ok(d) = std::fs::File::open(&self.1) {
            let _ = d.sync_all();
        }
        Ok(())
    }
}

/// Every process; stops them (and waits) however the driver ends.
struct All(Vec<Group>);

impl Drop for All {
    fn drop(&mut self) {
        for g in &mut self.0 {
            drop(Procs(std::mem::take(&mut g.0)));
        }
    }
}

/// Every validator process of a BoB-MBS and the driver's view of them:
/// the network between a chain's validators and the relayer.
struct Net {
    all: All,
    spec: MbsSpec,
    relayer: KeyPair,
    /// The deployment's directory (the NT journal lives there).
    root: std::path::PathBuf,
    /// The temporary directory of a deployment without `--dir`.
    _tmp: Option<tempfile::TempDir>,
}

impl Net {
    /// Starts one process per validator of the BoB and of each external chain.
    fn start(shape: &ShapeArgs, chain_timeout: u64) -> anyhow::Result<Self> {
        let spec = shape.spec();
        let (root, tmp) = match &shape.dir {
            Some(d) => (d.clone(), None),
            None => {
                let t = tempfile::tempdir()?;
                (t.path().to_path_buf(), Some(t))
            }
        };
        // Every chain of the deployment has the same genesis time (recorded in
        // the root, so a later `up --dir` resumes the same deployment).
        // So is the BoB node's key: generated when the root is created,
        // stored there (mode 0600) and loaded on every later start; the
        // validators' processes get its address only.
        let spec = pin_genesis_time(&root, spec)?;
        let relayer = spec
            .node_key
            .key_pair()
            .ok_or_else(|| anyhow!("{}: the deployment's directory holds no node key", root.display()))?;
        let gt = spec.genesis_time;
        let timeout = Duration::from_secs(chain_timeout);
        let mut all = All(Vec::new());
        let roles: Vec<(Role, usize)> = std::iter::once((Role::Bob, spec.bob_validators))
            .chain((0..spec.chains).map(|n| (Role::External(n), spec.validators)))
            .collect();
        for (role, n) in roles {
            let mut g = Group(Vec::new(), root.clone());
            for v in 0..n {
                // Pushed one by one, so a failed start stops those already running.
                match ChainProc::spawn(shape, gt, &relayer.address(), &root, role, v, timeout) {
                    Ok(p) => g.0.push(p),
                    Err(e) => {
                        all.0.push(g);
                        return Err(e);
                    }
                }
            }
            all.0.push(g);
        }
        // A validator left behind by a crash catches up from its peers
        // before the first epoch.
        for g in &mut all.0 {
            if g.0.len() > 1 {
                g.catch_up()?;
            }
        }
        Ok(Self { all, spec, relayer, root, _tmp: tmp })
    }

    fn group(&mut self, chain: ChainId) -> anyhow::Result<&mut Group> {
        let spec = &self.spec;
        self.all.0.iter_mut().find(|g| g.role().chain_id(spec) == chain).ok_or_else(|| anyhow!("no chain {chain}"))
    }

    /// One epoch of the BoB-MBS ([`BobMbs::tick`]): every external chain
    /// makes a block, the relayer sends the headers the BoB has not stored
    /// (at most `relay_per_block` each) to every BoB validator, the BoB
    /// makes its block.
    ///
    /// [`BobMbs::tick`]: gridledger_xchain::BobMbs::tick
    fn epoch(&mut self) -> anyhow::Result<()> {
        let relayer_addr = hex::encode(borsh::to_vec(&self.relayer.address())?);
        let (bob, externals) = self.all.0.split_first_mut().ok_or_else(|| anyhow!("no BoB processes"))?;
        for c in externals.iter_mut() {
            c.epoch()?;
        }
        let mut nonce = bob.0[0].u64_of(json!({ "op": "nonce", "address": relayer_addr }), "nonce")?;
        for c in externals.iter_mut() {
            let chain = c.role().chain_id(&self.spec);
            let height = c.0[0].u64_of(json!({ "op": "status" }), "height")?;
            let (bob0, c0) = (&mut bob.0[0], &mut c.0[0]);
            let plan = relay_plan(
                &self.spec,
                stored_tip(bob0, chain)?,
                height,
                |h| stored_header_hash(bob0, chain, h),
                |h| own_header(c0, h).map(|s| Some(s.header.hash())),
            )?;
            for range in plan {
                let mut headers = Vec::new();
                for x in range {
                    headers.push(own_header(&mut c.0[0], x)?);
                }
                let domain = deployment(&self.spec);
                let tx = relay_tx(&self.relayer, self.spec.bob_chain(), &domain, nonce, &Relay { chain, headers });
                bob.send_all(json!({ "op": "submit", "tx": hex::encode(tx.to_bytes()) }))?;
                nonce += 1;
            }
        }
        bob.epoch()?;
        Ok(())
    }

    /// Sends `tx` to every validator of `chain` (every mempool).
    fn submit(&mut self, chain: ChainId, tx: &SignedTransaction) -> anyhow::Result<()> {
        self.group(chain)?.send_all(json!({ "op": "submit", "tx": hex::encode(tx.to_bytes()) }))
    }

    fn ask(&mut self, chain: ChainId, req: Value) -> anyhow::Result<Value> {
        self.group(chain)?.0[0].call(req)
    }

    fn height(&mut self, chain: ChainId) -> anyhow::Result<Height> {
        self.group(chain)?.0[0].u64_of(json!({ "op": "status" }), "height")
    }

    fn nonce(&mut self, chain: ChainId, a: &Address) -> anyhow::Result<u64> {
        let a = hex::encode(borsh::to_vec(a)?);
        self.group(chain)?.0[0].u64_of(json!({ "op": "nonce", "address": a }), "nonce")
    }

    fn balance(&mut self, chain: ChainId, a: &Address) -> anyhow::Result<u128> {
        let v = self.ask(chain, json!({ "op": "balance", "address": hex::encode(borsh::to_vec(a)?) }))?;
        Ok(v["balance"].as_str().unwrap_or_default().parse()?)
    }

    fn receipt(&mut self, chain: ChainId, h: &Hash32) -> anyhow::Result<Option<Receipt>> {
        let v = self.ask(chain, json!({ "op": "receipt", "hash": hex::encode(borsh::to_vec(h)?) }))?;
        v["receipt"].as_str().map(|r| Ok(borsh::from_slice(&hex::decode(r)?)?)).transpose()
    }

    fn tx_proof(&mut self, chain: ChainId, h: &Hash32) -> anyhow::Result<Option<(Height, MerkleProof)>> {
        let v = self.ask(chain, json!({ "op": "tx_proof", "hash": hex::encode(borsh::to_vec(h)?) }))?;
        v["proof"].as_str().map(|p| Ok(borsh::from_slice(&hex::decode(p)?)?)).transpose()
    }

    fn record<T: borsh::BorshDeserialize>(&mut self, key: &[u8]) -> anyhow::Result<Option<T>> {
        let v = self.ask(self.spec.bob_chain(), json!({ "op": "record", "key": hex::encode(key) }))?;
        v["value"].as_str().map(|r| Ok(borsh::from_slice(&hex::decode(r)?)?)).transpose()
    }

    /// Runs epochs until `cond` holds, at most `MAX_WAIT` of them.
    fn until(&mut self, what: &str, mut cond: impl FnMut(&mut Self) -> anyhow::Result<bool>) -> anyhow::Result<()> {
        for _ in 0..MAX_WAIT {
            if cond(self)? {
                return Ok(());
            }
            self.epoch()?;
        }
        bail!("{what}: not within {MAX_WAIT} epochs")
    }

    /// Epochs until `tx` is in a block of `chain` the BoB holds as final;
    /// returns its block and Merkle proof.
    fn landed(&mut self, chain: ChainId, tx: &SignedTransaction) -> anyhow::Result<(Height, MerkleProof)> {
        let k = self.spec.finality.confirmations() as u64;
        let mut found = None;
        self.until(&format!("transaction {} on chain {chain}", tx.hash()), |net| {
            if found.is_none() {
                found = net.tx_proof(chain, &tx.hash())?;
            }
            Ok(match &found {
                Some((h, _)) => bob_tip(&mut net.group(net.spec.bob_chain())?.0[0], chain)? >= h + k,
                None => false,
            })
        })?;
        found.ok_or_else(|| anyhow!("transaction {} vanished", tx.hash()))
    }

    /// Submits a BoB transaction, runs one epoch, and requires its success.
    fn bob_ok(&mut self, tx: &SignedTransaction) -> anyhow::Result<Receipt> {
        self.submit(self.spec.bob_chain(), tx)?;
        self.epoch()?;
        let r = self
            .receipt(self.spec.bob_chain(), &tx.hash())?
            .ok_or_else(|| anyhow!("BoB transaction {} not included", tx.hash()))?;
        match &r.status {
            TxStatus::Success => Ok(r),
            TxStatus::Reverted(why) => bail!("the BoB refused {}: {why}", method_name(tx)),
        }
    }

    fn bob_call<A: borsh::BorshSerialize>(
        &mut self,
        key: &KeyPair,
        method: &str,
        args: &A,
        value: u128,
    ) -> anyhow::Result<SignedTransaction> {
        let nonce = self.nonce(self.spec.bob_chain(), &key.address())?;
        Ok(bob_call_signed(key, self.spec.bob_chain(), &deployment(&self.spec), nonce, method, args, Amount(value)))
    }

    /// The status of every process: (BoB validator 0's, each external chain's
    /// with its validators' heights and the BoB's stored tip, every pid).
    fn report(&mut self) -> anyhow::Result<(Value, Vec<Value>, Vec<Value>)> {
        let (bob, externals) = self.all.0.split_first_mut().ok_or_else(|| anyhow!("no BoB processes"))?;
        let mut pids = Vec::new();
        let mut bob_status = Value::Null;
        for p in &mut bob.0 {
            let s = p.call(json!({ "op": "status" }))?;
            pids.push(json!({ "role": "bob", "validator": s["validator"], "pid": s["pid"] }));
            if bob_status.is_null() {
                bob_status = s;
            }
        }
        let mut chains = Vec::new();
        for c in externals.iter_mut() {
            let chain = c.role().chain_id(&self.spec);
            let name = c.role().dir_name();
            let mut first = Value::Null;
            let mut heights = Vec::new();
            for p in &mut c.0 {
                let s = p.call(json!({ "op": "status" }))?;
                pids.push(json!({ "role": name, "validator": s["validator"], "pid": s["pid"] }));
                heights.push(s["height"].clone());
                if first.is_null() {
                    first = s;
                }
            }
            first["bob_stored_tip"] = json!(bob_tip(&mut bob.0[0], chain)?);
            first["validator_heights"] = json!(heights);
            if let Some(o) = first.as_object_mut() {
                o.remove("validator");
                o.remove("pid");
            }
            chains.push(first);
        }
        Ok((bob_status, chains, pids))
    }
}

/// Most epochs the driver waits for one step of a swap.
const MAX_WAIT: u64 = 200;

fn method_name(tx: &SignedTransaction) -> String {
    match &tx.tx.kind {
        gridledger_ledger::TxKind::Call { method, .. } => method.clone(),
        _ => "a transfer".into(),
    }
}

/// `gridledger xchain up --processes`: one process per validator of the
/// BoB and of every external chain.
pub fn up(a: &UpArgs) -> anyhow::Result<Value> {
    let mut net = Net::start(&a.shape, a.chain_timeout)?;
    for _ in 0..a.epochs {
        net.epoch()?;
    }
    let (bob_status, chains, pids) = net.report()?;
    let spec = net.spec.clone();
    let committee =
        BobCommittee::dev(spec.bob_validators, spec.committee_seed).map_err(|e| anyhow!("threshold key: {e}"))?;
    drop(net);
    Ok(json!({
        "bob": { "chain": bob_status["chain"], "height": bob_status["height"], "validators": bob_status["validators"],
                 "threshold": format!("{} of {}", committee.set.threshold(), committee.set.members()) },
        "kappa_bar": spec.kappa_bar,
        "kappa": spec.kappa,
        "external": chains,
        "processes": pids,
        "driver_pid": std::process::id(),
    }))
}

/// `gridledger xchain swap --processes`: one honest CCTE (Algorithm 5.1)
/// with every validator in its own process. The driver plays the
/// participants as [`BobMbs::swap`] does: the liquidity provider fills
/// SC_AMM's pool through Π_CCTC, both parties deposit in SC_D, the sender
/// sends the CCT with the receiver's signature on the terms (nonce floors
/// from the chains), both pay their native transfer once the chains are
/// past `e_* + κ̄` and post it to the BoB, and each proves it once the BoB
/// holds its block as final.
///
/// [`BobMbs::swap`]: gridledger_xchain::BobMbs::swap
pub fn swap(a: &SwapArgs, chain_timeout: u64) -> anyhow::Result<Value> {
    let funds = super::setup_funds(a.amount);
    let (liquidity, deposit) = (funds, funds);
    let mut net = Net::start(&a.shape, chain_timeout)?;
    let spec = net.spec.clone();
    let bob_chain = spec.bob_chain();
    let config: BobConfig = {
        let v = net.ask(bob_chain, json!({ "op": "config" }))?;
        borsh::from_slice(&hex::decode(v["config"].as_str().unwrap_or_default())?)?
    };
    let (sender, receiver, provider) = (dev_key(0), dev_key(1), dev_key(7));
    let (chain_i, chain_j) = (spec.external_chain(a.from as usize), spec.external_chain(a.to as usize));
    let started = Instant::now();
    // Π_CCTC: the provider locks Token_i in TPK_Addr_i and claims it, then joins the pool.
    for n in 0..spec.chains {
        let c = spec.external_chain(n);
        let tpk = config.tpk_address(c);
        let lock = transfer(&provider, c, net.nonce(c, &provider.address())?, tpk, Amount(liquidity), Amount(1));
        let lock = lock.tx.sign_in(&provider, chain_domain(&spec, c).as_ref());
        net.submit(c, &lock)?;
        let (height, proof) = net.landed(c, &lock)?;
        let claim = net.bob_call(&provider, "claim", &Claim { chain: c, height, nt: lock, proof }, 0)?;
        net.bob_ok(&claim)?;
    }
    // One join brings every token of the pool (SC_AMM's liquidity is pro rata).
    let amounts = config.weights.iter().map(|(t, _)| (*t, liquidity)).collect();
    let p = net.bob_call(&provider, "provide", &Provide { amounts }, liquidity)?;
    net.bob_ok(&p)?;
    for who in [&sender, &receiver] {
        let d = net.bob_call(who, "deposit", &(), deposit)?;
        net.bob_ok(&d)?;
    }
    let before = [
        net.balance(chain_i, &sender.address())?,
        net.balance(chain_i, &receiver.address())?,
        net.balance(chain_j, &sender.address())?,
        net.balance(chain_j, &receiver.address())?,
    ];
    // Phase 1: the CCT. The receiver signs x_i within the quote ± the
    // slippage, as `BobMbs::terms` does (attack R4-6b).
    let (min_x_i, max_x_i, min_x_b) = {
        let weight = |t: ChainId| config.weights.iter().find(|(c, _)| *c == t).map_or(0, |(_, w)| *w);
        // SC_AMM prices from the pools' reference balances in the block
        // the CCT executes in (attack R5-5).
        let next = net.height(bob_chain)? + 1;
        let mut reference = |t: ChainId| -> anyhow::Result<u128> {
            let r: Option<gridledger_xchain::amm::PriceRef> = net.record(&bob::keys::price_ref(t))?;
            Ok(match r {
                Some(r) => r.value_at(next),
                None => net.record(&bob::keys::pool(t))?.unwrap_or(0),
            })
        };
        let (bi, bj, bb) = (reference(chain_i)?, reference(chain_j)?, reference(bob_chain)?);
        let quote = gridledger_xchain::amm::amount_in_for(
            a.amount as u128,
            (chain_i, bi, weight(chain_i)),
            (chain_j, bj, weight(chain_j)),
        )
        .map_err(|e| anyhow!("SC_AMM cannot quote {} Token_j: {e}", a.amount))?;
        // The receiver's floor on the penalty unit x_B (attack R5-3).
        let x_b = gridledger_xchain::amm::amount_in_for(
            a.amount as u128,
            (bob_chain, bb, weight(bob_chain)),
            (chain_j, bj, weight(chain_j)),
        )
        .map_err(|e| anyhow!("SC_AMM cannot price the penalty of {} Token_j: {e}", a.amount))?;
        let (min_x_b, _) = slippage_bounds(x_b, a.slippage_bps);
        // Never below the deployment's floor (attack R6-4).
        let min_x_b = min_x_b.max(config.min_x_b(chain_j, a.amount as u128)?);
        let (min_x_i, max_x_i) = slippage_bounds(quote, a.slippage_bps);
        (min_x_i, max_x_i, min_x_b)
    };
    // The parties' wallet registry (one directory for both here): each
    // payer's nonce is its next one not held by other open terms, and
    // neither party agrees two sets of terms naming one (payer, chain,
    // nonce) (attacks R8-5, R10-1, R10-5).
    let wallet = gridledger_xchain::wallet::TermsRegistry::open(&net.root.join(gridledger_xchain::mbs::WALLET_DIR))?;
    // The wallet bounds the terms' expiry from the BoB's height (attack
    // R11-5), and gives back the triples of terms never stored that can no
    // longer be (their `expires_at` passed without a record, R10-3).
    let deployment = gridledger_xchain::mbs::deployment(&spec);
    let bob_height = net.height(bob_chain)?;
    wallet.observe(deployment, bob_height);
    let terms_ahead = bob::terms_ahead(spec.kappa_bar, spec.kappa);
    wallet.observe_limit(deployment, terms_ahead);
    let mut stored = std::collections::BTreeSet::new();
    for h in wallet.held()? {
        let e = h.entry;
        if e.deployment == deployment
            && e.expires_at <= bob_height
            && net.record::<CctRecord>(&bob::keys::cct(&e.id))?.is_some()
        {
            stored.insert(e.id);
        }
    }
    wallet.release_unstored(deployment, bob_height, |id| stored.contains(id))?;
    let from_i = net.nonce(chain_i, &sender.address())?;
    let from_j = net.nonce(chain_j, &receiver.address())?;
    let nonce_i = wallet.next_free(chain_i, &sender.address(), from_i)?;
    let nonce_j = wallet.next_free(chain_j, &receiver.address(), from_j)?;
    // Never above a nonce another deployment's terms hold (attack R13-2/3/5).
    wallet.check_foreign_below(deployment, chain_i, &sender.address(), from_i, nonce_i)?;
    wallet.check_foreign_below(deployment, chain_j, &receiver.address(), from_j, nonce_j)?;
    let terms = CctTerms {
        deployment: gridledger_xchain::mbs::deployment(&spec),
        chain_i,
        chain_j,
        sender_i: sender.address(),
        sender_j: sender.address(),
        sender_b: sender.address(),
        receiver_i: receiver.address(),
        receiver_j: receiver.address(),
        receiver_pk: receiver.public(),
        x_j: a.amount as u128,
        min_x_i,
        max_x_i,
        min_x_b,
        expires_at: net.height(bob_chain)? + terms_ahead,
        salt: 1,
        // The exact nonces of the two NTs (attacks R8-5, R10-1).
        nonce_i,
        nonce_j,
    };
    // The receiver signs through its wallet, the sender agrees through its own.
    let receiver_sig = wallet.sign(&receiver, &terms, bob_chain)?;
    wallet.agree(&terms)?;
    let signed_terms = terms.clone();
    let id = terms.id();
    let cct = net.bob_call(&sender, "cct", &CctArgs { terms, receiver_sig }, 0)?;
    // Refused by SC_T (a reverted receipt) or not included yet: the triples
    // stay held until a later run finds `expires_at` passed without a
    // record (attacks R11-1, R12-6: the reverted transaction, terms and
    // receiver's signature and all, is public in the BoB's block, and its
    // sender may send it again until `expires_at`).
    net.bob_ok(&cct)?;
    let rec: CctRecord = net.record(&bob::keys::cct(&id))?.ok_or_else(|| anyhow!("no CCT record"))?;
    let kb = spec.kappa_bar;
    net.until("the native window", |net| {
        Ok(net.height(chain_i)? >= rec.e_i + kb && net.height(chain_j)? >= rec.e_j + kb)
    })?;
    // Phase 2: each side's ordinary transfer, to its chain and to the BoB.
    let mut nts = Vec::new();
    for (side, key) in [(Side::Sender, &sender), (Side::Receiver, &receiver)] {
        let (chain, _payer, to, amount) = rec.instruction(side);
        // Each side pays with exactly the terms' nonce.
        let nonce = rec.agreed_nonce(side);
        // With the deadline the embedded driver's NTs carry: it cannot
        // land once its landing could no longer be proved (attack R12-4).
        let valid_until =
            config.nt_valid_until(&rec, side).ok_or_else(|| anyhow!("chain {chain} is not followed by the BoB"))?;
        let nt = transfer_until(key, chain, nonce, (to, Amount(amount), valid_until), Amount(1));
        // Signed in the chain's signing domain (its genesis hash), as every transfer there.
        let nt = nt.tx.sign_in(key, chain_domain(&net.spec, chain).as_ref());
        // Journaled (fsync) before it leaves: killed between paying and
        // posting, `xchain resume` still knows of the payment (attack R6-3).
        gridledger_xchain::journal::record(&net.root, &id, side, &nt)?;
        net.submit(chain, &nt)?;
        let post = net.bob_call(key, "post_nt", &PostNt { cct: id, side, nt: nt.clone() }, 0)?;
        net.submit(bob_chain, &post)?;
        nts.push((side, key, chain, nt));
    }
    // Phase 3: each proves its transfer in the first BoB block after the
    // BoB holds its block as final — both in the same block when they are
    // final together, as the embedded `swap` does (attack R4-16: proving
    // one side after the other missed the receiver's window when the BoB
    // keeps a header provable for one block only, κ_i = k + 1).
    let k = spec.finality.confirmations() as u64;
    let mut left: Vec<_> = nts.into_iter().map(|(side, key, chain, nt)| (side, key, chain, nt, None)).collect();
    let mut proving: Vec<SignedTransaction> = Vec::new();
    for _ in 0..MAX_WAIT {
        if left.is_empty() && proving.is_empty() {
            break;
        }
        net.epoch()?;
        for pt in proving.drain(..) {
            let r = net
                .receipt(bob_chain, &pt.hash())?
                .ok_or_else(|| anyhow!("BoB transaction {} not included", pt.hash()))?;
            if let TxStatus::Reverted(why) = &r.status {
                bail!("the BoB refused prove: {why}");
            }
        }
        let mut still = Vec::new();
        for (side, key, chain, nt, mut found) in left {
            if found.is_none() {
                found = net.tx_proof(chain, &nt.hash())?;
            }
            match found {
                Some((height, proof)) if bob_tip(&mut net.group(net.spec.bob_chain())?.0[0], chain)? >= height + k => {
                    let pt = net.bob_call(key, "prove", &ProofTx { cct: id, side, nt, height, proof }, 0)?;
                    net.submit(bob_chain, &pt)?;
                    proving.push(pt);
                }
                found => still.push((side, key, chain, nt, found)),
            }
        }
        left = still;
    }
    anyhow::ensure!(
        left.is_empty() && proving.is_empty(),
        "the native transfers were not proved within {MAX_WAIT} epochs"
    );
    let rec: CctRecord = net.record(&bob::keys::cct(&id))?.ok_or_else(|| anyhow!("no CCT record"))?;
    if rec.complete {
        // No proof counts for it any more: each nonce its payment spent is
        // free again (attack R11-3; both sides proved here, so both are).
        let spent_i = net.nonce(chain_i, &sender.address())? > signed_terms.nonce_i;
        let spent_j = net.nonce(chain_j, &receiver.address())? > signed_terms.nonce_j;
        wallet.release_spent(&signed_terms, |chain, _, _| if chain == chain_i { spent_i } else { spent_j })?;
    }
    let after = [
        net.balance(chain_i, &sender.address())?,
        net.balance(chain_i, &receiver.address())?,
        net.balance(chain_j, &sender.address())?,
        net.balance(chain_j, &receiver.address())?,
    ];
    let wall = started.elapsed().as_secs_f64();
    let (_, _, pids) = net.report()?;
    drop(net);
    Ok(json!({
        "record": rec,
        "x_i": rec.x_i.to_string(),
        "bounds": [min_x_i.to_string(), max_x_i.to_string()],
        "balances": {
            "sender_i": [before[0].to_string(), after[0].to_string()],
            "receiver_i": [before[1].to_string(), after[1].to_string()],
            "sender_j": [before[2].to_string(), after[2].to_string()],
            "receiver_j": [before[3].to_string(), after[3].to_string()],
        },
        "processes": pids,
        "driver_pid": std::process::id(),
        "wall_s": wall,
    }))
}

/// `[min_x_i, max_x_i]` around `quote`: ± `bps` basis points, rounded
/// outwards, at least 1 (as `BobMbs::x_i_bounds`).
fn slippage_bounds(quote: u128, bps: u32) -> (u128, u128) {
    let tol = quote.saturating_mul(bps as u128).div_ceil(10_000);
    (quote.saturating_sub(tol).max(1), quote.saturating_add(tol))
}

/// The hash of the header the BoB process keeps for `chain` at `h`, if any.
fn stored_header_hash(bob: &mut ChainProc, chain: u32, h: Height) -> anyhow::Result<Option<Hash32>> {
    let v = bob.call(json!({ "op": "record", "key": hex::encode(bob::keys::header(chain, h)) }))?;
    v["value"]
        .as_str()
        .map(|r| Ok(borsh::from_slice::<gridledger_ledger::BlockHeader>(&hex::decode(r)?)?.hash()))
        .transpose()
}

/// The chain process's sealed header at `h` (at most its height).
fn own_header(c: &mut ChainProc, h: Height) -> anyhow::Result<SealedHeader> {
    let v = c.call(json!({ "op": "header", "height": h }))?;
    let hx = v["header"].as_str().ok_or_else(|| anyhow!("{}: no header at {h}", c.name()))?;
    Ok(borsh::from_slice(&hex::decode(hx)?)?)
}

/// The BoB process's stored tip of `chain` (height and hash; none until relayed).
fn stored_tip(bob: &mut ChainProc, chain: u32) -> anyhow::Result<Option<(Height, Hash32)>> {
    let v = bob.call(json!({ "op": "record", "key": hex::encode(bob::keys::tip(chain)) }))?;
    v["value"].as_str().map(|t| Ok(borsh::from_slice::<(Height, Hash32)>(&hex::decode(t)?)?)).transpose()
}

/// The BoB process's stored tip of `chain` (the anchor, 0, until relayed).
fn bob_tip(bob: &mut ChainProc, chain: u32) -> anyhow::Result<Height> {
    Ok(stored_tip(bob, chain)?.map_or(0, |t| t.0))
}
