//! `wasi:io/poll` bounded by the call's deadline.
//!
//! The epoch deadline interrupts running WebAssembly only: a guest waiting inside a host
//! call (`std::thread::sleep` blocks on a clock pollable) runs none, so it would never be
//! interrupted. Every wait of WASI 0.2 ends in `poll` or `pollable.block`, so the sandbox
//! links these in place of wasmtime-wasi's: they wait for the guest's pollables, for a
//! clock at the call's deadline and for the call's cancellation, and stop the call when
//! the deadline or the cancellation comes first.

use std::fmt;
use std::time::Instant;

use wasmtime::component::{HasData, Resource, ResourceTable};
use wasmtime_wasi::clocks::{WasiClocksCtx, WasiClocksCtxView};
use wasmtime_wasi::p2::bindings::clocks::monotonic_clock;
use wasmtime_wasi::p2::bindings::sync::io::poll;
use wasmtime_wasi::p2::{DynPollable, subscribe};

use crate::Cancel;
use crate::cancel::Cancelled;
use crate::host::Sandbox;

/// A call stopped because its deadline passed while it waited in WASI.
#[derive(Debug)]
pub(crate) struct DeadlinePassed;

impl fmt::Display for DeadlinePassed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the call's deadline passed while it waited")
    }
}

impl std::error::Error for DeadlinePassed {}

/// Links the deadline-bounded `wasi:io/poll` over wasmtime-wasi's.
pub(crate) fn add_to_linker(
    linker: &mut wasmtime::component::Linker<Sandbox>,
) -> wasmtime::Result<()> {
    linker.allow_shadowing(true);
    let added = poll::add_to_linker::<Sandbox, Bounded>(linker, |state| Waiter {
        table: &mut state.table,
        clocks: state.wasi.clocks(),
        deadline: state.deadline,
        cancel: state.cancel.clone(),
    });
    linker.allow_shadowing(false);
    added
}

/// The [`HasData`] of the bounded `wasi:io/poll`.
struct Bounded;

impl HasData for Bounded {
    type Data<'a> = Waiter<'a>;
}

/// What a bounded wait needs from the store.
struct Waiter<'a> {
    table: &'a mut ResourceTable,
    clocks: &'a mut WasiClocksCtx,
    deadline: Instant,
    cancel: Option<Cancel>,
}

impl poll::Host for Waiter<'_> {
    fn poll(&mut self, pollables: Vec<Resource<DynPollable>>) -> wasmtime::Result<Vec<u32>> {
        if pollables.is_empty() {
            // wasmtime-wasi's own refusal of an empty list.
            return poll::Host::poll(self.table, pollables);
        }
        // Beside the guest's pollables, a clock at the deadline and, for a cancellable
        // call, one ready the moment it is cancelled.
        let own = u32::try_from(pollables.len())?;
        loop {
            if self.cancel.as_ref().is_some_and(Cancel::is_cancelled) {
                return Err(Cancelled.into());
            }
            let now = Instant::now();
            if now >= self.deadline {
                return Err(DeadlinePassed.into());
            }
            let mut clocks = WasiClocksCtxView {
                ctx: self.clocks,
                table: self.table,
            };
            let timer = monotonic_clock::Host::subscribe_duration(
                &mut clocks,
                u64::try_from((self.deadline - now).as_nanos()).unwrap_or(u64::MAX),
            )?;
            let mut list: Vec<Resource<DynPollable>> = pollables
                .iter()
                .map(|p| Resource::new_borrow(p.rep()))
                .collect();
            list.push(Resource::new_borrow(timer.rep()));
            let cancelled = match &self.cancel {
                Some(cancel) => {
                    let waiting = self.table.push(cancel.pollable())?;
                    let pollable = subscribe(self.table, waiting)?;
                    list.push(Resource::new_borrow(pollable.rep()));
                    Some(pollable)
                }
                None => None,
            };
            let ready = poll::Host::poll(self.table, list);
            poll::HostPollable::drop(self.table, timer)?;
            if let Some(pollable) = cancelled {
                poll::HostPollable::drop(self.table, pollable)?;
            }
            let mut ready = ready?;
            ready.retain(|&index| index < own);
            if !ready.is_empty() {
                return Ok(ready);
            }
        }
    }
}

impl poll::HostPollable for Waiter<'_> {
    fn ready(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<bool> {
        poll::HostPollable::ready(self.table, pollable)
    }

    fn block(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::Host::poll(self, vec![pollable]).map(drop)
    }

    fn drop(&mut self, pollable: Resource<DynPollable>) -> wasmtime::Result<()> {
        poll::HostPollable::drop(self.table, pollable)
    }
}
