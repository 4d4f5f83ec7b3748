//! The WASI filesystem imports that grow a file or add an entry, metered against the
//! module's [`Budget`]: each is linked over wasmtime-wasi's own (which then does the
//! work), so a write past the quota fails in the guest with `EDQUOT` while the call runs.
//! File streams (how wasi-libc and Python write files) are wrapped to charge each write;
//! wasi-libc reports a refused stream write as `EIO`, the others as `EDQUOT`. Opening a
//! FIFO, a socket or a device is refused (`EPERM`): see [`is_special`].

use std::sync::Arc;

use wasmtime::StoreContextMut;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemCtxView, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::sync::filesystem::types::{
    DescriptorFlags, DescriptorType, ErrorCode, Host, HostDescriptor, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynOutputStream, FsResult, IoError, OutputStream, Pollable, StreamError};

use crate::disk::{Budget, OverQuota};
use crate::host::Sandbox;

/// The interface wasmtime-wasi links; a guest built against any 0.2 release finds it.
const FILESYSTEM_TYPES: &str = "wasi:filesystem/types@0.2.12";

type Fd = Resource<Descriptor>;
type Returned<T> = wasmtime::Result<(Result<T, ErrorCode>,)>;

/// Links the metered imports over wasmtime-wasi's, which must already be in `linker`.
pub(crate) fn add_to_linker(linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let mut types = linker.instance(FILESYSTEM_TYPES)?;
    types.func_wrap(
        "[method]descriptor.write",
        |mut store: StoreContextMut<'_, Sandbox>, (fd, buf, offset): (Fd, Vec<u8>, u64)| {
            let (mut fs, budget) = split(&mut store);
            let size = file_of(&fs, &fd).map_or(0, |f| len_of(&f));
            let end = offset.saturating_add(buf.len() as u64);
            if budget.charge(end.saturating_sub(size), 0).is_err() {
                return over_quota();
            }
            let result = HostDescriptor::write(&mut fs, fd, buf, offset);
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.set-size",
        |mut store: StoreContextMut<'_, Sandbox>, (fd, size): (Fd, u64)| {
            let (mut fs, budget) = split(&mut store);
            let now = file_of(&fs, &fd).map_or(0, |f| len_of(&f));
            if budget.charge(size.saturating_sub(now), 0).is_err() {
                return over_quota();
            }
            let result = HostDescriptor::set_size(&mut fs, fd, size);
            if size < now {
                budget.may_have_shrunk();
            }
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        |mut store: StoreContextMut<'_, Sandbox>, (fd, offset): (Fd, u64)| {
            let (mut fs, budget) = split(&mut store);
            let file = file_of(&fs, &fd);
            let result = HostDescriptor::write_via_stream(&mut fs, fd, offset);
            let result = meter(&mut fs, &budget, file, Some(offset), result);
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        |mut store: StoreContextMut<'_, Sandbox>, (fd,): (Fd,)| {
            let (mut fs, budget) = split(&mut store);
            let file = file_of(&fs, &fd);
            let result = HostDescriptor::append_via_stream(&mut fs, fd);
            let result = meter(&mut fs, &budget, file, None, result);
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.open-at",
        |mut store: StoreContextMut<'_, Sandbox>,
         (fd, path_flags, path, oflags, flags): (
            Fd,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            let (mut fs, budget) = split(&mut store);
            // Looked up as the open will resolve it: through a link it follows, the file
            // made is the link's target, a new entry when the link dangles.
            let at = Resource::new_borrow(fd.rep());
            let found = HostDescriptor::stat_at(&mut fs, at, path_flags, path.clone());
            if let Ok(stat) = &found
                && is_special(stat.type_)
            {
                return Ok((Err(ErrorCode::NotPermitted),));
            }
            if oflags.contains(OpenFlags::CREATE) && found.is_err() && budget.charge(0, 1).is_err()
            {
                return over_quota();
            }
            let result = HostDescriptor::open_at(&mut fs, fd, path_flags, path, oflags, flags);
            if oflags.contains(OpenFlags::TRUNCATE) {
                budget.may_have_shrunk();
            }
            // Every file opened, for reading too: removed while open, it keeps its bytes.
            // A guest gets a file's descriptor from here alone, so none is missed.
            if let Some(file) = result.as_ref().ok().and_then(|opened| file_of(&fs, opened)) {
                budget.holds(&file);
            }
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.create-directory-at",
        |mut store: StoreContextMut<'_, Sandbox>, (fd, path): (Fd, String)| {
            let (mut fs, budget) = split(&mut store);
            if budget.charge(0, 1).is_err() {
                return over_quota();
            }
            let at = fd.rep();
            let result = HostDescriptor::create_directory_at(&mut fs, fd, path.clone());
            if result.is_ok() && too_deep(&mut fs, &budget, at, &path) {
                let _ =
                    HostDescriptor::remove_directory_at(&mut fs, Resource::new_borrow(at), path);
                budget.may_have_shrunk();
                return over_quota();
            }
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.symlink-at",
        |mut store: StoreContextMut<'_, Sandbox>, (fd, old, new): (Fd, String, String)| {
            let (mut fs, budget) = split(&mut store);
            if budget.charge(0, 1).is_err() {
                return over_quota();
            }
            let result = HostDescriptor::symlink_at(&mut fs, fd, old, new);
            returned(&mut fs, &budget, result)
        },
    )?;
    // A hard link adds a name, not bytes: the quota would count the file's bytes once
    // while an upgrade's or a backup's copy of the directory writes them once per name.
    // Modules get none.
    types.func_wrap(
        "[method]descriptor.link-at",
        |_: StoreContextMut<'_, Sandbox>, _: (Fd, PathFlags, String, Fd, String)| -> Returned<()> {
            Ok((Err(ErrorCode::NotPermitted),))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.unlink-file-at",
        |mut store: StoreContextMut<'_, Sandbox>, (fd, path): (Fd, String)| {
            let (mut fs, budget) = split(&mut store);
            let result = HostDescriptor::unlink_file_at(&mut fs, fd, path);
            budget.may_have_shrunk();
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.remove-directory-at",
        |mut store: StoreContextMut<'_, Sandbox>, (fd, path): (Fd, String)| {
            let (mut fs, budget) = split(&mut store);
            let result = HostDescriptor::remove_directory_at(&mut fs, fd, path);
            budget.may_have_shrunk();
            returned(&mut fs, &budget, result)
        },
    )?;
    types.func_wrap(
        "[method]descriptor.rename-at",
        |mut store: StoreContextMut<'_, Sandbox>,
         (fd, old, new_fd, new): (Fd, String, Fd, String)| {
            let (mut fs, budget) = split(&mut store);
            // Past its quota (what a module sharing its directories wrote counts too), a
            // module renames nothing: a rename is how two modules sharing a directory
            // would move what one wrote where only the other counts it. Refused before it
            // is done, so that nothing it would replace is lost.
            if budget.within_quota().is_err() {
                return over_quota();
            }
            let (from, to) = (fd.rep(), new_fd.rep());
            let result = HostDescriptor::rename_at(&mut fs, fd, old.clone(), new_fd, new.clone());
            // A rename over an existing file frees what that file held.
            budget.may_have_shrunk();
            if result.is_ok() && too_deep(&mut fs, &budget, to, &new) {
                let back = (Resource::new_borrow(to), Resource::new_borrow(from));
                let _ = HostDescriptor::rename_at(&mut fs, back.0, new, back.1, old);
                return over_quota();
            }
            returned(&mut fs, &budget, result)
        },
    )?;
    // A metered stream's refusal is ours, which wasmtime-wasi would call an I/O error.
    // (wasi-libc does not ask, and reports every failed stream write as `EIO`.)
    types.func_wrap(
        "filesystem-error-code",
        |mut store: StoreContextMut<'_, Sandbox>, (error,): (Resource<IoError>,)| {
            let state = store.data_mut();
            if state
                .table
                .get(&error)?
                .downcast_ref::<OverQuota>()
                .is_some()
            {
                return Ok((Some(ErrorCode::Quota),));
            }
            Ok((Host::filesystem_error_code(&mut state.filesystem(), error)?,))
        },
    )?;
    linker.allow_shadowing(false);
    Ok(())
}

