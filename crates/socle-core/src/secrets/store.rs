//! socle's local encrypted secrets store, behind `${secret:NAME}` and `socle secrets`.
//!
//! One JSON file per project (default `<project>/.socle/secrets.json`, or `SOCLE_SECRETS_FILE`):
//!
//! ```json
//! { "version": 1,
//!   "kdf": { "algorithm": "argon2id", "salt": "…", "m_cost": 19456, "t_cost": 2, "p_cost": 1 },
//!   "key_check": { "nonce": "…", "ciphertext": "…" },
//!   "secrets": { "<name>": { "nonce": "…", "ciphertext": "…", "updated_at": "2026-11-24T10:00:00Z" } } }
//! ```
//!
//! Names are in the clear (so `socle secrets list` needs no key); values are sealed with
//! XChaCha20-Poly1305 under a random 24-byte nonce per write, with the secret's name as
//! associated data, so a ciphertext copied under another name does not open. `key_check`
//! seals a fixed text (associated data `socle:key-check`) so that a wrong key is reported as
//! such rather than as damaged secrets.
//!
//! The key comes from, first match: `SOCLE_SECRETS_KEY` (`base64:<44 chars>` is a raw 32-byte
//! key, anything else a passphrase stretched with argon2id using the file's `kdf` salt and
//! parameters), or a key file holding a base64 32-byte key: `SOCLE_SECRETS_KEY_FILE`, else
//! `$XDG_CONFIG_HOME/socle/secrets.key`, else `$HOME/.config/socle/secrets.key`. A key file
//! other users can read is refused.
//!
//! Writes take an exclusive lock on `<file>.lock`, re-read the file, and replace it
//! atomically (temporary file in the same folder, fsync, rename), with mode 0600.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, Zeroizing};

use super::Resolver;

/// Environment variable holding the key: `base64:<44 chars>` or a passphrase.
pub const KEY_ENV: &str = "SOCLE_SECRETS_KEY";
/// Environment variable naming the key file.
pub const KEY_FILE_ENV: &str = "SOCLE_SECRETS_KEY_FILE";
/// Environment variable naming the secrets file (relative paths: to the project folder).
pub const FILE_ENV: &str = "SOCLE_SECRETS_FILE";

const VERSION: u32 = 1;
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const SALT_LEN: usize = 16;
const CHECK_AAD: &[u8] = b"socle:key-check";
const CHECK_TEXT: &[u8] = b"socle secrets key check v1";

/// Why the store cannot do what was asked. Never contains a secret value or key.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot {action} {}: {source}", path.display())]
    Io {
        action: &'static str,
        path: PathBuf,
        source: io::Error,
    },
    #[error("{} is not a valid secrets file: {reason}", path.display())]
    Corrupt { path: PathBuf, reason: String },
    #[error(
        "{} has format version {found}; this socle reads version {VERSION} (upgrade socle)",
        path.display()
    )]
    UnsupportedVersion { path: PathBuf, found: u32 },
    #[error("invalid secret name `{0}`: use ASCII letters, digits, `_`, `-` and `.`")]
    InvalidName(String),
    #[error(
        "no secrets key: set {KEY_ENV} (`base64:<32 bytes>` or a passphrase) or {KEY_FILE_ENV}, or create the key file {}{}",
        key_file.as_deref().map(|p| p.display().to_string()).unwrap_or_else(|| "$HOME/.config/socle/secrets.key".into()),
        if *store_exists { " (the secrets already stored need the key they were written with)" } else { " (`socle secrets set` creates one)" }
    )]
    NoKey {
        key_file: Option<PathBuf>,
        store_exists: bool,
    },
    #[error("invalid secrets key from {origin}: {reason}")]
    BadKey { origin: KeyOrigin, reason: String },
    #[error(
        "secrets key file {} is accessible to other users (mode {mode:03o}): run `chmod 600 {}`",
        path.display(),
        path.display()
    )]
    KeyFilePermissions { path: PathBuf, mode: u32 },
    #[error(
        "wrong secrets key ({origin}): it does not open {}; use the key these secrets were written with",
        file.display()
    )]
    WrongKey { origin: KeyOrigin, file: PathBuf },
    #[error(
        "secret `{name}` in {} cannot be decrypted: it was modified or copied from another name (set it again)",
        file.display()
    )]
    Tampered { name: String, file: PathBuf },
    #[error("secret `{name}` is not UTF-8 text")]
    NotUtf8 { name: String },
    #[error("key derivation failed: {0}")]
    Kdf(String),
    #[error("the system random number generator failed: {0}")]
    Random(String),
    #[error("encryption failed")]
    Encrypt,
}

fn io_err<'a>(action: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        action,
        path: path.to_path_buf(),
        source,
    }
}

