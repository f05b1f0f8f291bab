//! `gansde`: Monte Carlo convergence studies of stochastic-gradient GAN
//! training (SGA) against its SDE approximations, after Cao & Guo,
//! "Stochastic differential equation approximations of generative adversarial
//! network training and its long-run behavior" (J. Appl. Prob. 2023).
//!
//! The map of the mathematics and architecture is DESIGN.md (shared); this
//! crate is a library (the engine, which never prints) plus the `gansde`
//! binary (CLI and report layer).

pub mod analysis;
pub mod cluster;
pub mod data;
pub mod dual;
pub mod game;
pub mod io;
pub mod job;
pub mod linalg;
pub mod lq_exact;
pub mod report;
pub mod rng;
pub mod sde;
pub mod sga;
pub mod stats;
pub mod study;
