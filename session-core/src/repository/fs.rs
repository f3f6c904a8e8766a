//! Placeholder while the file workspace is written.
use super::WorkspaceRepository;
/// The environment variable that names the workspace file.
pub const WORKSPACE_ENV: &str = "SESSIONCTL_WORKSPACE";
/// The schema version this build writes.
pub const WORKSPACE_SCHEMA_VERSION: u32 = 1;
/// A workspace in one JSON file.
#[derive(Debug)]
pub struct FsWorkspace;
/// Builder.
#[derive(Debug)]
pub struct FsWorkspaceBuilder;
#[allow(dead_code)]
fn _a(_: &dyn WorkspaceRepository) {}
