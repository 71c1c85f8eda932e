//! Back-pressure in the leaderless BFT's batch path: the FIFO batch source
//! is a bounded queue that refuses with a typed reason ([`Refused`]), and
//! the edge's window of transactions in flight ([`Admission`]) refuses
//! offered load beyond it ([`Backlog`]) instead of queueing it — so
//! whatever the offered load, what waits is bounded and what is delivered
//! per epoch stays at the batch capacity.

use gridledger_consensus::lbft::{tx_id, Admission, Backlog, BatchSource, FifoPolicy, Refused};
use gridledger_core::Hash32;

fn tx(i: u64) -> Vec<u8> {
    format!("tx-{i}").into_bytes()
}

#[test]
fn a_full_fifo_queue_refuses_with_its_bound_and_keeps_what_it_held() {
    let mut p = FifoPolicy::new(2, 3);
    for i in 0..3 {
        assert_eq!(p.try_submit(tx(i)), Ok(()));
    }
    assert_eq!(p.try_submit(tx(3)), Err(Refused::QueueFull { cap: 3 }));
    assert_eq!(p.try_submit(tx(0)), Err(Refused::QueueFull { cap: 3 }), "full is checked first");
    assert_eq!(p.pending(), 3, "a refused transaction is not queued");
    assert_eq!(p.next_batch(0), vec![tx(0), tx(1)], "the queue's head is unchanged");
    // A delivery frees room: the refused transaction is taken now.
    p.delivered_ids(&[tx_id(&tx(0))]);
    assert_eq!(p.try_submit(tx(3)), Ok(()));
    assert_eq!(p.try_submit(tx(3)), Err(Refused::QueueFull { cap: 3 }));
    p.delivered_ids(&[tx_id(&tx(1))]);
    assert_eq!(p.try_submit(tx(3)), Err(Refused::Duplicate), "already queued");
    assert_eq!(p.try_submit_with_id(tx_id(&tx(9)), tx(9)), Ok(()));
    assert_eq!(p.pending(), 3);
    assert_eq!(p.capacity(), 3);
    // The typed reason reads as one.
    assert!(Refused::QueueFull { cap: 3 }.to_string().contains("queue full"));
}

#[test]
fn the_admission_window_refuses_beyond_its_bound_and_frees_a_slot_per_delivery() {
    let mut w = Admission::new(3);
    for _ in 0..3 {
        assert_eq!(w.try_admit(), Ok(()));
    }
    assert_eq!(w.try_admit(), Err(Backlog { in_flight: 3, cap: 3 }));
    assert_eq!(w.try_admit(), Err(Backlog { in_flight: 3, cap: 3 }));
    assert_eq!((w.admitted(), w.refused(), w.in_flight()), (3, 2, 3));
    w.settle();
    assert_eq!(w.try_admit(), Ok(()));
    assert_eq!(w.try_admit(), Err(Backlog { in_flight: 3, cap: 3 }));
    // Settling more than was admitted does not open the window wider.
    for _ in 0..10 {
        w.settle();
    }
    assert_eq!(w.in_flight(), 0);
    for _ in 0..3 {
        assert_eq!(w.try_admit(), Ok(()));
    }
    assert!(w.try_admit().is_err());
    assert!(Backlog { in_flight: 3, cap: 3 }.to_string().contains("backlog"));
    assert_eq!(Admission::new(0).cap(), 1, "a zero bound would refuse everything");
}

#[test]
fn window_sizes_cover_the_batches_in_flight() {
    // Two batches of 4,000 per proposer, one copy each: 8,000.
    assert_eq!(Admission::window_for(4_000, 2, 1), 8_000);
    // τ = 3 copies of each transaction fill three batch slots.
    assert_eq!(Admission::window_for(4_000, 2, 3), 2_667);
    assert_eq!(Admission::window_for(1, 0, 0), 1);
}

/// An epoch loop: clients offer `offered` transactions per epoch to one
/// FIFO source through a window; each epoch proposes one batch and
/// delivers it. Returns (delivered per epoch, largest queue, refused).
fn run(offered: u64, batch: usize, window: Option<usize>, epochs: u64) -> (Vec<usize>, usize, u64) {
    let mut pool = FifoPolicy::new(batch, 1 << 20);
    let mut edge = window.map(Admission::new);
    let (mut next, mut refused, mut largest) = (0u64, 0u64, 0usize);
    let mut delivered = Vec::new();
    for e in 0..epochs {
        for _ in 0..offered {
            if let Some(w) = edge.as_mut() {
                if w.try_admit().is_err() {
                    refused += 1;
                    continue;
                }
            }
            assert_eq!(pool.try_submit(tx(next)), Ok(()));
            next += 1;
        }
        largest = largest.max(pool.pending());
        let b = pool.next_batch(e);
        let ids: Vec<Hash32> = b.iter().map(|t| tx_id(t)).collect();
        pool.delivered_ids(&ids);
        for _ in &ids {
            if let Some(w) = edge.as_mut() {
                w.settle();
            }
        }
        delivered.push(ids.len());
    }
    (delivered, largest, refused)
}

#[test]
fn with_a_window_the_queue_stays_bounded_and_delivery_stays_at_capacity_whatever_the_offered_load() {
    let batch = 100;
    let window = Admission::window_for(batch, 2, 1);
    let mut last_total = 0;
    for offered in [50u64, 100, 200, 1_000, 10_000] {
        let (delivered, largest, refused) = run(offered, batch, Some(window), 50);
        assert!(largest <= window, "offered {offered}: {largest} queued, the window is {window}");
        let total: usize = delivered.iter().sum();
        // Monotone: more offered load never delivers less.
        assert!(total >= last_total, "offered {offered}: {total} delivered < {last_total}");
        last_total = total;
        if offered as usize >= batch {
            // Above capacity every epoch carries a full batch and the
            // excess is refused at the edge.
            assert!(delivered.iter().all(|&d| d == batch), "offered {offered}: {delivered:?}");
            assert_eq!(refused, offered * 50 - (window as u64 + 49 * batch as u64).min(offered * 50));
        } else {
            assert_eq!(refused, 0);
        }
    }
    // Without the window the same overload only queues: the backlog grows
    // with every epoch (the collapse the window prevents).
    let (_, largest, refused) = run(1_000, batch, None, 50);
    assert_eq!(refused, 0);
    assert!(largest > 40 * 900, "{largest}");
}
