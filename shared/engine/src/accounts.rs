//! The `accounts:` section: the role to assume in a source account whose
//! metrics a rule reads (`account:` on a metric), for organisations without
//! a CloudWatch monitoring account.
//!
//! ```yaml
//! accounts:
//!   "123456789012": {role_arn: arn:aws:iam::123456789012:role/firebell-read}
//! ```
//!
//! A metric of an account listed here is read with clients that assume its
//! role; a metric of an account not listed is read through CloudWatch
//! cross-account observability (the evaluator runs in the monitoring
//! account, `AccountId` on the query). Receiver-independent: only the
//! metrics adapter uses it.

use std::collections::BTreeMap;

use firebell_core::decode::{Decoder, Pos};
use firebell_core::diag::Diagnostics;
use firebell_core::model::{RuleSet, valid_account};

/// The section's key.
pub const SECTION: &str = "accounts";

/// Source account id -> the role (ARN) to assume to read its metrics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Accounts {
    pub roles: BTreeMap<String, String>,
    /// Where each account was written (for the cross-checks).
    positions: BTreeMap<String, (String, Pos)>,
}

/// The account of an IAM role ARN (`arn:<partition>:iam::<account>:role/<name>`),
/// or `None` when `arn` is not one.
pub fn role_arn_account(arn: &str) -> Option<&str> {
    let mut parts = arn.splitn(6, ':');
    let (arn_, partition, service, region, account, resource) = (
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
        parts.next()?,
    );
    let name = resource.strip_prefix("role/")?;
    let name_ok = !name.is_empty()
        && name.len() <= 512
        && name.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(b, b'+' | b'=' | b',' | b'.' | b'@' | b'_' | b'-' | b'/')
        })
        && !name.ends_with('/');
    (arn_ == "arn"
        && matches!(partition, "aws" | "aws-cn" | "aws-us-gov")
        && service == "iam"
        && region.is_empty()
        && valid_account(account)
        && name_ok)
        .then_some(account)
}

impl Accounts {
    /// Decodes the section (every mistake reported at its position).
    pub fn decode(d: &mut Decoder<'_>, node: &marked_yaml::Node) -> Accounts {
        let mut out = Accounts::default();
        let marked_yaml::Node::Mapping(m) = node else {
            d.error(
                node,
                "`accounts` must be a mapping of account id to {role_arn: ...}".to_string(),
            );
            return out;
        };
        for (key, value) in m.iter() {
            let account = key.as_str();
            let key_pos = Pos::of(key.span());
            if !valid_account(account) {
                d.error_at(
                    key_pos,
                    format!(
                        "invalid account {account:?} in `accounts` (expected a 12-digit AWS account id such as \"123456789012\", quoted)"
                    ),
                );
                continue;
            }
            let Some(mut f) = d.fields(value, &format!("account {account:?}")) else {
                continue;
            };
            let role = f.req(d, "role_arn").and_then(|n| {
                let arn = d.str(n, "role_arn")?;
                match role_arn_account(arn) {
                    None => {
                        d.error(
                            n,
                            format!(
                                "invalid `role_arn` {arn:?} (expected an IAM role ARN such as \"arn:aws:iam::{account}:role/firebell-read\")"
                            ),
                        );
                        None
                    }
                    Some(owner) if owner != account => {
                        d.error(
                            n,
                            format!(
                                "`role_arn` {arn:?} is a role of account {owner}, not {account} (expected a role in the account whose metrics it reads)"
                            ),
                        );
                        None
                    }
                    Some(_) => Some(arn.to_string()),
                }
            });
            f.finish(d);
            if let Some(role) = role {
                out.positions
                    .insert(account.to_string(), (d.file.clone(), key_pos));
                out.roles.insert(account.to_string(), role);
            }
        }
        out
    }

    /// The role to assume for `account`'s metrics, if one is listed.
    pub fn role_for(&self, account: &str) -> Option<&str> {
        self.roles.get(account).map(String::as_str)
    }

    /// Cross-checks against the rules: an account listed that no metric
    /// names is a warning (its role would never be assumed).
    pub(crate) fn check(&self, rules: &RuleSet, diags: &mut Diagnostics) {
        for (account, (file, pos)) in &self.positions {
            let used = rules.rules.iter().any(|r| {
                r.metrics
                    .values()
                    .chain(r.context.iter().flat_map(|c| c.metrics.values()))
                    .any(|m| m.account.as_deref() == Some(account.as_str()))
            });
            if !used {
                diags.warning(
                    file,
                    pos.line,
                    pos.column,
                    "unused-account",
                    format!(
                        "account {account:?} in `accounts` is named by no metric (`account: \"{account}\"`): its role is never assumed"
                    ),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_arns() {
        assert_eq!(
            role_arn_account("arn:aws:iam::123456789012:role/firebell-read"),
            Some("123456789012")
        );
        assert_eq!(
            role_arn_account("arn:aws-us-gov:iam::123456789012:role/path/to/r"),
            Some("123456789012")
        );
        for bad in [
            "",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:sts::123456789012:role/x",
            "arn:aws:iam:us-east-1:123456789012:role/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a b",
            "arn:other:iam::123456789012:role/x",
        ] {
            assert_eq!(role_arn_account(bad), None, "{bad}");
        }
    }
}
