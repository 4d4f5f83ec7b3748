//! Where modules come from: update sources (`modhost_sources`) and the publisher keys
//! they pin (`modhost_source_keys`), what was last accepted from each channel
//! (`modhost_source_seen`), the download keys of module-declared channels
//! (`modhost_channel_keys`), and the source each module was installed from
//! (`modhost_module_sources`).

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

/// A publisher key a source pins.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinnedKey {
    /// The minisign public key's base64 line.
    pub key: String,
    /// The next key its publisher announced under this one's signature, pinned beside
    /// it: once a release signed by that one is accepted, this one is dropped.
    pub successor: Option<String>,
}

impl PinnedKey {
    /// `key`, with no successor announced.
    pub fn new(key: &str) -> Self {
        PinnedKey {
            key: key.to_owned(),
            successor: None,
        }
    }
}

/// What was last accepted from a channel: an older copy of its documents is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeenRecord {
    /// The URL (or path) it was accepted from: another URL starts afresh.
    pub url: String,
    /// The highest release serial accepted.
    pub serial: Option<u64>,
    /// The latest signing time accepted, in seconds since the epoch.
    pub signed_at: Option<u64>,
    /// The module a channel of one module's document (a2, FreePBX) offered when first
    /// accepted from the URL: another module's document served in its place is told.
    pub module: Option<String>,
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
    /// The publisher keys pinned, in the order they were pinned; none for an unsigned
    /// source.
    pub public_keys: Vec<PinnedKey>,
    /// The download key appended to package URLs, if any.
    pub extra_query: Option<String>,
}

impl std::fmt::Debug for SourceRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceRecord")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("kind", &self.kind)
            .field("public_keys", &self.public_keys)
            .field(
                "extra_query",
                &self.extra_query.as_ref().map(|_| "<redacted>"),
            )
            .finish()
    }
}

