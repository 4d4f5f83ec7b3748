//! Components that cost more to compile than any module needs: a real module's component
//! with a core module appended whose functions have many locals across many blocks.

use wasm_encoder::{
    BlockType, CodeSection, Component, Function, FunctionSection, Instruction, Module,
    ModuleSection, TypeSection, ValType,
};

/// `component` (a real one's bytes) with a core module appended, never instantiated,
/// holding one function per `(locals, blocks)`: each block reads one local and writes
/// another, and the function reads every local at its end, so that each stays live.
pub fn with_costly_module(component: &[u8], functions: &[(u32, u32)]) -> Vec<u8> {
    let mut module = Module::new();
    let mut types = TypeSection::new();
    types.ty().function([], []);
    module.section(&types);
    let mut declared = FunctionSection::new();
    for _ in functions {
        declared.function(0);
    }
    module.section(&declared);
    let mut code = CodeSection::new();
    for &(locals, blocks) in functions {
        let locals = locals.max(1);
        let mut body = Function::new([(locals, ValType::I64)]);
        for block in 0..blocks {
            body.instruction(&Instruction::Block(BlockType::Empty))
                .instruction(&Instruction::LocalGet(block.wrapping_mul(7) % locals))
                .instruction(&Instruction::LocalSet(
                    block.wrapping_mul(13).wrapping_add(1) % locals,
                ))
                .instruction(&Instruction::I32Const(0))
                .instruction(&Instruction::BrIf(0))
                .instruction(&Instruction::End);
        }
        for local in 0..locals {
            body.instruction(&Instruction::LocalGet(local))
                .instruction(&Instruction::Drop);
        }
        body.instruction(&Instruction::End);
        code.function(&body);
    }
    module.section(&code);
    let mut wrapper = Component::new();
    wrapper.section(&ModuleSection(&module));
    let sections = wrapper.finish();
    // A component's sections follow its 8-byte preamble: the new one goes after the rest.
    let mut bytes = component.to_vec();
    bytes.extend_from_slice(sections.get(8..).unwrap_or_default());
    bytes
}
