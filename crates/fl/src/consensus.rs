//! The dual consensus protocol of one chain (thesis §7.4), sans-IO.
//!
//! Node `N_k` of chain `BC_b` in round `e`:
//! 1. *Local message processing* (§7.4.1 steps 1–3): checks each client's
//!    cell against its upload record (Eq 7.8 and the degree bound); when
//!    [`Timer::PreVector`] fires, its enclave attests the pre-vector of
//!    accepted clients (Eq 7.14), which goes to every node, and it forwards
//!    the accepted messages to the leader (later uploads are accepted too,
//!    and named in fresh pre-vectors: "Fresh pre-vectors" below).
//! 2. *Vector agreement* (steps 4–5): on [`Timer::Tally`] it keeps the
//!    pre-vectors whose attestations verify (Eq 7.15), puts each client
//!    counted `≥ 2f+1` times into its deter-vector, and — if it is one of
//!    the `f+1` committee members chosen by Eqs 7.16–7.17 — sends it to
//!    every node.
//! 3. *Leader aggregation* (§7.4.2): on [`Timer::Aggregate`] the leader's
//!    enclave takes the union of the attested deter-vectors, decodes and
//!    decrypts those clients' fragments from the cells it holds (Eq 7.3,
//!    7.10), aggregates them with the trimmed mean (Eqs 7.19–7.20), codes
//!    the global fragment for B2C with its Merkle root (Eq 7.11) and
//!    attests `(root, clients aggregated)`; node `k` gets its subfragment
//!    with its Merkle proof (Eq 7.12).
//! 4. *Root agreement* on the chain's PBFT (`gridledger_consensus::pbft`,
//!    the project's improved PBFT of thesis §3.3.2, embedded in the node):
//!    a node whose proposal checks (attestation, Merkle proof) records the
//!    root as verified; the PBFT leader proposes a [`RootBlock`] (view,
//!    root, clients aggregated) it verified, and each replica's validation
//!    accepts the block only once it verified that view's proposal itself
//!    (received from the leader, or fetched from its peers with its own
//!    subfragment rebuilt: "Re-proposed roots" below), so a commit
//!    certificate (`2f+1` signed commits) means `2f+1` nodes checked their
//!    own subfragment under the root. On commit every node sends its
//!    mini-fragments to the clients (B2C) with the committed root. A
//!    proposal that fails, or no commit before [`Timer::View`], makes the
//!    node ask for the next aggregation view; `2f+1` such requests replace
//!    the aggregation leader (`leader(v) = v mod K`), and every node
//!    forwards its accepted messages to the new leader. PBFT's own view
//!    changes replace a PBFT leader that does not propose.
//!
//! Decisions where the seed is silent (each also in the item's docs):
//! - One PBFT instance per chain and round (its instance hash binds the
//!   whole agreed configuration: task, run id, chain, round, previous block, keys,
//!   randomness and coders — [`ChainConfig::instance`]), deciding one block at height 1: the
//!   round's root. The aggregation leader (`v mod K`) and the PBFT leader
//!   (`(view + height) mod K`) are independent: any node that verified an
//!   aggregate can propose it, and a block naming a root the replica found
//!   bad is refused (a PBFT fault), one it has not checked yet waits for
//!   its subfragment.
//! - The leader aggregates the clients it can decode: a client in the
//!   agreement vector whose cells were withheld by Byzantine nodes (fewer
//!   than `T` reached the leader) is left out and reported, and the
//!   attested evidence names exactly the clients aggregated.
//! - **Omission rule** (exclusion evidence). A Byzantine leader's host can
//!   withhold honest clients' cells from its enclave, which then attests
//!   the trimmed mean of a poisoned model alone. So a node refuses a
//!   proposal ([`Fault::UnprovenOmission`], and asks for the next view)
//!   that leaves out a client named by at least `K − f` of the pre-vectors
//!   it holds (a count, not an intersection: a Byzantine leader's own short
//!   pre-vector must not veto the protection of the clients everyone else
//!   named), unless the proposal carries
//!   [`Exclusion`] evidence for that client; it refuses evidence that does
//!   not prove the client faulty ([`Fault::BadExclusion`]). Why it is
//!   sound: each node's pre-vector is attested and counted once, and at
//!   most `f` of the `K − f` nodes naming the client are Byzantine, so at
//!   least `K − 2f ≥ T` honest nodes verified the client's cells and
//!   forwarded them to the leader (at [`Timer::PreVector`], with their
//!   pre-vectors, well before any proposal), and an honest leader
//!   decodes the record they hold — unless the client itself is faulty,
//!   which the evidence shows: two different records it signed for the
//!   round ([`Exclusion::Equivocation`]: no record need have `T` cells),
//!   or a record it signed with cells that verify and decode to a
//!   ciphertext that does not decrypt or a plaintext that is not a model
//!   ([`Exclusion::Malformed`]; every node's enclave repeats the decoding
//!   and decryption from the evidence alone). Neither can be forged for an
//!   honest client, so one Byzantine client cannot stall a chain (every
//!   leader would otherwise be refused for omitting it), and a Byzantine
//!   leader cannot drop an honest client. The rule applies only when the
//!   code needs at most `K − 2f` cells (`T ≤ K − 2f`; every coder of the
//!   federation is built so); a coder needing more disables it. If the
//!   timing assumption fails (an honest node's cells reach the leader
//!   later than its pre-vector reaches the checking node), an honest
//!   leader may be refused: a view change, not a wrong aggregate.
//!   **Which pre-vectors** (the protected set from agreed data). Checked
//!   against the pre-vectors each node happens to hold, the rule let a
//!   Byzantine node steer it: sending its attested pre-vector to one honest
//!   node only tipped a client to `K − f` namers there, and that node then
//!   refused every honest leader (whose aggregation set comes from the
//!   deter-vectors). So the leader's proposal carries the attested
//!   pre-vectors it holds (`m ≥ K − f` of distinct nodes), every node
//!   verifies them and protects exactly the clients named by at least
//!   `m − f` of them, and the leader aggregates the deter-vector union
//!   *and* that protected set: every honest node evaluates the same data,
//!   so an honest leader's proposal passes every honest node's check.
//!   Round 2's protections still hold: with `b ≤ f` Byzantine vectors
//!   among the `m`, an honest client (named by every honest node) is named
//!   `≥ m − b ≥ m − f` times, so a Byzantine leader can neither veto it
//!   with its own short pre-vector nor by choosing which vectors to carry;
//!   and an honest leader, whose `m` include every honest node's vector
//!   (timing), holds cells of every protected client from `≥ m − 2f ≥
//!   K − 2f ≥ T` honest nodes, so it decodes it (or holds the evidence).
//!   A proposal carrying fewer than `K − f` pre-vectors (none included), or
//!   a vector that does not verify, is refused by every honest node: the
//!   verdict on a proposal depends on the proposal alone, never on the
//!   pre-vectors the checking node happens to hold (checked against a
//!   node's own, a proposal carrying none let a Byzantine node that sent
//!   its pre-vector to some honest nodes only split their verdicts, so the
//!   block of that view was prepared but refused by `f` honest nodes for
//!   good). An honest leader whose [`Timer::Aggregate`] fires while it
//!   holds fewer than `K − f` attested pre-vectors waits, and aggregates
//!   as soon as enough arrive (every honest node sends its own at
//!   [`Timer::PreVector`], well before, and a fresh one to every node on
//!   each aggregation view it moves to — one per node per view — so a
//!   pre-vector lost before GST, e.g. to a partition that healed, is
//!   replaced by one that reaches a later honest leader and the round does
//!   not halt).
//! - **Fresh pre-vectors** (uploads delayed or lost before GST). A
//!   pre-vector is not a one-shot snapshot: a node accepts an upload that
//!   arrives after its [`Timer::PreVector`] as any other (forwarding it to
//!   the current leader), and attests a fresh pre-vector naming every
//!   client it accepted so far whenever that set grows, and on each
//!   aggregation view it moves to. Each pre-vector is attested with the
//!   node's aggregation view `view` when it was made and a per-node
//!   sequence number `seq` (0, 1, …); an honest node's later vectors have
//!   a higher `seq`, a view no earlier, and name every client its earlier
//!   ones named (a node never drops a client it accepted).
//!   *Which pre-vector of a node counts.* A node keeps, per node, the
//!   freshest it received (highest `seq`) and refuses
//!   ([`Fault::BadVector`]) one with a higher `seq` that goes back a view
//!   or drops a client (no honest node sends that; it also bounds how
//!   often a Byzantine node can change the tally). The tally is recomputed
//!   over the freshest pre-vector of each node whenever one arrives (after
//!   [`Timer::Tally`]); it only grows, and when it changes a committee
//!   member attests it as its next deter-vector (view and `seq` likewise)
//!   and sends it to every node; the leader unions the freshest
//!   deter-vector of each member. *The omission rule* counts, for a
//!   proposal of aggregation view `v`, only pre-vectors attested in view
//!   `v` or later: the leader carries the freshest it holds of each node
//!   with `view ≥ v` (and waits for `K − f` of them), and every node
//!   refuses a proposal carrying one attested in an earlier view. Why a
//!   node's two pre-vectors do not let a leader pick whichever excludes an
//!   honest client: any pre-vector an honest node attests in view `w ≥ v`
//!   was made after it entered `v`, so it names every client the node had
//!   accepted by then; a leader of `v` can choose among such vectors only,
//!   and each of them names those clients. So an honest client whose
//!   upload every honest node accepted before moving to `v` is named by
//!   every honest vector a proposal of `v` may carry — protected as in
//!   round 2's argument above — however the leader picks, and a Byzantine
//!   leader gains nothing from an honest node's older, shorter vectors
//!   (before this rule a leader of a later view could carry the view-0
//!   vectors attested before the delayed uploads arrived). Liveness: after
//!   GST every honest node's upload-holding set stops growing, the nodes
//!   move to a common view, each sends a fresh pre-vector for it naming
//!   every upload it holds, and an honest leader aggregates every client
//!   that reached `2f + 1` nodes. *Bound:* a node attests at most one
//!   pre-vector per client it accepts plus one per view it moves to (each
//!   costing a view timeout), and a member at most `C + 1` deter-vectors.
//!   A received pre-vector makes the node re-tally only when it names more
//!   clients, and a waiting leader aggregate again only then or when it is
//!   the node's first of the leader's view or later, so a Byzantine node
//!   re-attesting the same list under ever higher numbers costs each node
//!   one attestation check per message, never a decoding.
//! - **View changes** (aggregation views). A proposal that fails for the
//!   node's *current* view makes it ask for the next; one for a later view
//!   (a leader may send its view's proposal early) is recorded as a fault
//!   and checked again once that view is current, so junk proposals for a
//!   Byzantine node's future views move no one — it can spend only the
//!   views it leads, one timeout each. Each node's highest request is kept
//!   however far ahead (one per node); a request for `w` supports every
//!   view up to `w`; `f+1` requests make a node join, `2f+1` move it, as in
//!   PBFT. [`Timer::View`] is re-armed while no root is committed: each
//!   expiry asks for a later view, so nodes whose views split reconverge.
//!   A leader with nothing to aggregate when its timer fires (no
//!   deter-vector yet) retries when one arrives instead of burning its view
//!   (on a member's first deter-vector or a node's first pre-vector only: a
//!   repeated one changes nothing and re-runs no aggregation).
//! - **Clients asking again.** A node sends its [`Message::Committed`]
//!   report and mini-fragments to the clients once, at its commit, and a
//!   client forwards each of its own mini-fragments to the other clients
//!   once (C2C). A client that has not decoded sends every node a
//!   [`Message::Resync`] at the end of each request period
//!   ([`Timer::Resync`]; the period backs off, see
//!   [`crate::round::resync_delay`], and a client sends at most
//!   [`MAX_RESYNCS`]); while it knows no committed root (fewer than
//!   `f + 1` reports) it re-sends its upload with each request — the very
//!   messages it sent first, the same signed record, so no equivocation;
//!   a node that accepted the record ignores the repeat — so an upload
//!   lost before GST reaches the nodes after it (named in their fresh
//!   pre-vectors, above). A node that committed answers it with its report and
//!   enough mini-fragments of its subfragment to decode it alone
//!   ([`GlobalCoder::minis_needed`], `t₂` of the `C`): the client's own and
//!   the next `t₂ − 1` clients' (cyclically), all of which it holds. So
//!   neither a report or mini-fragment of the node nor another client's
//!   forward lost before GST (or withheld by a Byzantine client) costs an
//!   honest client the round: after GST every honest node's answer decodes
//!   that node's subfragment, and the client checks each mini-fragment
//!   against the root that `f + 1` reports agree on, as any other.
//!   *Bound:* a node answers once per request (increasing `seq`) and at
//!   most [`MAX_RESYNCS`] times per client in a round, so however a client
//!   floods it, a node sends one client in answers at most [`MAX_RESYNCS`]
//!   reports and `MAX_RESYNCS · t₂` mini-fragments. A mini-fragment is one
//!   second-code cell (`cell₂` elements) with its two Merkle paths
//!   (`⌈log₂ C⌉ + ⌈log₂ K⌉` hashes), mini-root, context and indices: at
//!   most `32 · (cell₂ + ⌈log₂ C⌉ + ⌈log₂ K⌉ + 4)` bytes, and `t₂ · cell₂`
//!   is less than a subfragment plus one cell. So one answer is about one
//!   subfragment with proofs, and a round's answers to one client at most
//!   `MAX_RESYNCS · (80 + 32 · t₂ · (cell₂ + ⌈log₂ C⌉ + ⌈log₂ K⌉ + 4))`
//!   bytes per node (before the encoding's framing).
//! - **A committed round stays decodable.** A node that refused a proposal
//!   (for whatever reason) whose subfragment still verifies under the root
//!   keeps its mini-fragments aside, and serves them once PBFT commits that
//!   root: the commit certificate shows `2f+1` nodes verified it, and the
//!   node's own Merkle check ties its subfragment to the root, so Byzantine
//!   nodes dropping their mini-fragments plus refusing honest nodes cannot
//!   leave a committed root with fewer than `f+1` serving honest nodes. A
//!   leader that sends its proposal to only `2f+1` nodes leaves the others
//!   without a subfragment, so that is all a commit guarantees: the
//!   federation's global coder decodes from any `f+1` subfragments
//!   ([`GlobalCoder::for_chain`]; a coder needing more loses committed
//!   rounds to such a leader).
//! - **Re-proposed roots** (fetching a proposal a node never received). A
//!   replica accepts a [`RootBlock`] `{view: v, root, clients}` only when
//!   it verified the attested proposal of aggregation view `v` with that
//!   root and exactly those clients — received from `v`'s leader, or
//!   fetched from its peers as follows; a block naming clients outside the
//!   round, or a view beyond the `K` views ahead a node checks proposals
//!   of, is refused at once, and waiting requests of PBFT views the
//!   replica has left are dropped. Why fetching: PBFT must re-propose the
//!   highest prepared block in every later PBFT view, and a Byzantine
//!   aggregation leader can prepare its block with its `f` Byzantine peers
//!   and `f + 1` honest nodes while skipping `f` honest ones; if the
//!   Byzantine nodes then withhold their commit votes, the skipped nodes —
//!   which never receive view `v`'s proposal — must validate the block, or
//!   the chain halts for good (`f + 1 + f` commits at most, short of
//!   `2f + 1` for `f ≥ 2`). Waiting for a later honest leader to reproduce
//!   the same aggregate is not enough: the leader of `v` may legally have
//!   aggregated what no honest leader does (a client excluded by
//!   equivocation evidence only it held, or protected by a narrower legal
//!   carried pre-vector set). So a node asked to validate a block whose
//!   `(view, root, clients)` it has not verified — of a view it has left
//!   without that view's proposal, or whose copy it received and refused
//!   (a Byzantine leader may send some nodes a junk copy, a bad
//!   attestation say, instead of none; what counts is the attested
//!   proposal PBFT prepared, not whether this node checked *a* copy of the
//!   view, or whose copy named another aggregate: see "One root, several
//!   client lists" below) — sends [`Message::FetchProposal`] to its peers
//!   and waits for the fetch, whether its own copy of the view failed or
//!   named another aggregate: either is the view's leader's doing towards
//!   this node and proves nothing about the block, whose proposer may be
//!   an honest PBFT leader that verified the genuine proposal, so no
//!   record names that proposer (attack round 19). Only a block whose
//!   own `(view, root, clients)` proved invalid here — its fetched
//!   proposal failed, the node's subfragment not rebuilt under the
//!   attested root — is refused (`InvalidProposal`); one that no peer
//!   relays waits until PBFT's view change. Each peer that verified a
//!   proposal under that `(view, root)` answers once with a
//!   [`Message::Relay`] of each client list it verified under it: the
//!   proposal as its leader sent it (client list, attestation, exclusion
//!   evidence, carried pre-vectors) with the relayer's own subfragment.
//!   A peer that has not verified any yet keeps the request (one per peer
//!   per `(view, root)`, at most `K` per peer) and answers it as soon as
//!   it verifies one, received or fetched itself.
//!   A fetch is for the block's exact `(view, root, clients)`: a relay
//!   naming another client list is dropped unchecked and completes
//!   nothing. The node
//!   takes a relayed proposal only if it passes exactly the checks of one
//!   received from the leader (the attestation of `(view, root, clients)`
//!   by `leader(view)`'s enclave, the exclusion evidence, the omission rule
//!   under the carried pre-vectors) — a relayer cannot vouch for anything
//!   — and counts a relayed subfragment only if its Merkle proof verifies
//!   under the root. From the subfragments of `f + 1` nodes (what the
//!   global coder decodes from, [`GlobalCoder::for_chain`]) it decodes the
//!   global fragment, recodes it, checks that the recoding gives the root
//!   again, and takes its own subfragment from it
//!   ([`GlobalCoder::recover_subfragment`]); only then is the proposal
//!   verified here, and its mini-fragments are served like a received
//!   one's. Why it completes: a prepared block has `2f + 1` prepare votes,
//!   at least `f + 1` of them honest, and an honest node votes only for a
//!   proposal it verified (received or fetched), holding its own
//!   subfragment under the root; so `f + 1` honest relayers exist however
//!   the Byzantine nodes relay — and each answers every fetch that reached
//!   it, also one that reached it before it verified (an honest voter that
//!   verified by fetching itself, after the others' requests arrived). A node that commits a root without holding
//!   its subfragment (a PBFT leader's own re-proposal, which its replica
//!   does not ask it to validate) fetches it the same way. So a commit
//!   certificate (`2f + 1` signed commits) still means `2f + 1` nodes
//!   verified the leader's attested proposal of the committed view and
//!   checked their own subfragment under the committed root, and the view
//!   a committed block names is one whose attested proposal they verified.
//!   A request or relay lost before GST does not leave a fetch unfinished
//!   for good: on each new PBFT view of its replica a node asks again, for
//!   every fetch it still holds, the peers whose relay it has not received,
//!   and a peer relays a proposal to a peer again once per PBFT view of its
//!   own replica. Each node holds at most `K` fetches, keeps at most `K`
//!   unanswered requests per peer, and relays each proposal to each peer
//!   at most once per PBFT view (each relay of every client list it
//!   verified under the fetched `(view, root)`).
//! - **Mixed roots** (attack round 20; outside the enclave trust model).
//!   A root `M` over subfragments of two releases cannot come from an
//!   enclave that codes what it attests, but one that attests a root its
//!   host chose gets `M` past every node that received the proposal from
//!   the leader: such a node checks only its own subfragment's Merkle
//!   path, while a node that fetched the proposal recodes the global
//!   fragment ([`GlobalCoder::recover_subfragment`]) and refutes `M`.
//!   Decision (defence in depth): every client recodes the fragment it
//!   decoded and uses it only if the recoding gives the committed root
//!   ([`AssemblyFault::RecodeMismatch`] otherwise: no model, and the
//!   client keeps asking), so no two honest clients hold different
//!   fragments of one committed root. Cost: one `GlobalCoder::release`
//!   per client, chain and round (the leader's coding work), no message.
//!   Not chosen: the same check on a node that received its proposal
//!   directly. It holds one subfragment, and a recoding needs `f + 1`: the
//!   leader would send every node `f + 1` subfragments (`f + 1` times the
//!   leader's B2C upload, the whole fragment to each node), or each node
//!   would fetch `f` relays before its prepare vote (a relay round of
//!   latency and `f` subfragments per node per proposal). So under that
//!   premise direct recipients may still commit `M` while a fetcher
//!   refutes it; the round then ends with no model at any honest client
//!   (attack round 20's ignored findings), never with two.
//! - A client that sends two different upload records to one node, or
//!   different records to different nodes, has only its first record per
//!   node counted; at the leader the record with the most cells is decoded.
//! - A client records a refused mini-fragment against its sender: every
//!   such record, whatever the error, is an [`AssemblyFault::Refused`]
//!   whose `from` is the node that sent it or the client that forwarded
//!   it. A node sends only its own mini-fragments and a client forwards
//!   only its own, so one naming another node (or client) than its sender
//!   is refused before any other check ([`FlError::MerkleProofFailed`]
//!   naming the sender), never recorded against the honest node or client
//!   the message claims.
//! - A node records a refused upload against its sender too. A client
//!   sends only its own upload ([`Message::Local`]) and a node forwards
//!   only cells it verified ([`Message::Forward`]), so a `Local` from a
//!   node or from a client other than the one its record names is refused
//!   before any other check, and a `Forward` whose record or cell does not
//!   verify is the forwarding node's fault: both are a [`Fault::Relayed`]
//!   whose `from` is the sender, never a fault of the (possibly honest)
//!   client whose signed record the message carries. A client is recorded
//!   as having sent a bad cell ([`Fault::Client`]) only when it sent that
//!   cell itself, and a refused relay changes nothing else: the client's
//!   own upload is accepted when it arrives.
//! - A message of a node's kind (a pre- or deter-vector, a forward, a view
//!   change, a fetch, a relay, a proposal, PBFT traffic) names its node, or
//!   for a proposal claims the view's leader; one whose sender is not that
//!   node — another node, or a client, which sends no message of a node's
//!   kind at all — is refused before any other check and recorded against
//!   its sender ([`Fault::Impersonation`]), never against the node it
//!   names: a Byzantine node or client cannot make the record accuse an
//!   honest peer by naming it.
//! - A refused relayed proposal ([`Message::Relay`]) is recorded against
//!   its relayer ([`Fault::BadRelay`]), whatever check it failed (the
//!   leader's attestation, the context, the exclusion evidence, a carried
//!   pre-vector, the omission rule or the relayer's subfragment): an honest
//!   node relays only a proposal it verified, so a relay that does not
//!   verify is its relayer's fault, never a failure of the view's
//!   (possibly honest) leader or of a node whose carried pre-vector it
//!   altered. [`Fault::BadProposal`] is a proposal received from the
//!   view's leader that failed.
//! - **One root, several client lists** (attack round 18). The Merkle
//!   root binds the global fragment and the chain instance only (its
//!   leaves are the coded global fragment), not the aggregation view or
//!   the clients aggregated, so two client lists whose trimmed means are
//!   equal (two households of one standard load profile, say) share one
//!   root, and a Byzantine leader's host can run its enclave twice in its
//!   view and get both `(v, R, A)` and `(v, R, B)` attested. Every store of
//!   what a node verified, relays or fetches (`verified`, `proposals`,
//!   `fetches`) is therefore keyed by the [`RootBlock`]'s whole `(view,
//!   root, clients)` — the attested proposal exactly, as PBFT's block
//!   digest binds it: a node that verified `(v, R, B)` validates block
//!   `(v, R, A)` only by the attested proposal of `A`, which it fetches
//!   (its re-sent requests and the peers' relays are keyed by `(view,
//!   root)`, bounded per peer as before, and a peer relays every list it
//!   verified under the pair). Mini-fragments (`minis`, `standby`) stay
//!   keyed by `(view, root)`: they depend on the root and the node's
//!   position only. The alternative, binding the view and client list
//!   into the root (the Merkle leaves) or into a second enclave statement,
//!   was not chosen: the aggregate attestation already binds `(view, root,
//!   clients)` and the PBFT block digest binds all three, so the gap was
//!   only in the keys; and the root is what clients check every
//!   mini-fragment against (with `f + 1` matching reports), which must not
//!   depend on anything but the global model the clients decode. A leader
//!   attesting two lists in one view is not itself a fault any node can
//!   prove (two honest-looking attestations), so neither list is refused:
//!   the one PBFT commits is the view's aggregate.
//! - A node whose own PBFT replica could not be built records that once
//!   ([`Fault::PbftConfig`], at start) and drops the PBFT traffic its
//!   peers send it without a record: the cause is its own configuration,
//!   not the (possibly honest) sender.
//! - A forward ([`Message::Forward`]) of a record and cell the node holds
//!   already (from that forwarder's position) is dropped before its
//!   signature and cell proof are checked, as a repeated upload is: a
//!   repeat costs no pairing.
//! - Round state is not persisted, PBFT's durable vote state included: a
//!   node that crashes mid-round rejoins at the next round (the simulator
//!   leaves it down), whose PBFT instance is a fresh one, so it cannot
//!   equivocate in the round it left.
//! - PBFT's first deadline is `Timing::aggregate + Timing::view`, the
//!   aggregation's own first view deadline: no root can be proposed before
//!   the leader aggregates, so an earlier deadline only forced a PBFT view
//!   change (`K²` signed messages) in every round. Its view changes (with
//!   backoff) run beside the aggregation's, each replacing its own leader.

