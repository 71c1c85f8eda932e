//! Planted bugs for the CTP-FL dual consensus's mutation-sensitivity check
//! (`cargo test -p gridledger-fl --features mutants --test mutants`): each
//! [`Mutation`] disables one defence of §7.4, and the check asserts that the
//! simulator with Byzantine clients and nodes catches it. Without the
//! `mutants` feature [`active`] is constantly `false` and the compiler
//! removes every planted branch.
//!
//! No "lost durable state" bug is planted: a node keeps no round state on
//! disk (a node that crashes mid-round rejoins at the next round, see
//! [`crate::consensus`]), so there is nothing to lose.

/// One planted bug.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutation {
    /// Nodes and the leader accept a client's cell without checking its
    /// proof or degree bound against the upload record (Eq 7.8).
    ProofsUnchecked,
    /// The tally puts a client into the deter-vector with `2f` pre-vector
    /// votes instead of `2f+1`.
    TallyShort,
    /// The leader aggregates with the plain mean instead of the trimmed
    /// mean (Eqs 7.19–7.20 with `β = 0`).
    PlainMean,
    /// Nodes vote for a proposal's root without checking the leader's
    /// attestation or their subfragment's Merkle proof under the root.
    RootUnchecked,
    /// Nodes accept a proposal that leaves out a client every pre-vector
    /// named without exclusion evidence for it (the omission rule).
    OmissionUnchecked,
    /// The leader aggregates only the deter-vector union, not every client
    /// the pre-vectors its proposal carries protect (the omission rule's
    /// protected set), so honest nodes refuse every honest leader whose
    /// pre-vectors protect a client outside the deter-vectors.
    LeaderDeterOnly,
    /// A node that refused a proposal whose root PBFT then committed does
    /// not serve its mini-fragments.
    RefusedNodeSilent,
    /// A client encrypts under a random nonce instead of the derived one
    /// (`aead::derive_nonce`), so a retry of the same model is a second
    /// record: equivocation evidence against an honest client.
    RandomNonce,
    /// The chain instance leaves the run id out, so an earlier run's
    /// attested pre-vectors verify in this one.
    RunUnbound,
    /// A replica validates a PBFT root block only by a proposal it
    /// received from the block's aggregation leader itself: it never
    /// fetches the proposal of a view it left without one from its peers,
    /// so nodes a Byzantine leader skipped never validate the prepared
    /// block PBFT must re-propose.
    ReproposalViewBound,
    /// A node takes a proposal relayed by a peer on the relayer's word (no
    /// attestation, exclusion evidence or omission check): a relay naming
    /// the fetched block's `(view, root, clients)` is taken even when the
    /// view's leader never attested it, and a forged relay is not recorded
    /// against its relayer.
    RelayUnchecked,
    /// A node forgets a fetch request it cannot answer yet (it has not
    /// verified that proposal): a peer whose request reached it before it
    /// verified never gets its relay, and the `f + 1` honest relayers a
    /// prepared block guarantees may be short.
    FetchForgotten,
    /// A node checks a proposal carrying no pre-vectors against the
    /// pre-vectors it holds itself (instead of refusing it), so honest
    /// nodes' verdicts on one proposal differ with what they happen to hold.
    FewCarriedPreVectors,
    /// A node attests its pre-vector at
    /// [`crate::consensus::Timer::PreVector`] and on late uploads only,
    /// never afresh for a later view: one lost before GST can leave every
    /// leader short of `K − f` pre-vectors of its view and halt the round.
    PreVectorOneShot,
    /// A node's pre-vector is a snapshot at
    /// [`crate::consensus::Timer::PreVector`]: uploads arriving later are
    /// ignored, never named, and the tally never counts them, so uploads
    /// delayed before GST halt the round.
    PreVectorSnapshot,
    /// A node accepts a proposal carrying pre-vectors attested in an
    /// earlier aggregation view than the proposal's, so a Byzantine leader
    /// may carry an honest node's older, shorter pre-vector and leave out
    /// a client its fresh one names.
    StaleCarriedPreVectors,
    /// A client sends its upload once only, at its start, never again
    /// while no committed root is known: uploads lost before GST halt the
    /// round.
    UploadOneShot,
    /// A node asks its peers for a proposal it fetches once only, never
    /// again on a later PBFT view.
    FetchOneShot,
    /// A client that has not decoded never asks the nodes again
    /// ([`crate::consensus::Message::Resync`]): a root report or
    /// mini-fragments lost before GST cost it the round.
    ClientOneShot,
    /// A node answers a client's request ([`crate::consensus::Message::Resync`])
    /// with that client's own mini-fragment only, not enough to decode its
    /// subfragment: another client's forward lost before GST (or withheld
    /// by a Byzantine client) costs an honest client the round.
    ResyncOwnMinis,
    /// A node takes a [`crate::consensus::Message::Local`] from any sender
    /// and records a relayed record's bad cell (a `Local` or the leader's
    /// [`crate::consensus::Message::Forward`]) against the client the
    /// record names: one Byzantine relayer makes honest clients read as
    /// having sent bad cells, and is named nowhere.
    RelayBlamesClient,
    /// A node records a message of a node's kind whose sender is not the
    /// node it names (another node, or a client) against the NAMED node
    /// ([`crate::consensus::Fault::UnknownNode`]) instead of its sender:
    /// one Byzantine node or client naming an honest peer makes the record
    /// accuse that peer, and is named nowhere.
    ImpersonationBlamesNamed,
    /// A node records a refused [`crate::consensus::Message::Relay`] as the
    /// relayed view's [`crate::consensus::Fault::BadProposal`] instead of
    /// against its relayer ([`crate::consensus::Fault::BadRelay`]): one
    /// Byzantine relayer makes an honest leader's proposal read as failed,
    /// and is named nowhere.
    RelayBlamesView,
    /// A client asks again every request period without backing off, so
    /// its [`crate::consensus::MAX_RESYNCS`] requests run out long before
    /// the driver's round budget ends.
    ResyncNoBackoff,
    /// A node keys its stores of verified, relayed and fetched proposals
    /// by `(view, root)` again, without the client list: two client lists
    /// a Byzantine leader attested under one root (equal trimmed means)
    /// share one entry, so a node that verified one list refuses the block
    /// of the other for good and never fetches it, and a relay of the other
    /// list completes a fetch (attack round 18).
    RootKeyedStores,
    /// A node refuses at once a PBFT block of an aggregation view whose
    /// own copy failed here (a junk copy from a Byzantine aggregation
    /// leader, an attestation over nothing say) instead of waiting for the
    /// fetch of the block's attested proposal: the honest PBFT leader
    /// proposing that view's genuine block is recorded as proposing an
    /// invalid block (attack round 19).
    FailedCopyRefuses,
    /// A client uses the global fragment it decoded without recoding it
    /// and checking the recoding against the agreed root: under a root
    /// over subfragments of two releases, clients that hear from
    /// different nodes assemble different fragments (attack round 20).
    ClientRecodeUnchecked,
}

// `plant` and `active`; the code under test runs on the planting thread.
gridledger_core::mutation_switch!(Mutation);
