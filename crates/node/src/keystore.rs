//! Encrypted key files: the 32-byte secret sealed with XChaCha20-Poly1305
//! under a key stretched from a password by scrypt (RFC 7914). The address
//! is stored in the clear (so a wallet can list its keys) and bound as
//! associated data, so a file whose address was edited does not open.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use gridledger_core::crypto::KeyPair;
use serde::{Deserialize, Serialize};
use zeroize::Zeroizing;

/// Marks a keystore file (`"kind"` field).
pub const KIND: &str = "gridledger-keystore";
/// scrypt cost: N = 2^15, r = 8, p = 1 (32 MiB, about 0.1 s per try).
pub const DEFAULT_LOG_N: u8 = 15;
/// Largest scrypt cost a keystore may ask for: 2^20 × 128 × r bytes = 1 GiB
/// at r = 8. A file asking for more (edited or hostile) is refused before
/// any memory is reserved, rather than aborting the process or running for hours.
pub const MAX_LOG_N: u8 = 20;
/// The only block size we write or accept (RFC 7914's recommendation).
pub const SCRYPT_R: u32 = 8;
/// Largest parallelism accepted (we write 1); each unit is a full scrypt pass.
pub const MAX_SCRYPT_P: u32 = 4;
/// Largest keystore file read (a real one is under 1 KiB).
pub const MAX_FILE_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    #[error("not a gridledger keystore: {0}")]
    Format(String),
    #[error("wrong password, or the keystore was altered")]
    Decrypt,
    #[error("unsupported keystore: {0}")]
    Unsupported(String),
    #[error(
        "is an encrypted keystore: set GRIDLEDGER_PASSWORD_FILE to a file holding its password \
         (or GRIDLEDGER_PASSWORD), or pass --password-file where the command has one"
    )]
    NoPassword,
    #[error("reading the password file {path}: {message}")]
    PasswordFile { path: String, message: String },
    #[error("an empty password protects nothing")]
    EmptyPassword,
}

#[derive(Serialize, Deserialize)]
struct File {
    kind: String,
    version: u32,
    address: String,
    kdf: Kdf,
    cipher: Cipher,
    ciphertext: String,
}

#[derive(Serialize, Deserialize)]
struct Kdf {
    name: String,
    log_n: u8,
    r: u32,
    p: u32,
    salt: String,
}

#[derive(Serialize, Deserialize)]
struct Cipher {
    name: String,
    nonce: String,
}

/// True if `text` looks like a keystore file rather than a hex secret.
pub fn is_keystore(text: &str) -> bool {
    text.trim_start().starts_with('{')
}

/// Refuses scrypt parameters outside what this crate writes (N ≤ 2^20,
/// r = 8, 1 ≤ p ≤ 4), so a tampered file costs at most one bounded derivation.
fn check_kdf(log_n: u8, r: u32, p: u32) -> Result<(), KeystoreError> {
    if log_n == 0 || log_n > MAX_LOG_N {
        return Err(KeystoreError::Unsupported(format!("scrypt log_n {log_n} (accepted: 1..={MAX_LOG_N})")));
    }
    if r != SCRYPT_R {
        return Err(KeystoreError::Unsupported(format!("scrypt r {r} (accepted: {SCRYPT_R})")));
    }
    if p == 0 || p > MAX_SCRYPT_P {
        return Err(KeystoreError::Unsupported(format!("scrypt p {p} (accepted: 1..={MAX_SCRYPT_P})")));
    }
    Ok(())
}

fn derive(password: &str, salt: &[u8], log_n: u8, r: u32, p: u32) -> Result<Zeroizing<[u8; 32]>, KeystoreError> {
    check_kdf(log_n, r, p)?;
    let params = scrypt::Params::new(log_n, r, p, 32).map_err(|e| KeystoreError::Unsupported(e.to_string()))?;
    let mut out = Zeroizing::new([0u8; 32]);
    scrypt::scrypt(password.as_bytes(), salt, &params, out.as_mut())
        .map_err(|e| KeystoreError::Unsupported(e.to_string()))?;
    Ok(out)
}

