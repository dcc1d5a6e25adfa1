//! The content of the Finnish PHR code systems and value sets (KANTA-PHR.md §3.4): codes,
//! displays and Finnish/Swedish/English names, transcribed from what Kela published and kept
//! here as the catalogue's own declaration. Differences from Kela's files are deliberate and
//! listed in `terminology.rs`.

use super::{CodeSystemDecl, Concept, Include, ValueSetDecl};
use crate::model::Names;
use crate::urls;

pub(crate) const CODE_SYSTEMS: &[CodeSystemDecl] = &[
    CodeSystemDecl {
        url: urls::CS_CAREPLAN_CATEGORY,
        id: "fiphr-cs-careplancategory",
        name: "fiphr-cs-careplancategory",
        title: "Finnish PHR CarePlan Category code system",
        version: "2.1",
        description: "Indicates the plan category.",
        complete: true,
        concepts: CAREPLAN_CATEGORIES,
    },
    CodeSystemDecl {
        url: urls::CS_CONSENT_CATEGORY,
        id: "fiphr-cs-consentcategory",
        name: "fiphr-cs-consentcategory",
        title: "Code System Finnish PHR Consent Category",
        version: "1.0",
        description: "Finnish PHR Consent Category codes",
        complete: true,
        concepts: &[Concept {
            code: "1",
            display: "Consent to share wellbeing information stored in My Kanta Pages Personal Health Record to social welfare and healthcare service providers",
            names: Some(Names::new(
                "Suostumus hyvinvointitietojen luovuttamiseen Omatietovarannosta sosiaali- ja terveydenhuollon palvelunantajille",
                "Samtycke till att uppgifter om en persons välbefinnande lämnas ut från Datalagret för egna uppgifter till tillhandahållare av tjänster inom social- och hälsovården",
                "Consent to share wellbeing information stored in My Kanta Pages Personal Health Record to social welfare and healthcare service providers",
            )),
            definition: None,
        }],
    },
    CodeSystemDecl {
        url: urls::CS_FITNESS_CATEGORY,
        id: "fiphr-cs-fitnesscategory",
        name: "fiphr-cs-fitnesscategory",
        title: "Code System Finnish PHR Fitness Category",
        version: "1.0",
        description: "Observation category code for Finnish PHR Fitness Category",
        complete: true,
        concepts: &[Concept {
            code: "fitness",
            display: "Fitness",
            names: None,
            definition: Some(
                "Fitness or physical activity observations measure the patient's fitness indicators: resting heart rate, maximum heart rate, active time exercised, sedentary behaviour, sleep episodes, calories burned, distance reached or steps taken. Measures can be timed over arbitrary periods (sessions) or over a day or week.",
            ),
        }],
    },
    CodeSystemDecl {
        url: urls::CS_INSULIN_CODE,
        id: "fiphr-cs-insulincode",
        name: "fiphr-cs-insulincode",
        title: "Code System Finnish PHR Insulin Code",
        version: "1.0",
        description: "Finnish PHR Insulin Code System, includes codes indicating what kind of insulin has been administered.",
        complete: true,
        concepts: &[
            Concept {
                code: "ins-short-fast",
                display: "Fast-acting insulin",
                names: Some(Names::new(
                    "Lyhytvaikutteinen insuliini",
                    "Direktverkande insulin",
                    "Fast-acting insulin",
                )),
                definition: Some(
                    "A code for short and fast acting insulins, for example insulins that could be included in the group A10AB of the ATC Code System.",
                ),
            },
            Concept {
                code: "ins-intermediate-long",
                display: "Intermediate-acting insulin",
                names: Some(Names::new(
                    "Pitkävaikutteinen insuliini",
                    "Långverkande insulin",
                    "Intermediate-acting insulin",
                )),
                definition: Some(
                    "A code for intermediate and long acting insulins, for example insulins that could be included in the groups A10AC, A10AD and A10AE of the ATC Code System.",
                ),
            },
        ],
    },
    CodeSystemDecl {
        url: urls::CS_MVPA,
        id: "fiphr-cs-moderatetovigorouspa",
        name: "fiphr-cs-moderatetovigorouspa",
        title: "Code System Finnish PHR Moderate to Vigorous Physical Activity Fitness Observation Code",
        version: "1.1",
        description: "Finnish PHR Fitness Codesystem, that defines the code used for daily minutes of moderate to vigorous physical activity. Will be replaced with LOINC system code when available.",
        complete: true,
        concepts: &[Concept {
            code: "82290-8-24h",
            display: "Daily Moderate to Vigorous Physical Activity in minutes",
            names: Some(Names::new(
                "Päivittäinen kohtuullisen ja raskaan liikunnan määrä minuutteina",
                "Måttlig eller hård aktivitet per dag, minuter",
                "Daily moderate to vigorous physical activity, min",
            )),
            definition: Some("Daily PA minutes with MET > 2.9"),
        }],
    },
    CodeSystemDecl {
        url: urls::CS_OBSERVATION_CATEGORY,
        id: "fiphr-cs-observationcategory",
        name: "fiphr-cs-observationcategory",
        title: "Code System Finnish PHR Observation Category",
        version: "1.0",
        description: "Finnish PHR Observation Category Code System that defines codes for Observation.category when there is no suitable code in the FHIR standard observation category code system.",
        complete: true,
        concepts: OBSERVATION_CATEGORIES,
    },
    CodeSystemDecl {
        url: urls::CS_VNR,
        id: "fiphr-cs-vnrcode",
        name: "Code System Finnish PHR VNR Code",
        title: "Code System Finnish PHR VNR Code",
        version: "1.0",
        description: "Finnish PHR VNR codesystem, that defines VNR codes with CodeSystem.content as not-present.",
        complete: false,
        concepts: &[],
    },
];

