//! Capabilities a C application gives modules: a WIT package whose interfaces' functions
//! are one C callback each, taking and returning JSON.
//!
//! Each function is linked with wasmtime's dynamic API (`LinkerInstance::func_new`),
//! which hands the host function its type as the importing component declares it, with
//! every call. So the application names only the functions it implements: the argument
//! names and types are read from the call itself, and the callback's JSON answer is
//! converted to the result type the component expects — no WIT file to pass, and no
//! parsing of one on the host. A component whose import does not match fails to
//! instantiate (wasmtime checks each import's kind; the types are whatever the component
//! says, and a JSON answer that does not fit them is an error the call reports).

use std::ffi::{CString, c_char, c_int, c_void};
use std::sync::Arc;

use modhost::embed::{CapabilityError, Sandbox};
use serde_json::{Map, Value};
use wasmtime::component::types::ComponentFunc;
use wasmtime::component::{Linker, Type, Val};

use crate::ffi::{Failure, guard, put_raw, quietly, str_arg, str_array};
use crate::json;
use crate::malloced::{Unreadable, take_malloced};
use crate::serving::Serving;
use crate::{MODHOST_MAX_ANSWER_BYTES, MODHOST_MAX_ERROR_BYTES};
use modhost::shortened;

/// A capability function's implementation, called on the thread that runs the dispatch
/// (so possibly on several threads at once).
///
/// - `user_data`: what was given to `modhost_capability_add`.
/// - `function`: the WIT function's name, e.g. `"originate"`.
/// - `args_json`: the arguments, a JSON object keyed by the WIT parameter names, e.g.
///   `{"caller":"101","callee":"2025550101"}`.
/// - `context`: the context string passed to `modhost_dispatch` for the dispatch this
///   call belongs to (hooks fired from inside it included), or NULL if none was.
/// - `result_json`: `*result_json` is NULL on entry; the callback may set it to a string
///   it allocated with `malloc` (`strdup`, or `modhost_string_new` where the
///   application's strings come from another allocator: PHP's `FFI::new`), which modhost
///   frees with `free`. One longer than `MODHOST_MAX_ANSWER_BYTES` fails the call.
///
/// All strings given are NUL-terminated and valid only until the callback returns.
///
/// It runs on the dispatching thread, on that thread's stack unless less than 3 MiB of it
/// was left: then on the stack segment the module's call runs on (see `modhost_host`),
/// which a runtime that checks its stack's bounds (PHP 8.3's `zend.max_allowed_stack_size`,
/// a conservative garbage collector) does not know: dispatch from a thread with room.
///
/// Return 0 with `*result_json` set to the function's result as JSON (NULL stands for
/// `null`: nothing, for a function without a result, which answers nothing else; `none`,
/// for an option), or non-zero with `*result_json` set to a message (or NULL) of at
/// most `MODHOST_MAX_ERROR_BYTES`: for a function returning `result<T, string>`, the
/// module then gets `err(message)`; for any other, its call fails with the message, as
/// the application's failure (kind `host`), and so does one whose answer is not JSON of
/// the function's result type, or whose message is longer.
///
/// WIT values as JSON: bool, numbers and strings as themselves (a char as a
/// one-character string); lists and tuples as arrays; records as objects keyed by field
/// name; enums as the case name; flags as an array of the names set; `option<T>` as
/// `null` or the value (`{"some": v}` when `T` is itself an option); `result<T, E>` as
/// `{"ok": v}` or `{"err": v}`, `v` null for a missing type; variants as
/// `{"case-name": v}`. Resources, maps, streams and futures cannot cross. An answer is
/// read strictly: a record field the type does not have, a payload for a case that
/// carries none, or a number a float32 cannot hold is refused, naming where it stands (of
/// an object key given twice, the last is read, as JSON parsers commonly do).
/// The arguments a callback is given take at most `MODHOST_MAX_ANSWER_BYTES` as JSON: a
/// call passing more fails before the callback is called.
///
/// A callback must return in good time: a dispatch's deadline and cancellation stop the
/// module's code, not the application's. One that waits (for a channel to answer, say)
/// polls `modhost_call_stopped` (or bounds its wait by `modhost_call_ms_left`) and
/// returns an error once the call it serves is to stop: the call then ends as cancelled
/// or timed out, whatever the callback answered. A call already stopped never calls a
/// callback. It must return: a C++ exception or a
/// `longjmp` (a PHP exception or fatal error thrown through an FFI callback) must not
/// leave it, or the process aborts or is left in an undefined state — catch them inside.
/// What cannot be caught (PHP's fatal errors: `memory_limit`, `max_execution_time`) leaves
/// modhost's work on that thread unfinished for good (its dispatch, a change's lock): the
/// process must not use modhost again, and ends (a php-fpm worker exits; see the PHP
/// example).
/// It may dispatch and read the host; a change to the modules from inside it is refused
/// (`MODHOST_ERROR_REFUSED`), since the change would wait for the dispatch it is in.
pub type Callback = Option<
    unsafe extern "C" fn(
        user_data: *mut c_void,
        function: *const c_char,
        args_json: *const c_char,
        context: *const c_char,
        result_json: *mut *mut c_char,
    ) -> c_int,
