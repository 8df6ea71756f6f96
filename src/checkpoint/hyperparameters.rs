//! Every config's fields as metadata text, and back.

use std::collections::BTreeMap;

use crate::optim::Rule;
use crate::{AdamConfig, AdamWConfig, Error, GdConfig, MomentumConfig, Result, SgdConfig};

/// Prefix of the metadata keys that hold the config's fields (`optimizer.lr`, ...).
pub(crate) const PREFIX: &str = "optimizer.";

/// A config whose every field a checkpoint records, so that loading the file rebuilds the
/// same optimizer.
///
/// Implemented by each config of the crate and sealed: the field names and their text are
/// part of the checkpoint format.
pub trait Hyperparameters: Rule + sealed::Sealed {
    /// Every field, named as in the config struct: f64 in Rust's shortest text that parses
    /// back to the same value (`0.001`, `1e-8`), bools as `true` or `false`.
    fn to_fields(&self) -> Vec<(&'static str, String)>;

    /// The config whose [`Hyperparameters::to_fields`] gave `fields` (keyed by field name).
    ///
    /// Fails with [`Error::CheckpointMetadata`] on a missing or unreadable field; the values
    /// are not validated here.
    fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self>;
}

mod sealed {
    pub trait Sealed {}

    impl Sealed for crate::GdConfig {}
    impl Sealed for crate::MomentumConfig {}
    impl Sealed for crate::SgdConfig {}
    impl Sealed for crate::AdamConfig {}
    impl Sealed for crate::AdamWConfig {}
}

/// `{:?}` prints the shortest decimal that parses back to the same f64.
fn real(value: f64) -> String {
    format!("{value:?}")
}

fn field<'a>(fields: &'a BTreeMap<String, String>, name: &str) -> Result<&'a str> {
    fields
        .get(name)
        .map(String::as_str)
        .ok_or_else(|| Error::CheckpointMetadata {
            key: format!("{PREFIX}{name}"),
            reason: "is missing".into(),
        })
}

fn read_real(fields: &BTreeMap<String, String>, name: &str) -> Result<f64> {
    let text = field(fields, name)?;
    text.parse().map_err(|_| Error::CheckpointMetadata {
        key: format!("{PREFIX}{name}"),
        reason: format!("is `{text}`, not a number"),
    })
}

fn read_bool(fields: &BTreeMap<String, String>, name: &str) -> Result<bool> {
    match field(fields, name)? {
        "true" => Ok(true),
        "false" => Ok(false),
        text => Err(Error::CheckpointMetadata {
            key: format!("{PREFIX}{name}"),
            reason: format!("is `{text}`, not `true` or `false`"),
        }),
    }
}

impl Hyperparameters for GdConfig {
    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![("lr", real(self.lr))]
    }

    fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self> {
        Ok(Self {
            lr: read_real(fields, "lr")?,
        })
    }
}

impl Hyperparameters for MomentumConfig {
    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![("lr", real(self.lr)), ("beta", real(self.beta))]
    }

    fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self> {
        Ok(Self {
            lr: read_real(fields, "lr")?,
            beta: read_real(fields, "beta")?,
        })
    }
}

impl Hyperparameters for SgdConfig {
    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("lr", real(self.lr)),
            ("momentum", real(self.momentum)),
            ("dampening", real(self.dampening)),
            ("weight_decay", real(self.weight_decay)),
            ("nesterov", self.nesterov.to_string()),
            ("maximize", self.maximize.to_string()),
        ]
    }

    fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self> {
        Ok(Self {
            lr: read_real(fields, "lr")?,
            momentum: read_real(fields, "momentum")?,
            dampening: read_real(fields, "dampening")?,
            weight_decay: read_real(fields, "weight_decay")?,
            nesterov: read_bool(fields, "nesterov")?,
            maximize: read_bool(fields, "maximize")?,
        })
    }
}

impl Hyperparameters for AdamConfig {
    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("lr", real(self.lr)),
            ("beta1", real(self.beta1)),
            ("beta2", real(self.beta2)),
            ("eps", real(self.eps)),
            ("weight_decay", real(self.weight_decay)),
            ("amsgrad", self.amsgrad.to_string()),
            ("maximize", self.maximize.to_string()),
            (
                "decoupled_weight_decay",
                self.decoupled_weight_decay.to_string(),
            ),
        ]
    }

    fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self> {
        Ok(Self {
            lr: read_real(fields, "lr")?,
            beta1: read_real(fields, "beta1")?,
            beta2: read_real(fields, "beta2")?,
            eps: read_real(fields, "eps")?,
            weight_decay: read_real(fields, "weight_decay")?,
            amsgrad: read_bool(fields, "amsgrad")?,
            maximize: read_bool(fields, "maximize")?,
            decoupled_weight_decay: read_bool(fields, "decoupled_weight_decay")?,
        })
    }
}

