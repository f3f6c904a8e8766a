//! This machine's raw id, read the way Leapp's node-machine-id 1.1.12 reads
//! it, so that a workspace Leapp wrote here can be decrypted here.

use std::process::Command;

/// The raw machine id, normalised as node-machine-id does (whitespace
/// removed, lowercase); `None` when it cannot be read.
pub(crate) fn raw_machine_id() -> Option<String> {
    let id = normalize(&read_raw()?);
    (!id.is_empty()).then_some(id)
}

/// A raw id as node-machine-id hands it on: whitespace removed, lowercase.
pub(crate) fn normalize(raw: &str) -> String {
    raw.chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_lowercase()
}

/// Linux: `cat /var/lib/dbus/machine-id /etc/machine-id || hostname`,
/// first line. `cat` writes each file it can read and fails if either is
/// missing, and then the hostname is appended: the bytes are joined as
/// `cat` joins them, before the first line is taken.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn read_raw() -> Option<String> {
    let mut bytes = Vec::new();
    let mut all_there = true;
    for path in ["/var/lib/dbus/machine-id", "/etc/machine-id"] {
        match std::fs::read(path) {
            Ok(b) => bytes.extend_from_slice(&b),
            Err(_) => all_there = false,
        }
    }
    if !all_there {
        bytes.extend_from_slice(&run("hostname", &[])?.into_bytes());
    }
    let text = String::from_utf8_lossy(&bytes);
    Some(text.split('\n').next().unwrap_or_default().to_owned())
}

/// macOS: `IOPlatformUUID` from `ioreg -rd1 -c IOPlatformExpertDevice`.
#[cfg(target_os = "macos")]
fn read_raw() -> Option<String> {
    let out = run("ioreg", &["-rd1", "-c", "IOPlatformExpertDevice"])?;
    let after = out.split_once("IOPlatformUUID")?.1;
    let line = after.lines().next()?;
    Some(line.replace(['=', '"'], ""))
}

/// Windows: `MachineGuid` under `HKLM\SOFTWARE\Microsoft\Cryptography`,
/// from the 64-bit registry view (`reg.exe /reg:64`).
#[cfg(windows)]
fn read_raw() -> Option<String> {
    let out = run(
        "reg",
        &[
            "query",
            r"HKEY_LOCAL_MACHINE\SOFTWARE\Microsoft\Cryptography",
            "/v",
            "MachineGuid",
            "/reg:64",
        ],
    )?;
    Some(out.split_once("REG_SZ")?.1.to_owned())
}

/// FreeBSD: `kenv -q smbios.system.uuid || sysctl -n kern.hostuuid`.
#[cfg(target_os = "freebsd")]
fn read_raw() -> Option<String> {
    run("kenv", &["-q", "smbios.system.uuid"])
        .filter(|s| !s.trim().is_empty())
        .or_else(|| run("sysctl", &["-n", "kern.hostuuid"]))
}

#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_os = "macos",
    target_os = "freebsd",
    windows
)))]
fn read_raw() -> Option<String> {
    None
}

/// A command's standard output, if it ran and succeeded.
#[allow(dead_code)] // not every platform runs one
fn run(program: &str, args: &[&str]) -> Option<String> {
    let out = Command::new(program).args(args).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}