use crate::aead::FragmentContext;
use crate::aggregate::{params_from_bytes, params_to_bytes, trimmed_mean};
use crate::cells::Cell;
use crate::coding::{client_key, FragmentCoder, LocalMessage, UploadRecord};
use crate::dissemination::{AssemblyFault, GlobalCoder, GlobalRelease, GlobalSubfragment, MiniFragment, Source};
use crate::error::FlError;
use crate::mutants::{self, Mutation};
use borsh::{BorshDeserialize, BorshSerialize};
use gridledger_consensus::pbft::{
    self, CommittedEntry, Payload, Replica, Target, TimerCmd, ValidateRequest, ValidatorSet,
};
use gridledger_core::codec::hash_tagged;
use gridledger_core::codec::{hash_bytes, Tag};
use gridledger_core::crypto::KeyPair;
use gridledger_core::enclave::{verify_evidence, Attester, EvidenceAttestation};
use gridledger_core::{Hash32, PublicKey};
use secp256k1::XOnlyPublicKey;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Domain tag of pre-vector evidence.
pub const PRE_VECTOR: Tag = Tag("gridledger/fl-pre-vector/v1");
/// Domain tag of deter-vector evidence.
pub const DETER_VECTOR: Tag = Tag("gridledger/fl-deter-vector/v1");
/// Domain tag of the leader's aggregate evidence.
pub const AGGREGATE: Tag = Tag("gridledger/fl-aggregate/v1");
/// Domain tag of the committee hash (Eq 7.17).
pub const COMMITTEE: Tag = Tag("gridledger/fl-committee/v1");
/// Domain tag of a [`RootBlock`]'s digest.
pub const ROOT_BLOCK: Tag = Tag("gridledger/fl-root-block/v1");
/// Domain tag of a round's PBFT instance.
pub const ROOT_INSTANCE: Tag = Tag("gridledger/fl-root-pbft/v1");
/// The PBFT height of the round's root (the instance's first block).
pub const ROOT_HEIGHT: u64 = 1;

/// What a chain's PBFT decides for a round: the leader's aggregate of
/// aggregation view `view` — its Merkle root and the clients in it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RootBlock {
    pub chain: u32,
    pub round: u32,
    pub view: u32,
    pub root: Hash32,
    pub clients: Vec<u32>,
}

impl Payload for RootBlock {
    fn digest(&self) -> Hash32 {
        hash_tagged(ROOT_BLOCK, self)
    }

    fn is_empty(&self) -> bool {
        false
    }

    fn well_formed(&self) -> Result<(), String> {
        if self.clients.is_empty() || !self.clients.windows(2).all(|w| w[0] < w[1]) {
            return Err("clients must be a non-empty increasing list".into());
        }
        Ok(())
    }
}

/// What every node of a chain agrees on before a round, as its parts: a
/// [`ChainConfig`] is built from them ([`ChainConfig::new`]). All of it is
/// bound into the round's chain instance ([`ChainConfig::instance`]).
#[derive(Clone, Debug)]
pub struct ChainParams {
    /// The federated task (federation) this round belongs to: two tasks
    /// served by the same nodes on the same chain block are two instances.
    pub task: Hash32,
    /// A value fresh to this run of the task ([`fresh_run_id`], drawn
    /// once per run, or a deployment's anchoring chain block): two runs of
    /// one configuration are two instances, so no record, attestation or
    /// vote of an earlier run (or a run killed early) counts in this one.
    /// Nothing in the models depends on it, so a seeded run's numbers do
    /// not change with it.
    pub run: Hash32,
    pub chain: u32,
    pub round: u32,
    pub nodes: usize,
    pub clients: usize,
    /// Parameters per fragment (`D` of Eq 7.20).
    pub dims: usize,
    /// Trimmed-mean `β` (Eq 7.19).
    pub beta: usize,
    /// The enclave code every node's attestation must show.
    pub measurement: [u8; 32],
    /// `VK` of each node's enclave.
    pub node_keys: Vec<XOnlyPublicKey>,
    /// Each node's PBFT signing key (the chain's validator set, in node order).
    pub pbft_keys: Vec<PublicKey>,
    /// Each client's registered record-signing key (client order); a record
    /// not signed by its client's key is refused.
    pub client_keys: Vec<PublicKey>,
    /// `RV^{C1}_{e,b}` and `BH_{e−1,b}` of Eq 7.17.
    pub random_value: [u8; 32],
    pub prev_block: Hash32,
    pub coder: Arc<FragmentCoder>,
    pub global: Arc<GlobalCoder>,
}