impl Hyperparameters for AdamWConfig {
    fn to_fields(&self) -> Vec<(&'static str, String)> {
        vec![
            ("lr", real(self.lr)),
            ("beta1", real(self.beta1)),
            ("beta2", real(self.beta2)),
            ("eps", real(self.eps)),
            ("weight_decay", real(self.weight_decay)),
            ("amsgrad", self.amsgrad.to_string()),
            ("maximize", self.maximize.to_string()),
        ]
    }

    fn from_fields(fields: &BTreeMap<String, String>) -> Result<Self> {
        Ok(Self {
            lr: read_real(fields, "lr")?,
            beta1: read_real(fields, "beta1")?,
            beta2: read_real(fields, "beta2")?,
            eps: read_real(fields, "eps")?,
            weight_decay: read_real(fields, "weight_decay")?,
            amsgrad: read_bool(fields, "amsgrad")?,
            maximize: read_bool(fields, "maximize")?,
        })
    }
}

/// Reads `R` from the fields of a checkpoint and validates it; a field `R` does not have is
/// refused too, since dropping it would silently change the optimizer.
pub(crate) fn read_config<R: Hyperparameters>(fields: &BTreeMap<String, String>) -> Result<R> {
    let config = R::from_fields(fields)?;
    let known = config.to_fields();
    if let Some(extra) = fields
        .keys()
        .find(|k| !known.iter().any(|(name, _)| name == k))
    {
        return Err(Error::CheckpointMetadata {
            key: format!("{PREFIX}{extra}"),
            reason: format!("is not a hyperparameter of `{}`", R::NAME),
        });
    }
    config.validate()?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields_of<R: Hyperparameters>(config: &R) -> BTreeMap<String, String> {
        config
            .to_fields()
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v))
            .collect()
    }

    fn round_trip<R: Hyperparameters + PartialEq>(config: R) {
        let back: R = read_config(&fields_of(&config)).unwrap();
        assert_eq!(back, config);
    }

    #[test]
    fn every_config_reads_back_exactly() {
        // Values whose shortest decimal text is long, or that no short decimal hits.
        let odd = 0.1 + 0.2;
        round_trip(GdConfig { lr: odd });
        round_trip(MomentumConfig {
            lr: 1.0 / 3.0,
            beta: 0.9,
        });
        round_trip(SgdConfig {
            lr: 1e-300,
            momentum: 0.9,
            dampening: 0.1,
            weight_decay: 5e-4,
            nesterov: false,
            maximize: true,
        });
        round_trip(AdamConfig {
            lr: odd,
            beta1: 0.8,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 2.0f64.powi(-40),
            amsgrad: true,
            maximize: true,
            decoupled_weight_decay: true,
        });
        round_trip(AdamWConfig {
            eps: f64::MIN_POSITIVE,
            ..Default::default()
        });
    }

    #[test]
    fn missing_garbled_and_unknown_fields_are_refused() {
        let mut fields = fields_of(&AdamConfig::default());
        fields.remove("eps");
        let err = read_config::<AdamConfig>(&fields).unwrap_err();
        assert!(matches!(err, Error::CheckpointMetadata { key, .. } if key == "optimizer.eps"));

        let mut fields = fields_of(&AdamConfig::default());
        fields.insert("amsgrad".into(), "yes".into());
        let err = read_config::<AdamConfig>(&fields).unwrap_err();
        assert!(matches!(err, Error::CheckpointMetadata { key, .. } if key == "optimizer.amsgrad"));

        let mut fields = fields_of(&SgdConfig::default());
        fields.insert("lr".into(), "0.1.2".into());
        let err = read_config::<SgdConfig>(&fields).unwrap_err();
        assert!(matches!(err, Error::CheckpointMetadata { key, .. } if key == "optimizer.lr"));

        let mut fields = fields_of(&GdConfig::default());
        fields.insert("momentum".into(), "0.9".into());
        let err = read_config::<GdConfig>(&fields).unwrap_err();
        assert!(
            matches!(err, Error::CheckpointMetadata { key, .. } if key == "optimizer.momentum")
        );
    }

    #[test]
    fn invalid_values_are_refused_by_validation() {
        let mut fields = fields_of(&AdamConfig::default());
        fields.insert("beta2".into(), "1.0".into());
        let err = read_config::<AdamConfig>(&fields).unwrap_err();
        assert!(matches!(
            err,
            Error::InvalidHyperparameter { name: "beta2", .. }
        ));
    }
}
