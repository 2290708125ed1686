//! Serving a model version: its artifacts on disk (`artifacts`) and an immutable in-memory
//! snapshot of the ACTIVE version (`snapshot`) in named parts: the item catalog, user state,
//! policies with their vector indexes, the value model and the per-version caches. Ranking and
//! queries over it live in `query`.

pub mod artifacts;
mod cache;
mod catalog;
mod policies;
mod snapshot;
mod users;
mod value;

pub use cache::{Cache, Caches};
pub use catalog::{typed_column, Catalog, CatalogChanges};
pub use policies::{Policies, ScoringUser};
pub use snapshot::{Parts, Snapshot};
pub use users::{RecentEvent, UserState, UserView, Users};
pub use value::{Combine, Term, ValueModel};
