"""The action script: apptainer's ``action_script.sh``, as its interpreter runs it, in POSIX sh.

apptainer runs ``internal/pkg/util/fs/files/action_script.sh`` inside the container with an
embedded shell (``process_linux.go`` ``runActionScript``) whose built-ins ``getallenv``,
``fixpath`` and the virtual files ``/.inject-apptainer-env.sh`` and
``/.singularity.d/env/99-runtimevars.sh`` (``files/runtime_vars.sh``) live in Go. lamina has
no embedded shell, so :data:`SCRIPT` does the same steps with the image's ``/bin/sh`` (dash,
bash or busybox ash):

1. ``clear_env``: only ``HOME``, ``OPTIND``, ``UID``, ``GID``, ``SINGULARITY_APPNAME``,
   ``SINGULARITY_SHELL``, ``APPTAINER_NAME``/``_CONTAINER``/``_INSTANCE`` (read-only) survive;
   lamina starts the shell with only those (plus names no shell can hold) and passes every
   other variable of the process environment under ``__lamina_h_NAME``, moved at once into
   unexported shell variables;
2. the working directory (``StartProcess``: ``--pwd`` must work, else the home, else ``/``);
3. ``/.singularity.d/env/*.sh`` sourced in lexical order: ``fixpath`` (default ``PATH``
   directories appended when missing) after ``10-docker2singularity.sh``/``10-docker.sh``,
   ``PATH`` defaulted before ``90-environment.sh``, the injected overrides and
   ``set_default_ld_library_path`` right after ``99-base.sh``, ``runtime_vars.sh`` in place of
   ``99-runtimevars.sh`` (or after the loop when the image has none); ``/environment`` for
   pre-2.3 images without ``/.singularity.d/env``;
4. ``libs32``, ``PREPEND_``/``APPEND_LD_LIBRARY_PATH``;
5. ``restore_env``: each variable of the process environment the scripts left unset gets its
   value back, one they set empty is unset: so the image's ENV wins over the host's;
6. ``PS1``, ``PROMPT_COMMAND``, ``APPTAINER_ENVIRONMENT``; then ``exec "$@"``, or for ``run``
   ``/.singularity.d/runscript``, ``/apptainer``, ``/bin/sh``.

No value is ever part of the script's text: names and values come in the environment
(:func:`launch_env`); names are checked to be shell names before they reach ``eval``.
Differences from the embedded shell: SCIF apps (``--app``) are not supported; a bash
``/bin/sh`` exports ``SHLVL=1`` itself; overrides are injected in name order (Go's map order
is random).
"""

from __future__ import annotations

from lamina.sandbox.environ import SHELL_NAME, ContainerEnv, injected

KEPT = ("HOME", "OPTIND", "UID", "GID", "SINGULARITY_APPNAME", "SINGULARITY_SHELL",
        "APPTAINER_NAME", "APPTAINER_CONTAINER", "APPTAINER_INSTANCE")
READONLY = ("APPTAINER_NAME", "APPTAINER_CONTAINER", "APPTAINER_INSTANCE")