/// Where a key came from, as error messages name it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyOrigin {
    /// `SOCLE_SECRETS_KEY`.
    Env,
    /// A key file.
    File(PathBuf),
    /// Given by the program (tests, embedding).
    Given,
}

impl fmt::Display for KeyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyOrigin::Env => f.write_str(KEY_ENV),
            KeyOrigin::File(p) => write!(f, "key file {}", p.display()),
            KeyOrigin::Given => f.write_str("the key given"),
        }
    }
}

enum Material {
    Raw(Zeroizing<[u8; KEY_LEN]>),
    Passphrase(Zeroizing<String>),
}

/// The key material for a store: a raw 32-byte key or a passphrase. `Debug` shows only
/// where it came from.
pub struct SecretsKey {
    material: Material,
    origin: KeyOrigin,
}

impl fmt::Debug for SecretsKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.material {
            Material::Raw(_) => "raw",
            Material::Passphrase(_) => "passphrase",
        };
        f.debug_struct("SecretsKey")
            .field("kind", &kind)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl SecretsKey {
    /// A raw 32-byte key.
    pub fn raw(bytes: [u8; KEY_LEN]) -> Self {
        SecretsKey {
            material: Material::Raw(Zeroizing::new(bytes)),
            origin: KeyOrigin::Given,
        }
    }

    /// A passphrase, stretched with argon2id using the store's salt.
    pub fn passphrase(text: &str) -> Self {
        SecretsKey {
            material: Material::Passphrase(Zeroizing::new(text.to_owned())),
            origin: KeyOrigin::Given,
        }
    }

    /// A new random raw key.
    pub fn generate() -> Result<Self, StoreError> {
        let mut bytes = Zeroizing::new([0u8; KEY_LEN]);
        random(&mut bytes[..])?;
        Ok(SecretsKey {
            material: Material::Raw(bytes),
            origin: KeyOrigin::Given,
        })
    }

    /// Parses the text of `SOCLE_SECRETS_KEY`: `base64:<44 chars>` is a raw key, anything
    /// else a passphrase.
    pub fn parse(text: &str, origin: KeyOrigin) -> Result<Self, StoreError> {
        if let Some(b64) = text.strip_prefix("base64:") {
            return Ok(SecretsKey {
                material: Material::Raw(decode_key(b64.trim(), &origin)?),
                origin,
            });
        }
        if text.is_empty() {
            return Err(StoreError::BadKey {
                origin,
                reason: "the passphrase is empty".into(),
            });
        }
        Ok(SecretsKey {
            material: Material::Passphrase(Zeroizing::new(text.to_owned())),
            origin,
        })
    }

    /// The key from the environment, first match: `SOCLE_SECRETS_KEY`, then the key file
    /// ([`key_file_path`]). `None` when there is neither.
    pub fn from_env() -> Result<Option<Self>, StoreError> {
        if let Some(text) = std::env::var_os(KEY_ENV).filter(|v| !v.is_empty()) {
            let text = Zeroizing::new(text.into_string().map_err(|_| StoreError::BadKey {
                origin: KeyOrigin::Env,
                reason: "not valid UTF-8".into(),
            })?);
            return Self::parse(&text, KeyOrigin::Env).map(Some);
        }
        match key_file_path() {
            Some(path) => Self::from_key_file(&path),
            None => Ok(None),
        }
    }

    /// Reads a key file (a base64 32-byte key, optionally prefixed `base64:`). `None` when
    /// the file does not exist; an error when other users may read it.
    pub fn from_key_file(path: &Path) -> Result<Option<Self>, StoreError> {
        let meta = match fs::metadata(path) {
            Ok(m) => m,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err("read the secrets key file", path)(e)),
        };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(StoreError::KeyFilePermissions {
                    path: path.to_path_buf(),
                    mode,
                });
            }
        }
        #[cfg(not(unix))]
        let _ = meta;
        let text = Zeroizing::new(
            fs::read_to_string(path).map_err(io_err("read the secrets key file", path))?,
        );
        let origin = KeyOrigin::File(path.to_path_buf());
        let t = text.trim();
        let b64 = t.strip_prefix("base64:").unwrap_or(t);
        Ok(Some(SecretsKey {
            material: Material::Raw(decode_key(b64, &origin)?),
            origin,
        }))
    }

    /// Creates a key file holding a new random key: folders made with mode 0700, the file
    /// with 0600. Fails if the file exists.
    pub fn create_key_file(path: &Path) -> Result<Self, StoreError> {
        let key = Self::generate()?;
        let Material::Raw(bytes) = &key.material else {
            unreachable!("generate makes raw keys")
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            let mut b = fs::DirBuilder::new();
            b.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut b, 0o700);
            b.create(dir)
                .map_err(io_err("create the folder of the key file", dir))?;
        }
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts
            .open(path)
            .map_err(io_err("create the secrets key file", path))?;
        let mut text = Zeroizing::new(B64.encode(&bytes[..]));
        text.push('\n');
        f.write_all(text.as_bytes())
            .and_then(|()| f.sync_all())
            .map_err(io_err("write the secrets key file", path))?;
        Ok(SecretsKey {
            material: key.material,
            origin: KeyOrigin::File(path.to_path_buf()),
        })
    }

    /// Where this key came from.
    pub fn origin(&self) -> &KeyOrigin {
        &self.origin
    }
}