pub(crate) const VALUE_SETS: &[ValueSetDecl] = &[
    ValueSetDecl {
        url: urls::VS_VITAL_SIGNS,
        id: "fiphr-vs-vitalsigns",
        name: "fiphr-vs-vitalsigns",
        title: "Value Set Finnish PHR Vital Signs",
        version: "1.2",
        description: "This value set indicates the allowed vital sign result types in Finnish PRH. The concept Vitals signs panel (85353-1) is a grouping structure for a set of vital signs and includes related links (with type=has-member) to the Observations in this set (e.g. respiratory rate, heart rate, BP).  The Blood pressure panel (85354-9) is used to group the component observations Systolic blood pressure (8480-6) and Diastolic blood pressure (8462-4).",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "9279-1",
                    display: "Respiratory rate",
                    names: Some(Names::new(
                        "Hengitystiheys",
                        "Andningsfrekvens",
                        "Respiratory rate",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8867-4",
                    display: "Heart rate",
                    names: Some(Names::new("Syke", "Puls", "Heart rate")),
                    definition: None,
                },
                Concept {
                    code: "41924-2",
                    display: "Heart rate 24 hour mean",
                    names: Some(Names::new(
                        "Sydämen syke 24 h keskiarvo",
                        "Hjärtats puls 24 h genomsnittspuls",
                        "Heart rate 24 hour mean",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8883-1",
                    display: "Heart rate 24 hour minimum",
                    names: Some(Names::new(
                        "Sydämen syke 24 h minimiarvo",
                        "Hjärtats puls 24 h minimivärde",
                        "Heart rate 24 hour minimum",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8873-2",
                    display: "Heart rate 24 hour maximum",
                    names: Some(Names::new(
                        "Sydämen syke 24 h maksimiarvo",
                        "Hjärtats puls 24 h maximivärde",
                        "Heart rate 24 hour maximum",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8310-5",
                    display: "Body temperature",
                    names: Some(Names::new(
                        "Kehon lämpö",
                        "Kroppstemperatur",
                        "Body temperature",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8331-1",
                    display: "Oral temperature",
                    names: Some(Names::new(
                        "Lämpö, suu",
                        "Temperatur, munnen",
                        "Oral temperature",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8332-9",
                    display: "Rectal temperature",
                    names: Some(Names::new(
                        "Lämpö, peräsuoli",
                        "Temperatur, ändtarmen",
                        "Rectal temperature",
                    )),
                    definition: None,
                },
                Concept {
                    code: "76011-6",
                    display: "Ear temperature",
                    names: Some(Names::new(
                        "Lämpö, korva",
                        "Termperatur, örat",
                        "Ear temperature",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8328-7",
                    display: "Axillary temperature",
                    names: Some(Names::new(
                        "Lämpö, kainalo",
                        "Temperatur, armhålan",
                        "Axillary temperature",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8302-2",
                    display: "Body height",
                    names: Some(Names::new("Pituus", "Längd", "Body height")),
                    definition: None,
                },
                Concept {
                    code: "29463-7",
                    display: "Body weight",
                    names: Some(Names::new("Paino", "Vikt", "Body weight")),
                    definition: None,
                },
                Concept {
                    code: "85354-9",
                    display: "Blood pressure panel with all children optional",
                    names: Some(Names::new(
                        "Verenpaine",
                        "Blodtryck",
                        "Blood pressure panel with all children optional",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8480-6",
                    display: "Systolic blood pressure",
                    names: Some(Names::new(
                        "Systolinen verenpaine",
                        "Systoliskt blodtryck",
                        "Systolic blood pressure",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8462-4",
                    display: "Diastolic blood pressure",
                    names: Some(Names::new(
                        "Diastolinen verenpaine",
                        "Diastoliskt blodtryck",
                        "Diastolic blood pressure",
                    )),
                    definition: None,
                },
                Concept {
                    code: "15074-8",
                    display: "Glucose [Moles/volume] in Blood",
                    names: Some(Names::new(
                        "Verensokeri",
                        "Blodsocker",
                        "Glucose [Moles/volume] in Blood",
                    )),
                    definition: None,
                },
                Concept {
                    code: "14743-9",
                    display: "Glucose [Moles/volume] in Capillary blood by Glucometer",
                    names: Some(Names::new(
                        "Verensokeri verensokerimittarilla",
                        "Blodsocker med blodsockermätare",
                        "Glucose [Moles/volume] in Capillary blood by Glucometer",
                    )),
                    definition: None,
                },
                Concept {
                    code: "14745-4",
                    display: "Glucose [Moles/volume] in Body fluid",
                    names: Some(Names::new(
                        "Kudossokeri",
                        "Vävnadssocker",
                        "Glucose [Moles/volume] in Body fluid",
                    )),
                    definition: None,
                },
                Concept {
                    code: "19935-6",
                    display: "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
                    names: Some(Names::new(
                        "PEF-mittarilla mitattu maksimaalinen uloshengitysvirtauksen arvo",
                        "Maximalt utandningsflöde med PEF-mätare",
                        "Maximum expiratory gas flow Respiratory system airway by Peak flow meter",
                    )),
                    definition: None,
                },
                Concept {
                    code: "8280-0",
                    display: "Waist Circumference at umbilicus by Tape measure",
                    names: Some(Names::new(
                        "Vyötärönympärys",
                        "Midjemått",
                        "Waist Circumference at umbilicus by Tape measure",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_FITNESS_RESULT,
        id: "fiphr-vs-fitnessresult",
        name: "fiphr-vs-fitnessresult",
        title: "Value Set Finnish PHR Fitness Results",
        version: "1.1",
        description: "This value set indicates the allowed fitness or physical activity result types in Finnish PHR. The concept Daily Activity fitness panel (62812-3) is a grouping structure for a set of physical activity, and for convenience also vital sign, measurements and includes related links (with type=has-member) to the Observations in this set or the parallel Finnish PHR Vital Signs value set (e.g. steps taken, minimum or maximum heart rate, calories burned, moderate to vigorous physical activity minutes, sedentary activity minutes, sleep episodes and exercises).",
        includes: &[
            Include {
                system: urls::LOINC,
                concepts: &[
                    Concept {
                        code: "55421-2",
                        display: "Calories burned",
                        names: Some(Names::new(
                            "Energiankulutus",
                            "Energiförbrukning",
                            "Calories burned",
                        )),
                        definition: None,
                    },
                    Concept {
                        code: "41979-6",
                        display: "Calories burned in 24h",
                        names: Some(Names::new(
                            "Energiankulutus vuorokaudessa",
                            "Energiförbrukning 24h",
                            "Calories burned in 24h",
                        )),
                        definition: None,
                    },
                    Concept {
                        code: "41980-4",
                        display: "Weekly calories burned",
                        names: Some(Names::new(
                            "Energiankulutus viikossa",
                            "Energiförbrukning i en vecka",
                            "Weekly calories burned",
                        )),
                        definition: None,
                    },
                    Concept {
                        code: "55430-3",
                        display: "Distance",
                        names: Some(Names::new("Kuljettu matka", "Distans", "Distance")),
                        definition: None,
                    },
                    Concept {
                        code: "41953-1",
                        display: "Distance reached in 24h",
                        names: Some(Names::new(
                            "Kuljettu matka vuorokaudessa",
                            "Distans per 24h",
                            "Distance reached in 24h",
                        )),
                        definition: None,
                    },
                    Concept {
                        code: "41955-6",
                        display: "Distance reached in a week",
                        names: Some(Names::new(
                            "Kuljettu matka viikossa",
                            "Distans per vecka",
                            "Distance reached in a week",
                        )),
                        definition: None,
                    },
                    Concept {
                        code: "66334-4",
                        display: "Steps",
                        names: Some(Names::new("Askelmäärä", "Steg", "Steps")),
                        definition: None,
                    },
                    Concept {
                        code: "41950-7",
                        display: "Daily steps",
                        names: Some(Names::new(
                            "Päivittäinen askelmäärä",
                            "Steg per dag",
                            "Daily steps",
                        )),
                        definition: None,
                    },
                    Concept {
                        code: "41952-3",
                        display: "Weekly steps",
                        names: Some(Names::new(
                            "Viikoittainen askelmäärä",
                            "Steg per vecka",
                            "Weekly steps",
                        )),
                        definition: None,
                    },
                    Concept {
                        code: "82290-8",
                        display: "Weekly moderate to vigorous physical activity in minutes",
                        names: Some(Names::new(
                            "Viikoittainen kohtuullisen ja raskaan liikunnan määrä minuutteina",
                            "Måttlig eller hård aktivitet per vecka, minuter",
                            "Weekly moderate to vigorous physical activity in minutes",
                        )),
                        definition: None,
                    },
                ],
            },
            Include {
                system: urls::CS_MVPA,
                concepts: &[Concept {
                    code: "82290-8-24h",
                    display: "Daily moderate to vigorous physical activity in minutes",
                    names: Some(Names::new(
                        "Päivittäinen kohtuullisen ja raskaan liikunnan määrä minuutteina",
                        "Måttlig eller hård aktivitet per dag, minuter",
                        "Daily moderate to vigorous physical activity in minutes",
                    )),
                    definition: None,
                }],
            },
        ],
    },
    ValueSetDecl {
        url: urls::VS_FITNESS_CATEGORY,
        id: "fitness-category",
        name: "fiphr-vs-fitnesscategory",
        title: "Value Set Finnish PHR Fitness Category",
        version: "1.0",
        description: "Fitness Category code.",
        includes: &[Include {
            system: urls::CS_FITNESS_CATEGORY,
            concepts: &[],
        }],
    },
    ValueSetDecl {
        url: urls::VS_OBSERVATION_CATEGORY,
        id: "fiphr-vs-observationcategory",
        name: "fiphr-vs-observationcategory",
        title: "Value Set Finnish PHR Observation Category",
        version: "1.0",
        description: "Finnish PHR Observation Category Value Set that defines codes for Observation.category when there is no suitable code in the FHIR standard observation category value set.",
        includes: &[Include {
            system: urls::CS_OBSERVATION_CATEGORY,
            concepts: OBSERVATION_CATEGORIES,
        }],
    },
    ValueSetDecl {
        url: urls::VS_NUTRITION,
        id: "fiphr-vs-nutrition",
        name: "fiphr-vs-nutrition",
        title: "Value Set Finnish PHR Nutrition",
        version: "1.0",
        description: "Finnish PHR Nutrition Value Set that defines codes for Nutrition.",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "8999-5",
                    display: "Fluid intake oral Estimated",
                    names: Some(Names::new(
                        "Arvio nautitusta nestemäärästä",
                        "Uppskattat oralt vätskeintag",
                        "Fluid intake oral Estimated",
                    )),
                    definition: None,
                },
                Concept {
                    code: "9052-2",
                    display: "Calorie intake total",
                    names: Some(Names::new(
                        "Kokonaisenergiamäärä",
                        "Totalt energiintag",
                        "Calorie intake total",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_MACRONUTRIENTS,
        id: "fiphr-vs-macronutrients",
        name: "fiphr-vs-macronutrients",
        title: "Value Set Finnish PHR Macronutrients",
        version: "1.0",
        description: "Finnish PHR Macronutrition Value Set that defines codes for Macronutrients.",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "9059-7",
                    display: "Carbohydrate intake Estimated",
                    names: Some(Names::new(
                        "Arvioitu hiilihydraattimäärä",
                        "Uppskattat kolhydratintag",
                        "Carbohydrate intake Estimated",
                    )),
                    definition: None,
                },
                Concept {
                    code: "9060-5",
                    display: "Carbohydrate intake Measured",
                    names: Some(Names::new(
                        "Mitattu hiilihydraattimäärä",
                        "Uppmätt kolhydratintag",
                        "Carbohydrate intake Measured",
                    )),
                    definition: None,
                },
                Concept {
                    code: "9066-2",
                    display: "Fat intake Estimated",
                    names: Some(Names::new(
                        "Arvioitu rasvan määrä",
                        "Uppskattat fettintag",
                        "Fat intake Estimated",
                    )),
                    definition: None,
                },
                Concept {
                    code: "9067-0",
                    display: "Fat intake Measured",
                    names: Some(Names::new(
                        "Mitattu rasvan määrä",
                        "Uppmätt fettintag",
                        "Fat intake Measured",
                    )),
                    definition: None,
                },
                Concept {
                    code: "9079-5",
                    display: "Protein intake Estimated",
                    names: Some(Names::new(
                        "Arvioitu proteiinin määrä",
                        "Uppskattat proteinintag",
                        "Protein intake Estimated",
                    )),
                    definition: None,
                },
                Concept {
                    code: "9080-3",
                    display: "Protein intake Measured",
                    names: Some(Names::new(
                        "Mitattu proteiinin määrä",
                        "Uppmätt proteinintag",
                        "Protein intake Measured",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_MET,
        id: "fiphr-vs-metbystandardrmr",
        name: "fiphr-vs-metbystandardrmr",
        title: "Value Set Finnish PHR MET by Standard RMR",
        version: "1.0",
        description: "Finnish PHR MET by Standard RMR value set",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "82260-1",
                    display: "Metabolic equivalent of task by standard resting metabolic rate panel",
                    names: Some(Names::new(
                        "Metabolinen ekvivalentti standardissa lepoaineenvaihdunnassa -paneeli",
                        "Metabolisk ekvivalent genom standard viloämnesomsättning -panel",
                        "Metabolic equivalent of task by standard resting metabolic rate panel",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82284-1",
                    display: "Standard resting metabolic rate",
                    names: Some(Names::new(
                        "Standardi lepoaineenvaihdunta",
                        "Standard viloämnesomsättning",
                        "Standard resting metabolic rate",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82261-9",
                    display: "Measured metabolic equivalent of task",
                    names: Some(Names::new(
                        "Mitattu metabolinen ekvivalentti",
                        "Uppmätt metabolisk ekvivalent",
                        "Measured metabolic equivalent of task",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82262-7",
                    display: "Estimated metabolic equivalent of task",
                    names: Some(Names::new(
                        "Arvioitu metabolinen ekvivalentti",
                        "Uppskattad metabolisk ekvivalent",
                        "Estimated metabolic equivalent of task",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82280-9",
                    display: "Source for estimated metabolic equivalent of task",
                    names: Some(Names::new(
                        "Lähde arvioidulle metaboliselle ekvivalentille",
                        "Källa för uppskattad metabolisk ekvivalent",
                        "Source for estimated metabolic equivalent of task",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82263-5",
                    display: "Reported metabolic equivalent of task",
                    names: Some(Names::new(
                        "Raportoitu metabolinen ekvivalentti",
                        "Rapporterad metabolisk ekvivalent",
                        "Reported metabolic equivalent of task",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82281-7",
                    display: "Source for reported metabolic equivalent of task",
                    names: Some(Names::new(
                        "Lähde raportoidulle metaboliselle ekvivalentille",
                        "Källa för rapporterad metabolisk ekvivalent",
                        "Source for reported metabolic equivalent of task",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82271-8",
                    display: "Adjusted metabolic equivalent of task",
                    names: Some(Names::new(
                        "Korjattu metabolinen ekvivalentti",
                        "Justerad metabolisk ekvivalent",
                        "Adjusted metabolic equivalent of task",
                    )),
                    definition: None,
                },
                Concept {
                    code: "82283-3",
                    display: "Source for adjusted metabolic equivalent of task",
                    names: Some(Names::new(
                        "Lähde korjatulle metaboliselle ekvivalentille",
                        "Källa för justerad metabolisk ekvivalent",
                        "Source for adjusted metabolic equivalent of task",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_SOURCE_ESTIMATED_MET,
        id: "fiphr-vs-sourceforestimatedmet",
        name: "fiphr-vs-sourceforestimatedmet",
        title: "Value Set Finnish PHR Source for Estimated MET",
        version: "1.0",
        description: "Finnish PHR Source for Estimated MET value set",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "LA26238-8",
                    display: "Compendium of Physical Activities",
                    names: Some(Names::new(
                        "Compendium of Physical Activities",
                        "Compendium of Physical Activities",
                        "Compendium of Physical Activities",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA26239-6",
                    display: "Modified Bruce protocol",
                    names: Some(Names::new(
                        "Modifioitu Bruce-protokolla",
                        "Modifierat Bruce-protokoll",
                        "Modified Bruce protocol",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA26240-4",
                    display: "Balke protocol",
                    names: Some(Names::new(
                        "Balke-protokolla",
                        "Balke-protokoll",
                        "Balke protocol",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA46-8",
                    display: "Other, specify",
                    names: Some(Names::new(
                        "Muu, tarkenna",
                        "Annat, specificera",
                        "Other, specity",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_SOURCE_REPORTED_MET,
        id: "fiphr-vs-sourceforreportedmet",
        name: "fiphr-vs-sourceforreportedmet",
        title: "Value Set Finnish PHR Source for Reported MET",
        version: "1.0",
        description: "Finnish PHR Source for Reported MET value set",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "LA26242-0",
                    display: "Activity tracker",
                    names: Some(Names::new(
                        "Aktiivisuusmittari",
                        "Aktivitetsmätare",
                        "Activity tracker",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA26243-8",
                    display: "Physical activity questionnaire",
                    names: Some(Names::new(
                        "Fyysisen aktiivisuuden kyselylomake",
                        "Fysisk aktivitet frågeformulär",
                        "Physical activity questionnaire",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA26251-1",
                    display: "Activity log or diary",
                    names: Some(Names::new(
                        "Aktiivisuusloki tai -päiväkirja",
                        "Aktivitetslogg eller -dagbok",
                        "Activity log or diary",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_SOURCE_ADJUSTED_MET,
        id: "fiphr-vs-sourceforadjustedmet",
        name: "fiphr-vs-sourceforadjustedmet",
        title: "Value Set Finnish PHR Source for Adjusted MET",
        version: "1.0",
        description: "Finnish PHR Source for Adjusted MET value set",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "LA26234-7",
                    display: "Wilms 2014 male",
                    names: Some(Names::new(
                        "Wilms 2014 miehet",
                        "Wilms 2014 manlig",
                        "Wilms 2014 male",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA26235-4",
                    display: "Wilms 2014 female",
                    names: Some(Names::new(
                        "Wilms 2014 naiset",
                        "Wilms 2014 kvinnlig",
                        "Wilms 2014 female",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA26236-2",
                    display: "Harris-Benedict male",
                    names: Some(Names::new(
                        "Harris-Benedict miehet",
                        "Harris-Benedict manlig",
                        "Harris-Benedict male",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA26237-0",
                    display: "Harris-Benedict female",
                    names: Some(Names::new(
                        "Harris-Benedict naiset",
                        "Harris-Benedict kvinnlig",
                        "Harris-Benedict female",
                    )),
                    definition: None,
                },
                Concept {
                    code: "LA46-8",
                    display: "Other, specify",
                    names: Some(Names::new(
                        "Muu, tarkenna",
                        "Annat, specificera",
                        "Other, specity",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_EXERCISE_TRACKING,
        id: "fiphr-vs-exercisetracking",
        name: "fiphr-vs-exercisetracking",
        title: "Value Set Finnish PHR Exercise Tracking",
        version: "1.0",
        description: "Finnish PHR Exercise Tracking value set",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "55409-7",
                    display: "Exercise tracking panel",
                    names: Some(Names::new(
                        "Liikunnan seuranta -paneeli",
                        "Träningsspårning-panel",
                        "Exercise tracking panel",
                    )),
                    definition: None,
                },
                Concept {
                    code: "73985-4",
                    display: "Exercise activity",
                    names: Some(Names::new(
                        "Liikunta-aktiviteetti",
                        "Träningsaktivitet",
                        "Exercise activity",
                    )),
                    definition: None,
                },
                Concept {
                    code: "55411-3",
                    display: "Exercise duration",
                    names: Some(Names::new(
                        "Liikunnan kesto",
                        "Träningsvaraktighet",
                        "Exercise duration",
                    )),
                    definition: None,
                },
                Concept {
                    code: "74008-4",
                    display: "Exercise intensity",
                    names: Some(Names::new(
                        "Liikunnan intensiteetti",
                        "Träningsintensitet",
                        "Exercise intensity",
                    )),
                    definition: None,
                },
                Concept {
                    code: "55421-2",
                    display: "Calories burned",
                    names: Some(Names::new(
                        "Energiankulutus",
                        "Energiförbrukning",
                        "Calories burned",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_EXERCISE_ACTIVITY,
        id: "fiphr-vs-exerciseactivity",
        name: "fiphr-vs-exerciseactivity",
        title: "Value Set Finnish PHR Exercise Activity",
        version: "1.1",
        description: "Finnish PHR Exercise Activity value set",
        includes: &[Include {
            system: urls::CS_EXERCISE_ACTIVITY,
            concepts: &[
                Concept {
                    code: "A0101",
                    display: "Basketball",
                    names: Some(Names::new("Koripallo", "Basketboll", "Basketball")),
                    definition: None,
                },
                Concept {
                    code: "A0109",
                    display: "Soccer",
                    names: Some(Names::new("Jalkapallo", "Fotboll", "Soccer")),
                    definition: None,
                },
                Concept {
                    code: "A0112",
                    display: "Volleyball",
                    names: Some(Names::new("Lentopallo", "Volleyboll", "Volleyball")),
                    definition: None,
                },
                Concept {
                    code: "A0203",
                    display: "Ice hockey",
                    names: Some(Names::new("Jääkiekko", "Ishockey", "Ice hockey")),
                    definition: None,
                },
                Concept {
                    code: "A0250",
                    display: "Baseball",
                    names: Some(Names::new("Pesäpallo", "Boboll", "Baseball")),
                    definition: None,
                },
                Concept {
                    code: "A0251",
                    display: "Floorball",
                    names: Some(Names::new("Salibandy", "Innebandy", "Floorball")),
                    definition: None,
                },
                Concept {
                    code: "B0405",
                    display: "Rowing or paddling",
                    names: Some(Names::new(
                        "Soutu tai melonta",
                        "Rodd eller paddling",
                        "Rowing or paddling",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B0450",
                    display: "Rowing indoors",
                    names: Some(Names::new(
                        "Soutu soutulaitteella",
                        "Rodd med roddmaskin",
                        "Rowing indoors",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B0507",
                    display: "Swimming",
                    names: Some(Names::new("Uinti", "Simning", "Swimming")),
                    definition: None,
                },
                Concept {
                    code: "B0550",
                    display: "Aquajogging",
                    names: Some(Names::new("Vesijuoksu", "Vattenlöpning", "Aquajogging")),
                    definition: None,
                },
                Concept {
                    code: "B0551",
                    display: "Water aerobics",
                    names: Some(Names::new(
                        "Vesivoimistelu",
                        "Vattengymnastik",
                        "Water aerobics",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B0603",
                    display: "Ice skating",
                    names: Some(Names::new("Luistelu", "Skridskoåkning", "Ice skating")),
                    definition: None,
                },
                Concept {
                    code: "B0606",
                    display: "Cross-country skiing",
                    names: Some(Names::new(
                        "Maastohiihto",
                        "Längdskidåkning",
                        "Cross-country skiing",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B0655",
                    display: "Snowshoeing",
                    names: Some(Names::new("Lumikenkäkävely", "Snöskogång", "Snowshoeing")),
                    definition: None,
                },
                Concept {
                    code: "B0701",
                    display: "Aerobics",
                    names: Some(Names::new("Aerobic", "Aerobics", "Aerobics")),
                    definition: None,
                },
                Concept {
                    code: "B0702",
                    display: "Jogging",
                    names: Some(Names::new("Hölkkä", "Joggning", "Jogging")),
                    definition: None,
                },
                Concept {
                    code: "B0718",
                    display: "Walking",
                    names: Some(Names::new("Kävely", "Gång", "Walking")),
                    definition: None,
                },
                Concept {
                    code: "B0719",
                    display: "Yoga",
                    names: Some(Names::new("Jooga", "Yoga", "Yoga")),
                    definition: None,
                },
                Concept {
                    code: "B0720",
                    display: "Running",
                    names: Some(Names::new("Juoksu", "Löpning", "Running")),
                    definition: None,
                },
                Concept {
                    code: "B0721",
                    display: "Stretching",
                    names: Some(Names::new("Venyttely", "Töjning", "Stretching")),
                    definition: None,
                },
                Concept {
                    code: "B0750",
                    display: "Nordic walking",
                    names: Some(Names::new("Sauvakävely", "Stavgång", "Nordic walking")),
                    definition: None,
                },
                Concept {
                    code: "B0755",
                    display: "Pilates",
                    names: Some(Names::new("Pilates", "Pilates", "Pilates")),
                    definition: None,
                },
                Concept {
                    code: "B0756",
                    display: "Asahi",
                    names: Some(Names::new("Asahi", "Asahi", "Asahi")),
                    definition: None,
                },
                Concept {
                    code: "B0852",
                    display: "Home gymnastics",
                    names: Some(Names::new(
                        "Kotivoimistelu",
                        "Hemgymnastik",
                        "Home gymnastics",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B0855",
                    display: "Hula hooping",
                    names: Some(Names::new(
                        "Hulavanteen pyöritys",
                        "Rockring rotation",
                        "Hula hooping",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B0953",
                    display: "Solo dance",
                    names: Some(Names::new("Yksintanssi", "Solodans", "Solo dance")),
                    definition: None,
                },
                Concept {
                    code: "B0954",
                    display: "Partner dance",
                    names: Some(Names::new("Paritanssi", "Pardans", "Partner dance")),
                    definition: None,
                },
                Concept {
                    code: "B1001",
                    display: "Badminton",
                    names: Some(Names::new("Sulkapallo", "Badminton", "Badminton")),
                    definition: None,
                },
                Concept {
                    code: "B1003",
                    display: "Squash",
                    names: Some(Names::new("Squash", "Squash", "Squash")),
                    definition: None,
                },
                Concept {
                    code: "B1005",
                    display: "Tennis",
                    names: Some(Names::new("Tennis", "Tennis", "Tennis")),
                    definition: None,
                },
                Concept {
                    code: "B1006",
                    display: "Padel",
                    names: Some(Names::new("Padel", "Padel", "Padel")),
                    definition: None,
                },
                Concept {
                    code: "B1102",
                    display: "Boccia",
                    names: Some(Names::new("Boccia", "Boccia", "Boccia")),
                    definition: None,
                },
                Concept {
                    code: "B1109",
                    display: "Golf",
                    names: Some(Names::new("Golf", "Golf", "Golf")),
                    definition: None,
                },
                Concept {
                    code: "B1110",
                    display: "Bowling",
                    names: Some(Names::new("Keilailu", "Bowling", "Bowling")),
                    definition: None,
                },
                Concept {
                    code: "B1116",
                    display: "Disc golf",
                    names: Some(Names::new("Frisbeegolf", "Discgolf", "Disc golf")),
                    definition: None,
                },
                Concept {
                    code: "B1306",
                    display: "Kettlebell training",
                    names: Some(Names::new(
                        "Kahvakuulaharjoittelu",
                        "Kettlebellträning",
                        "Kettlebell training",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B1350",
                    display: "Gym training",
                    names: Some(Names::new(
                        "Kuntosaliharjoittelu",
                        "Gymträning",
                        "Gym training",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B1351",
                    display: "Circuit training",
                    names: Some(Names::new(
                        "Kuntopiiri",
                        "Cirkelträning",
                        "Circuit training",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B1504",
                    display: "Orienteering",
                    names: Some(Names::new("Suunnistus", "Orientering", "Orienteering")),
                    definition: None,
                },
                Concept {
                    code: "B1507",
                    display: "Stair climbing",
                    names: Some(Names::new(
                        "Portaiden kiipeäminen",
                        "Trappklättring",
                        "Stair climbing",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B1702",
                    display: "Mountain biking",
                    names: Some(Names::new(
                        "Maastopyöräily",
                        "Terrängcykling",
                        "Mountain biking",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B1706",
                    display: "Cycling",
                    names: Some(Names::new("Pyöräily", "Cykling", "Cycling")),
                    definition: None,
                },
                Concept {
                    code: "B1711",
                    display: "Kick scootering",
                    names: Some(Names::new(
                        "Potkulautailu",
                        "Sparkcykling",
                        "Kick scootering",
                    )),
                    definition: None,
                },
                Concept {
                    code: "B1751",
                    display: "Cycling indoors",
                    names: Some(Names::new(
                        "Pyöräily kuntopyörällä",
                        "Cykling med motionscykel",
                        "Cycling indoors",
                    )),
                    definition: None,
                },
                Concept {
                    code: "D2001",
                    display: "Household work",
                    names: Some(Names::new("Kotityöt", "Hushållsarbete", "Household work")),
                    definition: None,
                },
                Concept {
                    code: "D2002",
                    display: "Yard work",
                    names: Some(Names::new("Pihatyöt", "Gårdsarbete", "Yard work")),
                    definition: None,
                },
                Concept {
                    code: "D2003",
                    display: "Berry or mushroom picking",
                    names: Some(Names::new(
                        "Marjastus tai sienestys",
                        "Bär- eller svampplockning",
                        "Berry or mushroom picking",
                    )),
                    definition: None,
                },
                Concept {
                    code: "D2006",
                    display: "Forest work",
                    names: Some(Names::new("Metsätyöt", "Skogsarbete", "Forest work")),
                    definition: None,
                },
                Concept {
                    code: "C99",
                    display: "Other activity",
                    names: Some(Names::new(
                        "Muu aktiviteetti",
                        "Annan aktivitet",
                        "Other activity",
                    )),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_EXERCISE_INTENSITY,
        id: "fiphr-vs-exerciseintensity",
        name: "fiphr-vs-exerciseintensity",
        title: "Value Set Finnish PHR Exercise Intensity",
        version: "1.0",
        description: "Finnish PHR Exercise Intensity value set",
        includes: &[Include {
            system: urls::LOINC,
            concepts: &[
                Concept {
                    code: "LA20164-2",
                    display: "Light",
                    names: Some(Names::new("Kevyt", "Lätt", "Light")),
                    definition: None,
                },
                Concept {
                    code: "LA20165-9",
                    display: "Moderate",
                    names: Some(Names::new("Reipas", "Rask", "Moderate")),
                    definition: None,
                },
                Concept {
                    code: "LA20166-7",
                    display: "Vigorous",
                    names: Some(Names::new("Rasittava", "Ansträngande", "Vigorous")),
                    definition: None,
                },
            ],
        }],
    },
    ValueSetDecl {
        url: urls::VS_INSULIN_CODE,
        id: "fiphr-vs-insulincode",
        name: "fiphr-vs-insulincode",
        title: "Value Set Finnish PHR Insulin Code ",
        version: "1.0",
        description: "A Finnish PHR value set for the codes to be used with insulin dosing. Includes VNR codes (reference to the national VNR code system) or specific codes to indicate what kind of insulin has been administered.",
        includes: &[
            Include {
                system: urls::CS_VNR,
                concepts: &[],
            },
            Include {
                system: urls::CS_INSULIN_CODE,
                concepts: &[],
            },
        ],
    },
    ValueSetDecl {
        url: urls::VS_CAREPLAN_CATEGORY,
        id: "fiphr-vs-careplancategory",
        name: "fiphr-vs-careplancategory",
        title: "Finnish PHR CarePlan Category value set",
        version: "2.1",
        description: "Indicates type of SelfCarePlan.",
        includes: &[Include {
            system: urls::CS_CAREPLAN_CATEGORY,
            concepts: CAREPLAN_CATEGORIES,
        }],
    },
    ValueSetDecl {
        url: urls::VS_CONSENT_CATEGORY,
        id: "fiphr-vs-consentcategory",
        name: "fiphr-vs-consentcategory",
        title: "Value Set Finnish PHR Consent Category",
        version: "1.0",
        description: "Finnish PHR Consent Category value set.",
        includes: &[Include {
            system: urls::CS_CONSENT_CATEGORY,
            concepts: &[],
        }],
    },
    ValueSetDecl {
        url: urls::VS_CONFIDENTIALITY,
        id: "fiphr-vs-confidentiality",
        name: "fiphr-vs-confidentiality",
        title: "Value Set Finnish PHR Confidentiality",
        version: "1.0",
        description: "Value set for confidentiality codes used in finnish PHR",
        includes: &[Include {
            system: urls::CONFIDENTIALITY,
            concepts: &[
                Concept {
                    code: "R",
                    display: "Restricted",
                    names: Some(Names::new("Kielletty", "Förbjudet", "Restricted")),
                    definition: None,
                },
                Concept {
                    code: "U",
                    display: "Unrestricted",
                    names: Some(Names::new("Sallittu", "Tillåtet", "Unrestricted")),
                    definition: None,
                },
            ],
        }],
    },
];

/// The CarePlan categories: the code system and its value set list the same concepts.
const CAREPLAN_CATEGORIES: &[Concept] = &[
    Concept {
        code: "1",
        display: "Hengitystietulehdus tai -oire",
        names: Some(Names::new(
            "Hengitystietulehdus tai -oire",
            "Luftvägsinfektion eller -symtom",
            "Respiratory infection or symptom",
        )),
        definition: None,
    },
    Concept {
        code: "2",
        display: "Yskä",
        names: Some(Names::new("Yskä", "Hosta", "Cough")),
        definition: None,
    },
    Concept {
        code: "3",
        display: "Virtsatietulehdus tai -oire (18–65v. naiset)",
        names: Some(Names::new(
            "Virtsatietulehdus tai -oire (18–65v. naiset)",
            "Urinvägsinfektion- eller symtom (kvinnor 18–65 år)",
            "Urinary tract infection or symptom (women aged 18–65)",
        )),
        definition: None,
    },
    Concept {
        code: "4",
        display: "Korvan kipu tai lukkoisuus",
        names: Some(Names::new(
            "Korvan kipu tai lukkoisuus",
            "Ont i öronen eller lock för örat",
            "Earache or ear plugging",
        )),
        definition: None,
    },
    Concept {
        code: "5",
        display: "Kurkkukipu tai nieluoire",
        names: Some(Names::new(
            "Kurkkukipu tai nieluoire",
            "Halsont eller svalgsymtom",
            "Sore throat or throat symptom",
        )),
        definition: None,
    },
    Concept {
        code: "6",
        display: "Ripuli",
        names: Some(Names::new("Ripuli", "Diarré", "Diarrhoea")),
        definition: None,
    },
    Concept {
        code: "7",
        display: "Alaselkäkipu tai -vamma",
        names: Some(Names::new(
            "Alaselkäkipu tai -vamma",
            "Ländryggssmärta eller -skada",
            "Lower back pain or injury",
        )),
        definition: None,
    },
    Concept {
        code: "8",
        display: "Närästys",
        names: Some(Names::new("Närästys", "Halsbränna", "Heartburn")),
        definition: None,
    },
    Concept {
        code: "9",
        display: "Olkapään kipu, jäykkyys tai vamma",
        names: Some(Names::new(
            "Olkapään kipu, jäykkyys tai vamma",
            "Smärta, stelhet eller skada i skuldran",
            "Shoulder pain, stiffness or injury",
        )),
        definition: None,
    },
    Concept {
        code: "10",
        display: "Päänsärky",
        names: Some(Names::new("Päänsärky", "Huvudvärk", "Headache")),
        definition: None,
    },
    Concept {
        code: "11",
        display: "Peräaukon seudun oire",
        names: Some(Names::new(
            "Peräaukon seudun oire",
            "Symtom vid ändtarmsöppningen",
            "Anal region symptom",
        )),
        definition: None,
    },
    Concept {
        code: "12",
        display: "Polven oire tai vamma",
        names: Some(Names::new(
            "Polven oire tai vamma",
            "Symtom eller skada i knät",
            "Knee symptom or injury",
        )),
        definition: None,
    },
    Concept {
        code: "13",
        display: "Silmän oire",
        names: Some(Names::new("Silmän oire", "Symtom i öga", "Eye symptom")),
        definition: None,
    },
    Concept {
        code: "14",
        display: "Sukupuolitaudin oire",
        names: Some(Names::new(
            "Sukupuolitaudin oire",
            "Symtom på könssjukdom",
            "Sexually transmitted disease symptom",
        )),
        definition: None,
    },
    Concept {
        code: "15",
        display: "Terveystarkastus",
        names: Some(Names::new(
            "Terveystarkastus",
            "Hälsokontroll",
            "Health check-up",
        )),
        definition: None,
    },
    Concept {
        code: "16",
        display: "Henkilökohtainen apu",
        names: Some(Names::new(
            "Henkilökohtainen apu",
            "Personlig assistans",
            "Personal assistance",
        )),
        definition: None,
    },
    Concept {
        code: "17",
        display: "Liikkuminen kodin ulkopuolella",
        names: Some(Names::new(
            "Liikkuminen kodin ulkopuolella",
            "Mobilitet utanför hemmet",
            "Moving outside the home",
        )),
        definition: None,
    },
    Concept {
        code: "18",
        display: "Maahanmuuttajan hyvinvointi",
        names: Some(Names::new(
            "Maahanmuuttajan hyvinvointi",
            "Invandrarens välbefinnande",
            "Well-being of an immigrant",
        )),
        definition: None,
    },
    Concept {
        code: "19",
        display: "Omaishoidon tuki",
        names: Some(Names::new(
            "Omaishoidon tuki",
            "Stöd för närståendevård",
            "Informal care support",
        )),
        definition: None,
    },
    Concept {
        code: "20",
        display: "Läheishoitajan tarkastus",
        names: Some(Names::new(
            "Läheishoitajan tarkastus",
            "Kontroll för anhörig omsorgsgivare",
            "Check-up of an informal carer",
        )),
        definition: None,
    },
    Concept {
        code: "21",
        display: "Viitosluokkalaisen terveystarkastus, vanhemmat (poistettu)",
        names: Some(Names::new(
            "Viitosluokkalaisen terveystarkastus, vanhemmat (poistettu)",
            "Hälsokontroll för femteklassist, föräldrar (borttagen)",
            "Health check-up of a fifth-grader, parents (removed)",
        )),
        definition: None,
    },
    Concept {
        code: "22",
        display: "Viitosluokkalaisen terveystarkastus, lapsi (poistettu)",
        names: Some(Names::new(
            "Viitosluokkalaisen terveystarkastus, lapsi (poistettu)",
            "Hälsokontroll för femteklassist, barn (borttagen)",
            "Health check-up of a fifth-grader, child (removed)",
        )),
        definition: None,
    },
    Concept {
        code: "23",
        display: "Yleinen hyvinvointikysely (WHOQOL-BREF)",
        names: Some(Names::new(
            "Yleinen hyvinvointikysely (WHOQOL-BREF)",
            "Allmän välfärdsenkät (WHOQOL-BREF)",
            "General well-being survey (WHOQOL-BREF)",
        )),
        definition: None,
    },
    Concept {
        code: "24",
        display: "Elämäntilannekysely (3X10D)",
        names: Some(Names::new(
            "Elämäntilannekysely (3X10D)",
            "Enkät om livssituation (3X10D)",
            "Life-situation survey (3X10D)",
        )),
        definition: None,
    },
    Concept {
        code: "25",
        display: "Opiskeluterveydenhuollon esitiedot",
        names: Some(Names::new(
            "Opiskeluterveydenhuollon esitiedot",
            "Förhandsuppgifter för studerandehälsovården",
            "Preliminary information for student health care",
        )),
        definition: None,
    },
    Concept {
        code: "26",
        display: "Suun terveydentila, lapset ja nuoret",
        names: Some(Names::new(
            "Suun terveydentila, lapset ja nuoret",
            "Munhälsa, barn och unga",
            "Oral health status, children and young persons",
        )),
        definition: None,
    },
    Concept {
        code: "27",
        display: "Omaishoitajan jaksaminen",
        names: Some(Names::new(
            "Omaishoitajan jaksaminen",
            "Närståendevårdarens ork",
            "Family carer ability to cope",
        )),
        definition: None,
    },
    Concept {
        code: "28",
        display: "Puolitoistavuotiaan laaja terveystarkastus",
        names: Some(Names::new(
            "Puolitoistavuotiaan laaja terveystarkastus",
            "Omfattande hälsokontroll för barn, 18 månader",
            "Extensive health check-up of a one-and-a-half-year-old",
        )),
        definition: None,
    },
    Concept {
        code: "29",
        display: "Yötyötä tekevän työterveystarkastus",
        names: Some(Names::new(
            "Yötyötä tekevän työterveystarkastus",
            "Hälsokontroll för nattarbetande",
            "Occupational health check-up of a night worker",
        )),
        definition: None,
    },
    Concept {
        code: "30",
        display: "Kohonnut verenpaine",
        names: Some(Names::new(
            "Kohonnut verenpaine",
            "Hypertoni",
            "High blood pressure",
        )),
        definition: None,
    },
    Concept {
        code: "31",
        display: "Yläkoululaisen terveystarkastus, vanhemmat (poistettu)",
        names: Some(Names::new(
            "Yläkoululaisen terveystarkastus, vanhemmat (poistettu)",
            "Hälsokontroll för högstadieelev, föräldrar (borttagen)",
            "Health check-up of an upper comprehensive school pupil, parents (removed)",
        )),
        definition: None,
    },
    Concept {
        code: "32",
        display: "Viitosluokkalaisen terveystarkastus, vanhemmat",
        names: Some(Names::new(
            "Viitosluokkalaisen terveystarkastus, vanhemmat",
            "Hälsokontroll för femteklassist, föräldrar",
            "Health check-up of a fifth-grader, parents",
        )),
        definition: None,
    },
    Concept {
        code: "33",
        display: "Hampaiden tai suun oire tai vamma",
        names: Some(Names::new(
            "Hampaiden tai suun oire tai vamma",
            "Symtom eller skada i tänder eller mun",
            "Teeth or mouth symptom or injury",
        )),
        definition: None,
    },
    Concept {
        code: "34",
        display: "Suun terveydentila, aikuiset",
        names: Some(Names::new(
            "Suun terveydentila, aikuiset",
            "Munhälsa, vuxna",
            "Oral health status, adults",
        )),
        definition: None,
    },
    Concept {
        code: "35",
        display: "Äitiysneuvolan esitiedot",
        names: Some(Names::new(
            "Äitiysneuvolan esitiedot",
            "Förhandsuppgifter till mödrarådgivningen",
            "Preliminary information for the maternity clinic",
        )),
        definition: None,
    },
    Concept {
        code: "36",
        display: "Hyvinvointitarkastus",
        names: Some(Names::new(
            "Hyvinvointitarkastus",
            "Välfärdsenkät",
            "Well-being check-up",
        )),
        definition: None,
    },
    Concept {
        code: "37",
        display: "Suunnitelma",
        names: Some(Names::new("Suunnitelma", "Plan", "Plan")),
        definition: None,
    },
    Concept {
        code: "38",
        display: "Liikuntaohjelma askeltajille",
        names: Some(Names::new(
            "Liikuntaohjelma askeltajille",
            "Stegprogrammet",
            "Exercise programme for walkers and runners",
        )),
        definition: None,
    },
    Concept {
        code: "39",
        display: "Lääkärintodistus, pyyntö",
        names: Some(Names::new(
            "Lääkärintodistus, pyyntö",
            "Läkarintyg, begäran",
            "Medical certificate, request",
        )),
        definition: None,
    },
    Concept {
        code: "40",
        display: "Diabetes, riskitesti",
        names: Some(Names::new(
            "Diabetes, riskitesti",
            "Diabetes, risktest",
            "Diabetes, risk test",
        )),
        definition: None,
    },
    Concept {
        code: "41",
        display: "Yleinen oirearvio",
        names: Some(Names::new(
            "Yleinen oirearvio",
            "Allmän symtombedömning",
            "General symptom assessment",
        )),
        definition: None,
    },
    Concept {
        code: "42",
        display: "Painonhallinta",
        names: Some(Names::new(
            "Painonhallinta",
            "Viktkontroll",
            "Weight management",
        )),
        definition: None,
    },
    Concept {
        code: "43",
        display: "Tupakoinnin lopettamisen valmennusohjelma",
        names: Some(Names::new(
            "Tupakoinnin lopettamisen valmennusohjelma",
            "Coachningsprogram för att sluta röka",
            "Coaching programme for quitting smoking",
        )),
        definition: None,
    },
    Concept {
        code: "44",
        display: "Terveellinen ravinto -valmennusohjelma",
        names: Some(Names::new(
            "Terveellinen ravinto -valmennusohjelma",
            "Coachningsprogrammet Hälsosam näring",
            "Healthy nutrition coaching programme",
        )),
        definition: None,
    },
    Concept {
        code: "45",
        display: "Univalmennus",
        names: Some(Names::new(
            "Univalmennus",
            "Sömncoachning",
            "Sleep coaching",
        )),
        definition: None,
    },
    Concept {
        code: "46",
        display: "Avoin palvelupyyntö",
        names: Some(Names::new(
            "Avoin palvelupyyntö",
            "Öppen servicebegäran",
            "Open service request",
        )),
        definition: None,
    },
    Concept {
        code: "47",
        display: "Raskausdiabeteksen jälkiseuranta",
        names: Some(Names::new(
            "Raskausdiabeteksen jälkiseuranta",
            "Uppföljning av graviditetsdiabetes",
            "Gestational diabetes follow-up",
        )),
        definition: None,
    },
    Concept {
        code: "48",
        display: "Koronavirustauti",
        names: Some(Names::new(
            "Koronavirustauti",
            "Coronavirusinfektion",
            "Coronavirus disease",
        )),
        definition: None,
    },
];

/// The Observation categories: the code system and its value set list the same concepts.
const OBSERVATION_CATEGORIES: &[Concept] = &[
    Concept {
        code: "nutrition",
        display: "Nutrition",
        names: Some(Names::new("Ravitsemus", "Näringstillstånd", "Nutrition")),
        definition: None,
    },
    Concept {
        code: "urinary-monitoring",
        display: "Urinary monitoring",
        names: Some(Names::new(
            "Virtsan seuranta",
            "Uppföljning av urinen",
            "Urinary monitoring",
        )),
        definition: None,
    },
];
