//! What a valid value is, wherever two services check the same thing: a
//! request pedidos accepts is one estoque and pagamentos accept too, so a
//! client's mistake is answered as the client's (4xx) at the first service
//! that sees it, never as a failure of the next one (5xx).
//!
//! Each rule comes with the pattern the OpenAPI document states, derived
//! from the same definition so the two cannot drift.

use std::ops::RangeInclusive;

/// A sku estoque can hold: `[A-Za-z0-9._-]{1,64}`.
pub const SKU_PATTERN: &str = "^[A-Za-z0-9._-]{1,64}$";

/// Longest sku, in bytes (every sku character is one byte).
pub const MAX_SKU_LEN: usize = 64;

/// True for a sku [`SKU_PATTERN`] matches.
pub fn is_sku(sku: &str) -> bool {
    (1..=MAX_SKU_LEN).contains(&sku.len())
        && sku
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A test card token pagamentos can decide on: `tok_`, then 1 to 60
/// letters, digits or `_`.
pub const CARD_TOKEN_PATTERN: &str = "^tok_[A-Za-z0-9_]{1,60}$";

/// The rule of [`CARD_TOKEN_PATTERN`] in words, for problem details.
pub const CARD_TOKEN_RULE: &str = "must be `tok_` followed by 1 to 60 letters, digits or `_`";

/// True for a token [`CARD_TOKEN_PATTERN`] matches.
pub fn is_card_token(token: &str) -> bool {
    token.strip_prefix("tok_").is_some_and(|rest| {
        (1..=60).contains(&rest.len())
            && rest.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
    })
}

/// Control characters (Unicode `Cc`): never in text a service stores.
const CONTROL: &[RangeInclusive<char>] = &['\u{0}'..='\u{1F}', '\u{7F}'..='\u{9F}'];

/// Characters that take no room on a screen: Unicode `White_Space`, and the
/// format characters, fillers and blanks that render as nothing. Text made
/// only of these (and controls) shows nothing to whoever reads it.
const BLANK: &[RangeInclusive<char>] = &[
    '\u{20}'..='\u{20}',
    '\u{A0}'..='\u{A0}',
    '\u{AD}'..='\u{AD}',
    '\u{34F}'..='\u{34F}',
    '\u{61C}'..='\u{61C}',
    '\u{115F}'..='\u{1160}',
    '\u{1680}'..='\u{1680}',
    '\u{17B4}'..='\u{17B5}',
    '\u{180B}'..='\u{180F}',
    '\u{2000}'..='\u{200F}',
    '\u{2028}'..='\u{202F}',
    '\u{205F}'..='\u{206F}',
    '\u{2800}'..='\u{2800}',
    '\u{3000}'..='\u{3000}',
    '\u{3164}'..='\u{3164}',
    '\u{FE00}'..='\u{FE0F}',
    '\u{FEFF}'..='\u{FEFF}',
    '\u{FFA0}'..='\u{FFA0}',
];

fn within(ranges: &[RangeInclusive<char>], c: char) -> bool {
    ranges.iter().any(|r| r.contains(&c))
}

/// True for text a person can read: `chars` characters long, no control
/// character, and at least one character that shows (see [`BLANK`]).
pub fn is_visible_text(text: &str, chars: RangeInclusive<usize>) -> bool {
    chars.contains(&text.chars().count())
        && !text.chars().any(|c| within(CONTROL, c))
        && text
            .chars()
            .any(|c| !within(CONTROL, c) && !within(BLANK, c))
}

/// The pattern of [`is_visible_text`] (lengths apart, which the schema
/// states as `minLength`/`maxLength`): no control character, and one
/// character that is neither a control nor blank.
pub fn visible_text_pattern() -> String {
    let class = |ranges: &[&[RangeInclusive<char>]]| {
        ranges
            .iter()
            .flat_map(|r| r.iter())
            .map(|r| {
                let (a, b) = (*r.start() as u32, *r.end() as u32);
                if a == b {
                    format!("\\u{a:04X}")
                } else {
                    format!("\\u{a:04X}-\\u{b:04X}")
                }
            })
            .collect::<String>()
    };
    let control = class(&[CONTROL]);
    let hidden = class(&[CONTROL, BLANK]);
    format!("^[^{control}]*[^{hidden}][^{control}]*$")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_that_shows_nothing_is_not_visible() {
        for blank in [
            "",
            "   ",
            "\t\n",
            "\u{200B}\u{200B}",
            "\u{3164}",
            "\u{2800}",
            "\u{FEFF} \u{2060}",
        ] {
            assert!(!is_visible_text(blank, 0..=128), "{blank:?}");
        }
        assert!(is_visible_text("c-42", 1..=128));
        assert!(is_visible_text(" Camiseta\u{200B}azul ", 1..=128));
        assert!(!is_visible_text("a\u{0}b", 1..=128));
        assert!(!is_visible_text(&"a".repeat(129), 1..=128));
    }

    #[test]
    fn the_pattern_and_the_rule_agree_on_every_character() {
        // The document's pattern in the `regex` crate's spelling of `\uXXXX`.
        let pattern = visible_text_pattern();
        let mut spelled = String::new();
        let mut rest = pattern.as_str();
        while let Some(at) = rest.find("\\u") {
            spelled.push_str(&rest[..at]);
            spelled.push_str(&format!("\\x{{{}}}", &rest[at + 2..at + 6]));
            rest = &rest[at + 6..];
        }
        spelled.push_str(rest);
        let regex = regex::Regex::new(&spelled).unwrap();
        for c in (0..=0xFFFF).filter_map(char::from_u32) {
            for text in [c.to_string(), format!(" {c} ")] {
                assert_eq!(
                    regex.is_match(&text),
                    is_visible_text(&text, 0..=usize::MAX),
                    "U+{:04X} in {text:?}",
                    c as u32
                );
            }
        }
    }

    #[test]
    fn card_tokens_are_what_pagamentos_can_decide_on() {
        for good in ["tok_visa", "tok_chargeDeclined", "tok_a_1"] {
            assert!(is_card_token(good), "{good}");
        }
        for bad in [
            "tok_",
            "tok-visa",
            "tok_a-b",
            "visa",
            &format!("tok_{}", "a".repeat(61)),
        ] {
            assert!(!is_card_token(bad), "{bad}");
        }
    }

    #[test]
    fn skus_are_short_and_plain() {
        assert!(is_sku("CAM-001.v2_x"));
        for bad in ["", "a b", "é", &"A".repeat(65), "a/b"] {
            assert!(!is_sku(bad), "{bad}");
        }
    }
}