fn decode_key(b64: &str, origin: &KeyOrigin) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
    let bad = |reason: &str| StoreError::BadKey {
        origin: origin.clone(),
        reason: reason.into(),
    };
    let bytes = Zeroizing::new(
        B64.decode(b64)
            .map_err(|_| bad("not valid base64 (expected 44 base64 characters)"))?,
    );
    if bytes.len() != KEY_LEN {
        return Err(bad(
            "a raw key must be 32 bytes (44 base64 characters; `openssl rand -base64 32` makes one)",
        ));
    }
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    key.copy_from_slice(&bytes);
    Ok(key)
}

/// The key file socle reads: `SOCLE_SECRETS_KEY_FILE`, else
/// `$XDG_CONFIG_HOME/socle/secrets.key`, else `$HOME/.config/socle/secrets.key`.
pub fn key_file_path() -> Option<PathBuf> {
    let var = |n: &str| {
        std::env::var_os(n)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(p) = var(KEY_FILE_ENV) {
        return Some(p);
    }
    if let Some(x) = var("XDG_CONFIG_HOME").filter(|p| p.is_absolute()) {
        return Some(x.join("socle").join("secrets.key"));
    }
    var("HOME").map(|h| h.join(".config").join("socle").join("secrets.key"))
}

/// The secrets file of the project at `root`: `SOCLE_SECRETS_FILE` (relative to `root`) or
/// `<root>/.socle/secrets.json`.
pub fn store_path(root: &Path) -> PathBuf {
    match std::env::var_os(FILE_ENV).filter(|v| !v.is_empty()) {
        Some(p) => root.join(p),
        None => root.join(".socle").join("secrets.json"),
    }
}

fn random(buf: &mut [u8]) -> Result<(), StoreError> {
    getrandom::fill(buf).map_err(|e| StoreError::Random(e.to_string()))
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct FileData {
    version: u32,
    kdf: Kdf,
    key_check: Sealed,
    #[serde(default)]
    secrets: BTreeMap<String, Entry>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Kdf {
    algorithm: String,
    salt: String,
    m_cost: u32,
    t_cost: u32,
    p_cost: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Sealed {
    nonce: String,
    ciphertext: String,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Entry {
    nonce: String,
    ciphertext: String,
    updated_at: String,
}

/// A derived key verified against one file's `kdf` and `key_check`.
struct Verified {
    kdf: Kdf,
    check: Sealed,
    key: Zeroizing<[u8; KEY_LEN]>,
}

/// The encrypted secrets of one project. See the [module](self) documentation.
pub struct SecretStore {
    path: PathBuf,
    key: Option<SecretsKey>,
    data: Option<FileData>,
    verified: Mutex<Option<Verified>>,
}

impl fmt::Debug for SecretStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretStore")
            .field("path", &self.path)
            .field("key", &self.key)
            .field(
                "secrets",
                &self.data.as_ref().map_or(0, |d| d.secrets.len()),
            )
            .finish()
    }
}

impl SecretStore {
    /// Opens the store at `path` (which need not exist yet) with the key from the
    /// environment ([`SecretsKey::from_env`]), if any: listing needs no key; reading and
    /// writing values do.
    pub fn open(path: impl Into<PathBuf>) -> Result<Self, StoreError> {
        let key = SecretsKey::from_env()?;
        Self::open_with_key(path, key)
    }

    /// Opens the store at `path` with the given key (or none).
    pub fn open_with_key(
        path: impl Into<PathBuf>,
        key: Option<SecretsKey>,
    ) -> Result<Self, StoreError> {
        let path = path.into();
        let data = read_file(&path)?;
        Ok(SecretStore {
            path,
            key,
            data,
            verified: Mutex::new(None),
        })
    }

    /// The secrets file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Whether the secrets file exists.
    pub fn exists(&self) -> bool {
        self.data.is_some()
    }

    /// The key in use, if any.
    pub fn key(&self) -> Option<&SecretsKey> {
        self.key.as_ref()
    }

    /// Names and last update times (RFC 3339), sorted by name. Needs no key.
    pub fn list(&self) -> Vec<(String, String)> {
        self.data
            .iter()
            .flat_map(|d| d.secrets.iter())
            .map(|(n, e)| (n.clone(), e.updated_at.clone()))
            .collect()
    }

    /// The value of secret `name`; `None` when it is not set.
    pub fn get(&self, name: &str) -> Result<Option<String>, StoreError> {
        check_name(name)?;
        let Some(data) = &self.data else {
            return Ok(None);
        };
        let Some(entry) = data.secrets.get(name) else {
            return Ok(None);
        };
        let key = self.verified_key(data)?;
        let plain = open_sealed(&key, &entry.nonce, &entry.ciphertext, name.as_bytes())
            .ok_or_else(|| StoreError::Tampered {
                name: name.into(),
                file: self.path.clone(),
            })?;
        into_string(plain, name).map(Some)
    }

    /// Checks that the key opens every secret; returns how many there are.
    pub fn check(&self) -> Result<usize, StoreError> {
        let Some(data) = &self.data else {
            return Ok(0);
        };
        let key = self.verified_key(data)?;
        for (name, entry) in &data.secrets {
            let plain = open_sealed(&key, &entry.nonce, &entry.ciphertext, name.as_bytes())
                .ok_or_else(|| StoreError::Tampered {
                    name: name.clone(),
                    file: self.path.clone(),
                })?;
            into_string(plain, name)?.zeroize();
        }
        Ok(data.secrets.len())
    }

    /// Sets secret `name` to `value` (creating the file, with a new salt and key check,
    /// if needed).
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), StoreError> {
        check_name(name)?;
        if self.key.is_none() {
            return Err(self.no_key());
        }
        let _lock = self.lock()?;
        let mut data = match read_file(&self.path)? {
            Some(d) => d,
            None => self.new_file_data()?,
        };
        let key = self.verified_key(&data)?;
        let (nonce, ciphertext) = seal(&key, value.as_bytes(), name.as_bytes())?;
        data.secrets.insert(
            name.to_owned(),
            Entry {
                nonce,
                ciphertext,
                updated_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
            },
        );
        write_file(&self.path, &data)?;
        self.data = Some(data);
        Ok(())
    }

    /// Removes secret `name`; `false` when it was not set. Needs no key, but a key that is
    /// present must be the right one.
    pub fn remove(&mut self, name: &str) -> Result<bool, StoreError> {
        check_name(name)?;
        let _lock = self.lock()?;
        let Some(mut data) = read_file(&self.path)? else {
            self.data = None;
            return Ok(false);
        };
        if self.key.is_some() {
            self.verified_key(&data)?;
        }
        let removed = data.secrets.remove(name).is_some();
        if removed {
            write_file(&self.path, &data)?;
        }
        self.data = Some(data);
        Ok(removed)
    }

    fn no_key(&self) -> StoreError {
        StoreError::NoKey {
            key_file: key_file_path(),
            store_exists: self.data.is_some(),
        }
    }

    /// An exclusive lock on `<file>.lock`, held while reading, changing and replacing the file.
    fn lock(&self) -> Result<File, StoreError> {
        let dir = parent_dir(&self.path);
        fs::create_dir_all(dir).map_err(io_err("create the folder", dir))?;
        let mut name = self.path.file_name().unwrap_or_default().to_os_string();
        name.push(".lock");
        let lock_path = dir.join(name);
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let f = opts
            .open(&lock_path)
            .map_err(io_err("open the lock file", &lock_path))?;
        f.lock().map_err(io_err("lock", &lock_path))?;
        Ok(f)
    }

    fn new_file_data(&self) -> Result<FileData, StoreError> {
        let mut salt = [0u8; SALT_LEN];
        random(&mut salt)?;
        let kdf = Kdf {
            algorithm: "argon2id".into(),
            salt: B64.encode(salt),
            m_cost: argon2::Params::DEFAULT_M_COST,
            t_cost: argon2::Params::DEFAULT_T_COST,
            p_cost: argon2::Params::DEFAULT_P_COST,
        };
        let key = self.derive(&kdf)?;
        let (nonce, ciphertext) = seal(&key, CHECK_TEXT, CHECK_AAD)?;
        let check = Sealed { nonce, ciphertext };
        *self.verified.lock().unwrap_or_else(|e| e.into_inner()) = Some(Verified {
            kdf: kdf.clone(),
            check: check.clone(),
            key,
        });
        Ok(FileData {
            version: VERSION,
            kdf,
            key_check: check,
            secrets: BTreeMap::new(),
        })
    }

    /// The encryption key for `data`, derived (once per salt) and checked against its
    /// `key_check`.
    fn verified_key(&self, data: &FileData) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
        let Some(key) = &self.key else {
            return Err(self.no_key());
        };
        let mut cache = self.verified.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(v) = cache.as_ref()
            && v.kdf == data.kdf
            && v.check == data.key_check
        {
            return Ok(v.key.clone());
        }
        let derived = match cache.as_ref() {
            Some(v) if v.kdf == data.kdf => v.key.clone(),
            _ => self.derive(&data.kdf)?,
        };
        if open_sealed(
            &derived,
            &data.key_check.nonce,
            &data.key_check.ciphertext,
            CHECK_AAD,
        )
        .is_none_or(|p| p.as_slice() != CHECK_TEXT)
        {
            return Err(StoreError::WrongKey {
                origin: key.origin.clone(),
                file: self.path.clone(),
            });
        }
        *cache = Some(Verified {
            kdf: data.kdf.clone(),
            check: data.key_check.clone(),
            key: derived.clone(),
        });
        Ok(derived)
    }

    fn derive(&self, kdf: &Kdf) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
        let key = self.key.as_ref().ok_or_else(|| self.no_key())?;
        match &key.material {
            Material::Raw(k) => Ok(k.clone()),
            Material::Passphrase(p) => {
                let corrupt = |reason: String| StoreError::Corrupt {
                    path: self.path.clone(),
                    reason,
                };
                if kdf.algorithm != "argon2id" {
                    return Err(corrupt(format!(
                        "unknown key derivation `{}` (expected argon2id)",
                        kdf.algorithm
                    )));
                }
                let salt = B64
                    .decode(&kdf.salt)
                    .map_err(|_| corrupt("kdf.salt is not base64".into()))?;
                let params = argon2::Params::new(kdf.m_cost, kdf.t_cost, kdf.p_cost, Some(KEY_LEN))
                    .map_err(|e| corrupt(format!("kdf parameters: {e}")))?;
                let argon = argon2::Argon2::new(
                    argon2::Algorithm::Argon2id,
                    argon2::Version::V0x13,
                    params,
                );
                let mut out = Zeroizing::new([0u8; KEY_LEN]);
                argon
                    .hash_password_into(p.as_bytes(), &salt, &mut out[..])
                    .map_err(|e| StoreError::Kdf(e.to_string()))?;
                Ok(out)
            }
        }
    }
}

