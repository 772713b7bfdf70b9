"""vSphere actions through the job function against vcsim: power actions change the VM's power
state, refusals and bad credentials end as clear errors in job_logs.error and the thread
message, a dry run sends nothing, and a task that was sent is never sent again."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import pyVim.connect
from pyVmomi import vim

from core.execution.job import JobContext, execute_proposal
from tests.execution_helpers import (
    add_proposal,
    job_context,
    job_logs,
    proposal_row,
    thread_texts,
)
from tests.fakes.vcsim import Vcsim, run_vcsim

pytestmark = pytest.mark.integration

SmartConnect: Callable[..., Any] = pyVim.connect.SmartConnect
Disconnect: Callable[..., Any] = pyVim.connect.Disconnect
EventFilterSpec: Any = vim.event.EventFilterSpec

VM = "DC0_H0_VM0"
TOOLS_VM = "DC0_H0_VM1"
STUCK_VM = "DC0_C0_RP0_VM0"


@pytest.fixture
def sim() -> Iterator[Vcsim]:
    """A fresh simulator per test (it starts in ~50 ms): power states never leak between
    tests."""
    with run_vcsim(vms=2, tools=[TOOLS_VM], stuck=[STUCK_VM]) as simulator:
        yield simulator


class Observer:
    """An independent client: vCenter's own view of what the job did."""

    def __init__(self, sim: Vcsim) -> None:
        self.si = SmartConnect(
            host="127.0.0.1",
            port=sim.port,
            user=sim.user,
            pwd=sim.password,
            disableSslCertValidation=True,
        )
        self.content = self.si.RetrieveContent()
        # vcsim's own set-up (powering the VMs on) left tasks: only later ones count.
        self.baseline = {task._moId for task in self.content.taskManager.recentTask}

    def vm(self, name: str) -> Any:
        view = self.content.viewManager.CreateContainerView(
            self.content.rootFolder, [vim.VirtualMachine], True
        )
        try:
            (found,) = [vm for vm in view.view if vm.name == name]
        finally:
            view.DestroyView()
        return found

    def power_state(self, name: str) -> str:
        return str(self.vm(name).runtime.powerState)

    def tasks(self, name: str) -> list[str]:
        """`method:state` of each task vCenter ran on the VM since the observer started.

        vcsim runs a reset as a reset task plus an inner power-off and power-on task.
        """
        moid = self.vm(name)._moId
        return [
            f"{task.info.descriptionId.removeprefix('VirtualMachine.')}:{task.info.state}"
            for task in self.content.taskManager.recentTask
            if task._moId not in self.baseline
            and task.info.entity is not None
            and task.info.entity._moId == moid
        ]

    def events(self, name: str) -> list[str]:
        spec = EventFilterSpec(
            entity=EventFilterSpec.ByEntity(entity=self.vm(name), recursion="self")
        )
        events = self.content.eventManager.QueryEvents(spec)
        return [type(e).__name__.removeprefix("vim.event.") for e in events]

    def close(self) -> None:
        Disconnect(self.si)


@pytest.fixture
def observer(sim: Vcsim) -> Iterator[Observer]:
    obs = Observer(sim)
    yield obs
    obs.close()


@asynccontextmanager
async def vsphere_jobs(
    db_url: str, sim: Vcsim, *, password: str | None = None, **settings: Any
) -> AsyncIterator[JobContext]:
    async with job_context(
        db_url,
        vsphere_host=sim.host,
        vsphere_user=sim.user,
        vsphere_password=password or sim.password,
        vsphere_insecure=True,
        **settings,
    ) as ctx:
        yield ctx


async def run(ctx: JobContext, action: str, vm: str, **kwargs: Any) -> tuple[int, str]:
    pid = await add_proposal(ctx.sessions, action, {"vm": vm}, **kwargs)
    return pid, await execute_proposal(ctx, pid)


async def test_power_off_then_on_then_reset_change_the_vm(
    db_url: str, sim: Vcsim, observer: Observer
) -> None:
    moid = observer.vm(VM)._moId
    async with vsphere_jobs(db_url, sim) as ctx:
        off, result = await run(ctx, "vsphere.power_off", VM)
        assert result == f"Powered off VM {VM} (now powered off)"
        assert await asyncio.to_thread(observer.power_state, VM) == "poweredOff"

        on, result = await run(ctx, "vsphere.power_on", VM)
        assert result == f"Powered on VM {VM} (now powered on)"
        assert await asyncio.to_thread(observer.power_state, VM) == "poweredOn"

        reset, result = await run(ctx, "vsphere.reset_vm", VM)
        assert result == f"Reset VM {VM} (now powered on)"

        assert await asyncio.to_thread(observer.tasks, VM) == [
            "powerOff:success",
            "powerOn:success",
            "reset:success",
            "powerOff:success",  # the reset's own steps, in vcsim
            "powerOn:success",
        ]
        for pid, method in (
            (off, "PowerOffVM_Task"),
            (on, "PowerOnVM_Task"),
            (reset, "ResetVM_Task"),
        ):
            assert (await proposal_row(ctx.sessions, pid)).status == "succeeded"
            [log] = await job_logs(ctx.sessions, pid)
            assert log.status == "succeeded"
            assert f"sent: {method} on VirtualMachine:{moid} ({VM})" in (log.output or "")
            [text] = await thread_texts(ctx.sessions, pid)
            assert text.startswith("✅ Succeeded")
            assert f"sent: `{method} on VirtualMachine:{moid} ({VM})`" in text


