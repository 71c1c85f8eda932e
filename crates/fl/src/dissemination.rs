//! B2C and C2C (thesis §7.3.2–7.3.3): the double erasure coding that
//! spreads a chain's global model fragment over its nodes and then over the
//! clients, and the clients' double decoding. Sans-IO: the types here turn
//! received messages into messages to send, decoded fragments and typed
//! faults; who sends what over which link is the driver's business.
//!
//! 1. The leader `L_b` (inside its enclave) codes the global fragment
//!    `f^g_b` into `K` subfragments (Eq 7.2; one cell per node of a
//!    [`CellCode`], any `T = f + 1` decode — [`GlobalCoder::for_chain`])
//!    — [`GlobalCoder::release`].
//! 2. Each node `N_k` codes its subfragment into `C` mini-fragments (any
//!    `C − f_cli` decode: the honest clients are the ones that forward) and
//!    sends mini-fragment `c` to client `c` — [`GlobalCoder::mini_fragments`].
//! 3. Client `c` forwards the mini-fragment it got from `N_k` to every other
//!    client, decodes `sf_k` from `C − f_cli` mini-fragments and `f^g_b`
//!    from `T` subfragments — [`ClientAssembler`].
//!
//! **What authenticates a mini-fragment** (decision; the seed binds the `K`
//! subfragments with the Merkle root `rh^g_b` of Eq 7.11 and is silent on
//! mini-fragments): the second coding is deterministic, so the leader
//! computes every node's mini-fragments too, and leaf `k` of the root is the
//! Merkle root over subfragment `k`'s mini-fragments. The root the chain
//! agrees on (PBFT, §7.4.2) then binds every mini-fragment: each carries
//! its proof into its subfragment's mini-tree and that mini-tree's proof
//! into `rh^g_b`, so a client checks any mini-fragment — from a node or
//! forwarded by another client — against the agreed root alone, and drops
//! forgeries as typed faults. Every leaf also binds the chain, round and
//! fragment byte length.
//!
//! **Why the first code decodes from `f + 1`** (decision). A chain's commit
//! certificate shows that `2f + 1` nodes verified their own subfragment
//! under the root, of which only `f + 1` are sure to be honest, and a
//! Byzantine leader may send its proposal to exactly those `2f + 1` (its
//! own and the other Byzantine nodes among them), whose Byzantine members
//! then serve nothing. Any first-code threshold above `f + 1` lets such a
//! leader commit a root no client can decode. The other remedy, a
//! retrieval step in which nodes lacking their subfragment fetch it before
//! voting, does not avoid it: the sources a certificate guarantees are
//! still `f + 1` honest nodes, so a node lacking its subfragment could
//! rebuild it only from `f + 1` (the same code), or only if every voter
//! held the whole release (`K` times the leader's upload). So the first
//! code takes rate `(f + 1)/K` (about twice the `B2C` bytes of
//! `K − f`) and any `f + 1` honest servers decode.
//!
//! The global fragment is not encrypted: every client is meant to read it.

use crate::cells::CellCode;
use crate::error::FlError;
use crate::field::{bytes_to_scalars, scalars_to_bytes, BYTES_PER_ELEMENT};
use crate::mutants::{self, Mutation};
use blstrs::Scalar;
use ff::Field;
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::{Hash32, MerkleProof, MerkleTree};
use std::collections::{BTreeMap, BTreeSet};

/// Domain tag of a global coder's parameter digest.
pub const GLOBAL_PARAMS: Tag = Tag("gridledger/fl-global-coder/v1");
/// Domain tag for a mini-fragment leaf.
pub const MINI_LEAF: Tag = Tag("gridledger/fl-mini-fragment/v1");
/// Domain tag for a subfragment leaf (over its mini-root).
pub const SUB_LEAF: Tag = Tag("gridledger/fl-global-subfragment/v1");

/// Where a global fragment belongs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct GlobalContext {
    /// The chain instance (`ChainConfig::instance`): which history of the
    /// chain the global fragment belongs to.
    pub instance: Hash32,
    pub chain: u32,
    pub round: u32,
    /// Byte length of the global fragment.
    pub byte_len: u32,
}

