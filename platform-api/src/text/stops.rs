//! Finding the bytes of a text that may start a gap between words, 64 bytes at a time.

/// The offsets of the bytes of a text that are not printable ASCII (whitespace, control
/// characters and every byte of a non-ASCII character), in order.
///
/// Gaps between words are a few bytes apart at unpredictable distances, so looking for them a
/// byte at a time costs a mispredicted branch per word. This finds them 64 bytes at a time
/// instead: eight bytes are classified at once with arithmetic on a `u64` (no byte can carry
/// into its neighbour), and the block's stops are then visited through a bit mask.
pub(super) struct Stops<'a> {
    bytes: &'a [u8],
    /// Offset of the block `mask` describes; a multiple of 64.
    block: usize,
    /// Bit `k` set: the byte at `block + k` is a stop not yet returned.
    mask: u64,
}

impl<'a> Stops<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> Self {
        Stops {
            bytes,
            block: 0,
            mask: block_mask(bytes, 0),
        }
    }

    /// Forgets the stops before `offset`.
    pub(super) fn skip_to(&mut self, offset: usize) {
        let block = offset - offset % 64;
        if block != self.block {
            self.block = block;
            self.mask = block_mask(self.bytes, block);
        }
        let below = offset - block;
        self.mask &= u64::MAX.checked_shl(below as u32).unwrap_or(0);
    }
}

impl Iterator for Stops<'_> {
    type Item = usize;

    fn next(&mut self) -> Option<usize> {
        while self.mask == 0 {
            self.block += 64;
            if self.block >= self.bytes.len() {
                return None;
            }
            self.mask = block_mask(self.bytes, self.block);
        }
        let bit = self.mask.trailing_zeros() as usize;
        self.mask &= self.mask - 1;
        Some(self.block + bit)
    }
}

/// Bit `k` set when byte `block + k` of `bytes` is not printable ASCII; bytes past the end are
/// not stops.
fn block_mask(bytes: &[u8], block: usize) -> u64 {
    let mut padded = [b'a'; 64];
    let chunk = bytes.get(block..).unwrap_or_default();
    let chunk = &chunk[..chunk.len().min(64)];
    padded[..chunk.len()].copy_from_slice(chunk);
    let mut mask = 0;
    for (index, word) in padded.chunks_exact(8).enumerate() {
        let word = u64::from_le_bytes(word.try_into().unwrap_or([b'a'; 8]));
        mask |= word_stops(word) << (8 * index);
    }
    mask
}

/// Bit `k` set when byte `k` of the little-endian `word` is not printable ASCII (`!` to `~`).
fn word_stops(word: u64) -> u64 {
    const LOW: u64 = 0x7f7f_7f7f_7f7f_7f7f;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    let low = word & LOW;
    // Adding to seven-bit values never carries past a byte's top bit.
    let from_bang = (low + 0x5f5f_5f5f_5f5f_5f5f) & HIGH;
    let is_delete = (low + 0x0101_0101_0101_0101) & HIGH;
    let graphic = from_bang & !is_delete & !word;
    let stops = !graphic & HIGH;
    // Gathers the eight top bits into the top byte: no two partial products overlap.
    (stops >> 7).wrapping_mul(0x0102_0408_1020_4080) >> 56
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn word_stops_match_printable_ascii() {
        for byte in 0..=u8::MAX {
            for position in 0..8 {
                let word = u64::from(byte) << (8 * position)
                    | 0x6161_6161_6161_6161 & !(0xff << (8 * position));
                let expected = if byte.is_ascii_graphic() {
                    0
                } else {
                    1 << position
                };
                assert_eq!(word_stops(word), expected, "byte {byte:#04x} at {position}");
            }
        }
    }
}
