//! Listening sockets handed over by the process that starts the node
//! (socket activation, as systemd and test harnesses do it).
//!
//! A parent that binds the port itself and keeps it open can start, kill and
//! restart a node on that port with no window in which another process could
//! take it: nobody picks a "free" port, releases it and hopes to bind it
//! again. The parent leaves the listening socket open across `exec` and
//! names its descriptor in [`RPC_FD`] (JSON-RPC) or [`P2P_FD`] (validator
//! links); the node then serves on it instead of binding the configured
//! address. Without the variables the node binds as configured.

use anyhow::Context;
use std::net::TcpListener;

/// Descriptor of an inherited listener for JSON-RPC, events and metrics.
pub const RPC_FD: &str = "GRIDLEDGER_RPC_FD";
/// Descriptor of an inherited listener for validator peer links.
pub const P2P_FD: &str = "GRIDLEDGER_P2P_FD";

/// The listener named by the environment variable `var`, if it is set.
/// Refuses a number that is not an open, listening TCP socket of this
/// process.
pub fn inherited(var: &str) -> anyhow::Result<Option<TcpListener>> {
    let Ok(value) = std::env::var(var) else {
        return Ok(None);
    };
    from_fd(var, &value).map(Some)
}

#[cfg(unix)]
fn from_fd(var: &str, value: &str) -> anyhow::Result<TcpListener> {
    use std::os::fd::{FromRawFd, RawFd};
    let fd: RawFd = value.trim().parse().with_context(|| format!("{var}={value:?} is not a descriptor number"))?;
    anyhow::ensure!(fd > 2, "{var}={fd}: descriptors 0-2 are stdio, not a socket");
    // Only take ownership of a descriptor that is open in this process.
    anyhow::ensure!(std::path::Path::new(&format!("/dev/fd/{fd}")).exists(), "{var}={fd}: no such open descriptor");
    // SAFETY: the descriptor is open (checked above) and was handed to this
    // process to own; nothing else in the node uses it.
    let l = unsafe { TcpListener::from_raw_fd(fd) };
    let addr = l.local_addr().with_context(|| format!("{var}={fd} is not a bound TCP socket"))?;
    tracing::info!(%addr, var, "using an inherited listener");
    Ok(l)
}

#[cfg(not(unix))]
fn from_fd(var: &str, _value: &str) -> anyhow::Result<TcpListener> {
    anyhow::bail!("{var}: inherited listeners are supported on Unix only")
}

#[cfg(all(test, unix))]
mod tests {
    use super::from_fd;
    use std::os::fd::IntoRawFd;

    #[test]
    fn a_handed_over_listener_is_served_as_is() {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = l.local_addr().expect("addr");
        let fd = l.into_raw_fd();
        let got = from_fd(super::RPC_FD, &fd.to_string()).expect("inherited listener");
        assert_eq!(got.local_addr().expect("addr"), addr);
    }

    #[test]
    fn anything_but_an_open_tcp_socket_is_refused() {
        let refused = |value: &str, reason: &str| {
            let e = from_fd(super::P2P_FD, value).expect_err(value).to_string();
            assert!(e.contains(reason), "{value}: {e}");
        };
        refused("three", "is not a descriptor number");
        refused("", "is not a descriptor number");
        refused("2", "descriptors 0-2 are stdio");
        refused("-1", "descriptors 0-2 are stdio");
        refused("999999", "no such open descriptor");
        // An open descriptor that is not a socket (ownership passes to the call).
        let file = std::fs::File::open("/dev/null").expect("open /dev/null").into_raw_fd();
        refused(&file.to_string(), "is not a bound TCP socket");
    }
}
