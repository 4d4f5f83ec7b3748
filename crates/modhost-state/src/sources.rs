//! Where modules come from: update sources (`modhost_sources`), the download keys of
//! module-declared channels (`modhost_channel_keys`), and the source each module was
//! installed from (`modhost_module_sources`).

use rusqlite::{OptionalExtension, params};

use crate::error::sqlite;
use crate::{Result, State, Txn};

/// A download key stored for a module-declared channel. Its `Debug` leaves the key out.
#[derive(Clone, PartialEq, Eq)]
pub struct ChannelKey {
    /// The query appended to the channel's package URLs.
    pub extra_query: String,
    /// The channel URL it was stored for; `None` for a key stored before keys were bound
    /// to URLs.
    pub url: Option<String>,
}

impl std::fmt::Debug for ChannelKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChannelKey")
            .field("extra_query", &"<redacted>")
            .field("url", &self.url)
            .finish()
    }
}

/// An update source as stored. Its `Debug` leaves the download key out.
#[derive(Clone, PartialEq, Eq)]
pub struct SourceRecord {
    /// Its name.
    pub name: String,
    /// The repository URL or local path.
    pub url: String,
    /// Its format: `index`, `a2`, `freepbx` or `joomla`.
    pub kind: String,
    /// The pinned publisher key, if any.
    pub public_key: Option<String>,
    /// The download key appended to package URLs, if any.
    pub extra_query: Option<String>,
}

impl std::fmt::Debug for SourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRecord")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("public_key", &self.public_key)
            .field(
                "extra_query",
                &self.extra_query.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl State {
    /// Every update source, by name.
    pub fn sources(&self) -> Result<Vec<SourceRecord>> {
        let conn = self.connect()?;
        let mut stmt = conn
            .prepare(
                "SELECT name, url, public_key, extra_query, kind FROM modhost_sources ORDER BY name",
            )
            .map_err(sqlite(self.path()))?;
        let rows = stmt
            .query_map([], |row| {
                Ok(SourceRecord {
                    name: row.get(0)?,
                    url: row.get(1)?,
                    public_key: row.get(2)?,
                    extra_query: row.get(3)?,
                    kind: row.get(4)?,
                })
            })
            .map_err(sqlite(self.path()))?;
        rows.collect::<rusqlite::Result<_>>()
            .map_err(sqlite(self.path()))
    }

    /// The download key stored for a module-declared channel (`phonebook/updateurl`), with
    /// the channel URL it was stored for.
    pub fn channel_key(&self, channel: &str) -> Result<Option<ChannelKey>> {
        self.connect()?
            .query_row(
                "SELECT extra_query, url FROM modhost_channel_keys WHERE channel = ?1",
                [channel],
                |r| {
                    Ok(ChannelKey {
                        extra_query: r.get(0)?,
                        url: r.get(1)?,
                    })
                },
            )
            .optional()
            .map_err(sqlite(self.path()))
    }

    /// The source `rawname` was installed from; `None` for a module installed from a file.
    pub fn module_source(&self, rawname: &str) -> Result<Option<String>> {
        self.connect()?
            .query_row(
                "SELECT source FROM modhost_module_sources WHERE rawname = ?1",
                [rawname],
                |r| r.get(0),
            )
            .optional()
            .map_err(sqlite(self.path()))
    }
}

impl Txn {
    /// Adds or replaces an update source.
    pub fn put_source(&mut self, source: &SourceRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_sources (name, url, public_key, extra_query, kind) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![
                    source.name,
                    source.url,
                    source.public_key,
                    source.extra_query,
                    source.kind
                ],
            )
            .map_err(self.err())?;
        Ok(())
    }

    /// Removes an update source; returns whether it existed.
    pub fn remove_source(&mut self, name: &str) -> Result<bool> {
        let removed = self
            .conn
            .execute("DELETE FROM modhost_sources WHERE name = ?1", [name])
            .map_err(self.err())?;
        Ok(removed > 0)
    }

    /// Stores the download key of a module-declared channel, for the channel URL `url`
    /// alone: it is sent to no other.
    pub fn set_channel_key(&mut self, channel: &str, url: &str, extra_query: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_channel_keys (channel, extra_query, url) \
                 VALUES (?1, ?2, ?3)",
                [channel, extra_query, url],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Records that `rawname` came from `source`.
    pub fn set_module_source(&mut self, rawname: &str, source: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_module_sources (rawname, source) VALUES (?1, ?2)",
                [rawname, source],
            )
            .map_err(self.err())?;
        Ok(())
    }
}
