//! File contents encrypted at rest: ChaCha20-Poly1305 (ring) over chunks of
//! [`FILE_CHUNK_BYTES`], so a content of any size is sealed and opened in a chunk's memory.
//! A sealed file is `MAGIC`, a random 7-byte nonce prefix, then each chunk's ciphertext and tag;
//! a chunk's nonce is the prefix, its number (big-endian) and a byte that is 1 on the last chunk
//! only (the STREAM construction), so chunks cannot be reordered, dropped or cut off unseen.
//! Every chunk but the last is whole: a short chunk is the last, and the last is always there
//! (empty when the content is a whole number of chunks).

use std::io::{Read, Write};

use ring::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};

use super::FILE_CHUNK_BYTES;

/// The first bytes of a sealed content.
const MAGIC: &[u8; 8] = b"FERRYC1\0";
const PREFIX_LEN: usize = NONCE_LEN - 5;
const TAG_LEN: usize = 16;
/// The bytes before the first chunk.
const HEADER_LEN: usize = MAGIC.len() + PREFIX_LEN;
/// A whole chunk on disk.
const SEALED_CHUNK: usize = FILE_CHUNK_BYTES + TAG_LEN;

/// The key file contents are sealed with.
pub(crate) struct ContentCipher {
    key: LessSafeKey,
}

impl ContentCipher {
    pub(crate) fn new(key: &[u8; 32]) -> ContentCipher {
        let key = UnboundKey::new(&CHACHA20_POLY1305, key).expect("32 bytes is the key length");
        ContentCipher { key: LessSafeKey::new(key) }
    }
}

fn nonce(prefix: &[u8; PREFIX_LEN], counter: u32, last: bool) -> Nonce {
    let mut bytes = [0u8; NONCE_LEN];
    bytes[..PREFIX_LEN].copy_from_slice(prefix);
    bytes[PREFIX_LEN..NONCE_LEN - 1].copy_from_slice(&counter.to_be_bytes());
    bytes[NONCE_LEN - 1] = u8::from(last);
    Nonce::assume_unique_for_key(bytes)
}

fn damaged() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        "a file content is damaged, or was sealed with another device key",
    )
}

/// Seals what is written into `out`, a chunk at a time.
pub(crate) struct Sealer<W: Write> {
    out: W,
    prefix: [u8; PREFIX_LEN],
    counter: u32,
    pending: Vec<u8>,
}

impl<W: Write> Sealer<W> {
    pub(crate) fn new(mut out: W) -> std::io::Result<Sealer<W>> {
        let mut prefix = [0u8; PREFIX_LEN];
        getrandom::fill(&mut prefix).map_err(|e| std::io::Error::other(e.to_string()))?;
        out.write_all(MAGIC)?;
        out.write_all(&prefix)?;
        Ok(Sealer { out, prefix, counter: 0, pending: Vec::with_capacity(SEALED_CHUNK) })
    }

    pub(crate) fn write(
        &mut self,
        cipher: &ContentCipher,
        mut bytes: &[u8],
    ) -> std::io::Result<()> {
        while !bytes.is_empty() {
            let take = (FILE_CHUNK_BYTES - self.pending.len()).min(bytes.len());
            self.pending.extend_from_slice(&bytes[..take]);
            bytes = &bytes[take..];
            // A whole chunk is sealed once more follows: the last chunk is never whole.
            if self.pending.len() == FILE_CHUNK_BYTES && !bytes.is_empty() {
                self.seal(cipher, false)?;
            }
        }
        Ok(())
    }

    fn seal(&mut self, cipher: &ContentCipher, last: bool) -> std::io::Result<()> {
        let counter = self.counter;
        self.counter = counter.checked_add(1).ok_or_else(damaged)?;
        let nonce = nonce(&self.prefix, counter, last);
        cipher
            .key
            .seal_in_place_append_tag(nonce, Aad::empty(), &mut self.pending)
            .map_err(|_| std::io::Error::other("sealing a file content failed"))?;
        self.out.write_all(&self.pending)?;
        self.pending.clear();
        Ok(())
    }

    /// Seals the rest; a whole pending chunk goes first, then an empty last one.
    pub(crate) fn finish(mut self, cipher: &ContentCipher) -> std::io::Result<W> {
        if self.pending.len() == FILE_CHUNK_BYTES {
            self.seal(cipher, false)?;
        }
        self.seal(cipher, true)?;
        Ok(self.out)
    }
}

/// The plain length of a sealed content of `sealed` bytes on disk.
pub(crate) fn plain_length(sealed: u64) -> std::io::Result<u64> {
    let body = sealed.checked_sub(HEADER_LEN as u64).ok_or_else(damaged)?;
    let chunks = body.div_ceil(SEALED_CHUNK as u64).max(1);
    body.checked_sub(chunks * TAG_LEN as u64).ok_or_else(damaged)
}

