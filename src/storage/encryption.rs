//! Encryption at rest in the age format (age-encryption.org/v1), so any
//! copy can be opened with the standard `age` tool and the private key.
//!
//! Archives are encrypted as they stream (a blocking thread runs the age
//! writer between two bounded channels: memory stays flat) to the
//! configured X25519 recipients, or to a passphrase alone (the age format
//! does not mix the two). To prove an encrypted copy restores without the
//! private key (which stays off the backup host), each file is also
//! encrypted to a one-off key made for that file and forgotten once the
//! copy is checked: the copy is read back, decrypted with it, and its
//! plaintext must hash to the SHA-256 of the archive that was read back in
//! full by pg_restore. The one-off key's stanza in the header opens
//! nothing once the key is gone.

use std::io::{self, Read, Write};
use std::pin::Pin;
use std::str::FromStr;
use std::task::{Context, Poll};

use age::secrecy::SecretString;
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncReadExt, ReadBuf};
use tokio::sync::{mpsc, oneshot};

use super::offsite::Secret;
use crate::{Error, Result};

/// Bytes of plaintext per channel message (the age payload's chunk size).
const CHUNK: usize = 64 << 10;

/// Messages in flight between the async side and the age thread.
const IN_FLIGHT: usize = 4;

/// What new backups are encrypted to (`AGE_RECIPIENTS`, or
/// `AGE_PASSPHRASE_FILE` alone).
#[derive(Clone)]
pub struct EncryptionConfig {
    recipients: Vec<age::x25519::Recipient>,
    passphrase: Option<Secret>,
}

impl std::fmt::Debug for EncryptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EncryptionConfig")
            .field("recipients", &self.public_keys())
            .field("passphrase", &self.passphrase.is_some())
            .finish()
    }
}

impl EncryptionConfig {
    /// Recipients are `age1…` public keys; a passphrase goes alone. The
    /// error names a key that is not one (public keys are not secret).
    pub fn new(recipients: &[String], passphrase: Option<Secret>) -> Result<Self> {
        let recipients = recipients
            .iter()
            .map(|r| r.trim())
            .filter(|r| !r.is_empty())
            .map(|r| {
                age::x25519::Recipient::from_str(r).map_err(|_| {
                    Error::Config(format!(
                        "AGE_RECIPIENTS: {r:?} is not an age public key (age1…, as `age-keygen` prints it)."
                    ))
                })
            })
            .collect::<Result<Vec<_>>>()?;
        match (recipients.is_empty(), &passphrase) {
            (true, None) => Err(Error::Config(
                "Encryption needs AGE_RECIPIENTS or AGE_PASSPHRASE_FILE.".into(),
            )),
            (false, Some(_)) => Err(Error::Config(
                "AGE_RECIPIENTS and AGE_PASSPHRASE_FILE cannot be used together: the age format \
                 takes a passphrase only alone. Keep one (recipients are the better choice for \
                 automated backups)."
                    .into(),
            )),
            _ => Ok(Self {
                recipients,
                passphrase,
            }),
        }
    }

    /// New backups are encrypted with a passphrase (not to recipients).
    pub fn uses_passphrase(&self) -> bool {
        self.passphrase.is_some()
    }

    /// The public keys new backups are encrypted to.
    pub fn public_keys(&self) -> Vec<String> {
        self.recipients.iter().map(|r| r.to_string()).collect()
    }
}

/// The keys that open encrypted backups (`AGE_IDENTITY_FILE`, and the
/// passphrase): needed to restore, not to back up.
#[derive(Clone, Default)]
pub struct DecryptionKeys {
    /// The identity file's text (`AGE-SECRET-KEY-1…` lines).
    pub identity_file: Option<Secret>,
    pub passphrase: Option<Secret>,
}

impl std::fmt::Debug for DecryptionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecryptionKeys")
            .field("identity_file", &self.identity_file.is_some())
            .field("passphrase", &self.passphrase.is_some())
            .finish()
    }
}

impl DecryptionKeys {
    /// Checks that the identity file can be read as one (at start-up).
    pub fn check(&self) -> Result<()> {
        self.identities().map(|_| ())
    }

