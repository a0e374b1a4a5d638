"""What ``lamina exec`` mounts, each expectation from apptainer's source (apptainer/apptainer
917d6657): working directory, home, the kernel and tmp filesystems, host files, binds."""

from __future__ import annotations

import hashlib
import os
import pwd
import uuid
from pathlib import Path

from tests.exec.conftest import Lamina
from tests.unpack.test_crosscheck import tree_entries

HERE = Path(__file__).parent  # a host directory outside /tmp: bound in as the cwd


def passwd_home() -> str:
    # container_linux.go:1938-1960 getHomePaths: the passwd entry's home, /root for uid 0
    return "/root" if os.getuid() == 0 else pwd.getpwuid(os.getuid()).pw_dir


def test_working_directory_is_the_host_cwd_not_the_workdir(lamina: Lamina, image: Path,
                                                          tmp_path: Path) -> None:
    # launcher_linux.go:1178 SetProcessCwd(cwd) (the image's WorkingDir /opt is not used);
    # container_linux.go:2426 createCwdDir + :2366 addCwdMount bind it when the image lacks it
    result = lamina("exec", str(image), "sh", "-c", "pwd; head -c 40 images.py", cwd=HERE)
    assert result.code == 0, result.err
    assert result.out == f"{HERE}\n" + (HERE / "images.py").read_text()[:40]
    (tmp_path / "mine.txt").write_text("in tmp\n")  # visible through /tmp: no extra bind
    inside = lamina("exec", str(image), "sh", "-c", "pwd; cat mine.txt", cwd=tmp_path)
    assert inside.out == f"{tmp_path}\nin tmp\n", inside.err


def test_home_is_the_passwd_home_bound_in(lamina: Lamina, image: Path) -> None:
    # create.go:193 HOME = the home destination (the host $HOME is not forwarded: create.go:36);
    # container_linux.go:2055 addHomeMount binds the host home at it
    home = passwd_home()
    result = lamina("exec", str(image), "sh", "-c", 'echo "$HOME"; stat -c %i "$HOME"',
                    env={"HOME": "/somewhere/else"})
    assert result.code == 0, result.err
    assert result.out == f"{home}\n{os.stat(pwd.getpwuid(os.getuid()).pw_dir).st_ino}\n"


def test_sys_proc_and_host_dev_are_there(lamina: Lamina, image: Path) -> None:
    # container_linux.go:1487 /sys bound (user namespace flow), :1456 /proc, :1773 the host
    # /dev (config.go:112 "mount dev = yes")
    result = lamina("exec", str(image), "sh", "-c",
                    "test -d /sys/class && test -e /proc/self/status && ls /dev")
    assert result.code == 0, result.err
    assert sorted(result.out.split()) == sorted(n for n in os.listdir("/dev")
                                                if not n.startswith("."))


def test_var_tmp_and_tmp_are_the_hosts_and_writable(lamina: Lamina, image: Path) -> None:
    # container_linux.go:2193 addTmpMount: the host /tmp and /var/tmp bound
    name = f"lamina-exec-{uuid.uuid4().hex}"
    try:
        result = lamina("exec", str(image), "sh", "-c",
                        f"echo v > /var/tmp/{name} && echo t > /tmp/{name}")
        assert result.code == 0, result.err
        assert Path("/var/tmp", name).read_text() == "v\n"
        assert Path("/tmp", name).read_text() == "t\n"
    finally:
        for d in ("/var/tmp", "/tmp"):
            Path(d, name).unlink(missing_ok=True)


def test_host_resolv_conf_hosts_and_identity(lamina: Lamina, image: Path) -> None:
    # container_linux.go:2711 addResolvConfMount and config.go:114 "bind path =
    # /etc/localtime,/etc/hosts": the host's files over the image's; :2640 addIdentityMount
    # with files/passwd.go:34 (uid 0 keeps the image's name and gecos, the home rewritten)
    result = lamina("exec", str(image), "sh", "-c",
                    "cat /etc/resolv.conf; echo ==; cat /etc/hosts; echo ==; id -un; "
                    "grep '^root:' /etc/passwd; echo ==; md5sum < /etc/localtime")
    assert result.code == 0, result.err
    resolv, hosts, ident, localtime = result.out.split("==\n")
    assert localtime.split()[0] == hashlib.md5(Path("/etc/localtime").read_bytes()).hexdigest()
    assert resolv == Path("/etc/resolv.conf").read_text()
    assert hosts == Path("/etc/hosts").read_text()
    me = pwd.getpwuid(os.getuid())
    if os.getuid() == 0:
        assert ident == "root\nroot:x:0:0:image root:/root:/bin/sh\n"
    else:
        assert ident.startswith(f"{me.pw_name}\n")


