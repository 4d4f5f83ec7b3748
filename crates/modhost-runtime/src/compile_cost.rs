//! What compiling a component would cost, read from its code before compiling it.
//!
//! Cranelift's cost grows with a function's locals times its blocks (at every join, each
//! local live there may need a value of its own): one function of 50,000 locals and
//! 20,000 blocks, 220 KB packed, took 8 minutes and 17 GB to compile before failing. No
//! compiler writes such code: of the largest real modules, CPython's and SpiderMonkey's
//! runtimes, no function passes 200,000 and all of theirs add up to 3.2 million. A
//! component past [`MAX_FUNCTION_COST`] in one function, or [`MAX_TOTAL_COST`] in all, is
//! refused before anything is compiled.

use wasmparser::{Operator, Parser, Payload};

/// The most (locals + 1) × (blocks + 1) one function may cost: 50 times the largest
/// real one; a second or two of compiling.
pub const MAX_FUNCTION_COST: u64 = 10_000_000;

/// The most all of a component's functions may cost together: 30 times a JavaScript
/// module's runtime.
pub const MAX_TOTAL_COST: u64 = 100_000_000;

/// Refuses the component in `bytes` when compiling it would cost more than a module ever
/// needs, saying which function of which core module, and how much.
pub(crate) fn check(bytes: &[u8]) -> Result<(), String> {
    let mut total: u64 = 0;
    let (mut module, mut function) = (0usize, 0usize);
    for payload in Parser::new(0).parse_all(bytes) {
        match payload.map_err(|e| e.to_string())? {
            Payload::ModuleSection { .. } => {
                module += 1;
                function = 0;
            }
            Payload::CodeSectionEntry(body) => {
                function += 1;
                let mut locals: u64 = 0;
                for group in body.get_locals_reader().map_err(|e| e.to_string())? {
                    locals += u64::from(group.map_err(|e| e.to_string())?.0);
                }
                let mut blocks: u64 = 0;
                let mut operators = body.get_operators_reader().map_err(|e| e.to_string())?;
                while !operators.eof() {
                    let operator = operators.read().map_err(|e| e.to_string())?;
                    if matches!(
                        operator,
                        Operator::Block { .. } | Operator::Loop { .. } | Operator::If { .. }
                    ) {
                        blocks += 1;
                    }
                }
                let cost = (locals + 1).saturating_mul(blocks + 1);
                let which = format!("function body {function} of core module {module}");
                if cost > MAX_FUNCTION_COST {
                    return Err(format!(
                        "its {which} has {locals} locals across {blocks} blocks, which would \
                         take minutes and gigabytes to compile (at most {MAX_FUNCTION_COST} \
                         locals × blocks a function; the largest real ones are under \
                         200,000); no compiler writes such code"
                    ));
                }
                total = total.saturating_add(cost);
                if total > MAX_TOTAL_COST {
                    return Err(format!(
                        "its functions, as far as its {which}, add up to more locals × \
                         blocks than a module needs ({MAX_TOTAL_COST} in all), which would \
                         take minutes and gigabytes to compile"
                    ));
                }
            }
            _ => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use modhost_test_support::component;
    use modhost_test_support::costly::with_costly_module;

    use super::*;

    #[test]
    fn real_code_passes_and_a_costly_function_or_sum_is_refused_naming_it() {
        let real = std::fs::read(component("core")).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(check(&real), Ok(()));
        // Fifty functions each as costly as the largest real ones.
        assert_eq!(check(&with_costly_module(&real, &[(300, 600); 50])), Ok(()));

        let one = check(&with_costly_module(&real, &[(10, 10), (5_000, 5_000)]));
        let message = one.err().unwrap_or_default();
        assert!(
            message.contains("its function body 2 of core module ")
                && message.contains(" has 5000 locals across 5000 blocks")
                && message.contains("at most 10000000 locals × blocks a function"),
            "{message}"
        );
        let many = check(&with_costly_module(&real, &[(2_999, 2_999); 12]));
        let message = many.err().unwrap_or_default();
        assert!(
            message.contains("as far as its function body 12 of core module ")
                && message.contains("add up to more locals × blocks than a module needs"),
            "{message}"
        );
    }
}
