//! Admission control at the edge: a bound on the transactions in flight
//! (admitted, not yet delivered), so that load offered beyond what the
//! epochs deliver is refused where it enters, with a reason, instead of
//! queueing without bound.
//!
//! Why a bound on what is in flight, not on a rate: an atomic broadcast
//! delivers at most one batch per replica per epoch, and an epoch takes
//! longer the more it carries and the busier the machine is, so the
//! capacity is not known in advance. What the ordering layer needs to run
//! at capacity is enough transactions waiting for the next batch while
//! the current one is agreed on; everything beyond that only waits (in the
//! batch source, in messages, in the logs), and a queue that grows faster
//! than it drains makes every later transaction wait longer — until
//! clients time out and send again, which adds load exactly when there is
//! none to spare (congestion collapse). With the window full, a new
//! transaction is refused ([`Backlog`]) and counted; throughput stays at
//! capacity and latency at a few epochs.

/// Why [`Admission::try_admit`] refused a transaction: the window of
/// transactions in flight is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("backlog: {in_flight} transactions in flight, the bound is {cap}; offered load above capacity refused")]
pub struct Backlog {
    pub in_flight: usize,
    pub cap: usize,
}

/// At most `cap` transactions in flight: [`Admission::try_admit`] takes a
/// slot, [`Admission::settle`] gives it back once the transaction is
/// delivered (or given up). `cap == 0` would refuse everything and is
/// raised to 1.
#[derive(Clone, Debug)]
pub struct Admission {
    cap: usize,
    in_flight: usize,
    admitted: u64,
    refused: u64,
}

impl Admission {
    pub fn new(cap: usize) -> Self {
        Self { cap: cap.max(1), in_flight: 0, admitted: 0, refused: 0 }
    }

    /// The window a driver needs to keep `proposers` batch sources full:
    /// `depth` batches of `batch` transactions per proposer (the one being
    /// agreed on and the next one waiting, at least), each transaction
    /// sent to `tau` of them (`tau` copies fill `tau` slots of batches).
    pub fn window_for(batch: usize, depth: usize, tau: usize) -> usize {
        batch.saturating_mul(depth.max(1)).div_ceil(tau.max(1)).max(1)
    }

    /// Takes a slot for one transaction, or refuses it with the reason.
    pub fn try_admit(&mut self) -> Result<(), Backlog> {
        if self.in_flight >= self.cap {
            self.refused += 1;
            return Err(Backlog { in_flight: self.in_flight, cap: self.cap });
        }
        self.in_flight += 1;
        self.admitted += 1;
        Ok(())
    }

    /// One admitted transaction left the window (delivered or given up).
    /// Settling more than was admitted is ignored.
    pub fn settle(&mut self) {
        self.in_flight = self.in_flight.saturating_sub(1);
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight
    }

    pub fn cap(&self) -> usize {
        self.cap
    }

    /// Transactions admitted so far.
    pub fn admitted(&self) -> u64 {
        self.admitted
    }

    /// Transactions refused so far.
    pub fn refused(&self) -> u64 {
        self.refused
    }
}
