"""Running a command in an unpacked image as ``apptainer exec`` / ``apptainer run`` do.

One concept per module, each citing the apptainer source it follows (apptainer/apptainer at
the commit read for issue 12):

* :mod:`.bindspec` — ``--bind`` / ``APPTAINER_BIND`` specifications;
* :mod:`.environ` — the process environment apptainer hands its action script;
* :mod:`.action` — the action script itself (clear, source the env scripts, inject, restore);
* :mod:`.imagefs` — paths inside the image, symlinks resolved as apptainer resolves them;
* :mod:`.underlay` — bubblewrap mounts over a read-only root, missing mount points created;
* :mod:`.identity` — the ``/etc/passwd`` and ``/etc/group`` apptainer binds in;
* :mod:`.mounts` — apptainer's default mounts, in its order.

:mod:`lamina.sandbox_exec` puts them together.
"""
