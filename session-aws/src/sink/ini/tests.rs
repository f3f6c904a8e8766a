//! The INI model against hand-edited files and the quirks of both readers.

use super::*;

/// Comments of both kinds, blank lines, CRLF and LF mixed, foreign
/// profiles, an inline `#` that botocore keeps in the value, nested
/// (continuation) values, an indented key, a header with trailing text,
/// and no newline at the end.
const FIXTURE: &str = "# AWS credentials, edited by hand\r\n\
    ; a semicolon comment\r\n\
    \r\n\
    [default]\r\n\
    aws_access_key_id = AKIADEFAULT0000000001\r\n\
    aws_secret_access_key = default/secret # botocore keeps this\r\n\
    \r\n\
    [work]\n\
    AWS_ACCESS_KEY_ID=AKIAWORK00000000001\n\
    aws_secret_access_key :  work+secret\n\
    # a comment inside a section\n\
    s3 =\n\
    \x20   max_concurrent_requests = 20\n\
    \n\
    \tsignature_version = s3v4\n\
    \x20 ; indented comment\n\
    [ spaced ] ; trailing text\n\
    \x20 region = eu-west-1\n\
    output = json";

fn kinds(doc: &IniDocument) -> Vec<LineKind> {
    doc.lines.iter().map(|l| l.kind.clone()).collect()
}

fn header(name: &str) -> LineKind {
    LineKind::Header(name.into())
}

fn key(name: &str) -> LineKind {
    LineKind::Key(name.into())
}

#[test]
fn round_trip_is_byte_identical() {
    for text in [
        FIXTURE,
        "",
        "\n",
        "[a]\nk = v\n",
        "[a]\r\nk = v",
        "# only a comment",
        &FIXTURE.replace("\r\n", "\n"),
        &format!("{FIXTURE}\n\n"),
    ] {
        let doc = IniDocument::parse(text).unwrap();
        assert_eq!(doc.render().as_str(), text);
        doc.reparse().unwrap();
    }
}

#[test]
fn lines_are_classified_like_botocore() {
    use LineKind::{Blank, Comment, Continuation};
    let doc = IniDocument::parse(FIXTURE).unwrap();
    assert_eq!(
        kinds(&doc),
        vec![
            Comment,
            Comment,
            Blank,
            header("default"),
            key("aws_access_key_id"),
            key("aws_secret_access_key"),
            Blank,
            header("work"),
            key("aws_access_key_id"),
            key("aws_secret_access_key"),
            Comment,
            key("s3"),
            Continuation,
            Blank,
            Continuation,
            Comment,
            // Header name as botocore reads it: up to the last `]`.
            header(" spaced "),
            // Right after a header an indented line is a key.
            key("region"),
            key("output"),
        ]
    );
    let sections = doc.sections();
    let names: Vec<&str> = sections.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(names, ["default", "work", " spaced "]);
    assert_eq!((sections[1].header, sections[1].end), (7, 16));
    assert_eq!(sections[1].line_number(), 8);
    assert_eq!(doc.find("work"), vec![sections[1].clone()]);
    assert!(doc.find("spaced").is_empty(), "find is exact");
    assert_eq!(
        doc.value(&sections[1], "aws_secret_access_key"),
        Some("work+secret")
    );
    assert_eq!(
        doc.value(&sections[0], "aws_secret_access_key"),
        Some("default/secret # botocore keeps this")
    );
    assert!(doc.is_continued(&sections[1], "s3"));
    assert!(!doc.is_continued(&sections[1], "aws_access_key_id"));
    assert_eq!(doc.comment_after_header(&sections[0]), None);
    assert!(
        !format!("{doc:?}").contains("secret"),
        "Debug shows no text"
    );
}

#[test]
fn an_indented_header_after_a_key_is_a_continuation() {
    let doc = IniDocument::parse("[a]\nk = v\n  [b]\n").unwrap();
    assert_eq!(kinds(&doc)[2], LineKind::Continuation);
    assert_eq!(doc.sections().len(), 1);
}

#[test]
fn unreadable_files_are_refused_with_line_and_column() {
    let cases = [
        ("\u{feff}[a]\nk = v\n", 1, 1, "byte order mark"),
        ("[a]\nk = v\rx = y\n", 2, 6, "carriage return"),
        ("# ok\nk = v\n[a]\n", 2, 1, "before the first [section]"),
        ("[a]\nk = v\n\njust words\n", 4, 1, "neither"),
        ("[a]\n = v\n", 2, 2, "no key"),
        ("[a]\n[b\n", 2, 1, "not a [section] header"),
        ("[a]\n[]\n", 2, 1, "not a [section] header"),
    ];
    for (text, line, column, needle) in cases {
        let err = IniDocument::parse(text).err().unwrap();
        assert_eq!((err.line, err.column), (line, column), "{text:?}: {err:?}");
        assert!(err.message.contains(needle), "{text:?}: {}", err.message);
    }
}

#[test]
fn values_that_would_read_back_differently_are_refused() {
    for bad in [
        "", "a\nb", "a\rb", " lead", "trail ", "v # c", "v\t;c", "nul\0",
    ] {
        let err = check_value("k", bad).unwrap_err();
        assert_eq!(err.what, "k");
        if !bad.is_empty() {
            assert!(!err.reason.contains(bad), "the value is not echoed");
        }
    }
    for good in ["v#c", "a;b", "x/y+z=", "eu-west-1", "has space"] {
        check_value("k", good).unwrap();
    }
    assert!(check_key("Region").is_err());
    assert!(check_key("aws key").is_err());
    assert!(check_key("").is_err());
    check_key("aws_session_token").unwrap();
}

