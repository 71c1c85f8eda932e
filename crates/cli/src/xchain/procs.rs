//! `gridledger xchain up --processes`: the BoB and every external chain
//! each in its own process, talking to the relaying driver over loopback
//! TCP (as `testnet` runs one process per PBFT validator).
//!
//! Each chain process (`gridledger xchain serve-chain`, hidden) opens its
//! chain alone with [`open_chain`] — the same chain `xchain up` keeps in
//! `<dir>/<chain>` — binds `127.0.0.1:0`, prints `listening <port>` on its
//! stdout (the driver's readiness signal) and answers one JSON request per
//! line: `tick`, `status`, `header`, `submit`, `record` (a BoB contract
//! record) and `nonce`; it exits on `stop` or when the driver's connection
//! closes, so a driver that dies leaves no chain behind.
//!
//! The driver is the relayer, a BoB node: each epoch every external chain
//! seals a block, the driver reads the headers the BoB has not stored from
//! each chain's process and sends them in `relay` transactions to the BoB's
//! process, which then seals its block — the epoch of [`BobMbs::tick`],
//! across processes.
//!
//! Decision: only `up` runs split; `swap`, `migrate` and `ccdi` drive the
//! protocols' participants through [`BobMbs`], which holds its chains in
//! one process (the embedded default of the issue).
//!
//! [`BobMbs`]: gridledger_xchain::BobMbs
//! [`BobMbs::tick`]: gridledger_xchain::BobMbs::tick

use anyhow::{anyhow, bail, Context};
use gridledger_core::{Address, Hash32, Height};
use gridledger_ledger::state::{contract_key, StateRead};
use gridledger_ledger::SignedTransaction;
use gridledger_xchain::bob::{self, Relay, BOB_CONTRACT_ID, MAX_RELAY_BATCH};
use gridledger_xchain::mbs::{open_chain, relay_tx, relayer_key, Role};
use gridledger_xchain::threshold::BobCommittee;
use serde_json::{json, Value};
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};

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

fn read_line<R: BufRead>(r: &mut R) -> anyhow::Result<Option<String>> {
    let mut buf = Vec::new();
    let n = std::io::Read::take(r, MAX_LINE as u64 + 1).read_until(b'\n', &mut buf)?;
    if n == 0 {
        return Ok(None);
    }
    anyhow::ensure!(buf.len() <= MAX_LINE, "a line of more than {MAX_LINE} bytes");
    Ok(Some(String::from_utf8(buf).context("a line that is not UTF-8")?))
}

fn hex_arg(req: &Value, name: &str) -> anyhow::Result<Vec<u8>> {
    let s = req[name].as_str().ok_or_else(|| anyhow!("missing {name}"))?;
    hex::decode(s).with_context(|| format!("{name} is not hex"))
}

