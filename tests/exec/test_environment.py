"""The environment inside ``lamina exec``, each expectation from apptainer's source
(apptainer/apptainer 917d6657: file and line cited per test)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.exec.conftest import Lamina
from tests.exec.images import busybox_entries, shell_entries, unpacked
from tests.unpack.oci import f

DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"  # create.go:24


FIXED = "/opt/bin:/usr/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/sbin:/bin"


def printenv(lamina: Lamina, image: Path, *names: str, options: tuple[str, ...] = (),
             **env: str) -> list[str]:
    result = lamina("exec", *options, str(image), "sh", "-c",
                    " ".join(f'echo "{n}=${{{n}-<unset>}}";' for n in names), env=env)
    assert result.code == 0, result.err
    return result.out.splitlines()


def test_host_ld_library_path_does_not_leak(lamina: Lamina, image: Path) -> None:
    # create.go:42 alwaysOmitKeys "LD_LIBRARY_PATH" (never forwarded); 99-base.sh (apptainer's
    # internal/pkg/build/sources/99-base.sh, DUCC's the same) then sets /.singularity.d/libs
    assert printenv(lamina, image, "LD_LIBRARY_PATH",
                    LD_LIBRARY_PATH="/cvmfs/sft.cern.ch/lcg/views/LCG_105/x86_64/lib") == [
        "LD_LIBRARY_PATH=/.singularity.d/libs"]


def test_image_env_wins_and_host_only_variables_pass(lamina: Lamina, image: Path) -> None:
    # action_script.sh:30 clear_env unsets the host's, the env scripts set the image's,
    # action_script.sh:57 restore_env gives back only what the scripts left unset
    assert printenv(lamina, image, "HELLO", "LANG", "ONLY_HOST", HELLO="host",
                    LANG="de_CH.UTF-8", ONLY_HOST="yes") == [
        "HELLO=image", "LANG=C.UTF-8", "ONLY_HOST=yes"]


def test_an_empty_value_set_by_the_image_unsets_the_host_one(lamina: Lamina,
                                                             tmp_path: Path) -> None:
    # action_script.sh:74 restore_env: "elif test -z ${!key}: unset" (image ENV EMPTY=)
    img = unpacked(tmp_path, busybox_entries(), env=["EMPTY="])
    assert printenv(lamina, img, "EMPTY", EMPTY="host") == ["EMPTY=<unset>"]


@pytest.mark.parametrize("shell", ["busybox", "/bin/dash", "/bin/bash"])
def test_env_scripts_are_sourced_in_lexical_order(lamina: Lamina, tmp_path: Path,
                                                  shell: str) -> None:
    # action_script.sh:118 "for __script__ in /.singularity.d/env/*.sh" (glob order), with
    # fixpath after 10-docker2singularity.sh (:131-136) and the injection after 99-base.sh
    # (:142); the same with the image's /bin/sh being busybox ash, dash or bash
    scripts = [f(".singularity.d/env/05-site.sh",
                 'export ORDER="05:$HELLO"\nexport HELLO=from-05\n'),
               f(".singularity.d/env/50-late.sh", 'export ORDER="$ORDER 50:$HELLO:$PATH"\n'),
               f(".singularity.d/env/98-last.sh",
                 'export ORDER="$ORDER 98:${LD_LIBRARY_PATH-}:${INJ-}"\n')]
    entries = busybox_entries() if shell == "busybox" else shell_entries(shell)
    img = unpacked(tmp_path, entries + scripts, env=["HELLO=image", "PATH=/opt/bin"])
    assert printenv(lamina, img, "ORDER", "INJ", APPTAINERENV_INJ="inj") == [
        # 05 runs first (no HELLO yet); 10-docker2singularity keeps HELLO (${HELLO:-image});
        # 50 sees the fixed PATH; 98 runs before 99-base.sh adds libs and INJ is injected
        f"ORDER=05: 50:from-05:/opt/bin:{DEFAULT_PATH} 98::", "INJ=inj"]


def test_apptainerenv_injection_and_its_precedence(lamina: Lamina, image: Path) -> None:
    # create.go:63-94 overridesForContainerEnv: APPTAINERENV_ first, then SINGULARITYENV_,
    # the first seen wins; the host FOO is not forwarded once overridden (create.go:177);
    # process_linux.go:694-712 export KEY="value" (double quotes escaped, the rest evaluated)
    # after 99-base.sh, so it beats the image ENV; HOME cannot be overridden (create.go:36)
    result = lamina("exec", str(image), "sh", "-c",
                    'echo "$HELLO|$FOO|$BAR|$QUOTED|$LD_LIBRARY_PATH|$HOME|'
                    '${APPTAINERENV_FOO-gone}"',
                    env={"APPTAINERENV_HELLO": "injected", "FOO": "host",
                         "APPTAINERENV_FOO": "apptainer", "SINGULARITYENV_FOO": "singularity",
                         "SINGULARITYENV_BAR": "bar", "APPTAINERENV_QUOTED": 'a "b" $LANG',
                         "APPTAINERENV_LD_LIBRARY_PATH": "/opt/lib",
                         "APPTAINERENV_HOME": "/nope"})
    assert result.code == 0, result.err
    home = result.out.split("|")[5]
    assert result.out == (f'injected|apptainer|bar|a "b" C.UTF-8|/opt/lib:/.singularity.d/libs|'
                          f"{home}|gone\n")
    assert home != "/nope"
    assert "Overriding HOME environment variable with APPTAINERENV_HOME is not permitted" \
        in result.err
    assert "SINGULARITYENV_FOO=singularity], FOO is already overridden" in result.err


def test_apptainerenv_path_prepend_and_append(lamina: Lamina, image: Path) -> None:
    # create.go:75-80 -> SING_USER_DEFINED_*; files/runtime_vars.sh applies and unsets them
    assert printenv(lamina, image, "PATH", "SING_USER_DEFINED_PREPEND_PATH",
                    APPTAINERENV_PREPEND_PATH="/first", APPTAINERENV_APPEND_PATH="/last") == [
        f"PATH=/first:{FIXED}:/last",
        "SING_USER_DEFINED_PREPEND_PATH=<unset>"]
    assert printenv(lamina, image, "PATH", APPTAINERENV_PATH="/only") == ["PATH=/only"]


def test_container_name_and_path_variables(lamina: Lamina, image: Path, tmp_path: Path) -> None:
    # launcher_linux.go:584-585 CONTAINER = filepath.Abs(image) (symlinks kept), NAME = its
    # base, for both prefixes; :712 BIND = the bind destinations; process_linux.go:853
    # APPTAINER_COMMAND; :404 APPNAME = ""; action_script.sh:211-212 APPTAINER_ENVIRONMENT
    names = ("APPTAINER_CONTAINER", "SINGULARITY_CONTAINER", "APPTAINER_NAME",
             "SINGULARITY_NAME", "APPTAINER_BIND", "SINGULARITY_BIND", "APPTAINER_COMMAND",
             "APPTAINER_APPNAME", "APPTAINER_ENVIRONMENT")
    relative = Path(image.parent.name, image.name)  # localhost/img:latest, from its parent
    result = lamina("exec", "--bind", f"{tmp_path}:/data1,{tmp_path}:/data2:ro",
                    str(relative), "sh", "-c",
                    " ".join(f'echo "{n}=${{{n}-<unset>}}";' for n in names),
                    cwd=image.parent.parent, env={"APPTAINER_NAME": "host-value"})
    assert result.code == 0, result.err
    assert result.out.splitlines() == [
        f"APPTAINER_CONTAINER={image}", f"SINGULARITY_CONTAINER={image}",
        "APPTAINER_NAME=img:latest", "SINGULARITY_NAME=img:latest",
        "APPTAINER_BIND=/data1,/data2", "SINGULARITY_BIND=/data1,/data2",
        "APPTAINER_COMMAND=exec", "APPTAINER_APPNAME=",
        "APPTAINER_ENVIRONMENT=/.singularity.d/env/91-environment.sh"]


def test_path_gets_the_missing_default_directories(lamina: Lamina, image: Path,
                                                   tmp_path: Path) -> None:
    # process_linux.go:791 fixPathBuiltin appends each DefaultPath directory not present;
    # create.go:194 the host PATH is replaced by DefaultPath before the scripts run
    assert printenv(lamina, image, "PATH") == [f"PATH={FIXED}"]
    no_path = unpacked(tmp_path, busybox_entries(), env=["X=1"])
    assert printenv(lamina, no_path, "PATH") == [f"PATH={DEFAULT_PATH}"]


def test_cleanenv_keeps_term_and_proxies_and_sets_lang_c(lamina: Lamina, tmp_path: Path
                                                         ) -> None:
    # create.go:19-31 alwaysPassKeys (TERM, *_proxy); :133 LANG=C; :205 nothing else
    img = unpacked(tmp_path, busybox_entries(), env=["HELLO=image"])
    out = printenv(lamina, img, "TERM", "https_proxy", "LANG", "FOO", "HELLO", "HOME",
                   options=("--cleanenv",), TERM="xterm-256color",
                   https_proxy="http://proxy:3128", LANG="fr_FR.UTF-8", FOO="host")
    assert out[:5] == ["TERM=xterm-256color", "https_proxy=http://proxy:3128", "LANG=C",
                       "FOO=<unset>", "HELLO=image"]
    assert out[5] != "HOME=<unset>"
    result = lamina("exec", "--cleanenv", str(img), "env", env={"FOO": "host"})
    assert result.code == 0, result.err
    assert "FOO=host" not in result.out.splitlines()


def test_cleanenv_after_dir_before_double_dash(lamina: Lamina, image: Path) -> None:
    # the options may follow DIR when '--' ends them (apptainer takes them before the image)
    result = lamina("exec", str(image), "--cleanenv", "--", "sh", "-c", "echo ${FOO-unset}",
                    env={"FOO": "host"})
    assert (result.code, result.out) == (0, "unset\n")
