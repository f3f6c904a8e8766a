//! Helpers of `boundary_controller.rs`: a plain `reqwest` client of the
//! fake controller, and the contract check of its answers against Boundary's
//! OpenAPI document (v0.13.1, `data/boundary/controller.swagger.json`,
//! MPL-2.0, licence beside it).

use std::sync::OnceLock;

use serde_json::{Value, json};

/// The OpenAPI document, vendored byte for byte from the reference.
const SWAGGER: &str = include_str!("../data/boundary/controller.swagger.json");

pub(crate) const AUTHENTICATE_RESPONSE: &str = "controller.api.services.v1.AuthenticateResponse";
pub(crate) const SESSION_AUTHORIZATION: &str =
    "controller.api.resources.targets.v1.SessionAuthorization";
pub(crate) const LIST_SESSIONS_RESPONSE: &str = "controller.api.services.v1.ListSessionsResponse";
pub(crate) const SESSION: &str = "controller.api.resources.sessions.v1.Session";
pub(crate) const TARGET: &str = "controller.api.resources.targets.v1.Target";
pub(crate) const LIST_TARGETS_RESPONSE: &str = "controller.api.services.v1.ListTargetsResponse";
pub(crate) const AUTH_TOKEN: &str = "controller.api.resources.authtokens.v1.AuthToken";

fn definitions() -> &'static Value {
    static DEFINITIONS: OnceLock<Value> = OnceLock::new();
    DEFINITIONS.get_or_init(|| {
        let doc: Value = serde_json::from_str(SWAGGER).expect("the OpenAPI document is JSON");
        doc["definitions"].clone()
    })
}

/// The errors of `instance` against definition `name` (Swagger 2.0 schemas
/// are JSON Schema draft 4; additional properties are allowed, since the
/// document predates fields added after 0.13.1).
pub(crate) fn violations(name: &str, instance: &Value) -> Vec<String> {
    assert!(
        definitions().get(name).is_some(),
        "no definition {name} in the OpenAPI document"
    );
    let schema = json!({"$ref": format!("#/definitions/{name}"), "definitions": definitions()});
    let validator = jsonschema::draft4::new(&schema).expect("a valid schema");
    validator
        .iter_errors(instance)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

/// Asserts `instance` is a valid `name`.
pub(crate) fn contract(name: &str, instance: &Value) {
    let errors = violations(name, instance);
    assert!(
        errors.is_empty(),
        "{name} breaks the OpenAPI contract: {errors:?}\n{instance:#}"
    );
}

/// A client of the fake, as a Boundary client would talk to it.
pub(crate) struct Api {
    pub(crate) http: reqwest::Client,
    pub(crate) base: String,
    pub(crate) token: Option<String>,
}

impl Api {
    pub(crate) fn new(base: String) -> Self {
        Self {
            http: reqwest::Client::new(),
            base,
            token: None,
        }
    }

    async fn send(&self, builder: reqwest::RequestBuilder) -> (u16, Value) {
        let builder = match &self.token {
            Some(t) => builder.header("authorization", format!("Bearer {t}")),
            None => builder,
        };
        let response = builder.send().await.expect("the fake answers");
        let status = response.status().as_u16();
        let text = response.text().await.expect("a body");
        let body = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("JSON body: {text}"))
        };
        (status, body)
    }

    pub(crate) async fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    pub(crate) async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.http.post(format!("{}{path}", self.base)).json(&body))
            .await
    }

    pub(crate) async fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.http.delete(format!("{}{path}", self.base)))
            .await
    }

    /// Logs in with `admin` / `password` on the dev auth method; returns
    /// the AuthenticateResponse.
    pub(crate) async fn login(&mut self) -> Value {
        let (status, body) = self
            .post(
                "/v1/auth-methods/ampw_1234567890:authenticate",
                json!({"command": "login", "type": "token",
                       "attributes": {"login_name": "admin", "password": "password"}}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        contract(AUTHENTICATE_RESPONSE, &body);
        contract(AUTH_TOKEN, &body["attributes"]);
        self.token = Some(body["attributes"]["token"].as_str().unwrap().to_owned());
        body
    }

    /// Authorizes a session on `target`; returns the SessionAuthorization.
    pub(crate) async fn authorize(&self, target: &str) -> Value {
        let (status, body) = self
            .post(
                &format!("/v1/targets/{target}:authorize-session"),
                json!({}),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        contract(SESSION_AUTHORIZATION, &body);
        body
    }

    /// Reads a session (checked against the contract).
    pub(crate) async fn session(&self, id: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/sessions/{id}")).await;
        assert_eq!(status, 200, "{body}");
        contract(SESSION, &body);
        body
    }

    /// One list call (checked against the contract).
    pub(crate) async fn list(&self, query: &str) -> Value {
        let (status, body) = self.get(&format!("/v1/sessions?{query}")).await;
        assert_eq!(status, 200, "{body}");
        contract(LIST_SESSIONS_RESPONSE, &body);
        body
    }
}

/// The ids of a list answer's items.
pub(crate) fn ids(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .map(|items| {
            items
                .iter()
                .map(|i| i["id"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}

/// The `request_fields` names of an error body.
pub(crate) fn request_fields(error: &Value) -> Vec<String> {
    error["details"]["request_fields"]
        .as_array()
        .map(|f| {
            f.iter()
                .map(|f| f["name"].as_str().unwrap().to_owned())
                .collect()
        })
        .unwrap_or_default()
}