>;

/// A capability being described: a WIT package and the interfaces of it the application
/// implements. Made by `modhost_capability_new`, given to `modhost_open`, freed by
/// `modhost_capability_free`.
pub struct Capability {
    package: String,
    needs_grant: bool,
    interfaces: Vec<Arc<Interface>>,
}

/// One interface of a capability and the callback serving its functions.
struct Interface {
    /// `namespace:package/interface@version`.
    name: String,
    functions: Vec<CString>,
    /// Never NULL: `modhost_capability_add` refuses that.
    callback: Callback,
    user_data: UserData,
}

/// The application's pointer, handed back to its callback untouched.
#[derive(Clone, Copy)]
struct UserData(*mut c_void);

// SAFETY: modhost never dereferences it; the application, which documents in modhost.h
// that its callback may run on several threads at once, answers for what it points to.
unsafe impl Send for UserData {}
// SAFETY: as above.
unsafe impl Sync for UserData {}

/// The namespaces of the WIT packages the host links itself, and whose they are.
const HOST_OWN: [(&str, &str); 2] = [("modhost", "modhost's own"), ("wasi", "WASI's")];

/// The longest WIT identifier taken: a name an application gives is a few words.
const MAX_WIT_ID: usize = 128;

/// Whether `text` is a WIT identifier: kebab-case words, each starting with a letter and
/// all lower-case or all upper-case (`channel-state`, `get-HTTP`).
fn is_wit_id(text: &str) -> bool {
    (1..=MAX_WIT_ID).contains(&text.len())
        && text.split('-').all(|word| {
            let mut bytes = word.bytes();
            let lower = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit();
            let upper = |b: u8| b.is_ascii_uppercase() || b.is_ascii_digit();
            match bytes.next() {
                Some(b) if b.is_ascii_lowercase() => bytes.all(lower),
                Some(b) if b.is_ascii_uppercase() => bytes.all(upper),
                _ => false,
            }
        })
}

/// The value `modhost_dispatch` passes to capabilities: its context string.
pub(crate) struct Context(pub(crate) CString);

/// Starts describing capability `package` (`namespace:name`, each lower-case words joined
/// by `-` as module.xml's `<capabilities>` names packages, e.g. `"pbx:telephony"`; not in
/// the `modhost` or `wasi` namespace, in any case, which are the host's): add
/// its interfaces with `modhost_capability_add`, then give it to `modhost_open`.
/// When `needs_grant` is true, a module may import it only once an administrator granted
/// it (`MODHOST_GRANT` at install), as the module's `<capabilities><import
/// package="…"/>` asks. When false, it is linked for every module that imports it, as
/// modhost's own imports are, whether or not its module.xml names it (`modhost_info`
/// lists a module's imports either way).
///
/// On success, `*capability` is a new capability the caller frees with
/// `modhost_capability_free` (after `modhost_open`, which keeps what it needs).
///
/// # Safety
///
/// `package` is a NUL-terminated string; `capability` is valid for one pointer write;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_capability_new(
    package: *const c_char,
    needs_grant: bool,
    capability: *mut *mut Capability,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            put_raw(capability, std::ptr::null_mut());
            if capability.is_null() {
                return Err(Failure::argument("`capability` is NULL"));
            }
            let package = str_arg(package, "package")?;
            let (namespace, name) = package.split_once(':').unwrap_or_default();
            if !is_wit_id(namespace) || !is_wit_id(name) {
                return Err(Failure::argument(format!(
                    "`{}` is not a WIT package name (namespace:name, each a kebab-case \
                     identifier such as `pbx:telephony`)",
                    shortened(package)
                )));
            }
            if let Some(owner) = HOST_OWN
                .iter()
                .find(|(ns, _)| ns.eq_ignore_ascii_case(namespace))
            {
                return Err(Failure::argument(format!(
                    "`{package}` is in the `{namespace}` namespace, {}: a capability names a \
                     package of the application's own",
                    owner.1
                )));
            }
            // As module.xml's <capabilities> names packages: one with a capital letter
            // could never be asked for, nor granted.
            if package.bytes().any(|b| b.is_ascii_uppercase()) {
                return Err(Failure::argument(format!(
                    "`{package}` is not a package modules can ask for: module.xml's \
                     <capabilities> names packages in lower-case words joined by `-` \
                     (`pbx:telephony`)"
                )));
            }
            let described = Capability {
                package: package.to_owned(),
                needs_grant,
                interfaces: Vec::new(),
            };
            put_raw(capability, Box::into_raw(Box::new(described)));
            Ok(())
        })
    }
}