fn check_name(name: &str) -> Result<(), StoreError> {
    if super::is_valid_name(name) {
        Ok(())
    } else {
        Err(StoreError::InvalidName(name.into()))
    }
}

fn into_string(mut plain: Zeroizing<Vec<u8>>, name: &str) -> Result<String, StoreError> {
    match String::from_utf8(std::mem::take(&mut *plain)) {
        Ok(s) => Ok(s),
        Err(e) => {
            e.into_bytes().zeroize();
            Err(StoreError::NotUtf8 { name: name.into() })
        }
    }
}

fn seal(key: &[u8; KEY_LEN], plain: &[u8], aad: &[u8]) -> Result<(String, String), StoreError> {
    let mut nonce = [0u8; NONCE_LEN];
    random(&mut nonce)?;
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    let ct = cipher
        .encrypt(&XNonce::from(nonce), Payload { msg: plain, aad })
        .map_err(|_| StoreError::Encrypt)?;
    Ok((B64.encode(nonce), B64.encode(ct)))
}

/// The plaintext, or `None` when the nonce or ciphertext is malformed or fails
/// authentication.
fn open_sealed(
    key: &[u8; KEY_LEN],
    nonce: &str,
    ciphertext: &str,
    aad: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let nonce: [u8; NONCE_LEN] = B64.decode(nonce).ok()?.try_into().ok()?;
    let ct = B64.decode(ciphertext).ok()?;
    let cipher = XChaCha20Poly1305::new(&Key::from(*key));
    cipher
        .decrypt(&XNonce::from(nonce), Payload { msg: &ct, aad })
        .ok()
        .map(Zeroizing::new)
}

