//! Test guest: exports a lifecycle from a `modhost:module` version the host does not
//! support, so installing it must be refused with both versions named.

// The bindings wit-bindgen generates here (rather than in the SDK) export with
// `#[export_name]`, which the workspace lint counts as unsafe code.
#![allow(unsafe_code)]
// Generated bindings are not part of any API anyone reads.
#![allow(missing_docs)]

wit_bindgen::generate!({
    inline: "
        package modhost:module@0.9.0;

        interface lifecycle {
            install: func() -> result<_, string>;
        }

        world module {
            export lifecycle;
        }
    ",
    world: "module",
});

struct Future;

impl exports::modhost::module::lifecycle::Guest for Future {
    fn install() -> Result<(), String> {
        Ok(())
    }
}

export!(Future);
