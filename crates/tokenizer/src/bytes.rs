//! The GPT-2 byte ↔ char table that the ByteLevel pre-tokenizer and decoder use.
//!
//! `tokenizers` keeps its copy private, so it is reproduced here (a unit test checks it against
//! `ByteLevel::alphabet()`). We use it to require the full 256-symbol alphabet in every vocab,
//! and for the lossless byte-by-byte fallbacks of `encode`/`decode`.

/// `table[b]` is the vocab character that stands for byte `b`.
pub(crate) fn byte_to_char() -> [char; 256] {
    let mut table = ['\0'; 256];
    let mut next_unprintable = 0u32;
    for b in 0..=255u8 {
        let printable = matches!(b, b'!'..=b'~' | 0xA1..=0xAC | 0xAE..=0xFF);
        table[usize::from(b)] = if printable {
            char::from(b)
        } else {
            // 256..=323: always valid scalar values.
            let c = char::from_u32(256 + next_unprintable).unwrap_or(char::REPLACEMENT_CHARACTER);
            next_unprintable += 1;
            c
        };
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeSet;

    #[test]
    fn matches_tokenizers_byte_level_alphabet() {
        let ours: BTreeSet<char> = byte_to_char().into_iter().collect();
        let theirs: BTreeSet<char> =
            tokenizers::pre_tokenizers::byte_level::ByteLevel::alphabet().into_iter().collect();
        assert_eq!(ours.len(), 256);
        assert_eq!(ours, theirs);
        let t = byte_to_char();
        assert_eq!(t[usize::from(b' ')], 'Ġ');
        assert_eq!(t[usize::from(b'\n')], 'Ċ');
        assert_eq!(t[usize::from(b'a')], 'a');
    }
}
