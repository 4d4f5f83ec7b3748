//! Unit tests of packing and reading, of both formats and both layouts, and of hostile
//! zips; hostile archives are also tested end to end in `tests/cli/archives.rs`, where a
//! refusal must also leave the root as it was.

mod budget;
mod fixtures;
mod layout;
mod pack;
mod readers;
mod tar;
mod zip;
