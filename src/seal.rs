//! Seals the state offhours keeps in tags, so that only offhours can write it (pure).
//!
//! Anyone who can tag a group in a member account writes data offhours reads and then acts
//! on with its own, broader permissions. The one tag that can make offhours *add* capacity
//! is the saved size it restores a group to, so that value carries a keyed MAC
//! (HMAC-SHA256, RFC 2104) over the group's ARN and the size: `min=1 max=4 desired=2
//! mac=<32 hex>`. The key comes from an environment variable or a file (like the webhook
//! URL), never from the config text, and is never printed. The ARN holds the account, the
//! region, the group's name and a UUID AWS gives each group, so a sealed value cannot be
//! moved to another group, nor to a new group of the same name.
//!
//! A value that does not verify counts as absent: it is reported and never acted on. What a
//! sealed value still allows is a size offhours itself once recorded for that very group.

use std::fmt;

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use crate::capacity::Capacity;

/// The fewest key bytes accepted (128 bits).
pub const MIN_KEY_BYTES: usize = 16;

/// The key that seals offhours' state tags.
#[derive(Clone, PartialEq, Eq)]
pub struct StateKey(Vec<u8>);

impl fmt::Debug for StateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("StateKey(<redacted>)")
    }
}

/// Why a key could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// Too short to be a key.
    #[error(
        "the state key from {origin} has {len} bytes; at least {MIN_KEY_BYTES} are needed (e.g. `openssl rand -hex 32`)"
    )]
    TooShort {
        /// Where it came from (the variable's or the file's name, never its content).
        origin: String,
        /// Its length.
        len: usize,
    },
    /// The file could not be read.
    #[error("cannot read the state key file {path}: {error}")]
    File {
        /// The file.
        path: String,
        /// Why.
        error: String,
    },
}

impl StateKey {
    /// A key from raw bytes.
    pub fn new(bytes: &[u8], source: &str) -> Result<StateKey, KeyError> {
        if bytes.len() < MIN_KEY_BYTES {
            return Err(KeyError::TooShort {
                origin: source.to_string(),
                len: bytes.len(),
            });
        }
        Ok(StateKey(bytes.to_vec()))
    }

    /// The key from the environment variable `env` (if set and not empty), else from
    /// `file`; `None` when neither gives one. Surrounding white space is not part of it.
    pub fn load(env: Option<&str>, file: Option<&std::path::Path>) -> Result<Option<StateKey>, KeyError> {
        if let Some(var) = env
            && let Ok(v) = std::env::var(var)
            && !v.trim().is_empty()
        {
            return StateKey::new(v.trim().as_bytes(), &format!("${var}")).map(Some);
        }
        if let Some(path) = file {
            let v = std::fs::read_to_string(path).map_err(|e| KeyError::File {
                path: path.display().to_string(),
                error: e.to_string(),
            })?;
            return StateKey::new(v.trim().as_bytes(), &path.display().to_string()).map(Some);
        }
        Ok(None)
    }

    fn mac(&self, purpose: &str, resource: &str, value: &str) -> Hmac<Sha256> {
        let mut m = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0).expect("HMAC takes a key of any length");
        // Length-prefixed fields: no two (purpose, resource, value) triples share an input.
        for part in [purpose, resource, value] {
            m.update(&(part.len() as u64).to_be_bytes());
            m.update(part.as_bytes());
        }
        m
    }

    /// The MAC of `value` for `resource`, for `purpose` (the tag key), as 32 hex digits.
    #[must_use]
    pub fn seal(&self, purpose: &str, resource: &str, value: &str) -> String {
        let tag = self.mac(purpose, resource, value).finalize().into_bytes();
        tag.iter().take(16).map(|b| format!("{b:02x}")).collect()
    }

    /// Whether `mac` (as [`StateKey::seal`] writes it) seals `value` for `resource`, compared
    /// in constant time.
    #[must_use]
    pub fn verify(&self, purpose: &str, resource: &str, value: &str, mac: &str) -> bool {
        let Some(bytes) = hex(mac) else { return false };
        bytes.len() == 16 && self.mac(purpose, resource, value).verify_truncated_left(&bytes).is_ok()
    }
}

fn hex(s: &str) -> Option<Vec<u8>> {
    if !s.len().is_multiple_of(2) || !s.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).ok())
        .collect()
}

/// The tag offhours keeps a group's saved size in.
const PURPOSE: &str = crate::model::TAG_SAVED;

/// A saved-size tag value, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Saved {
    /// No tag.
    Absent,
    /// Sealed by offhours for this group.
    Sealed(Capacity),
    /// Written by an earlier offhours without a seal: trusted only where it agrees with
    /// another record of offhours' (see `plan::groups`).
    Unsealed(Capacity),
    /// Not offhours' (a seal that does not verify, or one offhours cannot check without
    /// its key): never acted on.
    Unverified(Capacity, String),
    /// Not a size at all.
    Invalid(String),
}

/// The sealed tag value of a group's saved size: `min=1 max=4 desired=2 mac=<hex>`.
#[must_use]
pub fn seal_capacity(key: &StateKey, arn: &str, c: Capacity) -> String {
    let size = c.to_string();
    format!("{size} mac={}", key.seal(PURPOSE, arn, &size))
}

