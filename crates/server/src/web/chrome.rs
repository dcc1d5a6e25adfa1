//! The frame every page shares (the `web/*.html` template parts): the language switch, which
//! links to the same page in each language, keeping the page's other query parameters.

use super::Lang;

/// One entry of the language switch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LangLink {
    pub code: &'static str,
    /// The language's own name.
    pub name: &'static str,
    pub href: String,
    pub current: bool,
}

/// The language switch of the page at `path` with `query`, shown in `current`. Parameters
/// named in `drop` (one-time notices, say) are not carried over.
pub fn language_links(
    path: &str,
    query: &[(String, String)],
    current: Lang,
    drop: &[&str],
) -> Vec<LangLink> {
    let kept: Vec<&(String, String)> = query
        .iter()
        .filter(|(k, _)| k != "lang" && k != "ui_locales" && !drop.contains(&k.as_str()))
        .collect();
    Lang::ALL
        .iter()
        .map(|lang| {
            let mut q = url::form_urlencoded::Serializer::new(String::new());
            for (k, v) in &kept {
                q.append_pair(k, v);
            }
            q.append_pair("lang", lang.code());
            LangLink {
                code: lang.code(),
                name: lang.native_name(),
                href: format!("{path}?{}", q.finish()),
                current: *lang == current,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_keep_the_page_and_its_parameters() {
        let query = vec![
            ("kind".to_string(), "bp a".to_string()),
            ("lang".to_string(), "fi".to_string()),
            ("msg".to_string(), "saved".to_string()),
        ];
        let links = language_links("/portal/data", &query, Lang::Sv, &["msg"]);
        let hrefs: Vec<&str> = links.iter().map(|l| l.href.as_str()).collect();
        assert_eq!(
            hrefs,
            [
                "/portal/data?kind=bp+a&lang=fi",
                "/portal/data?kind=bp+a&lang=sv",
                "/portal/data?kind=bp+a&lang=en"
            ]
        );
        assert_eq!(
            links
                .iter()
                .filter(|l| l.current)
                .map(|l| l.code)
                .collect::<Vec<_>>(),
            ["sv"]
        );
    }
}