SCRIPT = r"""
__lamina_names=$__LAMINA_RESTORE __lamina_inject=$__LAMINA_INJECT
__lamina_cwd=$__LAMINA_CWD __lamina_custom=$__LAMINA_CUSTOM_CWD __lamina_home=$__LAMINA_HOME
__lamina_ro=$__LAMINA_READONLY
unset __LAMINA_RESTORE __LAMINA_INJECT __LAMINA_CWD __LAMINA_CUSTOM_CWD __LAMINA_HOME \
    __LAMINA_READONLY
unset PATH  # a shell sets its own default when the environment has none; apptainer has none
__lamina_ifs=${IFS-} __lamina_ifs_set=${IFS+x}
IFS=' ' && set -f
for __lamina_n in $__lamina_names; do
    eval "__lamina_r_$__lamina_n=\${__lamina_h_$__lamina_n}"
    unset "__lamina_h_$__lamina_n"
done
for __lamina_n in $__lamina_inject; do
    eval "__lamina_v_$__lamina_n=\${__lamina_i_$__lamina_n}"
    unset "__lamina_i_$__lamina_n"
done
for __lamina_n in $__lamina_ro; do readonly "$__lamina_n"; done
set +f
if [ -n "$__lamina_ifs_set" ]; then IFS=$__lamina_ifs; else unset IFS; fi

if [ -z "$__lamina_cwd" ] || ! cd -- "$__lamina_cwd" 2>/dev/null; then
    if [ -n "$__lamina_custom" ]; then
        echo "lamina: error: --pwd $__lamina_cwd: no such directory in the container" >&2
        exit 2
    fi
    if cd -- "$__lamina_home" 2>/dev/null; then __lamina_w=$__lamina_home; else
        cd / && __lamina_w=/
    fi
    echo "lamina: warning: cannot change to $__lamina_cwd in the container; using" \
        "'$__lamina_w' instead (as apptainer does)" >&2
fi
unset OLDPWD  # set by cd; apptainer changes directory before its script runs
export PWD

__lamina_fixpath() {
    __lamina_p=${PATH-} __lamina_out=${PATH-}
    for __lamina_d in /usr/local/sbin /usr/local/bin /usr/sbin /usr/bin /sbin /bin; do
        case ":$__lamina_p:" in
        *":$__lamina_d:"*) ;;
        *) __lamina_out=${__lamina_out:+$__lamina_out:}$__lamina_d ;;
        esac
    done
    PATH=$__lamina_out
    export PATH
}

__lamina_inject_env() {
    if [ -z "${PATH+x}" ]; then
        export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    fi
    set -f
    for __lamina_n in $__lamina_inject; do
        eval "__lamina_v=\$__lamina_v_$__lamina_n"
        eval "export $__lamina_n=\"$__lamina_v\""
    done
    set +f
}

__lamina_default_ld_library_path() {
    [ "${LD_LIBRARY_PATH-}" = /.singularity.d/libs ] || return 0
    if [ "$(cd /.singularity.d/libs 2>/dev/null && echo *)" = "*" ] &&
        [ -z "${PREPEND_LD_LIBRARY_PATH:-}" ] && [ -z "${APPEND_LD_LIBRARY_PATH:-}" ]; then
        return 0
    fi
    __lamina_dirs="$( (/sbin/ldconfig -Nv | /bin/sed '/^\t/d;s/:.*//') 2>/dev/null )"
    if [ -n "$__lamina_dirs" ]; then
        __lamina_j=
        set -f
        for __lamina_d in $__lamina_dirs; do __lamina_j=${__lamina_j:+$__lamina_j:}$__lamina_d; done
        set +f
        export LD_LIBRARY_PATH="$__lamina_j:$LD_LIBRARY_PATH"
    fi
}

__lamina_runtime_vars() {
    if test -n "${SING_USER_DEFINED_PREPEND_PATH:-}"; then
        PATH="${SING_USER_DEFINED_PREPEND_PATH}:${PATH}"
        unset SING_USER_DEFINED_PREPEND_PATH
    fi
    if test -n "${SING_USER_DEFINED_APPEND_PATH:-}"; then
        PATH="${PATH}:${SING_USER_DEFINED_APPEND_PATH}"
        unset SING_USER_DEFINED_APPEND_PATH
    fi
    if test -n "${SING_USER_DEFINED_PATH:-}"; then
        PATH="${SING_USER_DEFINED_PATH}"
        unset SING_USER_DEFINED_PATH
    fi
    export PATH
}

if test -d /.singularity.d/env; then
    for __lamina_s in /.singularity.d/env/*.sh; do
        test -f "$__lamina_s" || continue
        case $__lamina_s in
        /.singularity.d/env/90-environment.sh)
            if [ -z "${PATH+x}" ]; then __lamina_fixpath; fi
            . "$__lamina_s" ;;
        /.singularity.d/env/10-docker2singularity.sh | /.singularity.d/env/10-docker.sh)
            . "$__lamina_s"
            __lamina_fixpath ;;
        /.singularity.d/env/99-base.sh)
            . "$__lamina_s"
            __lamina_inject_env
            __lamina_default_ld_library_path ;;
        /.singularity.d/env/99-runtimevars.sh)
            __lamina_runtime_vars ;;
        *)
            . "$__lamina_s" ;;
        esac
    done
else
    if test -f /environment; then
        . /environment
        __lamina_fixpath
    fi
    __lamina_inject_env
    __lamina_default_ld_library_path
fi
if ! test -f /.singularity.d/env/99-runtimevars.sh; then __lamina_runtime_vars; fi

if [ -d /.singularity.d/libs32 ] && [ "$(cd /.singularity.d/libs32 && echo *)" != "*" ]; then
    export LD_LIBRARY_PATH="${LD_LIBRARY_PATH:+$LD_LIBRARY_PATH:}/.singularity.d/libs32"
fi
if [ -n "${LD_LIBRARY_PATH:-}" ]; then
    if [ -n "${PREPEND_LD_LIBRARY_PATH:-}" ]; then
        LD_LIBRARY_PATH="$PREPEND_LD_LIBRARY_PATH:$LD_LIBRARY_PATH"
    fi
    if [ -n "${APPEND_LD_LIBRARY_PATH:-}" ]; then
        LD_LIBRARY_PATH="$LD_LIBRARY_PATH:$APPEND_LD_LIBRARY_PATH"
    fi
fi

__lamina_ifs=${IFS-} __lamina_ifs_set=${IFS+x}
IFS=' ' && set -f
for __lamina_n in $__lamina_names; do
    if eval "[ -z \"\${$__lamina_n+x}\" ]"; then
        eval "$__lamina_n=\$__lamina_r_$__lamina_n"
        export "$__lamina_n"
    elif eval "[ -z \"\${$__lamina_n}\" ]"; then
        unset "$__lamina_n"
    fi
done
set +f
if [ -n "$__lamina_ifs_set" ]; then IFS=$__lamina_ifs; else unset IFS; fi

if test -z "${PS1:-}"; then
    export PS1="Apptainer> "
fi
if test -z "${PROMPT_COMMAND:-}"; then
    export PROMPT_COMMAND="PS1=\"${PS1}\"; unset PROMPT_COMMAND"
else
    __lamina_pc='PROMPT_COMMAND="${PROMPT_COMMAND%%; PROMPT_COMMAND=*}"'
    export PROMPT_COMMAND="${PROMPT_COMMAND:-}; ${__lamina_pc}; PS1=\"${PS1}\""
fi
export APPTAINER_ENVIRONMENT="${APPTAINER_ENVIRONMENT:-/.singularity.d/env/91-environment.sh}"
export SINGULARITY_ENVIRONMENT=${APPTAINER_ENVIRONMENT}

case ${0##*/} in
exec)
    exec "$@" ;;
run)
    if test -x /.singularity.d/runscript; then
        exec /.singularity.d/runscript "$@"
    elif test -x /apptainer; then
        exec /apptainer "$@"
    elif test -x /bin/sh; then
        echo "INFO:    No runscript found in container, executing /bin/sh" >&2
        exec /bin/sh "$@"
    fi
    echo "ERROR:   No runscript and no /bin/sh executable found in container, aborting" >&2
    exit 1 ;;
esac
echo "lamina: error: unknown action ${0##*/}" >&2
exit 1
"""

ACTIONS = {"exec": "/.singularity.d/actions/exec", "run": "/.singularity.d/actions/run"}


def launch_env(env: ContainerEnv, *, cwd: str, custom_cwd: bool) -> dict[str, str]:
    """The environment the contained ``/bin/sh -c SCRIPT`` starts with."""
    names = [n for n in env.process if SHELL_NAME.fullmatch(n) and not n.startswith("__lamina")]
    out = {n: v for n, v in env.process.items() if not SHELL_NAME.fullmatch(n)}
    out.update({n: env.process[n] for n in KEPT if n in names})
    out.update({f"__lamina_h_{n}": env.process[n] for n in names})
    inject = injected(env)
    out.update({f"__lamina_i_{n}": v for n, v in inject.items()})
    out["__LAMINA_RESTORE"] = " ".join(names)
    out["__LAMINA_INJECT"] = " ".join(inject)
    out["__LAMINA_READONLY"] = " ".join(n for n in READONLY if n in names)
    out["__LAMINA_CWD"] = cwd
    out["__LAMINA_CUSTOM_CWD"] = "1" if custom_cwd else ""
    out["__LAMINA_HOME"] = env.process.get("HOME", "/")
    return out
