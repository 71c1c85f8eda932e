//! A gridledger node: a chain, its block producer, the HTTP JSON-RPC API,
//! the event stream and the Prometheus metrics endpoint; plus the blocking
//! RPC client the CLI uses.

pub mod channel;
pub mod client;
pub mod cluster;
pub mod config;
pub mod engine;
mod gossip;
mod idle;
pub mod keystore;
pub mod lbft;
pub mod listen;
pub mod metrics;
pub mod openrpc;
pub mod p2p;
pub mod rpc;
pub mod service;
pub mod sim;
pub mod timeline;
pub mod validator;

pub use client::{RpcClient, RpcError};
pub use config::NodeConfig;
pub use service::{Node, NodeHandle};
