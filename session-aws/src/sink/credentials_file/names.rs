//! How the two files name a profile's section, and whose a section is.

use session_core::SessionId;

use super::MARKER_PREFIX;
use crate::sink::ini::{IniDocument, Section};

/// The keys this sink writes, and owns, in its credentials file section.
pub(super) const CREDENTIAL_KEYS: [&str; 3] = [
    "aws_access_key_id",
    "aws_secret_access_key",
    "aws_session_token",
];
/// The keys this sink writes, and owns, in its config file section.
pub(super) const CONFIG_KEYS: [&str; 2] = ["region", "credential_process"];

/// Which of the two files, and how it names a profile's section.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum FileKind {
    Credentials,
    Config,
}

impl FileKind {
    pub(super) fn describe(self) -> &'static str {
        match self {
            FileKind::Credentials => "AWS shared credentials file",
            FileKind::Config => "AWS config file",
        }
    }

    pub(super) fn managed_keys(self) -> &'static [&'static str] {
        match self {
            FileKind::Credentials => &CREDENTIAL_KEYS,
            FileKind::Config => &CONFIG_KEYS,
        }
    }

    /// The header we write for `profile`.
    pub(super) fn header(self, profile: &str) -> String {
        match self {
            FileKind::Credentials => profile.to_owned(),
            FileKind::Config if profile == "default" => "default".to_owned(),
            FileKind::Config => format!("profile {profile}"),
        }
    }

    /// Whether a section named `name` is `profile` for botocore or the Rust
    /// SDK: our header, also with whitespace around it, and in the config
    /// file any `profile …` spelling botocore splits (like a shell) into
    /// `profile` and the name, e.g. `profile "dev"` or `profile default`.
    pub(super) fn names_profile(self, name: &str, profile: &str) -> bool {
        if name.trim() == self.header(profile) {
            return true;
        }
        self == FileKind::Config
            && name.starts_with("profile")
            && shell_words(name).is_some_and(|words| words.len() == 2 && words[1] == profile)
    }
}

/// `shlex.split` (POSIX mode, no comments), enough to read section names the
/// way botocore does. `None` for unbalanced quotes or a trailing `\`.
fn shell_words(text: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match c {
            ' ' | '\t' | '\r' | '\n' => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            c @ ('"' | '\\' | '$' | '`') => word.push(c),
                            c => {
                                word.push('\\');
                                word.push(c);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                word.push(chars.next()?);
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// The marker line of `session`.
pub(super) fn marker(session: SessionId) -> String {
    format!("{MARKER_PREFIX}{session}")
}

/// Who a section belongs to, from the line right after its header.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Owner {
    ThisSession,
    OtherSession(String),
    Unmarked,
}

pub(super) fn owner(doc: &IniDocument, section: &Section, session: SessionId) -> Owner {
    let Some(comment) = doc.comment_after_header(section) else {
        return Owner::Unmarked;
    };
    let Some(id) = comment
        .strip_prefix(MARKER_PREFIX)
        .map(str::trim)
        .filter(|id| !id.is_empty())
    else {
        return Owner::Unmarked;
    };
    if id.eq_ignore_ascii_case(&session.to_string()) {
        Owner::ThisSession
    } else {
        Owner::OtherSession(id.to_owned())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_split_like_shlex() {
        let split = |s: &str| shell_words(s).map(|w| w.join("|"));
        assert_eq!(split("profile dev").as_deref(), Some("profile|dev"));
        assert_eq!(split("profile  \"d e\"").as_deref(), Some("profile|d e"));
        assert_eq!(split("profile 'x'y").as_deref(), Some("profile|xy"));
        assert_eq!(split("profile \"unbalanced"), None);
        assert_eq!(split("a\\ b").as_deref(), Some("a b"));
        assert!(FileKind::Config.names_profile("profile \"dev\"", "dev"));
        assert!(FileKind::Config.names_profile("profile default", "default"));
        assert!(!FileKind::Config.names_profile("profiledev", "dev"));
        assert!(!FileKind::Credentials.names_profile("profile dev", "dev"));
        assert!(FileKind::Credentials.names_profile(" dev ", "dev"));
    }
}
