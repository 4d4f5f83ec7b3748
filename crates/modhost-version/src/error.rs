//! Why a string is not a version or a constraint.

/// Why a string is not a version or a constraint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// The text does not follow the version grammar.
    #[error("`{text}` is not a valid version: {reason}")]
    Version {
        /// The rejected text.
        text: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The text is not a known comparison operator.
    #[error(
        "`{0}` is not a comparison operator (expected one of lt le gt ge eq ne == = != \
         < <= > >= <>)"
    )]
    Operator(String),
}
