"""The vSphere adapter against vcsim (govmomi's simulator, built from Debian's sources).

One simulator serves the whole module (it starts in ~50 ms, but builds cold in ~20 s): every
test uses its own VMs so the order of tests does not matter. An independent pyvmomi session
(``observer``) checks what really happened on the "vCenter" side — power states, events, tasks
— instead of trusting what the adapter says about itself.

VMs (``vms=3``): DC0_H0_VM0..2 on host DC0_H0, DC0_C0_RP0_VM0..2 in cluster DC0_C0; all
powered on. VMware Tools run in DC0_H0_VM0 and DC0_C0_RP0_VM0 only; DC0_C0_RP0_VM2's power
tasks never finish.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import pyVim.connect
from pyVmomi import vim as _vim

from adapters.vsphere import (
    ActionOutcome,
    Reason,
    VSphereAdapter,
    VSphereError,
    VSphereNotConfigured,
)
from tests.fakes.tarpit import tarpit
from tests.fakes.vcsim import Vcsim, run_vcsim

# pyVim/pyVmomi constructors are untyped: use them through Any.
vim: Any = _vim
SmartConnect: Callable[..., Any] = pyVim.connect.SmartConnect
Disconnect: Callable[..., Any] = pyVim.connect.Disconnect

TOOLS_VMS = ["DC0_H0_VM0", "DC0_C0_RP0_VM0"]
STUCK_VM = "DC0_C0_RP0_VM2"


@pytest.fixture(scope="module")
def vcsim() -> Iterator[Vcsim]:
    with run_vcsim(vms=3, tools=TOOLS_VMS, stuck=[STUCK_VM]) as sim:
        yield sim


class Observer:
    """A second, independent client: sees vCenter's side of what the adapter did."""

    def __init__(self, sim: Vcsim) -> None:
        self.si = SmartConnect(
            host="127.0.0.1",
            port=sim.port,
            user=sim.user,
            pwd=sim.password,
            disableSslCertValidation=True,
        )
        self.content = self.si.RetrieveContent()
        self.key = self.content.sessionManager.currentSession.key

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

    def events(self, name: str, *types: str) -> list[Any]:
        spec = vim.event.EventFilterSpec(
            entity=vim.event.EventFilterSpec.ByEntity(entity=self.vm(name), recursion="self"),
            eventTypeId=list(types) or None,
        )
        return list(self.content.eventManager.QueryEvents(spec))

    def terminate_other_sessions(self) -> int:
        """What an admin (or vCenter's idle timeout) does to the adapter's session."""
        manager = self.content.sessionManager
        others = [s.key for s in manager.sessionList if s.key != self.key]
        if others:
            manager.TerminateSession(others)
        return len(others)

    def close(self) -> None:
        Disconnect(self.si)


@pytest.fixture(scope="module")
def observer(vcsim: Vcsim) -> Iterator[Observer]:
    obs = Observer(vcsim)
    yield obs
    obs.close()


@pytest.fixture
def adapter(vcsim: Vcsim) -> Iterator[VSphereAdapter]:
    with VSphereAdapter(
        host=vcsim.host, user=vcsim.user, password=vcsim.password, insecure=True
    ) as vsphere:
        yield vsphere


def _error(call: Any, *args: Any, **kwargs: Any) -> VSphereError:
    with pytest.raises(VSphereError) as caught:
        call(*args, **kwargs)
    return caught.value


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# ------------------------------------------------------------------------------ reads


@pytest.mark.integration
def test_health_names_the_vcenter(adapter: VSphereAdapter, vcsim: Vcsim) -> None:
    ok, message = adapter.health()
    assert ok, message
    assert "VMware vCenter Server" in message
    assert vcsim.host in message