impl GlobalContext {
    fn bytes(&self) -> [u8; 44] {
        let mut b = [0u8; 44];
        b[..32].copy_from_slice(&self.instance.0);
        b[32..36].copy_from_slice(&self.chain.to_le_bytes());
        b[36..40].copy_from_slice(&self.round.to_le_bytes());
        b[40..].copy_from_slice(&self.byte_len.to_le_bytes());
        b
    }
}

fn mini_leaf(ctx: &GlobalContext, node: usize, client: usize, values: &[Scalar]) -> Hash32 {
    let mut b = ctx.bytes().to_vec();
    b.extend_from_slice(&(node as u64).to_le_bytes());
    b.extend_from_slice(&(client as u64).to_le_bytes());
    for v in values {
        b.extend_from_slice(&v.to_bytes_le());
    }
    hash_bytes(MINI_LEAF, &b)
}

fn sub_leaf(ctx: &GlobalContext, node: usize, mini_root: &Hash32) -> Hash32 {
    let mut b = ctx.bytes().to_vec();
    b.extend_from_slice(&(node as u64).to_le_bytes());
    b.extend_from_slice(&mini_root.0);
    hash_bytes(SUB_LEAF, &b)
}

/// `{e, sf^g_{b,k}, rh^g_b, mp_{b,k}}`: what the leader sends node `k`
/// (the enclave's attestation over the root travels in the consensus message).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GlobalSubfragment {
    pub ctx: GlobalContext,
    pub node: usize,
    pub values: Vec<Scalar>,
    pub proof: MerkleProof,
}

/// The leader's output: the root and one subfragment per node.
#[derive(Clone, Debug)]
pub struct GlobalRelease {
    pub root: Hash32,
    pub subfragments: Vec<GlobalSubfragment>,
}

/// `{e, mf^g_{b,k,c}}` with the proofs that tie it to `rh^g_b`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MiniFragment {
    pub ctx: GlobalContext,
    pub node: usize,
    pub client: usize,
    pub values: Vec<Scalar>,
    pub mini_root: Hash32,
    pub mini_proof: MerkleProof,
    pub sub_proof: MerkleProof,
}

/// The two codes of one chain's dissemination.
#[derive(Clone, Debug)]
pub struct GlobalCoder {
    nodes: usize,
    clients: usize,
    first: CellCode,
    second: CellCode,
}

impl GlobalCoder {
    /// Global fragments of up to `max_len` bytes; `nodes` nodes of which any
    /// `node_threshold` decode, `clients` clients of which any
    /// `client_threshold` decode a subfragment.
    pub fn new(
        max_len: usize,
        nodes: usize,
        node_threshold: usize,
        clients: usize,
        client_threshold: usize,
    ) -> Result<Self, FlError> {
        let k = max_len.div_ceil(BYTES_PER_ELEMENT).max(1);
        let first = CellCode::for_nodes(k, nodes, node_threshold)?;
        let second = CellCode::for_nodes(first.cell_size(), clients, client_threshold)?;
        Ok(Self { nodes, clients, first, second })
    }

    /// The coder of a chain of `nodes` nodes (`K ≥ 3f + 1`) and `clients`
    /// clients (`C ≥ 3 f_cli + 1`): any `f + 1` subfragments decode a
    /// global fragment — all a commit certificate guarantees honest holders
    /// of (module docs) — and any `C − f_cli` mini-fragments a subfragment
    /// (the honest clients are the ones that forward).
    pub fn for_chain(max_len: usize, nodes: usize, clients: usize) -> Result<Self, FlError> {
        let f = nodes.saturating_sub(1) / 3;
        let f_cli = clients.saturating_sub(1) / 3;
        Self::new(max_len, nodes, f + 1, clients, clients - f_cli)
    }

    pub fn nodes(&self) -> usize {
        self.nodes
    }

    pub fn clients(&self) -> usize {
        self.clients
    }

    pub fn max_len(&self) -> usize {
        self.first.k() * BYTES_PER_ELEMENT
    }