/// `gridledger xchain serve-chain`: one chain of a BoB-MBS in this process.
pub fn serve(a: ServeChainArgs) -> anyhow::Result<()> {
    let spec = a.shape.spec();
    let role = role_of(&a.role, spec.chains)?;
    let dir = a.shape.dir.clone().ok_or_else(|| anyhow!("serve-chain needs --dir"))?;
    let (mut chain, config) =
        open_chain(&dir, &spec, role).with_context(|| format!("opening {} in {}", role.dir_name(), dir.display()))?;
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
        let req: Value = match serde_json::from_str(&line) {
            Ok(v) => v,
            Err(e) => {
                writeln!(writer, "{}", json!({ "error": format!("not JSON: {e}") }))?;
                continue;
            }
        };
        let op = req["op"].as_str().unwrap_or("").to_string();
        let answer = (|| -> anyhow::Result<Value> {
            Ok(match op.as_str() {
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
                "header" => {
                    let h: Height = req["height"].as_u64().ok_or_else(|| anyhow!("missing height"))?;
                    let sh = chain.sealed_header(h)?.ok_or_else(|| anyhow!("no header {h}"))?;
                    json!({ "header": hex::encode(borsh::to_vec(&sh)?) })
                }
                "submit" => {
                    let tx: SignedTransaction = borsh::from_slice(&hex_arg(&req, "tx")?)?;
                    json!({ "hash": chain.submit(&tx)? })
                }
                "record" => {
                    let key = hex_arg(&req, "key")?;
                    let v = chain.chain().state().get(&contract_key(BOB_CONTRACT_ID, &key));
                    json!({ "value": v.map(hex::encode) })
                }
                "nonce" => {
                    let a: Address = borsh::from_slice(&hex_arg(&req, "address")?)?;
                    json!({ "nonce": chain.next_nonce(&a) })
                }
                "stop" => json!({ "stopped": true }),
                other => bail!("unknown op {other:?}"),
            })
        })();
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

/// A chain process and the driver's connection to it.
struct ChainProc {
    role: Role,
    child: Child,
    reader: BufReader<TcpStream>,
    writer: TcpStream,
}

impl ChainProc {
    fn spawn(shape: &ShapeArgs, root: &Path, role: Role) -> anyhow::Result<Self> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.args(["xchain", "serve-chain", "--role"])
            .arg(match role {
                Role::Bob => "bob".to_string(),
                Role::External(n) => n.to_string(),
            })
            .args(["--chains", &shape.chains.to_string(), "--validators", &shape.validators.to_string()])
            .args(["--kappa", &shape.kappa.to_string(), "--dir"])
            .arg(root.join(role.dir_name()));
        if let Some(k) = shape.probabilistic {
            cmd.args(["--probabilistic", &k.to_string()]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("starting the process of {}", role.dir_name()))?;
        // Readiness: the child's first line names its port (EOF: it failed).
        let port = child
            .stdout
            .take()
            .and_then(|out| {
                let mut first = String::new();
                BufReader::new(out).read_line(&mut first).ok()?;
                first.trim().strip_prefix("listening ")?.parse::<u16>().ok()
            })
            .ok_or_else(|| anyhow!("the process of {} exited before listening", role.dir_name()));
        let port = match port {
            Ok(p) => p,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        let stream = TcpStream::connect(("127.0.0.1", port))
            .with_context(|| format!("connecting to {} on port {port}", role.dir_name()))?;
        Ok(Self { role, child, reader: BufReader::new(stream.try_clone()?), writer: stream })
    }

    fn call(&mut self, req: Value) -> anyhow::Result<Value> {
        writeln!(self.writer, "{req}")?;
        self.writer.flush()?;
        let line = read_line(&mut self.reader)?
            .ok_or_else(|| anyhow!("the process of {} closed its connection", self.role.dir_name()))?;
        let v: Value = serde_json::from_str(&line)?;
        match v.get("ok") {
            Some(ok) => Ok(ok.clone()),
            None => bail!("{}: {}", self.role.dir_name(), v["error"].as_str().unwrap_or("malformed answer")),
        }
    }

    fn u64_of(&mut self, req: Value, field: &str) -> anyhow::Result<u64> {
        let v = self.call(req)?;
        v[field].as_u64().ok_or_else(|| anyhow!("{}: no {field} in {v}", self.role.dir_name()))
    }
}

/// Every chain process; stops them (and waits) however the driver ends.
struct Procs(Vec<ChainProc>);

impl Drop for Procs {
    fn drop(&mut self) {
        for p in &mut self.0 {
            let _ = p.call(json!({ "op": "stop" }));
        }
        for p in &mut self.0 {
            // A stopped child exits at once; one that does not answer is killed.
            match p.child.try_wait() {
                Ok(Some(_)) => {}
                _ => {
                    let _ = p.writer.shutdown(std::net::Shutdown::Both);
                    let _ = p.child.wait();
                }
            }
        }
    }
}

/// `gridledger xchain up --processes`.
pub fn up(a: &UpArgs) -> anyhow::Result<Value> {
    let spec = a.shape.spec();
    let (root, _tmp) = match &a.shape.dir {
        Some(d) => (d.clone(), None),
        None => {
            let t = tempfile::tempdir()?;
            (t.path().to_path_buf(), Some(t))
        }
    };
    let mut procs = Procs(Vec::new());
    procs.0.push(ChainProc::spawn(&a.shape, &root, Role::Bob)?);
    for n in 0..spec.chains {
        procs.0.push(ChainProc::spawn(&a.shape, &root, Role::External(n))?);
    }
    let relayer = relayer_key();
    let relayer_addr = hex::encode(borsh::to_vec(&relayer.address())?);
    for _ in 0..a.epochs {
        let (bob, externals) = procs.0.split_first_mut().ok_or_else(|| anyhow!("no BoB process"))?;
        for c in externals.iter_mut() {
            c.call(json!({ "op": "tick" }))?;
        }
        let mut nonce = bob.u64_of(json!({ "op": "nonce", "address": relayer_addr }), "nonce")?;
        for c in externals.iter_mut() {
            let chain = c.role.chain_id();
            let stored = bob_tip(bob, chain)?;
            let height = c.u64_of(json!({ "op": "status" }), "height")?;
            let mut h = stored + 1;
            while h <= height {
                let end = (h + MAX_RELAY_BATCH as u64 - 1).min(height);
                let mut headers = Vec::new();
                for x in h..=end {
                    let v = c.call(json!({ "op": "header", "height": x }))?;
                    let bytes = hex::decode(v["header"].as_str().unwrap_or_default())?;
                    headers.push(borsh::from_slice(&bytes)?);
                }
                let tx = relay_tx(&relayer, nonce, &Relay { chain, headers });
                bob.call(json!({ "op": "submit", "tx": hex::encode(tx.to_bytes()) }))?;
                nonce += 1;
                h = end + 1;
            }
        }
        bob.call(json!({ "op": "tick" }))?;
    }
    let (bob, externals) = procs.0.split_first_mut().ok_or_else(|| anyhow!("no BoB process"))?;
    let bob_status = bob.call(json!({ "op": "status" }))?;
    let mut chains = Vec::new();
    let mut pids = vec![json!({ "role": "bob", "pid": bob_status["pid"] })];
    for c in externals.iter_mut() {
        let mut s = c.call(json!({ "op": "status" }))?;
        s["bob_stored_tip"] = json!(bob_tip(bob, c.role.chain_id())?);
        pids.push(json!({ "role": c.role.dir_name(), "pid": s["pid"] }));
        chains.push(s);
    }
    let committee =
        BobCommittee::dev(spec.bob_validators, spec.committee_seed).map_err(|e| anyhow!("threshold key: {e}"))?;
    drop(procs);
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