    fn identities(&self) -> Result<Vec<Box<dyn age::Identity + Send + Sync>>> {
        let mut identities: Vec<Box<dyn age::Identity + Send + Sync>> = Vec::new();
        if let Some(file) = &self.identity_file {
            let parsed = age::IdentityFile::from_buffer(file.expose().as_bytes())
                .ok()
                .and_then(|f| f.into_identities().ok())
                .filter(|ids| !ids.is_empty())
                .ok_or_else(|| {
                    Error::Config(
                        "AGE_IDENTITY_FILE does not hold an age identity (AGE-SECRET-KEY-1…, as \
                         `age-keygen` writes it)."
                            .into(),
                    )
                })?;
            identities.extend(parsed);
        }
        if let Some(passphrase) = &self.passphrase {
            identities.push(Box::new(age::scrypt::Identity::new(SecretString::from(
                passphrase.expose().to_owned(),
            ))));
        }
        Ok(identities)
    }
}

/// How a backup is encrypted (its off-site copy, and with `local` its file
/// here too), as its manifest records it: readable
/// without any key, so the catalog can be rebuilt and the console can say
/// which key a backup needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Encryption {
    /// "age".
    pub format: String,
    /// The public keys it is encrypted to (empty with a passphrase).
    pub recipients: Vec<String>,
    pub passphrase: bool,
    /// Size and SHA-256 of the encrypted file (the manifest's own are the
    /// archive's, as pg_restore reads it).
    pub size_bytes: u64,
    pub sha256: String,
    /// The file kept in the backup directory is this encrypted file too
    /// (`ENCRYPT_LOCAL`); otherwise only the off-site copy is.
    #[serde(default)]
    pub local: bool,
}

impl EncryptionConfig {
    /// The manifest's record of a file encrypted with this configuration.
    pub fn record(&self, size_bytes: u64, sha256: String, local: bool) -> Encryption {
        Encryption {
            format: "age".into(),
            recipients: self.public_keys(),
            passphrase: self.uses_passphrase(),
            size_bytes,
            sha256,
            local,
        }
    }
}

/// The key a file just encrypted is checked with: a one-off key made for
/// it (or the passphrase), kept only while the file is being proven.
#[derive(Clone)]
pub enum Verifier {
    OneOff(age::x25519::Identity),
    Passphrase(SecretString),
}

impl Verifier {
    fn identity(&self) -> Box<dyn age::Identity + Send + Sync> {
        match self {
            Verifier::OneOff(key) => Box::new(key.clone()),
            Verifier::Passphrase(p) => Box::new(age::scrypt::Identity::new(p.clone())),
        }
    }
}

/// Starts encrypting `plain` as it is read: the ciphertext comes out of
/// the returned reader; a failure (of the source or of the age thread)
/// comes out of it too, as an I/O error.
pub fn encrypt(
    plain: impl AsyncRead + Unpin + Send + 'static,
    config: &EncryptionConfig,
) -> Result<(impl AsyncRead + Unpin + Send, Verifier)> {
    let (encryptor, verifier) = match &config.passphrase {
        Some(passphrase) => {
            let passphrase = SecretString::from(passphrase.expose().to_owned());
            (
                age::Encryptor::with_user_passphrase(passphrase.clone()),
                Verifier::Passphrase(passphrase),
            )
        }
        None => {
            let one_off = age::x25519::Identity::generate();
            let check = one_off.to_public();
            let recipients: Vec<&dyn age::Recipient> = config
                .recipients
                .iter()
                .map(|r| r as &dyn age::Recipient)
                .chain(std::iter::once(&check as &dyn age::Recipient))
                .collect();
            let encryptor = age::Encryptor::with_recipients(recipients.into_iter())
                .map_err(|e| Error::Config(format!("The age recipients cannot be used: {e}")))?;
            (encryptor, Verifier::OneOff(one_off))
        }
    };
    let source = pump(plain);
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    tokio::task::spawn_blocking(move || {
        let sink = ChannelWriter { tx: tx.clone() };
        let result = (|| {
            let mut writer = encryptor.wrap_output(io::BufWriter::with_capacity(CHUNK, sink))?;
            io::copy(&mut ChannelRead::new(source), &mut writer)?;
            writer.finish()?.flush()
        })();
        if let Err(e) = result {
            let _ = tx.blocking_send(Err(e));
        }
    });
    Ok((channel_reader(rx), verifier))
}

