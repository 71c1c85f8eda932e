//! Limiting this process to `k` CPU cores, the way `taskset -a -c 0-(k-1)`
//! would: every existing thread of the process (the rayon pool included)
//! gets the CPU affinity mask `{0, …, k-1}`, and threads created meanwhile
//! inherit it from their creator. Dropping the guard restores every
//! thread's previous mask. Linux only; elsewhere it reports
//! [`AffinityError::Unsupported`].
//!
//! Whole cores only: the seed's fractional cores (0.5, 1.5, Fig 3-6) were
//! cloud CPU quotas, which a mask cannot express.

#[derive(Debug, thiserror::Error)]
pub enum AffinityError {
    #[error("limiting cores is only supported on Linux")]
    Unsupported,
    #[error("asked for {asked} cores, this machine has {available}")]
    TooMany { asked: usize, available: usize },
    #[error("sched_setaffinity: {0}")]
    Os(std::io::Error),
}

/// Restores the previous masks when dropped.
pub struct CoreLimit {
    #[cfg(target_os = "linux")]
    previous: Vec<(libc::pid_t, libc::cpu_set_t)>,
    pub cores: usize,
}

/// Cores this process may run on now.
pub fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[cfg(target_os = "linux")]
fn threads() -> Vec<libc::pid_t> {
    std::fs::read_dir("/proc/self/task")
        .map(|d| d.filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok()).collect())
        .unwrap_or_default()
}

/// Limits the whole process to the first `k` cores.
#[cfg(target_os = "linux")]
pub fn limit_cores(k: usize) -> Result<CoreLimit, AffinityError> {
    let available = available_cores();
    if k == 0 || k > available {
        return Err(AffinityError::TooMany { asked: k, available });
    }
    // SAFETY: cpu_set_t is a plain bit set; zeroed is the empty set, and the
    // CPU_* helpers only touch bits below CPU_SETSIZE.
    // Start rayon's global pool now, at full size, so that its threads are
    // among those pinned and restored: created under the limit it would be
    // sized by it (available_parallelism follows the affinity mask) and
    // stay that small for the rest of the process.
    let _ = rayon::current_num_threads();
    let mut want: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    let mut cur: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: reading this thread's mask into a properly sized set.
    if unsafe { libc::sched_getaffinity(0, std::mem::size_of::<libc::cpu_set_t>(), &mut cur) } != 0 {
        return Err(AffinityError::Os(std::io::Error::last_os_error()));
    }
    let allowed: Vec<usize> =
        (0..libc::CPU_SETSIZE as usize).filter(|&c| unsafe { libc::CPU_ISSET(c, &cur) }).collect();
    for &c in allowed.iter().take(k) {
        // SAFETY: c < CPU_SETSIZE.
        unsafe { libc::CPU_SET(c, &mut want) };
    }
    let mut previous = Vec::new();
    for tid in threads() {
        let mut old: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: tid is a thread of this process; a thread that exited
        // meanwhile makes the call fail, which we skip.
        unsafe {
            if libc::sched_getaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &mut old) != 0 {
                continue;
            }
            if libc::sched_setaffinity(tid, std::mem::size_of::<libc::cpu_set_t>(), &want) != 0 {
                continue;
            }
        }
        previous.push((tid, old));
    }
    Ok(CoreLimit { previous, cores: k })
}

#[cfg(not(target_os = "linux"))]
pub fn limit_cores(_k: usize) -> Result<CoreLimit, AffinityError> {
    Err(AffinityError::Unsupported)
}

#[cfg(target_os = "linux")]
impl Drop for CoreLimit {
    fn drop(&mut self) {
        // Threads created under the limit keep it until they exit; the
        // experiment's own threads are gone by the time the guard drops.
        for (tid, old) in &self.previous {
            // SAFETY: as above.
            unsafe {
                libc::sched_setaffinity(*tid, std::mem::size_of::<libc::cpu_set_t>(), old);
            }
        }
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn limits_and_restores_and_refuses_impossible_counts() {
        let all = available_cores();
        assert!(matches!(limit_cores(0), Err(AffinityError::TooMany { asked: 0, .. })));
        assert!(matches!(limit_cores(all + 1), Err(AffinityError::TooMany { .. })));
        assert_eq!(available_cores(), all, "a refused limit changes nothing");
        {
            let _g = limit_cores(1).unwrap();
            assert_eq!(available_cores(), 1);
            // Threads started under the limit inherit it.
            let inner = std::thread::spawn(available_cores).join().unwrap();
            assert_eq!(inner, 1);
        }
        assert_eq!(available_cores(), all);
    }
}
