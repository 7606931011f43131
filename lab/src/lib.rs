//! tyrant-lab as a library: the experiment harness behind the `tyrant-lab` binary, kept
//! out of the client so that the client stays a BitTorrent client. It drives `tyrant`
//! processes and uses only the client's `rng` and `metainfo` modules.
//!
//! `capacity` (upload-capacity distributions), `manifest` (the text that fixes every
//! process of an experiment), `plan` (presets expanded into a manifest), `runner`
//! (`tyrant-lab run`: processes, closed loop, results.csv) and `study` (`tyrant-lab
//! report`: statistics and figures of a run's results).

pub mod capacity;
pub mod manifest;
pub mod plan;
pub mod runner;
pub mod study;
