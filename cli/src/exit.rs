//! Exit codes: 0 ok, 2 usage or invalid input (the user fixes something), 1 anything else.

use feed_engine::Error;

pub const INVALID_INPUT: u8 = 2;
pub const FAILURE: u8 = 1;

/// The engine error inside an anyhow chain, if any.
pub fn engine_error(e: &anyhow::Error) -> Option<&Error> {
    e.chain().find_map(|c| c.downcast_ref::<Error>())
}

pub fn code(e: &anyhow::Error) -> u8 {
    match engine_error(e) {
        Some(err) if err.is_user_error() => INVALID_INPUT,
        _ => FAILURE,
    }
}

/// One line: config errors already name file:line:col, so they are printed alone.
pub fn describe(e: &anyhow::Error) -> String {
    match engine_error(e) {
        Some(err @ Error::Config(_)) => err.to_string(),
        _ => format!("{e:#}"),
    }
}
