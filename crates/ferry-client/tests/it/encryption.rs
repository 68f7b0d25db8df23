//! An encrypted device database: nothing of its data is in its files, and it opens with its
//! key only; a wrong key changes nothing.

use ferry_client::{ClientError, Database, DeviceKey};
use ferry_model::{Value, samples};

/// Every byte of the files under `dir` (the database, its write-ahead log, its shared memory,
/// its file store).
fn raw_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    names.sort();
    let mut bytes = Vec::new();
    for path in names {
        match path.is_dir() {
            true => bytes.extend(raw_bytes(&path)),
            false => bytes.extend(std::fs::read(&path).unwrap()),
        }
    }
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

#[test]
fn an_encrypted_database_holds_no_plaintext_and_opens_with_its_key_only() {
    let dir = std::env::temp_dir().join(format!("ferry-encrypted-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("device.db");
    let key = DeviceKey::from_secret(b"0123456789abcdef0123456789abcdef-device").unwrap();
    let secret_text = "Pump P-7731 leaks at the north valve";
    let id = {
        let db = Database::open_encrypted(&path, samples::FIELD_SERVICE, &key).unwrap();
        let mut site = db.create("Field.Site").unwrap();
        db.set(&mut site, "Name", Value::String(secret_text.to_owned())).unwrap();
        db.commit(&mut [&mut site]).unwrap();
        site.id()
    };
    let raw = raw_bytes(&dir);
    assert!(raw.len() > 4096, "the database was written");
    assert!(!contains(&raw, secret_text.as_bytes()), "the value is not readable in the files");
    assert!(!contains(&raw, b"Field.Site"), "nor the model");
    assert!(!contains(&raw, b"SQLite format 3"), "nor even SQLite's header");

    // No key, another key: refused, and the files are as they were.
    let other = DeviceKey::from_secret(b"another secret, 32 bytes or longer").unwrap();
    for (what, refused) in [
        ("no key", Database::open(&path, samples::FIELD_SERVICE)),
        ("no key, existing", Database::open_existing(&path)),
        ("another key", Database::open_encrypted(&path, samples::FIELD_SERVICE, &other)),
        ("another key, existing", Database::open_existing_keyed(&path, Some(&other))),
    ] {
        let refused = refused.err();
        assert!(matches!(refused, Some(ClientError::WrongKey { .. })), "{what}: {refused:?}");
        assert_eq!(raw_bytes(&dir), raw, "{what} changed nothing");
    }
    // Its key opens it.
    let db = Database::open_existing_keyed(&path, Some(&key)).unwrap();
    let site = db.get("Field.Site", id).unwrap().unwrap();
    assert_eq!(db.get_value(&site, "Name").unwrap(), &Value::String(secret_text.to_owned()));
    // A key given to a database that is not encrypted is refused too.
    let plain = dir.join("plain.db");
    drop(Database::open(&plain, samples::FIELD_SERVICE).unwrap());
    let refused = Database::open_existing_keyed(&plain, Some(&key)).err();
    assert!(matches!(refused, Some(ClientError::WrongKey { .. })), "{refused:?}");
    assert!(matches!(
        DeviceKey::from_secret(b"short"),
        Err(ClientError::KeyTooShort { length: 5 })
    ));
}

#[test]
fn an_encrypted_databases_file_contents_are_sealed_and_read_back_whole() {
    use std::io::Read as _;
    let dir = std::env::temp_dir().join(format!("ferry-encrypted-files-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("device.db");
    let key = DeviceKey::from_secret(b"0123456789abcdef0123456789abcdef-device").unwrap();
    let db = Database::open_encrypted(&path, samples::FIELD_SERVICE, &key).unwrap();
    // Several chunks and a part: a photo of a little over 3 MiB, with a line that stands out.
    let mut content = b"the valve's serial number is VX-99120 ".repeat(90_000);
    content.extend_from_slice(b"end");
    let mut photo = db.create("Field.Photo").unwrap();
    db.attach_file(&mut photo, "valve.jpg", &content[..]).unwrap();
    db.commit(&mut [&mut photo]).unwrap();
    let raw = raw_bytes(&dir.join("device.db.files"));
    assert!(raw.len() > content.len(), "the content was stored, with its tags");
    assert!(!contains(&raw, b"VX-99120"), "the store holds no plaintext");
    let mut back = Vec::new();
    db.open_file(&photo).unwrap().read_to_end(&mut back).unwrap();
    assert_eq!(back, content);
    assert_eq!(db.get_value(&photo, "FileSize").unwrap(), &Value::Integer(content.len() as i64));
}
