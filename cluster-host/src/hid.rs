//! The hid: the host's MAC address (spec 5.2, 7.3).
//!
//! As the reference on Linux: the contents of `/sys/class/net/eth0/address`, trimmed. Unlike
//! the reference, a host without `eth0` still joins: the first other interface (by name)
//! that has a non-zero MAC is used. A host with neither fails with [`HidError`]; pass a hid
//! explicitly there. All nodes on a host must agree on the hid in local mode, and a node that
//! must talk to reference nodes on the same host must use eth0's MAC, which is the default.

use std::fs;
use std::path::Path;

/// Where Linux lists network interfaces.
const SYS_CLASS_NET: &str = "/sys/class/net";

/// No interface with a MAC address was found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no network interface with a MAC address under {dir} (eth0 first); give a hid explicitly")]
pub struct HidError {
    /// The directory that was searched.
    pub dir: String,
}

/// The host's hid: eth0's MAC, else the first non-loopback interface's.
///
/// # Errors
///
/// [`HidError`] when no interface has a MAC (or `/sys/class/net` does not exist).
pub fn host_hid() -> Result<String, HidError> {
    hid_from(Path::new(SYS_CLASS_NET))
}

/// [`host_hid`] over another directory laid out like `/sys/class/net`.
///
/// # Errors
///
/// [`HidError`] when no interface there has a MAC.
pub fn hid_from(dir: &Path) -> Result<String, HidError> {
    let error = || HidError {
        dir: dir.display().to_string(),
    };
    if let Some(mac) = read_mac(&dir.join("eth0")) {
        return Ok(mac);
    }
    let mut names: Vec<String> = fs::read_dir(dir)
        .map_err(|_| error())?
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "lo")
        .collect();
    names.sort();
    names
        .iter()
        .find_map(|name| read_mac(&dir.join(name)))
        .ok_or_else(error)
}

/// The interface's MAC, lowercase, when it has a non-zero one.
fn read_mac(interface: &Path) -> Option<String> {
    let text = fs::read_to_string(interface.join("address")).ok()?;
    let mac = text.trim().to_ascii_lowercase();
    let is_mac = cluster_core::is_mac_hid(&mac);
    (is_mac && mac != "00:00:00:00:00:00").then_some(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fake(interfaces: &[(&str, &str)]) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cluster-hid-{}-{}",
            std::process::id(),
            interfaces.len()
        ));
        let _ = fs::remove_dir_all(&dir);
        for (name, mac) in interfaces {
            fs::create_dir_all(dir.join(name)).unwrap();
            fs::write(dir.join(name).join("address"), format!("{mac}\n")).unwrap();
        }
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn eth0_wins_then_the_first_interface_with_a_mac() {
        let dir = fake(&[
            ("lo", "00:00:00:00:00:00"),
            ("wlan0", "02:00:00:00:00:02"),
            ("eth0", "02:FC:00:00:00:01"),
        ]);
        assert_eq!(hid_from(&dir).unwrap(), "02:fc:00:00:00:01");
        fs::remove_dir_all(&dir).unwrap();
        let dir = fake(&[("lo", "00:00:00:00:00:00"), ("wlan0", "02:00:00:00:00:02")]);
        assert_eq!(hid_from(&dir).unwrap(), "02:00:00:00:00:02");
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn no_mac_is_a_typed_error() {
        let dir = fake(&[("lo", "00:00:00:00:00:00")]);
        assert!(hid_from(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
        assert!(hid_from(Path::new("/nonexistent/cluster")).is_err());
    }
}