#[test]
fn set_keys_replaces_in_place_removes_and_inserts() {
    let text = "[a]\nx = 1\n[ours]\n# marker\n\
                aws_access_key_id = OLD\n\
                aws_secret_access_key = old\n\
                \x20 continued\n\
                output = json\n\
                aws_session_token = tok\n\
                \n# about b\n[b]\ny = 2\n";
    let mut doc = IniDocument::parse(text).unwrap();
    let ours = doc.find("ours").remove(0);
    let managed = [
        "aws_access_key_id",
        "aws_secret_access_key",
        "aws_session_token",
        "region",
    ];
    doc.set_keys(
        ours.header,
        &managed,
        &[
            ("aws_access_key_id", "NEW"),
            ("aws_secret_access_key", "new"),
            ("region", "eu-west-1"),
        ],
    )
    .unwrap();
    assert_eq!(
        doc.render().as_str(),
        "[a]\nx = 1\n[ours]\n# marker\n\
         aws_access_key_id = NEW\n\
         aws_secret_access_key = new\n\
         output = json\n\
         region = eu-west-1\n\
         \n# about b\n[b]\ny = 2\n"
    );
    doc.reparse().unwrap();
}

#[test]
fn set_keys_in_an_empty_section_goes_after_its_marker() {
    let mut doc = IniDocument::parse("[s]\r\n# marker\r\n\r\n[t]\r\n").unwrap();
    doc.set_keys(0, &["region"], &[("region", "us-east-1")])
        .unwrap();
    assert_eq!(
        doc.render().as_str(),
        "[s]\r\n# marker\r\nregion = us-east-1\r\n\r\n[t]\r\n"
    );
}

#[test]
fn set_keys_keeps_a_missing_final_newline() {
    let mut doc = IniDocument::parse("[s]\nregion = a").unwrap();
    doc.set_keys(0, &["region"], &[("region", "b")]).unwrap();
    assert_eq!(doc.render().as_str(), "[s]\nregion = b");
    let mut doc = IniDocument::parse("[s]\nother = a").unwrap();
    doc.set_keys(0, &["region"], &[("region", "b")]).unwrap();
    assert_eq!(doc.render().as_str(), "[s]\nother = a\nregion = b");
}

#[test]
fn set_keys_refuses_bad_values_and_changes_nothing() {
    let text = "[s]\nregion = a\n";
    let mut doc = IniDocument::parse(text).unwrap();
    let err = doc
        .set_keys(0, &["region"], &[("region", "x # y")])
        .unwrap_err();
    assert_eq!(err.what, "region");
    assert_eq!(doc.render().as_str(), text);
}

#[test]
fn append_and_remove_restore_the_original_bytes() {
    for original in [
        "",
        "[a]\r\nk = v\r\n",
        "[a]\nk = v",
        "# just a comment",
        "[a]\nk = v\n\n\n",
        FIXTURE,
    ] {
        let mut doc = IniDocument::parse(original).unwrap();
        doc.append_section("dev", &["# marker"], &[("region", "eu-west-1")])
            .unwrap();
        let rendered = doc.render();
        let newline = if original.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        };
        let block = format!("[dev]{newline}# marker{newline}region = eu-west-1");
        if original.is_empty() || original.ends_with('\n') {
            assert_eq!(rendered.as_str(), format!("{original}{block}{newline}"));
        } else {
            // A file without a final newline keeps having none.
            assert_eq!(rendered.as_str(), format!("{original}{newline}{block}"));
        }
        let again = doc.reparse().unwrap();
        let dev = again.find("dev").remove(0);
        assert_eq!(again.comment_after_header(&dev), Some("# marker"));
        assert_eq!(again.value(&dev, "region"), Some("eu-west-1"));

        doc.remove_section(dev.header);
        assert_eq!(doc.render().as_str(), original, "{original:?}");
    }
}

#[test]
fn remove_leaves_the_users_trailing_comments_and_following_sections() {
    let text = "[a]\nk = v\n[dev]\n# marker\nregion = x\n  more\n\n# about b\n[b]\nj = w\n";
    let mut doc = IniDocument::parse(text).unwrap();
    let dev = doc.find("dev").remove(0);
    doc.remove_section(dev.header);
    assert_eq!(
        doc.render().as_str(),
        "[a]\nk = v\n\n# about b\n[b]\nj = w\n"
    );
    // A section with only a marker.
    let mut doc = IniDocument::parse("[dev]\n# marker\n\n[b]\n").unwrap();
    doc.remove_section(0);
    assert_eq!(doc.render().as_str(), "\n[b]\n");
}

#[test]
fn append_refuses_bad_headers_and_comments() {
    let mut doc = IniDocument::parse("").unwrap();
    assert!(doc.append_section("a]b", &[], &[]).is_err());
    assert!(doc.append_section(" a", &[], &[]).is_err());
    assert!(doc.append_section("a", &["no hash"], &[]).is_err());
    assert!(doc.append_section("a", &["# x\ny"], &[]).is_err());
    assert!(doc.append_section("a", &[], &[("Key", "v")]).is_err());
    assert_eq!(doc.render().as_str(), "");
}

#[test]
fn reparse_catches_an_edit_that_changes_how_other_lines_read() {
    // An indented key right after a header is a key; a key we insert
    // before it at column 0 would turn it into a continuation.
    let mut doc = IniDocument::parse("[s]\n# marker\n  output = json\n").unwrap();
    doc.lines.insert(2, key_line("region", "x", Ending::Lf));
    let err = doc.reparse().err().unwrap();
    assert!(err.contains("line 4 would read as a continuation"), "{err}");
}