/// A fresh run id ([`ChainParams::run`]): 256 bits from the operating
/// system's generator (through `rand`'s thread-local generator, seeded and
/// reseeded from it), drawn once per run of a task.
pub fn fresh_run_id() -> Hash32 {
    Hash32(rand::random())
}

impl ChainParams {
    /// The chain instance these parameters make ([`ChainConfig::instance`]),
    /// hashed afresh: a [`ChainConfig`] computes it once, when it is built.
    pub fn compute_instance(&self) -> Hash32 {
        let mut b =
            Vec::with_capacity(256 + 32 * self.node_keys.len() + 33 * (self.pbft_keys.len() + self.client_keys.len()));
        b.extend_from_slice(&self.task.0);
        if !mutants::active(Mutation::RunUnbound) {
            b.extend_from_slice(&self.run.0);
        }
        b.extend_from_slice(&self.chain.to_le_bytes());
        b.extend_from_slice(&self.round.to_le_bytes());
        b.extend_from_slice(&self.prev_block.0);
        for n in [self.nodes, self.clients, self.dims, self.beta] {
            b.extend_from_slice(&(n as u64).to_le_bytes());
        }
        b.extend_from_slice(&self.measurement);
        b.extend_from_slice(&self.random_value);
        // Each list with its length, so no two configurations share bytes.
        b.extend_from_slice(&(self.node_keys.len() as u64).to_le_bytes());
        for k in &self.node_keys {
            b.extend_from_slice(&k.serialize());
        }
        b.extend_from_slice(&(self.pbft_keys.len() as u64).to_le_bytes());
        for k in &self.pbft_keys {
            b.extend_from_slice(&k.0);
        }
        b.extend_from_slice(&(self.client_keys.len() as u64).to_le_bytes());
        for k in &self.client_keys {
            b.extend_from_slice(&k.0);
        }
        b.extend_from_slice(&self.coder.params_digest().0);
        b.extend_from_slice(&self.global.params_digest().0);
        hash_bytes(ROOT_INSTANCE, &b)
    }
}

/// What every node of a chain agrees on before a round ([`ChainParams`],
/// read through `Deref`) with its chain instance, hashed once when the
/// configuration is built: message checks compare against it and never
/// hash the configuration again. The parameters cannot change afterwards
/// (no `DerefMut`, no public field): another configuration is another
/// [`ChainConfig::new`], with its own instance.
#[derive(Clone, Debug)]
pub struct ChainConfig {
    params: ChainParams,
    instance: Hash32,
}

impl std::ops::Deref for ChainConfig {
    type Target = ChainParams;

    fn deref(&self) -> &ChainParams {
        &self.params
    }
}

impl ChainConfig {
    /// The configuration of `params`, with its chain instance
    /// ([`ChainParams::compute_instance`]).
    pub fn new(params: ChainParams) -> Self {
        let instance = params.compute_instance();
        Self { params, instance }
    }

    /// The parameters this configuration was built from (clone them to
    /// build another).
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// The chain instance of this round: a hash of the whole agreed round
    /// configuration — the task, the run id (fresh per run, so two runs of
    /// one configuration share nothing), the chain, the round, the previous block
    /// `BH_{e−1,b}` (which history of the chain this round belongs to), the
    /// sizes (`K`, `C`, `D`, `β`), the enclave measurement, every node's
    /// enclave and PBFT key, every client's registered key, the chain
    /// randomness and both coders' parameters (with the commitment setup).
    /// It is the round's PBFT instance hash, and every piece of round
    /// evidence binds it: the upload records and the AEAD associated data
    /// ([`FragmentContext`](crate::aead::FragmentContext)), the pre-,
    /// deter-vector and aggregate attestations, and the global fragment's
    /// Merkle leaves. So nothing signed, attested or encrypted for another
    /// chain history, another federation (other clients, task or coders)
    /// on the same block, or another configuration is accepted here.
    pub fn instance(&self) -> Hash32 {
        self.instance
    }

    /// `f` with `K ≥ 3f + 1`.
    pub fn f(&self) -> usize {
        (self.nodes.saturating_sub(1)) / 3
    }

    /// The tally threshold `2f + 1`.
    pub fn quorum(&self) -> usize {
        2 * self.f() + 1
    }

    /// `leader(v) = v mod K`.
    pub fn leader(&self, view: u32) -> usize {
        view as usize % self.nodes.max(1)
    }

    /// Eqs 7.16–7.17: the `p = f+1` nodes with the smallest
    /// `h_k = H(RV ‖ BH ‖ k)`, in ascending order of index.
    pub fn committee(&self) -> Vec<usize> {
        let mut hs: Vec<(Hash32, usize)> = (0..self.nodes)
            .map(|k| {
                let mut b = self.random_value.to_vec();
                b.extend_from_slice(&self.prev_block.0);
                b.extend_from_slice(&(k as u64).to_le_bytes());
                (hash_bytes(COMMITTEE, &b), k)
            })
            .collect();
        hs.sort();
        let mut c: Vec<usize> = hs.into_iter().take(self.f() + 1).map(|(_, k)| k).collect();
        c.sort_unstable();
        c
    }

    /// The round's PBFT validator set: its instance hash ([`Self::instance`])
    /// binds the whole round configuration, so no vote of another round,
    /// chain history or federation counts.
    pub fn validator_set(&self) -> Result<ValidatorSet, pbft::ConfigError> {
        ValidatorSet::new(self.instance(), self.pbft_keys.clone())
    }

    /// The fragment context of client uploads in this round (fragment index
    /// `fragment`).
    pub fn fragment_context(&self, fragment: u32) -> FragmentContext {
        FragmentContext { instance: self.instance(), chain: self.chain, round: self.round, fragment }
    }

    /// Whether an upload record is for this round of this chain history.
    pub fn is_own_record(&self, ctx: &FragmentContext) -> bool {
        ctx.chain == self.chain && ctx.round == self.round && ctx.instance == self.instance()
    }

    /// The leader's first coding of `fragment` for this round (its Merkle
    /// leaves bind this chain instance).
    pub fn release(&self, fragment: &[u8]) -> Result<GlobalRelease, FlError> {
        self.global.release(self.instance(), self.chain, self.round, fragment)
    }

    /// Evidence of a pre- or deter-vector (`tag`): chain instance, chain,
    /// round, node, the aggregation view it was attested in, its sequence
    /// number (the node's count of vectors of that kind, from 0) and the
    /// clients (every field fixed-width before the list, so no two vectors
    /// share bytes).
    pub fn vector_evidence(&self, tag: Tag, node: usize, view: u32, seq: u32, clients: &[u32]) -> [u8; 32] {
        let mut b = Vec::with_capacity(56 + 4 * clients.len());
        b.extend_from_slice(&self.instance().0);
        b.extend_from_slice(&self.chain.to_le_bytes());
        b.extend_from_slice(&self.round.to_le_bytes());
        b.extend_from_slice(&(node as u64).to_le_bytes());
        b.extend_from_slice(&view.to_le_bytes());
        b.extend_from_slice(&seq.to_le_bytes());
        for c in clients {
            b.extend_from_slice(&c.to_le_bytes());
        }
        hash_bytes(tag, &b).0
    }

    /// Evidence of the leader's aggregate: chain instance, chain, round,
    /// view, root and the clients aggregated.
    pub fn aggregate_evidence(&self, view: u32, root: &Hash32, clients: &[u32]) -> [u8; 32] {
        let mut b = Vec::with_capacity(76 + 4 * clients.len());
        b.extend_from_slice(&self.instance().0);
        b.extend_from_slice(&self.chain.to_le_bytes());
        b.extend_from_slice(&self.round.to_le_bytes());
        b.extend_from_slice(&view.to_le_bytes());
        b.extend_from_slice(&root.0);
        for c in clients {
            b.extend_from_slice(&c.to_le_bytes());
        }
        hash_bytes(AGGREGATE, &b).0
    }

    fn check_attestation(&self, node: usize, ra: &EvidenceAttestation, evidence: &[u8; 32]) -> Result<(), Fault> {
        let key = self.node_keys.get(node).ok_or(Fault::UnknownNode(node))?;
        if ra.index as usize != node {
            return Err(Fault::BadAttestation { node });
        }
        verify_evidence(ra, key, &self.measurement, evidence).map_err(|_| Fault::BadAttestation { node })
    }
}

/// Messages of the FL round (nodes and clients).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Message {
    /// C2B: `{e, c, VC, sf_k, π_k}`, from the client whose record it
    /// carries (from anyone else it is refused: [`Fault::Relayed`]).
    Local(LocalMessage),
    /// A node's attested pre-vector: its `seq`-th, attested in aggregation
    /// view `view` (see "Fresh pre-vectors" in the module docs).
    PreVector { node: usize, view: u32, seq: u32, clients: Vec<u32>, ra: EvidenceAttestation },
    /// A node's accepted local message, for the leader (one whose record
    /// or cell does not verify is the forwarding node's fault:
    /// [`Fault::Relayed`]).
    Forward { node: usize, msg: LocalMessage },
    /// A committee member's attested deter-vector: its `seq`-th, attested
    /// in aggregation view `view`.
    DeterVector { node: usize, view: u32, seq: u32, clients: Vec<u32>, ra: EvidenceAttestation },
    /// `{e, sf^g_k, RA^A, rh^g, mp_k}` plus the clients aggregated and the
    /// exclusion evidence for agreed clients left out (see [`Exclusion`]).
    Proposal {
        view: u32,
        root: Hash32,
        clients: Vec<u32>,
        ra: EvidenceAttestation,
        sf: GlobalSubfragment,
        excluded: Vec<Exclusion>,
        /// The attested pre-vectors the leader held (at least `K − f`, from
        /// distinct nodes): the omission rule is checked against these
        /// only. A proposal carrying fewer is refused.
        pre_vectors: Vec<AttestedVector>,
    },
    /// The chain's PBFT deciding the round's [`RootBlock`].
    Pbft(Box<pbft::Message<RootBlock>>),
    /// Ask to replace the leader: move to `view`.
    ViewChange { node: usize, view: u32 },
    /// Node `node` asks its peers for the attested proposal of aggregation
    /// view `view` with root `root`, which PBFT asks it to validate and it
    /// never received (see "Re-proposed roots" in the module docs).
    FetchProposal { node: usize, view: u32, root: Hash32 },
    /// Node `node`'s answer to a [`Message::FetchProposal`]: the proposal
    /// of `view` it verified, as the leader sent it, but with its own
    /// subfragment (`sf.node == node`).
    Relay {
        node: usize,
        view: u32,
        root: Hash32,
        clients: Vec<u32>,
        ra: EvidenceAttestation,
        sf: GlobalSubfragment,
        excluded: Vec<Exclusion>,
        pre_vectors: Vec<AttestedVector>,
    },
    /// B2C/C2C: a mini-fragment (`from_node` true when sent by its node).
    Mini { from_node: bool, mf: MiniFragment },
    /// A node tells the clients the committed root.
    Committed { node: usize, view: u32, root: Hash32 },
    /// Client `client`, not decoded yet, asks the nodes again for their
    /// [`Message::Committed`] report and enough mini-fragments to decode
    /// their subfragment (its `seq`-th request; see "Clients asking again"
    /// in the module docs). A node answers each client's request once, for
    /// increasing `seq` only, and at most [`MAX_RESYNCS`] times per client
    /// in a round.
    Resync { client: u32, seq: u32 },
}

/// The most [`Message::Resync`] requests a client sends in a round, and a
/// node answers per client.
pub const MAX_RESYNCS: u32 = 32;

/// Timers of a node's round.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Timer {
    /// End of local message processing: attest and send the pre-vector.
    PreVector,
    /// End of vector agreement: tally into the deter-vector.
    Tally,
    /// Leader of `view`: aggregate.
    Aggregate(u32),
    /// No commit in `view` by now: ask for the next.
    View(u32),
    /// The PBFT deadline of a `(height, view)`.
    Pbft(pbft::Timer),
    /// A client's request period `n` ended: if it has not decoded, it asks
    /// the nodes again ([`Message::Resync`]).
    Resync(u32),
}

/// What a node observed that was wrong: the typed fault record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fault {
    /// A client's own message refused (proof, degree, length, wrong node
    /// …): `client` sent it.
    Client { client: u32, error: FlError },
    /// An upload that `from` relayed, refused as `from`'s fault, whatever
    /// client its record names (`client`): a [`Message::Local`] from a node
    /// or from another client ([`FlError::NotOwnUpload`]), or a node's
    /// [`Message::Forward`] whose record or cell does not verify.
    Relayed { from: Source, client: u32, error: FlError },
    /// A message of a node's kind that `from` sent naming node `claimed`
    /// as its sender (for a proposal, the view's leader; `None` for PBFT
    /// traffic from a client, which names no node here): refused as
    /// `from`'s fault, never the named node's. A client sends no message of
    /// a node's kind, so one from a client is always this.
    Impersonation { from: Source, claimed: Option<usize> },
    /// A client sent this node two different records.
    Equivocation { client: u32 },
    /// An agreed client whose fragment the leader could not decode or use.
    Excluded { client: u32, error: FlError },
    /// A message whose attestation does not verify.
    BadAttestation { node: usize },
    /// A pre- or deter-vector that is not strictly increasing ids of existing clients.
    BadVector { node: usize },
    /// A node (the sender) claiming a node index that does not exist or a
    /// role it does not hold.
    UnknownNode(usize),
    /// A proposal from someone other than the view's leader.
    NotLeader { node: usize, view: u32 },
    /// The leader's proposal of `view`, received from the leader, failed
    /// (root, attestation or Merkle proof).
    BadProposal { view: u32, error: String },
    /// A proposal of `view` that node `from` relayed ([`Message::Relay`])
    /// refused as `from`'s fault, whatever check failed: an honest node
    /// relays only a proposal it verified, so the record names the relayer,
    /// never the view's leader or a node whose carried pre-vector it holds.
    BadRelay { from: Source, view: u32, error: String },
    /// The proposal of `view` leaves out `client`, whom every pre-vector
    /// this node holds named, without exclusion evidence for it.
    UnprovenOmission { view: u32, client: u32 },
    /// The proposal of `view` carries exclusion evidence for `client` that
    /// does not prove the client faulty.
    BadExclusion { view: u32, client: u32, error: EvidenceError },
    /// Message for another chain or round.
    WrongContext,
    /// A client refused a mini-fragment (the record names its sender) or
    /// could not decode (B2C/C2C).
    Dissemination(AssemblyFault),
    /// What the root agreement's PBFT observed (bad signatures, blocks
    /// refused by validation, equivocation …).
    Pbft(pbft::Fault),
    /// This node cannot run the round's PBFT (a validator set or key that
    /// does not fit): it takes no part in the root agreement.
    PbftConfig(pbft::ConfigError),
}

