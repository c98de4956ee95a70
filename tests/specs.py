"""Container specs as resolve would make them, for tests that need one without a repo."""

from __future__ import annotations

import dataclasses

from ds01ctl.model.spec import Bind, ContainerSpec, Power, UserAccount

GIB = 1024**3
SECRET = "hunter2-not-for-json"  # an env value no rendering may show


def workspace_spec(owner: str, name: str, uid: int = 1001, **changes: object) -> ContainerSpec:
    """A workspace spec as resolve would make it; `changes` override fields."""
    container = f"{name}._.{uid}"
    base = ContainerSpec(
        kind="workspace",
        owner=owner,
        name=name,
        container_name=container,
        image="aimehub/pytorch-2.7.1-aime-cuda12.6.20",
        image_tag=f"aimehub/pytorch-2.7.1-aime-cuda12.6.20:{container}",
        account=UserAccount(owner, uid, uid),
        command=("bash",),
        working_dir="/workspace",
        env=(("HF_HOME", "/workspace/.hf"), ("WANDB_API_KEY", SECRET)),
        binds=(
            Bind("/datasets", "/datasets", read_only=True),
            Bind("/workspace", f"/home/{owner}/{name}"),
        ),
        network="bridge",
        network_defaulted=False,
        shm_size=8 * GIB,
        ulimits=(("memlock", -1), ("stack", 67108864)),
        stop_signal="SIGHUP",
        stop_grace=10,
        gpus=(),
        nano_cpus=4 * 10**9,
        memory=32 * GIB,
        memory_swap=32 * GIB,
        pids=4096,
        restart_policy="no",
        tty=True,
        power=Power.ANY,
        snapshot_on_replace=False,
        labels=(("ds01.kind", "workspace"), ("ds01.owner", owner)),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]
