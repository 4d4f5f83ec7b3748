//! Host bindings for each supported version of the `modhost:module` WIT package.
//!
//! Each version lives in its own module, generated from its frozen directory under `wit/`,
//! so a later version can sit beside it while old components keep loading.

/// `modhost:module@0.1.0`, from `wit/v0.1.0`.
pub mod v0_1_0 {
    wasmtime::component::bindgen!({
        path: "../../wit/v0.1.0",
        world: "module",
        imports: { default: trappable },
    });
}
