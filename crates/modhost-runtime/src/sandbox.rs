//! The store a call runs in, with no ambient authority: WASI sees only the module's data
//! directory and the host directories granted to it, and nothing of the network.

use std::path::{Path, PathBuf};
use std::time::Instant;

use wasmtime::Store;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::bindings::Instance;
use crate::granted::{Granted, Unopened};
use crate::host::Sandbox;
use crate::limiter::Limiter;
use crate::output::Captured;
use crate::{Error, Limits, Result, Runtime};

/// Where a module's data directory appears inside its sandbox.
pub const GUEST_DATA_DIR: &str = "/data";

/// A host directory mounted into a module's sandbox, at the same path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mount {
    /// The host directory; the module sees it at the same path.
    pub path: PathBuf,
    /// Whether the module may only read it.
    pub read_only: bool,
}

/// A sandboxed store, with its instance once instantiated.
pub(crate) struct Hot {
    pub(crate) store: Store<Sandbox>,
    pub(crate) instance: Option<Instance>,
    pub(crate) stderr: Captured,
    pub(crate) stdout: Captured,
    pub(crate) max_memory: usize,
}

impl Runtime {
    /// A store for `rawname` with no ambient authority: WASI sees only the module's data
    /// directory and granted mounts, no network; memory is capped by a limiter, host
    /// resources by the table's capacity.
    pub(crate) fn sandbox(
        &self,
        rawname: &str,
        data_dir: &Path,
        mounts: &[Mount],
        limits: Limits,
    ) -> Result<Hot> {
        let mut wasi = WasiCtxBuilder::new();
        let stderr = Captured::stderr();
        let stdout = Captured::stdout(rawname, limits.max_log_records);
        wasi.allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .stderr(stderr.clone())
            .stdout(stdout.clone());
        wasi.preopened_dir(data_dir, GUEST_DATA_DIR, FsPerms::ReadWrite)
            .map_err(|e| Error::Io {
                path: data_dir.to_owned(),
                source: std::io::Error::other(e.to_string()),
            })?;
        // Each directory the module may write, with the directory it was when opened: the
        // quota counts that one, or refuses writes if the path leads elsewhere now.
        let mut writable = vec![(data_dir.to_owned(), crate::disk::id_of(data_dir))];
        for mount in mounts {
            let perms = if mount.read_only {
                FsPerms::ReadOnly
            } else {
                FsPerms::ReadWrite
            };
            let guest = mount.path.display().to_string();
            if let Some(protected) = self.reaches_protected(&mount.path) {
                tracing::warn!(
                    module = rawname,
                    directory = %mount.path.display(),
                    "the module's granted directory now leads into or holds `{}`, which no \
                     module may reach, so its sandbox lacks it: revoke the module's grant of it",
                    protected.display()
                );
                continue;
            }
            // A granted directory removed (or replaced by a file) since it was granted is
            // left out, said once per sandbox: the module runs without it and meets its
            // absence as any program meets a missing directory, while its disable() and
            // uninstall() still run and no other module's call is held up by it. One
            // whose path now passes through a link (a module that may write above it
            // swapped a directory for one) is left out too: it may lead anywhere.
            let opened = Granted::open(&mount.path).and_then(|granted| {
                wasi.preopened_dir(granted.path_or(&mount.path), &guest, perms)
                    .map_err(|e| Unopened::Io(std::io::Error::other(e.to_string())))?;
                Ok(granted)
            });
            let granted = match opened {
                Ok(granted) => granted,
                Err(Unopened::Link(link)) => {
                    tracing::warn!(
                        module = rawname,
                        directory = %mount.path.display(),
                        "the module's granted directory is now reached through `{}`, which is \
                         a link or no directory, so its sandbox lacks it: make the path real \
                         directories again, or revoke the module's grant of it",
                        link.display()
                    );
                    continue;
                }
                Err(Unopened::Io(e)) => {
                    // The system's words, without its error number.
                    let text = e.to_string();
                    let why = text.split(" (os error").next().unwrap_or_default();
                    tracing::warn!(
                        module = rawname,
                        directory = %mount.path.display(),
                        "the module's granted directory cannot be opened ({why}), so its \
                         sandbox lacks it: recreate it, or revoke the module's grant of it"
                    );
                    continue;
                }
            };
            if perms == FsPerms::ReadWrite {
                writable.push((mount.path.clone(), granted.id()));
            }
        }
        let mut table = ResourceTable::new();
        table.set_max_capacity(limits.max_resources);
        let state = Sandbox {
            wasi: wasi.build(),
            table,
            limiter: Limiter::new(limits.max_memory),
            limits,
            rawname: rawname.to_owned(),
            session: None,
            logs: std::sync::Arc::default(),
            log_dropped: 0,
            deadline: Instant::now(),
            fire: None,
            depth: 0,
            budget: self.budgets.of(rawname, writable),
            context: None,
            cancel: None,
            capabilities: std::sync::Arc::clone(&self.capabilities),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|s| &mut s.limiter);
        // What one import call may hand the host: no more than the guest's memory holds.
        // Past it (arguments that all point at one buffer) the call traps, rather than
        // the host copying many times the memory cap for it.
        store.set_hostcall_fuel(limits.max_memory);
        // At every epoch tick: stop the call once it is cancelled or its deadline passed,
        // else let it run one more tick. Cancelling advances the epoch at once.
        store.epoch_deadline_callback(|store| {
            store.data().stopped()?;
            Ok(wasmtime::UpdateDeadline::Continue(1))
        });
        // And at every call into the host: a stopped call never enters an application's
        // capability (which may place a call) nor any other import; it ends as a cancel
        // or a timeout. (What an import that waited out the deadline answers, such as
        // which module held the database, still reaches the guest.)
        store.call_hook(|store, hook| match hook {
            wasmtime::CallHook::CallingHost => store.data().stopped(),
            _ => Ok(()),
        });
        Ok(Hot {
            store,
            instance: None,
            stderr,
            stdout,
            max_memory: limits.max_memory,
        })
    }
}
