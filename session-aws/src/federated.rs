//! `awsIamRoleFederated`: a role assumed with a SAML assertion (being written).
