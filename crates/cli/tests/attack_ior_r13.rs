//! Attack round 13 on the improved optimistic rollup (issue 11) through the
//! CLI: the day's lock of `gridledger ior day --rpc` (named by the chain's
//! id and genesis hash, then in `$XDG_RUNTIME_DIR/gridledger` or
//! `<tmp>/gridledger-UID`; since the fix in
//! `~/.local/state/gridledger/locks`, the home from the password database).
//!
//! Each finding's test failed on the code it was written against and
//! passes since the fix; the others held up. Every run here keeps its
//! locks below a test's own home (`GRIDLEDGER_TEST_LOCK_HOME`, set by
//! `common::bin` or the test), never in the real home directory.

mod common;

use common::ior::*;
use common::*;
use gridledger_rollup::driver::{primary_config, PrimaryReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// The lock directory of a run whose home is `home`.
fn lock_dir_in(home: &std::path::Path) -> std::path::PathBuf {
    home.join(".local").join("state").join("gridledger").join("locks")
}

/// This process's user id, as the old fallback directory named it.
fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    let dir = tempfile::tempdir().unwrap();
    std::fs::metadata(dir.path()).unwrap().uid()
}

/// [1] The day's lock lived in a directory chosen from the environment
/// (`$XDG_RUNTIME_DIR/gridledger`, else `$TMPDIR/gridledger-UID`), so two
/// runs of one user on one host locked different files whenever their
/// environments differed: an interactive shell has `XDG_RUNTIME_DIR`, a
/// cron job, a `su`/`sudo -u` shell or a system service usually has not
/// (or another `TMPDIR`). The second run here (no `XDG_RUNTIME_DIR`, its
/// own `TMPDIR` and `HOME`) is given a copy of the live day's journal, the
/// exact case the day's lock was added for (attack r12 [2]): it took the
/// live day for a stopped one and "resumed" it, and the live run's own
/// STs were then refused and cost honest sellers α, or its day failed.
/// Expected: a second process of the same user on the same host does not
/// trade a day a live process is trading, whatever its environment.
///
/// The fix: the lock directory is below the user's home as the password
/// database records it. Both runs here have the tests' lock home
/// (`GRIDLEDGER_TEST_LOCK_HOME`, so the test writes nothing into the real
/// home); that two runs without it find the same directory whatever
/// `HOME`, `XDG_RUNTIME_DIR` and `TMPDIR` say is the unit test
/// `ior::tests::the_default_lock_directory_ignores_the_environment`.
#[test]
fn a_second_run_with_another_environment_does_not_resume_a_live_day() {
    let dir = tempfile::tempdir().unwrap();
    let (runtime, tmp, home) = (dir.path().join("runtime"), dir.path().join("tmp"), dir.path().join("home"));
    for p in [&runtime, &tmp, &home] {
        std::fs::create_dir(p).unwrap();
    }
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let day = day_args(&c, &f, "24..27");
    let (second, first) = while_live_day_stopped(bin().args(&day).env("XDG_RUNTIME_DIR", &runtime), &url, || {
        let copy = dir.path().join("backup.json");
        std::fs::copy(chain.join("ior-day.json"), &copy).unwrap();
        let cp = d(&copy);
        let mut second_args = day.clone();
        second_args.extend(["--journal", &cp]);
        bin().args(&second_args).env_remove("XDG_RUNTIME_DIR").env("TMPDIR", &tmp).env("HOME", &home).output().unwrap()
    });
    let (next, fin, open, reputations, rs) = after(&url);
    assert!(
        !second.status.success()
            && stderr(&second).contains("is running the day of chain")
            && first.status.success()
            && fin == next
            && open == 0
            && reputations.iter().all(|r| *r == rs),
        "second run (no XDG_RUNTIME_DIR, TMPDIR {}) with a copy of the live day's journal: {} {} {}; the first run: \
         {} ({}); settled {fin}/{next} batches, {open} agreements open; reputations {reputations:?}",
        tmp.display(),
        second.status,
        stdout(&second).replace('\n', " "),
        stderr(&second).trim(),
        first.status,
        String::from_utf8_lossy(&first.stderr).trim(),
    );
}

