//! Public holidays by country and subdivision, 2020-2035, as shipped in `countries.tsv`.
//!
//! The data is generated from the `holidays` package (PyPI) at the version pinned in
//! `tests/requirements.txt` by `scripts/gen-holidays.py` (its header says how to refresh it
//! and the format), and a test compares every country, subdivision and year with the
//! package itself. Only the `public` category: what the law makes a day off for everyone.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// First and last year the shipped data covers.
pub const FIRST_YEAR: i32 = 2020;
/// Last year the shipped data covers.
pub const LAST_YEAR: i32 = 2035;

const DATA: &str = include_str!("countries.tsv");

/// The version of the `holidays` package the data was generated from (from its header).
#[must_use]
pub fn source_version() -> &'static str {
    DATA.lines()
        .take_while(|l| l.starts_with('#'))
        .find_map(|l| l.split("`holidays` package ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .unwrap_or("unknown")
}

fn rows() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    DATA.lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| {
            let mut f = l.splitn(3, '\t');
            Some((f.next()?, f.next()?, f.next().unwrap_or("")))
        })
}

/// Every code the data knows: countries (`KR`) and subdivisions (`US-CA`), sorted.
#[must_use]
pub fn codes() -> Vec<&'static str> {
    let mut v: Vec<&str> = rows().map(|(c, _, _)| c).collect();
    v.dedup();
    v.sort_unstable();
    v.dedup();
    v
}

/// The countries the data covers (no subdivisions).
#[must_use]
pub fn countries() -> Vec<&'static str> {
    codes().into_iter().filter(|c| !c.contains('-')).collect()
}

/// The public holidays of a country (`KR`) or subdivision (`US-CA`, `DE-BY`), with their
/// names, for every year the data covers; `None` for a code it does not know. A code is
/// matched without regard to case. Every subdivision the package lists has a row of its
/// own (`=`), even one whose holidays are exactly its country's, so an unknown subdivision
/// of a known country is `None`.
#[must_use]
pub fn holidays(code: &str) -> Option<BTreeMap<NaiveDate, &'static str>> {
    let code = code.trim().to_ascii_uppercase();
    let country = code.split('-').next().unwrap_or_default();
    let mut out = BTreeMap::new();
    let mut known = false;
    for (c, date, name) in rows() {
        if c == country {
            known |= c == code;
            if let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d") {
                out.insert(d, name);
            }
        } else if c == code {
            known = true;
            if date == "=" {
                continue;
            }
            let (sign, date) = date.split_at(1);
            let Ok(d) = NaiveDate::parse_from_str(date, "%Y-%m-%d") else {
                continue;
            };
            if sign == "-" {
                out.remove(&d);
            } else {
                out.insert(d, name);
            }
        }
    }
    known.then_some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    #[test]
    fn korea_2026_has_the_days_the_2026_amendments_added() {
        let kr = holidays("KR").unwrap();
        // Labour Day became a public holiday, and Constitution Day was restored, in 2026.
        assert_eq!(kr.get(&d("2026-05-01")), Some(&"Labor Day"));
        assert_eq!(kr.get(&d("2026-07-17")), Some(&"Constitution Day"));
        assert!(kr.contains_key(&d("2026-06-03")), "local election day");
        assert!(!kr.contains_key(&d("2026-07-16")));
    }

    #[test]
    fn a_subdivision_is_its_country_plus_and_minus_its_rows() {
        let us = holidays("US").unwrap();
        let ca = holidays("us-ca").unwrap();
        assert!(!us.contains_key(&d("2026-03-31")));
        assert!(ca.contains_key(&d("2026-03-31")), "Cesar Chavez Day in California");
        assert!(ca.contains_key(&d("2026-07-03")) || ca.contains_key(&d("2026-07-04")));
        assert!(holidays("US-XX").is_none());
        assert!(holidays("ZZ").is_none());
    }

    #[test]
    fn codes_cover_the_promised_countries_and_years() {
        for c in ["KR", "JP", "CN", "SG", "IN", "AU", "US", "GB", "DE", "FR"] {
            let h = holidays(c).unwrap_or_else(|| panic!("{c} missing"));
            for y in FIRST_YEAR..=LAST_YEAR {
                let n = h.keys().filter(|x| chrono::Datelike::year(*x) == y).count();
                assert!(n >= 5, "{c} {y}: only {n} holidays");
            }
        }
        assert!(codes().contains(&"DE-BY"));
        assert!(codes().contains(&"GB-SCT"));
        assert_eq!(source_version(), "0.109");
    }
}
