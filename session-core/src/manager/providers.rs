//! The providers a manager knows: registered ready-made, or built on first
//! use of their session type, so that one provider's bad environment (a
//! malformed `AWS_REGION`, say) breaks only its own sessions.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use crate::{Error, Result, Session, SessionAction, SessionType};

/// Builds the providers of one or more session types (e.g. the four AWS
/// credential types, which share a sink and an SDK config).
pub(crate) type ProviderFactory =
    Arc<dyn Fn() -> Result<Vec<Arc<dyn SessionAction>>> + Send + Sync>;

/// Says how a program could get a provider for a session type it has none
/// for, e.g. "enable the `aws` feature of session-sdk". The core knows no
/// downstream feature names; a facade or application supplies this.
pub(crate) type MissingProviderHint = Arc<dyn Fn(&SessionType) -> Option<String> + Send + Sync>;

/// One factory and what it built. A failed build is not remembered: the
/// next use tries again (the environment may have been fixed).
struct Lazy {
    types: Vec<SessionType>,
    factory: ProviderFactory,
    built: Mutex<Option<HashMap<SessionType, Arc<dyn SessionAction>>>>,
}

impl Lazy {
    fn get(&self, session_type: &SessionType) -> Result<Arc<dyn SessionAction>> {
        let mut built = self.built.lock().unwrap_or_else(|e| e.into_inner());
        if built.is_none() {
            let mut providers = HashMap::new();
            for provider in (self.factory)()? {
                let made = provider.session_type();
                if !self.types.contains(&made) {
                    return Err(Error::invalid_input(
                        "provider",
                        format!(
                            "a provider factory registered for {} built a provider of {made}",
                            names(&self.types)
                        ),
                    ));
                }
                providers.insert(made, provider);
            }
            *built = Some(providers);
        }
        let providers = built.as_ref().expect("built above");
        providers.get(session_type).cloned().ok_or_else(|| {
            Error::invalid_input(
                "provider",
                format!("the provider factory for {session_type} did not build one"),
            )
        })
    }
}

enum Entry {
    Ready(Arc<dyn SessionAction>),
    Lazy(Arc<Lazy>),
}

/// The session type → provider table of a `SessionManager`.
#[derive(Default)]
pub(super) struct Providers {
    entries: HashMap<SessionType, Entry>,
    hint: Option<MissingProviderHint>,
}

impl fmt::Debug for Providers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut types: Vec<_> = self.entries.keys().map(|t| t.as_str()).collect();
        types.sort_unstable();
        f.debug_list().entries(types).finish()
    }
}

fn names(types: &[SessionType]) -> String {
    types
        .iter()
        .map(|t| t.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

fn duplicate(session_type: &SessionType) -> Error {
    Error::invalid_input(
        "provider",
        format!("two providers are registered for session type {session_type}"),
    )
}

impl Providers {
    pub(super) fn add(&mut self, provider: Arc<dyn SessionAction>) -> Result<()> {
        let session_type = provider.session_type();
        if self.entries.contains_key(&session_type) {
            return Err(duplicate(&session_type));
        }
        self.entries.insert(session_type, Entry::Ready(provider));
        Ok(())
    }

    pub(super) fn add_lazy(
        &mut self,
        types: Vec<SessionType>,
        factory: ProviderFactory,
    ) -> Result<()> {
        if types.is_empty() {
            return Err(Error::invalid_input(
                "provider",
                "a provider factory must name the session types it builds",
            ));
        }
        let lazy = Arc::new(Lazy {
            types: types.clone(),
            factory,
            built: Mutex::new(None),
        });
        for session_type in types {
            if self.entries.contains_key(&session_type) {
                return Err(duplicate(&session_type));
            }
            self.entries
                .insert(session_type, Entry::Lazy(Arc::clone(&lazy)));
        }
        Ok(())
    }

    pub(super) fn set_hint(&mut self, hint: MissingProviderHint) {
        self.hint = Some(hint);
    }

    /// The provider of `session_type`, built now if it is lazy.
    pub(super) fn get(&self, session_type: &SessionType) -> Result<Arc<dyn SessionAction>> {
        self.resolve(session_type, None)
    }

    /// The provider for `session`, with errors that name the session.
    pub(super) fn for_session(&self, session: &Session) -> Result<Arc<dyn SessionAction>> {
        self.resolve(&session.session_type, Some(session))
    }

    fn resolve(
        &self,
        session_type: &SessionType,
        session: Option<&Session>,
    ) -> Result<Arc<dyn SessionAction>> {
        let built = match self.entries.get(session_type) {
            Some(Entry::Ready(provider)) => return Ok(Arc::clone(provider)),
            Some(Entry::Lazy(lazy)) => lazy.get(session_type),
            None => return Err(self.missing(session_type, session)),
        };
        match session {
            Some(session) => built.map_err(|e| e.in_session(&session.label())),
            None => built,
        }
    }

    fn missing(&self, session_type: &SessionType, session: Option<&Session>) -> Error {
        let hint = self
            .hint
            .as_ref()
            .and_then(|hint| hint(session_type))
            .map(|h| format!(" ({h})"))
            .unwrap_or_default();
        let which = session
            .map(|s| format!(" ({})", s.label()))
            .unwrap_or_default();
        Error::unsupported(
            format!("this program{hint}"),
            format!("{session_type} sessions: no provider is registered{which}"),
        )
    }
}
