//! A citizen's wellbeing data over a period, generated day by day in time order as a stream
//! (a year of 5-minute CGM readings is 105,120 resources: they are never all in memory).
//!
//! The physiology is simple but plausible: glucose follows meals, insulin and exercise with
//! sensor noise; blood pressure and weight drift slowly; activity depends on the weekday and
//! season. The same seed, citizen key and period always give the same resources, identifiers
//! included, so loading twice is idempotent with conditional create.

use std::collections::VecDeque;

use phr_catalog::Lang;
use serde_json::Value;
use time::{Date, Duration, OffsetDateTime, Weekday};

use crate::people::{ACTIVITY_APP, DEMO_APP, DemoApp, GLUCOSE_APP, Persona};
use crate::resources::{self as r, Insulin, Owner, Session};
use crate::rng::Rng;
use crate::time::at_local;

/// One generated resource and the application that writes it.
#[derive(Debug, Clone)]
pub struct Generated {
    pub app: &'static DemoApp,
    pub resource: Value,
    pub at: OffsetDateTime,
}

/// Which days to generate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Period {
    pub first_day: Date,
    pub days: u32,
}

impl Period {
    /// The `days` days ending with `last_day`.
    pub fn ending(last_day: Date, days: u32) -> Period {
        Period {
            first_day: last_day - Duration::days(i64::from(days.saturating_sub(1))),
            days,
        }
    }

    /// `days` days up to yesterday (UTC).
    pub fn last_days(days: u32) -> Period {
        let today = OffsetDateTime::now_utc().date();
        Period::ending(today - Duration::days(1), days)
    }

    /// A year up to yesterday (UTC).
    pub fn last_year() -> Period {
        Period::last_days(365)
    }
}

impl Persona {
    /// About how many resources a day of this persona produces (for progress bars).
    pub fn per_day(self) -> f64 {
        match self {
            // 288 CGM + 4 meals × (carbs + bolus) + basal + 2 BP + steps + ...
            Persona::Diabetic => 288.0 + 9.0 + 2.0 + 1.0 + 0.5,
            Persona::Hypertensive => 2.0 + 1.0 + 1.0 + 0.4 + 0.2,
            Persona::Active => 2.0 + 1.0 + 1.0 + 0.7 + 0.2,
        }
    }
}

/// Slowly changing state of the simulated person.
#[derive(Debug, Clone)]
struct Body {
    weight: f64,
    weight_trend_per_day: f64,
    systolic: f64,
    diastolic: f64,
    bp_trend_per_day: f64,
    /// CGM noise (autoregressive).
    glucose_noise: f64,
}

impl Body {
    fn of(persona: Persona, rng: &mut Rng) -> Body {
        match persona {
            Persona::Diabetic => Body {
                weight: rng.range(68.0, 76.0),
                weight_trend_per_day: 0.0,
                systolic: 124.0,
                diastolic: 79.0,
                bp_trend_per_day: 0.0,
                glucose_noise: 0.0,
            },
            Persona::Hypertensive => Body {
                weight: rng.range(94.0, 98.0),
                weight_trend_per_day: -0.018,
                systolic: 148.0,
                diastolic: 94.0,
                bp_trend_per_day: -0.03,
                glucose_noise: 0.0,
            },
            Persona::Active => Body {
                weight: rng.range(64.0, 70.0),
                weight_trend_per_day: 0.0,
                systolic: 116.0,
                diastolic: 72.0,
                bp_trend_per_day: 0.0,
                glucose_noise: 0.0,
            },
        }
    }
}

/// The stream of one citizen's resources over a period, in time order.
pub struct Timeline {
    persona: Persona,
    lang: Lang,
    patient_id: String,
    period: Period,
    day_index: u32,
    /// Values (glucose, weights, ...).
    rng: Rng,
    /// Identifiers: a stream of its own, so they depend only on the seed and the key.
    ids: Rng,
    body: Body,
    buffer: VecDeque<Generated>,
}