/// What a node outputs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    PreVector(Vec<u32>),
    DeterVector(Vec<u32>),
    /// The leader's aggregate: root and clients used.
    Aggregated {
        view: u32,
        root: Hash32,
        clients: Vec<u32>,
    },
    /// PBFT committed the round's root (the block of aggregation view `view`).
    Committed {
        view: u32,
        root: Hash32,
    },
    /// Moved to a new view (leader replaced).
    NewView(u32),
}

/// Where a node sends: a node index or a client index.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum To {
    Node(usize),
    Client(usize),
}

/// Everything one input produced.
#[derive(Clone, Debug, Default)]
pub struct Step {
    pub sends: Vec<(To, Message)>,
    pub timers: Vec<(Timer, u64)>,
    pub outputs: Vec<Output>,
    pub faults: Vec<Fault>,
}

/// Exclusion evidence: why a proposal may leave out a client that every
/// pre-vector named (the omission rule of this module's docs). Each kind proves,
/// without trusting the leader, that the client itself is faulty; an
/// honest client never produces either.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exclusion {
    /// Two different upload records of the client for this chain and
    /// round, both signed by its registered key (it equivocated: honest
    /// nodes accepted different records, so no record may have `T` cells).
    Equivocation { first: Box<UploadRecord>, second: Box<UploadRecord> },
    /// A record signed by the client and cells that verify against its
    /// commitment and decode (Reed–Solomon) to the committed polynomial,
    /// whose ciphertext does not decrypt under the client's key or whose
    /// plaintext is not a model of `dims` finite parameters. Every node's
    /// enclave recomputes the decoding and decryption from these alone.
    Malformed { record: Box<UploadRecord>, cells: Vec<Cell> },
}

impl Exclusion {
    /// The client the evidence is about.
    pub fn client(&self) -> u32 {
        match self {
            Exclusion::Equivocation { first, .. } => first.client,
            Exclusion::Malformed { record, .. } => record.client,
        }
    }
}

/// Why exclusion evidence was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// A record of another chain, round or chain history.
    #[error("record of another chain, round or chain history")]
    WrongContext,
    /// The two records name different clients.
    #[error("the records name different clients")]
    Mismatch,
    /// The two "different" records are the same record.
    #[error("the two records are the same")]
    SameRecord,
    /// A record whose signature or own checks fail.
    #[error("record refused: {0}")]
    Record(FlError),
    /// More cells than nodes, or cells not in strictly increasing position.
    #[error("cells not distinct increasing positions of this chain's nodes")]
    CellList,
    /// A cell that does not verify, or too few to decode the commitment.
    #[error("cells do not decode the commitment: {0}")]
    NotDecoded(FlError),
    /// The evidence decodes and decrypts to a well-formed model.
    #[error("the fragment decodes to a well-formed model")]
    WellFormed,
    /// Evidence for a client the proposal aggregates.
    #[error("evidence for an aggregated client")]
    Aggregated,
    /// Two pieces of evidence for one client.
    #[error("two pieces of evidence for one client")]
    Duplicate,
}

/// Timer lengths, in the driver's ticks.
#[derive(Clone, Copy, Debug)]
pub struct Timing {
    pub pre_vector: u64,
    pub tally: u64,
    pub aggregate: u64,
    pub view: u64,
}

/// The fields of [`Message::Proposal`] (and of a [`Message::Relay`]).
#[derive(Clone)]
struct Proposal {
    view: u32,
    root: Hash32,
    clients: Vec<u32>,
    ra: EvidenceAttestation,
    sf: GlobalSubfragment,
    excluded: Vec<Exclusion>,
    pre_vectors: Vec<AttestedVector>,
}

/// A node's attested pre- or deter-vector (a proposal carries pre-vectors
/// so): its `seq`-th of that kind, attested in aggregation view `view`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AttestedVector {
    pub node: usize,
    pub view: u32,
    pub seq: u32,
    pub clients: Vec<u32>,
    pub ra: EvidenceAttestation,
}

impl AttestedVector {
    /// Whether `self` may follow `held`, the freshest vector of its node
    /// held: a later sequence number, a view no earlier, and every client
    /// `held` named (an honest node's vectors only grow: it never drops a
    /// client it accepted).
    fn follows(&self, held: &AttestedVector) -> bool {
        self.seq > held.seq
            && self.view >= held.view
            && held.clients.iter().all(|c| self.clients.binary_search(c).is_ok())
    }
}

/// A proposal this node is fetching from its peers (a block PBFT asks it
/// to validate, of an aggregation view whose proposal it never received):
/// the relayed subfragments that verify under the root, by node.
#[derive(Default)]
struct Fetch {
    /// Peers whose relay was checked: each gets one (a Byzantine peer
    /// cannot make this node check relay after relay).
    tried: BTreeSet<usize>,
    /// Peers whose relay of another client list under the fetched
    /// `(view, root)` was checked: one each, besides their relay of the
    /// fetched list (see [`ChainNode::on_relay`]).
    other_lists: BTreeSet<usize>,
    subs: BTreeMap<usize, GlobalSubfragment>,
    /// The relayed proposal, once one passed every check.
    proposal: Option<Proposal>,
}

/// A record and the cells of it the node holds, by cell index.
type HeldRecord = (UploadRecord, BTreeMap<usize, crate::cells::Cell>);

/// What a node's stores of verified, relayed and fetched proposals are
/// keyed by: the [`RootBlock`]'s `(view, root, clients)` — the attested
/// proposal exactly, since one root may stand for several client lists
/// (see "One root, several client lists" in the module docs).
type BlockKey = (u32, Hash32, Vec<u32>);

/// One node of one chain for one round.
pub struct ChainNode<A: Attester> {
    cfg: Arc<ChainConfig>,
    me: usize,
    enclave: A,
    /// The enclaves' shared secret `SK` (§7.2.4): the clients' fragment
    /// keys are derived from it inside the enclave only (no client holds it).
    shared_secret: [u8; 32],
    timing: Timing,
    /// Accepted local messages, by client (first record wins).
    accepted: BTreeMap<u32, LocalMessage>,
    pre_sent: bool,
    /// The freshest attested pre-vector held, by node (this node's own
    /// included).
    pre_vectors: BTreeMap<usize, AttestedVector>,
    /// [`Timer::Tally`] fired: the tally is recomputed whenever a fresher
    /// pre-vector arrives.
    tallied: bool,
    /// The freshest attested deter-vector held, by committee member.
    deter_vectors: BTreeMap<usize, AttestedVector>,
    /// The clients of this node's last tally (a member sends a new
    /// deter-vector only when they change).
    last_tally: Option<Vec<u32>>,
    /// Leader side: cells received per client, grouped by record digest.
    held: BTreeMap<u32, BTreeMap<Hash32, HeldRecord>>,
    view: u32,
    proposed_in: BTreeSet<u32>,
    /// Aggregation views whose proposal this node checked (accepted or not).
    checked_in: BTreeSet<u32>,
    /// The attested proposals this node verified, by their block's
    /// [`BlockKey`] `(view, root, clients)`: the clients aggregated (the
    /// key's own list; see "One root, several client lists" in the module
    /// docs). At most one per aggregation view from its leader (a view's
    /// proposal is checked once) plus one per fetch completed, each for a
    /// block a PBFT leader proposed (at most `K` fetches held at a time).
    verified: BTreeMap<BlockKey, Vec<u32>>,
    /// Aggregation views whose proposal failed here.
    rejected: BTreeSet<u32>,
    /// Blocks whose own `(view, root, clients)` proved invalid here: their
    /// fetched proposal failed (the node's subfragment could not be rebuilt
    /// under the attested root). A PBFT block naming one is refused; at
    /// most `K` are kept (past that, those no waiting block names go).
    refuted: BTreeSet<BlockKey>,
    /// The highest aggregation view each node asked for (one entry per
    /// node: bounded, and a request far ahead is kept, not dropped).
    view_requests: BTreeMap<usize, u32>,
    /// Later views whose proposal failed here while this node was behind:
    /// not checked again until the view is current (one check each).
    refused_ahead: BTreeSet<u32>,
    /// Views whose [`Timer::Aggregate`] fired here: a leader with nothing
    /// to aggregate yet retries when a deter-vector arrives.
    aggregate_due: BTreeSet<u32>,
    asked_view: u32,
    committed: Option<(u32, Hash32)>,
    /// The PBFT commit of the root, with its certificate.
    certificate: Option<CommittedEntry<RootBlock>>,
    /// Mini-fragments already sent to the clients.
    disseminated: bool,
    /// The last [`Message::Resync`] answered, by client, and how many.
    resyncs: BTreeMap<u32, (u32, u32)>,
    minis: BTreeMap<(u32, Hash32), Vec<MiniFragment>>,
    /// Mini-fragments of proposals this node refused whose subfragment
    /// still verified under the root (Merkle proof and context): served
    /// only if PBFT commits that root (its certificate shows `2f+1` nodes
    /// verified it), so a committed round stays decodable.
    standby: BTreeMap<(u32, Hash32), Vec<MiniFragment>>,
    /// The chain's PBFT replica, or why it could not be built (the node
    /// then records [`Fault::PbftConfig`] and takes no part in the agreement).
    pbft: Result<Replica<RootBlock>, pbft::ConfigError>,
    /// PBFT asked this node to propose at `(height, view)`.
    need_proposal: Option<(u64, u64)>,
    /// PBFT blocks waiting until this node has checked their root (only
    /// those of the replica's current PBFT view are kept).
    pending: Vec<ValidateRequest<RootBlock>>,
    /// Proposals this node verified, by their block's [`BlockKey`], with
    /// its own subfragment: what it relays to a peer that fetches their
    /// `(view, root)` (every client list it verified under it).
    proposals: BTreeMap<BlockKey, Proposal>,
    /// Proposals this node is fetching, by the [`BlockKey`] of the block
    /// that names them (at most `K` at a time): only a relay of exactly
    /// that `(view, root, clients)` counts for one.
    fetches: BTreeMap<BlockKey, Fetch>,
    /// `(peer, view, root, PBFT view)` relayed already: each peer gets each
    /// proposal once per PBFT view of this node's replica (a relay lost
    /// before GST is sent again on the peer's re-sent request of a later
    /// PBFT view, never more often).
    relayed: BTreeSet<(usize, u32, Hash32, u64)>,
    /// The PBFT view in which this node last asked its peers for the
    /// proposals it is still fetching: on each later PBFT view it asks
    /// again the peers whose relay it has not received (a request or relay
    /// lost before GST does not leave the fetch unfinished for good).
    fetch_pview: u64,
    /// Fetch requests this node could not answer yet (it had not verified
    /// that proposal), by peer, oldest first: answered once it verifies
    /// the proposal. One per peer per `(view, root)`, at most `K` per peer
    /// (the most fetches an honest peer holds; past that its oldest is
    /// dropped), so a Byzantine peer fills only its own list.
    asked: BTreeMap<usize, Vec<(u32, Hash32)>>,
    /// The round's deter-vector committee (Eqs 7.16–7.17), ascending:
    /// computed once (`K` hashes), not per deter-vector received.
    committee: Vec<usize>,
}

impl<A: Attester> ChainNode<A> {
    /// Node `me` of the chain, with its enclave, the enclaves' shared
    /// secret, its PBFT signing key (whose public half is `cfg.pbft_keys[me]`)
    /// and its timers. PBFT's first deadline is `timing.aggregate +
    /// timing.view` ticks.
    pub fn new(
        cfg: Arc<ChainConfig>,
        me: usize,
        enclave: A,
        shared_secret: [u8; 32],
        pbft_key: KeyPair,
        timing: Timing,
    ) -> Self {
        let pbft = cfg.validator_set().and_then(|set| {
            let mut pc = pbft::Config::new(set, me as u32);
            pc.base_timeout = timing.aggregate.saturating_add(timing.view).max(1);
            Replica::new(pc, pbft_key)
        });
        Self {
            committee: cfg.committee(),
            cfg,
            me,
            enclave,
            shared_secret,
            timing,
            accepted: BTreeMap::new(),
            pre_sent: false,
            pre_vectors: BTreeMap::new(),
            tallied: false,
            deter_vectors: BTreeMap::new(),
            last_tally: None,
            held: BTreeMap::new(),
            view: 0,
            proposed_in: BTreeSet::new(),
            checked_in: BTreeSet::new(),
            verified: BTreeMap::new(),
            rejected: BTreeSet::new(),
            refuted: BTreeSet::new(),
            view_requests: BTreeMap::new(),
            refused_ahead: BTreeSet::new(),
            aggregate_due: BTreeSet::new(),
            asked_view: 0,
            committed: None,
            certificate: None,
            disseminated: false,
            resyncs: BTreeMap::new(),
            minis: BTreeMap::new(),
            standby: BTreeMap::new(),
            pbft,
            need_proposal: None,
            pending: Vec::new(),
            proposals: BTreeMap::new(),
            fetches: BTreeMap::new(),
            relayed: BTreeSet::new(),
            fetch_pview: 0,
            asked: BTreeMap::new(),
        }
    }

    /// The committed root block with its PBFT commit certificate.
    pub fn certificate(&self) -> Option<&CommittedEntry<RootBlock>> {
        self.certificate.as_ref()
    }

    pub fn config(&self) -> &ChainConfig {
        &self.cfg
    }

    pub fn committed(&self) -> Option<(u32, Hash32)> {
        self.committed
    }

    pub fn view(&self) -> u32 {
        self.view
    }

    fn is_leader(&self) -> bool {
        self.cfg.leader(self.view) == self.me
    }

    fn to_nodes(&self, step: &mut Step, msg: Message) {
        for k in 0..self.cfg.nodes {
            if k != self.me {
                step.sends.push((To::Node(k), msg.clone()));
            }
        }
    }

