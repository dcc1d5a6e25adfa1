//! The public application list (kanta.fi's list of wellbeing applications): `/apps` shows the
//! accepted applications in Finnish, Swedish or English with their supplier, platform, the
//! data contents each reads and writes (named from the catalogue in the page's language) and
//! since when they are listed; `/apps.json` (or `/apps` asked for `application/json`) gives
//! the same as JSON.
//!
//! Public: no login, no cookie set, no form. Cacheable by browsers and proxies for a short
//! while (`Cache-Control: public`), but never cached in the server: every request reads the
//! registry, so a suspended or revoked application disappears at the next request.
//!
//! Owns the two routes and their words; what is listed is the registry's decision
//! ([`phr_auth::AuthService::listed_apps`]). Never shows a contact address, a redirect URI or
//! anything else of a registration that is not meant for the public.

use askama::Template;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use phr_auth::{ListedApp, Platform};
use phr_catalog::Catalog;
use serde_json::{Value, json};
use time::OffsetDateTime;

use crate::AppState;
use crate::web::chrome::{LangLink, language_links};
use crate::web::{Cookies, Lang, PageLang, html};

pub const PATH: &str = "/apps";
pub const JSON_PATH: &str = "/apps.json";

/// How long browsers and proxies may keep the list: short, so that a suspension shows
/// everywhere within a minute (the server itself keeps nothing).
pub const CACHE_CONTROL: &str = "public, max-age=60";

pub fn router(state: &AppState) -> Router {
    Router::new()
        .route(PATH, get(page))
        .route(JSON_PATH, get(json_list))
        .layer(axum::middleware::from_fn(crate::web::headers::layer))
        .with_state(state.clone())
}

/// The words of the page.
struct Words {
    title: &'static str,
    intro: &'static str,
    empty: &'static str,
    supplier: &'static str,
    platform: &'static str,
    reads: &'static str,
    writes: &'static str,
    since: &'static str,
    nothing: &'static str,
    unknown: &'static str,
    json_link: &'static str,
    portal_link: &'static str,
    service: &'static str,
    language: &'static str,
    skip: &'static str,
    failed: &'static str,
}

static FI: Words = Words {
    title: "Hyväksytyt hyvinvointisovellukset",
    intro: "Nämä sovellukset ovat läpäisseet yhteistestauksen, ja ne saavat käsitellä vain alla lueteltuja tietosisältöjä. Sovellus voi käyttää tietojasi vasta, kun olet antanut sille luvan.",
    empty: "Yhtään sovellusta ei ole vielä hyväksytty.",
    supplier: "Toimittaja",
    platform: "Alusta",
    reads: "Lukee",
    writes: "Tallentaa",
    since: "Listalla alkaen",
    nothing: "ei mitään",
    unknown: "ei ilmoitettu",
    json_link: "Lista JSON-muodossa",
    portal_link: "Omatietovarantoon",
    service: "Omatietovaranto",
    language: "Kieli",
    skip: "Siirry sisältöön",
    failed: "Listaa ei voitu näyttää juuri nyt. Yritä myöhemmin uudelleen.",
};

static SV: Words = Words {
    title: "Godkända välmåendeapplikationer",
    intro: "Dessa applikationer har klarat den gemensamma testningen och får behandla endast de datainnehåll som anges nedan. En applikation kan använda dina uppgifter först när du har gett den tillstånd.",
    empty: "Ingen applikation har godkänts ännu.",
    supplier: "Leverantör",
    platform: "Plattform",
    reads: "Läser",
    writes: "Sparar",
    since: "På listan sedan",
    nothing: "ingenting",
    unknown: "inte angiven",
    json_link: "Listan i JSON-format",
    portal_link: "Till Egna datalagret",
    service: "Egna datalagret",
    language: "Språk",
    skip: "Gå till innehållet",
    failed: "Listan kunde inte visas just nu. Försök igen senare.",
};

static EN: Words = Words {
    title: "Accepted wellbeing applications",
    intro: "These applications have passed joint testing and may process only the data contents listed below. An application can use your data only after you have given it your permission.",
    empty: "No application has been accepted yet.",
    supplier: "Supplier",
    platform: "Platform",
    reads: "Reads",
    writes: "Stores",
    since: "Listed since",
    nothing: "nothing",
    unknown: "not given",
    json_link: "The list as JSON",
    portal_link: "To your Personal Health Record",
    service: "Personal Health Record",
    language: "Language",
    skip: "Skip to content",
    failed: "The list cannot be shown right now. Please try again later.",
};

fn words(lang: Lang) -> &'static Words {
    match lang {
        Lang::Fi => &FI,
        Lang::Sv => &SV,
        Lang::En => &EN,
    }
}

