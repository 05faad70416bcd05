//! RFC 8785 known-answer vectors (T13), run through the canonicaliser every signature in this
//! crate uses (`portcullis_mcp::canonical::canonical_bytes`) on values from the strict parser.
//! Sources are cited in `testdata/rfc8785/README.md`.
use portcullis_mcp::canonical::canonical_bytes;
use portcullis_mcp::{Limits, parse_strict};
use serde_json::Value;

fn testdata(name: &str) -> Vec<u8> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("testdata/rfc8785")
        .join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn canonical_text(input: &[u8]) -> String {
    let value = parse_strict(input, Limits::default()).unwrap();
    String::from_utf8(canonical_bytes(&value)).unwrap()
}

#[test]
fn appendix_b_number_serialisation() {
    let text = String::from_utf8(testdata("numbers.txt")).unwrap();
    let mut count = 0;
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let (hex, want) = line.split_once(' ').unwrap();
        let bits = u64::from_str_radix(hex, 16).unwrap();
        let number = serde_json::Number::from_f64(f64::from_bits(bits)).unwrap();
        let got = String::from_utf8(canonical_bytes(&Value::Number(number))).unwrap();
        assert_eq!(got, want, "binary64 {hex}");
        count += 1;
    }
    assert_eq!(count, 24);
}

#[test]
fn section_3_2_2_structures_example() {
    let got = canonical_text(&testdata("structures.input.json"));
    assert_eq!(got.as_bytes(), testdata("structures.expected.json"));
}

#[test]
fn section_3_2_3_sorting_example() {
    let got = canonical_text(&testdata("sorting.input.json"));
    assert_eq!(got.as_bytes(), testdata("sorting.expected.json"));
}

#[test]
fn number_spellings_and_utf16_key_order() {
    let text = String::from_utf8(testdata("spellings.txt")).unwrap();
    for line in text.lines().filter(|l| !l.is_empty()) {
        let (input, want) = line.split_once('\t').unwrap();
        assert_eq!(canonical_text(input.as_bytes()), want, "input {input}");
    }
}

#[test]
fn canonical_form_is_a_fixed_point() {
    for name in ["structures", "sorting"] {
        let once = canonical_text(&testdata(&format!("{name}.input.json")));
        assert_eq!(canonical_text(once.as_bytes()), once, "{name}");
    }
}
