//! Third-party readers of the files we write: another vendor's own code
//! reading them back, as an independent check of their format.
//!
//! - [`botocore`]: boto3/botocore, the AWS SDK for Python
//!   ([`Botocore`](botocore::Botocore)); also the signing client for the
//!   [moto peer](crate::peers::moto).
//! - [`azure_cli`]: the Azure CLI's own code (`azure-cli-core`) reading back
//!   the files session-azure's Azure CLI sink writes.

pub mod azure_cli;
pub mod botocore;