/// Adds interface `interface` (`namespace:name/interface@version`, of the capability's
/// package, e.g. `"pbx:telephony/calls@1.0.0"`) to `capability`: each of its
/// `n_functions` WIT functions named in `functions` (e.g. `"originate"`, `"channel-state"`)
/// is served by `callback`, which gets `user_data` back. A module whose component imports
/// a function of the interface not named here is refused at install, before it is
/// compiled, naming the function. Names must be WIT
/// identifiers (kebab-case), the version semver, each function named once and each
/// interface added in one version only; otherwise `MODHOST_ERROR_ARGUMENT`.
///
/// modhost copies the strings. `user_data` must stay valid, and `callback` callable,
/// until every host opened with this capability is closed.
///
/// # Safety
///
/// `capability` is a live capability not in use by another thread; `interface` is a
/// NUL-terminated string; `functions` points to `n_functions` NUL-terminated strings;
/// `error` is NULL or valid for one pointer write.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_capability_add(
    capability: *mut Capability,
    interface: *const c_char,
    functions: *const *const c_char,
    n_functions: usize,
    callback: Callback,
    user_data: *mut c_void,
    error: *mut *mut c_char,
) -> c_int {
    // SAFETY: the caller's contract.
    unsafe {
        guard(error, || {
            let capability = capability
                .as_mut()
                .ok_or_else(|| Failure::argument("`capability` is NULL"))?;
            let name = str_arg(interface, "interface")?;
            if callback.is_none() {
                return Err(Failure::argument("`callback` is NULL"));
            }
            interface_named(&capability.package, name)?;
            // One version of an interface: the linker takes two of one major for the same.
            let unversioned = |name: &str| name.split('@').next().unwrap_or_default().to_owned();
            if let Some(added) = capability
                .interfaces
                .iter()
                .find(|i| unversioned(&i.name) == unversioned(name))
            {
                return Err(Failure::argument(if added.name == name {
                    format!("`{name}` is added already")
                } else {
                    format!(
                        "`{name}`: `{}` is added already, and a capability gives one version \
                         of an interface",
                        added.name
                    )
                }));
            }
            let names = str_array(functions, n_functions, "functions")?;
            if names.is_empty() {
                return Err(Failure::argument(format!("`{name}` names no functions")));
            }
            for (at, function) in names.iter().enumerate() {
                if !is_wit_id(function) {
                    return Err(Failure::argument(format!(
                        "`{}` is not a WIT function name (a kebab-case identifier \
                         such as `channel-state`)",
                        shortened(function)
                    )));
                }
                if names[..at].contains(function) {
                    return Err(Failure::argument(format!(
                        "`{name}` names function `{function}` twice"
                    )));
                }
            }
            let functions = names
                .into_iter()
                .map(|f| {
                    CString::new(f).map_err(|_| Failure::argument("a function name holds NUL"))
                })
                .collect::<Result<Vec<_>, _>>()?;
            capability.interfaces.push(Arc::new(Interface {
                name: name.to_owned(),
                functions,
                callback,
                user_data: UserData(user_data),
            }));
            Ok(())
        })
    }
}

/// Frees `capability`. A host opened with it keeps what it needs. NULL is ignored.
///
/// # Safety
///
/// `capability` is NULL or a capability from `modhost_capability_new`, not freed before.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn modhost_capability_free(capability: *mut Capability) {
    if !capability.is_null() {
        // SAFETY: made by `Box::into_raw` in `modhost_capability_new`, freed once.
        quietly((), || drop(unsafe { Box::from_raw(capability) }));
    }
}

impl Capability {
    /// The WIT package it gives.
    pub(crate) fn package(&self) -> &str {
        &self.package
    }

    /// Whether no interface was added to it: nothing a module could import.
    pub(crate) fn is_empty(&self) -> bool {
        self.interfaces.is_empty()
    }

