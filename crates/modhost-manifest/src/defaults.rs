//! Defaults module.xml leaves implicit, and the bounds of what is read.

/// The default priority of a `<methods>` entry, as in FreePBX.
pub const DEFAULT_PRIORITY: i32 = 500;

/// The component's path inside the package when `<component>` is absent.
pub const DEFAULT_COMPONENT: &str = "module.wasm";

/// The largest module.xml accepted, in bytes; a large core module.xml is about 30 KiB.
pub const MAX_SIZE: usize = 1024 * 1024;

/// The longest name a hook point may have: module.xml's are a few words.
pub const MAX_HOOK_NAME: usize = 256;

/// The default priority of an `<oobe>` step.
pub const DEFAULT_OOBE_PRIORITY: i32 = 100;
