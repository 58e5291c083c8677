//! Fixtures are written with `\n` for readability; `crlf` turns them into
//! the CRLF messages the store holds.

use super::*;

fn crlf(s: &str) -> Vec<u8> {
    s.replace("\r\n", "\n").replace('\n', "\r\n").into_bytes()
}

fn cid_url(cid: &str) -> String {
    format!("/mail/3/7/cid/{cid}")
}

/// The `<body>` of the document for an HTML-only message: what the mail
/// contributed, without the wrapper's own head.
fn sanitized_with(html: &str, allow_remote: bool) -> String {
    let raw = crlf(&format!("From: a@example.test\nSubject: t\nContent-Type: text/html; charset=utf-8\n\n{html}\n"));
    let doc = body_document(&raw, allow_remote, &cid_url);
    let start = doc.find("<body>").expect("body start") + "<body>".len();
    let end = doc.rfind("</body>").expect("body end");
    doc[start..end].trim_end().to_owned()
}

fn sanitized(html: &str) -> String {
    sanitized_with(html, false)
}

fn assert_absent(out: &str, needles: &[&str]) {
    let lower = out.to_ascii_lowercase();
    for needle in needles {
        assert!(!lower.contains(needle), "{needle:?} survived in {out:?}");
    }
}

/// Standard base64, for building fixtures with binary content.
fn base64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out.as_bytes().chunks(76).map(|l| String::from_utf8_lossy(l).into_owned()).collect::<Vec<_>>().join("\n")
}

// --- Sanitiser: the security boundary -----------------------------------

#[test]
fn script_elements_are_removed_with_their_content() {
    let out = sanitized("<p>hi</p><script>alert(1)</script><SCRIPT src=//evil.test/x.js></SCRIPT>");
    assert!(out.contains("<p>hi</p>"), "{out}");
    assert_absent(&out, &["script", "alert", "evil"]);
}

#[test]
fn event_handler_attributes_are_removed() {
    let out = sanitized(
        "<body onload=\"alert(1)\"><p onclick=\"alert(2)\" onmouseover=x()>a</p>\
         <img src=\"cid:nothing\" onerror=\"alert(3)\" alt=\"pic\"><a href=\"https://ok.test/\" onfocus=alert(4)>l</a></body>",
    );
    assert_absent(&out, &["onload", "onclick", "onmouseover", "onerror", "onfocus", "alert"]);
    assert!(out.contains("alt=\"pic\""), "{out}");
}

#[test]
fn forms_and_their_controls_are_removed() {
    let out = sanitized(
        "<form action=\"https://evil.test/steal\" method=post><p>Password:</p>\
         <input type=password name=p><textarea>t</textarea><select><option>o</option></select>\
         <button formaction=\"https://evil.test/\">Go</button></form>",
    );
    assert!(out.contains("Password:"), "{out}");
    assert_absent(&out, &["<form", "<input", "<textarea", "<select", "<option", "<button", "evil.test"]);
}

#[test]
fn frames_objects_and_head_elements_are_removed() {
    let out = sanitized(
        "<iframe src=\"https://evil.test/a\"></iframe><object data=\"https://evil.test/b\"></object>\
         <embed src=\"https://evil.test/c\"><frameset><frame src=\"https://evil.test/d\"></frameset>\
         <base href=\"https://evil.test/\"><meta http-equiv=refresh content=\"0;url=https://evil.test/\">\
         <link rel=stylesheet href=\"https://evil.test/s.css\"><p>text</p>",
    );
    assert!(out.contains("<p>text</p>"), "{out}");
    assert_absent(&out, &["<iframe", "<object", "<embed", "<frame", "<base", "<meta", "<link", "evil.test"]);
}

#[test]
fn svg_and_mathml_are_removed_with_any_script_in_them() {
    let out = sanitized(
        "<svg onload=\"alert(1)\"><script>alert(2)</script>\
         <a xlink:href=\"javascript:alert(3)\"><text>x</text></a>\
         <animate attributeName=href to=\"javascript:alert(5)\"/></svg>\
         <math><mi xlink:href=\"javascript:alert(4)\">m</mi></math><p>after</p>",
    );
    assert!(out.contains("<p>after</p>"), "{out}");
    assert_absent(&out, &["<svg", "<math", "<animate", "alert", "javascript", "<script"]);
}