@pytest.mark.integration
def test_list_vms_reports_power_tools_and_ip(adapter: VSphereAdapter) -> None:
    outcome = adapter.list_vms()
    assert isinstance(outcome, ActionOutcome)
    by_name = {vm["name"]: vm for vm in outcome.data}
    assert len(by_name) == 6
    assert by_name["DC0_H0_VM0"]["tools"] == "running"
    assert by_name["DC0_H0_VM0"]["guest_ip"].startswith("192.0.2.")
    assert by_name["DC0_H0_VM1"]["tools"] == "not_running"
    assert by_name["DC0_H0_VM1"]["guest_ip"] is None
    assert set(by_name["DC0_H0_VM1"]) == {"name", "moid", "power_state", "tools", "guest_ip"}
    assert [vm["name"] for vm in outcome.data] == sorted(by_name)


@pytest.mark.integration
def test_find_vm(adapter: VSphereAdapter, observer: Observer) -> None:
    info = adapter.find_vm("DC0_H0_VM1")
    assert info.name == "DC0_H0_VM1"
    assert info.moid == observer.vm("DC0_H0_VM1")._moId
    assert info.power_state == "poweredOn"
    assert not info.tools_running


@pytest.mark.integration
def test_unknown_vm_is_not_found(adapter: VSphereAdapter) -> None:
    for call in (adapter.find_vm, adapter.power_off, adapter.reset_vm, adapter.reboot_guest):
        err = _error(call, "no-such-vm")
        assert err.reason == "not_found"
        assert not err.transient
        assert "no VM named no-such-vm" in str(err)


@pytest.mark.integration
def test_two_vms_with_one_name_are_refused(adapter: VSphereAdapter, observer: Observer) -> None:
    """vCenter allows the same name in two folders; acting on a guess could hit the wrong VM."""
    datacenter = observer.content.rootFolder.childEntity[0]
    folder = datacenter.vmFolder.CreateFolder("dup-test")
    pool = observer.vm("DC0_H0_VM0").resourcePool
    for parent in (datacenter.vmFolder, folder):
        spec = vim.vm.ConfigSpec(
            name="twin", guestId="otherGuest", files=vim.vm.FileInfo(vmPathName="[LocalDS_0]")
        )
        task = parent.CreateVM_Task(config=spec, pool=pool)
        for _ in range(100):
            if task.info.state in ("success", "error"):
                break
            time.sleep(0.01)
        assert task.info.state == "success", task.info.error
    err = _error(adapter.power_off, "twin")
    assert err.reason == "error"
    assert "2 VMs are named twin" in str(err)
    assert "refusing to guess" in str(err)


# ------------------------------------------------------------------------------ power actions


@pytest.mark.integration
def test_power_off_then_again_then_on(adapter: VSphereAdapter, observer: Observer) -> None:
    vm = "DC0_H0_VM2"
    moid = observer.vm(vm)._moId

    off = adapter.power_off(vm)
    assert observer.power_state(vm) == "poweredOff"
    assert off.request == f"PowerOffVM_Task on VirtualMachine:{moid} ({vm})"
    assert not off.dry_run
    assert off.data["power_state"] == "poweredOff"
    assert off.data["power_state_before"] == "poweredOn"
    assert off.data["task"].startswith("task-")
    assert "Powered off VM DC0_H0_VM2" in off.summary

    again = _error(adapter.power_off, vm)
    assert again.reason == "invalid_power_state"
    assert not again.transient
    assert str(again) == "VM DC0_H0_VM2 is already powered off"

    on = adapter.power_on(vm)
    assert observer.power_state(vm) == "poweredOn"
    assert on.request == f"PowerOnVM_Task on VirtualMachine:{moid} ({vm})"

    twice = _error(adapter.power_on, vm)
    assert twice.reason == "invalid_power_state"
    assert str(twice) == "VM DC0_H0_VM2 is already powered on"


