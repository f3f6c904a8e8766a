//! Origin checks for URIs the service hands us (`Location`, `@odata.id`).

use reqwest::Url;

/// Resolves `reference` (relative or absolute) against `base` and refuses it
/// unless scheme, host and port are the base's and it carries no
/// credentials. The error says why, without echoing query strings.
pub(crate) fn same_origin(base: &Url, reference: &str) -> Result<Url, String> {
    let url = base
        .join(reference.trim())
        .map_err(|e| format!("{reference:?} is not a valid URI reference: {e}"))?;
    if url.scheme() != base.scheme()
        || url.host_str() != base.host_str()
        || url.port_or_known_default() != base.port_or_known_default()
    {
        return Err(format!(
            "{}://{}:{} is not the endpoint's origin {}://{}:{}; refused",
            url.scheme(),
            url.host_str().unwrap_or(""),
            url.port_or_known_default().unwrap_or(0),
            base.scheme(),
            base.host_str().unwrap_or(""),
            base.port_or_known_default().unwrap_or(0),
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err("a URI with credentials is refused".into());
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Url {
        Url::parse("https://127.0.0.1:8443/").unwrap()
    }

    #[test]
    fn relative_and_same_origin_absolute_are_accepted() {
        let rel = same_origin(&base(), "/redfish/v1/SessionService/Sessions/1").unwrap();
        assert_eq!(
            rel.as_str(),
            "https://127.0.0.1:8443/redfish/v1/SessionService/Sessions/1"
        );
        let abs = same_origin(&base(), "https://127.0.0.1:8443/redfish/v1/Sessions/2").unwrap();
        assert_eq!(abs.path(), "/redfish/v1/Sessions/2");
        let default_port = Url::parse("https://bmc.example/").unwrap();
        assert!(same_origin(&default_port, "https://bmc.example:443/x").is_ok());
    }

    #[test]
    fn another_host_port_or_scheme_is_refused() {
        for bad in [
            "https://evil.example:8443/redfish/v1/SessionService/Sessions/1",
            "https://127.0.0.1:9443/redfish/v1/SessionService/Sessions/1",
            "http://127.0.0.1:8443/redfish/v1/SessionService/Sessions/1",
            "//evil.example/redfish/v1/SessionService/Sessions/1",
            "https://user:pw@127.0.0.1:8443/x",
        ] {
            let err = same_origin(&base(), bad).unwrap_err();
            assert!(err.contains("refused"), "{bad}: {err}");
        }
    }
}
