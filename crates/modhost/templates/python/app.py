"""The `{name}` modhost module."""

# componentize-py bundles only the modules imported when the component is built: import
# what the handlers need here, at the top (`import decimal`), not inside a function, or
# the call fails with ModuleNotFoundError. Code at the top level runs then, at build
# time: it may not call the host (kv, db, log), which only methods below may.
from modhost_sdk import Module, db, handler, kv, log


class {type_name}(Module):
    def install(self) -> None:
        kv.set("greeting", "Hello")
        log.info("{name} installed")

    @handler("{name}_get_config")
    def get_config(self, hook: str, payload: str) -> str:
        # `get_config` is a pipeline: add this module's part to what came before.
        return f"{payload}; {name}\n"

    @handler("{name}_hello")
    def hello(self, hook: str, payload: str) -> str:
        # A handler returns a str (json.dumps structured data). An exception fails the
        # call with its traceback; what the host refuses (SQL that fails, say) raises
        # modhost_sdk.HostError.
        greeting = kv.get("greeting") or "Hello"
        db.execute("INSERT INTO {name}_greetings (who) VALUES (?1)", payload)
        log.info("greeted", who=payload)
        return f"{greeting}, {payload}!"


Lifecycle, Hooks = {type_name}.exports()