@pytest.mark.integration
def test_reset_vm(adapter: VSphereAdapter, observer: Observer) -> None:
    vm = "DC0_C0_RP0_VM1"
    booted = observer.vm(vm).summary.runtime.bootTime
    events = len(observer.events(vm, "VmPoweredOffEvent"))

    outcome = adapter.reset_vm(vm)
    assert outcome.request == f"ResetVM_Task on VirtualMachine:{observer.vm(vm)._moId} ({vm})"
    assert outcome.data["power_state"] == "poweredOn"
    assert observer.power_state(vm) == "poweredOn"
    assert observer.vm(vm).summary.runtime.bootTime > booted  # it really went down and up
    assert len(observer.events(vm, "VmPoweredOffEvent")) == events + 1

    adapter.power_off(vm)
    refused = _error(adapter.reset_vm, vm)
    assert refused.reason == "invalid_power_state"
    assert str(refused) == f"VM {vm} is powered off: a reset needs it powered on (use power_on)"
    adapter.power_on(vm)


@pytest.mark.integration
def test_dry_run_sends_nothing(adapter: VSphereAdapter, observer: Observer) -> None:
    vm = "DC0_H0_VM1"
    moid = observer.vm(vm)._moId
    events_before = len(observer.events(vm))
    tasks_before = {task._moId for task in observer.content.taskManager.recentTask}

    off = adapter.power_off(vm, dry_run=True)
    reset = adapter.reset_vm(vm, dry_run=True)

    assert off.dry_run and reset.dry_run
    assert off.request == f"PowerOffVM_Task on VirtualMachine:{moid} ({vm})"
    assert reset.request == f"ResetVM_Task on VirtualMachine:{moid} ({vm})"
    assert off.summary == "Dry run: would power off VM DC0_H0_VM1 (now powered on)"
    assert observer.power_state(vm) == "poweredOn"
    assert len(observer.events(vm)) == events_before
    assert {task._moId for task in observer.content.taskManager.recentTask} == tasks_before

    # A dry run refuses what the real call would refuse, without sending it.
    err = _error(adapter.power_on, vm, dry_run=True)
    assert err.reason == "invalid_power_state"
    assert str(err) == "VM DC0_H0_VM1 is already powered on"
    assert _error(adapter.reboot_guest, vm, dry_run=True).reason == "tools_not_running"


@pytest.mark.integration
def test_stuck_task_times_out(vcsim: Vcsim, observer: Observer) -> None:
    adapter = VSphereAdapter(
        host=vcsim.host, user=vcsim.user, password=vcsim.password, insecure=True, task_timeout=0.5
    )
    err = _error(adapter.power_off, STUCK_VM)
    adapter.close()
    assert err.reason == "timeout"
    assert err.transient is False  # the task runs on: a retry would queue a second one
    assert "did not finish within 0.5 s" in str(err)
    assert "PowerOffVM_Task on VirtualMachine:" in str(err)
    assert "task-" in str(err)


@pytest.mark.integration
def test_vcenter_lost_while_a_task_runs() -> None:
    """Unreachable, but the message says the action may have run: no blind retry."""
    with run_vcsim(vms=1, stuck=["DC0_H0_VM0"]) as sim:
        adapter = VSphereAdapter(
            host=sim.host, user=sim.user, password=sim.password, insecure=True, task_timeout=20
        )
        threading.Timer(0.3, sim.process.terminate).start()
        err = _error(adapter.reset_vm, "DC0_H0_VM0")
    assert err.reason == "unreachable"
    assert err.transient is False  # sent: a retry could run it twice
    assert "after sending ResetVM_Task on VirtualMachine:" in str(err)
    assert "it may have run" in str(err)


# ------------------------------------------------------------------------------ guest reboot


@pytest.mark.integration
def test_reboot_guest_with_tools_running(adapter: VSphereAdapter, observer: Observer) -> None:
    vm = "DC0_H0_VM0"
    before = len(observer.events(vm, "VmGuestRebootEvent"))

    dry = adapter.reboot_guest(vm, dry_run=True)
    assert dry.dry_run
    assert dry.request == f"RebootGuest on VirtualMachine:{observer.vm(vm)._moId} ({vm})"
    assert len(observer.events(vm, "VmGuestRebootEvent")) == before

    outcome = adapter.reboot_guest(vm)
    assert outcome.request == dry.request
    assert not outcome.dry_run
    assert len(observer.events(vm, "VmGuestRebootEvent")) == before + 1


