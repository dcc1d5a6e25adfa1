//! A form-posting browser for the portal and OAuth pages: cookies, redirects, the sandbox
//! login with the terms of use.

use std::collections::HashMap;

use reqwest::StatusCode;
use reqwest::blocking::Client;

use super::Server;

pub struct Browser {
    pub client: Client,
    pub root: String,
    pub cookies: HashMap<String, String>,
    pub set_cookies: Vec<String>,
}

pub struct Page {
    pub status: StatusCode,
    pub location: Option<String>,
    pub csp: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Browser {
    pub fn new(server: &Server) -> Browser {
        Browser {
            client: Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(std::time::Duration::from_secs(120))
                .build()
                .expect("client"),
            root: server.root.clone(),
            cookies: HashMap::new(),
            set_cookies: Vec::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        if path.starts_with("http") {
            path.to_string()
        } else {
            format!("{}{path}", self.root)
        }
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    fn finish(&mut self, response: reqwest::blocking::Response) -> Page {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or("").to_string();
            if let Some((pair, _)) = text.split_once(';')
                && let Some((k, v)) = pair.split_once('=')
            {
                if v.is_empty() {
                    self.cookies.remove(k);
                } else {
                    self.cookies.insert(k.to_string(), v.to_string());
                }
            }
            self.set_cookies.push(text);
        }
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        Page {
            status: response.status(),
            location: header("location"),
            csp: header("content-security-policy"),
            headers: response.headers().clone(),
            body: response.text().unwrap_or_default(),
        }
    }

    pub fn get(&mut self, path: &str) -> Page {
        let response = self
            .client
            .get(self.url(path))
            .header("cookie", self.cookie_header())
            .header("accept-language", "en")
            .send()
            .expect("GET");
        self.finish(response)
    }

    pub fn post(&mut self, path: &str, form: &[(&str, &str)]) -> Page {
        let response = self
            .client
            .post(self.url(path))
            .header("cookie", self.cookie_header())
            .header("accept-language", "en")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(
                url::form_urlencoded::Serializer::new(String::new())
                    .extend_pairs(form)
                    .finish(),
            )
            .send()
            .expect("POST");
        self.finish(response)
    }

    /// GET, following redirects; every location passed is returned too.
    pub fn follow(&mut self, path: &str, seen: &mut Vec<String>) -> Page {
        let mut page = self.get(path);
        for _ in 0..10 {
            match page.location.clone() {
                Some(next) if page.status.is_redirection() => {
                    seen.push(next.clone());
                    page = self.get(&next);
                }
                _ => break,
            }
        }
        page
    }

    /// Logs in through the sandbox identity provider; accepts the terms on a first visit.
    pub fn login(&mut self, hetu: &str) -> Vec<String> {
        let mut seen = Vec::new();
        let page = self.follow("/portal/login", &mut seen);
        assert_eq!(page.status, StatusCode::OK, "login page: {}", page.body);
        let csrf = csrf(&page.body);
        let mut page = self.post("/oauth/login", &[("csrf", &csrf), ("hetu", hetu)]);
        if let Some(next) = page.location.clone() {
            seen.push(next.clone());
            page = self.follow(&next, &mut seen);
        }
        if page.body.contains("action=\"/oauth/terms\"") {
            let csrf = csrf_of(&page.body);
            let next = self.post("/oauth/terms", &[("csrf", &csrf), ("decision", "accept")]);
            let location = next.location.expect("terms redirect");
            seen.push(location.clone());
            page = self.follow(&location, &mut seen);
        }
        assert_eq!(page.status, StatusCode::OK);
        assert!(
            page.body.contains("Your wellbeing data"),
            "overview after login: {}",
            page.body
        );
        seen
    }
}

pub fn csrf_of(html: &str) -> String {
    let start = html.find("name=\"csrf\" value=\"").expect("a CSRF field") + 19;
    html[start..]
        .split('"')
        .next()
        .expect("csrf value")
        .to_string()
}

pub fn csrf(html: &str) -> String {
    csrf_of(html)
}