/// [2] The fallback lock directory `<tmp>/gridledger-UID` was refused
/// when it was a link or another user's, but `$XDG_RUNTIME_DIR/gridledger`
/// was taken as found: `create_dir_all` followed a symbolic link planted
/// there and the day's lock was created (and locked) in whatever
/// directory the link named. An `XDG_RUNTIME_DIR` that others can write
/// let another local user point the lock into a directory they own, read
/// the lock file and hold it: every run and resume of that chain's day
/// was then refused. Expected: no link followed, the same checks on every
/// directory of the lock's path (not a link, this user's, mode 0700), the
/// run refused before anything is sent.
///
/// The fix: no `XDG_RUNTIME_DIR` is used (the planted link there is left
/// alone and the run's lock is below its home); below the home, a link at
/// any component of `.local/state/gridledger/locks`, or this program's own
/// `gridledger` directory with a mode other than 0700, is refused before
/// anything is sent, and nothing is created through the link.
#[test]
fn a_linked_lock_directory_under_xdg_runtime_dir_is_refused() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let runtime = dir.path().join("runtime");
    let elsewhere = dir.path().join("elsewhere");
    std::fs::create_dir(&runtime).unwrap();
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, runtime.join("gridledger")).unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
    // Each run is refused before it sends anything, so one chain serves
    // them all.
    let parts = [".local", "state", "gridledger", "locks"];
    for (i, linked) in parts.iter().enumerate() {
        let home = dir.path().join(format!("home-{i}"));
        let mut at = home.clone();
        for p in &parts[..i] {
            at.push(p);
        }
        std::fs::create_dir_all(&at).unwrap();
        for p in [&home, &at] {
            std::fs::set_permissions(p, std::fs::Permissions::from_mode(0o700)).unwrap();
        }
        std::fs::set_permissions(&home, std::fs::Permissions::from_mode(0o755)).unwrap();
        at.push(linked);
        std::os::unix::fs::symlink(&elsewhere, &at).unwrap();
        let o = bin()
            .args(day_args(&c, &f, "24..25"))
            .env("XDG_RUNTIME_DIR", &runtime)
            .env("GRIDLEDGER_TEST_LOCK_HOME", &home)
            .output()
            .unwrap();
        let listed: Vec<_> = std::fs::read_dir(&elsewhere).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert!(
            !o.status.success() && stderr(&o).contains("symbolic link") && listed.is_empty(),
            "a link at {} -> {}: {} {}; in the link's target: {listed:?}",
            at.display(),
            elsewhere.display(),
            o.status,
            stderr(&o).trim()
        );
    }
    // This program's own directory open to others: refused too.
    let home = dir.path().join("home-open");
    let open = home.join(".local").join("state").join("gridledger");
    std::fs::create_dir_all(&open).unwrap();
    std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
    let o = bin().args(day_args(&c, &f, "24..25")).env("GRIDLEDGER_TEST_LOCK_HOME", &home).output().unwrap();
    assert!(!o.status.success() && stderr(&o).contains("has mode 777"), "{} {}", o.status, stderr(&o).trim());
    assert!(!open.join("locks").exists(), "a lock directory was made in a directory others can write");
    assert!(primary_config(&rpc).is_err(), "a refused run initialised the IOR contracts");
}

/// [3] Without `XDG_RUNTIME_DIR` the day's lock lived in
/// `<tmp>/gridledger-UID`, a name any local user can predict and create
/// first in the shared temporary directory (here: a link planted there).
/// The run was then refused ("is not a directory of this user: remove
/// it") before anything was sent, and so was the resume of a stopped day;
/// in a sticky `/tmp` the operator cannot remove another user's entry.
/// Expected: a name another user cannot squat, the day run.
///
/// The fix: the lock directory is below the user's own home (here the
/// test's lock home), none in a shared directory: the squatted
/// `<tmp>/gridledger-UID` is left alone, the day runs, and its lock is in
/// `.local/state/gridledger/locks` below the home, each directory the run
/// created with mode 0700.
#[test]
fn a_squatted_fallback_lock_directory_does_not_stop_the_day() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (tmp, home) = (dir.path().join("tmp"), dir.path().join("home"));
    let squat = dir.path().join("squatter");
    for p in [&tmp, &home, &squat] {
        std::fs::create_dir(p).unwrap();
    }
    std::os::unix::fs::symlink(&squat, tmp.join(format!("gridledger-{}", uid()))).unwrap();
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let o = bin()
        .args(day_args(&c, &f, "24..25"))
        .env_remove("XDG_RUNTIME_DIR")
        .env("TMPDIR", &tmp)
        .env("GRIDLEDGER_TEST_LOCK_HOME", &home)
        .output()
        .unwrap();
    let rpc = gridledger_node::client::RpcChain::connect(&url).unwrap();
    assert!(
        o.status.success() && primary_config(&rpc).is_ok(),
        "a lock directory planted by someone else stopped the day: {} {}",
        o.status,
        stderr(&o).trim()
    );
    let (next, fin, open, _, _) = after(&url);
    assert_eq!((fin, open), (next, 0));
    assert_eq!(std::fs::read_dir(&squat).unwrap().count(), 0, "the run wrote through the squatted link");
    let locks: Vec<_> = std::fs::read_dir(lock_dir_in(&home)).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert!(
        locks.len() == 1 && locks[0].to_string_lossy().starts_with("ior-day-"),
        "the day's lock below the home: {locks:?}"
    );
    let mut p = home.clone();
    for part in [".local", "state", "gridledger", "locks"] {
        p.push(part);
        let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "{} has mode {mode:o}", p.display());
    }
}

