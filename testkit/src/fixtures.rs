//! The fixture files, embedded with `include_bytes!` (the list is generated
//! by `fixtures/generate.py` into `fixtures/embedded.rs`), so tests that
//! run in wasm, where there is no file system, read the same bytes.

include!("../../fixtures/embedded.rs");

/// The bytes of a fixture, by its path under `fixtures/`.
pub fn fixture(name: &str) -> &'static [u8] {
    FIXTURE_FILES
        .iter()
        .find(|(file, _)| *file == name)
        .map(|(_, bytes)| *bytes)
        .unwrap_or_else(|| panic!("{name} is not embedded (fixtures/embedded.rs)"))
}