@pytest.mark.integration
def test_reboot_guest_without_tools_is_refused(adapter: VSphereAdapter, observer: Observer) -> None:
    vm = "DC0_H0_VM1"
    assert observer.vm(vm).guest.toolsRunningStatus == "guestToolsNotRunning"  # vcsim default
    err = _error(adapter.reboot_guest, vm)
    assert err.reason == "tools_not_running"
    assert not err.transient
    assert str(err).startswith("VMware Tools are not running in VM DC0_H0_VM1")
    assert observer.events(vm, "VmGuestRebootEvent") == []


@pytest.mark.integration
def test_reboot_guest_on_a_powered_off_vm(adapter: VSphereAdapter, observer: Observer) -> None:
    vm = "DC0_C0_RP0_VM0"  # has tools, which stop with the VM
    adapter.power_off(vm)
    assert observer.vm(vm).guest.toolsRunningStatus == "guestToolsNotRunning"
    err = _error(adapter.reboot_guest, vm)
    assert err.reason == "invalid_power_state"
    assert str(err) == f"VM {vm} is powered off: a guest reboot needs it powered on"
    adapter.power_on(vm)
    assert adapter.reboot_guest(vm).request is not None


@pytest.mark.integration
def test_tools_unavailable_fault_maps_to_tools_not_running(
    adapter: VSphereAdapter, observer: Observer
) -> None:
    """If tools stop between the adapter's check and the call, vSphere's own fault is mapped."""
    with pytest.raises(vim.fault.ToolsUnavailable) as fault:
        observer.vm("DC0_H0_VM1").RebootGuest()
    err = adapter._translate(fault.value, "reboot_guest", "DC0_H0_VM1")
    assert err.reason == "tools_not_running"
    assert str(err) == (
        "VMware Tools are not running in VM DC0_H0_VM1: cannot reboot the guest OS of it"
    )


# ------------------------------------------------------------------------------ sessions, faults


@pytest.mark.integration
def test_session_is_reused(adapter: VSphereAdapter) -> None:
    adapter.health()
    adapter.list_vms()
    adapter.find_vm("DC0_H0_VM1")
    adapter.power_off("DC0_H0_VM1", dry_run=True)
    assert adapter.logins == 1


@pytest.mark.integration
def test_terminated_session_is_replaced_once(adapter: VSphereAdapter, observer: Observer) -> None:
    adapter.list_vms()
    assert observer.terminate_other_sessions() >= 1
    assert len(adapter.list_vms().data) >= 6  # read through a dead session's view
    assert adapter.logins == 2

    vm = "DC0_H0_VM2"
    observer.terminate_other_sessions()
    adapter.reset_vm(vm)  # an action whose first call hits NotAuthenticated
    assert adapter.logins == 3
    assert observer.power_state(vm) == "poweredOn"

    observer.terminate_other_sessions()
    ok, message = adapter.health()
    assert ok, message
    assert adapter.logins == 4


@pytest.mark.integration
def test_concurrent_callers_log_in_again_only_once(
    adapter: VSphereAdapter, observer: Observer
) -> None:
    adapter.list_vms()
    observer.terminate_other_sessions()
    errors: list[BaseException] = []

    def work() -> None:
        try:
            adapter.find_vm("DC0_H0_VM1")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert errors == []
    assert adapter.logins == 2


@pytest.mark.integration
def test_close_logs_out(vcsim: Vcsim, observer: Observer) -> None:
    adapter = VSphereAdapter(
        host=vcsim.host, user=vcsim.user, password=vcsim.password, insecure=True
    )
    adapter.list_vms()
    before = {s.key for s in observer.content.sessionManager.sessionList}
    adapter.close()
    after = {s.key for s in observer.content.sessionManager.sessionList}
    assert len(before - after) == 1
    adapter.close()  # idempotent