    /// How many subfragments decode a global fragment (the first code's
    /// cells needed).
    pub fn subfragments_needed(&self) -> usize {
        self.first.k().div_ceil(self.first.cell_size())
    }

    /// How many mini-fragments decode a subfragment (the second code's
    /// cells needed; at most `C − f_cli`, fewer where the cell size was
    /// rounded up to a power of two).
    pub fn minis_needed(&self) -> usize {
        self.second.k().div_ceil(self.second.cell_size())
    }

    /// A digest of both codes' parameters, bound into the chain instance
    /// (`ChainConfig::instance`).
    pub fn params_digest(&self) -> Hash32 {
        let mut b = Vec::new();
        for c in [&self.first, &self.second] {
            for n in [c.k(), c.n(), c.cells(), c.cell_size()] {
                b.extend_from_slice(&(n as u64).to_le_bytes());
            }
        }
        b.extend_from_slice(&(self.nodes as u64).to_le_bytes());
        b.extend_from_slice(&(self.clients as u64).to_le_bytes());
        hash_bytes(GLOBAL_PARAMS, &b)
    }

    fn minis_of(&self, values: &[Scalar]) -> Result<Vec<Vec<Scalar>>, FlError> {
        let mut cells = self.second.encode(values)?;
        cells.truncate(self.clients);
        Ok(cells)
    }

    fn mini_tree(&self, ctx: &GlobalContext, node: usize, minis: &[Vec<Scalar>]) -> MerkleTree {
        let leaves: Vec<Hash32> = minis.iter().enumerate().map(|(c, v)| mini_leaf(ctx, node, c, v)).collect();
        MerkleTree::new(&leaves)
    }

    /// Leader, step 1: code `fragment` into `K` subfragments with the root.
    /// Every leaf binds the chain `instance`, chain and round, so a root of
    /// another chain history verifies no subfragment of this one.
    pub fn release(&self, instance: Hash32, chain: u32, round: u32, fragment: &[u8]) -> Result<GlobalRelease, FlError> {
        if fragment.len() > self.max_len() {
            return Err(FlError::WrongLength { expected: self.max_len(), got: fragment.len() });
        }
        let ctx = GlobalContext { instance, chain, round, byte_len: fragment.len() as u32 };
        let mut coeffs = bytes_to_scalars(fragment);
        coeffs.resize(self.first.k(), Scalar::ZERO);
        let mut subs = self.first.encode(&coeffs)?;
        subs.truncate(self.nodes);
        let mut leaves = Vec::with_capacity(self.nodes);
        for (k, values) in subs.iter().enumerate() {
            let minis = self.minis_of(values)?;
            leaves.push(sub_leaf(&ctx, k, &self.mini_tree(&ctx, k, &minis).root()));
        }
        let tree = MerkleTree::new(&leaves);
        let subfragments = subs
            .into_iter()
            .enumerate()
            .map(|(node, values)| {
                let proof = tree.proof(node).ok_or(FlError::Malformed("missing Merkle leaf"))?;
                Ok(GlobalSubfragment { ctx, node, values, proof })
            })
            .collect::<Result<Vec<_>, FlError>>()?;
        Ok(GlobalRelease { root: tree.root(), subfragments })
    }

