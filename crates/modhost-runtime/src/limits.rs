//! What one call may use, and the ceiling the sandbox's pooled memory slots put on it.

use std::time::Duration;

use crate::{Error, Result};

/// The largest linear memory a pooled slot can hold: the ceiling of any call's cap.
pub const POOL_MEMORY: usize = 256 << 20;

/// A WebAssembly page: a memory cap under it fails every call of a component that has
/// a memory, which is every real one.
pub const WASM_PAGE: usize = 64 << 10;

/// The longest deadline a call may have: a day. Longer is no deadline in practice, and a
/// `Duration` near its maximum would overflow the clock it is added to.
pub const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// Bounds on what one call may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock CPU budget of one call, enforced by epoch interruption; at most
    /// [`MAX_CALL_TIMEOUT`].
    pub call_timeout: Duration,
    /// Linear memory one call's instance may hold, in bytes, across all its memories; at
    /// most [`POOL_MEMORY`].
    pub max_memory: usize,
    /// Longest result or error message a call may return, in bytes.
    pub max_output: usize,
    /// Host resources (open files, directory streams, pollables…) a call may hold at once.
    pub max_resources: usize,
    /// Log records kept per call, and per module across a dispatch and the hooks fired
    /// inside it; the rest are counted and dropped.
    pub max_log_records: usize,
    /// Longest log message kept, in bytes.
    pub max_log_message: usize,
    /// Longest key-value key, in bytes.
    pub max_kv_key: usize,
    /// Longest key-value value, in bytes.
    pub max_kv_value: usize,
    /// How deep hooks fired from handlers may nest: a handler of a hook fired by a
    /// handler runs one level deeper; past this, `fire` fails instead of calling further.
    pub max_fire_depth: u32,
}

/// The deepest hooks fired from handlers may nest ([`Limits::max_fire_depth`]): every
/// level holds a sandbox while those inside it run, and all of them share the outermost
/// call's deadline.
pub const MAX_FIRE_DEPTH: u32 = 32;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            call_timeout: Duration::from_secs(10),
            max_memory: 64 * 1024 * 1024,
            max_output: 1024 * 1024,
            max_resources: 256,
            max_log_records: 1000,
            max_log_message: 4096,
            max_kv_key: 1024,
            max_kv_value: 1024 * 1024,
            max_fire_depth: 4,
        }
    }
}

impl Limits {
    /// Refuses limits the sandbox cannot enforce as stated: a memory cap above what a pooled
    /// slot holds would silently be cut to the slot, and one under a page fails every call.
    /// A limit of 0 that would fail every call (see [`Limits::failing_zeros`]) is refused too.
    pub fn check(&self) -> Result<()> {
        if self.max_memory > POOL_MEMORY {
            return Err(Error::MemoryCapTooLarge {
                cap: self.max_memory,
            });
        }
        if let Some(limit) = self.failing_zeros().first() {
            return Err(Error::ZeroLimit { limit });
        }
        if self.call_timeout > MAX_CALL_TIMEOUT {
            return Err(Error::TimeoutTooLong {
                limit: self.call_timeout,
            });
        }
        if self.max_fire_depth > MAX_FIRE_DEPTH {
            return Err(Error::FireDepthTooDeep {
                depth: self.max_fire_depth,
            });
        }
        if self.max_memory < WASM_PAGE {
            return Err(Error::MemoryCapTooSmall {
                cap: self.max_memory,
            });
        }
        Ok(())
    }

    /// The limits, by field name, set to 0 where 0 would fail every call: a deadline of
    /// nothing, no memory, no room for a result, not even stdio's handles. A log or fire
    /// depth of 0 means none, and a key-value limit of 0 refuses writes the module can
    /// handle: both fine.
    pub fn failing_zeros(&self) -> Vec<&'static str> {
        [
            ("call_timeout", self.call_timeout.is_zero()),
            ("max_memory", self.max_memory == 0),
            ("max_output", self.max_output == 0),
            ("max_resources", self.max_resources == 0),
        ]
        .into_iter()
        .filter_map(|(name, zero)| zero.then_some(name))
        .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fire_depth_past_the_deepest_nesting_is_refused() {
        let deepest = Limits {
            max_fire_depth: MAX_FIRE_DEPTH,
            ..Limits::default()
        };
        assert!(deepest.check().is_ok());
        let refused = Limits {
            max_fire_depth: MAX_FIRE_DEPTH + 1,
            ..Limits::default()
        }
        .check();
        assert!(
            matches!(refused, Err(Error::FireDepthTooDeep { depth: 33 })),
            "{refused:?}"
        );
    }

    #[test]
    fn a_deadline_longer_than_a_day_is_refused_even_the_longest_duration() {
        let day = Limits {
            call_timeout: MAX_CALL_TIMEOUT,
            ..Limits::default()
        };
        assert!(day.check().is_ok());
        for limit in [MAX_CALL_TIMEOUT + Duration::from_millis(1), Duration::MAX] {
            let refused = Limits {
                call_timeout: limit,
                ..Limits::default()
            }
            .check();
            assert!(
                matches!(refused, Err(Error::TimeoutTooLong { limit: l }) if l == limit),
                "{refused:?}"
            );
        }
    }

    #[test]
    fn a_zero_that_would_fail_every_call_is_refused_and_a_harmless_one_kept() {
        let refused = Limits {
            call_timeout: Duration::ZERO,
            ..Limits::default()
        }
        .check();
        assert!(
            matches!(
                refused,
                Err(Error::ZeroLimit {
                    limit: "call_timeout"
                })
            ),
            "{refused:?}"
        );
        for zero in [
            Limits {
                max_output: 0,
                ..Limits::default()
            },
            Limits {
                max_resources: 0,
                ..Limits::default()
            },
        ] {
            assert!(zero.check().is_err());
        }
        let harmless = Limits {
            max_log_records: 0,
            max_fire_depth: 0,
            max_kv_value: 0,
            ..Limits::default()
        };
        assert!(harmless.check().is_ok());
    }

    #[test]
    fn a_memory_cap_under_a_page_is_refused_and_one_page_kept() {
        for cap in [1, 1000, WASM_PAGE - 1] {
            let refused = Limits {
                max_memory: cap,
                ..Limits::default()
            }
            .check();
            assert!(
                matches!(refused, Err(Error::MemoryCapTooSmall { cap: c }) if c == cap),
                "{cap}: {refused:?}"
            );
            let message = refused.map_err(|e| e.to_string()).err().unwrap_or_default();
            assert!(message.contains("under one WebAssembly page"), "{message}");
        }
        let page = Limits {
            max_memory: WASM_PAGE,
            ..Limits::default()
        };
        assert!(page.check().is_ok());
    }
}