/// Whether a file of type `kind` is one a module never opens: anything but a file, a
/// directory or a link (which the open then follows or refuses as it was asked to) —
/// a FIFO, a socket or a device, which wasmtime-wasi tells apart only as far as devices
/// go. Opening a FIFO blocks the host's thread until a writer comes, where no deadline
/// can stop it (nor free the call's turn at the state database); a device reads without
/// end. None can be made inside the sandbox: one is in a granted directory, put there
/// from outside.
fn is_special(kind: DescriptorType) -> bool {
    !matches!(
        kind,
        DescriptorType::RegularFile | DescriptorType::Directory | DescriptorType::SymbolicLink
    )
}

/// The store's filesystem view and its budget, borrowed together.
fn split<'a>(
    store: &'a mut StoreContextMut<'_, Sandbox>,
) -> (WasiFilesystemCtxView<'a>, Arc<Budget>) {
    let state = store.data_mut();
    let budget = Arc::clone(&state.budget);
    (state.filesystem(), budget)
}

/// Whether `path`, relative to the directory whose descriptor is `at`, is a directory
/// nested too deep, or holding one (see [`crate::nesting`]). Looked at through cap-std,
/// which resolves the path inside the directory as WASI does, and not through the
/// guest's resource table: a guest holding all the handles it may would leave no room
/// there to look, and so nothing refused.
fn too_deep(fs: &mut WasiFilesystemCtxView<'_>, budget: &Budget, at: u32, path: &str) -> bool {
    let base = match fs.table.get(&Resource::<Descriptor>::new_borrow(at)) {
        Ok(Descriptor::Dir(dir)) => dir.dir.try_clone(),
        _ => return false,
    };
    // A descriptor it cannot copy, it cannot look through: refused rather than let be.
    let Ok(base) = base else {
        return true;
    };
    match cap_std::fs::Dir::from_std_file(base).open_dir(path) {
        Ok(dir) => budget.roots().too_deep(std::os::fd::AsFd::as_fd(&dir)),
        // Not a directory (a file, a link to one): it nests nothing.
        Err(_) => false,
    }
}

