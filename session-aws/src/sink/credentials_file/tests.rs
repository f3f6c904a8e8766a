//! The shared credentials file sink against real files in a temporary home.

use super::edit::sidecar;
use super::*;
use crate::sink::ini::{IniDocument, Section};
use session_core::{Secret, SessionId};

/// A hand-edited credentials file: comments of both kinds, CRLF and LF
/// lines, foreign profiles, an inline `#`, a nested (continuation) value.
const FIXTURE: &str = "# AWS credentials, edited by hand\r\n\
    ; keep this comment\r\n\
    \r\n\
    [default]\r\n\
    aws_access_key_id = AKIADEFAULT000000001\r\n\
    aws_secret_access_key = default/secret+1 # botocore keeps this\r\n\
    \r\n\
    [work]\n\
    aws_access_key_id=AKIAWORK000000000001\n\
    aws_secret_access_key :  work+secret\n\
    # a comment inside a section\n\
    s3 =\n\
    \x20   max_concurrent_requests = 20\n\
    \x20   signature_version = s3v4\n\
    \n\
    ; about the next one\n\
    [prod]\n\
    aws_access_key_id = AKIAPROD000000000001\n\
    aws_secret_access_key = prod-secret\n";

const CONFIG_FIXTURE: &str = "[default]\nregion = us-east-1\n\n\
    # foreign profile\n\
    [profile work]\n\
    region = us-west-2\n\
    output = json\n";

struct Env {
    dir: tempfile::TempDir,
    sink: SharedCredentialsFile,
}

impl Env {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let sink = SharedCredentialsFile::from_env_iter([(
            "HOME".to_owned(),
            dir.path().to_str().unwrap().to_owned(),
        )])
        .unwrap();
        Self { dir, sink }
    }

    fn with_fixtures() -> Self {
        let env = Self::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        std::fs::write(env.credentials(), FIXTURE).unwrap();
        std::fs::write(env.config(), CONFIG_FIXTURE).unwrap();
        env
    }

    fn credentials(&self) -> PathBuf {
        self.dir.path().join(".aws/credentials")
    }

    fn config(&self) -> PathBuf {
        self.dir.path().join(".aws/config")
    }

    fn read(&self, path: PathBuf) -> String {
        std::fs::read_to_string(path).unwrap()
    }
}

fn creds(n: u32, token: bool) -> AwsCredentials {
    AwsCredentials {
        access_key_id: format!("ASIATESTKEY{n:08}"),
        secret_access_key: Secret::new(format!("secret/{n}+abc")),
        session_token: token.then(|| Secret::new(format!("token{n}=="))),
        expiration: None,
    }
}

fn target(session: SessionId, profile: &str, region: Option<&str>) -> SinkTarget {
    SinkTarget {
        session_id: session,
        profile: profile.to_owned(),
        region: region.map(str::to_owned),
    }
}

fn section(nl: &str, header: &str, session: SessionId, keys: &[(&str, &str)]) -> String {
    let mut out = format!("[{header}]{nl}{MARKER_PREFIX}{session}{nl}");
    for (k, v) in keys {
        out.push_str(&format!("{k} = {v}{nl}"));
    }
    out
}

fn cred_section(nl: &str, profile: &str, session: SessionId, c: &AwsCredentials) -> String {
    let mut keys = vec![
        ("aws_access_key_id", c.access_key_id.clone()),
        (
            "aws_secret_access_key",
            c.secret_access_key.expose().to_owned(),
        ),
    ];
    if let Some(t) = &c.session_token {
        keys.push(("aws_session_token", t.expose().to_owned()));
    }
    let keys: Vec<(&str, &str)> = keys.iter().map(|(k, v)| (*k, v.as_str())).collect();
    section(nl, profile, session, &keys)
}

#[cfg(unix)]
fn inode(path: &Path) -> u64 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).unwrap().ino()
}