    /// Arms the round's first timers and starts the PBFT replica.
    pub fn start(&mut self) -> Step {
        let mut step = Step::default();
        step.timers.push((Timer::PreVector, self.timing.pre_vector));
        step.timers.push((Timer::Tally, self.timing.tally));
        step.timers.push((Timer::Aggregate(0), self.timing.aggregate));
        step.timers.push((Timer::View(0), self.timing.aggregate + self.timing.view));
        match self.pbft.as_mut().map(|r| r.start()) {
            Ok(p) => self.absorb(p, &mut step),
            Err(e) => step.faults.push(Fault::PbftConfig(e.clone())),
        }
        step
    }

    /// Turns a PBFT step into the node's sends, timers, faults and commit.
    /// PBFT's durable state is not persisted (round state is not; see the
    /// module's decisions).
    fn absorb(&mut self, p: pbft::Step<RootBlock>, step: &mut Step) {
        for out in p.messages {
            let msg = Message::Pbft(Box::new(out.message));
            match out.to {
                Target::All => self.to_nodes(step, msg),
                Target::One(k) => step.sends.push((To::Node(k as usize), msg)),
            }
        }
        // The round decides one block, at height 1: past it the replica
        // idles (no deadlines, proposals or votes for later heights).
        for t in p.timers {
            // A cancelled deadline is ignored when it fires (PBFT checks its slot).
            if let TimerCmd::Set { timer, after } = t {
                if timer.height == ROOT_HEIGHT {
                    step.timers.push((Timer::Pbft(timer), after));
                }
            }
        }
        step.faults.extend(p.faults.into_iter().map(Fault::Pbft));
        for entry in p.committed {
            self.on_committed(entry, step);
        }
        if let Some(slot) = p.need_proposal.filter(|(h, _)| *h == ROOT_HEIGHT) {
            self.need_proposal = Some(slot);
        }
        self.pending.extend(p.validate.into_iter().filter(|r| r.height == ROOT_HEIGHT));
        self.drive_pbft(step);
    }

    /// Proposes a verified root if PBFT asked for one, and answers the
    /// validations that this node can now decide.
    fn drive_pbft(&mut self, step: &mut Step) {
        let Ok(replica) = self.pbft.as_mut() else {
            return;
        };
        let mut next = pbft::Step::default();
        if let Some((height, pview)) = self.need_proposal {
            // The verified aggregate of the latest aggregation view.
            if let Some(((view, root, _), clients)) = self.verified.iter().next_back() {
                let block = RootBlock {
                    chain: self.cfg.chain,
                    round: self.cfg.round,
                    view: *view,
                    root: *root,
                    clients: clients.clone(),
                };
                self.need_proposal = None;
                next.extend(replica.propose(height, pview, block));
            }
        }
        let mut waiting = Vec::new();
        let mut fetch = Vec::new();
        // A request of a PBFT view the replica has left is answered by no
        // one (the replica ignores verdicts of other views): dropped.
        let pview = replica.view();
        for req in std::mem::take(&mut self.pending).into_iter().filter(|r| r.view >= pview) {
            let b = &req.payload;
            let verdict = if b.chain != self.cfg.chain || b.round != self.cfg.round {
                Some(Err("block of another chain or round".to_string()))
            } else if b.clients.last().is_some_and(|&c| c as usize >= self.cfg.clients) {
                // Increasing ids (well-formedness) below `C`: at most `C` of them.
                Some(Err("block names clients outside the round".to_string()))
            } else if b.view > self.view.saturating_add(self.cfg.nodes as u32) {
                // No proposal this far ahead is checked here (`on_proposal`).
                Some(Err("block of an aggregation view beyond this node's reach".to_string()))
            } else if let Some(clients) = self.verified.get(&block_key(b.view, b.root, &b.clients)) {
                // Only the proposal of the block's own `(view, root,
                // clients)` counts: the one this node received from that
                // view's leader or fetched from its peers and checked in
                // full (see "Re-proposed roots" and "One root, several
                // client lists" in the module docs). The lists differ only
                // under the planted bug [`Mutation::RootKeyedStores`].
                if *clients == b.clients {
                    Some(Ok(()))
                } else {
                    Some(Err("clients differ from the attested aggregate".to_string()))
                }
            } else {
                // Not verified here: what counts is the attested proposal
                // of the block's `(view, root, clients)`, not whether this
                // node checked *a* copy of that view — its own copy may
                // have been junk (a bad attestation, a wrong subfragment,
                // carried pre-vectors that fail the omission rule) or
                // another aggregate the view's leader attested (another
                // client list, under the same root or another), while the
                // proposal PBFT prepared went to the others. So a block of
                // a view this node has left, or whose copy it checked, makes
                // it fetch the proposal from the peers that verified it,
                // and waits for the fetch: a copy that failed here, or that
                // named another aggregate, is the view's leader's doing
                // towards this node and proves nothing about the block, so
                // its (possibly honest) proposer is not recorded as
                // proposing an invalid block. Only a block whose own
                // `(view, root, clients)` proved invalid here — its fetched
                // proposal failed ([`Self::on_relay`]) — is refused. A
                // block of a view not checked yet and not left waits for
                // that view's proposal.
                let key = block_key(b.view, b.root, &b.clients);
                let checked = self.rejected.contains(&b.view) || self.checked_in.contains(&b.view);
                let other_verified = self.verified.keys().any(|k| k.0 == b.view);
                if self.refuted.contains(&key) {
                    Some(Err("the block's attested proposal failed when fetched".to_string()))
                } else {
                    if (checked || b.view < self.view) && !mutants::active(Mutation::ReproposalViewBound) {
                        fetch.push(key);
                    }
                    let refuse = checked
                        && (mutants::active(Mutation::RootKeyedStores)
                            || (!other_verified && mutants::active(Mutation::FailedCopyRefuses)));
                    refuse.then(|| Err("root not verified here (its attested proposal is fetched)".to_string()))
                }
            };
            match verdict {
                Some(v) => next.extend(replica.handle_validated(req.height, req.view, b.digest(), v)),
                None => waiting.push(req),
            }
        }
        self.pending = waiting;
        self.refetch(pview, step);
        for key in fetch {
            self.start_fetch(key, step);
        }
        if next != pbft::Step::default() {
            self.absorb(next, step);
        }
    }

    /// Asks every peer for the proposals of `(view, root)` (again on each
    /// later PBFT view while unfinished, [`Self::refetch`]); only a relay
    /// of the key's exact client list completes the fetch.
    /// At most `K` fetches are held: past that, those no waiting block
    /// names are dropped, and a new one waits until there is room.
    fn start_fetch(&mut self, key: BlockKey, step: &mut Step) {
        if self.fetches.contains_key(&key) {
            return;
        }
        if self.fetches.len() >= self.cfg.nodes {
            let named: BTreeSet<BlockKey> =
                self.pending.iter().map(|r| block_key(r.payload.view, r.payload.root, &r.payload.clients)).collect();
            self.fetches.retain(|k, _| named.contains(k));
            if self.fetches.len() >= self.cfg.nodes {
                return;
            }
        }
        let (view, root) = (key.0, key.1);
        self.fetches.insert(key, Fetch::default());
        self.to_nodes(step, Message::FetchProposal { node: self.me, view, root });
    }

    /// On a new PBFT view, every fetch still unfinished asks again the
    /// peers whose relay it has not received (once per PBFT view: at most
    /// `K − 1` requests per fetch, `K` fetches).
    fn refetch(&mut self, pview: u64, step: &mut Step) {
        if pview <= self.fetch_pview || mutants::active(Mutation::FetchOneShot) {
            return;
        }
        self.fetch_pview = pview;
        // One request per peer per `(view, root)`, however many client
        // lists under it are fetched (a peer relays every list it verified).
        let mut asks: BTreeSet<(usize, u32, Hash32)> = BTreeSet::new();
        for ((view, root, _), fetch) in &self.fetches {
            for k in (0..self.cfg.nodes).filter(|&k| k != self.me && !fetch.tried.contains(&k)) {
                asks.insert((k, *view, *root));
            }
        }
        for (k, view, root) in asks {
            step.sends.push((To::Node(k), Message::FetchProposal { node: self.me, view, root }));
        }
    }

    /// A peer asks for the proposals of `(view, root)`: every client list
    /// this node verified under it is relayed (once per peer per PBFT view
    /// of this node's replica); if it verified none, the request is kept
    /// and answered once this node verifies one (received, or fetched
    /// itself), so a fetch that reached this node before it verified is
    /// not lost.
    fn on_fetch(&mut self, node: usize, view: u32, root: Hash32, step: &mut Step) {
        let pview = self.pbft.as_ref().map_or(0, |r| r.view());
        if node == self.me || self.relayed.contains(&(node, view, root, pview)) {
            return;
        }
        let lists: Vec<Proposal> = self
            .proposals
            .range((view, root, Vec::new())..)
            .take_while(|((v, r, _), _)| *v == view && *r == root)
            .map(|(_, p)| p.clone())
            .collect();
        if lists.is_empty() {
            if !mutants::active(Mutation::FetchForgotten) {
                let asked = self.asked.entry(node).or_default();
                if !asked.contains(&(view, root)) {
                    if asked.len() >= self.cfg.nodes {
                        asked.remove(0);
                    }
                    asked.push((view, root));
                }
            }
            return;
        }
        self.relayed.insert((node, view, root, pview));
        for p in lists {
            step.sends.push((
                To::Node(node),
                Message::Relay {
                    node: self.me,
                    view,
                    root,
                    clients: p.clients,
                    ra: p.ra,
                    sf: p.sf,
                    excluded: p.excluded,
                    pre_vectors: p.pre_vectors,
                },
            ));
        }
    }

    /// This node verified the proposal of `key`: the peers that asked for
    /// it before get it now.
    fn answer_asked(&mut self, key: (u32, Hash32), step: &mut Step) {
        let mut peers = Vec::new();
        for (&peer, asked) in self.asked.iter_mut() {
            if let Some(i) = asked.iter().position(|k| *k == key) {
                asked.remove(i);
                peers.push(peer);
            }
        }
        self.asked.retain(|_, asked| !asked.is_empty());
        for peer in peers {
            self.on_fetch(peer, key.0, key.1, step);
        }
    }

    /// A peer's relayed proposal of a view this node is fetching. Its
    /// subfragment counts once it verifies under the root; its proposal
    /// once it passes exactly the checks of a proposal received from the
    /// view's leader (the leader's attestation of `(view, root, clients)`,
    /// the context, the exclusion evidence and the omission rule under the
    /// carried pre-vectors). With both, and subfragments of
    /// [`GlobalCoder::subfragments_needed`] nodes, this node rebuilds its
    /// own subfragment, checks it under the root and takes the proposal as
    /// verified.
    ///
    /// A relayed proposal completes only the fetch of its exact `(view,
    /// root, clients)`. One naming another client list under a fetched
    /// `(view, root)` (an honest peer that verified that list relays it
    /// too) is checked alike, once per peer per fetch besides the peer's
    /// relay of the fetched list: a forgery is recorded against its
    /// relayer, and its subfragment counts if it verifies under the root
    /// (the rebuilt subfragment depends on the root only), but its
    /// proposal never becomes the fetch's.
    fn on_relay(&mut self, from: usize, p: Proposal, step: &mut Step) {
        let exact = block_key(p.view, p.root, &p.clients);
        if self.verified.contains_key(&exact) {
            return;
        }
        let (key, matching) = if self.fetches.contains_key(&exact) {
            (exact, true)
        } else {
            match self.fetches.keys().find(|k| k.0 == p.view && k.1 == p.root) {
                Some(k) => (k.clone(), false),
                None => return,
            }
        };
        let Some(fetch) = self.fetches.get_mut(&key) else {
            return;
        };
        let first = if matching { fetch.tried.insert(from) } else { fetch.other_lists.insert(from) };
        if !first {
            return;
        }
        let fetch = &self.fetches[&key];
        // An honest node relays only a proposal it verified: a relay that
        // fails any check is its relayer's fault, never the view's leader's.
        let bad = |error: String| {
            if mutants::active(Mutation::RelayBlamesView) {
                Fault::BadProposal { view: p.view, error }
            } else {
                Fault::BadRelay { from: Source::Node(from), view: p.view, error }
            }
        };
        // A relayer sends its own subfragment: one labelled with another
        // node is a forgery like any other (checked once per fetch, as
        // every relay is).
        if p.sf.node != from {
            step.faults.push(bad(format!("relayed subfragment labelled as node {}'s", p.sf.node)));
            return;
        }
        let own_context = p.sf.ctx.chain == self.cfg.chain
            && p.sf.ctx.round == self.cfg.round
            && p.sf.ctx.instance == self.cfg.instance();
        let sub_ok = match self.cfg.global.mini_fragments(from, &p.root, &p.sf) {
            Ok(_) if own_context => true,
            Ok(_) => {
                step.faults.push(bad("relayed subfragment of another chain, round or chain history".into()));
                false
            }
            Err(e) => {
                step.faults.push(bad(format!("relayed subfragment: {e}")));
                false
            }
        };
        let proposal_ok = (fetch.proposal.is_none() || !matching)
            && (mutants::active(Mutation::RelayUnchecked) || {
                let leader = self.cfg.leader(p.view);
                let ev = self.cfg.aggregate_evidence(p.view, &p.root, &p.clients);
                let checked = self
                    .cfg
                    .check_attestation(leader, &p.ra, &ev)
                    .map_err(|_| bad("relayed proposal: not attested by the view's leader".into()))
                    .and_then(|()| {
                        self.check_omissions(p.view, &p.clients, &p.excluded, &p.pre_vectors)
                            .map_err(|f| bad(format!("relayed proposal: {}", relayed_error(f))))
                    });
                match checked {
                    Ok(()) => true,
                    Err(f) => {
                        step.faults.push(f);
                        false
                    }
                }
            });
        let Some(fetch) = self.fetches.get_mut(&key) else {
            return;
        };
        if sub_ok {
            fetch.subs.insert(from, p.sf.clone());
        }
        if proposal_ok && matching {
            fetch.proposal = Some(p);
        }
        let Some(proposal) = fetch.proposal.as_ref() else {
            return;
        };
        if fetch.subs.len() < self.cfg.global.subfragments_needed() {
            return;
        }
        let subs: Vec<GlobalSubfragment> = fetch.subs.values().cloned().collect();
        let own = self
            .cfg
            .global
            .recover_subfragment(&key.1, &subs, self.me)
            .and_then(|sf| self.cfg.global.mini_fragments(self.me, &key.1, &sf).map(|minis| (sf, minis)));
        match own {
            Ok((sf, minis)) => {
                let mut proposal = proposal.clone();
                proposal.sf = sf;
                self.fetches.remove(&key);
                self.checked_in.insert(key.0);
                self.minis.insert((key.0, key.1), minis);
                self.verified.insert(key.clone(), proposal.clients.clone());
                self.proposals.insert(key.clone(), proposal);
                self.answer_asked((key.0, key.1), step);
                self.disseminate(step);
                self.drive_pbft(step);
            }
            Err(e) => {
                // Cannot happen under an attested root (the enclave coded
                // it, and each subfragment verified under it): recorded,
                // and the fetch is given up.
                step.faults
                    .push(Fault::BadProposal { view: key.0, error: format!("own subfragment not rebuilt: {e}") });
                self.fetches.remove(&key);
                // The block's exact `(view, root, clients)` proved invalid:
                // a PBFT block naming it is refused from now on.
                if self.refuted.len() >= self.cfg.nodes {
                    let named: BTreeSet<BlockKey> = self
                        .pending
                        .iter()
                        .map(|r| block_key(r.payload.view, r.payload.root, &r.payload.clients))
                        .collect();
                    self.refuted.retain(|k| named.contains(k));
                }
                if self.refuted.len() < self.cfg.nodes {
                    self.refuted.insert(key);
                }
                self.drive_pbft(step);
            }
        }
    }