    /// Node `node`, step 2: check the subfragment against the agreed root
    /// and code it into one mini-fragment per client.
    pub fn mini_fragments(
        &self,
        node: usize,
        root: &Hash32,
        sf: &GlobalSubfragment,
    ) -> Result<Vec<MiniFragment>, FlError> {
        if sf.node != node || node >= self.nodes {
            return Err(FlError::PositionOutOfRange { index: sf.node, len: self.nodes });
        }
        if sf.values.len() != self.first.cell_size() {
            return Err(FlError::WrongLength { expected: self.first.cell_size(), got: sf.values.len() });
        }
        if sf.ctx.byte_len as usize > self.max_len() {
            return Err(FlError::WrongLength { expected: self.max_len(), got: sf.ctx.byte_len as usize });
        }
        let minis = self.minis_of(&sf.values)?;
        let tree = self.mini_tree(&sf.ctx, node, &minis);
        let mini_root = tree.root();
        let proof_ok = sf.proof.index == node as u64
            && sf.proof.leaf_count == self.nodes as u64
            && sf.proof.verify(&sub_leaf(&sf.ctx, node, &mini_root), root);
        if !proof_ok && !mutants::active(Mutation::RootUnchecked) {
            return Err(FlError::MerkleProofFailed { node, client: None });
        }
        minis
            .into_iter()
            .enumerate()
            .map(|(client, values)| {
                let mini_proof = tree.proof(client).ok_or(FlError::Malformed("missing Merkle leaf"))?;
                Ok(MiniFragment {
                    ctx: sf.ctx,
                    node,
                    client,
                    values,
                    mini_root,
                    mini_proof,
                    sub_proof: sf.proof.clone(),
                })
            })
            .collect()
    }

    /// Node `node`'s own subfragment under `root`, rebuilt from others'
    /// (a node that never received its own from the leader; see
    /// "Re-proposed roots" in `consensus`): each of `subs` must verify
    /// under `root` (length, context and Merkle proof), at least
    /// [`Self::subfragments_needed`] of distinct nodes decode the global
    /// fragment, and its recoding must give `root` again — so the result
    /// is exactly the subfragment the leader's release holds for `node`,
    /// with its Merkle proof.
    pub fn recover_subfragment(
        &self,
        root: &Hash32,
        subs: &[GlobalSubfragment],
        node: usize,
    ) -> Result<GlobalSubfragment, FlError> {
        if node >= self.nodes {
            return Err(FlError::PositionOutOfRange { index: node, len: self.nodes });
        }
        let mut ctx: Option<GlobalContext> = None;
        let mut cells: BTreeMap<usize, &[Scalar]> = BTreeMap::new();
        for sf in subs {
            self.mini_fragments(sf.node, root, sf)?;
            if ctx.is_some_and(|c| c != sf.ctx) {
                return Err(FlError::Malformed("subfragments of one root in two contexts"));
            }
            ctx = Some(sf.ctx);
            cells.insert(sf.node, &sf.values);
        }
        let need = self.subfragments_needed();
        let Some(ctx) = ctx.filter(|_| cells.len() >= need) else {
            return Err(FlError::Undecodable { need, have: cells.len() });
        };
        let cells: Vec<(usize, &[Scalar])> = cells.into_iter().collect();
        let coeffs = self.first.decode(&cells)?;
        let len = ctx.byte_len as usize;
        let used = len.div_ceil(BYTES_PER_ELEMENT);
        if coeffs.len() < used || coeffs[used..].iter().any(|c| !bool::from(c.is_zero())) {
            return Err(FlError::Malformed("coefficients beyond the fragment length"));
        }
        let bytes = scalars_to_bytes(&coeffs[..used], len)?;
        let release = self.release(ctx.instance, ctx.chain, ctx.round, &bytes)?;
        if release.root != *root {
            return Err(FlError::MerkleProofFailed { node, client: None });
        }
        release.subfragments.into_iter().nth(node).ok_or(FlError::PositionOutOfRange { index: node, len: self.nodes })
    }

    /// Anyone, before the root is known: can `mf` be a mini-fragment of
    /// this coder at all — an existing node and client, one second-code
    /// cell of values, and Merkle paths no longer than the mini-tree
    /// (`C` leaves) and the subfragment tree (`K` leaves) have? A client
    /// holds only such mini-fragments until the root arrives.
    pub fn check_mini_shape(&self, mf: &MiniFragment) -> Result<(), FlError> {
        let fault = FlError::MerkleProofFailed { node: mf.node, client: Some(mf.client) };
        if mf.node >= self.nodes || mf.client >= self.clients {
            return Err(fault);
        }
        if mf.values.len() != self.second.cell_size() {
            return Err(FlError::WrongLength { expected: self.second.cell_size(), got: mf.values.len() });
        }
        let depth = |leaves: usize| (usize::BITS - leaves.saturating_sub(1).leading_zeros()) as usize;
        if mf.mini_proof.siblings.len() > depth(self.clients) || mf.sub_proof.siblings.len() > depth(self.nodes) {
            return Err(fault);
        }
        Ok(())
    }

