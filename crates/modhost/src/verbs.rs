//! What a [`Host`] does to modules: each public verb is one operation of `ops/` or
//! `online/`, which hold the logic.

use std::path::{Path, PathBuf};

use crate::host::Host;
use crate::online::{self, SourceInfo, SourceReport};
use crate::ops::{self, Reload};
use crate::packages::Scan;
use crate::plan::Mode;
use crate::{Change, DisableOptions, Options, Request, Result, SourceKind};

impl Host {
    /// Installs packages as one unit; a package whose module is installed at a lower
    /// version upgrades it. A module directory (module.xml beside its component) may
    /// stand for a package: it is packed first and passes the same checks. See
    /// [`Host::upgrade`] for what "one unit" guarantees.
    pub fn install(&self, packages: &[PathBuf], options: Options) -> Result<Vec<Change>> {
        ops::apply(
            self,
            packages,
            Mode::Install,
            options,
            &Default::default(),
            None,
        )
    }

    /// Upgrades installed modules from packages, as one unit: every package is unpacked
    /// and checked, the whole plan's dependencies resolved and every component compiled
    /// before anything changes; then, dependencies first and inside one transaction, each
    /// module's schema is applied and its `install()` or `upgrade()` runs against new
    /// copies of its files and data. The replaced version is kept as the backup. If any
    /// step fails, nothing changes. [`Options::force`] skips dependency checks, never
    /// safety checks.
    pub fn upgrade(&self, packages: &[PathBuf], options: Options) -> Result<Vec<Change>> {
        ops::apply(
            self,
            packages,
            Mode::Upgrade,
            options,
            &Default::default(),
            None,
        )
    }

    /// Installs, as [`Host::install`], the packages `names` resolve to
    /// ([`Host::resolve_packages`]) in the package directory `from` (default: the
    /// configured one), with the modules they require that are not installed and that
    /// directory holds, each reported as [`Event::Requires`](crate::Event::Requires).
    /// [`Options::force`], which sets dependencies aside, brings none along.
    pub fn install_from(
        &self,
        names: &[impl AsRef<std::ffi::OsStr>],
        from: Option<&Path>,
        options: Options,
    ) -> Result<Vec<Change>> {
        ops::apply_named(self, names, from, Mode::Install, options)
    }

    /// Upgrades, as [`Host::upgrade`], the packages `names` resolve to in the package
    /// directory `from` (default: the configured one). Unlike [`Host::install_from`], it
    /// brings no other module along: an upgrade changes only what is installed.
    pub fn upgrade_from(
        &self,
        names: &[impl AsRef<std::ffi::OsStr>],
        from: Option<&Path>,
        options: Options,
    ) -> Result<Vec<Change>> {
        ops::apply_named(self, names, from, Mode::Upgrade, options)
    }

    /// Upgrades every installed module for which the package directory `from` (default:
    /// the configured one) holds a newer version, as one unit.
    pub fn upgrade_all(&self, from: Option<&Path>, options: Options) -> Result<Vec<Change>> {
        ops::upgrade_all(self, from, options)
    }

    /// Installs every module of the package directory `from` (default: the configured
    /// one) that is not installed, and upgrades those it holds newer versions of, as one
    /// unit. Those whose requirements are not met by what is installed and the rest of
    /// the directory are left out and named in [`Error::LeftOut`](crate::Error::LeftOut),
    /// which also holds what was done.
    pub fn install_local(&self, from: Option<&Path>, options: Options) -> Result<Vec<Change>> {
        ops::install_local(self, from, options)
    }

    /// Runs the module's `uninstall()`, then removes its record, tables, key-value store,
    /// backup, files and data. Refused while running modules depend on it, unless `force`.
    pub fn uninstall(&self, rawname: &str, force: bool) -> Result<Change> {
        ops::remove(self, rawname, force, true)
    }

    /// Uninstalls several modules as one change: those given may depend on each other
    /// (each is refused only while a running module not given depends on it, unless
    /// `force`), their `uninstall()` calls run dependents first, and either all of them
    /// go or none does.
    pub fn uninstall_all(&self, rawnames: &[String], force: bool) -> Result<Vec<Change>> {
        ops::remove_all(self, rawnames, force, true)
    }

    /// Deletes several modules as one change, running none of their code: as
    /// [`Host::uninstall_all`] without the `uninstall()` calls.
    pub fn delete_all(&self, rawnames: &[String], force: bool) -> Result<Vec<Change>> {
        ops::remove_all(self, rawnames, force, false)
    }

    /// Removes a module without running any of its code — for a module that is broken or
    /// whose `uninstall()` keeps failing. Refused while running modules depend on it,
    /// unless `force`.
    pub fn delete(&self, rawname: &str, force: bool) -> Result<Change> {
        ops::remove(self, rawname, force, false)
    }