    fn on_committed(&mut self, entry: CommittedEntry<RootBlock>, step: &mut Step) {
        if self.committed.is_some()
            || entry.cert.height != ROOT_HEIGHT
            || entry.payload.chain != self.cfg.chain
            || entry.payload.round != self.cfg.round
        {
            return;
        }
        let (view, root) = (entry.payload.view, entry.payload.root);
        let clients = entry.payload.clients.clone();
        self.committed = Some((view, root));
        self.certificate = Some(entry);
        step.outputs.push(Output::Committed { view, root });
        for c in 0..self.cfg.clients {
            step.sends.push((To::Client(c), Message::Committed { node: self.me, view, root }));
        }
        self.disseminate(step);
        let key = (view, root);
        let holds = minis_for(&self.minis, key).is_some() || minis_for(&self.standby, key).is_some();
        if !holds && !mutants::active(Mutation::ReproposalViewBound) {
            // Committed without its subfragment (e.g. a PBFT leader's own
            // re-proposal, which its replica does not ask it to validate):
            // fetched, so this node serves its mini-fragments too.
            let key = block_key(view, root, &clients);
            self.start_fetch(key, step);
        }
    }

    /// B2C: once the root is committed and this node checked its
    /// subfragment under it, its mini-fragments go to the clients.
    fn disseminate(&mut self, step: &mut Step) {
        let Some(key) = self.committed else {
            return;
        };
        if self.disseminated {
            return;
        }
        // A root this node refused (e.g. by the omission rule over the
        // pre-vectors it holds) but that `2f+1` nodes verified and PBFT
        // committed: its own subfragment checked under the root, it serves.
        let minis = if mutants::active(Mutation::RefusedNodeSilent) {
            minis_for(&self.minis, key)
        } else {
            minis_for(&self.minis, key).or_else(|| minis_for(&self.standby, key))
        };
        if let Some(minis) = minis {
            self.disseminated = true;
            for mf in minis {
                step.sends.push((To::Client(mf.client), Message::Mini { from_node: true, mf: mf.clone() }));
            }
        }
    }

    /// A message that `from` sent (the transport's word for who sent it:
    /// the node or client at the other end of the link). A message of a
    /// node's kind naming another node than its sender is refused as the
    /// sender's fault ([`Fault::Impersonation`]).
    pub fn handle(&mut self, from: Source, msg: Message) -> Step {
        let mut step = Step::default();
        let from_node = match from {
            Source::Node(k) => Some(k),
            Source::Client(_) => None,
        };
        match msg {
            Message::Local(m) => {
                // Only the client whose record it carries sends a `Local`:
                // from anyone else it is refused as the sender's fault.
                let own = from == Source::Client(m.record.client as usize);
                if own || mutants::active(Mutation::RelayBlamesClient) {
                    self.on_local(m, &mut step);
                } else {
                    let client = m.record.client;
                    step.faults.push(Fault::Relayed { from, client, error: FlError::NotOwnUpload { client } });
                }
            }
            Message::PreVector { node, view, seq, clients, ra } => {
                let v = AttestedVector { node, view, seq, clients, ra };
                match self.attested_vector(from, PRE_VECTOR, &v) {
                    Ok(()) => {
                        // Only a fresher vector counts (a repeated or older
                        // one changes nothing); one that drops a client
                        // its node named before is refused. The tally is
                        // recomputed when it names more clients, and a
                        // leader that held too few fresh pre-vectors (or
                        // nothing to aggregate) retries when it names more
                        // or is the node's first of this view or later —
                        // each at most once per client or view, so a
                        // Byzantine node re-attesting the same list under
                        // ever higher numbers makes no leader decode again.
                        match self.pre_vectors.get(&node) {
                            Some(held) if v.seq <= held.seq => {}
                            Some(held) if !v.follows(held) => step.faults.push(Fault::BadVector { node }),
                            held => {
                                let grew = held.is_none_or(|h| h.clients.len() < v.clients.len());
                                let carriable = v.view >= self.view && held.is_none_or(|h| h.view < self.view);
                                self.pre_vectors.insert(node, v);
                                if grew {
                                    self.retally(&mut step);
                                }
                                if grew || carriable {
                                    self.retry_aggregate(&mut step);
                                }
                            }
                        }
                    }
                    Err(f) => step.faults.push(f),
                }
            }
            Message::Forward { node, msg } => {
                if let Err(f) = sent_by(from, node) {
                    step.faults.push(f);
                    return step;
                }
                // The leader re-checks what others forward: a Byzantine
                // node's forward counts only if its cell verifies. An
                // honest node forwards only what it verified, so one that
                // does not verify is the forwarder's fault, not the client's.
                if !self.cfg.is_own_record(&msg.record.ctx) {
                    step.faults.push(Fault::WrongContext);
                } else if msg.cell.index == node && self.holds(&msg) {
                    // An exact repeat of what this node holds from that
                    // forwarder's position (a forward re-sent on a new
                    // view): nothing to do, and no signature or pairing
                    // check spent on it, as a repeated upload.
                } else if let Err(error) =
                    self.check_signature(&msg).and_then(|()| self.verify_cell(msg.cell.index, &msg))
                {
                    let client = msg.record.client;
                    step.faults.push(if mutants::active(Mutation::RelayBlamesClient) {
                        Fault::Client { client, error }
                    } else {
                        Fault::Relayed { from, client, error }
                    });
                } else if msg.cell.index == node {
                    self.hold(msg);
                } else {
                    step.faults.push(Fault::UnknownNode(node));
                }
            }
            Message::DeterVector { node, view, seq, clients, ra } => {
                let v = AttestedVector { node, view, seq, clients, ra };
                match self.attested_vector(from, DETER_VECTOR, &v) {
                    // Only the f+1 committee of Eqs 7.16–7.17 broadcasts
                    // deter-vectors; anyone else's is refused (not its role).
                    Ok(()) if self.committee.binary_search(&node).is_err() => {
                        step.faults.push(Fault::UnknownNode(node))
                    }
                    Ok(()) => {
                        // A leader that found nothing to aggregate when its
                        // timer fired retries with a late or fresher
                        // deter-vector (a member's repeated or older one
                        // changes nothing; one dropping a client is refused).
                        match self.deter_vectors.get(&node) {
                            Some(held) if v.seq <= held.seq => {}
                            Some(held) if !v.follows(held) => step.faults.push(Fault::BadVector { node }),
                            held => {
                                let grew = held.is_none_or(|h| h.clients.len() < v.clients.len());
                                self.deter_vectors.insert(node, v);
                                if grew {
                                    self.retry_aggregate(&mut step);
                                }
                            }
                        }
                    }
                    Err(f) => step.faults.push(f),
                }
            }
            Message::Proposal { view, root, clients, ra, sf, excluded, pre_vectors } => {
                let leader = self.cfg.leader(view);
                match from {
                    Source::Node(k) if k == leader => {}
                    // A node claims no one else by sending a proposal:
                    // it claims a role it does not hold.
                    Source::Node(node) => {
                        step.faults.push(Fault::NotLeader { node, view });
                        return step;
                    }
                    Source::Client(_) => {
                        step.faults.push(impersonation(from, leader));
                        return step;
                    }
                }
                self.on_proposal(Proposal { view, root, clients, ra, sf, excluded, pre_vectors }, &mut step);
            }
            Message::Pbft(m) => match (from_node, self.pbft.as_mut()) {
                (Some(k), Ok(r)) if k < self.cfg.nodes => {
                    let p = r.handle_message(k as u32, *m);
                    self.absorb(p, &mut step);
                }
                // This node cannot run PBFT: its own condition, recorded
                // once at start (`PbftConfig`), not the sender's.
                (Some(k), Err(_)) if k < self.cfg.nodes => {}
                (Some(k), _) => step.faults.push(Fault::UnknownNode(k)),
                (None, _) => step.faults.push(if mutants::active(Mutation::ImpersonationBlamesNamed) {
                    Fault::UnknownNode(usize::MAX)
                } else {
                    Fault::Impersonation { from, claimed: None }
                }),
            },
            Message::ViewChange { node, view } => {
                if let Err(f) = sent_by(from, node) {
                    step.faults.push(f);
                    return step;
                }
                self.on_view_change(node, view, &mut step);
            }
            Message::FetchProposal { node, view, root } => {
                if let Err(f) = sent_by(from, node) {
                    step.faults.push(f);
                    return step;
                }
                if node >= self.cfg.nodes {
                    step.faults.push(Fault::UnknownNode(node));
                    return step;
                }
                self.on_fetch(node, view, root, &mut step);
            }
            Message::Relay { node, view, root, clients, ra, sf, excluded, pre_vectors } => {
                if let Err(f) = sent_by(from, node) {
                    step.faults.push(f);
                    return step;
                }
                if node >= self.cfg.nodes {
                    step.faults.push(Fault::UnknownNode(node));
                    return step;
                }
                self.on_relay(node, Proposal { view, root, clients, ra, sf, excluded, pre_vectors }, &mut step);
            }
            Message::Resync { client, seq } => {
                // A client's request names the client that sent it.
                if from == Source::Client(client as usize) {
                    self.resync(client, seq, &mut step);
                }
            }
            Message::Mini { .. } | Message::Committed { .. } => {}
        }
        step
    }

    /// A client asks again: once the root is committed, it gets this node's
    /// report and [`GlobalCoder::minis_needed`] mini-fragments of this
    /// node's subfragment — its own and the next clients' in cyclic order,
    /// enough to decode the subfragment without any other client's forward
    /// — once per request (`seq` increasing) and at most [`MAX_RESYNCS`]
    /// times in the round.
    fn resync(&mut self, client: u32, seq: u32, step: &mut Step) {
        let Some((view, root)) = self.committed else {
            return;
        };
        if client as usize >= self.cfg.clients {
            return;
        }
        let (last, count) = self.resyncs.get(&client).copied().unwrap_or((0, 0));
        if seq <= last || count >= MAX_RESYNCS {
            return;
        }
        self.resyncs.insert(client, (seq, count + 1));
        step.sends.push((To::Client(client as usize), Message::Committed { node: self.me, view, root }));
        let key = (view, root);
        let minis = if mutants::active(Mutation::RefusedNodeSilent) {
            minis_for(&self.minis, key)
        } else {
            minis_for(&self.minis, key).or_else(|| minis_for(&self.standby, key))
        };
        let clients = self.cfg.clients;
        let need = if mutants::active(Mutation::ResyncOwnMinis) { 1 } else { self.cfg.global.minis_needed() };
        let client = client as usize;
        // Clients `client, client + 1, …` (mod `C`): `need` distinct ones.
        let wanted = |c: usize| (c + clients - client) % clients < need;
        for mf in minis.into_iter().flatten().filter(|mf| mf.client < clients && wanted(mf.client)) {
            step.sends.push((To::Client(client), Message::Mini { from_node: true, mf: mf.clone() }));
        }
    }

    /// A leader whose [`Timer::Aggregate`] fired without proposing (no
    /// deter-vector, or fewer than `K − f` pre-vectors to carry) tries again.
    fn retry_aggregate(&mut self, step: &mut Step) {
        if self.is_leader()
            && self.committed.is_none()
            && self.aggregate_due.contains(&self.view)
            && !self.proposed_in.contains(&self.view)
        {
            self.aggregate(step);
        }
    }

    fn on_local(&mut self, m: LocalMessage, step: &mut Step) {
        let client = m.record.client;
        if !self.cfg.is_own_record(&m.record.ctx) {
            step.faults.push(Fault::WrongContext);
            return;
        }
        if client as usize >= self.cfg.clients {
            step.faults.push(Fault::Client {
                client,
                error: FlError::PositionOutOfRange { index: client as usize, len: self.cfg.clients },
            });
            return;
        }
        if self.pre_sent && mutants::active(Mutation::PreVectorSnapshot) {
            return;
        }
        // A repeat of the record accepted (a client re-sending its upload):
        // nothing to do.
        if self.accepted.get(&client).is_some_and(|prev| prev.record == m.record) {
            return;
        }
        // Authenticate first: a record not signed by the client's
        // registered key is refused and never counts as its equivocation.
        if let Err(error) = self.check_signature(&m) {
            step.faults.push(Fault::Client { client, error });
            return;
        }
        if self.accepted.contains_key(&client) {
            step.faults.push(Fault::Equivocation { client });
            return;
        }
        match self.verify_cell(self.me, &m) {
            Ok(()) => {
                self.hold(m.clone());
                self.accepted.insert(client, m.clone());
                if self.pre_sent {
                    // Late (after this node's first pre-vector): forwarded
                    // to the current leader and named in a fresh
                    // pre-vector ("Fresh pre-vectors" in the module docs).
                    let leader = self.cfg.leader(self.view);
                    if leader != self.me {
                        step.sends.push((To::Node(leader), Message::Forward { node: self.me, msg: m }));
                    }
                    self.attest_pre_vector(step);
                }
            }
            Err(error) => step.faults.push(Fault::Client { client, error }),
        }
    }

    /// Keeps a verified cell for decoding. At most `K` records per client
    /// (each node accepts one), so an equivocating client cannot grow it
    /// without bound.
    fn hold(&mut self, m: LocalMessage) {
        let d = m.record.digest();
        let records = self.held.entry(m.record.client).or_default();
        if !records.contains_key(&d) && records.len() >= self.cfg.nodes {
            return;
        }
        let e = records.entry(d).or_insert((m.record, BTreeMap::new()));
        e.1.entry(m.cell.index).or_insert(m.cell);
    }

    /// Whether `m`'s record (signature included) and cell are held
    /// already: a verified copy of exactly this message was kept.
    fn holds(&self, m: &LocalMessage) -> bool {
        self.held
            .get(&m.record.client)
            .and_then(|records| records.get(&m.record.digest()))
            .is_some_and(|(record, cells)| *record == m.record && cells.get(&m.cell.index) == Some(&m.cell))
    }