    /// What the host links: the description as it is now.
    pub(crate) fn linked(&self) -> Arc<dyn modhost::embed::Capability> {
        Arc::new(Linked {
            package: self.package.clone(),
            needs_grant: self.needs_grant,
            interfaces: self.interfaces.clone(),
        })
    }
}

/// A capability as a host links it.
struct Linked {
    package: String,
    needs_grant: bool,
    interfaces: Vec<Arc<Interface>>,
}

impl modhost::embed::Capability for Linked {
    fn package(&self) -> &str {
        &self.package
    }

    fn interfaces(&self) -> Vec<String> {
        self.interfaces.iter().map(|i| i.name.clone()).collect()
    }

    fn functions(&self, interface: &str) -> Option<Vec<String>> {
        let interface = self.interfaces.iter().find(|i| i.name == interface)?;
        Some(
            interface
                .functions
                .iter()
                .map(|f| f.to_string_lossy().into_owned())
                .collect(),
        )
    }

    fn needs_grant(&self) -> bool {
        self.needs_grant
    }

    fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
        for interface in &self.interfaces {
            let mut instance = linker.instance(&interface.name)?;
            for (index, function) in interface.functions.iter().enumerate() {
                let interface = Arc::clone(interface);
                let name = function.to_string_lossy().into_owned();
                instance.func_new(&name, move |store, ty, params, results| {
                    interface.call(index, store.data(), &ty, params, results)
                })?;
            }
        }
        Ok(())
    }
}

impl Interface {
    /// Calls function `index` through the callback: the arguments as JSON in, the answer
    /// converted to the function's result type.
    fn call(
        &self,
        index: usize,
        sandbox: &Sandbox,
        ty: &ComponentFunc,
        params: &[Val],
        results: &mut [Val],
    ) -> wasmtime::Result<()> {
        let function = self
            .functions
            .get(index)
            .ok_or_else(|| wasmtime::format_err!("no function {index}"))?;
        let named = || format!("`{}#{}`", self.name, function.to_string_lossy());
        // The application's failures (its answer, its error) are the host's, not the
        // module's.
        let failed = |message: String| wasmtime::Error::from(CapabilityError(message));
        let args = ty
            .params()
            .zip(params)
            .map(|((name, _), value)| Ok((name.to_owned(), json::to_json(value)?)))
            .collect::<Result<Map<_, _>, json::Mismatch>>()
            .map_err(|e| wasmtime::format_err!("{}: an argument: {e}", named()))?;
        // Escaped, a string may take six times its bytes: the text is bounded as an answer
        // is, so that a module cannot make the host write and hand over hundreds of
        // megabytes. (The values themselves, lifted from the guest, are bounded by its
        // memory cap.)
        let mut text = Bounded(Vec::new());
        if serde_json::to_writer(&mut text, &Value::Object(args)).is_err() {
            return Err(wasmtime::format_err!(
                "{}: the arguments take more than {MODHOST_MAX_ANSWER_BYTES} bytes as JSON, \
                 more than a callback is given",
                named()
            ));
        }
        let args = CString::new(text.0)?;
        let context = sandbox
            .context::<Context>()
            .map_or(std::ptr::null(), |c| c.0.as_ptr());
        let callback = self
            .callback
            .ok_or_else(|| wasmtime::format_err!("{}: no callback", named()))?;
        let mut answer: *mut c_char = std::ptr::null_mut();
        // Checked again here, not only as the call came in: making a large argument's
        // JSON may have taken the call past its deadline or a hang-up, and a call stopped
        // never reaches the application.
        sandbox.stopped()?;
        let serving = Serving::enter(sandbox);
        // SAFETY: the application's callback, called as modhost.h documents it: every
        // string lives until it returns, and `answer` is a writable NULL.
        let status = unsafe {
            callback(
                self.user_data.0,
                function.as_ptr(),
                args.as_ptr(),
                context,
                &mut answer,
            )
        };
        drop(serving);
        // SAFETY: NULL, or a string the callback allocated with `malloc`.
        let answer = unsafe { take_malloced(answer) }.or_else(|unreadable| match unreadable {
            // A failure's message in another encoding than UTF-8 (Latin-1 caller names
            // are common in a PBX) still reaches the module as its error, what is not
            // UTF-8 replaced: lost, the module could not handle the failure.
            Unreadable::NotText(_, lossy) if status != 0 => Ok(Some(lossy)),
            Unreadable::NotText(bytes, _) => Err(failed(format!(
                "{} answered with {bytes} bytes that are not UTF-8 text",
                named()
            ))),
            Unreadable::TooLong(bytes) => Err(failed(format!(
                "{} answered with {bytes} bytes, more than the {MODHOST_MAX_ANSWER_BYTES} \
                 an answer may hold",
                named()
            ))),
        })?;
        // Cut short by the caller's hang-up or the deadline (a callback that polls
        // `modhost_call_stopped` returns then): the call ends as cancelled or timed out,
        // whatever the callback answered.
        sandbox.stopped()?;
        // A failure's message is a sentence for the module to handle or pass on: one of
        // megabytes is the application's mistake, not the module's to be blamed for.
        if let Some(message) = answer
            .as_ref()
            .filter(|m| status != 0 && m.len() > MODHOST_MAX_ERROR_BYTES)
        {
            return Err(failed(format!(
                "{} failed with a message of {} bytes, more than the \
                 {MODHOST_MAX_ERROR_BYTES} a failure's message may hold: `{}`",
                named(),
                message.len(),
                shortened(message)
            )));
        }
        // What a failure the callback answered says: its message, else its code.
        let failure = |answer: Option<String>| match answer.filter(|a| !a.trim().is_empty()) {
            Some(message) => format!("{} failed: {}", named(), shortened(&message)),
            None => format!("{} failed with code {status}, saying nothing more", named()),
        };
        let result_type = ty.results().next();
        let (Some(result_type), Some(slot)) = (result_type, results.first_mut()) else {
            return match (status, answer) {
                // A function with no result answers nothing, or JSON's null: anything else
                // is a mistake of the callback's, refused as a wrong answer is.
                (0, None) => Ok(()),
                (0, Some(text)) if text.trim() == "null" => Ok(()),
                (0, Some(text)) => Err(failed(format!(
                    "{} has no result, and answered `{}`",
                    named(),
                    shortened(&text)
                ))),
                (_, answer) => Err(failed(failure(answer))),
            };
        };
        *slot = if status == 0 {
            // No answer is JSON's null: `none` for an option, which C returns most simply.
            let json: Value = match answer {
                Some(text) => serde_json::from_str(&text).map_err(|e| {
                    failed(format!(
                        "{} returned `{}`, which is not JSON: {e}",
                        named(),
                        shortened(&text)
                    ))
                })?,
                None => Value::Null,
            };
            json::from_json(&json, &result_type)
                .map_err(|e| failed(format!("{} returned {e}", named())))?
        } else {
            match &result_type {
                Type::Result(result) if matches!(result.err(), Some(Type::String)) => {
                    // A blank message says as little as none.
                    let message = answer
                        .filter(|a| !a.trim().is_empty())
                        .unwrap_or_else(|| failure(None));
                    Val::Result(Err(Some(Box::new(Val::String(message)))))
                }
                _ => return Err(failed(failure(answer))),
            }
        };
        Ok(())
    }
}