    /// Anyone: does `mf` belong to the fragment under `root`?
    pub fn verify_mini(&self, root: &Hash32, mf: &MiniFragment) -> Result<(), FlError> {
        let fault = FlError::MerkleProofFailed { node: mf.node, client: Some(mf.client) };
        self.check_mini_shape(mf)?;
        let ok = mf.mini_proof.index == mf.client as u64
            && mf.mini_proof.leaf_count == self.clients as u64
            && mf.mini_proof.verify(&mini_leaf(&mf.ctx, mf.node, mf.client, &mf.values), &mf.mini_root)
            && mf.sub_proof.index == mf.node as u64
            && mf.sub_proof.leaf_count == self.nodes as u64
            && mf.sub_proof.verify(&sub_leaf(&mf.ctx, mf.node, &mf.mini_root), root);
        if ok {
            Ok(())
        } else {
            Err(fault)
        }
    }
}

/// Who sent a message: where a mini-fragment came from, and the sender a
/// node's [`crate::consensus::ChainNode::handle`] is told.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// Node `N_k` (for a mini-fragment, straight from its node in B2C: to
    /// be forwarded).
    Node(usize),
    /// Client `c` (for a mini-fragment, forwarded by another client in C2C).
    Client(usize),
}

/// A client's fault record in B2C/C2C.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AssemblyFault {
    /// A mini-fragment refused, for any reason (context, shape, Merkle
    /// proof, a node or client it does not belong to, a full queue): `from`
    /// sent it — the node in B2C, the forwarding client in C2C — and is the
    /// party to blame, whatever node or client the mini-fragment names.
    Refused { from: Source, error: FlError },
    /// No sender to blame: a root for a chain this client does not follow,
    /// or mini-fragments that all verified under the agreed root and still
    /// do not decode, or decode to no model (the agreed root's own fault).
    Unattributed(FlError),
    /// The global fragment of `chain` decoded from mini-fragments that all
    /// verified under the agreed root, but recoding it
    /// ([`GlobalCoder::release`]) does not give that root again: the root
    /// is not the release of any one fragment (a "mixed" root over
    /// subfragments of two releases, attack round 20), so the client does
    /// not use what it decoded, decodes nothing more under that root, and
    /// keeps asking the nodes ([`crate::consensus::Message::Resync`]) as
    /// on any other failure. No sender is to blame: every input verified.
    RecodeMismatch { chain: u32 },
}

/// What handling one mini-fragment produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AssemblerStep {
    /// C2C: send these to every other client (the client's own
    /// mini-fragments, each once; several when they were held until the root).
    pub forward: Vec<MiniFragment>,
    /// Chains whose global fragment this input completed.
    pub decoded: Vec<u32>,
    pub faults: Vec<AssemblyFault>,
}

#[derive(Clone, Debug, Default)]
struct ChainState {
    root: Option<Hash32>,
    ctx: Option<GlobalContext>,
    /// node → client → values
    minis: BTreeMap<usize, BTreeMap<usize, Vec<Scalar>>>,
    subs: BTreeMap<usize, Vec<Scalar>>,
    fragment: Option<Vec<u8>>,
    /// Inputs that arrived before the root (at most `nodes` per sender).
    pending: Vec<(Source, MiniFragment)>,
    /// Nodes whose mini-fragment for this client was forwarded (at most `K`).
    forwarded: BTreeSet<usize>,
    /// The decoded fragment did not recode to the root
    /// ([`AssemblyFault::RecodeMismatch`]): nothing more is decoded under it.
    refuted: bool,
}

/// Client `D_c`'s side of B2C/C2C for one round over `B` chains.
#[derive(Clone, Debug)]
pub struct ClientAssembler {
    me: usize,
    round: u32,
    /// Chain id of `coders[0]`.
    first_chain: u32,
    coders: Vec<GlobalCoder>,
    chains: Vec<ChainState>,
}

