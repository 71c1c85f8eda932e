//! Attack round 21 on CTP-FL (issue 16): the client's recode check of
//! round 20's fix (`AssemblyFault::RecodeMismatch`: a client recodes the
//! global fragment it decoded and refuses one that does not give the
//! committed root, then decodes nothing more under that root).
//!
//! Questions asked, all held up (passing tests):
//! - Under a genuine root, can a Byzantine node and a Byzantine client
//!   that send their hostile mini-fragments first (before the root, up to
//!   their quota; after it, a genuine-looking release of other bytes in
//!   the same context, altered values, another round's release) make an
//!   honest client decode those, so that its recode fails and it refuses
//!   the genuine model for good? No: every hostile mini-fragment is
//!   refused against its sender, the client decodes the genuine fragment
//!   and records no `RecodeMismatch`.
//! - Under a mixed root (round 20's premise, outside the enclave trust
//!   model), is the recode run once per root, or once per further
//!   mini-fragment (a flood of answers times one `release` each)? Once:
//!   one `RecodeMismatch`, and the rest of the mini-fragments (the whole
//!   C2C flood) decode nothing more.
//!
//! - End to end (K = 4, C = 7, 30 % Byzantine clients, one Byzantine
//!   node): two Byzantine clients flood every other client, from their
//!   first step and on every later one, with mini-fragments of another
//!   release in the round's own context, altered copies and their genuine
//!   forwards, while Byzantine node 0 alters every mini-fragment it sends.
//!   Every honest client decodes the one trimmed mean of the committed
//!   view, none records a `RecodeMismatch`, and no refusal names an honest
//!   node or client.
//!
//! `cargo test -p gridledger-fl --test attack_recode_r21`.

mod common;

use common::*;
use gridledger_core::codec::{hash_parts, Tag};
use gridledger_core::Hash32;
use gridledger_fl::consensus::{ChainConfig, Fault, Message};
use gridledger_fl::dissemination::{AssemblyFault, ClientAssembler, GlobalCoder, GlobalRelease, MiniFragment, Source};
use gridledger_fl::round::ClientBehaviour;
use gridledger_sim::{Adversary, Dest, NetConfig, Time};
use rand_chacha::ChaCha8Rng;

const NODES: usize = 4;
const CLIENTS: usize = 4;
const ROUND: u32 = 3;
const CHAIN: u32 = 0;
const LEN: usize = 200;

fn coder() -> GlobalCoder {
    GlobalCoder::for_chain(LEN, NODES, CLIENTS).unwrap()
}

fn instance() -> Hash32 {
    Hash32([0x21; 32])
}

fn genuine() -> Vec<u8> {
    (0..LEN).map(|i| (i * 7 % 251) as u8).collect()
}

fn other() -> Vec<u8> {
    vec![0x55; LEN]
}

/// All mini-fragments node `k` derives from its subfragment of `rel`
/// under `root`.
fn minis(coder: &GlobalCoder, rel: &GlobalRelease, root: &Hash32, k: usize) -> Vec<MiniFragment> {
    coder.mini_fragments(k, root, &rel.subfragments[k]).unwrap()
}

fn refused_from(faults: &[AssemblyFault]) -> Vec<Source> {
    faults
        .iter()
        .filter_map(|f| match f {
            AssemblyFault::Refused { from, .. } => Some(*from),
            _ => None,
        })
        .collect()
}

fn mismatches(faults: &[AssemblyFault]) -> usize {
    faults.iter().filter(|f| matches!(f, AssemblyFault::RecodeMismatch { .. })).count()
}

