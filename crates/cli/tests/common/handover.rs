//! Listening sockets the test binds (port 0) and keeps for its whole run,
//! handed to each `gridledger node` process it starts (see
//! `gridledger_node::listen`). A killed and restarted node gets the same
//! port back, and no other process can take it in between: nothing picks a
//! free port, releases it and binds it again.
#![allow(dead_code)]

use std::net::{SocketAddr, TcpListener};
use std::os::fd::AsRawFd;
use std::os::unix::process::CommandExt;
use std::process::Command;

/// A bound loopback listener owned by the test.
pub struct Held(TcpListener);

impl Held {
    pub fn bind() -> Self {
        Held(TcpListener::bind("127.0.0.1:0").expect("bind loopback port 0"))
    }

    pub fn addr(&self) -> SocketAddr {
        self.0.local_addr().expect("local addr")
    }
}

/// Makes `cmd` inherit `listener` and names it in the environment variable
/// `var` (`GRIDLEDGER_RPC_FD` or `GRIDLEDGER_P2P_FD`).
pub fn hand_over(cmd: &mut Command, var: &str, listener: &Held) {
    let fd = listener.0.as_raw_fd();
    cmd.env(var, fd.to_string());
    // SAFETY: runs in the forked child before exec and only calls fcntl,
    // which is async-signal-safe. Descriptor flags are per process, so the
    // test's own descriptor keeps its close-on-exec flag.
    unsafe {
        cmd.pre_exec(move || {
            if libc::fcntl(fd, libc::F_SETFD, 0) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}