@pytest.mark.integration
def test_bad_credentials(vcsim: Vcsim) -> None:
    adapter = VSphereAdapter(host=vcsim.host, user="mallory", password="guess", insecure=True)
    err = _error(adapter.power_off, "DC0_H0_VM1")
    assert err.reason == "invalid_login"
    assert not err.transient
    assert str(err) == f"vSphere login failed for user mallory at {vcsim.host}"
    ok, message = adapter.health()
    assert not ok
    assert message == str(err)


@pytest.mark.integration
def test_untrusted_certificate_is_refused_unless_insecure(vcsim: Vcsim) -> None:
    """pyVim skips certificate checks for 127.0.0.1 on its own; the adapter does not."""
    adapter = VSphereAdapter(host=vcsim.host, user=vcsim.user, password=vcsim.password)
    err = _error(adapter.list_vms)
    assert err.reason == "error"
    assert not err.transient
    assert "TLS certificate" in str(err)
    assert "VSPHERE_INSECURE=true" in str(err)


@pytest.mark.integration
def test_closed_port_is_unreachable() -> None:
    port = _free_port()
    adapter = VSphereAdapter(host=f"127.0.0.1:{port}", user="u", password="p", insecure=True)
    err = _error(adapter.reset_vm, "web-01")
    assert err.reason == "unreachable"
    assert err.transient
    assert str(err).startswith(f"cannot reach vSphere at 127.0.0.1:{port}")
    ok, message = adapter.health()
    assert not ok
    assert message == str(err)


@pytest.mark.integration
def test_a_web_server_that_is_not_vsphere(vcsim: Vcsim, monkeypatch: pytest.MonkeyPatch) -> None:
    """The right host and port but no SDK there: vcsim answers 404 for the version file."""

    def wrong_path(**kwargs: Any) -> Any:
        return SmartConnect(path="/not-sdk", **kwargs)

    monkeypatch.setattr("adapters.vsphere.SmartConnect", wrong_path)
    adapter = VSphereAdapter(
        host=vcsim.host, user=vcsim.user, password=vcsim.password, insecure=True
    )
    err = _error(adapter.list_vms)
    assert err.reason == "error"
    assert str(err) == f"{vcsim.host} answered, but it is not a vSphere SDK endpoint"


# ------------------------------------------------------------------------------ configuration


def test_from_environment_needs_a_host() -> None:
    with pytest.raises(VSphereNotConfigured, match="VSPHERE_HOST is not set"):
        VSphereAdapter.from_environment({})
    with pytest.raises(VSphereNotConfigured, match="VSPHERE_USER is not set"):
        VSphereAdapter.from_environment({"VSPHERE_HOST": "vc.example.org"})
    with pytest.raises(VSphereNotConfigured, match="VSPHERE_PASSWORD is not set"):
        VSphereAdapter.from_environment({"VSPHERE_HOST": "vc", "VSPHERE_USER": "u"})


def test_from_environment_parses_host_port_and_insecure() -> None:
    env = {"VSPHERE_USER": "svc-infraai", "VSPHERE_PASSWORD": "s3cret"}
    adapter = VSphereAdapter.from_environment({**env, "VSPHERE_HOST": "vc.example.org"})
    assert (adapter.host, adapter.port, adapter.insecure) == ("vc.example.org", 443, False)
    adapter = VSphereAdapter.from_environment(
        {**env, "VSPHERE_HOST": "10.0.0.5:8443", "VSPHERE_INSECURE": "true"}
    )
    assert (adapter.host, adapter.port, adapter.insecure) == ("10.0.0.5", 8443, True)
    assert adapter.endpoint == "10.0.0.5:8443"
    adapter = VSphereAdapter.from_environment({**env, "VSPHERE_HOST": "[fd00::5]:444"})
    assert (adapter.host, adapter.port, adapter.endpoint) == ("fd00::5", 444, "[fd00::5]:444")
    assert "s3cret" not in repr(adapter)
    with pytest.raises(VSphereNotConfigured, match="VSPHERE_INSECURE must be true or false"):
        VSphereAdapter.from_environment({**env, "VSPHERE_HOST": "vc", "VSPHERE_INSECURE": "maybe"})
    with pytest.raises(VSphereNotConfigured, match="VSPHERE_HOST"):
        VSphereAdapter.from_environment({**env, "VSPHERE_HOST": "vc:notaport"})


