//! Attack round 6 on CTP-FL's fragment coding (issue 16): the derived
//! fragment nonce (`aead::derive_nonce`) and the per-run chain instance.
//! Everything here held up; the tests run with the suite
//! (`cargo test -p gridledger-fl --test attack_r6`).

mod common;

use common::*;
use gridledger_fl::aead::{derive_nonce, encrypt_fragment};
use gridledger_fl::aggregate::params_to_bytes;
use gridledger_fl::coding::client_key;
use gridledger_fl::consensus::{ChainConfig, ChainParams};

/// One model's plaintext encrypted under the derived nonce never shares a
/// nonce (hence a keystream) with any other encryption a client makes:
/// another client with the same plaintext, another fragment, round, chain
/// history or run of the same configuration, or another plaintext in the
/// same context. The keystream check: the XOR of two ciphertexts of two
/// plaintexts in one context is not the XOR of the plaintexts.
#[test]
fn derived_nonces_never_repeat_across_clients_fragments_rounds_histories_or_runs() {
    let cfg = config(4, 4, 1);
    let pt = params_to_bytes(&model(0));
    let (k0, k1) = (client_key(&SK, 0), client_key(&SK, 1));
    let ctx = cfg.fragment_context(cfg.chain);
    let n = derive_nonce(&k0, &ctx, &pt);
    let with = |p: ChainParams| ChainConfig::new(p);
    let next_round = with(ChainParams { round: cfg.round + 1, ..cfg.params().clone() });
    let other_history = with(ChainParams { prev_block: gridledger_core::Hash32([0x55; 32]), ..cfg.params().clone() });
    let other_run = earlier_run(&cfg);
    let others = [
        ("another client, same plaintext", derive_nonce(&k1, &ctx, &pt)),
        ("another fragment", derive_nonce(&k0, &cfg.fragment_context(cfg.chain + 1), &pt)),
        ("another round", derive_nonce(&k0, &next_round.fragment_context(next_round.chain), &pt)),
        ("another chain history", derive_nonce(&k0, &other_history.fragment_context(other_history.chain), &pt)),
        ("another run", derive_nonce(&k0, &other_run.fragment_context(other_run.chain), &pt)),
    ];
    for (what, m) in others {
        assert_ne!(n, m, "{what}: the same nonce");
    }
    // Another model in the same context: another nonce, another keystream.
    let mut other = model(0);
    other[0] += 1.0;
    let pt2 = params_to_bytes(&other);
    let n2 = derive_nonce(&k0, &ctx, &pt2);
    assert_ne!(n, n2);
    let c1 = encrypt_fragment(&k0, &ctx, &n, &pt).unwrap();
    let c2 = encrypt_fragment(&k0, &ctx, &n2, &pt2).unwrap();
    let ct_xor: Vec<u8> = c1.iter().zip(&c2).map(|(a, b)| a ^ b).take(pt.len()).collect();
    let pt_xor: Vec<u8> = pt.iter().zip(&pt2).map(|(a, b)| a ^ b).collect();
    assert_ne!(ct_xor, pt_xor, "two models in one context leak their XOR");
    // The same model in the same context: the identical record (a retry).
    let a = upload(&cfg, 0, &k0, &model(0));
    let b = upload(&cfg, 0, &k0, &model(0));
    assert_eq!(a.record, b.record);
}