#[tokio::test]
async fn publish_keeps_foreign_bytes_and_withdraw_restores_the_file() {
    let env = Env::with_fixtures();
    let id = SessionId::new();
    let c = creds(1, true);
    let t = target(id, "dev", Some("eu-west-1"));
    env.sink.publish(&t, &c).await.unwrap();

    // Appended in the file's style (its first line ends in CRLF); every
    // byte before it is the fixture's.
    let written = env.read(env.credentials());
    assert_eq!(
        written,
        format!("{FIXTURE}{}", cred_section("\r\n", "dev", id, &c))
    );
    let config = env.read(env.config());
    assert_eq!(
        config,
        format!(
            "{CONFIG_FIXTURE}{}",
            section("\n", "profile dev", id, &[("region", "eu-west-1")])
        )
    );

    env.sink.withdraw(&t).await.unwrap();
    assert_eq!(env.read(env.credentials()), FIXTURE);
    assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

    // Idempotent, and a withdraw with nothing to remove writes nothing.
    #[cfg(unix)]
    let before = (inode(&env.credentials()), inode(&env.config()));
    env.sink.withdraw(&t).await.unwrap();
    #[cfg(unix)]
    assert_eq!(before, (inode(&env.credentials()), inode(&env.config())));
    assert_eq!(env.read(env.credentials()), FIXTURE);
}

#[tokio::test]
async fn rotation_replaces_the_keys_in_place() {
    let env = Env::with_fixtures();
    let id = SessionId::new();
    let t = target(id, "dev", Some("eu-west-1"));
    env.sink.publish(&t, &creds(1, true)).await.unwrap();
    // The user appends a profile after ours: ours is now in the middle.
    let tail = "\r\n# added later\r\n[later]\r\naws_access_key_id = AKIALATER00000000001\r\n";
    let mut text = env.read(env.credentials());
    text.push_str(tail);
    std::fs::write(env.credentials(), &text).unwrap();

    // New keys, no session token this time, another region.
    let rotated = creds(2, false);
    let t2 = target(id, "dev", Some("eu-central-1"));
    env.sink.publish(&t2, &rotated).await.unwrap();
    assert_eq!(
        env.read(env.credentials()),
        format!(
            "{FIXTURE}{}{tail}",
            cred_section("\r\n", "dev", id, &rotated)
        )
    );
    assert_eq!(
        env.read(env.config()),
        format!(
            "{CONFIG_FIXTURE}{}",
            section("\n", "profile dev", id, &[("region", "eu-central-1")])
        )
    );

    // A publish without a region takes our config section away.
    env.sink
        .publish(&target(id, "dev", None), &rotated)
        .await
        .unwrap();
    assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

    env.sink.withdraw(&t2).await.unwrap();
    assert_eq!(env.read(env.credentials()), format!("{FIXTURE}{tail}"));
}

#[tokio::test]
async fn an_unmarked_section_with_the_name_is_a_conflict_and_nothing_is_written() {
    let env = Env::with_fixtures();
    let id = SessionId::new();
    // `[work]` in the credentials file is the user's.
    let err = env
        .sink
        .publish(&target(id, "work", Some("eu-west-1")), &creds(1, true))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert_eq!(err.category(), "invalid_input", "{message}");
    for needle in [
        env.credentials().display().to_string(),
        "line 8".to_owned(),
        "[work]".to_owned(),
        "rename the profile".to_owned(),
        "remove that section".to_owned(),
        "Nothing was written".to_owned(),
    ] {
        assert!(
            message.contains(&needle),
            "{needle:?} missing in: {message}"
        );
    }
    assert!(!message.contains("secret/1"), "{message}");
    assert_eq!(env.read(env.credentials()), FIXTURE);
    assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

    // A conflict only in the config file leaves the credentials file
    // untouched too: `[profile work]` is there, `[work]` is not needed.
    std::fs::write(env.credentials(), "").unwrap();
    let err = env
        .sink
        .publish(&target(id, "work", Some("eu-west-1")), &creds(1, true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("[profile work]"), "{err}");
    assert!(
        err.to_string()
            .contains(&env.config().display().to_string()),
        "{err}"
    );
    assert_eq!(env.read(env.credentials()), "");
    assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

    // `[default]` in the config file is the user's too.
    let err = env
        .sink
        .publish(&target(id, "default", Some("eu-west-1")), &creds(1, true))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("[default]"), "{err}");
    assert_eq!(env.read(env.credentials()), "");
}

