//! Integration tests: each starts the real server on port 0 (in process, or as the real binary
//! for the replica tests) with its own store, and speaks HTTP to it.

mod api;
mod cache;
mod cdn;
mod cli;
mod conformance;
mod descriptors;
mod edge;
mod feeds;
mod fuzz;
mod helpers;
mod hub;
mod partners;
mod purge;
mod readership;
mod replicas;
mod sources;
mod websub;
mod wire;