#[test]
fn style_elements_are_removed_with_their_content() {
    let out = sanitized("<style>p { background: url(https://evil.test/t.gif) }</style><p>x</p>");
    assert_eq!(out, "<p>x</p>");
}

#[test]
fn comments_are_removed() {
    let out = sanitized("<!--[if mso]><img src=\"https://evil.test/\"><![endif]--><p>x</p><!-- note -->");
    assert_eq!(out, "<p>x</p>");
}

#[test]
fn links_keep_only_http_https_and_mailto() {
    for bad in [
        "javascript:alert(1)",
        "JaVaScRiPt:alert(1)",
        "java\tscript:alert(1)",
        " javascript:alert(1)",
        "&#106;avascript:alert(1)",
        "vbscript:msgbox(1)",
        "data:text/html;base64,PHNjcmlwdD5hbGVydCgxKTwvc2NyaXB0Pg==",
        "file:///etc/passwd",
        "relative/path",
        "/mail/1/delete",
    ] {
        let out = sanitized(&format!("<a href=\"{bad}\">x</a>"));
        assert!(!out.contains("href"), "{bad:?} kept: {out}");
    }
    for good in ["https://example.test/a?b=1&amp;c=2", "http://example.test/", "mailto:bob@example.test"] {
        let out = sanitized(&format!("<a href=\"{good}\">x</a>"));
        assert!(out.contains(&format!("href=\"{good}\"")), "{good:?} lost: {out}");
    }
}

#[test]
fn links_open_outside_without_referrer_or_opener() {
    let out = sanitized("<a href=\"https://example.test/\" target=\"_self\" rel=\"opener\">x</a>");
    assert!(out.contains("rel=\"noopener noreferrer\""), "{out}");
    assert!(out.contains("target=\"_blank\""), "{out}");
    assert_absent(&out, &["_self", "\"opener\""]);
}

#[test]
fn protocol_relative_links_become_https() {
    let out = sanitized("<a href=\"//example.test/x\">x</a>");
    assert!(out.contains("href=\"https://example.test/x\""), "{out}");
}

#[test]
fn remote_images_are_blocked_unless_allowed_and_keep_their_alt_text() {
    let html = "<img src=\"https://tracker.test/p.gif\" alt=\"Logo\">\
                <img src=\"//tracker.test/q.gif\"><img srcset=\"https://tracker.test/r.gif 2x\">\
                <table background=\"http://tracker.test/bg.gif\"><tr><td>x</td></tr></table>";
    let blocked = sanitized(html);
    assert_absent(&blocked, &["tracker.test", "srcset", "background"]);
    assert!(blocked.contains("alt=\"Logo\""), "{blocked}");

    let allowed = sanitized_with(html, true);
    assert!(allowed.contains("src=\"https://tracker.test/p.gif\""), "{allowed}");
    assert!(allowed.contains("src=\"https://tracker.test/q.gif\""), "{allowed}");
    assert!(allowed.contains("background=\"http://tracker.test/bg.gif\""), "{allowed}");
    assert!(!allowed.contains("srcset"), "{allowed}");
}

#[test]
fn image_sources_allow_raster_data_urls_only() {
    let png = "data:image/png;base64,iVBORw0KGgo=";
    let out = sanitized(&format!("<img src=\"{png}\">"));
    assert!(out.contains(png), "{out}");
    for bad in [
        "data:image/svg+xml;base64,PHN2Zz48c2NyaXB0PmFsZXJ0KDEpPC9zY3JpcHQ+PC9zdmc+",
        "data:text/html,<script>alert(1)</script>",
        "javascript:alert(1)",
        "file:///etc/passwd",
        "local.png",
    ] {
        let out = sanitized(&format!("<img src=\"{bad}\" alt=\"a\">"));
        assert!(!out.contains("src="), "{bad:?} kept: {out}");
    }
}

#[test]
fn cid_references_to_unknown_parts_are_removed() {
    let out = sanitized("<img src=\"cid:missing@example.test\" alt=\"a\">");
    assert!(!out.contains("src="), "{out}");
}

