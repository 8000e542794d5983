//! `[quotas]` in the config file: AWS KMS's request-rate and resource quotas, over AWS's
//! defaults (`trent_core::quotas`).
//!
//! ```toml
//! [quotas]
//! throttling = true          # false: no request is ever throttled
//! keys_per_region = 100000   # KMS keys per account and Region
//! aliases_per_key = 50
//! grants_per_key = 50000
//! [quotas.rates]             # requests per second, in every Region (AWS's defaults otherwise)
//! symmetric = 20             # the shared cryptographic quotas: symmetric, rsa, ecc, ml_dsa
//! CreateKey = 1              # one quota per operation, by its name
//! GetParametersForImport = 0.25   # below 1: one request per 1/rate seconds
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;
use trent_core::quotas::{QuotaSettings, Rate, RateQuota};

#[derive(Debug, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct QuotasConfig {
    pub throttling: Option<bool>,
    pub keys_per_region: Option<usize>,
    pub aliases_per_key: Option<usize>,
    pub grants_per_key: Option<usize>,
    #[serde(default)]
    pub rates: BTreeMap<String, f64>,
}

impl QuotasConfig {
    /// The configured quotas over AWS's defaults.
    pub fn resolve(&self) -> Result<QuotaSettings, String> {
        let mut settings = QuotaSettings::default();
        if let Some(on) = self.throttling {
            settings.throttling = on;
        }
        let at_least_one = |name: &str, n: Option<usize>, into: &mut usize| match n {
            Some(0) => Err(format!("quotas.{name} must be at least 1")),
            Some(n) => {
                *into = n;
                Ok(())
            }
            None => Ok(()),
        };
        let r = &mut settings.resources;
        at_least_one(
            "keys_per_region",
            self.keys_per_region,
            &mut r.keys_per_region,
        )?;
        at_least_one(
            "aliases_per_key",
            self.aliases_per_key,
            &mut r.aliases_per_key,
        )?;
        at_least_one("grants_per_key", self.grants_per_key, &mut r.grants_per_key)?;
        for (name, per_second) in &self.rates {
            let quota = RateQuota::from_config_name(name).ok_or_else(|| {
                let known: Vec<&str> = RateQuota::ALL.iter().map(|q| q.config_name()).collect();
                format!(
                    "quotas.rates: unknown quota `{name}` (known: {})",
                    known.join(", ")
                )
            })?;
            let rate = Rate::from_per_second(*per_second).ok_or_else(|| {
                format!("quotas.rates.{name} must be a positive number of requests per second (use `throttling = false` to turn throttling off)")
            })?;
            settings.rate_overrides.push((quota, rate));
        }
        Ok(settings)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "test code")]

    use super::*;

    #[test]
    fn rates_and_resources_parse() {
        let c: QuotasConfig = toml::from_str(
            "throttling = true\ngrants_per_key = 3\n[rates]\nsymmetric = 20\nGetParametersForImport = 0.25\n",
        )
        .unwrap();
        let s = c.resolve().unwrap();
        assert_eq!(s.resources.grants_per_key, 3);
        assert_eq!(
            s.rate_overrides,
            vec![
                (RateQuota::GetParametersForImport, Rate::one_per(4)),
                (RateQuota::Symmetric, Rate::per_second(20)),
            ]
        );
    }

    #[test]
    fn bad_values_are_refused() {
        for text in [
            "[rates]\nEncrypt = 5\n",
            "[rates]\nsymmetric = 0\n",
            "keys_per_region = 0\n",
        ] {
            let c: QuotasConfig = toml::from_str(text).unwrap();
            assert!(c.resolve().is_err(), "{text}");
        }
        assert!(toml::from_str::<QuotasConfig>("throttle = false\n").is_err());
    }
}
