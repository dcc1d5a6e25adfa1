//! Server configuration: defaults, overridden by an optional TOML file, then by flags and
//! environment variables (the CLI does that merge).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder holding the database files.
    pub data: PathBuf,
    /// The public base URL clients see (for `Location`, `fullUrl` and links). Defaults to
    /// `http://<listen>`.
    pub public_url: Option<String>,
    /// Serve the FHIR API without authentication (Kanta's open sandbox).
    pub open_sandbox: bool,
    /// Allow `open_sandbox` on a non-loopback address.
    pub i_know_this_is_open: bool,
    /// Largest accepted request body, in bytes.
    pub max_body_bytes: usize,
    /// Most entries accepted in one batch or transaction Bundle.
    pub max_bundle_entries: usize,
    /// Search page size when `_count` is absent, and the largest `_count` honoured.
    pub default_page_size: usize,
    pub max_page_size: usize,
    /// One JSON log line per request (method, route template, status, duration).
    pub request_log: bool,
    /// Authorization: OAuth 2.0 / SMART (`[auth]` table). `data_dir` and `issuer` are set
    /// from `data` and the public URL.
    pub auth: phr_auth::AuthConfig,
    /// Sandbox retention (Kanta's quarterly deletion of data older than three months).
    pub retention: crate::retention::RetentionConfig,
    /// Folders of extra conformance resources (StructureDefinitions, ValueSets, CodeSystems
    /// as JSON) loaded over the catalogue, e.g. a newer official Kanta release.
    pub packages: Vec<PathBuf>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./phr-data"),
            public_url: None,
            open_sandbox: false,
            i_know_this_is_open: false,
            max_body_bytes: 5 * 1024 * 1024,
            max_bundle_entries: 300,
            default_page_size: 50,
            max_page_size: 1000,
            request_log: true,
            auth: phr_auth::AuthConfig::default(),
            retention: crate::retention::RetentionConfig::default(),
            packages: Vec::new(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: toml::de::Error,
    },
    #[error(
        "--open-sandbox serves health data without authentication; refusing to listen on \
         non-loopback address {0} (add --i-know-this-is-open if that is really what you want)"
    )]
    OpenOnNetwork(SocketAddr),
    #[error("{0}")]
    Invalid(String),
}

impl Config {
    pub fn from_toml_file(path: &std::path::Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        toml::from_str(&text).map_err(|source| ConfigError::Parse {
            path: path.to_owned(),
            source,
        })
    }

    /// Checks rules that span several settings.
    pub fn check(&self) -> Result<(), ConfigError> {
        if self.open_sandbox && !self.listen.ip().is_loopback() && !self.i_know_this_is_open {
            return Err(ConfigError::OpenOnNetwork(self.listen));
        }
        if self.max_page_size == 0 || self.default_page_size == 0 {
            return Err(ConfigError::Invalid("page sizes must be at least 1".into()));
        }
        if self.default_page_size > self.max_page_size {
            return Err(ConfigError::Invalid(
                "default_page_size must not exceed max_page_size".into(),
            ));
        }
        if self.max_bundle_entries == 0 {
            return Err(ConfigError::Invalid(
                "max_bundle_entries must be at least 1".into(),
            ));
        }
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None => format!("http://{}", self.listen),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_sandbox_refuses_network_address_without_override() {
        let mut config = Config {
            open_sandbox: true,
            listen: "0.0.0.0:8080".parse().unwrap(),
            ..Config::default()
        };
        assert!(matches!(config.check(), Err(ConfigError::OpenOnNetwork(_))));
        config.i_know_this_is_open = true;
        assert!(config.check().is_ok());
    }

    #[test]
    fn open_sandbox_on_loopback_is_fine() {
        let config = Config {
            open_sandbox: true,
            ..Config::default()
        };
        assert!(config.check().is_ok());
    }

    #[test]
    fn toml_rejects_unknown_keys() {
        let err = toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        assert!(err.to_string().contains("lisen"));
    }
}