    /// The record's signature under its client's registered key.
    fn check_signature(&self, m: &LocalMessage) -> Result<(), FlError> {
        self.check_record_signature(&m.record)
    }

    fn check_record_signature(&self, record: &UploadRecord) -> Result<(), FlError> {
        let client = record.client;
        let pk = self.cfg.client_keys.get(client as usize).ok_or(FlError::Unauthenticated { client })?;
        record.verify_signature(pk)
    }

    /// Checks exclusion evidence (what every node's enclave recomputes):
    /// the client it proves faulty.
    pub fn check_exclusion(&self, ex: &Exclusion) -> Result<u32, EvidenceError> {
        // A record of another chain, round or chain history (same numbers,
        // another previous block) is no evidence here.
        let for_round = |r: &UploadRecord| self.cfg.is_own_record(&r.ctx);
        match ex {
            Exclusion::Equivocation { first, second } => {
                if !for_round(first) || !for_round(second) {
                    return Err(EvidenceError::WrongContext);
                }
                // Any two records of one client for the round: nodes do not
                // check a record's fragment index, so records differing only
                // there split the nodes as well.
                if first.client != second.client {
                    return Err(EvidenceError::Mismatch);
                }
                if first.digest() == second.digest() {
                    return Err(EvidenceError::SameRecord);
                }
                self.check_record_signature(first).map_err(EvidenceError::Record)?;
                self.check_record_signature(second).map_err(EvidenceError::Record)?;
                Ok(first.client)
            }
            Exclusion::Malformed { record, cells } => {
                if !for_round(record) {
                    return Err(EvidenceError::WrongContext);
                }
                self.check_record_signature(record).map_err(EvidenceError::Record)?;
                self.cfg.coder.check_record(record).map_err(EvidenceError::Record)?;
                if cells.len() > self.cfg.nodes || !cells.windows(2).all(|w| w[0].index < w[1].index) {
                    return Err(EvidenceError::CellList);
                }
                let (coeffs, faults) = self.cfg.coder.decode_cells(record, cells);
                if let Some(e) = faults.into_iter().next() {
                    return Err(EvidenceError::NotDecoded(e));
                }
                let coeffs = coeffs.map_err(EvidenceError::NotDecoded)?;
                let key = client_key(&self.shared_secret, record.client);
                match self.cfg.coder.open(&key, record, &coeffs).and_then(|pt| params_from_bytes(&pt, self.cfg.dims)) {
                    Ok(_) => Err(EvidenceError::WellFormed),
                    Err(_) => Ok(record.client),
                }
            }
        }
    }

    /// Whether the omission rule applies: the code needs at most `K − 2f`
    /// cells.
    fn omission_rule_applies(&self) -> bool {
        let code = self.cfg.coder.code();
        code.k().div_ceil(code.cell_size().max(1)) <= self.cfg.nodes - 2 * self.cfg.f()
    }

    /// The clients an honest leader of this round always decodes, by the
    /// pre-vectors this node holds: those named by at least `K − f` of
    /// them (a count, not an intersection: one Byzantine pre-vector must
    /// not veto a client's protection). No longer a rule: only the planted
    /// bug [`Mutation::FewCarriedPreVectors`] checks a proposal carrying no
    /// pre-vectors against it. See the omission rule in the module docs.
    fn decodable_by_every_honest_leader(&self) -> BTreeSet<u32> {
        let namers = self.cfg.nodes - self.cfg.f();
        if !self.omission_rule_applies() || self.pre_vectors.len() < namers {
            return BTreeSet::new();
        }
        let mut count: BTreeMap<u32, usize> = BTreeMap::new();
        for v in self.pre_vectors.values() {
            // A pre-vector is attested and sorted; count each client once.
            let unique: BTreeSet<u32> = v.clients.iter().copied().collect();
            for c in unique {
                *count.entry(c).or_insert(0) += 1;
            }
        }
        count.into_iter().filter(|&(_, n)| n >= namers).map(|(c, _)| c).collect()
    }

    /// The clients protected by a set of `m` attested pre-vectors of
    /// distinct nodes (`m ≥ K − f`): those named by at least `m − f` of
    /// them. With `b ≤ f` Byzantine vectors among them, an honest client
    /// (named by every honest one) is named `≥ m − b ≥ m − f` times, and a
    /// protected client by `≥ m − 2f` honest nodes — `≥ K − 2f ≥ T` when
    /// the `m` include every honest node's vector, as an honest leader's do.
    fn protected_by<'a>(&self, vectors: impl Iterator<Item = &'a [u32]>) -> BTreeSet<u32> {
        if !self.omission_rule_applies() {
            return BTreeSet::new();
        }
        let mut m = 0usize;
        let mut count: BTreeMap<u32, usize> = BTreeMap::new();
        for v in vectors {
            m += 1;
            for c in v.iter().copied().collect::<BTreeSet<u32>>() {
                *count.entry(c).or_insert(0) += 1;
            }
        }
        if m < self.cfg.nodes - self.cfg.f() {
            return BTreeSet::new();
        }
        let namers = m - self.cfg.f();
        count.into_iter().filter(|&(_, n)| n >= namers).map(|(c, _)| c).collect()
    }

    /// A proposal's carried pre-vectors: at least `K − f`, of distinct
    /// nodes in increasing order, each well formed, attested by its node
    /// and attested in the proposal's view or later (see "Fresh
    /// pre-vectors" in the module docs).
    fn check_carried(&self, view: u32, carried: &[AttestedVector]) -> Result<(), Fault> {
        let bad = |error: &str| Fault::BadProposal { view, error: error.to_string() };
        if carried.len() < self.cfg.nodes - self.cfg.f() || carried.len() > self.cfg.nodes {
            return Err(bad("carries fewer than K − f or more than K pre-vectors"));
        }
        if !carried.windows(2).all(|w| w[0].node < w[1].node) {
            return Err(bad("carried pre-vectors not of distinct nodes in order"));
        }
        for v in carried {
            if !self.well_formed(&v.clients) {
                return Err(bad("a carried pre-vector is malformed"));
            }
            if v.view < view && !mutants::active(Mutation::StaleCarriedPreVectors) {
                return Err(bad("a carried pre-vector was attested in an earlier view"));
            }
            let ev = self.cfg.vector_evidence(PRE_VECTOR, v.node, v.view, v.seq, &v.clients);
            self.cfg.check_attestation(v.node, &v.ra, &ev).map_err(|f| bad(&format!("carried pre-vector: {f:?}")))?;
        }
        Ok(())
    }

    /// Eq 7.8 and the degree bound for the cell of node `node`.
    fn verify_cell(&self, node: usize, m: &LocalMessage) -> Result<(), FlError> {
        if mutants::active(Mutation::ProofsUnchecked) && m.cell.index == node {
            return Ok(());
        }
        self.cfg.coder.verify_message(node, m)
    }

    /// Checks a pre- or deter-vector (`tag`) that node `node` sent: it
    /// comes from that node, is well formed and its attestation covers it.
    fn attested_vector(&self, from: Source, tag: Tag, v: &AttestedVector) -> Result<(), Fault> {
        let node = v.node;
        sent_by(from, node)?;
        if !self.well_formed(&v.clients) {
            return Err(Fault::BadVector { node });
        }
        self.cfg.check_attestation(node, &v.ra, &self.cfg.vector_evidence(tag, node, v.view, v.seq, &v.clients))
    }

    /// A client vector: strictly increasing ids of existing clients.
    fn well_formed(&self, clients: &[u32]) -> bool {
        clients.windows(2).all(|w| w[0] < w[1]) && clients.last().is_none_or(|&c| (c as usize) < self.cfg.clients)
    }

    /// A timer fired.
    pub fn on_timer(&mut self, t: Timer) -> Step {
        let mut step = Step::default();
        match t {
            Timer::PreVector => self.send_pre_vector(&mut step),
            Timer::Tally => self.tally(&mut step),
            Timer::Aggregate(v) => {
                if v == self.view && self.is_leader() && self.committed.is_none() {
                    self.aggregate_due.insert(v);
                    self.aggregate(&mut step);
                }
            }
            Timer::View(v) => {
                if v == self.view && self.committed.is_none() {
                    // Still here: ask for the next view not asked yet, and
                    // re-arm, so a view change that does not gather `2f+1`
                    // requests moves on to a later one (as PBFT's does).
                    let next = self.asked_view.max(v) + 1;
                    self.ask_view(next, &mut step);
                    step.timers.push((Timer::View(v), self.timing.view + self.timing.aggregate));
                }
            }
            Timer::Pbft(t) => {
                if let Ok(p) = self.pbft.as_mut().map(|r| r.handle_timer(t)) {
                    self.absorb(p, &mut step);
                }
            }
            Timer::Resync(_) => {}
        }
        step
    }

    /// [`Timer::PreVector`]: this node's first pre-vector, and its
    /// accepted messages forwarded to the leader.
    fn send_pre_vector(&mut self, step: &mut Step) {
        if self.pre_sent {
            return;
        }
        self.pre_sent = true;
        self.attest_pre_vector(step);
        let leader = self.cfg.leader(self.view);
        if leader != self.me {
            for m in self.accepted.values() {
                step.sends.push((To::Node(leader), Message::Forward { node: self.me, msg: m.clone() }));
            }
        }
    }

    /// A fresh pre-vector: every client accepted so far, attested with the
    /// current aggregation view and the next sequence number, sent to
    /// every node (see "Fresh pre-vectors" in the module docs).
    fn attest_pre_vector(&mut self, step: &mut Step) {
        let seq = self.pre_vectors.get(&self.me).map_or(0, |v| v.seq.saturating_add(1));
        let (view, clients): (u32, Vec<u32>) = (self.view, self.accepted.keys().copied().collect());
        let ra = self.enclave.attest_evidence(&self.cfg.vector_evidence(PRE_VECTOR, self.me, view, seq, &clients));
        self.pre_vectors.insert(self.me, AttestedVector { node: self.me, view, seq, clients: clients.clone(), ra });
        self.to_nodes(step, Message::PreVector { node: self.me, view, seq, clients: clients.clone(), ra });
        step.outputs.push(Output::PreVector(clients));
        self.retally(step);
        self.retry_aggregate(step);
    }

    /// [`Timer::Tally`]: the first tally; from then on it is recomputed
    /// whenever a fresher pre-vector arrives ([`Self::retally`]).
    fn tally(&mut self, step: &mut Step) {
        if self.tallied {
            return;
        }
        self.tallied = true;
        self.retally(step);
    }

    /// The tally over the freshest pre-vector of each node: the clients
    /// counted `≥ 2f + 1` times. When it changed (it only grows: each
    /// node's vectors only grow), a committee member attests it as its
    /// next deter-vector and sends it to every node.
    fn retally(&mut self, step: &mut Step) {
        if !self.tallied {
            return;
        }
        let mut count: BTreeMap<u32, usize> = BTreeMap::new();
        for v in self.pre_vectors.values() {
            for c in v.clients.iter().collect::<BTreeSet<_>>() {
                *count.entry(*c).or_default() += 1;
            }
        }
        let quorum = if mutants::active(Mutation::TallyShort) { self.cfg.quorum() - 1 } else { self.cfg.quorum() };
        let clients: Vec<u32> = count.into_iter().filter(|(_, n)| *n >= quorum).map(|(c, _)| c).collect();
        if self.last_tally.as_ref() == Some(&clients) {
            return;
        }
        self.last_tally = Some(clients.clone());
        if self.committee.binary_search(&self.me).is_ok() {
            let seq = self.deter_vectors.get(&self.me).map_or(0, |v| v.seq.saturating_add(1));
            let view = self.view;
            let ev = self.cfg.vector_evidence(DETER_VECTOR, self.me, view, seq, &clients);
            let ra = self.enclave.attest_evidence(&ev);
            let v = AttestedVector { node: self.me, view, seq, clients: clients.clone(), ra };
            self.deter_vectors.insert(self.me, v);
            // (A waiting leader's retry is its caller's: one per input.)
            self.to_nodes(step, Message::DeterVector { node: self.me, view, seq, clients: clients.clone(), ra });
        }
        step.outputs.push(Output::DeterVector(clients));
    }

    /// The leader's enclave: agreement vector, decode, decrypt, trimmed
    /// mean, first coding, root and attestation.
    fn aggregate(&mut self, step: &mut Step) {
        let view = self.view;
        if self.proposed_in.contains(&view) {
            return;
        }
        let mut agreed: BTreeSet<u32> = self.deter_vectors.values().flat_map(|v| v.clients.iter().copied()).collect();
        // The proposal carries the freshest attested pre-vector of each
        // node attested in this view or later; each node checks the
        // omission rule against exactly these, so the leader aggregates
        // every client they protect (see the omission rule and "Fresh
        // pre-vectors" in the module docs).
        let carried: Vec<AttestedVector> = self.pre_vectors.values().filter(|v| v.view >= view).cloned().collect();
        // Every node refuses a proposal carrying fewer than `K − f`
        // pre-vectors: the leader waits for them (it retries as each one
        // arrives; every honest node sends one well before this timer).
        if carried.len() < self.cfg.nodes - self.cfg.f() {
            return;
        }
        if !mutants::active(Mutation::LeaderDeterOnly) {
            agreed.extend(self.protected_by(carried.iter().map(|v| &v.clients[..])));
        }
        let mut models = Vec::new();
        let mut used = Vec::new();
        let mut excluded = Vec::new();
        for c in agreed {
            let Some(records) = self.held.get(&c) else {
                step.faults.push(Fault::Excluded { client: c, error: FlError::Undecodable { need: 1, have: 0 } });
                continue;
            };
            // Two different records signed by the client: it equivocated.
            // Excluded with that evidence even when one of them decodes
            // (with `T ≤ K − 2f` both halves of a split upload may).
            if let (Some((first, _)), Some((second, _))) = {
                let mut rs = records.values();
                (rs.next(), rs.next())
            } {
                step.faults.push(Fault::Excluded { client: c, error: FlError::Equivocated { client: c } });
                excluded.push(Exclusion::Equivocation { first: Box::new(*first), second: Box::new(*second) });
                continue;
            }
            let Some((record, cells)) = records.values().max_by_key(|(_, cells)| cells.len()) else {
                continue;
            };
            let cells: Vec<_> = cells.values().cloned().collect();
            let key = client_key(&self.shared_secret, c);
            let (coeffs, _) = self.cfg.coder.decode_cells(record, &cells);
            let model = coeffs
                .clone()
                .and_then(|co| self.cfg.coder.open(&key, record, &co))
                .and_then(|pt| params_from_bytes(&pt, self.cfg.dims));
            match model {
                Ok(p) => {
                    models.push(p);
                    used.push(c);
                }
                Err(error) => {
                    step.faults.push(Fault::Excluded { client: c, error });
                    // The evidence that lets the nodes accept the omission:
                    // the decodable record's cells (its model is malformed);
                    // a client with two records was excluded above.
                    if coeffs.is_ok() {
                        excluded.push(Exclusion::Malformed { record: Box::new(*record), cells });
                    }
                }
            }
        }
        if models.is_empty() {
            return;
        }
        let beta = if mutants::active(Mutation::PlainMean) { 0 } else { self.cfg.beta };
        let global = match trimmed_mean(&models, beta) {
            Ok(g) => g,
            Err(error) => {
                step.faults.push(Fault::BadProposal { view, error: error.to_string() });
                return;
            }
        };
        let release = match self.cfg.release(&params_to_bytes(&global)) {
            Ok(r) => r,
            Err(error) => {
                step.faults.push(Fault::BadProposal { view, error: error.to_string() });
                return;
            }
        };
        self.proposed_in.insert(view);
        let ev = self.cfg.aggregate_evidence(view, &release.root, &used);
        let ra = self.enclave.attest_evidence(&ev);
        step.outputs.push(Output::Aggregated { view, root: release.root, clients: used.clone() });
        for sf in release.subfragments {
            let p = Proposal {
                view,
                root: release.root,
                clients: used.clone(),
                ra,
                sf,
                excluded: excluded.clone(),
                pre_vectors: carried.clone(),
            };
            if p.sf.node == self.me {
                self.on_proposal(p, step);
            } else {
                let to = To::Node(p.sf.node);
                let Proposal { view, root, clients, ra, sf, excluded, pre_vectors } = p;
                step.sends.push((to, Message::Proposal { view, root, clients, ra, sf, excluded, pre_vectors }));
            }
        }
    }

    fn on_proposal(&mut self, p: Proposal, step: &mut Step) {
        let kept = p.clone();
        let Proposal { view, root, clients, ra, sf, excluded, pre_vectors } = p;
        // A committed node still checks the committed view's proposal: it
        // needs its subfragment to serve its mini-fragments.
        // A proposal of a later view (this node has not moved yet) is checked
        // too: its attestation binds it to that view's leader.
        let wanted = match self.committed {
            Some((v, _)) => v == view,
            None => view >= self.view && view <= self.view.saturating_add(self.cfg.nodes as u32),
        };
        if !wanted || self.checked_in.contains(&view) || (view > self.view && self.refused_ahead.contains(&view)) {
            return;
        }
        let leader = self.cfg.leader(view);
        let ev = self.cfg.aggregate_evidence(view, &root, &clients);
        let attested = if mutants::active(Mutation::RootUnchecked) {
            Ok(())
        } else {
            self.cfg.check_attestation(leader, &ra, &ev)
        };
        let bad = |error: String| Fault::BadProposal { view, error };
        let check = attested.map_err(|f| bad(format!("{f:?}"))).and_then(|()| {
            if sf.ctx.chain != self.cfg.chain
                || sf.ctx.round != self.cfg.round
                || sf.ctx.instance != self.cfg.instance()
            {
                return Err(bad("subfragment for another chain, round or chain history".to_string()));
            }
            self.check_omissions(view, &clients, &excluded, &pre_vectors)?;
            self.cfg.global.mini_fragments(self.me, &root, &sf).map_err(|e| bad(e.to_string()))
        });
        // A failed proposal for a later view (its leader's own, sent early)
        // moves nobody: it is recorded, and the view is checked again once
        // current; only one for the current view makes this node ask for the
        // next. So a Byzantine node spends at most the views it leads.
        let ahead = view > self.view;
        if check.is_err() && ahead {
            self.refused_ahead.insert(view);
        } else {
            self.checked_in.insert(view);
        }
        match check {
            Ok(minis) => {
                let key = block_key(view, root, &clients);
                self.minis.insert((view, root), minis);
                self.verified.insert(key.clone(), clients);
                self.proposals.insert(key.clone(), kept);
                self.fetches.remove(&key);
                self.answer_asked((view, root), step);
                self.disseminate(step);
            }
            Err(fault) => {
                if !ahead {
                    self.rejected.insert(view);
                }
                step.faults.push(fault);
                let own_context = sf.ctx.chain == self.cfg.chain
                    && sf.ctx.round == self.cfg.round
                    && sf.ctx.instance == self.cfg.instance();
                if let Some(minis) =
                    own_context.then(|| self.cfg.global.mini_fragments(self.me, &root, &sf).ok()).flatten()
                {
                    self.standby.insert((view, root), minis);
                    self.disseminate(step);
                }
                if self.committed.is_none() && !ahead {
                    self.ask_view(view + 1, step);
                }
            }
        }
        self.drive_pbft(step);
    }

    /// The omission rule: every piece of exclusion evidence proves its
    /// client faulty (and is for a client left out, once), and every
    /// client an honest leader always decodes is aggregated or excluded
    /// with evidence.
    fn check_omissions(
        &self,
        view: u32,
        clients: &[u32],
        excluded: &[Exclusion],
        carried: &[AttestedVector],
    ) -> Result<(), Fault> {
        if excluded.len() > self.cfg.clients {
            return Err(Fault::BadProposal { view, error: "more exclusion evidence than clients".into() });
        }
        let mut proven = BTreeSet::new();
        for ex in excluded {
            let client = ex.client();
            let checked = if clients.contains(&client) {
                Err(EvidenceError::Aggregated)
            } else if proven.contains(&client) {
                Err(EvidenceError::Duplicate)
            } else {
                self.check_exclusion(ex)
            };
            match checked {
                Ok(c) => {
                    proven.insert(c);
                }
                Err(error) => return Err(Fault::BadExclusion { view, client, error }),
            }
        }
        if mutants::active(Mutation::OmissionUnchecked) {
            return Ok(());
        }
        // Every honest node checks a proposal against the same data, the
        // pre-vectors it carries: one carrying none (or fewer than `K − f`)
        // is refused by `check_carried` everywhere, never checked against
        // the pre-vectors this node happens to hold.
        let protected = if carried.is_empty() && mutants::active(Mutation::FewCarriedPreVectors) {
            self.decodable_by_every_honest_leader()
        } else {
            self.check_carried(view, carried)?;
            self.protected_by(carried.iter().map(|v| &v.clients[..]))
        };
        match protected.into_iter().find(|c| !clients.contains(c) && !proven.contains(c)) {
            Some(client) => Err(Fault::UnprovenOmission { view, client }),
            None => Ok(()),
        }
    }

    fn ask_view(&mut self, view: u32, step: &mut Step) {
        if view <= self.view || view <= self.asked_view {
            return;
        }
        self.asked_view = view;
        self.to_nodes(step, Message::ViewChange { node: self.me, view });
        self.on_view_change(self.me, view, step);
    }

    /// A node asks for aggregation view `view`. Each node's highest request
    /// is kept (one per node, however far ahead). A request for `w` supports
    /// every view up to `w`: when `f+1` nodes ask for views `≥ v` (someone
    /// honest saw a failure) this node joins, asking for `v`; when `2f+1`
    /// do, it moves to `v` — the largest such `v` each time. A Byzantine
    /// node alone (or `f` of them) moves no one.
    fn on_view_change(&mut self, node: usize, view: u32, step: &mut Step) {
        if view <= self.view || self.committed.is_some() || node >= self.cfg.nodes {
            return;
        }
        let r = self.view_requests.entry(node).or_insert(0);
        *r = (*r).max(view);
        let mut ahead: Vec<u32> = self.view_requests.values().copied().filter(|&v| v > self.view).collect();
        ahead.sort_unstable_by(|a, b| b.cmp(a));
        let f = self.cfg.f();
        if let Some(&join) = ahead.get(f) {
            if join > self.asked_view {
                self.ask_view(join, step);
                return;
            }
        }
        if let Some(&view) = ahead.get(self.cfg.quorum() - 1) {
            self.view = view;
            step.outputs.push(Output::NewView(view));
            let leader = self.cfg.leader(view);
            if leader != self.me {
                for m in self.accepted.values() {
                    step.sends.push((To::Node(leader), Message::Forward { node: self.me, msg: m.clone() }));
                }
            }
            // A fresh pre-vector for the new view, to every node (one per
            // node per view): a pre-vector lost before GST (a partition
            // around the pre-vector timer) is replaced by one that reaches
            // the later leaders, so an honest leader waiting for `K − f`
            // of them is not stuck for ever; and it names the uploads that
            // arrived since ("Fresh pre-vectors" in the module docs).
            if !mutants::active(Mutation::PreVectorOneShot) {
                self.attest_pre_vector(step);
            }
            step.timers.push((Timer::Aggregate(view), self.timing.aggregate.saturating_sub(self.timing.tally)));
            step.timers.push((Timer::View(view), self.timing.view + self.timing.aggregate));
            // Blocks of views this node has now left without their proposal
            // are fetched.
            self.drive_pbft(step);
        }
    }
}

