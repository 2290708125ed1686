//! End-to-end tests: the `feedctl` binary in a temporary home, and its HTTP server.
//! One test binary for all of them (linking is slow).

mod support;

mod bad_inputs;
mod cli_flow;
mod cluster;
mod config_errors;
mod console;
mod databases;
mod home_on_s3;
mod interrupted;
mod live;
mod live_items;
mod movielens;
mod neural;
mod object_storage;
mod onnx;
mod operations;
mod query;
mod ranking;
mod replicas;
mod rollout;
mod server;
mod server_support;
mod spec_examples;
mod tuning;
mod vectors;
