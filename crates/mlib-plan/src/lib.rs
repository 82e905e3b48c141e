//! Planning and applying: the manifest's desired state against the store, the registry and
//! the app folders, as a list of actions (`mlib plan`), and the executor that carries them out
//! (`mlib apply`).
//!
//! Planning is pure with respect to the disk: it reads (lstat, readlink, the registry) and
//! never writes. Everything that writes lives in [`apply`] and [`link`].

pub mod action;
pub mod app_version;
pub mod apply;
mod by_key;
mod compare;
mod decide;
pub mod desired;
mod destination;
pub mod environment;
mod error;
pub mod families;
pub mod integrity;
pub mod link;
pub mod listing;
mod observed;
pub mod onboard;
pub mod paths;
pub mod placeholder;
mod planner;
pub mod recover;
pub mod relocate;
mod saved;
pub mod sets;
mod stat;
pub mod upkeep;
pub mod workflow;

pub use action::{
    Action, Bookkeeping, Drift, FOLDER_LINK_PREFIX, FetchReason, Link, LinkHow, Previous, Skip,
    Summary, Verified,
};
pub use apply::{ApplyContext, ApplyEvents, ApplyReport, NoRemote, RemoteFetcher, Silent, apply};
pub use destination::{PlanDestination, Refusal};
pub use environment::{EnvIdentity, Ownership};
pub use error::{ApplyError, PlanError, RemoteError};
pub use observed::{Observed, SourceStats};
pub use planner::{HashProgress, NoHashProgress, PlanInput, PlanOptions, plan, plan_observed};
pub use saved::Plan;
