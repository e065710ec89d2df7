//! Byte-text helpers shared by the stages that shape messages (the router
//! and the multiline records), below both so that neither depends on the other.

/// Cuts `line` to at most `max` bytes, backing off to a UTF-8 character boundary
/// when the cut would split one; returns the part kept and whether it was cut.
pub fn cut(line: &[u8], max: usize) -> (&[u8], bool) {
    if line.len() <= max {
        return (line, false);
    }
    let mut end = max;
    // Step back over at most 3 continuation bytes (10xxxxxx) to the start of the character.
    while end > 0 && max - end < 3 && (line[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    if (line[end] & 0xC0) == 0x80 {
        end = max;
    }
    (&line[..end], true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cuts_at_character_boundaries() {
        assert_eq!(cut(b"abc", 3), (&b"abc"[..], false));
        assert_eq!(cut(b"abcd", 3), (&b"abc"[..], true));
        // "é" is C3 A9: a cut after C3 backs off before it.
        assert_eq!(cut("abé".as_bytes(), 3), (&b"ab"[..], true));
        // Invalid UTF-8 is cut where asked.
        assert_eq!(cut(b"\x80\x80\x80\x80\x80", 2), (&b"\x80\x80"[..], true));
    }
}
