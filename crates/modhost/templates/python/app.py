"""The `{name}` modhost module."""

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
        greeting = kv.get("greeting") or "Hello"
        db.execute("INSERT INTO {name}_greetings (who) VALUES (?1)", payload)
        log.info("greeted", who=payload)
        return f"{greeting}, {payload}!"


Lifecycle, Hooks = {type_name}.exports()