/// The open file behind `fd`, if it is one.
fn file_of(fs: &WasiFilesystemCtxView<'_>, fd: &Fd) -> Option<Arc<std::fs::File>> {
    match fs.table.get(fd) {
        Ok(Descriptor::File(file)) => Some(Arc::clone(&file.file)),
        _ => None,
    }
}

/// The current length of `file`.
fn len_of(file: &std::fs::File) -> u64 {
    file.metadata().map_or(0, |m| m.len())
}

/// The guest's `EDQUOT`.
fn over_quota<T>() -> Returned<T> {
    Ok((Err(ErrorCode::Quota),))
}

/// Hands wasmtime-wasi's result to the guest; after a failure, what it did is unknown,
/// so the budget's count may be high, and is taken again before a write is refused.
fn returned<T>(
    fs: &mut WasiFilesystemCtxView<'_>,
    budget: &Budget,
    result: FsResult<T>,
) -> Returned<T> {
    match result {
        Ok(value) => Ok((Ok(value),)),
        Err(e) => {
            budget.may_have_shrunk();
            let code = Host::convert_error_code(fs, e)?;
            if code == ErrorCode::InsufficientSpace {
                budget.disk_full();
            }
            Ok((Err(code),))
        }
    }
}

/// `result`, a stream's, noted on `budget` when its failure is a full disk.
fn noted<T>(budget: &Budget, result: Result<T, StreamError>) -> Result<T, StreamError> {
    if let Err(StreamError::LastOperationFailed(e)) = &result
        && e.chain().any(|cause| {
            cause.downcast_ref::<std::io::Error>().is_some_and(|io| {
                matches!(
                    io.kind(),
                    std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
                )
            })
        })
    {
        budget.disk_full();
    }
    result
}

/// Puts the stream wasmtime-wasi opened on `file` behind a meter: starting at `offset`,
/// or at the end for an append stream.
fn meter(
    fs: &mut WasiFilesystemCtxView<'_>,
    budget: &Arc<Budget>,
    file: Option<Arc<std::fs::File>>,
    offset: Option<u64>,
    opened: FsResult<Resource<DynOutputStream>>,
) -> FsResult<Resource<DynOutputStream>> {
    let (opened, file) = match (opened, file) {
        (Ok(opened), Some(file)) => (opened, file),
        (other, _) => return other,
    };
    let inner = fs.table.delete(opened)?;
    let metered: DynOutputStream = Box::new(Metered {
        inner,
        file,
        at: offset,
        end: 0,
        counted: budget.counts(),
        budget: Arc::clone(budget),
    });
    Ok(fs.table.push(metered)?)
}

/// A file's output stream that charges each write's growth before passing it on.
struct Metered {
    inner: DynOutputStream,
    file: Arc<std::fs::File>,
    /// Where the next write lands; `None` for an append stream.
    at: Option<u64>,
    /// The furthest this stream has written: a write may still be pending, so the file's
    /// length on disk can lag behind it.
    end: u64,
    /// The budget's [`Budget::counts`] when `end` was last good: once something may have
    /// shrunk (a truncation through another descriptor, say), the file's length is the
    /// truth and `end` is forgotten, or writes past a truncated end would be taken for
    /// rewrites and charged nothing.
    counted: u64,
    budget: Arc<Budget>,
}

#[wasmtime_wasi::async_trait]
impl OutputStream for Metered {
    fn write(&mut self, bytes: bytes::Bytes) -> Result<(), StreamError> {
        let counted = self.budget.counts();
        if counted != self.counted {
            (self.end, self.counted) = (0, counted);
        }
        let size = len_of(&self.file).max(self.end);
        let start = self.at.unwrap_or(size);
        let end = start.saturating_add(bytes.len() as u64);
        if self.budget.charge(end.saturating_sub(size), 0).is_err() {
            return Err(StreamError::LastOperationFailed(OverQuota.into()));
        }
        // Charged already: a write that fails leaves the count high until it is taken
        // again.
        if let Err(e) = noted(&self.budget, self.inner.write(bytes)) {
            self.budget.may_have_shrunk();
            return Err(e);
        }
        if let Some(at) = &mut self.at {
            *at = end;
        }
        self.end = self.end.max(end);
        Ok(())
    }

    fn flush(&mut self) -> Result<(), StreamError> {
        noted(&self.budget, self.inner.flush())
    }

    fn check_write(&mut self) -> Result<usize, StreamError> {
        noted(&self.budget, self.inner.check_write())
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for Metered {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}