/// Opens a sealed content as it is read.
pub(crate) struct Opener<R: Read> {
    input: R,
    cipher: std::sync::Arc<ContentCipher>,
    prefix: [u8; PREFIX_LEN],
    counter: u32,
    chunk: Vec<u8>,
    at: usize,
    done: bool,
}

impl<R: Read> Opener<R> {
    pub(crate) fn new(
        mut input: R,
        cipher: std::sync::Arc<ContentCipher>,
    ) -> std::io::Result<Opener<R>> {
        let mut header = [0u8; HEADER_LEN];
        input.read_exact(&mut header).map_err(|_| damaged())?;
        if &header[..MAGIC.len()] != MAGIC {
            return Err(damaged());
        }
        let mut prefix = [0u8; PREFIX_LEN];
        prefix.copy_from_slice(&header[MAGIC.len()..]);
        let chunk = Vec::with_capacity(SEALED_CHUNK);
        Ok(Opener { input, cipher, prefix, counter: 0, chunk, at: 0, done: false })
    }

    /// Reads and opens the next chunk into `chunk`.
    fn next_chunk(&mut self) -> std::io::Result<()> {
        self.chunk.resize(SEALED_CHUNK, 0);
        let mut filled = 0;
        while filled < SEALED_CHUNK {
            match self.input.read(&mut self.chunk[filled..]) {
                Ok(0) => break,
                Ok(read) => filled += read,
                Err(error) if error.kind() == std::io::ErrorKind::Interrupted => {}
                Err(error) => return Err(error),
            }
        }
        self.chunk.truncate(filled);
        let last = filled < SEALED_CHUNK;
        let nonce = nonce(&self.prefix, self.counter, last);
        self.counter = self.counter.checked_add(1).ok_or_else(damaged)?;
        let plain = self.cipher.key.open_in_place(nonce, Aad::empty(), &mut self.chunk);
        let length = plain.map_err(|_| damaged())?.len();
        self.chunk.truncate(length);
        self.at = 0;
        self.done = last;
        Ok(())
    }
}

impl<R: Read> Read for Opener<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.at == self.chunk.len() {
            if self.done {
                return Ok(0);
            }
            self.next_chunk()?;
        }
        let take = (self.chunk.len() - self.at).min(out.len());
        out[..take].copy_from_slice(&self.chunk[self.at..self.at + take]);
        self.at += take;
        Ok(take)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests fail on any error")]

    use std::sync::Arc;

    use super::*;

    fn seal(cipher: &ContentCipher, plain: &[u8]) -> Vec<u8> {
        let mut sealer = Sealer::new(Vec::new()).unwrap();
        for piece in plain.chunks(1000) {
            sealer.write(cipher, piece).unwrap();
        }
        sealer.finish(cipher).unwrap()
    }

    fn open(cipher: &Arc<ContentCipher>, sealed: &[u8]) -> std::io::Result<Vec<u8>> {
        let mut plain = Vec::new();
        Opener::new(sealed, Arc::clone(cipher))?.read_to_end(&mut plain)?;
        Ok(plain)
    }

    #[test]
    fn contents_of_every_length_come_back_and_their_length_is_known() {
        let cipher = Arc::new(ContentCipher::new(&[7; 32]));
        for length in [
            0,
            1,
            FILE_CHUNK_BYTES - 1,
            FILE_CHUNK_BYTES,
            FILE_CHUNK_BYTES + 1,
            3 * FILE_CHUNK_BYTES,
        ] {
            let plain: Vec<u8> = (0..length).map(|i| (i % 251) as u8).collect();
            let sealed = seal(&cipher, &plain);
            assert_eq!(plain_length(sealed.len() as u64).unwrap(), length as u64, "{length}");
            assert_eq!(open(&cipher, &sealed).unwrap(), plain, "{length}");
        }
    }

    #[test]
    fn a_changed_cut_reordered_or_foreign_content_is_refused() {
        let cipher = Arc::new(ContentCipher::new(&[7; 32]));
        let plain = vec![42u8; 2 * FILE_CHUNK_BYTES + 10];
        let sealed = seal(&cipher, &plain);
        let mut flipped = sealed.clone();
        flipped[HEADER_LEN + 5] ^= 1;
        assert!(open(&cipher, &flipped).is_err(), "a changed byte");
        let cut = &sealed[..HEADER_LEN + SEALED_CHUNK];
        assert!(open(&cipher, cut).is_err(), "cut after a whole chunk");
        let mut swapped = sealed[..HEADER_LEN].to_vec();
        swapped
            .extend_from_slice(&sealed[HEADER_LEN + SEALED_CHUNK..HEADER_LEN + 2 * SEALED_CHUNK]);
        swapped.extend_from_slice(&sealed[HEADER_LEN..HEADER_LEN + SEALED_CHUNK]);
        swapped.extend_from_slice(&sealed[HEADER_LEN + 2 * SEALED_CHUNK..]);
        assert!(open(&cipher, &swapped).is_err(), "chunks swapped");
        let other = Arc::new(ContentCipher::new(&[8; 32]));
        assert!(open(&other, &sealed).is_err(), "another key");
    }
}
