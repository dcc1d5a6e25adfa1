//! Server configuration: defaults, overridden by an optional TOML file, then by flags and
//! environment variables (the CLI does that merge).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    pub listen: SocketAddr,
    /// Folder holding the database files (with `database`: only files of this node, such as
    /// audit records that could not reach the database).
    pub data: PathBuf,
    /// A PostgreSQL URL (`postgres://user@host/db`): the FHIR store and all authorization
    /// state live in that database, so any number of nodes can serve it. Without it, SQLite
    /// files in `data`.
    pub database: Option<String>,
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
    /// Reverse proxies (addresses, or networks like `10.0.0.0/8`) whose `Forwarded` /
    /// `X-Forwarded-For` header names the client in the audit log. From any other peer the
    /// header is ignored and the peer's own address is recorded.
    pub trusted_proxies: TrustedProxies,
    /// Authorization: OAuth 2.0 / SMART (`[auth]` table). `data_dir` and `issuer` are set
    /// from `data` and the public URL.
    pub auth: phr_auth::AuthConfig,
    /// Sandbox retention (Kanta's quarterly deletion of data older than three months).
    pub retention: phr_service::retention::RetentionConfig,
    /// Folders of extra conformance resources (StructureDefinitions, ValueSets, CodeSystems
    /// as JSON) loaded over the catalogue, e.g. a newer official Kanta release.
    pub packages: Vec<PathBuf>,
    /// Browser apps on other origins (`[cors]` table).
    pub cors: crate::web::cors::CorsConfig,
    /// Budgets, requests in flight, timeouts, drain on shutdown (`[limits]` table).
    pub limits: crate::limits::LimitsConfig,
    /// HTTPS and application client certificates (`[tls]` table).
    pub tls: crate::tls::TlsConfig,
    /// Memory the storage engine may keep (`[store]` table).
    pub store: StoreSettings,
}

/// What the storage engine may hold in memory: every cache and map has a size here.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreSettings {
    /// SQLite: page cache of the one writer connection, MiB.
    pub writer_cache_mib: u32,
    /// SQLite: page cache of each reader connection, MiB.
    pub reader_cache_mib: u32,
    /// SQLite: most reader connections open at once (reads beyond wait for one).
    pub readers: u32,
    /// SQLite: MiB of the database file each connection reads through a memory map
    /// (0: none). Mapped pages are the kernel's page cache, shared and reclaimable, but
    /// they count in the process's resident memory while mapped.
    pub mmap_mib: u32,
    /// PostgreSQL: most connections this node opens for the FHIR store.
    pub pool_size: u32,
}

impl Default for StoreSettings {
    fn default() -> Self {
        let sqlite = phr_store::sqlite::StoreConfig::default();
        StoreSettings {
            writer_cache_mib: u32::try_from(sqlite.writer_cache_mib).unwrap_or(u32::MAX),
            reader_cache_mib: u32::try_from(sqlite.reader_cache_mib).unwrap_or(u32::MAX),
            readers: u32::try_from(sqlite.readers).unwrap_or(u32::MAX),
            mmap_mib: u32::try_from(sqlite.mmap_bytes >> 20).unwrap_or(u32::MAX),
            pool_size: 16,
        }
    }
}

impl StoreSettings {
    pub fn check(&self) -> Result<(), String> {
        if self.readers == 0 || self.pool_size == 0 {
            return Err("store.readers and store.pool_size must be at least 1".into());
        }
        Ok(())
    }

    /// The SQLite engine's configuration with these sizes.
    pub fn sqlite(&self) -> phr_store::sqlite::StoreConfig {
        phr_store::sqlite::StoreConfig {
            writer_cache_mib: i64::from(self.writer_cache_mib),
            reader_cache_mib: i64::from(self.reader_cache_mib),
            readers: self.readers as usize,
            mmap_bytes: u64::from(self.mmap_mib) << 20,
            ..phr_store::sqlite::StoreConfig::default()
        }
    }

