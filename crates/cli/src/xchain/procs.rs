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
//! closes, so a driver that dies leaves no process behind. Without
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
//! node's business, not this demonstration's). Only `up` runs split;
//! `swap`, `migrate` and `ccdi` drive the protocols' participants through
//! [`BobMbs`], which holds its chains in one process (the embedded default
//! of the issue).
//!
//! [`BobMbs`]: gridledger_xchain::BobMbs
//! [`BobMbs::tick`]: gridledger_xchain::BobMbs::tick
//! [`Replica`]: gridledger_xchain::replica::Replica

use anyhow::{anyhow, bail, Context};
use gridledger_core::{Address, Hash32, Height};
use gridledger_ledger::state::{contract_key, StateRead};
use gridledger_ledger::SignedTransaction;
use gridledger_ledger::{Block, Seal};
use gridledger_xchain::bob::{self, Relay, BOB_CONTRACT_ID, MAX_RELAY_BATCH};
use gridledger_xchain::mbs::{open_chain, pin_genesis_time, relay_tx, relayer_key, Role};
use gridledger_xchain::replica::Replica;
use gridledger_xchain::threshold::BobCommittee;
use gridledger_xchain::{BobConfig, EmbeddedChain, SealedHeader};
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{ServeChainArgs, ShapeArgs, UpArgs};

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

fn hex_arg(req: &Value, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = req[name].as_str().ok_or_else(|| anyhow!("missing {name}"))?;
    hex::decode(s).with_context(|| format!("{name} is not hex"))
}

/// `gridledger xchain serve-chain`: one chain of a BoB-MBS in this process
/// — the whole chain with every validator's key, or with `--validator V`
/// one validator's replica holding only that key.
pub fn serve(a: ServeChainArgs) -> anyhow::Result<()> {
    let spec = a.shape.spec();
    let role = role_of(&a.role, spec.chains)?;
    let dir = a.shape.dir.clone().ok_or_else(|| anyhow!("serve-chain needs --dir"))?;
    let (chain, config) =
        open_chain(&dir, &spec, role).with_context(|| format!("opening {} in {}", role.dir_name(), dir.display()))?;
    match a.validator {
        None => {
            let mut chain = chain;
            serve_lines(|op, req| chain_op(&mut chain, &config, op, req))
        }
        Some(v) => {
            anyhow::ensure!(
                (v as usize) < chain.chain().genesis().validators.len(),
                "--validator {v}: {} has {} validators",
                role.dir_name(),
                chain.chain().genesis().validators.len()
            );
            let mut r = Replica::new(chain, v as usize)?;
            serve_lines(|op, req| validator_op(&mut r, &config, op, req))
        }
    }
}

/// Binds a loopback port, prints `listening <port>`, takes the driver's
/// connection and answers its requests with `handle` until `stop` or the
/// end of the connection.
fn serve_lines(mut handle: impl FnMut(&str, &Value) -> anyhow::Result<Value>) -> anyhow::Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a loopback port")?;
    let port = listener.local_addr()?.port();
    {
        let mut out = std::io::stdout().lock();
        writeln!(out, "listening {port}")?;
        out.flush()?;
    }
    let (stream, _) = listener.accept().context("waiting for the driver")?;
    drop(listener);
    let mut reader = BufReader::new(stream.try_clone()?);
    let mut writer = stream;
    while let Some(line) = read_line(&mut reader)? {
        let line = match line {
            Ok(l) => l,
            Err(e) => {
                writeln!(writer, "{}", json!({ "error": e.to_string() }))?;
                writer.flush()?;
                continue;
            }
        };
        let req: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                writeln!(writer, "{}", json!({ "error": format!("not JSON: {e}") }))?;
                continue;
            }
        };
        let op = req["op"].as_str().unwrap_or("").to_string();
        let answer = if op == "stop" { Ok(json!({ "stopped": true })) } else { handle(&op, &req) };
        let reply = match answer {
            Ok(v) => json!({ "ok": v }),
            Err(e) => json!({ "error": format!("{e:#}") }),
        };
        writeln!(writer, "{reply}")?;
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
        "record" => {
            let key = hex_arg(req, "key")?;
            let v = chain.state().get(&contract_key(BOB_CONTRACT_ID, &key));
            json!({ "value": v.map(hex::encode) })
        }
        "nonce" => {
            let a: Address = borsh::from_slice(&hex_arg(req, "address")?)?;
            json!({ "nonce": chain.next_nonce(&a) })
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
            .args(["--kappa", &shape.kappa.to_string(), "--genesis-time", &genesis_time.to_string(), "--dir"])
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
        let r = self.exchange(req);
        if r.is_err() {
            self.failed = true;
        }
        r
    }

    fn exchange(&mut self, req: Value) -> anyhow::Result<Value> {
        writeln!(self.writer, "{req}").and_then(|_| self.writer.flush()).map_err(|e| self.io_error(e))?;
        let line = read_line(&mut self.reader)
            .map_err(|e| self.io_error(e))?
            .ok_or_else(|| anyhow!("the process of {} closed its connection", self.name()))?
            .map_err(|e| anyhow!("the process of {} answered {e}", self.name()))?;
        let v: Value = serde_json::from_str(&line)?;
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => bail!("{}: {}", self.name(), v["error"].as_str().unwrap_or("malformed answer")),
        }
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