fn aad(address: &str) -> Vec<u8> {
    [KIND.as_bytes(), b"/1/", address.as_bytes()].concat()
}

/// Seals `key` under `password` (scrypt cost 2^`log_n`); returns the file's text.
pub fn seal(key: &KeyPair, password: &str, log_n: u8) -> Result<String, KeystoreError> {
    if password.is_empty() {
        return Err(KeystoreError::EmptyPassword);
    }
    let salt: [u8; 32] = rand::random();
    let nonce: [u8; 24] = rand::random();
    let k = derive(password, &salt, log_n, 8, 1)?;
    let address = key.address().to_string();
    let secret = Zeroizing::new(key.secret_bytes());
    let ct = XChaCha20Poly1305::new(k.as_ref().into())
        .encrypt(XNonce::from_slice(&nonce), Payload { msg: secret.as_ref(), aad: &aad(&address) })
        .map_err(|_| KeystoreError::Unsupported("encryption failed".into()))?;
    let f = File {
        kind: KIND.into(),
        version: 1,
        address,
        kdf: Kdf { name: "scrypt".into(), log_n, r: 8, p: 1, salt: hex::encode(salt) },
        cipher: Cipher { name: "xchacha20poly1305".into(), nonce: hex::encode(nonce) },
        ciphertext: hex::encode(ct),
    };
    Ok(serde_json::to_string_pretty(&f).expect("keystore serialises") + "\n")
}

fn parse(text: &str) -> Result<File, KeystoreError> {
    if text.len() > MAX_FILE_BYTES {
        return Err(KeystoreError::Format(format!("{} bytes (a keystore is under {MAX_FILE_BYTES})", text.len())));
    }
    let f: File = serde_json::from_str(text).map_err(|e| KeystoreError::Format(e.to_string()))?;
    if f.kind != KIND || f.version != 1 {
        return Err(KeystoreError::Unsupported(format!("{} version {}", f.kind, f.version)));
    }
    if f.kdf.name != "scrypt" || f.cipher.name != "xchacha20poly1305" {
        return Err(KeystoreError::Unsupported(format!("{} + {}", f.kdf.name, f.cipher.name)));
    }
    check_kdf(f.kdf.log_n, f.kdf.r, f.kdf.p)?;
    Ok(f)
}

/// The address a keystore stores in the clear, read without the password
/// (it is not authenticated until the file is opened).
pub fn address_of(text: &str) -> Result<String, KeystoreError> {
    Ok(parse(text)?.address)
}

/// Opens a keystore's text with `password`.
pub fn open(text: &str, password: &str) -> Result<KeyPair, KeystoreError> {
    let f = parse(text)?;
    let unhex = |s: &str| hex::decode(s).map_err(|e| KeystoreError::Format(e.to_string()));
    let (salt, nonce, ct) = (unhex(&f.kdf.salt)?, unhex(&f.cipher.nonce)?, unhex(&f.ciphertext)?);
    if nonce.len() != 24 {
        return Err(KeystoreError::Format("nonce must be 24 bytes".into()));
    }
    let k = derive(password, &salt, f.kdf.log_n, f.kdf.r, f.kdf.p)?;
    let secret = Zeroizing::new(
        XChaCha20Poly1305::new(k.as_ref().into())
            .decrypt(XNonce::from_slice(&nonce), Payload { msg: &ct, aad: &aad(&f.address) })
            .map_err(|_| KeystoreError::Decrypt)?,
    );
    let arr: [u8; 32] = secret.as_slice().try_into().map_err(|_| KeystoreError::Format("secret length".into()))?;
    let key = KeyPair::from_secret_bytes(arr).map_err(|e| KeystoreError::Format(e.to_string()))?;
    if key.address().to_string() != f.address {
        return Err(KeystoreError::Decrypt);
    }
    Ok(key)
}