/// Reads `source` on an async task into a channel a blocking thread reads
/// (with [`ChannelRead`]), in chunks of `CHUNK` bytes but the last (a
/// response body comes in pieces of a few KiB: each would be a message and
/// a wake-up of the thread); a read error is passed on.
fn pump(source: impl AsyncRead + Unpin + Send + 'static) -> mpsc::Receiver<io::Result<Bytes>> {
    let (tx, rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    tokio::spawn(async move {
        let mut source = source;
        loop {
            let mut buf = bytes::BytesMut::with_capacity(CHUNK);
            let mut ended = false;
            while buf.len() < CHUNK {
                match source.read_buf(&mut buf).await {
                    Ok(0) => {
                        ended = true;
                        break;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        let _ = tx.send(Err(e)).await;
                        return;
                    }
                }
            }
            if !buf.is_empty() && tx.send(Ok(buf.freeze())).await.is_err() {
                return;
            }
            if ended {
                return;
            }
        }
    });
    rx
}

/// Starts decrypting `cipher` with `identities`; waits until the header has
/// been read and a key opened it, so a wrong or missing key is an error
/// here, before anything is written.
async fn decrypt_with(
    cipher: impl AsyncRead + Unpin + Send + 'static,
    identities: Vec<Box<dyn age::Identity + Send + Sync>>,
) -> std::result::Result<impl AsyncRead + Unpin + Send, age::DecryptError> {
    let (out_tx, out_rx) = mpsc::channel::<io::Result<Bytes>>(IN_FLIGHT);
    let (opened_tx, opened_rx) = oneshot::channel();
    // The ciphertext, pumped to the age thread.
    let in_rx = pump(cipher);
    tokio::task::spawn_blocking(move || {
        let source = ChannelRead::new(in_rx);
        let opened = age::Decryptor::new(source)
            .and_then(|d| d.decrypt(identities.iter().map(|i| i.as_ref() as &dyn age::Identity)));
        let mut plain = match opened {
            Ok(reader) => {
                let _ = opened_tx.send(Ok(()));
                reader
            }
            Err(e) => {
                let _ = opened_tx.send(Err(e));
                return;
            }
        };
        // Whole chunks: unbuffered, the copy would send (and wake the
        // reader for) every 8 KiB.
        let mut sink = io::BufWriter::with_capacity(CHUNK, ChannelWriter { tx: out_tx.clone() });
        if let Err(e) = io::copy(&mut plain, &mut sink).and_then(|_| sink.flush()) {
            let _ = out_tx.blocking_send(Err(e));
        }
    });
    match opened_rx.await {
        Ok(Ok(())) => Ok(channel_reader(out_rx)),
        Ok(Err(e)) => Err(e),
        Err(_) => Err(age::DecryptError::Io(io::Error::other(
            "the decryption stopped",
        ))),
    }
}

/// Decrypts a file just encrypted with the key it was checked with; the
/// error is `what` went wrong, in words.
pub async fn decrypt_for_check(
    cipher: impl AsyncRead + Unpin + Send + 'static,
    verifier: &Verifier,
    what: impl FnOnce(age::DecryptError) -> Error,
) -> Result<impl AsyncRead + Unpin + Send> {
    decrypt_with(cipher, vec![verifier.identity()])
        .await
        .map_err(what)
}

/// Decrypts a backup encrypted as `encryption` says with `keys`; the error
/// says which key is expected, by public key.
pub async fn decrypt(
    cipher: impl AsyncRead + Unpin + Send + 'static,
    encryption: &Encryption,
    keys: &DecryptionKeys,
    name: &str,
) -> Result<impl AsyncRead + Unpin + Send> {
    let expected = if encryption.passphrase {
        "the passphrase (AGE_PASSPHRASE_FILE)".to_owned()
    } else {
        format!(
            "the identity of {} (AGE_IDENTITY_FILE)",
            encryption.recipients.join(" or ")
        )
    };
    let identities = keys.identities()?;
    if identities.is_empty() {
        return Err(Error::Invalid(format!(
            "{name} is encrypted and no key to open it is set: it needs {expected}. Nothing was \
             changed."
        )));
    }
    decrypt_with(cipher, identities).await.map_err(|e| match e {
        age::DecryptError::NoMatchingKeys | age::DecryptError::DecryptionFailed => Error::Invalid(
            format!("None of the keys set opens {name}: it needs {expected}. Nothing was changed."),
        ),
        other => Error::Invalid(format!(
            "{name} could not be decrypted ({other}); nothing was changed."
        )),
    })
}

/// An [`AsyncRead`] that hashes and counts what passes through it; the
/// [`HashHandle`] reads the result wherever the reader went.
pub struct Hashing<R> {
    inner: R,
    state: std::sync::Arc<std::sync::Mutex<(u64, Sha256)>>,
}

/// The size and SHA-256 of what went through a [`Hashing`] reader so far.
#[derive(Clone)]
pub struct HashHandle(std::sync::Arc<std::sync::Mutex<(u64, Sha256)>>);

impl HashHandle {
    /// Bytes read and their SHA-256 (hex).
    pub fn result(&self) -> (u64, String) {
        let state = self.0.lock().unwrap();
        (state.0, hex::encode(state.1.clone().finalize()))
    }
}

/// `inner`, hashed as it is read.
pub fn hashing<R>(inner: R) -> (Hashing<R>, HashHandle) {
    let state = std::sync::Arc::new(std::sync::Mutex::new((0, Sha256::new())));
    (
        Hashing {
            inner,
            state: state.clone(),
        },
        HashHandle(state),
    )
}

impl<R: AsyncRead + Unpin> AsyncRead for Hashing<R> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let polled = Pin::new(&mut self.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = &polled {
            let new = &buf.filled()[before..];
            let mut state = self.state.lock().unwrap();
            state.0 += new.len() as u64;
            state.1.update(new);
        }
        polled
    }
}