#[tokio::test]
async fn config_spellings_botocore_reads_as_the_same_profile_conflict() {
    for existing in ["[profile \"dev\"]", "[profile  dev]", "[ profile dev ]"] {
        let env = Env::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        let config = format!("{existing}\nregion = us-east-1\n");
        std::fs::write(env.config(), &config).unwrap();
        let err = env
            .sink
            .publish(
                &target(SessionId::new(), "dev", Some("eu-west-1")),
                &creds(1, false),
            )
            .await
            .unwrap_err();
        assert!(err.to_string().contains("is taken"), "{existing}: {err}");
        assert_eq!(env.read(env.config()), config);
        assert!(!env.credentials().exists(), "{existing}");
    }
    let env = Env::new();
    std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
    std::fs::write(env.config(), "[profile default]\nregion = us-east-1\n").unwrap();
    let err = env
        .sink
        .publish(
            &target(SessionId::new(), "default", Some("eu-west-1")),
            &creds(1, false),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains("[profile default]"), "{err}");
}

#[tokio::test]
async fn a_section_marked_for_another_session_is_refused_and_left_alone() {
    let env = Env::with_fixtures();
    let (a, b) = (SessionId::new(), SessionId::new());
    env.sink
        .publish(&target(a, "dev", None), &creds(1, true))
        .await
        .unwrap();
    let after_a = env.read(env.credentials());

    let err = env
        .sink
        .publish(&target(b, "dev", None), &creds(2, true))
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains(&a.to_string()), "{message}");
    assert!(message.contains("another session-sdk session"), "{message}");
    assert_eq!(env.read(env.credentials()), after_a);

    // B's withdraw does not remove A's section.
    env.sink.withdraw(&target(b, "dev", None)).await.unwrap();
    assert_eq!(env.read(env.credentials()), after_a);
    env.sink.withdraw(&target(a, "dev", None)).await.unwrap();
    assert_eq!(env.read(env.credentials()), FIXTURE);
}

#[tokio::test]
async fn a_marker_that_is_not_the_first_line_does_not_make_a_section_ours() {
    let env = Env::new();
    let id = SessionId::new();
    std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
    let text = format!("[dev]\n\n{MARKER_PREFIX}{id}\naws_access_key_id = AKIAUSER00000000001\n");
    std::fs::write(env.credentials(), &text).unwrap();
    assert!(
        env.sink
            .publish(&target(id, "dev", None), &creds(1, false))
            .await
            .is_err()
    );
    env.sink.withdraw(&target(id, "dev", None)).await.unwrap();
    assert_eq!(env.read(env.credentials()), text);
}

#[tokio::test]
async fn a_duplicate_of_our_section_is_refused_other_duplicates_are_left_alone() {
    let env = Env::new();
    std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
    let text = "[dup]\nk = 1\n[other]\nk = 2\n[dup]\nk = 3\n";
    std::fs::write(env.credentials(), text).unwrap();
    let id = SessionId::new();
    let err = env
        .sink
        .publish(&target(id, "dup", None), &creds(1, false))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "corrupt");
    let message = err.to_string();
    assert!(
        message.contains("line 5") && message.contains("line 1"),
        "{message}"
    );
    assert!(message.contains("[dup]"), "{message}");
    assert_eq!(env.read(env.credentials()), text);

    env.sink
        .publish(&target(id, "fine", None), &creds(1, false))
        .await
        .unwrap();
    let c = creds(1, false);
    assert_eq!(
        env.read(env.credentials()),
        format!("{text}{}", cred_section("\n", "fine", id, &c))
    );
}

