//! A source's download key (`email=…&key=…`): checked as a URL's query can carry it,
//! stored for an administrator's source or a module's channel, forgotten.

use super::sources::channels;
use crate::host::Host;
use crate::ops::Transaction;
use crate::{Error, Result};

/// See [`Host::set_source_key`].
pub(crate) fn set_source_key(host: &Host, name: &str, extra_query: &str) -> Result<()> {
    let query = extra_query.trim().trim_start_matches('?');
    store_source_key(host, name, Some(query)).map(drop)
}

/// See [`Host::clear_source_key`].
pub(crate) fn clear_source_key(host: &Host, name: &str) -> Result<bool> {
    store_source_key(host, name, None)
}

/// Stores `query` as the download key of source or channel `name`, or forgets its key
/// when `None`; whether it had one.
fn store_source_key(host: &Host, name: &str, query: Option<&str>) -> Result<bool> {
    if let Some(query) = query {
        check_key(name, query)?;
    }
    let lock = host.lock()?;
    let channel = channels(host)?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| Error::Refused(vec![format!("there is no source `{name}`")]))?;
    let had = channel
        .source
        .as_ref()
        .is_ok_and(|s| s.extra_query.is_some());
    // Read before the change begins: a read beside an open write waits for nothing, but
    // need not see it either.
    let record = host.state.sources()?.into_iter().find(|s| s.name == name);
    let mut tx = Transaction::new(host, &lock, "source");
    let txn = tx.state()?;
    match (channel.declared_by.is_some(), query) {
        (true, Some(query)) => txn.set_channel_key(name, &channel.url, query)?,
        (true, None) => txn.clear_channel_key(name)?,
        (false, query) => {
            if let Some(mut record) = record {
                record.extra_query = query.map(str::to_owned);
                txn.put_source(&record)?;
            }
        }
    }
    tx.commit()?;
    Ok(had)
}

/// Refuses a download key a URL's query cannot carry as written; warns of a `+`.
fn check_key(name: &str, query: &str) -> Result<()> {
    // The message never quotes the key: it is a secret.
    modhost_update::validate_query(query)
        .map_err(|e| Error::Refused(vec![format!("source `{name}`: {e}")]))?;
    // Servers read a query's `+` as a space: `email=a+b@…` reaches them as `a b@…`.
    if query.contains('+') {
        tracing::warn!(
            "source `{name}`: the download key holds `+`, which servers read as a space; if \
             it is part of an e-mail address or the key, write it as `%2B`"
        );
    }
    Ok(())
}