/// A writer that takes at most [`MODHOST_MAX_ANSWER_BYTES`] bytes, and fails past them.
struct Bounded(Vec<u8>);

impl std::io::Write for Bounded {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if self.0.len() + bytes.len() > MODHOST_MAX_ANSWER_BYTES {
            return Err(std::io::Error::other("too long"));
        }
        self.0.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Refuses `name` unless it is `package/interface@version`, with a WIT identifier and a
/// semver version, saying which part is wrong.
fn interface_named(package: &str, name: &str) -> Result<(), Failure> {
    let example = format!("`{package}/calls@1.0.0`");
    let Some(rest) = name
        .strip_prefix(package)
        .and_then(|rest| rest.strip_prefix('/'))
    else {
        return Err(Failure::argument(format!(
            "`{}` is not an interface of `{package}`: an interface is named \
             {package}/interface@version, as {example}",
            shortened(name)
        )));
    };
    let Some((interface, version)) = rest.split_once('@') else {
        return Err(Failure::argument(format!(
            "`{}` has no version: an interface is named with its package's version, as \
             {example}",
            shortened(name)
        )));
    };
    if interface.is_empty() {
        return Err(Failure::argument(format!(
            "`{}` names no interface: an interface is named as {example}",
            shortened(name)
        )));
    }
    if !is_wit_id(interface) {
        return Err(Failure::argument(format!(
            "`{}`: `{}` is not a WIT interface name (a kebab-case identifier, as {example})",
            shortened(name),
            shortened(interface)
        )));
    }
    if semver::Version::parse(version).is_err() {
        return Err(Failure::argument(format!(
            "`{}`: `{}` is not a semver version (major.minor.patch, as {example})",
            shortened(name),
            shortened(version)
        )));
    }
    Ok(())
}
