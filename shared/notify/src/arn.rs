//! SNS topic ARNs: what a receiver's `topics` must hold.
//!
//! `arn:<partition>:sns:<region>:<account>:<name>`, where the partition is
//! `aws` or `aws-<suffix>` (`aws-cn`, `aws-us-gov`, ...), the region looks
//! like `us-east-1`, the account is 12 digits and the name is 1 to 256
//! letters, digits, `-` or `_` (a FIFO topic's name ends in `.fifo`,
//! counted in the 256). No wildcards: a receiver names topics, not patterns.

/// Checks that `s` is a well-formed SNS topic ARN (standard or FIFO);
/// `Err` says what is wrong and what was expected, to follow
/// `topic "<s>" ` in a message.
pub fn check_sns_topic_arn(s: &str) -> Result<(), String> {
    const EXPECTED: &str = "expected arn:aws:sns:<region>:<12-digit account>:<topic name>[.fifo]";
    let parts: Vec<&str> = s.splitn(6, ':').collect();
    let [arn, partition, service, region, account, name] = parts[..] else {
        return Err(format!("is not an SNS topic ARN ({EXPECTED})"));
    };
    if arn != "arn" {
        return Err(format!("is not an SNS topic ARN ({EXPECTED})"));
    }
    if !is_partition(partition) {
        return Err(format!(
            "has partition {partition:?}, not aws, aws-cn, aws-us-gov... ({EXPECTED})"
        ));
    }
    if service != "sns" {
        return Err(format!(
            "is an ARN of service {service:?}, not of an SNS topic ({EXPECTED})"
        ));
    }
    if !is_region(region) {
        return Err(format!(
            "has region {region:?}, not a region such as us-east-1 ({EXPECTED})"
        ));
    }
    if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!(
            "has account {account:?}, not 12 digits ({EXPECTED})"
        ));
    }
    let base = name.strip_suffix(".fifo").unwrap_or(name);
    if name.is_empty() || name.len() > 256 {
        return Err(format!(
            "has a topic name of {} characters, not 1 to 256 ({EXPECTED})",
            name.len()
        ));
    }
    if base.is_empty()
        || !base
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        return Err(format!(
            "has topic name {name:?}: a name holds only letters, digits, - and _ (FIFO: ending in .fifo) ({EXPECTED})"
        ));
    }
    Ok(())
}

fn is_partition(p: &str) -> bool {
    p == "aws"
        || p.strip_prefix("aws-").is_some_and(|rest| {
            !rest.is_empty()
                && rest
                    .split('-')
                    .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        })
}

/// `us-east-1`, `eu-central-2`, `us-gov-west-1`, `cn-north-1`: lowercase
/// words joined by `-`, ending in a number.
fn is_region(r: &str) -> bool {
    let words: Vec<&str> = r.split('-').collect();
    words.len() >= 3
        && words[..words.len() - 1]
            .iter()
            .all(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_lowercase()))
        && words
            .last()
            .is_some_and(|w| !w.is_empty() && w.bytes().all(|b| b.is_ascii_digit()))
}

/// The topics written in a config (`NotifyConfig::topic_refs`) that are not
/// among `allowed` (compared exactly, as IAM compares resource ARNs).
pub fn outside<'a>(refs: &'a [crate::TopicRef], allowed: &[String]) -> Vec<&'a crate::TopicRef> {
    refs.iter()
        .filter(|r| !allowed.contains(&r.topic))
        .collect()
}
