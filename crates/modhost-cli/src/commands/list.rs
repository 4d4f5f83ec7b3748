use anyhow::Result;

use crate::Context;

pub fn run(ctx: &Context) -> Result<()> {
    let modules = ctx.open()?.list()?;
    ctx.out.result(&modules, || {
        let rows: Vec<[String; 4]> = modules
            .iter()
            .map(|m| {
                let status = match &m.reason {
                    Some(reason) => format!("{} ({reason})", m.status),
                    None => m.status.to_string(),
                };
                [m.rawname.clone(), m.version.clone(), status, m.name.clone()]
            })
            .collect();
        table(["RAWNAME", "VERSION", "STATUS", "NAME"], &rows)
    })
}

/// Left-aligned columns, as wide as their widest cell.
fn table<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> String {
    let mut widths = header.map(str::len);
    for row in rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut text = cells
            .iter()
            .zip(widths)
            .map(|(cell, width)| format!("{cell:<width$}"))
            .collect::<Vec<_>>()
            .join("  ");
        text.truncate(text.trim_end().len());
        text + "\n"
    };
    let mut text = line(header.to_vec());
    for row in rows {
        text += &line(row.iter().map(String::as_str).collect());
    }
    text
}
