//! For tests: the smallest core WebAssembly module, one function `() -> ()` whose body is
//! given, instantiated and ready to call. No name section: its frames are nameless.

use wasmtime::{Engine, Instance, Module, Store, TypedFunc};

/// `(module (func (export "f") BODY))` in `engine`: its store and the function.
pub(crate) fn function(engine: &Engine, body: &[u8]) -> (Store<()>, TypedFunc<(), ()>) {
    let size = |n: usize| u8::try_from(n).unwrap_or_else(|_| panic!("a body of {n} bytes"));
    let mut wasm = vec![
        0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00, // magic, version
        0x01, 0x04, 0x01, 0x60, 0x00, 0x00, // type 0: () -> ()
        0x03, 0x02, 0x01, 0x00, // func 0 has type 0
        0x07, 0x05, 0x01, 0x01, b'f', 0x00, 0x00, // export "f"
    ];
    // The code section: one body, no locals.
    wasm.extend([0x0a, size(body.len() + 3), 0x01, size(body.len() + 1), 0x00]);
    wasm.extend_from_slice(body);
    let module = Module::new(engine, &wasm).unwrap_or_else(|e| panic!("{e}"));
    let mut store = Store::new(engine, ());
    let instance = Instance::new(&mut store, &module, &[]).unwrap_or_else(|e| panic!("{e}"));
    let function = instance
        .get_typed_func::<(), ()>(&mut store, "f")
        .unwrap_or_else(|e| panic!("{e}"));
    (store, function)
}