    /// The PostgreSQL engine's configuration for `url` with these sizes.
    pub fn postgres(&self, url: &str) -> phr_store::postgres::PostgresConfig {
        phr_store::postgres::PostgresConfig {
            pool_size: self.pool_size as usize,
            ..phr_store::postgres::PostgresConfig::new(url)
        }
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data: PathBuf::from("./phr-data"),
            database: None,
            public_url: None,
            open_sandbox: false,
            i_know_this_is_open: false,
            max_body_bytes: 5 * 1024 * 1024,
            max_bundle_entries: 300,
            default_page_size: 50,
            max_page_size: 1000,
            request_log: true,
            trusted_proxies: TrustedProxies::default(),
            auth: phr_auth::AuthConfig::default(),
            retention: phr_service::retention::RetentionConfig::default(),
            packages: Vec::new(),
            cors: crate::web::cors::CorsConfig::default(),
            limits: crate::limits::LimitsConfig::default(),
            tls: crate::tls::TlsConfig::default(),
            store: StoreSettings::default(),
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
        self.cors.check().map_err(ConfigError::Invalid)?;
        self.limits.check().map_err(ConfigError::Invalid)?;
        self.tls.check().map_err(ConfigError::Invalid)?;
        self.store.check().map_err(ConfigError::Invalid)?;
        Ok(())
    }

    /// The base URL without a trailing slash.
    pub fn base_url(&self) -> String {
        match &self.public_url {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if self.tls.enabled() => format!("https://{}", self.listen),
            None => format!("http://{}", self.listen),
        }
    }

    /// The FHIR base URL: the base URL and the FHIR API's path.
    pub fn fhir_base_url(&self) -> String {
        format!("{}{}", self.base_url(), crate::fhir::BASE_PATH)
    }

    /// The application core's settings.
    pub fn service_settings(&self) -> phr_service::Settings {
        phr_service::Settings {
            base_url: self.fhir_base_url(),
            default_page_size: self.default_page_size,
            max_page_size: self.max_page_size,
            max_bundle_entries: self.max_bundle_entries,
        }
    }

    /// The authorization server's settings: the `[auth]` table, in this data folder, issuing
    /// tokens for this server's FHIR base.
    pub fn auth_config(&self) -> phr_auth::AuthConfig {
        let mut auth = self.auth.clone();
        auth.data_dir = self.data.clone();
        auth.client_certificates = self.tls.reads_client_certificates();
        crate::oauth::configure(&mut auth, &self.base_url(), crate::fhir::BASE_PATH);
        auth
    }
}

/// The file in the data folder where `phr serve` records the public base URL it serves at,
/// so that the operator's commands (`phr token` above all: a token names its issuer) act for
/// the running server without being told its URL again.
pub const PUBLIC_URL_FILE: &str = "public-url";

/// Records `base_url` as the public base URL of the server serving `data`.
pub fn record_public_url(data: &Path, base_url: &str) -> std::io::Result<()> {
    let path = data.join(PUBLIC_URL_FILE);
    let partial = data.join(format!("{PUBLIC_URL_FILE}.new"));
    std::fs::write(&partial, format!("{base_url}\n"))?;
    std::fs::rename(partial, path)
}

/// The public base URL a server recorded in `data`, if any.
pub fn recorded_public_url(data: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data.join(PUBLIC_URL_FILE)).ok()?;
    let url = text.trim();
    (!url.is_empty()).then(|| url.to_owned())
}

