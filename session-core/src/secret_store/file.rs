//! Placeholder: the encrypted-file secret store is being written.

use super::SecretStore;

/// A secret store in one encrypted file (being implemented).
#[derive(Debug)]
pub struct EncryptedFileSecretStore {
    _private: (),
}

#[allow(dead_code)]
fn _assert_trait(_: &dyn SecretStore) {}