/// Held up: hostile mini-fragments first do not make an honest client
/// refuse the genuine root. K = 4 (f = 1, any 2 subfragments decode),
/// C = 4 (f_cli = 1). Byzantine node 0 and Byzantine client 1 send client
/// 0, before the root and after it, mini-fragments of a release of other
/// bytes in the same context (every one with well-formed Merkle paths), of
/// another round's genuine release, and with altered values; then the
/// honest nodes 2 and 3 answer client 0 (its own and the next clients'
/// mini-fragments) and honest client 2 forwards its own.
#[test]
fn hostile_mini_fragments_first_do_not_make_a_client_refuse_the_genuine_root() {
    let coder = coder();
    let good = coder.release(instance(), CHAIN, ROUND, &genuine()).unwrap();
    let bad = coder.release(instance(), CHAIN, ROUND, &other()).unwrap();
    let stale = coder.release(instance(), CHAIN, ROUND - 1, &genuine()).unwrap();
    let mut client = ClientAssembler::new(0, ROUND, vec![coder.clone()]);
    let mut faults = Vec::new();

    // Node 0 (Byzantine): its own subfragment of the other release,
    // to client 0 and the next ones (a resync answer's shape), and altered
    // copies: up to its quota before the root is known.
    let mut hostile_node: Vec<MiniFragment> = minis(&coder, &bad, &bad.root, 0);
    let mut altered = minis(&coder, &good, &good.root, 0);
    for mf in &mut altered {
        mf.values[0] += blstrs::Scalar::from(1u64);
    }
    hostile_node.extend(altered);
    // Client 1 (Byzantine): forwards "its own" mini-fragment of every node,
    // from the other release and from the previous round's.
    let mut hostile_client: Vec<MiniFragment> = Vec::new();
    for k in 0..NODES {
        hostile_client.push(minis(&coder, &bad, &bad.root, k)[1].clone());
        hostile_client.push(minis(&coder, &stale, &stale.root, k)[1].clone());
    }
    for mf in &hostile_node {
        faults.extend(client.on_mini(Source::Node(0), mf.clone()).faults);
    }
    for mf in &hostile_client {
        faults.extend(client.on_mini(Source::Client(1), mf.clone()).faults);
    }
    let step = client.set_root(CHAIN, good.root);
    faults.extend(step.faults);
    assert!(step.decoded.is_empty());
    // And again after the root.
    for mf in &hostile_node {
        faults.extend(client.on_mini(Source::Node(0), mf.clone()).faults);
    }
    for mf in &hostile_client {
        faults.extend(client.on_mini(Source::Client(1), mf.clone()).faults);
    }
    assert_eq!(client.fragment(CHAIN), None, "decoded from hostile mini-fragments alone");
    // Honest nodes 2 and 3 answer, honest client 2 forwards its own.
    let mut decoded = Vec::new();
    for k in [2usize, 3] {
        for mf in minis(&coder, &good, &good.root, k) {
            if mf.client == 1 {
                continue; // Byzantine client 1 forwards nothing genuine.
            }
            let s = client.on_mini(Source::Node(k), mf);
            decoded.extend(s.decoded);
            faults.extend(s.faults);
        }
    }
    assert_eq!(decoded, vec![CHAIN], "faults: {faults:?}");
    assert_eq!(client.fragment(CHAIN), Some(&genuine()[..]));
    assert_eq!(mismatches(&faults), 0, "{faults:?}");
    assert!(
        refused_from(&faults).iter().all(|s| matches!(s, Source::Node(0) | Source::Client(1))),
        "an honest sender blamed: {faults:?}"
    );
    assert!(faults.iter().all(|f| matches!(f, AssemblyFault::Refused { .. })), "{faults:?}");
}

/// Round 20's mixed root: subfragments 0 and 1 of release `x`, 2 and 3 of
/// release `y` (same context and length), every one verifying under `M`.
fn mixed(coder: &GlobalCoder) -> (Hash32, Vec<Vec<MiniFragment>>) {
    let x = coder.release(instance(), CHAIN, ROUND, &genuine()).unwrap();
    let y = coder.release(instance(), CHAIN, ROUND, &other()).unwrap();
    let node = |l: &Hash32, r: &Hash32| hash_parts(Tag::MERKLE_NODE, &[&l.0, &r.0]);
    let n01 = x.subfragments[2].proof.siblings[1];
    let n23 = y.subfragments[0].proof.siblings[1];
    let root = node(&n01, &n23);
    let mut subs: Vec<_> = x.subfragments[..2].iter().chain(&y.subfragments[2..]).cloned().collect();
    for sf in &mut subs {
        sf.proof.siblings[1] = if sf.node < 2 { n23 } else { n01 };
    }
    let minis = subs.iter().map(|sf| coder.mini_fragments(sf.node, &root, sf).unwrap()).collect();
    (root, minis)
}

/// Held up: under a mixed root the recode runs once. Client 0 gets every
/// node's every mini-fragment, and every client's forward of each (the
/// whole C2C exchange, three times over: a flood of answers): exactly one
/// `RecodeMismatch`, no fragment, and nothing blamed on any sender.
#[test]
fn a_mixed_root_is_recoded_once_however_many_mini_fragments_follow() {
    let coder = coder();
    let (root, minis) = mixed(&coder);
    let mut client = ClientAssembler::new(0, ROUND, vec![coder.clone()]);
    let _ = client.set_root(CHAIN, root);
    let mut faults = Vec::new();
    for _ in 0..3 {
        for (k, ms) in minis.iter().enumerate() {
            for mf in ms {
                faults.extend(client.on_mini(Source::Node(k), mf.clone()).faults);
                faults.extend(client.on_mini(Source::Client(mf.client), mf.clone()).faults);
            }
        }
    }
    assert_eq!(client.fragment(CHAIN), None);
    assert_eq!(mismatches(&faults), 1, "{faults:?}");
    assert!(refused_from(&faults).is_empty(), "a sender blamed for a mini-fragment that verifies: {faults:?}");
}