/// Reads `reader` to its end: its size and SHA-256 (hex).
pub async fn hash_all(reader: impl AsyncRead + Unpin) -> io::Result<(u64, String)> {
    let (mut hashing, handle) = hashing(reader);
    let mut buf = vec![0u8; CHUNK];
    while hashing.read(&mut buf).await? > 0 {}
    Ok(handle.result())
}

/// The ciphertext size of `plain` bytes, at most (for planning parts):
/// the payload grows by 16 bytes per 64 KiB chunk, the header by a few
/// hundred bytes per recipient.
pub fn encrypted_size_bound(plain: u64) -> u64 {
    plain + (plain / CHUNK as u64 + 1) * 16 + 64 * 1024
}

/// A [`Write`] whose bytes go, in order, into a channel.
struct ChannelWriter {
    tx: mpsc::Sender<io::Result<Bytes>>,
}

impl Write for ChannelWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.tx
            .blocking_send(Ok(Bytes::copy_from_slice(buf)))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the reader went away"))?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A [`Read`] fed by a channel.
struct ChannelRead {
    rx: mpsc::Receiver<io::Result<Bytes>>,
    current: Bytes,
}

impl ChannelRead {
    fn new(rx: mpsc::Receiver<io::Result<Bytes>>) -> Self {
        Self {
            rx,
            current: Bytes::new(),
        }
    }
}

