//! Seeded, realistic Finnish PHR wellbeing data: the test citizens and sample applications of
//! the demo sandbox, and a year of Kanta-profiled resources per citizen (CGM glucose every 5
//! minutes with insulin and meals, blood pressure, weight, steps, exercise, nutrition, a
//! questionnaire and a care plan).
//!
//! This crate only *generates*: resources as JSON, in time order, each valid under its Finnish
//! PHR profile. Loading them goes through the application core's write pipeline (`phr demo`,
//! `phr serve --demo`, `phr import`) or straight into storage for benchmarks; that is the
//! callers' part.
//! It knows no HTTP, no storage and no authorization, so every other crate may use it.

pub mod bundle;
pub mod people;
pub mod progress;
pub mod resources;
pub mod rng;
pub mod time;
pub mod timeline;

pub use people::{APPS, CITIZENS, DEMO_APP, DemoApp, DemoCitizen, Persona, test_hetu};
pub use progress::Progress;
pub use rng::Rng;
pub use timeline::{Generated, Period, Timeline};

/// The seed `phr demo` and `phr serve --demo` use unless told otherwise.
pub const DEFAULT_SEED: u64 = 20_180_401;