#[tokio::test]
async fn an_unparseable_file_is_never_rewritten() {
    for (text, line) in [
        (
            "[ok]\naws_access_key_id = AKIAOK0000000000001\nthis is not ini\n",
            3,
        ),
        ("\u{feff}[ok]\nk = v\n", 1),
        ("k = v\n[ok]\n", 1),
    ] {
        let env = Env::new();
        std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
        std::fs::write(env.credentials(), text).unwrap();
        let id = SessionId::new();
        let err = env
            .sink
            .publish(&target(id, "dev", None), &creds(1, false))
            .await
            .unwrap_err();
        let message = err.to_string();
        assert_eq!(err.category(), "corrupt", "{message}");
        assert!(
            message.contains(&env.credentials().display().to_string()),
            "{message}"
        );
        assert!(message.contains(&format!("line {line}")), "{message}");
        let err = env
            .sink
            .withdraw(&target(id, "dev", None))
            .await
            .unwrap_err();
        assert_eq!(err.category(), "corrupt");
        assert_eq!(env.read(env.credentials()), text);
    }
    let env = Env::new();
    std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
    std::fs::write(env.credentials(), b"[ok]\nk = \xff\n").unwrap();
    let err = env
        .sink
        .publish(&target(SessionId::new(), "dev", None), &creds(1, false))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("line 2, column 5"), "{err}");
    assert_eq!(
        std::fs::read(env.credentials()).unwrap(),
        b"[ok]\nk = \xff\n"
    );
}

#[tokio::test]
async fn values_the_readers_would_misread_are_refused_without_echoing_them() {
    let env = Env::with_fixtures();
    let mut c = creds(1, true);
    c.session_token = Some(Secret::new("tok # en-CANARY"));
    let err = env
        .sink
        .publish(&target(SessionId::new(), "dev", None), &c)
        .await
        .unwrap_err();
    let message = format!("{err} {err:?}");
    assert!(message.contains("aws_session_token"), "{message}");
    assert!(!message.contains("CANARY"), "{message}");
    c.session_token = Some(Secret::new("line\nbreak-CANARY"));
    let err = env
        .sink
        .publish(&target(SessionId::new(), "dev", None), &c)
        .await
        .unwrap_err();
    assert!(!format!("{err} {err:?}").contains("CANARY"));
    assert_eq!(env.read(env.credentials()), FIXTURE);
    assert!(!format!("{:?}", env.sink).contains("secret"));

    // A bad region names the config file, where it would have gone.
    let err = env
        .sink
        .publish(
            &target(SessionId::new(), "dev", Some("eu-west-1 ;x")),
            &creds(1, false),
        )
        .await
        .unwrap_err();
    let message = err.to_string();
    assert!(message.contains("invalid region"), "{message}");
    assert!(
        message.contains(&env.config().display().to_string()),
        "{message}"
    );
    assert_eq!(env.read(env.config()), CONFIG_FIXTURE);

    for bad in ["DEFAULT", "has space", "profile x", ""] {
        let err = env
            .sink
            .publish(&target(SessionId::new(), bad, None), &creds(1, false))
            .await
            .unwrap_err();
        assert_eq!(err.category(), "invalid_input", "{bad:?}");
    }
    assert_eq!(env.read(env.credentials()), FIXTURE);
}

#[cfg(unix)]
#[tokio::test]
async fn files_are_private_and_the_directory_is_created_0700() {
    use std::os::unix::fs::PermissionsExt;
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let env = Env::new();
    let id = SessionId::new();
    env.sink
        .publish(&target(id, "default", Some("us-east-1")), &creds(1, true))
        .await
        .unwrap();
    assert_eq!(mode(&env.dir.path().join(".aws")), 0o700);
    assert_eq!(mode(&env.credentials()), 0o600);
    assert_eq!(mode(&env.config()), 0o600);
    assert_eq!(
        env.read(env.config()),
        section("\n", "default", id, &[("region", "us-east-1")])
    );

    // A world-readable existing file becomes private on the next write.
    std::fs::set_permissions(env.credentials(), std::fs::Permissions::from_mode(0o644)).unwrap();
    env.sink
        .publish(&target(id, "default", Some("us-east-1")), &creds(2, true))
        .await
        .unwrap();
    assert_eq!(mode(&env.credentials()), 0o600);

    env.sink
        .withdraw(&target(id, "default", Some("us-east-1")))
        .await
        .unwrap();
    assert_eq!(env.read(env.credentials()), "");
    assert_eq!(env.read(env.config()), "");
}

