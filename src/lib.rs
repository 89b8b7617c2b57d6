//! amiaudit: audit golden AMIs across an AWS Organization.
//!
//! Data flows one way: [`discover`] -> [`collect`] -> [`inventory`] -> [`evaluate`]
//! -> [`results`] -> [`render`] -> [`evidence`] -> [`deliver`]. See ARCHITECTURE.md for the map.

pub mod aws;
pub mod cmd;
pub mod collect;
pub mod config;
pub mod deliver;
pub mod diff;
pub mod discover;
pub mod error;
pub mod evaluate;
pub mod evidence;
pub mod findings;
pub mod inventory;
pub mod output;
pub mod paths;
pub mod policy;
pub mod render;
pub mod results;
pub mod settings;
pub mod status;
pub mod synth;
pub mod text;
pub mod waivers;

/// The allocator for every binary that links the library (the CLI, tests,
/// benchmarks): see BENCHMARKS.md for what glibc malloc cost.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Version of this tool, written into every manifest and report.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