    /// Enables a disabled module: checks its dependencies (unless `force`), runs its
    /// `enable()`, and marks it enabled, in one transaction.
    pub fn enable(&self, rawname: &str, force: bool) -> Result<Change> {
        ops::enable(self, rawname, force)
    }

    /// Enables several disabled modules as one change: dependencies among them count as
    /// enabled, their `enable()` calls run dependencies first, and either all of them end
    /// up enabled or none does.
    pub fn enable_all(&self, rawnames: &[String], force: bool) -> Result<Vec<Change>> {
        ops::enable_all(self, rawnames, force)
    }

    /// Disables a module: refused while running modules depend on it (unless `force`);
    /// runs its `disable()` and marks it disabled, in one transaction.
    pub fn disable(&self, rawname: &str, force: bool) -> Result<Change> {
        let options = DisableOptions {
            force,
            skip_code: false,
        };
        ops::disable(self, rawname, options)
    }

    /// Disables several modules as one change: those given may depend on each other
    /// (each is refused only while a running module not given depends on it, unless
    /// `options.force`), their `disable()` calls run dependents first, and either all of
    /// them end up disabled or none does.
    pub fn disable_all(&self, rawnames: &[String], options: DisableOptions) -> Result<Vec<Change>> {
        ops::disable_all(self, rawnames, options)
    }

    /// [`Host::disable`] with every option: [`DisableOptions::skip_code`] disables a module
    /// whose `disable()` never returns or keeps failing without running any of its code,
    /// keeping its data as it is (where [`Host::delete`] would remove it).
    pub fn disable_with(&self, rawname: &str, options: DisableOptions) -> Result<Change> {
        ops::disable(self, rawname, options)
    }

    /// Returns `rawname` to the version its last upgrade replaced: files, data, key-value
    /// store and tables as they were. Refused when running modules need the current
    /// version (unless `force`).
    pub fn rollback(&self, rawname: &str, force: bool) -> Result<Change> {
        ops::rollback(self, rawname, force)
    }

    /// Describes every module in `dir` — its packages and its module directories (each a
    /// directory holding a module.xml), as phpWebSite's installer lists a modules
    /// directory: its version against the installed one, whether it could be installed,
    /// and what its component exports. A package or module directory whose module.xml
    /// cannot be read is reported in [`Scan::unreadable`] with the error, and the others
    /// are still described. Installed modules for which `dir` holds a newer version are
    /// marked `needs-upgrade`; those an earlier scan of `dir` marked, and for which it no
    /// longer holds one, are enabled again — unless something in `dir` could not be read,
    /// which may be that newer version. What the scan compiles stays in the cache within
    /// its bound, so that installing a scanned package compiles nothing; a throwaway host
    /// ([`Host::open_scratch`]) compiles nothing, and reads each component instead.
    pub fn scan(&self, dir: &Path) -> Result<Scan> {
        ops::scan(self, dir)
    }

    /// Runs the `get_config` pipeline across the running modules and writes the
    /// configuration it builds to `etc/extensions_modhost.conf` in the root, atomically.
    /// Fails with [`Error::Reload`](crate::Error::Reload), writing nothing, if a handler
    /// fails, and with [`Error::ReloadBroken`](crate::Error::ReloadBroken) while a module
    /// with a `get_config` handler is broken (its part would be missing), or a broken
    /// module's module.xml cannot be read to tell. `get_config` runs as a fail-closed
    /// pipeline whatever was declared for it: only its limits are taken.
    pub fn reload(&self) -> Result<Reload> {
        ops::reload(self)
    }

    /// Grants installed module `rawname` every directory its module.xml asks for.
    pub fn grant(&self, rawname: &str) -> Result<Vec<Request>> {
        ops::grant(self, rawname)
    }

    /// Withdraws every grant of installed module `rawname`: its directories are no
    /// longer mounted, and a module importing a capability that needs a grant no longer
    /// runs (each call fails naming it) until granted again.
    pub fn revoke(&self, rawname: &str) -> Result<()> {
        ops::revoke(self, rawname)
    }

    /// Adds update source `name` of `kind` at `location`: an `https://` URL or an
    /// absolute local path. With a `public_key`, the source is signed: unsigned or badly
    /// signed documents are refused. An existing source is changed only if `replace`: it
    /// keeps its download key while its URL stays the same (the key is the publisher's,
    /// never sent to another server), and its modules stay bound to it.
    pub fn add_source(
        &self,
        name: &str,
        kind: SourceKind,
        location: &str,
        public_key: Option<&str>,
        replace: bool,
    ) -> Result<()> {
        online::add_source(self, name, kind, location, public_key, replace)
    }