fn parent_dir(path: &Path) -> &Path {
    path.parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."))
}

fn read_file(path: &Path) -> Result<Option<FileData>, StoreError> {
    let bytes = match fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err("read the secrets file", path)(e)),
    };
    let corrupt = |reason: String| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason,
    };
    let value: serde_json::Value =
        serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
    match value.get("version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(VERSION) => {}
        Some(v) => {
            return Err(StoreError::UnsupportedVersion {
                path: path.to_path_buf(),
                found: u32::try_from(v).unwrap_or(u32::MAX),
            });
        }
        None => return Err(corrupt("no `version` number".into())),
    }
    let data: FileData = serde_json::from_value(value).map_err(|e| corrupt(e.to_string()))?;
    if let Some(bad) = data.secrets.keys().find(|n| !super::is_valid_name(n)) {
        return Err(corrupt(format!("invalid secret name `{bad}`")));
    }
    Ok(Some(data))
}

/// Replaces the file atomically: a temporary file in the same folder (mode 0600), fsync,
/// rename, fsync of the folder.
fn write_file(path: &Path, data: &FileData) -> Result<(), StoreError> {
    let mut bytes = serde_json::to_vec_pretty(data).map_err(|e| StoreError::Corrupt {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    bytes.push(b'\n');
    let dir = parent_dir(path);
    fs::create_dir_all(dir).map_err(io_err("create the folder", dir))?;
    let mut tag = [0u8; 8];
    random(&mut tag)?;
    let tmp = dir.join(format!(
        ".{}.{}.{}.tmp",
        path.file_name().unwrap_or_default().to_string_lossy(),
        std::process::id(),
        u64::from_le_bytes(tag)
    ));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut f = opts.open(&tmp)?;
        f.write_all(&bytes)?;
        f.sync_all()?;
        drop(f);
        fs::rename(&tmp, path)
    })();
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(io_err("write the secrets file", path)(e));
    }
    #[cfg(unix)]
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Resolves `${secret:..}` from a [`SecretStore`] opened on the first secret lookup (so
/// configurations without secret references never need a key), and `${env:..}` from the
/// process environment.
pub struct StoreResolver {
    path: PathBuf,
    key: Mutex<Option<SecretsKey>>,
    store: OnceLock<Result<SecretStore, String>>,
}

impl StoreResolver {
    /// A resolver over the store at `path`, keyed from the environment.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StoreResolver {
            path: path.into(),
            key: Mutex::new(None),
            store: OnceLock::new(),
        }
    }

    /// A resolver over the store of the project at `root` ([`store_path`]).
    pub fn for_project(root: &Path) -> Self {
        Self::new(store_path(root))
    }

    /// A resolver over the store at `path` with the given key instead of the environment's.
    pub fn with_key(path: impl Into<PathBuf>, key: SecretsKey) -> Self {
        StoreResolver {
            path: path.into(),
            key: Mutex::new(Some(key)),
            store: OnceLock::new(),
        }
    }

    /// The secrets file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn store(&self) -> &Result<SecretStore, String> {
        self.store.get_or_init(|| {
            let given = self.key.lock().unwrap_or_else(|e| e.into_inner()).take();
            match given {
                Some(key) => SecretStore::open_with_key(&self.path, Some(key)),
                None => SecretStore::open(&self.path),
            }
            .map_err(|e| e.to_string())
        })
    }
}