#[cfg(unix)]
#[tokio::test]
async fn a_symlinked_file_stays_a_link_and_its_target_is_updated() {
    let env = Env::new();
    let aws = env.dir.path().join(".aws");
    let dotfiles = env.dir.path().join("dotfiles");
    std::fs::create_dir_all(&aws).unwrap();
    std::fs::create_dir_all(&dotfiles).unwrap();
    std::fs::write(dotfiles.join("credentials"), FIXTURE).unwrap();
    std::fs::write(dotfiles.join("config"), CONFIG_FIXTURE).unwrap();
    // One absolute link, one relative.
    std::os::unix::fs::symlink(dotfiles.join("credentials"), env.credentials()).unwrap();
    std::os::unix::fs::symlink("../dotfiles/config", env.config()).unwrap();

    let id = SessionId::new();
    let c = creds(1, true);
    env.sink
        .publish(&target(id, "dev", Some("eu-west-1")), &c)
        .await
        .unwrap();
    for (link, points_to) in [
        (env.credentials(), dotfiles.join("credentials")),
        (env.config(), PathBuf::from("../dotfiles/config")),
    ] {
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_link(&link).unwrap(), points_to);
    }
    assert_eq!(
        env.read(dotfiles.join("credentials")),
        format!("{FIXTURE}{}", cred_section("\r\n", "dev", id, &c))
    );
    assert!(
        env.read(dotfiles.join("config"))
            .contains("[profile dev]\n")
    );
    // The lock is beside the target.
    assert!(dotfiles.join("credentials.lock").exists());

    env.sink
        .withdraw(&target(id, "dev", Some("eu-west-1")))
        .await
        .unwrap();
    assert_eq!(env.read(dotfiles.join("credentials")), FIXTURE);
    assert_eq!(env.read(dotfiles.join("config")), CONFIG_FIXTURE);
    assert!(
        std::fs::symlink_metadata(env.credentials())
            .unwrap()
            .file_type()
            .is_symlink()
    );
}

#[tokio::test]
async fn a_file_without_a_final_newline_keeps_having_none() {
    let env = Env::new();
    std::fs::create_dir_all(env.dir.path().join(".aws")).unwrap();
    let text = "[a]\naws_access_key_id = AKIAA0000000000000001";
    std::fs::write(env.credentials(), text).unwrap();
    let id = SessionId::new();
    let c = creds(1, false);
    env.sink
        .publish(&target(id, "dev", None), &c)
        .await
        .unwrap();
    let section = cred_section("\n", "dev", id, &c);
    assert_eq!(
        env.read(env.credentials()),
        format!("{text}\n{}", section.trim_end_matches('\n'))
    );
    env.sink.withdraw(&target(id, "dev", None)).await.unwrap();
    assert_eq!(env.read(env.credentials()), text);
}

#[tokio::test]
async fn withdraw_with_no_files_creates_nothing() {
    let env = Env::new();
    env.sink
        .withdraw(&target(SessionId::new(), "dev", Some("eu-west-1")))
        .await
        .unwrap();
    assert!(!env.dir.path().join(".aws").exists());
    // A publish without a region does not create the config file.
    env.sink
        .publish(&target(SessionId::new(), "dev", None), &creds(1, false))
        .await
        .unwrap();
    assert!(env.credentials().exists());
    assert!(!env.config().exists());
}