/// The trusted reverse proxies: addresses and networks.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(try_from = "Vec<String>")]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// Parses `192.0.2.1`, `10.0.0.0/8`, `2001:db8::/32`.
    pub fn parse(list: &[String]) -> Result<Self, String> {
        list.iter()
            .map(|text| {
                let (address, prefix) = match text.split_once('/') {
                    Some((a, p)) => (a, Some(p)),
                    None => (text.as_str(), None),
                };
                let address: IpAddr = address.trim().parse().map_err(|_| {
                    format!("trusted_proxies: '{text}' is not an IP address or network")
                })?;
                let max = if address.is_ipv4() { 32 } else { 128 };
                let prefix = match prefix {
                    None => max,
                    Some(p) => p
                        .trim()
                        .parse::<u8>()
                        .ok()
                        .filter(|p| *p <= max)
                        .ok_or_else(|| {
                            format!("trusted_proxies: '{text}' has a prefix length above {max}")
                        })?,
                };
                Ok((address, prefix))
            })
            .collect::<Result<Vec<_>, String>>()
            .map(TrustedProxies)
    }

    /// Whether `address` is one of the proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = match address {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
            v4 => v4,
        };
        self.0
            .iter()
            .any(|(network, prefix)| match (network, address) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    let mask = u32::MAX.checked_shl(32 - u32::from(*prefix)).unwrap_or(0);
                    u32::from(*n) & mask == u32::from(a) & mask
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => {
                    let mask = u128::MAX.checked_shl(128 - u32::from(*prefix)).unwrap_or(0);
                    u128::from(*n) & mask == u128::from(a) & mask
                }
                _ => false,
            })
    }
}

impl TryFrom<Vec<String>> for TrustedProxies {
    type Error = String;
    fn try_from(list: Vec<String>) -> Result<Self, String> {
        TrustedProxies::parse(&list)
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
    fn trusted_proxies_are_addresses_and_networks() {
        let config: Config = toml::from_str(
            "trusted_proxies = [\"10.0.0.0/8\", \"192.0.2.1\", \"2001:db8::/32\"]\n",
        )
        .unwrap();
        let t = &config.trusted_proxies;
        assert!(t.contains("10.200.3.4".parse().unwrap()));
        assert!(t.contains("::ffff:10.1.1.1".parse().unwrap()));
        assert!(t.contains("192.0.2.1".parse().unwrap()));
        assert!(!t.contains("192.0.2.2".parse().unwrap()));
        assert!(t.contains("2001:db8:1::5".parse().unwrap()));
        assert!(!t.contains("2001:db9::5".parse().unwrap()));
        for bad in [
            "trusted_proxies = [\"10.0.0.0/33\"]",
            "trusted_proxies = [\"proxy\"]",
        ] {
            assert!(toml::from_str::<Config>(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_public_url_is_recorded_in_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(recorded_public_url(dir.path()), None);
        record_public_url(dir.path(), "https://phr.example.fi").unwrap();
        assert_eq!(
            recorded_public_url(dir.path()).as_deref(),
            Some("https://phr.example.fi")
        );
    }

    #[test]
    fn toml_rejects_unknown_keys() {
        let err = toml::from_str::<Config>("listen = \"127.0.0.1:1\"\nlisen = 3\n").unwrap_err();
        assert!(err.to_string().contains("lisen"));
    }

    #[test]
    fn store_sizes_come_from_the_store_table_and_reach_the_engines() {
        let config: Config = toml::from_str(
            "[store]\nwriter_cache_mib = 48\nreader_cache_mib = 4\nreaders = 3\nmmap_mib = 0\npool_size = 5\n",
        )
        .unwrap();
        config.check().unwrap();
        let sqlite = config.store.sqlite();
        assert_eq!(
            (
                sqlite.writer_cache_mib,
                sqlite.reader_cache_mib,
                sqlite.readers,
                sqlite.mmap_bytes
            ),
            (48, 4, 3, 0)
        );
        assert_eq!(config.store.postgres("postgres://x/y").pool_size, 5);
        let defaults = Config::default().store.sqlite();
        let engine = phr_store::sqlite::StoreConfig::default();
        assert_eq!(
            (
                defaults.writer_cache_mib,
                defaults.reader_cache_mib,
                defaults.mmap_bytes
            ),
            (
                engine.writer_cache_mib,
                engine.reader_cache_mib,
                engine.mmap_bytes
            )
        );
        assert!(toml::from_str::<Config>("[store]\ncache = 1\n").is_err());
        for bad in [
            "[store]\nreaders = 0\n",
            "[store]\npool_size = 0\n",
            "[limits]\nblocking_threads = 0\n",
        ] {
            let config: Config = toml::from_str(bad).unwrap();
            assert!(config.check().is_err(), "{bad}");
        }
    }
}
