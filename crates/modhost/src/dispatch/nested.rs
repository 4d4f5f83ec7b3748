//! How deep the application's own dispatches run on this thread.

use crate::Result;

thread_local! {
    /// How many dispatches the application started on this thread are running: more than
    /// one when a capability it implements dispatches again from inside a module's call.
    static NESTED: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// One running dispatch of the application's on this thread, counted in [`NESTED`] while
/// it lives: an application's capability that dispatches again from a module's call, which
/// dispatches again, is bounded as hooks modules fire are.
pub(super) struct Nested;

/// Whether a dispatch is running on this thread: a change made now would wait for it.
pub(crate) fn inside_dispatch() -> bool {
    NESTED.get() > 0
}

impl Nested {
    pub(super) fn enter(hook: &str, limit: u32) -> Result<Nested> {
        let depth = NESTED.get();
        if depth > limit {
            return Err(crate::Error::NestedTooDeep {
                hook: hook.to_owned(),
                depth,
                limit,
            });
        }
        NESTED.set(depth + 1);
        Ok(Nested)
    }
}

impl Drop for Nested {
    fn drop(&mut self) {
        NESTED.set(NESTED.get().saturating_sub(1));
    }
}