fn platform_name(platform: Platform, lang: Lang) -> &'static str {
    match (platform, lang) {
        (Platform::Web, Lang::Fi) => "Verkkopalvelu",
        (Platform::Web, Lang::Sv) => "Webbtjänst",
        (Platform::Web, Lang::En) => "Web",
        (Platform::Ios, _) => "iOS",
        (Platform::Android, _) => "Android",
        (Platform::Server, Lang::Fi) => "Palvelin (ei omaa käyttöliittymää)",
        (Platform::Server, Lang::Sv) => "Server (utan eget användargränssnitt)",
        (Platform::Server, Lang::En) => "Server (no user interface of its own)",
    }
}

fn catalog_lang(lang: Lang) -> phr_catalog::Lang {
    match lang {
        Lang::Fi => phr_catalog::Lang::Fi,
        Lang::Sv => phr_catalog::Lang::Sv,
        Lang::En => phr_catalog::Lang::En,
    }
}

/// The name of a content code in `lang` (the code itself if the catalogue no longer has it).
fn content_name(code: &str, lang: Lang) -> String {
    Catalog::get()
        .contents()
        .iter()
        .find(|c| c.kind.key() == code)
        .map_or_else(
            || code.to_string(),
            |c| c.name(catalog_lang(lang)).to_string(),
        )
}

fn date(seconds: i64) -> Option<time::Date> {
    OffsetDateTime::from_unix_timestamp(seconds)
        .ok()
        .map(|t| t.date())
}

fn date_text(seconds: i64, lang: Lang) -> String {
    match date(seconds) {
        Some(d) => match lang {
            Lang::En => format!("{} {} {}", d.day(), d.month(), d.year()),
            Lang::Sv => d.to_string(),
            Lang::Fi => format!("{}.{}.{}", d.day(), d.month() as u8, d.year()),
        },
        None => String::new(),
    }
}

struct Row {
    id: String,
    name: String,
    supplier: String,
    platform: String,
    reads: Vec<String>,
    writes: Vec<String>,
    since: String,
    since_iso: String,
}

#[derive(Template)]
#[template(path = "applist/list.html")]
struct ListPage {
    t: &'static Words,
    lang: &'static str,
    switches: Vec<LangLink>,
    apps: Vec<Row>,
}

#[derive(Template)]
#[template(path = "applist/failed.html")]
struct FailedPage {
    t: &'static Words,
    lang: &'static str,
    switches: Vec<LangLink>,
}

fn row(app: &ListedApp, lang: Lang) -> Row {
    let t = words(lang);
    let names = |f: fn(&phr_auth::AcceptedContent) -> bool| {
        let mut names: Vec<String> = app
            .contents
            .iter()
            .filter(|c| f(c))
            .map(|c| content_name(&c.content, lang))
            .collect();
        names.sort();
        names
    };
    Row {
        id: app.app_id.clone(),
        name: app.name.clone(),
        supplier: app.supplier.clone().unwrap_or_else(|| t.unknown.into()),
        platform: app
            .platform
            .map_or(t.unknown, |p| platform_name(p, lang))
            .to_string(),
        reads: names(|c| c.read),
        writes: names(|c| c.write),
        since: date_text(app.since, lang),
        since_iso: date(app.since).map(|d| d.to_string()).unwrap_or_default(),
    }
}

/// The list as JSON: every name in the three languages, so one document serves every reader.
fn json_body(apps: &[ListedApp]) -> Value {
    let names = |code: &str| {
        json!({
            "fi": content_name(code, Lang::Fi),
            "sv": content_name(code, Lang::Sv),
            "en": content_name(code, Lang::En),
        })
    };
    let contents = |app: &ListedApp, f: fn(&phr_auth::AcceptedContent) -> bool| -> Vec<Value> {
        app.contents
            .iter()
            .filter(|c| f(c))
            .map(|c| json!({"code": c.content, "name": names(&c.content)}))
            .collect()
    };
    json!({
        "applications": apps.iter().map(|app| {
            let mut entry = json!({
                "id": app.app_id,
                "name": app.name,
                "reads": contents(app, |c| c.read),
                "writes": contents(app, |c| c.write),
                "since": date(app.since).map(|d| d.to_string()),
            });
            if let Some(map) = entry.as_object_mut() {
                if let Some(supplier) = &app.supplier {
                    map.insert("supplier".into(), json!(supplier));
                }
                if let Some(platform) = app.platform {
                    map.insert("platform".into(), json!(platform.code()));
                }
            }
            entry
        }).collect::<Vec<_>>(),
    })
}

