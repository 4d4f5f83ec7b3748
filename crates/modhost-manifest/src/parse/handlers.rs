//! The module's handlers: `<hooks>` and `<methods>`, at most one per hook point and name.

use super::{Handlers, MAX_HANDLERS, Parser, is_identifier};
use crate::model::*;
use crate::xml::{Element, Position};
use crate::{DEFAULT_PRIORITY, MAX_HOOK_NAME, is_valid_rawname};

impl Parser {
    /// Whether `handler` of hook point `hook`, at `position`, is taken: a handler named
    /// again runs once (a warning), and a module gives one hook point at most
    /// [`MAX_HANDLERS`] handlers (a problem), since every one is a call of its own.
    pub(super) fn handler_taken(
        &mut self,
        handlers: &mut Handlers,
        position: Position,
        hook: String,
        handler: &str,
        priority: i32,
    ) -> bool {
        // Names reach logs, terminals and the module's own dispatch: a control character
        // in one (`&#x1b;` written in) is nothing a module's code could mean.
        for (what, name) in [("handler", handler), ("hook point", hook.as_str())] {
            if let Some(c) = name.chars().find(|c| c.is_control()) {
                self.problem(
                    position,
                    format!(
                        "{what} `{}` holds the control character U+{:04X}: a {what}'s name is \
                         printable text",
                        name.escape_debug(),
                        u32::from(c)
                    ),
                );
                return false;
            }
        }
        if hook.len() > MAX_HOOK_NAME {
            let shown = &hook[..hook.floor_char_boundary(64)];
            self.problem(
                position,
                format!(
                    "hook point `{shown}…` is {} bytes long: a hook point's name is at most \
                     {MAX_HOOK_NAME}",
                    hook.len()
                ),
            );
            return false;
        }
        let taken = handlers.0.entry(hook).or_default();
        if let Some(kept) = taken.get(handler) {
            self.warn(
                position,
                format!(
                    "handler `{handler}` is named again for this hook point: it runs once, at \
                     priority {kept} as first named (not at {priority})"
                ),
            );
            return false;
        }
        if taken.len() == MAX_HANDLERS {
            self.problem(
                position,
                format!(
                    "more than {MAX_HANDLERS} handlers for one hook point: each is a call, and \
                     one module's calls at a hook point are bounded"
                ),
            );
            return false;
        }
        taken.insert(handler.to_owned(), priority);
        true
    }

    pub(super) fn hooks(&mut self, root: &Element, handlers: &mut Handlers) -> Vec<Hook> {
        let mut hooks = Vec::new();
        for target in root.children_named("hooks").flat_map(|h| h.children.iter()) {
            // A priority on the target applies to each of its methods that gives none.
            let inherited = self.integer(target, "priority", DEFAULT_PRIORITY);
            let target_name = self.hook_target(target);
            // Part of the hook point's name (`framework.Start.preAsteriskHooks`): a PHP
            // class name, without its namespace (given apart, in `namespace`).
            let target_class = target.attribute("class").map(str::trim);
            if let Some(class) = target_class.filter(|c| !is_identifier(c)) {
                self.problem(
                    target.position,
                    format!(
                        "<hooks><{}> class `{class}` is not a class name (letters, digits, _)",
                        target.name
                    ),
                );
            }
            let target_class = target_class.map(str::to_owned);
            for method in &target.children {
                let parent = format!("module/hooks/{}", target.name);
                if method.name != "method" {
                    self.keep_unknown(&parent, method);
                    continue;
                }
                self.check_children(&parent, method, &[]);
                // Each of these is checked, so that all of a method's problems show at once.
                let hook = method
                    .attribute("callingMethod")
                    .map(str::trim)
                    .filter(|h| !h.is_empty());
                if hook.is_none() {
                    self.problem(
                        method.position,
                        format!("<method> in <hooks><{}> has no callingMethod", target.name),
                    );
                }
                let handler = method.trimmed_text();
                if handler.is_empty() {
                    self.problem(
                        method.position,
                        format!("<method> in <hooks><{}> names no handler", target.name),
                    );
                }
                let priority = self.integer(method, "priority", inherited);
                let Some(hook) = hook.filter(|_| !handler.is_empty()) else {
                    continue;
                };
                let entry = Hook {
                    target: target_name.clone(),
                    hook: hook.to_owned(),
                    handler: handler.to_owned(),
                    priority,
                    target_class: target_class.clone(),
                    target_namespace: target.attribute("namespace").map(str::to_owned),
                    class: method.attribute("class").map(str::to_owned),
                    namespace: method.attribute("namespace").map(str::to_owned),
                };
                if self.handler_taken(handlers, method.position, entry.point(), handler, priority) {
                    hooks.push(entry);
                }
            }
        }
        hooks
    }