    /// Adds update source `name` as [`Host::add_source`] does, pinned to every key of
    /// `public_keys` (minisign public keys, or the text of `minisign.pub` files): its
    /// documents must be signed by one of them. A release signed by one may announce the
    /// publisher's next key, which is then pinned beside it, and the one it succeeds
    /// dropped once the next key has signed a release. Whether it replaced a source of
    /// that name.
    pub fn add_source_pinned(
        &self,
        name: &str,
        kind: SourceKind,
        location: &str,
        public_keys: &[&str],
        replace: bool,
    ) -> Result<bool> {
        online::add_source_pinned(self, name, kind, location, public_keys, replace)
    }

    /// Makes installed module `rawname` take its updates from source `source` from now on:
    /// the explicit step for a module installed from a file (or from another source),
    /// which is otherwise never replaced by a source's module of the same name. Returns
    /// the source it was bound to before, if any.
    pub fn attach_source(&self, rawname: &str, source: &str) -> Result<Option<String>> {
        online::attach_source(self, rawname, source)
    }

    /// Removes update source `name`. While modules installed from it are bound to it, only
    /// if `force`: they are then as if installed from a file, updated from no source
    /// (not even a new one of the same name) until [`Host::attach_source`] binds them.
    pub fn remove_source(&self, name: &str, force: bool) -> Result<()> {
        online::remove_source(self, name, force)
    }

    /// Stores the download key (`email=…&key=…`, say) appended to the package URLs of
    /// source or module channel `name`; a module channel's key is sent only to the URL the
    /// channel has now. A key a URL's query cannot hold as written is refused.
    pub fn set_source_key(&self, name: &str, extra_query: &str) -> Result<()> {
        online::set_source_key(self, name, extra_query)
    }

    /// Forgets the download key of source (or module channel) `name`, as a leaked or
    /// expired licence key is: its downloads go without one. Whether it had one.
    pub fn clear_source_key(&self, name: &str) -> Result<bool> {
        online::clear_source_key(self, name)
    }

    /// The administrator's sources and the channels installed modules declare.
    pub fn sources(&self) -> Result<Vec<SourceInfo>> {
        online::sources(self)
    }

    /// Asks every channel what it offers. A channel that is down, slow, or answers garbage
    /// or a bad signature is reported in its own entry; the others are checked regardless.
    pub fn check_online(&self) -> Result<Vec<SourceReport>> {
        online::check_online(self)
    }

    /// [`Host::check_online`], keeping only the offers that concern upgrades of installed
    /// modules ([`Offer::concerns_upgrades`](crate::Offer::concerns_upgrades)).
    pub fn check_upgrades(&self) -> Result<Vec<SourceReport>> {
        online::check_upgrades(self)
    }

    /// Downloads the newest verified package of `rawname` from the first channel offering
    /// it into `dir`.
    pub fn download(&self, rawname: &str, dir: &Path) -> Result<PathBuf> {
        online::download(self, rawname, dir)
    }

    /// Downloads the package at `url` into `dir`, refusing it unless its SHA-256 is
    /// `sha256` and it is a readable module package; named `RAWNAME-VERSION.tgz` (or
    /// `.zip`, by its content).
    pub fn download_url(&self, url: &str, sha256: &str, dir: &Path) -> Result<PathBuf> {
        online::download_url(self, url, sha256, dir)
    }

    /// Installs modules from the sources that offer them: every package is downloaded and
    /// verified before anything changes, then installed as one unit, each recorded as
    /// coming from its source. A module already installed is taken only from its own
    /// channels ([`Host::upgrade_online`]'s): never replaced by one from another source.
    pub fn install_online(&self, names: &[String], options: Options) -> Result<Vec<Change>> {
        online::install_online(self, names, options)
    }

    /// Upgrades modules (all with an upgrade when `names` is empty) from their own
    /// channels: the source they were installed from, or for a module installed from a
    /// file the channels its module.xml declares — the highest version wins, a server
    /// earlier in priority order on a tie. A lower version is never installed, and a
    /// module is never replaced by one of the same rawname from another source.
    ///
    /// A channel that fails affects only the modules it updates: a named module is refused
    /// only when none of its channels answered, and `upgradeall` (no names) upgrades what
    /// the others offer, then fails naming the channels it could not check. Likewise a
    /// package that fails to download or verify: named modules are upgraded all together
    /// or not at all, while `upgradeall` leaves that one out, upgrades the rest as one
    /// change, and then fails naming it.
    pub fn upgrade_online(&self, names: &[String], options: Options) -> Result<Vec<Change>> {
        online::upgrade_online(self, names, options)
    }
}
