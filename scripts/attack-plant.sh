#!/usr/bin/env bash
# Attacks on the driver simulator's checker (issue 9, item 2): plant a bug
# the checker should catch, run the shipped driver sweep, revert.
#
#   scripts/attack-plant.sh scripts/attack-plant-lost-block.patch
#     The vote state is written first (durably) and the block alone without
#     fsync: a crash before the next write loses a block the validator
#     already committed, reported and served receipts for.
#     Held up when written: caught as LostVote (seed 4, n = 4, and the
#     crash-window test at sync 4), although DriverNode::effects never
#     re-reports heights <= the highest reported, so the vanished block
#     itself is not what is seen.
#   scripts/attack-plant.sh scripts/attack-plant-weak-cert.patch
#     Committed blocks are stored with a one-signature "quorum" certificate
#     (what light clients and catch-up from the store are handed).
#     NOT caught when written (n = 4 and n = 7 sweeps and the crash-window
#     test all pass): the checker never verified a stored Seal::Quorum.
#     Caught since the checker verifies every committed block's certificate
#     and every certificate each correct validator stores (BadCertificate /
#     Invalid); kept as the `WeakCertificate` mutant in tests/mutants.rs.
#
# Expected (secure): the sweep fails, i.e. the simulator catches the bug.
# The script exits 1 ("ATTACK: ... NOT caught") when the sweep passes
# with the bug planted. GRIDLEDGER_SIM_SEEDS=N widens the sweep.
set -u
cd "$(dirname "$0")/.."
patch=${1:?usage: scripts/attack-plant.sh PATCH}
git apply --check "$patch" || { echo "patch does not apply"; exit 2; }
git apply "$patch"
trap 'git apply -R "$patch"' EXIT
CARGO_BUILD_JOBS=${CARGO_BUILD_JOBS:-1} cargo test -p gridledger-node --test sim_driver -- --nocapture \
  driver_n4_safety_validity_liveness driver_n7_safety_validity_liveness \
  crash_between_any_two_writes_loses_no_vote_and_never_forks
rc=$?
if [ $rc -eq 0 ]; then
  echo "ATTACK: the simulator did NOT catch the bug planted by $patch"
  exit 1
fi
echo "held up: the simulator caught the bug planted by $patch"
exit 0