impl ClientAssembler {
    /// `coders[b]` is chain `b`'s coder.
    pub fn new(me: usize, round: u32, coders: Vec<GlobalCoder>) -> Self {
        let chains = vec![ChainState::default(); coders.len()];
        Self { me, round, first_chain: 0, coders, chains }
    }

    /// Number the chains from `first` (a client following one chain `b`
    /// passes `b`).
    pub fn with_chain_offset(mut self, first: u32) -> Self {
        self.first_chain = first;
        self
    }

    fn slot(&self, chain: u32) -> Option<usize> {
        chain.checked_sub(self.first_chain).map(|i| i as usize).filter(|&i| i < self.coders.len())
    }

    /// The root chain `b` agreed on (read from its block).
    pub fn set_root(&mut self, chain: u32, root: Hash32) -> AssemblerStep {
        let mut step = AssemblerStep::default();
        let Some(st) = self.slot(chain).and_then(|i| self.chains.get_mut(i)) else {
            step.faults.push(AssemblyFault::Unattributed(FlError::PositionOutOfRange {
                index: chain as usize,
                len: self.coders.len(),
            }));
            return step;
        };
        if st.root.is_some() {
            return step;
        }
        st.root = Some(root);
        for (src, mf) in std::mem::take(&mut st.pending) {
            let s = self.on_mini(src, mf);
            step.forward.extend(s.forward);
            step.decoded.extend(s.decoded);
            step.faults.extend(s.faults);
        }
        step
    }

