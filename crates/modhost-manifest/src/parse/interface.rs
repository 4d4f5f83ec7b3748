//! What a module adds to FreePBX's interfaces, kept as written: menu items, popovers,
//! out-of-box setup, commercial terms, included files and console commands.

use super::Parser;
use crate::DEFAULT_OOBE_PRIORITY;
use crate::model::*;
use crate::xml::Element;

impl Parser {
    /// The `sort` of menu item `element`, `text`: an integer, kept within -10 to 10 as
    /// FreePBX's module admin keeps it (said as a warning).
    pub(super) fn menu_sort(&mut self, element: &Element, text: &str) -> Option<i32> {
        let Ok(sort) = text.trim().parse::<i64>() else {
            self.problem(
                element.position,
                format!(
                    "sort `{text}` of menu item <{}> is not an integer from -10 to 10",
                    element.name
                ),
            );
            return None;
        };
        let kept = sort.clamp(-10, 10);
        if kept != sort {
            self.warn(
                element.position,
                format!(
                    "sort `{text}` of menu item <{}> is outside -10 to 10: it is {kept}, as \
                     FreePBX keeps it",
                    element.name
                ),
            );
        }
        i32::try_from(kept).ok()
    }

    /// The `<menuitems>`; one without a `category`, or with an empty one, is in the
    /// module's `category`, where FreePBX's menu shows it.
    pub(super) fn menuitems(&mut self, root: &Element, category: &str) -> Vec<MenuItem> {
        let mut items = Vec::new();
        for element in root
            .children_named("menuitems")
            .flat_map(|m| m.children.iter())
        {
            self.check_children("module/menuitems", element, &[]);
            let sort = element
                .attribute("sort")
                .and_then(|text| self.menu_sort(element, text));
            items.push(MenuItem {
                key: element.name.clone(),
                label: element.trimmed_text().to_owned(),
                category: Some(
                    element
                        .attribute("category")
                        .filter(|c| !c.trim().is_empty())
                        .unwrap_or(category)
                        .to_owned(),
                ),
                sort,
                attributes: element.attributes.iter().cloned().collect(),
            });
        }
        items
    }

    pub(super) fn popovers(&mut self, root: &Element) -> Vec<Popover> {
        let mut popovers = Vec::new();
        for element in root
            .children_named("popovers")
            .flat_map(|p| p.children.iter())
        {
            // A popover's children are its parameters, whatever their names: text only.
            let path = format!("module/popovers/{}", element.name);
            for param in &element.children {
                self.check_children(&path, param, &[]);
            }
            popovers.push(Popover {
                name: element.name.clone(),
                params: element
                    .children
                    .iter()
                    .map(|param| (param.name.clone(), param.trimmed_text().to_owned()))
                    .collect(),
            });
        }
        popovers
    }

    pub(super) fn oobe(&mut self, element: &Element) -> Option<Oobe> {
        self.check_children("module", element, &["method"]);
        let method = element
            .attribute("method")
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty())
            .or_else(|| self.text(element, "method"));
        let priority = self.integer(element, "priority", DEFAULT_OOBE_PRIORITY);
        match method {
            Some(method) => Some(Oobe { method, priority }),
            None => {
                self.problem(element.position, "<oobe> names no method");
                None
            }
        }
    }

    pub(super) fn commercial(&mut self, element: &Element) -> Commercial {
        self.check_children("module", element, &["type", "link"]);
        let kind = self
            .text(element, "type")
            .unwrap_or_else(|| "paid".to_owned());
        if !["free", "paid", "upgradeable"].contains(&kind.as_str()) {
            self.warn(
                element.position,
                format!("commercial type `{kind}` is not free, paid or upgradeable"),
            );
        }
        Commercial {
            kind,
            link: self.text(element, "link"),
        }
    }

    pub(super) fn fileinclude(&mut self, root: &Element) -> Vec<FileInclude> {
        let mut includes = Vec::new();
        for element in root
            .children_named("fileinclude")
            .flat_map(|f| f.children.iter())
        {
            self.check_children("module/fileinclude", element, &[]);
            includes.push(FileInclude {
                stage: element.name.clone(),
                path: element.trimmed_text().to_owned(),
            });
        }
        includes
    }

    pub(super) fn console(&mut self, root: &Element) -> Vec<ConsoleCommand> {
        let mut commands = Vec::new();
        for element in root
            .children_named("console")
            .flat_map(|c| c.children.iter())
        {
            if element.name != "command" {
                self.keep_unknown("module/console", element);
                continue;
            }
            self.check_children("module/console", element, &["name", "alias", "class"]);
            match self.text(element, "name") {
                Some(name) => commands.push(ConsoleCommand {
                    name,
                    aliases: element
                        .children_named("alias")
                        .map(|a| a.trimmed_text().to_owned())
                        .filter(|a| !a.is_empty())
                        .collect(),
                    class: self.text(element, "class"),
                }),
                None => self.problem(element.position, "<console><command> has no <name>"),
            }
        }
        commands
    }
}