    /// The module a `<hooks>` target element names. FreePBX finds the target by its
    /// class, so real files spell the element as the class is spelt (firewall's
    /// `<Backup class="Backup">`): a name that is a rawname once lower-cased is read so,
    /// with a warning, and hooks into that module's hook points.
    pub(super) fn hook_target(&mut self, target: &Element) -> String {
        let lower = target.name.to_ascii_lowercase();
        if lower != target.name && is_valid_rawname(&lower) {
            self.warn(
                target.position,
                format!(
                    "the hook target <{}> is read as module `{lower}`: rawnames are lower case",
                    target.name
                ),
            );
            return lower;
        }
        target.name.clone()
    }

    pub(super) fn methods(&mut self, root: &Element, handlers: &mut Handlers) -> Vec<Method> {
        let mut methods = Vec::new();
        for element in root
            .children_named("methods")
            .flat_map(|m| m.children.iter())
        {
            self.check_children("module/methods", element, &[]);
            // A `priority="50"` guessed for `pri` would leave the handler at the default.
            self.unused_attributes(element, &["pri"]);
            let handler = element.trimmed_text();
            let priority = self.integer(element, "pri", DEFAULT_PRIORITY);
            if handler.is_empty() {
                self.problem(
                    element.position,
                    format!("<{}> names no handler", element.name),
                );
                continue;
            }
            if !self.handler_taken(
                handlers,
                element.position,
                element.name.clone(),
                handler,
                priority,
            ) {
                continue;
            }
            if let Some(meant) = mistyped_hook_point(&element.name) {
                self.warn(
                    element.position,
                    format!(
                        "<{}> {meant}: as written, its handler runs only when something fires \
                         a hook point of that name",
                        element.name
                    ),
                );
            }
            methods.push(Method {
                hook: element.name.clone(),
                handler: handler.to_owned(),
                priority,
            });
        }
        methods
    }
}

/// What a `<methods>` child named `name` was likely meant as, when it looks like a slip:
/// `get_config` mistyped (which `reload` runs, and nothing else would) — another case or
/// separator, a letter left out or added, letters swapped — or module.xml's own elements
/// put inside `<methods>`. A name one letter off another way (`set_config`) may be an
/// application's own hook point, and is not warned about.
fn mistyped_hook_point(name: &str) -> Option<String> {
    const GET_CONFIG: &str = "get_config";
    if ["hooks", "methods", "depends", "database"].contains(&name) {
        return Some(format!(
            "is read as a hook point named `{name}`: <{name}> belongs beside <methods>, not \
             inside it"
        ));
    }
    let letters = |text: &str| -> Vec<char> {
        text.chars()
            .filter(|c| !matches!(c, '_' | '-' | '.'))
            .map(|c| c.to_ascii_lowercase())
            .collect()
    };
    let (typed, meant) = (letters(name), letters(GET_CONFIG));
    let sorted = |mut chars: Vec<char>| {
        chars.sort_unstable();
        chars
    };
    let one_off = |long: &[char], short: &[char]| {
        long.len() == short.len() + 1
            && (0..long.len()).any(|i| long[..i] == short[..i] && long[i + 1..] == short[i..])
    };
    let slip = typed == meant
        || sorted(typed.clone()) == sorted(meant.clone())
        || one_off(&typed, &meant)
        || one_off(&meant, &typed);
    (name != GET_CONFIG && slip)
        .then(|| format!("is not `{GET_CONFIG}`, the hook point `reload` runs"))
}