    /// Handle one mini-fragment.
    pub fn on_mini(&mut self, src: Source, mf: MiniFragment) -> AssemblerStep {
        let mut step = AssemblerStep::default();
        // Every refusal is recorded against the sender, `src`.
        let refused = move |error| AssemblyFault::Refused { from: src, error };
        let Some(b) = self.slot(mf.ctx.chain).filter(|_| mf.ctx.round == self.round) else {
            step.faults.push(refused(FlError::WrongContext { chain: mf.ctx.chain, round: mf.ctx.round }));
            return step;
        };
        // The sender is checked before anything else: a node sends only
        // its own mini-fragments and a client forwards only its own (the
        // ones its nodes sent it), so one that names another node or
        // client is refused as the sender's fault (the error names the
        // sender too) — never recorded against the honest node or client
        // it claims.
        match src {
            Source::Node(k) if k != mf.node => {
                step.faults.push(refused(FlError::MerkleProofFailed { node: k, client: Some(mf.client) }));
                return step;
            }
            Source::Client(c) if c != mf.client => {
                step.faults.push(refused(FlError::MerkleProofFailed { node: mf.node, client: Some(c) }));
                return step;
            }
            _ => {}
        }
        let coder = &self.coders[b];
        let st = &mut self.chains[b];
        let Some(root) = st.root else {
            // Per-sender quota: a node sends this client at most
            // [`GlobalCoder::minis_needed`] distinct mini-fragments (one at
            // its commit, that many in answer to a request) and a client
            // forwards at most one per node, so each sender holds at most
            // `max(nodes, minis_needed)` entries here; one Byzantine sender
            // can fill only its own share, never crowd out an honest one.
            // A node repeats its answer to each request: a copy it already
            // holds from that node is not held twice.
            let (index, len, quota) = match src {
                Source::Node(k) => (k, coder.nodes(), coder.nodes().max(coder.minis_needed())),
                Source::Client(c) => (c, coder.clients(), coder.nodes()),
            };
            if index >= len {
                step.faults.push(refused(FlError::PositionOutOfRange { index, len }));
            } else if let Err(e) = coder.check_mini_shape(&mf) {
                // Refused on arrival: nothing that cannot be a
                // mini-fragment of this chain waits for the root.
                step.faults.push(refused(e));
            } else if matches!(src, Source::Node(_)) && st.pending.iter().any(|(s, m)| *s == src && *m == mf) {
                // A repeated answer: held already.
            } else if st.pending.iter().filter(|(s, _)| *s == src).count() < quota {
                st.pending.push((src, mf));
            } else {
                step.faults.push(refused(FlError::Overloaded));
            }
            return step;
        };
        // The sender is `mf.node` (from a node) or `mf.client` (a client's
        // forward), checked above.
        if let Err(e) = coder.verify_mini(&root, &mf) {
            step.faults.push(refused(e));
            return step;
        }
        // Forwarded even after this client decoded: the others may need it.
        if matches!(src, Source::Node(_)) && mf.client == self.me && st.forwarded.insert(mf.node) {
            step.forward.push(mf.clone());
        }
        if st.fragment.is_some() || st.refuted {
            return step;
        }
        // One byte length per root: a leaf binds it, so a mismatch cannot verify.
        st.ctx.get_or_insert(mf.ctx);
        let node = mf.node;
        if st.subs.contains_key(&node) {
            return step;
        }
        let per_node = st.minis.entry(node).or_default();
        per_node.entry(mf.client).or_insert(mf.values);
        if per_node.len() < coder.minis_needed() {
            return step;
        }
        let cells: Vec<(usize, &[Scalar])> = per_node.iter().map(|(c, v)| (*c, v.as_slice())).collect();
        match coder.second.decode(&cells) {
            Ok(values) => {
                st.subs.insert(node, values);
                st.minis.remove(&node);
            }
            Err(e) => {
                step.faults.push(AssemblyFault::Unattributed(e));
                return step;
            }
        }
        let need_subs = coder.first.k().div_ceil(coder.first.cell_size());
        if st.subs.len() < need_subs {
            return step;
        }
        let cells: Vec<(usize, &[Scalar])> = st.subs.iter().map(|(k, v)| (*k, v.as_slice())).collect();
        let ctx = st.ctx.unwrap_or(mf.ctx);
        let len = ctx.byte_len as usize;
        let out = coder.first.decode(&cells).and_then(|coeffs| {
            let used = len.div_ceil(BYTES_PER_ELEMENT);
            let Some(rest) = coeffs.get(used..) else {
                return Err(FlError::WrongLength { expected: coeffs.len() * BYTES_PER_ELEMENT, got: len });
            };
            if rest.iter().any(|c| !bool::from(c.is_zero())) {
                return Err(FlError::Malformed("coefficients beyond the fragment length"));
            }
            scalars_to_bytes(&coeffs[..used], len)
        });
        // The recode check (attack round 20): the fragment is used only if
        // it recodes to the agreed root, as a node's
        // `GlobalCoder::recover_subfragment` requires. Mini-fragments that
        // verify under a root built by `release` always pass it; a root
        // over subfragments of two releases lets clients that hear from
        // different nodes decode different fragments, and this check
        // refuses it on every client alike. Cost: one `release` (the
        // leader's coding: the first code, `K` second codes and the Merkle
        // trees) per client per chain and round.
        let out = out.and_then(|bytes| {
            if mutants::active(Mutation::ClientRecodeUnchecked) {
                return Ok(Some(bytes));
            }
            let again = coder.release(ctx.instance, ctx.chain, ctx.round, &bytes)?;
            Ok((again.root == root).then_some(bytes))
        });
        match out {
            Ok(None) => {
                st.refuted = true;
                st.subs.clear();
                st.minis.clear();
                step.faults.push(AssemblyFault::RecodeMismatch { chain: mf.ctx.chain });
            }
            Ok(Some(bytes)) => {
                st.fragment = Some(bytes);
                st.subs.clear();
                step.decoded.push(mf.ctx.chain);
            }
            Err(e) => step.faults.push(AssemblyFault::Unattributed(e)),
        }
        step
    }

    /// Global fragment `b`, once decoded.
    pub fn fragment(&self, chain: u32) -> Option<&[u8]> {
        self.slot(chain).and_then(|i| self.chains[i].fragment.as_deref())
    }

    /// The whole global model (fragments in chain order), once every chain decoded.
    pub fn model(&self) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        for s in &self.chains {
            out.extend_from_slice(s.fragment.as_deref()?);
        }
        Some(out)
    }
}