#[test]
fn style_attributes_keep_only_safe_declarations() {
    let out = sanitized(
        "<p style=\"color: red; position: fixed; top: 0; font-weight: bold; \
         background-color: rgb(1, 2, 3); z-index: 99\">x</p>",
    );
    assert!(out.contains("style=\"color: red; font-weight: bold; background-color: rgb(1, 2, 3)\""), "{out}");

    for bad in [
        "position: absolute",
        "position:fixed",
        "background: url(https://tracker.test/t.gif)",
        "background-color: red; background-image: url('x')",
        "width: expression(alert(1))",
        "color: red; @import 'https://evil.test/s.css'",
        "color: javascript:alert(1)",
        "behavior: url(x.htc)",
        "-moz-binding: url(x.xml#x)",
        "color: \\72 ed",
        "background-\\69mage: u\\72l(x)",
        "font-family: \"a;b\"",
        "color: red /* comment */",
        "width: image-set(\"x.png\" 1x)",
        "width: var(--x)",
        "color: red; background: &#117;rl(https://tracker.test/x)",
        "color: expr&#x65;ssion(alert(1))",
    ] {
        let out = sanitized(&format!("<p style=\"{bad}\">x</p>"));
        assert_absent(&out, &["url", "expression", "import", "javascript", "behavior", "binding", "position", "\\"]);
        assert!(!out.contains("image") && !out.contains("var("), "{bad:?} kept: {out}");
        assert!(!out.contains("a;b"), "{bad:?} kept: {out}");
    }
}

#[test]
fn layout_tags_and_harmless_attributes_are_kept() {
    let html = "<table width=\"600\" cellpadding=\"0\" cellspacing=\"0\" border=\"0\" align=\"center\" bgcolor=\"#ffffff\">\
                <tbody><tr><td valign=\"top\" colspan=\"2\">\
                <font color=\"#333\" face=\"Arial\" size=\"2\"><b>Hi</b> <i>there</i></font></td></tr></tbody></table>\
                <center><h1 title=\"t\">H</h1><ul><li>one</li></ul><blockquote>q</blockquote><hr><sup>1</sup></center>";
    let out = sanitized(html);
    for kept in [
        "width=\"600\"",
        "cellpadding=\"0\"",
        "bgcolor=\"#ffffff\"",
        "valign=\"top\"",
        "colspan=\"2\"",
        "color=\"#333\"",
        "face=\"Arial\"",
        "<b>Hi</b>",
        "<center>",
        "<h1 title=\"t\">",
        "<li>one</li>",
        "<blockquote>",
        "<hr>",
        "<sup>1</sup>",
    ] {
        assert!(out.contains(kept), "{kept:?} lost: {out}");
    }
}

#[test]
fn ids_and_classes_are_dropped() {
    let out = sanitized("<p id=\"x\" class=\"y\" name=\"z\">x</p>");
    assert_eq!(out, "<p>x</p>");
}

#[test]
fn document_wraps_the_body() {
    let raw = crlf("Subject: t\nContent-Type: text/html\n\n<p>x</p>\n");
    let doc = body_document(&raw, false, &cid_url);
    assert!(doc.starts_with("<!DOCTYPE html><html><head><meta charset=\"utf-8\"><base target=\"_blank\">"), "{doc}");
    assert!(doc.ends_with("<body><p>x</p>\n</body></html>"), "{doc}");
}

#[test]
fn view_reports_remote_images() {
    let html = |body: &str| crlf(&format!("Subject: t\nContent-Type: text/html\n\n{body}\n"));
    assert!(view(&html("<img src=\"https://t.test/p.gif\">")).remote_images);
    assert!(view(&html("<img src=\"//t.test/p.gif\">")).remote_images);
    assert!(view(&html("<p style=\"background: url(https://t.test/p.gif)\">x</p>")).remote_images);
    assert!(view(&html("<table><tr><td background=\"http://t.test/b.gif\">x</td></tr></table>")).remote_images);
    assert!(
        !view(&html("<img src=\"data:image/gif;base64,R0lGOD==\"><a href=\"https://t.test/\">l</a>")).remote_images
    );
}

// --- Plain text bodies ----------------------------------------------------