/// One chain's validator processes, validator `i` at index `i`.
struct Group(Vec<ChainProc>);

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

    /// One block: the scheduled leader of the next height proposes; on a
    /// deterministic chain the first 2f+1 validators (in index order) each
    /// re-execute it and sign their commit vote; every validator checks the
    /// seal and commits. No process signs for another.
    fn epoch(&mut self) -> anyhow::Result<Height> {
        let st = self.0[0].call(json!({ "op": "status" }))?;
        let next = st["height"].as_u64().ok_or_else(|| anyhow!("{}: no height", self.0[0].name()))? + 1;
        let quorum = st["quorum"].as_u64().unwrap_or(1) as usize;
        let leader = (next % self.0.len() as u64) as usize;
        let proposal = self.0[leader].call(json!({ "op": "propose" }))?["block"].clone();
        let mut block: Block = borsh::from_slice(&hex::decode(proposal.as_str().unwrap_or_default())?)?;
        if let Seal::Quorum { view, .. } = block.seal {
            let mut signatures = Vec::with_capacity(quorum);
            for p in self.0.iter_mut().take(quorum) {
                let v = p.call(json!({ "op": "vote", "block": proposal }))?;
                let index = v["index"].as_u64().ok_or_else(|| anyhow!("{}: no vote index", p.name()))? as u32;
                let sig = borsh::from_slice(&hex::decode(v["signature"].as_str().unwrap_or_default())?)?;
                signatures.push((index, sig));
            }
            block.seal = Seal::Quorum { view, signatures };
        }
        let sealed = hex::encode(borsh::to_vec(&block)?);
        self.send_all(json!({ "op": "commit", "block": sealed }))?;
        Ok(next)
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

/// `gridledger xchain up --processes`: one process per validator of the
/// BoB and of every external chain.
pub fn up(a: &UpArgs) -> anyhow::Result<Value> {
    let spec = a.shape.spec();
    let (root, _tmp) = match &a.shape.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    // Every chain of the deployment has the same genesis time (recorded in
    // the root, so a later `up --dir` resumes the same deployment).
    let spec = pin_genesis_time(&root, spec)?;
    let gt = spec.genesis_time;
    let timeout = Duration::from_secs(a.chain_timeout);
    let mut all = All(Vec::new());
    let roles: Vec<(Role, usize)> = std::iter::once((Role::Bob, spec.bob_validators))
        .chain((0..spec.chains).map(|n| (Role::External(n), spec.validators)))
        .collect();
    for (role, n) in roles {
        let mut g = Group(Vec::new());
        for v in 0..n {
            // Pushed one by one, so a failed start stops those already running.
            let p = ChainProc::spawn(&a.shape, gt, &root, role, v, timeout);
            match p {
                Ok(p) => g.0.push(p),
                Err(e) => {
                    all.0.push(g);
                    return Err(e);
                }
            }
        }
        all.0.push(g);
    }
    let relayer = relayer_key();
    let relayer_addr = hex::encode(borsh::to_vec(&relayer.address())?);
    for _ in 0..a.epochs {
        let (bob, externals) = all.0.split_first_mut().ok_or_else(|| anyhow!("no BoB processes"))?;
        for c in externals.iter_mut() {
            c.epoch()?;
        }
        let mut nonce = bob.0[0].u64_of(json!({ "op": "nonce", "address": relayer_addr }), "nonce")?;
        for c in externals.iter_mut() {
            let chain = c.role().chain_id();
            let stored = bob_tip(&mut bob.0[0], chain)?;
            let height = c.0[0].u64_of(json!({ "op": "status" }), "height")?;
            // The BoB stores at most `relay_per_block` headers per block.
            let height = height.min(stored + bob::relay_per_block(spec.kappa, spec.finality.confirmations()));
            let mut h = stored + 1;
            while h <= height {
                let end = (h + MAX_RELAY_BATCH as u64 - 1).min(height);
                let mut headers = Vec::new();
                for x in h..=end {
                    let v = c.0[0].call(json!({ "op": "header", "height": x }))?;
                    let bytes = hex::decode(v["header"].as_str().unwrap_or_default())?;
                    headers.push(borsh::from_slice(&bytes)?);
                }
                let tx = relay_tx(&relayer, nonce, &Relay { chain, headers });
                bob.send_all(json!({ "op": "submit", "tx": hex::encode(tx.to_bytes()) }))?;
                nonce += 1;
                h = end + 1;
            }
        }
        bob.epoch()?;
    }
    let (bob, externals) = all.0.split_first_mut().ok_or_else(|| anyhow!("no BoB processes"))?;
    let mut pids = Vec::new();
    let mut bob_status = Value::Null;
    for p in &mut bob.0 {
        let s = p.call(json!({ "op": "status" }))?;
        pids.push(json!({ "role": "bob", "validator": s["validator"], "pid": s["pid"] }));
        bob_status = s;
    }
    let mut chains = Vec::new();
    for c in externals.iter_mut() {
        let chain = c.role().chain_id();
        let mut first = Value::Null;
        let mut heights = Vec::new();
        let name = c.role().dir_name();
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
    let committee =
        BobCommittee::dev(spec.bob_validators, spec.committee_seed).map_err(|e| anyhow!("threshold key: {e}"))?;
    drop(all);
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

/// The BoB process's stored tip of `chain` (the anchor, 0, until relayed).
fn bob_tip(bob: &mut ChainProc, chain: u32) -> anyhow::Result<Height> {
    let v = bob.call(json!({ "op": "record", "key": hex::encode(bob::keys::tip(chain)) }))?;
    match v["value"].as_str() {
        None => Ok(0),
        Some(h) => Ok(borsh::from_slice::<(Height, Hash32)>(&hex::decode(h)?)?.0),
    }
}
