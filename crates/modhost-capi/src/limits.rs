//! The sandbox limits of a host's calls, as C sets them.

use std::time::Duration;

use crate::ffi::{Failure, put_raw, quietly};

/// Sandbox limits of every call a host makes. Fill one with `modhost_limits_default`, then
/// change what differs.
#[repr(C)]
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Wall-clock budget of one call, in milliseconds (default 10 000; not 0, at most a
    /// day: 86 400 000).
    pub call_timeout_ms: u64,
    /// Linear memory of one call, all its memories together, in bytes (default 64 MiB, at
    /// most 256 MiB; not 0).
    pub max_memory_bytes: u64,
    /// Longest result or error message a call may return, in bytes (default 1 MiB; not 0).
    pub max_output_bytes: u64,
    /// Open files and other host resources a call may hold at once (default 256; not 0).
    pub max_resources: u64,
    /// Log records kept per call (default 1000).
    pub max_log_records: u64,
    /// Longest log message kept, in bytes (default 4096).
    pub max_log_message_bytes: u64,
    /// Longest key-value key, in bytes (default 1024).
    pub max_kv_key_bytes: u64,
    /// Longest key-value value, in bytes (default 1 MiB).
    pub max_kv_value_bytes: u64,
    /// How deep hooks fired from handlers may nest (default 4, at most 32).
    pub max_fire_depth: u32,
}

impl From<modhost::Limits> for Limits {
    fn from(limits: modhost::Limits) -> Self {
        let wide = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        Limits {
            call_timeout_ms: u64::try_from(limits.call_timeout.as_millis()).unwrap_or(u64::MAX),
            max_memory_bytes: wide(limits.max_memory),
            max_output_bytes: wide(limits.max_output),
            max_resources: wide(limits.max_resources),
            max_log_records: wide(limits.max_log_records),
            max_log_message_bytes: wide(limits.max_log_message),
            max_kv_key_bytes: wide(limits.max_kv_key),
            max_kv_value_bytes: wide(limits.max_kv_value),
            max_fire_depth: limits.max_fire_depth,
        }
    }
}

impl Limits {
    /// The limits as modhost takes them; refused when a size does not fit this machine.
    pub(crate) fn to_modhost(self) -> Result<modhost::Limits, Failure> {
        let limits = &self;
        let size = |n: u64, name: &str| {
            usize::try_from(n).map_err(|_| Failure::argument(format!("`{name}` is too large")))
        };
        let converted = modhost::Limits {
            call_timeout: Duration::from_millis(limits.call_timeout_ms),
            max_memory: size(limits.max_memory_bytes, "max_memory_bytes")?,
            max_output: size(limits.max_output_bytes, "max_output_bytes")?,
            max_resources: size(limits.max_resources, "max_resources")?,
            max_log_records: size(limits.max_log_records, "max_log_records")?,
            max_log_message: size(limits.max_log_message_bytes, "max_log_message_bytes")?,
            max_kv_key: size(limits.max_kv_key_bytes, "max_kv_key_bytes")?,
            max_kv_value: size(limits.max_kv_value_bytes, "max_kv_value_bytes")?,
            max_fire_depth: limits.max_fire_depth,
        };
        // Named as this struct names them.
        if let Some(zero) = converted.failing_zeros().first() {
            let field = match *zero {
                "call_timeout" => "call_timeout_ms",
                "max_memory" => "max_memory_bytes",
                "max_output" => "max_output_bytes",
                other => other,
            };
            return Err(Failure::argument(format!(
                "`{field}` of 0 would fail every call: leave it at its default"
            )));
        }
        // What else modhost refuses (a memory cap a sandbox cannot hold or run in, a
        // nesting deeper than a dispatch holds) is a bad argument too, as a 0 is.
        converted.check().map_err(|e| {
            let field = match e {
                modhost::RuntimeError::FireDepthTooDeep { .. } => "max_fire_depth",
                modhost::RuntimeError::TimeoutTooLong { .. } => "call_timeout_ms",
                modhost::RuntimeError::MemoryCapTooLarge { .. }
                | modhost::RuntimeError::MemoryCapTooSmall { .. } => "max_memory_bytes",
                _ => "limits",
            };
            Failure::argument(format!("`{field}`: {e}"))
        })?;
        Ok(converted)
    }
}

/// Fills `*limits` with modhost's defaults. NULL is ignored.
///
/// # Safety
///
/// `limits` is NULL or valid for one `modhost_limits` write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_limits_default(limits: *mut Limits) {
    // SAFETY: the caller's contract.
    quietly((), || unsafe {
        put_raw(limits, modhost::Limits::default().into())
    });
}
