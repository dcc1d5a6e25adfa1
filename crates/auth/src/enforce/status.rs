//! The enforcer's status cache: "is this app / grant / family still active, is this token
//! revoked?". Per process; entries are forgotten when this process changes them and all at
//! once when another process signals a change. Never reads or writes storage.

use std::collections::HashMap;
use std::sync::RwLock;

use super::AppStanding;

#[derive(Default)]
pub(super) struct StatusCache {
    apps: RwLock<HashMap<String, AppStanding>>,
    grants: RwLock<HashMap<String, bool>>,
    families: RwLock<HashMap<String, bool>>,
    /// Revoked access-token ids with their tokens' expiry.
    revoked: RwLock<HashMap<String, i64>>,
}

fn get<V: Clone>(map: &RwLock<HashMap<String, V>>, key: &str) -> Option<V> {
    map.read().ok().and_then(|m| m.get(key).cloned())
}

/// Most entries in one status map: a full map is emptied and refills from storage, so the
/// cache stays bounded whatever the number of applications, grants and families.
const STATUS_CACHE_LIMIT: usize = 65_536;

fn set<V>(map: &RwLock<HashMap<String, V>>, key: &str, value: V) {
    if let Ok(mut m) = map.write() {
        if m.len() >= STATUS_CACHE_LIMIT {
            m.clear();
        }
        m.insert(key.to_owned(), value);
    }
}

fn forget<V>(map: &RwLock<HashMap<String, V>>, key: &str) {
    if let Ok(mut m) = map.write() {
        m.remove(key);
    }
}

fn clear<V>(map: &RwLock<HashMap<String, V>>) {
    if let Ok(mut m) = map.write() {
        m.clear();
    }
}

impl StatusCache {
    pub fn app(&self, app_id: &str) -> Option<AppStanding> {
        get(&self.apps, app_id)
    }
    pub fn set_app(&self, app_id: &str, value: AppStanding) {
        set(&self.apps, app_id, value);
    }
    pub fn forget_app(&self, app_id: &str) {
        forget(&self.apps, app_id);
    }

    pub fn grant(&self, grant_id: &str) -> Option<bool> {
        get(&self.grants, grant_id)
    }
    pub fn set_grant(&self, grant_id: &str, active: bool) {
        set(&self.grants, grant_id, active);
    }
    pub fn forget_grant(&self, grant_id: &str) {
        forget(&self.grants, grant_id);
    }

    pub fn family(&self, family_id: &str) -> Option<bool> {
        get(&self.families, family_id)
    }
    pub fn set_family(&self, family_id: &str, active: bool) {
        set(&self.families, family_id, active);
    }
    pub fn forget_family(&self, family_id: &str) {
        forget(&self.families, family_id);
    }

    /// Whether a token id is revoked; a poisoned lock counts as revoked (fail closed).
    pub fn is_revoked(&self, jti: &str) -> bool {
        self.revoked
            .read()
            .map(|r| r.contains_key(jti))
            .unwrap_or(true)
    }
    pub fn add_revoked(&self, ids: impl IntoIterator<Item = (String, i64)>) {
        if let Ok(mut r) = self.revoked.write() {
            r.extend(ids);
        }
    }
    pub fn prune_revoked(&self, now: i64) {
        if let Ok(mut r) = self.revoked.write() {
            r.retain(|_, exp| *exp >= now);
        }
    }

    /// Forgets every status (revocations stay: they only ever grow until expiry).
    pub fn forget_all(&self) {
        clear(&self.apps);
        clear(&self.grants);
        clear(&self.families);
    }
}