def test_error_reasons_and_transience() -> None:
    assert VSphereError("unreachable", "x").transient
    assert VSphereError("timeout", "x").transient
    reasons: list[Reason] = [
        "not_found",
        "invalid_power_state",
        "invalid_login",
        "tools_not_running",
    ]
    for reason in reasons:
        assert not VSphereError(reason, "x").transient
    err = VSphereError("not_found", "no VM named web-01")
    assert str(err) == "no VM named web-01"
    assert err.reason == "not_found"


# ------------------------------------------------------------------------------ a wedged vCenter


def _finishes(call: Callable[[], Any], guard: float = 30.0) -> Any:
    """`call()` in a thread; its result, or a failure if it is still running after `guard`
    seconds (a hang guard only: the bound under test is far shorter)."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call())
        except BaseException as exc:  # handed to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(guard)
    assert not thread.is_alive(), f"{call} still running after {guard:g} s: it hangs"
    return outcome[0]


@pytest.mark.parametrize("insecure", [True, False], ids=["insecure", "verifying"])
def test_a_vcenter_that_accepts_and_never_answers_fails_the_login(insecure: bool) -> None:
    """The TCP connect succeeds; the TLS handshake and version discovery get no answer."""
    with tarpit() as pit:
        adapter = VSphereAdapter(
            host=pit.host, user="u", password="p", insecure=insecure, request_timeout=0.5
        )
        ok, message = _finishes(adapter.health)
        assert not ok
        assert message == f"vSphere at {pit.host} did not answer within 0.5 s"
        err = _finishes(lambda: _error(adapter.reset_vm, "web-01"))
        assert (err.reason, err.transient) == ("timeout", True)
        assert pit.connections >= 3  # a TCP probe, then one try per call: nothing was cached


def test_callers_waiting_for_a_stuck_login_are_answered_too() -> None:
    """The login holds the adapter's lock; the callers queued behind it must not wait for
    ever either: each ends with a timeout, whoever got the lock first."""
    with tarpit() as pit:
        adapter = VSphereAdapter(
            host=pit.host, user="u", password="p", insecure=True, request_timeout=0.5
        )
        results: list[Any] = [None] * 4

        def call(i: int) -> None:
            results[i] = adapter.health()

        threads = [threading.Thread(target=call, args=(i,), daemon=True) for i in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(t.is_alive() for t in threads), "a caller still waits for the login"
        assert all(ok is False and "did not answer" in message for ok, message in results)


def test_close_does_not_wait_for_a_stuck_login() -> None:
    """Shutdown must not sit out a wedged vCenter's timeouts: close returns while the login
    is still waiting, and that login, when it ends, keeps no session."""
    with tarpit() as pit:
        adapter = VSphereAdapter(
            host=pit.host, user="u", password="p", insecure=True, request_timeout=30
        )
        login = threading.Thread(target=adapter.health, daemon=True)
        login.start()
        deadline = time.monotonic() + 30  # a hang guard
        while pit.connections < 2:  # the TCP probe, then pyVim's connection
            assert time.monotonic() < deadline, "the login never reached the tarpit"
            time.sleep(0.01)
        _finishes(adapter.close, guard=15)
        assert login.is_alive()  # close did not wait for it
    login.join(30)  # the tarpit is gone: the login fails at once
    assert not login.is_alive()
    assert adapter._session is None
