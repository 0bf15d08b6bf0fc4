//! Reading the few flat XML answers rusty-s3 has no type for: error bodies,
//! CopyObject/UploadPartCopy results and ListMultipartUploads. What we read
//! is a handful of leaf elements by name. A schema-bound parser (instant-xml,
//! as rusty-s3 uses) insists on the S3 namespace, which stores set unevenly
//! (Garage's CopyObjectResult has none, its CopyPartResult has one), so the
//! elements are found by name, whatever the namespace.

/// The text of every `<name>` element (no attributes, no children), in
/// document order, with XML entities decoded.
pub(crate) fn all(xml: &str, name: &str) -> Vec<String> {
    blocks(xml, name).into_iter().map(unescape).collect()
}

/// The text of the first `<name>` element.
pub(crate) fn first(xml: &str, name: &str) -> Option<String> {
    all(xml, name).into_iter().next()
}

/// The bodies of every `<name>...</name>` block (for repeated records such
/// as `<Upload>`), undecoded: read their fields with [`first`].
pub(crate) fn blocks<'a>(xml: &'a str, name: &str) -> Vec<&'a str> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let mut out = Vec::new();
    let mut rest = xml;
    while let Some(start) = rest.find(&open) {
        let after = &rest[start + open.len()..];
        let Some(end) = after.find(&close) else {
            break;
        };
        out.push(&after[..end]);
        rest = &after[end + close.len()..];
    }
    out
}

/// Decodes the five named entities and numeric character references.
fn unescape(s: &str) -> String {
    if !s.contains('&') {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(amp) = rest.find('&') {
        out.push_str(&rest[..amp]);
        let tail = &rest[amp..];
        let Some(semi) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..semi];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .map(|h| u32::from_str_radix(h, 16))
                .or_else(|| entity.strip_prefix('#').map(str::parse))
                .and_then(Result::ok)
                .and_then(char::from_u32),
        };
        match decoded {
            Some(c) => out.push(c),
            None => out.push_str(&tail[..=semi]),
        }
        rest = &tail[semi + 1..];
    }
    out.push_str(rest);
    out
}

/// `<?xml ...?><CompleteMultipartUpload>` with each part's number and ETag.
pub(crate) fn complete_body(parts: &[(u32, String)]) -> String {
    let mut body = String::from(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\
         <CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">",
    );
    for (number, etag) in parts {
        body.push_str(&format!(
            "<Part><PartNumber>{number}</PartNumber><ETag>{}</ETag></Part>",
            escape(etag)
        ));
    }
    body.push_str("</CompleteMultipartUpload>");
    body
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_elements_whatever_the_namespace() {
        let doc = "<?xml version=\"1.0\"?><CopyPartResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">\
                   <ETag>&quot;abc&quot;</ETag><LastModified>2026-11-29T10:00:00Z</LastModified></CopyPartResult>";
        assert_eq!(first(doc, "ETag").as_deref(), Some("\"abc\""));
        assert_eq!(first(doc, "Missing"), None);
    }

    #[test]
    fn repeated_blocks_and_entities() {
        let doc = "<R><Upload><Key>a&amp;b&#47;c&#x41;</Key><UploadId>1</UploadId></Upload>\
                   <Upload><Key>&lt;x&gt; &bogus; &amp</Key><UploadId>2</UploadId></Upload></R>";
        let ups = blocks(doc, "Upload");
        assert_eq!(ups.len(), 2);
        assert_eq!(first(ups[0], "Key").as_deref(), Some("a&b/cA"));
        assert_eq!(first(ups[1], "Key").as_deref(), Some("<x> &bogus; &amp"));
        assert_eq!(all(doc, "UploadId"), ["1", "2"]);
    }

    #[test]
    fn complete_body_escapes_etags() {
        let b = complete_body(&[(1, "\"e1\"".into()), (2, "e&2".into())]);
        assert!(b.contains("<Part><PartNumber>1</PartNumber><ETag>&quot;e1&quot;</ETag></Part>"));
        assert!(b.contains("<ETag>e&amp;2</ETag>"));
    }
}