def test_bind_to_a_destination_the_image_lacks(lamina: Lamina, image: Path,
                                               tmp_path: Path) -> None:
    # underlay_linux.go:66 createLayer: a missing destination is created in the session layer,
    # the root stays read-only (:167 MS_RDONLY); bind.go:73 ParseBindPath "src:dst:ro"
    data = tmp_path / "eos"
    data.mkdir()
    (data / "run.root").write_text("events\n")
    before = tree_entries(image.resolve())
    result = lamina("exec", "--bind", f"{data}:/eos/user/a", "-B", f"{data}:/ro:ro",
                    str(image), "sh", "-c",
                    "cat /eos/user/a/run.root; echo w > /eos/user/a/out && "
                    "! touch /ro/x 2>/dev/null && ! touch /new 2>/dev/null && echo ok")
    assert result.code == 0, result.err
    assert result.out == "events\nok\n"
    assert (data / "out").read_text() == "w\n"
    assert tree_entries(image.resolve()) == before  # the unpacked tree is never written


def test_bind_options_after_dir_and_from_apptainer_bind(lamina: Lamina, image: Path,
                                                        tmp_path: Path) -> None:
    # action_flags.go:122 EnvKeys BIND, BINDPATH (EnvAppendValue): APPTAINER_BIND adds binds
    (tmp_path / "f").write_text("x\n")
    result = lamina("exec", str(image), "--bind", f"{tmp_path}:/one", "--", "cat", "/one/f",
                    "/two/f", env={"APPTAINER_BIND": f"{tmp_path}:/two"})
    assert (result.code, result.out) == (0, "x\nx\n"), result.err


def test_bind_errors_are_one_line(lamina: Lamina, image: Path, tmp_path: Path) -> None:
    # bind.go:226 newBindPath: unknown option; mount_linux.go:406 destination must be absolute
    for spec, message in [
            (f"{tmp_path}:/x:bad", f"--bind '{tmp_path}:/x:bad': 'bad' is not a valid bind "
                                   "option (ro, rw)"),
            (f"{tmp_path}:rel", f"--bind '{tmp_path}:rel': the destination 'rel' must be an "
                                "absolute path"),
            ("/does/not/exist:/x", "--bind '/does/not/exist:/x': /does/not/exist does not "
                                   "exist on the host")]:
        result = lamina("exec", "--bind", spec, str(image), "true")
        assert result.code == 2
        assert result.err == f"lamina: error: {message}\n"


def test_no_mount_point_is_created_on_the_host(lamina: Lamina, image: Path,
                                               tmp_path: Path) -> None:
    # a destination inside a host bind that the host directory lacks: lamina refuses rather
    # than creating it on the host (apptainer's mount of it fails)
    (tmp_path / "a").mkdir()
    result = lamina("exec", "-B", f"{tmp_path}/a:/data", "-B", f"{tmp_path}:/data/sub",
                    str(image), "true")
    assert result.code == 2
    assert result.err == (f"lamina: error: --bind '{tmp_path}:/data/sub': /data/sub does not "
                          f"exist in the host directory bound there ({tmp_path}/a); lamina does "
                          "not create mount points on the host\n")
    assert not (tmp_path / "a" / "sub").exists()


def test_no_home(lamina: Lamina, image: Path) -> None:
    # launcher_linux.go:245 SetNoHome; container_linux.go:2056 addHomeMount skipped; HOME is
    # still the home destination (create.go:193), the image's directory or none
    result = lamina("exec", "--no-home", str(image), "sh", "-c",
                    'echo "$HOME"; stat -c %i "$HOME" 2>/dev/null || echo none')
    assert result.code == 0, result.err
    home, inode = result.out.splitlines()
    assert home == passwd_home()
    assert inode != str(os.stat(pwd.getpwuid(os.getuid()).pw_dir).st_ino)


