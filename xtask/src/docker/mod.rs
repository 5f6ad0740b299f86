//! The platform on a Docker engine: the service images from the generated
//! Dockerfiles ([`images`]), the generated compose stack (`up --compose`,
//! [`compose`]), and `compose-check`, which runs that stack for real
//! ([`check`]) with local stand-ins for images that cannot be pulled
//! ([`stand_ins`]) and reads the containers' hardening ([`hardening`]).

pub mod check;
pub mod compose;
pub mod hardening;
pub mod images;
pub mod stand_ins;
