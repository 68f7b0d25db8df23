//! An encrypted device database: nothing of its data is in its files, and it opens with its
//! key only; a wrong key changes nothing.

use ferry_client::{ClientError, Database, DeviceKey};
use ferry_model::{Value, samples};

/// Every byte of the database's files (the database, its write-ahead log, its shared memory).
fn raw_bytes(dir: &std::path::Path) -> Vec<u8> {
    let mut names: Vec<_> = std::fs::read_dir(dir).unwrap().flatten().map(|e| e.path()).collect();
    names.sort();
    names.into_iter().filter(|p| p.is_file()).flat_map(|p| std::fs::read(p).unwrap()).collect()
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
