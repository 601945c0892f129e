//! Whether AWS KMS can rotate a key automatically, decided from DescribeKey
//! metadata alone.
//!
//! Emulators accept EnableKeyRotation on keys that AWS rejects (moto 5.2 takes
//! it on RSA, HMAC, imported and disabled keys), so the verdict is never
//! inferred from an API answer: it follows the rules AWS documents (SPEC §1).

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "snake_case")]
pub enum Eligibility {
    Eligible,
    AwsManaged,
    UnsupportedSpec,
    ExternalOrigin,
    CustomKeyStore,
    Replica,
    PendingDeletion,
    Disabled,
    Unavailable,
}

impl Eligibility {
    pub const ALL: [Eligibility; 9] = [
        Eligibility::Eligible,
        Eligibility::AwsManaged,
        Eligibility::UnsupportedSpec,
        Eligibility::ExternalOrigin,
        Eligibility::CustomKeyStore,
        Eligibility::Replica,
        Eligibility::PendingDeletion,
        Eligibility::Disabled,
        Eligibility::Unavailable,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Eligibility::Eligible => "eligible",
            Eligibility::AwsManaged => "aws_managed",
            Eligibility::UnsupportedSpec => "unsupported_spec",
            Eligibility::ExternalOrigin => "external_origin",
            Eligibility::CustomKeyStore => "custom_key_store",
            Eligibility::Replica => "replica",
            Eligibility::PendingDeletion => "pending_deletion",
            Eligibility::Disabled => "disabled",
            Eligibility::Unavailable => "unavailable",
        }
    }

    /// Whether to call GetKeyRotationStatus. AWS answers it for AWS-managed
    /// keys (always true), replicas (the primary's shared setting), symmetric
    /// imported keys (on-demand rotation since 2025), and Disabled or
    /// PendingDeletion keys. It is not called where AWS documents
    /// UnsupportedOperationException (asymmetric and HMAC keys, imported
    /// material included, and custom key stores) or where the key is unusable.
    pub fn reads_rotation_status(self) -> bool {
        !matches!(
            self,
            Eligibility::UnsupportedSpec | Eligibility::CustomKeyStore | Eligibility::Unavailable
        )
    }

    /// Whether to call ListKeyRotations: keys whose material this account
    /// rotates (automatically, or on demand for symmetric imported material).
    /// Replicas share their primary's history, which is read on the primary;
    /// asymmetric and HMAC keys never rotate, whatever their origin.
    pub fn reads_rotation_history(self) -> bool {
        matches!(
            self,
            Eligibility::Eligible | Eligibility::Disabled | Eligibility::ExternalOrigin
        )
    }
}

impl std::fmt::Display for Eligibility {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The DescribeKey fields the verdict depends on.
#[derive(Debug, Clone, Default)]
pub struct KeyFacts<'a> {
    pub arn: &'a str,
    pub key_manager: Option<&'a str>,
    pub key_spec: Option<&'a str>,
    pub key_usage: Option<&'a str>,
    pub origin: Option<&'a str>,
    pub key_state: Option<&'a str>,
    pub custom_key_store_id: Option<&'a str>,
    pub multi_region_role: Option<&'a str>,
    pub primary_key_arn: Option<&'a str>,
    pub deletion_date: Option<String>,
    pub aliases: &'a [String],
}

