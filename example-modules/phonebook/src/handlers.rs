//! The handlers every phonebook version shares: its dialplan for `get_config` and the
//! caller naming of `call.route`. Version 2 includes this file too, so both versions
//! generate the same configuration.

use modhost_sdk::db;

/// The caller's name for `number`, if the phonebook knows it.
pub fn name_of(number: &str) -> Result<Option<String>, String> {
    let rows = db::query(
        "SELECT name FROM phonebook_entries WHERE number = ?1",
        &[db::text(number)],
    )?;
    Ok(rows
        .rows
        .first()
        .and_then(|row| row.first())
        .and_then(db::as_text)
        .map(str::to_owned))
}

/// `get_config`: names known callers before anything else in the dialplan runs.
pub fn dialplan(payload: &str) -> Result<String, String> {
    let rows = db::query(
        "SELECT number, name FROM phonebook_entries ORDER BY number",
        &[],
    )?;
    let mut conf = format!("{payload}[phonebook-lookup]\n");
    for row in &rows.rows {
        let field = |i: usize| row.get(i).and_then(db::as_text).unwrap_or("");
        conf.push_str(&format!(
            "exten => {},1,Set(CALLERID(name)={})\n",
            field(0),
            field(1)
        ));
    }
    Ok(conf)
}

/// `call.route`: names the caller for the rest of the pipeline.
pub fn route(payload: &str) -> Result<String, String> {
    let mut call: serde_json::Value = serde_json::from_str(payload).map_err(|e| e.to_string())?;
    let from = call["from"].as_str().unwrap_or_default().to_owned();
    if let Some(name) = name_of(&from)? {
        call["caller_name"] = name.into();
    }
    Ok(call.to_string())
}
