//! Splitting an organization between replicas: `--shard INDEX/COUNT` keeps the accounts
//! whose stable hash falls in this replica's slot.

use std::fmt;
use std::str::FromStr;

use sha2::{Digest, Sha256};

/// This replica's share of the accounts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    /// 0-based index of this replica.
    pub index: u32,
    /// Number of replicas.
    pub count: u32,
}

impl Shard {
    /// Whether this replica works `account`. Stable across runs, machines and versions:
    /// the first 8 bytes of SHA-256 of the account id, modulo the count.
    #[must_use]
    pub fn owns(&self, account: &str) -> bool {
        let d = Sha256::digest(account.as_bytes());
        let h = u64::from_be_bytes(d[..8].try_into().expect("8 bytes"));
        h % u64::from(self.count) == u64::from(self.index)
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// A shard that does not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a shard INDEX/COUNT with 0 <= INDEX < COUNT, e.g. 0/3")]
pub struct BadShard(String);

impl FromStr for Shard {
    type Err = BadShard;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = || BadShard(s.to_string());
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count): (u32, u32) = (
            i.trim().parse().map_err(|_| bad())?,
            n.trim().parse().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_account_belongs_to_exactly_one_shard_and_shards_are_balanced() {
        let shards: Vec<Shard> = (0..3).map(|i| Shard { index: i, count: 3 }).collect();
        let mut sizes = [0usize; 3];
        for n in 0..3000u64 {
            let account = format!("{:012}", 100_000_000_000 + n * 7919);
            let owners: Vec<_> = shards.iter().filter(|s| s.owns(&account)).collect();
            assert_eq!(owners.len(), 1, "{account}");
            sizes[owners[0].index as usize] += 1;
        }
        assert!(sizes.iter().all(|&s| (800..1200).contains(&s)), "{sizes:?}");
    }

    #[test]
    fn shard_strings_are_checked() {
        assert_eq!("1/4".parse::<Shard>().unwrap(), Shard { index: 1, count: 4 });
        for bad in ["4/4", "1", "a/2", "0/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
    }
}