#[tokio::test]
async fn concurrent_publishers_lose_no_section() {
    let env = Env::with_fixtures();
    let spawn = |prefix: &'static str| {
        // Separate instances, as separate processes would have.
        let sink = SharedCredentialsFile::with_paths(env.credentials(), env.config());
        tokio::spawn(async move {
            for i in 0..20 {
                let t = target(SessionId::new(), &format!("{prefix}{i}"), Some("eu-west-1"));
                sink.publish(&t, &creds(i, true)).await.unwrap();
            }
        })
    };
    let (a, b) = (spawn("a"), spawn("b"));
    a.await.unwrap();
    b.await.unwrap();

    let text = env.read(env.credentials());
    assert!(text.starts_with(FIXTURE));
    let doc = IniDocument::parse(&text).unwrap();
    let config = env.read(env.config());
    let config_doc = IniDocument::parse(&config).unwrap();
    for prefix in ["a", "b"] {
        for i in 0..20 {
            let name = format!("{prefix}{i}");
            let found: Vec<Section> = doc
                .sections()
                .into_iter()
                .filter(|s| s.name == name)
                .collect();
            assert_eq!(found.len(), 1, "{name}");
            assert_eq!(
                doc.value(&found[0], "aws_access_key_id"),
                Some(creds(i, true).access_key_id.as_str())
            );
            let header = format!("profile {name}");
            assert_eq!(
                config_doc
                    .sections()
                    .iter()
                    .filter(|s| s.name == header)
                    .count(),
                1,
                "{header}"
            );
        }
    }
    assert_eq!(doc.sections().len(), 3 + 40);
}

#[tokio::test]
async fn a_held_lock_times_out_with_an_actionable_error() {
    let env = Env::with_fixtures();
    let lock = sidecar(&env.credentials());
    let _held = private_file::lock_exclusive(&lock, Duration::from_secs(1)).unwrap();
    let sink = env
        .sink
        .clone()
        .with_lock_timeout(Duration::from_millis(50));
    let err = sink
        .publish(&target(SessionId::new(), "dev", None), &creds(1, true))
        .await
        .unwrap_err();
    assert_eq!(err.category(), "timeout");
    assert!(err.is_retryable());
    assert!(
        err.to_string().contains(&lock.display().to_string()),
        "{err}"
    );
    assert_eq!(env.read(env.credentials()), FIXTURE);
}

#[test]
fn paths_come_from_the_variables_with_tilde_expanded() {
    let vars = |pairs: &[(&str, &str)]| {
        SharedCredentialsFile::from_env_iter(
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
        )
        .unwrap()
    };
    let sink = vars(&[("HOME", "/home/u")]);
    assert_eq!(
        sink.credentials_path(),
        Path::new("/home/u/.aws/credentials")
    );
    assert_eq!(sink.config_path(), Path::new("/home/u/.aws/config"));
    let sink = vars(&[
        ("HOME", "/home/u"),
        (CREDENTIALS_FILE_ENV, "~/x/creds"),
        (CONFIG_FILE_ENV, "/etc/aws/config"),
    ]);
    assert_eq!(sink.credentials_path(), Path::new("/home/u/x/creds"));
    assert_eq!(sink.config_path(), Path::new("/etc/aws/config"));
    let sink = vars(&[
        ("HOME", "/home/u"),
        (CREDENTIALS_FILE_ENV, ""),
        (CONFIG_FILE_ENV, "~"),
    ]);
    assert_eq!(
        sink.credentials_path(),
        Path::new("/home/u/.aws/credentials")
    );
    assert_eq!(sink.config_path(), Path::new("/home/u"));
    let sink = vars(&[
        (CREDENTIALS_FILE_ENV, "rel/creds"),
        (CONFIG_FILE_ENV, "~user/c"),
    ]);
    assert_eq!(sink.credentials_path(), Path::new("rel/creds"));
    assert_eq!(sink.config_path(), Path::new("~user/c"));
    // Without HOME the platform's home directory is used.
    if let Some(dirs) = directories::BaseDirs::new() {
        let sink = vars(&[]);
        assert_eq!(
            sink.credentials_path(),
            dirs.home_dir().join(".aws/credentials")
        );
    }
    assert_eq!(
        SharedCredentialsFile::with_paths("a".into(), "b".into()).name(),
        "credentials-file"
    );
}

#[tokio::test]
async fn the_same_file_for_both_is_refused() {
    let env = Env::with_fixtures();
    let sink = SharedCredentialsFile::with_paths(env.credentials(), env.credentials());
    let err = sink
        .publish(
            &target(SessionId::new(), "dev", Some("eu-west-1")),
            &creds(1, true),
        )
        .await
        .unwrap_err();
    assert!(err.to_string().contains(CONFIG_FILE_ENV), "{err}");
    assert_eq!(env.read(env.credentials()), FIXTURE);
}
