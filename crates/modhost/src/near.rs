//! Names near a mistyped one: an installed module within two edits of a rawname asked
//! for, a hook point differing only in case from one dispatched.

use crate::host::Host;

impl Host {
    /// The installed module whose name is nearest `rawname`, within two edits (or a
    /// difference of case alone), if one is.
    pub(crate) fn installed_near(&self, rawname: &str) -> Option<String> {
        let asked = rawname.to_lowercase();
        self.state
            .modules()
            .ok()?
            .into_iter()
            .map(|record| {
                let distance = strsim::damerau_levenshtein(&record.rawname.to_lowercase(), &asked);
                (distance, record.rawname)
            })
            .filter(|(distance, _)| *distance <= 2)
            .min()
            .map(|(_, name)| name)
    }

    /// A hook point the running modules handle whose name differs from `hook` only in
    /// case, as of the last dispatch: hook names are case-sensitive, and FreePBX's are
    /// camelCase (`framework.Chown.fwcChownFiles`). For saying why a dispatch found no
    /// handler.
    pub fn hook_point_in_other_case(&self, hook: &str) -> Option<String> {
        self.dispatcher.point_in_other_case(hook)
    }
}