#[test]
fn text_bodies_are_escaped_and_linkified() {
    let raw = crlf(
        "Subject: t\nContent-Type: text/plain; charset=utf-8\n\n\
         <script>alert(1)</script> & see https://example.test/a?b=1&c=\"2\".\n\
         (http://example.test/wiki/Foo_(bar)) javascript:alert(2) http:// done\n",
    );
    let doc = body_document(&raw, false, &cid_url);
    assert!(doc.contains("white-space: pre-wrap"), "{doc}");
    assert!(doc.contains("&lt;script&gt;alert(1)&lt;/script&gt; &amp; see "), "{doc}");
    assert!(
        doc.contains("<a href=\"https://example.test/a?b=1&amp;c=\" rel=\"noopener noreferrer\" target=\"_blank\">https://example.test/a?b=1&amp;c=</a>&quot;2&quot;."),
        "{doc}"
    );
    assert!(doc.contains("(<a href=\"http://example.test/wiki/Foo_(bar)\""), "{doc}");
    assert!(doc.contains("</a>) javascript:alert(2) http:// done"), "{doc}");
    assert!(!doc.contains("<script"), "{doc}");
}

// --- Decoding ---------------------------------------------------------------

const ALTERNATIVE: &str = "From: =?UTF-8?B?SsO8cmdlbiBNw7xsbGVy?= <juergen@example.test>
To: \"Bob\" <bob@example.test>, carol@example.test
Cc: =?ISO-8859-1?Q?Ren=E9_Dupont?= <rene@example.test>
Reply-To: lists@example.test
Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe_aus_K=C3=B6ln?=
Date: Tue, 1 Jul 2025 10:00:00 +0200
Message-ID: <abc.123@example.test>
In-Reply-To: <parent@example.test>
References: <root@example.test> <parent@example.test>
MIME-Version: 1.0
Content-Type: multipart/alternative; boundary=\"alt\"

--alt
Content-Type: text/plain; charset=utf-8
Content-Transfer-Encoding: quoted-printable

Gr=C3=BC=C3=9Fe, Bob!
=3D a soft=
 line break
--alt
Content-Type: text/html; charset=utf-8
Content-Transfer-Encoding: base64

PHA+R3LDvMOfZSwgPGI+Qm9iPC9iPiE8L3A+
--alt--
";

#[test]
fn alternative_gives_text_and_html() {
    let raw = crlf(ALTERNATIVE);
    let v = view(&raw);
    assert_eq!(v.text.as_deref(), Some("Grüße, Bob!\r\n= a soft line break"));
    assert!(v.has_html);
    assert!(!v.remote_images);
    assert!(v.attachments.is_empty(), "{:?}", v.attachments);
    let doc = body_document(&raw, false, &cid_url);
    assert!(doc.contains("<p>Grüße, <b>Bob</b>!</p>"), "{doc}");
    assert!(!doc.contains("soft line"), "{doc}");
}

#[test]
fn headers_are_decoded() {
    let v = view(&crlf(ALTERNATIVE));
    assert_eq!(v.subject, "Grüße aus Köln");
    let mb = |name: Option<&str>, address: &str| Mailbox { name: name.map(str::to_owned), address: address.to_owned() };
    assert_eq!(v.from, vec![mb(Some("Jürgen Müller"), "juergen@example.test")]);
    assert_eq!(v.to, vec![mb(Some("Bob"), "bob@example.test"), mb(None, "carol@example.test")]);
    assert_eq!(v.cc, vec![mb(Some("René Dupont"), "rene@example.test")]);
    assert_eq!(v.reply_to, vec![mb(None, "lists@example.test")]);
    assert_eq!(v.date, Some(1_751_356_800));
    assert_eq!(v.message_id.as_deref(), Some("abc.123@example.test"));
    assert_eq!(v.in_reply_to, vec!["parent@example.test"]);
    assert_eq!(v.references, vec!["root@example.test", "parent@example.test"]);
}

#[test]
fn missing_and_bad_headers_give_empty_values() {
    let v = view(&crlf("From: nobody\nDate: not a date\n\nbody\n"));
    assert_eq!(v.subject, "");
    assert_eq!(v.date, None);
    assert_eq!(v.message_id, None);
    assert!(v.to.is_empty() && v.references.is_empty());
    assert_eq!(v.text.as_deref(), Some("body\r\n"));
}

