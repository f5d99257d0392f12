//! Client subcommands of the `tidemark` binary.

pub mod filter;
pub mod input;
pub mod parse;