/// Held up (and still holds with the lock below the home): the lock
/// directory, created by the run, is readable by its user alone (mode
/// 0700), and the day's lock in it keeps a second run off the live day
/// whatever journal or address the second run is given (here: the node's
/// URL and no journal, as the same user with another `TMPDIR` and
/// `XDG_RUNTIME_DIR`).
#[test]
fn the_lock_directory_is_private_and_keeps_a_second_run_off() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let (tmp, home) = (dir.path().join("tmp"), dir.path().join("home"));
    for p in [&tmp, &home] {
        std::fs::create_dir(p).unwrap();
    }
    let (chain, _node, url) = own_chain(dir.path(), 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let day = day_args(&c, &f, "24..26");
    let lock_dir = lock_dir_in(&home);
    let ((mode, before, second, during), first) =
        while_live_day_stopped(bin().args(&day).env("GRIDLEDGER_TEST_LOCK_HOME", &home), &url, || {
            let mode = std::fs::metadata(&lock_dir).unwrap().permissions().mode() & 0o777;
            let before = after(&url);
            let second = bin()
                .args(day_args(&url, &f, "24..26"))
                .env_remove("XDG_RUNTIME_DIR")
                .env("TMPDIR", &tmp)
                .env("GRIDLEDGER_TEST_LOCK_HOME", &home)
                .output()
                .unwrap();
            (mode, before, second, after(&url))
        });
    assert_eq!(mode, 0o700, "the lock directory {} has mode {mode:o}", lock_dir.display());
    assert!(!second.status.success() && stderr(&second).contains("is running the day of chain"), "{}", stderr(&second));
    assert_eq!(before, during, "the second run sent something");
    let (next, fin, open, reputations, rs) = after(&url);
    assert!(
        first.status.success() && fin == next && open == 0 && reputations.iter().all(|r| *r == rs),
        "the first run: {} ({})",
        first.status,
        String::from_utf8_lossy(&first.stderr).trim()
    );
}

/// Held up: the community of 40 households and one shared PV plant (the
/// plant's 40 STs of a slot go over two blocks, 32 + 8) killed (SIGKILL)
/// as soon as the first batch holding STs is recorded (part way through
/// the packed recording of the slot's STs), or the first batch of ATs
/// after it (the next slot's ATs), then resumed by the same command: the
/// rerun resumes and succeeds, nothing is left pending or open, no one is
/// penalised, and each account's balance is its funding plus what it sold
/// minus what it bought, each agreement once.
#[test]
fn a_community_day_killed_during_its_packed_sts_resumes_to_exact_balances() {
    let dir = tempfile::tempdir().unwrap();
    let n = 40;
    let mut toml = String::from(
        "seed = 1\nday = 106\nclearing = \"midpoint\"\ngrid_fee = 0\nfeed_in_tariff = 0\nexecutors = 2\n\
         validators = 3\nfunding_coins = 200\n",
    );
    for _ in 0..n {
        toml.push_str("\n[[participant]]\nload_profile = \"H0-A\"\nask = 150000\nbid = 240000\n");
    }
    toml.push_str("\n[[participant]]\nload_profile = \"H0-G\"\npv_area_dm2 = 3000\nask = 120000\nbid = 230000\n");
    let mut csv = format!("time,{}\n", (0..=n).map(|i| format!("m{i}")).collect::<Vec<_>>().join(","));
    for h in 0..24 {
        csv.push_str(&format!("{h:02}:00,{},80000\n", vec!["-1000"; n].join(",")));
    }
    let (toml_path, csv_path) = (dir.path().join("community.toml"), dir.path().join("meters.csv"));
    std::fs::write(&toml_path, toml).unwrap();
    std::fs::write(&csv_path, csv).unwrap();
    let (tp, cp) = (d(&toml_path), d(&csv_path));
    for (i, ats_after_sts) in [false, true].into_iter().enumerate() {
        let root = dir.path().join(format!("run{i}"));
        std::fs::create_dir(&root).unwrap();
        community_killed_at(&root, &tp, &cp, ats_after_sts, n);
    }
}

