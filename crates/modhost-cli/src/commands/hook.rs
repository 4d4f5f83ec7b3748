use anyhow::Result;

use crate::Context;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The hook point, e.g. `get_config` or `userman.delUser`.
    name: String,
    /// The input every handler receives.
    #[arg(long, default_value = "")]
    payload: String,
}

pub fn run(ctx: &Context, args: Args) -> Result<()> {
    let calls = ctx.open()?.dispatch(&args.name, &args.payload)?;
    ctx.out.result(&calls, || {
        calls
            .iter()
            .map(|c| match (&c.output, &c.error) {
                (_, Some(error)) => format!("{} (pri {}) failed: {error}\n", c.rawname, c.priority),
                (output, None) => format!(
                    "{} (pri {}): {}\n",
                    c.rawname,
                    c.priority,
                    output.as_deref().unwrap_or("")
                ),
            })
            .collect()
    })
}
