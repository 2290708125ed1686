//! FeedQL, the query language of Feed: grammar (pest), AST with spans, parse errors with
//! line:col and suggestions, and static checks.
//!
//! This crate depends on no other workspace crate. The language lands with the FeedQL issue;
//! until then the engine ranks through `rank` only, and saved `queries:` in model files are
//! stored unparsed.