/// Reads a group's saved-size tag value.
#[must_use]
pub fn read_capacity(key: Option<&StateKey>, arn: &str, value: Option<&str>) -> Saved {
    let Some(value) = value else { return Saved::Absent };
    let (size, mac) = match value.trim().rsplit_once(" mac=") {
        Some((size, mac)) => (size.trim(), Some(mac.trim())),
        None => (value.trim(), None),
    };
    let c: Capacity = match size.parse() {
        Ok(c) => c,
        Err(e) => return Saved::Invalid(e.to_string()),
    };
    match (mac, key) {
        (None, _) => Saved::Unsealed(c),
        (Some(_), None) => Saved::Unverified(c, "offhours has no state key to check its seal".into()),
        (Some(_), Some(_)) if arn.is_empty() => Saved::Unverified(c, "the group's ARN is unknown".into()),
        (Some(m), Some(k)) if k.verify(PURPOSE, arn, &c.to_string(), m) => Saved::Sealed(c),
        (Some(_), Some(_)) => Saved::Unverified(
            c,
            "its seal does not verify: not written by offhours for this group".into(),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:autoscaling:us-east-1:111122223333:autoScalingGroup:6d1f3e2a-0000-4000-8000-000000000001:autoScalingGroupName/web";

    fn key(s: &str) -> StateKey {
        StateKey::new(s.as_bytes(), "test").unwrap()
    }

    fn size(min: i32, max: i32, desired: i32) -> Capacity {
        Capacity { min, max, desired }
    }

    #[test]
    fn a_sealed_size_reads_back_only_for_its_group_and_key() {
        let k = key("0123456789abcdef0123");
        let v = seal_capacity(&k, ARN, size(1, 4, 2));
        assert!(v.starts_with("min=1 max=4 desired=2 mac="), "{v}");
        assert_eq!(v.len(), "min=1 max=4 desired=2 mac=".len() + 32);
        assert!(
            v.chars().all(crate::schedule::expr::is_tag_char),
            "a valid tag value: {v}"
        );
        assert_eq!(read_capacity(Some(&k), ARN, Some(&v)), Saved::Sealed(size(1, 4, 2)));
        // Moved to another group, or to a new group of the same name (another UUID).
        let other = ARN.replace("000000000001", "000000000002");
        assert!(matches!(
            read_capacity(Some(&k), &other, Some(&v)),
            Saved::Unverified(..)
        ));
        // Another key.
        assert!(matches!(
            read_capacity(Some(&key("another-key-of-16+")), ARN, Some(&v)),
            Saved::Unverified(..)
        ));
        // No key: cannot be checked, so not trusted.
        assert!(matches!(read_capacity(None, ARN, Some(&v)), Saved::Unverified(..)));
    }

    #[test]
    fn a_forged_size_under_a_copied_seal_does_not_verify() {
        let k = key("0123456789abcdef0123");
        let v = seal_capacity(&k, ARN, size(1, 1, 1));
        let mac = v.rsplit_once(" mac=").unwrap().1;
        for forged in [
            format!("min=0 max=5000 desired=5000 mac={mac}"),
            format!("min=1 max=1 desired=1 mac={}", &mac[..31]),
            format!("min=1 max=1 desired=1 mac={mac}00"),
            format!("min=1 max=1 desired=1 mac={}", mac.to_uppercase().replace('A', "G")),
            "min=0 max=5000 desired=5000 mac=".to_string(),
        ] {
            assert!(
                matches!(read_capacity(Some(&k), ARN, Some(&forged)), Saved::Unverified(..)),
                "{forged}"
            );
        }
        assert_eq!(
            read_capacity(Some(&k), ARN, Some("min=1 max=4 desired=2")),
            Saved::Unsealed(size(1, 4, 2))
        );
        assert!(matches!(read_capacity(Some(&k), ARN, Some("lots")), Saved::Invalid(_)));
        assert_eq!(read_capacity(Some(&k), ARN, None), Saved::Absent);
    }

    #[test]
    fn the_mac_is_hmac_sha256_over_length_prefixed_fields() {
        // An oracle written out by hand from RFC 2104 with the sha2 crate alone.
        use sha2::Digest;
        let k = b"0123456789abcdef0123";
        let msg: Vec<u8> = ["p", "r", "v"]
            .iter()
            .flat_map(|s| (s.len() as u64).to_be_bytes().into_iter().chain(s.bytes()))
            .collect();
        let mut block = [0u8; 64];
        block[..k.len()].copy_from_slice(k);
        let pad = |x: u8| block.iter().map(|b| b ^ x).collect::<Vec<u8>>();
        let inner = sha2::Sha256::digest([pad(0x36), msg].concat());
        let outer = sha2::Sha256::digest([pad(0x5c), inner.to_vec()].concat());
        let want: String = outer.iter().take(16).map(|b| format!("{b:02x}")).collect();
        assert_eq!(key("0123456789abcdef0123").seal("p", "r", "v"), want);
    }

    #[test]
    fn short_keys_are_refused_and_the_key_is_never_printed() {
        assert!(StateKey::new(b"short", "$X").unwrap_err().to_string().contains("$X"));
        let k = key("a-secret-state-key");
        assert!(!format!("{k:?}").contains("secret"));
    }
}
