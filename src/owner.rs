//! Who owns the data directory, and keeping it that way: `miniftp useradd`
//! is usually run as root, while the server runs as its own user (`miniftp`
//! under the shipped unit). A users file rewritten by root would be
//! root-owned and mode 0600, and the server could no longer read it, so
//! every file written into the data directory as root is handed to the
//! directory's owner and group before it takes its final name.

use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use rustix::fs::{fchown, Gid, Uid};

/// Gives `file` (just created in `dir`) the owner and group of `dir` when
/// we run as root and they differ. A no-op for anyone else: only root may
/// give a file away, and a non-root writer's files are its own already.
pub fn like_dir(file: &File, dir: &Path) -> std::io::Result<()> {
    if !rustix::process::geteuid().is_root() {
        return Ok(());
    }
    let want = std::fs::metadata(dir)?;
    let have = file.metadata()?;
    if (have.uid(), have.gid()) == (want.uid(), want.gid()) {
        return Ok(());
    }
    let uid = Uid::from_raw(want.uid());
    let gid = Gid::from_raw(want.gid());
    fchown(file, Some(uid), Some(gid))?;
    Ok(())
}

/// The line `useradd` prints when root writes into a directory someone
/// else owns: what it did about it. None when there is nothing to say.
pub fn note_for(dir: &Path) -> Option<String> {
    if !rustix::process::geteuid().is_root() {
        return None;
    }
    let md = std::fs::metadata(dir).ok()?;
    if md.uid() == 0 && md.gid() == 0 {
        return None;
    }
    Some(format!(
        "{} belongs to {}:{}; the files written there are given to {0}'s owner and group",
        dir.display(),
        user_name(md.uid()),
        group_name(md.gid())
    ))
}

/// The name of user `uid` from /etc/passwd, else the number.
pub fn user_name(uid: u32) -> String {
    name_in("/etc/passwd", uid).unwrap_or_else(|| uid.to_string())
}

/// The name of group `gid` from /etc/group, else the number.
pub fn group_name(gid: u32) -> String {
    name_in("/etc/group", gid).unwrap_or_else(|| gid.to_string())
}

/// The first field of the line of a passwd(5)/group(5) file whose third
/// field is `id`. (No NSS: a service user made by sysusers.d is in the
/// files; anything else is shown by number, which works in a `chown` too.)
fn name_in(file: &str, id: u32) -> Option<String> {
    let text = std::fs::read_to_string(file).ok()?;
    text.lines().find_map(|line| {
        let mut fields = line.split(':');
        let name = fields.next()?;
        let id_field = fields.nth(1)?;
        (id_field.parse() == Ok(id)).then(|| name.to_string())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_has_a_name() {
        assert_eq!(user_name(0), "root");
        assert_eq!(group_name(0), "root");
        assert_eq!(user_name(4_000_000_123), "4000000123");
    }

    #[test]
    fn like_dir_gives_root_written_files_away() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let file = File::create(&path).unwrap();
        if rustix::process::geteuid().is_root() {
            // The service user's case: a directory root does not own.
            let nobody = (Uid::from_raw(65534), Gid::from_raw(65534));
            rustix::fs::chown(dir.path(), Some(nobody.0), Some(nobody.1)).unwrap();
            assert_eq!(file.metadata().unwrap().uid(), 0);
            assert!(note_for(dir.path()).unwrap().contains(&user_name(65534)));
        }
        like_dir(&file, dir.path()).unwrap();
        let (f, d) = (
            file.metadata().unwrap(),
            std::fs::metadata(dir.path()).unwrap(),
        );
        assert_eq!((f.uid(), f.gid()), (d.uid(), d.gid()));
    }
}
