//! AWS partitions: which hosts serve a region, for the features that
//! reach a partition-wide service (IAM, the console sign-in).

use std::fmt;

/// An AWS partition: which sign-in and console hosts serve a region.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Partition {
    /// `aws`: the commercial regions.
    Aws,
    /// `aws-us-gov`: AWS GovCloud (US), regions `us-gov-*`.
    AwsUsGov,
    /// `aws-cn`: the China regions, `cn-*`.
    AwsCn,
}

impl Partition {
    /// The partition of `region`: `cn-*` is `aws-cn`, `us-gov-*` is
    /// `aws-us-gov`, anything else `aws`.
    ///
    /// ```
    /// use session_aws::partition::Partition;
    /// assert_eq!(Partition::of_region("cn-north-1"), Partition::AwsCn);
    /// assert_eq!(Partition::of_region("us-gov-west-1"), Partition::AwsUsGov);
    /// assert_eq!(Partition::of_region("eu-west-1"), Partition::Aws);
    /// ```
    pub fn of_region(region: &str) -> Self {
        if region.starts_with("cn-") {
            Self::AwsCn
        } else if region.starts_with("us-gov-") {
            Self::AwsUsGov
        } else {
            Self::Aws
        }
    }

    /// The partition's name as in ARNs: `aws`, `aws-us-gov`, `aws-cn`.
    pub fn name(self) -> &'static str {
        match self {
            Self::Aws => "aws",
            Self::AwsUsGov => "aws-us-gov",
            Self::AwsCn => "aws-cn",
        }
    }

    /// The signing region of IAM, which has one endpoint per partition.
    pub fn iam_region(self) -> &'static str {
        match self {
            Self::Aws => "us-east-1",
            Self::AwsUsGov => "us-gov-west-1",
            Self::AwsCn => "cn-north-1",
        }
    }

    /// The partition's federation endpoint (console sign-in).
    pub fn federation_endpoint(self) -> &'static str {
        match self {
            Self::Aws => "https://signin.aws.amazon.com/federation",
            Self::AwsUsGov => "https://signin.amazonaws-us-gov.com/federation",
            Self::AwsCn => "https://signin.amazonaws.cn/federation",
        }
    }

    /// The console home page of `region` in this partition.
    ///
    /// ```
    /// use session_aws::partition::Partition;
    /// assert_eq!(
    ///     Partition::Aws.console_home("eu-west-1"),
    ///     "https://eu-west-1.console.aws.amazon.com/console/home?region=eu-west-1"
    /// );
    /// ```
    pub fn console_home(self, region: &str) -> String {
        match self {
            Self::Aws => {
                format!("https://{region}.console.aws.amazon.com/console/home?region={region}")
            }
            Self::AwsUsGov => {
                format!("https://console.amazonaws-us-gov.com/console/home?region={region}")
            }
            Self::AwsCn => format!("https://console.amazonaws.cn/console/home?region={region}"),
        }
    }
}

impl fmt::Display for Partition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}