impl Timeline {
    /// `key` names the citizen within the seed (e.g. `citizen-0`): the same seed and key give
    /// the same values and identifiers.
    pub fn new(
        seed: u64,
        key: &str,
        persona: Persona,
        lang: Lang,
        patient_id: &str,
        period: Period,
    ) -> Timeline {
        let mut rng = Rng::derive(seed, &format!("values/{key}"));
        let body = Body::of(persona, &mut rng);
        Timeline {
            persona,
            lang,
            patient_id: patient_id.to_string(),
            period,
            day_index: 0,
            rng,
            ids: Rng::derive(seed, &format!("ids/{key}")),
            body,
            buffer: VecDeque::new(),
        }
    }

    /// About how many resources the whole stream holds.
    pub fn estimated_len(&self) -> u64 {
        (self.persona.per_day() * f64::from(self.period.days)) as u64
    }

    fn generate_day(&mut self) {
        let day = self.period.first_day + Duration::days(i64::from(self.day_index));
        let mut out: Vec<Generated> = Vec::new();
        let sessions = self.exercise_sessions(day);
        if self.persona == Persona::Diabetic {
            self.diabetes_day(day, &sessions, &mut out);
        }
        self.vitals_day(day, &mut out);
        self.activity_day(day, &sessions, &mut out);
        self.nutrition_day(day, &mut out);
        self.documents_day(day, &mut out);
        out.sort_by_key(|g| g.at);
        self.buffer.extend(out);
        self.day_index += 1;
    }

    fn owner<'a>(&'a self, app: &'a DemoApp) -> Owner<'a> {
        Owner {
            patient_id: &self.patient_id,
            lang: self.lang,
            app,
        }
    }