/// The password from `GRIDLEDGER_PASSWORD_FILE` (its first line) or
/// `GRIDLEDGER_PASSWORD`; failing both, asked on the terminal when there is
/// one (never echoed).
pub fn password_from_env() -> Result<Zeroizing<String>, KeystoreError> {
    if let Some(p) = std::env::var_os("GRIDLEDGER_PASSWORD_FILE") {
        return password_from_file(std::path::Path::new(&p));
    }
    if let Ok(p) = std::env::var("GRIDLEDGER_PASSWORD") {
        return Ok(Zeroizing::new(p));
    }
    prompt("keystore password: ")
}

/// Asks for a password on the terminal; `NoPassword` when stdin is not one.
pub fn prompt(question: &str) -> Result<Zeroizing<String>, KeystoreError> {
    if !std::io::IsTerminal::is_terminal(&std::io::stdin()) {
        return Err(KeystoreError::NoPassword);
    }
    rpassword::prompt_password(question).map(Zeroizing::new).map_err(|_| KeystoreError::NoPassword)
}

/// The first line of a password file.
pub fn password_from_file(p: &std::path::Path) -> Result<Zeroizing<String>, KeystoreError> {
    use std::io::Read;
    let fail = |message: String| KeystoreError::PasswordFile { path: p.display().to_string(), message };
    let mut text = Zeroizing::new(String::new());
    std::fs::File::open(p)
        .and_then(|f| f.take(MAX_FILE_BYTES as u64 + 1).read_to_string(&mut text))
        .map_err(|e| fail(e.to_string()))?;
    if text.len() > MAX_FILE_BYTES {
        return Err(fail(format!("larger than {MAX_FILE_BYTES} bytes: not a password file")));
    }
    Ok(Zeroizing::new(text.lines().next().unwrap_or("").to_string()))
}

/// Opens a keystore with the password named by the environment.
pub fn open_with_env(text: &str) -> Result<KeyPair, KeystoreError> {
    open(text, &password_from_env()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_refusals() {
        let key = KeyPair::from_secret_bytes([7; 32]).unwrap();
        let text = seal(&key, "correct horse", 10).unwrap();
        assert!(is_keystore(&text));
        assert!(!text.contains(&hex::encode(key.secret_bytes())));
        assert_eq!(open(&text, "correct horse").unwrap().address(), key.address());
        assert!(matches!(open(&text, "wrong"), Err(KeystoreError::Decrypt)));
        // An edited address no longer opens (it is bound as associated data).
        let other = KeyPair::from_secret_bytes([8; 32]).unwrap().address().to_string();
        let edited = text.replace(&key.address().to_string(), &other);
        assert!(matches!(open(&edited, "correct horse"), Err(KeystoreError::Decrypt)));
        assert!(matches!(seal(&key, "", 10), Err(KeystoreError::EmptyPassword)));
        assert!(matches!(open("{}", "x"), Err(KeystoreError::Format(_))));
        assert_eq!(address_of(&text).unwrap(), key.address().to_string());
    }

    #[test]
    fn tampered_kdf_parameters_are_refused_before_deriving() {
        let key = KeyPair::from_secret_bytes([7; 32]).unwrap();
        let text = seal(&key, "pw", 10).unwrap();
        for (from, to) in [("\"log_n\": 10", "\"log_n\": 40"), ("\"p\": 1", "\"p\": 4096"), ("\"r\": 8", "\"r\": 1024")]
        {
            let edited = text.replace(from, to);
            assert_ne!(edited, text, "{from}");
            assert!(matches!(open(&edited, "pw"), Err(KeystoreError::Unsupported(_))), "{to}");
        }
        assert!(matches!(seal(&key, "pw", 40), Err(KeystoreError::Unsupported(_))));
    }

    #[test]
    fn oversized_key_and_password_files_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big");
        std::fs::write(&big, vec![b'a'; MAX_FILE_BYTES + 1]).unwrap();
        assert!(matches!(password_from_file(&big), Err(KeystoreError::PasswordFile { .. })));
        let e = crate::config::read_key_text(&big).unwrap_err().to_string();
        assert!(e.contains("larger than"), "{e}");
        assert!(crate::config::read_key(&big).is_err());
        assert!(address_of(&"x".repeat(MAX_FILE_BYTES + 1)).is_err());
    }
}
