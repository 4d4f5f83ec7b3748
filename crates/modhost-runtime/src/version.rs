//! The versions of the `modhost:module` WIT contract this host runs, and the check that a
//! component targets one of them.

use std::path::Path;

use wasmtime::Engine;
use wasmtime::component::Component;

use crate::{Error, Result, bindings};

/// The `modhost:module` WIT versions this host runs.
pub const SUPPORTED_API_VERSIONS: &[&str] = bindings::VERSIONS;

/// The `modhost:module` version `component` is built against; refuses one this host does
/// not run, naming both, before linking would fail with a less helpful message, and one
/// that mixes versions.
pub(crate) fn check_api_version(
    engine: &Engine,
    component: &Component,
    path: &Path,
) -> Result<&'static str> {
    let ty = component.component_type();
    let names = ty
        .imports(engine)
        .map(|(name, _)| name)
        .chain(ty.exports(engine).map(|(name, _)| name));
    let mut versions: Vec<String> = names
        .filter_map(|name| name.strip_prefix("modhost:module/"))
        .filter_map(|rest| rest.split_once('@').map(|(_, version)| version.to_owned()))
        .collect();
    versions.sort();
    versions.dedup();
    match versions
        .iter()
        .find(|v| !SUPPORTED_API_VERSIONS.contains(&v.as_str()))
    {
        Some(unsupported) => Err(Error::ApiVersion {
            path: path.to_owned(),
            found: unsupported.clone(),
        }),
        None => match versions.as_slice() {
            [] => Err(Error::Load {
                path: path.to_owned(),
                message: "it neither imports nor exports any modhost:module interface".to_owned(),
            }),
            [version] => SUPPORTED_API_VERSIONS
                .iter()
                .copied()
                .find(|v| v == version)
                .ok_or_else(|| Error::ApiVersion {
                    path: path.to_owned(),
                    found: version.clone(),
                }),
            mixed => Err(Error::Load {
                path: path.to_owned(),
                message: format!("it mixes modhost:module versions {}", mixed.join(", ")),
            }),
        },
    }
}