def test_pwd_overrides_and_must_exist(lamina: Lamina, image: Path) -> None:
    # launcher_linux.go:1169 --pwd sets the process cwd; process_linux.go:88-92 a custom cwd
    # that cannot be entered is an error
    result = lamina("exec", "--pwd", "/usr/bin", str(image), "pwd")
    assert (result.code, result.out) == (0, "/usr/bin\n"), result.err
    missing = lamina("exec", "--pwd", "/nowhere", str(image), "pwd")
    assert missing.code == 2
    assert missing.err == ("lamina: error: --pwd /nowhere: no such directory in the "
                           "container\n")


def test_containall(lamina: Lamina, image: Path, tmp_path: Path) -> None:
    # launcher_linux.go:343-349 --containall: contain + PID and IPC namespaces + cleanenv;
    # :1176 cwd = home; container_linux.go:1974 contained home is an empty session directory,
    # :2232-2247 private /tmp and /var/tmp (1777), :1587 a minimal /dev
    (tmp_path / "host-only").write_text("x")
    result = lamina("exec", "--containall", str(image), "sh", "-c",
                    'pwd; ls -A "$HOME" | wc -l; ls /tmp | wc -l; stat -c %a /tmp /var/tmp; '
                    'echo "${FOO-unset} $LANG $$"; ls /dev', env={"FOO": "host"}, cwd=tmp_path)
    assert result.code == 0, result.err
    lines = result.out.splitlines()
    # $$ is 2: bwrap is PID 1, as apptainer's shim process is; LANG: the image ENV sets it
    assert lines[:6] == [passwd_home(), "0", "0", "1777", "1777", "unset C.UTF-8 2"]
    assert set(lines[6:]) >= {"null", "zero", "random", "urandom", "tty", "pts", "shm",
                              "mqueue"}
    assert "sda" not in lines[6:] and len(lines[6:]) < 25


def test_destinations_follow_the_images_symlinks_inside_the_image(
        lamina: Lamina, tmp_path: Path) -> None:
    # underlay_linux.go:85 dst = EvalRelative(destination, rootfs) (helper.go:262: links
    # resolved inside the image, absolute targets re-rooted); container_linux.go:2273
    # /var/tmp is not bound again when it resolves to the container's /tmp
    from tests.exec.images import busybox_entries, unpacked
    from tests.unpack.oci import d, sym

    img = unpacked(tmp_path, busybox_entries([d("var"), sym("var/tmp", "../tmp"),
                                              d("srv"), sym("data", "/srv/data"),
                                              sym("etc/missing-link", "/nowhere/file")]),
                   name="links")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "f").write_text("through the link\n")
    name = f"lamina-exec-{uuid.uuid4().hex}"
    host_before = (Path("/srv/data").exists(), Path("/nowhere").exists())
    try:
        result = lamina("exec", "-B", f"{tmp_path}/src:/data",
                        "-B", f"{tmp_path}/src/f:/etc/missing-link", str(img), "sh", "-c",
                        f"cat /data/f /srv/data/f /nowhere/file; readlink /var/tmp; "
                        f"echo x > /var/tmp/{name}")
        assert result.code == 0, result.err
        assert result.out == "through the link\n" * 3 + "../tmp\n"
        assert Path("/tmp", name).exists()  # /var/tmp is the image's link to the host /tmp
    finally:
        Path("/tmp", name).unlink(missing_ok=True)
    assert (Path("/srv/data").exists(), Path("/nowhere").exists()) == host_before


def test_contain_keeps_the_environment_but_not_the_host_directories(
        lamina: Lamina, image: Path, tmp_path: Path) -> None:
    # launcher_linux.go:343-344 --contain alone: no cleanenv, no PID namespace;
    # container_linux.go:2426-2429 createCwdDir: no cwd bind with contain, :1174-1176 the
    # cwd is the (empty) home
    (tmp_path / "host-only").write_text("x")
    result = lamina("exec", "--contain", str(image), "sh", "-c",
                    'pwd; ls /tmp | wc -l; echo "$FOO"; test -e /dev/sda1 || echo minimal',
                    env={"FOO": "kept"}, cwd=tmp_path)
    assert (result.code, result.out) == (0, f"{passwd_home()}\n0\nkept\nminimal\n"), \
        result.err