/// Whether the request asks for JSON rather than a page.
fn wants_json(headers: &HeaderMap) -> bool {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let types: Vec<&str> = accept
        .split(',')
        .map(|t| t.split(';').next().unwrap_or("").trim())
        .collect();
    types
        .iter()
        .any(|t| *t == "application/json" || *t == "application/fhir+json")
        && !types.contains(&"text/html")
}

fn cacheable(mut response: Response, vary: &'static str) -> Response {
    let headers = response.headers_mut();
    headers.insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static(CACHE_CONTROL),
    );
    headers.insert(header::VARY, HeaderValue::from_static(vary));
    response
}

async fn listed(state: &AppState) -> Result<Vec<ListedApp>, String> {
    let auth = state.auth.clone();
    match crate::web::blocking(move || auth.listed_apps()).await {
        Some(Ok(apps)) => Ok(apps),
        Some(Err(e)) => Err(e.to_string()),
        None => Err("the list could not be read".into()),
    }
}

async fn page(
    State(state): State<AppState>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    if wants_json(&headers) {
        return json_response(&state).await;
    }
    let lang = PageLang::of(&query, &headers, Cookies::for_public_url(&state.base_url)).lang;
    let switches = language_links(PATH, &query, lang, &[]);
    let apps = match listed(&state).await {
        Ok(apps) => apps,
        Err(e) => {
            tracing::error!(error = %e, "the public application list failed");
            let page = FailedPage {
                t: words(lang),
                lang: lang.code(),
                switches,
            };
            return match page.render() {
                Ok(body) => html(StatusCode::SERVICE_UNAVAILABLE, body),
                Err(_) => StatusCode::SERVICE_UNAVAILABLE.into_response(),
            };
        }
    };
    let page = ListPage {
        t: words(lang),
        lang: lang.code(),
        switches,
        apps: apps.iter().map(|a| row(a, lang)).collect(),
    };
    match page.render() {
        Ok(body) => cacheable(
            html(StatusCode::OK, body),
            "Accept, Accept-Language, Cookie",
        ),
        Err(e) => {
            tracing::error!(error = %e, "the public application list's template failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
    }
}

async fn json_list(State(state): State<AppState>) -> Response {
    json_response(&state).await
}

async fn json_response(state: &AppState) -> Response {
    match listed(state).await {
        Ok(apps) => {
            let mut response = (StatusCode::OK, json_body(&apps).to_string()).into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            cacheable(response, "Accept")
        }
        Err(e) => {
            tracing::error!(error = %e, "the public application list failed");
            let mut response = (
                StatusCode::SERVICE_UNAVAILABLE,
                json!({"error": "the application list cannot be read right now"}).to_string(),
            )
                .into_response();
            response.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            response
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed() -> ListedApp {
        ListedApp {
            app_id: "steps".into(),
            name: "Askel".into(),
            supplier: Some("Askel Oy".into()),
            platform: Some(Platform::Ios),
            contents: vec![
                phr_auth::AcceptedContent {
                    content: "steps".into(),
                    read: true,
                    write: true,
                    accepted_at: 1_764_892_800,
                },
                phr_auth::AcceptedContent {
                    content: "body-weight".into(),
                    read: true,
                    write: false,
                    accepted_at: 1_764_892_800,
                },
            ],
            since: 1_764_892_800,
        }
    }

    #[test]
    fn rows_name_the_contents_in_the_page_language() {
        let fi = row(&listed(), Lang::Fi);
        assert_eq!(fi.reads, ["Askelmäärä", "Paino"]);
        assert_eq!(fi.writes, ["Askelmäärä"]);
        assert_eq!(fi.since, "5.12.2025");
        let en = row(&listed(), Lang::En);
        assert_eq!(en.writes, ["Steps"]);
        assert_eq!(en.platform, "iOS");
    }

    #[test]
    fn json_names_every_content_in_three_languages() {
        let body = json_body(&[listed()]);
        let app = &body["applications"][0];
        assert_eq!(app["platform"], "ios");
        assert_eq!(app["since"], "2025-12-05");
        assert_eq!(app["writes"][0]["code"], "steps");
        assert_eq!(app["reads"].as_array().map(Vec::len), Some(2));
        assert!(app["writes"][0]["name"]["sv"].is_string());
    }

    #[test]
    fn json_is_chosen_only_when_asked_for_over_html() {
        let mut headers = HeaderMap::new();
        assert!(!wants_json(&headers));
        headers.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
        assert!(wants_json(&headers));
        headers.insert(
            header::ACCEPT,
            HeaderValue::from_static("text/html,application/json;q=0.9"),
        );
        assert!(!wants_json(&headers));
    }
}
