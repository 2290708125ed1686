//! FeedQL expressions over a model's data: the names a query may use and the one rule they
//! resolve by (`names`), the types checked when a query is bound (`types`), the translation to
//! DataFusion expressions with placeholders for what each request supplies (`translate`),
//! request parameters (`params`) and evaluation over Arrow batches (`eval`).
//!
//! Below `serving` so that a version's value model binds here when it loads, and below `query`,
//! whose planner binds `WHERE` and `ORDER BY` through the same code that `validate` uses.

pub(crate) mod arg;
mod eval;
mod names;
mod params;
mod translate;
mod types;

pub use crate::util::window::{window_seconds, WINDOW_HINT};
pub use arg::Arg;
pub use eval::{batch, evaluate, substitute, Values};
pub(crate) use names::check_error;
pub use names::{resolve, Names, OutputRef, PolicyNames};
pub use params::{
    check as check_params, check_uses, from_default, missing, ParamType, ParamUse, ParamValue,
    Params,
};
pub use translate::{bind, check_live_window, Bound, Needs, Recent, Stage, LIVE_HORIZON};
pub use types::Ty;
