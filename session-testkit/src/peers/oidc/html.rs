//! Just enough HTML for the approval helpers: the first form of a page and
//! its hidden fields, and a short readable excerpt of a page for error
//! messages.

use reqwest::Url;

/// The first `<form>` of `html`: its action (resolved against `base`) and
/// its hidden inputs, as name/value pairs.
pub(super) fn parse_form(html: &str, base: &Url) -> Option<(Url, Vec<(String, String)>)> {
    let start = html.find("<form")?;
    let form = &html[start..];
    let form = &form[..form.find("</form>").unwrap_or(form.len())];
    let open_tag = &form[..form.find('>')?];
    let action = match attribute(open_tag, "action") {
        Some(action) => base.join(&action).ok()?,
        None => base.clone(),
    };
    let fields = form
        .split("<input")
        .skip(1)
        .filter_map(|rest| {
            let tag = &rest[..rest.find('>').unwrap_or(rest.len())];
            (attribute(tag, "type").as_deref() == Some("hidden")).then_some(())?;
            Some((attribute(tag, "name")?, attribute(tag, "value")?))
        })
        .collect();
    Some((action, fields))
}

/// The value of the double-quoted attribute `name` in the tag text `tag`,
/// with the usual HTML entities decoded.
fn attribute(tag: &str, name: &str) -> Option<String> {
    let needle = format!("{name}=\"");
    let mut from = 0;
    // Match whole attribute names only: `name="` must not match `username="`.
    let start = loop {
        let at = from + tag[from..].find(&needle)?;
        if at == 0 || tag[..at].ends_with(char::is_whitespace) {
            break at + needle.len();
        }
        from = at + needle.len();
    };
    let end = start + tag[start..].find('"')?;
    Some(decode_entities(&tag[start..end]))
}

fn decode_entities(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// A short, readable excerpt of a page for error messages: its red error
/// paragraph if it has one, else its text without tags, styles and scripts,
/// cut to 300 characters.
pub(super) fn snippet(html: &str) -> String {
    const MAX: usize = 300;
    let mut text = String::new();
    let mut rest = html;
    // Starting inside the paragraph's opening tag.
    let mut in_tag = false;
    if let Some(at) = rest.find("class=\"red\"") {
        rest = &rest[at..];
        in_tag = true;
    }
    let mut skip_until: Option<&str> = None;
    let mut i = 0;
    while i < rest.len() {
        let tail = &rest[i..];
        if let Some(end) = skip_until {
            if tail.starts_with(end) {
                skip_until = None;
                i += end.len();
            } else {
                i += tail.chars().next().map_or(1, char::len_utf8);
            }
            continue;
        }
        if tail.starts_with("<style") {
            skip_until = Some("</style>");
            continue;
        }
        if tail.starts_with("<script") {
            skip_until = Some("</script>");
            continue;
        }
        let c = tail.chars().next().unwrap_or(' ');
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                text.push(' ');
            }
            _ if !in_tag => text.push(c),
            _ => {}
        }
        i += c.len_utf8();
    }
    let words: Vec<&str> = text.split_whitespace().collect();
    let mut out = words.join(" ");
    if out.is_empty() {
        return "(empty page)".to_owned();
    }
    if let Some((cut, _)) = out.char_indices().nth(MAX) {
        out.truncate(cut);
        out.push_str("...");
    }
    format!("\"{out}\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_are_parsed() {
        let html = r#"<body><form method="post" action="http://127.0.0.1:9/t/device">
            <input type="hidden" name="xsrf" value="a&amp;b"/>
            <input type="hidden" name="user_code" value="ABCD-EFGH"/>
            <input type="text" name="other" value="x"/></form>"#;
        let base = Url::parse("http://127.0.0.1:9/t/device?user_code=ABCD-EFGH").unwrap();
        let (action, fields) = parse_form(html, &base).unwrap();
        assert_eq!(action.as_str(), "http://127.0.0.1:9/t/device");
        assert_eq!(
            fields,
            vec![
                ("xsrf".to_owned(), "a&b".to_owned()),
                ("user_code".to_owned(), "ABCD-EFGH".to_owned())
            ]
        );

        let relative = r#"<form action="/interaction/u1" method="post"><input type="hidden" name="prompt" value="login"/></form>"#;
        let (action, fields) = parse_form(relative, &base).unwrap();
        assert_eq!(action.as_str(), "http://127.0.0.1:9/interaction/u1");
        assert_eq!(fields, vec![("prompt".to_owned(), "login".to_owned())]);
        assert!(parse_form("<p>no form</p>", &base).is_none());
    }

    #[test]
    fn attributes_match_whole_names() {
        let tag = r#"input data-name="no" name="yes" value="v""#;
        assert_eq!(attribute(tag, "name").as_deref(), Some("yes"));
        assert_eq!(attribute(tag, "value").as_deref(), Some("v"));
        assert_eq!(attribute(tag, "type"), None);
    }

    #[test]
    fn snippets_prefer_the_error_paragraph() {
        let html = "<html><head><style>h1{x:y}</style><script>var a = '<p>';</script></head>\
                    <body><h1>Sign-in</h1><p class=\"red\">The code you entered is incorrect. \
                    Try again</p><form></form></body></html>";
        assert_eq!(
            snippet(html),
            "\"The code you entered is incorrect. Try again\""
        );
        assert_eq!(
            snippet("<style>a{}</style><h1>Hi</h1>  <p>there</p>"),
            "\"Hi there\""
        );
        assert_eq!(snippet(""), "(empty page)");
        assert!(snippet(&"x".repeat(1000)).ends_with("...\""));
    }
}