async def test_reboot_guest_needs_vmware_tools(db_url: str, sim: Vcsim, observer: Observer) -> None:
    async with vsphere_jobs(db_url, sim) as ctx:
        _, result = await run(ctx, "vsphere.reboot_guest", TOOLS_VM)
        assert result == f"Asked VMware Tools to reboot the guest OS of VM {TOOLS_VM}"
        assert "VmGuestRebootEvent" in await asyncio.to_thread(observer.events, TOOLS_VM)

        refused, result = await run(ctx, "vsphere.reboot_guest", VM)
        assert result.startswith(f"failed: VMware Tools are not running in VM {VM}")
        assert len(await job_logs(ctx.sessions, refused)) == 1


async def test_invalid_power_state_is_a_clear_error_after_one_attempt(
    db_url: str, sim: Vcsim, observer: Observer
) -> None:
    async with vsphere_jobs(db_url, sim) as ctx:
        await run(ctx, "vsphere.power_off", VM)
        pid, result = await run(ctx, "vsphere.power_off", VM)

        error = f"VM {VM} is already powered off"
        assert result == f"failed: {error}"
        proposal = await proposal_row(ctx.sessions, pid)
        assert (proposal.status, proposal.status_reason) == ("failed", error)
        [log] = await job_logs(ctx.sessions, pid)
        assert (log.attempt, log.status, log.error) == (1, "failed", error)
        assert await thread_texts(ctx.sessions, pid) == [f"❌ Failed after 1 attempt(s): {error}"]

        pid, result = await run(ctx, "vsphere.reset_vm", VM)
        assert result == (
            f"failed: VM {VM} is powered off: a reset needs it powered on (use power_on)"
        )
    # vSphere refused the second power-off and the reset: each was sent once, and failed.
    assert await asyncio.to_thread(observer.tasks, VM) == [
        "powerOff:success",
        "powerOff:error",
        "reset:error",
        "powerOff:error",  # the reset's own first step, in vcsim
    ]
    assert await asyncio.to_thread(observer.power_state, VM) == "poweredOff"


async def test_bad_credentials_are_a_clear_error_after_one_attempt(
    db_url: str, sim: Vcsim, observer: Observer
) -> None:
    async with vsphere_jobs(db_url, sim, password="wrong-password") as ctx:
        pid, result = await run(ctx, "vsphere.reset_vm", VM)

        error = f"vSphere login failed for user {sim.user} at {sim.host}"
        assert result == f"failed: {error}"
        [log] = await job_logs(ctx.sessions, pid)
        assert (log.attempt, log.status, log.error) == (1, "failed", error)
        assert await thread_texts(ctx.sessions, pid) == [f"❌ Failed after 1 attempt(s): {error}"]
    assert await asyncio.to_thread(observer.tasks, VM) == []


async def test_an_unknown_vm_is_not_found(db_url: str, sim: Vcsim) -> None:
    async with vsphere_jobs(db_url, sim) as ctx:
        pid, result = await run(ctx, "vsphere.power_on", "no-such-vm")
        assert result == f"failed: no VM named no-such-vm in vSphere at {sim.host}"
        assert len(await job_logs(ctx.sessions, pid)) == 1


@pytest.mark.parametrize("how", ["proposal", "settings"])
async def test_a_dry_run_sends_no_task(
    db_url: str, sim: Vcsim, observer: Observer, how: str
) -> None:
    moid = observer.vm(VM)._moId
    events = await asyncio.to_thread(observer.events, VM)
    async with vsphere_jobs(db_url, sim, infraai_dry_run=how == "settings") as ctx:
        pid, result = await run(ctx, "vsphere.power_off", VM, dry_run=how == "proposal")

        assert result == f"Dry run: would power off VM {VM} (now powered on)"
        [log] = await job_logs(ctx.sessions, pid)
        assert log.status == "succeeded"
        assert f"would send: PowerOffVM_Task on VirtualMachine:{moid} ({VM})" in (log.output or "")
        [text] = await thread_texts(ctx.sessions, pid)
        assert text.startswith("🧪 Dry run")
    assert await asyncio.to_thread(observer.power_state, VM) == "poweredOn"
    assert await asyncio.to_thread(observer.tasks, VM) == []
    assert await asyncio.to_thread(observer.events, VM) == events


async def test_a_task_that_does_not_finish_is_not_sent_again(
    db_url: str, sim: Vcsim, observer: Observer
) -> None:
    async with vsphere_jobs(db_url, sim, infraai_action_timeout_seconds=0.5) as ctx:
        pid, result = await run(ctx, "vsphere.power_off", STUCK_VM)

        assert result == (
            "failed: timed out after 0.5 s; the action may still complete: "
            "check the target before trying again"
        )
        [log] = await job_logs(ctx.sessions, pid)
        assert log.status == "failed"
        assert (await proposal_row(ctx.sessions, pid)).status == "failed"
    assert await asyncio.to_thread(observer.tasks, STUCK_VM) == ["powerOff:running"]
