//! The developer's commands: the test suite with everything it needs
//! ([`test`]), the tools it needs ([`tools`]), and the one release build of
//! the service binaries ([`build`]).

pub mod build;
pub mod test;
pub mod tools;