/// A Byzantine client (simulator id `nodes + me`): runs the honest code,
/// and to everything it sends adds, for every other client, its own
/// mini-fragment of every node from a release of other bytes in the
/// round's context (valid Merkle paths under that release's root) for
/// every honest client (on each of its first [`FLOODS`] steps), and an
/// altered copy of each genuine forward it makes.
struct FloodOtherRelease {
    nodes: usize,
    hostile: Vec<MiniFragment>,
    /// The honest clients it floods (not its Byzantine peer, which would
    /// answer each flood with another: an adversaries' loop, not a test).
    targets: Vec<usize>,
    /// Floods sent so far (one per step, at most [`FLOODS`]).
    floods: usize,
}

/// How many of its steps a flooding client adds the flood to.
const FLOODS: usize = 200;

impl FloodOtherRelease {
    fn new(cfg: &ChainConfig, me: usize, targets: Vec<usize>) -> Self {
        let y = cfg.release(&[0x37; DIMS * 4]).unwrap();
        let hostile = (0..cfg.nodes)
            .map(|k| cfg.global.mini_fragments(k, &y.root, &y.subfragments[k]).unwrap()[me].clone())
            .collect();
        Self { nodes: cfg.nodes, hostile, targets, floods: 0 }
    }
}

impl Adversary<P> for FloodOtherRelease {
    fn tamper(&mut self, _: Time, sends: Vec<(Dest, Message)>, _: &mut ChaCha8Rng) -> Vec<(Dest, Message)> {
        let mut out = Vec::new();
        for (d, m) in sends {
            if let Message::Mini { from_node: false, mf } = &m {
                let mut bad = mf.clone();
                bad.values[0] += blstrs::Scalar::from(3u64);
                out.push((d, Message::Mini { from_node: false, mf: bad }));
            }
            out.push((d, m));
        }
        if self.floods >= FLOODS {
            return out;
        }
        self.floods += 1;
        for &c in &self.targets {
            for mf in &self.hostile {
                out.push((Dest::One((self.nodes + c) as u32), Message::Mini { from_node: false, mf: mf.clone() }));
            }
        }
        out
    }
}

#[test]
fn byzantine_clients_flooding_another_release_do_not_stop_or_split_honest_clients() {
    for seed in [1u64] {
        let (nodes, clients) = (4usize, 7usize);
        let cfg = config(nodes, clients, 2);
        let byz = [5usize, 6];
        let honest: Vec<usize> = (0..clients).filter(|c| !byz.contains(c)).collect();
        let mut adversaries: Vec<(usize, Box<dyn Adversary<P>>)> = vec![(0, Box::new(AlterMinis))];
        for &c in &byz {
            adversaries.push((nodes + c, Box::new(FloodOtherRelease::new(&cfg, c, honest.clone()))));
        }
        let r = run_custom(
            seed,
            cfg.clone(),
            NetConfig::reliable(nodes + clients, 6),
            vec![ClientBehaviour::Honest; clients],
            adversaries,
            &honest,
            8_000,
        );
        r.debug_trace();
        if let Err(e) = round_succeeded(&r, &honest, |c| model(c as usize), 2) {
            panic!("seed {seed}: {e}");
        }
        let honest_ids: Vec<u32> = honest.iter().map(|&c| (nodes + c) as u32).collect();
        let mut refused = 0;
        for (_, at, f) in &r.sim.faults {
            if !honest_ids.contains(at) {
                continue;
            }
            match f {
                Fault::Dissemination(AssemblyFault::RecodeMismatch { .. }) => {
                    panic!("seed {seed}: honest client {at} refused the genuine root: {f:?}")
                }
                Fault::Dissemination(AssemblyFault::Refused { from, .. }) => {
                    refused += 1;
                    assert!(
                        matches!(from, Source::Node(0)) || matches!(from, Source::Client(c) if byz.contains(c)),
                        "seed {seed}: honest sender blamed at {at}: {f:?}"
                    );
                }
                _ => {}
            }
        }
        assert!(refused > 0, "seed {seed}: the flood was never refused (did it run?)");
    }
}
