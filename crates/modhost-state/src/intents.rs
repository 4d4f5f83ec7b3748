//! The last change's intent (`modhost_meta` key `intent`): noted in the change's own
//! transaction, so that after a crash the database itself says whether that change
//! committed, whatever its intent file had time to say.

use rusqlite::OptionalExtension;

use crate::error::sqlite;
use crate::{Result, State, Txn};

impl State {
    /// The intent the last change that committed noted, if any did.
    pub fn noted_intent(&self) -> Result<Option<i64>> {
        let conn = self.connect()?;
        conn.query_row(
            "SELECT value FROM modhost_meta WHERE key = 'intent'",
            [],
            |row| row.get(0),
        )
        .optional()
        .map_err(sqlite(self.path()))
    }
}

impl Txn {
    /// Notes intent `id` as this change's: it stands once the change commits.
    pub fn note_intent(&mut self, id: i64) -> Result<()> {
        self.conn
            .execute(
                "INSERT INTO modhost_meta (key, value) VALUES ('intent', ?1) \
                 ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                [id],
            )
            .map_err(self.err())?;
        Ok(())
    }
}