/// Decides eligibility and says why, in words a reviewer understands.
///
/// The order matters: what the key *is* (AWS-managed, where its material
/// lives, its spec, replica) comes before what state it is *in*, because a
/// type is permanent and a state is not.
pub fn decide(f: &KeyFacts<'_>) -> (Eligibility, String) {
    let spec = f.key_spec.unwrap_or("unknown");
    let state = f.key_state.unwrap_or("unknown");
    if f.key_manager == Some("AWS") {
        return (
            Eligibility::AwsManaged,
            "AWS-managed key: AWS rotates it every year and its rotation cannot be changed; listed for visibility only.".into(),
        );
    }
    // Only AWS can create aliases under alias/aws/, so such an alias marks an
    // AWS-managed key even where KeyManager says otherwise (moto 5.2 reports
    // these keys as CUSTOMER).
    if let Some(alias) = f.aliases.iter().find(|a| a.starts_with("alias/aws/")) {
        return (
            Eligibility::AwsManaged,
            format!("AWS-managed key ({alias}): AWS rotates it every year and its rotation cannot be changed; listed for visibility only."),
        );
    }
    let origin = f.origin.unwrap_or("unknown");
    if matches!(origin, "AWS_CLOUDHSM" | "EXTERNAL_KEY_STORE") || f.custom_key_store_id.is_some() {
        let store = f.custom_key_store_id.unwrap_or("unknown store");
        return (
            Eligibility::CustomKeyStore,
            format!("Key material lives in a custom key store ({origin}, {store}): AWS KMS cannot rotate it automatically. Compensate by creating a new key and moving the alias."),
        );
    }
    // The spec comes before the origin: imported material rotates on demand
    // only in symmetric encryption keys, so an RSA, ECC or HMAC key with
    // imported material is simply a key KMS never rotates (RotateKeyOnDemand
    // API reference).
    if spec != "SYMMETRIC_DEFAULT" || f.key_usage.is_some_and(|u| u != "ENCRYPT_DECRYPT") {
        let kind = if spec.starts_with("HMAC_") {
            "an HMAC key"
        } else if spec == "unknown" {
            "a key of unknown spec"
        } else {
            "an asymmetric key"
        };
        let imported = if origin == "EXTERNAL" {
            " with imported key material"
        } else {
            ""
        };
        return (
            Eligibility::UnsupportedSpec,
            format!("Key spec {spec} is {kind}{imported}: AWS KMS rotates only symmetric encryption keys, neither automatically nor on demand. Compensate by creating a new key and moving the alias."),
        );
    }
    if origin == "EXTERNAL" {
        let reason = if f.multi_region_role.is_some() {
            // Until November 2025 AWS offered no rotation at all for
            // multi-Region keys with imported material; on-demand rotation
            // now needs the new material in the primary and every replica
            // first (ImportKeyMaterial API reference).
            "Multi-Region key with imported key material (origin EXTERNAL): neither automatic rotation nor a plain on-demand rotation applies. On-demand rotation works only after new material is imported into the primary (ImportType NEW_KEY_MATERIAL) and the same material into every replica, then RotateKeyOnDemand on the primary; otherwise create a new key and move the alias."
        } else {
            "Imported key material (origin EXTERNAL): automatic rotation is not available. Rotate on demand after importing new material (RotateKeyOnDemand), or create a new key and move the alias."
        };
        return (Eligibility::ExternalOrigin, reason.into());
    }
    let is_replica = f.multi_region_role == Some("REPLICA")
        // A primary names itself as PrimaryKey; trust that over the type field.
        && f.primary_key_arn.is_some_and(|p| p != f.arn);
    if is_replica {
        let primary = f.primary_key_arn.unwrap_or("its primary key");
        return (
            Eligibility::Replica,
            format!("Multi-Region replica: it shares the rotation setting of its primary {primary}. Enable rotation on the primary."),
        );
    }
    match state {
        "PendingDeletion" | "PendingReplicaDeletion" => {
            let when = f
                .deletion_date
                .as_deref()
                .map(|d| format!(" on {d}"))
                .unwrap_or_default();
            (
                Eligibility::PendingDeletion,
                format!("Scheduled for deletion{when} (state {state}): KMS rejects rotation changes (KMSInvalidStateException) unless the deletion is cancelled."),
            )
        }
        "Disabled" => (
            Eligibility::Disabled,
            "Eligible key type, but the key is Disabled: it does not rotate while disabled, and EnableKeyRotation fails with DisabledException until the key is enabled.".into(),
        ),
        "Enabled" => (
            Eligibility::Eligible,
            "Customer-managed SYMMETRIC_DEFAULT key with AWS_KMS key material: automatic rotation is supported.".into(),
        ),
        other => (
            Eligibility::Unavailable,
            format!("Key state {other}: KMS cannot use, or change the rotation of, a key in this state."),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts() -> KeyFacts<'static> {
        KeyFacts {
            arn: "arn:aws:kms:us-east-1:111122223333:key/k",
            key_manager: Some("CUSTOMER"),
            key_spec: Some("SYMMETRIC_DEFAULT"),
            key_usage: Some("ENCRYPT_DECRYPT"),
            origin: Some("AWS_KMS"),
            key_state: Some("Enabled"),
            ..KeyFacts::default()
        }
    }

    #[test]
    fn every_value_is_reachable() {
        let aws_alias = ["alias/aws/s3".to_string()];
        let cases: Vec<(KeyFacts, Eligibility)> = vec![
            (facts(), Eligibility::Eligible),
            (
                KeyFacts {
                    key_manager: Some("AWS"),
                    ..facts()
                },
                Eligibility::AwsManaged,
            ),
            (
                KeyFacts {
                    aliases: &aws_alias,
                    ..facts()
                },
                Eligibility::AwsManaged,
            ),
            (
                KeyFacts {
                    key_spec: Some("RSA_2048"),
                    key_usage: Some("SIGN_VERIFY"),
                    ..facts()
                },
                Eligibility::UnsupportedSpec,
            ),
            (
                KeyFacts {
                    key_spec: Some("HMAC_256"),
                    key_usage: Some("GENERATE_VERIFY_MAC"),
                    ..facts()
                },
                Eligibility::UnsupportedSpec,
            ),
            (
                KeyFacts {
                    key_spec: Some("ECC_NIST_P256"),
                    ..facts()
                },
                Eligibility::UnsupportedSpec,
            ),
            (
                KeyFacts {
                    origin: Some("EXTERNAL"),
                    ..facts()
                },
                Eligibility::ExternalOrigin,
            ),
            (
                KeyFacts {
                    origin: Some("AWS_CLOUDHSM"),
                    custom_key_store_id: Some("cks-1"),
                    ..facts()
                },
                Eligibility::CustomKeyStore,
            ),
            (
                KeyFacts {
                    origin: Some("EXTERNAL_KEY_STORE"),
                    ..facts()
                },
                Eligibility::CustomKeyStore,
            ),
            (
                KeyFacts {
                    multi_region_role: Some("REPLICA"),
                    primary_key_arn: Some("arn:aws:kms:eu-west-1:111122223333:key/mrk-1"),
                    ..facts()
                },
                Eligibility::Replica,
            ),
            (
                KeyFacts {
                    key_state: Some("PendingDeletion"),
                    ..facts()
                },
                Eligibility::PendingDeletion,
            ),
            (
                KeyFacts {
                    key_state: Some("PendingReplicaDeletion"),
                    ..facts()
                },
                Eligibility::PendingDeletion,
            ),
            (
                KeyFacts {
                    key_state: Some("Disabled"),
                    ..facts()
                },
                Eligibility::Disabled,
            ),
            (
                KeyFacts {
                    key_state: Some("Unavailable"),
                    ..facts()
                },
                Eligibility::Unavailable,
            ),
            (
                KeyFacts {
                    key_state: Some("Creating"),
                    ..facts()
                },
                Eligibility::Unavailable,
            ),
        ];
        for (f, want) in cases {
            assert_eq!(decide(&f).0, want, "{f:?}");
        }
    }

    #[test]
    fn a_primary_mislabelled_as_replica_is_still_eligible() {
        // moto 5.2 flips a primary's MultiRegionKeyType to REPLICA once a
        // replica is described; its PrimaryKey still names itself.
        let arn = "arn:aws:kms:us-east-1:111122223333:key/mrk-1";
        let f = KeyFacts {
            arn,
            multi_region_role: Some("REPLICA"),
            primary_key_arn: Some(arn),
            ..facts()
        };
        assert_eq!(decide(&f).0, Eligibility::Eligible);
    }

    #[test]
    fn spec_outranks_origin() {
        for (spec, usage) in [
            ("RSA_2048", "ENCRYPT_DECRYPT"),
            ("ECC_NIST_P256", "SIGN_VERIFY"),
            ("HMAC_256", "GENERATE_VERIFY_MAC"),
        ] {
            let f = KeyFacts {
                key_spec: Some(spec),
                key_usage: Some(usage),
                origin: Some("EXTERNAL"),
                ..facts()
            };
            let (elig, reason) = decide(&f);
            assert_eq!(elig, Eligibility::UnsupportedSpec, "{spec}");
            // No rotation advice: KMS rotates such a key in no way at all.
            assert!(!reason.contains("RotateKeyOnDemand"), "{reason}");
            assert!(!elig.reads_rotation_status() && !elig.reads_rotation_history());
        }
        let single = KeyFacts {
            origin: Some("EXTERNAL"),
            ..facts()
        };
        assert_eq!(decide(&single).0, Eligibility::ExternalOrigin);
        assert!(decide(&single).1.contains("RotateKeyOnDemand"));
        let multi = KeyFacts {
            origin: Some("EXTERNAL"),
            multi_region_role: Some("PRIMARY"),
            primary_key_arn: Some("arn:aws:kms:us-east-1:111122223333:key/k"),
            ..facts()
        };
        let (elig, reason) = decide(&multi);
        assert_eq!(elig, Eligibility::ExternalOrigin);
        assert!(
            reason.contains("neither automatic rotation nor a plain on-demand rotation"),
            "{reason}"
        );
    }

    #[test]
    fn type_outranks_state() {
        let f = KeyFacts {
            key_spec: Some("RSA_4096"),
            key_state: Some("Disabled"),
            ..facts()
        };
        assert_eq!(decide(&f).0, Eligibility::UnsupportedSpec);
    }

    #[test]
    fn reasons_name_the_cause() {
        let f = KeyFacts {
            key_state: Some("PendingDeletion"),
            deletion_date: Some("2026-12-01T00:00:00Z".into()),
            ..facts()
        };
        assert!(decide(&f).1.contains("2026-12-01T00:00:00Z"));
        let f = KeyFacts {
            key_spec: Some("HMAC_512"),
            ..facts()
        };
        assert!(decide(&f).1.contains("HMAC"));
    }
}