impl fmt::Debug for StoreResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreResolver")
            .field("path", &self.path)
            .field("opened", &self.store.get().is_some())
            .finish()
    }
}

impl Resolver for StoreResolver {
    fn secret(&self, name: &str) -> Result<Option<String>, String> {
        match self.store() {
            Ok(store) => store.get(name).map_err(|e| e.to_string()),
            Err(e) => Err(e.clone()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::{SecretError, resolve};

    fn key(b: u8) -> SecretsKey {
        SecretsKey::raw([b; KEY_LEN])
    }

    fn store(dir: &Path, k: Option<SecretsKey>) -> SecretStore {
        SecretStore::open_with_key(dir.join("secrets.json"), k).unwrap()
    }

    fn edit(path: &Path, f: impl FnOnce(&mut serde_json::Value)) {
        let mut v: serde_json::Value = serde_json::from_slice(&fs::read(path).unwrap()).unwrap();
        f(&mut v);
        fs::write(path, serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn roundtrip() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = store(tmp.path(), Some(key(1)));
        assert!(!s.exists());
        assert_eq!(s.get("api_token").unwrap(), None);
        s.set("api_token", "t0k3n").unwrap();
        s.set("db.password", "pa ss\nword ü").unwrap();
        s.set("api_token", "t0k3n-2").unwrap();
        assert_eq!(s.get("api_token").unwrap().as_deref(), Some("t0k3n-2"));

        let s = store(tmp.path(), Some(key(1)));
        assert_eq!(
            s.get("db.password").unwrap().as_deref(),
            Some("pa ss\nword ü")
        );
        assert_eq!(s.check().unwrap(), 2);
        let names: Vec<_> = s.list().into_iter().map(|(n, _)| n).collect();
        assert_eq!(names, ["api_token", "db.password"]);
        assert!(s.list()[0].1.ends_with('Z'));

        // listing and removing need no key
        let mut s = store(tmp.path(), None);
        assert_eq!(s.list().len(), 2);
        assert!(matches!(s.get("api_token"), Err(StoreError::NoKey { .. })));
        assert!(s.remove("api_token").unwrap());
        assert!(!s.remove("api_token").unwrap());
        let s = store(tmp.path(), Some(key(1)));
        assert_eq!(s.get("api_token").unwrap(), None);
        assert_eq!(s.check().unwrap(), 1);
    }

    #[test]
    fn rejects_invalid_names() {
        let tmp = tempfile::tempdir().unwrap();
        let mut s = store(tmp.path(), Some(key(1)));
        for bad in ["", "a b", "a:b", "a/b", "é", "${x}"] {
            assert!(
                matches!(s.set(bad, "v"), Err(StoreError::InvalidName(_))),
                "{bad:?}"
            );
        }
        s.set("A-z_0.9", "v").unwrap();
    }

    #[test]
    fn wrong_key_is_reported_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        store(tmp.path(), Some(key(1))).set("a", "v").unwrap();
        let mut s = store(tmp.path(), Some(key(2)));
        let e = s.get("a").unwrap_err();
        assert!(matches!(e, StoreError::WrongKey { .. }), "{e:?}");
        assert!(
            e.to_string()
                .starts_with("wrong secrets key (the key given)"),
            "{e}"
        );
        assert!(matches!(s.check(), Err(StoreError::WrongKey { .. })));
        assert!(matches!(s.set("b", "w"), Err(StoreError::WrongKey { .. })));
        assert!(matches!(s.remove("a"), Err(StoreError::WrongKey { .. })));
        // nothing was changed by the failed writes
        let s = store(tmp.path(), Some(key(1)));
        assert_eq!(s.list().len(), 1);
        assert_eq!(s.get("a").unwrap().as_deref(), Some("v"));
    }

    #[test]
    fn tampered_ciphertext_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secrets.json");
        store(tmp.path(), Some(key(1))).set("a", "value").unwrap();
        edit(&path, |v| {
            let ct = v["secrets"]["a"]["ciphertext"].as_str().unwrap();
            let mut bytes = B64.decode(ct).unwrap();
            bytes[0] ^= 1;
            v["secrets"]["a"]["ciphertext"] = B64.encode(bytes).into();
        });
        let s = store(tmp.path(), Some(key(1)));
        let e = s.get("a").unwrap_err();
        assert!(matches!(e, StoreError::Tampered { .. }), "{e:?}");
        assert!(matches!(s.check(), Err(StoreError::Tampered { .. })));
    }

    #[test]
    fn ciphertext_moved_to_another_name_is_rejected() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secrets.json");
        let mut s = store(tmp.path(), Some(key(1)));
        s.set("prod_password", "prod").unwrap();
        s.set("dev_password", "dev").unwrap();
        edit(&path, |v| {
            v["secrets"]["dev_password"] = v["secrets"]["prod_password"].clone();
        });
        let s = store(tmp.path(), Some(key(1)));
        assert!(matches!(
            s.get("dev_password"),
            Err(StoreError::Tampered { name, .. }) if name == "dev_password"
        ));
        assert_eq!(s.get("prod_password").unwrap().as_deref(), Some("prod"));
    }

    #[test]
    fn passphrase_roundtrip() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secrets.json");
        let mut s = store(tmp.path(), Some(SecretsKey::passphrase("correct horse")));
        s.set("a", "v1").unwrap();
        s.set("b", "v2").unwrap();
        let s = store(tmp.path(), Some(SecretsKey::passphrase("correct horse")));
        assert_eq!(s.get("a").unwrap().as_deref(), Some("v1"));
        assert_eq!(s.get("b").unwrap().as_deref(), Some("v2"));
        let s = store(tmp.path(), Some(SecretsKey::passphrase("wrong horse")));
        assert!(matches!(s.get("a"), Err(StoreError::WrongKey { .. })));
        // the parameters and salt are in the file
        let v: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
        assert_eq!(v["version"], 1);
        assert_eq!(v["kdf"]["algorithm"], "argon2id");
        assert_eq!(
            B64.decode(v["kdf"]["salt"].as_str().unwrap())
                .unwrap()
                .len(),
            SALT_LEN
        );
        assert!(v["kdf"]["m_cost"].as_u64().unwrap() > 0);
        // parse: base64: is a raw key, anything else a passphrase
        let raw = format!("base64:{}", B64.encode([1u8; KEY_LEN]));
        let k = SecretsKey::parse(&raw, KeyOrigin::Env).unwrap();
        assert!(matches!(k.material, Material::Raw(_)));
        assert!(matches!(
            SecretsKey::parse("hunter2", KeyOrigin::Env)
                .unwrap()
                .material,
            Material::Passphrase(_)
        ));
        let e = SecretsKey::parse("base64:AAAA", KeyOrigin::Env).unwrap_err();
        assert!(e.to_string().contains("32 bytes"), "{e}");
        assert!(!format!("{k:?}").contains("AQEB"));
    }