impl State {
    /// Every update source, by name, with the keys it pins.
    pub fn sources(&self) -> Result<Vec<SourceRecord>> {
        let conn = self.connect()?;
        let err = sqlite(self.path());
        let mut keys: Vec<(String, PinnedKey)> = conn
            .prepare("SELECT source, public_key, successor FROM modhost_source_keys ORDER BY rowid")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok((
                        row.get(0)?,
                        PinnedKey {
                            key: row.get(1)?,
                            successor: row.get(2)?,
                        },
                    ))
                })?
                .collect()
            })
            .map_err(&err)?;
        let mut sources: Vec<SourceRecord> = conn
            .prepare("SELECT name, url, extra_query, kind FROM modhost_sources ORDER BY name")
            .and_then(|mut stmt| {
                stmt.query_map([], |row| {
                    Ok(SourceRecord {
                        name: row.get(0)?,
                        url: row.get(1)?,
                        public_keys: Vec::new(),
                        extra_query: row.get(2)?,
                        kind: row.get(3)?,
                    })
                })?
                .collect()
            })
            .map_err(&err)?;
        for source in &mut sources {
            let (own, others): (Vec<_>, Vec<_>) =
                keys.into_iter().partition(|(name, _)| *name == source.name);
            source.public_keys = own.into_iter().map(|(_, key)| key).collect();
            keys = others;
        }
        Ok(sources)
    }

    /// What was last accepted from channel `name`, if anything was.
    pub fn seen(&self, name: &str) -> Result<Option<SeenRecord>> {
        self.connect()?
            .query_row(
                "SELECT url, serial, signed_at, module FROM modhost_source_seen WHERE source = ?1",
                [name],
                |r| {
                    Ok(SeenRecord {
                        url: r.get(0)?,
                        serial: r.get::<_, Option<i64>>(1)?.map(unsigned),
                        signed_at: r.get::<_, Option<i64>>(2)?.map(unsigned),
                        module: r.get(3)?,
                    })
                },
            )
            .optional()
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

/// Moves the one key each source pinned in `modhost_sources.public_key`, as databases
/// made before sources could pin several hold it, to `modhost_source_keys`, and drops the
/// column. In Rust rather than SQL: whether the column is there decides what to do.
pub(crate) fn move_pinned_keys(conn: &rusqlite::Connection) -> rusqlite::Result<()> {
    let has_column = conn
        .prepare("SELECT 1 FROM pragma_table_info('modhost_sources') WHERE name = 'public_key'")?
        .exists([])?;
    if has_column {
        conn.execute_batch(
            "INSERT OR IGNORE INTO modhost_source_keys (source, public_key)
                 SELECT name, public_key FROM modhost_sources WHERE public_key IS NOT NULL;
             ALTER TABLE modhost_sources DROP COLUMN public_key;",
        )?;
    }
    Ok(())
}

/// A stored serial or time, which SQLite holds signed, back as the number it was.
fn unsigned(value: i64) -> u64 {
    u64::try_from(value).unwrap_or(0)
}

/// A serial or time as SQLite holds it: past `i64::MAX`, which no real one reaches, it is
/// kept at the most.
fn signed(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

impl Txn {
    /// Adds or replaces an update source, and the keys it pins.
    pub fn put_source(&mut self, source: &SourceRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_sources (name, url, extra_query, kind) \
                 VALUES (?1, ?2, ?3, ?4)",
                params![source.name, source.url, source.extra_query, source.kind],
            )
            .map_err(self.err())?;
        self.conn
            .execute(
                "DELETE FROM modhost_source_keys WHERE source = ?1",
                [&source.name],
            )
            .map_err(self.err())?;
        for pinned in &source.public_keys {
            self.conn
                .execute(
                    "INSERT OR REPLACE INTO modhost_source_keys (source, public_key, successor) \
                     VALUES (?1, ?2, ?3)",
                    params![source.name, pinned.key, pinned.successor],
                )
                .map_err(self.err())?;
        }
        Ok(())
    }

    /// Removes an update source, its keys and what was accepted from it; returns whether
    /// it existed. The modules installed from it are from then on as if installed from a
    /// file: bound to its name, they would take whatever a new source of that name (another
    /// server, another key) offered, which only `source attach` may decide.
    pub fn remove_source(&mut self, name: &str) -> Result<bool> {
        for table in [
            "modhost_source_keys",
            "modhost_source_seen",
            "modhost_module_sources",
        ] {
            self.conn
                .execute(&format!("DELETE FROM {table} WHERE source = ?1"), [name])
                .map_err(self.err())?;
        }
        let removed = self
            .conn
            .execute("DELETE FROM modhost_sources WHERE name = ?1", [name])
            .map_err(self.err())?;
        Ok(removed > 0)
    }

    /// Records what was accepted from channel `name`. For the same URL, a serial or a
    /// signing time only grows: two checks finishing out of order must not lower it, which
    /// would let the older release back in; the module first recorded stays. A later
    /// signing time brings its own serial, when it has one, and an earlier one none (one-
    /// document channels tell builds of one second apart by it, and a publisher's
    /// serials may restart).
    pub fn set_seen(&mut self, name: &str, seen: &SeenRecord) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO modhost_source_seen (source, url, serial, signed_at, module) \
                 VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (source) DO UPDATE SET \
                   serial = CASE WHEN url = excluded.url \
                     THEN CASE \
                       WHEN excluded.signed_at > coalesce(signed_at, -1) \
                         AND excluded.serial IS NOT NULL THEN excluded.serial \
                       WHEN excluded.signed_at < signed_at THEN serial \
                       ELSE max(coalesce(serial, excluded.serial), coalesce(excluded.serial, serial)) \
                       END \
                     ELSE excluded.serial END, \
                   signed_at = CASE WHEN url = excluded.url \
                     THEN max(coalesce(signed_at, excluded.signed_at), \
                              coalesce(excluded.signed_at, signed_at)) \
                     ELSE excluded.signed_at END, \
                   module = CASE WHEN url = excluded.url \
                     THEN coalesce(module, excluded.module) \
                     ELSE excluded.module END, \
                   url = excluded.url",
                params![
                    name,
                    seen.url,
                    seen.serial.map(signed),
                    seen.signed_at.map(signed),
                    seen.module,
                ],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Forgets what was accepted from channel `name`, now read at `url`: keys pinned in
    /// place of the old ones vouch for nothing the old ones did.
    pub fn reset_seen(&mut self, name: &str, url: &str) -> Result<()> {
        self.conn
            .execute(
                "INSERT OR REPLACE INTO modhost_source_seen (source, url, serial, signed_at, module) \
                 VALUES (?1, ?2, NULL, NULL, NULL)",
                [name, url],
            )
            .map(|_| ())
            .map_err(self.err())
    }

    /// Follows the keys of source `name` after a release signed by `signer`, which
    /// announces `next` as its publisher's next key (or nothing), was accepted: the keys
    /// that announced `signer` are dropped (it succeeds them) and it stays pinned in its
    /// own right; a key `signer` announced before and no longer does, pinned only for
    /// that, is unpinned (a withdrawn or replaced next key signs nothing); `next` is
    /// pinned beside `signer`, as its successor.
    pub fn follow_keys(&mut self, name: &str, signer: &str, next: Option<&str>) -> Result<()> {
        let next = next.filter(|next| *next != signer);
        let statements: [(&str, &[&dyn rusqlite::ToSql]); 5] = [
            (
                "DELETE FROM modhost_source_keys \
                 WHERE source = ?1 AND successor = ?2 AND public_key <> ?2",
                params![name, signer],
            ),
            (
                "UPDATE modhost_source_keys SET announced_by = NULL \
                 WHERE source = ?1 AND public_key = ?2",
                params![name, signer],
            ),
            (
                "DELETE FROM modhost_source_keys \
                 WHERE source = ?1 AND announced_by = ?2 AND public_key IS NOT ?3",
                params![name, signer, next],
            ),
            (
                "INSERT OR IGNORE INTO modhost_source_keys (source, public_key, announced_by) \
                 SELECT ?1, ?3, ?2 WHERE ?3 IS NOT NULL",
                params![name, signer, next],
            ),
            (
                "UPDATE modhost_source_keys SET successor = ?3 \
                 WHERE source = ?1 AND public_key = ?2",
                params![name, signer, next],
            ),
        ];
        for (sql, params) in statements {
            self.conn.execute(sql, params).map_err(self.err())?;
        }
        Ok(())
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

    /// Forgets the download key of a module-declared channel.
    pub fn clear_channel_key(&mut self, channel: &str) -> Result<()> {
        self.conn
            .execute(
                "DELETE FROM modhost_channel_keys WHERE channel = ?1",
                [channel],
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
