//! `awsSsoRole`: IAM Identity Center role credentials (being written).
