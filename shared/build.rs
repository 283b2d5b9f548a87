//! Minifies libphonenumber's metadata for embedding: drops XML comments and the line breaks and
//! indentation between and inside elements (the patterns are compiled with whitespace ignored,
//! as the `phonenumber` crate does), roughly halving what the Lambda binaries carry.

use std::path::Path;

fn main() {
    let source = "assets/PhoneNumberMetadata.xml";
    println!("cargo:rerun-if-changed={source}");
    let xml = std::fs::read_to_string(source).expect("phone metadata asset");
    let mut out = String::with_capacity(xml.len() / 2);
    let mut rest = xml.as_str();
    while let Some(start) = rest.find("<!--") {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find("-->")
            .map_or(rest.len(), |e| start + e + 3);
        rest = &rest[end..];
    }
    out.push_str(rest);
    // A line break and the indentation after it carry no meaning anywhere in this file.
    let mut minified = String::with_capacity(out.len());
    let mut chars = out.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\n' || c == '\r' {
            while chars.peek().is_some_and(|c| c.is_whitespace()) {
                chars.next();
            }
        } else {
            minified.push(c);
        }
    }
    // `\d` in a pattern compiles to every Unicode decimal digit (the `phonenumber` crate builds
    // its regexes in Unicode mode), a large automaton for nothing: the national numbers it is
    // matched against are ASCII digits. With `[0-9]` the metadata loads in half the time.
    // The file has no `\d` inside a bracket class, where the substitution would be wrong.
    assert!(
        !minified
            .split('[')
            .skip(1)
            .any(|class| class.split(']').next().is_some_and(|c| c.contains("\\d"))),
        "a \\d inside a character class: teach build.rs to rewrite it as 0-9"
    );
    let minified = minified.replace("\\d", "[0-9]");
    let dest =
        Path::new(&std::env::var("OUT_DIR").expect("OUT_DIR")).join("PhoneNumberMetadata.min.xml");
    std::fs::write(dest, minified).expect("write minified metadata");
}