#[test]
fn iso_8859_1_b_subject_and_windows_1252_body_are_decoded() {
    let raw = b"Subject: =?ISO-8859-1?B?Q2Fm6SBtZW51?=\r\n\
Content-Type: text/plain; charset=windows-1252\r\n\
Content-Transfer-Encoding: 8bit\r\n\
\r\n\
Caf\xe9 \x80 5, \x93quoted\x94\r\n";
    let v = view(raw);
    assert_eq!(v.subject, "Café menu");
    assert_eq!(v.text.as_deref(), Some("Café € 5, “quoted”\r\n"));

    let latin1 = b"Subject: x\r\nContent-Type: text/plain; charset=ISO-8859-1\r\n\
Content-Transfer-Encoding: quoted-printable\r\n\r\nna=EFve d=E9j=E0 vu\r\n";
    assert_eq!(view(latin1).text.as_deref(), Some("naïve déjà vu\r\n"));
}

fn mixed(attachment_headers: &str, body: &str) -> Vec<u8> {
    crlf(&format!(
        "From: a@example.test
Subject: Report
Content-Type: multipart/mixed; boundary=\"mix\"

--mix
Content-Type: text/plain; charset=us-ascii

See attached.
--mix
{attachment_headers}

{body}
--mix--
"
    ))
}

#[test]
fn mixed_lists_attachments_with_decoded_size() {
    let raw = mixed(
        "Content-Type: application/PDF; name=\"report.pdf\"\nContent-Disposition: attachment; filename=\"Q3 report.pdf\"\nContent-Transfer-Encoding: base64",
        &base64(b"%PDF-1.4 fake"),
    );
    let v = view(&raw);
    assert_eq!(v.text.as_deref(), Some("See attached."));
    assert!(!v.has_html);
    assert_eq!(
        v.attachments,
        vec![Attachment {
            part: "2".into(),
            filename: "Q3 report.pdf".into(),
            content_type: "application/pdf".into(),
            size: 13,
            inline_cid: None,
        }]
    );
    let p = part(&raw, "2").expect("part 2");
    assert_eq!(p.bytes, b"%PDF-1.4 fake");
    assert_eq!(p.content_type, "application/pdf");
    assert_eq!(p.filename, "Q3 report.pdf");
    assert_eq!(part(&raw, "1").expect("part 1").content_type, "text/plain; charset=utf-8");
    assert!(part(&raw, "3").is_none());
    assert!(part(&raw, "").is_none());
    assert!(part(&raw, "2.1").is_none());
}

#[test]
fn binary_attachment_round_trips_byte_for_byte() {
    let bytes: Vec<u8> = (0..=255u8).cycle().take(1000).chain([0, 13, 10, 13]).collect();
    let raw = mixed(
        "Content-Type: application/octet-stream\nContent-Disposition: attachment; filename=blob.bin\nContent-Transfer-Encoding: base64",
        &base64(&bytes),
    );
    let p = part(&raw, "2").expect("part");
    assert_eq!(p.bytes, bytes);
    assert_eq!(view(&raw).attachments[0].size, bytes.len() as u64);
}

#[test]
fn rfc2231_and_rfc2047_filenames_are_decoded() {
    let raw = mixed(
        "Content-Type: application/pdf\nContent-Disposition: attachment; filename*=UTF-8''%E2%82%AC%20rates%20f%C3%BCr%202025.pdf",
        "x",
    );
    assert_eq!(view(&raw).attachments[0].filename, "€ rates für 2025.pdf");

    let raw = mixed(
        "Content-Type: text/plain\nContent-Disposition: attachment;\n filename*0*=UTF-8''r%C3%A9sum;\n filename*1*=%C3%A9.txt",
        "x",
    );
    assert_eq!(view(&raw).attachments[0].filename, "résumé.txt");

    let raw = mixed(
        "Content-Type: image/png; name=\"=?UTF-8?Q?F=C3=B6to.png?=\"\nContent-Transfer-Encoding: base64",
        "iVBORw0KGgo=",
    );
    assert_eq!(view(&raw).attachments[0].filename, "Föto.png");
}