/// Runs the community's day, kills it at the first ST batch (or the first
/// AT batch after one), resumes it and checks every account.
fn community_killed_at(root: &std::path::Path, tp: &str, cp: &str, ats_after_sts: bool, n: usize) {
    let (chain, _node, url) = own_chain(root, 2);
    let (c, f) = (d(&chain), d(&chain.join("keys").join("account-0.key")));
    let url = url.as_str();
    let mut args = day_args(&c, &f, "24..26");
    args.extend(["--config", tp, "--meter-csv", cp]);
    let mut run = bin().args(&args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap();
    let rpc = gridledger_node::client::RpcChain::connect(url).unwrap();
    let start = Instant::now();
    let (mut seen, mut st_seen) = (0, false);
    loop {
        assert!(start.elapsed() < Duration::from_secs(300), "no ST was recorded");
        assert!(run.try_wait().unwrap().is_none(), "the day ended before any ST was recorded");
        if let Ok(cfg) = primary_config(&rpc) {
            let reader = PrimaryReader { c: &rpc, params: &cfg.params };
            if let Ok((next, _)) = reader.progress() {
                let mut hit = false;
                for b in seen..next {
                    let Ok(h) = reader.batch_header(b) else { continue };
                    hit |= if ats_after_sts { st_seen && h.at_count > 0 } else { h.st_count > 0 };
                    st_seen |= h.st_count > 0;
                }
                seen = next;
                if hit {
                    break;
                }
            }
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    let _ = run.kill();
    let _ = run.wait();
    let o = gl(&args);
    let r: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap_or_default();
    assert!(o.status.success() && r["resumed"] == true, "the rerun: {} {}", stdout(&o), stderr(&o));
    let (next, fin, open, reputations, rs) = after(url);
    assert_eq!((fin, open), (next, 0), "something left pending or open");
    assert!(reputations.iter().all(|r| *r == rs), "{reputations:?}");
    for (a, have, want) in balances_vs_trades(url, n + 1, 200_000_000) {
        assert_eq!(have, want, "account {a}");
    }
}

/// [4] The journal's lock is `PATH` with its extension replaced by
/// `json.lock` (`with_extension`), so journals that differ only in their
/// extension share one lock file: `--journal days/run.a` for one chain
/// and `--journal days/run.b` for another (two days, two chains, two
/// journals) lock `days/run.json.lock` both, and the second day is
/// refused as "another `ior day` process is running the day of the
/// journal days/run.b" while the first lives. (Their temporary journal
/// `run.json.tmp` is shared the same way.) Expected: each journal's lock
/// (and temporary file) named by the whole file name (`run.a.lock`), the
/// second day run.
#[test]
fn journals_differing_in_extension_do_not_share_a_lock() {
    let dir = tempfile::tempdir().unwrap();
    let (one, two) = (dir.path().join("one"), dir.path().join("two"));
    let days = dir.path().join("days");
    for p in [&one, &two, &days] {
        std::fs::create_dir(p).unwrap();
    }
    let (chain_a, _node_a, url_a) = own_chain(&one, 2);
    let (chain_b, _node_b, url_b) = own_chain(&two, 2);
    let (ja, jb) = (d(&days.join("run.a")), d(&days.join("run.b")));
    let fa = d(&chain_a.join("keys").join("account-0.key"));
    let fb = d(&chain_b.join("keys").join("account-0.key"));
    let mut a = day_args(&url_a, &fa, "24..26");
    a.extend(["--journal", &ja]);
    let run = bin().args(&a).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut run = Procs(vec![run]);
    wait_first_batch(&url_a);
    let mut b = day_args(&url_b, &fb, "24..25");
    b.extend(["--journal", &jb]);
    let second = gl(&b);
    let first = run.0.pop().unwrap().wait_with_output().unwrap();
    assert!(first.status.success(), "{}", String::from_utf8_lossy(&first.stderr));
    assert!(
        second.status.success(),
        "the day of another chain, journal {jb}, while the day of journal {ja} ran: {}",
        stderr(&second).trim()
    );
}
