//! Release words (`dev`, `alpha`, `beta`, `rc`, `pl`) and their rank.

/// A release word, in FreePBX's order: `dev < alpha < beta < rc < (release) < pl`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// A development snapshot (`dev`).
    Dev,
    /// An alpha release (`alpha`, `a`).
    Alpha,
    /// A beta release (`beta`, `b`).
    Beta,
    /// A release candidate (`rc`, `RC`).
    Rc,
    /// A patch level after the release (`pl`, `p`).
    Pl,
}

impl Stage {
    /// Matches the words PHP's `version_compare` knows, case-insensitively.
    pub(crate) fn parse(word: &str) -> Option<Self> {
        match word.to_ascii_lowercase().as_str() {
            "dev" => Some(Stage::Dev),
            "alpha" | "a" => Some(Stage::Alpha),
            "beta" | "b" => Some(Stage::Beta),
            "rc" => Some(Stage::Rc),
            "pl" | "p" => Some(Stage::Pl),
            _ => None,
        }
    }

    /// The canonical spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Dev => "dev",
            Stage::Alpha => "alpha",
            Stage::Beta => "beta",
            Stage::Rc => "rc",
            Stage::Pl => "pl",
        }
    }

    /// The rank PHP gives the word; a plain number ranks [`NUMBER_RANK`].
    pub(crate) fn rank(self) -> u8 {
        match self {
            Stage::Dev => 0,
            Stage::Alpha => 1,
            Stage::Beta => 2,
            Stage::Rc => 3,
            Stage::Pl => 5,
        }
    }
}

/// PHP ranks a number between `rc` and `pl` when it meets a word.
pub(crate) const NUMBER_RANK: u8 = 4;
