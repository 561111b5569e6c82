//! Workspace images against a lab's own code: a lab cannot reach the
//! images (in the hidden data directory) or another user's workspace,
//! has no loop device to attach, cannot mount, remount or resize its own
//! workspace's file system, and its quota holds after it tried.

use std::os::unix::fs::MetadataExt;

use serde_json::Value;

use crate::harness::*;
use crate::jupyter::open;
use crate::quotas::{assert_detached, images_available, launch_running, spawn_with_images};

#[tokio::test]
async fn a_lab_cannot_remount_resize_or_reach_another_workspace_image() {
    if !images_available() {
        return;
    }
    let app = spawn_with_images(Db::Sqlite).await;
    let data_dir = app.config().data_dir.clone();
    let victim = app.user_with_role("victor", "user").await;
    let attacker = app.user_with_role("mallory", "user").await;
    let _victims_lab = launch_running(&app, &victim, "testapp").await;
    let id = launch_running(&app, &attacker, "jupyterlab").await;

    // On the host: the images are the platform's alone.
    let images = data_dir.join("images");
    let meta = std::fs::metadata(&images).unwrap();
    assert_eq!((meta.uid(), meta.mode() & 0o777), (0, 0o700));
    let victims_image = images.join("user-victor.img");
    assert!(victims_image.is_file());

    let lab = open(&app, "mallory", &id).await;
    let code = format!(
        r#"import fcntl, glob, os, struct, subprocess
def tried(f):
    try:
        f()
        return 'DONE'
    except OSError as e:
        return 'REFUSED ' + (e.strerror or str(e))
def run(*cmd):
    try:
        r = subprocess.run(list(cmd), capture_output=True, text=True, timeout=20)
        return 'EXIT %d' % r.returncode
    except OSError as e:
        return 'REFUSED ' + (e.strerror or str(e))
home = os.open(os.path.expanduser('~'), os.O_RDONLY)
big = struct.pack('Q', 1 << 30)
print('images', tried(lambda: os.listdir({images:?})))
print('image', tried(lambda: open({image:?}, 'rb').read(1)))
print('other', tried(lambda: os.listdir({other:?})))
print('loops', glob.glob('/dev/loop*'))
print('resize', tried(lambda: fcntl.ioctl(home, 0x40086610, big)))
print('mount', run('mount', '-o', 'remount,rw,size=1G', os.path.expanduser('~')))
print('losetup', run('losetup', '-f', '--show', {image:?}))
print('umount', run('umount', '-l', os.path.expanduser('~')))
print('fallocate', tried(lambda: os.posix_fallocate(os.open(os.path.expanduser('~/my_workspace/huge'), os.O_CREAT | os.O_WRONLY), 0, 1 << 30)))
st = os.statvfs(os.path.expanduser('~'))
print('room', st.f_blocks * st.f_frsize <= {limit})
"#,
        images = images.display().to_string(),
        image = victims_image.display().to_string(),
        other = data_dir.join("workspaces/victor").display().to_string(),
        limit = 64u64 << 20,
    );
    let (out, err) = lab.run(&code).await;
    assert_eq!(err, None, "{out}");
    let line = |key: &str| {
        out.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} ")))
            .unwrap_or_else(|| panic!("no {key} in {out}"))
            .to_owned()
    };
    for key in ["images", "image", "other"] {
        assert!(line(key).starts_with("REFUSED"), "{key}: {out}");
    }
    assert_eq!(line("loops"), "[]", "no loop device in a lab: {out}");
    assert!(line("resize").starts_with("REFUSED"), "{out}");
    for key in ["mount", "losetup", "umount"] {
        assert!(!line(key).contains("EXIT 0"), "{key}: {out}");
    }
    assert_eq!(
        line("fallocate"),
        "REFUSED No space left on device",
        "{out}"
    );
    assert_eq!(line("room"), "True", "{out}");

    // Nothing changed on the host: the victim's image and mount are whole.
    assert!(insitu_launcher::storage::is_mount_point(
        &data_dir.join("workspaces/victor")
    ));
    let (status, w) = get_json(&plain(), &app.u("/api/v1/me/workspace"), &attacker).await;
    assert_eq!(status, 200);
    assert_eq!(w["quota"]["quota_bytes"], Value::from(32u64 << 20));
    drop(lab);
    drop(app);
    assert_detached(data_dir).await;
}