#[test]
fn filenames_are_sanitised() {
    let name = |disposition: &str| view(&mixed(disposition, "x")).attachments[0].filename.clone();
    assert_eq!(
        name("Content-Type: text/csv\nContent-Disposition: attachment; filename=\"../../etc/passwd\""),
        "_.._etc_passwd"
    );
    assert_eq!(
        name("Content-Type: text/csv\nContent-Disposition: attachment; filename=\"C:\\\\x\\\\evil.bat\""),
        "C:_x_evil.bat"
    );
    assert_eq!(
        name(
            "Content-Type: text/csv\nContent-Disposition: attachment; filename*=UTF-8''a%0D%0AX-Evil%3A%201%E2%80%AEfdp.exe"
        ),
        "aX-Evil: 1fdp.exe"
    );
    assert_eq!(name("Content-Type: application/octet-stream\nContent-Disposition: attachment"), "attachment-2");
    assert_eq!(name("Content-Type: text/csv\nContent-Disposition: attachment; filename=\"...\""), "attachment-2");
}

const FORWARD: &str = "From: a@example.test
Subject: Fwd: lunch
Content-Type: multipart/mixed; boundary=\"outer\"

--outer
Content-Type: text/plain

Forwarding this.
--outer
Content-Type: message/rfc822
Content-Disposition: attachment

From: b@example.test
Subject: =?UTF-8?Q?Lunch_/_caf=C3=A9?=
Content-Type: multipart/mixed; boundary=\"inner\"

--inner
Content-Type: text/plain

Inner text.
--inner
Content-Type: image/gif
Content-Transfer-Encoding: base64
Content-Disposition: attachment; filename=dot.gif

R0lGODlhAQABAAAAACw=
--inner--

--outer--
";

#[test]
fn forwarded_message_is_an_eml_attachment_and_not_merged() {
    let raw = crlf(FORWARD);
    let v = view(&raw);
    assert_eq!(v.text.as_deref(), Some("Forwarding this."));
    assert_eq!(v.attachments.len(), 1, "{:?}", v.attachments);
    let a = &v.attachments[0];
    assert_eq!(a.part, "2");
    assert_eq!(a.filename, "Lunch _ café.eml");
    assert_eq!(a.content_type, "message/rfc822");

    let eml = part(&raw, "2").expect("eml");
    let eml = String::from_utf8(eml.bytes).expect("utf-8");
    assert!(eml.starts_with("From: b@example.test\r\nSubject:"), "{eml:?}");
    assert!(eml.trim_end().ends_with("--inner--"), "{eml:?}");
    assert_eq!(a.size, eml.len() as u64);

    assert_eq!(part(&raw, "2.1").expect("2.1").bytes, b"Inner text.");
    let gif = part(&raw, "2.2").expect("2.2");
    assert_eq!((gif.content_type.as_str(), gif.filename.as_str()), ("image/gif", "dot.gif"));
    assert!(gif.bytes.starts_with(b"GIF89a"));
}

const RELATED: &str = "From: a@example.test
Subject: Newsletter
Content-Type: multipart/alternative; boundary=\"a\"

--a
Content-Type: text/plain

Plain version
--a
Content-Type: multipart/related; boundary=\"r\"

--r
Content-Type: text/html; charset=utf-8

<p>Logo: <img src=\"cid:logo%40example.test\" alt=\"logo\"></p>
--r
Content-Type: image/gif
Content-ID: <logo@example.test>
Content-Transfer-Encoding: base64

R0lGODlhAQABAAAAACw=
--r
Content-Type: text/plain
Content-ID: <notes@example.test>
Content-Disposition: attachment; filename=notes.txt

notes
--r--
--a--
";

#[test]
fn related_inline_image_shows_through_cid_url() {
    let raw = crlf(RELATED);
    let doc = body_document(&raw, false, &cid_url);
    assert!(doc.contains("<img src=\"/mail/3/7/cid/logo@example.test\" alt=\"logo\">"), "{doc}");

    let v = view(&raw);
    assert_eq!(v.text.as_deref(), Some("Plain version"));
    assert!(v.has_html && !v.remote_images);
    let listed: Vec<_> =
        v.attachments.iter().map(|a| (a.part.as_str(), a.content_type.as_str(), a.inline_cid.as_deref())).collect();
    assert_eq!(listed, vec![("2.2", "image/gif", Some("logo@example.test")), ("2.3", "text/plain", None)]);

    let img = part_by_cid(&raw, "logo@example.test").expect("by cid");
    assert!(img.bytes.starts_with(b"GIF89a"));
    assert_eq!(img.content_type, "image/gif");
    assert!(part_by_cid(&raw, "<logo@example.test>").is_some());
    assert!(part_by_cid(&raw, "notes@example.test").is_none(), "not an image");
    assert!(part_by_cid(&raw, "other@example.test").is_none());
}