/// The mini-fragments held in `m` for the committed `(view, root)`: those
/// of that view, else those of another view with the same root (they
/// depend on the root and the node's position only, not on the view that
/// delivered the subfragment).
fn minis_for(m: &BTreeMap<(u32, Hash32), Vec<MiniFragment>>, key: (u32, Hash32)) -> Option<&Vec<MiniFragment>> {
    m.get(&key).or_else(|| m.iter().find(|((_, r), _)| *r == key.1).map(|(_, v)| v))
}

/// The key of the block `(view, root, clients)` in a node's stores of
/// verified, relayed and fetched proposals ([`BlockKey`]). Under the planted
/// bug [`Mutation::RootKeyedStores`] the client list is left out, so the
/// stores are keyed by `(view, root)` again.
fn block_key(view: u32, root: Hash32, clients: &[u32]) -> BlockKey {
    if mutants::active(Mutation::RootKeyedStores) {
        (view, root, Vec::new())
    } else {
        (view, root, clients.to_vec())
    }
}

/// What a relayed proposal's failed check says, for its relayer's
/// [`Fault::BadRelay`] (the check's own record would name the view or a
/// client of it, not the relayer).
fn relayed_error(f: Fault) -> String {
    match f {
        Fault::BadProposal { error, .. } => error,
        Fault::BadExclusion { client, error, .. } => format!("exclusion evidence for client {client}: {error:?}"),
        Fault::UnprovenOmission { client, .. } => format!("client {client} left out without exclusion evidence"),
        other => format!("{other:?}"),
    }
}

/// A message of a node's kind naming node `named` as its sender: refused
/// unless `from` is that node, as `from`'s fault ([`Fault::Impersonation`]),
/// never `named`'s.
fn sent_by(from: Source, named: usize) -> Result<(), Fault> {
    if from == Source::Node(named) {
        Ok(())
    } else {
        Err(impersonation(from, named))
    }
}

/// The record of `from` sending a message of a node's kind that claims node
/// `claimed` as its sender (or, for a proposal, its leader).
fn impersonation(from: Source, claimed: usize) -> Fault {
    if mutants::active(Mutation::ImpersonationBlamesNamed) {
        Fault::UnknownNode(claimed)
    } else {
        Fault::Impersonation { from, claimed: Some(claimed) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kzg::Kzg;
    use crate::round::{sim_client_signing_key, sim_node_key};
    use gridledger_core::enclave::SoftwareAttester;

    fn params(nodes: usize, clients: usize) -> ChainParams {
        let enclave = |k: usize| SoftwareAttester::new(k, b"ctp-fl enclave v1", [k as u8 + 1; 32]);
        let coder = FragmentCoder::new(Kzg::insecure_from_seed(16, 9), 128, nodes, nodes - 2 * ((nodes - 1) / 3));
        ChainParams {
            task: Hash32([1; 32]),
            run: Hash32([4; 32]),
            chain: 2,
            round: 5,
            nodes,
            clients,
            dims: 28,
            beta: 1,
            measurement: enclave(0).measurement(),
            node_keys: (0..nodes).map(|k| enclave(k).attestation_key()).collect(),
            pbft_keys: (0..nodes).map(|k| sim_node_key(k).public()).collect(),
            client_keys: (0..clients as u32).map(|c| sim_client_signing_key(&[17; 32], c).public()).collect(),
            random_value: [7; 32],
            prev_block: Hash32([3; 32]),
            coder: Arc::new(coder.unwrap()),
            global: Arc::new(GlobalCoder::for_chain(112, nodes, clients).unwrap()),
        }
    }

    /// The instance a configuration holds is the hash of its parameters,
    /// taken when it is built; it is what every instance-bound check and
    /// context of the configuration uses; a configuration built from
    /// parameters that differ in any bound part holds another one.
    #[test]
    fn the_cached_instance_is_the_parameters_hash_and_follows_every_change() {
        let p = params(4, 7);
        let cfg = ChainConfig::new(p.clone());
        let fresh = p.compute_instance();
        assert_eq!(cfg.instance(), fresh);
        assert_eq!(cfg.clone().instance(), fresh);
        assert_eq!(cfg.fragment_context(1).instance, fresh);
        assert!(cfg.is_own_record(&FragmentContext { instance: fresh, chain: 2, round: 5, fragment: 1 }));
        assert_eq!(cfg.validator_set().unwrap().instance, fresh);
        type Change = (&'static str, fn(&mut ChainParams));
        let changes: Vec<Change> = vec![
            ("task", |p| p.task = Hash32([2; 32])),
            ("run", |p| p.run = fresh_run_id()),
            ("chain", |p| p.chain = 3),
            ("round", |p| p.round = 6),
            ("prev_block", |p| p.prev_block = Hash32([0x99; 32])),
            ("random_value", |p| p.random_value = [0x55; 32]),
            ("beta", |p| p.beta = 2),
            ("dims", |p| p.dims = 29),
            ("measurement", |p| p.measurement = [9; 32]),
            ("client_keys", |p| p.client_keys[6] = sim_client_signing_key(&[18; 32], 6).public()),
            ("pbft_keys", |p| p.pbft_keys.swap(0, 1)),
            ("node_keys", |p| p.node_keys.swap(0, 1)),
            ("global", |p| p.global = Arc::new(GlobalCoder::for_chain(448, 4, 7).unwrap())),
        ];
        for (field, change) in changes {
            let mut q = cfg.params().clone();
            change(&mut q);
            let other = ChainConfig::new(q.clone());
            assert_ne!(other.instance(), cfg.instance(), "another {field}, the same instance");
            assert_eq!(other.instance(), q.compute_instance(), "{field}: cached and fresh differ");
            assert!(!other.is_own_record(&cfg.fragment_context(1)), "{field}: a record of the old instance is own");
        }
        // Another shape altogether (more nodes and clients).
        let big = params(7, 10);
        assert_eq!(ChainConfig::new(big.clone()).instance(), big.compute_instance());
        assert_ne!(big.compute_instance(), fresh);
    }
}
