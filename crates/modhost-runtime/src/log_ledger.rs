//! What each module has logged in one dispatch, the hooks it fires included: a module
//! that fires its own handler again and again still logs no more than one call may.

use std::collections::BTreeMap;
use std::sync::Mutex;

/// Log records counted per module across a dispatch and every hook fired inside it.
#[derive(Debug, Default)]
pub struct LogLedger(Mutex<BTreeMap<String, usize>>);

impl LogLedger {
    /// Counts one record of `rawname`'s; `false` once `limit` of them were counted.
    pub(crate) fn admit(&self, rawname: &str, limit: usize) -> bool {
        let mut counts = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let count = match counts.get_mut(rawname) {
            Some(count) => count,
            None => counts.entry(rawname.to_owned()).or_default(),
        };
        if *count >= limit {
            return false;
        }
        *count += 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::LogLedger;

    #[test]
    fn each_module_has_its_own_count() {
        let ledger = LogLedger::default();
        assert!(ledger.admit("a", 2) && ledger.admit("a", 2));
        assert!(!ledger.admit("a", 2));
        assert!(ledger.admit("b", 2));
    }
}