    #[cfg(unix)]
    #[test]
    fn key_file_permissions() {
        use std::os::unix::fs::PermissionsExt as _;
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("conf").join("socle").join("secrets.key");
        let created = SecretsKey::create_key_file(&path).unwrap();
        assert_eq!(created.origin(), &KeyOrigin::File(path.clone()));
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&path), 0o600);
        assert_eq!(mode(path.parent().unwrap()), 0o700);
        assert!(
            SecretsKey::create_key_file(&path).is_err(),
            "never overwrites"
        );

        // the key file's key opens what the created key wrote
        let mut s = store(tmp.path(), Some(created));
        s.set("a", "v").unwrap();
        let read = SecretsKey::from_key_file(&path).unwrap().unwrap();
        assert_eq!(
            store(tmp.path(), Some(read)).get("a").unwrap().as_deref(),
            Some("v")
        );

        fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
        let e = SecretsKey::from_key_file(&path).unwrap_err();
        assert!(matches!(e, StoreError::KeyFilePermissions { .. }));
        assert!(
            e.to_string()
                .contains(&format!("chmod 600 {}", path.display())),
            "{e}"
        );
        fs::set_permissions(&path, fs::Permissions::from_mode(0o640)).unwrap();
        assert!(SecretsKey::from_key_file(&path).is_err());
        fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
        assert!(SecretsKey::from_key_file(&path).unwrap().is_some());

        assert!(
            SecretsKey::from_key_file(&tmp.path().join("none"))
                .unwrap()
                .is_none()
        );
        let short = tmp.path().join("short.key");
        fs::write(&short, "AAAA\n").unwrap();
        fs::set_permissions(&short, fs::Permissions::from_mode(0o600)).unwrap();
        assert!(matches!(
            SecretsKey::from_key_file(&short),
            Err(StoreError::BadKey { .. })
        ));
    }

    #[test]
    fn file_never_contains_the_plaintext() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secrets.json");
        let value = "sup3r-s3cret-Value-1234567890";
        let mut s = store(tmp.path(), Some(key(7)));
        s.set("token", value).unwrap();
        s.set("token2", value).unwrap();
        let bytes = fs::read(&path).unwrap();
        let hay = String::from_utf8_lossy(&bytes);
        assert!(!hay.contains(value));
        assert!(!hay.contains(&B64.encode(value)));
        assert!(hay.contains("\"token\""), "names are visible");
        let v: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
        assert_ne!(
            v["secrets"]["token"]["nonce"], v["secrets"]["token2"]["nonce"],
            "a fresh nonce per write"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        // no temporary files are left behind
        let mut names: Vec<_> = fs::read_dir(tmp.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(names, ["secrets.json", "secrets.json.lock"]);
        // errors never carry the value
        let e = store(tmp.path(), Some(key(8))).get("token").unwrap_err();
        assert!(!format!("{e} {e:?}").contains(value));
    }

    #[test]
    fn concurrent_sets_all_survive() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let threads: Vec<_> = (0..2)
            .map(|t| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    // each thread has its own store, as two processes would
                    let mut s = store(&dir, Some(key(3)));
                    for i in 0..15 {
                        s.set(&format!("t{t}_{i}"), &format!("v{t}{i}")).unwrap();
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let s = store(&dir, Some(key(3)));
        assert_eq!(s.list().len(), 30);
        assert_eq!(s.check().unwrap(), 30);
        assert_eq!(s.get("t1_14").unwrap().as_deref(), Some("v114"));
    }

    #[test]
    fn unsupported_version_and_corrupt_files() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secrets.json");
        store(tmp.path(), Some(key(1))).set("a", "v").unwrap();
        edit(&path, |v| v["version"] = 2.into());
        assert!(matches!(
            SecretStore::open_with_key(&path, None),
            Err(StoreError::UnsupportedVersion { found: 2, .. })
        ));
        fs::write(&path, "{not json").unwrap();
        assert!(matches!(
            SecretStore::open_with_key(&path, None),
            Err(StoreError::Corrupt { .. })
        ));
    }

    #[test]
    fn resolver_opens_the_store_lazily() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("secrets.json");
        store(tmp.path(), Some(key(5)))
            .set("db_password", "pw")
            .unwrap();

        let r = StoreResolver::with_key(&path, key(5));
        assert_eq!(
            resolve("postgres://u:${secret:db_password}@h/db", &r).unwrap(),
            "postgres://u:pw@h/db"
        );
        assert_eq!(
            resolve("${secret:nope}", &r),
            Err(SecretError::MissingSecret("nope".into()))
        );

        let r = StoreResolver::with_key(&path, key(6));
        // no secret reference: the store is not even opened
        assert_eq!(resolve("plain", &r).unwrap(), "plain");
        assert!(format!("{r:?}").contains("opened: false"));
        let e = resolve("${secret:db_password}", &r).unwrap_err();
        assert!(
            matches!(&e, SecretError::Store(m) if m.starts_with("wrong secrets key")),
            "{e}"
        );

        // a store that does not exist yet: secrets are simply not set, no key needed
        let missing = tmp.path().join("none").join("secrets.json");
        let r = StoreResolver::with_key(&missing, key(9));
        assert_eq!(
            resolve("${secret:x}", &r),
            Err(SecretError::MissingSecret("x".into()))
        );
        let s = SecretStore::open_with_key(&missing, None).unwrap();
        assert_eq!(s.get("x").unwrap(), None);
        assert_eq!(s.check().unwrap(), 0);
        assert!(
            !missing.parent().unwrap().exists(),
            "reading creates nothing"
        );
    }
}
