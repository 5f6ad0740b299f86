//! The platform as local processes: the commands `up`, `down`, `restart`,
//! `status`, `logs` and `trace`; what their logs say about the requests
//! served ([`access`]); how each replica is planned ([`plan`]), started,
//! waited for and stopped ([`launcher`]); the state directory they share
//! ([`state`]); and whole platforms started for a benchmark, a drill or a
//! test ([`platform`]).

pub mod access;
pub mod down;
pub mod launcher;
pub mod logs;
pub mod plan;
pub mod platform;
pub mod restart;
pub mod state;
pub mod status;
pub mod trace;
pub mod up;
