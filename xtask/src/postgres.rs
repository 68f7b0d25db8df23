//! A throwaway PostgreSQL server on 127.0.0.1 in a temporary directory, for tests, with TLS on
//! (`ssl=on`, a certificate for 127.0.0.1 signed by an authority made at start, whose PEM file
//! [`Server::authority`] gives).
//! As root it runs as an unprivileged user (PostgreSQL refuses root): `postgres` if the
//! system has one, else a `ferrypg` user created for it.

use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// How long to wait for a started server to accept connections, in seconds.
const START_TIMEOUT_SECONDS: u64 = 60;

pub(crate) struct Server {
    directory: PathBuf,
    authority: PathBuf,
    bin: PathBuf,
    user: Option<String>,
    port: u16,
}

impl Server {
    pub(crate) fn start() -> Result<Server, String> {
        let bin = find_bin()?;
        let user = if is_root() { Some(service_user()?) } else { None };
        let port = free_port()?;
        let directory =
            std::env::temp_dir().join(format!("ferry-pg-{}-{port}", std::process::id()));
        let data = directory.join("data");
        std::fs::create_dir_all(&directory)
            .map_err(|e| format!("create {}: {e}", directory.display()))?;
        let tls = write_certificates(&directory)?;
        let mut server = Server { directory, authority: tls.0.clone(), bin, user, port };
        if let Some(user) = &server.user {
            check(
                Command::new("chown").args(["-R", user]).arg(&server.directory),
                "chown the data directory",
            )?;
        }
        let initdb = server.command("initdb");
        let mut initdb = initdb;
        initdb.arg("-D").arg(&data).args([
            "-U",
            "ferry",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ]);
        initdb.arg(if has_c_utf8() { "--locale=C.UTF-8" } else { "--no-locale" });
        check(&mut initdb, "initdb")?;
        let options = format!(
            "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300 -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
            server.directory.display(),
            tls.1.display(),
            tls.2.display()
        );
        let log = server.directory.join("server.log");
        let mut start = server.command("pg_ctl");
        start
            .arg("-D")
            .arg(&data)
            .arg("-o")
            .arg(&options)
            .arg("-l")
            .arg(&log)
            .args(["-w", "-t", "60", "start"]);
        if let Err(error) = check(&mut start, "pg_ctl start") {
            let log_text = std::fs::read_to_string(&log).unwrap_or_default();
            server.user = None; // nothing to stop
            return Err(format!("{error}\n{log_text}"));
        }
        wait_for(port)?;
        Ok(server)
    }

    /// The PEM file of the authority that signed the server's certificate.
    pub(crate) fn authority(&self) -> &Path {
        &self.authority
    }

    pub(crate) fn url(&self) -> String {
        format!("postgres://ferry@127.0.0.1:{}/postgres", self.port)
    }

    fn command(&self, program: &str) -> Command {
        let path = self.bin.join(program);
        match &self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(path);
                command
            }
            None => Command::new(path),
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let mut stop = self.command("pg_ctl");
        stop.arg("-D").arg(self.directory.join("data")).args(["-m", "immediate", "-w", "stop"]);
        let _ = stop.output();
        let _ = std::fs::remove_dir_all(&self.directory);
    }
}

/// A certificate authority and a certificate it signed for 127.0.0.1 and localhost, with its key
/// (readable by its owner only, as PostgreSQL requires), in `directory/tls`.
fn write_certificates(directory: &Path) -> Result<(PathBuf, PathBuf, PathBuf), String> {
    let failed = |e: rcgen::Error| format!("make the test certificates: {e}");
    let authority_key = rcgen::KeyPair::generate().map_err(failed)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(failed)?;
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    params.distinguished_name.push(rcgen::DnType::CommonName, "Ferry test PostgreSQL authority");
    let authority = rcgen::CertifiedIssuer::self_signed(params, authority_key).map_err(failed)?;
    let key = rcgen::KeyPair::generate().map_err(failed)?;
    let names = vec!["127.0.0.1".to_owned(), "localhost".to_owned()];
    let server = rcgen::CertificateParams::new(names)
        .and_then(|params| params.signed_by(&key, &authority))
        .map_err(failed)?;
    let tls = directory.join("tls");
    std::fs::create_dir_all(&tls).map_err(|e| format!("create {}: {e}", tls.display()))?;
    let write = |name: &str, text: String| -> Result<PathBuf, String> {
        let path = tls.join(name);
        std::fs::write(&path, text).map_err(|e| format!("write {}: {e}", path.display()))?;
        Ok(path)
    };
    let files = (
        write("authority.pem", authority.pem())?,
        write("server.crt", server.pem())?,
        write("server.key", key.serialize_pem())?,
    );
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::set_permissions(&files.2, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| format!("restrict {}: {e}", files.2.display()))?;
    Ok(files)
}

fn check(command: &mut Command, what: &str) -> Result<(), String> {
    let output = command.output().map_err(|e| format!("{what}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!(
            "{what} failed: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ))
    }
}

/// The directory holding `initdb`, `pg_ctl` and `postgres`: the newest installed version.
fn find_bin() -> Result<PathBuf, String> {
    let mut candidates: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| entries.filter_map(|e| e.ok()).map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    candidates.sort();
    if let Some(bin) = candidates.into_iter().rev().find(|bin| bin.join("initdb").exists()) {
        return Ok(bin);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .find(|dir| dir.join("initdb").exists() && dir.join("pg_ctl").exists())
        .ok_or_else(|| "PostgreSQL is not installed (no initdb found); install it with `apt-get install postgresql`".to_owned())
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn service_user() -> Result<String, String> {
    for user in ["postgres", "ferrypg"] {
        if Command::new("id").arg(user).output().is_ok_and(|o| o.status.success()) {
            return Ok(user.to_owned());
        }
    }
    check(
        Command::new("useradd").args(["--system", "--no-create-home", "ferrypg"]),
        "useradd ferrypg",
    )?;
    Ok("ferrypg".to_owned())
}

fn has_c_utf8() -> bool {
    Path::new("/usr/lib/locale/C.utf8").exists() || Path::new("/usr/lib/locale/C.UTF-8").exists()
}

fn free_port() -> Result<u16, String> {
    let listener =
        TcpListener::bind("127.0.0.1:0").map_err(|e| format!("find a free port: {e}"))?;
    listener.local_addr().map(|a| a.port()).map_err(|e| e.to_string())
}

#[allow(
    clippy::disallowed_methods,
    reason = "xtask waits for a real process, outside any test runtime"
)]
fn wait_for(port: u16) -> Result<(), String> {
    let deadline = std::time::Instant::now() + Duration::from_secs(START_TIMEOUT_SECONDS);
    while std::time::Instant::now() < deadline {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    Err(format!(
        "PostgreSQL did not accept connections on port {port} within {START_TIMEOUT_SECONDS} s"
    ))
}