    fn push(
        &mut self,
        out: &mut Vec<Generated>,
        app: &'static DemoApp,
        at: OffsetDateTime,
        build: impl FnOnce(&Owner<'_>, &str) -> Value,
    ) {
        let identifier = self.ids.uuid();
        let resource = build(&self.owner(app), &identifier);
        out.push(Generated { app, resource, at });
    }

    fn exercise_sessions(&mut self, day: Date) -> Vec<Session> {
        let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        let winter = matches!(day.month() as u8, 12 | 1 | 2 | 3);
        let p = match self.persona {
            Persona::Diabetic => 0.35,
            Persona::Hypertensive => 0.3 + if weekend { 0.2 } else { 0.0 },
            Persona::Active => 0.6 + if weekend { 0.2 } else { 0.0 },
        };
        if !self.rng.chance(p) {
            return Vec::new();
        }
        let choices: &[usize] = match (self.persona, winter) {
            (Persona::Active, true) => &[2, 5, 6],
            (Persona::Active, false) => &[0, 2, 6, 7],
            (Persona::Hypertensive, true) => &[1, 3, 4],
            (Persona::Hypertensive, false) => &[1, 3, 7],
            (Persona::Diabetic, true) => &[1, 5, 6],
            (Persona::Diabetic, false) => &[0, 1, 7],
        };
        let activity = r::ACTIVITIES[*self.rng.pick(choices)];
        let minutes = match self.persona {
            Persona::Active => self.rng.int(35, 95),
            _ => self.rng.int(20, 60),
        };
        let intensity = match self.persona {
            Persona::Active => r::INTENSITIES[self.rng.int(1, 2) as usize],
            _ => r::INTENSITIES[self.rng.int(0, 1) as usize],
        };
        let per_minute = match intensity.0 {
            "LA20164-2" => 4.0,
            "LA20165-9" => 7.0,
            _ => 10.5,
        };
        let kcal = (minutes as f64 * per_minute * self.rng.range(0.9, 1.1)).round() as i64;
        let hour = if weekend {
            self.rng.int(9, 15)
        } else {
            self.rng.int(16, 19)
        } as u8;
        let start = at_local(day, hour, self.rng.int(0, 59) as u8);
        vec![Session {
            start,
            minutes,
            activity,
            intensity,
            kcal,
        }]
    }

    fn diabetes_day(&mut self, day: Date, sessions: &[Session], out: &mut Vec<Generated>) {
        // Meals: local time and carbohydrate range.
        let plan = [
            (7, 30, 35, 70),
            (12, 0, 45, 85),
            (17, 30, 50, 90),
            (20, 45, 10, 30),
        ];
        let mut meals: Vec<(OffsetDateTime, f64)> = Vec::new();
        for (hour, minute, low, high) in plan {
            if hour == 20 && !self.rng.chance(0.6) {
                continue;
            }
            let jitter = self.rng.int(-30, 30);
            let at = at_local(day, hour, minute) + Duration::minutes(jitter);
            let grams = self.rng.int(low, high);
            meals.push((at, grams as f64));
            self.push(out, &GLUCOSE_APP, at, |o, id| {
                r::carbohydrates(o, id, at, grams)
            });
            // Insulin-to-carbohydrate ratio about 1 IU / 10 g, rounded to half units.
            let units = ((grams as f64 / 10.0 * self.rng.range(0.85, 1.15)) * 2.0).round() / 2.0;
            let dose_at = at - Duration::minutes(self.rng.int(0, 10));
            self.push(out, &GLUCOSE_APP, dose_at, |o, id| {
                r::insulin_dose(o, id, dose_at, Insulin::Fast, units.max(0.5))
            });
        }
        let basal_at = at_local(day, 22, self.rng.int(0, 20) as u8);
        let basal = (self.rng.normal(20.0, 0.8) * 2.0).round() / 2.0;
        self.push(out, &GLUCOSE_APP, basal_at, |o, id| {
            r::insulin_dose(o, id, basal_at, Insulin::Long, basal)
        });
        // CGM every 5 minutes; every tenth day the sensor is changed (two hours without data).
        let sensor_change = self.day_index % 10 == 3;
        let midnight = at_local(day, 0, 0);
        // A local day is 23 or 25 hours long when summer time starts or ends.
        let next_midnight = at_local(day.next_day().expect("a day after"), 0, 0);
        for k in 0i64.. {
            let at = midnight + Duration::minutes(5 * k);
            if at >= next_midnight {
                break;
            }
            let local_hour = (k * 5) as f64 / 60.0;
            if sensor_change && (9.0..11.0).contains(&local_hour) {
                continue;
            }
            if self.rng.chance(0.004) {
                continue; // a dropped reading
            }
            let dawn = 0.9 * (-((local_hour - 6.0) / 1.8).powi(2)).exp();
            let meal_effect: f64 = meals
                .iter()
                .map(|(meal_at, grams)| {
                    let m = (at - *meal_at).whole_minutes() as f64;
                    if m < 0.0 {
                        0.0
                    } else {
                        let x = m / 55.0;
                        grams * 0.05 * x * (1.0 - x).exp()
                    }
                })
                .sum();
            let exercise_effect: f64 = sessions
                .iter()
                .map(|s| {
                    let m = (at - s.start).whole_minutes() as f64;
                    if (0.0..(s.minutes as f64 + 120.0)).contains(&m) {
                        -1.6
                    } else {
                        0.0
                    }
                })
                .sum();
            self.body.glucose_noise = 0.96 * self.body.glucose_noise + self.rng.normal(0.0, 0.18);
            let mmol = (6.1 + dawn + meal_effect + exercise_effect + self.body.glucose_noise)
                .clamp(2.8, 22.0);
            self.push(out, &GLUCOSE_APP, at, |o, id| {
                r::cgm_glucose(o, id, at, mmol)
            });
        }
    }

    fn vitals_day(&mut self, day: Date, out: &mut Vec<Generated>) {
        self.body.systolic += self.body.bp_trend_per_day;
        self.body.diastolic += self.body.bp_trend_per_day * 0.6;
        self.body.weight += self.body.weight_trend_per_day + self.rng.normal(0.0, 0.04);
        for (hour, evening_delta) in [(7u8, 0.0), (21u8, -3.0)] {
            if self.rng.chance(0.05) {
                continue; // forgot to measure
            }
            let at = at_local(day, hour, self.rng.int(0, 50) as u8);
            let sys =
                (self.body.systolic + evening_delta + self.rng.normal(0.0, 6.0)).round() as i64;
            let dia = (self.body.diastolic + evening_delta * 0.5 + self.rng.normal(0.0, 4.0))
                .round() as i64;
            self.push(out, &DEMO_APP, at, |o, id| {
                r::blood_pressure(o, id, at, sys, dia.min(sys - 20))
            });
        }
        if day.weekday() == Weekday::Monday {
            let at = at_local(day, 7, self.rng.int(0, 30) as u8);
            let kg = self.body.weight + self.rng.normal(0.0, 0.3);
            self.push(out, &DEMO_APP, at, |o, id| r::body_weight(o, id, at, kg));
        }
    }

    fn activity_day(&mut self, day: Date, sessions: &[Session], out: &mut Vec<Generated>) {
        let weekend = matches!(day.weekday(), Weekday::Saturday | Weekday::Sunday);
        let base = match self.persona {
            Persona::Diabetic => 7000.0,
            Persona::Hypertensive => 5200.0 + 12.0 * f64::from(self.day_index).min(200.0),
            Persona::Active => 11000.0,
        };
        let exercise_steps: f64 = sessions
            .iter()
            .filter(|s| matches!(s.activity.0, "B0702" | "B0718" | "B0720" | "B0750"))
            .map(|s| s.minutes as f64 * 120.0)
            .sum();
        let steps = (base * if weekend { 0.85 } else { 1.0 }
            + exercise_steps
            + self.rng.normal(0.0, 1400.0))
        .max(300.0)
        .round() as i64;
        let end_of_day = at_local(day, 23, 55);
        self.push(out, &ACTIVITY_APP, end_of_day, |o, id| {
            r::daily_steps(o, id, day, steps)
        });
        for s in sessions.iter().copied() {
            let at = s.start;
            self.push(out, &ACTIVITY_APP, at, |o, id| r::exercise(o, id, &s));
        }
    }

    fn nutrition_day(&mut self, day: Date, out: &mut Vec<Generated>) {
        let kcal = match self.persona {
            Persona::Diabetic => return,
            Persona::Hypertensive => self.rng.normal(2150.0, 220.0),
            Persona::Active => self.rng.normal(2600.0, 300.0),
        }
        .round() as i64;
        let at = at_local(day, 23, 50);
        self.push(out, &DEMO_APP, at, |o, id| {
            r::calorie_intake(o, id, day, kcal)
        });
    }

    fn documents_day(&mut self, day: Date, out: &mut Vec<Generated>) {
        if day.day() == 1 {
            let at = at_local(day, 19, self.rng.int(0, 59) as u8);
            let feeling = self.rng.int(5, 9);
            let slept = self.rng.chance(0.7);
            let days = self.rng.int(1, 6);
            self.push(out, &DEMO_APP, at, |o, id| {
                r::wellbeing_response(o, id, at, feeling, slept, days)
            });
        }
        if self.day_index == 20 {
            let at = at_local(day, 18, 0);
            let (category, title, description) = match self.persona {
                Persona::Diabetic => (
                    ("8", "Närästys"),
                    "Närästys",
                    "Närästys on toistuvaa ja lievää. Vältä myöhäisiä ja rasvaisia aterioita, \
                     seuraa oireita kahden viikon ajan ja hakeudu vastaanotolle, jos oireet jatkuvat.",
                ),
                Persona::Hypertensive => (
                    ("10", "Päänsärky"),
                    "Päänsärky",
                    "Päänsärky on lievää ja liittyy iltaan. Mittaa verenpaine aamuin illoin, \
                     juo riittävästi ja varaa aika terveysasemalle, jos arvot pysyvät koholla.",
                ),
                Persona::Active => (
                    ("7", "Alaselkäkipu tai -vamma"),
                    "Alaselkäkipu tai -vamma",
                    "Alaselkäkipu alkoi juoksulenkin jälkeen ja on lievää. Jatka kevyttä liikuntaa, \
                     venyttele ja hakeudu vastaanotolle, jos kipu kestää yli kaksi viikkoa.",
                ),
            };
            self.push(out, &DEMO_APP, at, |o, id| {
                r::care_plan(o, id, category, title, description)
            });
        }
    }
}

impl Iterator for Timeline {
    type Item = Generated;

    fn next(&mut self) -> Option<Generated> {
        while self.buffer.is_empty() {
            if self.day_index >= self.period.days {
                return None;
            }
            self.generate_day();
        }
        self.buffer.pop_front()
    }
}