impl Read for ChannelRead {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(bytes)) => self.current = bytes,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// The async end of a channel of byte chunks.
fn channel_reader(rx: mpsc::Receiver<io::Result<Bytes>>) -> impl AsyncRead + Unpin + Send {
    let mut rx = rx;
    tokio_util::io::StreamReader::new(futures::stream::poll_fn(move |cx| rx.poll_recv(cx)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use age::secrecy::ExposeSecret;

    /// A reader giving `data` in pieces of `piece` bytes, then `error` if any.
    fn in_pieces(
        data: &[u8],
        piece: usize,
        error: Option<io::Error>,
    ) -> impl AsyncRead + Unpin + Send + 'static {
        let mut items: Vec<io::Result<Bytes>> = data
            .chunks(piece)
            .map(|c| Ok(Bytes::copy_from_slice(c)))
            .collect();
        items.extend(error.map(Err));
        tokio_util::io::StreamReader::new(futures::stream::iter(items))
    }

    #[tokio::test]
    async fn small_pieces_are_passed_on_in_whole_chunks_and_an_error_after_them() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut rx = pump(in_pieces(&data, 1000, None));
        let mut got = Vec::new();
        let mut sizes = Vec::new();
        while let Some(message) = rx.recv().await {
            let bytes = message.unwrap();
            sizes.push(bytes.len());
            got.extend_from_slice(&bytes);
        }
        assert_eq!(got, data);
        let (last, whole) = sizes.split_last().unwrap();
        assert!(whole.iter().all(|&n| n >= CHUNK), "{sizes:?}");
        assert!(*last > 0);

        let failing = in_pieces(&data[..100_000], 1000, Some(io::Error::other("cut")));
        let mut rx = pump(failing);
        let mut messages = Vec::new();
        while let Some(message) = rx.recv().await {
            messages.push(message);
        }
        let error = messages.pop().unwrap().unwrap_err();
        assert_eq!(error.to_string(), "cut");
        let before: usize = messages.iter().map(|m| m.as_ref().unwrap().len()).sum();
        assert!(before <= 100_000);
    }

    #[tokio::test]
    async fn what_is_encrypted_decrypts_to_the_same_bytes() {
        let key = age::x25519::Identity::generate();
        let config = EncryptionConfig::new(&[key.to_public().to_string()], None).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plain");
        let plain: Vec<u8> = (0..300_000u32).flat_map(|i| i.to_le_bytes()).collect();
        std::fs::write(&path, &plain).unwrap();
        let file = tokio::fs::File::open(&path).await.unwrap();
        let (cipher, verifier) = encrypt(file, &config).unwrap();
        let mut encrypted = Vec::new();
        let mut cipher = cipher;
        cipher.read_to_end(&mut encrypted).await.unwrap();
        assert!(encrypted.starts_with(b"age-encryption.org/v1"));
        assert!(encrypted.len() as u64 <= encrypted_size_bound(plain.len() as u64));

        // The one-off key opens it (the ciphertext coming in pieces, as a
        // response body does), and so does the configured one.
        let mut out = Vec::new();
        decrypt_for_check(in_pieces(&encrypted, 1500, None), &verifier, |e| {
            Error::Invalid(e.to_string())
        })
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
        assert_eq!(out, plain);
        let keys = DecryptionKeys {
            identity_file: Some(Secret::new(key.to_string().expose_secret())),
            passphrase: None,
        };
        let encryption = config.record(encrypted.len() as u64, String::new(), false);
        let mut out = Vec::new();
        decrypt(
            std::io::Cursor::new(encrypted.clone()),
            &encryption,
            &keys,
            "x",
        )
        .await
        .unwrap()
        .read_to_end(&mut out)
        .await
        .unwrap();
        assert_eq!(out, plain);

        // Another key does not, and says which one it needs.
        let other = age::x25519::Identity::generate();
        let keys = DecryptionKeys {
            identity_file: Some(Secret::new(other.to_string().expose_secret())),
            passphrase: None,
        };
        let err = decrypt(std::io::Cursor::new(encrypted), &encryption, &keys, "x")
            .await
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains(&config.public_keys()[0]), "{err}");
    }

    #[test]
    fn a_passphrase_goes_alone_and_keys_must_be_keys() {
        let key = age::x25519::Identity::generate().to_public().to_string();
        assert!(EncryptionConfig::new(std::slice::from_ref(&key), Some(Secret::new("p"))).is_err());
        assert!(EncryptionConfig::new(&[], None).is_err());
        let err = EncryptionConfig::new(&["age1nope".into()], None)
            .unwrap_err()
            .to_string();
        assert!(err.contains("age1nope"), "{err}");
        assert!(EncryptionConfig::new(&[], Some(Secret::new("p"))).is_ok());
        let config = EncryptionConfig::new(std::slice::from_ref(&key), None).unwrap();
        assert_eq!(config.public_keys(), [key]);
    }
}
