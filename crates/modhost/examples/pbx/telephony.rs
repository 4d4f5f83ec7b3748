//! The `pbx:telephony` capability (`examples/wit/telephony.wit`) as a Rust application
//! gives it to modules: a simulated switch whose channels modules originate, hang up and
//! look at. The PBX's own per-call value, [`OnChannel`], tells a module which call the
//! dispatch serves.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use modhost::embed::{Capability, Sandbox};
use wasmtime::component::{HasSelf, Linker};

wasmtime::component::bindgen!({
    path: "../../examples/wit",
    world: "telephony",
});

use pbx::telephony::calls::{self, State};

/// The channel of the call a dispatch serves: what the application passes with it.
#[derive(Debug, Clone)]
pub struct OnChannel(pub String);

/// The switch: its channels and their states.
#[derive(Debug, Default)]
pub struct Switch {
    channels: Mutex<BTreeMap<String, State>>,
    next: AtomicU64,
}

impl Switch {
    /// The channels and their states, as `(name, state)`.
    pub fn channels(&self) -> Vec<(String, String)> {
        self.lock()
            .iter()
            .map(|(name, state)| {
                let state = match state {
                    State::Down => "down",
                    State::Ringing => "ringing",
                    State::Up => "up",
                };
                (name.clone(), state.to_owned())
            })
            .collect()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, State>> {
        self.channels
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl Capability for Switch {
    fn package(&self) -> &str {
        "pbx:telephony"
    }

    fn interfaces(&self) -> Vec<String> {
        vec!["pbx:telephony/calls@1.0.0".to_owned()]
    }

    fn add_to_linker(&self, linker: &mut Linker<Sandbox>) -> wasmtime::Result<()> {
        calls::add_to_linker::<Sandbox, HasSelf<Sandbox>>(linker, |sandbox| sandbox)
    }
}

/// What a module's imports do: the switch is found through the sandbox, the call served
/// through the dispatch's value.
impl calls::Host for Sandbox {
    fn originate(&mut self, caller: String, callee: String) -> Result<String, String> {
        let switch = self
            .capability::<Switch>()
            .ok_or("pbx:telephony is not set up")?;
        if caller.is_empty() || callee.is_empty() || !callee.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("cannot call `{callee}` from `{caller}`"));
        }
        let id = switch.next.fetch_add(1, Ordering::Relaxed);
        let channel = format!("PJSIP/{caller}-{id:08x}");
        switch.lock().insert(channel.clone(), State::Ringing);
        Ok(channel)
    }

    fn hangup(&mut self, channel: String) -> Result<(), String> {
        let switch = self
            .capability::<Switch>()
            .ok_or("pbx:telephony is not set up")?;
        match switch.lock().get_mut(&channel) {
            Some(state) => {
                *state = State::Down;
                Ok(())
            }
            None => Err(format!("no channel `{channel}`")),
        }
    }

    fn channel_state(&mut self, channel: String) -> Result<State, String> {
        let switch = self
            .capability::<Switch>()
            .ok_or("pbx:telephony is not set up")?;
        switch
            .lock()
            .get(&channel)
            .copied()
            .ok_or_else(|| format!("no channel `{channel}`"))
    }

    fn current_channel(&mut self) -> Option<String> {
        self.context::<OnChannel>().map(|on| on.0.clone())
    }
}
