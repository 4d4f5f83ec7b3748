//! `[limits]` and `[hooks.NAME]` of `modhost.toml`: the sandbox limits of every call, and
//! how a hook point the application does not declare runs.

use serde::Deserialize;

use super::Config;

/// `[hooks.NAME]`: how a hook point runs: its shape, its failure mode, and any of the
/// `[limits]` keys for its calls.
#[derive(Debug, Deserialize)]
#[serde(try_from = "toml::Table")]
pub(crate) struct HookConfig {
    shape: Option<crate::Shape>,
    on_error: Option<crate::OnError>,
    /// Who may fire it from inside a call: `any` module opens a hook point named after a
    /// module (`pbx.event`) as the application's declaring it does. Tuning its shape or
    /// limits alone leaves it to its owner.
    fired_by: Option<FiredBy>,
    limits: LimitsConfig,
}

/// `fired_by` of a `[hooks."NAME"]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
enum FiredBy {
    /// Any module.
    Any,
    /// Only the module it is named after (the default).
    Owner,
}

/// Read by hand because serde's `flatten` cannot refuse unknown keys, and a misspelt
/// limit must not be silently ignored.
impl TryFrom<toml::Table> for HookConfig {
    type Error = toml::de::Error;

    fn try_from(mut table: toml::Table) -> Result<Self, Self::Error> {
        let shape = choice(&mut table, "shape", "\"broadcast\" or \"pipeline\"")?;
        let on_error = choice(&mut table, "on_error", "\"continue\" or \"stop\"")?;
        let fired_by = choice(&mut table, "fired_by", "\"any\" or \"owner\"")?;
        Ok(HookConfig {
            shape,
            on_error,
            fired_by,
            limits: toml::Value::Table(table).try_into()?,
        })
    }
}

/// The value of `key` in `table`, one of `choices` (as the error says them), taken out of
/// it; a wrong one is refused naming the key and what it may be.
fn choice<T: serde::de::DeserializeOwned>(
    table: &mut toml::Table,
    key: &str,
    choices: &str,
) -> Result<Option<T>, toml::de::Error> {
    let Some(value) = table.remove(key) else {
        return Ok(None);
    };
    let shown = value.to_string();
    value.try_into().map(Some).map_err(|_| {
        <toml::de::Error as serde::de::Error>::custom(format!("`{key} = {shown}`: it is {choices}"))
    })
}

impl HookConfig {
    /// The limits this hook point sets.
    pub(super) fn limits(&self) -> LimitsConfig {
        self.limits.clone()
    }

    /// How hook point `name` runs when the application does not declare it: as this
    /// section says, else as any undeclared one does; the limits it sets apply over
    /// `defaults`, the host's.
    pub(crate) fn undeclared(
        &self,
        name: &str,
        defaults: modhost_runtime::Limits,
    ) -> crate::HookPoint {
        let point = crate::HookPoint::undeclared(name);
        crate::HookPoint {
            shape: self.shape.unwrap_or(point.shape),
            on_error: self.on_error.unwrap_or(point.on_error),
            ..self.declared(point, defaults)
        }
    }

    /// Hook point `point` as the application declares it; when it leaves the limits to
    /// the host (`None`), those this section sets over `defaults`, the host's. What the
    /// application says wins, as the limits it opens a root with win over `[limits]`.
    pub(crate) fn declared(
        &self,
        point: crate::HookPoint,
        defaults: modhost_runtime::Limits,
    ) -> crate::HookPoint {
        let limits = point
            .limits
            .or_else(|| self.limits.overrides().then(|| self.limits.apply(defaults)));
        crate::HookPoint { limits, ..point }
    }
}

impl Config {
    /// The hook points the file declares, each with whether any module may fire it;
    /// `defaults` are the host's limits.
    pub(crate) fn hook_points(
        &self,
        defaults: modhost_runtime::Limits,
    ) -> Vec<(crate::HookPoint, bool)> {
        self.hooks
            .iter()
            .map(|(name, hook)| {
                let open = hook.fired_by == Some(FiredBy::Any);
                (hook.undeclared(name, defaults), open)
            })
            .collect()
    }
}

/// `[limits]`: overrides of the sandbox's defaults.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, expecting = "a `[limits]` table")]
pub(crate) struct LimitsConfig {
    /// A call's deadline, in milliseconds.
    call_timeout_ms: Option<u64>,
    /// A call's memory cap, in MiB.
    max_memory_mb: Option<usize>,
    /// The longest result or error message of a call, in KiB.
    max_output_kb: Option<usize>,
    /// The host resources a call may hold at once.
    max_resources: Option<usize>,
    /// The log records a call may write; later ones are counted and dropped.
    max_log_records: Option<usize>,
    /// The longest log message kept, in KiB.
    max_log_message_kb: Option<usize>,
    /// The longest key-value key, in KiB.
    max_kv_key_kb: Option<usize>,
    /// The longest key-value value, in KiB.
    max_kv_value_kb: Option<usize>,
    /// How deep hooks fired from handlers may nest.
    max_fire_depth: Option<u32>,
}

impl LimitsConfig {
    /// Whether any limit is set.
    fn overrides(&self) -> bool {
        // Taken apart so that a new limit cannot be left out here.
        let LimitsConfig {
            call_timeout_ms,
            max_memory_mb,
            max_output_kb,
            max_resources,
            max_log_records,
            max_log_message_kb,
            max_kv_key_kb,
            max_kv_value_kb,
            max_fire_depth,
        } = self;
        call_timeout_ms.is_some()
            || max_memory_mb.is_some()
            || max_output_kb.is_some()
            || max_resources.is_some()
            || max_log_records.is_some()
            || max_log_message_kb.is_some()
            || max_kv_key_kb.is_some()
            || max_kv_value_kb.is_some()
            || max_fire_depth.is_some()
    }

    /// `limits` with the configured values in place of its own.
    pub(crate) fn apply(&self, mut limits: modhost_runtime::Limits) -> modhost_runtime::Limits {
        if let Some(ms) = self.call_timeout_ms {
            limits.call_timeout = std::time::Duration::from_millis(ms);
        }
        if let Some(mb) = self.max_memory_mb {
            limits.max_memory = mb.saturating_mul(1024 * 1024);
        }
        if let Some(kb) = self.max_output_kb {
            limits.max_output = kb.saturating_mul(1024);
        }
        if let Some(count) = self.max_resources {
            limits.max_resources = count;
        }
        if let Some(count) = self.max_log_records {
            limits.max_log_records = count;
        }
        if let Some(kb) = self.max_log_message_kb {
            limits.max_log_message = kb.saturating_mul(1024);
        }
        if let Some(kb) = self.max_kv_key_kb {
            limits.max_kv_key = kb.saturating_mul(1024);
        }
        if let Some(kb) = self.max_kv_value_kb {
            limits.max_kv_value = kb.saturating_mul(1024);
        }
        if let Some(depth) = self.max_fire_depth {
            limits.max_fire_depth = depth;
        }
        limits
    }
}

impl LimitsConfig {
    /// The keys set to 0 where 0 would fail every call: the sandbox's own rule
    /// ([`modhost_runtime::Limits::failing_zeros`]), named as this file names them.
    pub(super) fn zeros(&self) -> Vec<&'static str> {
        self.apply(modhost_runtime::Limits::default())
            .failing_zeros()
            .into_iter()
            .map(|field| match field {
                "call_timeout" => "call_timeout_ms",
                "max_memory" => "max_memory_mb",
                "max_output" => "max_output_kb",
                other => other,
            })
            .collect()
    }
}