#[test]
fn html_only_message_has_no_text() {
    let raw = crlf(
        "Subject: h\nContent-Type: text/html; charset=utf-8\nContent-Transfer-Encoding: quoted-printable\n\n<p>caf=C3=A9</p>\n",
    );
    let v = view(&raw);
    assert_eq!(v.text, None);
    assert!(v.has_html);
    assert!(body_document(&raw, false, &cid_url).contains("<p>café</p>"));
}

#[test]
fn message_without_body() {
    for raw in [
        crlf("Subject: empty\n"),
        crlf("Subject: empty\n\n"),
        crlf("Subject: e\nContent-Type: multipart/mixed; boundary=b\n\n"),
    ] {
        let v = view(&raw);
        assert_eq!(v.subject.chars().next(), Some('e'));
        assert_eq!(v.text, None);
        assert!(!v.has_html);
        assert!(v.attachments.is_empty(), "{:?}", v.attachments);
        assert!(body_document(&raw, false, &cid_url).contains("<body></body>"));
    }
}

#[test]
fn unparseable_input_gives_empty_results() {
    for raw in [&b""[..], b"\r\n\r\n", b"no headers here"] {
        let v = view(raw);
        assert_eq!(v, MessageView { text: v.text.clone(), ..MessageView::default() });
        assert!(part(raw, "1").is_none_or(|p| p.content_type.starts_with("text/plain")));
        assert!(body_document(raw, false, &cid_url).contains("<body>"));
    }
}

#[test]
fn malformed_boundaries_give_something_sensible() {
    // The boundary never appears: the body is shown as text.
    let raw = crlf(
        "Subject: m\nContent-Type: multipart/mixed; boundary=\"nope\"\n\n--other\nContent-Type: text/plain\n\nhello\n",
    );
    let v = view(&raw);
    assert!(v.text.as_deref().is_some_and(|t| t.contains("hello")), "{v:?}");

    // No closing boundary: the parts are still found.
    let raw = crlf(
        "Subject: m\nContent-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nfirst\n--b\nContent-Type: application/zip; name=a.zip\nContent-Transfer-Encoding: base64\n\nUEsDBA==\n",
    );
    let v = view(&raw);
    assert_eq!(v.text.as_deref(), Some("first"));
    assert_eq!(v.attachments.len(), 1, "{v:?}");
    assert_eq!(part(&raw, "2").expect("zip").bytes, b"PK\x03\x04");

    // Multipart without a boundary parameter.
    let raw = crlf("Subject: m\nContent-Type: multipart/mixed\n\nsome text\n");
    let v = view(&raw);
    assert!(v.text.as_ref().is_some_and(|t| t.contains("some text")), "{v:?}");

    // Bad base64 does not lose the part.
    let raw = mixed("Content-Type: image/png; name=x.png\nContent-Transfer-Encoding: base64", "!!!not base64!!!");
    assert_eq!(view(&raw).attachments.len(), 1);
}

#[test]
fn arbitrary_input_does_not_panic() {
    let fixtures = [crlf(ALTERNATIVE), crlf(FORWARD), crlf(RELATED)];
    for raw in &fixtures {
        for end in 0..=raw.len() {
            exercise(&raw[..end]);
        }
    }
    // Pseudo-random bytes biased towards MIME syntax.
    let alphabet: &[u8] =
        b"-\r\n:;=\"<>?=Bboundary=b--b\r\nContent-Type: multipart/mixed;message/rfc822 base64 \x00\xff\xc3";
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for _ in 0..300 {
        let len = (state % 400) as usize;
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                alphabet[(state % alphabet.len() as u64) as usize]
            })
            .collect();
        exercise(&bytes);
    }
}

fn exercise(raw: &[u8]) {
    let v = view(raw);
    for a in &v.attachments {
        let _ = part(raw, &a.part);
    }
    for section in ["1", "2", "2.1", "2.2", "1.2.3", "x", ""] {
        let _ = part(raw, section);
    }
    let _ = part_by_cid(raw, "logo@example.test");
    let _ = body_document(raw, true, &cid_url);
}
