//! The device key: the secret an app gives to open an encrypted device database and its file
//! contents (sealed in chunks by the file store). The database is SQLCipher's (AES-256 pages,
//! each authenticated). Each gets its own 32 bytes derived from the secret by HKDF-SHA256, so the
//! secret itself is never a cipher key. The secret must be random (a key from the platform's
//! keystore, or `openssl rand -hex 32`): no password stretching is done.

use crate::ClientError;

/// The shortest secret accepted, in bytes.
pub const DEVICE_KEY_SECRET_BYTES_MIN: usize = 32;
/// What HKDF derives each key for (the database's, the file store's): a new purpose gets a new
/// label.
const DATABASE_KEY_LABEL: &[u8] = b"ferry device database v1";
const FILES_KEY_LABEL: &[u8] = b"ferry device files v1";

/// The key of an encrypted device database.
///
/// ```
/// # let dir = std::env::temp_dir().join(format!("ferry-doc-key-{}", std::process::id()));
/// # let _ = std::fs::remove_dir_all(&dir); std::fs::create_dir_all(&dir).unwrap();
/// use ferry_client::{Database, DeviceKey};
/// use ferry_model::samples;
///
/// let key = DeviceKey::from_secret(b"a secret of 32 bytes or more, random")?;
/// let path = dir.join("device.db");
/// let db = Database::open_encrypted(&path, samples::FIELD_SERVICE, &key)?;
/// drop(db);
/// // Without the key, or with another, the database does not open.
/// assert!(Database::open(&path, samples::FIELD_SERVICE).is_err());
/// let other = DeviceKey::from_secret(b"another secret of 32 bytes or more")?;
/// assert!(Database::open_encrypted(&path, samples::FIELD_SERVICE, &other).is_err());
/// # Ok::<(), ferry_client::ClientError>(())
/// ```
#[derive(Clone)]
pub struct DeviceKey {
    database: [u8; 32],
    files: [u8; 32],
}

impl DeviceKey {
    /// The key of a secret of at least [`DEVICE_KEY_SECRET_BYTES_MIN`] bytes.
    pub fn from_secret(secret: &[u8]) -> Result<DeviceKey, ClientError> {
        if secret.len() < DEVICE_KEY_SECRET_BYTES_MIN {
            return Err(ClientError::KeyTooShort { length: secret.len() });
        }
        let prk = ring::hkdf::Salt::new(ring::hkdf::HKDF_SHA256, &[]).extract(secret);
        let derive = |label: &[u8]| {
            let mut key = [0u8; 32];
            prk.expand(&[label], ring::hkdf::HKDF_SHA256)
                .and_then(|okm| okm.fill(&mut key))
                .expect("32 bytes is a valid HKDF-SHA256 length");
            key
        };
        Ok(DeviceKey { database: derive(DATABASE_KEY_LABEL), files: derive(FILES_KEY_LABEL) })
    }

    /// The key the file store seals contents with.
    pub(crate) fn files_key(&self) -> &[u8; 32] {
        &self.files
    }

    /// The statement that keys a SQLCipher connection with the raw key (no key derivation).
    pub(crate) fn pragma(&self) -> String {
        let hex: String = self.database.iter().map(|b| format!("{b:02x}")).collect();
        format!("PRAGMA key = \"x'{hex}'\";")
    }
}

impl std::fmt::Debug for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DeviceKey(…)")
    }
}
